"""The video items of an exported timeline (clips, compound clips, disabled tracks) and what keeps a
clip from being analysed or rendered: disabled, offline or missing media, a speed ramp."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.bridge.words import percent_words
from engine.errors import InvalidTimeWarpError
from engine.timeline.rates import exact_frames

if TYPE_CHECKING:
    from engine.timeline.segments import Segment


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
    segments: list[Segment]
    nested: list[NestedItem]
    disabled_tracks: set[str]


def read_video_items(timeline_path: Path) -> VideoItems:
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


def track_number(label: str) -> int:
    return int(label[1:]) if label[1:].isdigit() else 0


def clip_at(keys: dict[tuple[str, int], Any] | set[tuple[str, int]], track: str, start_frames: Fraction):
    """The key of ``keys`` naming the item on ``track`` that starts at ``start_frames`` (a script
    counts whole frames; a clip may sit between frames), or None."""
    for key in keys:
        if key[0] == track and abs(Fraction(key[1]) - start_frames) < 1:
            return key
    return None


def disabled_reason(segment: Segment, items: VideoItems, disabled: dict[tuple[str, int], str]) -> str:
    """Why ``segment`` does not play (a disabled track or clip, in the export or as the script
    saw it in Resolve), or ""."""
    label = segment.track_label
    key = clip_at(disabled, label, segment.record_start_frames)
    if label in items.disabled_tracks or (key is not None and disabled[key] == "track"):
        return f"track {label} is disabled"
    if (segment.clip is not None and not segment.clip.enabled) or key is not None:
        return "the clip is disabled"
    return ""


def _offline_name(segment: Segment) -> str:
    """The name Resolve gives an offline clip's media (its MissingReference's name), or ""."""
    reference = segment.clip.media_reference if segment.clip is not None else None
    return str(getattr(reference, "name", "") or "")


def media_text(segment: Segment) -> str:
    """The clip's media as reports and marker data name it: the local path, else as written."""
    if segment.media_path is not None:
        return str(segment.media_path)
    return segment.target_url or _offline_name(segment) or ""


def media_problem(segment: Segment) -> str:
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
            f"media not found: {media_text(segment) or segment.clip_name}{problem}; relink it and run again"
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
            details.append(f"speed ratio {percent_words(Fraction(ratio).limit_denominator(1000))}")
        name = f" {effect.name!r}" if effect.name else ""
        return f"speed ramp{name}" + (f" ({', '.join(details)})" if details else "")
    return ""


def clip_speed(segment: Segment) -> tuple[Fraction | None, str]:
    """The clip's own speed on the timeline (None when it cannot be mapped) and, then, what its
    time effect is (a speed ramp, or the reason the warp is refused)."""
    try:
        return segment.time_scalar, ""
    except InvalidTimeWarpError as error:
        return None, speed_ramp_of(segment.clip) or f"time effect ({error})"
