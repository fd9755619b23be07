"""What the three Chronoscope scripts for DaVinci Resolve share. Standard library only.

Resolve runs a script from Workspace > Scripts in the user's own Python, which has none of
Chronoscope's packages. So the scripts talk to Resolve through its scripting API and to
Chronoscope through ``chronoscope bridge``: one JSON request on stdin, one JSON reply on stdout.

Where the bridge command is found, first hit wins:

1. ``$CHRONOSCOPE_BRIDGE_CONFIG``: a ``resolve-bridge.json`` file;
2. ``resolve-bridge.json`` beside this module (the installer may write it there);
3. ``resolve-bridge.json`` in Chronoscope's config folder (``chronoscope bridge --install-config``
   writes it): ``$CHRONOSCOPE_HOME/config``, else ``~/.config/Chronoscope`` (Linux, or
   ``$XDG_CONFIG_HOME/Chronoscope``), ``~/Library/Application Support/Chronoscope`` (macOS),
   ``%LOCALAPPDATA%\\Chronoscope`` (Windows);
4. ``chronoscope`` on PATH.

``resolve-bridge.json``::

    {"version": 1, "command": ["/path/to/venv/bin/python", "-m", "engine.cli"],
     "render_dir": "/where/renders/go", "render_flag": "Purple", "start_engine": true,
     "timeout_s": 600}

Only ``command`` is needed. ``timeout_s`` is the longest wait for one engine job: it goes to the
bridge with every request, and the bridge cancels a job that runs longer and goes on with the next.
A long timeline (many jobs) is never cut short as a whole: the script stops the bridge only when
it has said nothing for ``timeout_s`` plus ``SILENCE_MARGIN_S`` (the bridge logs a line as each job
starts), and keeps what it had finished. Progress goes to Resolve's console (Workspace > Console);
the result also appears in a small window where the edition offers Fusion's UIManager. Every
failure a user can fix (no Resolve, no project, no timeline, no installation, no engine, nothing
to do) is one clear message, never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

PROTOCOL_VERSION = 1
CONFIG_FILE_NAME = "resolve-bridge.json"
MARKER_TAG = '{"chronoscope":'
MARKER_NOTE_TAG = "Chronoscope marker: "
"""How the last line of our markers' notes starts: Resolve's OTIO keeps notes, not customData."""
MARKER_COLORS = ("Blue", "Green", "Red", "Yellow", "Cream")
"""The colours the speed classes give markers (engine/bridge/speed_classes.py)."""
BIN_NAME = "Chronoscope"
DEFAULT_RENDER_FLAG = "Purple"
DEFAULT_TIMEOUT_S = 600.0
MAX_TIMEOUT_S = 2592000  # 30 days: the bridge refuses more
SILENCE_MARGIN_S = 120.0
"""Beyond one job's ``timeout_s``: time for the bridge to start the engine (up to 60 s) and itself."""
POLL_S = 1.0
TITLES = {
    "detect": "Chronoscope - Detect Speed",
    "render": "Chronoscope - Render Slow Motion",
    "preview": "Chronoscope - Open in Preview",
}
HERE = os.path.dirname(os.path.abspath(__file__))


class ScriptError(Exception):
    """A problem the user can fix; its message is all they see."""


class Console:
    """Lines for Resolve's console (printed as they come) and for the closing window."""

    def __init__(self, title, stream=None):
        self.title = title
        self.stream = stream or sys.stdout
        self.lines = []

    def say(self, text):
        self.lines.append(text)
        self.stream.write(f"{self.title}: {text}\n")
        self.stream.flush()

    def echo(self, text):
        """A progress line from the bridge: console only."""
        self.stream.write(f"  {text}\n")
        self.stream.flush()


# ---------------------------------------------------------------------- installation


def user_config_dir(env=None, platform=None):
    """Chronoscope's config folder as the engine's platformdirs computes it, without platformdirs."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    if env.get("CHRONOSCOPE_HOME"):
        return os.path.join(env["CHRONOSCOPE_HOME"], "config")
    home = os.path.expanduser("~")
    if platform == "win32":
        base = env.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        return os.path.join(base, "Chronoscope")
    if platform == "darwin":
        return os.path.join(home, "Library", "Application Support", "Chronoscope")
    base = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    return os.path.join(base, "Chronoscope")


def config_candidates(env=None):
    env = os.environ if env is None else env
    paths = []
    if env.get("CHRONOSCOPE_BRIDGE_CONFIG"):
        paths.append(env["CHRONOSCOPE_BRIDGE_CONFIG"])
    paths.append(os.path.join(HERE, CONFIG_FILE_NAME))
    paths.append(os.path.join(user_config_dir(env), CONFIG_FILE_NAME))
    return paths


def load_settings(env=None):
    """The first readable ``resolve-bridge.json`` as a dict with ``command`` checked, plus its path."""
    env = os.environ if env is None else env
    looked = []
    for path in config_candidates(env):
        looked.append(path)
        if not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                settings = json.load(handle)
        except (OSError, ValueError) as error:
            raise ScriptError(f"{path} cannot be read ({error}); re-run the Chronoscope installer") from None
        command = settings.get("command") if isinstance(settings, dict) else None
        if isinstance(command, str):
            command = [command]
        if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
            raise ScriptError(
                f'{path} names no command (expected "command": ["/path/to/chronoscope"]); '
                "re-run the Chronoscope installer"
            )
        if not (os.path.isfile(command[0]) or shutil.which(command[0], path=env.get("PATH"))):
            raise ScriptError(
                f"Chronoscope is not installed where {path} says: {command[0]} does not exist; "
                "re-run the Chronoscope installer"
            )
        settings["command"] = command
        settings["config_path"] = path
        return settings
    found = shutil.which("chronoscope", path=env.get("PATH"))
    if found:
        return {"command": [found], "config_path": None}
    raise ScriptError(
        "Chronoscope is not installed, or this script cannot find it: no "
        f"{CONFIG_FILE_NAME} in {', '.join(looked)}, and no `chronoscope` command on PATH. Install "
        "Chronoscope, or run `chronoscope bridge --install-config` in its environment."
    )


# ---------------------------------------------------------------------- bridge


class BridgeError(ScriptError):
    """The bridge answered with an error; ``kind`` is the Chronoscope error class name."""

    def __init__(self, message, kind=""):
        super().__init__(message)
        self.kind = kind


def stop_bridge(child, grace_s=10.0):
    """Ask the bridge to stop (it cancels its engine job and answers), then force it. On Windows,
    where terminating a process cannot be caught, the ask is a Ctrl-Break to its process group."""
    if sys.platform == "win32":
        child.send_signal(signal.CTRL_BREAK_EVENT)
    else:
        child.terminate()
    try:
        child.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def job_timeout(settings, timeout_s=None):
    """The longest wait for one engine job, in seconds: ``timeout_s``, else the config's."""
    value = timeout_s if timeout_s is not None else settings.get("timeout_s")
    if value is None:
        return DEFAULT_TIMEOUT_S
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= MAX_TIMEOUT_S:
        return float(value)
    where = settings.get("config_path") or CONFIG_FILE_NAME
    raise ScriptError(
        f"timeout_s in {where} must be a number of seconds above 0 and at most {MAX_TIMEOUT_S} "
        f"(30 days; e.g. 600), not {value!r}"
    )


def call_bridge(settings, request, console=None, timeout_s=None):
    """Send one request to ``chronoscope bridge``; return the reply, or raise ``BridgeError``.

    ``timeout_s`` (else the config's) goes in the request: the bridge waits that long for each
    engine job. The bridge is stopped only when it says nothing for ``timeout_s`` plus
    ``SILENCE_MARGIN_S``; a detect stopped so answers with the clips it had finished (its reply's
    ``stopped`` says so), which are kept."""
    command = list(settings["command"]) + ["bridge"]
    timeout_s = job_timeout(settings, timeout_s)
    request = dict(request, protocol=PROTOCOL_VERSION)
    request.setdefault("timeout_s", timeout_s)
    if "start_engine" in settings and "start_engine" not in request:
        request["start_engine"] = bool(settings["start_engine"])
    options = {}
    if sys.platform == "win32":  # its own process group, so that Ctrl-Break reaches only the bridge
        options["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0) | getattr(
            subprocess, "CREATE_NEW_PROCESS_GROUP", 0
        )
    try:
        child = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **options,
        )
    except OSError as error:
        raise ScriptError(
            f"Chronoscope could not be started ({' '.join(command)}): {error}; "
            "re-run the Chronoscope installer"
        ) from None
    errors = []
    heard = [time.monotonic()]

    def pump():
        for raw in child.stderr:
            heard[0] = time.monotonic()
            line = raw.decode("utf-8", "replace").rstrip()
            errors.append(line)
            if console is not None and line:
                console.echo(line)

    answer = []

    def collect():
        answer.append(child.stdout.read())

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    collector = threading.Thread(target=collect, daemon=True)
    collector.start()
    try:
        child.stdin.write(json.dumps(request).encode("utf-8"))
        child.stdin.close()
    except OSError as error:
        errors.append(f"the bridge closed its input early: {error}")
    silence_s = timeout_s + SILENCE_MARGIN_S
    silent = False
    while True:
        try:
            status = child.wait(timeout=min(POLL_S, silence_s))
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() - heard[0] > silence_s:
                silent = True
                stop_bridge(child)
                status = child.returncode
                break
    collector.join(timeout=5)
    reader.join(timeout=5)
    output = answer[0] if answer else b""
    stopped_note = (
        f"Chronoscope said nothing for {silence_s:g} s, longer than one engine job may take "
        f"(timeout_s {timeout_s:g} s); it was stopped and its engine job cancelled"
    )
    try:
        reply = json.loads(output.decode("utf-8"))
    except ValueError:
        if silent:
            raise ScriptError(stopped_note) from None
        tail = "\n".join(errors[-6:])
        raise ScriptError(
            f"Chronoscope's bridge failed (exit status {status}) without an answer:\n{tail}"
        ) from None
    if not reply.get("ok"):
        if silent:
            raise ScriptError(stopped_note)
        error = reply.get("error") or {}
        raise BridgeError(error.get("message") or "Chronoscope reported an error", error.get("type", ""))
    if silent and reply.get("stopped"):
        reply["stopped"] = stopped_note
    return reply


# ---------------------------------------------------------------------- Resolve


def get_resolve(namespace=None):
    """The ``resolve`` object: predefined inside Resolve, else from ``DaVinciResolveScript``."""
    namespace = namespace or {}
    resolve = namespace.get("resolve")
    if resolve is None:
        try:
            import DaVinciResolveScript as script_module
        except ImportError:
            raise ScriptError(
                "DaVinci Resolve's scripting module is not reachable: run this from Workspace > Scripts "
                "inside Resolve, or set RESOLVE_SCRIPT_API and PYTHONPATH as Resolve's scripting README says"
            ) from None
        resolve = script_module.scriptapp("Resolve")
    if resolve is None:
        raise ScriptError(
            "DaVinci Resolve is not running, or it refuses scripts (Preferences > General > "
            "External scripting using)"
        )
    return resolve


def current_timeline(resolve):
    manager = resolve.GetProjectManager()
    project = manager.GetCurrentProject() if manager else None
    if not project:
        raise ScriptError("no project is open in Resolve; open one and run the script again")
    timeline = project.GetCurrentTimeline()
    if not timeline:
        raise ScriptError(f"project {project.GetName()!r} has no timeline open; open one and run again")
    return project, timeline


def export_timeline(resolve, timeline, folder):
    """Export ``timeline`` as OTIO into ``folder``; return the file's path."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in timeline.GetName()) or "timeline"
    path = os.path.join(folder, f"{name}.otio")
    export_type = getattr(resolve, "EXPORT_OTIO", None)
    if export_type is None:
        raise ScriptError("this Resolve cannot export OTIO (EXPORT_OTIO needs Resolve 18.5 or later)")
    if not timeline.Export(path, export_type) or not os.path.isfile(path):
        raise ScriptError(f"Resolve could not export timeline {timeline.GetName()!r} as OTIO to {path}")
    return path


def _own_custom_data(custom_data):
    if not isinstance(custom_data, str) or not custom_data.startswith(MARKER_TAG):
        return False
    try:
        return isinstance(json.loads(custom_data), dict)
    except ValueError:
        return False


def _last_line(note):
    return note.rsplit("\n", 1)[-1] if isinstance(note, str) else ""


def is_own_marker(custom_data, note=None, color=None):
    """Whether a marker is one this script made: its customData is the JSON object the bridge
    wrote, or, where Resolve dropped the customData (a timeline rebuilt from OTIO, as Render Slow
    Motion's new timeline is), its note ends with the line the bridge writes
    (``MARKER_NOTE_TAG``) and its colour is one a speed class gets (``MARKER_COLORS``)."""
    if _own_custom_data(custom_data):
        return True
    return color in MARKER_COLORS and _last_line(note).startswith(MARKER_NOTE_TAG)


def _replaced(info, clips):
    """Whether a marker of ours (``info``, as ``GetMarkers`` gives it) is replaced: it belongs to a
    clip detected this time, or to none of the clips listed (the clip is gone or has moved).
    Markers of clips listed but not analysed this time (failed, offline, disabled, stopped) are
    kept. A marker belongs to a clip when its customData starts with the clip's ``marker_key``,
    or, without our customData, when its note's last line is the clip's ``note_key``; as the Lua
    script tells them."""
    custom_data = info.get("customData")
    if _own_custom_data(custom_data):
        owners = [c for c in clips if c.get("marker_key") and custom_data.startswith(c["marker_key"])]
    else:
        last = _last_line(info.get("note"))
        owners = [c for c in clips if c.get("note_key") and last == c["note_key"]]
    if any(c.get("status") == "detected" for c in owners):
        return True
    return not owners


def apply_markers(timeline, markers, clips):
    """Put ``markers`` (a detect reply's) on ``timeline``, replacing this script's earlier markers
    of the clips detected this time (``clips``: the reply's per-clip report); an editor's markers
    are never touched, and nor are ours of clips not analysed this time.

    Resolve keeps one marker per frame: where a marker already sits on a segment's first frame, the
    new one moves to the next free frame of the segment. Returns (removed, added, skipped names,
    kept), kept counting our earlier markers left in place.
    """
    removed = kept = 0
    for frame, info in sorted((timeline.GetMarkers() or {}).items()):
        info = info or {}
        if not is_own_marker(info.get("customData"), info.get("note"), info.get("color")):
            continue
        if not _replaced(info, clips):
            kept += 1
        elif timeline.DeleteMarkerAtFrame(int(frame)):
            removed += 1
    added, skipped = 0, []
    for marker in markers:
        frame, duration = int(marker["frame"]), int(marker["duration"])
        for shift in range(duration):
            if timeline.AddMarker(
                frame + shift,
                marker["color"],
                marker["name"],
                marker["note"],
                duration - shift,
                marker["custom_data"],
            ):
                added += 1
                break
        else:
            skipped.append(f"{marker['name']} at frame {frame}")
    return removed, added, skipped, kept


def video_items(timeline):
    for index in range(1, int(timeline.GetTrackCount("video") or 0) + 1):
        for item in timeline.GetItemListInTrack("video", index) or []:
            yield index, item


def flagged_clips(timeline, flag):
    """Clips the user flagged for a Chronoscope render, as the bridge names clips."""
    start = int(timeline.GetStartFrame())
    return [
        {"track": f"V{index}", "record_start_frame": int(item.GetStart()) - start}
        for index, item in video_items(timeline)
        if flag in (item.GetFlagList() or [])
    ]


def _ask(owner, method, *args):
    """``owner.method(*args)``, or None where this Resolve lacks the method."""
    call = getattr(owner, method, None)
    return call(*args) if callable(call) else None


def disabled_clips(timeline):
    """Video clips that do not play, as the bridge names clips, with ``what`` is off: the clip, or
    its whole track (``GetIsTrackEnabled``, ``GetClipEnabled``)."""
    start = int(timeline.GetStartFrame())
    found = []
    for index in range(1, int(timeline.GetTrackCount("video") or 0) + 1):
        track_off = _ask(timeline, "GetIsTrackEnabled", "video", index) is False
        for item in timeline.GetItemListInTrack("video", index) or []:
            if track_off or _ask(item, "GetClipEnabled") is False:
                found.append(
                    {
                        "track": f"V{index}",
                        "record_start_frame": int(item.GetStart()) - start,
                        "what": "track" if track_off else "clip",
                    }
                )
    return found


FOLDER_NAME_MAX_BYTES = 80
_NOT_KEPT = re.compile(r"[^A-Za-z0-9_\-\u0080-\U0010ffff]+")
_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{port}{n}" for port in ("COM", "LPT") for n in range(1, 10)}


def folder_name(name, fallback):
    """A project's or timeline's name as a folder name, readable and safe on every file system:
    ASCII letters and digits, ``-``, ``_`` and every character beyond ASCII are kept, each run of
    anything else becomes one ``_``, no ``_`` at either end, at most 80 bytes of UTF-8 (cut between
    characters), a ``_`` after a name Windows keeps for a device, ``fallback`` when nothing is
    left. The Lua script and the bridge (engine/bridge/folders.py) apply the same rule."""
    kept = _NOT_KEPT.sub("_", str(name)).strip("_")
    kept = kept.encode("utf-8", "surrogatepass")[:FOLDER_NAME_MAX_BYTES].decode("utf-8", "ignore").rstrip("_")
    if not kept:
        return fallback
    return kept + "_" if kept.upper() in _RESERVED else kept


def render_output_dir(settings, project, timeline):
    """The one folder every render of this project's timeline goes to, so that a second run
    resumes the first: ``<render_dir>/<project>/<timeline>``; without a ``render_dir``, the
    relative ``<project>/<timeline>``, which the bridge puts in Chronoscope's data folder
    (``resolve-renders``)."""
    relative = os.path.join(
        folder_name(project.GetName(), "project"), folder_name(timeline.GetName(), "timeline")
    )
    render_dir = settings.get("render_dir")
    return os.path.join(render_dir, relative) if render_dir else relative


def _path_key(path):
    return os.path.normcase(os.path.normpath(str(path)))


def pool_items_by_path(media_pool):
    """The media pool's items by the file they hold (their "File Path" clip property), the first
    of each file in folder order."""
    found = {}
    for folder in all_folders(media_pool.GetRootFolder()):
        for item in folder.GetClipList() or []:
            properties = item.GetClipProperty() or {}  # all of them: naming one is deprecated (Resolve 20)
            path = properties.get("File Path") if isinstance(properties, dict) else None
            if path:
                found.setdefault(_path_key(path), item)
    return found


def chronoscope_bin(media_pool):
    root = media_pool.GetRootFolder()
    for folder in root.GetSubFolderList() or []:
        if folder.GetName() == BIN_NAME:
            return folder
    folder = media_pool.AddSubFolder(root, BIN_NAME)
    if not folder:
        raise ScriptError(f"Resolve could not create the {BIN_NAME!r} bin in the media pool")
    return folder


def all_folders(folder):
    found = [folder]
    for sub in folder.GetSubFolderList() or []:
        found.extend(all_folders(sub))
    return found


def unique_timeline_name(project, wanted):
    names = set()
    for index in range(1, int(project.GetTimelineCount() or 0) + 1):
        timeline = project.GetTimelineByIndex(index)
        if timeline:
            names.add(timeline.GetName())
    name, number = wanted, 2
    while name in names:
        name = f"{wanted[:-1]} {number})" if wanted.endswith(")") else f"{wanted} {number}"
        number += 1
    return name


# ---------------------------------------------------------------------- workflows


def detect_workflow(resolve, settings, console):
    project, timeline = current_timeline(resolve)
    console.say(f"analysing timeline {timeline.GetName()!r}")
    folder = tempfile.mkdtemp(prefix="chronoscope-resolve-")
    try:
        path = export_timeline(resolve, timeline, folder)
        request = {"op": "detect", "timeline": path, "disabled": disabled_clips(timeline)}
        reply = call_bridge(settings, request, console)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    clips = reply.get("clips", [])
    for clip in clips:
        said = clip.get("summary") or clip.get("message") or clip.get("status")
        console.say(f"{clip['track']} {clip['clip']}: {said}")
    if reply.get("stopped"):
        done = sum(1 for clip in clips if clip.get("status") == "detected")
        console.say(f"{reply['stopped']}; the {done} clips analysed before that get their markers")
    removed, added, skipped, kept = apply_markers(timeline, reply.get("markers", []), clips)
    line = f"{count(added, 'marker')} added, {removed} earlier Chronoscope "
    line += f"{plural(removed, 'marker')} replaced"
    if kept:
        line += f", {kept} kept (their clips were not analysed this time)"
    console.say(line)
    for name in skipped:
        console.say(f"no free frame for marker {name}")
    return reply


def render_workflow(resolve, settings, console):
    project, timeline = current_timeline(resolve)
    flag = settings.get("render_flag") or DEFAULT_RENDER_FLAG
    console.say(f"rendering slow motion for timeline {timeline.GetName()!r}")
    folder = tempfile.mkdtemp(prefix="chronoscope-resolve-")
    try:
        path = export_timeline(resolve, timeline, folder)
        request = {
            "op": "render",
            "timeline": path,
            "clips": flagged_clips(timeline, flag),
            "flag": flag,
            "disabled": disabled_clips(timeline),
        }
        request["output_dir"] = render_output_dir(settings, project, timeline)
        reply = call_bridge(settings, request, console)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return import_render(project, timeline, reply, console)


def import_render(project, timeline, reply, console):
    """Bring a render into the project: media into the Chronoscope bin (a file already in the
    media pool, from an earlier run, is used as it is, not imported again), then a new timeline
    "<name> (Chronoscope)" from the returned OTIO. The original timeline is not touched."""
    media_pool = project.GetMediaPool()
    previous = media_pool.GetCurrentFolder()
    target = chronoscope_bin(media_pool)
    media_pool.SetCurrentFolder(target)
    media = list(reply.get("media", []))
    known = pool_items_by_path(media_pool)
    new = [path for path in media if _path_key(path) not in known]
    try:
        imported = (media_pool.ImportMedia(new) or []) if new else []
        if len(imported) < len(new):
            console.say(f"Resolve imported {len(imported)} of {len(new)} rendered files")
        if len(new) < len(media):
            console.say(f"{len(media) - len(new)} rendered files were in the media pool already")
        name = unique_timeline_name(project, f"{timeline.GetName()} (Chronoscope)")
        created = media_pool.ImportTimelineFromFile(
            reply["timeline"],
            {
                "timelineName": name,
                "importSourceClips": False,
                "sourceClipsFolders": all_folders(media_pool.GetRootFolder()),
            },
        )
    finally:
        if previous:
            media_pool.SetCurrentFolder(previous)
    if not created:
        raise ScriptError(
            f"Resolve could not import the rendered timeline {reply['timeline']}; import it with "
            "File > Import > Timeline"
        )
    project.SetCurrentTimeline(created)
    console.say(
        reply.get("summary") or f"{len(reply.get('clips', []))} clips rendered into {reply.get('output_dir')}"
    )
    for clip in reply.get("not_rendered", []):
        console.say(f"not rendered: {clip.get('track')} {clip.get('clip')}: {clip.get('reason')}")
    console.say(f"new timeline {created.GetName()!r}; media in the {BIN_NAME!r} bin")
    return created


def plural(number, noun):
    """``noun`` as ``number`` of them are said: "marker", "markers"."""
    return noun if number == 1 else noun + "s"


def count(number, noun):
    """"1 marker", "3 markers", "0 markers"."""
    return f"{number} {plural(number, noun)}"


def preview_workflow(resolve, settings, console):
    project, timeline = current_timeline(resolve)
    folder = os.path.join(tempfile.gettempdir(), "chronoscope-resolve")
    os.makedirs(folder, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    subfolder = tempfile.mkdtemp(prefix=f"{stamp}-", dir=folder)
    path = export_timeline(resolve, timeline, subfolder)
    request = {"op": "open_preview", "timeline": path}
    if settings.get("screenshot"):
        request.update(screenshot=settings["screenshot"], wait=True)
    reply = call_bridge(settings, request, console)
    console.say(f"preview app started on {timeline.GetName()!r} (pid {reply.get('pid')})")
    return reply


WORKFLOWS = {"detect": detect_workflow, "render": render_workflow, "preview": preview_workflow}


def show_window(namespace, title, lines):
    """A small report window through Fusion's UIManager, where the edition offers one."""
    fusion, bmd = namespace.get("fusion"), namespace.get("bmd")
    if fusion is None or bmd is None or not hasattr(fusion, "UIManager"):
        return False
    ui = fusion.UIManager
    dispatcher = bmd.UIDispatcher(ui)
    window = dispatcher.AddWindow(
        {"ID": "ChronoscopeReport", "WindowTitle": title, "Geometry": [200, 200, 560, 280]},
        ui.VGroup(
            [
                ui.TextEdit({"ID": "Report", "ReadOnly": True, "PlainText": "\n".join(lines)}),
                ui.Button({"ID": "Close", "Text": "Close"}),
            ]
        ),
    )

    def close(_event):
        dispatcher.ExitLoop()

    window.On.Close.Clicked = close
    window.On.ChronoscopeReport.Close = close
    window.Show()
    dispatcher.RunLoop()
    window.Hide()
    return True


def run(action, namespace=None, stream=None, env=None):
    """Run one workflow as a Resolve script; return 0 on success, 1 with a clear message otherwise."""
    namespace = namespace or {}
    console = Console(TITLES[action], stream)
    status = 0
    try:
        settings = load_settings(env)
        resolve = get_resolve(namespace)
        WORKFLOWS[action](resolve, settings, console)
    except ScriptError as error:
        console.say(f"error: {error}")
        status = 1
    if settings_allow_window(namespace):
        show_window(namespace, console.title, console.lines)
    return status


def settings_allow_window(namespace):
    return bool(namespace.get("fusion")) and os.environ.get("CHRONOSCOPE_NO_WINDOW") is None
