"""Markers for Resolve: one per detected segment, placed on the timeline frames it covers, with its
colour, name, note and customData."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from engine.bridge.evidence import evidence_audio, evidence_lines
from engine.bridge.items import clip_speed, media_text
from engine.bridge.protocol import PROTOCOL_VERSION
from engine.bridge.results import read_number, read_optional_number, read_speed_class
from engine.bridge.speed_classes import CLASS_COLORS
from engine.bridge.words import (
    class_phrase,
    confidence_words,
    marker_name,
    names_a_capture_rate,
    percent_words,
    plays_words,
    rate_words,
)
from engine.errors import UnsupportedOptionError
from engine.speed_report import analysis_note_lines, audio_summary_lines
from engine.timeline.rates import exact_frames

if TYPE_CHECKING:
    from engine.timeline.segments import Segment

MARKER_TAG = '{"chronoscope":'
NOTE_TAG = "Chronoscope marker: "
"""How the last line of every marker note starts (``note_key``). Resolve's OTIO export and import
keep a marker's colour, name and note but drop its customData, so on a timeline rebuilt from OTIO
(Render Slow Motion's new timeline) this line, with the colour, is what tells our markers."""


@dataclass(frozen=True)
class Marker:
    """A marker for Resolve's ``Timeline.AddMarker``; ``frame`` counts from the timeline's first frame."""

    frame: int
    duration: int
    color: str
    name: str
    note: str
    custom_data: str
    clip: str
    track: str
    speed_class: str = ""
    """The class its segment reads (not sent to Resolve: the name and colour say it)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame": self.frame,
            "duration": self.duration,
            "color": self.color,
            "name": self.name,
            "note": self.note,
            "custom_data": self.custom_data,
            "clip": self.clip,
            "track": self.track,
        }


def marker_key(clip_name: str, track: str, record_start_frame: int, media: str) -> str:
    """How every marker of one clip's customData starts: the JSON object's first members (tag,
    clip, track, start frame, media) and a comma. A script that cannot read JSON (Lua) tells the
    clips' markers apart by this prefix; the Python script does the same."""
    head = {
        "chronoscope": PROTOCOL_VERSION,
        "kind": "speed",
        "clip": clip_name,
        "track": track,
        "record_start_frame": record_start_frame,
        "media": media,
    }
    return json.dumps(head, separators=(",", ":"), ensure_ascii=False)[:-1] + ","


def note_key(clip_name: str, track: str, record_start_frame: int) -> str:
    """The last line of every marker note of one clip: ``Chronoscope marker: V1, clip at frame 70:
    A001.mov``. It tells a script that the marker is Chronoscope's, and which clip it belongs to,
    where the customData is gone (``NOTE_TAG``)."""
    name = " ".join(str(clip_name).split())
    return f"{NOTE_TAG}{track}, clip at frame {record_start_frame}: {name}"


def markers_for_clip(segment: Segment, result: dict[str, Any]) -> list[Marker]:
    """One marker per detected segment that falls inside the clip's used range.

    ``result`` is issue 4's detect JSON: segment ``start``/``end`` in seconds from the media's first
    frame. Timeline frame n of the clip shows media second ``head_s + n * speed / timeline_rate``.
    A clip whose time effect cannot be mapped (a speed ramp) gets one marker over the whole clip,
    from the clip's result: the media is analysed all the same.
    """
    if not isinstance(result, dict):
        raise UnsupportedOptionError(f"detect result for {segment.describe()} is not an object")
    clip_class = read_speed_class(result.get("class"), "class")
    clip_result = {
        "speed": result.get("speed"),
        "capture_fps": result.get("capture_fps"),
        "class": clip_class,
        "confidence": result.get("confidence"),
    }
    spans = result.get("segments") or []
    if not isinstance(spans, list):
        raise UnsupportedOptionError(f"detect result segments for {segment.describe()} is not a list")
    scalar, warp = clip_speed(segment)
    head_frames = segment.source_start_frames
    if segment.available_range is not None:
        head_frames -= exact_frames(segment.available_range.start_time, segment.source_rate)
    head_s = head_frames / segment.source_rate
    rate = segment.timeline_rate
    length = segment.record_frames
    if scalar is None:
        spans = [{**clip_result, "start": str(head_s), "end": None}]
    elif not spans:
        end_s = head_s + Fraction(length) * scalar / rate
        spans = [{**clip_result, "start": str(head_s), "end": str(end_s)}]
    notes = _NoteParts(
        human=analysis_note_lines(result) + audio_summary_lines(evidence_audio(result.get("evidence"))),
        details=evidence_lines(result.get("evidence")),
    )
    markers = []
    for index, span in enumerate(spans):
        if not isinstance(span, dict):
            raise UnsupportedOptionError(f"detect result segments[{index}] is not an object")
        begin_s = read_number(span.get("start"), f"segments[{index}].start")
        if scalar is None:
            first_frame, duration = 0, max(1, length)
            end_s = None
        else:
            end_s = read_number(span.get("end"), f"segments[{index}].end")
            if end_s < begin_s:
                raise UnsupportedOptionError(
                    f"detect result segments[{index}] ends ({end_s} s) before it starts ({begin_s} s)"
                )
            if scalar == 0:
                first, last = Fraction(0), Fraction(length)
            else:
                first = (begin_s - head_s) * rate / scalar
                last = (end_s - head_s) * rate / scalar
            if first >= length or last < 0 or (last == 0 and end_s > begin_s):
                continue
            first_frame = max(0, math.floor(first))
            last_frame = min(length, math.ceil(last))
            duration = max(1, last_frame - first_frame)
        frame = int(segment.record_start_frames) + first_frame
        if scalar:  # the part of the segment the clip shows
            begin_s, end_s = max(begin_s, head_s), min(end_s, head_s + Fraction(length) * scalar / rate)
        place = _Place(frame, duration, begin_s, end_s, scalar, warp)
        markers.append(_marker(segment, span, index, clip_result, notes, place))
    return markers


@dataclass(frozen=True)
class _NoteParts:
    human: list[str]
    details: list[str]


@dataclass(frozen=True)
class _Place:
    frame: int
    duration: int
    begin_s: Fraction
    end_s: Fraction | None
    scalar: Fraction | None
    warp: str


def _marker(
    segment: Segment,
    span: dict[str, Any],
    index: int,
    clip_result: dict[str, Any],
    notes: _NoteParts,
    place: _Place,
) -> Marker:
    speed_class = read_speed_class(span.get("class", clip_result["class"]), f"segments[{index}].class")
    speed = read_optional_number(span.get("speed", clip_result["speed"]), f"segments[{index}].speed")
    capture = read_optional_number(span.get("capture_fps"), f"segments[{index}].capture_fps")
    if capture is None and speed:
        capture = segment.source_rate / speed
    if capture is None:
        capture = read_optional_number(clip_result["capture_fps"], "capture_fps")
    if not names_a_capture_rate(speed_class):
        capture = None
    confidence = span.get("confidence", clip_result["confidence"])
    note = [_headline(speed_class, speed, capture, confidence), _timeline_line(speed_class, speed, place)]
    where = f"{segment.clip_name} on {segment.track_label}"
    if place.end_s is not None:
        where += f", media {float(place.begin_s):.2f} s to {float(place.end_s):.2f} s"
    note.append(where + ".")
    note.extend(notes.human)
    if notes.details:
        note += ["", "Details:"] + notes.details
    frame_start = int(segment.record_start_frames)
    note += ["", note_key(segment.clip_name, segment.track_label, frame_start)]
    custom = json.loads(
        marker_key(segment.clip_name, segment.track_label, frame_start, media_text(segment))[:-1] + "}"
    )
    custom.update(segment=span, result=clip_result)
    return Marker(
        frame=place.frame,
        duration=place.duration,
        color=CLASS_COLORS[speed_class],
        name=marker_name(speed_class, speed, capture, place.scalar, place.warp),
        note="\n".join(note),
        custom_data=json.dumps(custom, separators=(",", ":"), ensure_ascii=False),
        clip=segment.clip_name,
        track=segment.track_label,
        speed_class=speed_class,
    )


def _headline(speed_class: str, speed: Fraction | None, capture: Fraction | None, confidence: Any) -> str:
    """``Slow motion 1/8: shot at 240 fps, confidence 90%.``"""
    parts = []
    if capture is not None and names_a_capture_rate(speed_class):
        parts.append(f"shot at {rate_words(capture)}")
    if confidence_words(confidence):
        parts.append(confidence_words(confidence))
    phrase = class_phrase(speed_class, speed)
    if speed_class == "still":
        phrase = "Still: too little motion to tell its speed"
    return phrase + (f": {', '.join(parts)}" if parts else "") + "."


def _timeline_line(speed_class: str, speed: Fraction | None, place: _Place) -> str:
    """What plays on the timeline, given the clip's own speed there."""
    if place.warp:
        return (
            f"On the timeline the clip has a {place.warp}: what plays changes along it, so this "
            "marker covers the whole clip."
        )
    if place.scalar is None or place.scalar == 1:
        if speed is None or speed_class == "still":
            return "The clip runs at 100% on the timeline."
        return f"The clip runs at 100% on the timeline: it plays at {plays_words(speed)}."
    if place.scalar == 0:
        return "The clip is a freeze frame on the timeline."
    if speed is None or speed_class == "still":
        return f"The clip runs at {percent_words(place.scalar)} on the timeline."
    return (
        f"The clip runs at {percent_words(place.scalar)} on the timeline: it plays at "
        f"{plays_words(speed * place.scalar)}."
    )
