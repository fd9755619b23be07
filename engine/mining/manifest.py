"""The dataset manifest: JSON Lines, append-only, fsync per write; it is also the run's checkpoint.

``DATASET/manifest.jsonl`` holds three kinds of row (field ``row``):

- ``segment``: one per speed segment of a readable file, accepted or not (``accepted``,
  ``reason``), with the source path and content hash, start and end (seconds at this edge, and
  frames), playback rate, capture-rate estimate, speed, class, confidence, the stages' evidence,
  resolution and whether the file has audio;
- ``file``: one per file that gave no segment, with ``status`` and ``reason``. A status is a
  fact about the content (``not_video``, ``empty``, ``corrupt``, ``undecodable``, ``too_short``)
  or a transient outcome (``missing``, ``unreadable``: an I/O error, ``error``: failed after its
  retries, see ``TRANSIENT_STATUSES``); a transient one is tried again by the next run. Status
  ``moved`` (``moved_to``) says a path left the dataset because its file was found under another
  path (same content hash): its rows and clip rows were written again under the new path, with
  ``moved_from``, and the path no longer counts (``complete_rows`` leaves it out);
- ``clip``: written by ``--extract``, one per decision about an accepted segment: the clip file it
  became (``clip``, ``frames``, ``codec``), the segment it duplicates (``duplicate_of``), why no
  clip could be made (``refused``: damage in the source), or where a clip that no longer belongs
  to the dataset was moved (``retired``, ``retired_reason``). The latest clip row of a segment
  counts.

All rows of one file are written with a single ``write`` followed by ``fsync``, and each carries
``file_rows`` (how many rows the file has), so a row group cut short by a crash is recognised and
the file is done again. A torn last line (power cut in the middle of a write) is cut off with a
warning when the manifest is next opened. ``manifest.parquet`` (when pyarrow is installed) is
written at the end of a run: segment rows joined with their clip rows, one row per segment.

A run reads the manifest once (``scan_manifest``) and keeps only the fields it decides with
(``SLIM_FIELDS``) plus each row's byte offset; the Parquet export reads the current rows' lines
again one batch at a time, so memory does not grow with the evidence of every row.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
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
STATUS_MISSING = "missing"
STATUS_UNREADABLE = "unreadable"
STATUS_MOVED = "moved"
"""A path whose file was found under another path: its rows live on there (``moved_to``)."""
TRANSIENT_STATUSES = frozenset({STATUS_ERROR, STATUS_MISSING, STATUS_UNREADABLE})
"""Outcomes that say nothing about the content (the file was away, an I/O error, a worker died):
the file is mined again by the next run, and such a row never hides the file's earlier rows."""

OFFSET_FIELD = "_offset"
"""Where a scanned row's line starts in manifest.jsonl (bytes); never written to a file."""
SLIM_FIELDS = frozenset(
    {
        "row", "source", "content_hash", "run_group", "file_rows", "schema", "segment_index",
        "status", "reason", "gate_min_confidence", "gate_source", "gate_max_fpr", "settings",
        "accepted", "start_frame", "end_frame", "start_s", "end_s", "confidence", "basis",
        "conform_rate", "conform_fps", "class", "dhash", "clip", "duplicate_of", "refused",
        "retired", "retired_reason", "codec", "frames", "cut", "moved_from", "moved_to",
    }
)  # fmt: skip
"""The fields a run decides with (skips, gate and settings, dedupe, extraction, card, report)."""
PARQUET_BATCH_ROWS = 2000


def file_key(row: Mapping[str, Any]) -> tuple[str, str]:
    """What identifies a finished file: its path and its content hash."""
    return row["source"], row.get("content_hash") or ""


def segment_key(row: Mapping[str, Any]) -> tuple[str, str, int]:
    return row["source"], row.get("content_hash") or "", int(row["segment_index"])


def is_transient(row: Mapping[str, Any]) -> bool:
    """A ``file`` row whose status says nothing about the content (see ``TRANSIENT_STATUSES``)."""
    return row["row"] == ROW_FILE and row.get("status") in TRANSIENT_STATUSES


class ManifestWriter:
    """Appends row groups to ``manifest.jsonl``; each group is one write, flushed and fsynced.

    ``append`` returns each row's slim copy with its byte offset (what ``scan_manifest`` gives),
    so that a run keeps one view of the manifest without reading it again."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _repair_torn_tail(self.path)
        self._handle = self.path.open("ab")

    def append(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        if not rows:
            return []
        lines = [(json.dumps(row, sort_keys=True, allow_nan=False) + "\n").encode("utf-8") for row in rows]
        offset = self._handle.seek(0, os.SEEK_END)
        self._handle.write(b"".join(lines))
        self._handle.flush()
        os.fsync(self._handle.fileno())
        slim = []
        for row, line in zip(rows, lines, strict=True):
            slim.append(_slim(row, offset))
            offset += len(line)
        return slim

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _slim(row: Mapping[str, Any], offset: int) -> dict[str, Any]:
    slim = {key: value for key, value in row.items() if key in SLIM_FIELDS}
    slim[OFFSET_FIELD] = offset
    return slim


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


def _parsed_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(byte offset, row) of every well-formed row; bad lines are logged and skipped."""
    offset = 0
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            start, offset = offset, offset + len(line)
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                log.warning("%s line %d is not JSON (%s); ignored", path, number, error)
                continue
            if not isinstance(row, dict) or "row" not in row or "source" not in row:
                log.warning("%s line %d is not a manifest row; ignored", path, number)
                continue
            yield start, row


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """Every well-formed row of ``path``, whole (none when it does not exist); for tools and tests.
    A run uses ``scan_manifest``, which keeps only what it decides with."""
    path = Path(path)
    if not path.exists():
        return []
    return [row for _, row in _parsed_lines(path)]


def scan_manifest(path: Path) -> list[dict[str, Any]]:
    """Every well-formed row of ``path`` with only ``SLIM_FIELDS`` and its byte offset, in one read."""
    path = Path(path)
    if not path.exists():
        return []
    return [_slim(row, offset) for offset, row in _parsed_lines(path)]


def complete_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Segment and file rows of files whose whole row group is present (latest group per path).

    A file mined twice keeps only its last complete group: after a cut-short group, or when the
    file changed under the same path (a new content hash), whose old segments no longer exist.
    A transient group (the file was away, an I/O error, a worker died) replaces an earlier group
    only when it names a different content hash: otherwise it says nothing new about the file.
    A path whose latest group says its file moved elsewhere (``STATUS_MOVED``) has no rows here.
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
        if len(group) != int(group[0].get("file_rows", 1)):
            continue
        current = latest.get(key[0])
        if current is not None and is_transient(group[0]) and not _replaces(group[0], current[0]):
            continue
        latest[key[0]] = group
    return [row for group in latest.values() for row in group if not is_moved(group[0])]


def is_moved(row: Mapping[str, Any]) -> bool:
    """A ``file`` row saying the path's file now lives under another path (``STATUS_MOVED``)."""
    return row["row"] == ROW_FILE and row.get("status") == STATUS_MOVED


def _replaces(transient: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    if is_transient(current):
        return True
    digest = transient.get("content_hash") or ""
    return bool(digest) and digest != (current.get("content_hash") or "")


def finished_files(rows: Iterable[dict[str, Any]]) -> set[tuple[str, str]]:
    """Keys of files whose rows are all in the manifest: a resumed run skips them. A transient
    outcome (``TRANSIENT_STATUSES``: missing, unreadable, error) is tried again."""
    return {file_key(row) for row in complete_rows(rows) if not is_transient(row)}


def clip_rows(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The latest clip row per segment."""
    return {segment_key(row): row for row in rows if row["row"] == ROW_CLIP}


def joined_segments(
    rows: Sequence[dict[str, Any]], missing_sources: Collection[str] = frozenset()
) -> list[dict[str, Any]]:
    """One record per segment (and per rejected file), with its clip row's fields merged in, and
    ``source_missing`` (the source no longer exists: ``missing_sources``) and ``orphaned`` (a clip
    whose source no longer exists)."""
    clips = clip_rows(rows)
    joined = []
    for row in complete_rows(rows):
        record = dict(row)
        record.pop(OFFSET_FIELD, None)
        joined.append(_joined(record, row, clips, missing_sources))
    return joined


def _joined(
    record: dict[str, Any],
    row: Mapping[str, Any],
    clips: Mapping[tuple[str, str, int], Mapping[str, Any]],
    missing_sources: Collection[str],
) -> dict[str, Any]:
    if row["row"] == ROW_SEGMENT:
        clip = clips.get(segment_key(row))
        record["clip"] = None if clip is None else clip.get("clip")
        record["duplicate_of"] = None if clip is None else clip.get("duplicate_of")
        for name in ("frames", "cut", "refused"):
            if clip is not None and clip.get(name) is not None:
                record[f"clip_{name}"] = clip[name]
    record["source_missing"] = row["source"] in missing_sources
    record["orphaned"] = bool(record["source_missing"] and record.get("clip"))
    return record


def full_rows(path: Path, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Scanned rows (``scan_manifest``, with their offsets) read back whole from ``path``."""
    whole = []
    with Path(path).open("rb") as handle:
        for row in rows:
            handle.seek(row[OFFSET_FIELD])
            whole.append(json.loads(handle.readline()))
    return whole


def _full_records(
    path: Path, rows: Sequence[dict[str, Any]], missing_sources: Collection[str]
) -> Iterator[dict[str, Any]]:
    """The joined records of ``rows`` (scanned, with offsets) with every field, read back from ``path``."""
    clips = clip_rows(rows)
    with Path(path).open("rb") as handle:
        for row in complete_rows(rows):
            handle.seek(row[OFFSET_FIELD])
            yield _joined(json.loads(handle.readline()), row, clips, missing_sources)


def write_parquet(
    rows: Sequence[dict[str, Any]],
    destination: Path,
    *,
    manifest: Path | None = None,
    missing_sources: Collection[str] = frozenset(),
) -> bool:
    """Write the joined table as Parquet when pyarrow is installed; return whether it was written.

    ``rows`` are whole rows, or scanned ones (``scan_manifest``) together with ``manifest``: their
    lines are then read back in batches of ``PARQUET_BATCH_ROWS``. Nested fields (evidence) are
    stored as JSON text so that every row has the same columns; a column whose values have more
    than one type is stored as text.
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        log.info("pyarrow is not installed: %s not written (JSON Lines has everything)", destination.name)
        return False

    def records() -> Iterator[dict[str, Any]]:
        if manifest is not None:
            return _full_records(manifest, rows, missing_sources)
        return iter(joined_segments(rows, missing_sources))

    kinds: dict[str, set[type]] = {}
    for record in records():
        for column, value in record.items():
            found = kinds.setdefault(column, set())
            if value is not None:
                found.add(str if isinstance(value, (dict, list)) else type(value))
    columns = sorted(kinds)
    types = {bool: pa.bool_(), int: pa.int64(), float: pa.float64(), str: pa.string()}
    schema = pa.schema(
        [
            (column, pa.null() if not kinds[column] else types.get(next(iter(kinds[column])), pa.string()))
            if len(kinds[column]) <= 1
            else (column, pa.string())
            for column in columns
        ]
    )
    as_text = {column for column in columns if len(kinds[column]) > 1}

    def value_of(record: dict[str, Any], column: str) -> Any:
        value = record.get(column)
        if isinstance(value, (dict, list)):
            value = json.dumps(value, sort_keys=True)
        if column in as_text and value is not None:
            value = str(value)
        return value

    with atomic_path(destination) as temporary, pq.ParquetWriter(temporary, schema) as writer:
        batch: list[dict[str, Any]] = []
        for record in records():
            batch.append(record)
            if len(batch) >= PARQUET_BATCH_ROWS:
                writer.write_table(_table(pa, schema, columns, batch, value_of))
                batch = []
        if batch or not columns:
            writer.write_table(_table(pa, schema, columns, batch, value_of))
    return True


def _table(pa: Any, schema: Any, columns: list[str], batch: list[dict[str, Any]], value_of: Any) -> Any:
    return pa.table(
        {column: [value_of(record, column) for record in batch] for column in columns}, schema=schema
    )
