"""Putting results back into OTIO: ``metadata["chronoscope"]`` and clips re-pointed at rendered media.

``attach_results`` stores plain JSON-able dicts (speed estimates, segments, risk, render info)
under ``metadata["chronoscope"]`` of a clip, track or timeline, next to whatever else is there
(``metadata["Resolve_OTIO"]`` is never touched).

``replace_media`` returns a new timeline in which the given clips show rendered media instead of
their retimed source: a new ExternalReference, a source range starting at the rendered head (0 by
default, counted from the render's start timecode where it has one) with the clip's length at the
timeline rate, and no time warps. Everything else (tracks,
gaps, transitions, markers, other effects and metadata, and every untouched clip's original
``target_url``, byte for byte) is kept. The new reference keeps the part of the old one's metadata
that describes the shot rather than the file (reel and clip names, scene, take, colour label:
``DESCRIPTIVE_METADATA_KEYS``), which stays true of its render; a source timecode, codec or path
would not, and is left off. What the clip showed before is recorded under
``metadata["chronoscope"]["retimed_from"]`` so the step can be traced and undone: the old media
reference whole (``media_reference``: schema, name, range, image bounds, metadata, file or image
sequence fields), the source range, and each removed time warp with its metadata and its place
among the clip's effects.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio

from engine.errors import TimelineError
from engine.timeline.checkmarks import METADATA_KEY, mark_frames_to_check
from engine.timeline.fcp7xml_copy import drop_time_remap_filters
from engine.timeline.rates import exact_frames, fraction_text, time_range
from engine.timeline.segments import fcp_time_remap, list_segments, time_warps_of, timeline_rate

log = logging.getLogger(__name__)

METADATA_VERSION = 1
DESCRIPTIVE_METADATA_KEYS = frozenset(
    {
        "reel", "reelname", "reelnumber", "tape", "tapename", "clipname", "clipcolor", "clipcolour",
        "scene", "shot", "take", "goodtake", "angle", "camera", "cameraid", "cameraroll", "roll",
        "labroll", "comment", "comments", "description", "notes", "keywords", "flags",
    }
)
"""Keys of a media reference's metadata, at any depth, compared without case, spaces or punctuation
(``Reel``, ``Clip Color``, ``reel_name``), that describe the shot and so stay true of its render."""


def _plain(value: Any, where: str) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise TimelineError(
            f"{where} must be plain JSON (dict, list, str, finite numbers, bool, None): {error}; "
            "write Fractions as text (engine.timeline.rates.fraction_text)"
        ) from error


def attach_results(item: otio.core.SerializableObjectWithMetadata, results: Mapping[str, Any]) -> None:
    """Merge ``results`` into ``item.metadata["chronoscope"]`` (keys given replace older ones).

    Values must be plain JSON (no NaN, no Fractions); ``TimelineError`` otherwise, before anything
    is changed.
    """
    plain = _plain(dict(results), f"results for {getattr(item, 'name', 'item')!r}")
    current = results_of(item)
    current.update(plain)
    current["version"] = METADATA_VERSION
    item.metadata[METADATA_KEY] = current


def results_of(item: otio.core.SerializableObjectWithMetadata) -> dict[str, Any]:
    """Return a plain-dict copy of ``item.metadata["chronoscope"]`` ({} when absent)."""
    stored = item.metadata.get(METADATA_KEY)
    if stored is None:
        return {}
    return _to_plain(stored)


def _to_plain(value: Any) -> Any:
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, Mapping) or hasattr(value, "items"):
        return {str(key): _to_plain(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)) or hasattr(value, "__iter__"):
        return [_to_plain(inner) for inner in value]
    return value


@dataclass(frozen=True)
class RenderedMedia:
    """A rendered file that replaces a retimed clip, at the timeline rate.

    ``frames`` is the file's length; ``head_frames`` are frames rendered before the clip's first
    output frame (for a transition into it), so the clip's source range starts there.
    ``info`` is stored under ``metadata["chronoscope"]["render"]`` (backend, risk, ...).
    ``start_frames`` is the frame number the file's start timecode labels at the timeline rate (0
    for a file without one): its available range, and so the clip's source range, count from it,
    as an EDL's source timecodes and OTIO's media time do.
    """

    path: Path | str
    frames: int
    head_frames: int = 0
    start_frames: int = 0
    info: Mapping[str, Any] = field(default_factory=dict)


def _target_url(path: Path | str) -> str:
    if isinstance(path, Path):
        return str(path.absolute())
    return path


def _index_path(root: otio.schema.Stack, wanted: otio.schema.Clip) -> tuple[int, ...] | None:
    for index, child in enumerate(root):
        if child is wanted:
            return (index,)
        if isinstance(child, otio.core.Composition):
            below = _index_path(child, wanted)
            if below is not None:
                return (index, *below)
    return None


def _follow(root: otio.schema.Stack, path: tuple[int, ...]) -> otio.core.Item:
    item = root
    for index in path:
        item = item[index]
    return item


def replace_media(
    timeline: otio.schema.Timeline,
    renders: Mapping[otio.schema.Clip, RenderedMedia],
    *,
    allow_length_change: bool = False,
) -> otio.schema.Timeline:
    """Return a copy of ``timeline`` whose given clips point at their rendered media.

    Keys are Clip objects of ``timeline`` (``Segment.clip``). A render shorter than the clip (from
    ``head_frames`` on) would shift everything after it, so it raises ``TimelineError`` unless
    ``allow_length_change`` (then the clip takes the render's length, logged at WARNING).
    """
    rate = timeline_rate(timeline)
    by_clip = {id(s.clip): s for s in list_segments(timeline, check_time_warps=False, warn_nested=False)}
    located = []
    for clip, render in renders.items():
        path = _index_path(timeline.tracks, clip)
        if path is None:
            raise TimelineError(
                f"clip {clip.name!r} is not in timeline {timeline.name!r}; pass Segment.clip objects"
            )
        located.append((path, clip, render))
    result = timeline.deepcopy()
    for path, original, render in located:
        clip = _follow(result.tracks, path)
        segment = by_clip.get(id(original))
        record_frames = segment.record_frames if segment else round(exact_frames(original.duration(), rate))
        _repoint(clip, original, render, rate, record_frames, allow_length_change)
    return result


def _rebase_markers(
    clip: otio.schema.Clip, old_start: otio.opentime.RationalTime, new_start: otio.opentime.RationalTime
) -> None:
    """Keep each marker on the same picture: markers are in the clip's own time, which starts at
    its source range's start and runs with the record (a time warp changes what media each
    instant shows, not how long it lasts), so a marker moves with the start and keeps its offset."""
    for marker in clip.markers:
        offset = marker.marked_range.start_time - old_start
        moved = new_start + offset.rescaled_to(new_start.rate)
        marker.marked_range = otio.opentime.TimeRange(
            moved, marker.marked_range.duration.rescaled_to(new_start.rate)
        )


def _repoint(
    clip: otio.schema.Clip,
    original: otio.schema.Clip,
    render: RenderedMedia,
    rate: Fraction,
    record_frames: int,
    allow_length_change: bool,
) -> None:
    if render.frames < 0 or render.head_frames < 0 or render.head_frames > render.frames:
        raise TimelineError(
            f"render for clip {original.name!r} has frames={render.frames}, "
            f"head_frames={render.head_frames}; "
            "both must be 0 or more and head_frames at most frames"
        )
    body = render.frames - render.head_frames
    duration = record_frames
    if body < record_frames:
        message = (
            f"render {render.path} for clip {original.name!r} has {body} frames after its head, "
            f"the clip lasts {record_frames} at {fraction_text(rate)} fps"
        )
        if not allow_length_change:
            raise TimelineError(message + "; render the full length or allow a length change")
        log.warning("%s; the clip is shortened and everything after it on the track moves", message)
        duration = body
    before = original.media_reference
    retimed_from: dict[str, Any] = {
        "media_kind": before.schema_name() if before else None,
        "target_url": getattr(before, "target_url", None),
        **(
            {
                "image_sequence": {
                    "target_url_base": before.target_url_base,
                    "name_prefix": before.name_prefix,
                    "name_suffix": before.name_suffix,
                    "start_frame": before.start_frame,
                    "frame_zero_padding": before.frame_zero_padding,
                    "rate": before.rate,
                }
            }
            if isinstance(before, otio.schema.ImageSequenceReference)
            else {}
        ),
        "media_reference": _reference_json(before) if before else None,
        "source_range": _range_json(original.source_range),
        "time_warps": _time_warps_json(original),
    }
    reference = otio.schema.ExternalReference(
        target_url=_target_url(render.path),
        available_range=time_range(render.start_frames, render.frames, rate),
        metadata=_descriptive(before.metadata) if before else {},
    )
    reference.name = Path(str(render.path)).name
    clip.media_reference = reference
    old_start = clip.source_range.start_time if clip.source_range is not None else None
    clip.source_range = time_range(render.start_frames + render.head_frames, duration, rate)
    if old_start is not None:
        _rebase_markers(clip, old_start, clip.source_range.start_time)
    kept = [e for e in clip.effects if not isinstance(e, otio.schema.TimeEffect)]
    del clip.effects[:]
    clip.effects.extend(kept)
    drop_time_remap_filters(clip)
    render_info = {**dict(render.info), "frames": render.frames, "head_frames": render.head_frames}
    attach_results(clip, {"retimed_from": retimed_from, "render": render_info})
    mark_frames_to_check(clip, render_info.get("frames_to_check"), rate, of="the render")


def _time_json(value: otio.opentime.RationalTime) -> dict[str, float]:
    return {"value": value.value, "rate": value.rate}


def _range_json(value: otio.opentime.TimeRange | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"start_time": _time_json(value.start_time), "duration": _time_json(value.duration)}


def _json_safe(value: Any) -> Any:
    """``value`` (OTIO metadata) as plain JSON: times and ranges as ``{"value", "rate"}`` records,
    numbers that JSON cannot hold and other objects as text, so that recording it never fails."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, otio.opentime.RationalTime):
        return _time_json(value)
    if isinstance(value, otio.opentime.TimeRange):
        return _range_json(value)
    if isinstance(value, Mapping) or hasattr(value, "items"):
        return {str(key): _json_safe(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)) or (hasattr(value, "__iter__") and not isinstance(value, bytes)):
        return [_json_safe(inner) for inner in value]
    return str(value)


def _reference_json(reference: otio.core.MediaReference) -> dict[str, Any]:
    """Everything ``reference`` states, as plain JSON, so that it can be rebuilt as it was."""
    bounds = reference.available_image_bounds
    record: dict[str, Any] = {
        "schema": f"{reference.schema_name()}.{reference.schema_version()}",
        "name": reference.name,
        "available_range": _range_json(reference.available_range),
        "available_image_bounds": None
        if bounds is None
        else {"min": [bounds.min.x, bounds.min.y], "max": [bounds.max.x, bounds.max.y]},
        "metadata": _json_safe(reference.metadata),
    }
    if isinstance(reference, otio.schema.ExternalReference):
        record["target_url"] = reference.target_url
    elif isinstance(reference, otio.schema.ImageSequenceReference):
        for name in ("target_url_base", "name_prefix", "name_suffix", "start_frame", "frame_step", "rate",
                     "frame_zero_padding"):
            record[name] = _json_safe(getattr(reference, name))
        record["missing_frame_policy"] = reference.missing_frame_policy.name
    return record


def _time_warps_json(clip: otio.schema.Clip) -> list[dict[str, Any]]:
    """Each time warp on ``clip`` (``time_warps_of``), with its schema, its metadata and its place
    among the clip's effects (``effect_index``), so that it can be put back where it was."""
    warps = [
        (index, effect)
        for index, effect in enumerate(clip.effects)
        if isinstance(effect, otio.schema.TimeEffect) or fcp_time_remap(effect)
    ]
    return [
        {
            **warp.to_dict(),
            "schema": f"{effect.schema_name()}.{effect.schema_version()}",
            "effect_index": index,
            "metadata": _json_safe(effect.metadata),
        }
        for warp, (index, effect) in zip(time_warps_of(clip), warps, strict=True)
    ]


def _metadata_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def _descriptive(metadata: Any) -> dict[str, Any]:
    """The part of a media reference's ``metadata`` that describes the shot, not the file
    (``DESCRIPTIVE_METADATA_KEYS``), in the same nesting (``{"Resolve_OTIO": {"Reel": "A001"}}``)."""
    kept: dict[str, Any] = {}
    for key, value in metadata.items():
        if _metadata_key(str(key)) in DESCRIPTIVE_METADATA_KEYS:
            kept[str(key)] = _json_safe(value)
        elif isinstance(value, Mapping) or hasattr(value, "items"):
            inner = _descriptive(value)
            if inner:
                kept[str(key)] = inner
    return kept
