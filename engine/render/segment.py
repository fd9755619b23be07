"""Rendering one ``SegmentSpec``: the same function in this process and inside an engine job."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from engine.fsutil import remove_quietly
from engine.interp import Synthesizer
from engine.render.plan import SegmentSpec
from engine.retime import make_synthesizer, read_sidecar, render_mapped, sidecar_path
from engine.retime.report import RetimeReport
from engine.timeline import parse_fraction

log = logging.getLogger(__name__)

ALREADY_RENDERED = "skipped (already rendered)"


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
    return report


def is_finished(spec: SegmentSpec) -> RetimeReport | None:
    """The report of a finished render of ``spec`` (output present, sidecar hash matching), or None."""
    return finished_report(Path(spec.output), spec.content_hash, spec.total_frames)


def discard_unfinished(output: Path) -> None:
    """Before ``output`` is rendered (again): remove temporaries a killed render left beside it
    (media, sidecar, audio), and a sidecar from an earlier render with other settings, so that it
    can never vouch for the media about to replace it if this render is killed in turn."""
    output = Path(output)
    for name in (output.name, sidecar_path(output).name, output.stem + ".audio.m4a"):
        stem = Path(name).stem
        for stale in output.parent.glob(f".{stem}.partial-*"):
            log.info("removing %s, left by an interrupted render", stale)
            remove_quietly(stale)
    outdated = sidecar_path(output)
    if outdated.exists():
        log.info("removing %s: it describes an earlier render with other settings", outdated)
        remove_quietly(outdated)


def remove_stale_partials(spec: SegmentSpec) -> None:
    """``discard_unfinished`` for the output of a segment about to be rendered."""
    discard_unfinished(Path(spec.output))


def render_segment(
    spec: SegmentSpec,
    *,
    synthesizer: Synthesizer | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
) -> RetimeReport:
    """Render ``spec`` (transition overlaps included) and write its sidecar with the content hash.

    The media goes through a temporary name; the sidecar is written after it, so a sidecar with
    the right hash always stands next to complete media.
    """
    own = synthesizer is None
    active = make_synthesizer(spec.model) if own else synthesizer
    try:
        report = render_mapped(
            Path(spec.source),
            Path(spec.output),
            spec.time_map(),
            synthesizer=active,
            codec=spec.codec,
            media_start_frames=parse_fraction(spec.media_start_frames),
            include_transitions=True,
            quality=spec.quality,
            on_progress=on_progress,
            check_cancelled=check_cancelled,
        )
    finally:
        if own:
            active.close()
    report.content_hash = spec.content_hash
    report.speed = "freeze" if spec.freeze_frame else spec.time_scalar
    for note in spec.notes:
        report.add_note(-spec.head_frames, note)
    report.write_sidecar(Path(spec.output))
    return report
