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


def slowed_timeline(
    folder: Path, *, frames: int, used: int, speed: float, size: tuple[int, int], rate: int = 25
) -> Path:
    """``folder/cut.otio``: one clip of ``folder/shot.mp4`` (``frames`` frames at ``size``), its
    first ``used`` frames' worth of time on the timeline at ``speed`` (a LinearTimeWarp)."""
    shot = render_clip(folder / "shot.mp4", rate=Fraction(rate), frame_count=frames, size=size)
    clip = otio.schema.Clip(
        name="slow",
        media_reference=otio.schema.ExternalReference(target_url=str(shot)),
        source_range=time_range(0, used, Fraction(rate)),
    )
    clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=speed))
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video, children=[clip])
    path = folder / "cut.otio"
    otio.adapters.write_to_file(otio.schema.Timeline(name="cut", tracks=[track]), str(path))
    return path
