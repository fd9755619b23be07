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
``requested_output`` lets them pass.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from engine.errors import OutputExistsError, UnsupportedOptionError
from engine.fsutil import move_into_place, remove_quietly

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


def requested_overwrite(content: dict[str, Any]) -> bool:
    """The request's ``overwrite`` option (absent: false)."""
    value = content.get("overwrite", False)
    if not isinstance(value, bool):
        raise UnsupportedOptionError(f"overwrite = {value!r}; give true or false")
    return value


def requested_output(content: dict[str, Any], key: str = "output") -> Path:
    """The destination the request names under ``key``, checked; refuses what it may not replace."""
    value = content.get(key)
    if not isinstance(value, str) or not value:
        raise UnsupportedOptionError(f"{key} must name the file to write (an absolute path), got {value!r}")
    path = Path(value)
    if not path.is_absolute():
        raise UnsupportedOptionError(
            f"{key} {value!r} is relative; the engine runs elsewhere, give an absolute path"
        )
    if not path.parent.is_dir():
        raise UnsupportedOptionError(f"{key} {value!r}: folder {path.parent} does not exist")
    if path.is_dir():
        raise UnsupportedOptionError(f"{key} {value!r} is a folder; name a file in it")
    if path.exists() and not requested_overwrite(content) and str(path) not in _own_outputs.get():
        raise OutputExistsError(f"{key} {value!r} exists; set overwrite to true to replace it")
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
