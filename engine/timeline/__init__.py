"""Timelines: read OTIO (and EDL / FCP XML through OTIO adapters), list segments, map time exactly,
and write results back.

    timeline = read_timeline("cut.otio")
    for segment in list_segments(timeline, base_dir=Path("cut.otio").parent):
        mapping = time_map(segment)          # output frame n -> exact source position
    attach_results(segment.clip, {"speed": {...}})
    write_timeline(replace_media(timeline, {segment.clip: RenderedMedia(path, frames)}), "out.otio")

Plain functions on OTIO objects: no ZeroMQ, no Qt. Exact Fractions inside; OTIO floats only at
the edges (``engine.timeline.rates``).
"""

from engine.timeline.io import (
    ADAPTER_BY_SUFFIX,
    adapter_for,
    as_timeline,
    available_formats,
    media_base_dir,
    read_timeline,
    read_timeline_string,
    write_timeline,
)
from engine.timeline.paths import MediaLocation, PathMap, decode_target_url, is_windows_path, media_location
from engine.timeline.rates import exact_frames, exact_number, exact_rate, fraction_text, parse_fraction
from engine.timeline.segments import (
    GapPlace,
    MissingMedia,
    Segment,
    TimeWarp,
    check_media,
    combined_time_scalar,
    fcp_time_remap,
    list_gaps,
    list_segments,
    require_media,
    time_warps_of,
    timeline_rate,
)
from engine.timeline.timemap import MappedFrame, TimeMap, time_map
from engine.timeline.writeback import METADATA_KEY, RenderedMedia, attach_results, replace_media, results_of

__all__ = [
    "ADAPTER_BY_SUFFIX",
    "GapPlace",
    "METADATA_KEY",
    "MappedFrame",
    "MediaLocation",
    "MissingMedia",
    "PathMap",
    "RenderedMedia",
    "Segment",
    "TimeMap",
    "TimeWarp",
    "adapter_for",
    "as_timeline",
    "attach_results",
    "available_formats",
    "check_media",
    "combined_time_scalar",
    "decode_target_url",
    "exact_frames",
    "exact_number",
    "exact_rate",
    "fraction_text",
    "is_windows_path",
    "list_gaps",
    "list_segments",
    "media_base_dir",
    "media_location",
    "parse_fraction",
    "read_timeline",
    "read_timeline_string",
    "replace_media",
    "require_media",
    "results_of",
    "time_map",
    "time_warps_of",
    "fcp_time_remap",
    "timeline_rate",
    "write_timeline",
]
