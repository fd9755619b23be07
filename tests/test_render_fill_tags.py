"""What `render` and `fill` outputs keep of their source: fills and smooth cuts are shown as the
clip they are made from (rotation, pixel aspect, colour primaries and transfer), with a WARNING
where the clips either side of a gap are shown otherwise; a rendered clip carries the source's
timecode at its first frame, and the new timeline counts its media from it."""

from __future__ import annotations

import logging
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
from media_factory import frame_pattern

from engine.media import FrameReader, probe, write_video
from engine.media.timecode import start_timecode, timecode_at_rate
from engine.media.writer import CarriedTags
from engine.render import fill_gaps, render_timeline
from engine.render.plan import with_media_range
from engine.retime import read_sidecar
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


def _camera_clip(path: Path, timecode: str) -> Path:
    """A 25 fps .mov with a start timecode (tmcd track), as a camera writes it."""
    command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=1"]
    command += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-timecode", timecode, str(path)]
    subprocess.run(command, check=True)
    return path


def test_rendered_clip_carries_the_source_timecode_of_its_first_frame(tmp_path):
    camera = _camera_clip(tmp_path / "A001.mov", "01:00:00:00")
    start = 3600 * 25
    reference = otio.schema.ExternalReference(
        target_url=str(camera), available_range=time_range(start, 25, RATE)
    )
    clip = otio.schema.Clip(
        name="A001", media_reference=reference, source_range=time_range(start + 6, 4, RATE)
    )
    clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video, children=[clip])
    cut = tmp_path / "cut.otio"
    otio.adapters.write_to_file(otio.schema.Timeline(name="cut", tracks=[track]), str(cut))

    for codec in ("h264", "png"):
        outdir = tmp_path / codec
        summary = render_timeline(cut, outdir, model="blend", codec=codec)
        (record,) = summary.clips
        assert record["status"] == "rendered"
        assert record["report"]["start_timecode"] == "01:00:00:06"
        new = read_timeline(outdir / "cut.chronoscope.otio")
        (segment,) = list_segments(new)
        # the new timeline counts the render's frames from its timecode, as an EDL names them
        assert segment.available_range.start_time.to_frames() == start + 6
        assert segment.source_start_frames == start + 6
        assert read_sidecar(Path(record["output"])).start_timecode == "01:00:00:06"
        if codec == "h264":
            assert start_timecode(probe(Path(segment.media_path))) == "01:00:00:06"


def test_edl_copy_of_a_render_names_the_renders_own_timecode(tmp_path):
    camera = _camera_clip(tmp_path / "A001.mov", "01:00:00:00")
    edl = tmp_path / "cut.edl"
    edl.write_text(
        "TITLE: cut\nFCM: NON-DROP FRAME\n\n"
        "001  A001     V     C        01:00:00:10 01:00:00:16 01:00:00:00 01:00:00:12\n"
        "M2   A001      012.5                01:00:00:10\n"
        f"* FROM CLIP NAME: A001.mov\n* FROM CLIP: {camera}\n"
    )
    summary = render_timeline(edl, tmp_path / "out", model="blend", codec="h264", rate=25)
    (record,) = summary.clips
    assert record["report"]["start_timecode"] == "01:00:00:10"
    text = (tmp_path / "out" / "cut.chronoscope.edl").read_text()
    # the render's reel with the render's own timecodes: conforming finds its frames
    assert "01:00:00:10 01:00:00:22 01:00:00:00 01:00:00:12" in text
    copy = read_timeline(tmp_path / "out" / "cut.chronoscope.edl", rate=25)
    (segment,) = list_segments(copy)
    assert start_timecode(probe(Path(segment.media_path))) == "01:00:00:10"
    # read back, the EDL's source frames lie in the render's media, counted from its timecode
    located = with_media_range(segment)
    assert located.available_range.start_time.to_frames() == located.source_start_frames == 90010
    assert located.available_range.duration.to_frames() == 12


def test_a_source_timecode_is_relabelled_at_the_render_rate():
    assert timecode_at_rate("01:00:00:49", Fraction(50), Fraction(25)) == "01:00:00:24"
    assert timecode_at_rate("01:00:00:23", Fraction(24000, 1001), Fraction(24)) == "01:00:00:23"
    assert timecode_at_rate("01:00:00;02", Fraction(30000, 1001), Fraction(30000, 1001)) == "01:00:00;02"
    assert timecode_at_rate("reel 7", Fraction(25), Fraction(25)) is None
