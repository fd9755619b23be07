"""``repair_clip``: a clip with its dropped and duplicated frames replaced by synthesized ones.

    report = repair_clip("capture.mp4", "fixed.mov", model="flow")
    report.fills            # one record per run of filled slots: frames, kind, t, risk
    report.output_frames    # every slot of the constant frame grid filled

The analysis (``engine.repair.analysis``) lays the source frames out on a constant frame grid;
this pass decodes the source once, writes every kept frame at its slot and fills the empty slots
between two kept frames A and B with in-betweens at t = i / (n + 1) from the guarded synthesizer
(never across a scene cut: the nearer frame is repeated there, and the report says so). Frames
lost to damage or decoded garbled are dropped frames like any other (``damaged_frames``, and the
fills that replace them); where damage leaves no undamaged frame before or after, the nearest
one is held there (``held`` fills, counted in ``frames_held``). The output's folder is checked
before any work (``check_output_folder``). The
output runs at the grid's rate with frame n at n / rate. A report is written beside the output as
``<output>.chronoscope.json``; like the output, it is replaced only with ``overwrite``
(``engine.retime.clip.check_report_free``): one standing there is refused before any work, and one
that appears while the clip is repaired is kept (``OutputExistsError``). A report that cannot be
written (the disk filled up with the output) takes the repaired clip with it: ``FileAccessError``
names the report, and neither is left.

Audio (``audio``): keep (default) copies every track unchanged; where the container takes none of
them (PCM into .mp4) the first is re-encoded as AAC instead, its timing unchanged, with an INFO
line. drop writes no sound.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import UnsupportedOptionError
from engine.fsutil import check_output_folder, remove_quietly, temporary_sibling
from engine.interp import Synthesizer
from engine.interp.checks import frame_runs, needs_check
from engine.interp.guarded import nearest_instead, nearest_words
from engine.media import VideoWriter, probe
from engine.media.timecode import start_timecode
from engine.media.writer import (
    CarriedTags,
    audio_copy_fits,
    check_output_path,
    check_output_rate,
    check_quality,
)
from engine.repair.analysis import JUMPS_INSERT, MAX_DUPLICATE_REPEATS, Fill, RepairPlan, analyse_clip
from engine.repair.sources import source_frames
from engine.retime.audio import AUDIO_DROP, AUDIO_KEEP, reencode_audio
from engine.retime.clip import check_report_free
from engine.retime.core import (
    MAX_TIMES_PER_PAIR,
    ProgressCallback,
    codec_for_output,
    make_synthesizer,
    pixel_plan,
)
from engine.retime.report import SIDECAR_SUFFIX, remove_leftovers_of, write_report_beside
from engine.timeline import fraction_text

log = logging.getLogger(__name__)

REPAIR_REPORT_VERSION = 1
REPAIR_AUDIO_MODES = (AUDIO_KEEP, AUDIO_DROP)


@dataclass
class FillRecord:
    """One run of synthesized frames in the output, and what they replace."""

    kind: str
    first_output_frame: int
    last_output_frame: int
    before_source_frame: int
    after_source_frame: int
    missing_timestamps: int
    duplicates_replaced: list[int]
    jump_frames: int
    times: list[str]
    risk: list[float]
    notes: list[str] = field(default_factory=list)
    local: list[float] = field(default_factory=list)
    """Each made frame's local risk (``engine.interp.checks.local_risk``), in order."""
    check: list[int] = field(default_factory=list)
    """Output frames whose local risk reaches their model's measured level: to look at."""
    damaged: list[int] = field(default_factory=list)
    """Source frames lost to damage or decoded garbled that these frames replace."""
    held: bool = False
    """The frames hold ``before_source_frame`` (no undamaged frame on one side to make them from)."""


@dataclass
class RepairReport:
    """What ``repair_clip`` changed: every filled run, what it kept as it was, and timings."""

    source: str
    output: str
    model: str
    codec: str
    output_rate: str
    source_frames: int
    output_frames: int
    frames_written: int = 0
    frames_synthesized: int = 0
    frames_held: int = 0
    audio: str = "none"
    fills: list[FillRecord] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    jumps_reported: list[dict[str, Any]] = field(default_factory=list)
    grid_notes: list[str] = field(default_factory=list)
    damaged_frames: list[list[int]] = field(default_factory=list)
    """Source frames lost to damage or decoded garbled, as runs ``[first, last]``."""
    damage: list[str] = field(default_factory=list)
    """What the reader said of the damage (the first few reports)."""
    jumps_unjudged: list[list[int]] = field(default_factory=list)
    """Runs of source frames that move too little to find frames lost there without a timestamp
    gap (``RepairPlan.jumps_unjudged``)."""
    start_timecode: str | None = None
    """The source's start timecode, the output's too (written into it where it holds one: .mov,
    .mp4, .mkv; PNG frames cannot); None when the source has none."""
    timings_s: dict[str, float] = field(default_factory=dict)
    version: int = REPAIR_REPORT_VERSION

    @property
    def changed(self) -> bool:
        return bool(self.fills)

    @property
    def risk_max(self) -> float:
        return max((value for fill in self.fills for value in fill.risk), default=0.0)

    @property
    def frames_to_check(self) -> list[int]:
        return sorted(frame for fill in self.fills for frame in fill.check)

    def counts(self) -> dict[str, int]:
        return {
            "timestamp_gap": sum(f.missing_timestamps for f in self.fills),
            "duplicate": sum(len(f.duplicates_replaced) for f in self.fills),
            "jump": sum(f.jump_frames for f in self.fills),
            "damaged": sum(len(f.damaged) for f in self.fills),
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["changed"] = self.changed
        data["counts"] = self.counts()
        data["risk_max"] = round(self.risk_max, 4)
        data["frames_to_check"] = frame_runs(self.frames_to_check)
        return data

    def write_sidecar(self, *, replace: bool = True) -> Path:
        """Write the report beside the output (atomically); returns its path. With ``replace=False``
        a report that appeared there meanwhile is never replaced: it stays and ``OutputExistsError``
        names it. A report that cannot be written takes the repaired clip with it
        (``engine.retime.report.write_report_beside``)."""
        text = json.dumps(self.to_dict(), indent=1) + "\n"
        return write_report_beside(Path(self.output), text, replace=replace, what="repair report")


def _record(fill: Fill) -> FillRecord:
    notes = []
    if fill.held:
        side = "before" if fill.first_output_frame == 0 else "after"
        notes.append(
            f"damage leaves no undamaged frame {side} these: source frame {fill.before_frame} is held"
        )
    return FillRecord(
        kind=fill.kind,
        first_output_frame=fill.first_output_frame,
        last_output_frame=fill.first_output_frame + fill.frames - 1,
        before_source_frame=fill.before_frame,
        after_source_frame=fill.after_frame,
        missing_timestamps=fill.missing_timestamps,
        duplicates_replaced=list(fill.duplicates_replaced),
        jump_frames=fill.jump_frames,
        times=[fraction_text(t) for t in fill.times()],
        risk=[],
        notes=notes,
        damaged=list(fill.damaged),
        held=fill.held,
    )


def repair_clip(
    source: Path,
    output: Path,
    *,
    model: str | None = None,
    codec: str | None = None,
    quality: int | None = None,
    jumps: str = JUMPS_INSERT,
    max_duplicate_repeats: int = MAX_DUPLICATE_REPEATS,
    audio: str = AUDIO_KEEP,
    overwrite: bool = False,
    synthesizer: Synthesizer | None = None,
    plan: RepairPlan | None = None,
    on_analysis_progress: ProgressCallback | None = None,
    on_progress: ProgressCallback | None = None,
) -> RepairReport:
    """Repair ``source`` into ``output`` and write the report beside it; see the module doc.

    ``model`` names the synthesis backend (None: the default model), or pass a ready
    ``synthesizer`` (not closed here). ``plan`` reuses an ``analyse_clip`` result;
    ``on_analysis_progress(done, total)`` hears of the frames analysed (without ``plan``), then
    ``on_progress(done, total)`` of the frames written. ``audio``: keep or drop. Errors are
    ``ChronoscopeError`` subclasses; nothing is left at ``output`` on failure.
    """
    started = time.perf_counter()
    source, output = Path(source), Path(output)
    if audio not in REPAIR_AUDIO_MODES:
        raise UnsupportedOptionError(
            f"audio mode {audio!r} not supported by repair; use one of: {', '.join(REPAIR_AUDIO_MODES)}"
        )
    check_output_path(
        output, source, overwrite=overwrite, what="repaired clip", companions=(SIDECAR_SUFFIX,)
    )
    check_report_free(output, overwrite=overwrite)
    check_output_folder(output, what="repaired clip")
    remove_leftovers_of(output)
    codec = codec or codec_for_output(output)
    check_quality(codec, quality)
    info = probe(source)
    video = info.video_stream
    check_output_rate(output, video.frame_rate)
    pixels = pixel_plan(video, codec)
    if plan is None:
        plan = analyse_clip(
            source, jumps=jumps, max_duplicate_repeats=max_duplicate_repeats, on_progress=on_analysis_progress
        )
    audio_from = None
    audio_range_s = None
    audio_done = "none"
    reencode = False
    if info.audio:
        if audio == AUDIO_DROP:
            audio_done = "dropped"
        elif codec == "png":
            log.warning("PNG frames hold no audio: the audio of %s is not written", source)
            audio_done = "dropped"
        elif any(audio_copy_fits(track.codec, output.suffix) for track in info.audio):
            audio_from, audio_done = source, "copied"
            if video.start_s > 0:
                # The output's first frame is at 0: take the audio from the source's first frame on,
                # so picture and sound stay where they were relative to each other.
                end_s = video.start_s + Fraction(plan.output_frames) / plan.grid.rate
                audio_range_s = (video.start_s, end_s)
        else:
            reencode, audio_done = True, "re-encoded"
            log.info(
                "%s: %s cannot take a copy of its %s sound: it is re-encoded as AAC, in sync%s",
                source.name,
                output.suffix,
                info.audio[0].codec,
                f" (only the first of its {len(info.audio)} tracks)" if len(info.audio) > 1 else "",
            )
    analysed = time.perf_counter()
    own = synthesizer is None
    active = make_synthesizer(model) if own else synthesizer
    report = RepairReport(
        source=str(source),
        output=str(output),
        model=getattr(getattr(active, "backend", active), "NAME", type(active).__name__),
        codec=codec,
        output_rate=fraction_text(plan.grid.rate),
        source_frames=plan.source_frames,
        output_frames=plan.output_frames,
        audio=audio_done,
        kept=list(plan.notes),
        jumps_reported=list(plan.jumps_reported),
        grid_notes=list(plan.grid_notes),
        damaged_frames=frame_runs(plan.damaged_frames),
        damage=list(plan.damage),
        jumps_unjudged=list(plan.jumps_unjudged),
        start_timecode=start_timecode(info),
    )
    fills_by_after = {fill.after_frame: fill for fill in plan.fills}
    lead, tail = plan.lead_hold, plan.tail_hold
    synthesis_s = 0.0
    temporary_audio: Path | None = None
    try:
        if reencode:
            temporary_audio = temporary_sibling(output.with_name(output.name + ".audio.m4a"))
            reencode_audio(source, temporary_audio, video_start_s=video.start_s)
            audio_from = temporary_audio
        with (
            source_frames(source, output=pixels.reader_format, deinterlace=pixels.deinterlace) as reader,
            VideoWriter(
                output,
                rate=plan.grid.rate,
                codec=codec,
                bit_depth=pixels.bit_depth,
                alpha=pixels.alpha,
                quality=quality,
                audio_from=audio_from,
                audio_range_s=audio_range_s,
                carried=CarriedTags.of(video, timecode=report.start_timecode),
                replace=overwrite,
            ) as writer,
        ):

            def write(image: np.ndarray) -> None:
                writer.write(image)
                report.frames_written += 1
                if on_progress is not None:
                    on_progress(report.frames_written, plan.output_frames)

            def hold(fill: Fill, image: np.ndarray) -> None:
                record = _record(fill)
                for _ in range(fill.frames):
                    write(image)
                report.frames_held += fill.frames
                report.fills.append(record)

            previous: np.ndarray | None = None
            for frame in reader.frames():
                if not plan.kept_frames[frame.index]:
                    continue
                if frame.concealed:  # undamaged when analysed: the decoder concealed differently now
                    log.warning(
                        "%s: source frame %d decoded with damage on this pass, not when it was "
                        "analysed; written as decoded",
                        source,
                        frame.index,
                    )
                if previous is None and lead is not None:
                    hold(lead, frame.image)
                fill = fills_by_after.get(frame.index)
                if fill is not None:
                    record = _record(fill)
                    times = fill.times()
                    begun = time.perf_counter()
                    for start in range(0, len(times), MAX_TIMES_PER_PAIR):
                        chunk = times[start : start + MAX_TIMES_PER_PAIR]
                        if fill.jump_cut is not None:  # the guard cannot see it: never a morph
                            note = f"{fill.jump_cut}: {nearest_words(report.model)}"
                            made = nearest_instead(previous, frame.image, chunk, note, risk_value=1.0)
                        else:
                            made = active.synthesize_many(previous, frame.image, chunk)
                        for result in made:
                            write(result.frame)
                            local = result.risk_local
                            if needs_check(result.backend, local, fallback=result.fallback):
                                record.check.append(record.first_output_frame + len(record.risk))
                            record.risk.append(round(result.risk_score, 5))
                            record.local.append(round(local, 5))
                            for note in result.notes:
                                if note not in record.notes:
                                    record.notes.append(note)
                    synthesis_s += time.perf_counter() - begun
                    report.frames_synthesized += fill.frames
                    report.fills.append(record)
                write(frame.image)
                previous = frame.image
            if tail is not None and previous is not None:
                hold(tail, previous)
    finally:
        if own:
            active.close()
        if temporary_audio is not None:
            remove_quietly(temporary_audio)
    if report.frames_written != plan.output_frames:
        log.warning(
            "%s: wrote %d frames, the plan has %d (the source decoded fewer frames than its index)",
            output,
            report.frames_written,
            plan.output_frames,
        )
        report.output_frames = report.frames_written
    report.timings_s = {
        "analysis": round(analysed - started, 3),
        "synthesis": round(synthesis_s, 3),
        "total": round(time.perf_counter() - started, 3),
    }
    report.write_sidecar(replace=overwrite)  # as its media
    counts = report.counts()
    log.info(
        "%s -> %s: %d frames at %s fps, %d synthesized (%d timestamp gaps, %d duplicates, %d jumps, "
        "%d damaged), %d held",
        source.name,
        output,
        report.frames_written,
        report.output_rate,
        report.frames_synthesized,
        counts["timestamp_gap"],
        counts["duplicate"],
        counts["jump"],
        counts["damaged"],
        report.frames_held,
    )
    return report
