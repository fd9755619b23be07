"""Where a timeline render or fill writes, and what it may write over.

A render never writes over anything it did not make:

- every rendered file (a retimed clip, a smooth cut, a fill) carries its content hash in its name
  (``hashed_name``). Renders of different clips, settings or timelines into one folder never share
  a name, and a clip whose media is itself an earlier render is never written over by its own
  re-render. The same render always finds its own file, which is what resuming needs, and a file
  found at that name (media whose sidecar a killed render never wrote) can only be that render;
- the new timeline (``NAME.chronoscope.otio``, and its copy in the editor's format,
  ``NAME.chronoscope.edl`` or ``.xml``, for a timeline read from one: ``editor_copy``) and the
  summary (``NAME.render-summary.json``) are replaced only when the summary beside them says they
  came from the same timeline file, by the same kind of job (``check_replaceable``). Anything
  else of that name is the user's, or another job's, and is refused before any work starts.
  The claim (``claim_output_folder``) records what stood at each of those names then, and only
  that file may be replaced at the end (``write_results``): one that appears there while the work
  runs (another program, the user saving a file of that name) is kept, byte for byte, and the
  render fails naming it (``OutputExistsError``); its rendered clips stay, and render again takes
  them. Only another render of the same timeline that finished meanwhile (its summary says so, as
  the claim asks) is replaced by the later one's results.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import opentimelineio as otio

from engine.errors import FileAccessError, MediaWriteError, OutputExistsError
from engine.fsutil import write_text_atomic
from engine.retime.report import write_failure_text
from engine.timeline.editor_copy import (
    EditorCopyError,
    editor_copy_path,
    editor_copy_text,
    left_out_of_copy,
)
from engine.timeline.io import adapter_for, write_timeline

log = logging.getLogger(__name__)

SUFFIX_BY_CODEC = {"prores": ".mov", "h264": ".mp4", "h265": ".mp4", "ffv1": ".mkv", "png": ""}
HASH_CHARACTERS_IN_NAME = 10
TIMELINE_SUFFIX = ".chronoscope.otio"
"""The new timeline a render or fill writes: ``OUTDIR/NAME.chronoscope.otio``."""


def hashed_name(stem: str, codec: str, content_hash: str) -> str:
    """``STEM_HASH.SUFFIX`` (``V1_002_A002_C001_3f9a0c41d2.mov``; a folder of PNGs has no suffix).
    ``stem`` has no dot (``output_stem`` replaces them), so nothing takes part of it for a suffix."""
    if len(content_hash) < HASH_CHARACTERS_IN_NAME:
        raise ValueError(f"content hash {content_hash!r} is too short for a file name")
    return f"{stem}_{content_hash[:HASH_CHARACTERS_IN_NAME]}{SUFFIX_BY_CODEC[codec]}"


def prepare_folder(outdir: Path) -> None:
    """Create the output folder (and its parents); a clear error when it cannot be one."""
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise OutputExistsError(f"output folder {outdir} is a file; name a folder")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MediaWriteError(
            f"cannot create the output folder {outdir}: {error.strerror or error}"
        ) from None


def _summary_timeline(summary: Path) -> str | None:
    """The timeline a summary says it was made from, or None (missing, unreadable, not a summary)."""
    try:
        data = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    timeline = data.get("timeline") if isinstance(data, dict) else None
    return timeline if isinstance(timeline, str) else None


def _same_file_key(path: str | Path) -> str:
    """One spelling per file: ``..``, symbolic links and (on Windows) letter case resolved."""
    return os.path.normcase(os.path.realpath(path))


def _vouches(voucher: Path, timeline_path: Path) -> bool:
    """Whether the summary ``voucher`` says it was written by a job of ``timeline_path``."""
    written_for = _summary_timeline(voucher)
    if written_for is None:
        return False
    if _same_file_key(written_for) == _same_file_key(timeline_path):
        return True
    # summaries from before this check stored the path as typed (relative to a folder we no
    # longer know): the same file name is taken as the same timeline
    typed = Path(written_for)
    legacy = voucher.name.startswith(("render-summary", "fill-summary")) and not typed.is_absolute()
    return legacy and typed.name == Path(timeline_path).name


def check_replaceable(timeline_path: Path, job: str, outputs: list[Path], vouchers: list[Path]) -> None:
    """Refuse before any work when one of ``outputs`` exists and was not written by a ``job`` of
    ``timeline_path`` (what one of the ``vouchers``, that job's summaries, says)."""
    existing = [path for path in outputs if path.exists() or path.is_symlink()]
    if not existing:
        return
    if any(_vouches(voucher, timeline_path) for voucher in vouchers):
        return
    raise OutputExistsError(
        f"{existing[0]} already exists and was not written by a {job} of {Path(timeline_path).name}; "
        "move it away or use another output folder"
    )


@dataclass(frozen=True)
class FolderClaim:
    """An output folder claimed by a ``job`` ("render", "fill") of a timeline: the files the job
    writes there at its end and what stood at each when it was claimed (``standing_file``: None
    where nothing did). The job replaces that file, and no other, unless a job of the same
    timeline wrote its results there meanwhile (``write_results``)."""

    outdir: Path
    timeline_path: Path
    job: str
    summary: Path
    new_timeline: Path
    standing: dict[Path, tuple[int, int, int, int] | None]


class JobSummary(Protocol):
    """What ``write_results`` writes and fills in: a ``RenderSummary`` or a ``FillSummary``."""

    timeline_path: str | None
    editor_timeline_path: str | None
    editor_timeline_note: str

    def to_dict(self) -> dict[str, Any]: ...


def claim_output_folder(
    outdir: Path, timeline_path: Path, job: str, summary: Path, legacy_summary: Path
) -> FolderClaim:
    """Create ``outdir`` for a ``job`` ("render", "fill") of ``timeline_path``, and refuse, before any
    work, a new timeline or ``summary`` there that such a job of this timeline did not write.
    Returns the claim: what stands at those names now is what the job may replace at its end."""
    prepare_folder(outdir)
    new_timeline = Path(outdir) / (Path(timeline_path).stem + TIMELINE_SUFFIX)
    outputs = [new_timeline, summary]
    copy = editor_copy_path(outdir, timeline_path, adapter_for(timeline_path), TIMELINE_SUFFIX)
    if copy is not None:
        outputs.append(copy)
    # looked at before the check: a file that appears between the two is never taken as standing
    standing = {path: _standing(path) for path in outputs}
    check_replaceable(timeline_path, job, outputs, [summary, legacy_summary])
    return FolderClaim(Path(outdir), Path(timeline_path), job, summary, new_timeline, standing)


def write_results(claim: FolderClaim, summary: JobSummary, new_timeline: otio.schema.Timeline) -> None:
    """Write the end of a claimed job: ``summary`` (as ``to_dict()``), then ``new_timeline`` and its
    copy in the editor's format (``editor_copy``); the summary's paths and editor note are filled
    in here. The summary goes first: it vouches for the new timeline on the next run
    (``check_replaceable``), so a kill between the two never leaves a timeline nothing vouches for.

    What the claim let the job replace, and nothing else, is replaced:

    - the file that stood at a name when the folder was claimed, if it still stands there;
    - where nothing stood, nothing, not even a file that appears a moment before the rename
      (``engine.fsutil.move_without_replacing``);
    - a file that appeared at a name while the job ran, or took the place of the one there, is
      kept. At the summary's or the new timeline's name: neither is written, and
      ``OutputExistsError`` names it (the media the job made stays, and running it again takes
      it). At the editor copy's name: the copy is not written, and the summary's editor note says
      why, as it does when the format cannot hold the new timeline;
    - except what another job of the same kind and timeline wrote meanwhile (the same timeline
      rendered twice at once into one folder): a summary that appeared and says so vouches for
      the files beside it, as it would have at the claim, and the later job's results replace
      them. Jobs of one timeline write their results one at a time (``output_lock`` on the
      summary).

    Replacing the file that stood is a check, then a rename: one that another program swaps in
    between the two, a moment apart, is replaced."""
    from engine.render.segment import output_lock  # engine.render.segment imports this module

    copy_path, copy_text, note = editor_copy(new_timeline, claim.timeline_path, claim.outdir)
    written = [claim.summary, claim.new_timeline] + ([copy_path] if copy_text is not None else [])
    with output_lock(claim.summary):
        # what stands at each name now: the file that stood at the claim (replaced), nothing
        # (nothing is replaced, not even a file that comes later), or another file (kept: refused)
        now = {path: _standing(path) for path in written}
        appeared = [
            path for path, found in now.items() if found is not None and found != claim.standing.get(path)
        ]
        if claim.summary in appeared and _vouches(claim.summary, claim.timeline_path):
            log.info(
                "%s: another %s of %s wrote its results meanwhile; this one's replace them",
                claim.outdir,
                claim.job,
                claim.timeline_path.name,
            )
            appeared = []
        if claim.summary in appeared or claim.new_timeline in appeared:
            it, that = ("it is", "that file") if len(appeared) == 1 else ("they are", "those files")
            made = "rendered clips" if claim.job == "render" else "fill frames"
            raise OutputExistsError(
                f"{' and '.join(str(path) for path in appeared)} appeared (written by another job or "
                f"program) while this {claim.job} of {claim.timeline_path.name} ran (not what stood "
                f"there when it began); {it} left as {it}, and this {claim.job}'s new timeline and "
                f"summary were not written. The {made} are kept in {claim.outdir}: move {that} away "
                f"(or choose another output folder), then {claim.job} again; what is finished is not "
                "made again"
            )
        if copy_path in appeared:
            note = (
                f"{copy_path} appeared (written by another job or program) while this {claim.job} "
                f"ran (not what stood there when it began); it is left as it is: move it away, then "
                f"{claim.job} again for the copy"
            )
            log.warning("%s", note)
            copy_path = copy_text = None
        summary.timeline_path = str(claim.new_timeline)
        summary.editor_timeline_path = str(copy_path) if copy_path is not None else None
        summary.editor_timeline_note = note
        text = json.dumps(summary.to_dict(), indent=1) + "\n"
        writing = claim.summary
        try:
            write_text_atomic(claim.summary, text, replace=now[claim.summary] is not None)
            writing = claim.new_timeline
            write_timeline(new_timeline, claim.new_timeline, replace=now[claim.new_timeline] is not None)
            if copy_path is not None and copy_text is not None:
                writing = copy_path
                write_text_atomic(copy_path, copy_text, replace=now[copy_path] is not None)
        except OutputExistsError:
            raise
        except OSError as error:  # a full disk names no file: this says which, and what is kept
            reason, remedy = write_failure_text(error)
            made = "rendered clips" if claim.job == "render" else "fill frames"
            raise FileAccessError(
                f"cannot write {writing}: {reason}; the {made} are kept in {claim.outdir} with "
                f"their reports: {remedy}, then {claim.job} again; what is finished is not made again"
            ) from error


def _standing(path: Path) -> tuple[int, int, int, int] | None:
    # imported here: engine.render.segment imports this module (through engine.render.plan)
    from engine.render.segment import standing_file

    return standing_file(path)


def editor_copy(
    new_timeline: otio.schema.Timeline, timeline_path: Path, outdir: Path
) -> tuple[Path | None, str | None, str]:
    """``(path, text, note)`` of the new timeline in the format ``timeline_path`` was exported in
    (``engine.timeline.editor_copy``): no path for OTIO and FCPX timelines, no text (and the
    reason in ``note``) when that format cannot hold the new timeline; the OTIO one stands then.
    A copy that is written but leaves part of the timeline out (an EDL: the audio) has a
    ``note`` that says what, and where it is kept (a WARNING too)."""
    adapter = adapter_for(timeline_path)
    path = editor_copy_path(outdir, timeline_path, adapter, TIMELINE_SUFFIX)
    if path is None:
        return None, None, ""
    try:
        text = editor_copy_text(new_timeline, adapter)
    except EditorCopyError as error:
        log.warning("%s", error)
        return None, None, str(error)
    otio_name = Path(timeline_path).stem + TIMELINE_SUFFIX
    note = left_out_of_copy(new_timeline, adapter, path.name, otio_name)
    if note:
        log.warning("%s", note)
    return path, text, note
