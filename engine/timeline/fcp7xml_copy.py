"""Speed changes in an FCP 7 XML written back for the editor (the fcp_xml writer drops them).

The adapter writes a clip's effects nowhere, but writes back the FCP 7 XML it kept in the clip's
metadata, Time Remap filters included, and writes ``in``/``out`` as source frames. So:

- a clip re-pointed at its render plays that at 100 %: ``drop_time_remap_filters`` takes its Time
  Remap out of the kept XML (a copy keeping it played the render slowed again);
- a clip still at one forward speed (sped up and passed through) is marked before writing
  (``mark_time_remaps``) and its clipitem put right after (``time_remapped_xml``): ``in`` and
  ``out`` on the retimed clip's clock, as FCP 7 and Premiere write them (``engine.timeline.fcp7xml``
  reads them so), ``duration`` the media's length on that clock, and the Time Remap it was read
  with kept (or a new one, FCP 7's parameters, without ``graphdict`` keyframes);
- a clip whose Time Remap could not be read (variable speed, reverse, a hold) was never moved or
  rendered: it is written back as it was read, filter and all.

A speed change that FCP 7 XML cannot hold as one forward speed (a FreezeFrame, a start that falls
between two frames of the retimed clip) is named; the caller then writes no XML.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from xml.etree import ElementTree

import opentimelineio as otio

from engine.errors import TimelineError
from engine.timeline.fcp7xml import media_offset_frames, parse_time_remap, refused_time_remap
from engine.timeline.rates import exact_frames, exact_number

_MARK = "chronoscope_time_remap"
"""A clipitem child the writer copies from the clip's metadata, so the clipitem can be found."""


@dataclass(frozen=True)
class WrittenRemap:
    """A clip to be written with a Time Remap: its speed, how far its ``in`` and ``out`` move from
    the source frames the adapter writes to the retimed clip's clock, its media's length on that
    clock, whether the filter it was read with (same speed) is still in its metadata, and the
    media type of its track."""

    speed: Fraction
    shift_frames: int
    duration_frames: int | None
    filter_kept: bool
    media_type: str


def drop_time_remap_filters(clip: otio.schema.Clip) -> None:
    """Take the Time Remap filters out of the FCP 7 XML the adapter keeps on ``clip`` (its
    ``fcp_xml`` metadata, written back into any XML made of the clip)."""
    metadata = clip.metadata.get("fcp_xml")
    if not hasattr(metadata, "get") or metadata.get("filter") is None:
        return
    listed = _filters(metadata)
    kept = [item for item in listed if parse_time_remap(item.get("effect")) is None]
    if len(kept) == len(listed):
        return
    if kept:
        metadata["filter"] = kept if len(kept) > 1 else kept[0]
    else:
        del metadata["filter"]


def mark_time_remaps(timeline: otio.schema.Timeline) -> tuple[dict[str, WrittenRemap], str]:
    """Prepare ``timeline`` (a copy: its clips' metadata change) for the fcp_xml writer: each clip
    at one forward speed other than 1 is marked for ``time_remapped_xml``. Returns the marks, or
    ``({}, why)`` when a clip's speed change cannot be written in FCP 7 XML."""
    remaps: dict[str, WrittenRemap] = {}
    for track in timeline.tracks:
        media_type = "audio" if track.kind == otio.schema.TrackKind.Audio else "video"
        for clip in track.find_clips():
            problem = _mark(clip, remaps, media_type)
            if problem:
                where = f"clip {clip.name!r} on {track.name or track.kind}"
                return {}, f"{where} keeps its speed change: {problem}"
    return remaps, ""


def _mark(clip: otio.schema.Clip, remaps: dict[str, WrittenRemap], media_type: str) -> str:
    """Mark ``clip`` in ``remaps`` when it plays at one forward speed other than 1; say why not
    when its speed change cannot be written as a Time Remap."""
    if any(refused_time_remap(effect) for effect in clip.effects):
        return ""  # never moved nor rendered: the adapter writes it back as it was read
    speed, effect_name = _one_forward_speed(clip)
    if effect_name:
        return f"{effect_name}, which FCP 7 XML cannot hold as one forward speed"
    if speed == 1 or clip.source_range is None:
        return ""
    rate, _, offset = media_offset_frames(clip)
    retimed_in = offset / speed
    if retimed_in.denominator != 1:
        return (
            f"{_percent(speed)} % from source frame {float(offset):g}, whose in point would fall between two "
            f"frames of the retimed clip ({float(retimed_in):g}), where FCP 7 XML counts it"
        )
    available = clip.media_reference.available_range if clip.media_reference else None
    media_frames = exact_frames(available.duration, rate) if available is not None else Fraction(0)
    metadata = dict(clip.metadata.get("fcp_xml") or {})
    kept = any(
        (remap := parse_time_remap(item.get("effect"))) is not None
        and remap.constant_forward
        and remap.speed == speed
        for item in _filters(metadata)
    )
    key = str(len(remaps) + 1)
    metadata[_MARK] = key
    clip.metadata["fcp_xml"] = metadata
    if not kept:
        drop_time_remap_filters(clip)
    remaps[key] = WrittenRemap(
        speed=speed,
        shift_frames=int(retimed_in) - round(offset),
        duration_frames=math.ceil(media_frames / speed) if media_frames > 0 else None,
        filter_kept=kept,
        media_type=media_type,
    )
    return ""


def time_remapped_xml(text: str, remaps: dict[str, WrittenRemap]) -> str:
    """The fcp_xml writer's ``text`` with each marked clipitem's ``in``, ``out`` and ``duration``
    on the retimed clock and its Time Remap filter (see ``mark_time_remaps``)."""
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
        duration = element.find("duration")
        if duration is not None and remap.duration_frames is not None:
            duration.text = str(remap.duration_frames)
        if not remap.filter_kept:
            element.append(_time_remap_filter(remap.speed, remap.media_type))
    ElementTree.indent(root, space="    ")
    header = '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>\n'
    return header + ElementTree.tostring(root, "unicode") + "\n"


def _one_forward_speed(clip: otio.schema.Clip) -> tuple[Fraction, str]:
    """The clip's combined speed, or the name of a time effect that is not a forward speed."""
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


def _filters(metadata) -> list:
    """The clip's ``filter`` entries (one or several) that hold an ``effect``."""
    filters = metadata.get("filter")
    if filters is None:
        return []
    listed = [filters] if hasattr(filters, "get") else list(filters)
    return [item for item in listed if hasattr(item, "get") and hasattr(item.get("effect"), "get")]


def _percent(speed: Fraction) -> str:
    return f"{float(speed * 100):.4f}".rstrip("0").rstrip(".")


def _time_remap_filter(speed: Fraction, media_type: str) -> ElementTree.Element:
    """A constant, forward Time Remap as Final Cut Pro 7 writes one (without graphdict keyframes)."""
    effect = ElementTree.Element("effect")
    for tag, text in (
        ("name", "Time Remap"),
        ("effectid", "timeremap"),
        ("effectcategory", "motion"),
        ("effecttype", "motion"),
        ("mediatype", media_type),
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
