"""Records that every speed stage returns: a speed estimate with its evidence, per window and per segment.

Speed is ``s = P / C``: P the playback rate of the file (container fps), C the capture rate.
s = 1 is real time, s = 1/8 is 8x slow motion (240 fps shot, played at 30), s = 4 is 4x sped up.

How speed is stored (decided here, used everywhere):

- ``speed`` is a ``Fraction``. Stages that know it exactly (container metadata: 30/240) give it
  exactly; stages that measure it (the synthetic-retime check, the learned estimator) round their
  best value to a small fraction (denominator at most 1000) so that 1/8 stays 1/8.
- ``speed_log2_sigma`` is the uncertainty: one standard deviation of ``log2(speed)``. 0 means
  exact; 0.5 means "within a factor of about 1.41 either way" at one sigma. Speed errors are
  multiplicative (2x too slow is as wrong as 2x too fast), hence the log scale.
- A ``still`` result has ``speed = None`` and ``capture_rate = None``: too little motion to tell,
  and we say so instead of guessing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from typing import Any

from engine.errors import UnsupportedOptionError

MAX_SPEED_DENOMINATOR = 1000


class SpeedClass(str, Enum):
    """What kind of time a clip shows."""

    REALTIME = "realtime"
    SLOWMO = "slowmo"
    SYNTHETIC_SLOWMO = "synthetic_slowmo"
    SPED_UP = "sped_up"
    STILL = "still"


def parse_speed_class(value: str | SpeedClass) -> SpeedClass:
    """Return the ``SpeedClass`` named by ``value``; an unknown name lists the valid ones."""
    try:
        return SpeedClass(value)
    except ValueError:
        valid = ", ".join(member.value for member in SpeedClass)
        raise UnsupportedOptionError(f"speed class {value!r} is not known; valid: {valid}") from None


def speed_to_fraction(speed: float | Fraction) -> Fraction:
    """A measured speed as a small exact fraction (1/8 stays 1/8, 0.3333 becomes 1/3)."""
    value = Fraction(speed)
    if value <= 0:
        raise UnsupportedOptionError(f"speed {speed} is not positive; a speed is P / C > 0")
    return value.limit_denominator(MAX_SPEED_DENOMINATOR)


def fraction_to_json(value: Fraction | None) -> str | None:
    """Fractions travel in JSON as strings such as ``"30000/1001"`` (exact, unlike floats)."""
    if value is None:
        return None
    return f"{value.numerator}/{value.denominator}" if value.denominator != 1 else str(value.numerator)


def fraction_from_json(value: str | int | None) -> Fraction | None:
    if value is None:
        return None
    return Fraction(value)


@dataclass(frozen=True)
class Evidence:
    """One finding of one stage: what was seen, the measured value, and how much it counts (0..1)."""

    stage: str
    finding: str
    value: float | str | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise UnsupportedOptionError(f"evidence weight {self.weight} is outside [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        value = self.value
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        return {"stage": self.stage, "finding": self.finding, "value": value, "weight": self.weight}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        return cls(
            stage=data["stage"],
            finding=data["finding"],
            value=data.get("value"),
            weight=float(data.get("weight", 1.0)),
        )


@dataclass
class SpeedEstimate:
    """A clip's (or a window's) speed, capture rate, confidence, class and the evidence behind them."""

    speed: Fraction | None
    playback_rate: Fraction
    capture_rate: Fraction | None
    confidence: float
    speed_class: SpeedClass
    speed_log2_sigma: float = 0.0
    evidence: list[Evidence] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.speed_class = parse_speed_class(self.speed_class)
        self.playback_rate = Fraction(self.playback_rate)
        if self.playback_rate <= 0:
            raise UnsupportedOptionError(f"playback rate {self.playback_rate} fps is not positive")
        if not 0.0 <= self.confidence <= 1.0:
            raise UnsupportedOptionError(f"confidence {self.confidence} is outside [0, 1]")
        if self.speed_log2_sigma < 0 or not math.isfinite(self.speed_log2_sigma):
            raise UnsupportedOptionError(f"speed_log2_sigma {self.speed_log2_sigma} must be finite and >= 0")
        if self.speed_class is SpeedClass.STILL:
            if self.speed is not None or self.capture_rate is not None:
                raise UnsupportedOptionError("a 'still' estimate carries no speed and no capture rate")
            return
        if self.speed is None:
            raise UnsupportedOptionError(
                f"a {self.speed_class.value!r} estimate needs a speed; only 'still' has none"
            )
        self.speed = speed_to_fraction(self.speed)
        if self.capture_rate is None:
            self.capture_rate = self.playback_rate / self.speed
        self.capture_rate = Fraction(self.capture_rate)
        if self.capture_rate <= 0:
            raise UnsupportedOptionError(f"capture rate {self.capture_rate} fps is not positive")

    @property
    def slowdown_factor(self) -> Fraction | None:
        """1 / s: 8 for 8x slow motion, 1/4 for 4x sped up; None when still."""
        return None if self.speed is None else 1 / self.speed

    def speed_interval(self, sigmas: float = 1.0) -> tuple[float, float] | None:
        """Speed range at ``sigmas`` standard deviations (multiplicative), or None when still."""
        if self.speed is None:
            return None
        spread = 2.0 ** (sigmas * self.speed_log2_sigma)
        return float(self.speed) / spread, float(self.speed) * spread

    def to_dict(self) -> dict[str, Any]:
        return {
            "speed": fraction_to_json(self.speed),
            "speed_float": None if self.speed is None else float(self.speed),
            "speed_log2_sigma": self.speed_log2_sigma,
            "playback_rate": fraction_to_json(self.playback_rate),
            "capture_rate": fraction_to_json(self.capture_rate),
            "confidence": self.confidence,
            "speed_class": self.speed_class.value,
            "evidence": [item.to_dict() for item in self.evidence],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpeedEstimate:
        return cls(
            speed=fraction_from_json(data.get("speed")),
            playback_rate=Fraction(data["playback_rate"]),
            capture_rate=fraction_from_json(data.get("capture_rate")),
            confidence=float(data["confidence"]),
            speed_class=parse_speed_class(data["speed_class"]),
            speed_log2_sigma=float(data.get("speed_log2_sigma", 0.0)),
            evidence=[Evidence.from_dict(item) for item in data.get("evidence", [])],
        )


def _check_frame_range(start_frame: int, end_frame: int) -> None:
    if start_frame < 0 or end_frame <= start_frame:
        raise UnsupportedOptionError(
            f"frame range [{start_frame}, {end_frame}) is empty or negative; need 0 <= start < end"
        )


@dataclass
class WindowEstimate:
    """The estimate for frames ``start_frame`` (inclusive) to ``end_frame`` (exclusive) of a clip."""

    start_frame: int
    end_frame: int
    estimate: SpeedEstimate

    def __post_init__(self) -> None:
        _check_frame_range(self.start_frame, self.end_frame)

    @property
    def duration_frames(self) -> int:
        return self.end_frame - self.start_frame

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "estimate": self.estimate.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WindowEstimate:
        return cls(
            int(data["start_frame"]), int(data["end_frame"]), SpeedEstimate.from_dict(data["estimate"])
        )


@dataclass
class SpeedSegment:
    """A run of frames with one speed (a ramp or a replay starts a new segment)."""

    start_frame: int
    end_frame: int
    estimate: SpeedEstimate
    window_count: int = 1
    pixels: SpeedEstimate | None = None
    """What the frames themselves read, when the metadata restated ``estimate`` (a capture-rate
    tag, a high-rate stream at its own rate); None when ``estimate`` is the pixels' own reading."""

    @property
    def pixel_estimate(self) -> SpeedEstimate:
        """The frames' own reading: ``pixels`` when the metadata restated the segment, else ``estimate``."""
        return self.pixels if self.pixels is not None else self.estimate

    def __post_init__(self) -> None:
        _check_frame_range(self.start_frame, self.end_frame)
        if self.window_count < 1:
            raise UnsupportedOptionError(f"window_count {self.window_count} must be at least 1")

    @property
    def duration_frames(self) -> int:
        return self.end_frame - self.start_frame

    def to_dict(self) -> dict[str, Any]:
        data = {
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "window_count": self.window_count,
            "estimate": self.estimate.to_dict(),
        }
        if self.pixels is not None:
            data["pixels"] = self.pixels.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpeedSegment:
        pixels = data.get("pixels")
        return cls(
            int(data["start_frame"]),
            int(data["end_frame"]),
            SpeedEstimate.from_dict(data["estimate"]),
            int(data.get("window_count", 1)),
            None if pixels is None else SpeedEstimate.from_dict(pixels),
        )
