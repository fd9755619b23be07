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
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import opentimelineio as otio

from engine.errors import MediaWriteError, OutputExistsError
from engine.timeline.editor_copy import EditorCopyError, editor_copy_path, editor_copy_text
from engine.timeline.io import adapter_for

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


def check_replaceable(timeline_path: Path, job: str, outputs: list[Path], vouchers: list[Path]) -> None:
    """Refuse before any work when one of ``outputs`` exists and was not written by a ``job`` of
    ``timeline_path`` (what one of the ``vouchers``, that job's summaries, says)."""
    existing = [path for path in outputs if path.exists() or path.is_symlink()]
    if not existing:
        return
    ours = _same_file_key(timeline_path)
    for voucher in vouchers:
        written_for = _summary_timeline(voucher)
        if written_for is None:
            continue
        if _same_file_key(written_for) == ours:
            return
        # summaries from before this check stored the path as typed (relative to a folder we no
        # longer know): the same file name is taken as the same timeline
        typed = Path(written_for)
        legacy = voucher.name.startswith(("render-summary", "fill-summary")) and not typed.is_absolute()
        if legacy and typed.name == Path(timeline_path).name:
            return
    raise OutputExistsError(
        f"{existing[0]} already exists and was not written by a {job} of {Path(timeline_path).name}; "
        "move it away or use another output folder"
    )


def claim_output_folder(
    outdir: Path, timeline_path: Path, job: str, summary: Path, legacy_summary: Path
) -> None:
    """Create ``outdir`` for a ``job`` ("render", "fill") of ``timeline_path``, and refuse, before any
    work, a new timeline or ``summary`` there that such a job of this timeline did not write."""
    prepare_folder(outdir)
    new_timeline = Path(outdir) / (Path(timeline_path).stem + TIMELINE_SUFFIX)
    outputs = [new_timeline, summary]
    copy = editor_copy_path(outdir, timeline_path, adapter_for(timeline_path), TIMELINE_SUFFIX)
    if copy is not None:
        outputs.append(copy)
    check_replaceable(timeline_path, job, outputs, [summary, legacy_summary])


def editor_copy(
    new_timeline: otio.schema.Timeline, timeline_path: Path, outdir: Path
) -> tuple[Path | None, str | None, str]:
    """``(path, text, note)`` of the new timeline in the format ``timeline_path`` was exported in
    (``engine.timeline.editor_copy``): no path for OTIO and FCPX timelines, no text (and the
    reason in ``note``) when that format cannot hold the new timeline; the OTIO one stands then."""
    path = editor_copy_path(outdir, timeline_path, adapter_for(timeline_path), TIMELINE_SUFFIX)
    if path is None:
        return None, None, ""
    try:
        return path, editor_copy_text(new_timeline, adapter_for(timeline_path)), ""
    except EditorCopyError as error:
        log.warning("%s", error)
        return None, None, str(error)
