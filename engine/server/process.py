"""One engine per user: find it, run it in the foreground, start it in the background, stop it.

The connection file says where an engine is; it is believed only when its pid lives and the
engine answers ``ping`` on the control channel. A file that fails either test is stale and is
replaced. On POSIX a running engine also holds an exclusive lock on ``engine.lock`` in the
runtime folder, so that two engines started at the same moment cannot both serve, and writes its
pid into it; every engine locks its job journal (``jobs.JobJournal.lock``), so that an engine
started with a connection file of its own elsewhere is refused rather than taking over the first
one's jobs. A connection file that others may read or write is used by no one (``chmod 600`` it).

An engine that holds the lock is never stale, whatever its connection file says: when the file is
gone, damaged or names another process, ``stop_engine`` finds the engine by the lock (the pid it
wrote there, which Linux's /proc/locks confirms holds it) and asks it to stop with SIGTERM.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import (
    ChronoscopeError,
    ConnectionFileError,
    EngineAlreadyRunningError,
    EngineNotRunningError,
    EngineTimeoutError,
    FileAccessError,
    ProtocolVersionError,
)
from engine.places import folder_fix, folder_problem, places
from engine.processes import exclusive_lock, flock_holders, pid_alive, process_command_line
from engine.server.client import EngineClient
from engine.server.connection import (
    LOCK_FILE_NAME,
    ConnectionInfo,
    check_private_file,
    connection_file_path,
    ensure_private_dir,
    read_connection_file,
    remove_connection_file,
    remove_ipc_files,
)

if TYPE_CHECKING:
    from engine.server.server import EngineConfig

log = logging.getLogger(__name__)

LOG_FILE_NAME = "engine.log"
JOURNAL_DIR_NAME = "jobs"
_RUN_ERROR_PREFIX = "chronoscope engine run: error: "  # how ``engine_cmd.main_run`` reports a refusal
_spawned: dict[int, subprocess.Popen] = {}
# An engine outlives the command that started it. Let go of its Popen while Python's warning
# filters still stand: dropped at interpreter teardown, it printed "ResourceWarning: subprocess
# ... is still running" after every `chronoscope engine start` and `render`.
atexit.register(_spawned.clear)


def engine_log_path() -> Path:
    return places().log_dir / LOG_FILE_NAME


@dataclass(frozen=True)
class EngineFolder:
    """A folder the engine writes in: what it keeps there, and whether it must be the user's own."""

    path: Path
    keeps: str
    private: bool


def engine_folders(connection_file: Path | None = None) -> list[EngineFolder]:
    """The folders an engine started now writes in: its runtime folder, its log folder and its
    job journal's (in the cache folder)."""
    path = Path(connection_file) if connection_file else connection_file_path()
    return [
        EngineFolder(path.parent, "its connection file, lock and sockets", True),
        EngineFolder(places().log_dir, "its log", True),
        EngineFolder(places().cache_dir / JOURNAL_DIR_NAME, "its job journal", False),
    ]


def engine_folder_problems(folders: Sequence[EngineFolder]) -> list[tuple[str, str]]:
    """What is wrong with the ``folders`` that cannot be made or written in, and the fix: one pair
    for the folders that fail alike (a read-only home holds them all)."""
    groups: dict[tuple[str, str], list[EngineFolder]] = {}
    for folder in folders:
        problem = folder_problem(folder.path, private=folder.private)
        if problem:
            groups.setdefault((problem, folder_fix(folder.path)), []).append(folder)
    lines = []
    for (problem, fix), failed in groups.items():
        named = [f"{folder.path} ({folder.keeps})" for folder in failed]
        listed = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"
        lines.append((f"{listed} {problem}", fix))
    return lines


def _check_engine_folders(folders: Sequence[EngineFolder]) -> None:
    problems = engine_folder_problems(folders)
    if problems:
        said = "; ".join(f"{problem}; {fix}" for problem, fix in problems)
        raise FileAccessError(f"the engine cannot start: {said}")


def _alive(pid: int) -> bool:
    child = _spawned.get(pid)
    if child is not None:
        return child.poll() is None
    return pid_alive(pid)


def find_running_engine(connection_file: Path | None = None, timeout_s: float = 2.0) -> ConnectionInfo | None:
    """The connection of a live engine that answers ``ping``, or None. ``ConnectionFileError``
    when the live engine's connection file is open to other users (it is not used then)."""
    path = Path(connection_file) if connection_file else connection_file_path()
    try:
        connection = read_connection_file(path, private=False)
    except EngineNotRunningError:
        return None
    except ConnectionFileError as error:
        if engine_lock_held(path.parent):
            log.warning("%s; the engine that holds %s cannot be reached", error, path.parent / LOCK_FILE_NAME)
        else:
            log.warning("%s; treating it as stale", error)
        return None
    if not _alive(connection.pid):
        return None
    check_private_file(path)
    try:
        with EngineClient(connection) as client:
            client.ping(timeout_s=timeout_s)
    except ProtocolVersionError:
        # a live engine of another version is not stale, and not ours to replace; a file of
        # another version whose pid is some other process now (no engine holds the lock) is stale
        if engine_lock_held(path.parent) is False:
            log.warning("the connection file names pid %d of another protocol version, which holds "
                        "no engine lock: stale", connection.pid)
            return None
        raise
    except ChronoscopeError as error:
        log.warning("engine pid %d named in the connection file does not answer: %s", connection.pid, error)
        return None
    return connection


def clear_stale_connection(connection_file: Path | None = None) -> None:
    """Remove a connection file (and its socket files) whose engine is gone or silent."""
    path = Path(connection_file) if connection_file else connection_file_path()
    try:
        stale = read_connection_file(path, private=False)
    except EngineNotRunningError:
        return
    except ConnectionFileError:
        stale = None
    log.warning("replacing stale connection file %s%s", path, f" (pid {stale.pid})" if stale else "")
    if stale is not None:
        remove_ipc_files(stale, remove_dir=bool(stale.ipc_dir))
    remove_connection_file(path)


@contextlib.contextmanager
def instance_lock(runtime_dir: Path) -> Iterator[None]:
    """Hold this user's engine lock; ``EngineAlreadyRunningError`` when another engine holds it."""
    if os.name == "nt":
        yield
        return
    path = ensure_private_dir(runtime_dir) / LOCK_FILE_NAME
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(exclusive_lock(path, mode=0o600))
        except BlockingIOError:
            holder = engine_lock_holder(runtime_dir)
            who = f" (engine pid {holder})" if holder is not None else ""
            raise EngineAlreadyRunningError(
                f"another engine holds {path}{who}; see `chronoscope engine status`, or stop it first"
            ) from None
        # the holder's pid, so that an engine whose connection file is lost can still be stopped
        path.write_text(f"{os.getpid()}\n", encoding="ascii")
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                path.write_text("", encoding="ascii")


def engine_lock_held(runtime_dir: Path) -> bool | None:
    """Whether a live engine holds the lock in ``runtime_dir`` (None where locks are not used)."""
    if os.name == "nt":
        return None
    import fcntl

    try:
        handle = os.open(Path(runtime_dir) / LOCK_FILE_NAME, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(handle)
    return False


def engine_lock_holder(runtime_dir: Path) -> int | None:
    """The pid of the engine that holds the lock in ``runtime_dir``, or None: no lock held, or its
    holder cannot be told. The pid it wrote into the lock file counts only while it holds the lock
    now (Linux: /proc/locks lists it; elsewhere: it lives and runs a Chronoscope engine), so that a
    pid reused by another program after a crash is never named; where /proc/locks names one holder
    and the file none (an engine of an earlier version), that holder."""
    if os.name == "nt":
        return None
    path = Path(runtime_dir) / LOCK_FILE_NAME
    if not engine_lock_held(runtime_dir):
        return None
    try:
        recorded: int | None = int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        recorded = None
    holders = flock_holders(path)
    if holders is not None:
        if recorded in holders:
            return recorded
        return next(iter(holders)) if len(holders) == 1 and pid_alive(next(iter(holders))) else None
    if recorded is not None and pid_alive(recorded) and _runs_an_engine(recorded):
        return recorded
    return None


def _runs_an_engine(pid: int) -> bool:
    """Whether process ``pid`` runs a Chronoscope engine (``python -m engine.server`` as ``engine
    start`` runs it, or ``chronoscope engine run``)."""
    command_line = process_command_line(pid) or []
    words = " ".join(command_line).split()
    return "engine.server" in words or any(
        words[index : index + 2] == ["engine", "run"] for index in range(len(words))
    )


def run_engine(config: EngineConfig) -> None:
    """Serve in this process until shut down (``chronoscope engine run``). SIGTERM/SIGINT stop it."""
    from engine.server.server import Engine

    connection_file = config.connection_file or connection_file_path()
    config.connection_file = connection_file
    if config.runtime_dir is None:
        # the sockets and the frame exchange beside the connection file that names them, whatever
        # this process's own places() would say (``engine start`` passes the file it looks for)
        config.runtime_dir = connection_file.parent
    if config.journal_dir is None:
        config.journal_dir = places().cache_dir / JOURNAL_DIR_NAME
    _check_engine_folders(
        [
            EngineFolder(connection_file.parent, "its connection file, lock and sockets", True),
            EngineFolder(Path(config.journal_dir), "its job journal", False),
        ]
    )
    existing = find_running_engine(connection_file)
    if existing is not None:
        raise EngineAlreadyRunningError(
            f"an engine is already running: pid {existing.pid}, request endpoint {existing.request}; "
            "stop it first with `chronoscope engine stop`"
        )
    with instance_lock(connection_file.parent):
        clear_stale_connection(connection_file)
        engine = Engine(config)
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: engine.stop_soon())
        engine.bind()
        engine.serve()


def _spawn(command: Sequence[str], log_path: Path, runtime_dir: Path) -> subprocess.Popen:
    ensure_private_dir(log_path.parent, "its log")
    cwd = ensure_private_dir(runtime_dir)
    with open(log_path, "ab") as log_stream:
        options: dict = {"stdin": subprocess.DEVNULL, "stdout": log_stream, "stderr": log_stream, "cwd": cwd}
        if os.name == "nt":
            options["creationflags"] = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            options["start_new_session"] = True
        return subprocess.Popen(list(command), **options)


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _refusal_since(path: Path, offset: int) -> str:
    """The reason in the last ``chronoscope engine run: error:`` line written to the log after
    ``offset`` (other engines may write to the same log meanwhile), or ""."""
    try:
        with open(path, "rb") as stream:
            stream.seek(offset)
            text = stream.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    refusals = [line for line in text.splitlines() if line.startswith(_RUN_ERROR_PREFIX)]
    return refusals[-1][len(_RUN_ERROR_PREFIX) :] if refusals else ""


def _log_tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def start_engine(
    *,
    transport: str | None = None,
    workers: int | None = None,
    timeout_s: float = 30.0,
    connection_file: Path | None = None,
    capability_modules: Sequence[str] = (),
) -> tuple[ConnectionInfo, bool]:
    """Start a background engine unless one answers; return its connection and whether it is new."""
    path = Path(connection_file) if connection_file else connection_file_path()
    existing = find_running_engine(path)
    if existing is not None:
        return existing, False
    if engine_lock_held(path.parent):
        holder = engine_lock_holder(path.parent)
        who = f" (pid {holder})" if holder is not None else ""
        raise EngineTimeoutError(
            f"an engine{who} holds {path.parent / LOCK_FILE_NAME} but does not answer ping through "
            f"{path} (busy, hung, or its connection file is lost); stop it with "
            "`chronoscope engine stop` (`--force` if it does not stop)"
        )
    _check_engine_folders(engine_folders(path))
    clear_stale_connection(path)
    log_path = engine_log_path()
    command = [sys.executable, "-m", "engine.server", "--no-log-file", "--connection-file", str(path)]
    if transport:
        command += ["--transport", transport]
    if workers:
        command += ["--workers", str(workers)]
    for module in capability_modules:
        command += ["--capability-module", module]
    log_start = _log_size(log_path)
    child = _spawn(command, log_path, path.parent)
    _spawned[child.pid] = child
    log.info("starting engine pid %d; log: %s", child.pid, log_path)
    deadline_ns = time.monotonic_ns() + int(timeout_s * 1e9)
    while time.monotonic_ns() < deadline_ns:
        status = child.poll()
        if status is not None:
            winner = find_running_engine(path)
            if winner is not None:
                return winner, False
            if engine_lock_held(path.parent):
                # another start won the lock (the Resolve script and the OFX host starting at once)
                # and is still coming up: wait for it to answer
                time.sleep(0.05)
                continue
            reason = _refusal_since(log_path, log_start)
            if reason:  # it refused to start and said why, in one line
                raise EngineNotRunningError(
                    f"the engine exited with status {status} while starting: {reason} (log: {log_path})"
                )
            raise EngineNotRunningError(
                f"the engine exited with status {status} while starting; "
                f"see {log_path}:\n{_log_tail(log_path)}"
            )
        with contextlib.suppress(EngineNotRunningError, ConnectionFileError):
            connection = read_connection_file(path, private=False)
            if connection.pid == child.pid and find_running_engine(path, timeout_s=1.0) is not None:
                return connection, True
        time.sleep(0.05)
    if child.poll() is None:
        child.terminate()
    raise EngineTimeoutError(f"the engine did not answer within {timeout_s} s of starting; see {log_path}")


def stop_engine(connection_file: Path | None = None, *, timeout_s: float = 10.0, force: bool = False) -> str:
    """Shut the engine down over the control channel and wait for its process to end.

    Returns what happened: ``"stopped"``, ``"not running"``, ``"stale"`` (file removed),
    ``"terminated"`` (an engine that holds the lock but cannot be reached through its connection
    file, gone, damaged or naming another process, stopped with SIGTERM) or ``"killed"`` (with
    ``force``, after it did not answer or stop). A process is signalled only when it holds the
    engine lock (``engine_lock_holder``), so a pid reused by an unrelated program after a crash is
    never touched.
    """
    path = Path(connection_file) if connection_file else connection_file_path()
    try:
        connection: ConnectionInfo | None = read_connection_file(path, private=False)
        problem = ""
    except EngineNotRunningError:
        connection, problem = None, "missing"
    except ConnectionFileError as error:
        connection, problem = None, f"unusable ({error})"
    if connection is not None and not _alive(connection.pid):
        problem = f"names pid {connection.pid}, which is gone"
    if problem:
        if engine_lock_held(path.parent):
            return _stop_lock_holder(path, f"its connection file {path} is {problem}", timeout_s, force)
        if problem == "missing":
            return "not running"
        clear_stale_connection(path)
        return "stale"
    assert connection is not None
    check_private_file(path)  # a file others may write could name any process to terminate
    outcome = "stopped"
    try:
        with EngineClient(connection) as client:
            client.shutdown(timeout_s=min(timeout_s, 5.0))
    except ProtocolVersionError as error:
        # it would refuse our shutdown message; an engine (it holds the lock) stops on SIGTERM too
        held = engine_lock_held(path.parent)
        if held is False:  # the pid is some other process now: the file is stale
            log.warning("pid %d holds no engine lock: not an engine (%s)", connection.pid, error)
            clear_stale_connection(path)
            return "stale"
        if held is None:
            raise
        holder = engine_lock_holder(path.parent)
        if holder is not None and holder != connection.pid:
            why = f"its connection file names pid {connection.pid}"
            return _stop_lock_holder(path, why, timeout_s, force)
        log.warning("%s; asking it to stop with SIGTERM", error)
        os.kill(connection.pid, signal.SIGTERM)
    except (EngineTimeoutError, EngineNotRunningError) as error:
        if engine_lock_held(path.parent) is False:
            log.warning("pid %d does not answer and holds no engine lock: not an engine", connection.pid)
            clear_stale_connection(path)
            return "stale"
        holder = engine_lock_holder(path.parent)
        if holder is not None and holder != connection.pid:
            # the file names some other process (a pid reused): the engine is the lock's holder
            why = f"its connection file names pid {connection.pid}"
            return _stop_lock_holder(path, why, timeout_s, force)
        if not force:
            raise EngineTimeoutError(
                f"engine pid {connection.pid} did not answer shutdown ({error}); "
                "use `chronoscope engine stop --force` to terminate it"
            ) from None
        log.warning("engine pid %d does not answer; terminating it", connection.pid)
        os.kill(connection.pid, signal.SIGTERM)
        outcome = "killed"
    if not _wait_gone(connection.pid, timeout_s):
        if not force:
            raise EngineTimeoutError(f"engine pid {connection.pid} still runs {timeout_s} s after shutdown")
        os.kill(connection.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        _wait_gone(connection.pid, timeout_s)
        outcome = "killed"
    _spawned.pop(connection.pid, None)
    if remove_connection_file(path, pid=connection.pid):
        remove_ipc_files(connection, remove_dir=bool(connection.ipc_dir))
    return outcome


def _stop_lock_holder(path: Path, why: str, timeout_s: float, force: bool) -> str:
    """Stop the engine that holds the lock beside ``path`` but cannot be reached through that file
    (``why``): SIGTERM, which an engine takes as a shutdown, then with ``force`` SIGKILL when it
    still runs after ``timeout_s``. ``EngineTimeoutError`` when the holder cannot be told."""
    lock = path.parent / LOCK_FILE_NAME
    pid = engine_lock_holder(path.parent)
    if pid is None:
        raise EngineTimeoutError(
            f"an engine holds {lock}, but {why} and the lock does not say which process holds it; "
            f"find it with `fuser {lock}` and end it, then `chronoscope engine start`"
        )
    log.warning("engine pid %d holds %s, but %s; asking it to stop with SIGTERM", pid, lock, why)
    os.kill(pid, signal.SIGTERM)
    outcome = "terminated"
    if not _wait_gone(pid, timeout_s):
        if not force:
            raise EngineTimeoutError(
                f"engine pid {pid} still runs {timeout_s:g} s after SIGTERM; "
                "use `chronoscope engine stop --force` to kill it"
            )
        os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        _wait_gone(pid, timeout_s)
        outcome = "killed"
    _spawned.pop(pid, None)
    if not engine_lock_held(path.parent):
        clear_stale_connection(path)
    return outcome


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline_ns = time.monotonic_ns() + int(timeout_s * 1e9)
    while time.monotonic_ns() < deadline_ns:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)
