"""Writing files so that a reader never sees half of one.

Everything Chronoscope writes goes to a temporary name in the destination's folder and is renamed
into place only once complete. On failure the temporary file is removed and whatever stood at the
destination before is untouched. A process killed mid-write cannot remove it: work that may be
killed (an engine job) watches its temporaries (``watching_temporaries``) so that they can be
removed later (the engine does it when it next starts).

Where nothing may be replaced (``atomic_path(..., replace=False)``), the final rename is
``move_without_replacing``: a file that appeared at the destination while the new one was written
stays, and the new one is dropped.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from glob import escape as glob_escape
from pathlib import Path
from typing import Protocol

from engine.errors import OutputExistsError, UnsupportedOptionError

log = logging.getLogger(__name__)

_UMASK_LOCK = threading.Lock()
MAX_NAME_BYTES = 255
"""The longest file name most file systems take (ext4, APFS, NTFS: 255 bytes or characters)."""
_RANDOM_PART_BYTES = 8
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
    (PyAV, OTIO adapters) still recognise it.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    prefix = _temporary_prefix(destination)
    if directory:
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=destination.parent))
        folder.chmod(0o777 & ~_process_umask())
        _tell_created(folder)
        return folder
    handle, name = tempfile.mkstemp(prefix=prefix, suffix=destination.suffix, dir=destination.parent)
    os.close(handle)
    path = Path(name)
    path.chmod(0o666 & ~_process_umask())
    _tell_created(path)
    return path


def _temporary_prefix(destination: Path) -> str:
    """``.<stem>.partial-``, the stem cut short where needed so that the temporary's whole name
    (prefix, random part, suffix) stays within ``MAX_NAME_BYTES`` next to a long destination name."""
    fixed = len(".".encode()) + len(".partial-") + _RANDOM_PART_BYTES + len(destination.suffix.encode())
    stem = destination.stem.encode("utf-8", "surrogateescape")[: max(MAX_NAME_BYTES - fixed, 1)]
    return f".{stem.decode('utf-8', 'ignore')}.partial-"


def move_into_place(temporary: Path, destination: Path, *, replace: bool = True) -> None:
    """Rename finished ``temporary`` to ``destination``. With ``replace=False`` an existing
    destination is never replaced, even one that appeared a moment ago: ``FileExistsError``
    (how: ``move_without_replacing``). The temporary is left for the caller either way on error."""
    if replace:
        os.replace(temporary, destination)
        return
    _rename_if_free(Path(temporary), Path(destination))


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


def _process_umask() -> int:
    """The process umask, so temporaries get the mode a plain ``open(path, "w")`` would give.

    ``mkstemp``/``mkdtemp`` create private (0600/0700) entries; outputs meant for editors and
    pipelines must not end up private just because they went through a temporary name. Secrets
    (the engine's connection file) are written with their own explicit mode instead.
    Reading the umask means setting it, so do it under a lock: threads (engine workers) write
    files concurrently.
    """
    with _UMASK_LOCK:
        umask = os.umask(0o077)
        os.umask(umask)
    return umask


def remove_leftover_temporaries(destination: Path) -> None:
    """Remove temporaries that a killed writer of ``destination`` left beside it (the names
    ``temporary_sibling`` gives): nothing is renamed from them any more."""
    destination = Path(destination)
    if not destination.parent.is_dir():
        return
    # the suffix too: x.mov's temporaries are not x.mp4's, which may be written at this moment
    pattern = f"{glob_escape(_temporary_prefix(destination))}*{glob_escape(destination.suffix)}"
    for stale in destination.parent.glob(pattern):
        log.info("removing %s, left by an interrupted write", stale)
        remove_quietly(stale)


def remove_quietly(path: Path) -> None:
    """Remove a file or folder that may or may not exist; log, never raise."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except OSError as error:
        log.warning("could not remove temporary %s: %s", path, error)
        return
    _tell_gone(path)


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
    _tell_gone(temporary)


def write_text_atomic(destination: Path, text: str, encoding: str = "utf-8", *, replace: bool = True) -> None:
    """Write ``text`` to ``destination`` through a temporary name; ``replace`` as ``atomic_path``'s."""
    with atomic_path(destination, replace=replace) as temporary:
        temporary.write_text(text, encoding=encoding)
