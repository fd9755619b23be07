"""ONNX Runtime sessions for installed models, on the best execution provider that works here.

Preference: TensorRT, then CUDA, then CPU. A GPU provider is asked for only when ONNX Runtime
lists it *and* its native library and the NVIDIA driver load; this keeps ONNX Runtime from
printing library errors on machines without a GPU. When a GPU build of ONNX Runtime ends up on
the CPU, that is a fallback and is logged at WARNING with the reason; ``ModelSession.provider``
tells callers (``status``) where the model runs.

``CHRONOSCOPE_ORT_PROVIDERS`` (comma-separated provider names, e.g. ``CPUExecutionProvider``)
overrides the choice, for benchmarks and for machines where a GPU provider misbehaves.

The model file is read once, checked against the SHA-256 in its manifest, and the checked bytes
are what the session is built from; a file that does not match is refused.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi.onnxruntime_pybind11_state import Fail as OrtFail
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidGraph as OrtInvalidGraph
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidProtobuf as OrtInvalidProtobuf

from engine.errors import ModelIntegrityError, UnsupportedOptionError
from engine.models.manifest import ModelManifest
from engine.models.registry import InstalledModel, locate_model, read_verified_bytes
from engine.places import places

log = logging.getLogger(__name__)

TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
PROVIDER_PREFERENCE = (TENSORRT, CUDA, CPU)
GPU_PROVIDERS = (TENSORRT, CUDA)
ENV_PROVIDERS = "CHRONOSCOPE_ORT_PROVIDERS"

_PROVIDER_LIBRARIES = {
    TENSORRT: "onnxruntime_providers_tensorrt",
    CUDA: "onnxruntime_providers_cuda",
}
_DRIVER_LIBRARY = {"linux": "libcuda.so.1", "win32": "nvcuda.dll"}


@dataclass
class ModelSession:
    """A loaded model: its manifest, the ONNX Runtime session and the provider it runs on."""

    name: str
    manifest: ModelManifest
    session: ort.InferenceSession
    provider: str
    fallback_reason: str = ""

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model; returns every output by name."""
        names = self.manifest.output_names()
        values = self.session.run(names, feeds)
        return dict(zip(names, values, strict=True))


def _provider_library_path(provider: str) -> Path:
    stem = _PROVIDER_LIBRARIES[provider]
    capi = Path(ort.__file__).parent / "capi"
    return capi / (f"{stem}.dll" if sys.platform == "win32" else f"lib{stem}.so")


def nvidia_device_present() -> bool:
    """Whether this machine seems to have an NVIDIA GPU, whether or not its driver works: the
    kernel driver's device nodes on Linux (WSL2's GPU device), the driver's DLL on Windows; never
    on macOS."""
    if sys.platform.startswith("linux"):
        # WSL2 shows a Windows GPU through /dev/dxg and its own libcuda, not the kernel driver's nodes
        places = ("/proc/driver/nvidia/gpus", "/dev/nvidia0", "/dev/dxg", "/usr/lib/wsl/lib/libcuda.so.1")
        return any(Path(place).exists() for place in places)
    if sys.platform == "win32":
        system = Path(os.environ.get("SystemRoot", r"C:\Windows")) / "System32"
        return (system / "nvapi64.dll").exists() or (system / "nvcuda.dll").exists()
    return False


def _driver_unusable_reason() -> str:
    """Empty when the NVIDIA driver library loads; otherwise why not."""
    if sys.platform not in _DRIVER_LIBRARY:
        return f"no CUDA on {sys.platform}"
    try:
        ctypes.CDLL(_DRIVER_LIBRARY[sys.platform])
    except OSError as error:
        first_line = str(error).splitlines()[0]
        return f"the NVIDIA driver ({_DRIVER_LIBRARY[sys.platform]}) does not load: {first_line}"
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        # Loads CUDA and cuDNN from NVIDIA's pip packages when present; it prints what it misses.
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            try:
                preload(directory="")
            except OSError as error:
                log.debug("onnxruntime.preload_dlls: %s", error)
        if printed.getvalue().strip():
            log.debug("onnxruntime.preload_dlls: %s", printed.getvalue().strip())
    return ""


def _gpu_unusable_reason(provider: str) -> str:
    """Empty when ``provider`` can probably start here; otherwise why not."""
    library = _provider_library_path(provider)
    if not library.is_file():
        return f"{library.name} is not part of this onnxruntime build"
    try:
        ctypes.CDLL(str(library))
    except OSError as error:
        return f"{provider} does not load: {str(error).splitlines()[0]}"
    return ""


def choose_providers() -> tuple[list[str], str]:
    """Return the providers to ask for, in order, and why GPU ones were left out (or '')."""
    available = ort.get_available_providers()
    override = os.environ.get(ENV_PROVIDERS, "").strip()
    if override:
        wanted = [name.strip() for name in override.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in available]
        if unknown:
            raise UnsupportedOptionError(
                f"{ENV_PROVIDERS}={override!r} names providers this onnxruntime lacks: {', '.join(unknown)}; "
                f"available: {', '.join(available)}"
            )
        return wanted, ""
    chosen: list[str] = []
    reasons: list[str] = []
    driver_problem = ""
    if any(provider in available for provider in GPU_PROVIDERS):
        driver_problem = _driver_unusable_reason()
        if driver_problem:
            reasons.append(driver_problem)
    for provider in PROVIDER_PREFERENCE:
        if provider not in available or (provider in GPU_PROVIDERS and driver_problem):
            continue
        if provider in GPU_PROVIDERS:
            reason = _gpu_unusable_reason(provider)
            if reason:
                reasons.append(reason)
                continue
        chosen.append(provider)
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen, "; ".join(reasons)


def _provider_options(provider: str) -> dict[str, str]:
    if provider == TENSORRT:
        cache = places().cache_dir / "tensorrt"
        cache.mkdir(parents=True, exist_ok=True)
        return {"trt_engine_cache_enable": "True", "trt_engine_cache_path": str(cache)}
    return {}


def create_session(model: str | InstalledModel, *, threads: int = 0) -> ModelSession:
    """Load an installed model (by name, or as found by the registry) into ONNX Runtime.

    ``threads`` limits intra-op threads on the CPU (0: ONNX Runtime's default, all cores).
    Raises ``ModelNotFoundError`` or ``ModelIntegrityError``.
    """
    installed = locate_model(model) if isinstance(model, str) else model
    data = read_verified_bytes(installed)
    providers, skipped = choose_providers()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(
            data,
            sess_options=options,
            providers=[(name, _provider_options(name)) for name in providers],
        )
    except (OrtFail, OrtInvalidGraph, OrtInvalidProtobuf, RuntimeError) as error:
        raise ModelIntegrityError(f"ONNX Runtime cannot load {installed.model_path}: {error}") from None
    used = session.get_providers()[0]
    reason = ""
    if used not in GPU_PROVIDERS and any(name in ort.get_available_providers() for name in GPU_PROVIDERS):
        requested_gpu = [name for name in providers if name in GPU_PROVIDERS]
        reason = skipped or (
            f"{', '.join(requested_gpu)} did not start" if requested_gpu else "no GPU provider was requested"
        )
        if not os.environ.get(ENV_PROVIDERS):
            # a machine without an NVIDIA GPU is told once, quietly; one with a GPU it cannot use
            # is warned, since that is a set-up to fix
            report = log.warning if nvidia_device_present() else log.info
            report("model %s runs on the CPU, not the GPU: %s", installed.name, reason)
    log.info("model %s loaded on %s", installed.name, used)
    return ModelSession(installed.name, installed.manifest, session, used, reason)
