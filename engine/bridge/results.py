"""Reading issue 4's detect JSON: from an engine answer, and its numbers and class checked."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from engine.bridge.speed_classes import CLASS_COLORS
from engine.errors import UnsupportedOptionError


def detect_result_of(answer: dict[str, Any]) -> dict[str, Any]:
    """Issue 4's detect JSON from a ``detect_speed`` job result.

    The engine answers ``{"clips": [{"name", "path", "speed": {...}}], "otio": ...}`` for a clip
    sent as OTIO and ``{"path", "speed": {...}}`` for a path; a bare detect JSON is taken as is.
    """
    clips = answer.get("clips")
    if isinstance(clips, list) and clips and isinstance(clips[0], dict):
        answer = clips[0]
    speed = answer.get("speed")
    return speed if isinstance(speed, dict) else answer


def read_number(value: Any, what: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UnsupportedOptionError(f"detect result {what} = {value!r} is not a number")
    try:
        number = Fraction(value)
    except (ValueError, ZeroDivisionError, OverflowError):
        raise UnsupportedOptionError(f"detect result {what} = {value!r} is not a number") from None
    return number


def read_optional_number(value: Any, what: str) -> Fraction | None:
    return None if value is None else read_number(value, what)


def read_speed_class(value: Any, what: str) -> str:
    if value not in CLASS_COLORS:
        raise UnsupportedOptionError(f"detect result {what} = {value!r}; known: {', '.join(CLASS_COLORS)}")
    return value
