"""Fill frames for gaps: a gap between two clips replaced by frames synthesized from its neighbours.

    summary = fill_gaps(Path("cut.otio"), Path("out"), gaps=["V1:2"], model="flow")
    summary.timeline_path      # out/cut.chronoscope.otio: the gap is now a clip of the same length

For a gap of G frames on a video track, between clip A (before) and clip B (after), G frames are
synthesized at t = i / (G + 1) between the last frame A shows and the first frame B shows (what
each clip shows comes from its time map, so retimed neighbours work too), written as new media at
the timeline rate (through a temporary name), and the new timeline has a clip of exactly G frames
where the gap was; nothing else moves. The fill is shown as the clip before the gap (its rotation,
pixel aspect, colour primaries and transfer: ``engine.render.segment.synthesized_tags``, which
warns where the clip after it is shown otherwise) and has no start timecode. Across a scene cut
the guard repeats the nearer picture instead of morphing two shots (noted, risk 1). Gaps are named
``TRACK:INDEX`` (``V1:2``: item 2 of track V1, as ``chronoscope segments`` counts them) or ``all``
(every gap with a clip on each side).

Fills resume as retimed segments do (``engine.render.segment.finished_report``): each fill's
content hash covers both source files, the two file frames, the gap's length, the timeline rate,
the model, the codec and quality; the media is written through a temporary name, then a sidecar
report with the hash. Re-running skips a gap whose output carries its hash (status ``resumed``,
"skipped (already rendered)"), and the model is loaded only when some gap needs it.

Fills build up: the gaps an earlier fill of the same timeline into the same folder filled stay
filled in the new timeline (status ``kept``) when the timeline reads as it did then and their
media still matches; a gap named again is filled again (``engine.render.fill_kept``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio

from engine.errors import ChronoscopeError, TimelineError, UnsupportedOptionError
from engine.interp import Synthesizer, resolve_clip_model
from engine.interp.checks import frame_runs
from engine.media import FrameReader
from engine.media.probe import MediaInfo, VideoStreamInfo
from engine.media.writer import check_quality
from engine.render.edl_rate import read_edl_at_media_rate
from engine.render.fill_kept import (
    FILLED_STATUSES,
    KEPT_REASON,
    earlier_fills,
    gap_name,
    timeline_content_hash,
)
from engine.render.outputs import SUFFIX_BY_CODEC, claim_output_folder, hashed_name, write_results
from engine.render.plan import synthesized_hash, with_inferred_media_range, with_media_range
from engine.render.segment import (
    ALREADY_RENDERED,
    discard_unfinished,
    finished_report,
    output_lock,
    synthesized_tags,
    video_info,
    write_synthesized,
)
from engine.render.smoothcut import check_inside_media, segment_slots
from engine.retime.core import make_synthesizer, pixel_plan
from engine.retime.report import RetimeReport
from engine.timeline import (
    PathMap,
    Segment,
    adapter_for,
    attach_results,
    exact_frames,
    fraction_text,
    list_segments,
    media_base_dir,
    timeline_rate,
)
from engine.timeline.checkmarks import mark_frames_to_check, timeline_places
from engine.timeline.items import parse_item, track_labels
from engine.timeline.paths import rebase_relative_media
from engine.timeline.rates import time_range

log = logging.getLogger(__name__)

FILL_SUMMARY_SUFFIX = ".fill-summary.json"
LEGACY_FILL_SUMMARY_NAME = "fill-summary.json"
ALL_GAPS = "all"


@dataclass
class GapFill:
    """One gap to fill: where it is, its neighbours, and what was done."""

    track: str
    track_position: int
    index_in_track: int
    frames: int
    before_clip: str = ""
    after_clip: str = ""
    output: str = ""
    status: str = "pending"
    reason: str = ""
    before_file_frame: int | None = None
    after_file_frame: int | None = None
    before_phase: Fraction = Fraction(0)
    """Where between ``before_file_frame`` and the next the clip before the gap ends (a slowed
    clip ends between frames: the fill starts from the frame made there); the same after."""
    after_phase: Fraction = Fraction(0)
    risk: list[float] = field(default_factory=list)
    to_check: list[int] = field(default_factory=list)
    """Frames of the fill (0 = its first) whose local risk reaches the model's measured level."""
    record_start_frame: int | None = None
    """The timeline frame the fill starts at (counted from the timeline's start)."""
    to_check_at: str = ""
    """Where the timeline shows ``to_check`` (``engine.timeline.checkmarks.timeline_places``)."""
    notes: list[str] = field(default_factory=list)
    content_hash: str = ""
    model: str | None = None
    codec: str = ""
    quality: int | None = None
    """The settings the fill was made with (its content hash covers them): a later fill into the
    folder makes the hash again from them to keep this fill (``engine.render.fill_kept``)."""

    @property
    def done(self) -> bool:
        """Filled now, already filled by an earlier run (resumed), or kept from an earlier fill."""
        return self.status in FILLED_STATUSES

    @property
    def to_check_runs(self) -> list[list[int]]:
        """``to_check`` as runs, first and last (``[[0, 0], [2, 2]]``), as every report lists them."""
        return frame_runs(self.to_check)

    def to_dict(self) -> dict[str, Any]:
        return {
            "track": self.track,
            "index_in_track": self.index_in_track,
            "frames": self.frames,
            "before_clip": self.before_clip,
            "after_clip": self.after_clip,
            "output": self.output,
            "status": self.status,
            "reason": self.reason,
            "before_file_frame": self.before_file_frame,
            "after_file_frame": self.after_file_frame,
            "before_phase": fraction_text(self.before_phase),
            "after_phase": fraction_text(self.after_phase),
            "risk_max": round(max(self.risk, default=0.0), 4),
            "risk": self.risk,
            "frames_to_check": self.to_check_runs,
            "frames_to_check_at": self.to_check_at,
            "record_start_frame": self.record_start_frame,
            "notes": self.notes,
            "content_hash": self.content_hash,
            "model": self.model,
            "codec": self.codec,
            "quality": self.quality,
        }


@dataclass
class FillSummary:
    timeline: str
    outdir: str
    timeline_path: str | None
    gaps: list[GapFill]
    seconds: float = 0.0
    editor_timeline_path: str | None = None
    """The new timeline in the format the timeline was exported in (EDL, FCP 7 XML), if written."""
    editor_timeline_note: str = ""
    """Why that copy was not written (the format cannot hold the new timeline), or, when it was,
    what it leaves out and where that is kept (an EDL holds no audio events)."""
    timeline_content_hash: str = ""
    """The timeline as read (``engine.render.fill_kept``): the next fill into the folder keeps
    these fills only when it reads the same."""
    notes: list[str] = field(default_factory=list)
    """Earlier fills into the folder that are not kept, and why."""

    @property
    def ok(self) -> bool:
        return all(gap.done for gap in self.gaps)

    def count(self, status: str) -> int:
        return sum(1 for gap in self.gaps if gap.status == status)

    def to_dict(self) -> dict[str, Any]:
        return {
            "timeline": self.timeline,
            "outdir": self.outdir,
            "new_timeline": self.timeline_path,
            "editor_timeline": self.editor_timeline_path,
            "editor_timeline_note": self.editor_timeline_note,
            "timeline_content_hash": self.timeline_content_hash,
            "ok": self.ok,
            "counts": {
                status: self.count(status) for status in ("filled", "resumed", "kept", "not_filled")
            },
            "gaps": [gap.to_dict() for gap in self.gaps],
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }


def parse_gap(text: str) -> tuple[str, int]:
    """``"V1:2"`` -> ("V1", 2)."""
    try:
        return parse_item(text, "gap")
    except UnsupportedOptionError as error:
        raise UnsupportedOptionError(f"{error}, or all") from None


def select_gaps(timeline: otio.schema.Timeline, gaps: list[str]) -> list[GapFill]:
    """The gaps named by ``gaps`` (``TRACK:INDEX`` items, or ``all``), checked against the timeline."""
    if not gaps:
        raise UnsupportedOptionError("no gap named; give --gap TRACK:INDEX (e.g. V1:2) or --gap all")
    rate = timeline_rate(timeline)
    tracks = track_labels(timeline)
    chosen: list[GapFill] = []

    def gap_fill(label: str, position: int, track: otio.schema.Track, index: int) -> GapFill:
        frames = exact_frames(track[index].duration(), rate)
        if frames.denominator != 1:
            raise TimelineError(f"gap {label}:{index} lasts {fraction_text(frames)} frames, not whole frames")
        return GapFill(label, position, index, int(frames))

    if ALL_GAPS in gaps:
        if len(gaps) > 1:
            raise UnsupportedOptionError("--gap all fills every gap; do not name others with it")
        for label, (position, track) in tracks.items():
            if track.kind != otio.schema.TrackKind.Video:
                continue
            children = list(track)
            for index, item in enumerate(children):
                between = 0 < index < len(children) - 1
                if (
                    isinstance(item, otio.schema.Gap)
                    and between
                    and isinstance(children[index - 1], otio.schema.Clip)
                    and isinstance(children[index + 1], otio.schema.Clip)
                ):
                    chosen.append(gap_fill(label, position, track, index))
        if not chosen:
            raise UnsupportedOptionError("the timeline has no gap between two video clips to fill")
        return chosen
    for text in gaps:
        label, index = parse_gap(text)
        if label not in tracks:
            raise UnsupportedOptionError(f"gap {text}: no track {label}; tracks: {', '.join(tracks)}")
        position, track = tracks[label]
        if track.kind != otio.schema.TrackKind.Video:
            raise UnsupportedOptionError(f"gap {text}: {label} is an audio track; fill frames are video")
        children = list(track)
        found = [i for i, item in enumerate(children) if isinstance(item, otio.schema.Gap)]
        if index >= len(children) or not isinstance(children[index], otio.schema.Gap):
            what = children[index].schema_name() if index < len(children) else "past the end of the track"
            raise UnsupportedOptionError(
                f"gap {text}: item {index} of {label} is {what}, not a gap; gaps on {label}: "
                + (", ".join(f"{label}:{i}" for i in found) or "none")
            )
        if any((gap.track, gap.index_in_track) == (label, index) for gap in chosen):
            continue  # named twice: filled once
        chosen.append(gap_fill(label, position, track, index))
    return chosen


def _neighbours(gap: GapFill, segments: dict[tuple[str, int], Segment]) -> tuple[Segment, Segment]:
    before = segments.get((gap.track, gap.index_in_track - 1))
    after = segments.get((gap.track, gap.index_in_track + 1))
    if before is None or after is None:
        raise UnsupportedOptionError(
            f"gap {gap.track}:{gap.index_in_track} needs a clip right before and right after it "
            "(not a transition, another gap or the track's end)"
        )
    for segment in (before, after):
        if segment.media_path is None or segment.media is None or not segment.media.exists:
            raise UnsupportedOptionError(
                f"{segment.describe()} next to the gap: media not found "
                f"({segment.media_path or segment.target_url})"
            )
    return before, after


def _shown_position(segment: Segment, output_frame: int, info: VideoStreamInfo) -> tuple[int, Fraction]:
    """The file frame ``segment`` shows at ``output_frame`` and how far on towards the next file
    frame it is (a phase in [0, 1)), within the file. Between two frames of a variable-frame-rate
    file that are not neighbours in the file (a frame left out between them: it shared their
    slot), the nearer of the two is shown."""
    place = check_inside_media(segment, output_frame, segment_slots(segment, info))
    if place.phase == 0 or place.upper == place.lower + 1:
        return place.lower, place.phase
    return (place.lower, Fraction(0)) if place.phase < Fraction(1, 2) else (place.upper, Fraction(0))


def _read_shown(
    path: Path,
    index: int,
    phase: Fraction,
    reader_format: str,
    infos: dict[Path, VideoStreamInfo],
    synthesizer: Synthesizer,
) -> Any:
    """The picture the timeline shows: file frame ``index``, or the frame made ``phase`` of the way
    to the next one."""
    deinterlace = video_info(path, infos).interlaced
    with FrameReader(path, output=reader_format, deinterlace=deinterlace) as reader:
        image = reader.read_frame(index).image
        if phase == 0:
            return image
        following = reader.read_frame(index + 1).image
    return synthesizer.synthesize(image, following, phase).frame


def _prepare(
    gap: GapFill,
    before: Segment,
    after: Segment,
    outdir: Path,
    model: str | None,
    codec: str,
    quality: int | None,
    infos: dict[Path, VideoStreamInfo],
) -> None:
    """Name the gap's neighbours, the file frames it morphs between, its output and content hash."""
    gap.before_clip, gap.after_clip = before.clip_name, after.clip_name
    gap.model, gap.codec, gap.quality = model, codec, quality
    gap.record_start_frame = round(before.record_start_frames + before.record_frames)
    before_info = video_info(before.media_path, infos)
    after_info = video_info(after.media_path, infos)
    gap.before_file_frame, gap.before_phase = _shown_position(before, before.record_frames - 1, before_info)
    gap.after_file_frame, gap.after_phase = _shown_position(after, 0, after_info)
    gap.content_hash = synthesized_hash(
        "fill",
        {
            "before_file_frame": gap.before_file_frame,
            "after_file_frame": gap.after_file_frame,
            **({"before_phase": fraction_text(gap.before_phase)} if gap.before_phase else {}),
            **({"after_phase": fraction_text(gap.after_phase)} if gap.after_phase else {}),
            "frames": gap.frames,
            "timeline_rate": fraction_text(before.timeline_rate),
            "model": model,
            "codec": codec,
            "quality": quality,
        },
        {"before": Path(before.media_path), "after": Path(after.media_path)},
    )
    stem = f"{gap.track}_{gap.index_in_track:03d}_fill"
    gap.output = str(outdir / hashed_name(stem, codec, gap.content_hash))


def _take_report(gap: GapFill, report: RetimeReport) -> None:
    gap.risk = [item.risk for item in report.risk]
    gap.to_check = report.frames_to_check
    gap.notes = report.note_lines()


def _resume(gap: GapFill) -> bool:
    """Mark ``gap`` resumed when its output is already rendered with the same content hash."""
    report = finished_report(Path(gap.output), gap.content_hash, gap.frames)
    if report is None:
        discard_unfinished(Path(gap.output))
        return False
    log.info("gap %s:%d: already filled (%s), skipped", gap.track, gap.index_in_track, gap.output)
    _take_report(gap, report)
    gap.status, gap.reason = "resumed", ALREADY_RENDERED
    return True


def _keep_earlier(
    records: list[dict[str, Any]],
    chosen: list[GapFill],
    timeline: otio.schema.Timeline,
    segments: dict[tuple[str, int], Segment],
    outdir: Path,
    infos: dict[Path, VideoStreamInfo],
) -> tuple[list[GapFill], list[str]]:
    """The gaps of ``records`` (an earlier fill's, of this timeline as it reads now) that stay
    filled: not named again, still a gap of that length, and their media still made from the
    same frames and settings (the content hash made again matches its sidecar's). Returns them
    (status ``kept``) and a note for each one that is not kept."""
    named = {(gap.track, gap.index_in_track) for gap in chosen}
    kept: list[GapFill] = []
    notes: list[str] = []
    for record in records:
        where = gap_name(record)
        if (record.get("track"), record.get("index_in_track")) in named:
            continue  # filled again now: that fill replaces this one
        try:
            (gap,) = select_gaps(timeline, [where])
            if gap.frames != record.get("frames"):
                raise TimelineError(f"it lasts {gap.frames} frames now, {record.get('frames')} then")
            before, after = _neighbours(gap, segments)
            settings = (record.get("model"), str(record.get("codec", "")), record.get("quality"))
            _prepare(gap, before, after, outdir, *settings, infos)
        except ChronoscopeError as error:
            notes.append(f"gap {where} filled earlier is not kept: {error}; name it with --gap to fill it")
            continue
        report = finished_report(Path(gap.output), gap.content_hash, gap.frames)
        if gap.content_hash != record.get("content_hash") or report is None:
            notes.append(
                f"gap {where} filled earlier is not kept: its fill ({record.get('output')}) is gone or "
                "no longer matches the clips around the gap; name it with --gap to fill it again"
            )
            continue
        _take_report(gap, report)
        gap.status, gap.reason = "kept", KEPT_REASON
        log.info("gap %s: %s (%s), kept", where, KEPT_REASON, gap.output)
        kept.append(gap)
    for note in notes:
        log.warning("%s", note)
    return kept, notes


def _fill_one(
    gap: GapFill,
    before: Segment,
    after: Segment,
    synthesizer: Synthesizer,
    codec: str,
    quality: int | None,
    infos: dict[Path, VideoStreamInfo],
) -> None:
    started_s = time.perf_counter()
    plan = pixel_plan(video_info(before.media_path, infos), codec)
    reader_format = plan.reader_format
    first = _read_shown(
        Path(before.media_path), gap.before_file_frame, gap.before_phase, reader_format, infos, synthesizer
    )
    last = _read_shown(
        Path(after.media_path), gap.after_file_frame, gap.after_phase, reader_format, infos, synthesizer
    )
    if first.shape != last.shape:
        raise UnsupportedOptionError(
            f"gap {gap.track}:{gap.index_in_track}: the clips around it differ in size "
            f"({first.shape[1]}x{first.shape[0]} and {last.shape[1]}x{last.shape[0]}); "
            "fill frames need both pictures at one size"
        )
    named = f"fill of gap {gap.track}:{gap.index_in_track} ({gap.before_clip} > {gap.after_clip})"
    report = write_synthesized(
        Path(gap.output),
        first,
        last,
        gap.frames,
        synthesizer=synthesizer,
        codec=codec,
        quality=quality,
        plan=plan,
        rate=before.timeline_rate,
        content_hash=gap.content_hash,
        source=Path(before.media_path),
        anchor_frame=gap.before_file_frame,
        carried=synthesized_tags(
            video_info(before.media_path, infos), video_info(after.media_path, infos), what=named
        ),
        started_s=started_s,
        label=named,
    )
    _take_report(gap, report)
    gap.status = "filled"


def fill_gaps(
    timeline_path: Path,
    outdir: Path,
    *,
    gaps: list[str],
    model: str | None = None,
    codec: str = "prores",
    quality: int | None = None,
    path_map: PathMap | None = None,
    rate: float | None = None,
) -> FillSummary:
    """Fill the named gaps of a timeline file into ``outdir``; see the module doc.

    Gaps that cannot be filled (no clip on a side, media missing) are listed with the reason and
    stay gaps; ``FillSummary.ok`` is then False. Names that match no gap raise before any work.
    ``rate`` is an EDL's frame rate (``read_timeline``). A summary or new timeline that another job
    or program writes into ``outdir`` while the gaps are filled is kept, and ``OutputExistsError``
    names it (the fill frames stay; filling again takes them: ``engine.render.outputs``).
    """
    started = time.perf_counter()
    if codec not in SUFFIX_BY_CODEC:
        raise UnsupportedOptionError(
            f"codec {codec!r} not supported; use one of: {', '.join(SUFFIX_BY_CODEC)}"
        )
    check_quality(codec, quality)
    timeline_path, outdir = Path(timeline_path).absolute(), Path(outdir).absolute()
    timeline = read_edl_at_media_rate(timeline_path, rate, path_map)
    read_hash = timeline_content_hash(timeline)
    chosen = select_gaps(timeline, gaps)
    from_edl = adapter_for(timeline_path) == "cmx_3600"  # source frames count from media timecodes
    probes: dict[Path, MediaInfo] = {}
    find_range = with_media_range if from_edl else with_inferred_media_range
    segments = {
        (s.track_label, s.index_in_track): find_range(s, probes)
        for s in list_segments(
            timeline, base_dir=media_base_dir(timeline_path), path_map=path_map, check_time_warps=False
        )
    }
    summary_file = fill_summary_path(outdir, timeline_path)
    legacy_summary = outdir / LEGACY_FILL_SUMMARY_NAME
    claim = claim_output_folder(outdir, timeline_path, "fill", summary_file, legacy_summary)
    earlier = earlier_fills(summary_file, timeline_path, read_hash)
    model = resolve_clip_model(model)
    infos: dict[Path, VideoStreamInfo] = {}
    synthesizer: Synthesizer | None = None
    try:
        for gap in chosen:
            try:
                before, after = _neighbours(gap, segments)
                _prepare(gap, before, after, outdir, model, codec, quality, infos)
                with output_lock(Path(gap.output)):  # one fill at a time writes it
                    if _resume(gap):
                        continue
                    if synthesizer is None:
                        synthesizer = make_synthesizer(model)
                    _fill_one(gap, before, after, synthesizer, codec, quality, infos)
            except ChronoscopeError as error:
                gap.status, gap.reason, gap.output = "not_filled", str(error), ""
                log.warning("gap %s:%d not filled: %s", gap.track, gap.index_in_track, error)
    finally:
        if synthesizer is not None:
            synthesizer.close()
    kept, notes = _keep_earlier(earlier.records, chosen, timeline, segments, outdir, infos)
    chosen = sorted(chosen + kept, key=lambda gap: (gap.track_position, gap.index_in_track))
    new_timeline = timeline.deepcopy()
    rate = timeline_rate(timeline)
    for gap in chosen:
        if not gap.done:
            continue
        reference = otio.schema.ExternalReference(
            target_url=str(Path(gap.output).absolute()), available_range=time_range(0, gap.frames, rate)
        )
        reference.name = Path(gap.output).name
        clip = otio.schema.Clip(
            name=f"fill {gap.before_clip} > {gap.after_clip}",
            media_reference=reference,
            source_range=time_range(0, gap.frames, rate),
        )
        gap.to_check_at = timeline_places(gap.to_check_runs, gap.record_start_frame or 0, timeline)
        attach_results(clip, {"fill": {k: v for k, v in gap.to_dict().items() if k != "output"}})
        mark_frames_to_check(clip, gap.to_check_runs, rate, of="the fill")
        track = new_timeline.tracks[gap.track_position]
        track[gap.index_in_track] = clip
    summary = FillSummary(str(timeline_path), str(outdir), None, chosen, timeline_content_hash=read_hash)
    summary.notes = ([earlier.note] if earlier.note else []) + notes
    attach_results(new_timeline, {"fill": {"not_filled": [g.to_dict() for g in chosen if not g.done]}})
    rebase_relative_media(new_timeline, media_base_dir(timeline_path))  # it is written elsewhere
    summary.seconds = time.perf_counter() - started
    # the summary first (it vouches for the new timeline on the next run), each file replacing only
    # what stood there when the folder was claimed: one that appeared meanwhile is kept (refused)
    write_results(claim, summary, new_timeline)
    return summary


def fill_summary_path(outdir: Path, timeline_path: Path) -> Path:
    """``OUTDIR/NAME.fill-summary.json``, beside the new timeline ``NAME.chronoscope.otio``."""
    return Path(outdir) / (Path(timeline_path).stem + FILL_SUMMARY_SUFFIX)
