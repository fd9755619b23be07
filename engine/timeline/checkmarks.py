"""Frames to check on the timeline: red markers over them, and where the timeline shows them.

Renders, fills and smooth cuts list the made frames an editor should look at as runs of frames of
the new clip's media (``frames_to_check``: ``[[0, 0], [2, 2]]``, 0 = its first frame;
``engine.interp.checks.frame_runs``). In the new timeline each clip made gets a red
"Chronoscope: check ..." marker over each run it shows (``mark_frames_to_check``), and the
command line says where on the timeline the runs are (``timeline_places``): by record timecode
where the timeline has a start timecode, else by timeline frame.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import opentimelineio as otio

from engine.timeline.rates import exact_frames, exact_rate, time_range

METADATA_KEY = "chronoscope"
"""Where Chronoscope's results live in OTIO metadata (``engine.timeline.writeback``)."""
CHECK_MARKER_NAME = "Chronoscope: check"
PLACES_SHOWN = 4
"""Runs named by ``timeline_places`` (as many as ``engine.interp.checks.to_check_suffix`` names)."""


def mark_frames_to_check(
    clip: otio.schema.Clip, runs: Any, rate: Fraction, *, of: str = "the render"
) -> None:
    """A red marker on ``clip`` over each run of its media's frames to check (``frames_to_check``:
    file frames, first and last), named for ``of`` ("the render", "the fill"), so that the editor
    finds them on the timeline; runs outside the part of the media the clip shows are left out."""
    if not isinstance(runs, list) or clip.source_range is None:
        return
    shown = clip.source_range
    first_shown = round(exact_frames(shown.start_time, rate))
    last_shown = first_shown + round(exact_frames(shown.duration, rate)) - 1
    for run in runs:
        if not (isinstance(run, list) and len(run) == 2 and all(isinstance(n, int) for n in run)):
            continue
        first, last = max(run[0], first_shown), min(run[1], last_shown)
        if first > last:
            continue
        frames = f"{first}" if first == last else f"{first}-{last}"
        clip.markers.append(
            otio.schema.Marker(
                name=f"{CHECK_MARKER_NAME} frame{'s' if last > first else ''} {frames} of {of}",
                marked_range=time_range(first, last - first + 1, rate),
                color=otio.schema.MarkerColor.RED,
                metadata={METADATA_KEY: {"frames_to_check": [first, last]}},
            )
        )


def timeline_places(runs: list[list[int]], record_start_frame: int, timeline: otio.schema.Timeline) -> str:
    """Where the timeline shows ``runs`` of a new clip's frames (0 = its first, shown at
    ``record_start_frame``, counted from the timeline's start): ``timeline 01:00:01:16,
    01:00:01:18-01:00:01:20`` by record timecode when the timeline has a start timecode, else
    ``timeline frames 40, 42-44``; at most ``PLACES_SHOWN`` runs, then ``… N more``; "" for none."""
    if not runs:
        return ""
    start = timeline.global_start_time
    if start is not None:
        rate = exact_rate(start.rate)
        first_frame = exact_frames(start, rate)

        def place(frame: int) -> str:
            when = otio.opentime.RationalTime(float(first_frame + record_start_frame + frame), float(rate))
            return otio.opentime.to_timecode(when, float(rate))

        prefix = "timeline "
    else:

        def place(frame: int) -> str:
            return str(record_start_frame + frame)

        prefix = "timeline frames "
    parts = [place(first) if first == last else f"{place(first)}-{place(last)}" for first, last in runs]
    if len(parts) > PLACES_SHOWN:
        parts = parts[:PLACES_SHOWN] + [f"… {len(parts) - PLACES_SHOWN} more"]
    return prefix + ", ".join(parts)
