"""What PNG-frame outputs keep of their source (they have no display matrix and no timecode), the
advice given for a non-square-pixel source of an odd size, and the words for a speed of 0 or less.

Before: PNG frames of a phone's portrait clip came out sideways and dropped its pixel aspect and
timecode without a word; an odd-sized anamorphic source was sent from .mkv to ProRes and back; a
speed of 0 was answered with "0 < speed < 1 ... use a FreezeFrame", an OTIO effect.
"""

from __future__ import annotations

import logging
import shutil
import struct
import subprocess
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from media_factory import frame_pattern, render_clip

from engine.cli import main
from engine.errors import RetimeSpeedError, UnsupportedOptionError
from engine.media import probe, write_video
from engine.media.writer import CarriedTags
from engine.retime import parse_ramp, parse_speed, retime_clip

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command")


def _rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)


def _phys(path) -> tuple[int, int, int] | None:
    """The pHYs chunk of a PNG file (x per unit, y per unit, unit), None without one; checks that
    it comes before the pixels and that its CRC is right."""
    import zlib

    data = path.read_bytes()
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        body = data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        if kind == b"IDAT":
            return None
        if kind == b"pHYs":
            return struct.unpack(">IIB", body)
        at += 12 + length
    return None


def _ffmpeg_sample_aspect(path) -> Fraction | None:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        next(container.decode(stream))
        ratio = stream.codec_context.sample_aspect_ratio
    return Fraction(ratio) if ratio else None


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_png_frames_are_turned_as_the_source_displays(tmp_path, rotation):
    images = [frame_pattern(n, 64, 48) for n in range(2)]
    folder = write_video(
        tmp_path / "shot", images, rate=25, codec="png", carried=CarriedTags(rotation_deg=rotation)
    )
    # the display matrix's angle is counter-clockwise, as np.rot90 turns
    np.testing.assert_array_equal(_rgb(folder / "shot_000001.png"), np.rot90(images[1], k=rotation // 90))


def test_png_frames_carry_the_pixel_aspect_and_name_the_timecode(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    carried = CarriedTags(sample_aspect_ratio=Fraction(4, 3), timecode="01:00:10:05")
    folder = write_video(tmp_path / "anam", [frame_pattern(0)], rate=25, codec="png", carried=carried)
    frame = folder / "anam_000000.png"
    assert _phys(frame) == (4, 3, 0)
    assert _ffmpeg_sample_aspect(frame) == Fraction(4, 3)  # as FFmpeg (and Chronoscope) read it
    np.testing.assert_array_equal(_rgb(frame), frame_pattern(0))
    assert "4:3" in caplog.text and "01:00:10:05" in caplog.text and "no timecode" in caplog.text
    plain = write_video(tmp_path / "plain", [frame_pattern(0)], rate=25, codec="png")
    assert _phys(plain / "plain_000000.png") is None


def test_a_turned_png_frame_has_the_turned_pixel_aspect(tmp_path):
    carried = CarriedTags(rotation_deg=90, sample_aspect_ratio=Fraction(4, 3))
    folder = write_video(tmp_path / "turned", [frame_pattern(0)], rate=25, codec="png", carried=carried)
    frame = folder / "turned_000000.png"
    assert _rgb(frame).shape == (64, 48, 3)
    assert _ffmpeg_sample_aspect(frame) == Fraction(3, 4)


@needs_ffmpeg
def test_retimed_png_frames_match_the_mov_as_ffmpeg_autorotates_it(tmp_path, caplog):
    """The audit's case: a phone clip (display matrix 90) retimed to PNG frames came out 64x48,
    sideways, while the .mov kept the matrix; now frame 0 of both looks the same."""
    clip = render_clip(
        tmp_path / "phone.mov", frame_count=8, rotation_deg=90, metadata={"timecode": "01:00:10:00"}
    )
    frames, movie = tmp_path / "slowpng", tmp_path / "slow.mov"
    report = retime_clip(clip, frames, speed=Fraction(1, 2), source_range=(2, 6), model="nearest")
    retime_clip(clip, movie, speed=Fraction(1, 2), source_range=(2, 6), model="nearest")
    shown = tmp_path / "shown.png"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(movie), "-frames:v", "1", "-pix_fmt", "rgb24", str(shown)],
        check=True,
    )
    png = _rgb(frames / "slowpng_000000.png").astype(float)
    autorotated = _rgb(shown).astype(float)
    assert png.shape == autorotated.shape == (64, 48, 3)
    assert np.abs(png - autorotated).mean() < 8  # ProRes and two YUV-RGB conversions
    assert np.abs(np.rot90(png, 2) - autorotated).mean() > 20  # the other way round is far off
    assert report.start_timecode == "01:00:10:02"
    assert "01:00:10:02" in caplog.text and "no timecode" in caplog.text
    assert '"start_timecode": "01:00:10:02"' in (tmp_path / "slowpng.chronoscope.json").read_text()


def test_retimed_png_frames_keep_an_anamorphic_pixel_aspect(tmp_path):
    source = write_video(
        tmp_path / "anam.mov",
        [frame_pattern(n) for n in range(6)],
        rate=25,
        codec="prores",
        carried=CarriedTags(sample_aspect_ratio=Fraction(4, 3)),
    )
    assert probe(source).video_stream.sample_aspect_ratio == Fraction(4, 3)
    frames = tmp_path / "slow"
    retime_clip(source, frames, speed=Fraction(1, 2), model="nearest")
    assert _phys(frames / "slow_000003.png") == (4, 3, 0)


def _odd_frames(width: int, height: int):
    return [frame_pattern(n, width, height) for n in range(2)]


def test_an_odd_sized_anamorphic_source_gets_advice_that_works(tmp_path, caplog):
    """641x361 at 4:3: the .mkv warning sent the user to ProRes, and ProRes was refused, sending
    them back to .mkv. Now both say FFV1 keeps it in its frames and how to reach an even size."""
    carried = CarriedTags(sample_aspect_ratio=Fraction(4, 3))
    write_video(tmp_path / "out.mkv", _odd_frames(65, 49), rate=25, codec="ffv1", carried=carried)
    warning = caplog.text
    assert "write ProRes (.mov) or H.264/H.265 to keep it" not in warning
    assert "need an even width" in warning and "crop or pad the source to 64x48" in warning
    with pytest.raises(UnsupportedOptionError) as refused:
        write_video(tmp_path / "out.mov", _odd_frames(65, 49), rate=25, codec="prores", carried=carried)
    message = str(refused.value)
    assert "FFV1 keeps the pixel aspect 4:3 in its frames" in message
    assert "crop or pad the source to 64x49" in message
    assert not (tmp_path / "out.mov").exists()


def test_an_even_width_odd_height_anamorphic_source_is_sent_to_prores(tmp_path, caplog):
    carried = CarriedTags(sample_aspect_ratio=Fraction(4, 3))
    write_video(tmp_path / "out.mkv", _odd_frames(64, 49), rate=25, codec="ffv1", carried=carried)
    assert "write ProRes (.mov), which takes this size" in caplog.text
    caplog.clear()
    write_video(tmp_path / "out.mov", _odd_frames(64, 49), rate=25, codec="prores", carried=carried)
    assert probe(tmp_path / "out.mov").video_stream.sample_aspect_ratio == Fraction(4, 3)


@pytest.mark.parametrize("speed", ["0", "-0.5", 0])
def test_a_speed_of_zero_or_less_gets_the_range_retime_takes(speed):
    with pytest.raises(RetimeSpeedError) as refused:
        parse_speed(speed)
    message = str(refused.value)
    assert "0 < speed <= 1" in message and "not above 0" in message
    assert "FreezeFrame" not in message and "0 < speed < 1" not in message


def test_a_ramp_keyframe_of_speed_zero_gets_the_same_words():
    with pytest.raises(RetimeSpeedError) as refused:
        parse_ramp([{"frame": 0, "speed": 1}, {"frame": 10, "speed": 0}])
    assert "0 < speed <= 1" in str(refused.value) and "FreezeFrame" not in str(refused.value)
    with pytest.raises(RetimeSpeedError) as allowed:
        parse_ramp([{"frame": 0, "speed": 0}], allow_speedup=True)
    assert "a speed above 0" in str(allowed.value)


def test_retime_at_speed_zero_says_so_in_one_line(tmp_path, capsys):
    clip = render_clip(tmp_path / "clip.mp4", frame_count=4)
    assert main(["retime", str(clip), "--speed", "0", "-o", str(tmp_path / "a.mov")]) == 2
    error = capsys.readouterr().err
    assert "0 < speed <= 1" in error and "FreezeFrame" not in error


def test_repaired_png_frames_are_turned_and_the_report_has_the_timecode(tmp_path, caplog):
    """repair writes through the same writer: its PNG frames of a phone clip come out upright."""
    from engine.repair import repair_clip

    clip = render_clip(
        tmp_path / "phone.mov",
        pts=[0, 1, 2, 4, 5, 6, 7],
        rotation_deg=270,
        metadata={"timecode": "01:00:10:00"},
    )
    report = repair_clip(clip, tmp_path / "fixed", model="nearest", audio="drop")
    first = _rgb(tmp_path / "fixed" / "fixed_000000.png").astype(float)
    assert first.shape == (64, 48, 3) and report.output_frames == 8
    upright = np.rot90(frame_pattern(0), 3).astype(float)
    # red and green: the pattern's smooth gradients (its blue texture is lost to 4:2:0 H.264)
    assert np.abs(first - upright)[..., :2].mean() < 5
    assert np.abs(np.rot90(first, 2) - upright)[..., :2].mean() > 50
    assert report.start_timecode == "01:00:10:00" and "01:00:10:00" in caplog.text
