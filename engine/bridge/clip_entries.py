"""What a reply says about each clip: its place on the timeline, its media, its marker key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.bridge.items import NestedItem, media_text, track_number
from engine.bridge.markers import marker_key, note_key

if TYPE_CHECKING:
    from engine.timeline.segments import Segment


def clip_entry(segment: Segment) -> dict[str, Any]:
    frame = int(segment.record_start_frames)
    media = media_text(segment)
    return {
        "clip": segment.clip_name,
        "track": segment.track_label,
        "record_start_frame": frame,
        "media": media,
        "marker_key": marker_key(segment.clip_name, segment.track_label, frame, media),
        "note_key": note_key(segment.clip_name, segment.track_label, frame),
    }


def nested_entry(item: NestedItem, what: str) -> dict[str, Any]:
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
        "note_key": note_key(item.name, item.track_label, frame),
        "reason": reason,
    }


def entry_order(entry: dict[str, Any]) -> tuple[int, int]:
    return track_number(entry["track"]), entry["record_start_frame"]
