"""probe(): exact rates, counts, VFR, bit depth, rotation, capture-rate tags, on clips rendered here."""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction

import numpy as np
import pytest
from media_factory import RATES, render_clip

from engine.media import probe, probe_video


@pytest.mark.parametrize("name", ["23.976", "29.97", "25", "240"])
def test_cfr_rates_and_counts_are_exact(tmp_path, name):
    rate = RATES[name]
    clip = render_clip(tmp_path / "cfr.mp4", rate=rate, frame_count=30)
    video = probe_video(clip)
    assert video.frame_rate == rate
    assert video.frame_count == 30
    assert video.duration_s == Fraction(30) / rate
    assert not video.is_vfr
    assert video.min_frame_interval_s == video.max_frame_interval_s == 1 / rate
    assert video.capture.high_frame_rate_stream is (rate >= 100)
    assert video.sources["frame_count"] == "packet scan"


def test_vfr_clip_reports_intervals(tmp_path):
    pts = [0, 4, 8, 10, 12, 20, 21, 22, 40]
    clip = render_clip(tmp_path / "vfr.mp4", pts=pts, time_base=Fraction(1, 100))
    video = probe_video(clip)
    assert video.frame_count == len(pts)
    assert video.is_vfr
    scale = Fraction(1, 100)
    assert video.min_frame_interval_s == 1 * scale
    assert video.max_frame_interval_s == 18 * scale
    assert video.start_s == 0


def test_ten_bit_alpha_and_audio(tmp_path):
    ten = probe(render_clip(tmp_path / "ten.mp4", pixel_format="yuv420p10le", audio=True))
    assert ten.video_stream.bit_depth == 10
    assert ten.video_stream.pixel_format == "yuv420p10le"
    assert [(a.codec, a.sample_rate, a.channels) for a in ten.audio] == [("aac", 48000, 1)]
    alpha = probe_video(render_clip(tmp_path / "alpha.mkv", codec="ffv1", pixel_format="yuva444p"))
    assert alpha.has_alpha and alpha.bit_depth == 8


def test_android_capture_rate_and_rotation(tmp_path):
    clip = render_clip(
        tmp_path / "phone.mp4",
        rate=Fraction(30),
        metadata={"com.android.capture.fps": "240.000000"},
        rotation_deg=90,
    )
    video = probe_video(clip)
    assert video.capture.capture_fps == 240
    assert video.sources["capture_fps"] == "container tag com.android.capture.fps"
    assert video.rotation_deg == 90
    assert video.sources["rotation_deg"] == "display matrix"
    assert (video.width, video.height) == (64, 48)


def test_ntsc_capture_tag_becomes_exact_fraction(tmp_path):
    clip = render_clip(tmp_path / "phone.mp4", metadata={"com.android.capture.fps": "119.88"})
    assert probe_video(clip).capture.capture_fps == Fraction(120000, 1001)


def test_apple_playback_intent_is_a_hint_not_a_rate(tmp_path):
    clip = render_clip(
        tmp_path / "iphone.mov", metadata={"com.apple.quicktime.full-frame-rate-playback-intent": "0"}
    )
    capture = probe_video(clip).capture
    assert capture.capture_fps is None
    assert capture.hints == {"com.apple.quicktime.full-frame-rate-playback-intent": "0"}


def test_to_dict_is_json_with_fraction_text(tmp_path):
    clip = render_clip(tmp_path / "c.mp4", rate=RATES["29.97"], frame_count=12)
    data = json.loads(json.dumps(probe(clip).to_dict()))
    video = data["video"][0]
    assert video["frame_rate"] == "30000/1001"
    assert video["frame_count"] == 12
    assert video["duration_s"] == "1001/2500"
    assert data["path"] == str(clip)


def test_quick_probe_uses_headers_and_says_so(tmp_path):
    clip = render_clip(tmp_path / "c.mp4", rate=RATES["23.976"], frame_count=20)
    video = probe_video(clip, scan_packets=False)
    assert video.frame_count == 20
    assert video.frame_rate == RATES["23.976"]
    assert video.sources["frame_count"] == "container frame count"


def test_shared_clips_match_their_documented_counts(shared_data):
    expected = {
        "hug-lego-movie.mp4": (166, Fraction(30)),
        "sam2-juggle.mp4": (247, Fraction(24)),
        "opencv-vtest.avi": (795, Fraction(10)),
        "kivy-cityCC0.mpg": (190, Fraction(25)),
        "gopro-max-heromode.mp4": (315, Fraction(30000, 1001)),
    }
    for name, (count, rate) in expected.items():
        video = probe_video(shared_data / "clips" / name)
        assert (video.frame_count, video.frame_rate) == (count, rate), name


def test_start_timecode_of_a_camera_file_and_drop_frame_counting(tmp_path):
    from media_factory import render_clip

    from engine.media.timecode import start_timecode, timecode_seconds

    tagged = {"timecode": "01:00:00:00"}
    clip = render_clip(tmp_path / "camera.mov", rate=Fraction(24), frame_count=6, metadata=tagged)
    assert start_timecode(probe(clip, scan_packets=False)) == "01:00:00:00"
    plain = render_clip(tmp_path / "plain.mp4", frame_count=6)
    assert start_timecode(probe(plain, scan_packets=False)) is None
    ntsc = Fraction(30000, 1001)
    assert timecode_seconds("01:00:00:00", Fraction(24)) == 3600
    assert timecode_seconds("00:01:00;02", ntsc) * ntsc == 1800  # ;00 and ;01 are skipped each minute
    assert timecode_seconds("00:10:00;00", ntsc) * ntsc == 17982  # but not at every tenth
    assert timecode_seconds("01:00:00;00", ntsc) * ntsc == 107892
    assert timecode_seconds("00:01:00:02", ntsc) * ntsc == 1802  # ":" is non drop frame
    assert timecode_seconds("01:00:00:24", Fraction(24)) is None
    assert timecode_seconds("not a timecode", Fraction(24)) is None


def test_interlaced_frames_are_reported(tmp_path):
    clip = render_clip(tmp_path / "progressive.mp4", frame_count=4)
    assert probe(clip).video_stream.interlaced is False


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command to write the test file")
def test_an_interlaced_clip_is_reported_as_such(tmp_path):
    clip = tmp_path / "fields.mp4"
    command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi"]
    command += ["-i", "testsrc2=size=160x120:rate=50:duration=0.2"]
    command += ["-vf", "tinterlace=interleave_top,setfield=tff", "-c:v", "libx264", "-flags", "+ilme+ildct"]
    command += ["-pix_fmt", "yuv420p", str(clip)]
    subprocess.run(command, check=True)
    assert probe(clip).video_stream.interlaced is True


def test_one_slightly_late_frame_leaves_a_constant_rate_clip_constant(tmp_path):
    """An MP4 concatenation of 24 fps parts: every interval 512 ticks of 1/12288 s but one of 520
    at the join. It read as variable rate at 23.999 fps; it is 24 fps constant. A stall (one
    interval of two frames) and a phone's alternating intervals stay variable."""
    ticks = [512 * n + (8 if n > 60 else 0) for n in range(120)]
    joined = probe_video(render_clip(tmp_path / "joined.mp4", pts=ticks, time_base=Fraction(1, 12288)))
    assert not joined.is_vfr
    assert joined.frame_rate == 24
    stall = [512 * n + (512 if n > 60 else 0) for n in range(120)]
    assert probe_video(render_clip(tmp_path / "stall.mp4", pts=stall, time_base=Fraction(1, 12288))).is_vfr
    phone = [3 * n + (n % 2) for n in range(41)]
    assert probe_video(render_clip(tmp_path / "phone.mp4", pts=phone, time_base=Fraction(1, 90))).is_vfr


def test_a_matroska_file_cut_short_is_truncated_by_its_declared_duration(tmp_path):
    """A .mkv cut at 60 % (a copy that stopped): its last cluster ends cleanly, so no packet is cut
    and it read as a complete, shorter clip. Its track's DURATION tag says where the video ends."""
    whole = render_clip(
        tmp_path / "whole.mkv", rate=Fraction(30), frame_count=180, size=(160, 96), gop_frames=30
    )
    complete = probe_video(whole)
    assert not complete.truncated and complete.declared_end_s == Fraction(6)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 60 // 100])
    video = probe_video(cut)
    assert video.frame_count < 150
    assert video.truncated
    assert video.truncation_reason().startswith("the container says the video runs to 6.000 s")


def _fast_matroska(path, rate: int):
    """30 FFV1 frames at ``rate`` fps in Matroska, which keeps time in milliseconds."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(30):
            image = np.full((48, 64, 3), index * 8, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def test_a_clip_faster_than_its_containers_time_steps_is_named_not_misread(tmp_path):
    """At 90000 fps every frame carries timestamp 0 (older `mine --extract` wrote such clips): probe
    divided by the interval, 0, and ended in a traceback. At 2000 fps every other frame shares its
    timestamp: probe read it as 1000 fps, constant, 16 ms long, with a WARNING only. Now both are
    refused, naming the file and why."""
    from engine.errors import CorruptMediaError

    fastest = _fast_matroska(tmp_path / "fast.mkv", 90000)
    with pytest.raises(CorruptMediaError, match=r"fast\.mkv: its 30 frames all carry one timestamp: it "
                       r"counts time in steps of 1/1000 s"):
        probe_video(fastest)
    fast = _fast_matroska(tmp_path / "2k.mkv", 2000)
    with pytest.raises(CorruptMediaError, match=r"2k\.mkv: 1[45] of its 30 frames carry the timestamp of "
                       r"the frame before"):
        probe_video(fast)
    assert probe_video(_fast_matroska(tmp_path / "1k.mkv", 1000)).frame_rate == 1000


def test_the_probe_table_says_only_what_the_file_says(tmp_path, capsys):
    """A still image had FFmpeg's default 25 fps printed as its frame rate; a colour transfer the
    file leaves unspecified read 'transfer None'; --quick printed 'variable rate no' where it never
    looked (the JSON said not checked)."""
    import dataclasses

    import cv2

    from engine.cli import main
    from engine.commands.probe import format_table

    still = tmp_path / "still.png"
    cv2.imwrite(str(still), np.full((48, 64, 3), 128, np.uint8))
    assert main(["probe", str(still)]) == 0
    shown = capsys.readouterr().out
    assert "25 fps" not in shown and "a still image has none" in shown
    info = probe(render_clip(tmp_path / "clip.mp4", rate=Fraction(30)))
    video = dataclasses.replace(info.video_stream, color_primaries=1, color_transfer=None)
    table = format_table(dataclasses.replace(info, video=[video]))
    assert "primaries BT.709, transfer unspecified" in table
    jitter = [3 * n + (n % 2) for n in range(41)]
    phone = render_clip(tmp_path / "phone.mp4", pts=jitter, time_base=Fraction(1, 90))
    assert main(["probe", "--quick", str(phone)]) == 0
    assert "variable rate  not checked" in capsys.readouterr().out
