"""Argument types shared by the command-line tools (``chronoscope`` and ``chronoscope-gui``).

Each turns one command-line word into a value or raises ``argparse.ArgumentTypeError`` with a
message that says what was given and what works.
"""

from __future__ import annotations

import argparse
from fractions import Fraction


def positive_int(text: str) -> int:
    """A whole number of 1 or more (worker counts, sizes in frames)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1")
    return value


def positive_seconds(text: str) -> float:
    """A duration in seconds above 0 (timeouts)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} seconds: give more than 0")
    return value


def frame_rate(text: str) -> float:
    """A frame rate above 0: ``24``, ``23.976``, ``29.97`` or exactly ``24000/1001``."""
    try:
        value = float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a frame rate (24, 23.976 or 24000/1001)") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} fps: give a rate above 0")
    return value
