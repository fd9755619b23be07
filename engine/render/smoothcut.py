"""Smooth cuts: N synthesized frames across a jump cut, as Resolve's Smooth Cut or Premiere's Morph Cut.

A jump cut is two adjacent clips on a video track (no gap or transition between them) that show
the same media file at speed 1, where the second starts a little after the first ends (at most
``MAX_JUMP_S`` of source later), and whose pictures at the cut are not a real scene cut
(``engine.interp.scenecut``). For each, ``plan_smooth_cuts`` takes ``from_first = N // 2`` frames
off the end of the first clip and ``from_second = N - from_first`` off the start of the second;
``render_smooth_cut`` synthesizes N frames at t = i / (N + 1) between the last frame the first
clip still shows and the first frame the second clip still shows, as a short new clip;
``apply_smooth_cuts`` puts that clip between them. The timeline keeps its length, and every other
item keeps its place.

Smooth cuts resume as retimed segments do (``engine.render.segment.finished_report``): each cut's
``content_hash`` covers the source file, the two file frames, N, the timeline rate, the model, the
codec and quality; its media is written through a temporary name and then a sidecar report with
the hash, and ``resumed_smooth_cut`` finds a cut whose output carries it ("skipped (already
rendered)").
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio

from engine.errors import ChronoscopeError, TimelineError, UnsupportedOptionError
from engine.interp import Synthesizer
from engine.interp.checks import frame_runs
from engine.interp.scenecut import scene_cut_score
from engine.media import FrameReader
from engine.media.frame_slots import FrameSlots, SourcePlace, clip_grid
from engine.media.probe import VideoStreamInfo
from engine.render.outputs import SUFFIX_BY_CODEC, hashed_name
from engine.render.plan import synthesized_hash
from engine.render.segment import (
    ALREADY_RENDERED,
    finished_report,
    synthesized_tags,
    video_info,
    write_synthesized,
)
from engine.retime.core import pixel_plan
from engine.retime.report import RetimeReport
from engine.timeline import Segment, attach_results, exact_frames, fraction_text, time_map
from engine.timeline.checkmarks import mark_frames_to_check, timeline_places
from engine.timeline.rates import exact_rate, time_range

log = logging.getLogger(__name__)

MAX_JUMP_S = Fraction(2)
MAX_SMOOTH_CUT_FRAMES = 48


@dataclass
class SmoothCut:
    """One jump cut to smooth, and where its frames come from and go."""

    track: str
    track_position: int
    first_index: int
    first_clip: str
    second_clip: str
    source: str
    jump_frames: str
    frames: int
    from_first: int
    from_second: int
    before_file_frame: int
    after_file_frame: int
    output: str
    timeline_rate: str
    content_hash: str = ""
    record_start_frame: int = 0
    """The timeline frame the cut's new clip starts at (counted from the timeline's start)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _track_positions(timeline: otio.schema.Timeline) -> dict[tuple[str, int], int]:
    """(kind, index among tracks of that kind) -> position among the top-level tracks."""
    counts: dict[str, int] = {}
    positions = {}
    for position, track in enumerate(timeline.tracks):
        if not isinstance(track, otio.schema.Track):
            continue
        index = counts.get(track.kind, 0)
        counts[track.kind] = index + 1
        positions[(track.kind, index)] = position
    return positions


def _grid_position(segment: Segment, output_frame: int, slots: FrameSlots) -> Fraction:
    mapping = time_map(segment)
    media_start = Fraction(0)
    if segment.available_range is not None:
        media_start = exact_frames(segment.available_range.start_time, segment.source_rate)
    return (mapping.source_position(output_frame) - media_start) * slots.rate / segment.source_rate


def shown_place(segment: Segment, output_frame: int, slots: FrameSlots) -> SourcePlace:
    """What of its media file a clip shows at ``output_frame``: a file frame, or a place between
    two (a slowed clip at 19.5); an end frame, ``held``, outside the file. ``slots`` are the
    file's frames on its grid (``segment_slots``: frame by frame for a constant rate, by
    timestamps for a variable one)."""
    return slots.locate(_grid_position(segment, output_frame, slots))


def segment_slots(segment: Segment, info: VideoStreamInfo) -> FrameSlots:
    """The frames of ``segment``'s media on their own grid (``clip_grid``: by timestamps for a
    variable frame rate); the clip's positions are converted to it."""
    return clip_grid(Path(segment.media_path), info)


def check_inside_media(segment: Segment, output_frame: int, slots: FrameSlots) -> SourcePlace:
    """``shown_place``, refused (``TimelineError``) when it lies outside the media file (within
    the last frame's duration it holds that frame): a timeline whose source timecodes miss the
    file (an EDL cut against 00:00:00:00 on a camera file starting at 01:00:00:00) used to be made
    from its frame 0, with exit 0."""
    position = _grid_position(segment, output_frame, slots)
    if position < 0 or position > slots.slot_count:
        raise TimelineError(
            f"{segment.describe()} shows file frame {fraction_text(position)} there, outside its media, "
            f"which has frames 0 to {slots.slot_count - 1} (counted from its start timecode): check "
            "the timeline's source timecodes and the file it points at"
        )
    return slots.locate(position)


def shown_file_frame(segment: Segment, output_frame: int, slots: FrameSlots) -> int:
    """The media file's frame a clip shows at ``output_frame`` (the frame below, between two)."""
    return shown_place(segment, output_frame, slots).lower


def _different_media(first: Segment, second: Segment) -> bool:
    """Whether two clips name different media files: a real cut, never a jump cut (and not listed)."""
    paths = [segment.media_path for segment in (first, second)]
    return None not in paths and Path(paths[0]).resolve() != Path(paths[1]).resolve()


def _why_not(first: Segment, second: Segment, frames: int) -> str | None:
    """Why two adjacent clips of the same media are not a jump cut to smooth (None: they are, as
    far as time goes)."""
    if first.track_kind != otio.schema.TrackKind.Video:
        return "not a video track"
    if not (first.enabled and second.enabled):
        return "a disabled clip"
    if first.is_retimed or second.is_retimed:
        return "a retimed clip (smooth cuts join clips at speed 1)"
    if any(s.media_path is None or s.media is None or not s.media.exists for s in (first, second)):
        return "media not found"
    jump = second.source_start_frames - (first.source_start_frames + first.source_duration_frames)
    if jump <= 0:
        return "continuous or backwards in the source (not a jump cut)"
    if jump > MAX_JUMP_S * first.source_rate:
        return f"the second clip starts {fraction_text(jump)} source frames later, more than {MAX_JUMP_S} s"
    half = frames // 2
    if first.record_frames <= half or second.record_frames <= frames - half:
        return f"a clip shorter than the {frames} frames the smooth cut replaces"
    return None


def check_smooth_cut_frames(frames: int) -> None:
    """Refuse a smooth-cut length outside 1 to ``MAX_SMOOTH_CUT_FRAMES`` (0 means none asked)."""
    if isinstance(frames, bool) or not isinstance(frames, int) or not 0 <= frames <= MAX_SMOOTH_CUT_FRAMES:
        raise UnsupportedOptionError(
            f"smooth cuts of {frames!r} frames: give 1 to {MAX_SMOOTH_CUT_FRAMES} (Resolve uses 2 to 6), "
            "or 0 for none"
        )


def plan_smooth_cuts(
    timeline: otio.schema.Timeline,
    segments: list[Segment],
    outdir: Path,
    *,
    frames: int,
    codec: str,
    model: str | None = None,
    quality: int | None = None,
    infos: dict[Path, VideoStreamInfo] | None = None,
) -> tuple[list[SmoothCut], list[dict[str, Any]]]:
    """The jump cuts to smooth with ``frames`` frames each, and a record for each adjacent
    same-media pair that is not smoothed: ``status`` "skipped" (not a jump cut, with the reason)
    or "failed" (its media could not be read, with the error). Each record names the pair by
    ``track``, ``track_position``, ``first_index`` and ``where``. Pairs of different media are
    real cuts: no record.

    ``model``, ``codec`` and ``quality`` go into each cut's content hash. ``infos`` caches the
    probe of each media file (``engine.render.segment.video_info``); pass the same dict to
    ``render_smooth_cut``."""
    if frames == 0:
        return [], []
    check_smooth_cut_frames(frames)
    if codec not in SUFFIX_BY_CODEC:
        raise UnsupportedOptionError(
            f"codec {codec!r} not supported; use one of: {', '.join(SUFFIX_BY_CODEC)}"
        )
    infos = {} if infos is None else infos
    positions = _track_positions(timeline)
    cuts: list[SmoothCut] = []
    records: list[dict[str, Any]] = []
    head_taken: dict[tuple[str, int, int], int] = {}  # frames a planned cut takes from a clip's head
    for first, second in zip(segments, segments[1:], strict=False):
        if (first.track_kind, first.track_index) != (second.track_kind, second.track_index):
            continue
        if second.index_in_track != first.index_in_track + 1:
            continue
        if _different_media(first, second):
            continue  # a real cut: left alone, not listed
        reason = _why_not(first, second, frames)
        taken = head_taken.get((first.track_kind, first.track_index, first.index_in_track), 0)
        if reason is None and first.record_frames - taken <= frames // 2:
            # a short clip between two jump cuts: both cuts would eat it (a negative length, the
            # second cut starting behind the first)
            reason = (
                f"clip {first.clip_name!r} keeps {first.record_frames - taken} frames after the smooth cut "
                f"before it, too few for another of {frames}"
            )
        pair = {
            "track": first.track_label,
            "track_position": positions[(first.track_kind, first.track_index)],
            "first_index": first.index_in_track,
            "where": f"{first.track_label} #{first.index_in_track}-#{second.index_in_track}",
            "clips": [first.clip_name, second.clip_name],
        }
        if reason is not None:
            records.append({**pair, "status": "skipped", "reason": reason})
            continue
        try:
            info = video_info(first.media_path, infos)
            slots = segment_slots(first, info)  # one file: one grid, each clip's rate converted to it
            check_inside_media(first, first.record_frames - frames // 2 - 1, slots)
            check_inside_media(second, frames - frames // 2, slots)
            cuts.append(_plan_cut(first, second, pair, outdir, frames, slots, codec, model, quality))
            head_taken[(second.track_kind, second.track_index, second.index_in_track)] = frames - frames // 2
        except ChronoscopeError as error:
            log.warning("smooth cut %s failed: %s", pair["where"], error)
            records.append({**pair, "status": "failed", "reason": str(error)})
    return cuts, records


def _plan_cut(
    first: Segment,
    second: Segment,
    pair: dict[str, Any],
    outdir: Path,
    frames: int,
    slots: FrameSlots,
    codec: str,
    model: str | None,
    quality: int | None,
) -> SmoothCut:
    """The cut between ``first`` and ``second``: the file frames it morphs between, its output
    and its content hash."""
    from_first = frames // 2
    from_second = frames - from_first
    stem = f"{first.track_label}_{first.index_in_track:03d}-{second.index_in_track:03d}_smoothcut"
    cut = SmoothCut(
        track=pair["track"],
        track_position=pair["track_position"],
        first_index=pair["first_index"],
        first_clip=first.clip_name,
        second_clip=second.clip_name,
        source=str(first.media_path),
        jump_frames=fraction_text(
            second.source_start_frames - first.source_start_frames - first.source_duration_frames
        ),
        frames=frames,
        from_first=from_first,
        from_second=from_second,
        before_file_frame=shown_file_frame(first, first.record_frames - from_first - 1, slots),
        after_file_frame=shown_file_frame(second, from_second, slots),
        output="",
        timeline_rate=fraction_text(first.timeline_rate),
        record_start_frame=round(first.record_start_frames + first.record_frames - from_first),
    )
    cut.content_hash = synthesized_hash(
        "smooth_cut",
        {
            "before_file_frame": cut.before_file_frame,
            "after_file_frame": cut.after_file_frame,
            "frames": frames,
            "timeline_rate": cut.timeline_rate,
            "model": model,
            "codec": codec,
            "quality": quality,
        },
        {"source": Path(first.media_path)},
    )
    cut.output = str(Path(outdir) / hashed_name(stem, codec, cut.content_hash))
    return cut


def _record(cut: SmoothCut, report: RetimeReport, status: str) -> dict[str, Any]:
    """What a cut did, from the report its sidecar holds: the same record whether rendered or resumed."""
    record: dict[str, Any] = {
        **cut.to_dict(),
        "status": status,
        "times": [fraction_text(Fraction(i, cut.frames + 1)) for i in range(1, cut.frames + 1)],
        "risk": [item.risk for item in report.risk],
        "frames_to_check": frame_runs(report.frames_to_check),
        "notes": report.note_lines(),
    }
    if status == "resumed":
        record["reason"] = ALREADY_RENDERED
    return record


def resumed_smooth_cut(cut: SmoothCut) -> dict[str, Any] | None:
    """The record of ``cut`` when its output is already rendered with the same content hash, else None."""
    report = finished_report(Path(cut.output), cut.content_hash, cut.frames)
    if report is None:
        return None
    log.info("smooth cut %s: already rendered, skipped", cut.output)
    return _record(cut, report, "resumed")


def render_smooth_cut(
    cut: SmoothCut,
    *,
    synthesizer: Synthesizer,
    codec: str,
    quality: int | None = None,
    infos: dict[Path, VideoStreamInfo] | None = None,
) -> dict[str, Any]:
    """Write the cut's frames (atomically), then its sidecar report with the content hash; returns
    what was done, or why it was skipped. ``infos``: the probe cache ``plan_smooth_cuts`` filled.

    A real scene cut between the two pictures is skipped (``status`` "skipped"): morphing two
    different shots into each other is never right.
    """
    started_s = time.perf_counter()
    source = Path(cut.source)
    info = video_info(source, {} if infos is None else infos)
    plan = pixel_plan(info, codec)
    with FrameReader(source, output=plan.reader_format, deinterlace=plan.deinterlace) as reader:
        last = reader.frame_count - 1
        before = reader.read_frame(min(max(cut.before_file_frame, 0), last)).image
        after = reader.read_frame(min(max(cut.after_file_frame, 0), last)).image
    score = scene_cut_score(before, after)
    if score.is_cut:
        record: dict[str, Any] = {**cut.to_dict(), "status": "skipped"}
        record["reason"] = (
            f"the pictures differ like a real cut (residual {score.residual:.3f}, histogram distance "
            f"{score.histogram_distance:.3f}): not smoothed"
        )
        log.warning("smooth cut %s: %s", cut.output, record["reason"])
        return record
    report = write_synthesized(
        Path(cut.output),
        before,
        after,
        cut.frames,
        synthesizer=synthesizer,
        codec=codec,
        quality=quality,
        plan=plan,
        rate=Fraction(cut.timeline_rate),
        content_hash=cut.content_hash,
        source=source,
        anchor_frame=cut.before_file_frame,
        carried=synthesized_tags(info),
        started_s=started_s,
        label=f"smooth cut {Path(cut.output).name}",
    )
    return _record(cut, report, "rendered")


def place_frames_to_check(records: list[dict[str, Any]], timeline: otio.schema.Timeline) -> None:
    """Add to each cut's record where ``timeline`` shows its frames to check (``frames_to_check_at``:
    ``timeline 01:00:02:05-01:00:02:06``; ``engine.timeline.checkmarks.timeline_places``)."""
    for record in records:
        runs = record.get("frames_to_check")
        if runs:
            record["frames_to_check_at"] = timeline_places(runs, record["record_start_frame"], timeline)


def apply_smooth_cuts(timeline: otio.schema.Timeline, rendered: list[dict[str, Any]]) -> None:
    """Put each rendered smooth cut into ``timeline`` (in place): trim both clips, insert the new one."""
    ordered = sorted(rendered, key=lambda r: (r["track_position"], r["first_index"]), reverse=True)
    for record in ordered:
        track = timeline.tracks[record["track_position"]]
        first, second = track[record["first_index"]], track[record["first_index"] + 1]
        if not isinstance(first, otio.schema.Clip) or not isinstance(second, otio.schema.Clip):
            raise TimelineError(
                f"smooth cut at {record['track']} #{record['first_index']}: the items there are not two clips"
            )
        rate = Fraction(record["timeline_rate"])
        _trim(first, tail_frames=record["from_first"], rate=rate)
        _trim(second, head_frames=record["from_second"], rate=rate)
        frames = record["frames"]
        reference = otio.schema.ExternalReference(
            target_url=str(Path(record["output"]).absolute()), available_range=time_range(0, frames, rate)
        )
        reference.name = Path(record["output"]).name
        clip = otio.schema.Clip(
            name=f"smooth cut {record['first_clip']} > {record['second_clip']}",
            media_reference=reference,
            source_range=time_range(0, frames, rate),
        )
        attach_results(
            clip,
            {
                "smooth_cut": {
                    key: record.get(key)
                    for key in (
                        "jump_frames",
                        "from_first",
                        "from_second",
                        "times",
                        "risk",
                        "frames_to_check",
                        "frames_to_check_at",
                        "notes",
                        "source",
                    )
                }
            },
        )
        mark_frames_to_check(clip, record["frames_to_check"], rate, of="the smooth cut")
        track.insert(record["first_index"] + 1, clip)


def _trim(clip: otio.schema.Clip, *, rate: Fraction, head_frames: int = 0, tail_frames: int = 0) -> None:
    """Shorten a speed-1 clip by whole timeline frames at its head or tail."""
    source_range = clip.source_range or clip.trimmed_range()
    source_rate = exact_rate(source_range.start_time.rate)
    start = exact_frames(source_range.start_time, source_rate)
    duration = exact_frames(source_range.duration, source_rate)
    scale = source_rate / rate
    clip.source_range = time_range(
        start + head_frames * scale, duration - (head_frames + tail_frames) * scale, source_rate
    )
