"""Frame synthesis: two frames and a time t in (0, 1) give a frame and a risk map.

Importing this package registers the backends: ``nearest`` and ``blend`` (baselines), ``flow``
(classical optical flow, no weights), ``rife``, ``rife-hdv3`` and ``rife-4.2x`` (ONNX models, when
their module loads) and ``ensemble`` (flow and rife mixed per pixel by their risk). A RIFE module
that cannot load is logged at WARNING and the others stay available; a RIFE backend whose model
file is not prepared raises ``ModelNotFoundError`` when created.

Use ``create_default_backend()`` (or ``create_backend(name)``) and wrap it in
``GuardedSynthesizer`` (scene-cut and duplicate guards).

``DEFAULT_MODEL`` is the best backend measured (bench/tsr_quality.py, 2 loaded CPU cores, this
repository's RIFE ONNX models; PSNR dB / SSIM; details in engine/interp/ensemble.py):

=================================  ==============  ==============  ==============
set                                ensemble        rife-hdv3       flow
=================================  ==============  ==============  ==============
Middlebury "other" (t = 1/2)       35.12 / 0.9531  34.82 / 0.9492  34.67 / 0.9509
scenes 240 fps, subsampled x2-x8   35.10 / 0.9372  34.73 / 0.9307  34.49 / 0.9361
real high-speed, subsampled x2-x8  37.36 / 0.9048  37.30 / 0.9044  35.49 / 0.8780
=================================  ==============  ==============  ==============

It costs flow plus RIFE (about 6.6 s per 640x480 frame on 2 busy CPU cores; RIFE runs on the GPU
when ONNX Runtime finds one). ``flow`` alone is the fast choice (1.1 s there).

When its model is not prepared, ``create_default_backend`` falls back to ``FALLBACK_MODEL``
(``flow``, no weights) with a WARNING that says how to prepare the models.

Whole clips (retime, render, repair, fill) are thousands of frames: there the default is
``DEFAULT_MODEL`` only when ONNX Runtime runs the models on a GPU, and ``CPU_CLIP_MODEL`` (``flow``)
on the CPU, where ``ensemble`` at 1080p makes about 0.03 frames/s against flow's several
(bench/tsr_speed.py). ``default_clip_model()`` says which, and why, in the log.
"""

from __future__ import annotations

import importlib
import logging

from engine.errors import ChronoscopeError, ModelNotFoundError, UnsupportedOptionError
from engine.interp import flow, simple
from engine.interp.base import (
    SynthesisResult,
    Synthesizer,
    available_backends,
    check_frame_pair,
    create_backend,
    register_backend,
)
from engine.interp.guarded import GuardedSynthesizer, nearest_words, synthesis_place, synthesize_guarded

log = logging.getLogger(__name__)

try:
    importlib.import_module("engine.interp.rife")
except (ImportError, OSError, RuntimeError, ChronoscopeError) as error:
    log.warning("synthesis backend 'rife' is not available (%s); using nearest, blend, flow", error)

from engine.interp import ensemble  # noqa: E402  (registered after rife, which it uses)

# The best measured on every set (table in the module docstring; bench/tsr_quality.py).
DEFAULT_MODEL = "ensemble"
FALLBACK_MODEL = "flow"
CPU_CLIP_MODEL = "flow"
PREPARE_MODELS_HINT = "run `chronoscope models prepare` (or `make demo`) to convert the RIFE weights"


def default_clip_model() -> str:
    """The default model for whole clips: ``DEFAULT_MODEL`` on a GPU, ``CPU_CLIP_MODEL`` on the CPU."""
    from engine.models.runtime import GPU_PROVIDERS, choose_providers

    providers, _ = choose_providers()
    if any(provider in GPU_PROVIDERS for provider in providers):
        return DEFAULT_MODEL
    log.info(
        "no GPU for the models: clips default to %s (%s is too slow on the CPU for whole clips; "
        "choose it with --model)",
        CPU_CLIP_MODEL,
        DEFAULT_MODEL,
    )
    return CPU_CLIP_MODEL


def resolve_clip_model(model: str | None) -> str:
    """The model a whole-clip render really uses: ``model`` when given, else this machine's default
    (``default_clip_model``), or ``FALLBACK_MODEL`` when the default's RIFE weights are not
    prepared. Renders put this name in their content hash, so a clip rendered on a GPU machine
    with the default is not taken for one rendered on the CPU with its default."""
    if model is not None:
        return model
    name = default_clip_model()
    if name == FALLBACK_MODEL:
        return name
    try:
        from engine.interp.rife import installed_rife_models
    except (ImportError, OSError, RuntimeError, ChronoscopeError) as error:
        log.warning("default model %s is not available, using %s: %s", name, FALLBACK_MODEL, error)
        return FALLBACK_MODEL
    if not installed_rife_models(None):
        log.warning(
            "default model %s is not available, using %s: %s", name, FALLBACK_MODEL, PREPARE_MODELS_HINT
        )
        return FALLBACK_MODEL
    return name


def clip_model_help() -> str:
    """The ``--model`` help of the commands that render whole clips (retime, render, repair, fill)."""
    return (
        f"synthesis model (default {DEFAULT_MODEL} when the models run on a GPU, {CPU_CLIP_MODEL} on "
        f"the CPU); one of: {', '.join(available_backends())}"
    )


def create_default_backend(*, for_clips: bool = False) -> Synthesizer:
    """The default backend: ``resolve_clip_model(None)`` when ``for_clips`` (the one place that
    decides it, so content hashes name the model that really renders), else ``DEFAULT_MODEL``;
    ``FALLBACK_MODEL`` with a WARNING when the default's models are not prepared."""
    name = resolve_clip_model(None) if for_clips else DEFAULT_MODEL
    try:
        return create_backend(name)
    except (ModelNotFoundError, UnsupportedOptionError) as error:
        reason = str(error)
        if PREPARE_MODELS_HINT not in reason:
            reason = f"{reason}; {PREPARE_MODELS_HINT}"
        log.warning("default model %s is not available, using %s: %s", name, FALLBACK_MODEL, reason)
        return create_backend(FALLBACK_MODEL)


__all__ = [
    "CPU_CLIP_MODEL",
    "DEFAULT_MODEL",
    "FALLBACK_MODEL",
    "GuardedSynthesizer",
    "SynthesisResult",
    "Synthesizer",
    "available_backends",
    "clip_model_help",
    "check_frame_pair",
    "create_backend",
    "default_clip_model",
    "resolve_clip_model",
    "create_default_backend",
    "ensemble",
    "flow",
    "register_backend",
    "nearest_words",
    "simple",
    "synthesis_place",
    "synthesize_guarded",
]
