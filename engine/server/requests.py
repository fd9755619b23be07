"""What every routed request passes before its handler sees it: values that are safe to read, and
only the fields its handler knows.

The engine parses numbers exactly (``Fraction``), and ``Fraction("1e-9999999")`` computes a power
of ten with ten million digits while it holds the interpreter lock: one such request froze every
thread of the engine for 15 s (``1e-99999999``: 456 s). So before any handler runs:

* a text that reads as a number (``"1/4"``, ``"0.25"``, ``"2.5e-3"``) may hold at most
  ``MAX_NUMBER_DIGITS`` digits and an exponent of at most ``MAX_EXPONENT_DIGITS`` digits (so that
  every number read stays within the range of a float, where durations and frame counts end up);
* a whole number must fit in 64 bits (``MAX_WHOLE_NUMBER``); numbers that are not finite never get
  here (``protocol`` refuses them as malformed);
* no text holds a NUL character (no path can, and the operating system refuses them late).

``parse_number`` reads one number (JSON number or text) exactly, with the same limits; handlers
use it for times, speeds and rates. ``check_fields`` refuses the fields a request type does not
know, listing the ones it does: a misspelt ``overwrite`` or ``in_frame`` must not be ignored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from fractions import Fraction
from typing import Any

from engine.errors import RequestValueError, UnsupportedOptionError
from engine.server.protocol import quote

MAX_NUMBER_DIGITS = 64
MAX_EXPONENT_DIGITS = 2
MAX_WHOLE_NUMBER = 2**63 - 1
MAX_FIELDS_SHOWN = 5

# what Fraction reads (and a little more: Fraction refuses some of these itself): sign, digits with
# an optional fraction and exponent, or digits / digits; underscores between digits as Python allows
_NUMBER_TEXT = re.compile(
    r"\A\s*[-+]?(?P<mantissa>[0-9_]*\.?[0-9_]*)(?:[eE](?P<exponent>[-+]?[0-9_]+))?"
    r"(?:\s*/\s*(?P<denominator>[0-9_]+))?\s*\Z"
)


def check_number_text(text: str, where: str) -> None:
    """Refuse a text that reads as a number with too many digits or too long an exponent."""
    match = _NUMBER_TEXT.match(text) if len(text) < 4 * MAX_NUMBER_DIGITS else None
    if match is None:
        if len(text) >= 4 * MAX_NUMBER_DIGITS and _looks_numeric(text):
            raise RequestValueError(
                f"{where} is a number written with {len(text)} characters; at most "
                f"{MAX_NUMBER_DIGITS} digits are read (e.g. 0.25, 1/4 or 2.5e-3)"
            )
        return
    digits = sum(ch.isdigit() for ch in (match["mantissa"] or "") + (match["denominator"] or ""))
    if digits == 0:
        return
    if digits > MAX_NUMBER_DIGITS:
        raise RequestValueError(
            f"{where} = {quote(text)} has {digits} digits; at most {MAX_NUMBER_DIGITS} are read"
        )
    exponent = (match["exponent"] or "").lstrip("+-").replace("_", "").lstrip("0")
    if len(exponent) > MAX_EXPONENT_DIGITS:
        raise RequestValueError(
            f"{where} = {quote(text)} has an exponent of {len(exponent)} digits; at most "
            f"{MAX_EXPONENT_DIGITS} are read (e.g. 2.5e-3)"
        )


_NUMERIC_CHARACTERS = re.compile(r"[0-9_.eE+/\s-]+")


def _looks_numeric(text: str) -> bool:
    """Whether ``text`` holds only what numbers are written with (stops at the first other character)."""
    return _NUMERIC_CHARACTERS.fullmatch(text) is not None and any(ch.isdigit() for ch in text[:64])


def check_values(content: dict[str, Any], what: str) -> None:
    """Walk a request's content and refuse what cannot be read safely (see the module doc)."""
    stack: list[tuple[str, Any]] = [(what, content)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise RequestValueError(
                    f"{where} = {quote(value)} holds a NUL character, which no path or name may hold"
                )
            # text is only capped where it is read as a number (parse_number, check_number_texts):
            # a clip may be named "1e100"
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int):
            if abs(value) > MAX_WHOLE_NUMBER:
                raise RequestValueError(
                    f"{where} is a whole number of {len(str(abs(value)))} digits; at most "
                    f"{MAX_WHOLE_NUMBER} (64 bits) is read"
                )
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise RequestValueError(f"{where} = {value} is not a finite number")
        elif isinstance(value, dict):
            stack.extend((f"{where}.{key}" if where else str(key), item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((f"{where}[{index}]", item) for index, item in enumerate(value))


def check_number_texts(value: Any, where: str, keys: Iterable[str] = ()) -> None:
    """Cap ``value`` (text) or, in a list of objects, the texts under ``keys`` (a ramp's
    ``speed`` and ``frame``) before another parser reads them as numbers (``check_number_text``)."""
    if isinstance(value, str):
        check_number_text(value, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict):
                for key in keys:
                    if isinstance(item.get(key), str):
                        check_number_text(item[key], f"{where}[{index}].{key}")


def parse_number(value: Any, where: str, example: str = "0.25 or 1/4") -> Fraction:
    """A number from a request (a JSON number, or text such as ``"1/4"``) as an exact Fraction;
    ``RequestValueError`` for what is not one or is too long to read."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise RequestValueError(f"{where} = {quote(value)} is not a number; give e.g. {example}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RequestValueError(f"{where} = {value} is not a finite number; give e.g. {example}")
    if isinstance(value, int) and abs(value) > MAX_WHOLE_NUMBER:
        raise RequestValueError(f"{where} is a whole number beyond 64 bits; give e.g. {example}")
    if isinstance(value, str):
        check_number_text(value, where)
        if "_" in value:  # Fraction reads "1_0" as 10, as Python literals do
            raise RequestValueError(f"{where} = {quote(value)} is not a number; give e.g. {example}")
    try:
        return Fraction(value)
    except (ValueError, ZeroDivisionError, OverflowError):
        raise RequestValueError(f"{where} = {quote(value)} is not a number; give e.g. {example}") from None


def check_fields(content: dict[str, Any], known: Iterable[str], what: str) -> None:
    """Refuse fields of ``content`` that are not among ``known``, naming them and the known ones."""
    known = set(known)
    unknown = [key for key in content if key not in known]
    if not unknown:
        return
    shown = ", ".join(quote(key, 60) for key in unknown[:MAX_FIELDS_SHOWN])
    more = f" and {len(unknown) - MAX_FIELDS_SHOWN} more" if len(unknown) > MAX_FIELDS_SHOWN else ""
    raise UnsupportedOptionError(
        f"{what} has unknown field{'s' if len(unknown) > 1 else ''} {shown}{more}; "
        f"valid: {', '.join(sorted(known))}"
    )
