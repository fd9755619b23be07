"""Exact numbers from OTIO's floats: frame rates, frame counts and time scalars as Fractions.

OTIO stores a rate such as 24000/1001 as the float 23.976023976023978 and a speed such as 1/3 as
0.3333333333333333. Arithmetic on those floats drifts over a long timeline, so the timeline code
turns them into Fractions once, here, and works exactly from then on. A RationalTime is made again
only when a result goes back into OTIO.
"""

from __future__ import annotations

import logging
import math
from fractions import Fraction

import opentimelineio as otio

from engine.errors import TimelineError

log = logging.getLogger(__name__)

SMALL_DENOMINATOR = 10_000
"""Largest denominator tried when a float is read back as a simple fraction (0.333 -> 333/1000)."""

NTSC_TOLERANCE = 1.5e-6
"""Relative distance within which a rate counts as n*1000/1001 (23.976 and 23.976023976... alike)."""


def exact_number(value: float, *, what: str = "value") -> Fraction:
    """Return the simplest Fraction that a finite float stands for.

    A float that equals a fraction with a small denominator (0.5, 0.4, 1/3 as written by Python)
    becomes that fraction; anything else becomes its shortest decimal form, which is what the
    writer of the file typed.
    """
    value = float(value)
    if not math.isfinite(value):
        raise TimelineError(f"{what} is {value}; a finite number is needed")
    if value.is_integer():
        return Fraction(int(value))
    simple = Fraction(value).limit_denominator(SMALL_DENOMINATOR)
    if float(simple) == value:
        return simple
    return Fraction(repr(value))


def exact_rate(rate: float) -> Fraction:
    """Return a frame rate as an exact Fraction: 23.976023976023978 and 23.976 give 24000/1001.

    Whole rates stay whole; a rate within ``NTSC_TOLERANCE`` of n*1000/1001 (the NTSC family:
    23.976, 29.97, 47.952, 59.94, 119.88, ...) becomes that fraction; any other rate becomes the
    simplest fraction that the float stands for.
    """
    rate = float(rate)
    if not math.isfinite(rate) or rate <= 0:
        raise TimelineError(f"frame rate {rate} is not usable; a rate above 0 such as 24 or 24000/1001 works")
    nearest_whole = round(rate)
    if nearest_whole > 0 and abs(rate - nearest_whole) <= 1e-9 * rate:
        return Fraction(nearest_whole)
    ntsc_base = round(rate * 1.001)
    if ntsc_base > 0:
        ntsc = Fraction(ntsc_base * 1000, 1001)
        if abs(rate - float(ntsc)) <= NTSC_TOLERANCE * rate:
            return ntsc
    return exact_number(rate, what="frame rate")


def exact_frames(time: otio.opentime.RationalTime, rate: Fraction | None = None) -> Fraction:
    """Return ``time`` as an exact number of frames at ``rate`` (its own rate when None)."""
    own_rate = exact_rate(time.rate)
    frames = exact_number(time.value, what="time value")
    if rate is None or rate == own_rate:
        return frames
    return frames * rate / own_rate


def rational_time(frames: Fraction | int, rate: Fraction) -> otio.opentime.RationalTime:
    """Make an OTIO RationalTime of ``frames`` at ``rate`` (OTIO stores both as floats)."""
    return otio.opentime.RationalTime(float(frames), float(rate))


def time_range(
    start_frames: Fraction | int, duration_frames: Fraction | int, rate: Fraction
) -> otio.opentime.TimeRange:
    """Make an OTIO TimeRange from exact frame counts at ``rate``."""
    return otio.opentime.TimeRange(rational_time(start_frames, rate), rational_time(duration_frames, rate))


def fraction_text(value: Fraction) -> str:
    """Write a Fraction for JSON and people: ``"24000/1001"``, or ``"24"`` when whole."""
    value = Fraction(value)
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def parse_fraction(text: str) -> Fraction:
    """Read what ``fraction_text`` wrote (also plain decimals such as ``"0.5"``)."""
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError) as error:
        raise TimelineError(f"{text!r} is not a number; write it like 24000/1001, 24 or 0.5") from error
