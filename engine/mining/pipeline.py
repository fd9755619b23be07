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
import math
import time
import uuid
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from engine.errors import ChronoscopeError, OutputExistsError, UnsupportedOptionError
from engine.fsutil import remove_leftover_temporaries, remove_quietly
from engine.media.rates import parse_frame_rate
from engine.media.sequence import check_sequence_rate
from engine.mining.dataset import (
    LOCK_NAME,
    MINING_DENSITY,
    DatasetSettings,
    cannot_write,
    check_out_folder,
    create_out_folder,
    gone_sources,
    resolve_settings,
    retire_clip,
    write_retired_note,
)
from engine.mining.dedupe import DHashIndex
from engine.mining.extract import CLIPS_FOLDER, check_codec, clip_name, extract_segment, rate_refusal
from engine.mining.gate import DEFAULT_MAX_FPR, QualityGate, check_confidence, find_gate
from engine.mining.manifest import (
    MANIFEST_NAME,
    PARQUET_NAME,
    ROW_CLIP,
    ROW_FILE,
    ROW_SEGMENT,
    SCHEMA_VERSION,
    STATUS_ERROR,
    STATUS_MOVED,
    ManifestWriter,
    clip_rows,
    complete_rows,
    finished_files,
    full_rows,
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
from engine.mining.sources import content_hash, expand_sources, source_exists
from engine.mining.stages import MineSettings, file_row, mine_file
from engine.mining.storage import CachePolicy, is_process_local, is_sequence_source, url_protocol
from engine.processes import exclusive_lock
from engine.timeline import fraction_text

log = logging.getLogger(__name__)

__all__ = ["LOCK_NAME", "MINING_DENSITY", "DatasetCounts", "MineOptions", "MineSummary", "mine"]

DUPLICATE_MAX_BITS = 6.0


@dataclass
class MineOptions:
    """Everything ``chronoscope mine`` takes; validated in ``__post_init__``.

    ``density``, ``audio_cue``, ``codec`` and ``max_fpr`` left as None mean "what the dataset was
    made with" (the defaults for a new one); a value that differs from the dataset's is refused
    when the run starts, as a different ``min_confidence`` is. ``cache_dir`` and ``keep_cache``
    say where URL sources are copied for decoding and whether the copies stay
    (``engine.mining.storage.CachePolicy``); ``isolate`` runs tasks in worker processes even with
    one worker (``engine.mining.runners.make_runner``). ``sequence_rate`` is the rate image
    sequences are read at (None: the dataset's; without one, sequences are skipped, with a WARNING).
    """

    sources: list[str]
    out: Path
    extract: bool = False
    min_confidence: float | None = None
    evaluation: Path | None = None
    max_fpr: float | None = None
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
    sequence_rate: Fraction | str | None = None

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.sequence_rate is not None:
            self.sequence_rate = _sequence_rate(self.sequence_rate)
        if self.cache_dir is not None:
            self.cache_dir = Path(self.cache_dir)
        if self.workers < 1:
            raise UnsupportedOptionError(f"--workers {self.workers} must be 1 or more")
        if self.retries < 0:
            raise UnsupportedOptionError(f"--retries {self.retries} must be 0 or more")
        if self.max_fpr is not None and not 0 < self.max_fpr < 1:
            raise UnsupportedOptionError(f"--max-fpr {self.max_fpr} must be in (0, 1), e.g. 0.05")
        if self.min_confidence is not None:
            check_confidence(self.min_confidence)
            if self.max_fpr is not None:
                raise UnsupportedOptionError(
                    f"--min-confidence {self.min_confidence:g} sets the gate itself and --max-fpr "
                    f"{self.max_fpr:g} picks it from the measured false-positive curve; give one of them"
                )
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


def _sequence_rate(value: Fraction | str) -> Fraction:
    """``--sequence-rate`` as a Fraction, refused up front (before anything is written) where
    image sequences cannot be read at it."""
    try:
        return check_sequence_rate(parse_frame_rate(value))
    except UnsupportedOptionError as error:
        raise UnsupportedOptionError(f"--sequence-rate {value}: {error}") from None


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
    files_moved: int = 0
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
        self.path = path
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
        row["gate_source"] = gate.source
        row["gate_max_fpr"] = gate.max_fpr
        row["settings"] = {"density": settings.density, "audio_cue": settings.audio_cue}
        if settings.cache.sequence_rate is not None and is_sequence_source(row["source"]):
            row["settings"]["sequence_rate"] = settings.cache.sequence_rate
    return rows


def mine(options: MineOptions) -> MineSummary:
    """Run the mining pipeline described in the module docstring; return its summary.

    Everything that can be refused is checked before the dataset folder is made: ``--out``, the
    sources, the gate (``--evaluation``), settings and codec of a new dataset (an existing one's
    are checked against its rows under its lock), and the runner (a Ray cluster that cannot be
    joined leaves no folder behind). One run at a time writes a dataset folder (a lock file in
    it); a second is refused at once."""
    check_out_folder(options.out, options.sources)
    fresh = _fresh_choices(options)
    sources = expand_sources(options.sources, exclude=[options.out])
    if options.limit_files is not None:
        sources = sources[: options.limit_files]
    _check_reachable(sources, options)
    if options.ray_address is not None:
        check_ray_reachable(options.ray_address)
    runner = make_runner(
        workers=options.workers,
        ray_address=options.ray_address,
        retries=options.retries,
        isolate=options.isolate,
    )
    try:
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
            return _mine_locked(options, sources, runner, fresh)
    except BaseException:
        runner.abort()  # an interrupted run stops its tasks at once, instead of waiting for them
        raise
    finally:
        runner.close()


@dataclass
class _Choices:
    """The gate, settings and clip codec a run goes with."""

    gate: QualityGate
    settings: DatasetSettings
    codec: str


def _choices(options: MineOptions, rows: list[dict[str, Any]]) -> _Choices:
    """This run's gate, settings and codec against the dataset's ``rows``; refused (with
    ``UnsupportedOptionError``) where they cannot be used or differ from the dataset's."""
    gate = _gate_for(options, rows)
    chosen = resolve_settings(
        options.out,
        rows,
        density=options.density,
        audio_cue=options.audio_cue,
        codec=options.codec,
        sequence_rate=options.sequence_rate,
    )
    codec = check_codec(chosen.codec) if options.extract else chosen.codec
    refused = rate_refusal(codec, chosen.sequence_rate) if options.extract and chosen.sequence_rate else None
    if refused is not None:
        kept = " (into a new folder: a dataset keeps the codec of its clips)" if rows else ""
        raise UnsupportedOptionError(
            f"--sequence-rate {fraction_text(chosen.sequence_rate)}: {refused}{kept}"
        )
    return _Choices(gate, chosen, codec)


def _fresh_choices(options: MineOptions) -> _Choices | None:
    """For an ``--out`` that holds no dataset yet, this run's choices, checked before the folder,
    its lock and its manifest are made (a missing or unusable ``--evaluation``, say, leaves
    nothing behind); None for an existing dataset, whose rows are read under its lock."""
    if (options.out / MANIFEST_NAME).exists():
        return None
    return _choices(options, [])


def _mine_locked(
    options: MineOptions, sources: list[str], runner: Any, fresh: _Choices | None
) -> MineSummary:
    started = time.perf_counter()
    out = options.out
    manifest_path = out / MANIFEST_NAME
    with ManifestWriter(manifest_path) as writer:
        state = _Rows(manifest_path, writer)
        # checked before the folder was made, unless another run wrote a dataset there since
        choices = fresh if fresh is not None and not state.rows else _choices(options, state.rows)
        gate, chosen, codec = choices.gate, choices.settings, choices.codec
        sources = _readable_sources(sources, chosen.sequence_rate)
        summary = MineSummary(out=out, gate=gate, files_seen=len(sources))
        summary.runner = f"{runner.name} ({runner.workers} workers)"
        settings = MineSettings(
            min_confidence=gate.min_confidence,
            density=chosen.density,
            audio_cue=bool(chosen.audio_cue),
            model_threads=0 if isinstance(runner, InProcessRunner) else 1,
            cache=_cache_policy(options, chosen.sequence_rate),
        )
        found = _analyse(sources, state, runner, settings, gate, options, summary)
        gone = gone_sources(state.rows, found)
        _retire_superseded(state, out, summary)
        if options.extract:
            policy = settings.cache
            gone = sorted(set(gone) | _extract(state, runner, options, codec, policy, set(gone), summary))
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
        "this run: %d files mined (%d skipped as done, %d moved) in %.1f s, %d segments, %d accepted, "
        "%d clips written; the dataset: %d files, %d accepted segments, %d clips",
        summary.files_mined,
        summary.files_skipped,
        summary.files_moved,
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
    and report all follow it, so a different explicit gate (``--min-confidence``, ``--evaluation``
    or ``--max-fpr`` that gives another threshold, or another ``--max-fpr`` than the dataset's) is
    refused, and without one the dataset's own is used again, with the source it was recorded with
    (a curve measured by bench/speed_eval.py, a given threshold, the fallback)."""
    recorded = [row for row in complete_rows(rows) if "gate_min_confidence" in row]
    stored = {float(row["gate_min_confidence"]) for row in recorded}
    asked_fpr = options.max_fpr if options.max_fpr is not None else DEFAULT_MAX_FPR
    if not stored:
        return find_gate(
            min_confidence=options.min_confidence, evaluation=options.evaluation, max_fpr=asked_fpr
        )
    last = recorded[-1]
    kept_fpr = last.get("gate_max_fpr")
    kept_source = last.get("gate_source") or KEPT_GATE_SOURCE
    given = (options.min_confidence, options.evaluation, options.max_fpr)
    explicit = any(value is not None for value in given)
    if not explicit:
        gate = find_gate(
            min_confidence=float(last["gate_min_confidence"]),
            max_fpr=float(kept_fpr) if kept_fpr is not None else DEFAULT_MAX_FPR,
        )
        gate.source = kept_source
        log.info("%s was mined with the gate %.2f (%s); kept", options.out, gate.min_confidence, kept_source)
        return gate
    gate = find_gate(
        min_confidence=options.min_confidence,
        evaluation=options.evaluation,
        max_fpr=asked_fpr if options.max_fpr is not None or kept_fpr is None else float(kept_fpr),
    )
    asked = _gate_options(options)
    if stored != {gate.min_confidence}:
        was = ", ".join(f"{value:g}" for value in sorted(stored))
        raise UnsupportedOptionError(
            f"{options.out} was mined with the confidence gate {was}; mining into it at "
            f"{gate.min_confidence:g} ({asked}) would leave segments gated two ways: leave {asked} out "
            f"(the dataset keeps its gate) or pass --min-confidence {was}, or mine into a new folder"
        )
    if options.max_fpr is not None and kept_fpr is not None and not math.isclose(options.max_fpr, kept_fpr):
        raise UnsupportedOptionError(
            f"{options.out} was mined with the gate {gate.min_confidence:g} at --max-fpr {float(kept_fpr):g} "
            f"and this run asks for --max-fpr {options.max_fpr:g}: leave --max-fpr out (the dataset keeps "
            "its gate) or pass the same, or mine into a new folder"
        )
    gate.source = kept_source if last.get("gate_source") else gate.source
    return gate


KEPT_GATE_SOURCE = "kept from the dataset's earlier runs (they did not record where it came from)"


def _gate_options(options: MineOptions) -> str:
    """The gate options this run was given, as typed: "--max-fpr 0.2", "--min-confidence 0.9"."""
    given = []
    if options.min_confidence is not None:
        given.append(f"--min-confidence {options.min_confidence:g}")
    if options.evaluation is not None:
        given.append(f"--evaluation {options.evaluation}")
    if options.max_fpr is not None:
        given.append(f"--max-fpr {options.max_fpr:g}")
    return " ".join(given)


def _cache_policy(options: MineOptions, sequence_rate: Fraction | None) -> CachePolicy:
    return CachePolicy(
        None if options.cache_dir is None else str(options.cache_dir),
        options.keep_cache,
        None if sequence_rate is None else fraction_text(sequence_rate),
    )


def _readable_sources(sources: list[str], sequence_rate: Fraction | None) -> list[str]:
    """The sources this run can read: image sequences only at a rate (given, or the dataset's);
    without one they are skipped with a WARNING naming them."""
    if sequence_rate is not None:
        return sources
    sequences = [source for source in sources if is_sequence_source(source)]
    if sequences:
        shown = ", ".join(sequences[:3]) + (f" and {len(sequences) - 3} more" if len(sequences) > 3 else "")
        log.warning(
            "%d image sequence(s) skipped: %s; a sequence has no frame rate of its own, so mine them "
            "with --sequence-rate FPS (the rate their frames were shot at, e.g. 1000 for a high-speed "
            "camera's frames)",
            len(sequences),
            shown,
        )
    return [source for source in sources if not is_sequence_source(source)]


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
    again. A source with the content hash of a dataset file whose path no longer exists is that
    file, moved or renamed: its rows and clips follow it (``_repoint``) instead of it being mined
    again."""
    done = finished_files(state.rows)
    waiting: list[tuple[str, str]] = []
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
        waiting.append((source, digest))
    moves = _moved_files(state.rows, waiting, found)
    if moves:
        _repoint(state, moves)
        summary.files_moved += len(moves)
    todo = [_FileTask(source, digest) for source, digest in waiting if source not in moves]
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
                reason = _without_path(rows[0].get("reason", ""), task.source)
                log.warning("%s skipped: %s", task.source, reason)
            summary.segments += len(segments)
            summary.accepted += sum(bool(row["accepted"]) for row in segments)
            progress.update()
    return found


def _without_path(reason: str, source: str) -> str:
    """A reason that starts with the file's own path, without it (the log line names the file)."""
    if reason.startswith(source):
        return reason[len(source) :].lstrip(" :") or reason
    return reason


def _moved_files(
    rows: list[dict[str, Any]], waiting: list[tuple[str, str]], found: set[str]
) -> dict[str, str]:
    """New path -> old path, for each waiting (source, content hash) whose hash is that of a
    dataset file whose local path no longer exists: moved or renamed (``mv`` keeps the size and
    modification time, and so the hash). Each old path goes to one new path, in path order; a
    copy whose original still exists is not a move (it is mined, and near-duplicates dropped)."""
    wanted = {digest for _, digest in waiting if digest}
    olds: dict[str, set[str]] = {}
    for row in complete_rows(rows):
        digest, source = row.get("content_hash") or "", row["source"]
        local = url_protocol(source) is None
        if digest in wanted and source not in found and local and not is_transient(row):
            olds.setdefault(digest, set()).add(source)
    moves: dict[str, str] = {}
    taken: set[str] = set()
    for source, digest in waiting:
        for old in sorted(olds.get(digest, ())):
            if old not in taken and not source_exists(old):
                moves[source] = old
                taken.add(old)
                break
    return moves


def _repoint(state: _Rows, moves: dict[str, str]) -> None:
    """For each new path -> old path of ``moves``: write the rows and clip rows of the old path
    again under the new one (with ``moved_from``) and mark the old path moved, in one append per
    file. The clips stay where they are and belong to the file again."""
    olds = set(moves.values())
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in complete_rows(state.rows):
        if row["source"] in olds:
            groups.setdefault(row["source"], []).append(row)
    clips: dict[str, list[dict[str, Any]]] = {}
    for key, row in clip_rows(state.rows).items():
        if key[0] in olds:
            clips.setdefault(key[0], []).append(row)
    for new, old in moves.items():
        rows = full_rows(state.path, groups[old])
        digest = rows[0].get("content_hash") or ""
        run_group = uuid.uuid4().hex
        for row in rows:
            row.update(source=new, moved_from=old, run_group=run_group, file_rows=len(rows))
        same = [row for row in clips.get(old, []) if row.get("content_hash") == digest]
        followers = full_rows(state.path, same)
        for row in followers:
            row.update(source=new, moved_from=old)
        marker = {
            "row": ROW_FILE,
            "source": old,
            "content_hash": digest,
            "status": STATUS_MOVED,
            "reason": f"moved to {new} (the same content hash)",
            "moved_to": new,
            "run_group": uuid.uuid4().hex,
            "file_rows": 1,
            "schema": SCHEMA_VERSION,
        }
        state.append(rows + [marker] + followers)
        log.info(
            "%s: the same content as %s, which no longer exists: taken as moved; its rows (%d) and clips "
            "(%d) follow it, and nothing is mined again",
            new,
            old,
            len(rows),
            sum(bool(row.get("clip")) for row in followers),
        )


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
    state: _Rows,
    runner: Any,
    options: MineOptions,
    codec: str,
    policy: CachePolicy,
    gone: set[str],
    summary: MineSummary,
) -> set[str]:
    """Dedupe every accepted segment against the clips kept so far (in ``_keep_order``, earlier
    runs' clips included, so the result does not depend on the order files arrived in; segments of
    sources that no longer exist come last, so an orphaned clip never wins over a live source's
    segment) and extract the rest as tasks. Return the sources found missing while extracting.

    Interrupted (Ctrl-C, SIGTERM), the runner is stopped at once and the clips of tasks that were
    not recorded are removed, so that ``clips/`` holds only what the manifest lists."""
    out = options.out
    clips_dir = out / CLIPS_FOLDER
    clips_dir.mkdir(exist_ok=True)
    for leftover in clips_dir.glob(".*.partial-*"):
        # a run killed while extracting (this run holds the dataset's lock: no one else writes)
        log.info("removing %s, left by an interrupted extraction", leftover.name)
        remove_quietly(leftover)
    existing = clip_rows(state.rows)
    accepted = [row for row in complete_rows(state.rows) if row["row"] == ROW_SEGMENT and row["accepted"]]
    accepted.sort(key=lambda row: (row["source"] in gone, *_keep_order(row)))
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
            refused = rate_refusal(codec, _rate(row))
            if refused is not None:  # a video's capture rate above what the codec's container times
                log.warning("%s segment %s not extracted: %s", row["source"], row["segment_index"], refused)
                summary.extract_failures += 1
                summary.failures.append(f"extract {row['source']} segment {row['segment_index']}: {refused}")
                continue
            name = clip_name(row["source"], row["content_hash"], int(row["segment_index"]), _rate(row), codec)
            relative = f"{CLIPS_FOLDER}/{name}"
            index.add(row.get("dhash"), relative)
            tasks.append(_ClipTask(row, relative))
    log.debug("near-duplicate check: %d exact comparisons", index.comparisons)
    missing: set[str] = set()
    recorded: set[str] = set()
    try:
        _run_extraction(state, runner, options, codec, policy, tasks, summary, missing, recorded)
    except BaseException:
        runner.abort()
        # what the manifest on disk lists, not only ``recorded``: an interrupt that lands after a
        # clip's row is written and before it is counted must not remove the clip the row names
        listed = recorded | _listed_clips(state.path)
        _remove_unrecorded(out, [task.relative for task in tasks if task.relative not in listed])
        raise
    for previous, match in displaced:
        if match not in recorded and not (out / match).is_file():
            continue  # the better copy's clip could not be made: this one stays
        if previous["source"] in gone:
            reason = f"its source no longer exists, and {match} holds the same footage from one that does"
        else:
            reason = f"a better copy of the same footage is {match}"
        moved = retire_clip(out, previous["clip"], reason)
        summary.clips_retired += moved is not None
        summary.duplicates += 1
        state.append([_clip_row(previous, None, match, retired=moved, retired_reason=reason)])
    return missing


def _run_extraction(
    state: _Rows,
    runner: Any,
    options: MineOptions,
    codec: str,
    policy: CachePolicy,
    tasks: list[_ClipTask],
    summary: MineSummary,
    missing: set[str],
    recorded: set[str],
) -> None:
    """Submit the extraction tasks and record each result as it arrives (``recorded``: the clips
    whose outcome the manifest holds)."""
    out = options.out
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
                policy,
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
            elif finished.value.get("changed"):
                reason = finished.value["changed"]
                log.warning("%s not extracted: %s; the next run mines it again", task, reason)
                summary.extract_failures += 1
                summary.failures.append(f"extract {task}: {reason} (the next run mines it again)")
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
                recorded.add(task.relative)


def _listed_clips(manifest_path: Path) -> set[str]:
    """The clips (paths relative to the dataset) the manifest file lists now; none where it
    cannot be read."""
    try:
        rows = scan_manifest(manifest_path)
    except (OSError, ValueError, ChronoscopeError):
        return set()
    return {row["clip"] for row in clip_rows(rows).values() if row.get("clip")}


def _remove_unrecorded(out: Path, relatives: list[str]) -> None:
    """Remove the clips (and partial clips) of extraction tasks whose outcome the manifest does not
    hold: an interrupted run's tasks that finished after it was stopped, or were cut off."""
    for relative in relatives:
        path = out / relative
        if path.is_file():
            log.info("removing %s: written after the run stopped, the manifest does not list it", relative)
            remove_quietly(path)
        try:
            remove_leftover_temporaries(path)
        except (OutputExistsError, OSError) as error:
            log.warning("%s: a partial clip is left: %s", relative, error)


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
