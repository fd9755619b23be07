"""Motion statistics of a window of frames: fair, cheap inputs for the learned speed estimator.

Plain numpy and OpenCV. Each function takes consecutive frames (grey or RGB, any size; they are
analysed in grey at a reduced width) and returns numbers per transition or per window:

- frame-difference energy per transition,
- DIS optical-flow magnitudes (percentiles, in pixels per frame at the analysis width and as a
  fraction of the frame width, so windows of different sizes compare),
- blur versus displacement: how strongly moving regions are smeared along their motion, per
  pixel of displacement (long exposure relative to the frame interval means ordinary capture;
  crisp frames with tiny displacement are typical of high-rate capture played slowly),
- the flicker spectrum of the mean brightness: mains-powered light flickers at 100 Hz (50 Hz
  mains) or 120 Hz (60 Hz mains); a camera capturing at C fps sees it aliased to a known frequency
  in cycles per frame, which points at C.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction

import cv2
import numpy as np

from engine.errors import InsufficientFramesError
from engine.speed.synthetic_retime import to_grey

ANALYSIS_WIDTH_PX = 160
FLOW_PERCENTILES = (50, 90, 99)
MOVING_FLOW_PX = 0.5
MAINS_FLICKER_HZ = (100.0, 120.0)
MIN_FRAMES = 3


def _grey_frames(frames: Sequence[np.ndarray], width_px: int) -> list[np.ndarray]:
    if len(frames) < MIN_FRAMES:
        raise InsufficientFramesError(
            f"{len(frames)} frames given; motion statistics need at least {MIN_FRAMES}"
        )
    return [to_grey(frame, width_px) for frame in frames]


def frame_difference_energy(frames: Sequence[np.ndarray], width_px: int = ANALYSIS_WIDTH_PX) -> np.ndarray:
    """Mean squared grey-level difference per transition (length len(frames) - 1)."""
    grey = _grey_frames(frames, width_px)
    return np.array([float(np.mean((b - a) ** 2)) for a, b in zip(grey[:-1], grey[1:], strict=True)])


def optical_flows(frames: Sequence[np.ndarray], width_px: int = ANALYSIS_WIDTH_PX) -> list[np.ndarray]:
    """DIS optical flow (medium preset) per transition, (h, w, 2) in pixels at the analysis width."""
    grey = [frame.astype(np.uint8) for frame in _grey_frames(frames, width_px)]
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return [flow.calc(a, b, None) for a, b in zip(grey[:-1], grey[1:], strict=True)]


def flow_magnitude_percentiles(flows: Sequence[np.ndarray]) -> np.ndarray:
    """Per transition, the 50th/90th/99th percentile of flow magnitude (pixels per frame)."""
    return np.array([np.percentile(np.hypot(f[..., 0], f[..., 1]), FLOW_PERCENTILES) for f in flows])


def directional_gradient_energy(frame: np.ndarray, flow: np.ndarray) -> tuple[float, float]:
    """Gradient energy along and across the flow direction, over pixels moving more than 0.5 px."""
    gx = cv2.Sobel(frame, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(frame, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.hypot(flow[..., 0], flow[..., 1])
    moving = magnitude > MOVING_FLOW_PX
    if moving.sum() < 16:
        return 0.0, 0.0
    ux, uy = flow[..., 0][moving] / magnitude[moving], flow[..., 1][moving] / magnitude[moving]
    along = gx[moving] * ux + gy[moving] * uy
    across = -gx[moving] * uy + gy[moving] * ux
    return float(np.mean(along**2)), float(np.mean(across**2))


def blur_anisotropy(
    frames: Sequence[np.ndarray], flows: Sequence[np.ndarray], width_px: int = ANALYSIS_WIDTH_PX
) -> np.ndarray:
    """Per transition: 1 - (gradient energy along motion / across motion) in moving regions.

    0 means no directional smear (short exposure or no motion), towards 1 a long smear along the
    motion. NaN where too little moves. Texture can be anisotropic by itself, so compare windows
    of one clip, or let the learned model weigh it.
    """
    grey = _grey_frames(frames, width_px)
    values = []
    for frame, flow in zip(grey[1:], flows, strict=True):
        along, across = directional_gradient_energy(frame, flow)
        values.append(1.0 - along / across if across > 0 else math.nan)
    return np.array(values)


def brightness_series(frames: Sequence[np.ndarray], width_px: int = ANALYSIS_WIDTH_PX) -> np.ndarray:
    """Mean grey level per frame, using only pixels that stay still across the window where possible.

    Moving objects change the mean too; restricting to the least-changing half of the pixels
    leaves mostly the light.
    """
    grey = np.stack(_grey_frames(frames, width_px))
    spread = grey.max(axis=0) - grey.min(axis=0)
    steady = spread <= np.median(spread)
    return grey[:, steady].mean(axis=1)


def mains_alias_cycles_per_frame(capture_fps: float | Fraction, flicker_hz: float) -> float:
    """Where light flickering at ``flicker_hz`` appears in footage captured at ``capture_fps``.

    In cycles per frame, folded into [0, 0.5] (0.5 is Nyquist): 100 Hz at 30 fps is 1/3 cycle
    per frame (10 Hz); 120 Hz at 30 fps is 0 (invisible); 100 Hz at 240 fps is 0.417.
    """
    ratio = flicker_hz / float(capture_fps)
    folded = ratio - math.floor(ratio)
    return min(folded, 1.0 - folded)


def flicker_spectrum(brightness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Power of the detrended, windowed brightness series per frequency (cycles per frame, 0..0.5)."""
    series = np.asarray(brightness, dtype=np.float64)
    index = np.arange(len(series))
    slope, intercept = np.polyfit(index, series, 1)
    detrended = (series - (slope * index + intercept)) * np.hanning(len(series))
    power = np.abs(np.fft.rfft(detrended)) ** 2
    return np.fft.rfftfreq(len(series)), power


def flicker_peak(brightness: np.ndarray) -> tuple[float, float]:
    """The strongest flicker frequency (cycles per frame, excluding DC) and its share of the power."""
    frequencies, power = flicker_spectrum(brightness)
    if len(power) < 3 or power[1:].sum() <= 0:
        return 0.0, 0.0
    peak = int(np.argmax(power[1:])) + 1
    return float(frequencies[peak]), float(power[peak] / power[1:].sum())


def capture_rates_matching_flicker(
    peak_cycles_per_frame: float, candidates_fps: Sequence[float], tolerance: float = 0.03
) -> list[tuple[float, float]]:
    """Candidate capture rates whose mains alias lands on the observed peak: (fps, flicker Hz) pairs."""
    matches = []
    for fps in candidates_fps:
        for flicker_hz in MAINS_FLICKER_HZ:
            if abs(mains_alias_cycles_per_frame(fps, flicker_hz) - peak_cycles_per_frame) <= tolerance:
                matches.append((float(fps), flicker_hz))
    return matches


@dataclass
class MotionStats:
    """One window's motion statistics; ``to_vector`` gives a fixed-length feature vector."""

    frame_count: int
    difference_energy_mean: float
    difference_energy_cv: float
    flow_p50_px: float
    flow_p90_px: float
    flow_p99_px: float
    flow_p90_per_width: float
    blur_anisotropy: float
    blur_per_displacement_px: float
    flicker_peak_cycles_per_frame: float
    flicker_peak_share: float
    analysis_width_px: int = ANALYSIS_WIDTH_PX
    notes: list[str] = field(default_factory=list)

    FEATURES = (
        "difference_energy_mean",
        "difference_energy_cv",
        "flow_p50_px",
        "flow_p90_px",
        "flow_p99_px",
        "flow_p90_per_width",
        "blur_anisotropy",
        "blur_per_displacement_px",
        "flicker_peak_cycles_per_frame",
        "flicker_peak_share",
    )

    def to_vector(self) -> np.ndarray:
        return np.array([getattr(self, name) for name in self.FEATURES], dtype=np.float32)

    def to_dict(self) -> dict:
        return asdict(self)


def window_motion_stats(frames: Sequence[np.ndarray], width_px: int = ANALYSIS_WIDTH_PX) -> MotionStats:
    """All statistics of one window of consecutive frames (at least 3; 16 to 64 is typical)."""
    grey = _grey_frames(frames, width_px)
    energy = np.array([float(np.mean((b - a) ** 2)) for a, b in zip(grey[:-1], grey[1:], strict=True)])
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    as_bytes = [frame.astype(np.uint8) for frame in grey]
    flows = [flow.calc(a, b, None) for a, b in zip(as_bytes[:-1], as_bytes[1:], strict=True)]
    percentiles = flow_magnitude_percentiles(flows).mean(axis=0)
    anisotropy_values = np.array(
        [
            1.0 - along / across if across > 0 else math.nan
            for along, across in (
                directional_gradient_energy(frame, f) for frame, f in zip(grey[1:], flows, strict=True)
            )
        ]
    )
    notes = []
    anisotropy = float(np.nanmean(anisotropy_values)) if np.isfinite(anisotropy_values).any() else 0.0
    if not np.isfinite(anisotropy_values).any():
        notes.append("too little motion for blur anisotropy")
    displacement = float(percentiles[1])
    blur_per_px = anisotropy / displacement if displacement > MOVING_FLOW_PX else 0.0
    peak, share = flicker_peak(brightness_series(frames, width_px)) if len(frames) >= 8 else (0.0, 0.0)
    return MotionStats(
        frame_count=len(frames),
        difference_energy_mean=float(energy.mean()),
        difference_energy_cv=float(energy.std() / energy.mean()) if energy.mean() > 0 else 0.0,
        flow_p50_px=float(percentiles[0]),
        flow_p90_px=float(percentiles[1]),
        flow_p99_px=float(percentiles[2]),
        flow_p90_per_width=float(percentiles[1]) / grey[0].shape[1],
        blur_anisotropy=anisotropy,
        blur_per_displacement_px=blur_per_px,
        flicker_peak_cycles_per_frame=peak,
        flicker_peak_share=share,
        analysis_width_px=grey[0].shape[1],
        notes=notes,
    )
