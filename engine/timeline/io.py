"""Reading and writing timelines: OTIO natively, EDL and FCP XML through OTIO's adapter plugins.

``read_timeline`` always returns an ``otio.schema.Timeline``: a file holding a bare Clip, a Track
or a Stack is wrapped in one, and a collection holding exactly one timeline gives that timeline.
Anything else is refused with a ``TimelineError`` that names the file and the reason.
``write_timeline`` writes through a temporary name (``engine.fsutil.atomic_path``), so a reader
never sees half a file.

Format by file suffix:

==========  ===========  =====================================
suffix      adapter      plugin
==========  ===========  =====================================
.otio       otio_json    built into OpenTimelineIO
.otioz      otioz        built in (zip bundle with media)
.otiod      otiod        built in (folder bundle with media)
.edl        cmx_3600     otio-cmx3600-adapter
.xml        fcp_xml      otio-fcp-adapter (Final Cut Pro 7 XML)
.fcpxml     fcpx_xml     otio-fcpx-xml-adapter (Final Cut Pro X)
==========  ===========  =====================================

A constant speed change of an FCP 7 XML clip (a Time Remap filter: Premiere Pro's Speed/Duration)
becomes a LinearTimeWarp from the source frame it plays from (``engine.timeline.fcp7xml``).
"""

from __future__ import annotations

import json
import logging
import math
from fractions import Fraction
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import opentimelineio as otio

from engine.errors import AdapterNotAvailableError, TimelineError, TimelineNotFoundError
from engine.fsutil import atomic_path, remove_quietly
from engine.timeline.editor_copy import records_from_start
from engine.timeline.edl import drop_frame_rate, prepare_edl_text
from engine.timeline.fcp7xml import complete_fcp7_timeline
from engine.timeline.fcpxml import complete_fcpx_timeline, use_exact_fcpx_times
from engine.timeline.guard import check_json_depth, check_otioz, read_otio_json_text, require_timeline_file
from engine.timeline.rates import exact_rate

log = logging.getLogger(__name__)

ADAPTER_BY_SUFFIX = {
    ".otio": "otio_json",
    ".otioz": "otioz",
    ".otiod": "otiod",
    ".edl": "cmx_3600",
    ".xml": "fcp_xml",
    ".fcpxml": "fcpx_xml",
}

PLUGIN_BY_ADAPTER = {
    "cmx_3600": "otio-cmx3600-adapter",
    "fcp_xml": "otio-fcp-adapter",
    "fcpx_xml": "otio-fcpx-xml-adapter",
}

EDL_DEFAULT_RATE = Fraction(24)
"""The rate an EDL is read at when none is given (the adapter's; EDLs do not say)."""

WRAPPABLE_SCHEMAS = "Timeline, Stack, Track, Clip, or a collection holding one Timeline"


def available_formats() -> dict[str, str]:
    """Return ``{suffix: adapter name}`` for the formats the installed adapters can handle."""
    installed = set(otio.adapters.available_adapter_names())
    return {suffix: name for suffix, name in ADAPTER_BY_SUFFIX.items() if name in installed}


def adapter_for(path: Path) -> str:
    """Return the OTIO adapter name for ``path``'s suffix, or raise ``AdapterNotAvailableError``."""
    suffix = Path(path).suffix.lower()
    working = available_formats()
    works = ", ".join(f"{s} ({n})" for s, n in working.items())
    if suffix not in ADAPTER_BY_SUFFIX:
        raise AdapterNotAvailableError(
            f"no timeline format for suffix {suffix or '(none)'!r} of {path}; works: {works}"
        )
    name = ADAPTER_BY_SUFFIX[suffix]
    if suffix not in working:
        plugin = PLUGIN_BY_ADAPTER.get(name, name)
        raise AdapterNotAvailableError(
            f"{path}: the {name} adapter for {suffix} files is not installed (pip install {plugin}); "
            f"works: {works}"
        )
    return name


def as_timeline(obj: Any, *, source: str = "input", name: str | None = None) -> otio.schema.Timeline:
    """Return ``obj`` as a Timeline, wrapping a Clip, Track or Stack; refuse anything else.

    A SerializableCollection must hold exactly one Timeline, or one named ``name``.
    """
    if isinstance(obj, otio.schema.Timeline):
        return obj
    if isinstance(obj, otio.schema.Stack):
        timeline = otio.schema.Timeline(name=obj.name)
        timeline.tracks = obj
        return timeline
    if isinstance(obj, otio.schema.Track):
        return otio.schema.Timeline(name=obj.name, tracks=[obj])
    if isinstance(obj, otio.schema.Clip):
        track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video, children=[obj])
        return otio.schema.Timeline(name=obj.name, tracks=[track])
    if isinstance(obj, otio.schema.SerializableCollection):
        timelines = list(obj.find_children(descended_from_type=otio.schema.Timeline, shallow_search=False))
        if name is not None:
            timelines = [t for t in timelines if t.name == name]
        if len(timelines) == 1:
            return timelines[0]
        names = ", ".join(repr(t.name) for t in obj.find_children(descended_from_type=otio.schema.Timeline))
        wanted = f" named {name!r}" if name is not None else ""
        raise TimelineError(
            f"{source} holds {len(timelines)} timelines{wanted}; pick one by name from: {names or 'none'}"
        )
    if getattr(obj, "is_unknown_schema", False):
        raise TimelineError(
            f"{source} has the unknown OTIO schema {obj.original_schema_name}.{obj.original_schema_version}; "
            f"works: {WRAPPABLE_SCHEMAS}"
        )
    if isinstance(obj, (dict, list, otio._otio.AnyDictionary, otio._otio.AnyVector)):
        raise TimelineError(
            f"{source} is JSON but not OTIO (no OTIO_SCHEMA at the top); works: {WRAPPABLE_SCHEMAS}"
        )
    kind = getattr(obj, "schema_name", lambda: type(obj).__name__)()
    raise TimelineError(f"{source} holds a {kind}, not a timeline; works: {WRAPPABLE_SCHEMAS}")


def read_timeline(
    path: Path | str,
    *,
    rate: float | None = None,
    name: str | None = None,
    adapter_args: dict[str, Any] | None = None,
) -> otio.schema.Timeline:
    """Read a timeline file (.otio, .otioz, .otiod, .edl, .xml, .fcpxml) as an OTIO Timeline.

    ``rate`` is the frame rate of an EDL (EDLs do not say; the adapter assumes 24, and a drop-frame
    EDL read without 29.97 or 59.94 is refused naming the rate; 23.976 is read as 24000/1001). EDL
    speeds are read as CMX 3600 means them (see ``_normalise_edl_time_warps``), whether the source
    out is written where the source ends or as if at normal speed, as DaVinci Resolve writes it;
    each ``M2`` retimes the clip it names, and a dissolve's incoming clip shows its own media
    (``engine.timeline.edl``). The earliest record in becomes the timeline's ``global_start_time``
    and every track's clips sit at their record positions from there (``_place_edl_tracks``).
    ``name`` picks a timeline from a file that holds several. ``adapter_args`` go to the adapter
    (e.g. ``extract_to_directory`` for .otioz). Media are not checked here: call
    ``engine.timeline.check_media`` or ``require_media`` when they must exist.

    Raises ``TimelineNotFoundError``, ``AdapterNotAvailableError`` or ``TimelineError``.
    """
    path = Path(path)
    if not path.exists():
        raise TimelineNotFoundError(f"timeline file not found: {path}")
    adapter = adapter_for(path)
    options = dict(adapter_args or {})
    if rate is not None:
        if adapter != "cmx_3600":
            raise TimelineError(f"{path}: a rate is only needed for EDLs; {adapter} files carry their own")
        options["rate"] = float(exact_rate(rate))
    if adapter == "otiod":
        read_otio_json_text(path / "content.otio")
    elif adapter == "otioz":
        check_otioz(path)
    else:
        require_timeline_file(path)
    if adapter == "fcpx_xml":
        _refuse_fractional_fcpx_rates(path)
        use_exact_fcpx_times()
    try:
        if adapter == "cmx_3600":
            options.setdefault("rate", float(EDL_DEFAULT_RATE))
            text = _edl_text(path)
            text = prepare_edl_text(text, exact_rate(options["rate"]))
            result = otio.adapters.read_from_string(text, adapter_name=adapter, **options)
        elif adapter == "otio_json":
            text = read_otio_json_text(path)
            result = otio.adapters.read_from_string(text, adapter_name=adapter, **options)
        else:
            result = otio.adapters.read_from_file(str(path), adapter_name=adapter, **options)
    except TimelineError:
        raise
    except Exception as error:
        # Adapters are third-party parsers fed untrusted files: every failure they raise (OTIO,
        # JSON, XML, zip, KeyError, IndexError) means "this file cannot be read", said once here.
        if adapter == "cmx_3600" and "not a valid drop frame rate" in str(error):
            message = _drop_frame_message(path, text, options["rate"], given=rate is not None)
            raise TimelineError(message) from error
        raise TimelineError(f"{path} cannot be read as {adapter}: {_reason(error)}") from error
    timeline = as_timeline(result, source=str(path), name=name)
    if adapter == "cmx_3600":
        _normalise_edl_time_warps(timeline, exact_rate(options["rate"]))
        _place_edl_tracks(timeline, options["rate"])
    if adapter == "fcpx_xml":
        complete_fcpx_timeline(timeline, path)
    if adapter == "fcp_xml":
        complete_fcp7_timeline(timeline, path)
    log.debug("read %s via %s: %d tracks", path, adapter, len(timeline.tracks))
    return timeline


def _edl_text(path: Path) -> str:
    """An EDL's text: UTF-8, or Latin-1 (older systems write it) when it is not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise TimelineError(f"{path} cannot be read: {error.strerror or error}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _drop_frame_message(path: Path, text: str, rate: float, *, given: bool) -> str:
    """Why a drop-frame EDL was refused at ``rate``, naming the rate to read it at. The EDL does not
    say its rate (FCM says only drop frame), so none is assumed: 29.97, or 59.94 when a timecode
    counts past frame 29."""
    likely = "59.94" if drop_frame_rate(text) == Fraction(60000, 1001) else "29.97"
    assumed = "given" if given else "assumed when none is given"
    return (
        f"{path} has drop-frame timecodes (;), and {rate:g} fps ({assumed}) is not a valid drop frame rate; "
        f"read it with --rate {likely} (drop frame runs at 29.97 or 59.94 fps)"
    )


def _place_edl_tracks(timeline: otio.schema.Timeline, rate: float) -> None:
    """Put every track's clips at their EDL record positions, counted from the timeline's start.

    The adapter starts each track at its own first record in, written as a negative start of the
    track's ``source_range`` (-86464 for an audio track whose first event is at 01:00:02:16). The
    earliest record in of all tracks becomes the timeline's ``global_start_time`` (01:00:00:00),
    and a track that starts later gets a gap before its first clip instead of that range.
    """
    firsts = {}
    for track in timeline.tracks:
        start = track.source_range.start_time if track.source_range is not None else None
        firsts[id(track)] = round(-start.rescaled_to(rate).value) if start is not None else 0
    if not firsts:
        return
    timeline_start = min(firsts.values())
    for track in timeline.tracks:
        offset_frames = firsts[id(track)] - timeline_start
        track.source_range = None
        if offset_frames > 0:
            track.insert(0, otio.schema.Gap(source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(offset_frames, rate)
            )))
    timeline.global_start_time = otio.opentime.RationalTime(timeline_start, rate)
    log.debug("EDL %r starts at %s: every track placed from there", timeline.name,
              otio.opentime.to_timecode(timeline.global_start_time, rate))


def _refuse_fractional_fcpx_rates(path: Path) -> None:
    """Refuse FCPX XML at NTSC rates: the installed fcpx_xml adapter truncates 24000/1001 to 23 fps
    and drops fractional frames, so every position it reports would be wrong."""
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as error:
        raise TimelineError(f"{path} cannot be read as fcpx_xml: {_reason(error)}") from error
    for element in root.iter("format"):
        duration = element.get("frameDuration", "").removesuffix("s")
        try:
            rate = 1 / Fraction(duration)
        except (ValueError, ZeroDivisionError):
            continue
        if rate.denominator != 1:
            raise TimelineError(
                f"{path}: format {element.get('name') or element.get('id')!r} runs at {rate.numerator}/"
                f"{rate.denominator} fps, which the installed fcpx_xml adapter truncates to {int(rate)} fps; "
                "export the timeline as OTIO or FCP 7 XML (.xml) instead, or use whole-number rates"
            )


def _normalise_edl_time_warps(timeline: otio.schema.Timeline, rate: Fraction) -> None:
    """Read an EDL's M2 speeds the way CMX 3600 means them.

    ``M2 ... 000.0`` is CMX 3600's freeze frame, but the adapter reads it as a plain
    LinearTimeWarp of scalar 0 (a hold, as OTIO defines FreezeFrame): it becomes a FreezeFrame, so
    that the .otio written keeps the editor's intent in its schema.
    M2 speeds are frames per second of the timecode's nominal rate (12.0 in a 23.976 EDL is half
    speed); the adapter divides by the true rate (giving 0.5005), so NTSC EDLs are rescaled. Every
    speed is read back from the M2 line's one decimal, so 22.8 at 24 fps is 19/20 exactly, not the
    adapter's float 0.9500000000000001.
    """
    nominal = round(rate)
    for clip in timeline.find_clips():
        for index, effect in enumerate(clip.effects):
            plain_warp = isinstance(effect, otio.schema.LinearTimeWarp) and not isinstance(
                effect, otio.schema.FreezeFrame
            )
            if not plain_warp or not math.isfinite(effect.time_scalar):
                continue
            if effect.time_scalar == 0:
                clip.effects[index] = otio.schema.FreezeFrame(name=effect.name, metadata=effect.metadata)
                log.debug("EDL clip %r: M2 speed 0 read as a FreezeFrame", clip.name)
            else:
                m2_fps = Fraction(round(effect.time_scalar * float(rate), 1)).limit_denominator(10)
                effect.time_scalar = float(m2_fps / nominal)
                log.debug("EDL clip %r: M2 %s fps at %s read as scalar %s", clip.name, m2_fps, rate,
                          effect.time_scalar)


def media_base_dir(path: Path | str, *, extracted_to: Path | None = None) -> Path:
    """The folder that relative media paths in the timeline file at ``path`` start from.

    A folder bundle (.otiod) holds its media inside itself; a zip bundle (.otioz) only once
    extracted (read it with ``adapter_args={"extract_to_directory": folder}`` and pass that folder
    as ``extracted_to``); other files refer to media beside them.
    """
    path = Path(path).absolute()
    suffix = path.suffix.lower()
    if suffix == ".otiod":
        return path
    if suffix == ".otioz" and extracted_to is not None:
        return Path(extracted_to).absolute()
    return path.parent


def read_timeline_string(text: str, *, source: str = "string") -> otio.schema.Timeline:
    """Read OTIO JSON from a string (a clip or timeline sent by a client) as a Timeline."""
    check_json_depth(text, source)
    try:
        result = otio.adapters.read_from_string(text, adapter_name="otio_json")
    except Exception as error:
        # Same boundary as read_timeline: OTIO's JSON reader rejects bad input with many types.
        raise TimelineError(f"{source} cannot be read as OTIO JSON: {_reason(error)}") from error
    return as_timeline(result, source=source)


def write_timeline(
    timeline: otio.schema.Timeline,
    path: Path | str,
    *,
    adapter_args: dict[str, Any] | None = None,
    replace: bool = True,
) -> Path:
    """Write ``timeline`` to ``path`` in the format its suffix names, atomically; return the path.
    ``replace=False``: a file at ``path``, even one that appears while it is written, is kept
    (``OutputExistsError``; ``engine.fsutil.atomic_path``).

    EDL, FCP XML and FCPX XML go through their adapters (which refuse what their format cannot
    hold, e.g. several video tracks in one EDL); .otioz and .otiod bundle the media files, which
    must then exist. Raises ``AdapterNotAvailableError`` or ``TimelineError``, or ``OSError``
    naming ``path`` where an .otio file cannot be written (disk full); on failure nothing is left
    at ``path`` and an older file there is untouched.
    """
    path = Path(path)
    adapter = adapter_for(path)
    if adapter == "cmx_3600":
        timeline = records_from_start(timeline)
    directory = adapter == "otiod"
    with atomic_path(path, directory=directory, replace=replace) as temporary:
        if adapter in ("otioz", "otiod"):
            # The bundle writers refuse to overwrite; the placeholder only reserved the name.
            remove_quietly(temporary)
        try:
            if adapter == "otio_json":
                # OTIO's own file writer ignores a failed write: on a full disk it reported
                # success and left a truncated timeline; Python's write says so
                text = otio.adapters.write_to_string(timeline, adapter_name=adapter, **(adapter_args or {}))
            else:
                otio.adapters.write_to_file(
                    timeline, str(temporary), adapter_name=adapter, **(adapter_args or {})
                )
        except Exception as error:
            # Writers are third-party code too; each failure means this timeline cannot be
            # written in that format. atomic_path removes the temporary.
            raise TimelineError(f"cannot write {path} as {adapter}: {_reason(error)}") from error
        if adapter == "otio_json":
            try:
                temporary.write_text(text, encoding="utf-8")
            except OSError as error:  # named as the timeline, not its hidden temporary
                raise OSError(error.errno, error.strerror or str(error), str(path)) from error
        elif adapter == "otiod":
            _check_bundle_timeline(temporary / "content.otio", path)
    log.info("wrote %s", path)
    return path


def _check_bundle_timeline(content: Path, path: Path) -> None:
    """A folder bundle's timeline is written by OTIO's own file writer, which ignores a failed write
    (a full disk left a truncated ``content.otio`` and reported success): read it back whole."""
    try:
        json.loads(content.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise TimelineError(
            f"cannot write {path}: its timeline ({content.name}) did not reach the disk whole "
            f"(is the disk full?): {_reason(error)}"
        ) from None


def _reason(error: BaseException) -> str:
    text = str(error).strip().strip('"') or type(error).__name__
    return text.splitlines()[0] if text else type(error).__name__
