"""Writing files so that a reader never sees half of one.

Everything Chronoscope writes goes to a temporary name in the destination's folder and is renamed
into place only once complete. On failure the temporary file is removed and whatever stood at the
destination before is untouched. A process killed mid-write cannot remove it: work that may be
killed (an engine job) watches its temporaries (``watching_temporaries``) so that they can be
removed later (the engine does it when it next starts).

Where nothing may be replaced (``atomic_path(..., replace=False)``), the final rename is
``move_without_replacing``: a file that appeared at the destination while the new one was written
stays, and the new one is dropped.

Live temporaries. A temporary is removed as a leftover (``remove_leftover_temporaries``,
``remove_quietly``) only when the process that writes it is gone: a second job aimed at an output
that another process is writing is refused, naming that process, instead of deleting its work.
How a writer is told from a leftover:

- Each temporary ``.<stem>.partial-<random><suffix>`` has a small lock file beside it,
  ``.<stem>.writer-<random><suffix>.lock``, holding ``<pid> <host>``. It is created (exclusively)
  and locked before the temporary, and unlocked and removed only after the temporary is renamed
  into place or removed, so a temporary whose lock file no one holds (or that has none: a write
  by an older version) has no writer.
- The lock is the operating system's: ``fcntl.flock`` on POSIX, ``msvcrt.locking`` on one byte
  past the text on Windows (Windows locks are mandatory, so the ``<pid> <host>`` line stays
  readable). The system drops it when the writer exits however it ends (SIGKILL, a crash,
  TerminateProcess), so leftovers of a killed writer are still removed at once, and a pid used
  again by another process changes nothing: the pid is only named in messages.
- Network file systems: Linux maps ``flock`` on NFS to byte-range locks that the server
  arbitrates between machines (NFSv4, or NFSv3 with lockd); SMB shares lock byte ranges on the
  server. Where a file system takes no locks at all (ENOLCK, EOPNOTSUPP), a WARNING says so and
  the ``<pid> <host>`` line decides: a writer on this host is live while its pid runs (a reused
  pid only keeps a leftover, never removes live work), and one on another host is taken as live
  (the message names the file to remove if nothing runs there).
- Within one process, the temporaries it writes are known to it (a registry), so a thread never
  removes another thread's live temporary, also where POSIX byte-range locks (NFS) do not
  separate threads; it never opens those lock files either, since closing any descriptor of a
  file drops such a process's locks on it.
- Lock descriptors are not inherited by programs the process starts (Python's default); a child
  forked without exec (multiprocessing's fork) shares the lock until it exits.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import shutil
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from glob import escape as glob_escape
from pathlib import Path
from typing import Protocol

from engine.errors import FileAccessError, OutputExistsError, UnsupportedOptionError
from engine.processes import pid_alive

log = logging.getLogger(__name__)

MAX_NAME_BYTES = 255
"""The longest file name most file systems take (ext4, APFS, NTFS: 255 bytes or characters)."""
_RANDOM_PART_BYTES = 8
_RANDOM_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789_"
_TEMPORARY_MARK = ".partial-"
_WRITER_MARK = ".writer-"
_LOCK_SUFFIX = ".lock"
_NAME_TRIES = 100
_WINDOWS_LOCK_OFFSET = 4096
"""Where a writer's lock byte sits in its lock file on Windows: past its ``<pid> <host>`` line,
which a locked byte would make unreadable to others."""
_BUSY_WAIT_S = 1.0
"""How long a lock held by someone else may take to go (another job removing the same leftover,
a sidecar a moment from done) before the temporary counts as being written."""
_NO_LOCK_ERRNOS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL, errno.EBADF}
_HOST = socket.gethostname()
_NO_LINK_ERRNOS = {errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}


class TemporaryWatcher(Protocol):
    """Told of each temporary name created, and of each one gone (renamed into place or removed)."""

    def created(self, temporary: Path) -> None: ...

    def gone(self, temporary: Path) -> None: ...


_WATCHER: ContextVar[TemporaryWatcher | None] = ContextVar("chronoscope_temporary_watcher", default=None)


@contextlib.contextmanager
def watching_temporaries(watcher: TemporaryWatcher | None) -> Iterator[None]:
    """Within this block (on this thread), ``watcher`` hears of every temporary name made here
    (None: nobody does, e.g. for the watcher's own bookkeeping files)."""
    token = _WATCHER.set(watcher)
    try:
        yield
    finally:
        _WATCHER.reset(token)


def _tell_created(path: Path) -> None:
    watcher = _WATCHER.get()
    if watcher is not None:
        watcher.created(path)


def _tell_gone(path: Path) -> None:
    watcher = _WATCHER.get()
    if watcher is not None:
        watcher.gone(path)


def temporary_sibling(destination: Path, *, directory: bool = False) -> Path:
    """Create and return an unused temporary path next to ``destination`` (same file system).

    The name keeps the destination's suffix so that tools which pick a format by extension
    (PyAV, OTIO adapters) still recognise it. This process holds the temporary's writer lock
    (see the module doc) until it is renamed into place or removed through this module
    (``move_into_place``, ``move_without_replacing``, ``atomic_path``, ``remove_quietly``).
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    prefix = _temporary_prefix(destination)
    for _ in range(_NAME_TRIES):
        random_part = "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(_RANDOM_PART_BYTES))
        path = destination.parent / f"{prefix}{random_part}{destination.suffix}"
        writer = _WriterLock.create(_lock_path_of(path))
        if writer is None:
            continue  # the name is taken (or a sweep took its lock file): another name
        try:
            if directory:
                os.mkdir(path, 0o777)  # the process umask applies, as to any folder it makes
            else:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            writer.release()
            continue
        except BaseException:
            writer.release()
            raise
        with _OWN_LOCK:
            _OWN[_own_key(path)] = writer
        _tell_created(path)
        return path
    raise FileExistsError(errno.EEXIST, f"no free temporary name after {_NAME_TRIES} tries", str(destination))


def _temporary_prefix(destination: Path) -> str:
    """``.<stem>.partial-``, the stem cut short where needed so that the temporary's whole name
    (prefix, random part, suffix) and its lock file's stay within ``MAX_NAME_BYTES`` next to a long
    destination name."""
    longest_marks = max(len(_TEMPORARY_MARK), len(_WRITER_MARK) + len(_LOCK_SUFFIX))
    fixed = len(".") + longest_marks + _RANDOM_PART_BYTES + len(destination.suffix.encode())
    stem = destination.stem.encode("utf-8", "surrogateescape")[: max(MAX_NAME_BYTES - fixed, 1)]
    return f".{stem.decode('utf-8', 'ignore')}{_TEMPORARY_MARK}"


def _lock_path_of(temporary: Path) -> Path:
    """``.<stem>.partial-<random><suffix>`` -> ``.<stem>.writer-<random><suffix>.lock``."""
    head, _, tail = temporary.name.rpartition(_TEMPORARY_MARK)
    return temporary.with_name(f"{head}{_WRITER_MARK}{tail}{_LOCK_SUFFIX}")


def _temporary_of_lock(lock: Path) -> Path:
    """The inverse of ``_lock_path_of``."""
    head, _, tail = lock.name[: -len(_LOCK_SUFFIX)].rpartition(_WRITER_MARK)
    return lock.with_name(f"{head}{_TEMPORARY_MARK}{tail}")


def _own_key(path: Path) -> str:
    return os.path.normcase(os.path.realpath(path))


@dataclass
class _Writer:
    """Who writes a temporary that this process does not: ``pid`` and ``host`` as its lock file
    gives them (None where it gives none)."""

    pid: int | None
    host: str | None

    def describe(self) -> str:
        if self.pid is None:
            return "a process that has not named itself yet"
        where = "" if self.host in (None, _HOST) else f" on {self.host}"
        return f"process {self.pid}{where}"


class _WriterLock:
    """An open, locked lock file: held by a temporary's writer, or by a sweep that found the
    writer gone (and now removes the temporary). ``locked`` is False on a file system that takes
    no locks, where the ``<pid> <host>`` line is all there is."""

    def __init__(self, path: Path, handle: int, locked: bool):
        self.path = path
        self.handle = handle
        self.locked = locked

    @classmethod
    def create(cls, path: Path) -> _WriterLock | None:
        """A new lock file at ``path``, locked, naming this process; None when the name is taken,
        or when a sweep took the (still empty) lock file before it could be locked."""
        try:
            handle = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return None
        try:
            locked = _try_lock(handle)
            if locked is False or not _same_file(handle, path):
                os.close(handle)
                return None
            if locked is None:
                log.warning(
                    "the file system of %s takes no file locks: a render there is told to be running "
                    "by its pid and host only",
                    path.parent,
                )
            os.write(handle, f"{os.getpid()} {_HOST}\n".encode("utf-8", "surrogateescape"))
        except BaseException:
            os.close(handle)
            raise
        return cls(path, handle, locked is True)

    def release(self) -> None:
        """Unlock and remove the lock file (on POSIX removed while still held, so that no one
        locks the file being removed; Windows removes no open file, so it is closed first)."""
        if os.name == "nt":
            if self.locked:
                with contextlib.suppress(OSError):
                    _unlock_windows(self.handle)
            os.close(self.handle)
            with contextlib.suppress(OSError):
                os.unlink(self.path)  # a sweep holding it open removes it in turn
        else:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(self.handle)


_OWN_LOCK = threading.Lock()
_OWN: dict[str, _WriterLock] = {}
"""The temporaries this process writes, by real path, with their held lock files."""


def _release_own(temporary: Path) -> None:
    """``temporary`` (renamed into place or removed) is no longer written: drop its lock."""
    with _OWN_LOCK:
        writer = _OWN.pop(_own_key(temporary), None)
    if writer is not None:
        writer.release()


def _is_own(temporary: Path) -> bool:
    with _OWN_LOCK:
        return _own_key(temporary) in _OWN


def _try_lock(handle: int) -> bool | None:
    """Lock the open lock file ``handle`` without waiting: True when locked, False when another
    process (or another descriptor) holds it, None when the file system takes no locks."""
    try:
        if os.name == "nt":
            import msvcrt

            os.lseek(handle, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if os.name != "nt" and error.errno in _NO_LOCK_ERRNOS:
            return None
        return False
    return True


def _unlock_windows(handle: int) -> None:
    import msvcrt

    os.lseek(handle, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
    msvcrt.locking(handle, msvcrt.LK_UNLCK, 1)


def _same_file(handle: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``handle`` (not removed or replaced since)."""
    try:
        status = os.stat(path)
    except OSError:
        return False
    opened = os.fstat(handle)
    return (status.st_dev, status.st_ino) == (opened.st_dev, opened.st_ino)


def _read_writer(handle: int) -> _Writer:
    """The ``<pid> <host>`` line of an open lock file."""
    try:
        os.lseek(handle, 0, os.SEEK_SET)
        words = os.read(handle, 512).decode("utf-8", "surrogateescape").split()
    except OSError:
        words = []
    pid = int(words[0]) if words and words[0].isdigit() else None
    host = words[1] if len(words) > 1 else None
    return _Writer(pid, host)


def _open_lock_file(path: Path) -> int | None:
    """``path`` opened to be locked (read-only where another user's file allows no more), or None
    when it is not there."""
    try:
        return os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    except PermissionError:
        try:
            return os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None


def _claim(temporary: Path) -> _WriterLock | _Writer | None:
    """Whether ``temporary`` may be removed as a leftover.

    - ``_Writer``: no; a live process (maybe this one) writes it.
    - ``_WriterLock``: yes; its writer is gone and the returned lock, now held here, keeps a second
      sweep off it until the temporary is removed and the lock released (``release``).
    - None: yes; it has no lock file (a write by an older version), or its writer has just
      finished with it (renamed it into place or removed it).
    """
    if _is_own(temporary):
        return _Writer(os.getpid(), _HOST)
    lock_path = _lock_path_of(temporary)
    deadline = time.monotonic() + _BUSY_WAIT_S
    while True:
        handle = _open_lock_file(lock_path)
        if handle is None:
            return None
        locked = _try_lock(handle)
        if locked is True:
            if _same_file(handle, lock_path):
                return _WriterLock(lock_path, handle, locked=True)
            os.close(handle)  # its writer released it as this looked: it is done with the temporary
            return None
        writer = _read_writer(handle)
        if locked is None and writer.host == _HOST and writer.pid is not None:
            # no locks here: by pid (this process's own temporaries are all in ``_OWN``)
            if writer.pid == os.getpid() or not pid_alive(writer.pid):
                return _WriterLock(lock_path, handle, locked=False)
        os.close(handle)
        if locked is None or time.monotonic() >= deadline:
            return writer
        time.sleep(0.05)


def move_into_place(temporary: Path, destination: Path, *, replace: bool = True) -> None:
    """Rename finished ``temporary`` to ``destination``. With ``replace=False`` an existing
    destination is never replaced, even one that appeared a moment ago: ``FileExistsError``
    (how: ``move_without_replacing``). The temporary is left for the caller either way on error."""
    if replace:
        os.replace(temporary, destination)
    else:
        _rename_if_free(Path(temporary), Path(destination))
    _release_own(Path(temporary))


def move_without_replacing(temporary: Path, destination: Path) -> None:
    """Move finished ``temporary`` (a file or a folder) to ``destination`` only if nothing is there,
    not even a file that appeared there a moment ago (another render, the user copying a file in).

    Refused: ``OutputExistsError`` naming ``destination``; the file there is left as it is, byte
    for byte. On that or any other error (the ``OSError`` as raised) the temporary is removed.

    How "only if nothing is there" holds:

    - POSIX, a file: ``os.link(temporary, destination)``, which fails with ``FileExistsError`` in
      the same step as it looks, then the temporary name is unlinked.
    - POSIX, a file system without hard links (EPERM, EXDEV, ENOTSUP: FAT, exFAT, some network
      shares): best effort, logged as a WARNING: it checks that nothing is there, then renames; a
      file created between the two steps (a moment, not the length of a render) is replaced.
    - POSIX, a folder (PNG frames; folders take no hard links): it checks, then renames; the rename
      itself refuses a file or a folder with anything in it, so only an empty folder made between
      the two steps could be replaced.
    - Windows: ``os.rename``, which refuses an existing destination by itself.
    """
    temporary, destination = Path(temporary), Path(destination)
    try:
        _rename_if_free(temporary, destination)
    except FileExistsError:
        remove_quietly(temporary)
        raise OutputExistsError(
            f"{destination} appeared while it was being written (another job or program wrote that "
            "name meanwhile); it is left as it is and this result was not kept: move that file "
            "away or choose another name, then run again"
        ) from None
    except OSError:
        remove_quietly(temporary)
        raise
    _release_own(temporary)
    _tell_gone(temporary)


def _rename_if_free(temporary: Path, destination: Path) -> None:
    """Rename ``temporary`` to ``destination`` unless something is there (``FileExistsError``);
    see ``move_without_replacing`` for how, on each system."""
    if os.name == "nt":
        os.rename(temporary, destination)  # never replaces: FileExistsError
        return
    if temporary.is_dir():
        _check_then_rename(temporary, destination)
        return
    try:
        os.link(temporary, destination)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in _NO_LINK_ERRNOS:
            raise
        log.warning(
            "no hard links in %s (%s): checking that %s is free, then renaming (a file created "
            "there between the two would be replaced)",
            destination.parent,
            error.strerror or error,
            destination.name,
        )
        _check_then_rename(temporary, destination)
        return
    try:
        temporary.unlink()
    except OSError as error:  # the result is in place; the extra name is swept up later
        log.warning("%s is in place, but its temporary name %s stays: %s", destination, temporary, error)


def _check_then_rename(temporary: Path, destination: Path) -> None:
    """POSIX without a hard link: refuse anything at ``destination`` (a dangling symbolic link too),
    then rename; a rename that finds something there after all is refused as well."""
    if os.path.lexists(destination):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(destination))
    try:
        os.rename(temporary, destination)
    except OSError as error:
        taken = (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR)
        if error.errno in taken and os.path.lexists(destination):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(destination)) from None
        raise


def remove_leftover_temporaries(destination: Path, *, output: Path | None = None) -> None:
    """Remove temporaries that a killed writer of ``destination`` left beside it (the names
    ``temporary_sibling`` gives), with their lock files: nothing is renamed from them any more.

    One that a live process is writing is not a leftover: ``OutputExistsError`` naming that
    process and ``output`` (what the caller is about to write; default ``destination``), before
    anything of it is touched. See the module doc for how a writer is told from a leftover.
    """
    destination = Path(destination)
    if not destination.parent.is_dir():
        return
    prefix = _temporary_prefix(destination)
    # the suffix too: x.mov's temporaries are not x.mp4's, which may be written at this moment
    pattern = f"{glob_escape(prefix)}*{glob_escape(destination.suffix)}"
    stem_part = prefix[: -len(_TEMPORARY_MARK)]
    lock_files = f"{glob_escape(stem_part + _WRITER_MARK)}*{glob_escape(destination.suffix + _LOCK_SUFFIX)}"
    for stale in sorted(destination.parent.glob(pattern)):
        claim = _claim(stale)
        if isinstance(claim, _Writer):
            raise OutputExistsError(_busy_message(output or destination, claim, stale))
        log.info("removing %s, left by an interrupted write", stale)
        _remove_claimed(stale, claim)
    for lock in sorted(destination.parent.glob(lock_files)):
        temporary = _temporary_of_lock(lock)
        if os.path.lexists(temporary):
            continue  # its temporary appeared since the sweep above: a writer that just began
        claim = _claim(temporary)
        if isinstance(claim, _WriterLock) and not os.path.lexists(temporary):
            log.info("removing %s, left by an interrupted write", lock)
            claim.release()
        elif isinstance(claim, _WriterLock):
            os.close(claim.handle)


def live_writer(destination: Path) -> str | None:
    """Who is writing ``destination`` now (``process 4242``), or None: whether a temporary of it
    (``temporary_sibling``) has a writer that still runs, as ``remove_leftover_temporaries`` tells
    it, but without waiting and without removing anything (a client choosing a free name asks it).
    """
    destination = Path(destination)
    if not destination.parent.is_dir():
        return None
    prefix = _temporary_prefix(destination)
    pattern = f"{glob_escape(prefix)}*{glob_escape(destination.suffix)}"
    for temporary in sorted(destination.parent.glob(pattern)):
        if _is_own(temporary):
            return _Writer(os.getpid(), _HOST).describe()
        handle = _open_lock_file(_lock_path_of(temporary))
        if handle is None:
            continue  # no lock file: a write by an older version, or one that just finished
        try:
            locked = _try_lock(handle)  # a lock taken here goes with the descriptor
            writer = _read_writer(handle)
        finally:
            os.close(handle)
        if locked is False:
            return writer.describe()
        if locked is None and (writer.host != _HOST or (writer.pid is not None and pid_alive(writer.pid))):
            return writer.describe()
    return None


def _busy_message(output: Path, writer: _Writer, temporary: Path) -> str:
    message = (
        f"another render is writing {output} now ({writer.describe()}); wait for it or choose another name"
    )
    if writer.host not in (None, _HOST):
        message += f" (if nothing runs on {writer.host} any more, remove {temporary})"
    return message


def _remove_claimed(temporary: Path, claim: _WriterLock | None) -> None:
    """Remove ``temporary``, whose writer is gone, then release the lock that ``_claim`` took."""
    try:
        _remove(temporary)
    except OSError as error:
        log.warning("could not remove temporary %s: %s", temporary, error)
        return
    finally:
        if claim is not None:
            claim.release()
    _tell_gone(temporary)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def remove_quietly(path: Path) -> None:
    """Remove a file or folder that may or may not exist; log, never raise.

    A temporary of this process is removed with its lock. Another process's temporary is removed
    only when its writer is gone; one still being written is left, with a WARNING."""
    path = Path(path)
    claim = None
    if _is_own(path):
        try:
            _remove(path)
        except OSError as error:
            log.warning("could not remove temporary %s: %s", path, error)
            return
        finally:
            _release_own(path)
        _tell_gone(path)
        return
    if _TEMPORARY_MARK in path.name:
        claim = _claim(path)
        if isinstance(claim, _Writer):
            log.warning("%s is not removed: %s is writing it", path, claim.describe())
            return
    _remove_claimed(path, claim)


def check_plain_destination(destination: Path, *, inputs: Iterable[Path] = ()) -> None:
    """Refuse a file destination that writing through a temporary name would destroy: a device,
    pipe or socket (the rename replaces the node itself; /dev/null became a file), a folder, or
    one of ``inputs`` (a report written over the clip it describes)."""
    destination = Path(destination)
    try:
        status = os.stat(destination)
    except OSError:
        return  # not there (or unreadable: the write says why)
    if stat.S_ISDIR(status.st_mode):
        raise UnsupportedOptionError(f"{destination} is a folder; name a file in it")
    if not stat.S_ISREG(status.st_mode):
        raise UnsupportedOptionError(
            f"{destination} is not a regular file (a device, pipe or socket); name a file to write"
        )
    for source in inputs:
        with contextlib.suppress(OSError):
            if os.path.samefile(source, destination):
                raise UnsupportedOptionError(f"{destination} is the input {source} itself; write elsewhere")


@contextlib.contextmanager
def atomic_path(destination: Path, *, directory: bool = False, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path; when the block finishes without error, move it to ``destination``.

    If the block raises, the temporary is removed and the exception propagates. An existing
    destination is replaced only after the new content is complete, and with ``replace=False``
    never: a file that appeared at ``destination`` while the block ran (another job writing the
    same name) stays, the new content is removed, and ``OutputExistsError`` says so.
    """
    destination = Path(destination)
    if not directory:
        check_plain_destination(destination)
    temporary = temporary_sibling(destination, directory=directory)
    try:
        yield temporary
    except BaseException:
        remove_quietly(temporary)
        raise
    if not replace:
        move_without_replacing(temporary, destination)
        return
    try:
        if directory and destination.exists():
            with watching_temporaries(None):  # it holds the old content: never to be swept up
                backup = temporary_sibling(destination, directory=True)
            backup.rmdir()
            destination.rename(backup)
            temporary.rename(destination)
            remove_quietly(backup)
        else:
            move_into_place(temporary, destination)
    except OSError:
        remove_quietly(temporary)
        raise
    _release_own(temporary)
    _tell_gone(temporary)


def write_text_atomic(destination: Path, text: str, encoding: str = "utf-8", *, replace: bool = True) -> None:
    """Write ``text`` to ``destination`` through a temporary name; ``replace`` as ``atomic_path``'s."""
    with atomic_path(destination, replace=replace) as temporary:
        temporary.write_text(text, encoding=encoding)


def check_output_folder(
    output: Path, *, what: str, hint: str = "choose an output folder you can write to", a_file: bool = False
) -> None:
    """Refuse, before any work, an ``output`` whose folder cannot be written (read-only, a virtual
    file system such as /proc, no permission, a file where a folder should be): a temporary is
    made there and removed at once, so the error names the folder, not the hidden temporary the
    work would fail on at its end. A folder still to be made is judged by the nearest one that
    exists (a folder is made and removed there; none is left behind). ``what`` names the result
    ("repaired clip"). ``a_file``: the result is one file, so an ``output`` that is a folder (or a
    device, pipe or socket) is refused too (``check_plain_destination``); without it a folder may
    stand there (a PNG sequence replaces one)."""
    if a_file:
        check_plain_destination(output)
    output = Path(output).absolute()
    folder = output.parent
    where = folder
    try:
        if folder.is_dir():
            with watching_temporaries(None):
                remove_quietly(temporary_sibling(output))
            return
        where = next((parent for parent in (folder, *folder.parents) if parent.exists()), folder)
        if not where.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(where))
        os.rmdir(tempfile.mkdtemp(prefix=".chronoscope-folder-check-", dir=where))  # it can hold folders
    except OSError as error:
        reason = error.strerror or error
        raise FileAccessError(f"cannot write the {what} into {where}: {reason}; {hint}") from None
