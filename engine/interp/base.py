"""The one frame-synthesis interface: two frames and a time t in (0, 1) give a frame and a risk map.

Frames are numpy arrays of shape (height, width, channels), RGB or RGBA, dtype uint8 or uint16
(10/12/16-bit content scaled to the full uint16 range). A backend returns a frame of the same
shape and dtype as its inputs, and a float32 risk map of shape (height, width) in [0, 1] where 1
means "this pixel is probably wrong" (occlusion, flow disagreement, a cut). Alpha, when present,
is carried through by the caller-facing helpers, not invented by backends.

A backend subclasses ``Synthesizer``, sets ``NAME`` and implements ``synthesize``; everything else
has a default. Backends are registered with ``register_backend`` and created by name through
``create_backend``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from engine.errors import UnsupportedOptionError
from engine.interp.checks import local_risk

log = logging.getLogger(__name__)

Time = float | Fraction


@dataclass
class SynthesisResult:
    """One generated frame, its per-pixel risk, and a short account of how it was made."""

    frame: np.ndarray
    risk: np.ndarray
    backend: str
    notes: list[str] = field(default_factory=list)
    fallback: bool = False
    """The frame is not the backend's: a guard repeated the nearest frame (scene cut, duplicates)."""
    local_risk_given: float | None = None
    """The frame's local risk as its maker gave it, or None: ``risk_local`` computes it from the risk
    map. ``flow`` gives its own (its map weighed by the picture's texture, since a flat area warped
    wrong still looks right); a client gets the engine's."""

    @property
    def risk_score(self) -> float:
        """One number per frame for an editor, in [0, 1]: the mean of the risk map.

        Frames are ranked by it: a higher score means a larger part of the frame is probably
        wrong. The mean was chosen by measurement (bench/tsr_quality.py): the rank correlation
        with the real error over all frames of a set is higher for the mean than for the mean of
        the worst 1% (which is 1.0 for most frames with any occlusion, and so ranks nothing).
        """
        return float(self.risk.mean(dtype=np.float64)) if self.risk.size else 0.0

    @property
    def risk_local(self) -> float:
        """The worst subject-sized patch of the risk map (``engine.interp.checks.local_risk``):
        high when one region is probably wrong, however clean the rest of the frame; the backend's
        own measure where it gives one (``local_risk_given``)."""
        if self.local_risk_given is not None:
            return self.local_risk_given
        return local_risk(self.risk)


def check_frame_pair(frame0: np.ndarray, frame1: np.ndarray, t: Time) -> float:
    """Validate two frames and a time; return t as float. Raises ``UnsupportedOptionError``."""
    if frame0.shape != frame1.shape or frame0.dtype != frame1.dtype:
        raise UnsupportedOptionError(
            f"frames differ: {frame0.shape} {frame0.dtype} and {frame1.shape} {frame1.dtype}; "
            "both frames must have the same shape and dtype"
        )
    if frame0.ndim != 3 or frame0.shape[2] not in (3, 4):
        raise UnsupportedOptionError(f"frame shape {frame0.shape} is not (height, width, 3 or 4)")
    if frame0.dtype not in (np.uint8, np.uint16):
        raise UnsupportedOptionError(f"frame dtype {frame0.dtype} is not supported; use uint8 or uint16")
    t_value = float(t)
    if not 0.0 < t_value < 1.0:
        raise UnsupportedOptionError(f"t = {t} is outside (0, 1); in-between frames need 0 < t < 1")
    return t_value


def check_times(frame0: np.ndarray, frame1: np.ndarray, times: Sequence[Time]) -> list[float]:
    """``check_frame_pair`` for every time of a ``synthesize_many`` call; the times as floats."""
    return [check_frame_pair(frame0, frame1, t) for t in times]


class Synthesizer:
    """A frame-synthesis backend. Subclasses set ``NAME`` and implement ``synthesize`` (one frame)
    or ``synthesize_many`` (several times of one pair, sharing work such as flow); the base class
    derives the other from it."""

    NAME: str = ""
    DESCRIPTION: str = ""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        base = Synthesizer
        neither = cls.synthesize is base.synthesize and cls.synthesize_many is base.synthesize_many
        if cls.NAME and neither:  # a named backend; shared bases without a NAME may leave both
            raise TypeError(
                f"synthesis backend {cls.__name__} implements neither synthesize nor synthesize_many"
            )

    def synthesize(self, frame0: np.ndarray, frame1: np.ndarray, t: Time) -> SynthesisResult:
        """Return the frame at time ``t`` between ``frame0`` (t=0) and ``frame1`` (t=1)."""
        return self.synthesize_many(frame0, frame1, [t])[0]

    def synthesize_many(
        self, frame0: np.ndarray, frame1: np.ndarray, times: Sequence[Time]
    ) -> list[SynthesisResult]:
        """Several in-between frames of one pair; backends may share work (flow) across them."""
        results = []
        for t in times:
            cancel_point()
            results.append(self.synthesize(frame0, frame1, t))
        return results

    @property
    def execution_provider(self) -> str:
        """Where it runs, for ``status``: e.g. 'CPU', 'CUDAExecutionProvider'."""
        return "CPU"

    def files_changed(self) -> bool:
        """Whether the model files this backend was made from changed on disk since (replaced
        under their name, removed, or a preferred model installed): a cache of backends, as the
        engine keeps, then makes a new one. Backends made from no file never change."""
        return False

    def close(self) -> None:
        """Release models or sessions; the default holds nothing."""


_CANCEL_CHECK: ContextVar[Callable[[], None] | None] = ContextVar("chronoscope_cancel_check", default=None)


@contextlib.contextmanager
def cancellable(check_cancelled: Callable[[], None] | None) -> Iterator[None]:
    """Within this block (on this thread), backends call ``check_cancelled`` at each
    ``cancel_point``: between network passes, so cancelling a batch of many in-between frames
    does not wait for the whole batch."""
    token = _CANCEL_CHECK.set(check_cancelled)
    try:
        yield
    finally:
        _CANCEL_CHECK.reset(token)


def cancel_point() -> None:
    """Raise the caller's cancellation (``JobCancelledError``) here, if it asked for one."""
    check = _CANCEL_CHECK.get()
    if check is not None:
        check()


_REGISTRY: dict[str, Callable[..., Synthesizer]] = {}
_RESCANS: list[Callable[[], object]] = []
_EXPLAINERS: list[Callable[[str], str | None]] = []


def register_rescan(rescan: Callable[[], object], explain: Callable[[str], str | None] | None = None) -> None:
    """Backends that come from files (the fine-tuned models in the models folder): ``rescan``
    registers those there now, so a model added while the engine runs is found without a restart
    (``refresh_backends``); ``explain`` says why a name it would serve is not usable (a model whose
    manifest is broken), or None."""
    _RESCANS.append(rescan)
    if explain is not None:
        _EXPLAINERS.append(explain)


def refresh_backends() -> list[str]:
    """Run every rescan (see ``register_rescan``); return the backend names, sorted."""
    for rescan in _RESCANS:
        rescan()
    return available_backends()


def register_backend(factory: Callable[..., Synthesizer], name: str | None = None) -> None:
    """Make a backend creatable by name. ``factory`` is usually the ``Synthesizer`` subclass."""
    key = name or getattr(factory, "NAME", "")
    if not key:
        raise ValueError(f"backend {factory!r} has no NAME")
    _REGISTRY[key] = factory


def unregister_backend(name: str) -> None:
    """Make ``name`` no longer creatable (a fine-tuned model removed from the models folder)."""
    _REGISTRY.pop(name, None)


def available_backends() -> list[str]:
    """Names of the registered backends, sorted."""
    return sorted(_REGISTRY)


def check_backend_name(name: str) -> None:
    """Raise ``UnsupportedOptionError`` listing those available when no backend is called ``name``,
    after a rescan (a model added since start) and with the reason a model of that name is there
    but unusable, where one is."""
    if name in _REGISTRY or name in refresh_backends():
        return
    reasons = [reason for explain in _EXPLAINERS if (reason := explain(name))]
    why = "".join(f"; {reason}" for reason in reasons)
    available = ", ".join(available_backends()) or "none"
    raise UnsupportedOptionError(f"synthesis model not available: {name!r}{why}; available: {available}")


def create_backend(name: str, **options) -> Synthesizer:
    """Create a backend by name; an unknown name lists those available."""
    check_backend_name(name)
    return _REGISTRY[name](**options)
