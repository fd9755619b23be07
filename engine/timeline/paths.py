"""Media locations in timelines: from an OTIO ``target_url`` to a file on this machine.

Editors write media locations in several forms, and the same project moves between machines:

- a plain path: ``/Volumes/Footage/a.mov``, ``C:\\Footage\\a.mov``, ``\\\\server\\share\\a.mov``;
- a file URL, percent-encoded: ``file:///Volumes/Footage/a%20b.mov``, ``file://localhost/...``,
  ``file:///C:/Footage/a%20b.mov``, ``file://server/share/a.mov`` (UNC);
- a path relative to the timeline file.

``media_location`` decodes the string to the path it names (``decoded``), applies an optional
``PathMap`` (prefix remapping such as ``C:\\Footage`` -> ``/mnt/footage``), and gives a local
``Path`` when the result can exist on this machine. The original string is never rewritten: the
timeline keeps it byte for byte, and only the local path is used to open files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from urllib.parse import unquote, urlsplit

from engine.errors import UnsupportedOptionError

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:([\\/]|$)")
_URL_DRIVE = re.compile(r"^/[A-Za-z]:([\\/]|$)")
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def is_windows_path(text: str) -> bool:
    """True for ``C:\\...``, ``C:/...`` and UNC ``\\\\server\\share`` (or ``//server/share``) paths."""
    return bool(_WINDOWS_DRIVE.match(text)) or text.startswith("\\\\") or text.startswith("//")


def decode_target_url(target_url: str) -> str:
    """Return the path a ``target_url`` names, percent-decoded, in its own (POSIX or Windows) form.

    Raises ``UnsupportedOptionError`` for URLs that are not files (``http://``, ``s3://``).
    """
    text = target_url.strip()
    if is_windows_path(text):
        return text
    if text.lower().startswith("file:"):
        parts = urlsplit(text)
        path = unquote(parts.path)
        host = parts.netloc
        if host and host.lower() != "localhost":
            return "\\\\" + host + path.replace("/", "\\")
        if _URL_DRIVE.match(path):
            return path[1:]
        return path
    if _URL_SCHEME.match(text):
        scheme = text.split(":", 1)[0]
        raise UnsupportedOptionError(
            f"media location {target_url!r} uses the {scheme}: scheme; "
            "plain paths and file:// URLs work"
        )
    return text


def _normalised(text: str) -> str:
    return text.replace("\\", "/").rstrip("/")


@dataclass(frozen=True)
class PathMap:
    """Prefix remapping for projects moved between machines: ``{"C:\\Footage": "/mnt/footage"}``.

    Prefixes match whole path components; ``\\`` and ``/`` are the same separator, and Windows-style
    prefixes (a drive or UNC) match regardless of case. The longest matching prefix wins.
    """

    prefixes: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @classmethod
    def from_pairs(cls, pairs: Mapping[str, str] | Iterable[tuple[str, str]]) -> PathMap:
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        checked = []
        for source, target in items:
            if not source or not target:
                raise UnsupportedOptionError(
                    f"path map entry {source!r} -> {target!r} is empty on one side; "
                    "give both, like C:\\Footage=/mnt/footage"
                )
            checked.append((str(source), str(target)))
        return cls(tuple(sorted(checked, key=lambda pair: len(_normalised(pair[0])), reverse=True)))

    @classmethod
    def from_strings(cls, entries: Iterable[str]) -> PathMap:
        """Parse ``OLD=NEW`` strings (as given on a command line)."""
        pairs = []
        for entry in entries:
            if "=" not in entry:
                raise UnsupportedOptionError(f"path map entry {entry!r} has no '='; write it as OLD=NEW")
            source, target = entry.split("=", 1)
            pairs.append((source, target))
        return cls.from_pairs(pairs)

    def apply(self, path_text: str) -> str:
        """Return ``path_text`` with its longest matching prefix replaced, or unchanged."""
        normalised = _normalised(path_text)
        for source, target in self.prefixes:
            prefix = _normalised(source)
            fold = is_windows_path(source)
            candidate = normalised.lower() if fold else normalised
            wanted = prefix.lower() if fold else prefix
            if candidate == wanted or candidate.startswith(wanted + "/"):
                rest = normalised[len(prefix):].lstrip("/")
                if not rest:
                    return target
                separator = "\\" if is_windows_path(target) else "/"
                return target.rstrip("/\\") + separator + rest.replace("/", separator)
        return path_text


@dataclass(frozen=True)
class MediaLocation:
    """Where a clip's media is: the string as written, what it names, and the local file if any."""

    target_url: str
    decoded: str
    local_path: Path | None
    reason: str = ""

    @property
    def exists(self) -> bool:
        return self.local_path is not None and self.local_path.exists()


def media_location(
    target_url: str,
    *,
    base_dir: Path | None = None,
    path_map: PathMap | None = None,
    windows: bool | None = None,
) -> MediaLocation:
    """Resolve a clip's ``target_url`` to a path on this machine (see the module docstring).

    ``base_dir`` anchors relative paths (the timeline file's folder). ``windows`` says whether this
    machine reads Windows paths (default: whether it runs Windows). ``local_path`` is None, with a
    ``reason``, when the location cannot exist here (a Windows path on macOS with no path map).
    """
    decoded = decode_target_url(target_url)
    mapped = path_map.apply(decoded) if path_map else decoded
    on_windows = (os.name == "nt") if windows is None else windows
    if is_windows_path(mapped) and not on_windows:
        return MediaLocation(
            target_url,
            decoded,
            None,
            f"{mapped!r} is a Windows path; map its prefix to a folder on this machine "
            "(a path map such as C:\\Footage=/mnt/footage)",
        )
    path = Path(str(PureWindowsPath(mapped))) if on_windows else Path(mapped)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return MediaLocation(target_url, decoded, path)


def rebase_relative_media(timeline, base_dir: Path) -> int:
    """Make every relative media path of ``timeline`` (file references and image-sequence folders)
    absolute, from ``base_dir`` (the folder the timeline was read from). A timeline written
    elsewhere (a render's new timeline, in its output folder) would otherwise send its relative
    paths to the wrong place. Returns how many were changed; URLs and absolute paths stay."""
    import opentimelineio as otio

    changed = 0
    for clip in timeline.find_clips():
        reference = clip.media_reference
        attribute = (
            "target_url" if isinstance(reference, otio.schema.ExternalReference)
            else "target_url_base" if isinstance(reference, otio.schema.ImageSequenceReference)
            else None
        )
        if attribute is None:
            continue
        written = getattr(reference, attribute) or ""
        try:
            decoded = decode_target_url(written)
        except UnsupportedOptionError:
            continue  # an http:// or s3:// location: not ours to change
        if not decoded or written.lower().startswith("file:") or is_windows_path(decoded):
            continue
        if Path(decoded).is_absolute():
            continue
        absolute = os.path.normpath(Path(base_dir).absolute() / decoded)
        if attribute == "target_url_base" and decoded.endswith(("/", "\\")):
            absolute += os.sep
        setattr(reference, attribute, absolute)
        changed += 1
    return changed
