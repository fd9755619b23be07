"""Which files a mining run looks at, and the content hash that identifies each of them.

Sources are given the way a shell user thinks of them:

- a folder: every file below it (recursively) whose suffix is a video suffix;
- ``@list.txt``: a text file with one path per line (blank lines and ``#`` comments skipped;
  relative paths are relative to the list's folder);
- a glob (``/media/**/*.mov``): every match, whatever its suffix, so that a misnamed file the
  user asked for is looked at and reported rather than silently dropped;
- a plain file path.

The content hash is fast on purpose, so that a library of terabytes can be re-scanned cheaply:
``sha256(size, mtime_ns, first MiB, last MiB)``. It changes when a file is replaced, appended to
or touched; it does not notice an edit in the middle of a file that keeps size and mtime (no
ordinary tool does that). The manifest stores it so that a resumed run skips finished files and
redoes changed ones.
"""

from __future__ import annotations

import glob
import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path

from engine.errors import MediaNotFoundError, UnsupportedOptionError

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mov", ".m4v", ".mkv", ".avi", ".mpg", ".mpeg", ".mts", ".m2ts", ".ts", ".webm", ".mxf", ".3gp"}
)
HASH_EDGE_BYTES = 1 << 20
HASH_PREFIX = "fast-sha256:"


def _is_glob(text: str) -> bool:
    return any(character in text for character in "*?[")


def _from_list(list_path: Path) -> list[Path]:
    if not list_path.is_file():
        raise MediaNotFoundError(f"file list {list_path} not found (given as @{list_path})")
    paths = []
    for line in list_path.read_text(encoding="utf-8").splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        path = Path(entry).expanduser()
        paths.append(path if path.is_absolute() else list_path.parent / path)
    return paths


def _from_folder(folder: Path) -> list[Path]:
    return sorted(
        path for path in folder.rglob("*") if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES
    )


def expand_sources(sources: Iterable[str], *, exclude: Iterable[Path] = ()) -> list[Path]:
    """Every file the sources name, absolute, sorted within each source, without repeats.

    ``exclude`` lists folders whose contents are skipped (the dataset folder itself, so that
    extracted clips are never mined again). A source that names nothing raises
    ``MediaNotFoundError``; no sources at all raises ``UnsupportedOptionError``.
    """
    excluded = [Path(folder).resolve() for folder in exclude]
    found: list[Path] = []
    seen: set[Path] = set()
    given = list(sources)
    if not given:
        raise UnsupportedOptionError("no sources given; name folders, files, globs or @list.txt files")
    for source in given:
        if source.startswith("@"):
            paths = _from_list(Path(source[1:]).expanduser())
        elif _is_glob(source):
            paths = sorted(Path(match) for match in glob.glob(str(Path(source).expanduser()), recursive=True))
            paths = [path for path in paths if path.is_file()]
            if not paths:
                raise MediaNotFoundError(f"the glob {source!r} matches no file")
        else:
            path = Path(source).expanduser()
            if path.is_dir():
                paths = _from_folder(path)
                if not paths:
                    log.warning("folder %s holds no file with a video suffix (%s)", path, _suffix_list())
            elif path.exists():
                paths = [path]
            else:
                raise MediaNotFoundError(
                    f"source {source!r} is neither a file, a folder, a glob nor @list.txt"
                )
        for path in paths:
            resolved = path.resolve()
            if resolved in seen or any(folder in resolved.parents for folder in excluded):
                continue
            seen.add(resolved)
            found.append(resolved)
    return found


def _suffix_list() -> str:
    return " ".join(sorted(VIDEO_SUFFIXES))


def content_hash(path: Path) -> str:
    """The fast content hash of ``path`` (see the module docstring); raises OSError when unreadable."""
    path = Path(path)
    stat = path.stat()
    digest = hashlib.sha256()
    digest.update(f"{stat.st_size}:{stat.st_mtime_ns}:".encode())
    with path.open("rb") as handle:
        digest.update(handle.read(HASH_EDGE_BYTES))
        if stat.st_size > HASH_EDGE_BYTES:
            handle.seek(max(HASH_EDGE_BYTES, stat.st_size - HASH_EDGE_BYTES))
            digest.update(handle.read(HASH_EDGE_BYTES))
    return HASH_PREFIX + digest.hexdigest()
