"""Where tasks run: in this process, in a local process pool, or as Ray tasks. One small interface.

A runner takes ``submit(token, fn, *args)`` of a module-level function with plain arguments
(paths as text, numbers, a settings dataclass) and hands back results as they finish with
``next_done()``. Only those arguments and the JSON-able results cross process boundaries, never
frames. A token names its task in log lines (``str(token)``, cut to ``TOKEN_TEXT_CHARS``).
``close()`` lets the tasks in flight finish; ``abort()`` (an interrupted run) stops them at once
and returns when none of them runs any more, so that the caller can remove what they left.

Retries: a task whose worker dies (a decoder crash on a hostile file, a lost node) or that raises
is tried again, up to ``retries`` more times; then its failure is returned for the caller to
record. Ray does the retrying itself (``max_retries``, ``retry_exceptions``); the pool rebuilds
itself when a worker process dies and resubmits what was in flight.

The pool keeps at most ``IN_FLIGHT_PER_WORKER`` tasks per worker in the executor and queues the
rest here, and finished tasks arrive through a queue filled by done-callbacks: each ``next_done``
costs the same whether ten or a million tasks are waiting. Pool workers exit on their own when
the process that started them dies (killed with SIGKILL, say): a watchdog thread in each worker
checks its parent every ``PARENT_CHECK_S`` seconds.

``--ray ADDRESS`` is checked before Ray is started: ``local``, ``auto``, ``HOST:PORT`` or
``ray://HOST:PORT``, and for the last two a TCP connection within ``RAY_CONNECT_TIMEOUT_S``;
an address that is malformed or where nothing answers is refused with a message naming it.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import logging
import multiprocessing
import os
import queue
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.errors import ClusterNotReachableError, UnsupportedOptionError

log = logging.getLogger(__name__)

DEFAULT_RETRIES = 2
TOKEN_TEXT_CHARS = 160
ERROR_TEXT_CHARS = 300
ELISION = " ... "
ABORT_WAIT_S = 10.0
IN_FLIGHT_PER_WORKER = 4
PARENT_CHECK_S = 1.0
EXIT_PARENT_GONE = 3
RAY_CONNECT_TIMEOUT_S = 10.0
RAY_INIT_TIMEOUT_S = 60.0
RAY_ADDRESS_PATTERN = re.compile(
    r"(?P<scheme>ray://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(?P<port>[0-9]{1,5})"
)


@dataclass
class Done:
    """A finished task: its token, and its value or the error that ended it."""

    token: Any
    value: Any = None
    error: BaseException | None = None


def token_text(token: Any) -> str:
    """A token as it appears in a log line: short, whatever the caller put in it."""
    text = str(token)
    return text if len(text) <= TOKEN_TEXT_CHARS else text[: TOKEN_TEXT_CHARS - 3] + "..."


def error_text(error: BaseException) -> str:
    """What went wrong in one line: the error's type and the first line of its message (a Ray
    task's error is its cause, without the remote traceback). A long message keeps its start and
    its end, where the cause of a failed file operation is ("... File name too long"), and cuts
    the middle (long paths)."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        error = cause
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if len(message) > ERROR_TEXT_CHARS:
        head = ERROR_TEXT_CHARS // 3
        tail = ERROR_TEXT_CHARS - head - len(ELISION)
        message = message[:head] + ELISION + message[-tail:]
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


class InProcessRunner:
    """Runs each task when asked for the next result; the reference the others must match."""

    name = "in-process"
    workers = 1

    def __init__(self, retries: int = DEFAULT_RETRIES) -> None:
        self.retries = retries
        self._queue: collections.deque[tuple[Any, Callable[..., Any], tuple[Any, ...]]] = collections.deque()

    def submit(self, token: Any, fn: Callable[..., Any], *args: Any) -> None:
        self._queue.append((token, fn, args))

    def pending(self) -> int:
        return len(self._queue)

    def next_done(self) -> Done:
        token, fn, args = self._queue.popleft()
        for attempt in itertools.count():
            try:
                return Done(token, fn(*args))
            except Exception as error:
                if attempt >= self.retries:
                    return Done(token, error=error)
                log.warning(
                    "%s failed (%s); trying again (%d of %d)",
                    token_text(token),
                    error_text(error),
                    attempt + 1,
                    self.retries,
                )
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._queue.clear()

    def abort(self) -> None:
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


def _exit_with_parent(parent_pid: int) -> None:
    """Watchdog of a pool worker: end this process when the one that started it is gone."""
    while True:
        time.sleep(PARENT_CHECK_S)
        if os.getppid() != parent_pid:
            os._exit(EXIT_PARENT_GONE)


def _pool_worker_init(parent_pid: int) -> None:
    """A pool worker: exits with its parent (``_exit_with_parent``), computes on one thread."""
    threading.Thread(
        target=_exit_with_parent, args=(parent_pid,), name="chronoscope-parent-watchdog", daemon=True
    ).start()
    _worker_init()


@dataclass
class _PoolTask:
    token: Any
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    attempt: int = 0


class PoolRunner:
    """A local process pool of ``workers`` (spawned, so no decoder or model state is inherited).

    At most ``window`` tasks (``IN_FLIGHT_PER_WORKER`` per worker by default) are in the executor
    at once; the others wait in a queue here. Finished futures arrive through a queue filled by
    done-callbacks, so ``next_done`` never looks at the tasks still running."""

    name = "process-pool"

    def __init__(self, workers: int, retries: int = DEFAULT_RETRIES, window: int | None = None) -> None:
        if workers < 1:
            raise UnsupportedOptionError(f"--workers {workers} must be 1 or more")
        self.workers = workers
        self.retries = retries
        self.window = window or workers * IN_FLIGHT_PER_WORKER
        self._queued: collections.deque[_PoolTask] = collections.deque()
        self._running: dict[concurrent.futures.Future, _PoolTask] = {}
        self._finished: queue.SimpleQueue[concurrent.futures.Future] = queue.SimpleQueue()
        self._pool = self._new_pool()

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_pool_worker_init,
            initargs=(os.getpid(),),
        )

    def submit(self, token: Any, fn: Callable[..., Any], *args: Any) -> None:
        self._queued.append(_PoolTask(token, fn, args))
        self._fill()

    def _fill(self) -> None:
        while self._queued and len(self._running) < self.window:
            task = self._queued.popleft()
            future = self._pool.submit(task.fn, *task.args)
            self._running[future] = task
            future.add_done_callback(self._finished.put)

    def pending(self) -> int:
        return len(self._queued) + len(self._running)

    def next_done(self) -> Done:
        if not self.pending():
            raise IndexError("next_done() with no task pending")
        while True:
            self._fill()
            future = self._finished.get()
            task = self._running.pop(future, None)
            if task is None:
                continue  # a task of a pool that broke, already resubmitted
            error = future.exception()
            if error is None:
                self._fill()
                return Done(task.token, future.result())
            if isinstance(error, concurrent.futures.process.BrokenProcessPool):
                self._rebuild()
            if task.attempt >= self.retries:
                self._fill()
                return Done(task.token, error=error)
            log.warning(
                "%s failed (%s); trying again (%d of %d)",
                token_text(task.token),
                error_text(error),
                task.attempt + 1,
                self.retries,
            )
            task.attempt += 1
            self._queued.appendleft(task)

    def _rebuild(self) -> None:
        """A worker died: the pool is broken for every task in it. Start a new pool; what was in
        flight goes back to the front of the queue (finished results are kept)."""
        log.warning("a pool worker process died; starting a new pool and resubmitting its tasks")
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()
        stranded = [
            (future, task)
            for future, task in self._running.items()
            if not (future.done() and future.exception() is None)
        ]
        for future, task in reversed(stranded):
            del self._running[future]
            self._queued.appendleft(task)

    def close(self) -> None:
        self._queued.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def abort(self) -> None:
        """Stop at once: cancel what waits, end the worker processes (a task in flight stops
        where it is, its temporaries left to the caller, who removes them), and wait for them to
        be gone."""
        self._queued.clear()
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + ABORT_WAIT_S
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        self._running.clear()


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def check_ray_address(address: str) -> tuple[str, int] | None:
    """The host and port a ``--ray`` address names (None for ``local`` and ``auto``); a malformed
    address is refused with the forms that work."""
    if address in ("local", "auto"):
        return None
    match = RAY_ADDRESS_PATTERN.fullmatch(address.strip())
    if match is None or not 0 < int(match.group("port")) < 65536:
        raise UnsupportedOptionError(
            f"--ray {address!r} is not a Ray address; give HOST:PORT of the head node "
            "(e.g. 10.0.0.5:6379, what `ray start --head` prints), ray://HOST:10001 to connect as a "
            "client, auto (the cluster this machine belongs to) or local (start one here)"
        )
    return match.group("host").strip("[]"), int(match.group("port"))


def check_ray_reachable(address: str, timeout_s: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """Refuse a malformed ``--ray`` address, or one where nothing answers within ``timeout_s``
    (instead of Ray's minutes of retries); ``local`` and ``auto`` pass (Ray checks ``auto``)."""
    target = check_ray_address(address)
    if target is not None:
        _check_ray_reachable(address, *target, timeout_s)


def _check_ray_reachable(address: str, host: str, port: int, timeout_s: float) -> None:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except socket.gaierror as error:
        raise ClusterNotReachableError(
            f"--ray {address}: the host name {host!r} is not known ({error.strerror}); check the address "
            "of the head node"
        ) from None
    except OSError as error:
        reason = (
            f"no answer within {timeout_s:g} s"
            if isinstance(error, TimeoutError)
            else (error.strerror or str(error)).lower()
        )
        raise ClusterNotReachableError(
            f"--ray {address}: no Ray cluster answers there ({reason}); start "
            f"one with `ray start --head --port {port}` on {host}, check the address and the "
            "firewall, or run here with --ray local"
        ) from None


def _join_within(ray: Any, address: str, timeout_s: float) -> None:
    """``ray.init(address)`` with a deadline: something that accepts connections but is not a Ray
    head would keep Ray retrying for many minutes. The waiting thread is left behind (a daemon)."""
    outcome: list[BaseException] = []

    def join() -> None:
        try:
            ray.init(address=address, log_to_driver=False)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=join, name="chronoscope-ray-init", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise TimeoutError(f"no reply from a Ray head within {timeout_s:g} s: is it a Ray cluster's address?")
    if outcome:
        raise outcome[0]


class RayRunner:
    """Tasks on a Ray cluster: ``address`` of a running cluster, or ``local`` to start one here.

    Every task asks for one CPU, so a cluster with N CPUs runs N at once. Ray retries a task whose
    worker died or which raised, ``retries`` times. At most ``IN_FLIGHT_PER_WORKER`` tasks per
    cluster CPU are submitted at once; the rest wait here.
    """

    name = "ray"

    def __init__(
        self,
        address: str,
        retries: int = DEFAULT_RETRIES,
        workers: int | None = None,
        connect_timeout_s: float | None = None,
        init_timeout_s: float | None = None,
    ) -> None:
        connect_timeout_s = RAY_CONNECT_TIMEOUT_S if connect_timeout_s is None else connect_timeout_s
        init_timeout_s = RAY_INIT_TIMEOUT_S if init_timeout_s is None else init_timeout_s
        target = check_ray_address(address)
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
            if target is not None:
                _check_ray_reachable(address, *target, connect_timeout_s)
            try:
                if address == "local":
                    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
                    self._started_here = True
                else:
                    _join_within(ray, address, init_timeout_s)
            except (ConnectionError, RuntimeError, TimeoutError, ValueError) as error:
                raise ClusterNotReachableError(
                    f"--ray {address}: cannot join the Ray cluster ({error_text(error)}); check that "
                    "`ray status` works on that machine and that both sides run the same Ray and Python"
                ) from None
        self.workers = int(ray.cluster_resources().get("CPU", 1))
        self.window = max(self.workers, 1) * IN_FLIGHT_PER_WORKER
        self._task = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=True)(_run_task)
        self._queued: collections.deque[tuple[Any, Callable[..., Any], tuple[Any, ...]]] = collections.deque()
        self._refs: dict[Any, Any] = {}

    def submit(self, token: Any, fn: Callable[..., Any], *args: Any) -> None:
        self._queued.append((token, fn, args))
        self._fill()

    def _fill(self) -> None:
        while self._queued and len(self._refs) < self.window:
            token, fn, args = self._queued.popleft()
            self._refs[self._task.remote(fn, *args)] = token

    def pending(self) -> int:
        return len(self._queued) + len(self._refs)

    def next_done(self) -> Done:
        self._fill()
        ready, _ = self._ray.wait(list(self._refs), num_returns=1)
        ref = ready[0]
        token = self._refs.pop(ref)
        try:
            done = Done(token, self._ray.get(ref))
        except Exception as error:
            done = Done(token, error=error)
        self._fill()
        return done

    def close(self) -> None:
        self._queued.clear()
        for ref in list(self._refs):
            self._ray.cancel(ref)
        self._refs.clear()
        if self._started_here:
            self._started_here = False
            self._ray.shutdown()

    def abort(self) -> None:
        """Stop at once: cancel every task in flight (their workers are killed) and wait, up to
        ``ABORT_WAIT_S``, until they have ended."""
        self._queued.clear()
        refs = list(self._refs)
        for ref in refs:
            self._ray.cancel(ref, force=True)
        if refs:
            self._ray.wait(refs, num_returns=len(refs), timeout=ABORT_WAIT_S)
        self._refs.clear()


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
        check_ray_address(ray_address)
        return RayRunner(ray_address, retries, workers if ray_address == "local" and workers > 1 else None)
    if workers > 1 or isolate:
        return PoolRunner(workers, retries)
    if workers < 1:
        raise UnsupportedOptionError(f"--workers {workers} must be 1 or more")
    return InProcessRunner(retries)
