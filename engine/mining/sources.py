"""Which files a mining run looks at, and the content hash that identifies each of them.

Sources are given the way a shell user thinks of them:

- a folder: every file below it (recursively) whose suffix is a video suffix, and every image
  sequence (two or more numbered frames, DPX, EXR, TIFF, PNG, JPEG: ``A001.1001.dpx``...) as one
  source. Linked folders are followed like linked files (each folder is scanned once, so a link
  back up the tree does not loop); a link to nothing is skipped. What is skipped and why is
  logged at INFO (other files: one line per folder);
- ``@list.txt``: a text file with one path per line (blank lines and ``#`` comments skipped;
  relative paths are relative to the list's folder; a folder or glob in a list is expanded). An
  entry that does not exist is kept, so that the run reports it as a missing input;
- a glob (``/media/**/*.mov``): every match, whatever its suffix, so that a misnamed file the
  user asked for is looked at and reported rather than silently dropped; frames of an image
  sequence among the matches are the sequence;
- a plain file path; one frame of an image sequence (``A001.1001.dpx``), or its pattern
  (``A001.####.dpx``, ``A001.%04d.dpx``), names the sequence;
- an fsspec URL (``s3://bucket/prefix/``, ``gs://bucket/**/*.mp4``, ``memory://``, ``file://``):
  a prefix, a glob or one object, listed through fsspec (``engine.mining.storage``). A list file
  may hold URLs too, and may itself be a URL (``@s3://bucket/lists/new.txt``).

A source is text from here on: an absolute local path, an image sequence's
``folder/PREFIX####SUFFIX`` (``engine.mining.storage.is_sequence_source``; mined only at a
``--sequence-rate``), or a URL. That text is all a pool or Ray task is given.

The content hash is fast on purpose, so that a library of terabytes can be re-scanned cheaply:
``sha256(size, mtime_ns, first MiB, last MiB)``. It changes when a file is replaced, appended to
or touched; it does not notice an edit in the middle of a file that keeps size and mtime (no
ordinary tool does that). The manifest stores it so that a resumed run skips finished files and
redoes changed ones. For an object in storage the hash is read from the stream in the same way,
with the store's version (ETag, generation or modification time) in place of ``mtime_ns``. For an
image sequence it is ``sha256(every frame's name, size and mtime_ns, the first MiB of its first
frame, the last MiB of its last)``. None of them holds the path: a file moved or renamed keeps its
hash (``mv`` keeps the modification time), which is how a run recognises it.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import logging
import os
import re
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

from engine.errors import ChronoscopeError, MediaNotFoundError, UnsupportedOptionError
from engine.media import VIDEO_FILE_SUFFIXES
from engine.media.sequence import ImageSequence, find_sequence_runs
from engine.mining.storage import (
    SEQUENCE_IMAGE_SUFFIXES,
    expand_url,
    is_sequence_source,
    read_text,
    remote_content_hash,
    url_protocol,
)

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = VIDEO_FILE_SUFFIXES
HASH_EDGE_BYTES = 1 << 20
HASH_PREFIX = "fast-sha256:"
SEQUENCE_HASH_PREFIX = "sequence-sha256:"
SHOWN_SUFFIXES = 6
_FRAME_NUMBER = re.compile(r"(\d+)(?!.*\d)")
_PATTERN_NUMBER = re.compile(r"#+|%0?\d*d")
_ANY_RATE = Fraction(1)
"""Finding a sequence's frames needs a rate; which one does not matter there."""


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


def _glob_each_folder_once(pattern: str) -> set[str]:
    """The paths ``pattern`` matches, as ``glob.glob(pattern, recursive=True)`` gives them, except
    that ``**`` follows linked folders as the folder walk does: each folder (by device and inode)
    once, so links that loop end there (``glob.glob`` follows them round without end)."""
    anchor, *parts = Path(pattern).parts
    if not Path(pattern).is_absolute():
        anchor, parts = ".", [anchor, *parts]
    found: set[str] = set()
    _glob_below(anchor, parts, found, relative=not Path(pattern).is_absolute())
    return found


def _glob_below(folder: str, parts: list[str], found: set[str], *, relative: bool) -> None:
    def shown(path: str) -> str:
        return os.path.relpath(path) if relative else path

    if not parts:
        if os.path.lexists(folder):
            found.add(shown(folder))
        return
    part, rest = parts[0], parts[1:]
    if part == "**":
        for below in _folders_once(folder):
            if rest:
                _glob_below(below, rest, found, relative=relative)
            else:
                found.add(shown(below) if below != folder else os.path.join(shown(folder), ""))
                for name in _names(below):
                    if not name.startswith("."):
                        found.add(shown(os.path.join(below, name)))
        return
    if not glob.has_magic(part):
        _glob_below(os.path.join(folder, part), rest, found, relative=relative)
        return
    for name in fnmatch.filter(_names(folder), part):
        if name.startswith(".") and not part.startswith("."):
            continue  # as glob.glob: hidden names only where the pattern names them
        path = os.path.join(folder, name)
        if rest and not os.path.isdir(path):
            continue
        _glob_below(path, rest, found, relative=relative)


def _names(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _folders_once(folder: str) -> list[str]:
    """``folder`` and every folder below it that is not hidden, following links, each once."""
    folders: list[str] = []
    scanned: set[tuple[int, int]] = set()
    for root, below, _names_here in os.walk(folder, followlinks=True):
        try:
            status = os.stat(root)
        except OSError:
            below[:] = []
            continue
        identity = (status.st_dev, status.st_ino)
        if identity in scanned:
            log.info("%s: skipped, the same folder as one the glob has scanned already", root)
            below[:] = []
            continue
        scanned.add(identity)
        below[:] = sorted(name for name in below if not name.startswith("."))
        folders.append(root)
    return folders


def _from_folder(folder: Path) -> list[str]:
    """Video files and image sequences below ``folder``, following linked folders and files;
    each folder (by device and inode) is scanned once, so links that loop end there. Skips are
    logged at INFO, files that are neither video nor a sequence's frames one line per folder."""
    found: list[str] = []
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
        others: list[str] = []
        images: list[str] = []
        for name in sorted(names):
            path = Path(root) / name
            suffix = path.suffix.lower()
            if suffix not in VIDEO_SUFFIXES and suffix not in SEQUENCE_IMAGE_SUFFIXES:
                others.append(name)
                continue
            if path.is_symlink() and not path.exists():
                log.info("%s: skipped, a link to %s, which does not exist", path, os.readlink(path))
                continue
            if not path.is_file():
                log.info("%s: skipped, not a regular file", path)
                continue
            if suffix in VIDEO_SUFFIXES:
                found.append(str(path))
            else:
                images.append(name)
        sequences, lone = _sequences_among(Path(root), images)
        found += sequences
        others += lone
        if others:
            suffixes = sorted({Path(name).suffix.lower() or "(none)" for name in others})
            shown = " ".join(suffixes[:SHOWN_SUFFIXES]) + (" ..." if len(suffixes) > SHOWN_SUFFIXES else "")
            log.info(
                "%s: %d file(s) skipped, neither video (by suffix) nor frames of an image sequence: %s",
                root,
                len(others),
                shown,
            )
    return sorted(found)


def _sequences_among(folder: Path, names: list[str]) -> tuple[list[str], list[str]]:
    """(image sequences as sources, images that belong to none) among image files of one folder:
    two or more files that differ only in their last number are one sequence."""
    groups: dict[tuple[str, str], list[str]] = {}
    lone: list[str] = []
    for name in names:
        stem_length = len(name) - len(Path(name).suffix)
        match = _FRAME_NUMBER.search(name[:stem_length])
        if match is None:
            lone.append(name)
            continue
        groups.setdefault((name[: match.start()], name[match.end() :]), []).append(name)
    sequences: list[str] = []
    for members in groups.values():
        if len(members) < 2:
            lone += members
            continue
        try:
            sequences.append(sequence_source(find_sequence_runs(folder / members[0], _ANY_RATE)))
        except ChronoscopeError as error:
            log.warning("%s: not read as an image sequence: %s", folder / members[0], error)
            lone += members
    return sorted(set(sequences)), sorted(lone)


def sequence_source(sequence: ImageSequence) -> str:
    """An image sequence as a source: ``/absolute/folder/A001.####.dpx``."""
    return str(sequence.folder.absolute() / sequence.display_name)


def _sequence_named(path: Path) -> str | None:
    """The sequence source a path names: one of two or more numbered frames, or a pattern
    (``A001.####.dpx``, ``A001.%04d.dpx``) that matches frames; None otherwise."""
    if path.suffix.lower() not in SEQUENCE_IMAGE_SUFFIXES:
        return None
    if not path.exists() and _PATTERN_NUMBER.search(path.name) is None:
        return None
    try:
        sequence = find_sequence_runs(path, _ANY_RATE)
    except ChronoscopeError:
        return None
    if sequence.span_frames - len(sequence.missing()) < 2:
        return None
    return sequence_source(sequence)


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
    seen: dict[str, str] = {}  # a resolved path -> the absolute path that first named it
    found_set: set[str] = set()
    given = list(sources)
    if not given:
        raise UnsupportedOptionError("no sources given; name folders, files, globs, URLs or @list.txt files")
    for source in given:
        if source.startswith("@"):
            entries = _from_list(source[1:])
            named: list[str] = []
            for entry in entries:
                expand = url_protocol(entry) is not None or _is_glob(entry) or Path(entry).is_dir()
                sequence = None if expand else _sequence_named(Path(entry))
                named += _expand_one(entry) if expand else [sequence or entry]
        else:
            named = _expand_one(source)
        for entry in named:
            if url_protocol(entry) is None:
                absolute = os.path.abspath(entry)
                resolved = str(Path(entry).resolve())
                if any(folder in Path(resolved).parents for folder in excluded):
                    continue
                first = seen.setdefault(resolved, absolute)
                if first != absolute and absolute != resolved:
                    log.info("%s: skipped, a link to %s, which is mined already", entry, resolved)
                elif first != absolute:
                    log.info("%s is a link to %s, which is named too: mined once, as itself", first, resolved)
                entry = resolved
            if entry in found_set:
                continue
            found_set.add(entry)
            found.append(entry)
    return found


def _expand_one(source: str) -> list[str]:
    if url_protocol(source) is not None:
        return expand_url(source, VIDEO_SUFFIXES)
    if _is_glob(source):
        paths = sorted(Path(match) for match in _glob_each_folder_once(str(Path(source).expanduser())))
        for path in paths:
            if path.is_symlink() and not path.exists():
                log.info("%s: skipped, a link to %s, which does not exist", path, os.readlink(path))
        paths = [path for path in paths if path.is_file()]
        if not paths:
            raise MediaNotFoundError(f"the glob {source!r} matches no file")
        return _group_sequences(paths)
    path = Path(source).expanduser()
    if path.is_dir():
        found = _from_folder(path)
        if not found:
            log.warning(
                "folder %s holds no file with a video suffix (%s) and no image sequence", path, _suffix_list()
            )
        return found
    sequence = _sequence_named(path)
    if sequence is not None:
        return [sequence]
    if path.exists():
        return [str(path)]
    raise MediaNotFoundError(f"source {source!r} is neither a file, a folder, a glob, a URL nor @list.txt")


def _group_sequences(paths: list[Path]) -> list[str]:
    """Glob matches as sources: the frames of an image sequence among them as the sequence, every
    other file as itself (whatever its suffix)."""
    images: dict[Path, list[str]] = {}
    found: list[str] = []
    for path in paths:
        if path.suffix.lower() in SEQUENCE_IMAGE_SUFFIXES:
            images.setdefault(path.parent, []).append(path.name)
        else:
            found.append(str(path))
    for folder, names in images.items():
        sequences, lone = _sequences_among(folder, names)
        found += sequences + [str(folder / name) for name in lone]
    return sorted(found)


def _suffix_list() -> str:
    return " ".join(sorted(VIDEO_SUFFIXES))


def content_hash(source: str | Path) -> str:
    """The fast content hash of a local path or a URL (see the module docstring); raises OSError
    when unreadable, ``StorageNotAvailableError`` for a protocol that cannot be used."""
    if isinstance(source, str) and url_protocol(source) is not None:
        return remote_content_hash(source, HASH_EDGE_BYTES, HASH_PREFIX)
    if is_sequence_source(str(source)):
        return _sequence_hash(str(source))
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


def _sequence_hash(source: str) -> str:
    """The content hash of an image sequence (see the module docstring); ``FileNotFoundError``
    when none of its frames is there."""
    sequence = find_sequence_runs(Path(source), _ANY_RATE)
    numbers = [number for run in sequence.runs() for number in range(run.first, run.last + 1)]
    digest = hashlib.sha256()
    for number in numbers:
        stat = sequence.frame_path(number).stat()
        digest.update(f"{sequence.frame_name(number)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    with sequence.frame_path(numbers[0]).open("rb") as handle:
        digest.update(handle.read(HASH_EDGE_BYTES))
    with sequence.frame_path(numbers[-1]).open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        handle.seek(max(0, size - HASH_EDGE_BYTES))
        digest.update(handle.read(HASH_EDGE_BYTES))
    return SEQUENCE_HASH_PREFIX + digest.hexdigest()


def source_exists(source: str) -> bool:
    """Whether a local source is there: the file, or any frame of an image sequence."""
    if not is_sequence_source(source):
        return os.path.lexists(source)
    try:
        find_sequence_runs(Path(source), _ANY_RATE)
    except FileNotFoundError:
        return False
    return True
