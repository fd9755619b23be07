"""The engine's job queue: long work (retime, render_timeline, detect_speed) on a pool of threads.

A job is a function of one ``JobContext``; it returns a JSON-ready dict (its result). The context
reports progress and log lines (published as events whose topic is the job id) and carries the
cancel token: cancelling is cooperative, the job calls ``context.check_cancelled()`` (or reads
``context.cancelled``) between steps. A queued job that is cancelled never starts.

States: queued -> running -> done | failed | cancelled, and ``interrupted`` for a job that an
engine which stopped without finishing it (killed, crashed, power cut) left behind. Finished jobs
are kept (the newest ``keep_finished`` of them) so that ``job_status`` can still answer after the
events are gone. Interrupted jobs are not counted among them: each is kept, with its checkpoint,
until it is resumed or cancelled, or for ``INTERRUPTED_KEEP_S`` (at most ``MAX_INTERRUPTED_KEPT``).

At most ``max_queued`` jobs wait at once; one more is refused (``EngineBusyError``). A job is
registered only once its journal record is written: a request the journal cannot keep (disk full,
a value JSON cannot hold) is refused, never left as a job that no worker runs. A request larger
than ``MAX_KEPT_REQUEST_BYTES`` is not kept whole: its digest is, so that the same id with the same
request still answers with its job, but resuming it needs the request sent again.

The job journal (``JobJournal``; the engine keeps it in ``places().cache_dir / "jobs"``) holds one
small JSON file per job: what was asked (the request content), its state, the files it finished,
the temporary files it was writing, and the checkpoint it last saved. It is written through a
temporary name at each change of state. A restarted engine reads it: a job that was queued or
running is ``interrupted``, its temporary files are removed, and resubmitting it (the same job id
and type; or ``{"job_id": ..., "resume": true}``, which reuses the journaled request) runs it
again with ``context.checkpoint`` set to what the cut-short attempt saved, so a job that saves
checkpoints continues where it was instead of starting over. A job that writes files does so
through ``context.output(destination, overwrite=...)``: see ``engine.server.outputs``.

One engine at a time uses a journal: the queue holds an exclusive lock on ``journal.lock`` in its
folder (with the holder's pid in it) from before it reads the journal until it shuts down, so a
second engine cannot take the first one's running jobs for interrupted ones and remove their files.

A job id stands for one request: the id of a job that is queued, running or done, given again
with the same request, answers with that job (nothing runs again); with a different request it is
refused. A job that may run again (failed, cancelled, interrupted) may be given a changed request;
it then starts over, without the checkpoint that the other request saved.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import logging
import os
import queue
import re
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.errors import (
    CapabilityModuleError,
    ChronoscopeError,
    EngineAlreadyRunningError,
    EngineBusyError,
    FileAccessError,
    JobCancelledError,
    JobJournalError,
    JobNotFoundError,
    OutputExistsError,
    UnsupportedOptionError,
)
from engine.fsutil import remove_quietly, temporary_sibling, watching_temporaries, write_text_atomic
from engine.processes import exclusive_lock, pid_alive
from engine.server.outputs import publish as publish_output
from engine.server.protocol import quote, shorten

log = logging.getLogger(__name__)

JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
JOURNAL_LOCK_NAME = "journal.lock"
MAX_QUEUED_JOBS = 256
MAX_KEPT_REQUEST_BYTES = 1024 * 1024
INTERRUPTED_KEEP_S = 14 * 24 * 3600
MAX_INTERRUPTED_KEPT = 4096
_MIN_PROGRESS_INTERVAL_NS = 50_000_000

Publish = Callable[[str, str, dict], None]


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.INTERRUPTED)

    @property
    def may_rerun(self) -> bool:
        """A job in this state may be submitted again under its id (to resume or retry it)."""
        return self in (JobState.FAILED, JobState.CANCELLED, JobState.INTERRUPTED)


class CancelToken:
    """Set once, read from anywhere; a job checks it between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise JobCancelledError("the job was cancelled")

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to ``timeout_s``, waking early when cancelled; True when cancelled."""
        return self._event.wait(timeout_s)


def _no_publish(job_id: str, event_type: str, content: dict) -> None:
    """Publisher for work that runs outside the queue: events go nowhere."""


class JobRecorder:
    """Where a job's context records checkpoints and files; the queue's journal, or nowhere."""

    def checkpoint(self, data: dict) -> None:
        """Keep ``data`` for a later attempt."""

    def writing(self, temporary: Path) -> None:
        """``temporary`` is being written (remove it if the engine dies)."""

    def written(self, temporary: Path, destination: Path) -> None:
        """``temporary`` became ``destination``."""

    def released(self, temporary: Path) -> None:
        """``temporary`` is gone (renamed into place or removed) and no longer this job's to clean up."""

    def finished(self, destination: Path) -> None:
        """``destination`` was written by code that renames its own temporaries into place."""

    def work_dir(self) -> Path:
        """A folder for the job's intermediate files that outlives an attempt (removed when done)."""
        return Path(tempfile.mkdtemp(prefix="chronoscope-job-"))

    # as a ``fsutil.TemporaryWatcher``: every temporary name the job's own thread makes, through
    # ``context.output`` or not (the media writer, sidecars, audio), is recorded while it exists
    def created(self, temporary: Path) -> None:
        self.writing(temporary)

    def gone(self, temporary: Path) -> None:
        self.released(temporary)


class JobContext:
    """What a running job sees: its id, the cancel token, progress / log reporting, the checkpoint
    an earlier attempt saved, and ``output`` for the files it writes."""

    def __init__(
        self,
        job_id: str,
        token: CancelToken,
        publish: Publish,
        on_progress: Callable | None = None,
        *,
        checkpoint: dict | None = None,
        attempt: int = 1,
        recorder: JobRecorder | None = None,
        previous_outputs: frozenset[str] = frozenset(),
    ):
        self.job_id = job_id
        self.token = token
        self._publish = publish
        self._on_progress = on_progress
        self._last_progress_ns = 0
        self.checkpoint = checkpoint
        self.attempt = attempt
        self.previous_outputs = previous_outputs
        self._recorder = recorder or JobRecorder()
        self._work_dir: Path | None = None

    @property
    def work_dir(self) -> Path:
        """A private folder for intermediate files (rendered segments) that a resumed attempt finds
        again, as its checkpoint says; kept in the journal folder, removed when the job is done."""
        if self._work_dir is None:
            self._work_dir = self._recorder.work_dir()
        return self._work_dir

    def save_checkpoint(self, data: dict) -> None:
        """Keep ``data`` (JSON-ready) in the journal; a resumed attempt finds it in ``checkpoint``."""
        try:
            json.dumps(data, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise UnsupportedOptionError(f"a checkpoint must be JSON-ready: {error}") from None
        self.checkpoint = dict(data)
        self._recorder.checkpoint(self.checkpoint)

    @contextlib.contextmanager
    def output(self, destination: Path, *, overwrite: bool = False) -> Iterator[Path]:
        """Yield a temporary path beside ``destination``; when the block completes, it becomes
        ``destination`` (never replacing a file unless ``overwrite``, or one that an earlier attempt
        of this job wrote). If the block raises or the engine dies, nothing appears at
        ``destination``."""
        destination = Path(destination)
        overwrite = overwrite or str(destination) in self.previous_outputs
        if destination.exists() and not overwrite:
            raise OutputExistsError(f"{destination} exists; set overwrite to true to replace it")
        temporary = temporary_sibling(destination)
        self._recorder.writing(temporary)
        try:
            yield temporary
            publish_output(temporary, destination, overwrite=overwrite)
        except BaseException:
            remove_quietly(temporary)
            raise
        self._recorder.written(temporary, destination)

    def record_output(self, destination: Path) -> None:
        """List ``destination`` among the job's files when work that writes through its own
        temporary names (``retime_clip``) has finished it: the job's status names it, and a rerun
        of the job may replace it."""
        self._recorder.finished(Path(destination))

    @classmethod
    def detached(cls, job_id: str = "direct") -> JobContext:
        """A context for work run directly (not queued): never cancelled, reports nowhere."""
        return cls(job_id, CancelToken(), _no_publish)

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled

    def check_cancelled(self) -> None:
        """Raise ``JobCancelledError`` if the job was cancelled."""
        self.token.raise_if_cancelled()

    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        """Report ``done`` of ``total`` units; events are throttled to 20 a second, the last always sent."""
        if self._on_progress:
            self._on_progress(done, total, message)
        now_ns = time.monotonic_ns()
        final = total is not None and done >= total
        if not final and now_ns - self._last_progress_ns < _MIN_PROGRESS_INTERVAL_NS:
            return
        self._last_progress_ns = now_ns
        self._publish(
            self.job_id, "progress", {"job_id": self.job_id, "done": done, "total": total, "message": message}
        )

    def log(self, message: str, level: int = logging.INFO) -> None:
        """Log ``message`` here and publish it to the job's subscribers."""
        log.log(level, "job %s: %s", self.job_id, message)
        self._publish(
            self.job_id,
            "log",
            {"job_id": self.job_id, "level": logging.getLevelName(level), "message": message},
        )


JobFunction = Callable[[JobContext], dict]


def _utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


@dataclass
class Job:
    job_id: str
    kind: str
    function: JobFunction | None
    token: CancelToken = field(default_factory=CancelToken)
    stopped_by_shutdown: bool = False
    """Cancelled because the engine stops, not by a client: the job ends ``interrupted`` (resumable)."""
    state: JobState = JobState.QUEUED
    submitted: str = field(default_factory=_utc_now_iso)
    started: str | None = None
    finished: str | None = None
    progress_done: int = 0
    progress_total: int | None = None
    progress_message: str = ""
    result: dict | None = None
    error: dict | None = None
    request: dict | None = None
    request_digest: str | None = None
    """SHA-256 of the request's canonical JSON: what tells the same request from another when the
    request itself was too large to keep."""
    outputs: list[str] = field(default_factory=list)
    partials: list[str] = field(default_factory=list)
    checkpoint: dict | None = None
    attempt: int = 1

    def describe(self) -> dict[str, Any]:
        """The job's state for ``job_status`` and events (JSON-ready)."""
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "state": self.state.value,
            "attempt": self.attempt,
            "outputs": list(self.outputs),
            "submitted": self.submitted,
            "started": self.started,
            "finished": self.finished,
            "progress": {
                "done": self.progress_done,
                "total": self.progress_total,
                "message": self.progress_message,
            },
            "result": self.result,
            "error": self.error,
        }

    def record(self) -> dict[str, Any]:
        """What the journal keeps: the description, the request, temporary files, the checkpoint."""
        return {
            **self.describe(),
            "request": self.request,
            "request_digest": self.request_digest,
            "partials": list(self.partials),
            "checkpoint": self.checkpoint,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Job:
        progress = record.get("progress") or {}
        return cls(
            job_id=record["job_id"],
            kind=record["kind"],
            function=None,
            state=JobState(record["state"]),
            submitted=record.get("submitted") or _utc_now_iso(),
            started=record.get("started"),
            finished=record.get("finished"),
            progress_done=int(progress.get("done") or 0),
            progress_total=progress.get("total"),
            progress_message=str(progress.get("message") or ""),
            result=record.get("result"),
            error=record.get("error"),
            request=record.get("request"),
            request_digest=record.get("request_digest"),
            outputs=list(record.get("outputs") or []),
            partials=list(record.get("partials") or []),
            checkpoint=record.get("checkpoint"),
            attempt=int(record.get("attempt") or 1),
        )


class JobJournal:
    """One JSON file per job in ``folder`` (created 0o700), each written through a temporary name.

    ``lock`` makes it this process's own until ``unlock`` (or the process ends, however it ends)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._held: contextlib.ExitStack | None = None

    @property
    def lock_path(self) -> Path:
        return self.folder / JOURNAL_LOCK_NAME

    def lock(self) -> None:
        """Take the journal's exclusive lock; ``EngineAlreadyRunningError`` (naming the engine that
        holds it, when known) if another engine, in this process or another, holds it."""
        if self._held is not None:
            return
        held = contextlib.ExitStack()
        try:
            held.enter_context(exclusive_lock(self.lock_path, mode=0o600))
        except BlockingIOError:
            holder = self.holder_pid()
            who = f"engine pid {holder}" if holder is not None else "another engine"
            raise EngineAlreadyRunningError(
                f"the job journal {self.folder} is in use by {who}; stop that engine first, "
                "or run this one with its own CHRONOSCOPE_HOME"
            ) from None
        if os.name != "nt":  # Windows locks the first byte against writes from other handles
            with contextlib.suppress(OSError):
                self.lock_path.write_text(f"{os.getpid()}\n", encoding="ascii")
        self._held = held

    def unlock(self) -> None:
        """Let go of the lock taken by ``lock`` (nothing if not held)."""
        if self._held is None:
            return
        if os.name != "nt":
            with contextlib.suppress(OSError):
                self.lock_path.write_text("", encoding="ascii")
        self._held.close()
        self._held = None

    def holder_pid(self) -> int | None:
        """The pid the journal's lock holder wrote down, when that process lives (else None)."""
        try:
            pid = int(self.lock_path.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def _path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.json"

    def write(self, job: Job) -> None:
        write_text_atomic(self._path(job.job_id), json.dumps(job.record(), allow_nan=False))

    def remove(self, job_id: str) -> None:
        remove_quietly(self._path(job_id))

    def read_all(self) -> list[Job]:
        """Every readable record, oldest submission first; unreadable ones are logged and skipped."""
        jobs = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                job = Job.from_record(record)
                if not JOB_ID_PATTERN.match(job.job_id) or path.stem != job.job_id:
                    raise ValueError(f"job id {job.job_id!r} does not match the file name")
            except (OSError, ValueError, KeyError, TypeError) as error:
                log.warning("job journal entry %s cannot be read (%s); skipping it", path, error)
                continue
            jobs.append(job)
        jobs.sort(key=lambda job: job.submitted)
        return jobs


def request_digest(request: dict[str, Any]) -> str:
    """SHA-256 of ``request`` as canonical JSON; ``JobJournalError`` when JSON cannot hold it."""
    try:
        text = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        raise JobJournalError(f"the request cannot be kept in the job journal: {error}") from None
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _kept_request(request: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str | None]:
    """What the journal keeps of ``request``: itself (unless over ``MAX_KEPT_REQUEST_BYTES``) and
    its digest."""
    if request is None:
        return None, None
    digest = request_digest(request)
    size = len(json.dumps(request, separators=(",", ":"), ensure_ascii=False))
    return (request if size <= MAX_KEPT_REQUEST_BYTES else None), digest


def _digest_of(job: Job) -> str | None:
    if job.request_digest is not None:
        return job.request_digest
    if job.request is None:
        return None
    try:
        return request_digest(job.request)
    except JobJournalError:
        return None


def _output_of(request: dict | None) -> str | None:
    """The file a job's request names as its ``output`` (None: none, or the request was not kept)."""
    output = request.get("output") if isinstance(request, dict) else None
    return output if isinstance(output, str) else None


def _age_s(iso: str | None) -> float:
    """Seconds since the ISO time ``iso`` (0 for none or an unreadable one)."""
    if not iso:
        return 0.0
    try:
        then = datetime.fromisoformat(iso)
    except ValueError:
        return 0.0
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return (datetime.now(timezone.utc) - then).total_seconds()


def _os_error_text(error: OSError) -> str:
    """One line for an ``OSError``: the file(s) it names and the system's reason."""
    reason = error.strerror or str(error) or type(error).__name__
    names = [str(name) for name in (error.filename, error.filename2) if name is not None]
    where = f"{' -> '.join(names)}: " if names else ""
    return f"{where}{reason} ({type(error).__name__}); check the folder's permissions and free space"


def _is_partial_name(path: Path) -> bool:
    """Whether ``path`` has the shape of a temporary name from ``fsutil.temporary_sibling``."""
    return path.name.startswith(".") and ".partial-" in path.name


class _QueueRecorder(JobRecorder):
    def __init__(self, queue: JobQueue, job: Job):
        self._queue = queue
        self._job = job

    def checkpoint(self, data: dict) -> None:
        self._queue._update(self._job, checkpoint=data)

    def writing(self, temporary: Path) -> None:
        self._queue._update(self._job, add_partial=str(temporary))

    def written(self, temporary: Path, destination: Path) -> None:
        self._queue._update(self._job, remove_partial=str(temporary), add_output=str(destination))

    def released(self, temporary: Path) -> None:
        self._queue._update(self._job, remove_partial=str(temporary))

    def finished(self, destination: Path) -> None:
        self._queue._update(self._job, add_output=str(destination))

    def work_dir(self) -> Path:
        return self._queue._work_dir(self._job)


class JobQueue:
    """A FIFO of jobs served by ``workers`` threads; thread-safe."""

    def __init__(
        self,
        workers: int = 2,
        publish: Publish = _no_publish,
        keep_finished: int = 256,
        journal: JobJournal | None = None,
        max_queued: int = MAX_QUEUED_JOBS,
    ):
        if workers < 1:
            raise UnsupportedOptionError(f"workers = {workers}; a job queue needs at least 1 worker")
        self.workers = workers
        self._publish = publish
        self._keep_finished = keep_finished
        self.max_queued = max_queued
        self._journal = journal
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        if journal is not None:
            journal.lock()  # before reading it: another engine's running jobs are not interrupted
            try:
                self._recover(journal)
            except BaseException:
                journal.unlock()
                raise
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._work, name=f"chronoscope-job-{n}", daemon=True)
            for n in range(workers)
        ]
        self._closed = False
        for thread in self._threads:
            thread.start()

    def _recover(self, journal: JobJournal) -> None:
        """Load the journal: jobs left queued or running by an engine that died are interrupted."""
        for job in journal.read_all():
            if not job.state.finished:
                for partial in job.partials:
                    if _is_partial_name(Path(partial)):
                        remove_quietly(Path(partial))
                job.partials = []
                job.state = JobState.INTERRUPTED
                job.finished = _utc_now_iso()
                journal.write(job)
                log.warning(
                    "job %s (%s) was interrupted when the engine stopped; resubmit it to resume",
                    job.job_id,
                    job.kind,
                )
            self._jobs[job.job_id] = job
        self._forget_old()

    def known(self, job_id: str, kind: str, request: dict[str, Any] | None) -> dict[str, Any] | None:
        """The description of job ``job_id`` when it is queued, running or done and is asked for
        again with the same request (it is not run again); None for an id that is new or whose job
        may run again. ``UnsupportedOptionError`` when the id was used for another kind of job or
        a different request. A ``request`` of None matches any."""
        digest = request_digest(request) if request is not None else None
        with self._lock:
            previous = self._jobs.get(job_id)
            if previous is None:
                return None
            self._check_reuse(previous, kind, digest)
            return None if previous.state.may_rerun else previous.describe()

    @staticmethod
    def _check_reuse(previous: Job, kind: str, digest: str | None) -> None:
        """Refuse the id of ``previous`` for another kind of job, or (unless it may run again) for a
        different request (``digest``: its ``request_digest``). Called with the lock held."""
        if previous.kind != kind:
            raise UnsupportedOptionError(
                f"job id {previous.job_id!r} is in use by a {previous.kind} job; propose another or none"
            )
        previous_digest = _digest_of(previous)
        if previous.state.may_rerun or digest is None or previous_digest is None:
            return
        if digest != previous_digest:
            raise UnsupportedOptionError(
                f"job id {previous.job_id!r} was used for a different {kind} request (that job is "
                f"{previous.state.value}); choose a new id"
            )

    def outputs_of(self, job_id: str) -> list[str]:
        """The files an earlier attempt of a job that may run again finished (else none)."""
        with self._lock:
            job = self._jobs.get(job_id)
            return list(job.outputs) if job is not None and job.state.may_rerun else []

    def request_of(self, job_id: str, kind: str) -> dict[str, Any]:
        """The request content a job was submitted with (to resume it without sending it again)."""
        with self._lock:
            job = self._get(job_id)
            if job.kind == kind and job.request is None and job.request_digest is not None:
                raise UnsupportedOptionError(
                    f"job {quote(job_id)}: its request was too large to keep (over {MAX_KEPT_REQUEST_BYTES} "
                    "bytes); send the request again with the same job id to resume it"
                )
            if job.kind != kind or job.request is None:
                raise UnsupportedOptionError(
                    f"job {quote(job_id)} is a {job.kind} job with no request kept for {kind}; "
                    "send the request again"
                )
            return dict(job.request)

    def submit(
        self,
        kind: str,
        function: JobFunction,
        job_id: str | None = None,
        request: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Queue ``function``; returns the job's description. ``job_id`` may be proposed by the client.

        The id of a job that failed, was cancelled or was interrupted may be given again: the job
        runs again (with the checkpoint its last attempt saved, when the request is the same). The
        id of a job that is queued, running or done, with the same request, returns its description
        without running it again; with a different request it is refused (see ``known``).
        """
        job_id = job_id or uuid.uuid4().hex
        if not isinstance(job_id, str) or not JOB_ID_PATTERN.match(job_id):
            raise UnsupportedOptionError(
                f"job id {quote(job_id)} is not usable; use 8 to 64 letters, digits, '-' or '_'"
            )
        kept, digest = _kept_request(request)
        with self._lock:
            if self._closed:
                raise UnsupportedOptionError("the engine is shutting down and takes no new jobs")
            job = Job(job_id=job_id, kind=kind, function=function, request=kept, request_digest=digest)
            previous = self._jobs.get(job_id)
            if previous is not None:
                self._check_reuse(previous, kind, digest)
                if not previous.state.may_rerun:
                    return previous.describe()  # the same request: that job answers for it
            queued = sum(1 for other in self._jobs.values() if other.state is JobState.QUEUED)
            if queued >= self.max_queued:
                raise EngineBusyError(
                    f"{queued} jobs are waiting already, the most this engine queues; wait for some to "
                    "finish (or cancel them) and submit this one again"
                )
            changed = False
            if previous is not None:
                previous_digest = _digest_of(previous)
                if digest is None or previous_digest is None or digest == previous_digest:
                    job.checkpoint = previous.checkpoint
                else:  # what the other request saved would make this one continue the wrong work
                    log.info("job %s (%s): the request changed; starting over", job_id, kind)
                    changed = True
                job.attempt = previous.attempt + 1
                job.outputs = list(previous.outputs)
            # the record first: a job the journal cannot keep is refused, never left half-registered
            self._journal_write(job, required=True)
            if previous is not None:
                if changed:
                    self._remove_work_dir(previous)
                del self._jobs[job_id]
                log.info("job %s (%s): attempt %d", job_id, kind, job.attempt)
            self._jobs[job_id] = job
            description = job.describe()
        self._publish(job_id, "status", description)
        self._queue.put(job_id)
        log.info("job %s (%s) queued", job_id, kind)
        return description

    def cancel(self, job_id: str, *, shutdown: bool = False) -> dict[str, Any]:
        """Cancel a job: a queued one at once, a running one when it next checks its token. With
        ``shutdown`` (the engine stops) the job ends ``interrupted``, to be resumed, not cancelled."""
        with self._lock:
            job = self._get(job_id)
            if job.state is JobState.INTERRUPTED and not shutdown:
                # the client gives up on resuming it: it is kept no longer than other finished jobs
                self._finish(job, JobState.CANCELLED)
            elif job.state.finished:
                return job.describe()
            else:
                job.stopped_by_shutdown = job.stopped_by_shutdown or shutdown
                job.token.cancel()
                if job.state is JobState.QUEUED:
                    self._finish(job, JobState.INTERRUPTED if shutdown else JobState.CANCELLED)
            description = job.describe()
        if description["state"] in (JobState.CANCELLED.value, JobState.INTERRUPTED.value):
            self._publish(job_id, "status", description)
        log.info("job %s: cancel requested (%s)", job_id, description["state"])
        return description

    def status(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            return self._get(job_id).describe()

    def summary(self) -> dict[str, Any]:
        """Counts per state and the unfinished jobs, for ``info`` and ``status``: each with the
        ``output`` its request names (None where it names none), so that a client choosing a name
        for a new output can leave the names of queued and running jobs alone."""
        with self._lock:
            counts = {state.value: 0 for state in JobState}
            active = []
            for job in self._jobs.values():
                counts[job.state.value] += 1
                if not job.state.finished:
                    active.append(
                        {
                            "job_id": job.job_id,
                            "kind": job.kind,
                            "state": job.state.value,
                            "progress": {"done": job.progress_done, "total": job.progress_total},
                            "output": _output_of(job.request),
                        }
                    )
        return {"workers": self.workers, "counts": counts, "active": active}

    def shutdown(self, *, cancel: bool = True, wait_s: float = 5.0) -> None:
        """Stop taking jobs; cancel unfinished ones (when asked) and wait for the workers."""
        with self._lock:
            self._closed = True
            unfinished = [job for job in self._jobs.values() if not job.state.finished]
        if cancel:
            for job in unfinished:
                try:
                    self.cancel(job.job_id, shutdown=True)
                except Exception:  # one job's bad record must not stop the shutdown
                    log.exception("job %s could not be cancelled at shutdown", job.job_id)
        for _ in self._threads:
            self._queue.put(None)
        deadline_ns = time.monotonic_ns() + int(wait_s * 1e9)
        for thread in self._threads:
            thread.join(max(0.0, (deadline_ns - time.monotonic_ns()) / 1e9))
            if thread.is_alive():
                log.warning("job worker %s did not stop within %.1f s; leaving it", thread.name, wait_s)
        with self._lock:
            left = [job.describe() for job in self._jobs.values() if not job.state.finished]
        for description in left:
            # its waiters hear that it ends with the engine; the journal still says it was running,
            # so the next engine removes its temporary files and it can be resumed
            job_id = description["job_id"]
            log.warning("job %s (%s) is interrupted by the shutdown", job_id, description["kind"])
            self._publish(job_id, "status", {**description, "state": JobState.INTERRUPTED.value})
        if self._journal is not None:
            if any(thread.is_alive() for thread in self._threads):
                log.warning("the job journal stays locked until this process ends: a job still runs")
            else:
                self._journal.unlock()

    def _get(self, job_id: str) -> Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise JobNotFoundError(f"no job {quote(job_id)}; known jobs: {len(self._jobs)}") from None

    def _finish(self, job: Job, state: JobState) -> None:
        """Called with the lock held."""
        job.state = state
        job.finished = _utc_now_iso()
        job.function = None  # what the request check prepared (parsed timelines) is not kept
        self._journal_write(job)
        self._forget_old()

    def _forget_old(self) -> None:
        """Forget the oldest finished jobs beyond ``keep_finished``; interrupted ones (which may be
        resumed) are counted apart and forgotten only after ``INTERRUPTED_KEEP_S`` or beyond
        ``MAX_INTERRUPTED_KEPT``. Called with the lock held."""
        settled = [
            key
            for key, other in self._jobs.items()
            if other.state.finished and other.state is not JobState.INTERRUPTED
        ]
        forget = settled[: max(0, len(settled) - self._keep_finished)]
        interrupted = [key for key, other in self._jobs.items() if other.state is JobState.INTERRUPTED]
        over = max(0, len(interrupted) - MAX_INTERRUPTED_KEPT)
        forget += interrupted[:over]
        forget += [key for key in interrupted[over:] if _age_s(self._jobs[key].finished) > INTERRUPTED_KEEP_S]
        for key in forget:
            forgotten = self._jobs.pop(key)
            if forgotten.state is JobState.INTERRUPTED:
                log.info("job %s: interrupted too long ago; forgetting it and its checkpoint", key)
            if self._journal is not None:
                self._journal.remove(key)
                self._remove_work_dir(forgotten)

    def _work_dir(self, job: Job) -> Path:
        if self._journal is None:
            folder = Path(tempfile.gettempdir()) / f"chronoscope-job-{job.job_id}"
        else:
            folder = self._journal.folder / f"{job.job_id}.work"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return folder

    def _remove_work_dir(self, job: Job) -> None:
        for folder in (
            Path(tempfile.gettempdir()) / f"chronoscope-job-{job.job_id}",
            self._journal.folder / f"{job.job_id}.work" if self._journal is not None else None,
        ):
            if folder is not None and folder.exists():
                remove_quietly(folder)

    def _journal_write(self, job: Job, *, required: bool = False) -> None:
        """Called with the lock held, so that records reach the disk in the order of the changes.
        ``required`` (a new job): a record that cannot be written is ``JobJournalError``; else a
        WARNING (the job goes on, but cannot be resumed)."""
        if self._journal is None:
            if required:
                request_digest(job.record())  # JSON must hold it, journal or not
            return
        try:
            with watching_temporaries(None):  # the journal's own files are not the job's temporaries
                self._journal.write(job)
        except (OSError, ValueError, TypeError, RecursionError) as error:
            if required:
                raise JobJournalError(
                    f"job {job.job_id}: the job journal cannot record it ({error}); it is not queued"
                ) from None
            log.warning("job %s: the journal cannot be written (%s); it cannot be resumed", job.job_id, error)

    def _update(
        self,
        job: Job,
        *,
        checkpoint: dict | None = None,
        add_partial: str | None = None,
        remove_partial: str | None = None,
        add_output: str | None = None,
    ) -> None:
        with self._lock:
            if checkpoint is not None:
                job.checkpoint = checkpoint
            if add_partial is not None and add_partial not in job.partials:
                job.partials.append(add_partial)
            if remove_partial is not None and remove_partial in job.partials:
                job.partials.remove(remove_partial)
            elif remove_partial is not None and add_output is None and checkpoint is None:
                return  # a temporary this job never recorded: nothing to write down
            if add_output is not None and add_output not in job.outputs:
                job.outputs.append(add_output)
            self._journal_write(job)

    def _record_progress(self, job: Job, done: int, total: int | None, message: str) -> None:
        with self._lock:
            job.progress_done, job.progress_total, job.progress_message = done, total, message

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            with self._lock:
                job = self._jobs.get(job_id)
                if job is None or job.state is not JobState.QUEUED:
                    continue
                job.state = JobState.RUNNING
                job.started = _utc_now_iso()
                self._journal_write(job)
                description = job.describe()
            self._publish(job_id, "status", description)
            try:
                self._run(job)
            except BaseException:  # a worker thread must outlive any one job, whatever it raised
                log.exception("job %s: reporting its end failed", job_id)
                with contextlib.suppress(Exception), self._lock:
                    if not job.state.finished:
                        job.error = {
                            "ename": "EngineRequestError",
                            "evalue": "internal error: the job's end was lost",
                        }
                        self._finish(job, JobState.FAILED)

    def _run(self, job: Job) -> None:
        recorder = _QueueRecorder(self, job)
        context = JobContext(
            job.job_id,
            job.token,
            self._publish,
            on_progress=lambda done, total, message: self._record_progress(job, done, total, message),
            checkpoint=job.checkpoint,
            attempt=job.attempt,
            recorder=recorder,
            previous_outputs=frozenset(job.outputs),
        )
        try:
            with watching_temporaries(recorder):
                result = dict(job.function(context) or {})
            json.dumps(result, allow_nan=False)
            state, job_result, job_error = JobState.DONE, result, None
        except JobCancelledError:
            stopped = JobState.INTERRUPTED if job.stopped_by_shutdown else JobState.CANCELLED
            state, job_result, job_error = stopped, None, None
        except ChronoscopeError as error:
            log.warning("job %s (%s) failed: %s", job.job_id, job.kind, shorten(str(error)))
            state, job_result = JobState.FAILED, None
            job_error = {"ename": type(error).__name__, "evalue": shorten(str(error))}
        except OSError as error:  # the file system said no: name the file and the reason
            failure = FileAccessError(_os_error_text(error))
            log.warning("job %s (%s) failed: %s", job.job_id, job.kind, failure)
            state, job_result = JobState.FAILED, None
            job_error = {"ename": type(failure).__name__, "evalue": shorten(str(failure))}
        except Exception as error:  # a bug in the job: keep the engine serving, report it
            log.exception("job %s (%s) crashed", job.job_id, job.kind)
            state, job_result = JobState.FAILED, None
            job_error = {"ename": type(error).__name__, "evalue": shorten(f"internal error: {error}")}
        except BaseException as error:  # sys.exit() or KeyboardInterrupt from a plugin's job
            failure = CapabilityModuleError(
                f"the {job.kind} job raised {type(error).__name__}({shorten(str(error), 200)!r}) "
                f"(from {getattr(job.function, '__module__', None) or 'its capability module'}); a job "
                "must raise a ChronoscopeError to fail, never exit"
            )
            log.error("job %s (%s) failed: %s", job.job_id, job.kind, failure)
            state, job_result = JobState.FAILED, None
            job_error = {"ename": type(failure).__name__, "evalue": str(failure)}
        if state is JobState.DONE:
            self._remove_work_dir(job)
        with self._lock:
            job.result, job.error = job_result, job_error
            self._finish(job, state)
            description = job.describe()
        log.info("job %s (%s) %s", job.job_id, job.kind, state.value)
        if state is JobState.DONE:
            self._publish(job.job_id, "result", {"job_id": job.job_id, "result": job_result})
        elif state is JobState.FAILED:
            self._publish(job.job_id, "error", {"job_id": job.job_id, **(job_error or {})})
        self._publish(job.job_id, "status", description)
