"""``mine``: sources in, a dataset folder out; resumable, and the same on one core or a cluster.

    DATASET/manifest.jsonl   the checkpoint and the record (see engine.mining.manifest)
    DATASET/manifest.parquet the same, one row per segment, when pyarrow is installed
    DATASET/clips/           with extract: accepted segments conformed to their capture rate
    DATASET/README.md        the dataset card: gate threshold and the false-positive curve behind it
    DATASET/report.md, *.png what was found and what was rejected, with plots

The order of work: expand the sources; skip files whose path and content hash already have a
complete row group in the manifest; run ``mine_file`` on the rest through the chosen runner and
append each file's rows as it finishes; then (``extract``) pick the accepted segments in a fixed
order (exact capture rate, most frames, most confident first), drop near-duplicates by
perceptual hash, and extract the rest as tasks; finally write Parquet, the card and the report.
A killed run loses at most the files that were in flight.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import uuid
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from tqdm import tqdm

from engine.errors import UnsupportedOptionError
from engine.fsutil import remove_quietly
from engine.mining.extract import CLIPS_FOLDER, DEFAULT_CODEC, check_codec, clip_name, extract_segment
from engine.mining.gate import QualityGate, check_confidence, find_gate
from engine.mining.manifest import (
    MANIFEST_NAME,
    PARQUET_NAME,
    ROW_CLIP,
    SCHEMA_VERSION,
    STATUS_ERROR,
    ManifestWriter,
    clip_rows,
    complete_rows,
    finished_files,
    read_manifest,
    segment_key,
    write_parquet,
)
from engine.mining.report import write_card, write_report
from engine.mining.runners import DEFAULT_RETRIES, InProcessRunner, make_runner
from engine.mining.sources import content_hash, expand_sources
from engine.mining.stages import MineSettings, dhash_distance, file_row, mine_file
from engine.mining.storage import CachePolicy, is_process_local
from engine.processes import exclusive_lock

log = logging.getLogger(__name__)

LOCK_NAME = ".chronoscope-mine.lock"
DUPLICATE_MAX_BITS = 6.0
MINING_DENSITY = 0.12


@dataclass
class MineOptions:
    """Everything ``chronoscope mine`` takes; validated in ``__post_init__``.

    ``cache_dir`` and ``keep_cache`` say where URL sources are copied for decoding and whether the
    copies stay (``engine.mining.storage.CachePolicy``); ``isolate`` runs tasks in worker
    processes even with one worker (``engine.mining.runners.make_runner``).
    """

    sources: list[str]
    out: Path
    extract: bool = False
    min_confidence: float | None = None
    evaluation: Path | None = None
    max_fpr: float = 0.05
    workers: int = 1
    ray_address: str | None = None
    codec: str = DEFAULT_CODEC
    audio_cue: bool = False
    density: float = MINING_DENSITY
    retries: int = DEFAULT_RETRIES
    duplicate_max_bits: float = DUPLICATE_MAX_BITS
    progress: bool = True
    limit_files: int | None = None
    cache_dir: Path | None = None
    keep_cache: bool = False
    isolate: bool = False

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.cache_dir is not None:
            self.cache_dir = Path(self.cache_dir)
        if self.workers < 1:
            raise UnsupportedOptionError(f"--workers {self.workers} must be 1 or more")
        if self.retries < 0:
            raise UnsupportedOptionError(f"--retries {self.retries} must be 0 or more")
        if not 0 < self.max_fpr < 1:
            raise UnsupportedOptionError(f"--max-fpr {self.max_fpr} must be in (0, 1), e.g. 0.05")
        if self.min_confidence is not None:
            check_confidence(self.min_confidence)
        if not 0 < self.density <= 1:
            raise UnsupportedOptionError(
                f"--density {self.density} is outside (0, 1]; {MINING_DENSITY} is the default"
            )
        if self.extract:
            check_codec(self.codec)
        elif self.codec != DEFAULT_CODEC:
            raise UnsupportedOptionError(f"--codec {self.codec} is for the clips of --extract; add --extract")


@dataclass
class MineSummary:
    """What a run did."""

    out: Path
    files_seen: int = 0
    files_skipped: int = 0
    files_mined: int = 0
    files_rejected: int = 0
    segments: int = 0
    accepted: int = 0
    clips_written: int = 0
    duplicates: int = 0
    extract_failures: int = 0
    wall_s: float = 0.0
    runner: str = ""
    gate: QualityGate | None = None
    failures: list[str] = field(default_factory=list)


def _bookkeeping(rows: list[dict[str, Any]], gate: QualityGate) -> list[dict[str, Any]]:
    group = uuid.uuid4().hex
    for row in rows:
        row["run_group"] = group
        row["file_rows"] = len(rows)
        row["schema"] = SCHEMA_VERSION
        row["gate_min_confidence"] = gate.min_confidence
    return rows


def _bar(total: int, enabled: bool, label: str) -> tqdm:
    return tqdm(
        total=total,
        desc=label,
        unit="file",
        disable=not (enabled and sys.stderr.isatty()),
        file=sys.stderr,
        smoothing=0.1,
    )


def mine(options: MineOptions) -> MineSummary:
    """Run the mining pipeline described in the module docstring; return its summary.

    One run at a time writes a dataset folder (a lock file in it); a second is refused at once."""
    sources = expand_sources(options.sources, exclude=[options.out])
    if options.limit_files is not None:
        sources = sources[: options.limit_files]
    _check_reachable(sources, options)
    options.out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(exclusive_lock(options.out / LOCK_NAME))
        except BlockingIOError:
            raise UnsupportedOptionError(
                f"another `chronoscope mine` is writing {options.out}; wait for it to finish, or mine "
                "into another folder"
            ) from None
        return _mine_locked(options, sources)


def _mine_locked(options: MineOptions, sources: list[str]) -> MineSummary:
    started = time.perf_counter()
    out = options.out
    manifest_path = out / MANIFEST_NAME
    existing_rows = read_manifest(manifest_path)
    gate = _gate_for(options, existing_rows)
    summary = MineSummary(out=out, gate=gate)
    summary.files_seen = len(sources)
    done = finished_files(existing_rows)
    runner = make_runner(
        workers=options.workers,
        ray_address=options.ray_address,
        retries=options.retries,
        isolate=options.isolate,
    )
    summary.runner = f"{runner.name} ({runner.workers} workers)"
    settings = MineSettings(
        min_confidence=gate.min_confidence,
        density=options.density,
        audio_cue=options.audio_cue,
        model_threads=0 if isinstance(runner, InProcessRunner) else 1,
        cache=_cache_policy(options),
    )
    try:
        with ManifestWriter(manifest_path) as writer:
            _analyse(sources, done, runner, settings, writer, gate, options, summary)
            if options.extract:
                _extract(read_manifest(manifest_path), runner, writer, options, summary)
    finally:
        runner.close()
    rows = read_manifest(manifest_path)
    write_parquet(rows, out / PARQUET_NAME)
    summary.wall_s = time.perf_counter() - started
    write_card(out, rows, gate)
    write_report(out, rows, summary)
    log.info(
        "mined %d files (%d skipped as done) in %.1f s: %d segments, %d accepted, %d clips",
        summary.files_mined,
        summary.files_skipped,
        summary.wall_s,
        summary.segments,
        summary.accepted,
        summary.clips_written,
    )
    return summary


def _gate_for(options: MineOptions, rows: list[dict[str, Any]]) -> QualityGate:
    """The run's gate. A dataset keeps the gate it was mined with: its accepted rows, clips, card
    and report all follow it, so a different explicit gate is refused, and without one the
    dataset's own is used again."""
    gated = [float(row["gate_min_confidence"]) for row in complete_rows(rows) if "gate_min_confidence" in row]
    stored = set(gated)
    if stored and options.min_confidence is None and options.evaluation is None:
        log.info("%s was mined with the gate %.2f; kept", options.out, gated[-1])
        return find_gate(min_confidence=gated[-1], max_fpr=options.max_fpr)
    gate = find_gate(
        min_confidence=options.min_confidence, evaluation=options.evaluation, max_fpr=options.max_fpr
    )
    if stored and stored != {gate.min_confidence}:
        was = ", ".join(f"{value:g}" for value in sorted(stored))
        raise UnsupportedOptionError(
            f"{options.out} was mined with the confidence gate {was}; mining into it at "
            f"{gate.min_confidence:g} would leave segments gated two ways: pass --min-confidence {was} "
            "(or nothing), or mine into a new folder"
        )
    return gate


def _cache_policy(options: MineOptions) -> CachePolicy:
    return CachePolicy(None if options.cache_dir is None else str(options.cache_dir), options.keep_cache)


def _check_reachable(sources: list[str], options: MineOptions) -> None:
    """A ``memory://`` store lives in this process: pool and Ray workers would find it empty."""
    local_only = [source for source in sources if is_process_local(source)]
    if local_only and (options.workers > 1 or options.isolate or options.ray_address is not None):
        raise UnsupportedOptionError(
            f"{local_only[0]} is in this process's memory:// store, which worker processes cannot "
            "see; run it in-process (--workers 1, no --ray) or put it on shared storage"
        )


def _analyse(sources, done, runner, settings, writer, gate, options, summary) -> None:
    todo = []
    for source in sources:
        try:
            digest = content_hash(source)
        except OSError as error:
            log.warning("%s cannot be read: %s", source, error)
            writer.append(_bookkeeping([file_row(source, "", "unreadable", str(error))], gate))
            summary.files_rejected += 1
            continue
        if (source, digest) in done:
            summary.files_skipped += 1
            continue
        todo.append((source, digest))
    with _bar(len(todo), options.progress, "mining") as bar:
        for source, digest in todo:
            runner.submit((source, digest), mine_file, source, digest, settings)
        while runner.pending():
            finished = runner.next_done()
            source, digest = finished.token
            if finished.error is not None:
                reason = f"{type(finished.error).__name__}: {finished.error}"
                log.error("%s: mining failed after %d retries: %s", source, options.retries, reason)
                summary.failures.append(f"{source}: {reason}")
                rows = [file_row(source, digest, STATUS_ERROR, reason)]
            else:
                rows = finished.value
            writer.append(_bookkeeping(rows, gate))
            summary.files_mined += 1
            segments = [row for row in rows if row["row"] == "segment"]
            if not segments:
                summary.files_rejected += 1
                log.warning("%s skipped: %s", source, rows[0].get("reason", ""))
            summary.segments += len(segments)
            summary.accepted += sum(bool(row["accepted"]) for row in segments)
            bar.update(1)


def _extract(rows, runner, writer, options: MineOptions, summary: MineSummary) -> None:
    """Dedupe accepted segments (in ``_keep_order``) and extract the rest as tasks."""
    clips_dir = options.out / CLIPS_FOLDER
    clips_dir.mkdir(exist_ok=True)
    for leftover in clips_dir.glob(".*.partial-*"):
        # a run killed while extracting (this run holds the dataset's lock: no one else writes)
        log.info("removing %s, left by an interrupted extraction", leftover.name)
        remove_quietly(leftover)
    existing = clip_rows(rows)
    accepted = [row for row in complete_rows(rows) if row["row"] == "segment" and row["accepted"]]
    accepted.sort(key=_keep_order)
    kept: list[tuple[str, str]] = []
    todo = 0
    for row in accepted:
        key = segment_key(row)
        previous = existing.get(key)
        if previous is not None and previous.get("clip") and (options.out / previous["clip"]).exists():
            kept.append((row.get("dhash") or "", previous["clip"]))
            continue
        if previous is not None and previous.get("duplicate_of"):
            continue
        name = clip_name(
            row["source"], row["content_hash"], int(row["segment_index"]), _rate(row), options.codec
        )
        match = _duplicate_of(row.get("dhash"), kept, options.duplicate_max_bits)
        if match is not None:
            writer.append([_clip_row(row, None, match)])
            summary.duplicates += 1
            continue
        relative = f"{CLIPS_FOLDER}/{name}"
        kept.append((row.get("dhash") or "", relative))
        runner.submit(
            (row, relative),
            extract_segment,
            row["source"],
            int(row["start_frame"]),
            int(row["end_frame"]),
            row["conform_rate"],
            str(options.out / relative),
            options.codec,
            row["content_hash"],
            _cache_policy(options),
        )
        todo += 1
    with _bar(todo, options.progress, "extracting") as bar:
        while runner.pending():
            finished = runner.next_done()
            row, relative = finished.token
            if finished.error is not None:
                log.warning(
                    "%s segment %s not extracted: %s", row["source"], row["segment_index"], finished.error
                )
                summary.extract_failures += 1
                summary.failures.append(f"extract {row['source']}#{row['segment_index']}: {finished.error}")
            else:
                clip = _clip_row(row, relative, None)
                clip.update(finished.value)
                writer.append([clip])
                summary.clips_written += 1
            bar.update(1)


def _keep_order(row: dict[str, Any]) -> tuple:
    """Which copy of near-duplicates to keep: an exactly known capture rate first (tag or stream
    rate), then the most captured frames, then the most confident; path and index break ties."""
    return (
        row.get("basis") == "pixels",
        -(int(row["end_frame"]) - int(row["start_frame"])),
        -float(row["confidence"]),
        row["source"],
        int(row["segment_index"]),
    )


def _rate(row: dict[str, Any]) -> Fraction:
    return Fraction(row["conform_rate"])


def _duplicate_of(dhash: str | None, kept: list[tuple[str, str]], max_bits: float) -> str | None:
    if not dhash:
        return None
    for other, clip in kept:
        if other and dhash_distance(dhash, other) <= max_bits:
            return clip
    return None


def _clip_row(row: dict[str, Any], clip: str | None, duplicate_of: str | None) -> dict[str, Any]:
    return {
        "row": ROW_CLIP,
        "source": row["source"],
        "content_hash": row["content_hash"],
        "segment_index": row["segment_index"],
        "clip": clip,
        "duplicate_of": duplicate_of,
        "conform_rate": row["conform_rate"],
        "schema": SCHEMA_VERSION,
    }
