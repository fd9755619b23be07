"""The bridge between DaVinci Resolve's scripts and the engine, behind ``chronoscope bridge``
(engine/commands/bridge.py reads the request, dispatches it and writes the reply).

    protocol       the request and its fields; the reply as JSON or as a Lua chunk
    config         resolve-bridge.json, where the scripts find the bridge's command
    connection     reaching the engine (started on demand), noticing it stopped, its events,
                   ``ping``, and engine errors in an editor's words
    stopping       SIGTERM or Ctrl-C cancels the job being waited for; the reply still comes
    items          the timeline's video items and what keeps a clip from being analysed or rendered
    clip_entries   what a reply says about each clip
    detect         the ``detect`` operation: speed per clip, and its markers
    results        reading a detect result (issue 4's JSON)
    markers        marker placement on the timeline, names and notes (the note's last line
                   tells our markers once Resolve's OTIO dropped their customData)
    evidence       the engine's evidence as note lines
    summary        the console line for a detected clip
    words          speeds, rates, confidences and marker names in an editor's words
    speed_classes  the speed classes' names and marker colours
    render         the ``render`` operation through the engine's ``render_timeline``
    folders        where a render goes: one folder per project and timeline, names made safe
    render_result  reading ``render_timeline``'s answer
    preview        the ``open_preview`` operation
"""
