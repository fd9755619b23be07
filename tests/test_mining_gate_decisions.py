"""The dataset gate judges by the frames: a capture-rate tag never makes made or still frames
genuine, a high-rate stream tagged with its own rate is a capture at that rate, and 30 fps
footage interpolated up to 240 and stored at 240 is made, not a capture."""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction

import pytest

from engine.mining.stages import assess_segment
from engine.speed.detect import _learned_estimate, detect_speed
from engine.speed.metadata_stage import MetadataFinding
from engine.speed.result import SpeedClass, SpeedEstimate, SpeedSegment

GATE = 0.82


def _estimate(speed_class: SpeedClass, speed: Fraction | None, playback: int, capture=None, confidence=0.95):
    return SpeedEstimate(speed, Fraction(playback), capture, confidence, speed_class)


def _tag_finding(tag: int, playback: int, *, high_rate: bool = False) -> MetadataFinding:
    tagged = _estimate(
        SpeedClass.SLOWMO if tag > playback else SpeedClass.REALTIME,
        Fraction(playback, tag),
        playback,
        Fraction(tag),
        0.9,
    )
    return MetadataFinding(tagged, capture_rate_tag=Fraction(tag), high_rate_stream=high_rate)


def _restated(pixels: SpeedEstimate, finding: MetadataFinding) -> SpeedSegment:
    """A segment as detect gives it for a tagged clip: restated by the tag, the pixels kept."""
    return SpeedSegment(0, 48, finding.estimate, pixels=pixels)


@pytest.mark.parametrize(
    ("pixel_class", "accepted"),
    [
        (SpeedClass.SLOWMO, True),
        (SpeedClass.SYNTHETIC_SLOWMO, False),
        (SpeedClass.STILL, False),
        (SpeedClass.REALTIME, False),
    ],
)
def test_a_tag_is_accepted_only_where_the_frames_read_slow_motion(pixel_class, accepted):
    finding = _tag_finding(240, 24)
    pixels = _estimate(pixel_class, None if pixel_class is SpeedClass.STILL else Fraction(1, 8), 24)
    reading = assess_segment(_restated(pixels, finding), Fraction(24), finding, GATE)
    assert reading.accepted is accepted, reading
    if accepted:
        assert reading.basis == "capture-rate tag, pixels agree" and reading.capture_rate == 240
    else:
        assert reading.speed_class == pixel_class.value


@pytest.mark.parametrize("playback", [240, Fraction(240236, 1000)])
def test_a_high_rate_stream_tagged_with_its_own_rate_is_a_capture_at_that_rate(playback):
    finding = _tag_finding(240, 240, high_rate=True)
    finding.estimate = _estimate(SpeedClass.REALTIME, Fraction(1), 240, Fraction(240), 0.9)
    pixels = _estimate(SpeedClass.REALTIME, Fraction(1), 240)
    reading = assess_segment(_restated(pixels, finding), Fraction(playback), finding, GATE)
    assert reading.accepted, reading
    assert reading.capture_rate == 240 and reading.conform_rate == 240


def test_the_network_calls_made_frames_on_a_high_rate_stream_that_reads_real_time():
    made = _learned_estimate(0.05, 0.35, 0.99, Fraction(240), [], synthetic_bar=0.8)
    captured = _learned_estimate(0.05, 0.35, 0.0001, Fraction(240), [], synthetic_bar=0.8)
    at_30 = _learned_estimate(0.05, 0.35, 0.99, Fraction(30), [], synthetic_bar=0.8)
    assert made.speed_class is SpeedClass.SYNTHETIC_SLOWMO
    assert captured.speed_class is SpeedClass.REALTIME
    assert at_30.speed_class is SpeedClass.REALTIME  # real time at 30 fps is not slow motion


def test_segments_keep_what_the_pixels_read_through_json():
    finding = _tag_finding(240, 24)
    pixels = _estimate(SpeedClass.SYNTHETIC_SLOWMO, Fraction(1, 4), 24)
    segment = _restated(pixels, finding)
    again = SpeedSegment.from_dict(segment.to_dict())
    assert again.pixel_estimate.speed_class is SpeedClass.SYNTHETIC_SLOWMO
    assert again.estimate.speed_class is SpeedClass.SLOWMO
    plain = SpeedSegment(0, 8, pixels)
    assert plain.pixel_estimate is pixels and "pixels" not in plain.to_dict()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command (minterpolate)")
def test_real_footage_interpolated_to_240_and_stored_at_240_is_made(tmp_path, shared_data):
    """A second of a real 30 fps clip made into 240 fps by FFmpeg's motion interpolation: it plays
    at real time at 240, so it never reads slow; the network's call of made frames decides it."""
    made = tmp_path / "dog-made-240.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-ss", "1", "-i", str(shared_data / "clips" / "sam2-dog.mp4"),
         "-t", "1", "-map", "0:v:0", "-vf", "scale=320:-2,minterpolate=fps=240:mi_mode=mci",
         "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", str(made)],
        check=True, timeout=300,
    )
    result = detect_speed(made, audio=False)
    assert result.estimate.speed_class is SpeedClass.SYNTHETIC_SLOWMO, result.to_json()["evidence"]


def test_a_high_rate_stream_read_a_little_fast_is_still_a_capture_at_its_rate():
    """Untagged 240 fps, frames read 1.45x fast: within the 4x detect allows at these rates, so
    detect restates it as real time at 240 and the gate accepts it (seed 11 of the renders)."""
    finding = MetadataFinding(
        _estimate(SpeedClass.REALTIME, Fraction(1), 240, Fraction(240), 0.6), high_rate_stream=True
    )
    restated = _estimate(SpeedClass.REALTIME, Fraction(1), 240, Fraction(240), 0.95)
    pixels = _estimate(SpeedClass.SPED_UP, Fraction(1175, 813), 240)
    reading = assess_segment(SpeedSegment(0, 96, restated, pixels=pixels), Fraction(240), finding, GATE)
    assert reading.accepted and reading.capture_rate == 240, reading
    far = _estimate(SpeedClass.SPED_UP, Fraction(8), 240)
    assert not assess_segment(SpeedSegment(0, 96, far), Fraction(240), finding, GATE).accepted


def test_a_capture_tag_does_not_make_duplicated_frames_a_capture(tmp_path):
    """Every frame of a 30 fps render shown 4 times, tagged as a 240 fps capture: the pattern of
    made frames decides, the clip stays synthetic and its evidence names the tag."""
    from engine.scenes import random_scene, render_frames, write_video

    spec = random_scene(4, width=160, height=96, capture_fps=30, duration_frames=32)
    frames = [frame for frame in render_frames(spec) for _ in range(4)]
    path = tmp_path / "dup-tagged.mp4"
    write_video(frames, path, 30, crf=16, metadata={"com.android.capture.fps": "240.000000"})
    result = detect_speed(path, audio=False)
    assert result.decided_by == "synthetic_retime", result.to_json()["evidence"]
    assert result.estimate.speed_class is SpeedClass.SYNTHETIC_SLOWMO
    assert any("but the frames are made" in item.finding for item in result.estimate.evidence)


def test_a_time_lapse_tag_is_never_slow_motion_whatever_the_frames_read():
    finding = _tag_finding(2, 30)
    pixels = _estimate(SpeedClass.SLOWMO, Fraction(1, 4), 30)
    reading = assess_segment(_restated(pixels, finding), Fraction(30), finding, GATE)
    assert not reading.accepted and "sped up, not slow motion" in reading.reason
