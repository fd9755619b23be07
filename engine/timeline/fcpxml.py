"""What the fcpx_xml adapter leaves out of an FCPXML timeline, put back from the file itself.

- **Media of FCPXML 1.9 and later.** Those versions name an asset's file in a ``media-rep``
  child (``<media-rep kind="original-media" src="file:///..."/>``), not in the asset's ``src``,
  and the adapter then gives every clip a MissingReference. Each such clip gets the file of the
  asset its element refers to, with the asset's start and duration as the available range.
- **Exact times.** The adapter turns FCPXML times into frames with ``int(float(a) / float(b) *
  fps)``, so ``29/25s`` became 28 frames (float error, then truncation): clips one frame short,
  shifted, showing the wrong source frame. ``use_exact_fcpx_times`` replaces its two converters
  (``to_rational_time``, and the reader's ``_number_of_frames`` for offsets), once, by exact ones
  that round to the nearest frame.
- **Start timecode.** A sequence starting at ``tcStart="3600s"`` (01:00:00:00) places its clips at
  offsets from 3600 s; the adapter turns that hour into a gap at the head of every track. The
  gap becomes the timeline's ``global_start_time`` again (``_restore_start_timecode``).
- **Speed changes.** The adapter drops ``timeMap`` (a clip's retiming curve), so a slowed clip
  would read as real time. Apple's DTD: a ``timept``'s ``time`` is the "new adjusted clip time"
  and its ``value`` the "original clip time"; a retimed clip's ``start`` and ``duration`` are in
  adjusted time. So an ``asset-clip`` whose map has one speed throughout (two points, or several
  on one straight line; FCP's "Slow 50 %") plays from original time map(start) at that speed:
  it gets that source start and a LinearTimeWarp (a FreezeFrame for a hold). Anything else (a
  ramp, reverse, a map on a ``clip`` element, a start outside the map) gets a TimeEffect named for
  it, which ``engine.timeline.segments`` refuses by name.

Clips are matched to their XML elements by name (the adapter keeps no other link), retimed ones
by name and ``start``. A name that several elements share is matched only when they all agree
(same asset, all retimed or none, one timeMap per start); otherwise a retimed clip refuses the
whole file, since no guess is safe.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from xml.etree import ElementTree

import opentimelineio as otio

from engine.errors import TimelineError
from engine.timeline.rates import exact_number, exact_rate

log = logging.getLogger(__name__)

TIME_MAP_SUFFIX = " (FCPXML timeMap)"


@dataclass(frozen=True)
class _Retime:
    """What a clip element's timeMap means: a constant speed from a source start, or why not."""

    speed: Fraction | None = None
    source_start_s: Fraction | None = None
    problem: str = ""


@dataclass
class _Asset:
    src: str
    start_s: Fraction | None
    duration_s: Fraction | None


@dataclass
class _Uses:
    assets: set[str] = field(default_factory=set)
    retimed: set[bool] = field(default_factory=set)
    retimes: dict[Fraction, set[_Retime]] = field(default_factory=dict)
    """By the element's ``start`` (adjusted time, which the adapter takes as the source start)."""


def _seconds(value: str | None) -> Fraction | None:
    """FCPXML time (``3600s``, ``1001/24000s``, ``0s``) in seconds, or None."""
    if not value:
        return None
    try:
        return Fraction(value.strip().removesuffix("s"))
    except (ValueError, ZeroDivisionError):
        return None


def _assets(root: ElementTree.Element) -> dict[str, _Asset]:
    assets = {}
    for asset in root.iter("asset"):
        src = asset.get("src") or ""
        if not src:
            reps = asset.findall("media-rep")
            original = [rep for rep in reps if rep.get("kind") == "original-media"] or reps
            src = original[0].get("src", "") if original else ""
        if asset.get("id") and src:
            start, duration = _seconds(asset.get("start")), _seconds(asset.get("duration"))
            assets[asset.get("id")] = _Asset(src, start, duration)
    return assets


def _uses_by_name(root: ElementTree.Element, assets: dict[str, _Asset]) -> dict[str, _Uses]:
    """For each clip name: the assets its elements refer to, and whether they carry a timeMap."""
    uses: dict[str, _Uses] = {}
    parents = {child: parent for parent in root.iter() for child in parent}
    for element in root.iter():
        ref = element.get("ref")
        if ref not in assets or element.tag not in ("asset-clip", "video", "audio"):
            continue
        named = element if element.get("name") else parents.get(element)
        name = named.get("name") if named is not None else None
        if not name:
            continue
        own_map, outer_map = element.find("timeMap"), named.find("timeMap")
        retimed = own_map is not None or outer_map is not None
        entry = uses.setdefault(name, _Uses())
        entry.assets.add(ref)
        entry.retimed.add(retimed)
        start = _seconds(element.get("start")) or Fraction(0)
        if own_map is not None and element.tag == "asset-clip":
            entry.retimes.setdefault(start, set()).add(_constant_speed(own_map, element))
        elif retimed:
            entry.retimes.setdefault(start, set()).add(_Retime(problem="speed change on a clip element"))
    return uses


def _constant_speed(time_map: ElementTree.Element, clip: ElementTree.Element) -> _Retime:
    """Read an asset-clip's timeMap as one speed and the original time at the clip's start."""
    points = []
    for point in time_map.findall("timept"):
        time, value = _seconds(point.get("time")), _seconds(point.get("value"))
        if time is None or value is None:
            return _Retime(problem="speed change with an unreadable point")
        points.append((time, value))
    if len(points) < 2 or any(b[0] <= a[0] for a, b in zip(points, points[1:], strict=False)):
        return _Retime(problem="speed change with fewer than two points or points out of order")
    speeds = {(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(points, points[1:], strict=False)}
    if len(speeds) > 1:
        return _Retime(problem="speed ramp")
    (speed,) = speeds
    if speed < 0:
        return _Retime(problem="reverse speed")
    start = _seconds(clip.get("start")) or Fraction(0)
    end = start + (_seconds(clip.get("duration")) or Fraction(0))
    first, last = points[0][0], points[-1][0]
    if start < first or end > last:
        return _Retime(problem="speed change that does not cover the clip")
    return _Retime(speed=speed, source_start_s=points[0][1] + speed * (start - first))


def exact_fcpx_time(rational_number: str | None, fps: float) -> otio.opentime.RationalTime:
    """An FCPXML time (``29/25s``, ``3600s``, ``0s``) as whole frames at ``fps``, exactly: the
    nearest frame (times of sound can fall between frames), never a float-truncated one."""
    seconds = _seconds(rational_number) or Fraction(0)
    frames = round(seconds * Fraction(fps).limit_denominator(1001))
    return otio.opentime.RationalTime(frames, int(fps))


def _exact_number_of_frames(reader: object, time_value: str | None, format_id: str) -> int:
    """The reader's ``_number_of_frames`` (an offset in frames of a format), exactly."""
    total, rate = reader._format_frame_duration(format_id)  # noqa: SLF001 - the adapter's own helper
    return round((_seconds(time_value) or Fraction(0)) * Fraction(rate) / Fraction(total))


def use_exact_fcpx_times() -> None:
    """Make the installed fcpx_xml adapter convert times exactly (idempotent); see the module doc."""
    module = otio.adapters.from_name("fcpx_xml").module()
    if getattr(module, "to_rational_time", None) is not exact_fcpx_time:
        module.to_rational_time = exact_fcpx_time
    reader = getattr(module, "FcpxXml", None)
    if reader is not None and getattr(reader, "_number_of_frames", None) is not _exact_number_of_frames:
        reader._number_of_frames = _exact_number_of_frames


def complete_fcpx_timeline(timeline: otio.schema.Timeline, path: Path) -> None:
    """Give ``timeline`` (read from ``path`` by the fcpx_xml adapter) the media and the speed
    changes the adapter left out; see the module doc."""
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as error:
        raise TimelineError(f"{path} cannot be read as fcpx_xml: {error}") from error
    assets = _assets(root)
    uses = _uses_by_name(root, assets)
    _restore_start_timecode(timeline, root)
    for clip in timeline.find_clips():
        use = uses.get(clip.name)
        if use is None:
            continue
        if True in use.retimed:
            retimes = use.retimes.get(_adapter_start_s(clip), set())
            if len(use.retimed) > 1 or len(retimes) != 1:
                raise TimelineError(
                    f"{path}: several clips are named {clip.name!r} and they change speed differently "
                    "(timeMap), which the installed fcpx_xml adapter drops; rename them, or export the "
                    "timeline as OTIO"
                )
            _apply_retime(clip, next(iter(retimes)))
        if isinstance(clip.media_reference, otio.schema.MissingReference) and len(use.assets) == 1:
            asset = assets[next(iter(use.assets))]
            clip.media_reference = otio.schema.ExternalReference(
                target_url=asset.src, available_range=_available_range(asset, clip)
            )
            log.debug("FCPXML clip %r: media %s from the asset's media-rep", clip.name, asset.src)


def _restore_start_timecode(timeline: otio.schema.Timeline, root: ElementTree.Element) -> None:
    """Turn the head gap the adapter made of the sequence's ``tcStart`` into the timeline's start
    time; done only when every track starts with a gap at least that long."""
    sequence = root.find(".//sequence")
    start_s = _seconds(sequence.get("tcStart")) if sequence is not None else None
    tracks = list(timeline.tracks)
    if not start_s or timeline.global_start_time is not None or not tracks:
        return
    heads = [track[0] if len(track) else None for track in tracks]
    if not all(isinstance(head, otio.schema.Gap) for head in heads):
        return
    rate = heads[0].source_range.duration.rate
    frames = round(start_s * Fraction(rate).limit_denominator(1001))
    if any(head.source_range.duration.value < frames for head in heads):
        return
    for track, head in zip(tracks, heads, strict=True):
        left = head.source_range.duration.value - frames
        if left > 0:
            head.source_range = otio.opentime.TimeRange(
                head.source_range.start_time, otio.opentime.RationalTime(left, rate)
            )
        else:
            track.remove(head)
    timeline.global_start_time = otio.opentime.RationalTime(frames, rate)
    log.debug("FCPXML sequence starts at %s s: the timeline's start time, not a head gap", start_s)


def _adapter_start_s(clip: otio.schema.Clip) -> Fraction:
    """The clip's start as the adapter read it: its element's ``start`` attribute, in seconds."""
    if clip.source_range is None:
        return Fraction(0)
    start = clip.source_range.start_time
    return exact_number(start.value, what="clip start") / exact_rate(start.rate)


def _apply_retime(clip: otio.schema.Clip, retime: _Retime) -> None:
    """Give ``clip`` the source start and time warp its timeMap means, or a TimeEffect that
    ``segments`` refuses by name when it means something that cannot be rendered."""
    if retime.problem or clip.source_range is None or retime.speed is None or retime.source_start_s is None:
        name = (retime.problem or "speed change") + TIME_MAP_SUFFIX
        clip.effects.append(otio.schema.TimeEffect(name=name, effect_name="timeMap"))
        return
    rate = clip.source_range.start_time.rate
    start = otio.opentime.RationalTime(float(retime.source_start_s * Fraction(rate)), rate)
    clip.source_range = otio.opentime.TimeRange(start, clip.source_range.duration)
    if retime.speed == 0:
        clip.effects.append(otio.schema.FreezeFrame(name="hold" + TIME_MAP_SUFFIX))
    else:
        clip.effects.append(
            otio.schema.LinearTimeWarp(name="speed" + TIME_MAP_SUFFIX, time_scalar=float(retime.speed))
        )
    log.debug("FCPXML clip %r: timeMap speed %s from %s s", clip.name, retime.speed, retime.source_start_s)


def _available_range(asset: _Asset, clip: otio.schema.Clip) -> otio.opentime.TimeRange | None:
    if asset.duration_s is None or clip.source_range is None:
        return None
    rate = clip.source_range.start_time.rate
    return otio.opentime.TimeRange(
        otio.opentime.RationalTime(float((asset.start_s or 0) * Fraction(rate)), rate),
        otio.opentime.RationalTime(float(asset.duration_s * Fraction(rate)), rate),
    )
