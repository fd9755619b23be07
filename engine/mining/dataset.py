"""The dataset folder itself: where it may be, the settings it keeps, and keeping it true to the
library as it is now.

- ``check_out_folder`` refuses an ``--out`` that is a file, a folder holding something that is not
  a dataset (it names what is there: a run would write README.md and report.md over the user's),
  or a library folder itself or one holding it (a run would write among the media it describes,
  and mine nothing); ``create_out_folder`` says why a folder cannot be made.
- ``resolve_settings`` keeps the analysis settings (``--density``, ``--audio-cue``, and the
  ``--sequence-rate`` its image sequences were read at) and the clip codec a dataset was made
  with: given again, or left out, they are used; a different value is refused, naming the
  setting and how to go on, as the confidence gate is.
- ``retire_clip`` moves a clip that no longer belongs to the dataset (its source changed, or a
  better copy of the same footage was extracted) to ``retired/`` and returns the note the manifest
  records; ``retired/README.md`` lists what is there and why. Nothing is deleted or replaced (a
  clip retired twice under one name keeps both, the later as ``NAME.2.SUFFIX``): a pipeline
  reads ``clips/`` (and ``manifest.parquet``), and ``retired/`` can be removed at any time.
- ``gone_sources`` lists local sources of the dataset that no longer exist: their rows are flagged
  ``source_missing`` (and clips ``orphaned``) in manifest.parquet, the card and the report, and
  their segments are not extracted until they come back.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from engine.errors import FileAccessError, UnsupportedOptionError
from engine.fsutil import move_into_place, write_text_atomic
from engine.media import CODECS
from engine.mining.extract import CLIPS_FOLDER, DEFAULT_CODEC
from engine.mining.manifest import MANIFEST_NAME, ROW_CLIP, complete_rows
from engine.mining.sources import local_roots, source_exists
from engine.mining.storage import is_sequence_source, url_protocol
from engine.timeline import fraction_text

log = logging.getLogger(__name__)

RETIRED_FOLDER = "retired"
RETIRED_NOTE = "README.md"
LOCK_NAME = ".chronoscope-mine.lock"
MINING_DENSITY = 0.12
SHOWN_ENTRIES = 5


def check_out_folder(out: Path, sources: Sequence[str]) -> None:
    """Refuse an ``--out`` that a run would damage or that would mine nothing (see the module doc)."""
    if out.exists() and not out.is_dir():
        raise UnsupportedOptionError(
            f"--out {out} is a file, not a folder; name a new folder for the dataset, or one that "
            "`chronoscope mine` made"
        )
    resolved = out.resolve()
    for root in local_roots(sources):
        if root == resolved or resolved in root.parents:
            where = "is" if root == resolved else "holds"
            raise UnsupportedOptionError(
                f"--out {out} {where} the library {root}: the dataset would be written among the media "
                f"it describes (and they would not be mined); name a folder outside it, e.g. "
                f"{resolved.parent / (resolved.name + '-dataset')}"
            )
    if not out.is_dir() or (out / MANIFEST_NAME).is_file():
        return
    try:
        entries = sorted(entry.name for entry in os.scandir(out) if entry.name != LOCK_NAME)
    except OSError as error:
        raise FileAccessError(f"--out {out} cannot be listed ({error.strerror})") from None
    if entries:
        shown = ", ".join(entries[:SHOWN_ENTRIES]) + (
            f" and {len(entries) - SHOWN_ENTRIES} more" if len(entries) > SHOWN_ENTRIES else ""
        )
        raise UnsupportedOptionError(
            f"--out {out} is not empty and is not a dataset (no {MANIFEST_NAME}): it holds {shown}; "
            "a run would write README.md, report.md and clips/ there. Name a new or empty folder"
        )


def create_out_folder(out: Path) -> None:
    """Make the dataset folder (and its parents), or say why it cannot be made."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FileAccessError(
            f"cannot create the dataset folder {out}: {_why_not_writable(out, error)}"
        ) from None


def cannot_write(out: Path, error: OSError) -> FileAccessError:
    """The error for a dataset folder that exists but cannot be written (read-only, no permission)."""
    why = _why_not_writable(out, error)
    return FileAccessError(f"cannot write in the dataset folder {out}: {why}")


def _why_not_writable(out: Path, error: OSError) -> str:
    ancestor = out
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if error.errno == errno.EROFS:
        return f"{ancestor} is on a read-only file system; choose a folder on a writable disk"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"no permission to write in {ancestor} ({error.strerror}); choose a folder you can write"
    if error.errno == errno.ENOTDIR or not ancestor.is_dir():
        return f"{ancestor} is a file, not a folder"
    if error.errno == errno.ENOSPC:
        return f"the disk holding {ancestor} is full"
    if error.errno == errno.ENOENT:
        return (
            f"{ancestor} does not take new folders ({error.strerror}: a virtual or read-only file "
            "system, or no permission); choose a folder on a writable disk"
        )
    return f"{error.strerror or error} (in {ancestor})"


@dataclass
class DatasetSettings:
    """What a dataset's rows and clips were made with; ``None`` where the manifest does not say."""

    density: float | None = None
    audio_cue: bool | None = None
    codec: str | None = None
    sequence_rate: Fraction | None = None


def stored_settings(rows: Iterable[dict[str, Any]]) -> DatasetSettings:
    """The analysis settings of the dataset's current rows and the codec of its clips."""
    current = complete_rows(rows)
    recorded = [row["settings"] for row in current if isinstance(row.get("settings"), dict)]
    settings = DatasetSettings()
    if recorded:
        settings.density = recorded[-1].get("density")
        settings.audio_cue = recorded[-1].get("audio_cue")
    elif current:
        log.info("the rows of this dataset do not record --density and --audio-cue; they are not checked")
    rates = [
        row["settings"]["sequence_rate"]
        for row in current
        if is_sequence_source(row["source"])
        and isinstance(row.get("settings"), dict)
        and row["settings"].get("sequence_rate")
    ]
    if rates:
        settings.sequence_rate = Fraction(rates[-1])
    for row in rows:
        if row["row"] == ROW_CLIP and row.get("clip"):
            settings.codec = row.get("codec") or _codec_of(row["clip"]) or settings.codec
    return settings


def _codec_of(clip: str) -> str | None:
    """The codec of a clip recorded before clip rows named it: the one codec with its suffix."""
    suffix = Path(clip).suffix.lower()
    named = [name for name, codec in CODECS.items() if codec.suffixes and codec.suffixes[0] == suffix]
    return named[0] if len(named) == 1 else None


def resolve_settings(
    out: Path,
    rows: Iterable[dict[str, Any]],
    *,
    density: float | None,
    audio_cue: bool | None,
    codec: str | None,
    sequence_rate: Fraction | None = None,
) -> DatasetSettings:
    """This run's settings: the given ones, else the dataset's, else the defaults; a given value
    that differs from the dataset's is refused (its rows or clips would be made two ways)."""
    stored = stored_settings(rows)
    if sequence_rate is not None and stored.sequence_rate not in (None, sequence_rate):
        was = fraction_text(stored.sequence_rate)
        raise _changed(out, "--sequence-rate", was, fraction_text(sequence_rate), f"--sequence-rate {was}")
    if density is not None and stored.density is not None and density != stored.density:
        was = f"{stored.density:g}"
        raise _changed(out, "--density", was, f"{density:g}", f"--density {was}")
    if audio_cue is not None and stored.audio_cue is not None and audio_cue != stored.audio_cue:
        was, now = ("with", "without") if stored.audio_cue else ("without", "with")
        raise UnsupportedOptionError(
            f"{out} was analysed {was} --audio-cue and this run asks {now}: files already mined "
            "would not be analysed again, leaving rows made two ways; run "
            f"{'again with --audio-cue' if stored.audio_cue else 'again without --audio-cue'}, or mine into "
            "a new folder (--out)"
        )
    if codec is not None and stored.codec is not None and codec != stored.codec:
        raise UnsupportedOptionError(
            f"{out} holds clips written as {stored.codec} and this run asks for --codec {codec}: the "
            f"dataset would hold clips of two codecs and the existing ones would not be written again; "
            f"run with --codec {stored.codec} (or without --codec), or extract into a new folder (--out)"
        )
    return DatasetSettings(
        density=density if density is not None else stored.density or MINING_DENSITY,
        audio_cue=audio_cue if audio_cue is not None else bool(stored.audio_cue),
        codec=codec if codec is not None else stored.codec or DEFAULT_CODEC,
        sequence_rate=sequence_rate if sequence_rate is not None else stored.sequence_rate,
    )


def _changed(out: Path, option: str, was: str, now: str, keep: str) -> UnsupportedOptionError:
    return UnsupportedOptionError(
        f"{out} was analysed with {option} {was} and this run asks for {now}: files already mined "
        f"would not be analysed again, leaving rows made two ways; run with {keep} (or without "
        f"{option}), or mine into a new folder (--out)"
    )


def retire_clip(out: Path, relative: str, reason: str) -> str | None:
    """Move ``out/relative`` into ``retired/``; return its new relative path, or None when it is
    not there (nothing to move).

    A clip retired earlier under the same name (its source changed back and forth, or its segment
    was dropped, taken again and dropped again) is kept: this one becomes ``NAME.2.SUFFIX`` (then
    ``.3``, ...), and the manifest records the name it got. Nothing in ``retired/`` is replaced,
    not even a file that appears there a moment before the move (``move_into_place`` without
    replacing)."""
    path = out / relative
    if not path.is_file():
        return None
    folder = out / RETIRED_FOLDER
    folder.mkdir(exist_ok=True)
    name = path.name
    for number in itertools.count(2):
        try:
            move_into_place(path, folder / name, replace=False)
            break
        except FileExistsError:
            name = f"{path.stem}.{number}{path.suffix}"
    log.info("%s retired to %s/%s: %s", relative, RETIRED_FOLDER, name, reason)
    return f"{RETIRED_FOLDER}/{name}"


def write_retired_note(out: Path, rows: Iterable[dict[str, Any]]) -> int:
    """``retired/README.md``: every retired clip still in the folder and why; return how many."""
    folder = out / RETIRED_FOLDER
    if not folder.is_dir():
        return 0
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["row"] == ROW_CLIP and row.get("retired"):
            latest[row["retired"]] = row
    present = [row for name, row in sorted(latest.items()) if (out / name).is_file()]
    lines = [
        "# Retired clips",
        "",
        f"Clips that were in `{CLIPS_FOLDER}/` and no longer belong to the dataset: their source changed "
        "(a new content hash; its segments were mined again) or a better copy of the same footage was "
        "extracted. manifest.jsonl records each move (`retired`, `retired_reason`). Nothing reads this "
        "folder; delete it when you like.",
        "",
        "| clip | source | why |",
        "|---|---|---|",
        *[
            f"| {Path(row['retired']).name} | {row['source']} | {_cell(row.get('retired_reason'))} |"
            for row in present
        ],
        "",
    ]
    write_text_atomic(folder / RETIRED_NOTE, "\n".join(lines))
    return len(present)


def _cell(text: object) -> str:
    return str(text or "").replace("|", "/").replace("\n", " ")


def gone_sources(rows: Iterable[dict[str, Any]], seen: set[str]) -> list[str]:
    """Local sources with current rows in the dataset that no longer exist (``seen``: those this
    run found, which exist). URL sources are not looked up here (one request each); a URL that is
    gone shows when its clip is extracted."""
    sources = {row["source"] for row in complete_rows(rows)}
    return sorted(
        source for source in sources - seen if url_protocol(source) is None and not source_exists(source)
    )
