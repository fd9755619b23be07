"""Frame rates as exact fractions: parsing what people type, and small named conversions.

Rates never become floats inside the engine. ``parse_frame_rate("29.97")`` gives 30000/1001, the
rate a camera actually records, not 2997/100.
"""

from __future__ import annotations

from fractions import Fraction

from engine.errors import UnsupportedOptionError

# Rates written as rounded decimals that mean an NTSC-family x000/1001 rate.
_NTSC_DECIMALS = {
    "23.976": Fraction(24000, 1001),
    "23.98": Fraction(24000, 1001),
    "29.97": Fraction(30000, 1001),
    "47.952": Fraction(48000, 1001),
    "59.94": Fraction(60000, 1001),
    "119.88": Fraction(120000, 1001),
    "239.76": Fraction(240000, 1001),
}

HIGH_FRAME_RATE_FPS = Fraction(100)

STANDARD_RATES = tuple(
    Fraction(value)
    for value in ("24000/1001", "24", "25", "30000/1001", "30", "48", "50", "60000/1001", "60",
                  "100", "120000/1001", "120", "240")
)
"""The frame rates cameras and editing applications use; measured rates are snapped to them."""


def parse_frame_rate(value: Fraction | int | str) -> Fraction:
    """An exact frame rate from a Fraction, an int, or text such as "30000/1001", "25", "29.97".

    Raises ``UnsupportedOptionError`` for zero, negative, or unreadable values, and for floats
    (pass a Fraction or text instead, so that 29.97 cannot silently become 2997/100).
    """
    if isinstance(value, bool) or isinstance(value, float):
        raise UnsupportedOptionError(
            f"frame rate {value!r} is a float; give a Fraction, an int, or text like '30000/1001' or '29.97'"
        )
    if isinstance(value, str):
        text = value.strip()
        if text in _NTSC_DECIMALS:
            return _NTSC_DECIMALS[text]
        try:
            rate = Fraction(text)
        except (ValueError, ZeroDivisionError):
            raise UnsupportedOptionError(
                f"frame rate {value!r} is not a number; use e.g. '24', '25', '30000/1001', '29.97'"
            ) from None
    else:
        rate = Fraction(value)
    if rate <= 0:
        raise UnsupportedOptionError(f"frame rate {value!r} must be above zero")
    return rate


def frame_duration_s(rate: Fraction) -> Fraction:
    """The length of one frame in seconds at ``rate`` frames per second."""
    return 1 / Fraction(rate)


def frames_to_seconds(frames: int, rate: Fraction) -> Fraction:
    """``frames`` frames at ``rate`` fps, in exact seconds."""
    return Fraction(frames) / Fraction(rate)


def pts_to_seconds(pts: int, time_base: Fraction) -> Fraction:
    """A stream timestamp in exact seconds."""
    return pts * Fraction(time_base)


def seconds_to_pts(seconds: Fraction, time_base: Fraction) -> int:
    """Exact seconds as the nearest timestamp in ``time_base`` units."""
    return round(Fraction(seconds) / Fraction(time_base))


def rate_from_text_metadata(text: str) -> Fraction | None:
    """A capture rate written as decimal text in a container tag ("240.000000", "119.88") as a Fraction.

    NTSC-family values come back as x000/1001; other values as the nearest fraction with a
    denominator of at most 1001. Unreadable text gives None.
    """
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        return None
    if value <= 0:
        return None
    ntsc = Fraction(round(value * 1001 / 1000) * 1000, 1001)
    if abs(ntsc - value) < Fraction(1, 200) and value.denominator != 1:
        return ntsc
    return value.limit_denominator(1001)
