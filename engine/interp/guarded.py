"""Guards around any backend: no synthesis across a scene cut, none needed between duplicates.

``GuardedSynthesizer(backend)`` is what callers (server, CLI, retime) should use: it validates the
pair, then

- across a scene cut (``engine.interp.scenecut``) it falls back to ``nearest``, says so in
  ``result.notes`` and logs a WARNING: a blend or a warp across a cut is never right;
- for a duplicate pair (``engine.interp.duplicates``) it returns the nearer frame without running
  the backend: the pictures are the same, so synthesis could only add artefacts;
- otherwise it runs the backend.

The guards are measured once per pair, so ``synthesize_many`` costs one check for all times.

The scene-cut WARNING names where the pair is when a caller said so with ``synthesis_place``
(retime and render: the clip, its source frames and the frames of the output), so that an editor
can find the cut; the guard itself knows only two pictures.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from contextvars import ContextVar

import numpy as np

from engine.interp.base import SynthesisResult, Synthesizer, Time, check_times
from engine.interp.duplicates import is_duplicate_pair
from engine.interp.scenecut import scene_cut_score
from engine.interp.simple import NearestSynthesizer

log = logging.getLogger(__name__)

_PLACE: ContextVar[str] = ContextVar("synthesis_place", default="")


@contextlib.contextmanager
def synthesis_place(place: str) -> Iterator[None]:
    """Name where the pairs synthesized inside are (``V1 #2 'A001': between source frames 10 and
    11, frames 20-23 of the render``): the guards' WARNINGs start with it. Per thread and task."""
    token = _PLACE.set(place)
    try:
        yield
    finally:
        _PLACE.reset(token)


def nearest_words(model: str) -> str:
    """``nearest frame instead of flow``; for the ``nearest`` model itself, what it shows anyway."""
    if model == NearestSynthesizer.NAME:
        return "nearest frame (what the nearest model shows anyway)"
    return f"nearest frame instead of {model}"


class GuardedSynthesizer(Synthesizer):
    """Any backend with the scene-cut and duplicate-frame guards applied."""

    NAME = "guarded"
    DESCRIPTION = "a backend behind the scene-cut and duplicate-frame guards"

    def __init__(
        self, backend: Synthesizer, *, detect_cuts: bool = True, detect_duplicates: bool = True
    ) -> None:
        self.backend = backend
        self.detect_cuts = detect_cuts
        self.detect_duplicates = detect_duplicates

    @property
    def execution_provider(self) -> str:
        return self.backend.execution_provider

    def close(self) -> None:
        self.backend.close()

    def synthesize_many(
        self, frame0: np.ndarray, frame1: np.ndarray, times: Sequence[Time]
    ) -> list[SynthesisResult]:
        check_times(frame0, frame1, times)
        if not times:
            return []
        if self.detect_duplicates and is_duplicate_pair(frame0, frame1):
            note = f"duplicate frames: nearest frame repeated instead of {self.backend.NAME}"
            # Not a loss of quality (the frames are the same), and a held shot repeats this for
            # every pair: the note goes into each result (and the retime report), the log stays quiet.
            log.debug("%s", note)
            return [self._fallback(frame0, frame1, t, note, risk_value=0.0) for t in times]
        if self.detect_cuts:
            score = scene_cut_score(frame0, frame1)
            if score.is_cut:
                note = (
                    f"scene cut (residual {score.residual:.3f}, histogram distance "
                    f"{score.histogram_distance:.3f}): {nearest_words(self.backend.NAME)}"
                )
                place = _PLACE.get()
                log.warning("%s%s", f"{place}: " if place else "", note)
                return [self._fallback(frame0, frame1, t, note, risk_value=1.0) for t in times]
        return self.backend.synthesize_many(frame0, frame1, times)

    def _fallback(
        self, frame0: np.ndarray, frame1: np.ndarray, t: Time, note: str, *, risk_value: float
    ) -> SynthesisResult:
        return nearest_instead(frame0, frame1, [t], note, risk_value=risk_value)[0]


def nearest_instead(
    frame0: np.ndarray, frame1: np.ndarray, times: Sequence[Time], note: str, *, risk_value: float
) -> list[SynthesisResult]:
    """The nearer frame at each time, marked as a fallback with ``note`` and a flat risk: what a
    guard gives where synthesis would be wrong (a cut) or pointless (duplicates)."""
    nearest = NearestSynthesizer()
    results = []
    for t in times:
        result = nearest.synthesize(frame0, frame1, t)
        result.risk = np.full(frame0.shape[:2], risk_value, np.float32)
        result.notes.append(note)
        result.fallback = True
        results.append(result)
    return results


def synthesize_guarded(
    backend: Synthesizer, frame0: np.ndarray, frame1: np.ndarray, t: Time
) -> SynthesisResult:
    """One in-between frame from ``backend`` with the scene-cut and duplicate guards applied."""
    return GuardedSynthesizer(backend).synthesize(frame0, frame1, t)
