"""Speeds, frame rates, confidences and marker names in an editor's words: ``1/8``, ``29.97 fps``,
``Slow motion 1/8 (240 fps) at 50%: plays at 1/16``."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from engine.bridge.speed_classes import CLASS_NAMES

REALTIME_LOG2 = 0.5
"""Speeds within a factor 2 ** 0.5 of 1 look like real time (the detector's own band)."""
STANDARD_RATES = tuple(
    Fraction(rate)
    for rate in (
        "24000/1001",
        24,
        25,
        "30000/1001",
        30,
        48,
        50,
        "60000/1001",
        60,
        90,
        96,
        100,
        "120000/1001",
        120,
        150,
        180,
        200,
        240,
        300,
        480,
        960,
        1000,
    )
)
"""Frame rates shown as such (29.97, not 29.970); other rates are rounded for people."""


def _significant(value: float) -> str:
    """A measured number as an editor reads it: 8 (not 7.98), 2.75, 10.7, 187."""
    if value >= 1 and abs(value - round(value)) <= 0.02 * value:
        return str(round(value))
    if value >= 100:
        return str(round(value))
    return f"{value:.3g}"


def speed_words(speed: Fraction | float) -> str:
    """A speed as editors say it: ``1/8`` (8x slow motion), ``1/2.5``, ``2.75x``."""
    value = float(speed)
    if not math.isfinite(value) or value <= 0:
        return ""
    if value < 1:
        return f"1/{_significant(1 / value)}"
    return f"{_significant(value)}x"


def plays_words(speed: Fraction | float) -> str:
    """What a speed looks like: ``real time``, ``1/16``, ``2.15x``."""
    value = float(speed)
    if math.isfinite(value) and value > 0 and abs(math.log2(value)) <= REALTIME_LOG2:
        return "real time"
    return speed_words(speed)


def rate_words(fps: Fraction | float) -> str:
    """A frame rate as editors write it: ``29.97 fps``, ``240 fps``, ``8.7 fps``."""
    value = float(fps)
    for rate in STANDARD_RATES:
        if abs(value - float(rate)) <= 0.0003 * float(rate):
            return f"{_fps(rate)} fps"
    if value >= 100:
        return f"{round(value)} fps"
    return f"{value:.1f}".rstrip("0").rstrip(".") + " fps"


def confidence_words(confidence: Any) -> str:
    """``confidence 90%``, or "" when the result gives none."""
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, (int, float))
        or not math.isfinite(confidence)
    ):
        return ""
    return f"confidence {round(min(max(float(confidence), 0.0), 1.0) * 100)}%"


def percent_words(speed: Fraction) -> str:
    value = float(speed * 100)
    return f"{value:.1f}".rstrip("0").rstrip(".") + "%"


def _fps(value: Fraction) -> str:
    return f"{float(value):.3f}".rstrip("0").rstrip(".")


def class_phrase(speed_class: str, speed: Fraction | None) -> str:
    """``Slow motion 1/8``, ``Sped up 2.75x``, ``Real time``: the class in words and its speed."""
    words = CLASS_NAMES[speed_class]
    if speed is None or speed_class in ("realtime", "still"):
        return words
    return f"{words} {speed_words(speed)}".strip()


def _timeline_phrase(speed_class: str, speed: Fraction | None, scalar: Fraction | None, warp: str) -> str:
    """How the clip's own retime changes what plays: `` at 50%: plays at 1/16``, ``, speed ramp on
    the timeline``, or "" for a clip at 100 %."""
    if warp:
        return f", {warp.split(' (')[0]} on the timeline"
    if scalar is None or scalar == 1:
        return ""
    if scalar == 0:
        return ", freeze frame on the timeline"
    shown = f" at {percent_words(scalar)}"
    if speed is None or speed_class == "still":
        return shown
    return f"{shown}: plays at {plays_words(speed * scalar)}"


def names_a_capture_rate(speed_class: str) -> bool:
    """Whether a class's answer has a rate the footage was shot at: not made slow motion (its frames
    were made, not shot; the rate its speed implies is no camera's) and not still (no speed)."""
    return speed_class not in ("synthetic_slowmo", "still")


def marker_name(
    speed_class: str,
    speed: Fraction | None,
    capture: Fraction | None,
    scalar: Fraction | None,
    warp: str = "",
) -> str:
    """``Slow motion 1/8 (240 fps)``; a retimed clip adds what plays on the timeline:
    ``Sped up 5x (24 fps) at 20%: plays at real time``."""
    name = class_phrase(speed_class, speed)
    if capture is not None and names_a_capture_rate(speed_class):
        name += f" ({rate_words(capture)})"
    return name + _timeline_phrase(speed_class, speed, scalar, warp)
