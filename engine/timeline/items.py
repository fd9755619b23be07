"""Naming a timeline's items as editors and ``chronoscope segments`` do: ``TRACK:INDEX``.

``V1:2`` is item 2 of the first video track, counted from 0 with gaps and transitions; tracks are
``V1, V2, ...`` and ``A1, A2, ...`` in timeline order (``Segment.track_label``). ``fill --gap`` and
``render --clip`` name items this way.
"""

from __future__ import annotations

import opentimelineio as otio

from engine.errors import UnsupportedOptionError


def track_labels(timeline: otio.schema.Timeline) -> dict[str, tuple[int, otio.schema.Track]]:
    """``V1`` -> (position among the top-level tracks, track), as ``Segment.track_label`` names them."""
    counts: dict[str, int] = {}
    found = {}
    for position, track in enumerate(timeline.tracks):
        if not isinstance(track, otio.schema.Track):
            continue
        letter = "A" if track.kind == otio.schema.TrackKind.Audio else "V"
        counts[letter] = counts.get(letter, 0) + 1
        found[f"{letter}{counts[letter]}"] = (position, track)
    return found


def parse_item(text: str, what: str = "item") -> tuple[str, int]:
    """``"V1:2"`` -> ("V1", 2); ``what`` names the item in the error (a gap, a clip)."""
    label, _, index = str(text).partition(":")
    if not label or not index.isdigit():
        raise UnsupportedOptionError(
            f"{what} {text!r} is not TRACK:INDEX; give e.g. V1:2 (item 2 of track V1)"
        )
    return label.upper(), int(index)
