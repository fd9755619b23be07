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
from engine.timeline.rates import exact_frames, exact_rate

log = logging.getLogger(__name__)

FCP7_SUFFIX = " (FCP 7 XML)"
_SLACK_FRAMES = 1


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
