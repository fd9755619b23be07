"""Whether a process of this host still runs: the engine's connection file, orphaned shared-memory
frames and the mining cache's copies all name the pid that owns them. And which process holds a
lock file, and what it runs: the engine's lock names its holder."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` runs on this host; one that exited but is not reaped yet
    (a zombie) does not. On Windows always True (``os.kill`` there would end the process), so
    callers decide by other means there."""
    if pid <= 0:
        return False
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def process_command_line(pid: int) -> list[str] | None:
    """The command line of process ``pid``: from /proc on Linux, from ``ps`` on other POSIX
    systems (one string then); None when it cannot be read (gone, or Windows)."""
    if sys.platform.startswith("linux"):
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return [part for part in raw.decode(errors="replace").split("\0") if part] or None
    if os.name == "nt" or shutil.which("ps") is None:
        return None
    try:
        listed = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [listed.stdout.strip()] if listed.returncode == 0 and listed.stdout.strip() else None


def flock_holders(path: Path) -> set[int] | None:
    """The pids that hold a ``flock`` on the file at ``path``, as Linux lists them in /proc/locks;
    None where that cannot be told (not Linux, no such file, or /proc/locks lists no lock on it:
    some file systems report their locks under another device or inode)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        info = os.stat(path)
        table = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    wanted = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    holders = set()
    for line in table.splitlines():
        # "1: FLOCK  ADVISORY  WRITE 4242 fe:00:2574631 0 EOF"; a waiter's line has "->" after
        # the number, which shifts its fields
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == wanted:
            with contextlib.suppress(ValueError):
                holders.add(int(fields[4]))
    return holders or None


def _is_zombie(pid: int) -> bool:
    """A process that has exited but not been reaped yet (Linux; elsewhere assumed not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


@contextlib.contextmanager
def exclusive_lock(path: Path, *, mode: int = 0o644) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) while the block runs; raise
    ``BlockingIOError`` at once when another process holds it. The operating system releases
    it when the holder exits, however it ends. POSIX ``flock``; on Windows the first byte is
    locked with ``msvcrt``."""
    handle = os.open(path, os.O_RDWR | os.O_CREAT, mode)
    try:
        if os.name == "nt":
            import msvcrt

            try:
                msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)
            except OSError:
                raise BlockingIOError(f"{path} is locked by another process") from None
        else:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(handle)


def _try_lock(handle: int) -> bool:
    """Take an exclusive lock on the open file ``handle`` without waiting; False when it is held."""
    try:
        if os.name == "nt":
            import msvcrt

            msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def waiting_lock(
    path: Path,
    *,
    check: Callable[[], None] | None = None,
    on_wait: Callable[[], None] | None = None,
    poll_s: float = 0.2,
) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` while the block runs, waiting while another process (or
    thread) holds it; ``check`` runs between tries (to raise on cancel), ``on_wait`` once when a
    wait begins. The lock file is removed when the block ends, so none is left behind; a waiter
    that locked a file removed meanwhile tries again on the new one."""
    path = Path(path)
    told = False
    while True:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if _try_lock(handle):
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(handle).st_ino:
                break
        os.close(handle)
        if not told and on_wait is not None:
            on_wait()
        told = True
        if check is not None:
            check()
        time.sleep(poll_s)
    try:
        yield
    finally:
        if os.name == "nt":  # Windows removes no file that is open: close first (a waiter that
            os.close(handle)  # opens it meanwhile keeps it, and the next holder removes it)
            with contextlib.suppress(OSError):
                path.unlink()
        else:
            with contextlib.suppress(OSError):
                path.unlink()  # while still held, so no one can lock the file being removed
            os.close(handle)
