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
``status``, a ``summary`` line for the console, and its ``marker_key``) plus the markers to draw:
one per detected segment, at ``frame`` counted in timeline frames from the timeline's first
frame, as Resolve's ``Timeline.AddMarker`` takes them. Segment times are seconds from the first
frame of the media file; they are mapped through the clip's source range and speed onto the
timeline, and parts outside the clip's used range are left out. A clip with a speed ramp is
analysed all the same and gets one marker over its whole length. Disabled clips, compound
clips and offline media are listed with the reason. A marker's ``custom_data`` is JSON starting
with its clip's ``marker_key`` (which starts with ``MARKER_TAG``): that is how a script
recognises its own markers, and which clip each belongs to.

``render`` sends the timeline to the engine's ``render_timeline`` with the clips to render (every
clip slower than 100 %, plus those named in ``clips``) and answers with the new timeline file,
the rendered media, and ``not_rendered``: each clip left as it was, with the reason (a speed
ramp, a compound clip, a disabled clip, offline media). ``open_preview`` starts the preview app
on the timeline in the background.

``--install-config`` writes ``resolve-bridge.json`` (the command that runs this bridge) into the
config folder, or the path given, where the Resolve scripts look for it.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import logging
import math
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from engine import __version__
from engine.errors import (
    CapabilityNotAvailableError,
    ChronoscopeError,
    EngineNotRunningError,
    InvalidTimeWarpError,
    MediaNotFoundError,
    NothingToDoError,
    TimelineError,
    TimelineNotFoundError,
    UnsupportedOptionError,
)
from engine.fsutil import write_text_atomic
from engine.places import places
from engine.speed_report import analysis_note_lines, audio_summary_lines
from engine.timeline.rates import exact_frames

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

PROTOCOL_VERSION = 1
CONFIG_FILE_NAME = "resolve-bridge.json"
MARKER_TAG = '{"chronoscope":'
OPERATIONS = ("ping", "detect", "render", "open_preview")
REPLY_FORMATS = ("json", "lua")
DEFAULT_JOB_TIMEOUT_S = 600.0
ENGINE_START_TIMEOUT_S = 60.0
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130

CLASS_COLORS = {
    "realtime": "Blue",
    "slowmo": "Green",
    "synthetic_slowmo": "Red",
    "sped_up": "Yellow",
    "still": "Cream",
}
CLASS_NAMES = {
    "realtime": "Real time",
    "slowmo": "Slow motion",
    "synthetic_slowmo": "Fake slow motion",
    "sped_up": "Sped up",
    "still": "Still (cannot tell)",
}
REALTIME_LOG2 = 0.5
"""Speeds within a factor 2 ** 0.5 of 1 look like real time (the detector's own band)."""
STANDARD_RATES = tuple(
    Fraction(rate)
    for rate in (
        "24000/1001",
        24,
        25,
        "30000/1001",
        30,
        48,
        50,
        "60000/1001",
        60,
        90,
        96,
        100,
        "120000/1001",
        120,
        150,
        180,
        200,
        240,
        300,
        480,
        960,
        1000,
    )
)
"""Frame rates shown as such (29.97, not 29.970); other rates are rounded for people."""


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
    previous = _stop_on_terminate()
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


_STOPPING = threading.Event()


def _stop_on_terminate():
    """Make SIGTERM stop the bridge like Ctrl-C (so it cancels its engine job and still answers);
    returns the handlers it replaced, by signal. The stop is also kept in
    ``_STOPPING``: an interrupt that lands as a job finishes gives that job's result, and the next
    step must not start another job (``_check_stopping``)."""
    _STOPPING.clear()

    def interrupt(signum, frame):
        _STOPPING.set()
        raise KeyboardInterrupt

    replaced = {}
    # SIGBREAK: what the Resolve scripts send on Windows (Ctrl-Break), where SIGTERM cannot be caught
    for number in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGBREAK", None)):
        if number is None:
            continue
        try:
            replaced[number] = signal.signal(number, interrupt)
        except (ValueError, OSError):  # not the main thread, or no such signal here
            pass
    return replaced


def _check_stopping() -> None:
    """Before starting another engine job: stop here if the bridge was told to stop."""
    if _STOPPING.is_set():
        raise KeyboardInterrupt


# ---------------------------------------------------------------------- request and reply


def parse_request(text: str) -> dict[str, Any]:
    """The request object; ``UnsupportedOptionError`` naming what is wrong with it."""
    try:
        request = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise UnsupportedOptionError(
            f'the bridge request is not JSON ({error}); send one object such as {{"op": "ping"}}'
        ) from None
    except RecursionError:
        raise UnsupportedOptionError(
            "the bridge request nests arrays and objects too deeply to read; a request needs a few levels"
        ) from None
    if not isinstance(request, dict):
        raise UnsupportedOptionError(
            f"the bridge request must be a JSON object, got {type(request).__name__}"
        )
    protocol = request.get("protocol", PROTOCOL_VERSION)
    if isinstance(protocol, bool) or protocol != PROTOCOL_VERSION:
        raise UnsupportedOptionError(
            f"the script speaks bridge protocol {protocol!r}, this Chronoscope speaks {PROTOCOL_VERSION}; "
            "reinstall the Resolve scripts from this Chronoscope (its installer copies matching ones)"
        )
    op = request.get("op")
    if op not in OPERATIONS:
        raise UnsupportedOptionError(
            f"bridge operation {op!r} is not known; operations: {', '.join(OPERATIONS)}"
        )
    return request


def _refuse_constant(name: str) -> Any:
    raise UnsupportedOptionError(f"the bridge request holds {name}, which is not a JSON number")


def format_reply(reply: dict[str, Any], reply_format: str = "json") -> str:
    """The reply as JSON or as a Lua expression; ``UnsupportedOptionError`` for NaN or infinity,
    which neither can carry."""
    if reply_format == "lua":
        return "return " + lua_literal(reply) + "\n"
    try:
        return json.dumps(reply, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError as error:
        raise UnsupportedOptionError(
            f"the reply holds NaN or infinity, which JSON cannot carry ({error})"
        ) from None


def lua_literal(value: Any) -> str:
    """``value`` (plain JSON data) as a Lua 5.1+ expression; strings escaped byte by byte."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnsupportedOptionError(f"the reply holds {value}, which Lua cannot read back")
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(_lua_byte(byte) for byte in value.encode("utf-8")) + '"'
    if isinstance(value, (list, tuple)):
        return "{" + ", ".join(lua_literal(item) for item in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_literal(str(k))}] = {lua_literal(v)}" for k, v in value.items()) + "}"
    raise UnsupportedOptionError(f"the reply holds a {type(value).__name__}, which Lua cannot read back")


def _lua_byte(byte: int) -> str:
    if 32 <= byte < 127 and byte not in (34, 92):
        return chr(byte)
    return f"\\{byte:03d}"


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """Do one bridge operation; the fields of the reply beside ``ok`` and ``op``."""
    op = request["op"]
    if op == "ping":
        return ping(start_engine=_flag(request, "start_engine", True))
    if op == "detect":
        return detect(
            _timeline_path(request),
            results=_mapping(request, "results"),
            start_engine=_flag(request, "start_engine", True),
            timeout_s=_timeout(request),
            disabled=_disabled(request.get("disabled")),
        )
    if op == "render":
        output_dir = request.get("output_dir")
        if output_dir is not None and not isinstance(output_dir, str):
            raise UnsupportedOptionError(f"render output_dir must be a folder path, got {output_dir!r}")
        return render(
            _timeline_path(request),
            output_dir=Path(output_dir) if output_dir else None,
            marked=set(_clip_keys(request.get("clips"))),
            flag=str(request.get("flag") or ""),
            start_engine=_flag(request, "start_engine", True),
            timeout_s=_timeout(request),
            disabled=_disabled(request.get("disabled")),
        )
    screenshot = request.get("screenshot")
    return open_preview(
        _timeline_path(request),
        screenshot=Path(screenshot) if isinstance(screenshot, str) and screenshot else None,
        wait=_flag(request, "wait", False),
        timeout_s=_timeout(request),
    )


def _flag(request: dict[str, Any], key: str, default: bool) -> bool:
    value = request.get(key, default)
    if not isinstance(value, bool):
        raise UnsupportedOptionError(f"{key} must be true or false, got {value!r}")
    return value


def _timeout(request: dict[str, Any]) -> float:
    value = request.get("timeout_s", DEFAULT_JOB_TIMEOUT_S)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise UnsupportedOptionError(f"timeout_s must be a number of seconds above 0, got {value!r}")
    return float(value)


def _mapping(request: dict[str, Any], key: str) -> dict[str, Any]:
    value = request.get(key) or {}
    if not isinstance(value, dict):
        raise UnsupportedOptionError(
            f"{key} must be an object keyed by media path, got {type(value).__name__}"
        )
    return value


def _timeline_path(request: dict[str, Any]) -> Path:
    value = request.get("timeline")
    if not isinstance(value, str) or not value:
        raise UnsupportedOptionError(f'{request["op"]} needs "timeline": the path of an exported OTIO file')
    path = Path(value)
    if not path.is_file():
        raise TimelineNotFoundError(f"timeline file not found: {path}")
    return path


def _clip_keys(value: Any, field: str = "clips") -> dict[tuple[str, int], dict[str, Any]]:
    """``[{"track": "V1", "record_start_frame": N}, ...]`` keyed by (track, frame). An empty object
    is an empty list: Lua writes an empty table as ``{}``."""
    if value is None or value == {}:
        return {}
    if not isinstance(value, list):
        raise UnsupportedOptionError(f'{field} must be a list of {{"track": "V1", "record_start_frame": N}}')
    keys = {}
    for item in value:
        track = item.get("track") if isinstance(item, dict) else None
        frame = item.get("record_start_frame") if isinstance(item, dict) else None
        if not isinstance(track, str) or isinstance(frame, bool) or not isinstance(frame, int):
            raise UnsupportedOptionError(
                f'{field}: clip {item!r} is not {{"track": "V1", "record_start_frame": N}} '
                "(N in frames from the timeline start)"
            )
        keys[(track, frame)] = item
    return keys


def _disabled(value: Any) -> dict[tuple[str, int], str]:
    """The script's ``disabled`` list: what is off, by (track, frame): ``"clip"`` or ``"track"``."""
    return {
        key: "track" if item.get("what") == "track" else "clip"
        for key, item in _clip_keys(value, "disabled").items()
    }


# ---------------------------------------------------------------------- config for the scripts


def config_path() -> Path:
    return places().config_dir / CONFIG_FILE_NAME


def bridge_command() -> list[str]:
    """The command line that runs ``chronoscope`` with this interpreter (add ``bridge``)."""
    return [sys.executable, "-m", "engine.cli"]


def install_config(path: Path | None = None) -> Path:
    """Write the scripts' config (``command`` plus any settings already there); return its path."""
    path = Path(path) if path is not None else config_path()
    settings: dict[str, Any] = {}
    if path.is_file():
        try:
            settings = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            log.warning("replacing unreadable %s: %s", path, error)
        if not isinstance(settings, dict):
            settings = {}
    settings.update({"version": PROTOCOL_VERSION, "command": bridge_command()})
    write_text_atomic(path, json.dumps(settings, indent=2) + "\n")
    return path


# ---------------------------------------------------------------------- engine


def _engine(start_engine: bool):
    from engine.server.client import EngineClient, ensure_engine_running
    from engine.server.process import find_running_engine

    if start_engine:
        return ensure_engine_running(timeout_s=ENGINE_START_TIMEOUT_S)
    connection = find_running_engine()
    if connection is None:
        raise EngineNotRunningError(
            "no Chronoscope engine is running; start one with `chronoscope engine start` "
            '(or let the script start it: "start_engine": true)'
        )
    return EngineClient(connection)


def _log_event(event) -> None:
    content = event.content
    if event.msg_type == "progress":
        done, total = content.get("done"), content.get("total")
        counts = f" {done}/{total}" if total else ""
        log.info("progress%s %s", counts, content.get("message", ""))
    elif event.msg_type == "log":
        log.info("engine: %s", content.get("message", content))


def ping(*, start_engine: bool = True) -> dict[str, Any]:
    with _engine(start_engine) as client:
        answer = client.ping()
        info = client.info()
    return {
        "version": __version__,
        "protocol": PROTOCOL_VERSION,
        "python": sys.executable,
        "engine": {"pid": answer.get("pid"), "capabilities": info.get("capabilities", {})},
    }


# ---------------------------------------------------------------------- the timeline's video


@dataclass(frozen=True)
class Marker:
    """A marker for Resolve's ``Timeline.AddMarker``; ``frame`` counts from the timeline's first frame."""

    frame: int
    duration: int
    color: str
    name: str
    note: str
    custom_data: str
    clip: str
    track: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame": self.frame,
            "duration": self.duration,
            "color": self.color,
            "name": self.name,
            "note": self.note,
            "custom_data": self.custom_data,
            "clip": self.clip,
            "track": self.track,
        }


@dataclass(frozen=True)
class NestedItem:
    """A compound clip: a nested Stack (or Track) on a top-level video track. Its clips are not
    listed as segments; ``speed_changes`` says whether it, or anything inside it, changes speed."""

    name: str
    track_label: str
    index_in_track: int
    record_start_frames: Fraction
    speed_changes: bool


@dataclass
class VideoItems:
    """What an exported timeline holds on its video tracks: every clip (enabled or not), the
    compound clips, and which tracks are disabled."""

    timeline: Any
    segments: list
    nested: list[NestedItem]
    disabled_tracks: set[str]


def _video_items(timeline_path: Path) -> VideoItems:
    import opentimelineio as otio

    from engine.timeline import list_segments, read_timeline, timeline_rate

    timeline = read_timeline(timeline_path)
    # compound clips are reported per clip below, with what to do: not also as a bare warning
    quiet = _DropRecords("is nested; its clips are not listed")
    listing_log = logging.getLogger("engine.timeline.segments")
    listing_log.addFilter(quiet)
    try:
        segments = list_segments(timeline, base_dir=timeline_path.parent.absolute(), check_time_warps=False)
    finally:
        listing_log.removeFilter(quiet)
    video = [s for s in segments if s.track_kind == otio.schema.TrackKind.Video]
    rate = timeline_rate(timeline)
    nested: list[NestedItem] = []
    disabled_tracks: set[str] = set()
    number = 0
    for track in timeline.tracks:
        if not isinstance(track, otio.schema.Track) or track.kind != otio.schema.TrackKind.Video:
            continue
        number += 1
        label = f"V{number}"
        if not track.enabled:
            disabled_tracks.add(label)
        position = Fraction(0)
        for index, item in enumerate(track):
            if isinstance(item, otio.schema.Transition):
                continue
            if isinstance(item, otio.core.Composition):
                inside = [item, *item.find_children()]
                changes = any(
                    isinstance(effect, otio.schema.TimeEffect)
                    for child in inside
                    for effect in getattr(child, "effects", [])
                )
                nested.append(NestedItem(item.name, label, index, position, changes))
            position += exact_frames(item.duration(), rate)
    return VideoItems(timeline, video, nested, disabled_tracks)


class _DropRecords(logging.Filter):
    """Drops log records whose message contains ``text``."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def _track_number(label: str) -> int:
    return int(label[1:]) if label[1:].isdigit() else 0


def _at(keys: dict[tuple[str, int], Any] | set[tuple[str, int]], track: str, start_frames: Fraction):
    """The key of ``keys`` naming the item on ``track`` that starts at ``start_frames`` (a script
    counts whole frames; a clip may sit between frames), or None."""
    for key in keys:
        if key[0] == track and abs(Fraction(key[1]) - start_frames) < 1:
            return key
    return None


def _disabled_reason(segment, items: VideoItems, disabled: dict[tuple[str, int], str]) -> str:
    """Why ``segment`` does not play (a disabled track or clip, in the export or as the script
    saw it in Resolve), or ""."""
    label = segment.track_label
    key = _at(disabled, label, segment.record_start_frames)
    if label in items.disabled_tracks or (key is not None and disabled[key] == "track"):
        return f"track {label} is disabled"
    if (segment.clip is not None and not segment.clip.enabled) or key is not None:
        return "the clip is disabled"
    return ""


def _offline_name(segment) -> str:
    """The name Resolve gives an offline clip's media (its MissingReference's name), or ""."""
    reference = segment.clip.media_reference if segment.clip is not None else None
    return str(getattr(reference, "name", "") or "")


def _media_text(segment) -> str:
    """The clip's media as reports and marker data name it: the local path, else as written."""
    if segment.media_path is not None:
        return str(segment.media_path)
    return segment.target_url or _offline_name(segment) or ""


def _media_problem(segment) -> str:
    """Why the clip's media cannot be read ("" when it can): offline in Resolve, or not found."""
    if segment.media_kind == "missing":
        name = _offline_name(segment) or segment.clip_name
        return (
            f"media offline: Resolve has no file for {name!r}; relink it (Media Pool: Relink Clips) "
            "and run again"
        )
    if segment.media is None or not segment.media.exists:
        problem = f" ({segment.media_problem})" if segment.media_problem else ""
        return (
            f"media not found: {_media_text(segment) or segment.clip_name}{problem}; relink it and run again"
        )
    return ""


def speed_ramp_of(clip) -> str:
    """``speed ramp (3 keyframes, speed ratio 50%)`` when ``clip`` has a time effect other than a
    constant speed or a freeze frame (Resolve's OTIO writes a Retime Curve as a plain TimeEffect
    with ``Resolve_OTIO`` "Key Frames" and "Speed Ratio"); ``time effect 'X'`` for another kind;
    "" for none."""
    import opentimelineio as otio

    if clip is None:
        return ""
    for effect in clip.effects:
        if not isinstance(effect, otio.schema.TimeEffect) or not getattr(effect, "enabled", True):
            continue
        if isinstance(effect, (otio.schema.LinearTimeWarp, otio.schema.FreezeFrame)):
            continue
        resolve = effect.metadata.get("Resolve_OTIO") if hasattr(effect.metadata, "get") else None
        keys = resolve.get("Key Frames") if hasattr(resolve, "get") else None
        ratio = resolve.get("Speed Ratio") if hasattr(resolve, "get") else None
        if keys is None and ratio is None:
            return f"time effect {(effect.name or effect.effect_name or effect.schema_name())!r}"
        details = []
        if hasattr(keys, "__len__") and len(keys):
            details.append(f"{len(keys)} keyframes")
        if (
            isinstance(ratio, (int, float))
            and not isinstance(ratio, bool)
            and math.isfinite(ratio)
            and ratio > 0
        ):
            details.append(f"speed ratio {_percent(Fraction(ratio).limit_denominator(1000))}")
        name = f" {effect.name!r}" if effect.name else ""
        return f"speed ramp{name}" + (f" ({', '.join(details)})" if details else "")
    return ""


def _entry(segment) -> dict[str, Any]:
    frame = int(segment.record_start_frames)
    media = _media_text(segment)
    return {
        "clip": segment.clip_name,
        "track": segment.track_label,
        "record_start_frame": frame,
        "media": media,
        "marker_key": marker_key(segment.clip_name, segment.track_label, frame, media),
    }


def _nested_entry(item: NestedItem, what: str) -> dict[str, Any]:
    frame = int(item.record_start_frames)
    reason = (
        f"a compound clip (a nested timeline): its clips are not {what}; flatten it with "
        "Decompose in Place (right-click it on the timeline) and run again"
    )
    return {
        "clip": item.name,
        "track": item.track_label,
        "record_start_frame": frame,
        "index_in_track": item.index_in_track,
        "media": "",
        "marker_key": marker_key(item.name, item.track_label, frame, ""),
        "reason": reason,
    }


def _order(entry: dict[str, Any]) -> tuple[int, int]:
    return _track_number(entry["track"]), entry["record_start_frame"]


# ---------------------------------------------------------------------- detect


def detect(
    timeline_path: Path,
    *,
    results: dict[str, Any] | None = None,
    start_engine: bool = True,
    timeout_s: float = DEFAULT_JOB_TIMEOUT_S,
    disabled: dict[tuple[str, int], str] | None = None,
) -> dict[str, Any]:
    """Speed per clip of an exported timeline, and the markers that show it.

    Every video clip is listed: ``detected`` (with its markers), ``failed``, ``missing`` (media
    offline or not found), ``skipped`` (a disabled clip or track, a compound clip), or
    ``stopped`` (the bridge was stopped before it got there; the reply then says ``stopped``).
    ``disabled`` names clips the script found disabled in Resolve (``{(track, frame): "clip" |
    "track"}``), besides those the export marks so."""
    items = _video_items(timeline_path)
    disabled = disabled or {}
    report: list[dict[str, Any]] = []
    work = []
    for segment in items.segments:
        if segment.media_kind == "generator":
            continue  # titles, solid colours: no footage to analyse
        entry = _entry(segment)
        report.append(entry)
        reason = _disabled_reason(segment, items, disabled)
        if reason:
            entry.update(status="skipped", message=f"{reason}: not analysed", summary=f"skipped: {reason}")
            continue
        problem = _media_problem(segment)
        if problem:
            entry.update(status="missing", message=problem, summary=problem)
            continue
        work.append((entry, segment))
    for item in items.nested:
        entry = _nested_entry(item, "analysed")
        reason = entry.pop("reason")
        entry.pop("index_in_track")
        entry.update(status="skipped", message=reason, summary=f"skipped: {reason}")
        report.append(entry)
    report.sort(key=_order)
    if not report:
        raise NothingToDoError(
            f"timeline {items.timeline.name!r} has no enabled video clip with media to analyse "
            f"({len(items.segments)} video items: generators and titles are skipped); "
            "put footage on a video track and run again"
        )
    given = {str(Path(k)): v for k, v in (results or {}).items()}
    found: dict[str, dict[str, Any] | ChronoscopeError] = {}
    placed: dict[int, list[Marker]] = {}
    client = None
    stopped = ""
    try:
        for number, (entry, segment) in enumerate(work, start=1):
            key = str(segment.media_path)
            if key not in found:
                if key in given:
                    found[key] = given[key]
                else:
                    _check_stopping()
                    log.info("detect %d/%d: %s", number, len(work), segment.describe())
                    if client is None:
                        client = _engine(start_engine)
                    found[key] = _detect_clip(client, segment, timeout_s)
            _take_outcome(entry, segment, found[key], placed)
    except KeyboardInterrupt:
        # stopped (SIGTERM from the script, Ctrl-C): the clips done so far are kept and answered
        stopped = "stopped before it finished; its engine job was cancelled"
    finally:
        if client is not None:
            client.close()
    for entry, _segment in work:
        if entry.get("status") != "detected":
            placed.pop(id(entry), None)
        if "status" not in entry:
            message = "not analysed: Chronoscope was stopped before it got to this clip"
            entry.update(status="stopped", message=message, summary=message)
    markers = [m for entry, _ in work for m in placed.get(id(entry), [])]
    detected = sum(1 for e in report if e["status"] == "detected")
    reply = {
        "timeline": items.timeline.name,
        "clips": report,
        "markers": [m.to_dict() for m in markers],
        "marker_tag": MARKER_TAG,
        "summary": f"{detected} of {len(report)} clips analysed, {len(markers)} markers",
    }
    if stopped:
        reply["stopped"] = stopped
    return reply


def _take_outcome(entry, segment, outcome, placed: dict[int, list[Marker]]) -> None:
    """Record one clip's detect result (or error) in its report entry and its markers in ``placed``."""
    if isinstance(outcome, ChronoscopeError):
        entry.update(status="failed", message=str(outcome), summary=f"not analysed: {outcome}")
        return
    try:
        clip_markers = markers_for_clip(segment, outcome)
        summary = clip_summary(segment, outcome)
    except (TimelineError, UnsupportedOptionError) as error:
        entry.update(status="failed", message=str(error), summary=f"not analysed: {error}")
        return
    placed[id(entry)] = clip_markers
    entry.update(status="detected", result=outcome, markers=len(clip_markers), summary=summary)


def _detect_clip(client, segment, timeout_s: float) -> dict[str, Any] | ChronoscopeError:
    try:
        answer = client.run_job(
            "detect_speed",
            {"clip": clip_json(segment)},
            on_event=_log_event,
            timeout_s=timeout_s,
            cancel_on_timeout=True,  # the script moves on: an analysis nobody will read is stopped
        )
    except CapabilityNotAvailableError:
        raise
    except ChronoscopeError as error:
        log.warning("%s: %s", segment.describe(), error)
        return error
    return detect_result_of(answer)


def detect_result_of(answer: dict[str, Any]) -> dict[str, Any]:
    """Issue 4's detect JSON from a ``detect_speed`` job result.

    The engine answers ``{"clips": [{"name", "path", "speed": {...}}], "otio": ...}`` for a clip
    sent as OTIO and ``{"path", "speed": {...}}`` for a path; a bare detect JSON is taken as is.
    """
    clips = answer.get("clips")
    if isinstance(clips, list) and clips and isinstance(clips[0], dict):
        answer = clips[0]
    speed = answer.get("speed")
    return speed if isinstance(speed, dict) else answer


def clip_json(segment) -> dict[str, Any]:
    """The segment's OTIO clip as JSON, its media as an absolute file URL, for the engine."""
    import opentimelineio as otio

    clip = copy.deepcopy(segment.clip)
    if isinstance(clip.media_reference, otio.schema.ExternalReference) and segment.media_path is not None:
        clip.media_reference.target_url = Path(segment.media_path).absolute().as_uri()
    return json.loads(otio.adapters.write_to_string(clip, "otio_json"))


def _number(value: Any, what: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UnsupportedOptionError(f"detect result {what} = {value!r} is not a number")
    try:
        number = Fraction(value)
    except (ValueError, ZeroDivisionError, OverflowError):
        raise UnsupportedOptionError(f"detect result {what} = {value!r} is not a number") from None
    return number


def _optional_number(value: Any, what: str) -> Fraction | None:
    return None if value is None else _number(value, what)


def _speed_class(value: Any, what: str) -> str:
    if value not in CLASS_COLORS:
        raise UnsupportedOptionError(f"detect result {what} = {value!r}; known: {', '.join(CLASS_COLORS)}")
    return value


# ---------------------------------------------------------------------- words for editors


def _significant(value: float) -> str:
    """A measured number as an editor reads it: 8 (not 7.98), 2.75, 10.7, 187."""
    if value >= 1 and abs(value - round(value)) <= 0.02 * value:
        return str(round(value))
    if value >= 100:
        return str(round(value))
    return f"{value:.3g}"


def speed_words(speed: Fraction | float) -> str:
    """A speed as editors say it: ``1/8`` (8x slow motion), ``1/2.5``, ``2.75x``."""
    value = float(speed)
    if not math.isfinite(value) or value <= 0:
        return ""
    if value < 1:
        return f"1/{_significant(1 / value)}"
    return f"{_significant(value)}x"


def plays_words(speed: Fraction | float) -> str:
    """What a speed looks like: ``real time``, ``1/16``, ``2.15x``."""
    value = float(speed)
    if math.isfinite(value) and value > 0 and abs(math.log2(value)) <= REALTIME_LOG2:
        return "real time"
    return speed_words(speed)


def rate_words(fps: Fraction | float) -> str:
    """A frame rate as editors write it: ``29.97 fps``, ``240 fps``, ``8.7 fps``."""
    value = float(fps)
    for rate in STANDARD_RATES:
        if abs(value - float(rate)) <= 0.0003 * float(rate):
            return f"{_fps(rate)} fps"
    if value >= 100:
        return f"{round(value)} fps"
    return f"{value:.1f}".rstrip("0").rstrip(".") + " fps"


def confidence_words(confidence: Any) -> str:
    """``confidence 90%``, or "" when the result gives none."""
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, (int, float))
        or not math.isfinite(confidence)
    ):
        return ""
    return f"confidence {round(min(max(float(confidence), 0.0), 1.0) * 100)}%"


def _percent(speed: Fraction) -> str:
    value = float(speed * 100)
    return f"{value:.1f}".rstrip("0").rstrip(".") + "%"


def _fps(value: Fraction) -> str:
    return f"{float(value):.3f}".rstrip("0").rstrip(".")


def _class_phrase(speed_class: str, speed: Fraction | None) -> str:
    """``Slow motion 1/8``, ``Sped up 2.75x``, ``Real time``: the class in words and its speed."""
    words = CLASS_NAMES[speed_class]
    if speed is None or speed_class in ("realtime", "still"):
        return words
    return f"{words} {speed_words(speed)}".strip()


def _timeline_phrase(speed_class: str, speed: Fraction | None, scalar: Fraction | None, warp: str) -> str:
    """How the clip's own retime changes what plays: `` at 50%: plays at 1/16``, ``, speed ramp on
    the timeline``, or "" for a clip at 100 %."""
    if warp:
        return f", {warp.split(' (')[0]} on the timeline"
    if scalar is None or scalar == 1:
        return ""
    if scalar == 0:
        return ", freeze frame on the timeline"
    shown = f" at {_percent(scalar)}"
    if speed is None or speed_class == "still":
        return shown
    return f"{shown}: plays at {plays_words(speed * scalar)}"


def marker_name(
    speed_class: str,
    speed: Fraction | None,
    capture: Fraction | None,
    scalar: Fraction | None,
    warp: str = "",
) -> str:
    """``Slow motion 1/8 (240 fps)``; a retimed clip adds what plays on the timeline:
    ``Sped up 5x (24 fps) at 20%: plays at real time``."""
    name = _class_phrase(speed_class, speed)
    if capture is not None and speed_class != "still":
        name += f" ({rate_words(capture)})"
    return name + _timeline_phrase(speed_class, speed, scalar, warp)


def clip_summary(segment, result: dict[str, Any]) -> str:
    """The console line for a detected clip: ``sped up 2.75x (shot at 8.7 fps), confidence 99%``,
    then what plays on the timeline when the clip is retimed there."""
    speed_class = _speed_class(result.get("class"), "class")
    speed = _optional_number(result.get("speed"), "speed")
    capture = _capture_rate(segment, speed, result.get("capture_fps"))
    scalar, warp = _clip_speed(segment)
    text = _class_phrase(speed_class, speed)
    text = text[0].lower() + text[1:]
    if capture is not None and speed_class != "still":
        text += f" (shot at {rate_words(capture)})"
    confidence = confidence_words(result.get("confidence"))
    if confidence:
        text += f", {confidence}"
    if warp:
        return f"{text}; its {warp} is not mapped: one marker covers the whole clip"
    if scalar is not None and scalar == 0:
        return f"{text}; a freeze frame on the timeline"
    if scalar is not None and scalar != 1 and speed is not None and speed_class != "still":
        return f"{text}; at {_percent(scalar)} on the timeline it plays at {plays_words(speed * scalar)}"
    return text


def _capture_rate(segment, speed: Fraction | None, given: Any) -> Fraction | None:
    capture = _optional_number(given, "capture_fps")
    if capture is None and speed:
        capture = segment.source_rate / speed
    return capture


def _clip_speed(segment) -> tuple[Fraction | None, str]:
    """The clip's own speed on the timeline (None when it cannot be mapped) and, then, what its
    time effect is (a speed ramp, or the reason the warp is refused)."""
    try:
        return segment.time_scalar, ""
    except InvalidTimeWarpError as error:
        return None, speed_ramp_of(segment.clip) or f"time effect ({error})"


# ---------------------------------------------------------------------- markers


def marker_key(clip_name: str, track: str, record_start_frame: int, media: str) -> str:
    """How every marker of one clip's customData starts: the JSON object's first members (tag,
    clip, track, start frame, media) and a comma. A script that cannot read JSON (Lua) tells the
    clips' markers apart by this prefix; the Python script does the same."""
    head = {
        "chronoscope": PROTOCOL_VERSION,
        "kind": "speed",
        "clip": clip_name,
        "track": track,
        "record_start_frame": record_start_frame,
        "media": media,
    }
    return json.dumps(head, separators=(",", ":"), ensure_ascii=False)[:-1] + ","


def markers_for_clip(segment, result: dict[str, Any]) -> list[Marker]:
    """One marker per detected segment that falls inside the clip's used range.

    ``result`` is issue 4's detect JSON: segment ``start``/``end`` in seconds from the media's first
    frame. Timeline frame n of the clip shows media second ``head_s + n * speed / timeline_rate``.
    A clip whose time effect cannot be mapped (a speed ramp) gets one marker over the whole clip,
    from the clip's result: the media is analysed all the same.
    """
    if not isinstance(result, dict):
        raise UnsupportedOptionError(f"detect result for {segment.describe()} is not an object")
    clip_class = _speed_class(result.get("class"), "class")
    clip_result = {
        "speed": result.get("speed"),
        "capture_fps": result.get("capture_fps"),
        "class": clip_class,
        "confidence": result.get("confidence"),
    }
    spans = result.get("segments") or []
    if not isinstance(spans, list):
        raise UnsupportedOptionError(f"detect result segments for {segment.describe()} is not a list")
    scalar, warp = _clip_speed(segment)
    head_frames = segment.source_start_frames
    if segment.available_range is not None:
        head_frames -= exact_frames(segment.available_range.start_time, segment.source_rate)
    head_s = head_frames / segment.source_rate
    rate = segment.timeline_rate
    length = segment.record_frames
    if scalar is None:
        spans = [{**clip_result, "start": str(head_s), "end": None}]
    elif not spans:
        end_s = head_s + Fraction(length) * scalar / rate
        spans = [{**clip_result, "start": str(head_s), "end": str(end_s)}]
    notes = _NoteParts(
        human=analysis_note_lines(result) + audio_summary_lines(_evidence_audio(result.get("evidence"))),
        details=evidence_lines(result.get("evidence")),
    )
    markers = []
    for index, span in enumerate(spans):
        if not isinstance(span, dict):
            raise UnsupportedOptionError(f"detect result segments[{index}] is not an object")
        begin_s = _number(span.get("start"), f"segments[{index}].start")
        if scalar is None:
            first_frame, duration = 0, max(1, length)
            end_s = None
        else:
            end_s = _number(span.get("end"), f"segments[{index}].end")
            if end_s < begin_s:
                raise UnsupportedOptionError(
                    f"detect result segments[{index}] ends ({end_s} s) before it starts ({begin_s} s)"
                )
            if scalar == 0:
                first, last = Fraction(0), Fraction(length)
            else:
                first = (begin_s - head_s) * rate / scalar
                last = (end_s - head_s) * rate / scalar
            if first >= length or last < 0 or (last == 0 and end_s > begin_s):
                continue
            first_frame = max(0, math.floor(first))
            last_frame = min(length, math.ceil(last))
            duration = max(1, last_frame - first_frame)
        frame = int(segment.record_start_frames) + first_frame
        if scalar:  # the part of the segment the clip shows
            begin_s, end_s = max(begin_s, head_s), min(end_s, head_s + Fraction(length) * scalar / rate)
        place = _Place(frame, duration, begin_s, end_s, scalar, warp)
        markers.append(_marker(segment, span, index, clip_result, notes, place))
    return markers


@dataclass(frozen=True)
class _NoteParts:
    human: list[str]
    details: list[str]


@dataclass(frozen=True)
class _Place:
    frame: int
    duration: int
    begin_s: Fraction
    end_s: Fraction | None
    scalar: Fraction | None
    warp: str


def _marker(
    segment, span: dict[str, Any], index: int, clip_result: dict[str, Any], notes: _NoteParts, place: _Place
) -> Marker:
    speed_class = _speed_class(span.get("class", clip_result["class"]), f"segments[{index}].class")
    speed = _optional_number(span.get("speed", clip_result["speed"]), f"segments[{index}].speed")
    capture = _optional_number(span.get("capture_fps"), f"segments[{index}].capture_fps")
    if capture is None and speed:
        capture = segment.source_rate / speed
    if capture is None:
        capture = _optional_number(clip_result["capture_fps"], "capture_fps")
    confidence = span.get("confidence", clip_result["confidence"])
    note = [_headline(speed_class, speed, capture, confidence), _timeline_line(speed_class, speed, place)]
    where = f"{segment.clip_name} on {segment.track_label}"
    if place.end_s is not None:
        where += f", media {float(place.begin_s):.2f} s to {float(place.end_s):.2f} s"
    note.append(where + ".")
    note.extend(notes.human)
    if notes.details:
        note += ["", "Details:"] + notes.details
    frame_start = int(segment.record_start_frames)
    custom = json.loads(
        marker_key(segment.clip_name, segment.track_label, frame_start, _media_text(segment))[:-1] + "}"
    )
    custom.update(segment=span, result=clip_result)
    return Marker(
        frame=place.frame,
        duration=place.duration,
        color=CLASS_COLORS[speed_class],
        name=marker_name(speed_class, speed, capture, place.scalar, place.warp),
        note="\n".join(note),
        custom_data=json.dumps(custom, separators=(",", ":"), ensure_ascii=False),
        clip=segment.clip_name,
        track=segment.track_label,
    )


def _headline(speed_class: str, speed: Fraction | None, capture: Fraction | None, confidence: Any) -> str:
    """``Slow motion 1/8: shot at 240 fps, confidence 90%.``"""
    parts = []
    if capture is not None and speed_class != "still":
        parts.append(f"shot at {rate_words(capture)}")
    if confidence_words(confidence):
        parts.append(confidence_words(confidence))
    phrase = _class_phrase(speed_class, speed)
    if speed_class == "still":
        phrase = "Still: too little motion to tell its speed"
    return phrase + (f": {', '.join(parts)}" if parts else "") + "."


def _timeline_line(speed_class: str, speed: Fraction | None, place: _Place) -> str:
    """What plays on the timeline, given the clip's own speed there."""
    if place.warp:
        return (
            f"On the timeline the clip has a {place.warp}: what plays changes along it, so this "
            "marker covers the whole clip."
        )
    if place.scalar is None or place.scalar == 1:
        if speed is None or speed_class == "still":
            return "The clip runs at 100% on the timeline."
        return f"The clip runs at 100% on the timeline: it plays at {plays_words(speed)}."
    if place.scalar == 0:
        return "The clip is a freeze frame on the timeline."
    if speed is None or speed_class == "still":
        return f"The clip runs at {_percent(place.scalar)} on the timeline."
    return (
        f"The clip runs at {_percent(place.scalar)} on the timeline: it plays at "
        f"{plays_words(speed * place.scalar)}."
    )


def _evidence_audio(evidence: Any) -> Any:
    return evidence.get("audio") if isinstance(evidence, dict) else None


def evidence_lines(evidence: Any) -> list[str]:
    """Issue 4's ``evidence`` (an object keyed by stage, or a list of findings) as the technical
    lines at the end of a marker note (the sound's say, under ``audio``, is told before them)."""
    if isinstance(evidence, dict) and isinstance(evidence.get("items"), list):
        rest = {key: value for key, value in evidence.items() if key not in ("items", "audio")}
        return _keyed_lines(rest) + evidence_lines(evidence["items"])
    if isinstance(evidence, dict):
        return _keyed_lines({key: value for key, value in evidence.items() if key != "audio"})
    if isinstance(evidence, list):
        lines = []
        for item in evidence:
            if isinstance(item, dict) and ("stage" in item or "finding" in item):
                text = f"{item.get('stage', '')}: {item.get('finding', '')}".strip(": ")
                value = item.get("value")
                lines.append(f"{text} ({_plain(value)})" if value not in (None, "") else text)
            else:
                lines.append(_plain(item))
        return lines
    return [] if evidence in (None, "") else [_plain(evidence)]


def _keyed_lines(values: dict[str, Any]) -> list[str]:
    return [
        f"{str(key).replace('_', ' ')}: {_plain(value)}"
        for key, value in values.items()
        if value not in (None, "")
    ]


def _plain(value: Any) -> str:
    """A value for people: text as it is, numbers to three significant digits."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.3g}" if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return ", ".join(f"{str(k).replace('_', ' ')} {_plain(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value)
    return json.dumps(value, ensure_ascii=False)


# ---------------------------------------------------------------------- render


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "timeline"


def default_output_dir(timeline_name: str) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return places().data_dir / "resolve-renders" / f"{_safe_name(timeline_name)}-{stamp}"


def _not_rendered(segment, reason: str) -> dict[str, Any]:
    return {
        "clip": segment.clip_name,
        "track": segment.track_label,
        "index_in_track": segment.index_in_track,
        "record_start_frame": int(segment.record_start_frames),
        "reason": reason,
    }


def render(
    timeline_path: Path,
    *,
    output_dir: Path | None = None,
    marked: set[tuple[str, int]] | None = None,
    flag: str = "",
    start_engine: bool = True,
    timeout_s: float = DEFAULT_JOB_TIMEOUT_S,
    disabled: dict[tuple[str, int], str] | None = None,
) -> dict[str, Any]:
    """Render the slowed-down (and flagged) clips through the engine's ``render_timeline``.

    The reply lists every clip that is not rendered and why (``not_rendered``): a speed ramp, a
    compound clip, a disabled clip, media offline or missing, or what the engine said."""
    items = _video_items(timeline_path)
    marked = set(marked or ())
    disabled = disabled or {}
    targets, missing, not_rendered = [], [], []
    matched: set[tuple[str, int]] = set()
    for segment in items.segments:
        key = _at(marked, segment.track_label, segment.record_start_frames)
        if key is not None:
            matched.add(key)
        try:
            slowed = 0 < segment.time_scalar < 1
        except InvalidTimeWarpError as error:
            ramp = speed_ramp_of(segment.clip)
            reason = (
                f"its {ramp} is not rendered: Chronoscope renders constant speeds; give the clip one "
                "speed (Change Clip Speed) and run again, or let Resolve render the ramp "
                "(Retime Process: Optical Flow)"
                if ramp
                else str(error)
            )
            not_rendered.append(_not_rendered(segment, reason))
            continue
        if not slowed and key is None:
            continue
        off = _disabled_reason(segment, items, disabled)
        if off:
            not_rendered.append(_not_rendered(segment, f"{off}: not rendered"))
            continue
        if segment.media_kind == "generator":
            not_rendered.append(
                _not_rendered(segment, "a generated picture (a title, a colour): nothing to render")
            )
            continue
        problem = _media_problem(segment)
        if problem:
            not_rendered.append(_not_rendered(segment, problem))
            missing.append((segment, problem))
            continue
        targets.append(segment)
    for item in items.nested:
        key = _at(marked, item.track_label, item.record_start_frames)
        if key is not None:
            matched.add(key)
        if key is not None or item.speed_changes:
            entry = _nested_entry(item, "rendered")
            entry.pop("marker_key")
            entry.pop("media")
            not_rendered.append(entry)
    for track, frame in sorted(marked - matched):
        reason = "flagged, but no clip starts there in the exported timeline"
        not_rendered.append(
            {
                "clip": f"at frame {frame}",
                "track": track,
                "index_in_track": -1,
                "record_start_frame": frame,
                "reason": reason,
            }
        )
    not_rendered.sort(key=_order)
    if not targets:
        if missing:
            segment, problem = missing[0]
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            others = [n for n in not_rendered if n["reason"] not in {reason for _, reason in missing}]
            also = "".join(f"; {n['track']} {n['clip']!r}: {n['reason']}" for n in others)
            raise MediaNotFoundError(f"{segment.describe()}: {problem}{more}{also}")
        how = f" or flag it {flag}" if flag else ""
        also = "".join(f"; {n['track']} {n['clip']!r}: {n['reason']}" for n in not_rendered)
        raise NothingToDoError(
            f"timeline {items.timeline.name!r} has no clip slower than 100 % and none marked for Chronoscope "
            f"({len(items.segments)} video clips); slow a clip down (Change Clip Speed){how} and run "
            f"again{also}"
        )
    output_dir = Path(output_dir) if output_dir else default_output_dir(items.timeline.name)
    clips = [
        {
            "track": s.track_label,
            "index_in_track": s.index_in_track,
            "record_start_frame": int(s.record_start_frames),
            "name": s.clip_name,
        }
        for s in targets
    ]
    log.info("rendering %d clips of %r into %s", len(clips), items.timeline.name, output_dir)
    with _engine(start_engine) as client:
        result = client.run_job(
            "render_timeline",
            {
                "timeline": str(timeline_path.absolute()),
                "outdir": str(output_dir.absolute()),
                "speedup": False,
                "clips": clips,
            },
            on_event=_log_event,
            # one engine job renders them all: each clip gets the time one job may take
            timeout_s=timeout_s * len(clips),
            cancel_on_timeout=True,  # the script reports a failure, so nothing may appear later
        )
    starts = {(s.track_label, s.index_in_track): int(s.record_start_frames) for s in items.segments}
    starts.update({(n.track_label, n.index_in_track): int(n.record_start_frames) for n in items.nested})
    rendered = _merge_render_result(result, clips, not_rendered, starts)
    new_timeline = _rendered_timeline(result, output_dir, items.timeline.name)
    media = [str(p) for p in _rendered_media(result) if Path(p).is_file()]
    summary = f"{rendered} of {len(clips)} clips rendered into {output_dir}"
    if not_rendered:
        summary += f"; {len(not_rendered)} not rendered"
    return {
        "timeline": str(new_timeline),
        "timeline_name": items.timeline.name,
        "media": media,
        "clips": clips,
        "rendered": rendered,
        "not_rendered": not_rendered,
        "output_dir": str(output_dir),
        "summary": summary,
    }


def _merge_render_result(
    result: dict[str, Any],
    clips: list[dict[str, Any]],
    not_rendered: list[dict[str, Any]],
    starts: dict[tuple[str, int], int],
) -> int:
    """Give each clip sent its status from the engine's summary; add to ``not_rendered`` the ones
    the engine did not render, and the video clips it could not render that are not listed yet
    (``starts``: each clip's first frame, by track and place on it). Returns how many of the clips
    sent were rendered (all, when the engine's answer lists no clips). Audio is never rendered:
    its speed changes stay in the timeline for the editor, so it is not listed."""
    records = {
        (c.get("track"), c.get("index_in_track")): c for c in result.get("clips") or [] if isinstance(c, dict)
    }
    listed = {(n["track"], n["index_in_track"]) for n in not_rendered}
    rendered = 0
    for clip in clips:
        record = records.get((clip["track"], clip["index_in_track"]))
        status = str(record.get("status", "")) if record else "rendered"
        clip["status"] = status
        if status in ("rendered", "resumed"):
            rendered += 1
            continue
        reason = str(record.get("reason") or status)
        if status == "pass_through":
            reason = f"the engine passed it through ({reason})"
        where = {key: clip[key] for key in ("track", "index_in_track", "record_start_frame")}
        not_rendered.append({**where, "clip": clip["name"], "reason": reason})
        listed.add((clip["track"], clip["index_in_track"]))
    for (track, index), record in records.items():
        if record.get("status") not in ("failed", "cannot_render") or (track, index) in listed:
            continue
        if not str(track).startswith("V"):
            continue
        not_rendered.append(
            {
                "clip": str(record.get("clip_name", "")),
                "track": str(track),
                "index_in_track": index,
                "record_start_frame": starts.get((track, index), -1),
                "reason": str(record.get("reason") or record.get("status")),
            }
        )
    not_rendered.sort(key=_order)
    return rendered


def _rendered_timeline(result: dict[str, Any], output_dir: Path, name: str) -> Path:
    value = result.get("new_timeline") or result.get("timeline_path")
    candidates = [Path(value)] if isinstance(value, str) else []
    candidates += sorted(output_dir.glob("*.chronoscope.otio"))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise TimelineNotFoundError(
        f"the engine rendered {name!r} but named no new timeline file (looked for {value!r} and "
        f"{output_dir}/*.chronoscope.otio)"
    )


def _rendered_media(result: dict[str, Any]) -> list[str]:
    """Rendered files named in a ``render_timeline`` summary (top level or per clip)."""
    paths: list[str] = []
    records = [result] + [c for c in result.get("clips") or [] if isinstance(c, dict)]
    for record in records:
        for key in ("media", "output", "outputs", "files"):
            value = record.get(key)
            if isinstance(value, str):
                paths.append(value)
            elif isinstance(value, list):
                paths.extend(v for v in value if isinstance(v, str))
    return list(dict.fromkeys(paths))


# ---------------------------------------------------------------------- preview


def open_preview(
    timeline_path: Path, *, screenshot: Path | None = None, wait: bool = False, timeout_s: float = 60.0
) -> dict[str, Any]:
    """Start the preview app on the timeline, detached (or wait for it with ``wait``)."""
    command = [sys.executable, "-m", "engine.cli", "gui", str(timeline_path.absolute())]
    if screenshot is not None:
        command[4:4] = ["--screenshot", str(Path(screenshot).absolute())]
    log_path = places().log_dir / "preview.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {"stdin": subprocess.DEVNULL}
    if sys.platform == "win32":
        options["creationflags"] = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        options["start_new_session"] = True
    with open(log_path, "ab") as log_stream:
        child = subprocess.Popen(command, stdout=log_stream, stderr=log_stream, **options)
    log.info("preview app pid %d on %s; log: %s", child.pid, timeline_path, log_path)
    reply: dict[str, Any] = {"pid": child.pid, "timeline": str(timeline_path), "log": str(log_path)}
    if wait:
        try:
            reply["returncode"] = child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise EngineNotRunningError(
                f"the preview app did not finish within {timeout_s} s; see {log_path}"
            ) from None
        if reply["returncode"] != 0:
            tail = "\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-5:])
            raise UnsupportedOptionError(
                f"the preview app exited with status {reply['returncode']}; see {log_path}:\n{tail}"
            )
    return reply
