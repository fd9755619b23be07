"""Which files a mining run looks at, and the content hash that identifies each of them.

Sources are given the way a shell user thinks of them:

- a folder: every file below it (recursively) whose suffix is a video suffix. Linked folders
  are followed like linked files (each folder is scanned once, so a link back up the tree does
  not loop); a link to nothing is skipped. What is skipped and why is logged at INFO;
- ``@list.txt``: a text file with one path per line (blank lines and ``#`` comments skipped;
  relative paths are relative to the list's folder; a folder or glob in a list is expanded). An
  entry that does not exist is kept, so that the run reports it as a missing input;
- a glob (``/media/**/*.mov``): every match, whatever its suffix, so that a misnamed file the
  user asked for is looked at and reported rather than silently dropped;
- a plain file path;
- an fsspec URL (``s3://bucket/prefix/``, ``gs://bucket/**/*.mp4``, ``memory://``, ``file://``):
  a prefix, a glob or one object, listed through fsspec (``engine.mining.storage``). A list file
  may hold URLs too, and may itself be a URL (``@s3://bucket/lists/new.txt``).

A source is text from here on: an absolute local path, or a URL. That text is all a pool or Ray
task is given.

The content hash is fast on purpose, so that a library of terabytes can be re-scanned cheaply:
``sha256(size, mtime_ns, first MiB, last MiB)``. It changes when a file is replaced, appended to
or touched; it does not notice an edit in the middle of a file that keeps size and mtime (no
ordinary tool does that). The manifest stores it so that a resumed run skips finished files and
redoes changed ones. For an object in storage the hash is read from the stream in the same way,
with the store's version (ETag, generation or modification time) in place of ``mtime_ns``.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from engine.errors import MediaNotFoundError, UnsupportedOptionError
from engine.media import VIDEO_FILE_SUFFIXES
from engine.mining.storage import expand_url, read_text, remote_content_hash, url_protocol

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = VIDEO_FILE_SUFFIXES
HASH_EDGE_BYTES = 1 << 20
HASH_PREFIX = "fast-sha256:"


def _is_glob(text: str) -> bool:
    return any(character in text for character in "*?[")


def _from_list(listing: str) -> list[str]:
    """The entries of a list file: URLs as they are, local paths relative to the list's folder."""
    if url_protocol(listing) is not None:
        text = read_text(listing)
        base: Path | None = None
    else:
        list_path = Path(listing).expanduser()
        if not list_path.is_file():
            raise MediaNotFoundError(f"file list {list_path} not found (given as @{listing})")
        text = list_path.read_text(encoding="utf-8")
        base = list_path.parent
    entries = []
    for line in text.splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if url_protocol(entry) is not None:
            entries.append(entry)
            continue
        path = Path(entry).expanduser()
        if not path.is_absolute():
            if base is None:
                raise MediaNotFoundError(
                    f"file list {listing} names the relative path {entry!r}; a list in storage must "
                    "hold absolute paths or URLs"
                )
            path = base / path
        entries.append(str(path))
    return entries


def _from_folder(folder: Path) -> list[Path]:
    """Video files below ``folder``, following linked folders and files; each folder (by device
    and inode) is scanned once, so links that loop end there. Skips are logged at INFO."""
    found: list[Path] = []
    scanned: dict[tuple[int, int], str] = {}

    def cannot_list(error: OSError) -> None:
        log.warning("cannot list %s (%s); the files in it are not mined", error.filename, error.strerror)

    for root, folders, names in os.walk(folder, onerror=cannot_list, followlinks=True):
        try:
            status = os.stat(root)
        except OSError as error:
            cannot_list(error)
            folders[:] = []
            continue
        identity = (status.st_dev, status.st_ino)
        if identity in scanned:
            log.info("%s: skipped, the same folder as %s, which is scanned already", root, scanned[identity])
            folders[:] = []
            continue
        scanned[identity] = root
        for name in folders:
            linked = os.path.join(root, name)
            if os.path.islink(linked):
                log.info("%s is a link to the folder %s: followed", linked, os.path.realpath(linked))
        for name in sorted(names):
            path = Path(root) / name
            if path.suffix.lower() not in VIDEO_SUFFIXES:
                continue
            if path.is_symlink() and not path.exists():
                log.info("%s: skipped, a link to %s, which does not exist", path, os.readlink(path))
                continue
            if not path.is_file():
                log.info("%s: skipped, not a regular file", path)
                continue
            found.append(path)
    return sorted(found)


def _glob_base(pattern: str) -> Path:
    """The folder a glob searches: its leading parts without wildcards."""
    base: list[str] = []
    for part in Path(pattern).expanduser().parts:
        if _is_glob(part):
            break
        base.append(part)
    return Path(*base) if base else Path(".")


def local_roots(sources: Iterable[str]) -> list[Path]:
    """The local folders and files the sources name (a glob's base folder, a list's entries),
    resolved: what ``--out`` must not be, nor hold."""
    roots: list[Path] = []
    for source in sources:
        if source.startswith("@"):
            listing = source[1:]
            if url_protocol(listing) is not None or not Path(listing).expanduser().is_file():
                continue
            entries = [entry for entry in _from_list(listing) if url_protocol(entry) is None]
        else:
            entries = [source] if url_protocol(source) is None else []
        for entry in entries:
            roots.append((_glob_base(entry) if _is_glob(entry) else Path(entry).expanduser()).resolve())
    return roots


def expand_sources(sources: Iterable[str], *, exclude: Iterable[Path] = ()) -> list[str]:
    """Every file or object the sources name, as text (absolute local paths, or URLs), sorted
    within each source, without repeats.

    ``exclude`` lists local folders whose contents are skipped (the dataset folder itself, so
    that extracted clips are never mined again). A source that names nothing raises
    ``MediaNotFoundError``; no sources at all raises ``UnsupportedOptionError``; a URL whose
    protocol cannot be used raises ``StorageNotAvailableError``.
    """
    excluded = [Path(folder).resolve() for folder in exclude]
    found: list[str] = []
    seen: set[str] = set()
    given = list(sources)
    if not given:
        raise UnsupportedOptionError("no sources given; name folders, files, globs, URLs or @list.txt files")
    for source in given:
        if source.startswith("@"):
            entries = _from_list(source[1:])
            named: list[str] = []
            for entry in entries:
                expand = url_protocol(entry) is not None or _is_glob(entry) or Path(entry).is_dir()
                named += _expand_one(entry) if expand else [entry]
        else:
            named = _expand_one(source)
        for entry in named:
            if url_protocol(entry) is None:
                resolved = Path(entry).resolve()
                if any(folder in resolved.parents for folder in excluded):
                    continue
                if str(resolved) in seen and str(resolved) != entry:
                    log.info("%s: skipped, a link to %s, which is mined already", entry, resolved)
                entry = str(resolved)
            if entry in seen:
                continue
            seen.add(entry)
            found.append(entry)
    return found


def _expand_one(source: str) -> list[str]:
    if url_protocol(source) is not None:
        return expand_url(source, VIDEO_SUFFIXES)
    if _is_glob(source):
        paths = sorted(Path(match) for match in glob.glob(str(Path(source).expanduser()), recursive=True))
        for path in paths:
            if path.is_symlink() and not path.exists():
                log.info("%s: skipped, a link to %s, which does not exist", path, os.readlink(path))
        paths = [path for path in paths if path.is_file()]
        if not paths:
            raise MediaNotFoundError(f"the glob {source!r} matches no file")
        return [str(path) for path in paths]
    path = Path(source).expanduser()
    if path.is_dir():
        paths = _from_folder(path)
        if not paths:
            log.warning("folder %s holds no file with a video suffix (%s)", path, _suffix_list())
        return [str(path) for path in paths]
    if path.exists():
        return [str(path)]
    raise MediaNotFoundError(f"source {source!r} is neither a file, a folder, a glob, a URL nor @list.txt")


def _suffix_list() -> str:
    return " ".join(sorted(VIDEO_SUFFIXES))


def content_hash(source: str | Path) -> str:
    """The fast content hash of a local path or a URL (see the module docstring); raises OSError
    when unreadable, ``StorageNotAvailableError`` for a protocol that cannot be used."""
    if isinstance(source, str) and url_protocol(source) is not None:
        return remote_content_hash(source, HASH_EDGE_BYTES, HASH_PREFIX)
    path = Path(source)
    stat = path.stat()
    digest = hashlib.sha256()
    digest.update(f"{stat.st_size}:{stat.st_mtime_ns}:".encode())
    with path.open("rb") as handle:
        digest.update(handle.read(HASH_EDGE_BYTES))
        if stat.st_size > HASH_EDGE_BYTES:
            handle.seek(max(HASH_EDGE_BYTES, stat.st_size - HASH_EDGE_BYTES))
            digest.update(handle.read(HASH_EDGE_BYTES))
    return HASH_PREFIX + digest.hexdigest()
