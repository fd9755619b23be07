"""Speed ramps: a speed curve over output frames, integrated exactly into source positions.

A ramp is a list of keyframes in JSON, ``frame`` counted in OUTPUT frames (the retimed clip's own
frames, as an editor places them on a timeline) and ``speed`` as a number or a fraction string::

    [{"frame": 0, "speed": 1.0}, {"frame": 48, "speed": 0.25}, {"frame": 96, "speed": "1/4"}]

The speed is linear between keyframes, constant before the first and after the last. Output
frame ``n`` shows the source position

    p(n) = integral from 0 to n of speed(x) dx          (in source frames)

which for a constant speed s is ``n * s``: the same rule as ``engine.timeline.time_map`` for a
LinearTimeWarp. Each linear piece integrates exactly (the trapezoid rule is exact for a straight
line), so every position is an exact Fraction, however long the ramp.

``RampMap`` yields the same ``MappedFrame`` records as ``TimeMap`` (source frame below, phase,
exact flag), so the renderer has one way to go from output frames to source frames.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from engine.errors import FrameOutOfRangeError, RetimeSpeedError
from engine.timeline import MappedFrame, fraction_text

RAMP_EXAMPLE = '[{"frame": 0, "speed": 1.0}, {"frame": 48, "speed": 0.25}]'


def parse_speed(value: Any, *, what: str = "speed", allow_speedup: bool = False) -> Fraction:
    """Read a speed (``0.25``, ``"0.25"``, ``"1/4"``) as an exact Fraction and check its range.

    Speeds must be above 0; above 1 only with ``allow_speedup`` (slow motion is 0 < speed <= 1).
    Raises ``RetimeSpeedError`` naming the value and what works.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Fraction)):
        raise RetimeSpeedError(f"{what} {value!r} is not a number; give e.g. 0.25 or 1/4")
    if isinstance(value, float) and not math.isfinite(value):
        raise RetimeSpeedError(f"{what} {value} is not a finite number; give a speed above 0, e.g. 0.25")
    if isinstance(value, str) and "_" in value:  # Fraction reads "1_0" as 10, as Python literals do
        raise RetimeSpeedError(f"{what} {value!r} is not a number; give e.g. 0.25 or 1/4")
    try:
        speed = Fraction(repr(value) if isinstance(value, float) else value)
    except (ValueError, ZeroDivisionError):
        raise RetimeSpeedError(f"{what} {value!r} is not a number; give e.g. 0.25 or 1/4") from None
    if speed <= 0:
        needs = (
            "a speed above 0 (1 = real time, 0.25 = four times slower, 2 = twice as fast)"
            if allow_speedup
            else "0 < speed <= 1 (1 = real time, 0.5 = half speed, 0.25 = four times slower)"
        )
        raise RetimeSpeedError(
            f"{what} {value} is not above 0; a retime needs {needs}: it neither holds a frame "
            "nor plays backwards"
        )
    if speed > 1 and not allow_speedup:
        raise RetimeSpeedError(
            f"{what} {value} is above 1 (faster than real time); slow motion needs 0 < speed <= 1, "
            "or allow speed-up (--allow-speedup) to render by skipping source frames"
        )
    return speed


def linear_between(points: Sequence[tuple[Fraction, Fraction]], x: Fraction) -> Fraction:
    """The piecewise-linear value at ``x`` through ``(x, y)`` points sorted by x (exact), held at
    the first and last y outside them: a ramp's speed between its keyframes."""
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


@dataclass(frozen=True)
class SpeedKeyframe:
    """The speed at one output frame."""

    frame: int
    speed: Fraction


@dataclass(frozen=True)
class SpeedRamp:
    """A piecewise-linear speed curve over output frames (see the module docstring)."""

    keyframes: tuple[SpeedKeyframe, ...]

    def __post_init__(self) -> None:
        if not self.keyframes:
            raise RetimeSpeedError(f"a speed ramp needs at least one keyframe, e.g. {RAMP_EXAMPLE}")
        frames = [k.frame for k in self.keyframes]
        if frames != sorted(set(frames)):
            raise RetimeSpeedError(
                f"speed ramp keyframes must have increasing, distinct frames; got {frames}"
            )

    @classmethod
    def constant(cls, speed: Fraction) -> SpeedRamp:
        return cls((SpeedKeyframe(0, Fraction(speed)),))

    @property
    def is_constant(self) -> bool:
        return len({k.speed for k in self.keyframes}) == 1

    @property
    def max_speed(self) -> Fraction:
        return max(k.speed for k in self.keyframes)

    @property
    def min_speed(self) -> Fraction:
        return min(k.speed for k in self.keyframes)

    def speed_at(self, frame: Fraction | int) -> Fraction:
        """The speed at output frame ``frame`` (any real number of frames)."""
        return linear_between([(Fraction(k.frame), k.speed) for k in self.keyframes], Fraction(frame))

    def position_at(self, frame: int) -> Fraction:
        """p(n): source frames advanced from output frame 0 to ``frame`` (exact)."""
        if frame < 0:
            raise FrameOutOfRangeError(f"output frame {frame} is before the start of the ramp")
        end = Fraction(frame)
        bounds = [Fraction(0)] + [Fraction(k.frame) for k in self.keyframes if 0 < k.frame < end] + [end]
        total = Fraction(0)
        for low, high in zip(bounds, bounds[1:], strict=False):
            total += (high - low) * (self.speed_at(low) + self.speed_at(high)) / 2
        return total

    def to_json(self) -> list[dict[str, Any]]:
        return [{"frame": k.frame, "speed": fraction_text(k.speed)} for k in self.keyframes]


def parse_ramp(data: Any, *, allow_speedup: bool = False, where: str = "speed ramp") -> SpeedRamp:
    """Build a ``SpeedRamp`` from parsed JSON: a list of {"frame", "speed"} objects (or
    {"keyframes": [...]}). Raises ``RetimeSpeedError`` naming the bad entry."""
    if isinstance(data, dict) and "keyframes" in data:
        data = data["keyframes"]
    if not isinstance(data, list) or not data:
        raise RetimeSpeedError(f"{where} must be a non-empty list of keyframes, e.g. {RAMP_EXAMPLE}")
    keyframes = []
    for index, entry in enumerate(data):
        if (
            not isinstance(entry, dict)
            or set(entry) - {"frame", "speed"}
            or not {"frame", "speed"} <= set(entry)
        ):
            raise RetimeSpeedError(
                f'{where} keyframe {index} is {entry!r}; each keyframe is {{"frame": N, "speed": S}}'
            )
        frame = entry["frame"]
        if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
            raise RetimeSpeedError(
                f"{where} keyframe {index} has frame {frame!r}; frames are whole output frames, 0 or more"
            )
        speed = parse_speed(
            entry["speed"], what=f"{where} keyframe {index} speed", allow_speedup=allow_speedup
        )
        keyframes.append(SpeedKeyframe(frame, speed))
    return SpeedRamp(tuple(keyframes))


def load_ramp(path: Path, *, allow_speedup: bool = False) -> SpeedRamp:
    """Read a ramp from a JSON file; ``RetimeSpeedError`` names the file when it is missing or bad."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RetimeSpeedError(
            f"speed ramp file {path} does not exist; write keyframes like {RAMP_EXAMPLE}"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise RetimeSpeedError(
            f"speed ramp file {path} is not JSON ({error}); write e.g. {RAMP_EXAMPLE}"
        ) from None
    return parse_ramp(data, allow_speedup=allow_speedup, where=f"speed ramp {path.name}")


@dataclass(frozen=True)
class RampMap:
    """Output frames of a ramped retime mapped to source positions; ``TimeMap``'s interface.

    ``source_frames`` is the length of the source in frames: the map covers every output frame
    whose position lies before the end of the source (the last ones may lie after the last source
    frame, within one frame of it; the renderer holds the last frame there).
    """

    clip_name: str
    ramp: SpeedRamp
    source_frames: int
    output_rate: Fraction
    source_rate: Fraction
    source_start_frames: Fraction = Fraction(0)
    head_output_frames: int = 0
    tail_output_frames: int = 0

    @property
    def output_frames(self) -> int:
        return _count_before(self.ramp, Fraction(self.source_frames) * self.output_rate / self.source_rate)

    def __len__(self) -> int:
        return self.output_frames

    @property
    def visible_output_frames(self) -> tuple[int, int]:
        return 0, self.output_frames

    def source_position(self, output_frame: int) -> Fraction:
        return (
            self.source_start_frames
            + self.ramp.position_at(output_frame) * self.source_rate / self.output_rate
        )

    def frame(self, output_frame: int) -> MappedFrame:
        if not 0 <= output_frame < self.output_frames:
            raise FrameOutOfRangeError(
                f"output frame {output_frame} is outside the ramp of {self.clip_name!r}: "
                f"frames 0 to {self.output_frames - 1} are mapped"
            )
        position = self.source_position(output_frame)
        below = math.floor(position)
        return MappedFrame(output_frame, position, below, position - below)

    def frames(self, *, include_transitions: bool = False) -> Iterator[MappedFrame]:
        """Every output frame in order; positions are accumulated piece by piece (still exact)."""
        scale = self.source_rate / self.output_rate
        keys = [k.frame for k in self.ramp.keyframes]
        position = Fraction(0)
        for n in range(self.output_frames):
            if n > 0:
                position += _piece_integral(self.ramp, n - 1, n, keys)
            absolute = self.source_start_frames + position * scale
            below = math.floor(absolute)
            yield MappedFrame(n, absolute, below, absolute - below)

    def __iter__(self) -> Iterator[MappedFrame]:
        return self.frames()

    def to_dict(self) -> dict[str, Any]:
        return {
            "clip_name": self.clip_name,
            "output_frames": self.output_frames,
            "output_rate": fraction_text(self.output_rate),
            "source_rate": fraction_text(self.source_rate),
            "source_start_frames": fraction_text(self.source_start_frames),
            "source_frames": self.source_frames,
            "ramp": self.ramp.to_json(),
        }


def _piece_integral(ramp: SpeedRamp, low: int, high: int, keys: Sequence[int]) -> Fraction:
    """Integral of the speed from output frame ``low`` to ``high`` (exact, split at keyframes)."""
    bounds = [Fraction(low)] + [Fraction(k) for k in keys if low < k < high] + [Fraction(high)]
    return sum(
        (
            (b - a) * (ramp.speed_at(a) + ramp.speed_at(b)) / 2
            for a, b in zip(bounds, bounds[1:], strict=False)
        ),
        Fraction(0),
    )


def _count_before(ramp: SpeedRamp, limit: Fraction) -> int:
    """How many output frames n >= 0 have p(n) < ``limit`` (p increases: speeds are above 0)."""
    if limit <= 0:
        return 0
    low, high = 0, 1
    while ramp.position_at(high) < limit:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if ramp.position_at(middle) < limit:
            low = middle
        else:
            high = middle
    return high
