"""Constant speed changes of an FCP 7 XML timeline (Premiere Pro, Final Cut Pro 7, Resolve), read.

The fcp_xml adapter passes a clip's Time Remap filter on as a plain Effect (its XML in the
metadata) and reads the clipitem's ``in`` as a source frame, so a clip slowed to 50 % would play
at normal speed from the wrong frame. ``complete_fcp7_timeline`` gives such a clip what the filter
means, when it means one forward speed throughout: a ``LinearTimeWarp`` of that speed and the
source start it plays from.

Where the clip starts in its media: in FCP 7 XML the ``in`` and ``out`` of a clip with a constant
speed change count frames of the clip as retimed (Final Cut Pro 7 shows a clip slowed to 50 % twice
as long, and its In and Out points on that clock), so ``out - in`` equals the clip's length on the
timeline (``end - start``), and the source frame is the media's first plus ``in`` x speed (OTIO
issue #876 shows this on a Premiere export: ``in`` read as a source frame put a 200 % clip 85 frames
early). Some tools write ``in`` and ``out`` as source frames instead (``out - in`` is the timeline
length x speed). Which one a clip uses is read from its own ``in``/``out``/``start``/``end`` (one
frame of slack: Premiere writes ``out`` one short at times, OTIO issue #287); a clip that fits
neither, a variable speed (a Time Remap curve), reverse, a hold (speed 0) and a clip the adapter
gave no ``clipitem`` id to keep a TimeEffect that names why, which ``engine.timeline.segments``
refuses by name, never rendering at a wrong speed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from xml.etree import ElementTree

import opentimelineio as otio

from engine.errors import TimelineError
from engine.timeline.rates import exact_frames, exact_number, exact_rate

log = logging.getLogger(__name__)

FCP7_SUFFIX = " (FCP 7 XML)"
_SLACK_FRAMES = 1
_MARK = "chronoscope_time_remap"


@dataclass(frozen=True)
class TimeRemap:
    """What a Time Remap filter's parameters say."""

    speed_percent: Fraction | None
    """``speed`` (100 = real time); None when it is not a number."""
    speed_text: str
    reversed: bool
    variable: bool

    @property
    def changes_speed(self) -> bool:
        return self.speed_percent != 100 or self.reversed or self.variable

    @property
    def constant_forward(self) -> bool:
        if self.speed_percent is None or self.reversed or self.variable:
            return False
        return self.speed_percent > 0

    @property
    def speed(self) -> Fraction:
        """The speed as a time scalar, read as the simple fraction its digits were rounded from
        when there is one (``33.3333`` is 1/3, ``50`` is 1/2)."""
        if self.speed_percent is None:
            raise ValueError(f"speed {self.speed_text!r} is not a number")
        written = self.speed_percent / 100
        decimals = len(self.speed_text.partition(".")[2])
        simple = written.limit_denominator(1000)
        return simple if abs(simple - written) <= Fraction(1, 2 * 10**decimals * 100) else written

    def label(self) -> str:
        """``Time Remap at 50 %``, ``Time Remap at variable speed, reversed``."""
        detail = "variable speed" if self.variable else f"{self.speed_text} %"
        return f"Time Remap at {detail}{', reversed' if self.reversed else ''}"


def time_remap_of(effect: otio.schema.Effect) -> TimeRemap | None:
    """The Time Remap filter ``effect`` carries as the fcp_xml adapter passed it on, else None."""
    metadata = effect.metadata.get("fcp_xml") if hasattr(effect.metadata, "get") else None
    if not hasattr(metadata, "get") or str(metadata.get("effectid", "")).lower() != "timeremap":
        return None
    parameters = metadata.get("parameter") or []
    if hasattr(parameters, "get"):
        parameters = [parameters]
    values = {
        str(item.get("parameterid", "")).lower(): str(item.get("value", "")).strip()
        for item in parameters
        if hasattr(item, "get")
    }
    speed_text = values.get("speed", "100") or "100"
    try:
        speed: Fraction | None = Fraction(speed_text)
    except (ValueError, ZeroDivisionError):
        speed = None
    try:
        variable = Fraction(values.get("variablespeed") or 0) != 0
    except (ValueError, ZeroDivisionError):
        variable = True
    reversed_ = values.get("reverse", "").upper() == "TRUE" or (speed is not None and speed < 0)
    return TimeRemap(speed, speed_text, reversed_, variable)


def drop_time_remap_filters(clip: otio.schema.Clip) -> None:
    """Take the Time Remap filters out of the FCP 7 XML the adapter keeps on ``clip`` (its
    ``fcp_xml`` metadata, written back into any XML made of the clip): a clip re-pointed at its
    slowed render plays it at 100 %, and an XML copy keeping the filter played it slowed again."""
    metadata = clip.metadata.get("fcp_xml")
    if not hasattr(metadata, "get") or metadata.get("filter") is None:
        return
    filters = metadata["filter"]
    listed = [filters] if hasattr(filters, "get") else list(filters)
    kept = [item for item in listed if not _is_time_remap_filter(item)]
    if len(kept) == len(listed):
        return
    if kept:
        metadata["filter"] = kept if len(kept) > 1 else kept[0]
    else:
        del metadata["filter"]


def _is_time_remap_filter(item: object) -> bool:
    effect = item.get("effect") if hasattr(item, "get") else None
    return hasattr(effect, "get") and str(effect.get("effectid", "")).lower() == "timeremap"


def complete_fcp7_timeline(timeline: otio.schema.Timeline, path: Path) -> None:
    """Turn each constant-speed Time Remap of ``timeline`` (read from ``path`` by the fcp_xml
    adapter) into a LinearTimeWarp from the right source frame; see the module doc."""
    remapped = [
        (clip, index, remap)
        for clip in timeline.find_clips()
        for index, effect in enumerate(clip.effects)
        if not isinstance(effect, otio.schema.TimeEffect)
        and (remap := time_remap_of(effect)) is not None
        and remap.changes_speed
    ]
    if not remapped:
        return
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as error:
        raise TimelineError(f"{path} cannot be read as fcp_xml: {error}") from error
    clipitems = {
        element.get("id"): element
        for element in root.iter("clipitem")
        if element.get("id") and element.find("in") is not None
    }
    for clip, index, remap in remapped:
        metadata = clip.metadata.get("fcp_xml")
        element = clipitems.get(metadata.get("@id")) if hasattr(metadata, "get") else None
        clip.effects[index] = _warp_for(clip, clip.effects[index], remap, element)


def _warp_for(
    clip: otio.schema.Clip,
    effect: otio.schema.Effect,
    remap: TimeRemap,
    element: ElementTree.Element | None,
) -> otio.schema.TimeEffect:
    """The time effect that replaces ``effect``; moves the clip's source start when needed."""
    label = remap.label()
    if not remap.constant_forward:
        return _refused(label, "a hold (speed 0)" if remap.speed_percent == 0 else "", effect)
    if clip.source_range is None or element is None:
        return _refused(label, "its clipitem has no id to find its in and out points by", effect)
    speed = remap.speed
    counted = _in_out_clock(element, speed)
    if counted is None:
        return _refused(label, _clock_problem(element, speed), effect)
    if counted == "retimed":
        _start_from_retimed_in(clip, speed)
    log.debug("FCP 7 XML clip %r: %s, in and out counted on the %s clock", clip.name, label, counted)
    warp = otio.schema.LinearTimeWarp(
        name=label + FCP7_SUFFIX, time_scalar=float(speed), metadata=_plain(effect.metadata)
    )
    warp.effect_name = "Time Remap"
    return warp


def _in_out_clock(element: ElementTree.Element, speed: Fraction) -> str | None:
    """``retimed`` when the clipitem's ``out - in`` is its length on the timeline (FCP 7's own
    convention), ``source`` when it is that length x speed, None when it is neither. A clip whose
    ``start`` or ``end`` is -1 (a transition's cut point decides it) is taken as FCP 7 writes it."""
    try:
        first, last = int(_text(element, "in")), int(_text(element, "out"))
        start, end = int(_text(element, "start")), int(_text(element, "end"))
    except ValueError:
        return None
    if start < 0 or end < 0:
        return "retimed"
    used, length = last - first, end - start
    if abs(used - length) <= _SLACK_FRAMES:
        return "retimed"
    if abs(used - length * speed) <= _SLACK_FRAMES:
        return "source"
    return None


def _clock_problem(element: ElementTree.Element, speed: Fraction) -> str:
    first, last = _text(element, "in"), _text(element, "out")
    start, end = _text(element, "start"), _text(element, "end")
    try:
        used, length = int(last) - int(first), int(end) - int(start)
    except ValueError:
        return f"its clipitem's in, out, start or end is not a whole number ({first}, {last}, {start}, {end})"
    return (
        f"its in and out points ({first} to {last}, {used} frames) fit neither its {length} frames on "
        f"the timeline nor the {float(length * speed):g} source frames they play at that speed"
    )


def _start_from_retimed_in(clip: otio.schema.Clip, speed: Fraction) -> None:
    """The adapter made the source start media start + ``in`` (+ a transition's offset), all on
    the retimed clock; the source frame is media start + that offset x speed."""
    start = clip.source_range.start_time
    rate = exact_rate(start.rate)
    available = clip.media_reference.available_range if clip.media_reference else None
    media_start = exact_frames(available.start_time, rate) if available is not None else Fraction(0)
    offset = exact_frames(start, rate) - media_start
    source_start = media_start + offset * speed
    clip.source_range = otio.opentime.TimeRange(
        otio.opentime.RationalTime(float(source_start), start.rate), clip.source_range.duration
    )


def _refused(label: str, reason: str, effect: otio.schema.Effect) -> otio.schema.TimeEffect:
    """A TimeEffect named ``<label> (FCP 7 XML)[: <reason>]``, which ``segments`` refuses by name."""
    name = label + FCP7_SUFFIX + (f": {reason}" if reason else "")
    return otio.schema.TimeEffect(name=name, effect_name="Time Remap", metadata=_plain(effect.metadata))


def _plain(metadata: otio.core.AnyDictionary) -> dict:
    return {key: metadata[key] for key in metadata}


def _text(element: ElementTree.Element, tag: str) -> str:
    child = element.find(tag)
    return (child.text or "").strip() if child is not None else ""


@dataclass(frozen=True)
class WrittenRemap:
    """A clip to be written with a Time Remap: its speed, how far its ``in`` and ``out`` move from
    the source frames the adapter writes to the retimed clip's clock, and whether the filter it
    was read with (same speed) is still in its metadata."""

    speed: Fraction
    shift_frames: int
    filter_kept: bool


def mark_time_remaps(timeline: otio.schema.Timeline) -> tuple[dict[str, WrittenRemap], str]:
    """Prepare ``timeline`` (a copy: its clips' metadata change) for the fcp_xml writer, which
    drops speed changes: each clip at one forward speed other than 1 is marked, for
    ``time_remapped_xml`` to give its clipitem a Time Remap and in/out points on the retimed clock.
    Returns the marks, or ``({}, why)`` when a clip's speed change cannot be written that way."""
    remaps: dict[str, WrittenRemap] = {}
    for track in timeline.tracks:
        for clip in track.find_clips():
            problem = _mark(clip, remaps)
            if problem:
                where = f"clip {clip.name!r} on {track.name or track.kind}"
                return {}, f"{where} keeps its speed change: {problem}"
    return remaps, ""


def _mark(clip: otio.schema.Clip, remaps: dict[str, WrittenRemap]) -> str:
    """Mark ``clip`` in ``remaps`` when it plays at one forward speed other than 1; say why not
    when its speed change cannot be written as a Time Remap."""
    speed, effect_name = _one_forward_speed(clip)
    if effect_name:
        return f"{effect_name}, which FCP 7 XML cannot hold as one forward speed"
    if speed == 1 or clip.source_range is None:
        return ""
    rate = exact_rate(clip.source_range.start_time.rate)
    available = clip.media_reference.available_range if clip.media_reference else None
    media_start = exact_frames(available.start_time, rate) if available is not None else Fraction(0)
    offset = exact_frames(clip.source_range.start_time, rate) - media_start
    retimed_in = offset / speed
    if retimed_in.denominator != 1:
        return (
            f"{_percent(speed)} % from source frame {float(offset):g}, whose in point would fall between two "
            f"frames of the retimed clip ({float(retimed_in):g}), where FCP 7 XML counts it"
        )
    metadata = dict(clip.metadata.get("fcp_xml") or {})
    kept = any(
        (remap := time_remap_of(otio.schema.Effect(metadata={"fcp_xml": item["effect"]}))) is not None
        and remap.constant_forward
        and remap.speed == speed
        for item in _filters(metadata)
    )
    key = str(len(remaps) + 1)
    metadata[_MARK] = key
    clip.metadata["fcp_xml"] = metadata
    if not kept:
        drop_time_remap_filters(clip)
    remaps[key] = WrittenRemap(speed, int(retimed_in) - round(offset), kept)
    return ""


def time_remapped_xml(text: str, remaps: dict[str, WrittenRemap]) -> str:
    """The fcp_xml writer's ``text`` with each marked clipitem's ``in`` and ``out`` on the retimed
    clock and its Time Remap filter (see ``mark_time_remaps``)."""
    root = ElementTree.fromstring(text)
    for element in root.iter("clipitem"):
        mark = element.find(_MARK)
        if mark is None:
            continue
        remap = remaps[(mark.text or "").strip()]
        element.remove(mark)
        for tag in ("in", "out"):
            point = element.find(tag)
            point.text = str(int(point.text) + remap.shift_frames)
        if not remap.filter_kept:
            element.append(_time_remap_filter(remap.speed))
    ElementTree.indent(root, space="    ")
    header = '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>\n'
    return header + ElementTree.tostring(root, "unicode") + "\n"


def _one_forward_speed(clip: otio.schema.Clip) -> tuple[Fraction, str]:
    speed = Fraction(1)
    for effect in clip.effects:
        if not isinstance(effect, otio.schema.TimeEffect) or not getattr(effect, "enabled", True):
            continue
        named = effect.name or effect.effect_name or effect.schema_name()
        if not isinstance(effect, otio.schema.LinearTimeWarp) or isinstance(effect, otio.schema.FreezeFrame):
            return speed, named
        try:
            scalar = exact_number(effect.time_scalar, what="time_scalar")
        except TimelineError:
            return speed, named
        if scalar <= 0:
            return speed, named
        speed *= scalar
    return speed, ""


def _filters(metadata: dict) -> list:
    filters = metadata.get("filter")
    if filters is None:
        return []
    listed = [filters] if hasattr(filters, "get") else list(filters)
    return [item for item in listed if hasattr(item, "get") and hasattr(item.get("effect"), "get")]


def _percent(speed: Fraction) -> str:
    return f"{float(speed * 100):.4f}".rstrip("0").rstrip(".")


def _time_remap_filter(speed: Fraction) -> ElementTree.Element:
    """A constant, forward Time Remap as Final Cut Pro 7 writes one."""
    effect = ElementTree.Element("effect")
    for tag, text in (
        ("name", "Time Remap"),
        ("effectid", "timeremap"),
        ("effectcategory", "motion"),
        ("effecttype", "motion"),
        ("mediatype", "video"),
    ):
        ElementTree.SubElement(effect, tag).text = text
    for name, value in (
        ("variablespeed", "0"),
        ("speed", _percent(speed)),
        ("reverse", "FALSE"),
        ("frameblending", "FALSE"),
    ):
        parameter = ElementTree.SubElement(effect, "parameter")
        ElementTree.SubElement(parameter, "parameterid").text = name
        ElementTree.SubElement(parameter, "name").text = name
        ElementTree.SubElement(parameter, "value").text = value
    wrapper = ElementTree.Element("filter")
    wrapper.append(effect)
    return wrapper
