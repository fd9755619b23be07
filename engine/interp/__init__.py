"""Frame synthesis: two frames and a time t in (0, 1) give a frame and a risk map.

Importing this package registers the backends: ``nearest`` and ``blend`` (baselines), ``flow``
(classical optical flow, no weights) and, when its module and model load, ``rife``. A ``rife``
that cannot load is logged at WARNING and the others stay available.

Use ``create_backend(name)`` and wrap it in ``GuardedSynthesizer`` (scene-cut and duplicate guards).
"""

from __future__ import annotations

import importlib
import logging

from engine.errors import ChronoscopeError
from engine.interp import flow, simple
from engine.interp.base import (
    SynthesisResult,
    Synthesizer,
    available_backends,
    check_frame_pair,
    create_backend,
    register_backend,
)
from engine.interp.guarded import GuardedSynthesizer, synthesize_guarded

log = logging.getLogger(__name__)

try:
    importlib.import_module("engine.interp.rife")
except (ImportError, OSError, RuntimeError, ChronoscopeError) as error:
    log.warning("synthesis backend 'rife' is not available (%s); using nearest, blend, flow", error)

__all__ = [
    "GuardedSynthesizer",
    "SynthesisResult",
    "Synthesizer",
    "available_backends",
    "check_frame_pair",
    "create_backend",
    "flow",
    "register_backend",
    "simple",
    "synthesize_guarded",
]
