"""Where each frame of a file sits on a constant frame grid, so that time is read by the clock.

A constant-rate file puts frame i at slot i of a grid at its own rate. A variable-frame-rate file
(a phone that slows its sensor in low light, a recording that stalled for 0.3 s) does not: its
frames are read by their timestamps, as an editing application conforms such a clip, and placed
in order on a grid at a constant rate (``grid_rate_for``: the standard rate its typical interval
is, such as 30 for a phone's 29.88 average), each within three quarters of a slot of its time
(``frame_slots``). Slots no frame lands on (a stall) lie between two frames and are made between
them; a frame less than a quarter slot after the one before it is left out.

``FrameSlots.locate(position)`` turns a position on the grid (in grid frames, 0 at the first
frame) into the file frames to show: one frame exactly, a pair and the phase between them, or
an end frame held for a position outside the clip.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from engine.errors import UnsupportedOptionError
from engine.media.probe import VideoStreamInfo
from engine.media.rates import STANDARD_RATES
from engine.media.reader import FrameReader

log = logging.getLogger(__name__)

STALL_SLOTS = Fraction(7, 4)
"""A frame this many slots or more after the previous frame's slot follows a stall."""
CROWDED_SLOTS = Fraction(1, 4)
"""A frame less than this many slots after the previous frame's slot is left out."""

GRID_FIT = 0.15
"""Frames within this many slots of a grid's slots on average sit on it (a drifting grid gives
about 0.25; a 30 fps clip with 4 ms jitter 0.06 on 30)."""

STANDARD_RATE_TOLERANCE = Fraction(3, 100)
"""A clip's typical interval within this of a standard rate's is put on that rate's grid (phones
stamp 29.88 to 30.02 fps clips whose typical interval is 1/30 s up to a millisecond of rounding)."""


@dataclass(frozen=True)
class SourcePlace:
    """What a grid position shows: file frame ``lower``, or the frame ``phase`` of the way from
    ``lower`` to ``upper``; ``held`` says why an end frame is shown instead (outside the clip)."""

    lower: int
    upper: int
    phase: Fraction
    held: str = ""
    slots_between: int = 1
    """Grid slots from ``lower`` to ``upper``: more than 1 across a stall (frames missing there)."""


@dataclass(frozen=True)
class FrameSlots:
    """File frames on a constant grid of ``rate`` fps: frame ``frames[k]`` at slot ``slots[k]``
    (both increasing); file frames not listed share a slot with a nearer one and are not shown."""

    rate: Fraction
    frames: np.ndarray
    slots: np.ndarray
    file_frames: int

    @classmethod
    def constant(cls, frame_count: int, rate: Fraction) -> FrameSlots:
        """A constant-rate file: frame i at slot i."""
        index = np.arange(frame_count, dtype=np.int64)
        return cls(Fraction(rate), index, index, frame_count)

    @property
    def slot_count(self) -> int:
        """Grid frames from the first frame to the last, both included: the clip's length."""
        return int(self.slots[-1]) + 1

    @property
    def frames_left_out(self) -> int:
        """File frames that share a slot with a nearer frame."""
        return self.file_frames - int(self.frames.size)

    @property
    def empty_slots(self) -> int:
        """Grid frames no file frame lands on (made between the frames either side)."""
        return self.slot_count - int(self.frames.size)

    def locate(self, position: Fraction) -> SourcePlace:
        """The file frames a grid position shows; positions outside the clip hold an end frame."""
        if position < 0:
            return SourcePlace(
                int(self.frames[0]),
                int(self.frames[0]),
                Fraction(0),
                f"before the start of the media: its first frame is held ({_text(position)} wanted)",
            )
        last = int(self.slots[-1])
        if position > last:
            return SourcePlace(
                int(self.frames[-1]),
                int(self.frames[-1]),
                Fraction(0),
                "after the end of the media: its last frame is held",
            )
        below = int(np.searchsorted(self.slots, position.__floor__(), side="right")) - 1
        lower_slot = int(self.slots[below])
        lower = int(self.frames[below])
        if position == lower_slot:
            return SourcePlace(lower, lower, Fraction(0))
        upper_slot = int(self.slots[below + 1])
        phase = (position - lower_slot) / (upper_slot - lower_slot)
        return SourcePlace(lower, int(self.frames[below + 1]), phase, slots_between=upper_slot - lower_slot)

    def describe(self) -> dict:
        """The grid as the retime report records it."""
        return {
            "rate": _text(self.rate),
            "grid_frames": self.slot_count,
            "file_frames": self.file_frames,
            "empty_slots": self.empty_slots,
            "frames_left_out": self.frames_left_out,
        }


def _text(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def grid_rate_for(
    pts: np.ndarray, time_base: Fraction, declared: tuple[Fraction | None, ...] = ()
) -> Fraction:
    """The constant rate a variable-frame-rate clip is put on: the standard rate nearest its
    typical frame interval (the mean of the intervals within half of the median either side, so
    stalls do not count and alternating 2- and 4-tick intervals make 3) when within
    ``STANDARD_RATE_TOLERANCE``, else that interval's own rate (to a thousandth of a frame per
    second). A ``declared`` rate of the stream (its r_frame_rate: the 30 of a phone whose clips
    average 29.88) is preferred when it is a standard rate within the tolerance too."""
    if pts.size < 2:
        raise UnsupportedOptionError("a clip of one frame has no frame interval to put on a grid")
    deltas = np.diff(pts.astype(np.int64))
    median = float(np.median(deltas))
    near = deltas[(deltas >= 0.5 * median) & (deltas <= 1.5 * median)]
    typical = Fraction(int(near.sum()), int(near.size)) if near.size and median > 0 else Fraction(0)
    if typical <= 0:
        raise UnsupportedOptionError(
            "the clip's frame timestamps do not increase; it cannot be put on a constant grid"
        )
    measured = 1 / (typical * Fraction(time_base))
    close = [rate for rate in STANDARD_RATES if abs(measured / rate - 1) <= STANDARD_RATE_TOLERANCE]
    stated = [Fraction(rate) for rate in declared if rate is not None]
    # a rate whose slots the frames sit on decides (30 against 29.97 for a 30 fps clip whose
    # jitter biases the mean interval); where none fits (a drifting phone), the declared rate
    # or else the nearest
    fits = {rate: _grid_fit(pts, time_base, rate) for rate in close}
    sitting = [rate for rate in close if fits[rate] <= GRID_FIT]
    for choices, best in ((sitting, fits.get), (close, lambda rate: abs(measured / rate - 1))):
        for rate in stated:
            if rate in choices:
                return rate
        if choices:
            return min(choices, key=best)
    return measured.limit_denominator(1000)


def _grid_fit(pts: np.ndarray, time_base: Fraction, rate: Fraction) -> float:
    """How far the frames sit from the slots of a grid of ``rate`` fps: the mean distance to the
    nearest slot, in slots (about 0.25 where the grid drifts through the frames)."""
    positions = (pts.astype(np.int64) - int(pts[0])).astype(np.float64) * float(Fraction(time_base) * rate)
    return float(np.mean(np.abs(positions - np.round(positions))))


def frame_slots(pts: np.ndarray, time_base: Fraction, rate: Fraction) -> FrameSlots:
    """Put frames with presentation timestamps ``pts`` (increasing) on a grid of ``rate`` fps
    starting at the first frame, in order: each frame takes the slot after the previous frame's,
    unless its time is at least ``STALL_SLOTS`` on (a stall: it goes to its nearest slot, and the
    slots between are made) or less than ``CROWDED_SLOTS`` on (it is left out). Each frame stays
    within three quarters of a slot of its time, so a clip whose rate drifts from the grid's (a
    phone's 29.88 fps on 29.97) gets one made slot where the drift passes that, and jitter of a few
    milliseconds neither leaves frames out nor makes any (rounding each frame to its nearest slot
    did both, in pairs, wherever the drift stood near half a slot)."""
    if pts.size == 0:
        raise UnsupportedOptionError("the clip has no frames to put on a grid")
    ticks = (pts.astype(np.int64) - int(pts[0])).tolist()
    slots_per_tick = Fraction(rate) * Fraction(time_base)
    kept_frames, kept_slots = [0], [0]
    for index in range(1, len(ticks)):
        position = ticks[index] * slots_per_tick
        ahead = position - kept_slots[-1]
        if ahead < CROWDED_SLOTS:
            continue
        slot = kept_slots[-1] + 1 if ahead < STALL_SLOTS else _round_half_up(position)
        kept_frames.append(index)
        kept_slots.append(slot)
    return FrameSlots(
        Fraction(rate),
        np.array(kept_frames, dtype=np.int64),
        np.array(kept_slots, dtype=np.int64),
        int(pts.size),
    )


def _round_half_up(value: Fraction) -> int:
    return (2 * value.numerator + value.denominator) // (2 * value.denominator)


def clip_grid(path: Path, video: VideoStreamInfo) -> FrameSlots:
    """The constant grid a clip is seen on: its own frames at its own rate, or, for a
    variable-frame-rate clip, its frames placed by their timestamps on the standard rate nearest
    its typical interval (``grid_rate_for``, preferring the stream's declared rate), so that
    picture and sound keep time. ``retime`` renders on it and the preview app shows it. Timestamps
    no grid can be made of (most frames sharing one) leave the frames in file order, WARNING."""
    if not video.is_vfr:
        return FrameSlots.constant(video.frame_count, Fraction(video.frame_rate))
    pts = frame_timestamps(path)
    declared = (video.r_frame_rate, video.guessed_rate)
    try:
        return frame_slots(pts, video.time_base, grid_rate_for(pts, video.time_base, declared))
    except UnsupportedOptionError as error:
        log.warning("%s: %s; its frames are taken in file order at %s fps", path.name, error,
                    _text(Fraction(video.frame_rate)))
        return FrameSlots.constant(video.frame_count, Fraction(video.frame_rate))


def frame_timestamps(path: Path) -> np.ndarray:
    """Every frame's pts in presentation order (the packet scan), remembered for the last few files
    while they are unchanged: a render asks for one file's grid once per clip, gap and cut."""
    path = Path(path).resolve()
    stat = path.stat()
    return _frame_timestamps(path, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


@functools.lru_cache(maxsize=16)
def _frame_timestamps(path: Path, size: int, mtime_ns: int, ctime_ns: int) -> np.ndarray:
    with FrameReader(path) as reader:
        pts = reader.pts_index.copy()
    pts.flags.writeable = False
    return pts
