"""``chronoscope bridge``: one JSON request on stdin, one reply on stdout, for scripts that cannot
import Chronoscope (DaVinci Resolve's Python and Lua scripts run in the user's interpreter).

Request (stdin, UTF-8 JSON)::

    {"op": "ping" | "detect" | "render" | "open_preview", ...operation fields...}

    ping          {"start_engine": true}
    detect        {"timeline": "cut.otio", "results": {"/media/a.mov": {...detect JSON...}}?}
    render        {"timeline": "cut.otio", "output_dir": "DIR"?, "clips": [{"track": "V1",
                   "record_start_frame": 48}]?, "flag": "Purple"?}
    open_preview  {"timeline": "cut.otio", "screenshot": "shot.png"?, "wait": false}

Every request may carry ``"start_engine"`` (default true: start the engine when none answers) and
``"timeout_s"`` (the longest wait for one engine job, default 600; a job still running then is
cancelled). SIGTERM or Ctrl-C cancels the job being waited for, and the reply says so.

Reply (stdout): ``{"ok": true, "op": ..., ...}`` or ``{"ok": false, "error": {"type", "message"}}``
with exit status 2. ``--reply lua`` writes the same reply as a Lua chunk (``return {...}``) for
Lua scripts, which have no JSON reader. Progress and log lines go to stderr, one per line.

``detect`` asks the engine's ``detect_speed`` for every video clip with media (once per media
file), or takes the results given in ``results`` (keyed by media path, e.g. from ``chronoscope
detect --json`` run in a batch), and answers per clip plus the markers to draw: one per detected
segment, at ``frame`` counted in timeline frames from the timeline's first frame, as Resolve's
``Timeline.AddMarker`` takes them. Segment times are seconds from the first frame of the media
file; they are mapped through the clip's source range and speed onto the timeline, and parts
outside the clip's used range are left out. A marker's ``custom_data`` is JSON starting with
``MARKER_TAG``: that is how a script recognises (and replaces) its own markers and no others.

``render`` sends the timeline to the engine's ``render_timeline`` with the clips to render (every
clip slower than 100 %, plus those named in ``clips``) and answers with the new timeline file and
the rendered media. ``open_preview`` starts the preview app on the timeline in the background.

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
        status = 0
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
        )
    if op == "render":
        output_dir = request.get("output_dir")
        if output_dir is not None and not isinstance(output_dir, str):
            raise UnsupportedOptionError(f"render output_dir must be a folder path, got {output_dir!r}")
        return render(
            _timeline_path(request),
            output_dir=Path(output_dir) if output_dir else None,
            marked=_clip_keys(request.get("clips")),
            flag=str(request.get("flag") or ""),
            start_engine=_flag(request, "start_engine", True),
            timeout_s=_timeout(request),
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


def _clip_keys(value: Any) -> set[tuple[str, int]]:
    if value is None:
        return set()
    if not isinstance(value, list):
        raise UnsupportedOptionError('clips must be a list of {"track": "V1", "record_start_frame": N}')
    keys = set()
    for item in value:
        track = item.get("track") if isinstance(item, dict) else None
        frame = item.get("record_start_frame") if isinstance(item, dict) else None
        if not isinstance(track, str) or isinstance(frame, bool) or not isinstance(frame, int):
            raise UnsupportedOptionError(
                f'clip {item!r} is not {{"track": "V1", "record_start_frame": N}} '
                "(N in frames from the timeline start)"
            )
        keys.add((track, frame))
    return keys


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


# ---------------------------------------------------------------------- detect


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


def _video_segments(timeline_path: Path):
    import opentimelineio as otio

    from engine.timeline import list_segments, read_timeline

    timeline = read_timeline(timeline_path)
    segments = list_segments(timeline, base_dir=timeline_path.parent.absolute(), check_time_warps=False)
    video = [s for s in segments if s.track_kind == otio.schema.TrackKind.Video and s.enabled]
    return timeline, video


def detect(
    timeline_path: Path,
    *,
    results: dict[str, Any] | None = None,
    start_engine: bool = True,
    timeout_s: float = DEFAULT_JOB_TIMEOUT_S,
) -> dict[str, Any]:
    """Speed per clip of an exported timeline, and the markers that show it."""
    timeline, segments = _video_segments(timeline_path)
    clips = [s for s in segments if s.media_kind in ("file", "image_sequence")]
    if not clips:
        raise NothingToDoError(
            f"timeline {timeline.name!r} has no enabled video clip with media to analyse "
            f"({len(segments)} video items: generators, titles and offline clips are skipped); "
            "put footage on a video track and run again"
        )
    given = {str(Path(k)): v for k, v in (results or {}).items()}
    found: dict[str, dict[str, Any] | ChronoscopeError] = {}
    client = None
    report, markers = [], []
    try:
        for number, segment in enumerate(clips, start=1):
            entry = {
                "clip": segment.clip_name,
                "track": segment.track_label,
                "record_start_frame": int(segment.record_start_frames),
                "media": str(segment.media_path) if segment.media_path else segment.target_url,
            }
            report.append(entry)
            if segment.media is None or not segment.media.exists:
                entry.update(status="missing", message=f"media not found: {entry['media']}")
                continue
            key = str(segment.media_path)
            if key not in found:
                if key in given:
                    found[key] = given[key]
                else:
                    _check_stopping()
                    log.info("detect %d/%d: %s", number, len(clips), segment.describe())
                    if client is None:
                        client = _engine(start_engine)
                    found[key] = _detect_clip(client, segment, timeout_s)
            outcome = found[key]
            if isinstance(outcome, ChronoscopeError):
                entry.update(status="failed", message=str(outcome))
                continue
            try:
                clip_markers = markers_for_clip(segment, outcome)
            except (TimelineError, UnsupportedOptionError) as error:
                entry.update(status="failed", message=str(error))
                continue
            markers.extend(clip_markers)
            entry.update(status="detected", result=outcome, markers=len(clip_markers))
    finally:
        if client is not None:
            client.close()
    detected = sum(1 for e in report if e["status"] == "detected")
    return {
        "timeline": timeline.name,
        "clips": report,
        "markers": [m.to_dict() for m in markers],
        "marker_tag": MARKER_TAG,
        "summary": f"{detected} of {len(report)} clips analysed, {len(markers)} markers",
    }


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


def markers_for_clip(segment, result: dict[str, Any]) -> list[Marker]:
    """One marker per detected segment that falls inside the clip's used range.

    ``result`` is issue 4's detect JSON: segment ``start``/``end`` in seconds from the media's first
    frame. Timeline frame n of the clip shows media second ``head_s + n * speed / timeline_rate``.
    """
    if not isinstance(result, dict):
        raise UnsupportedOptionError(f"detect result for {segment.describe()} is not an object")
    clip_class = _speed_class(result.get("class"), "class")
    clip_summary = {
        "speed": result.get("speed"),
        "capture_fps": result.get("capture_fps"),
        "class": clip_class,
        "confidence": result.get("confidence"),
    }
    evidence = analysis_note_lines(result) + evidence_lines(result.get("evidence"))
    spans = result.get("segments") or []
    if not isinstance(spans, list):
        raise UnsupportedOptionError(f"detect result segments for {segment.describe()} is not a list")
    scalar = segment.time_scalar
    head_frames = segment.source_start_frames
    if segment.available_range is not None:
        head_frames -= exact_frames(segment.available_range.start_time, segment.source_rate)
    head_s = head_frames / segment.source_rate
    rate = segment.timeline_rate
    length = segment.record_frames
    if not spans:
        end_s = head_s + Fraction(length) * scalar / rate
        spans = [{**clip_summary, "start": str(head_s), "end": str(end_s)}]
    markers = []
    for index, span in enumerate(spans):
        if not isinstance(span, dict):
            raise UnsupportedOptionError(f"detect result segments[{index}] is not an object")
        begin_s = _number(span.get("start"), f"segments[{index}].start")
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
        markers.append(_marker(segment, span, index, clip_summary, evidence, frame, duration))
    return markers


def _percent(speed: Fraction) -> str:
    value = float(speed * 100)
    return f"{value:.1f}".rstrip("0").rstrip(".") + "%"


def _fps(value: Fraction) -> str:
    return f"{float(value):.3f}".rstrip("0").rstrip(".")


def _marker(
    segment,
    span: dict[str, Any],
    index: int,
    clip_summary: dict[str, Any],
    evidence: list[str],
    frame: int,
    duration: int,
) -> Marker:
    speed_class = _speed_class(span.get("class", clip_summary["class"]), f"segments[{index}].class")
    speed = _optional_number(span.get("speed", clip_summary["speed"]), f"segments[{index}].speed")
    capture = _optional_number(span.get("capture_fps"), f"segments[{index}].capture_fps")
    if capture is None and speed:
        capture = segment.source_rate / speed
    if capture is None:
        capture = _optional_number(clip_summary["capture_fps"], "capture_fps")
    confidence = span.get("confidence", clip_summary["confidence"])
    parts = [CLASS_NAMES[speed_class]]
    if speed is not None and speed_class != "still":
        parts.append(_percent(speed))
    if capture is not None and speed_class != "still":
        parts.append(f"({_fps(capture)} fps)")
    note = [f"Chronoscope speed detection: {segment.clip_name} ({segment.track_label})"]
    if isinstance(confidence, (int, float)) and not isinstance(confidence, bool):
        note.append(f"confidence {float(confidence):.2f}")
    if evidence:
        note.append("evidence:")
        note.extend(f"- {line}" for line in evidence)
    custom = {
        "chronoscope": PROTOCOL_VERSION,
        "kind": "speed",
        "clip": segment.clip_name,
        "track": segment.track_label,
        "media": str(segment.media_path),
        "segment": span,
        "result": clip_summary,
    }
    return Marker(
        frame=frame,
        duration=duration,
        color=CLASS_COLORS[speed_class],
        name=" ".join(parts),
        note="\n".join(note),
        custom_data=json.dumps(custom, separators=(",", ":"), ensure_ascii=False),
        clip=segment.clip_name,
        track=segment.track_label,
    )


def evidence_lines(evidence: Any) -> list[str]:
    """Issue 4's ``evidence`` (an object keyed by stage, or a list of findings) as note lines."""
    if isinstance(evidence, dict) and isinstance(evidence.get("items"), list):
        # the detect JSON: findings under "items", the sound's say under "audio"
        rest = {key: value for key, value in evidence.items() if key not in ("items", "audio")}
        return (
            [f"{key}: {_compact(value)}" for key, value in rest.items()]
            + audio_summary_lines(evidence.get("audio"))
            + evidence_lines(evidence["items"])
        )
    if isinstance(evidence, dict):
        return [f"{key}: {_compact(value)}" for key, value in evidence.items()]
    if isinstance(evidence, list):
        lines = []
        for item in evidence:
            if isinstance(item, dict) and ("stage" in item or "finding" in item):
                text = f"{item.get('stage', '')}: {item.get('finding', '')}".strip(": ")
                value = item.get("value")
                lines.append(f"{text} ({_compact(value)})" if value not in (None, "") else text)
            else:
                lines.append(_compact(item))
        return lines
    return [] if evidence in (None, "") else [_compact(evidence)]


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


# ---------------------------------------------------------------------- render


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "timeline"


def default_output_dir(timeline_name: str) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return places().data_dir / "resolve-renders" / f"{_safe_name(timeline_name)}-{stamp}"


def render(
    timeline_path: Path,
    *,
    output_dir: Path | None = None,
    marked: set[tuple[str, int]] | None = None,
    flag: str = "",
    start_engine: bool = True,
    timeout_s: float = DEFAULT_JOB_TIMEOUT_S,
) -> dict[str, Any]:
    """Render the slowed-down (and marked) clips through the engine's ``render_timeline``."""

    timeline, segments = _video_segments(timeline_path)
    marked = marked or set()
    targets = []
    for segment in segments:
        key = (segment.track_label, int(segment.record_start_frames))
        try:
            slowed = 0 < segment.time_scalar < 1
        except InvalidTimeWarpError as error:
            log.warning("%s", error)
            slowed = False
        if slowed or key in marked:
            targets.append(segment)
    if not targets:
        how = f" or flag it {flag}" if flag else ""
        raise NothingToDoError(
            f"timeline {timeline.name!r} has no clip slower than 100 % and none marked for Chronoscope "
            f"({len(segments)} video clips); slow a clip down (Change Clip Speed){how} and run again"
        )
    missing = [s for s in targets if s.media is None or not s.media.exists]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        shown = missing[0].media_path or missing[0].target_url
        raise MediaNotFoundError(
            f"{missing[0].describe()}: media not found: {shown}{more}; relink it and run again"
        )
    output_dir = Path(output_dir) if output_dir else default_output_dir(timeline.name)
    clips = [
        {
            "track": s.track_label,
            "index_in_track": s.index_in_track,
            "record_start_frame": int(s.record_start_frames),
            "name": s.clip_name,
        }
        for s in targets
    ]
    log.info("rendering %d clips of %r into %s", len(clips), timeline.name, output_dir)
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
            timeout_s=timeout_s,
            cancel_on_timeout=True,  # the script reports a failure, so nothing may appear later
        )
    new_timeline = _rendered_timeline(result, output_dir, timeline.name)
    media = [str(p) for p in _rendered_media(result) if Path(p).is_file()]
    return {
        "timeline": str(new_timeline),
        "timeline_name": timeline.name,
        "media": media,
        "clips": clips,
        "output_dir": str(output_dir),
        "summary": f"{len(clips)} clips rendered into {output_dir}",
    }


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
