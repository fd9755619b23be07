"""Large frames through a memory-mapped file instead of the socket: the frame exchange.

A 1080p RGB pair, its in-between frame and a float32 risk map make about 26 MB per ``synthesize``.
Sent as message buffers they are hashed by HMAC-SHA256 on both sides and copied through the
socket. Through the exchange, the client writes its frames into a file it created in the engine's
private exchange folder, and the signed message names the file, the offsets, shapes and dtypes;
the engine reads the frames from it and writes its results into the region the request names.

Why the pixels need no digest of their own: the exchange folder sits in the runtime folder, is
created 0o700, and each exchange file is created 0o600 by its client. Whoever can write such a
file is this user (or root) and can read the connection file and its key beside it, so a digest
of the pixels would stop no one that the signature does not already stop. The signature still
covers everything the engine acts on: which file, where in it, what shape and dtype. The engine
opens only plain files directly in its exchange folder, owned by its own user and closed to
others, with a name of the form ``<letters, digits, - or _>.frames``.

Descriptors (in the request content, next to the buffer descriptors of ``protocol``)::

    {"exchange": "c4242-1f2e.frames", "offset": 0, "shape": [1080, 1920, 3], "dtype": "uint8"}
    {"exchange": "c4242-1f2e.frames", "offset": 12441600, "capacity": 14515200}   # an output region
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ExchangeFileError, UnsupportedOptionError
from engine.server.connection import ensure_private_dir
from engine.server.protocol import ARRAY_DTYPES, check_shape, quote

log = logging.getLogger(__name__)

EXCHANGE_DIR_NAME = "frames"
EXCHANGE_SUFFIX = ".frames"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}\.frames$")
ALIGN_BYTES = 64


def align(offset: int) -> int:
    """``offset`` rounded up to the exchange's alignment (so every array starts on a cache line)."""
    return -(-offset // ALIGN_BYTES) * ALIGN_BYTES


def array_bytes(shape: list[int] | tuple[int, ...], dtype_name: str) -> int:
    return int(np.prod(shape, dtype=np.int64)) * ARRAY_DTYPES[dtype_name].itemsize


def dtype_name_of(array: np.ndarray) -> str:
    for name, dtype in ARRAY_DTYPES.items():
        if (array.dtype.kind, array.dtype.itemsize) == (dtype.kind, dtype.itemsize):
            return name
    raise UnsupportedOptionError(
        f"array dtype {array.dtype} cannot be sent; allowed: {', '.join(ARRAY_DTYPES)}"
    )


def is_descriptor(value: Any) -> bool:
    """Whether an array descriptor names the exchange (rather than a message buffer)."""
    return isinstance(value, dict) and "exchange" in value


def _owner_only(info: os.stat_result) -> bool:
    if os.name == "nt":
        return True
    return info.st_uid == os.getuid() and not info.st_mode & 0o077


def _whole_number(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UnsupportedOptionError(f"exchange {what} {quote(value)} is not a whole number of at least 0")
    return value


class ClientExchange:
    """A client's exchange file: created 0o600 in the engine's exchange folder, grown on demand.

    Not thread-safe by itself; the client uses it under its request lock, and the regions it
    hands out are valid until the next request.
    """

    def __init__(self, folder: Path, capacity_bytes: int):
        self.folder = Path(folder)
        self.name = f"c{os.getpid()}-{secrets.token_hex(6)}{EXCHANGE_SUFFIX}"
        self.path = self.folder / self.name
        self.capacity_bytes = 0
        self._handle: int | None = None
        self._map: mmap.mmap | None = None
        self._open(capacity_bytes)

    def _open(self, capacity_bytes: int) -> None:
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
        self._handle = os.open(self.path, flags, 0o600)
        try:
            os.ftruncate(self._handle, capacity_bytes)
            self._map = mmap.mmap(self._handle, capacity_bytes)
        except BaseException:
            self.close()
            raise
        self.capacity_bytes = capacity_bytes

    def intact(self) -> bool:
        """Whether the file is still this client's, whole: someone who shortened or replaced it
        would make the next write into the mapping raise SIGBUS in this process."""
        if self._handle is None:
            return False
        try:
            return os.fstat(self._handle).st_size >= self.capacity_bytes and self.path.exists()
        except OSError:
            return False

    def ensure(self, capacity_bytes: int) -> None:
        """Make room for ``capacity_bytes``; a larger file replaces the old one (under a new name),
        and a file that is no longer ``intact`` is replaced by a new one."""
        if not self.intact():
            log.warning("exchange file %s was shortened or removed; making a new one", self.path)
            capacity_bytes = max(capacity_bytes, self.capacity_bytes)
            self.capacity_bytes = 0
        if capacity_bytes <= self.capacity_bytes:
            return
        self.close()
        self.name = f"c{os.getpid()}-{secrets.token_hex(6)}{EXCHANGE_SUFFIX}"
        self.path = self.folder / self.name
        self._open(max(capacity_bytes, self.capacity_bytes * 2))

    def view(self, offset: int, shape: list[int] | tuple[int, ...], dtype_name: str) -> np.ndarray:
        count = int(np.prod(shape, dtype=np.int64))
        return np.frombuffer(self._map, ARRAY_DTYPES[dtype_name], count, offset).reshape(shape)

    def put(self, array: np.ndarray, offset: int) -> dict[str, Any]:
        """Copy ``array`` in at ``offset`` (unless it is that very region); return its descriptor."""
        name = dtype_name_of(array)
        target = self.view(offset, array.shape, name)
        already_there = (
            array.__array_interface__["data"][0] == target.__array_interface__["data"][0]
            and array.strides == target.strides
        )
        if not already_there:
            np.copyto(target, array, casting="same_kind")
        return {"exchange": self.name, "offset": offset, "shape": list(array.shape), "dtype": name}

    def read(self, descriptor: dict[str, Any]) -> np.ndarray:
        """A view of a region the engine wrote (valid until the next request)."""
        if descriptor.get("exchange") != self.name:
            raise UnsupportedOptionError(
                f"the engine answered with exchange {descriptor.get('exchange')!r}; "
                f"this client's is {self.name}"
            )
        shape, dtype_name = descriptor["shape"], descriptor["dtype"]
        offset = _whole_number(descriptor.get("offset"), "offset")
        if offset + array_bytes(shape, dtype_name) > self.capacity_bytes:
            raise UnsupportedOptionError(f"the engine named a region past the end of {self.name}")
        return self.view(offset, shape, dtype_name)

    def close(self) -> None:
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:
                log.debug("exchange %s still has views in use; it is unmapped when they go", self.name)
            self._map = None
        if self._handle is not None:
            os.close(self._handle)
            self._handle = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as error:  # Windows: the engine still maps it; the next engine start removes it
            log.warning("exchange file %s cannot be removed yet: %s", self.path, error)


class EngineExchange:
    """The engine's side: opens the files clients name (checked), copies inputs out, writes outputs.

    The engine never maps a client's file: a client that shortened its file while the engine read
    or wrote a mapping of it would raise SIGBUS, which ends the whole engine. It reads with
    ``pread`` and writes with ``pwrite`` instead, each from a file opened for that request:
    a shortened file then gives an error reply (``ExchangeFileError``) and nothing else. The
    input frames are copied out when the request is checked, before the synthesis that may take
    seconds. (Windows has no ``pread``; it refuses to shorten a mapped file, so there the file is
    mapped for each copy and unmapped at once.)
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    @contextlib.contextmanager
    def _open(self, name: Any, inode: int | None = None) -> Iterator[tuple[int, os.stat_result]]:
        """The checked file ``name`` in the exchange folder, opened for reading and writing; with
        ``inode``, refused unless it is still that file."""
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise UnsupportedOptionError(
                f"exchange {quote(name)} is not a file name of the form <letters, digits, - or _>.frames"
            )
        path = self.folder / name
        try:
            info = path.lstat()
        except FileNotFoundError:
            raise UnsupportedOptionError(f"exchange file {name} is not in {self.folder}") from None
        if not stat.S_ISREG(info.st_mode) or not _owner_only(info):
            raise UnsupportedOptionError(
                f"exchange file {name} is not a plain file owned by this user and closed to others"
            )
        flags = os.O_RDWR | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            handle = os.open(path, flags)
        except OSError as error:
            raise UnsupportedOptionError(f"exchange file {name} cannot be opened: {error.strerror}") from None
        try:
            opened = os.fstat(handle)
            if opened.st_ino != info.st_ino or (inode is not None and opened.st_ino != inode):
                raise ExchangeFileError(f"exchange file {name} was replaced while the engine used it")
            yield handle, opened
        finally:
            os.close(handle)

    def read(self, descriptor: dict[str, Any]) -> np.ndarray:
        """A read-only copy of an input array the client placed in its exchange file."""
        shape, dtype_name = descriptor.get("shape"), descriptor.get("dtype")
        if not isinstance(dtype_name, str) or dtype_name not in ARRAY_DTYPES:
            raise UnsupportedOptionError(
                f"array dtype {quote(dtype_name)} is not allowed; allowed: {', '.join(ARRAY_DTYPES)}"
            )
        check_shape(shape)
        offset = _whole_number(descriptor.get("offset"), "offset")
        needed = array_bytes(shape, dtype_name)
        name = descriptor.get("exchange")
        with self._open(name) as (handle, info):
            if offset + needed > info.st_size:
                raise UnsupportedOptionError(
                    f"exchange region at {offset} of {needed} bytes runs past the end of "
                    f"{name} ({info.st_size} bytes)"
                )
            array = np.empty(shape, ARRAY_DTYPES[dtype_name])
            _read_into(handle, array, offset, name)
        array.flags.writeable = False
        return array

    def writer(self, region: Any) -> OutputRegion:
        """Where the engine writes its answers: a region the request names, checked against its file."""
        if not isinstance(region, dict):
            raise UnsupportedOptionError(
                f"output region {quote(region)} is not an object with exchange, offset, capacity"
            )
        name = region.get("exchange")
        offset = _whole_number(region.get("offset"), "offset")
        capacity = _whole_number(region.get("capacity"), "capacity")
        with self._open(name) as (_, info):
            if offset + capacity > info.st_size:
                raise UnsupportedOptionError(
                    f"output region at {offset} of {capacity} bytes runs past the end of {name}"
                )
        return OutputRegion(self, name, info.st_ino, offset, capacity)

    def close(self) -> None:
        """Nothing stays open between requests; kept for the engine's clean-up."""


def _read_into(handle: int, array: np.ndarray, offset: int, name: str) -> None:
    target = memoryview(array).cast("B")
    if not hasattr(os, "preadv"):  # Windows: a mapped file cannot be shortened there
        with mmap.mmap(handle, 0, access=mmap.ACCESS_READ) as mapped:
            if offset + target.nbytes > len(mapped):
                raise ExchangeFileError(f"exchange file {name} was shortened while the engine read it")
            target[:] = mapped[offset : offset + target.nbytes]
        return
    done = 0
    while done < target.nbytes:
        got = os.preadv(handle, [target[done:]], offset + done)
        if got <= 0:
            raise ExchangeFileError(
                f"exchange file {name} was shortened while the engine read it "
                f"({offset + done} of {offset + target.nbytes} bytes there); send the frames again"
            )
        done += got


def _write_from(handle: int, data: memoryview, offset: int, name: str) -> None:
    if os.fstat(handle).st_size < offset + data.nbytes:
        raise ExchangeFileError(
            f"exchange file {name} was shortened while the engine worked; its answer has no room there"
        )
    if not hasattr(os, "pwrite"):  # Windows: a mapped file cannot be shortened there
        with mmap.mmap(handle, 0) as mapped:
            mapped[offset : offset + data.nbytes] = data
        return
    done = 0
    while done < data.nbytes:
        done += os.pwrite(handle, data[done:], offset + done)


class OutputRegion:
    """Arrays written one after another into a client's output region."""

    def __init__(self, exchange: EngineExchange, name: str, inode: int, offset: int, capacity: int):
        self._exchange = exchange
        self.name = name
        self._inode = inode
        self.capacity = capacity
        self._next = offset
        self._end = offset + capacity

    def put(self, array: np.ndarray) -> dict[str, Any]:
        dtype_name = dtype_name_of(array)
        offset = align(self._next)
        needed = array_bytes(array.shape, dtype_name)
        if offset + needed > self._end:
            raise UnsupportedOptionError(
                f"the output region of {self.name} is too small: "
                f"{offset + needed - self._end} more bytes needed"
            )
        wire = np.ascontiguousarray(array, dtype=ARRAY_DTYPES[dtype_name])
        with self._exchange._open(self.name, self._inode) as (handle, _):
            _write_from(handle, memoryview(wire).cast("B"), offset, self.name)
        self._next = offset + needed
        return {"exchange": self.name, "offset": offset, "shape": list(array.shape), "dtype": dtype_name}


def exchange_dir(runtime_dir: Path) -> Path:
    """The private folder (0o700) for exchange files, inside the runtime folder."""
    return ensure_private_dir(Path(runtime_dir) / EXCHANGE_DIR_NAME, "the frames clients send it")


def remove_orphans(folder: Path, pid_alive) -> int:
    """Remove exchange files left by clients that died (their pid is in the name); return how many."""
    removed = 0
    for path in Path(folder).glob(f"c*{EXCHANGE_SUFFIX}"):
        match = re.match(r"^c(\d+)-", path.name)
        if match and not pid_alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    if removed:
        log.info("removed %d exchange files of clients that are gone", removed)
    return removed
