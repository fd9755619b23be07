"""The dataset manifest: JSON Lines, append-only, fsync per write; it is also the run's checkpoint.

``DATASET/manifest.jsonl`` holds three kinds of row (field ``row``):

- ``segment``: one per speed segment of a readable file, accepted or not (``accepted``,
  ``reason``), with the source path and content hash, start and end (seconds at this edge, and
  frames), playback rate, capture-rate estimate, speed, class, confidence, the stages' evidence,
  resolution and whether the file has audio;
- ``file``: one per file that gave no segment (corrupt, not a video, too short), with ``status``
  and ``reason``;
- ``clip``: written by ``--extract``, one per accepted segment: the clip file it became, or the
  segment it duplicates (``duplicate_of``).

All rows of one file are written with a single ``write`` followed by ``fsync``, and each carries
``file_rows`` (how many rows the file has), so a row group cut short by a crash is recognised and
the file is done again. A torn last line (power cut in the middle of a write) is cut off with a
warning when the manifest is next opened. ``manifest.parquet`` (when pyarrow is installed) is
written at the end of a run: segment rows joined with their clip rows, one row per segment.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from engine.fsutil import atomic_path

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
PARQUET_NAME = "manifest.parquet"
ROW_SEGMENT = "segment"
ROW_FILE = "file"
ROW_CLIP = "clip"
SCHEMA_VERSION = 1


STATUS_ERROR = "error"
"""A file row's status when mining the file failed after its retries (not a fact about the file)."""


def file_key(row: dict[str, Any]) -> tuple[str, str]:
    """What identifies a finished file: its path and its content hash."""
    return row["source"], row.get("content_hash") or ""


def segment_key(row: dict[str, Any]) -> tuple[str, str, int]:
    return row["source"], row.get("content_hash") or "", int(row["segment_index"])


class ManifestWriter:
    """Appends row groups to ``manifest.jsonl``; each group is one write, flushed and fsynced."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _repair_torn_tail(self.path)
        self._handle = self.path.open("ab")

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        data = "".join(json.dumps(row, sort_keys=True, allow_nan=False) + "\n" for row in rows)
        self._handle.write(data.encode("utf-8"))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _repair_torn_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return
        handle.seek(0)
        data = handle.read()
        keep = data.rfind(b"\n") + 1
        log.warning(
            "%s: cutting off a torn last line (%d bytes) left by an interrupted run", path, len(data) - keep
        )
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """Every well-formed row of ``path`` (none when it does not exist); bad lines are logged and skipped."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            log.warning("%s line %d is not JSON (%s); ignored", path, number, error)
            continue
        if not isinstance(row, dict) or "row" not in row or "source" not in row:
            log.warning("%s line %d is not a manifest row; ignored", path, number)
            continue
        rows.append(row)
    return rows


def complete_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Segment and file rows of files whose whole row group is present (latest group per path).

    A file mined twice keeps only its last complete group: after a cut-short group, or when the
    file changed under the same path (a new content hash), whose old segments no longer exist.
    """
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    order: list[tuple[str, str, str]] = []
    for row in rows:
        if row["row"] not in (ROW_SEGMENT, ROW_FILE):
            continue
        key = (*file_key(row), str(row.get("run_group", "")))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(row)
    latest: dict[str, list[dict[str, Any]]] = {}
    for key in order:
        group = groups[key]
        if len(group) == int(group[0].get("file_rows", 1)):
            latest[key[0]] = group
    return [row for group in latest.values() for row in group]


def finished_files(rows: Iterable[dict[str, Any]]) -> set[tuple[str, str]]:
    """Keys of files whose rows are all in the manifest: a resumed run skips them. A file whose
    mining failed (``status`` "error": a worker died, storage failed) is tried again."""
    return {file_key(row) for row in complete_rows(rows) if row.get("status") != STATUS_ERROR}


def clip_rows(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The latest clip row per segment."""
    return {segment_key(row): row for row in rows if row["row"] == ROW_CLIP}


def joined_segments(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per segment (and per rejected file), with its clip row's fields merged in."""
    clips = clip_rows(rows)
    joined = []
    for row in complete_rows(rows):
        record = dict(row)
        if row["row"] == ROW_SEGMENT:
            clip = clips.get(segment_key(row))
            record["clip"] = None if clip is None else clip.get("clip")
            record["duplicate_of"] = None if clip is None else clip.get("duplicate_of")
        joined.append(record)
    return joined


def write_parquet(rows: Sequence[dict[str, Any]], destination: Path) -> bool:
    """Write the joined table as Parquet when pyarrow is installed; return whether it was written.

    Nested fields (evidence) are stored as JSON text so that every row has the same columns.
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        log.info("pyarrow is not installed: %s not written (JSON Lines has everything)", destination.name)
        return False
    records = joined_segments(rows)
    columns = sorted({key for record in records for key in record})
    table_data: dict[str, list[Any]] = {column: [] for column in columns}
    for record in records:
        for column in columns:
            value = record.get(column)
            if isinstance(value, (dict, list)):
                value = json.dumps(value, sort_keys=True)
            table_data[column].append(value)
    for column, values in table_data.items():
        kinds = {type(value) for value in values if value is not None}
        if len(kinds) > 1:
            table_data[column] = [None if value is None else str(value) for value in values]
    with atomic_path(destination) as temporary:
        pq.write_table(pa.table(table_data), temporary)
    return True
