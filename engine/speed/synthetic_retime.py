"""The second cheap speed stage: is this fake slow motion? Duplicated, blended or interpolated frames.

A clip slowed down in an editor without new information repeats a pattern with a period:

- duplicate: some frames are (nearly) copies of the previous one. Every frame shown twice is
  period 2 with 1 copy (factor 2); 3x is period 3 with 2 copies; 2.5x alternates 2 and 3 showings
  (period 5, 3 copies); a progressive 2:3 pulldown (24 to 30) repeats one frame in 5 (factor 5/4).
- blend: some frames are a weighted mix of their neighbours, f(n) = a f(n-1) + (1-a) f(n+1). We
  solve ``a`` by least squares per frame; the residual is near zero for a mixed frame and large
  for a captured one (a moving edge sits where neither neighbour has it). Cross-fade frame
  blending gives that pattern with a period.
- interpolate: frames made by optical-flow interpolation are resampled and averaged, so their
  moving regions lose high-frequency energy; the sharpness of moving regions dips with a period.
- linear motion (the interpolation residue that compression does not imitate): an interpolator
  places every pixel of a made frame on the straight, evenly stepped path between two captured
  frames, so inside a group of ``k`` frames the motion steps are equal, flow(i, i+1) ~
  flow(i, i+k) / k, and only at a captured frame does the motion change. Per frame the change of
  motion is measured as |flow(i -> i+1) + flow(i -> i-1)| relative to the motion itself; made frames
  sit near zero, captured ones carry all the real acceleration, once per period. H.264 B-frames
  are bidirectional predictions too and mimic the sharpness and midpoint cues with the encoder's
  own period (P every 2-4 frames, quality alternating with b-pyramids), but they keep pixels where
  the real motion put them, so they do not make motion linear.

For each cue the frames are split into "synthetic" and "captured" by a threshold between two
clusters (Otsu on log values), and the split must repeat with a period of 2..8 frames in at least
90% (duplicates) or 85% (blends, interpolation) of the window. The factor is transitions per period
over captured frames per period. Compression noise is handled by measuring at reduced size, on
blocks, in the moving parts of the picture, and by requiring a clear gap between the clusters.

What the factor means for speed: the captured frames advance P / factor times a second of
playback. Assuming those frames were real time, s = 1 / factor (``to_estimate``). A factor below 2
whose captured-frame rate is a standard camera rate (24 -> 30 pulldown) is a frame-rate conversion
and stays real time. Which assumption holds is for the learned stage to confirm on every
``factor``-th frame.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import cv2
import numpy as np

from engine.errors import InsufficientFramesError, UnsupportedOptionError
from engine.speed.result import Evidence, SpeedClass, SpeedEstimate

log = logging.getLogger(__name__)

STAGE = "synthetic_retime"
MIN_FRAMES = 12
MAX_PERIOD_FRAMES = 8
ANALYSIS_WIDTH_PX = 160
SHARPNESS_WIDTH_PX = 320
BLOCK_PX = 4
TOP_BLOCK_FRACTION = 0.1
STILL_LEVEL = 0.8
STILL_NOISY_LEVEL = 4.0
STILL_NOISE_RATIO = 1.6
CROSS_FADE_PREFERENCE = 0.7
DUPLICATE_AGREEMENT = 0.9
PATTERN_AGREEMENT = 0.85
DUPLICATE_SEPARATION = 3.0
DUPLICATE_RELATIVE_CUT = 0.25
BLEND_SEPARATION = 4.0
BLEND_WEIGHT_RANGE = (0.12, 0.88)
INTERPOLATION_SEPARATION = 2.2
INTERPOLATION_MIN_DIP = 0.04
INTERPOLATION_MIN_SCORE = 20.0
LINEARITY_WIDTH_PX = 320
LINEARITY_PERIODS = (2, 3, 4, 5, 8)
LINEARITY_MIN_REPEATS = 4
LINEARITY_MIN_MOTION_PX = 0.25
LINEARITY_MIN_GRADIENT = 30.0
LINEARITY_MIN_PIXELS = 50
LINEARITY_FLOOR = 0.02
LINEARITY_MIN_CONTRAST = 0.4
LINEARITY_MIN_CONSISTENCY = 0.85
LINEARITY_DIVISOR_SHARE = 0.7
LINEARITY_DECISIVE_CONTRAST = 0.8
BLEND_MIN_CAPTURED_RESIDUAL = 0.18
STANDARD_CAMERA_RATES = (
    Fraction(24000, 1001),
    Fraction(24),
    Fraction(25),
    Fraction(30000, 1001),
    Fraction(30),
)
KINDS = ("duplicate", "blend", "interpolate")


@dataclass
class PeriodicPattern:
    """A boolean pattern that repeats: which phases of each period are synthetic, and how well it fits."""

    period_frames: int
    synthetic_phases: tuple[int, ...]
    agreement: float

    @property
    def factor(self) -> Fraction:
        return Fraction(self.period_frames, self.period_frames - len(self.synthetic_phases))


@dataclass
class RetimeFinding:
    """What the synthetic-retime check found in one window of frames.

    ``kind`` is one of duplicate, blend, interpolate, none (captured frames throughout) or still
    (too little motion to tell). ``phase`` is the index, within the window, of the first
    synthetic frame; ``synthetic_phases`` lists all synthetic positions within one period.
    ``motion_tested`` (kind none) says the window had enough textured motion for the
    linear-motion test to find made frames had there been any: no pattern is then evidence.
    """

    kind: str
    factor: Fraction | None = None
    period_frames: int | None = None
    phase: int | None = None
    synthetic_phases: tuple[int, ...] = ()
    confidence: float = 0.0
    evidence: list[Evidence] = field(default_factory=list)
    motion_tested: bool = False

    @property
    def is_synthetic(self) -> bool:
        return self.kind in KINDS

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "factor": None if self.factor is None else str(self.factor),
            "period_frames": self.period_frames,
            "phase": self.phase,
            "synthetic_phases": list(self.synthetic_phases),
            "confidence": self.confidence,
            "motion_tested": self.motion_tested,
            "evidence": [item.to_dict() for item in self.evidence],
        }

    def to_estimate(self, playback_rate: Fraction) -> SpeedEstimate | None:
        """The speed this finding implies (see the module docstring), or None when it decides nothing."""
        playback_rate = Fraction(playback_rate)
        if self.kind == "still":
            return SpeedEstimate(
                None, playback_rate, None, self.confidence, SpeedClass.STILL, evidence=list(self.evidence)
            )
        if not self.is_synthetic or self.factor is None:
            return None
        captured_rate = playback_rate / self.factor
        evidence = [
            *self.evidence,
            Evidence(STAGE, "captured frames per second of playback", float(captured_rate), 0.0),
        ]
        if self.factor < 2 and any(
            abs(captured_rate - rate) < Fraction(1, 20) for rate in STANDARD_CAMERA_RATES
        ):
            evidence.append(
                Evidence(
                    STAGE,
                    "frame-rate conversion (captured rate is a camera rate)",
                    float(captured_rate),
                    self.confidence,
                )
            )
            return SpeedEstimate(
                Fraction(1),
                playback_rate,
                playback_rate,
                self.confidence * 0.8,
                SpeedClass.REALTIME,
                speed_log2_sigma=0.25,
                evidence=evidence,
            )
        evidence.append(Evidence(STAGE, "assumes the captured frames were real time", None, 0.0))
        return SpeedEstimate(
            1 / self.factor,
            playback_rate,
            None,
            self.confidence * 0.9,
            SpeedClass.SYNTHETIC_SLOWMO,
            speed_log2_sigma=0.5,
            evidence=evidence,
        )


def to_grey(frame: np.ndarray, max_width_px: int) -> np.ndarray:
    """A frame as float32 grey levels (0..255 scale), shrunk (area average) to at most ``max_width_px``."""
    if frame.ndim == 3:
        if frame.shape[2] == 4:
            frame = frame[..., :3]
        source = frame.astype(np.float32)
        if frame.dtype == np.uint16:
            source /= 257.0
        grey = cv2.cvtColor(source, cv2.COLOR_RGB2GRAY)
    elif frame.ndim == 2:
        grey = frame.astype(np.float32) / (257.0 if frame.dtype == np.uint16 else 1.0)
    else:
        raise UnsupportedOptionError(
            f"frame shape {frame.shape} is neither (h, w) grey nor (h, w, 3|4) colour"
        )
    height, width = grey.shape
    if width > max_width_px:
        scale = max_width_px / width
        grey = cv2.resize(grey, (max_width_px, max(8, round(height * scale))), interpolation=cv2.INTER_AREA)
    return grey


def flicker_gains(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Per-frame gains that bring every frame to the window's median brightness.

    Mains-powered light flickers at 100 or 120 Hz; sampled at a camera's rate that is a periodic
    brightness change across whole frames, which would pass for blended or interpolated frames.
    Made frames differ from captured ones in their moving parts, not in overall brightness, so
    dividing the global brightness out removes flicker and keeps every cue this stage uses.
    """
    means = np.array([max(float(frame.mean()), 1.0) for frame in frames])
    return np.float32(np.median(means)) / means.astype(np.float32)


def otsu_split(values: np.ndarray) -> float:
    """Threshold between the two clusters of ``values`` that maximises the between-class variance."""
    ordered = np.sort(values)
    best_threshold, best_score = float(ordered[0]), -1.0
    for cut in range(1, len(ordered)):
        low, high = ordered[:cut], ordered[cut:]
        score = len(low) * len(high) * (high.mean() - low.mean()) ** 2
        if score > best_score:
            best_score, best_threshold = score, float((ordered[cut - 1] + ordered[cut]) / 2)
    return best_threshold


def find_period(
    mask: np.ndarray, min_agreement: float, max_period_frames: int = MAX_PERIOD_FRAMES
) -> PeriodicPattern | None:
    """The shortest period (at least 3 repeats in the window) whose pattern explains ``mask`` best.

    A pattern with all phases synthetic or none is not a pattern. Returns None below
    ``min_agreement``.
    """
    best: PeriodicPattern | None = None
    for period in range(2, max_period_frames + 1):
        if len(mask) < 3 * period:
            break
        phases = np.arange(len(mask)) % period
        rates = np.array([mask[phases == phase].mean() for phase in range(period)])
        synthetic = tuple(int(phase) for phase in np.flatnonzero(rates > 0.5))
        if not 0 < len(synthetic) < period:
            continue
        agreement = float(np.mean(mask == np.isin(phases, synthetic)))
        if agreement >= min_agreement and (best is None or agreement > best.agreement + 0.02):
            best = PeriodicPattern(period, synthetic, agreement)
    return best


def periodic_dips(
    values: np.ndarray, min_agreement: float, max_period_frames: int = MAX_PERIOD_FRAMES
) -> tuple[PeriodicPattern, float, float] | None:
    """Find phases that sit low in every period of a drifting signal; return (pattern, effect, score).

    For each period p the slow drift is removed with a centred moving mean over p samples (which
    a pattern of period p averages out exactly); phases whose mean falls below the midpoint of
    the phase means are the low ones. ``effect`` is the gap between the highest and lowest phase
    means; ``score`` is the F statistic of the phase means (between-phase over within-phase
    variance, each per degree of freedom), which favours the fundamental period over harmonics
    (4 for a true 2) and over long periods that fit noise.
    """
    candidates = []
    for period in range(2, max_period_frames + 1):
        if len(values) < 3 * period + period:
            break
        kernel = np.ones(period) / period
        trend = np.convolve(values, kernel, mode="valid")
        start = period // 2
        residual = values[start : start + len(trend)] - trend
        phases = (np.arange(len(residual)) + start) % period
        means = np.array([residual[phases == phase].mean() for phase in range(period)])
        midpoint = (means.max() + means.min()) / 2
        low_phases = tuple(int(phase) for phase in np.flatnonzero(means < midpoint))
        agreement = float(np.mean((residual < midpoint) == np.isin(phases, low_phases)))
        effect = float(means.max() - means.min())
        within = float(np.sum((residual - means[phases]) ** 2)) / max(len(residual) - period, 1) + 1e-9
        between = float(np.sum((means[phases] - residual.mean()) ** 2)) / (period - 1)
        candidates.append((PeriodicPattern(period, low_phases, agreement), effect, between / within))
    good = [item for item in candidates if item[0].agreement >= min_agreement]
    if not good:
        return None
    return max(good, key=lambda item: item[2])


def block_change(previous: np.ndarray, current: np.ndarray) -> float:
    """How much the moving part of the picture changed: mean of the top 10% of 4x4-block differences."""
    difference = cv2.absdiff(previous, current)
    height, width = difference.shape
    blocks = cv2.resize(
        difference, (max(1, width // BLOCK_PX), max(1, height // BLOCK_PX)), interpolation=cv2.INTER_AREA
    ).ravel()
    count = max(1, int(len(blocks) * TOP_BLOCK_FRACTION))
    return float(np.partition(blocks, len(blocks) - count)[-count:].mean())


def median_block_change(previous: np.ndarray, current: np.ndarray) -> float:
    """The typical 4x4-block difference: sensor and compression noise when most of the picture is still."""
    difference = cv2.absdiff(previous, current)
    height, width = difference.shape
    size = (max(1, width // BLOCK_PX), max(1, height // BLOCK_PX))
    return float(np.median(cv2.resize(difference, size, interpolation=cv2.INTER_AREA)))


def blend_fit(previous: np.ndarray, current: np.ndarray, following: np.ndarray) -> tuple[float, float]:
    """Least-squares ``a`` in current ~ a previous + (1 - a) following, and the relative residual.

    The residual is divided by the energy of current - following, so 0 means an exact mix and 1
    means the mix explains nothing.
    """
    x = (current - following).ravel()
    y = (previous - following).ravel()
    yy = float(y @ y)
    xx = float(x @ x)
    if yy <= 1e-9 or xx <= 1e-9:
        return (1.0 if xx <= 1e-9 else 0.0), 0.0
    weight = float(x @ y) / yy
    residual = max(xx - weight * weight * yy, 0.0)
    return weight, residual / xx


def moving_sharpness(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Per interior frame: mean |Laplacian| over the pixels that move around it (NaN when none move)."""
    values = np.full(len(frames), np.nan)
    laplacians = [np.abs(cv2.Laplacian(cv2.GaussianBlur(frame, (3, 3), 0.6), cv2.CV_32F)) for frame in frames]
    for index in range(1, len(frames) - 1):
        motion = cv2.absdiff(frames[index - 1], frames[index + 1])
        motion = cv2.dilate(cv2.GaussianBlur(motion, (5, 5), 1.5), np.ones((5, 5), np.uint8))
        mask = motion > 6.0
        if mask.mean() < 0.002:
            continue
        values[index] = float(laplacians[index][mask].mean())
    return values


def _confidence(agreement: float, separation: float, repeats: float, min_separation: float) -> float:
    gap = min(1.0, math.log(max(separation, 1.0)) / math.log(min_separation * 4))
    count = min(1.0, repeats / 6.0)
    return float(np.clip(agreement * (0.5 + 0.5 * gap) * (0.6 + 0.4 * count), 0.0, 0.99))


def _finding(
    kind: str, pattern: PeriodicPattern, confidence: float, evidence: list[Evidence]
) -> RetimeFinding:
    """A finding from a pattern over values that start at frame 1 of the window.

    Transition i -> i+1 and interior frame i+1 are both indexed i, so phase p of the pattern is
    frame p + 1 of the window.
    """
    frames = tuple(sorted((phase + 1) % pattern.period_frames for phase in pattern.synthetic_phases))
    return RetimeFinding(kind, pattern.factor, pattern.period_frames, frames[0], frames, confidence, evidence)


def _cluster(values: np.ndarray) -> tuple[np.ndarray, float]:
    """Split positive values into low / high by Otsu on logs; return the low mask and the gap ratio."""
    logs = np.log(np.maximum(values, 1e-6))
    threshold = otsu_split(logs)
    low = logs <= threshold
    if low.all() or not low.any():
        return low, 1.0
    return low, float(math.exp(np.median(logs[~low]) - np.median(logs[low])))


def _relative_split(values: np.ndarray) -> tuple[np.ndarray, float]:
    """Split by the changing transitions' level: low is under ``DUPLICATE_RELATIVE_CUT`` of the
    90th percentile. Encoded duplicates spread over decades (0.02 to 1.2 grey levels between
    copies, 6 to 7 between captured frames), and Otsu on the logs can cut inside their spread."""
    cut = DUPLICATE_RELATIVE_CUT * float(np.percentile(values, 90))
    low = values < cut
    if low.all() or not low.any():
        return low, 1.0
    return low, float(np.median(values[~low]) / max(float(np.median(values[low])), 1e-6))


def _check_duplicates(changes: np.ndarray, evidence: list[Evidence]) -> RetimeFinding | None:
    low, separation = _cluster(changes + 0.05)
    evidence.append(Evidence(STAGE, "duplicate gap (changing / repeated transitions)", separation, 0.0))
    if separation < DUPLICATE_SEPARATION:
        return None
    pattern = find_period(low, DUPLICATE_AGREEMENT)
    if pattern is None:
        low, separation = _relative_split(changes + 0.05)
        pattern = find_period(low, DUPLICATE_AGREEMENT) if separation >= DUPLICATE_SEPARATION else None
    if pattern is None:
        evidence.append(Evidence(STAGE, "repeated frames without a period", float(low.mean()), 0.0))
        return None
    confidence = _confidence(
        pattern.agreement, separation, len(changes) / pattern.period_frames, DUPLICATE_SEPARATION
    )
    evidence.append(
        Evidence(
            STAGE, f"duplicate frames, period {pattern.period_frames}", float(pattern.factor), confidence
        )
    )
    return _finding("duplicate", pattern, confidence, evidence)


def _moves_between_copies(changes: np.ndarray, finding: RetimeFinding) -> bool:
    """Whether the transitions a duplicate pattern calls changing show motion, not noise."""
    period = finding.period_frames or 1
    # a finding names frames; transition i ends at frame i + 1 (``_finding``)
    copies = {(frame - 1) % period for frame in finding.synthetic_phases}
    changing = [value for index, value in enumerate(changes) if index % period not in copies]
    return bool(changing) and float(np.median(changing)) >= STILL_LEVEL


def _check_blends(frames: Sequence[np.ndarray], evidence: list[Evidence]) -> RetimeFinding | None:
    fits = [blend_fit(frames[n - 1], frames[n], frames[n + 1]) for n in range(1, len(frames) - 1)]
    weights = np.array([fit[0] for fit in fits])
    residuals = np.array([fit[1] for fit in fits])
    repeats = (weights < BLEND_WEIGHT_RANGE[0]) | (weights > BLEND_WEIGHT_RANGE[1])
    low, separation = _cluster(residuals + 1e-3)
    low &= ~repeats
    evidence.append(Evidence(STAGE, "blend gap (captured / mixed residual)", separation, 0.0))
    if separation < BLEND_SEPARATION:
        return None
    captured_residual = float(np.median(residuals[~low]))
    evidence.append(Evidence(STAGE, "blend residual of captured frames", captured_residual, 0.0))
    if captured_residual < BLEND_MIN_CAPTURED_RESIDUAL:
        evidence.append(
            Evidence(STAGE, "motion too small or smooth for the blend test", captured_residual, 0.0)
        )
        return None
    pattern = find_period(low, PATTERN_AGREEMENT)
    if pattern is None:
        return None
    phases = np.arange(len(low)) % pattern.period_frames
    mixed = np.isin(phases, pattern.synthetic_phases)
    weight = float(np.median(weights[mixed]))
    evidence.append(Evidence(STAGE, "median blend weight of the previous frame", weight, 0.0))
    if not BLEND_WEIGHT_RANGE[0] <= weight <= BLEND_WEIGHT_RANGE[1]:
        return None
    confidence = _confidence(
        pattern.agreement, separation, len(low) / pattern.period_frames, BLEND_SEPARATION
    )
    evidence.append(
        Evidence(STAGE, f"blended frames, period {pattern.period_frames}", float(pattern.factor), confidence)
    )
    return _finding("blend", pattern, confidence, evidence)


def midpoint_prediction(previous: np.ndarray, following: np.ndarray, flow) -> np.ndarray:
    """The frame halfway between two frames, by DIS optical flow both ways (a reference interpolator)."""
    first, second = previous.astype(np.uint8), following.astype(np.uint8)
    forward = flow.calc(first, second, None)
    backward = flow.calc(second, first, None)
    height, width = previous.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    from_previous = cv2.remap(
        previous,
        xs + 0.5 * backward[..., 0],
        ys + 0.5 * backward[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    from_following = cv2.remap(
        following,
        xs + 0.5 * forward[..., 0],
        ys + 0.5 * forward[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return 0.5 * (from_previous + from_following)


def interpolation_residuals(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Per interior frame: mean |frame - flow midpoint of its neighbours| over moving pixels (NaN if still).

    A frame that an interpolator made from its neighbours is predicted almost exactly; a captured
    frame between two made ones is not (real motion is not linear, and its blur is its own).
    """
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    values = np.full(len(frames) - 2, np.nan)
    for index in range(1, len(frames) - 1):
        moving = cv2.absdiff(frames[index - 1], frames[index + 1]) > 6.0
        if moving.mean() < 0.002:
            continue
        predicted = midpoint_prediction(frames[index - 1], frames[index + 1], flow)
        values[index - 1] = float(np.abs(frames[index] - predicted)[moving].mean())
    return values


def _check_interpolation(
    frames: Sequence[np.ndarray], sharp_frames: Sequence[np.ndarray], evidence: list[Evidence]
) -> RetimeFinding | None:
    residuals = interpolation_residuals(sharp_frames)
    valid = ~np.isnan(residuals)
    if valid.mean() < 0.8:
        return None
    logs = np.log(np.where(valid, residuals, np.nanmedian(residuals)) + 0.1)
    found = periodic_dips(logs, PATTERN_AGREEMENT)
    if found is None:
        evidence.append(Evidence(STAGE, "no periodic interpolation residual", None, 0.0))
        return None
    pattern, effect, score = found
    separation = math.exp(effect)
    evidence.append(Evidence(STAGE, "interpolation gap (captured / made residual)", separation, 0.0))
    evidence.append(Evidence(STAGE, "interpolation pattern score", score, 0.0))
    if separation < INTERPOLATION_SEPARATION or score < INTERPOLATION_MIN_SCORE:
        return None
    low = np.isin(np.arange(len(logs)) % pattern.period_frames, pattern.synthetic_phases)
    phases = np.arange(len(low)) % pattern.period_frames
    made = np.isin(phases, pattern.synthetic_phases)
    sharpness = np.log(np.maximum(moving_sharpness(sharp_frames)[1:-1], 1e-6))
    local = sharpness - 0.5 * (np.roll(sharpness, 1) + np.roll(sharpness, -1))
    dip = float(np.nanmedian(local[1:-1][~made[1:-1]]) - np.nanmedian(local[1:-1][made[1:-1]]))
    evidence.append(Evidence(STAGE, "sharpness of captured over made frames (log)", dip, 0.0))
    if not dip > INTERPOLATION_MIN_DIP:
        return None
    confidence = _confidence(
        pattern.agreement, separation, len(low) / pattern.period_frames, INTERPOLATION_SEPARATION
    )
    evidence.append(
        Evidence(
            STAGE, f"interpolated frames, period {pattern.period_frames}", float(pattern.factor), confidence
        )
    )
    return _finding("interpolate", pattern, confidence, evidence)


@dataclass
class LinearMotionPattern:
    """Where motion changes once per period: the captured phase, and how clearly.

    ``captured_phase`` indexes the per-frame values (value i is frame i + 1 of the window);
    ``contrast`` is the log ratio of the captured frames' motion change to the made frames';
    ``consistency`` is the share of whole periods in which the captured frame changes its motion
    more than every made frame of that period.
    """

    period_frames: int
    captured_phase: int
    contrast: float
    consistency: float

    @property
    def score(self) -> float:
        return self.contrast * self.consistency

    def as_periodic(self) -> PeriodicPattern:
        made = tuple(phase for phase in range(self.period_frames) if phase != self.captured_phase)
        return PeriodicPattern(self.period_frames, made, self.consistency)


def motion_nonlinearity(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Per interior frame: how much the motion changes at it, relative to the motion (NaN if too still).

    From frame i, DIS flow forward to i + 1 and backward to i - 1, both on frame i's grid: at
    constant velocity they cancel. The value is the median over textured moving pixels of
    |forward + backward| / (mean length + ``LINEARITY_MIN_MOTION_PX``).
    """
    grey = [np.clip(frame, 0, 255).astype(np.uint8) for frame in frames]
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    forward = [flow.calc(grey[i], grey[i + 1], None) for i in range(len(grey) - 1)]
    backward = [flow.calc(grey[i + 1], grey[i], None) for i in range(len(grey) - 1)]
    values = np.full(len(grey) - 2, np.nan)
    for index in range(1, len(grey) - 1):
        ahead, behind = forward[index], backward[index - 1]
        length = 0.5 * (np.linalg.norm(ahead, axis=2) + np.linalg.norm(behind, axis=2))
        image = grey[index].astype(np.float32)
        gradient = cv2.magnitude(cv2.Sobel(image, cv2.CV_32F, 1, 0), cv2.Sobel(image, cv2.CV_32F, 0, 1))
        textured = (length > LINEARITY_MIN_MOTION_PX) & (gradient > LINEARITY_MIN_GRADIENT)
        if int(textured.sum()) < LINEARITY_MIN_PIXELS:
            continue
        change = np.linalg.norm(ahead + behind, axis=2)[textured]
        values[index - 1] = float(np.median(change / (length[textured] + LINEARITY_MIN_MOTION_PX)))
    return values


def linear_motion_pattern(values: np.ndarray, period_frames: int) -> LinearMotionPattern | None:
    """The phase of ``period_frames`` at which the motion changes most clearly, or None if unmeasurable."""
    logs = np.log(values + LINEARITY_FLOOR)
    positions = np.arange(len(logs)) % period_frames
    best: LinearMotionPattern | None = None
    for phase in range(period_frames):
        captured, made = logs[positions == phase], logs[positions != phase]
        if np.isnan(captured).all() or np.isnan(made).all():
            continue
        contrast = float(np.nanmedian(captured) - np.nanmedian(made))
        wins = []
        for start in range(0, len(logs) - period_frames + 1, period_frames):
            period = logs[start : start + period_frames]
            if not np.isnan(period).any():
                wins.append(bool(period[phase] > np.delete(period, phase).max()))
        if not wins:
            continue
        pattern = LinearMotionPattern(period_frames, phase, contrast, float(np.mean(wins)))
        if best is None or pattern.contrast > best.contrast:
            best = pattern
    return best


def _check_linear_motion(
    sharp_frames: Sequence[np.ndarray], evidence: list[Evidence]
) -> tuple[RetimeFinding | None, bool]:
    """The linear-motion cue (module docstring); also says whether there was enough motion to test.

    A period needs ``LINEARITY_MIN_REPEATS`` whole repeats in the window: with 3, one phase of 8
    stands out in every period by chance often enough to pass (opencv-vtest, real time, read as
    period 8 in a 32-frame window).
    """
    values = motion_nonlinearity([to_grey(frame, LINEARITY_WIDTH_PX) for frame in sharp_frames])
    if np.isnan(values).mean() > 0.3:
        evidence.append(Evidence(STAGE, "too little textured motion for the linear-motion test", None, 0.0))
        return None, False
    patterns = [
        pattern
        for period in LINEARITY_PERIODS
        if len(values) >= LINEARITY_MIN_REPEATS * period
        for pattern in [linear_motion_pattern(values, period)]
        if pattern is not None
    ]
    if not patterns:
        return None, False
    best = max(patterns, key=lambda item: item.score)
    for pattern in sorted(patterns, key=lambda item: item.period_frames):
        shorter = pattern.period_frames < best.period_frames
        if (
            shorter
            and best.period_frames % pattern.period_frames == 0
            and pattern.captured_phase == best.captured_phase % pattern.period_frames
            and pattern.score >= LINEARITY_DIVISOR_SHARE * best.score
        ):
            best = pattern
            break
    evidence.append(
        Evidence(
            STAGE,
            f"motion change at captured / made frames (log), period {best.period_frames}",
            best.contrast,
            0.0,
        )
    )
    evidence.append(Evidence(STAGE, "periods where the captured frame stands out", best.consistency, 0.0))
    if best.contrast < LINEARITY_MIN_CONTRAST or best.consistency < LINEARITY_MIN_CONSISTENCY:
        return None, True
    strength = min(1.0, best.contrast / LINEARITY_DECISIVE_CONTRAST) * best.consistency
    confidence = float(np.clip(0.5 + 0.4 * strength, 0.0, 0.95))
    evidence.append(
        Evidence(
            STAGE,
            f"linear motion inside groups of {best.period_frames} (interpolated)",
            float(best.as_periodic().factor),
            confidence,
        )
    )
    return _finding("interpolate", best.as_periodic(), confidence, evidence), True


def _better_model(
    frames: Sequence[np.ndarray],
    interpolated: RetimeFinding,
    blended: RetimeFinding,
    evidence: list[Evidence],
) -> RetimeFinding:
    """Both cues fired (small motion makes a flow midpoint and a cross-fade alike). A cross-fade
    wins only when it reproduces the made frames clearly better than a flow midpoint does (grey
    levels over moving pixels); otherwise the interpolation pattern stands."""
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    made = [
        n
        for n in range(1, len(frames) - 1)
        if n % interpolated.period_frames in interpolated.synthetic_phases
    ]
    flow_error, blend_error = [], []
    for n in made:
        previous, current, following = frames[n - 1], frames[n], frames[n + 1]
        moving = cv2.absdiff(previous, following) > 6.0
        if moving.mean() < 0.002:
            continue
        weight, _ = blend_fit(previous, current, following)
        mixed = weight * previous + (1 - weight) * following
        flow_error.append(
            float(np.abs(current - midpoint_prediction(previous, following, flow))[moving].mean())
        )
        blend_error.append(float(np.abs(current - mixed)[moving].mean()))
    flow_level = float(np.median(flow_error)) if flow_error else math.inf
    blend_level = float(np.median(blend_error)) if blend_error else math.inf
    evidence.append(
        Evidence(STAGE, "made-frame error: flow midpoint / cross-fade", flow_level / blend_level, 0.0)
    )
    return blended if blend_level < CROSS_FADE_PREFERENCE * flow_level else interpolated


def detect_synthetic_retime(frames: Sequence[np.ndarray]) -> RetimeFinding:
    """Look for duplicated, blended or interpolated frames repeating with a period in one window.

    ``frames`` are consecutive frames (grey (h, w) or RGB/RGBA (h, w, 3|4), uint8 or uint16), at
    least ``MIN_FRAMES`` of them; 24 to 64 frames make a good window. They are analysed in grey at
    reduced size, so passing low-resolution frames costs nothing in accuracy.
    """
    if len(frames) < MIN_FRAMES:
        raise InsufficientFramesError(
            f"window of {len(frames)} frames is too short; "
            f"the synthetic-retime check needs at least {MIN_FRAMES}"
        )
    small = [to_grey(frame, ANALYSIS_WIDTH_PX) for frame in frames]
    if len({frame.shape for frame in small}) != 1:
        raise UnsupportedOptionError("frames of one window differ in size; pass frames of one clip")
    gains = flicker_gains(small)
    small = [frame * gain for frame, gain in zip(small, gains, strict=True)]
    evidence: list[Evidence] = []
    changes = np.array([block_change(small[i], small[i + 1]) for i in range(len(small) - 1)])
    motion_level = float(np.percentile(changes, 75))
    noise_level = float(
        np.median([median_block_change(small[i], small[i + 1]) for i in range(len(small) - 1)])
    )
    evidence.append(Evidence(STAGE, "moving-block change level (grey levels)", motion_level, 0.0))
    evidence.append(Evidence(STAGE, "median-block change level (grey levels)", noise_level, 0.0))
    barely_above_noise = motion_level < STILL_NOISY_LEVEL and motion_level < STILL_NOISE_RATIO * noise_level
    finding = _check_duplicates(changes, evidence)
    if finding is not None and not _moves_between_copies(changes, finding):
        finding = None  # a period in noise: the frames that change do not move either
    if finding is None and (motion_level < STILL_LEVEL or barely_above_noise):
        # the level is the 75th percentile: with 3 copies in 4 (4x duplication) it is a copy's,
        # so the duplicate check comes first, and a still window is one whose changes are noise
        evidence.append(Evidence(STAGE, "too little motion to tell", motion_level, 0.8))
        return RetimeFinding("still", confidence=0.8, evidence=evidence)
    tested = False
    if finding is None:
        # interpolation first: frames made at small steps also pass for cross-fades, while a true
        # cross-fade (ghosting) is never predicted by motion, so it cannot pass for interpolation
        sharp = [to_grey(frame, SHARPNESS_WIDTH_PX) * gain for frame, gain in zip(frames, gains, strict=True)]
        interpolated = _check_interpolation(small, sharp, evidence)
        linear, tested = _check_linear_motion(sharp, evidence)
        if linear is not None and (interpolated is None or linear.confidence > interpolated.confidence):
            interpolated = linear
        blended = _check_blends(small, evidence)
        finding = interpolated or blended
        if interpolated is not None and blended is not None:
            finding = _better_model(sharp, interpolated, blended, evidence)
    if finding is None:
        evidence.append(Evidence(STAGE, "no periodic synthetic frames", None, 0.6))
        return RetimeFinding("none", confidence=0.6, evidence=evidence, motion_tested=tested)
    log.debug("synthetic retime: %s x%s period %s", finding.kind, finding.factor, finding.period_frames)
    return finding
