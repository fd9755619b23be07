"""``mine``: sources in, a dataset folder out; resumable, and the same on one core or a cluster.

    DATASET/manifest.jsonl   the checkpoint and the record (see engine.mining.manifest)
    DATASET/manifest.parquet the same, one row per segment, when pyarrow is installed
    DATASET/clips/           with extract: accepted segments conformed to their capture rate
    DATASET/retired/         clips that left the dataset (source changed, better copy found)
    DATASET/README.md        the dataset card: gate threshold and the false-positive curve behind it
    DATASET/report.md, *.png what was found and what was rejected, with plots

The order of work: check ``--out`` (``engine.mining.dataset``); expand the sources; read the
manifest once; keep the dataset's gate and settings; skip files whose path and content hash
already have a complete row group (a transient outcome, such as a file that was away, does not
count); run ``mine_file`` on the rest through the chosen runner and append each file's rows as it
finishes; note the dataset's sources that no longer exist; retire clips whose source changed;
then (``extract``) walk all accepted segments in a fixed order (exact capture rate, most frames,
most confident first), drop near-duplicates by perceptual hash against every clip kept so far,
earlier runs' included (``engine.mining.dedupe``), and extract the rest as tasks; finally write
Parquet, the card and the report. A killed run loses at most the files that were in flight.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from engine.errors import UnsupportedOptionError
from engine.fsutil import remove_quietly
from engine.mining.dataset import (
    LOCK_NAME,
    MINING_DENSITY,
    cannot_write,
    check_out_folder,
    create_out_folder,
    gone_sources,
    resolve_settings,
    retire_clip,
    write_retired_note,
)
from engine.mining.dedupe import DHashIndex
from engine.mining.extract import CLIPS_FOLDER, check_codec, clip_name, extract_segment
from engine.mining.gate import QualityGate, check_confidence, find_gate
from engine.mining.manifest import (
    MANIFEST_NAME,
    PARQUET_NAME,
    ROW_CLIP,
    ROW_SEGMENT,
    SCHEMA_VERSION,
    STATUS_ERROR,
    ManifestWriter,
    clip_rows,
    complete_rows,
    finished_files,
    is_transient,
    joined_segments,
    scan_manifest,
    segment_key,
    write_parquet,
)
from engine.mining.progress import Progress
from engine.mining.report import write_card, write_report
from engine.mining.runners import (
    DEFAULT_RETRIES,
    InProcessRunner,
    check_ray_address,
    check_ray_reachable,
    error_text,
    make_runner,
)
from engine.mining.sources import content_hash, expand_sources
from engine.mining.stages import MineSettings, file_row, mine_file
from engine.mining.storage import CachePolicy, is_process_local
from engine.processes import exclusive_lock

log = logging.getLogger(__name__)

__all__ = ["LOCK_NAME", "MINING_DENSITY", "DatasetCounts", "MineOptions", "MineSummary", "mine"]

DUPLICATE_MAX_BITS = 6.0


@dataclass
class MineOptions:
    """Everything ``chronoscope mine`` takes; validated in ``__post_init__``.

    ``density``, ``audio_cue`` and ``codec`` left as None mean "what the dataset was made with"
    (the defaults for a new one); a value that differs from the dataset's is refused when the run
    starts. ``cache_dir`` and ``keep_cache`` say where URL sources are copied for decoding and
    whether the copies stay (``engine.mining.storage.CachePolicy``); ``isolate`` runs tasks in
    worker processes even with one worker (``engine.mining.runners.make_runner``).
    """

    sources: list[str]
    out: Path
    extract: bool = False
    min_confidence: float | None = None
    evaluation: Path | None = None
    max_fpr: float = 0.05
    workers: int = 1
    ray_address: str | None = None
    codec: str | None = None
    audio_cue: bool | None = None
    density: float | None = None
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
        if self.density is not None and not 0 < self.density <= 1:
            raise UnsupportedOptionError(
                f"--density {self.density} is outside (0, 1]; {MINING_DENSITY} is the default"
            )
        if self.codec is not None:
            if not self.extract:
                raise UnsupportedOptionError(
                    f"--codec {self.codec} is for the clips of --extract; add --extract"
                )
            check_codec(self.codec)
        if self.ray_address is not None:
            check_ray_address(self.ray_address)


@dataclass
class DatasetCounts:
    """The whole dataset after a run (all runs together), as the card describes it."""

    files: int = 0
    unusable_files: int = 0
    segments: int = 0
    accepted: int = 0
    clips: int = 0
    duplicates: int = 0
    orphaned_clips: int = 0
    retired_clips: int = 0
    gone_sources: int = 0


@dataclass
class MineSummary:
    """What a run did (this run's counts), and the dataset it left (``dataset``)."""

    out: Path
    files_seen: int = 0
    files_skipped: int = 0
    files_mined: int = 0
    files_rejected: int = 0
    segments: int = 0
    accepted: int = 0
    clips_written: int = 0
    clips_cut: int = 0
    clips_refused: int = 0
    clips_retired: int = 0
    duplicates: int = 0
    extract_failures: int = 0
    wall_s: float = 0.0
    runner: str = ""
    gate: QualityGate | None = None
    failures: list[str] = field(default_factory=list)
    missing_inputs: list[str] = field(default_factory=list)
    gone_sources: list[str] = field(default_factory=list)
    dataset: DatasetCounts = field(default_factory=DatasetCounts)

    @property
    def ok(self) -> bool:
        """Whether everything asked for was done (the exit status is 1 otherwise)."""
        return not self.failures and not self.missing_inputs


@dataclass
class _FileTask:
    """A mining task's token; names the file in log lines."""

    source: str
    digest: str

    def __str__(self) -> str:
        return self.source


@dataclass
class _ClipTask:
    """An extraction task's token; names the segment in log lines (never the whole row)."""

    row: dict[str, Any]
    relative: str

    def __str__(self) -> str:
        return f"{self.row['source']} segment {self.row['segment_index']}"


class _Rows:
    """The manifest as this run sees it: read once (``scan_manifest``), then kept in step with
    what the run appends."""

    def __init__(self, path: Path, writer: ManifestWriter) -> None:
        self.rows = scan_manifest(path)
        self._writer = writer

    def append(self, rows: list[dict[str, Any]]) -> None:
        self.rows.extend(self._writer.append(rows))


def _bookkeeping(
    rows: list[dict[str, Any]], gate: QualityGate, settings: MineSettings
) -> list[dict[str, Any]]:
    group = uuid.uuid4().hex
    for row in rows:
        row["run_group"] = group
        row["file_rows"] = len(rows)
        row["schema"] = SCHEMA_VERSION
        row["gate_min_confidence"] = gate.min_confidence
        row["settings"] = {"density": settings.density, "audio_cue": settings.audio_cue}
    return rows


def mine(options: MineOptions) -> MineSummary:
    """Run the mining pipeline described in the module docstring; return its summary.

    One run at a time writes a dataset folder (a lock file in it); a second is refused at once."""
    check_out_folder(options.out, options.sources)
    sources = expand_sources(options.sources, exclude=[options.out])
    if options.limit_files is not None:
        sources = sources[: options.limit_files]
    _check_reachable(sources, options)
    if options.ray_address is not None:
        check_ray_reachable(options.ray_address)
    create_out_folder(options.out)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(exclusive_lock(options.out / LOCK_NAME))
        except BlockingIOError:
            raise UnsupportedOptionError(
                f"another `chronoscope mine` is writing {options.out}; wait for it to finish, or mine "
                "into another folder"
            ) from None
        except OSError as error:
            raise cannot_write(options.out, error) from None
        return _mine_locked(options, sources)


def _mine_locked(options: MineOptions, sources: list[str]) -> MineSummary:
    started = time.perf_counter()
    out = options.out
    manifest_path = out / MANIFEST_NAME
    with ManifestWriter(manifest_path) as writer:
        state = _Rows(manifest_path, writer)
        gate = _gate_for(options, state.rows)
        chosen = resolve_settings(
            out, state.rows, density=options.density, audio_cue=options.audio_cue, codec=options.codec
        )
        codec = check_codec(chosen.codec) if options.extract else chosen.codec
        summary = MineSummary(out=out, gate=gate, files_seen=len(sources))
        runner = make_runner(
            workers=options.workers,
            ray_address=options.ray_address,
            retries=options.retries,
            isolate=options.isolate,
        )
        summary.runner = f"{runner.name} ({runner.workers} workers)"
        settings = MineSettings(
            min_confidence=gate.min_confidence,
            density=chosen.density,
            audio_cue=bool(chosen.audio_cue),
            model_threads=0 if isinstance(runner, InProcessRunner) else 1,
            cache=_cache_policy(options),
        )
        try:
            found = _analyse(sources, state, runner, settings, gate, options, summary)
            gone = gone_sources(state.rows, found)
            _retire_superseded(state, out, summary)
            if options.extract:
                gone = sorted(set(gone) | _extract(state, runner, options, codec, set(gone), summary))
        finally:
            runner.close()
    summary.gone_sources = gone
    if gone:
        shown = ", ".join(gone[:3]) + (f" and {len(gone) - 3} more" if len(gone) > 3 else "")
        log.warning(
            "%d source(s) of the dataset no longer exist: %s; their rows are flagged source_missing "
            "(clips orphaned) in manifest.parquet and the card, and they are mined again if they come back",
            len(gone),
            shown,
        )
    summary.dataset = _dataset_counts(state.rows, set(gone), out)
    write_parquet(state.rows, out / PARQUET_NAME, manifest=manifest_path, missing_sources=set(gone))
    summary.wall_s = time.perf_counter() - started
    write_card(out, state.rows, gate, summary.dataset, set(gone))
    write_report(out, state.rows, summary)
    write_retired_note(out, state.rows)
    log.info(
        "this run: %d files mined (%d skipped as done) in %.1f s, %d segments, %d accepted, %d clips "
        "written; the dataset: %d files, %d accepted segments, %d clips",
        summary.files_mined,
        summary.files_skipped,
        summary.wall_s,
        summary.segments,
        summary.accepted,
        summary.clips_written,
        summary.dataset.files,
        summary.dataset.accepted,
        summary.dataset.clips,
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


def _analyse(
    sources: list[str],
    state: _Rows,
    runner: Any,
    settings: MineSettings,
    gate: QualityGate,
    options: MineOptions,
    summary: MineSummary,
) -> set[str]:
    """Mine every source that is not done yet; return the sources found (hashed) this run.

    A source that does not exist is a missing input and one that cannot be read a failure: both
    are reported (exit status 1), neither is written to the manifest, and the next run tries them
    again."""
    done = finished_files(state.rows)
    todo = []
    found: set[str] = set()
    for source in sources:
        try:
            digest = content_hash(source)
        except FileNotFoundError:
            log.warning("%s does not exist: reported as a missing input", source)
            summary.missing_inputs.append(source)
            continue
        except OSError as error:
            reason = f"cannot be read ({error.strerror or error})"
            log.warning("%s %s; it is tried again by the next run", source, reason)
            summary.failures.append(f"{source}: {reason}")
            continue
        found.add(source)
        if (source, digest) in done:
            summary.files_skipped += 1
            continue
        todo.append(_FileTask(source, digest))
    with Progress(len(todo), "mining", "file", options.progress) as progress:
        for task in todo:
            runner.submit(task, mine_file, task.source, task.digest, settings)
        while runner.pending():
            finished = runner.next_done()
            task = finished.token
            if finished.error is not None:
                reason = error_text(finished.error)
                log.error("%s: mining failed after %d retries: %s", task.source, options.retries, reason)
                summary.failures.append(f"{task.source}: {reason}")
                rows = [file_row(task.source, task.digest, STATUS_ERROR, reason)]
            else:
                rows = finished.value
            state.append(_bookkeeping(rows, gate, settings))
            summary.files_mined += 1
            segments = [row for row in rows if row["row"] == ROW_SEGMENT]
            if not segments and is_transient(rows[0]) and finished.error is None:
                reason = f"{rows[0]['status']}: {rows[0].get('reason', '')}"
                log.warning("%s: %s; it is tried again by the next run", task.source, reason)
                summary.failures.append(f"{task.source}: {reason}")
            elif not segments and finished.error is None:
                summary.files_rejected += 1
                log.warning("%s skipped: %s", task.source, rows[0].get("reason", ""))
            summary.segments += len(segments)
            summary.accepted += sum(bool(row["accepted"]) for row in segments)
            progress.update()
    return found


def _retire_superseded(state: _Rows, out: Path, summary: MineSummary) -> None:
    """Retire the clips of segments that are no longer in the dataset: their source changed (a new
    content hash, mined again), or the segment is no longer accepted. Each move gets a clip row."""
    current = complete_rows(state.rows)
    accepted = {segment_key(row) for row in current if row["row"] == ROW_SEGMENT and row["accepted"]}
    hash_now = {row["source"]: row.get("content_hash") or "" for row in current}
    for key, clip in clip_rows(state.rows).items():
        relative = clip.get("clip")
        source, digest, _ = key
        if not relative or key in accepted or source not in hash_now:
            continue
        if hash_now[source] != digest:
            reason = f"its source changed (content hash {_short(digest)} is now {_short(hash_now[source])})"
        else:
            reason = "its segment is no longer accepted"
        moved = retire_clip(out, relative, reason)
        if moved is not None:
            summary.clips_retired += 1
        state.append([_clip_row(clip, None, clip.get("duplicate_of"), retired=moved, retired_reason=reason)])


def _short(digest: str) -> str:
    return digest.rpartition(":")[2][:12] or "(none)"


def _extract(
    state: _Rows, runner: Any, options: MineOptions, codec: str, gone: set[str], summary: MineSummary
) -> set[str]:
    """Dedupe every accepted segment against the clips kept so far (in ``_keep_order``, earlier
    runs' clips included, so the result does not depend on the order files arrived in) and extract
    the rest as tasks. Return the sources found missing while extracting."""
    out = options.out
    clips_dir = out / CLIPS_FOLDER
    clips_dir.mkdir(exist_ok=True)
    for leftover in clips_dir.glob(".*.partial-*"):
        # a run killed while extracting (this run holds the dataset's lock: no one else writes)
        log.info("removing %s, left by an interrupted extraction", leftover.name)
        remove_quietly(leftover)
    existing = clip_rows(state.rows)
    accepted = [row for row in complete_rows(state.rows) if row["row"] == ROW_SEGMENT and row["accepted"]]
    accepted.sort(key=_keep_order)
    index = DHashIndex(options.duplicate_max_bits)
    displaced: list[tuple[dict[str, Any], str]] = []
    tasks: list[_ClipTask] = []
    with Progress(len(accepted), "checking near-duplicates", "segment", options.progress) as progress:
        for row in accepted:
            progress.update()
            previous = existing.get(segment_key(row)) or {}
            if previous.get("refused"):
                continue  # its frames cannot be decoded: no clip, and no copy to keep
            have = (
                previous.get("clip") if previous.get("clip") and (out / previous["clip"]).is_file() else None
            )
            match = index.find(row.get("dhash"))
            if match is not None:
                if have:
                    displaced.append((previous, match))
                elif previous.get("duplicate_of") != match:
                    state.append([_clip_row(row, None, match)])
                    summary.duplicates += 1
                continue
            if have:
                index.add(row.get("dhash"), have)
                continue
            if row["source"] in gone:
                continue  # no clip can be made until the source comes back
            name = clip_name(row["source"], row["content_hash"], int(row["segment_index"]), _rate(row), codec)
            relative = f"{CLIPS_FOLDER}/{name}"
            index.add(row.get("dhash"), relative)
            tasks.append(_ClipTask(row, relative))
    log.debug("near-duplicate check: %d exact comparisons", index.comparisons)
    missing: set[str] = set()
    written: set[str] = set()
    with Progress(len(tasks), "extracting", "clip", options.progress) as progress:
        for task in tasks:
            row = task.row
            runner.submit(
                task,
                extract_segment,
                row["source"],
                int(row["start_frame"]),
                int(row["end_frame"]),
                row["conform_rate"],
                str(out / task.relative),
                codec,
                row["content_hash"],
                _cache_policy(options),
            )
        while runner.pending():
            finished = runner.next_done()
            task = finished.token
            progress.update()
            if finished.error is not None:
                reason = error_text(finished.error)
                log.warning("%s not extracted: %s", task, reason)
                summary.extract_failures += 1
                summary.failures.append(f"extract {task}: {reason}")
            elif finished.value.get("missing"):
                log.warning("%s not extracted: %s", task, finished.value["missing"])
                missing.add(task.row["source"])
            elif finished.value.get("refused"):
                state.append(
                    [_clip_row(task.row, None, None, refused=finished.value["refused"], codec=codec)]
                )
                summary.clips_refused += 1
            else:
                clip = _clip_row(task.row, task.relative, None)
                clip.update(finished.value)
                state.append([clip])
                summary.clips_written += 1
                summary.clips_cut += bool(finished.value.get("cut"))
                written.add(task.relative)
    for previous, match in displaced:
        if match not in written and not (out / match).is_file():
            continue  # the better copy's clip could not be made: this one stays
        reason = f"a better copy of the same footage is {match}"
        moved = retire_clip(out, previous["clip"], reason)
        summary.clips_retired += moved is not None
        summary.duplicates += 1
        state.append([_clip_row(previous, None, match, retired=moved, retired_reason=reason)])
    return missing


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


def _clip_row(
    row: dict[str, Any], clip: str | None, duplicate_of: str | None, **fields: Any
) -> dict[str, Any]:
    record = {
        "row": ROW_CLIP,
        "source": row["source"],
        "content_hash": row["content_hash"],
        "segment_index": row["segment_index"],
        "clip": clip,
        "duplicate_of": duplicate_of,
        "conform_rate": row["conform_rate"],
        "schema": SCHEMA_VERSION,
    }
    record.update({name: value for name, value in fields.items() if value is not None})
    return record


def _dataset_counts(rows: list[dict[str, Any]], gone: set[str], out: Path) -> DatasetCounts:
    records = joined_segments(rows, gone)
    segments = [record for record in records if record["row"] == ROW_SEGMENT]
    clips = [record for record in segments if record.get("clip") and (out / record["clip"]).is_file()]
    retired = {row["retired"] for row in rows if row["row"] == ROW_CLIP and row.get("retired")}
    return DatasetCounts(
        files=len({record["source"] for record in records}),
        unusable_files=sum(record["row"] != ROW_SEGMENT for record in records),
        segments=len(segments),
        accepted=sum(bool(record["accepted"]) for record in segments),
        clips=len(clips),
        duplicates=sum(bool(record.get("duplicate_of")) for record in segments),
        orphaned_clips=sum(bool(record.get("orphaned")) for record in clips),
        retired_clips=sum((out / name).is_file() for name in retired),
        gone_sources=len(gone),
    )
