"""Rendering one ``SegmentSpec``: the same function in this process and inside an engine job.

Also what every resumable output shares: the finished-render check (``finished_report``), the
clean-up before a render (``discard_unfinished``), and for smooth cuts and fills the probe cache
(``video_info``) and the writing of synthesized frames with their sidecar (``write_synthesized``).

A render replaces only what stood at its output when it began: the file its checks let it replace
(its own unfinished or outdated render, an earlier attempt of the same engine job, a file the
request said to overwrite). A file that appears there later, while it waits for the output or
while it renders (another render, the user copying a file in), is left as it is, byte for byte,
and the render fails with ``OutputExistsError`` naming it (``engine.fsutil.move_without_replacing``
makes the final rename refuse it). The same holds for the sidecar.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np

from engine.errors import OutputExistsError
from engine.fsutil import remove_quietly
from engine.interp import Synthesizer, synthesis_place
from engine.media import VideoWriter, probe
from engine.media.probe import VideoStreamInfo
from engine.media.writer import CarriedTags
from engine.processes import waiting_lock
from engine.render.plan import SegmentSpec
from engine.retime import make_synthesizer, read_sidecar, render_mapped, sidecar_path
from engine.retime.core import MAX_TIMES_PER_PAIR, PixelPlan
from engine.retime.report import FrameRisk, RetimeReport, remove_leftovers_of
from engine.timeline import fraction_text, parse_fraction

log = logging.getLogger(__name__)

ALREADY_RENDERED = "skipped (already rendered)"
RENDERED_MEANWHILE = "skipped (rendered meanwhile by another render of the same output)"


def finished_report(output: Path, content_hash: str, frames: int) -> RetimeReport | None:
    """The report of a finished render at ``output`` (media present, its sidecar carrying
    ``content_hash`` and ``frames`` written), or None.

    Every resumable output (retimed segments, smooth cuts, fills) is written the same way: media
    through a temporary name, then the sidecar with the content hash, so a matching sidecar proves
    the media beside it is complete.
    """
    output = Path(output)
    if not output.exists():
        return None
    report = read_sidecar(output)
    if report is None or report.content_hash != content_hash:
        return None
    if report.frames_written != frames:
        return None
    if report.output_bytes is not None and output.is_file() and output.stat().st_size != report.output_bytes:
        log.warning(
            "%s is %d bytes, not the %d its report records: it changed after it was rendered; "
            "rendering it again",
            output, output.stat().st_size, report.output_bytes,
        )
        return None
    return report


def is_finished(spec: SegmentSpec) -> RetimeReport | None:
    """The report of a finished render of ``spec`` (output present, sidecar hash matching), or None."""
    return finished_report(Path(spec.output), spec.content_hash, spec.total_frames)


def discard_unfinished(output: Path) -> None:
    """Before ``output`` is rendered (again): remove temporaries a killed render left beside it
    (media, sidecar, audio), and a sidecar from an earlier render with other settings, so that it
    can never vouch for the media about to replace it if this render is killed in turn."""
    output = Path(output)
    remove_leftovers_of(output)
    outdated = sidecar_path(output)
    if outdated.exists():
        log.info("removing %s: it describes an earlier render with other settings", outdated)
        remove_quietly(outdated)


def standing_file(path: Path) -> tuple[int, int, int, int] | None:
    """What stands at ``path`` (device, inode, size, modification time), or None when nothing does
    (or it cannot be looked at). A render may replace the file that stood at its output when it
    began, and no other: not one that took its place, nor one that appeared there since."""
    try:
        status = os.lstat(path)
    except OSError:
        return None
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def video_info(path: Path, infos: dict[Path, VideoStreamInfo]) -> VideoStreamInfo:
    """The video stream of ``path``, probed (with the packet scan) only the first time ``infos``
    is asked for it. Media written without a frame count in its header (FFV1 .mkv from
    ``write_video``) needs the scan, and a file behind many clips is read once per call that
    shares ``infos`` (one render's smooth cuts, one ``fill_gaps``)."""
    key = Path(path).resolve()
    if key not in infos:
        infos[key] = probe(key).video_stream
    return infos[key]


def synthesizer_name(synthesizer: Synthesizer) -> str:
    """The model name a report gives for ``synthesizer`` (the backend's inside a guard)."""
    return getattr(getattr(synthesizer, "backend", synthesizer), "NAME", type(synthesizer).__name__)


def synthesized_tags(
    info: VideoStreamInfo, other: VideoStreamInfo | None = None, *, what: str = "synthesized frames"
) -> CarriedTags:
    """The display tags synthesized frames take: those of ``info``, the clip they start from (the
    clip before a gap, the source of a smooth cut). Where ``other`` (the clip after a gap) is shown
    otherwise (turned, with other pixels or colour), a WARNING names what differs: the frames are
    made between the pictures as stored, and they display as the clip before does. No start
    timecode: made frames show no frame of the source."""
    carried = CarriedTags.of(info)
    if other is None:
        return carried
    theirs = CarriedTags.of(other)
    differences = [
        f"{name} {mine if mine is not None else 'untagged'} before, "
        f"{their if their is not None else 'untagged'} after"
        for name, mine, their in (
            ("rotation", carried.rotation_deg, theirs.rotation_deg),
            ("pixel aspect", carried.sample_aspect_ratio or 1, theirs.sample_aspect_ratio or 1),
            ("colour primaries", carried.color_primaries, theirs.color_primaries),
            ("transfer", carried.color_transfer, theirs.color_transfer),
        )
        if mine != their
    ]
    if differences:
        log.warning(
            "%s: the clips either side are shown differently (%s); the frames are made between the "
            "two pictures as stored and are shown as the clip before is, so next to the clip after "
            "they may look turned, squeezed or off in colour: check them, or use a still or a "
            "transition there instead",
            what, "; ".join(differences),
        )
    return carried


def write_synthesized(
    output: Path,
    first: np.ndarray,
    last: np.ndarray,
    frames: int,
    *,
    synthesizer: Synthesizer,
    codec: str,
    quality: int | None,
    plan: PixelPlan,
    rate: Fraction,
    content_hash: str,
    source: Path,
    anchor_frame: int,
    carried: CarriedTags | None = None,
    started_s: float | None = None,
    label: str = "",
) -> RetimeReport:
    """Write ``frames`` frames synthesized at t = i / (frames + 1) between ``first`` and ``last`` to
    ``output`` at ``rate``, then its sidecar report with ``content_hash``; returns the report.
    ``label`` names them in the guards' WARNINGs (``fill of gap V1:2 (a > b)``: a scene cut there).

    What smooth cuts and fills write. The media goes through a temporary name and the sidecar
    comes after it (see ``finished_report``). ``anchor_frame`` is the file frame of ``source``
    that ``first`` shows, for each frame's risk record; ``started_s`` (a ``time.perf_counter()``
    reading) is where the report's total time starts, by default now. ``carried``: how the frames
    are displayed, from the clip they are made from (``synthesized_tags``): rotation, pixel
    aspect, colour primaries and transfer; the frames are made, not taken from a source frame, so
    they get no start timecode.

    The caller has decided that what stands at ``output`` now (an unfinished or outdated render
    of it, after ``discard_unfinished``) may be replaced; a file or sidecar that appears there
    while the frames are written is not (``OutputExistsError``).
    """
    started_s = time.perf_counter() if started_s is None else started_s
    output = Path(output)
    replace_media = standing_file(output) is not None
    replace_sidecar = standing_file(sidecar_path(output)) is not None
    report = RetimeReport(
        source=str(source),
        output=str(output),
        model=synthesizer_name(synthesizer),
        codec=codec,
        output_rate=fraction_text(rate),
        output_frames=frames,
        content_hash=content_hash,
    )
    times = [Fraction(i, frames + 1) for i in range(1, frames + 1)]
    with VideoWriter(
        output,
        rate=rate,
        codec=codec,
        bit_depth=plan.bit_depth,
        alpha=plan.alpha,
        quality=quality,
        carried=carried,
        replace=replace_media,
    ) as writer:
        for start in range(0, len(times), MAX_TIMES_PER_PAIR):
            chunk = times[start : start + MAX_TIMES_PER_PAIR]
            with synthesis_place(label):
                made = synthesizer.synthesize_many(first, last, chunk)
            for offset, result in enumerate(made):
                frame = start + offset
                writer.write(result.frame)
                report.frames_written += 1
                report.frames_synthesized += 1
                report.risk.append(FrameRisk.of(result, frame, anchor_frame, fraction_text(times[frame])))
                for note in result.notes:
                    report.add_note(frame, note, fallback=result.fallback)
    report.timings_s["total"] = time.perf_counter() - started_s
    report.write_sidecar(output, replace=replace_sidecar)
    return report


def render_segment(
    spec: SegmentSpec,
    *,
    synthesizer: Synthesizer | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
) -> RetimeReport:
    """Render ``spec`` (transition overlaps included) and write its sidecar with the content hash.

    The media goes through a temporary name; the sidecar is written after it, so a sidecar with
    the right hash always stands next to complete media. One render at a time writes an output
    (``output_lock``): a second render of the same segment (the same timeline rendered twice at
    once, or again after its client was killed while the engine still renders it) waits, then
    takes the finished one, instead of deleting the first one's temporaries from under it.

    What stands at the output when this is called is what the checks before it (the engine job's
    ``check_segment_output``, the output folder ``render_timeline`` claimed) let it replace, and
    the only file it replaces. A file that appears there later, while it waits or renders, is left
    as it is: ``OutputExistsError`` (see the module doc).
    """
    output = Path(spec.output)
    checked = standing_file(output)
    with output_lock(output, check_cancelled):
        finished = is_finished(spec)
        if finished is not None:
            log.info("%s: rendered meanwhile by another render (%s)", spec.clip_name, output)
            finished.rendered_meanwhile = True
            return finished
        standing = standing_file(output)
        if standing is not None and standing != checked:
            raise OutputExistsError(
                f"{output} appeared while this render of {spec.clip_name!r} waited for it, and it is "
                "not a finished render of this clip; it is left as it is and the clip was not "
                "rendered: move that file away (or choose another output folder), then render again"
            )
        discard_unfinished(output)
        # replacing, only where a file stood when the checks ran (this render's own unfinished or
        # outdated one, or one the request said to overwrite); where none did, nothing is replaced
        return _render_segment(spec, synthesizer, on_progress, check_cancelled, replace=standing is not None)


def output_lock(output: Path, check_cancelled: Callable[[], None] | None = None):
    """The lock one render of ``output`` holds while it writes it (a hidden file beside it)."""
    output = Path(output)
    return waiting_lock(
        output.parent / f".{output.name}.lock",
        check=check_cancelled,
        on_wait=lambda: log.info("%s: another render is writing it; waiting for it", output),
    )


def _render_segment(
    spec: SegmentSpec,
    synthesizer: Synthesizer | None,
    on_progress: Callable[[int, int], None] | None,
    check_cancelled: Callable[[], None] | None,
    *,
    replace: bool,
) -> RetimeReport:
    output = Path(spec.output)
    replace_sidecar = standing_file(sidecar_path(output)) is not None  # none after discard_unfinished
    own = synthesizer is None
    active = make_synthesizer(spec.model) if own else synthesizer
    try:
        report = render_mapped(
            Path(spec.source),
            output,
            spec.time_map(),
            synthesizer=active,
            codec=spec.codec,
            media_start_frames=parse_fraction(spec.media_start_frames),
            include_transitions=True,
            quality=spec.quality,
            on_progress=on_progress,
            check_cancelled=check_cancelled,
            replace=replace,
            timecode_from_source=True,
            label=f"{spec.track} #{spec.index_in_track} {spec.clip_name}",
        )
    finally:
        if own:
            active.close()
    report.content_hash = spec.content_hash
    report.speed = "freeze" if spec.freeze_frame else spec.time_scalar
    for note in spec.notes:
        report.add_note(-spec.head_frames, note)
    report.write_sidecar(output, replace=replace_sidecar)
    return report
