"""Checks on timeline input before a third-party reader sees it.

OpenTimelineIO's JSON reader is C++ that recurses once per level of nesting and holds the Python
interpreter lock while it opens and reads a file. So, untrusted input being what it is:

- JSON nested deeper than ``MAX_JSON_DEPTH`` levels is refused (OTIO crashes the whole process on
  about 100 000 levels, where Python code would raise an error);
- a timeline path must name a regular file of at most ``MAX_TIMELINE_BYTES`` (a FIFO would block
  every thread of the engine, ``/dev/zero`` would fill the memory), and OTIO JSON is read here, in
  Python, then handed to OTIO as text.

A real timeline is nested a few dozen levels deep (timeline, stack, track, clip, reference,
metadata; a compound clip adds four); the limit leaves ample room.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from pathlib import Path

import numpy as np

from engine.errors import TimelineError

MAX_JSON_DEPTH = 256
MAX_TIMELINE_BYTES = 512 * 1024 * 1024
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_depth(text: str | bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text (brackets inside strings ignored)."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    codes = np.frombuffer(_JSON_STRING.sub(b'""', data), dtype=np.uint8)
    if codes.size == 0:
        return 0
    steps = np.isin(codes, (ord("["), ord("{"))).astype(np.int64)
    steps -= np.isin(codes, (ord("]"), ord("}")))
    return int(np.cumsum(steps).max(initial=0))


def check_json_depth(text: str | bytes, source: str) -> None:
    """Raise ``TimelineError`` when ``text`` nests deeper than OTIO's reader can safely follow."""
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise TimelineError(
            f"{source} nests arrays and objects {depth} levels deep; a timeline needs a few dozen, "
            f"and more than {MAX_JSON_DEPTH} is refused"
        )


def require_timeline_file(path: Path) -> int:
    """Raise ``TimelineError`` unless ``path`` is a regular file of a readable size; its size."""
    try:
        status = os.stat(path)
    except OSError as error:
        raise TimelineError(f"{path} cannot be read: {error.strerror or error}") from None
    if stat.S_ISDIR(status.st_mode):
        raise TimelineError(f"{path} is a folder; a {path.suffix or 'timeline'} timeline is a file")
    if not stat.S_ISREG(status.st_mode):
        raise TimelineError(f"{path} is not a regular file (a device, pipe or socket); a timeline is a file")
    if status.st_size > MAX_TIMELINE_BYTES:
        raise TimelineError(
            f"{path} is {status.st_size / 2**20:.0f} MiB; timelines over {MAX_TIMELINE_BYTES // 2**20} MiB "
            "are refused"
        )
    return status.st_size


def read_otio_json_text(path: Path) -> str:
    """The text of a .otio file, checked (regular file, size, nesting) before OTIO parses it."""
    require_timeline_file(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise TimelineError(f"{path} cannot be read: {error.strerror or error}") from None
    check_json_depth(data, str(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TimelineError(
            f"{path} is not UTF-8 text, so not OTIO JSON: {error.reason} at byte {error.start}"
        ) from None


def check_otioz(path: Path) -> None:
    """Check the timeline inside a .otioz bundle (its ``content.otio``) as ``read_otio_json_text`` does."""
    require_timeline_file(path)
    try:
        with zipfile.ZipFile(path) as bundle:
            info = bundle.getinfo("content.otio")
            if info.file_size > MAX_TIMELINE_BYTES:
                limit_mib = MAX_TIMELINE_BYTES // 2**20
                raise TimelineError(f"{path}: its content.otio unpacks to more than {limit_mib} MiB")
            data = bundle.read(info)
    except KeyError:
        raise TimelineError(f"{path} is not an OTIO bundle: it holds no content.otio") from None
    except (zipfile.BadZipFile, OSError) as error:
        raise TimelineError(f"{path} cannot be read as a .otioz bundle: {error}") from None
    check_json_depth(data, f"{path} (content.otio)")
