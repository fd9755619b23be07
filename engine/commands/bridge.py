"""``chronoscope bridge``: one JSON request on stdin, one reply on stdout, for scripts that cannot
import Chronoscope (DaVinci Resolve's Python and Lua scripts run in the user's interpreter).

Request (stdin, UTF-8 JSON)::

    {"op": "ping" | "detect" | "render" | "open_preview", ...operation fields...}

    ping          {"start_engine": true}
    detect        {"timeline": "cut.otio", "results": {"/media/a.mov": {...detect JSON...}}?,
                   "disabled": [{"track": "V1", "record_start_frame": 48, "what": "clip"}]?}
    render        {"timeline": "cut.otio", "output_dir": "DIR"?, "clips": [{"track": "V1",
                   "record_start_frame": 48}]?, "flag": "Purple"?, "disabled": [...]?}
    open_preview  {"timeline": "cut.otio", "screenshot": "shot.png"?, "wait": false}

Every request may carry ``"start_engine"`` (default true: start the engine when none answers) and
``"timeout_s"`` (the longest wait for one engine job, default 600; a job still running then is
cancelled, and the next one starts; a render, one engine job for all its clips, may take that
long for each clip it renders). SIGTERM or Ctrl-C cancels the job being waited for: detect
then answers with the clips it had finished (``"stopped"`` says so, exit status 130), the other
operations with an ``Interrupted`` error. A list sent as an empty Lua table (``{}``) is read as
an empty list. ``disabled`` names clips the script saw disabled in Resolve (``what``: ``clip``
or ``track``), besides those the export marks so.

Reply (stdout): ``{"ok": true, "op": ..., ...}`` or ``{"ok": false, "error": {"type", "message"}}``
with exit status 2. ``--reply lua`` writes the same reply as a Lua chunk (``return {...}``) for
Lua scripts, which have no JSON reader. Progress and log lines go to stderr, one per line.

``detect`` asks the engine's ``detect_speed`` for every enabled video clip with media (once per
media file), or takes the results given in ``results`` (keyed by media path, e.g. from
``chronoscope detect --json`` run in a batch). It answers with every video clip (``clips``: its
``status``, a ``summary`` line for the console, its ``marker_key`` and ``note_key``) plus the markers to draw:
one per detected segment, at ``frame`` counted in timeline frames from the timeline's first
frame, as Resolve's ``Timeline.AddMarker`` takes them. Segment times are seconds from the first
frame of the media file; they are mapped through the clip's source range and speed onto the
timeline, and parts outside the clip's used range are left out. A clip with a speed ramp is
analysed all the same and gets one marker over its whole length. Disabled clips, compound
clips and offline media are listed with the reason. A marker's ``custom_data`` is JSON starting
with its clip's ``marker_key`` (which starts with ``MARKER_TAG``), and the last line of its note
is its clip's ``note_key`` (Resolve's OTIO round trip keeps notes and drops custom data): that
is how a script recognises its own markers, and which clip each belongs to.

``render`` sends the timeline to the engine's ``render_timeline`` with the clips to render (every
clip slower than 100 % that does not play its own frames, plus those named in ``clips``) into
``output_dir`` (a relative one under the bridge's render folder, ``engine.bridge.folders``; the
scripts send ``<project>/<timeline>``, so a second run resumes) and answers with the new timeline file,
the rendered media, and ``not_rendered``: each clip left as it was, with the reason (a speed
ramp, a compound clip, a disabled clip, offline media). ``open_preview`` starts the preview app
on the timeline in the background.

``--install-config`` writes ``resolve-bridge.json`` (the command that runs this bridge) into the
config folder, or the path given, where the Resolve scripts look for it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from engine.bridge.config import CONFIG_FILE_NAME, install_config
from engine.bridge.connection import ping
from engine.bridge.detect import detect
from engine.bridge.preview import open_preview
from engine.bridge.protocol import (
    REPLY_FORMATS,
    format_reply,
    parse_request,
    read_clip_keys,
    read_disabled,
    read_flag,
    read_mapping,
    read_text,
    read_timeline_path,
    read_timeout,
)
from engine.bridge.render import render
from engine.bridge.stopping import stop_on_terminate
from engine.errors import ChronoscopeError, UnsupportedOptionError

NAME = "bridge"
HELP = "JSON request on stdin, JSON reply on stdout: the way Resolve scripts reach the engine"
DESCRIPTION = """\
Reads one JSON request from stdin and writes one reply to stdout: the bridge that DaVinci
Resolve's scripts (Python or Lua, without Chronoscope's packages) use to reach the engine. The
engine is started on demand. Operations: ping, detect, render, open_preview (see the module
documentation or plugins/davinci_resolve/README.md for the fields).

examples:
  echo '{"op": "ping"}' | chronoscope bridge
  echo '{"op": "detect", "timeline": "cut.otio"}' | chronoscope bridge
  echo '{"op": "detect", "timeline": "cut.otio"}' | chronoscope bridge --reply lua
  chronoscope bridge --install-config
"""

log = logging.getLogger(__name__)

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reply", choices=REPLY_FORMATS, default="json", help="reply as JSON (default) or as a Lua chunk"
    )
    parser.add_argument(
        "--install-config",
        nargs="?",
        const="",
        metavar="PATH",
        help=f"write {CONFIG_FILE_NAME} (default: in the config folder) naming this bridge's command; exit",
    )


def run(args: argparse.Namespace) -> int:
    if args.install_config is not None:
        path = install_config(Path(args.install_config) if args.install_config else None)
        print(path)
        return 0
    previous = stop_on_terminate()
    try:
        request = parse_request(sys.stdin.read())
        reply = {"ok": True, "op": request["op"], **handle(request)}
        # a detect stopped part way answers what it had: still the interrupted exit status
        status = EXIT_INTERRUPTED if reply.get("stopped") else 0
    except ChronoscopeError as error:
        log.debug("bridge request failed", exc_info=True)
        reply = {"ok": False, "error": {"type": type(error).__name__, "message": str(error)}}
        status = EXIT_ERROR
    except KeyboardInterrupt:
        # Ctrl-C, or the script that called us gave up (SIGTERM): an engine job being waited for
        # was cancelled by the client; the caller still gets its one reply
        message = "stopped before it finished; its engine job was cancelled"
        reply = {"ok": False, "error": {"type": "Interrupted", "message": message}}
        status = EXIT_INTERRUPTED
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    try:
        text = format_reply(reply, args.reply)
    except ChronoscopeError as error:
        # the reply cannot be written in the script's language (a NaN for Lua): still one reply
        log.debug("bridge reply cannot be formatted", exc_info=True)
        reply = {"ok": False, "error": {"type": type(error).__name__, "message": str(error)}}
        text, status = format_reply(reply, args.reply), EXIT_ERROR
    sys.stdout.write(text)
    sys.stdout.flush()
    return status


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """Do one bridge operation; the fields of the reply beside ``ok`` and ``op``."""
    op = request["op"]
    if op == "ping":
        return ping(start_engine=read_flag(request, "start_engine", True))
    if op == "detect":
        return detect(
            read_timeline_path(request),
            results=read_mapping(request, "results"),
            start_engine=read_flag(request, "start_engine", True),
            timeout_s=read_timeout(request),
            disabled=read_disabled(request.get("disabled")),
        )
    if op == "render":
        output_dir = request.get("output_dir")
        if output_dir is not None and not isinstance(output_dir, str):
            raise UnsupportedOptionError(f"render output_dir must be a folder path, got {output_dir!r}")
        return render(
            read_timeline_path(request),
            output_dir=Path(output_dir) if output_dir else None,
            marked=set(read_clip_keys(request.get("clips"))),
            flag=read_text(request, "flag"),
            start_engine=read_flag(request, "start_engine", True),
            timeout_s=read_timeout(request),
            disabled=read_disabled(request.get("disabled")),
        )
    screenshot = request.get("screenshot")
    return open_preview(
        read_timeline_path(request),
        screenshot=Path(screenshot) if isinstance(screenshot, str) and screenshot else None,
        wait=read_flag(request, "wait", False),
        timeout_s=read_timeout(request),
    )
