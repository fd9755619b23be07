"""The install manifest: every file, folder and registration the installer made, as JSON.

``install.py`` adds an item as soon as it has made it and saves the manifest after each one, so an
install that stops half-way still leaves a manifest ``uninstall.py`` can clean up with. A second
install reads the first one's manifest and keeps its items (so an upgrade never forgets what it
placed earlier). ``notes`` are what the installer told the user; ``problems`` the steps that did
not finish (``chronoscope doctor`` reads both). Standard library only.

Item kinds, and what ``uninstall.py`` does with each:

    file          a file we wrote (``sha256`` when its content is ours): removed; kept with a
                  warning when its content changed since (the user edited it), unless --force
    tree          a folder we copied in whole (the OFX bundle): removed with its content
    venv          the virtual environment: removed with its content (must hold pyvenv.cfg)
    dir           a folder we created: removed when empty, deepest first, after everything else
    service       a registration with the OS (systemd user unit enabled, launchd agent loaded):
                  undone first (systemctl --user disable --now / launchctl bootout)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

FORMAT_VERSION = 1
KINDS = ("file", "tree", "venv", "dir", "service")


class ManifestError(ValueError):
    """The manifest cannot be read, or is of a format this uninstaller does not know."""


@dataclass
class Item:
    kind: str
    path: str
    component: str
    sha256: str = ""
    detail: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ManifestError(f"manifest item kind {self.kind!r} is not known; known: {', '.join(KINDS)}")


@dataclass
class Manifest:
    platform: str
    prefix: str
    source: str = ""
    version: str = ""
    gpu: str = ""
    onnxruntime: str = ""
    installed_at: str = ""
    options: dict = field(default_factory=dict)
    items: list[Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    format: int = FORMAT_VERSION

    def add(self, kind: str, path: Path, component: str, *, sha256: str = "", detail: str = "") -> None:
        """Record ``path`` (replacing an older record of the same kind and path)."""
        text = str(path)
        self.items = [item for item in self.items if not (item.path == text and item.kind == kind)]
        self.items.append(Item(kind, text, component, sha256, detail))

    def has(self, path: Path, kind: str | None = None) -> bool:
        return any(item.path == str(path) and (kind is None or item.kind == kind) for item in self.items)

    def paths(self, kind: str) -> list[str]:
        return [item.path for item in self.items if item.kind == kind]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(path: Path) -> Manifest:
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, json.JSONDecodeError) as error:
        raise ManifestError(f"cannot read install manifest {path}: {error}") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT_VERSION:
        found = record.get("format") if isinstance(record, dict) else type(record).__name__
        raise ManifestError(
            f"install manifest {path} has format {found!r}; this installer reads {FORMAT_VERSION}"
        )
    known = {item.name for item in fields(Manifest)} - {"items"}
    try:
        items = [Item(**item) for item in record.pop("items", [])]
        # keys a newer installer added are left out, so that this uninstaller can still read it
        return Manifest(**{key: value for key, value in record.items() if key in known}, items=items)
    except TypeError as error:
        raise ManifestError(f"install manifest {path} is malformed: {error}") from None


def write_manifest(manifest: Manifest, path: Path) -> None:
    """Write through a temporary name in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.partial-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(manifest.to_json())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
