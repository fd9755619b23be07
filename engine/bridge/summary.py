"""The console line for a detected clip, in an editor's words."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

from engine.bridge.items import clip_speed
from engine.bridge.results import read_optional_number, read_speed_class
from engine.bridge.speed_classes import CLASS_NAMES
from engine.bridge.words import (
    class_phrase,
    confidence_words,
    names_a_capture_rate,
    percent_words,
    plays_words,
    rate_words,
)

if TYPE_CHECKING:
    from engine.timeline.segments import Segment


def clip_summary(segment: Segment, result: dict[str, Any], shown: dict[str, int] | None = None) -> str:
    """The console line for a detected clip: ``sped up 2.75x (shot at 8.7 fps), confidence 99%``,
    then what plays on the timeline when the clip is retimed there. ``shown``: the timeline frames
    its markers cover, by class; where they do not all say what the clip says, the line gives their
    shares (the clip's answer pools every probe, and its markers show each segment)."""
    speed_class = read_speed_class(result.get("class"), "class")
    speed = read_optional_number(result.get("speed"), "speed")
    capture = _capture_rate(segment, speed, result.get("capture_fps"))
    if not names_a_capture_rate(speed_class):
        capture = None
    scalar, warp = clip_speed(segment)
    text = class_phrase(speed_class, speed)
    text = text[0].lower() + text[1:]
    if capture is not None:
        text += f" (shot at {rate_words(capture)})"
    confidence = confidence_words(result.get("confidence"))
    if confidence:
        text += f", {confidence}"
    text += _marker_shares(shown or {}, speed_class)
    if warp:
        return f"{text}; its {warp} is not mapped: one marker covers the whole clip"
    if scalar is not None and scalar == 0:
        return f"{text}; a freeze frame on the timeline"
    if scalar is not None and scalar != 1 and speed is not None and speed_class != "still":
        return f"{text}; at {percent_words(scalar)} on the timeline it plays at {plays_words(speed * scalar)}"
    return text


def _capture_rate(segment: Segment, speed: Fraction | None, given: Any) -> Fraction | None:
    capture = read_optional_number(given, "capture_fps")
    if capture is None and speed:
        capture = segment.source_rate / speed
    return capture


def _marker_shares(shown: dict[str, int], speed_class: str) -> str:
    """``; its markers show 50 % real time, 50 % slow motion`` where they differ from the clip."""
    total = sum(shown.values())
    if not total or set(shown) <= {speed_class}:
        return ""
    shares = ", ".join(
        f"{round(100 * frames / total)} % {CLASS_NAMES[name].lower()}"
        for name, frames in sorted(shown.items(), key=lambda item: -item[1])
    )
    return f"; its markers show {shares}"
