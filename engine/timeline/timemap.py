"""The one time-map function: which source time each output frame of a clip shows, exactly.

Output frame n of a clip (n = 0 is its first frame on the track, counted at the timeline rate
R_t) shows the source position

    p(n) = s0 + n * scalar * R_s / R_t          (in source frames, at the source rate R_s)

where s0 is the clip's ``source_range.start_time`` and ``scalar`` its combined time warp. When the
timeline and the source share a rate this is DESIGN.md's ``start + n * time_scalar``; when they
differ, speed 1 means real time (a 50 fps clip in a 25 fps timeline shows every second frame).
A FreezeFrame shows p(n) = s0 for every n.

Everything is a Fraction: over an hour of 30000/1001 the last frame's position is exact, where
adding float steps would drift. Each ``MappedFrame`` gives the source frame below p(n) (floor),
the phase t = p(n) - floor in [0, 1), and whether it lands exactly on a source frame: the inputs a
synthesis backend needs (frames floor and floor + 1 at time t).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import opentimelineio as otio

from engine.errors import FrameOutOfRangeError
from engine.timeline.rates import exact_frames, fraction_text, rational_time
from engine.timeline.segments import Segment


@dataclass(frozen=True)
class MappedFrame:
    """What output frame ``output_frame`` shows: a source position, split for interpolation."""

    output_frame: int
    source_position_frames: Fraction
    source_frame: int
    phase: Fraction

    @property
    def exact(self) -> bool:
        """True when the output frame is a source frame as is (no synthesis needed)."""
        return self.phase == 0

    @property
    def next_source_frame(self) -> int:
        """The second frame to blend toward (``source_frame`` itself when ``exact``)."""
        return self.source_frame if self.exact else self.source_frame + 1


@dataclass(frozen=True)
class TimeMap:
    """An exact map from a clip's output frames to source positions (see the module docstring).

    Source positions are in the clip's media frame numbering (the numbering of its
    ``source_range``, e.g. starting at 86400 for media whose timecode starts at 01:00:00:00).
    """

    clip_name: str
    output_frames: int
    output_rate: Fraction
    source_rate: Fraction
    source_start_frames: Fraction
    time_scalar: Fraction
    freeze_frame: bool
    source_range_end_frames: Fraction
    available_start_frames: Fraction | None = None
    available_end_frames: Fraction | None = None
    head_output_frames: int = 0
    tail_output_frames: int = 0

    @property
    def step_frames(self) -> Fraction:
        """Source frames advanced per output frame (0 for a FreezeFrame)."""
        if self.freeze_frame:
            return Fraction(0)
        return self.time_scalar * self.source_rate / self.output_rate

    def __len__(self) -> int:
        return self.output_frames

    def source_position(self, output_frame: int) -> Fraction:
        """p(n) in source frames; any integer n works (negative n reaches into the head)."""
        return self.source_start_frames + output_frame * self.step_frames

    def source_time(self, output_frame: int) -> otio.opentime.RationalTime:
        """p(n) as an OTIO RationalTime at the source rate (for write-back and display only)."""
        return rational_time(self.source_position(output_frame), self.source_rate)

    def frame(self, output_frame: int) -> MappedFrame:
        """The mapped frame for output frame n, within the clip plus its transition overlaps."""
        first, end = self.visible_output_frames
        if not first <= output_frame < end:
            raise FrameOutOfRangeError(
                f"output frame {output_frame} is outside clip {self.clip_name!r}: "
                f"frames {first} to {end - 1} are mapped"
            )
        position = self.source_position(output_frame)
        below = math.floor(position)
        return MappedFrame(output_frame, position, below, position - below)

    def frames(self, *, include_transitions: bool = False) -> Iterator[MappedFrame]:
        """Every output frame of the clip in order (with transition overlaps when asked)."""
        first, end = self.visible_output_frames if include_transitions else (0, self.output_frames)
        for n in range(first, end):
            yield self.frame(n)

    def __iter__(self) -> Iterator[MappedFrame]:
        return self.frames()

    @property
    def visible_output_frames(self) -> tuple[int, int]:
        """(first, end exclusive) output frames shown, including transition overlaps."""
        return -self.head_output_frames, self.output_frames + self.tail_output_frames

    def needed_source_frames(self, *, include_transitions: bool = True) -> tuple[int, int] | None:
        """(first, last inclusive) source frames that rendering needs, or None for an empty clip.

        An output frame between two source frames needs both, so the last is rounded up.
        """
        first, end = self.visible_output_frames if include_transitions else (0, self.output_frames)
        if end <= first:
            return None
        low = math.floor(min(self.source_position(first), self.source_position(end - 1)))
        high = math.ceil(max(self.source_position(first), self.source_position(end - 1)))
        return low, high

    @property
    def needs_handles(self) -> bool:
        """True when rendering needs media outside the clip's source range (before or after)."""
        needed = self.needed_source_frames()
        if needed is None:
            return False
        return needed[0] < math.floor(self.source_start_frames) or needed[1] >= self.source_range_end_frames

    @property
    def handles_available(self) -> bool | None:
        """Whether the media holds every needed frame (None when its available range is unknown)."""
        needed = self.needed_source_frames()
        if needed is None:
            return True
        if self.available_start_frames is None or self.available_end_frames is None:
            return None
        return self.available_start_frames <= needed[0] and needed[1] < self.available_end_frames

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary with exact numbers as strings; first/last output frames mapped."""
        needed = self.needed_source_frames()
        summary: dict[str, Any] = {
            "clip_name": self.clip_name,
            "output_frames": self.output_frames,
            "output_rate": fraction_text(self.output_rate),
            "source_rate": fraction_text(self.source_rate),
            "time_scalar": fraction_text(self.time_scalar),
            "freeze_frame": self.freeze_frame,
            "step_frames": fraction_text(self.step_frames),
            "source_start_frames": fraction_text(self.source_start_frames),
            "needed_source_frames": list(needed) if needed else None,
            "needs_handles": self.needs_handles,
            "handles_available": self.handles_available,
            "transition_head_frames": self.head_output_frames,
            "transition_tail_frames": self.tail_output_frames,
        }
        if self.output_frames:
            for key, n in (("first", 0), ("last", self.output_frames - 1)):
                mapped = self.frame(n)
                summary[key] = {
                    "output_frame": n,
                    "source_position_frames": fraction_text(mapped.source_position_frames),
                    "source_frame": mapped.source_frame,
                    "phase": fraction_text(mapped.phase),
                    "exact": mapped.exact,
                }
        return summary


def time_map(segment: Segment) -> TimeMap:
    """Build the exact time map of one segment. Raises ``InvalidTimeWarpError`` for bad warps."""
    scalar = segment.time_scalar
    freeze = segment.is_freeze_frame
    source_rate = segment.source_rate
    start = segment.source_start_frames
    available_start = available_end = None
    if segment.available_range is not None:
        available_start = exact_frames(segment.available_range.start_time, source_rate)
        available_end = exact_frames(segment.available_range.end_time_exclusive(), source_rate)
    return TimeMap(
        clip_name=segment.clip_name,
        output_frames=segment.record_frames,
        output_rate=segment.timeline_rate,
        source_rate=source_rate,
        source_start_frames=start,
        time_scalar=Fraction(0) if freeze else scalar,
        freeze_frame=freeze,
        source_range_end_frames=start + segment.source_duration_frames,
        available_start_frames=available_start,
        available_end_frames=available_end,
        head_output_frames=segment.transition_head_frames,
        tail_output_frames=segment.transition_tail_frames,
    )
