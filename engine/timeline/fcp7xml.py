"""Constant speed changes of an FCP 7 XML timeline (Premiere Pro, Final Cut Pro 7, Resolve), read.

The fcp_xml adapter passes a clip's Time Remap filter on as a plain Effect (its XML in the
metadata) and reads the clipitem's ``in`` as a source frame, so a clip slowed to 50 % would play
at normal speed from the wrong frame. ``complete_fcp7_timeline`` gives such a clip what the filter
means, when it means one forward speed throughout: a ``LinearTimeWarp`` of that speed and the
source start it plays from. (``engine.timeline.fcp7xml_copy`` writes them back.)

Where the clip starts in its media: in FCP 7 XML the ``in`` and ``out`` of a clip with a constant
speed change count frames of the clip as retimed (Final Cut Pro 7 shows a clip slowed to 50 % twice
as long, with its In and Out points on that clock), so ``out - in`` is the length the clip uses
(its length on the timeline, plus what a transition at either end overlaps), in the clipitem's
rate; the source frame is the media's first plus ``in`` x speed (OTIO issue #876 shows this on a
Premiere export: ``in`` read as a source frame put a 200 % clip 85 frames early; third-party xmeml
writers checked against real FCP retimes agree). Some tools write ``in`` and ``out`` as source
frames instead (``out - in`` is that length x speed). Which one a clip uses is read from its own
``in``/``out`` (one frame of slack: Premiere writes ``out`` one short at times, OTIO issue #287).

A clip that fits neither, a variable speed (a Time Remap curve), reverse, a hold (speed 0), a speed
that is not a number and a clip the adapter gave no ``clipitem`` id keep a TimeEffect that names
why (``refused_time_remap``), which ``engine.timeline.segments`` refuses by name, never rendering
at a wrong speed or from a guessed frame, with what an editor can do (``remap_advice``): reverse and
ramps are not read from OTIO or EDL exports either, so they are not offered there. A Time Remap
filter switched off (``<enabled>FALSE``) is no speed change. Not read: the ``graphdict`` keyframes
of a constant speed (the ``speed`` value is taken; FCP 7 writes the keyframes on the same line).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal
from xml.etree import ElementTree

import opentimelineio as otio

from engine.errors import TimelineError
from engine.timeline.rates import exact_frames, exact_rate

log = logging.getLogger(__name__)

FCP7_SUFFIX = " (FCP 7 XML)"
"""Ends the name of every time effect made from a Time Remap (``segments`` names it in refusals)."""
_SLACK_FRAMES = 1
_TRUE = ("TRUE", "1")


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
        """The speed as a time scalar (call only when ``speed_percent`` is a number), read as the
        simple fraction its digits were rounded from when there is one (``33.3333`` is 1/3)."""
        written = Fraction(self.speed_percent) / 100
        decimals = len(self.speed_text.partition(".")[2])
        simple = written.limit_denominator(1000)
        return simple if abs(simple - written) <= Fraction(1, 2 * 10**decimals * 100) else written

    def label(self) -> str:
        """``Time Remap at 50 %``, ``Time Remap at variable speed, reversed``."""
        if self.variable:
            detail = "at variable speed"
        elif self.speed_percent is None:
            detail = f"with speed {self.speed_text!r}"
        else:
            detail = f"at {self.speed_text} %"
        return f"Time Remap {detail}{', reversed' if self.reversed else ''}"


REVERSE_ADVICE = (
    "reverse playback is not rendered from any timeline format (OTIO and EDLs included): render the "
    "reversed clip in the editor first (Premiere: Render and Replace) and export again"
)
RAMP_ADVICE = (
    "one constant speed cannot hold a ramp (nor can an OTIO LinearTimeWarp or an EDL M2 line): split "
    "the clip where its speed changes into pieces of constant speed, or render the ramped clip in the "
    "editor first, and export again"
)
EXPORT_ADVICE = "export the timeline as OTIO or an EDL (their speed changes are read)"


def remap_advice(label: str) -> str:
    """What an editor can do about a Time Remap refused under ``label`` (``TimeRemap.label``): a
    reversed one or a ramp cannot be rendered from another export either; anything else can."""
    if label.endswith(", reversed"):
        return REVERSE_ADVICE
    if label.startswith("Time Remap at variable speed"):
        return RAMP_ADVICE
    return EXPORT_ADVICE


def parse_time_remap(effect: Mapping[str, Any]) -> TimeRemap | None:
    """The Time Remap in an ``effect`` element as the fcp_xml adapter turns XML into a dict (its
    ``effectid`` and ``parameter`` list), else None."""
    if not hasattr(effect, "get") or str(effect.get("effectid", "")).lower() != "timeremap":
        return None
    parameters = effect.get("parameter") or []
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
    reversed_ = values.get("reverse", "").upper() in _TRUE or (speed is not None and speed < 0)
    return TimeRemap(speed, speed_text, reversed_, variable)


def time_remap_of(effect: otio.schema.Effect) -> TimeRemap | None:
    """The Time Remap filter ``effect`` carries as the fcp_xml adapter passed it on, else None."""
    metadata = effect.metadata.get("fcp_xml") if hasattr(effect.metadata, "get") else None
    return parse_time_remap(metadata) if metadata is not None else None


def refused_time_remap(effect: otio.schema.Effect) -> bool:
    """Whether ``effect`` is a Time Remap that ``complete_fcp7_timeline`` could not read (the
    clip keeps it, is not rendered, and is written back as it was read)."""
    return (
        isinstance(effect, otio.schema.TimeEffect)
        and not isinstance(effect, otio.schema.LinearTimeWarp | otio.schema.FreezeFrame)
        and FCP7_SUFFIX in (effect.name or "")
        and time_remap_of(effect) is not None
    )


def media_offset_frames(clip: otio.schema.Clip) -> tuple[Fraction, Fraction, Fraction]:
    """``(rate, media start, offset)`` of ``clip`` (which has a source range): its rate, where its
    media starts (the file's start timecode as the adapter read it, 0 without one) and how far
    into the media its source range starts, in frames of that rate."""
    start = clip.source_range.start_time
    rate = exact_rate(start.rate)
    available = clip.media_reference.available_range if clip.media_reference else None
    media_start = exact_frames(available.start_time, rate) if available is not None else Fraction(0)
    return rate, media_start, exact_frames(start, rate) - media_start


def complete_fcp7_timeline(timeline: otio.schema.Timeline, path: Path) -> None:
    """Turn each constant-speed Time Remap of ``timeline`` (read from ``path`` by the fcp_xml
    adapter) into a LinearTimeWarp from the right source frame; see the module doc."""
    remapped = [clip for clip in timeline.find_clips() if any(_changes_speed(e) for e in clip.effects)]
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
    for clip in remapped:
        metadata = clip.metadata.get("fcp_xml")
        element = clipitems.get(metadata.get("@id")) if hasattr(metadata, "get") else None
        effects = []
        for effect in clip.effects:
            remap = None if isinstance(effect, otio.schema.TimeEffect) else time_remap_of(effect)
            if remap is None or not remap.changes_speed:
                effects.append(effect)
            elif element is not None and _switched_off(element):
                log.info("FCP 7 XML clip %r: its %s is switched off", clip.name, remap.label())
            else:
                effects.append(_warp_for(clip, effect, remap, element))
        clip.effects[:] = effects


def _changes_speed(effect: otio.schema.Effect) -> bool:
    remap = time_remap_of(effect)
    return remap is not None and remap.changes_speed


def _switched_off(element: ElementTree.Element) -> bool:
    """Whether every Time Remap filter of the clipitem is switched off (``<enabled>FALSE``)."""
    states = [
        _text(item, "enabled").upper()
        for item in element.findall("filter")
        if _text(item, "effect/effectid").lower() == "timeremap"
    ]
    return bool(states) and all(state == "FALSE" for state in states)


def _warp_for(
    clip: otio.schema.Clip,
    effect: otio.schema.Effect,
    remap: TimeRemap,
    element: ElementTree.Element | None,
) -> otio.schema.TimeEffect:
    """The time effect that replaces ``effect``; moves the clip's source start when needed."""
    label = remap.label()
    if remap.speed_percent is None:
        return _refused(label, f"{remap.speed_text!r} is not a speed (FCP 7 writes 50 or 33.33)", effect)
    if not remap.constant_forward:
        return _refused(label, "a hold (speed 0)" if remap.speed_percent == 0 else "", effect)
    if clip.source_range is None:
        return _refused(label, "the clip has no source range", effect)
    if element is None:
        return _refused(label, "its clipitem has no id, so its in and out points cannot be found", effect)
    speed = remap.speed
    used, head = _used_frames(clip)
    clock, problem = _in_out_clock(element, used, speed)
    if clock is None:
        return _refused(label, problem, effect)
    rate, media_start, offset = media_offset_frames(clip)
    # the adapter started the clip at media start + in + the head transition's overlap
    if clock == "retimed":
        source_start = media_start + offset * speed
    else:
        source_start = media_start + offset + head * (speed - 1)
    clip.source_range = otio.opentime.TimeRange(
        otio.opentime.RationalTime(float(source_start), clip.source_range.start_time.rate),
        clip.source_range.duration,
    )
    log.debug("FCP 7 XML clip %r: %s, in and out counted on the %s clock", clip.name, label, clock)
    warp = otio.schema.LinearTimeWarp(
        name=label + FCP7_SUFFIX, time_scalar=float(speed), metadata=dict(effect.metadata.items())
    )
    warp.effect_name = "Time Remap"
    return warp


def _used_frames(clip: otio.schema.Clip) -> tuple[Fraction, Fraction]:
    """``(used, head)``: the frames the clip uses on the timeline's clock (its length there plus
    the overlap of a transition at either end), and the overlap at its head, in its own rate."""
    rate = exact_rate(clip.source_range.start_time.rate)
    used = exact_frames(clip.source_range.duration, rate)
    head = Fraction(0)
    track = clip.parent()
    if track is None:
        return used, head
    index = track.index(clip)
    before = track[index - 1] if index > 0 else None
    after = track[index + 1] if index + 1 < len(track) else None
    if isinstance(before, otio.schema.Transition):
        head = exact_frames(before.in_offset, rate)
    if isinstance(after, otio.schema.Transition):
        used += exact_frames(after.out_offset, rate)
    return used + head, head


def _in_out_clock(
    element: ElementTree.Element, used: Fraction, speed: Fraction
) -> tuple[Literal["retimed", "source"] | None, str]:
    """``retimed`` when the clipitem's ``out - in`` is ``used`` (FCP 7's own convention),
    ``source`` when it is ``used`` x speed; else None and why."""
    first, last = _text(element, "in"), _text(element, "out")
    try:
        points = int(last) - int(first)
    except ValueError:
        return None, f"its in and out points ({first!r}, {last!r}) are not whole numbers"
    if abs(points - used) <= _SLACK_FRAMES:
        return "retimed", ""
    if abs(points - used * speed) <= _SLACK_FRAMES:
        return "source", ""
    return None, (
        f"its in and out points ({first} to {last}, {points} frames) fit neither the {float(used):g} frames "
        f"it uses on the timeline nor the {float(used * speed):g} source frames they play at that speed"
    )


def _refused(label: str, reason: str, effect: otio.schema.Effect) -> otio.schema.TimeEffect:
    """A TimeEffect named ``<label> (FCP 7 XML)[: <reason>]``, which ``segments`` refuses by name."""
    name = label + FCP7_SUFFIX + (f": {reason}" if reason else "")
    return otio.schema.TimeEffect(name=name, effect_name="Time Remap", metadata=dict(effect.metadata.items()))


def _text(element: ElementTree.Element, path: str) -> str:
    child = element.find(path)
    return (child.text or "").strip() if child is not None else ""
