"""Small OTIO timelines over clips the tests render: ``from timeline_factory import half_speed_timeline``."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
from media_factory import render_clip

from engine.timeline.rates import time_range


def half_speed_timeline(folder: Path, rate: Fraction = Fraction(25)) -> Path:
    """``folder/cut.otio``: one clip of ``folder/shot.mp4`` (8 frames), its first 4 at half speed
    (one segment of 8 frames to render)."""
    media = render_clip(folder / "shot.mp4", rate=rate, frame_count=8)
    clip = otio.schema.Clip(
        name="shot",
        media_reference=otio.schema.ExternalReference(target_url=media.as_uri()),
        source_range=time_range(0, 4, rate),
    )
    clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    timeline = otio.schema.Timeline(name="cut")
    timeline.tracks.append(otio.schema.Track(kind=otio.schema.TrackKind.Video, children=[clip]))
    path = folder / "cut.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path
