"""The speed ramp an editor draws on the speed curve, and the exact frame grid it gives the playhead.

The editor places keyframes on the clip: each is anchored at a source position (frames of the
clip, exact) with a speed, so a keyframe stays on the moment it marks (the ball hitting the
ground) while other keyframes move. The engine takes a ramp in one format only
(``engine.retime.ramp``): keyframes over OUTPUT frames counted from the start of the rendered
range (the In mark, or the clip's start), the speed linear between them in output time.
``DrawnRamp.speed_ramp(origin_frames)`` turns the anchors into exactly that ``SpeedRamp``, each
keyframe on the whole output frame nearest its anchor, so what the plot shows, what the preview
asks for and what the render makes are one and the same ramp.

Speeds are slow motion, ``MIN_RAMP_SPEED`` (1/16) to 1, and anchors stay at least one source
frame apart, so a drawn ramp is always one the engine accepts: no speed of 0 or below, no two
keyframes on one output frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from engine.retime.ramp import RampMap, SpeedKeyframe, SpeedRamp, linear_between

MIN_RAMP_SPEED = Fraction(1, 16)
MAX_RAMP_SPEED = Fraction(1)
MIN_ANCHOR_GAP_FRAMES = Fraction(1)
# speeds a drag snaps to when it passes near them (editors think in these)
NICE_SPEEDS = (
    Fraction(1),
    Fraction(3, 4),
    Fraction(1, 2),
    Fraction(1, 3),
    Fraction(1, 4),
    Fraction(1, 5),
    Fraction(1, 8),
    Fraction(1, 10),
    Fraction(1, 16),
)


def clamp_speed(speed: Fraction) -> Fraction:
    """``speed`` inside the ramp's range, 1/16 to 1."""
    return min(MAX_RAMP_SPEED, max(MIN_RAMP_SPEED, Fraction(speed)))


def percent_text(speed: Fraction) -> str:
    """``25%``, ``12.5%``, ``6.25%``: a ramp speed as editors read it."""
    return f"{float(speed) * 100:.4g}%"


@dataclass(frozen=True)
class RampAnchor:
    """A keyframe as the editor placed it: a source position (clip frames) and a speed."""

    source_frames: Fraction
    speed: Fraction


class DrawnRamp:
    """The keyframes of one clip's ramp, kept sorted by source position, at least a frame apart."""

    def __init__(self, frame_count: int, anchors: tuple[RampAnchor, ...] = ()):
        self.frame_count = frame_count
        self.anchors: list[RampAnchor] = []
        for anchor in anchors:
            self.add(anchor.source_frames, anchor.speed)

    @classmethod
    def from_speed_ramp(cls, ramp: SpeedRamp, origin_frames: int, frame_count: int) -> DrawnRamp:
        """Anchors for an engine ramp (e.g. a ``chronoscope retime --ramp`` file) that starts at
        source frame ``origin_frames``: each keyframe where the ramp puts it. Converting back with
        the same origin gives the same ramp, as long as its keyframes lie inside the clip."""
        grid = RampGrid(ramp, origin_frames)
        return cls(frame_count, tuple(RampAnchor(grid.position(k.frame), k.speed) for k in ramp.keyframes))

    def __len__(self) -> int:
        return len(self.anchors)

    def __bool__(self) -> bool:
        return bool(self.anchors)

    def _last_frame(self) -> Fraction:
        return Fraction(max(0, self.frame_count - 1))

    def index_near(self, source_frames: Fraction) -> int | None:
        """The anchor less than ``MIN_ANCHOR_GAP_FRAMES`` from ``source_frames``, if any."""
        for index, anchor in enumerate(self.anchors):
            if abs(anchor.source_frames - source_frames) < MIN_ANCHOR_GAP_FRAMES:
                return index
        return None

    def add(self, source_frames: Fraction, speed: Fraction) -> int:
        """Add a keyframe (clamped to the clip and the speed range) and return its index; one that
        would sit less than a frame from another replaces that one's speed instead."""
        position = min(self._last_frame(), max(Fraction(0), Fraction(source_frames)))
        anchor = RampAnchor(position, clamp_speed(speed))
        near = self.index_near(position)
        if near is not None:
            self.anchors[near] = RampAnchor(self.anchors[near].source_frames, anchor.speed)
            return near
        index = sum(1 for a in self.anchors if a.source_frames < position)
        self.anchors.insert(index, anchor)
        return index

    def move(self, index: int, source_frames: Fraction, speed: Fraction) -> None:
        """Move keyframe ``index``; it stays between its neighbours (a frame from each)."""
        low = self.anchors[index - 1].source_frames + MIN_ANCHOR_GAP_FRAMES if index > 0 else Fraction(0)
        high = (
            self.anchors[index + 1].source_frames - MIN_ANCHOR_GAP_FRAMES
            if index + 1 < len(self.anchors)
            else self._last_frame()
        )
        position = min(high, max(low, Fraction(source_frames)))
        self.anchors[index] = RampAnchor(position, clamp_speed(speed))

    def remove(self, index: int) -> None:
        del self.anchors[index]

    def clear(self) -> None:
        self.anchors.clear()

    def speed_at_source(self, source_frames: Fraction) -> Fraction:
        """The anchors' speed at a source position, linear between anchors (used where the ramp
        is cut by the In mark: the speed its first keyframe gets)."""
        return linear_between([(a.source_frames, a.speed) for a in self.anchors], source_frames)

    def speed_ramp(self, origin_frames: int) -> SpeedRamp | None:
        """The engine's ``SpeedRamp`` for a render starting at source frame ``origin_frames``.

        Each anchor after the origin becomes a keyframe on the whole output frame that brings the
        ramp nearest its source position (the speed is linear in output frames, so the distance
        in output frames between two keyframes is the source distance over their mean speed).
        Anchors at or before the origin give one keyframe at output frame 0, at the speed the
        anchors have there. None when there are no anchors.
        """
        return self._build(origin_frames)[0]

    def _build(self, origin_frames: int) -> tuple[SpeedRamp | None, list[int | None]]:
        """The ramp, and for each anchor the output frame of its keyframe (None: before the origin)."""
        if not self.anchors:
            return None, []
        origin = Fraction(origin_frames)
        keys: list[SpeedKeyframe] = []
        frames: list[int | None] = []
        reached = Fraction(0)  # source frames from the origin to the last keyframe, exact
        if any(a.source_frames <= origin for a in self.anchors):
            keys.append(SpeedKeyframe(0, self.speed_at_source(origin)))
        for anchor in self.anchors:
            if anchor.source_frames <= origin:
                frames.append(None)
                continue
            distance = anchor.source_frames - origin
            if not keys:
                frame = max(0, round(distance / anchor.speed))
                reached = frame * anchor.speed
            else:
                previous = keys[-1]
                span = (distance - reached) * 2 / (previous.speed + anchor.speed)
                frame = previous.frame + max(1, round(span))
                reached += (frame - previous.frame) * (previous.speed + anchor.speed) / 2
            keys.append(SpeedKeyframe(frame, anchor.speed))
            frames.append(frame)
        return SpeedRamp(tuple(keys)), frames

    def handles(self, origin_frames: int) -> list[RampAnchor]:
        """Where each anchor's keyframe really is (source position, speed) for a render from
        ``origin_frames``: on its output frame; anchors before the origin stay where placed."""
        ramp, frames = self._build(origin_frames)
        if ramp is None:
            return []
        grid = RampGrid(ramp, origin_frames)
        return [
            anchor if frame is None else RampAnchor(grid.position(frame), anchor.speed)
            for anchor, frame in zip(self.anchors, frames, strict=True)
        ]

    def to_json(self, origin_frames: int) -> list[dict[str, object]] | None:
        """The keyframes as the engine's JSON (``engine.retime.ramp`` format), or None."""
        ramp = self.speed_ramp(origin_frames)
        return ramp.to_json() if ramp is not None else None


@dataclass(frozen=True)
class ConstantGrid:
    """The retimed frame grid at one constant speed, counted as the render counts its frames:
    output frame n shows source position ``origin_frames + n x speed`` (``origin_frames``: the In
    mark, where the render's frame 0 is; before it, n is negative)."""

    speed: Fraction
    origin_frames: int = 0

    def position(self, output_frame: int) -> Fraction:
        return self.origin_frames + output_frame * self.speed

    def nearest(self, source_frames: Fraction) -> int:
        return round((Fraction(source_frames) - self.origin_frames) / self.speed)

    def output_frames(self, start: int, end: int) -> int:
        """Frames the engine renders for source frames ``start`` to ``end`` (out exclusive), as
        ``engine.retime.clip.constant_speed_map`` counts them."""
        return math.ceil(Fraction(end - start) / self.speed)


@dataclass(frozen=True)
class RampGrid:
    """The retimed frame grid along a ramp that starts at source frame ``origin_frames``.

    Output frame n >= 0 shows ``origin + p(n)`` (``SpeedRamp.position_at``, exact); before the
    origin the ramp's first speed continues backwards, so the playhead can still move there.
    """

    ramp: SpeedRamp
    origin_frames: int

    def position(self, output_frame: int) -> Fraction:
        if output_frame < 0:
            return self.origin_frames + output_frame * self.ramp.keyframes[0].speed
        return self.origin_frames + self.ramp.position_at(output_frame)

    def nearest(self, source_frames: Fraction) -> int:
        """The output frame whose source position is nearest ``source_frames``."""
        offset = Fraction(source_frames) - self.origin_frames
        if offset <= 0:
            return round(offset / self.ramp.keyframes[0].speed)
        low, high = 0, 1
        while self.ramp.position_at(high) < offset:
            low, high = high, high * 2
        while high - low > 1:
            middle = (low + high) // 2
            if self.ramp.position_at(middle) < offset:
                low = middle
            else:
                high = middle
        below, above = self.ramp.position_at(low), self.ramp.position_at(high)
        return low if offset - below <= above - offset else high

    def output_frames(self, start: int, end: int) -> int:
        """Frames the engine renders for source frames ``start`` to ``end`` (out exclusive)."""
        rate = Fraction(1)
        return RampMap("", self.ramp, end - start, rate, rate).output_frames

    def curve_points(
        self, first_frames: float, last_frames: float, samples: int
    ) -> list[tuple[float, float]]:
        """(source frames, speed) points along the ramp for drawing, about ``samples`` of them,
        with every keyframe included (floats: this is for pixels only)."""
        total = self.nearest(Fraction(last_frames).limit_denominator(1000)) + 1
        start = min(0, self.nearest(Fraction(first_frames).limit_denominator(1000)))
        step = max(1, math.ceil((total - start) / max(1, samples)))
        frames = sorted(
            set(range(start, total + 1, step))
            | {k.frame for k in self.ramp.keyframes if start <= k.frame <= total}
            | {0, total}
        )
        points = []
        for frame in frames:
            speed = self.ramp.keyframes[0].speed if frame < 0 else self.ramp.speed_at(frame)
            points.append((float(self.position(frame)), float(speed)))
        return points
