"""The engine's job queue: long work (retime, render_timeline, detect_speed) on a pool of threads.

A job is a function of one ``JobContext``; it returns a JSON-ready dict (its result). The context
reports progress and log lines (published as events whose topic is the job id) and carries the
cancel token: cancelling is cooperative, the job calls ``context.check_cancelled()`` (or reads
``context.cancelled``) between steps. A queued job that is cancelled never starts.

States: queued -> running -> done | failed | cancelled, and ``interrupted`` for a job that an
engine which stopped without finishing it (killed, crashed, power cut) left behind. Finished jobs
are kept (the newest ``keep_finished`` of them) so that ``job_status`` can still answer after the
events are gone.

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
    ChronoscopeError,
    EngineAlreadyRunningError,
    JobCancelledError,
    JobNotFoundError,
    OutputExistsError,
    UnsupportedOptionError,
)
from engine.fsutil import remove_quietly, temporary_sibling, watching_temporaries, write_text_atomic
from engine.processes import exclusive_lock, pid_alive
from engine.server.outputs import publish as publish_output

log = logging.getLogger(__name__)

JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
JOURNAL_LOCK_NAME = "journal.lock"
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
    ):
        if workers < 1:
            raise UnsupportedOptionError(f"workers = {workers}; a job queue needs at least 1 worker")
        self.workers = workers
        self._publish = publish
        self._keep_finished = keep_finished
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
        with self._lock:
            previous = self._jobs.get(job_id)
            if previous is None:
                return None
            self._check_reuse(previous, kind, request)
            return None if previous.state.may_rerun else previous.describe()

    @staticmethod
    def _check_reuse(previous: Job, kind: str, request: dict[str, Any] | None) -> None:
        """Refuse the id of ``previous`` for another kind of job, or (unless it may run again) for a
        different request. Called with the lock held."""
        if previous.kind != kind:
            raise UnsupportedOptionError(
                f"job id {previous.job_id!r} is in use by a {previous.kind} job; propose another or none"
            )
        if previous.state.may_rerun or request is None or previous.request is None:
            return
        if request != previous.request:
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
            if job.kind != kind or job.request is None:
                raise UnsupportedOptionError(
                    f"job {job_id!r} is a {job.kind} job with no request kept for {kind}; "
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
        if not JOB_ID_PATTERN.match(job_id):
            raise UnsupportedOptionError(
                f"job id {job_id!r} is not usable; use 8 to 64 letters, digits, '-' or '_'"
            )
        with self._lock:
            if self._closed:
                raise UnsupportedOptionError("the engine is shutting down and takes no new jobs")
            job = Job(job_id=job_id, kind=kind, function=function, request=request)
            previous = self._jobs.get(job_id)
            if previous is not None:
                self._check_reuse(previous, kind, request)
                if not previous.state.may_rerun:
                    return previous.describe()  # the same request: that job answers for it
                if request is None or previous.request is None or request == previous.request:
                    job.checkpoint = previous.checkpoint
                else:  # what the other request saved would make this one continue the wrong work
                    log.info("job %s (%s): the request changed; starting over", job_id, kind)
                    self._remove_work_dir(previous)
                job.attempt = previous.attempt + 1
                job.outputs = list(previous.outputs)
                del self._jobs[job_id]
                log.info("job %s (%s): attempt %d", job_id, kind, job.attempt)
            self._jobs[job_id] = job
            self._journal_write(job)
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
            if job.state.finished:
                return job.describe()
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
        """Counts per state and the unfinished jobs, for ``info`` and ``status``."""
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
                self.cancel(job.job_id, shutdown=True)
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
            raise JobNotFoundError(f"no job {job_id!r}; known jobs: {len(self._jobs)}") from None

    def _finish(self, job: Job, state: JobState) -> None:
        """Called with the lock held."""
        job.state = state
        job.finished = _utc_now_iso()
        self._journal_write(job)
        self._forget_old()

    def _forget_old(self) -> None:
        finished = [key for key, other in self._jobs.items() if other.state.finished]
        for key in finished[: max(0, len(finished) - self._keep_finished)]:
            forgotten = self._jobs.pop(key)
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

    def _journal_write(self, job: Job) -> None:
        """Called with the lock held, so that records reach the disk in the order of the changes."""
        if self._journal is None:
            return
        try:
            with watching_temporaries(None):  # the journal's own files are not the job's temporaries
                self._journal.write(job)
        except OSError as error:
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
            except Exception:  # a worker thread must outlive any one job
                log.exception("job %s: reporting its end failed", job_id)

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
            log.warning("job %s (%s) failed: %s", job.job_id, job.kind, error)
            state, job_result = JobState.FAILED, None
            job_error = {"ename": type(error).__name__, "evalue": str(error)}
        except Exception as error:  # a bug in the job: keep the engine serving, report it
            log.exception("job %s (%s) crashed", job.job_id, job.kind)
            state, job_result = JobState.FAILED, None
            job_error = {"ename": type(error).__name__, "evalue": f"internal error: {error}"}
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
