"""Where tasks run: in this process, in a local process pool, or as Ray tasks. One small interface.

A runner takes ``submit(fn, *args)`` of a module-level function with plain arguments (paths as
text, numbers, a settings dataclass) and hands back results as they finish with ``next_done()``.
Only those arguments and the JSON-able results cross process boundaries, never frames.

Retries: a task whose worker dies (a decoder crash on a hostile file, a lost node) or that raises
is tried again, up to ``retries`` more times; then its failure is returned for the caller to
record. Ray does the retrying itself (``max_retries``, ``retry_exceptions``); the pool rebuilds
itself when a worker process dies and resubmits what was in flight.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.errors import UnsupportedOptionError

log = logging.getLogger(__name__)

DEFAULT_RETRIES = 2


@dataclass
class Done:
    """A finished task: its token, and its value or the error that ended it."""

    token: Any
    value: Any = None
    error: BaseException | None = None


class InProcessRunner:
    """Runs each task when asked for the next result; the reference the others must match."""

    name = "in-process"
    workers = 1

    def __init__(self, retries: int = DEFAULT_RETRIES) -> None:
        self.retries = retries
        self._queue: list[tuple[Any, Callable[..., Any], tuple[Any, ...]]] = []

    def submit(self, token: Any, fn: Callable[..., Any], *args: Any) -> None:
        self._queue.append((token, fn, args))

    def pending(self) -> int:
        return len(self._queue)

    def next_done(self) -> Done:
        token, fn, args = self._queue.pop(0)
        for attempt in itertools.count():
            try:
                return Done(token, fn(*args))
            except Exception as error:
                if attempt >= self.retries:
                    return Done(token, error=error)
                log.warning(
                    "task %s failed (%s); trying again (%d of %d)", token, error, attempt + 1, self.retries
                )
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._queue.clear()


WORKER_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _worker_init() -> None:
    """Each worker (pool process or Ray task) computes on one thread: OpenMP and BLAS pools, OpenCV,
    and the speed model's ONNX Runtime session (``MineSettings.model_threads`` = 1). Workers, not
    threads, scale, and N workers never fight over the same cores. FFmpeg's decoder threads are
    left to FFmpeg: mining decodes about a tenth of the frames at 320 px, and the CPU time of each
    task is recorded (``task.cpu_s`` in the manifest) so that over-subscription would show."""
    for variable in WORKER_THREAD_VARIABLES:
        os.environ[variable] = "1"
    import cv2

    cv2.setNumThreads(1)


class PoolRunner:
    """A local process pool of ``workers`` (spawned, so no decoder or model state is inherited)."""

    name = "process-pool"

    def __init__(self, workers: int, retries: int = DEFAULT_RETRIES) -> None:
        if workers < 1:
            raise UnsupportedOptionError(f"--workers {workers} must be 1 or more")
        self.workers = workers
        self.retries = retries
        self._pool = self._new_pool()
        self._futures: dict[
            concurrent.futures.Future, tuple[Any, Callable[..., Any], tuple[Any, ...], int]
        ] = {}

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
        )

    def submit(self, token: Any, fn: Callable[..., Any], *args: Any, attempt: int = 0) -> None:
        future = self._pool.submit(fn, *args)
        self._futures[future] = (token, fn, args, attempt)

    def pending(self) -> int:
        return len(self._futures)

    def next_done(self) -> Done:
        while True:
            done, _ = concurrent.futures.wait(
                list(self._futures), return_when=concurrent.futures.FIRST_COMPLETED
            )
            future = next(iter(done))
            token, fn, args, attempt = self._futures.pop(future)
            error = future.exception()
            if error is None:
                return Done(token, future.result())
            if isinstance(error, concurrent.futures.process.BrokenProcessPool):
                self._rebuild()
            if attempt >= self.retries:
                return Done(token, error=error)
            log.warning(
                "task %s failed (%s); trying again (%d of %d)", token, error, attempt + 1, self.retries
            )
            self.submit(token, fn, *args, attempt=attempt + 1)

    def _rebuild(self) -> None:
        """A worker died: the pool is broken for every task in it. Start a new pool, resubmit the rest."""
        log.warning("a pool worker process died; starting a new pool and resubmitting its tasks")
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()
        stranded = list(self._futures.items())
        self._futures.clear()
        for future, (token, fn, args, attempt) in stranded:
            if future.done() and future.exception() is None:
                self._futures[future] = (token, fn, args, attempt)
            else:
                self.submit(token, fn, *args, attempt=attempt)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


class RayRunner:
    """Tasks on a Ray cluster: ``address`` of a running cluster, or ``local`` to start one here.

    Every task asks for one CPU, so a cluster with N CPUs runs N at once. Ray retries a task whose
    worker died or which raised, ``retries`` times.
    """

    name = "ray"

    def __init__(self, address: str, retries: int = DEFAULT_RETRIES, workers: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise UnsupportedOptionError(
                "--ray needs the ray package: pip install 'chronoscope[mining]' (or pip install ray)"
            ) from None
        self._ray = ray
        self.retries = retries
        self._started_here = False
        if not ray.is_initialized():
            if address == "local":
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
                self._started_here = True
            else:
                ray.init(address=address, log_to_driver=False)
        self.workers = int(ray.cluster_resources().get("CPU", 1))
        self._task = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=True)(_run_task)
        self._refs: dict[Any, Any] = {}

    def submit(self, token: Any, fn: Callable[..., Any], *args: Any) -> None:
        self._refs[self._task.remote(fn, *args)] = token

    def pending(self) -> int:
        return len(self._refs)

    def next_done(self) -> Done:
        ready, _ = self._ray.wait(list(self._refs), num_returns=1)
        ref = ready[0]
        token = self._refs.pop(ref)
        try:
            return Done(token, self._ray.get(ref))
        except Exception as error:
            return Done(token, error=error)

    def close(self) -> None:
        for ref in list(self._refs):
            self._ray.cancel(ref)
        self._refs.clear()
        if self._started_here:
            self._ray.shutdown()


def _run_task(fn: Callable[..., Any], *args: Any) -> Any:
    """A Ray task: one thread for OpenCV in this worker, then the stage function."""
    _worker_init()
    return fn(*args)


def make_runner(
    *, workers: int = 1, ray_address: str | None = None, retries: int = DEFAULT_RETRIES, isolate: bool = False
):
    """The runner the options ask for; ``--ray`` and ``--workers`` > 1 are exclusive of each other's pool.

    ``isolate`` runs even a single worker as a separate process (a pool of one): a decoder crash
    then costs a retry instead of the run, and its timings compare with larger pools.
    """
    if ray_address is not None:
        return RayRunner(ray_address, retries, workers if ray_address == "local" and workers > 1 else None)
    if workers > 1 or isolate:
        return PoolRunner(workers, retries)
    if workers < 1:
        raise UnsupportedOptionError(f"--workers {workers} must be 1 or more")
    return InProcessRunner(retries)
