"""The detect JSON told to people: lines for tables, the preview app and Resolve marker notes.

Plain Python on the JSON alone (no numpy, no media, no models), so clients such as the preview
app and the Resolve bridge can use it without importing the detector.
"""

from __future__ import annotations

import math


def audio_summary_lines(audio: object) -> list[str]:
    """``evidence.audio`` of the detect JSON as short lines for people (table, GUI, marker notes):
    the boundaries the sound has a verdict on, then the pitch shifts found in the track; one line
    with the status when the sound was not used. Tolerant of missing or odd fields."""
    if not isinstance(audio, dict):
        return []
    status = audio.get("status")
    if status == "off":
        return []
    note = audio.get("note")
    notes = [f"audio: {note}"] if isinstance(note, str) and note else []
    if status != "used":
        return [f"audio: {status}", *notes]

    def number(value: object) -> float:
        return float(value) if isinstance(value, (int, float)) else math.nan

    lines = []
    for check in audio.get("boundaries") or []:
        if isinstance(check, dict) and check.get("verdict") in ("agrees", "disagrees", "unchanged"):
            lines.append(
                f"audio: at {number(check.get('time')):.2f} s the picture changes speed "
                f"x{number(check.get('video_speed_ratio')):.3g}; the sound {check['verdict']}"
            )
    for change in audio.get("changes") or []:
        if isinstance(change, dict):
            lines.append(
                f"audio: pitch shift at {number(change.get('time')):.2f} s "
                f"(speed x{number(change.get('speed_ratio')):.3g})"
            )
    return (lines or ["audio: no pitch shift"]) + notes


def analysis_note_lines(result: object) -> list[str]:
    """``analysis.notes`` of the detect JSON as lines for people (GUI, marker notes): what the
    engine says about the analysis itself, such as a file cut short or segments that differ from
    the clip. Tolerant of missing or odd fields."""
    analysis = result.get("analysis") if isinstance(result, dict) else None
    notes = analysis.get("notes") if isinstance(analysis, dict) else None
    if not isinstance(notes, list):
        return []
    return [f"note: {note}" for note in notes if isinstance(note, str) and note]
