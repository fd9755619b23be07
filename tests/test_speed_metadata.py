"""Metadata stage: tag dictionaries, and real files whose container tags are written through PyAV."""

from __future__ import annotations

import logging
from fractions import Fraction

import numpy as np
import pytest

from engine.errors import MediaNotFoundError, NotVideoError
from engine.scenes import write_video
from engine.speed.metadata_stage import RateMetadata, metadata_stage, rate_from_tag, read_rate_metadata
from engine.speed.result import SpeedClass


def _frames(count: int = 4) -> list[np.ndarray]:
    return [np.full((48, 64, 3), (30 * index) % 256, np.uint8) for index in range(count)]


def test_android_slow_motion_tag_gives_eighth_speed():
    finding = metadata_stage(RateMetadata(Fraction(30), {"com.android.capture.fps": "240.000000"}))
    estimate = finding.estimate
    assert estimate.speed_class is SpeedClass.SLOWMO
    assert estimate.speed == Fraction(1, 8)
    assert estimate.capture_rate == 240
    assert estimate.confidence >= 0.85
    assert any("com.android.capture.fps" in item.finding for item in estimate.evidence)


def test_android_time_lapse_tag_is_sped_up():
    estimate = metadata_stage(RateMetadata(Fraction(30), {"com.android.capture.fps": "1.0"})).estimate
    assert estimate.speed_class is SpeedClass.SPED_UP
    assert estimate.speed == 30


def test_capture_tag_equal_to_ntsc_rate_is_realtime():
    estimate = metadata_stage(
        RateMetadata(Fraction(30000, 1001), {"com.android.capture.fps": "29.97003"})
    ).estimate
    assert estimate.speed_class is SpeedClass.REALTIME
    assert estimate.speed == 1
    assert estimate.capture_rate == Fraction(30000, 1001)


def test_high_rate_stream_without_tags_is_realtime_playback_of_a_high_rate_capture():
    finding = metadata_stage(RateMetadata(Fraction(240), {}))
    estimate = finding.estimate
    assert finding.high_rate_stream
    assert estimate.speed_class is SpeedClass.REALTIME
    assert estimate.speed == 1 and estimate.capture_rate == 240
    assert 0.4 < estimate.confidence < 0.8
    conform = [item.value for item in estimate.evidence if "conformed to 30" in item.finding]
    assert conform == [pytest.approx(0.125)]


def test_apple_full_rate_intent_raises_confidence_only_when_it_says_full_rate():
    full = metadata_stage(RateMetadata(240, {"com.apple.quicktime.full-frame-rate-playback-intent": "1"}))
    unsure = metadata_stage(RateMetadata(240, {"com.apple.quicktime.full-frame-rate-playback-intent": "0"}))
    assert full.estimate.confidence > unsure.estimate.confidence
    assert unsure.estimate.confidence == metadata_stage(RateMetadata(240, {})).estimate.confidence


def test_ordinary_rate_without_tags_decides_nothing():
    finding = metadata_stage(RateMetadata(Fraction(25), {"encoder": "Lavf"}))
    assert finding.estimate is None
    assert finding.evidence and all(item.weight == 0 for item in finding.evidence)


def test_unreadable_capture_tag_is_ignored_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        finding = metadata_stage(
            RateMetadata(Fraction(30), {"COM.ANDROID.CAPTURE.FPS": "fast"}, source="x.mp4")
        )
    assert finding.estimate is None
    assert "ignoring capture-rate tag" in caplog.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("240.000000", Fraction(240)),
        ("29.970030", Fraction(30000, 1001)),
        ("30000/1001", Fraction(30000, 1001)),
        ("nan", None),
        ("-5", None),
        ("", None),
    ],
)
def test_rate_from_tag(text, expected):
    assert rate_from_tag(text) == expected


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
def test_capture_tag_written_through_pyav_is_read_back(tmp_path, suffix):
    # MP4/MOV keep arbitrary keys only with movflags=use_metadata_tags (mdta keys, as Android writes
    # them); write_video sets it. Matroska keeps them as tags (upper-cased; read back lower-cased).
    path = tmp_path / f"android{suffix}"
    write_video(_frames(), path, 30, metadata={"com.android.capture.fps": "240.000000"})
    meta = read_rate_metadata(path)
    assert meta.playback_rate == 30
    assert meta.tags["com.android.capture.fps"].startswith("240")
    estimate = metadata_stage(meta).estimate
    assert estimate.speed == Fraction(1, 8) and estimate.speed_class is SpeedClass.SLOWMO


def test_high_rate_file_without_tags(tmp_path):
    path = tmp_path / "fast.mp4"
    write_video(_frames(8), path, 240)
    estimate = metadata_stage(read_rate_metadata(path)).estimate
    assert estimate.speed_class is SpeedClass.REALTIME and estimate.capture_rate == 240


def test_real_clip_says_nothing_about_speed(sample_clip):
    meta = read_rate_metadata(sample_clip)
    assert meta.playback_rate == 30
    assert metadata_stage(meta).estimate is None


def test_missing_and_non_video_files_raise_named_errors(tmp_path):
    with pytest.raises(MediaNotFoundError, match="not found"):
        read_rate_metadata(tmp_path / "nope.mp4")
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    with pytest.raises(NotVideoError):
        read_rate_metadata(text)


def test_segments_of_a_tagged_clip_say_what_the_tag_says(tmp_path):
    """Real-time frames tagged as a 240 fps capture played at 30: the tag decides the clip, and
    every segment is restated at the tag's speed, with the pixels' own reading kept as evidence."""
    from engine.scenes import random_scene, render_frames
    from engine.speed.detect import detect_speed

    spec = random_scene(3, width=160, height=96, capture_fps=30, duration_frames=96)
    path = tmp_path / "tagged.mp4"
    write_video(render_frames(spec), path, 30, metadata={"com.android.capture.fps": "240.000000"})
    result = detect_speed(path, audio=False)
    assert result.decided_by == "metadata" and result.estimate.speed == Fraction(1, 8)
    for segment in result.segments:
        assert segment.estimate.speed == Fraction(1, 8)
        assert segment.estimate.speed_class is SpeedClass.SLOWMO
        assert any(
            item.finding.startswith("capture-rate tag decides; pixels say")
            for item in segment.estimate.evidence
        )
