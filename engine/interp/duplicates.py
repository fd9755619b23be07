"""Duplicate frames: a pair identical up to compression noise, and runs of them in a sequence.

Telecine, frame-rate conversion by repetition and "fake" slow motion leave repeated frames. A
codec re-encodes each copy slightly differently, so equality is tested with a tolerance: on the
luma, after a 3x3 box blur that averages out quantisation noise, the mean absolute difference must
stay below ``mean_tolerance`` and the 99.5th percentile below ``peak_tolerance`` (fractions of full
range). Real motion of even a small object exceeds the percentile; noise does not.

Measured: repeated frames through H.264 (crf 28) differ by a peak of 0.004 to 0.005; a textured
object moved by one pixel by 0.044; consecutive frames of the shared real clips by 0.06 to 0.28,
except near-still shots (microscopy of drifting particles, 0.012 to 0.019, kept apart by the peak).

A small subject moving in a still shot (a distant bird, a car far off) changes less than half a
percent of the picture, under the percentile: such frames were taken for copies, so a retime held
them (the subject stuttered) and a repair replaced them with made frames. So the largest change of
any ``BLOCK_PX`` square (its mean absolute difference) must stay under ``block_tolerance`` too: a
10 px square moving 2 px a frame over a still texture changes one by 0.12. The repeats of the 13
shared real clips (40 frames each, each shown twice, encoded with H.264 at crf 18 and 28, at their
size and 640 wide: ``bench/duplicate_levels.py``) changed none by more than 0.055: the window test
keeps every repeat the other two find (1,903 of 2,080 repeats found with it and without it) and
took 171 of 2,028 moving pairs for repeats, against 175 without it. Most of those are hug-lego-movie
(animated on twos: its own repeats, 29 to 31 of 39) and pims-bulk-water at crf 28 (microscopy
drifting less than the compression noise, 25 of 39). Repeats missed are heavy compression's: at
crf 28 a repeat differs by up to 0.047 (99.5th percentile) where the tolerance is 0.012 (kivy-cityCC0,
3 to 5 of 40 repeats found there; every clip at crf 18 but kivy, 33 to 34 of 40, finds all 40).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from engine.errors import UnsupportedOptionError

MEAN_TOLERANCE = 0.0015
PEAK_TOLERANCE = 0.012
BLOCK_TOLERANCE = 0.08
BLOCK_PX = 8


@dataclass(frozen=True)
class DuplicateRun:
    """Frames ``start_index`` to ``start_index + length_frames - 1`` all repeat the first of them."""

    start_index: int
    length_frames: int

    @property
    def repeats_frames(self) -> int:
        """How many frames of the run are copies (the length less the original)."""
        return self.length_frames - 1


def _luma_unit(frame: np.ndarray) -> np.ndarray:
    if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.dtype not in (np.uint8, np.uint16):
        raise UnsupportedOptionError(
            f"frame {frame.shape} {frame.dtype} is not (height, width, 3 or 4) uint8 or uint16"
        )
    scale = 1.0 / float(np.iinfo(frame.dtype).max)
    rgb = frame[..., :3].astype(np.float32) * scale
    luma = rgb[..., 0] * 0.2126 + rgb[..., 1] * 0.7152 + rgb[..., 2] * 0.0722
    return cv2.blur(luma, (3, 3))


def frame_difference(frame0: np.ndarray, frame1: np.ndarray) -> tuple[float, float]:
    """Mean and 99.5th-percentile absolute luma difference of two frames, as fractions of full range."""
    if frame0.shape != frame1.shape:
        raise UnsupportedOptionError(f"frames differ in shape: {frame0.shape} and {frame1.shape}")
    difference = np.abs(_luma_unit(frame0) - _luma_unit(frame1))
    return float(difference.mean()), float(np.percentile(difference, 99.5))


def largest_block_change(frame0: np.ndarray, frame1: np.ndarray) -> float:
    """The largest mean absolute luma difference over any ``BLOCK_PX`` square window (sliding, so a
    small subject is not split between blocks), as a fraction of full range."""
    difference = np.abs(_luma_unit(frame0) - _luma_unit(frame1))
    if min(difference.shape) <= BLOCK_PX:
        return float(difference.mean())
    means = cv2.blur(difference, (BLOCK_PX, BLOCK_PX), borderType=cv2.BORDER_REFLECT)
    half = BLOCK_PX // 2
    return float(means[half:-half, half:-half].max())


def is_duplicate_pair(
    frame0: np.ndarray,
    frame1: np.ndarray,
    *,
    mean_tolerance: float = MEAN_TOLERANCE,
    peak_tolerance: float = PEAK_TOLERANCE,
    block_tolerance: float = BLOCK_TOLERANCE,
) -> bool:
    """True when the two frames show the same picture up to compression noise."""
    mean, peak = frame_difference(frame0, frame1)
    if mean > mean_tolerance or peak > peak_tolerance:
        return False
    return largest_block_change(frame0, frame1) <= block_tolerance


def find_duplicate_runs(
    frames: Iterable[np.ndarray],
    *,
    mean_tolerance: float = MEAN_TOLERANCE,
    peak_tolerance: float = PEAK_TOLERANCE,
) -> list[DuplicateRun]:
    """Runs of two or more consecutive frames that repeat one picture, in order.

    Each frame is compared with the first frame of the current run (not only its neighbour), so a
    slow drift cannot chain into one long "duplicate" run. Frames are consumed one at a time, so a
    generator of decoded frames is fine.
    """
    runs: list[DuplicateRun] = []
    anchor: np.ndarray | None = None
    start = 0
    index = -1
    for index, frame in enumerate(frames):
        if anchor is not None and is_duplicate_pair(
            anchor, frame, mean_tolerance=mean_tolerance, peak_tolerance=peak_tolerance
        ):
            continue
        if index - start >= 2:
            runs.append(DuplicateRun(start, index - start))
        anchor = frame
        start = index
    if anchor is not None and index + 1 - start >= 2:
        runs.append(DuplicateRun(start, index + 1 - start))
    return runs
