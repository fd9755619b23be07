"""Sources on object storage: fsspec URLs (``s3://``, ``gs://``, ``az://``, ``memory://``, ``file://``).

A source is text everywhere in the mining pipeline: an absolute local path, or a URL with a
protocol. Only that text crosses the wire to pool and Ray tasks; each task opens the source
itself.

- Listing and globbing of URLs go through fsspec (``expand_url``); ``file://`` URLs are listed
  through fsspec too, and their files become plain local paths (no copy is needed to read them).
- The content hash of a remote object (``remote_content_hash``) is taken from the stream:
  ``sha256(size, version, first MiB, last MiB)``, where the version is the store's ETag,
  generation or modification time when it reports one.
- Decoding needs a seekable local file (FFmpeg probes and seeks), so ``local_copy`` downloads the
  object into the cache folder under a temporary name, renames it when complete, and removes it
  after use, unless the cache policy keeps it (``--keep-cache``): then it is named by source and
  content hash and reused by later tasks and runs.
- A task that is killed (OOM killer, preemption, a pool worker dying) cannot remove its copy. So
  every copy that is not kept, and every partial download, carries its owner in its name
  (``{key}-{host}-{pid}-{tag}{suffix}``, ``.{key}.partial-{host}-{pid}-{tag}{suffix}``), and
  each ``local_copy`` of a URL first removes those of this host whose process is gone
  (``sweep_stale_copies``, logged at INFO). A copy left by a killed task therefore lives until
  the next task on that host. Processes that share a host name must share a process-id space
  (one machine, or one container); other hosts' entries in a shared cache folder are left alone.
  On Windows nothing is swept yet (``os.kill`` cannot test whether a process runs there).

Image sequences (one file per frame) are sources too, named ``/plates/A001.####.dpx`` (a run of
``#`` for the frame number, as editors write them, ``is_sequence_source``). They have no rate of
their own: ``local_copy`` reads one at the policy's ``sequence_rate`` through a sequence
description (``engine.media.sequence.describe``, in the user cache folder), which every reader of
media opens as the frames it names.

Protocols whose package is not installed (``s3fs``, ``gcsfs``, ``adlfs``) give
``StorageNotAvailableError`` naming the package; an unknown protocol gives the same error with
the protocols fsspec knows.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import Any

from engine.errors import MediaNotFoundError, StorageNotAvailableError, UnsupportedOptionError
from engine.fsutil import remove_quietly
from engine.media.sequence import IMAGE_SUFFIXES as SEQUENCE_IMAGE_SUFFIXES
from engine.media.sequence import describe, find_sequence
from engine.places import places
from engine.processes import pid_alive

log = logging.getLogger(__name__)

URL_PATTERN = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
LOCAL_PROTOCOLS = frozenset({"file", "local"})
PROCESS_LOCAL_PROTOCOLS = frozenset({"memory"})
CACHE_FOLDER = "mining-sources"
COPY_CHUNK_BYTES = 4 << 20
# A suffix FFmpeg may use to pick a demuxer; anything else (query strings, odd characters) is dropped.
SAFE_SUFFIX = re.compile(r"\.[a-z0-9]{1,16}")
# A copy that is not kept, or a partial download: its host and process are in the name.
OWNED_NAME = re.compile(
    r"^\.?[0-9a-f]{24}(?:\.partial)?-(?P<host>[A-Za-z0-9._]+)-(?P<pid>[0-9]+)-[0-9a-f]{8}(?:\.[a-z0-9]{1,16})?$"
)
VERSION_KEYS = (
    "ETag",
    "etag",
    "generation",
    "version_id",
    "VersionId",
    "mtime",
    "LastModified",
    "updated",
    "created",
)


@dataclass(frozen=True)
class CachePolicy:
    """How a source becomes a local file to decode: where remote sources are copied, whether the
    copies stay after use, and the rate image sequences are read at (``sequence_rate``, text such
    as "240" or "24000/1001"; None: sequences are not read).

    Plain values, so that it pickles for pools and Ray. ``cache_dir`` None means the user cache
    folder of this machine (``engine.places``), which on a cluster is each node's own.
    """

    cache_dir: str | None = None
    keep: bool = False
    sequence_rate: str | None = None

    def folder(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else places().cache_dir / CACHE_FOLDER


def url_protocol(source: str) -> str | None:
    """The protocol of a URL source (``s3`` for ``s3://bucket/key``); None for a local path."""
    match = URL_PATTERN.match(source)
    return match.group(1).lower() if match else None


def is_sequence_source(source: str) -> bool:
    """True for a source naming an image sequence: a local ``folder/PREFIX####SUFFIX`` (a run of
    ``#`` for the frame number, an image suffix) that is not itself a file."""
    if url_protocol(source) is not None:
        return False
    name = os.path.basename(source)
    return (
        "#" in name
        and os.path.splitext(name)[1].lower() in SEQUENCE_IMAGE_SUFFIXES
        and not os.path.lexists(source)
    )


def is_remote(source: str) -> bool:
    """True for a URL that is not the local file system (it must be copied to be decoded)."""
    protocol = url_protocol(source)
    return protocol is not None and protocol not in LOCAL_PROTOCOLS


def is_process_local(source: str) -> bool:
    """True for a URL whose store lives only in this process (``memory://``): no worker sees it."""
    return url_protocol(source) in PROCESS_LOCAL_PROTOCOLS


def filesystem(source: str) -> tuple[Any, str]:
    """The fsspec file system of a URL and the path inside it; clear errors for what cannot work."""
    try:
        import fsspec
        from fsspec.registry import known_implementations
    except ImportError:
        raise StorageNotAvailableError(
            f"{source!r}: URL sources need fsspec: pip install 'chronoscope[mining]' (or pip install fsspec)"
        ) from None
    protocol = url_protocol(source)
    if protocol is None:
        raise StorageNotAvailableError(f"{source!r} is not a URL (protocol://path)")
    try:
        fsspec.get_filesystem_class(protocol)
    except ImportError as error:
        raise StorageNotAvailableError(
            f"{source!r}: the {protocol}:// protocol needs a package that is not installed ({error}); "
            f"pip install {_package_for(protocol)}"
        ) from None
    except ValueError:
        known = ", ".join(sorted(known_implementations))
        raise StorageNotAvailableError(
            f"{source!r}: fsspec knows no protocol {protocol!r}; known protocols: {known}"
        ) from None
    fs, path = fsspec.core.url_to_fs(source)
    return fs, path


def _package_for(protocol: str) -> str:
    from fsspec.registry import known_implementations

    entry = known_implementations.get(protocol, {})
    return entry.get("class", protocol).split(".", 1)[0]


def _is_glob(text: str) -> bool:
    return any(character in text for character in "*?[")


def _as_source(fs: Any, path: str) -> str:
    """A listed entry as a source: a local path for the local file system, else a full URL."""
    if url_protocol(fs.unstrip_protocol(path)) in LOCAL_PROTOCOLS:
        return str(Path(path).resolve())
    return fs.unstrip_protocol(path)


def expand_url(source: str, video_suffixes: frozenset[str]) -> list[str]:
    """Every object a URL names: a glob's matches (any suffix), a prefix's videos (recursive), or
    the object itself. Sorted; raises ``MediaNotFoundError`` when it names nothing."""
    fs, path = filesystem(source)
    if _is_glob(path):
        matches = sorted(match for match in fs.glob(path) if fs.isfile(match))
        if not matches:
            raise MediaNotFoundError(f"the glob {source!r} matches no object")
        return [_as_source(fs, match) for match in matches]
    if fs.isdir(path):
        found = sorted(
            entry for entry in fs.find(path) if PurePosixPath(entry).suffix.lower() in video_suffixes
        )
        if not found:
            log.warning("%s holds no object with a video suffix", source)
        return [_as_source(fs, entry) for entry in found]
    if fs.isfile(path):
        return [_as_source(fs, path)]
    raise MediaNotFoundError(f"source {source!r} names no object, prefix or glob match")


def read_text(source: str) -> str:
    """A small text object (a file list) through fsspec."""
    fs, path = filesystem(source)
    if not fs.isfile(path):
        raise MediaNotFoundError(f"file list {source} not found")
    with fs.open(path, "rb") as handle:
        return handle.read().decode("utf-8")


def remote_content_hash(source: str, edge_bytes: int, prefix: str) -> str:
    """``sha256(size, version, first edge_bytes, last edge_bytes)`` of an object, read from its stream."""
    fs, path = filesystem(source)
    info = fs.info(path)
    size = int(info.get("size") or 0)
    version = next((str(info[key]) for key in VERSION_KEYS if info.get(key) is not None), "")
    digest = hashlib.sha256()
    digest.update(f"{size}:{version}:".encode())
    with fs.open(path, "rb") as handle:
        digest.update(handle.read(edge_bytes))
        if size > edge_bytes:
            handle.seek(max(edge_bytes, size - edge_bytes))
            digest.update(handle.read(edge_bytes))
    return prefix + digest.hexdigest()


def object_suffix(source: str) -> str:
    """The suffix of the object a URL names, lower case, for FFmpeg: from the path part only.

    Query and fragment are not part of it (``https://h/v.mp4?sig=x`` gives ``.mp4``). In a chained
    URL the object is the outer (first) one with a path, as for fsspec (``zip://a.mp4::s3://b/x.zip``
    gives ``.mp4``; ``simplecache::s3://b/x.mov`` gives ``.mov``). No suffix, or one that is not a
    plain extension, gives "".
    """
    chained = "::" in source
    for part in source.split("::"):
        match = URL_PATTERN.match(part)
        path = part[match.end() :] if match else ("" if chained else part)
        path = re.split(r"[?#]", path, maxsplit=1)[0]
        if match and match.group(1).lower() in ("http", "https") and "/" not in path:
            path = ""  # only a host (https://host.com): no object name to take it from
        if path:
            name = path.rpartition("/")[2]
            suffix = PurePosixPath(name).suffix.lower() if name else ""
            return suffix if SAFE_SUFFIX.fullmatch(suffix) else ""
    return ""


def cache_key(source: str, digest: str) -> str:
    """24 hex digits of ``sha256(source, content hash)``: the stem of every cache entry of an object."""
    return hashlib.sha256(f"{source}\n{digest}".encode()).hexdigest()[:24]


def cache_name(source: str, digest: str) -> str:
    """The kept copy's name: a hash of source and content, and the object's suffix (for FFmpeg)."""
    return f"{cache_key(source, digest)}{object_suffix(source)}"


@functools.cache
def host_tag() -> str:
    """This machine's name as it appears in cache entry names (no ``-``, no path characters)."""
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:64] or "host"


def _owner_tag() -> str:
    """``{host}-{pid}-{random}``: who made an entry, and unique among its entries."""
    return f"{host_tag()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def sweep_stale_copies(folder: Path) -> int:
    """Remove the copies and partial downloads in ``folder`` left by processes of this host that
    are gone (killed tasks); return how many. Kept copies, other hosts' entries and entries of
    running processes stay. Each removal is logged at INFO."""
    host, own_pid = host_tag(), os.getpid()
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in entries:
        match = OWNED_NAME.match(entry.name)
        if match is None or match.group("host") != host:
            continue
        pid = int(match.group("pid"))
        if pid == own_pid or pid_alive(pid):
            continue
        try:
            size_bytes = entry.stat(follow_symlinks=False).st_size
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        except OSError as error:
            log.warning("could not remove %s, left by process %d that is gone: %s", entry.path, pid, error)
            continue
        removed += 1
        log.info(
            "removed %s (%.1f MiB), left in the cache by process %d on this host, which is gone",
            entry.path,
            size_bytes / (1 << 20),
            pid,
        )
    return removed


def _download(source: str, destination: Path, key: str) -> None:
    """Copy the object to ``destination`` through a temporary name that names this process."""
    fs, path = filesystem(source)
    temporary = destination.with_name(f".{key}.partial-{_owner_tag()}{object_suffix(source)}")
    try:
        with fs.open(path, "rb") as remote, temporary.open("xb") as local:
            while chunk := remote.read(COPY_CHUNK_BYTES):
                local.write(chunk)
        os.replace(temporary, destination)
    except BaseException:
        remove_quietly(temporary)
        raise


@contextlib.contextmanager
def local_copy(source: str, digest: str, policy: CachePolicy) -> Iterator[Path]:
    """A local path to decode ``source`` from: the path itself, a complete copy in the cache, or
    for an image sequence its description (read at ``policy.sequence_rate``).

    A copy that is not kept gets a name of its own that names this host and process (tasks of one
    source may run at once) and is removed when the block ends; a kept copy is named by source and
    content hash and reused. Copies and partial downloads of killed tasks on this host are removed
    first (``sweep_stale_copies``); nothing half-written is ever reused.
    """
    protocol = url_protocol(source)
    if protocol is None and is_sequence_source(source):
        if policy.sequence_rate is None:
            raise UnsupportedOptionError(
                f"{source} is an image sequence, which has no frame rate of its own; give it one "
                "with --sequence-rate FPS"
            )
        yield describe(find_sequence(Path(source), Fraction(policy.sequence_rate)))
        return
    if protocol is None:
        yield Path(source)
        return
    if protocol in LOCAL_PROTOCOLS:
        fs, path = filesystem(source)
        yield Path(path)
        return
    folder = policy.folder()
    folder.mkdir(parents=True, exist_ok=True)
    sweep_stale_copies(folder)
    key, suffix = cache_key(source, digest), object_suffix(source)
    if policy.keep:
        target = folder / f"{key}{suffix}"
        if target.is_file():
            log.debug("%s: using the kept copy %s", source, target)
        else:
            _download(source, target, key)
        yield target
        return
    target = folder / f"{key}-{_owner_tag()}{suffix}"
    _download(source, target, key)
    try:
        yield target
    finally:
        remove_quietly(target)
