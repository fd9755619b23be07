"""The engine's job queue: long work (retime, render_timeline, detect_speed) on a pool of threads.

A job is a function of one ``JobContext``; it returns a JSON-ready dict (its result). The context
reports progress and log lines (published as events whose topic is the job id) and carries the
cancel token: cancelling is cooperative, the job calls ``context.check_cancelled()`` (or reads
``context.cancelled``) between steps. A queued job that is cancelled never starts.

States: queued -> running -> done | failed | cancelled. Finished jobs are kept (the newest
``keep_finished`` of them) so that ``job_status`` can still answer after the events are gone.
"""

from __future__ import annotations

import enum
import json
import logging
import queue
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from engine.errors import ChronoscopeError, JobCancelledError, JobNotFoundError, UnsupportedOptionError

log = logging.getLogger(__name__)

JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_MIN_PROGRESS_INTERVAL_NS = 50_000_000

Publish = Callable[[str, str, dict], None]


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


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


class JobContext:
    """What a running job sees: its id, the cancel token, and progress / log reporting."""

    def __init__(
        self, job_id: str, token: CancelToken, publish: Publish, on_progress: Callable | None = None
    ):
        self.job_id = job_id
        self.token = token
        self._publish = publish
        self._on_progress = on_progress
        self._last_progress_ns = 0

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
    function: JobFunction
    token: CancelToken = field(default_factory=CancelToken)
    state: JobState = JobState.QUEUED
    submitted: str = field(default_factory=_utc_now_iso)
    started: str | None = None
    finished: str | None = None
    progress_done: int = 0
    progress_total: int | None = None
    progress_message: str = ""
    result: dict | None = None
    error: dict | None = None

    def describe(self) -> dict[str, Any]:
        """The job's state for ``job_status`` and events (JSON-ready)."""
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "state": self.state.value,
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


class JobQueue:
    """A FIFO of jobs served by ``workers`` threads; thread-safe."""

    def __init__(self, workers: int = 2, publish: Publish = _no_publish, keep_finished: int = 256):
        if workers < 1:
            raise UnsupportedOptionError(f"workers = {workers}; a job queue needs at least 1 worker")
        self.workers = workers
        self._publish = publish
        self._keep_finished = keep_finished
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._work, name=f"chronoscope-job-{n}", daemon=True)
            for n in range(workers)
        ]
        self._closed = False
        for thread in self._threads:
            thread.start()

    def submit(self, kind: str, function: JobFunction, job_id: str | None = None) -> dict[str, Any]:
        """Queue ``function``; returns the job's description. ``job_id`` may be proposed by the client."""
        job_id = job_id or uuid.uuid4().hex
        if not JOB_ID_PATTERN.match(job_id):
            raise UnsupportedOptionError(
                f"job id {job_id!r} is not usable; use 8 to 64 letters, digits, '-' or '_'"
            )
        with self._lock:
            if self._closed:
                raise UnsupportedOptionError("the engine is shutting down and takes no new jobs")
            if job_id in self._jobs:
                raise UnsupportedOptionError(f"job id {job_id!r} is already in use; propose another or none")
            job = Job(job_id=job_id, kind=kind, function=function)
            self._jobs[job_id] = job
            description = job.describe()
        self._publish(job_id, "status", description)
        self._queue.put(job_id)
        log.info("job %s (%s) queued", job_id, kind)
        return description

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a job: a queued one at once, a running one when it next checks its token."""
        with self._lock:
            job = self._get(job_id)
            job.token.cancel()
            if job.state is JobState.QUEUED:
                self._finish(job, JobState.CANCELLED)
            description = job.describe()
        if description["state"] == JobState.CANCELLED.value:
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
                self.cancel(job.job_id)
        for _ in self._threads:
            self._queue.put(None)
        deadline_ns = time.monotonic_ns() + int(wait_s * 1e9)
        for thread in self._threads:
            thread.join(max(0.0, (deadline_ns - time.monotonic_ns()) / 1e9))
            if thread.is_alive():
                log.warning("job worker %s did not stop within %.1f s; leaving it", thread.name, wait_s)

    def _get(self, job_id: str) -> Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise JobNotFoundError(f"no job {job_id!r}; known jobs: {len(self._jobs)}") from None

    def _finish(self, job: Job, state: JobState) -> None:
        job.state = state
        job.finished = _utc_now_iso()
        finished = [key for key, other in self._jobs.items() if other.state.finished]
        for key in finished[: max(0, len(finished) - self._keep_finished)]:
            del self._jobs[key]

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
                description = job.describe()
            self._publish(job_id, "status", description)
            try:
                self._run(job)
            except Exception:  # a worker thread must outlive any one job
                log.exception("job %s: reporting its end failed", job_id)

    def _run(self, job: Job) -> None:
        context = JobContext(
            job.job_id,
            job.token,
            self._publish,
            on_progress=lambda done, total, message: self._record_progress(job, done, total, message),
        )
        try:
            result = dict(job.function(context) or {})
            json.dumps(result, allow_nan=False)
            state, job_result, job_error = JobState.DONE, result, None
        except JobCancelledError:
            state, job_result, job_error = JobState.CANCELLED, None, None
        except ChronoscopeError as error:
            log.warning("job %s (%s) failed: %s", job.job_id, job.kind, error)
            state, job_result = JobState.FAILED, None
            job_error = {"ename": type(error).__name__, "evalue": str(error)}
        except Exception as error:  # a bug in the job: keep the engine serving, report it
            log.exception("job %s (%s) crashed", job.job_id, job.kind)
            state, job_result = JobState.FAILED, None
            job_error = {"ename": type(error).__name__, "evalue": f"internal error: {error}"}
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
