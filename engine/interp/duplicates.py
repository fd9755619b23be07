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

Where the frames around a pair are known (``duplicates_in_context``, what ``repair`` uses), heavy
compression's repeats are told by the motion around them instead: a pair that changes no window by
more than ``block_tolerance`` and whose 99.5th percentile stays under ``CONTEXT_PEAK_TOLERANCE``
(0.05, above the 0.047 of crf 28's repeats) is a repeat when its mean difference is at most
``CONTEXT_RATIO`` (a fifth) of the largest of the pairs within ``CONTEXT_REACH`` either side: copies
between moving frames, which differ by compression noise where their neighbours differ by motion.
A still shot has no such contrast, so the fixed tolerances alone decide there. Measured with
``bench/duplicate_levels.py`` (the 13 clips' first 40 frames, shown twice, and shown once for
``continuous``): repeats found at crf 28, 876 of 1,040 by the fixed test, 1,039 in context (crf 18:
1,027 and 1,040); pairs without repeats taken for repeats at crf 28, 113 and 115 of 1,014 in
continuous copies, 112 and 113 of 1,014 moving pairs between repeats (crf 18: unchanged, 65 and
59); those are hug-lego-movie's own repeats (animated on twos) and pims-bulk-water's drift under
the compression noise, as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from engine.errors import UnsupportedOptionError

MEAN_TOLERANCE = 0.0015
PEAK_TOLERANCE = 0.012
BLOCK_TOLERANCE = 0.08
BLOCK_PX = 8
CONTEXT_RATIO = 0.2
CONTEXT_PEAK_TOLERANCE = 0.05
CONTEXT_REACH = 2


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


def _difference_image(frame0: np.ndarray, frame1: np.ndarray) -> np.ndarray:
    if frame0.shape != frame1.shape:
        raise UnsupportedOptionError(f"frames differ in shape: {frame0.shape} and {frame1.shape}")
    return np.abs(_luma_unit(frame0) - _luma_unit(frame1))


def _largest_window_mean(difference: np.ndarray) -> float:
    if min(difference.shape) <= BLOCK_PX:
        return float(difference.mean())
    means = cv2.blur(difference, (BLOCK_PX, BLOCK_PX), borderType=cv2.BORDER_REFLECT)
    half = BLOCK_PX // 2
    return float(means[half:-half, half:-half].max())


def frame_difference(frame0: np.ndarray, frame1: np.ndarray) -> tuple[float, float]:
    """Mean and 99.5th-percentile absolute luma difference of two frames, as fractions of full range."""
    difference = _difference_image(frame0, frame1)
    return float(difference.mean()), float(np.percentile(difference, 99.5))


def largest_block_change(frame0: np.ndarray, frame1: np.ndarray) -> float:
    """The largest mean absolute luma difference over any ``BLOCK_PX`` square window (sliding, so a
    small subject is not split between blocks), as a fraction of full range."""
    return _largest_window_mean(_difference_image(frame0, frame1))


@dataclass(frozen=True)
class PairDifference:
    """How two frames differ: mean and 99.5th-percentile luma difference and the largest
    ``BLOCK_PX`` window change, as fractions of full range."""

    mean: float
    peak: float
    block: float

    def is_duplicate(
        self,
        *,
        mean_tolerance: float = MEAN_TOLERANCE,
        peak_tolerance: float = PEAK_TOLERANCE,
        block_tolerance: float = BLOCK_TOLERANCE,
    ) -> bool:
        """The fixed test: the same picture up to compression noise, whatever is around it."""
        return self.mean <= mean_tolerance and self.peak <= peak_tolerance and self.block <= block_tolerance


def pair_difference(frame0: np.ndarray, frame1: np.ndarray) -> PairDifference:
    """The three numbers the duplicate tests judge two frames by."""
    difference = _difference_image(frame0, frame1)
    return PairDifference(
        float(difference.mean()), float(np.percentile(difference, 99.5)), _largest_window_mean(difference)
    )


def is_duplicate_pair(
    frame0: np.ndarray,
    frame1: np.ndarray,
    *,
    mean_tolerance: float = MEAN_TOLERANCE,
    peak_tolerance: float = PEAK_TOLERANCE,
    block_tolerance: float = BLOCK_TOLERANCE,
) -> bool:
    """True when the two frames show the same picture up to compression noise."""
    difference = _difference_image(frame0, frame1)
    if float(difference.mean()) > mean_tolerance or float(np.percentile(difference, 99.5)) > peak_tolerance:
        return False
    return _largest_window_mean(difference) <= block_tolerance


def duplicates_in_context(differences: Sequence[PairDifference | None]) -> list[bool]:
    """For consecutive pairs of a clip (None: a pair not to judge, as across damage), which are
    repeats: by the fixed test, or, heavy compression's, by the motion of the pairs around them
    (see the module doc)."""
    verdicts = []
    for index, difference in enumerate(differences):
        if difference is None:
            verdicts.append(False)
            continue
        if difference.is_duplicate():
            verdicts.append(True)
            continue
        if difference.peak > CONTEXT_PEAK_TOLERANCE or difference.block > BLOCK_TOLERANCE:
            verdicts.append(False)
            continue
        reach = range(max(0, index - CONTEXT_REACH), min(len(differences), index + CONTEXT_REACH + 1))
        around = [differences[j].mean for j in reach if j != index and differences[j] is not None]
        verdicts.append(bool(around) and difference.mean <= CONTEXT_RATIO * max(around))
    return verdicts


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
