"""Which models are installed, and where: one folder of ``NAME.onnx`` + ``NAME.manifest.json``.

The folder is ``$CHRONOSCOPE_MODELS_DIR`` when set, else ``places().models_dir``. A model counts
as installed when its manifest reads and its file exists; the hash is checked when the model is
loaded (``engine.models.runtime``) or on request (``verify_model``), not on every listing.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ModelIntegrityError, ModelNotFoundError
from engine.models.manifest import MANIFEST_SUFFIX, ModelManifest, check_model_bytes, read_manifest
from engine.places import places

log = logging.getLogger(__name__)

ENV_MODELS_DIR = "CHRONOSCOPE_MODELS_DIR"
PREPARE_HINT = "run `chronoscope models prepare` (or `make demo`) to convert the RIFE weights"


@dataclass(frozen=True)
class InstalledModel:
    """A model found in the models folder: its manifest and the two paths."""

    manifest: ModelManifest
    manifest_path: Path
    model_path: Path

    @property
    def name(self) -> str:
        return self.manifest.name

    def files_stamp(self) -> tuple[tuple[int, int, int, int] | None, ...]:
        """What the model's two files are on disk now (``file_stamp`` of each): a model replaced
        under its name (trained again, prepared again) or removed gives another stamp."""
        return file_stamp(self.model_path), file_stamp(self.manifest_path)


def file_stamp(path: Path) -> tuple[int, int, int, int] | None:
    """Device, inode, size and modification time of ``path`` (a link followed), or None where it
    is missing: files written to a temporary name and renamed, as ours are, change all of it."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns


@dataclass(frozen=True)
class BrokenModel:
    """A manifest in the models folder that cannot be used, and why."""

    manifest_path: Path
    problem: str


def models_dir() -> Path:
    """The folder models are read from and prepared into."""
    configured = os.environ.get(ENV_MODELS_DIR)
    if configured:
        return Path(configured)
    return places().models_dir


def scan_models(directory: Path | None = None) -> tuple[list[InstalledModel], list[BrokenModel]]:
    """Return the usable models (sorted by name) and the manifests that could not be used."""
    folder = Path(directory) if directory is not None else models_dir()
    installed: list[InstalledModel] = []
    broken: list[BrokenModel] = []
    if not folder.is_dir():
        return installed, broken
    for manifest_path in sorted(folder.glob("*" + MANIFEST_SUFFIX)):
        if manifest_path.name.startswith("."):
            continue
        try:
            manifest = read_manifest(manifest_path)
        except ModelIntegrityError as error:
            broken.append(BrokenModel(manifest_path, str(error)))
            continue
        model_path = manifest_path.parent / manifest.file
        expected_name = manifest_path.name.removesuffix(MANIFEST_SUFFIX)
        if manifest.name != expected_name:
            problem = f"names model {manifest.name!r}, expected {expected_name!r}"
            broken.append(BrokenModel(manifest_path, problem))
        elif not model_path.is_file():
            broken.append(BrokenModel(manifest_path, f"model file {model_path} is missing"))
        else:
            installed.append(InstalledModel(manifest, manifest_path, model_path))
    return installed, broken


def list_models(directory: Path | None = None) -> list[InstalledModel]:
    """The usable models; unusable manifests are logged at WARNING and left out."""
    installed, broken = scan_models(directory)
    for item in broken:
        log.warning("ignoring model manifest %s: %s", item.manifest_path, item.problem)
    return installed


def locate_model(name: str, directory: Path | None = None) -> InstalledModel:
    """Find one model by name; ``ModelNotFoundError`` says what is there and how to prepare it."""
    folder = Path(directory) if directory is not None else models_dir()
    installed, broken = scan_models(folder)
    for model in installed:
        if model.name == name:
            return model
    for item in broken:
        if item.manifest_path.name == name + MANIFEST_SUFFIX:
            raise ModelIntegrityError(
                f"model {name!r} in {folder} cannot be used: {item.problem}; {PREPARE_HINT}"
            )
    present = ", ".join(model.name for model in installed) or "none"
    raise ModelNotFoundError(f"model {name!r} not found in {folder} (installed: {present}); {PREPARE_HINT}")


def read_verified_bytes(model: InstalledModel) -> bytes:
    """Read the model file once and check it against the manifest; return the checked bytes.

    Loading these bytes (rather than reopening the path) means the file that was checked is the
    file that runs.
    """
    try:
        data = model.model_path.read_bytes()
    except OSError as error:
        raise ModelIntegrityError(f"cannot read model file {model.model_path}: {error}") from None
    check_model_bytes(model.manifest, data, str(model.model_path))
    return data


def verify_model(model: InstalledModel) -> None:
    """Raise ``ModelIntegrityError`` unless the model file matches its manifest."""
    read_verified_bytes(model)
