"""Where jobs may write: only the paths a request names, never over a file unless it says so.

A job that writes files takes each destination from its request with ``requested_output`` (an
absolute path; an existing file is refused unless the request's ``overwrite`` is true) when the
request is checked, before it is queued. It writes through ``JobContext.output`` (engine.server.jobs),
which uses ``publish``: the content goes to a temporary name beside the destination, recorded in
the job journal first, so that an engine killed mid-write leaves no half-written file at the
destination and the restarted engine removes the temporary one. Without ``overwrite`` the final
rename cannot replace a file that appeared meanwhile: it is a hard link, which fails on an
existing name.

A job run again under its id (to resume it) may replace the files its own earlier attempts
finished: while the engine checks such a request, ``own_outputs`` holds them, and
``requested_output`` lets them pass (``is_own_output`` asks the same of any path).

``requested_output`` also refuses, before anything is queued, what would fail only when the job
writes: a NUL in the name, a name the file system cannot hold, and a folder the engine cannot
write in (no permission, a read-only or pseudo file system such as ``/proc``): it creates and
removes a hidden probe file there (``check_writable_folder``).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from engine.errors import FileAccessError, OutputExistsError, RequestValueError, UnsupportedOptionError
from engine.fsutil import move_into_place, remove_quietly
from engine.server.protocol import quote

_own_outputs: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "own_outputs", default=frozenset()
)


@contextlib.contextmanager
def own_outputs(paths: Iterable[str]) -> Iterator[None]:
    """While checking a rerun of a job: the files its earlier attempts wrote, which it may replace."""
    token = _own_outputs.set(frozenset(str(Path(path)) for path in paths))
    try:
        yield
    finally:
        _own_outputs.reset(token)


def is_own_output(path: Path | str) -> bool:
    """Whether ``path`` is a file an earlier attempt of the job being checked wrote (``own_outputs``)."""
    return str(Path(path)) in _own_outputs.get()


def requested_overwrite(content: dict[str, Any]) -> bool:
    """The request's ``overwrite`` option (absent: false)."""
    value = content.get("overwrite", False)
    if not isinstance(value, bool):
        raise UnsupportedOptionError(f"overwrite = {quote(value)}; give true or false")
    return value


def absolute_path(value: Any, key: str, what: str = "a file") -> Path:
    """The absolute path a request names under ``key``: text, no NUL, not relative."""
    if not isinstance(value, str) or not value:
        raise UnsupportedOptionError(f"{key} must name {what} (an absolute path), got {quote(value)}")
    if "\x00" in value:
        raise RequestValueError(f"{key} {quote(value)} holds a NUL character, which no path may hold")
    path = Path(value)
    if not path.is_absolute():
        raise UnsupportedOptionError(
            f"{key} {quote(value)} is relative; the engine runs elsewhere, give an absolute path"
        )
    return path


def check_writable_folder(folder: Path, key: str) -> None:
    """Refuse a ``folder`` the engine cannot create files in (it tries: a hidden probe file)."""
    try:
        handle, probe = tempfile.mkstemp(prefix=".chronoscope-probe-", dir=folder)
    except OSError as error:
        raise FileAccessError(
            f"{key}: the engine cannot write in folder {folder}: {error.strerror or error}; "
            "name a folder you can write in"
        ) from None
    os.close(handle)
    remove_quietly(Path(probe))


def requested_output(content: dict[str, Any], key: str = "output") -> Path:
    """The destination the request names under ``key``, checked; refuses what it may not replace."""
    value = content.get(key)
    path = absolute_path(value, key, "the file to write")
    try:
        if path.parent.exists() and not path.parent.is_dir():
            raise UnsupportedOptionError(
                f"{key} {quote(value)}: {path.parent} is a file, not a folder; name a file in a folder"
            )
        if not path.parent.is_dir():
            raise UnsupportedOptionError(f"{key} {quote(value)}: folder {path.parent} does not exist")
        if path.is_dir():
            raise UnsupportedOptionError(f"{key} {quote(value)} is a folder; name a file in it")
        exists = path.exists() or path.is_symlink()
    except OSError as error:  # a name too long, a folder that cannot be searched
        raise FileAccessError(f"{key} {quote(value)} cannot be used: {error.strerror or error}") from None
    if exists and not requested_overwrite(content) and not is_own_output(path):
        raise OutputExistsError(f"{key} {quote(value)} exists; set overwrite to true to replace it")
    check_writable_folder(path.parent, key)
    return path


def publish(temporary: Path, destination: Path, *, overwrite: bool) -> None:
    """Move a finished temporary file to ``destination``; without ``overwrite``, never replace one."""
    try:
        move_into_place(temporary, destination, replace=overwrite)
    except FileExistsError:
        remove_quietly(temporary)
        raise OutputExistsError(
            f"{destination} appeared while the job ran; set overwrite to true to replace it"
        ) from None
