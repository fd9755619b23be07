"""The ``flow`` backend: classical, weight-free frame synthesis from optical flow.

How a frame at time t is made:

1. Luma of both frames (8-bit, what OpenCV's DIS accepts), at the flow scale (below).
2. DIS optical flow both ways, F01 (frame 0 to frame 1) and F10, with variational refinement.
3. Forward-backward consistency: |F01(x) + F10(x + F01(x))| is small where the pixel of frame 0 is
   still visible in frame 1; a soft occlusion map per frame comes from it.
4. Motion at time t: every pixel of frame 0 is splatted to x + t*F01(x) carrying F01(x), every pixel
   of frame 1 to y + (1-t)*F10(y) carrying -F10(y), each weighted by its consistency, so that pixels
   about to be covered do not drag the motion of the surface in front of them. Holes left by the
   splat are filled from coarser averages of the splat, then by the linear (Super-SloMo style)
   approximation from the two flows.
5. Both frames are warped backwards to time t with ``cv2.remap``; each side is weighted by its
   temporal distance ((1-t) for frame 0, t for frame 1) and by its visibility: a sample of frame 0
   that frame 1 cannot see takes the whole weight there, and the reverse.
6. Risk: flow inconsistency, occlusion, disagreement between the two warped frames, and holes in
   the splat, combined into one map in [0, 1].

Large frames: the flow and motion are computed on frames scaled down so that they hold at most
``FlowSettings.max_flow_pixels`` pixels (1 MP), and frames of ``large_frame_pixels`` (1.5 MP) or
more, 1080p and up, at most ``large_flow_pixels`` (0.15 MP: 516x290 for both 1080p and 4K). For
such reduced frames the visibility weights and the risk map are also made at the flow scale, and
only the warp and blend run at full resolution, band by band (``FlowSettings.band_rows`` rows at a
time), so memory beyond the input and output frames stays bounded by the flow scale, not by the
frame size. The quality cost is measured in the comment on ``FlowSettings.large_flow_pixels``
(-0.02 dB against flow at 1 MP on 1920x1440 frames, 5x faster). Speed against ffmpeg
minterpolate (bench/tsr_speed.py, same run, 2 loaded cores; CPU seconds per frame): 1080p 0.26 s
against 0.66 s (2.5x), 4K 0.61 s against 2.8 s (4.6x). Below 1.5 MP the flow runs at full
quality (finest DIS scale, full-resolution composition) and is slower than minterpolate (540p:
0.70 s against 0.19 s); 0.1 MP instead of 0.15 MP at 1080p saved almost nothing (0.257 s), the
full-resolution warp being the rest of the cost.

10-bit and higher content (uint16) is warped in float32 and rounded back; the flow is computed on
its 8-bit luma. Alpha (RGBA) is warped and blended exactly like the colour channels.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from engine.errors import UnsupportedOptionError
from engine.interp.base import (
    SynthesisResult,
    Synthesizer,
    Time,
    check_times,
    register_backend,
)
from engine.interp.checks import local_risk

log = logging.getLogger(__name__)

DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


@dataclass(frozen=True)
class FlowSettings:
    """Tuning of the ``flow`` backend. ``None`` keeps the DIS preset's own value.

    The defaults were measured on Middlebury "other" (bench/interp_quality.py): DIS down to the
    finest scale (0) with a stronger variational data term (delta 10) gave +0.45 dB over the MEDIUM
    preset; splatting the motion to time t gave +0.2 dB over the linear approximation.
    """

    preset: str = "medium"
    finest_scale: int | None = 0
    patch_size: int | None = None
    patch_stride: int | None = None
    gradient_descent_iterations: int | None = None
    variational_iterations: int | None = None
    variational_alpha: float | None = None
    variational_gamma: float | None = None
    variational_delta: float | None = 10.0
    max_flow_pixels: int = 1_000_000
    # Frames of large_frame_pixels or more (1080p and up) get their flow at large_flow_pixels.
    # Measured on Middlebury upscaled to 1920x1440 (12 triplets, t = 1/2): flow at 1 MP 36.18 dB,
    # 8.5 s/frame; 0.25 MP 36.14 dB, 2.2 s; 0.15 MP 36.17 dB, 1.6 s; 0.1 MP 36.01 dB, 1.1 s;
    # 0.25 MP with DIS finest scale 1 35.73 dB, 1.6 s (2 loaded CPU cores, same run).
    # With 1 variational refinement iteration instead of the preset's 5 at that size: 33.21 dB
    # against 33.20 dB on 6 of those triplets, and 1.2 s against 1.4 s per frame.
    large_frame_pixels: int = 1_500_000
    large_flow_pixels: int = 150_000
    large_variational_iterations: int | None = 1
    flow_scale: float = 1.0
    median_ksize: int = 0
    splat: bool = True
    consistency_sigma_px: float = 3.0
    occlusion_softness_px: float = 4.0
    hole_weight: float = 0.3
    band_rows: int = 256

    def __post_init__(self) -> None:
        if self.preset not in DIS_PRESETS:
            raise UnsupportedOptionError(
                f"DIS preset {self.preset!r} is not known; available: {', '.join(DIS_PRESETS)}"
            )
        if not 0.0 < self.flow_scale <= 1.0:
            raise UnsupportedOptionError(f"flow_scale = {self.flow_scale} is outside (0, 1]")
        if self.max_flow_pixels < 4096 or self.large_flow_pixels < 4096:
            raise UnsupportedOptionError(
                f"max_flow_pixels = {self.max_flow_pixels}, large_flow_pixels = {self.large_flow_pixels}: "
                "both must be 4096 or more"
            )
        if self.median_ksize not in (0, 3, 5):
            raise UnsupportedOptionError(f"median_ksize = {self.median_ksize}; use 0 (off), 3 or 5")
        if self.band_rows < 8:
            raise UnsupportedOptionError(f"band_rows = {self.band_rows} is below 8")


def luma_u8(frame: np.ndarray) -> np.ndarray:
    """Rec. 709 luma of an RGB(A) frame as uint8 (uint16 frames are scaled down to 8 bits)."""
    gain = 255.0 / 65535.0 if frame.dtype == np.uint16 else 1.0
    weights = np.zeros((1, frame.shape[2]), np.float32)
    weights[0, :3] = np.array([0.2126, 0.7152, 0.0722], np.float32) * gain
    return cv2.transform(frame, weights).astype(np.uint8)


def flow_scale_for(height: int, width: int, settings: FlowSettings) -> float:
    """The factor (<= 1) by which frames are scaled before flow.

    At most ``max_flow_pixels`` pixels; frames of ``large_frame_pixels`` or more (1080p and up)
    at most ``large_flow_pixels``.
    """
    large = is_large_frame(height, width, settings)
    budget = settings.large_flow_pixels if large else settings.max_flow_pixels
    return min(settings.flow_scale, math.sqrt(budget / float(height * width)), 1.0)


def is_large_frame(height: int, width: int, settings: FlowSettings) -> bool:
    """True for frames of ``large_frame_pixels`` or more (1080p and up): the fast flow rule applies."""
    return height * width >= settings.large_frame_pixels


def _make_dis(settings: FlowSettings, *, large: bool = False) -> cv2.DISOpticalFlow:
    dis = cv2.DISOpticalFlow_create(DIS_PRESETS[settings.preset])
    if settings.finest_scale is not None:
        dis.setFinestScale(settings.finest_scale)
    if settings.patch_size is not None:
        dis.setPatchSize(settings.patch_size)
    if settings.patch_stride is not None:
        dis.setPatchStride(settings.patch_stride)
    if settings.gradient_descent_iterations is not None:
        dis.setGradientDescentIterations(settings.gradient_descent_iterations)
    iterations = settings.variational_iterations
    if large and settings.large_variational_iterations is not None:
        iterations = settings.large_variational_iterations
    if iterations is not None:
        dis.setVariationalRefinementIterations(iterations)
    if settings.variational_alpha is not None:
        dis.setVariationalRefinementAlpha(settings.variational_alpha)
    if settings.variational_gamma is not None:
        dis.setVariationalRefinementGamma(settings.variational_gamma)
    if settings.variational_delta is not None:
        dis.setVariationalRefinementDelta(settings.variational_delta)
    return dis


MIN_DIS_SIDE_PX = 16


def dis_flow(dis: cv2.DISOpticalFlow, luma0: np.ndarray, luma1: np.ndarray) -> np.ndarray:
    """DIS flow from ``luma0`` to ``luma1``; frames smaller than DIS accepts are padded, then cropped."""
    height, width = luma0.shape
    pad_bottom = max(0, MIN_DIS_SIDE_PX - height)
    pad_right = max(0, MIN_DIS_SIDE_PX - width)
    if not pad_bottom and not pad_right:
        return dis.calc(luma0, luma1, None)
    padded0 = cv2.copyMakeBorder(luma0, 0, pad_bottom, 0, pad_right, cv2.BORDER_REPLICATE)
    padded1 = cv2.copyMakeBorder(luma1, 0, pad_bottom, 0, pad_right, cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(dis.calc(padded0, padded1, None)[:height, :width])


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    xs = np.arange(width, dtype=np.float32)[None, :].repeat(height, axis=0)
    ys = np.arange(height, dtype=np.float32)[:, None].repeat(width, axis=1)
    return xs, ys


def _warp_flow(flow: np.ndarray, by: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Sample ``flow`` at x + by(x) (bilinear, border replicated)."""
    return cv2.remap(
        flow, xs + by[..., 0], ys + by[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


@dataclass
class PairFlow:
    """Everything about one frame pair that does not depend on t, at the flow scale.

    ``inconsistency0`` is |F01(x) + F10(x + F01(x))| at each pixel x of frame 0 (pixels), high where
    that pixel is hidden in frame 1 or the flow is wrong; ``inconsistency1`` likewise for frame 1.
    """

    flow01: np.ndarray
    flow10: np.ndarray
    inconsistency0: np.ndarray
    inconsistency1: np.ndarray
    scale: float
    full_height: int
    full_width: int


def compute_pair_flow(frame0: np.ndarray, frame1: np.ndarray, settings: FlowSettings) -> PairFlow:
    """Bidirectional DIS flow and forward-backward inconsistency (in pixels at the flow scale)."""
    height, width = frame0.shape[:2]
    scale = flow_scale_for(height, width, settings)
    luma0 = luma_u8(frame0)
    luma1 = luma_u8(frame1)
    if scale < 1.0:
        size = (max(8, round(width * scale)), max(8, round(height * scale)))
        luma0 = cv2.resize(luma0, size, interpolation=cv2.INTER_AREA)
        luma1 = cv2.resize(luma1, size, interpolation=cv2.INTER_AREA)
    dis = _make_dis(settings, large=is_large_frame(height, width, settings))
    flow01 = dis_flow(dis, luma0, luma1)
    flow10 = dis_flow(dis, luma1, luma0)
    if settings.median_ksize:
        flow01 = cv2.medianBlur(flow01, settings.median_ksize)
        flow10 = cv2.medianBlur(flow10, settings.median_ksize)
    xs, ys = _grid(*luma0.shape)
    inconsistency0 = np.linalg.norm(flow01 + _warp_flow(flow10, flow01, xs, ys), axis=2)
    inconsistency1 = np.linalg.norm(flow10 + _warp_flow(flow01, flow10, xs, ys), axis=2)
    return PairFlow(flow01, flow10, inconsistency0, inconsistency1, scale, height, width)


def _splat(acc: np.ndarray, xs: np.ndarray, ys: np.ndarray, motion: np.ndarray, weight: np.ndarray) -> None:
    """Bilinearly splat ``motion`` (h, w, 2) weighted by ``weight`` onto positions (xs, ys) into acc."""
    height, width = acc.shape[1:]
    x0 = np.floor(xs)
    y0 = np.floor(ys)
    fx = xs - x0
    fy = ys - y0
    x0 = x0.astype(np.int64)
    y0 = y0.astype(np.int64)
    size = height * width
    for dx, dy, corner in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        cx = x0 + dx
        cy = y0 + dy
        inside = (cx >= 0) & (cx < width) & (cy >= 0) & (cy < height)
        index = (cy * width + cx)[inside]
        w = (corner * weight)[inside]
        acc[0] += np.bincount(index, weights=w, minlength=size).reshape(height, width)
        acc[1] += np.bincount(index, weights=w * motion[..., 0][inside], minlength=size).reshape(
            height, width
        )
        acc[2] += np.bincount(index, weights=w * motion[..., 1][inside], minlength=size).reshape(
            height, width
        )


def motion_at(pair: PairFlow, t: float, settings: FlowSettings) -> tuple[np.ndarray, np.ndarray]:
    """Motion field M (frame-0-to-frame-1 displacement of whatever is at x at time t) and hole map.

    The frame at t samples frame 0 at x - t*M(x) and frame 1 at x + (1-t)*M(x).
    """
    flow01, flow10 = pair.flow01, pair.flow10
    height, width = flow01.shape[:2]
    linear = (1.0 - t) * flow01 - t * flow10
    if not settings.splat:
        return linear, np.zeros((height, width), np.float32)
    xs, ys = _grid(height, width)
    sigma = settings.consistency_sigma_px
    weight0 = np.exp(-((pair.inconsistency0 / sigma) ** 2)).astype(np.float64) + 1e-4
    weight1 = np.exp(-((pair.inconsistency1 / sigma) ** 2)).astype(np.float64) + 1e-4
    acc = np.zeros((3, height, width), np.float64)
    _splat(acc, xs + t * flow01[..., 0], ys + t * flow01[..., 1], flow01, weight0)
    _splat(acc, xs + (1 - t) * flow10[..., 0], ys + (1 - t) * flow10[..., 1], -flow10, weight1)
    weight = acc[0].astype(np.float32)
    numerator = np.stack([acc[1], acc[2]], axis=2).astype(np.float32)
    motion = numerator / np.maximum(weight, 1e-6)[..., None]
    remaining = weight < settings.hole_weight
    for kernel in (5, 17, 65):
        if not remaining.any():
            break
        den = cv2.blur(weight, (kernel, kernel))
        num = cv2.blur(numerator, (kernel, kernel))
        take = remaining & (den > 0.05)
        motion[take] = num[take] / den[take][:, None]
        remaining &= ~take
    motion[remaining] = linear[remaining]
    if settings.median_ksize:
        motion = cv2.medianBlur(motion, settings.median_ksize)
    return motion.astype(np.float32), np.clip(1.0 - weight / settings.hole_weight, 0.0, 1.0)


def _soft_occlusion(inconsistency: np.ndarray, settings: FlowSettings) -> np.ndarray:
    return 1.0 - np.exp(-((inconsistency / settings.occlusion_softness_px) ** 2))


def _relative_inconsistency(inconsistency: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Forward-backward error as risk in [0, 1]: full at 2 px plus 10% of the motion."""
    tolerance = 2.0 + 0.1 * np.linalg.norm(flow, axis=2)
    return np.clip(inconsistency / tolerance, 0.0, 1.0).astype(np.float32)


TEXTURE_FULL_LEVELS = 16.0
"""Texture (mean luma gradient, 8-bit levels per pixel over 5x5) at which a geometric error (flow
that disagrees both ways, a hole, an occlusion) counts fully in the frame check; below it, by the
square root of the share: a region warped wrong shows with its detail, a flat one not at all.
Chosen on the renders, triplets and high-speed captures of ``bench/tsr_quality.py`` among 4, 8, 16
and 32 levels, the share or its square root: the fewest right frames listed at 90 % recall (16,
18 %), then the highest ROC AUC there (the square root, 0.903 against 0.898); see
``CHECK_LEVELS``."""


def texture_weight(warped0: np.ndarray, warped1: np.ndarray, pixel_size: float = 1.0) -> np.ndarray:
    """How visible an error would be at each pixel, in [0, 1]: the larger of the two warped lumas'
    gradient, averaged over 5x5, against ``TEXTURE_FULL_LEVELS`` (square root). ``pixel_size``:
    full-resolution pixels per pixel of these lumas (the gradient is counted per full-resolution
    pixel)."""
    gradients = []
    for luma in (warped0, warped1):
        grey = luma.astype(np.float32)
        along_x = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
        along_y = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
        gradients.append(cv2.blur(cv2.magnitude(along_x, along_y), (5, 5)))
    texture = np.maximum(gradients[0], gradients[1]) / np.float32(8.0 * pixel_size)  # Sobel sums 8 steps
    return np.sqrt(np.clip(texture / np.float32(TEXTURE_FULL_LEVELS), 0.0, 1.0))


def render_at(
    frame0: np.ndarray, frame1: np.ndarray, pair: PairFlow, t: float, settings: FlowSettings
) -> tuple[np.ndarray, np.ndarray, float]:
    """The frame at time t, its risk map and its local risk for the frame check (the map with its
    geometric part, flow inconsistency, holes and occlusion, weighed by ``texture_weight``; the two
    warped frames' disagreement is a difference of picture already): full resolution composition,
    or flow-scale for large frames."""
    if pair.scale < 1.0:
        return render_reduced(frame0, frame1, pair, t, settings)
    motion, holes = motion_at(pair, t, settings)
    occlusion0 = _soft_occlusion(pair.inconsistency0, settings).astype(np.float32)
    occlusion1 = _soft_occlusion(pair.inconsistency1, settings).astype(np.float32)
    relative0 = _relative_inconsistency(pair.inconsistency0, pair.flow01)
    relative1 = _relative_inconsistency(pair.inconsistency1, pair.flow10)
    height, width = pair.full_height, pair.full_width
    low_height, low_width = motion.shape[:2]
    scale = pair.scale
    out = np.empty_like(frame0)
    risk = np.empty((height, width), np.float32)
    checked = np.empty((height, width), np.float32)  # the risk the frame check reads
    maximum = float(np.iinfo(frame0.dtype).max)
    xs_row = np.arange(width, dtype=np.float32)
    low_xs_row = ((xs_row + 0.5) * (low_width / width) - 0.5).astype(np.float32)
    inverse_scale_x = width / low_width
    inverse_scale_y = height / low_height
    band = settings.band_rows if scale < 1.0 else height

    def low(field: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
        """Sample a flow-scale ``field`` at full-resolution positions."""
        if scale < 1.0:
            map_x = (map_x + 0.5) * (low_width / width) - 0.5
            map_y = (map_y + 0.5) * (low_height / height) - 0.5
        return cv2.remap(field, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    for top in range(0, height, band):
        bottom = min(height, top + band)
        ys_col = np.arange(top, bottom, dtype=np.float32)
        xs = np.broadcast_to(xs_row, (bottom - top, width))
        ys = np.broadcast_to(ys_col[:, None], (bottom - top, width))
        if scale < 1.0:
            low_ys_col = ((ys_col + 0.5) * (low_height / height) - 0.5).astype(np.float32)
            low_xs = np.ascontiguousarray(np.broadcast_to(low_xs_row, xs.shape))
            low_ys = np.ascontiguousarray(np.broadcast_to(low_ys_col[:, None], xs.shape))
            band_motion = cv2.remap(motion, low_xs, low_ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            band_motion[..., 0] *= inverse_scale_x
            band_motion[..., 1] *= inverse_scale_y
        else:
            band_motion = motion[top:bottom]
        map0_x = (xs - t * band_motion[..., 0]).astype(np.float32)
        map0_y = (ys - t * band_motion[..., 1]).astype(np.float32)
        map1_x = (xs + (1 - t) * band_motion[..., 0]).astype(np.float32)
        map1_y = (ys + (1 - t) * band_motion[..., 1]).astype(np.float32)
        warped0 = cv2.remap(frame0, map0_x, map0_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        warped1 = cv2.remap(frame1, map1_x, map1_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

        seen_only_by_0 = low(occlusion0, map0_x, map0_y)
        seen_only_by_1 = low(occlusion1, map1_x, map1_y)
        weight0 = (1.0 - t) * (1.0 - seen_only_by_1) + 1e-3
        weight1 = t * (1.0 - seen_only_by_0) + 1e-3
        total = weight0 + weight1
        weight0 /= total
        weight1 /= total
        blended = (
            warped0.astype(np.float32) * weight0[..., None] + warped1.astype(np.float32) * weight1[..., None]
        )
        out[top:bottom] = np.clip(blended + 0.5, 0, maximum).astype(frame0.dtype)

        luma0, luma1 = luma_u8(warped0), luma_u8(warped1)
        disagreement = np.abs(luma0.astype(np.float32) - luma1.astype(np.float32)) / 255.0
        both_seen = 1.0 - np.maximum(seen_only_by_0, seen_only_by_1)
        photometric = np.clip(disagreement / 0.15, 0.0, 1.0) * both_seen
        flow_risk = np.maximum(low(relative0, map0_x, map0_y), low(relative1, map1_x, map1_y))
        hole_risk = low(holes, np.ascontiguousarray(xs), np.ascontiguousarray(ys))
        occlusion_risk = 0.5 * np.maximum(seen_only_by_0, seen_only_by_1)
        geometric = np.maximum.reduce([flow_risk, hole_risk, occlusion_risk])
        risk[top:bottom] = np.maximum(photometric, geometric)
        checked[top:bottom] = np.maximum(photometric, geometric * texture_weight(luma0, luma1))
    return out, risk, local_risk(checked)


def _small_luma(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(luma_u8(frame), size, interpolation=cv2.INTER_AREA)


def render_reduced(
    frame0: np.ndarray, frame1: np.ndarray, pair: PairFlow, t: float, settings: FlowSettings
) -> tuple[np.ndarray, np.ndarray, float]:
    """Large frames: motion, blend weights and risk at the flow scale; only the warp at full size.

    Everything that decides (visibility weights, risk) is computed on the flow-scale grid; at full
    resolution each band only upsamples the motion and the weight of frame 0, warps both frames
    and blends them. The risk map is the flow-scale risk, resized.
    """
    motion, holes = motion_at(pair, t, settings)
    low_height, low_width = motion.shape[:2]
    xs, ys = _grid(low_height, low_width)
    map0_x = xs - t * motion[..., 0]
    map0_y = ys - t * motion[..., 1]
    map1_x = xs + (1 - t) * motion[..., 0]
    map1_y = ys + (1 - t) * motion[..., 1]

    def sample(field: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
        return cv2.remap(field, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    seen_only_by_0 = sample(_soft_occlusion(pair.inconsistency0, settings).astype(np.float32), map0_x, map0_y)
    seen_only_by_1 = sample(_soft_occlusion(pair.inconsistency1, settings).astype(np.float32), map1_x, map1_y)
    weight0 = (1.0 - t) * (1.0 - seen_only_by_1) + 1e-3
    weight1 = t * (1.0 - seen_only_by_0) + 1e-3
    share0 = (weight0 / (weight0 + weight1)).astype(np.float32)

    small_size = (low_width, low_height)
    warped0 = sample(_small_luma(frame0, small_size), map0_x, map0_y).astype(np.float32)
    warped1 = sample(_small_luma(frame1, small_size), map1_x, map1_y).astype(np.float32)
    both_seen = 1.0 - np.maximum(seen_only_by_0, seen_only_by_1)
    photometric = np.clip(np.abs(warped0 - warped1) / (255.0 * 0.15), 0.0, 1.0) * both_seen
    flow_risk = np.maximum(
        sample(_relative_inconsistency(pair.inconsistency0, pair.flow01), map0_x, map0_y),
        sample(_relative_inconsistency(pair.inconsistency1, pair.flow10), map1_x, map1_y),
    )
    occlusion_risk = 0.5 * np.maximum(seen_only_by_0, seen_only_by_1)
    geometric = np.maximum.reduce([flow_risk, holes.astype(np.float32), occlusion_risk])
    low_risk = np.maximum(photometric, geometric)
    detail = texture_weight(warped0, warped1, pixel_size=pair.full_width / low_width)
    local = local_risk(np.maximum(photometric, geometric * detail))

    height, width = pair.full_height, pair.full_width
    risk = cv2.resize(low_risk.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    out = np.empty_like(frame0)
    maximum = float(np.iinfo(frame0.dtype).max)
    # Displacements of both samples in full-resolution pixels, one 4-channel field at the flow
    # scale: upsampling it once per band gives both warps' maps with one add each.
    gain_x = np.float32(width / low_width)
    gain_y = np.float32(height / low_height)
    early, late = np.float32(t), np.float32(1.0 - t)
    offsets = np.dstack(
        [
            -early * gain_x * motion[..., 0],
            -early * gain_y * motion[..., 1],
            late * gain_x * motion[..., 0],
            late * gain_y * motion[..., 1],
        ]
    ).astype(np.float32)
    xs_row = np.arange(width, dtype=np.float32)
    low_xs_row = ((xs_row + 0.5) * (low_width / width) - 0.5).astype(np.float32)
    for top in range(0, height, settings.band_rows):
        bottom = min(height, top + settings.band_rows)
        ys_col = np.arange(top, bottom, dtype=np.float32)
        low_ys_col = ((ys_col + 0.5) * (low_height / height) - 0.5).astype(np.float32)
        low_xs = np.ascontiguousarray(np.broadcast_to(low_xs_row, (bottom - top, width)))
        low_ys = np.ascontiguousarray(np.broadcast_to(low_ys_col[:, None], (bottom - top, width)))
        band_offsets = sample(offsets, low_xs, low_ys)
        band_share0 = sample(share0, low_xs, low_ys)
        band_xs = xs_row[None, :]
        band_ys = ys_col[:, None]
        warped_full0 = sample(frame0, band_xs + band_offsets[..., 0], band_ys + band_offsets[..., 1])
        warped_full1 = sample(frame1, band_xs + band_offsets[..., 2], band_ys + band_offsets[..., 3])
        if frame0.dtype == np.uint8:
            out[top:bottom] = cv2.blendLinear(warped_full0, warped_full1, band_share0, 1.0 - band_share0)
        else:
            blended = warped_full1.astype(np.float32)
            blended += (warped_full0.astype(np.float32) - blended) * band_share0[..., None]
            out[top:bottom] = np.clip(blended + 0.5, 0, maximum).astype(frame0.dtype)
    return out, risk, local


class FlowSynthesizer(Synthesizer):
    """Classical optical-flow synthesis (DIS both ways, splatted motion, occlusion-aware blend)."""

    NAME = "flow"
    DESCRIPTION = "OpenCV DIS optical flow both ways, occlusion-aware blending; no model weights"

    def __init__(self, settings: FlowSettings | None = None, **options) -> None:
        if settings is not None and options:
            raise UnsupportedOptionError(
                "give either settings or keyword options to the flow backend, not both"
            )
        try:
            self.settings = settings or FlowSettings(**options)
        except TypeError as error:
            known = ", ".join(FlowSettings.__dataclass_fields__)
            raise UnsupportedOptionError(
                f"flow backend options {sorted(options)}: {error}; known: {known}"
            ) from None

    def synthesize_many(
        self, frame0: np.ndarray, frame1: np.ndarray, times: Sequence[Time]
    ) -> list[SynthesisResult]:
        values = check_times(frame0, frame1, times)
        if not values:
            return []
        pair = compute_pair_flow(frame0, frame1, self.settings)
        notes = []
        if pair.scale < 1.0:
            notes.append(
                f"flow computed at scale {pair.scale:.3f} ({pair.flow01.shape[1]}x{pair.flow01.shape[0]})"
            )
        results = []
        for t_value in values:
            frame, risk, local = render_at(frame0, frame1, pair, t_value, self.settings)
            results.append(
                SynthesisResult(
                    frame=frame, risk=risk, backend=self.NAME, notes=list(notes), local_risk_given=local
                )
            )
        return results


register_backend(FlowSynthesizer)
