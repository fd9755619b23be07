"""What `render` and `fill` outputs keep of their source: fills and smooth cuts are shown as the
clip they are made from (rotation, pixel aspect, colour primaries and transfer), with a WARNING
where the clips either side of a gap are shown otherwise."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
from media_factory import frame_pattern

from engine.media import FrameReader, probe, write_video
from engine.media.timecode import start_timecode
from engine.media.writer import CarriedTags
from engine.render import fill_gaps, render_timeline
from engine.timeline import list_segments, read_timeline
from engine.timeline.rates import time_range

RATE = Fraction(25)
BT2020, PQ = 9, 16
PHONE = CarriedTags(
    rotation_deg=90, sample_aspect_ratio=Fraction(4, 3), color_primaries=BT2020, color_transfer=PQ
)


def _moving(count: int, shift: int = 0) -> list[np.ndarray]:
    """A smooth picture sliding a pixel a frame: the clips either side of a gap are one shot."""
    base = frame_pattern(0, 96, 64)
    return [np.ascontiguousarray(np.roll(base, n + shift, axis=1)) for n in range(count)]


def _clip(name: str, media: Path, start: int, frames: int, available: int = 24) -> otio.schema.Clip:
    reference = otio.schema.ExternalReference(
        target_url=str(media), available_range=time_range(0, available, RATE)
    )
    return otio.schema.Clip(
        name=name, media_reference=reference, source_range=time_range(start, frames, RATE)
    )


def _gap_timeline(folder: Path, before: Path, after: Path) -> Path:
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    track.append(_clip("a", before, 0, 8))
    track.append(otio.schema.Gap(source_range=time_range(0, 4, RATE)))
    track.append(_clip("b", after, 12, 8))
    path = folder / "gaps.otio"
    otio.adapters.write_to_file(otio.schema.Timeline(name="gaps", tracks=[track]), str(path))
    return path


def _fill_media(outdir: Path) -> Path:
    timeline = read_timeline(outdir / "gaps.chronoscope.otio")
    return Path(next(s for s in list_segments(timeline) if s.index_in_track == 1).media_path)


def test_fill_is_shown_as_the_clip_before_it_turned_and_tagged(tmp_path, caplog):
    phone = write_video(tmp_path / "phone.mov", _moving(24), rate=RATE, codec="h264", carried=PHONE)
    cut = _gap_timeline(tmp_path, phone, phone)

    with caplog.at_level(logging.WARNING):
        summary = fill_gaps(cut, tmp_path / "out", gaps=["V1:1"], model="blend", codec="h264")
    assert [g.status for g in summary.gaps] == ["filled"]
    assert "shown differently" not in caplog.text
    video = probe(_fill_media(tmp_path / "out")).video_stream
    assert video.rotation_deg == 90
    assert video.sample_aspect_ratio == Fraction(4, 3)
    assert (video.color_primaries, video.color_transfer) == (BT2020, PQ)
    assert start_timecode(probe(_fill_media(tmp_path / "out"))) is None  # made frames: no source frame

    # PNG frames hold no display matrix: turned as the clip before displays, like its other outputs
    fill_gaps(cut, tmp_path / "png", gaps=["V1:1"], model="blend", codec="png")
    frames = sorted(_fill_media(tmp_path / "png").glob("*.png"))
    with FrameReader(frames[0]) as reader:
        assert reader.read_frame(0).image.shape[:2] == (96, 64)


def test_fill_between_differently_shown_clips_warns_and_follows_the_clip_before(tmp_path, caplog):
    phone = write_video(tmp_path / "phone.mov", _moving(24), rate=RATE, codec="h264", carried=PHONE)
    plain = write_video(tmp_path / "plain.mov", _moving(24), rate=RATE, codec="h264")
    cut = _gap_timeline(tmp_path, phone, plain)

    with caplog.at_level(logging.WARNING):
        fill_gaps(cut, tmp_path / "out", gaps=["V1:1"], model="blend", codec="h264")
    warned = [r.getMessage() for r in caplog.records if "shown differently" in r.getMessage()]
    assert len(warned) == 1
    assert "gap V1:1 (a > b)" in warned[0] and "rotation 90 before, 0 after" in warned[0]
    assert probe(_fill_media(tmp_path / "out")).video_stream.rotation_deg == 90


def test_smooth_cut_is_shown_as_its_source(tmp_path):
    phone = write_video(tmp_path / "phone.mov", _moving(60), rate=RATE, codec="h264", carried=PHONE)
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    track.append(_clip("phone", phone, 0, 20, 60))
    track.append(_clip("phone", phone, 24, 20, 60))  # 4 frames later: a jump cut
    cut = tmp_path / "cut.otio"
    otio.adapters.write_to_file(otio.schema.Timeline(name="cut", tracks=[track]), str(cut))

    summary = render_timeline(cut, tmp_path / "out", model="blend", codec="h264", smooth_cut_frames=2)
    (made,) = [c for c in summary.smooth_cuts if c["status"] == "rendered"]
    video = probe(Path(made["output"])).video_stream
    assert (video.rotation_deg, video.sample_aspect_ratio) == (90, Fraction(4, 3))
    assert (video.color_primaries, video.color_transfer) == (BT2020, PQ)

