"""The baselines editors know: ``nearest`` (frame repeat) and ``blend`` (cross-fade of the pair).

Both are exact for uint8 and uint16: ``nearest`` returns a copy of one input; ``blend`` computes
(1 - t) * frame0 + t * frame1 in float64 and rounds half up, a band of rows at a time, so a
1080p blend holds a few MiB of float64 instead of three whole-frame copies. Alpha is treated like the colour
channels (straight alpha: repeated by ``nearest``, cross-faded by ``blend``).

Their risk map is where the two frames differ: there a repeated frame is displaced in time and a
blend shows a double image.
"""

from __future__ import annotations

import numpy as np

from engine.interp.base import SynthesisResult, Synthesizer, Time, check_frame_pair, register_backend

DIFFERENCE_FOR_FULL_RISK = 0.1
BLEND_BAND_ROWS = 64


def difference_risk(frame0: np.ndarray, frame1: np.ndarray) -> np.ndarray:
    """Per-pixel risk in [0, 1] from the largest channel difference; full at 10% of full range."""
    scale = np.float32(1.0 / (float(np.iinfo(frame0.dtype).max) * DIFFERENCE_FOR_FULL_RISK))
    risk = np.empty(frame0.shape[:2], dtype=np.float32)
    for top in range(0, frame0.shape[0], BLEND_BAND_ROWS):
        rows = slice(top, top + BLEND_BAND_ROWS)
        difference = np.abs(frame0[rows].astype(np.float32) - frame1[rows].astype(np.float32)).max(axis=2)
        risk[rows] = np.clip(difference * scale, 0.0, 1.0)
    return risk


def nearest_index(t: float) -> int:
    """0 for t < 0.5, else 1: the frame closer in time, ties going to the later frame."""
    return 0 if t < 0.5 else 1


class NearestSynthesizer(Synthesizer):
    """Repeat the frame nearer in time."""

    NAME = "nearest"
    DESCRIPTION = "repeat the nearer frame (ties at t = 0.5 take the later frame)"

    def synthesize(self, frame0: np.ndarray, frame1: np.ndarray, t: Time) -> SynthesisResult:
        t_value = check_frame_pair(frame0, frame1, t)
        chosen = frame1 if nearest_index(t_value) else frame0
        return SynthesisResult(frame=chosen.copy(), risk=difference_risk(frame0, frame1), backend=self.NAME)


class BlendSynthesizer(Synthesizer):
    """Cross-fade the two frames by their distance in time."""

    NAME = "blend"
    DESCRIPTION = "cross-fade (1 - t) * frame0 + t * frame1"

    def synthesize(self, frame0: np.ndarray, frame1: np.ndarray, t: Time) -> SynthesisResult:
        t_value = check_frame_pair(frame0, frame1, t)
        frame = np.empty_like(frame0)
        for top in range(0, frame0.shape[0], BLEND_BAND_ROWS):
            rows = slice(top, top + BLEND_BAND_ROWS)
            mixed = frame0[rows].astype(np.float64) * (1.0 - t_value)
            mixed += frame1[rows].astype(np.float64) * t_value
            mixed += 0.5
            frame[rows] = np.floor(mixed)
        return SynthesisResult(frame=frame, risk=difference_risk(frame0, frame1), backend=self.NAME)


register_backend(NearestSynthesizer)
register_backend(BlendSynthesizer)
