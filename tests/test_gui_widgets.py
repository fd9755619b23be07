"""The app's parts that need no engine: reading analysis results, drawing them, time text, settings."""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from engine.errors import EngineRequestError  # noqa: E402
from gui import style  # noqa: E402
from gui.frames import open_frame_source, preview_size  # noqa: E402
from gui.results import (  # noqa: E402
    RenderOrder,
    detect_request,
    output_paths,
    parse_render_result,
    parse_speed_result,
)
from gui.settings import DEFAULT_SPEED, AppSettings, settings_path  # noqa: E402
from gui.timeline_strip import SpeedCurvePlot, TimelineItem, TimelineStrip  # noqa: E402

# issue 4's JSON: a 3 s clip at 30 fps, real time, then 8x genuine slow motion, then fake slow motion
RESULT = {
    "speed": "1/8",
    "capture_fps": 240,
    "class": "slowmo",
    "confidence": 0.8,
    "segments": [
        {"start": 0, "end": "1", "speed": 1, "class": "realtime", "confidence": 0.9},
        {"start": "1", "end": 2, "speed": "1/8", "class": "slowmo", "confidence": 0.75},
        {"start": 2, "end": 3, "speed": 0.25, "class": "synthetic_slowmo", "confidence": 0.6},
    ],
    "evidence": [
        {"stage": "metadata", "finding": "com.android.capture.fps", "value": 240, "weight": 1.0},
        "blend",
    ],
    "curve": [
        {"start": i / 4, "end": (i + 1) / 4, "speed": 1 if i < 4 else 0.125, "confidence": 0.5 + i / 30}
        for i in range(12)
    ],
}


def _pixels(widget) -> np.ndarray:
    image = widget.grab().toImage().convertToFormat(widget.grab().toImage().Format.Format_RGB888)
    buffer = image.constBits()
    buffer.setsize(image.sizeInBytes())
    rows = np.frombuffer(buffer, np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def test_parse_speed_result_keeps_exact_numbers():
    analysis = parse_speed_result(RESULT)
    assert analysis.speed == Fraction(1, 8) and analysis.capture_fps == 240
    assert analysis.speed_class == "slowmo" and analysis.label == "slow motion"
    assert [s.speed_class for s in analysis.segments] == ["realtime", "slowmo", "synthetic_slowmo"]
    assert analysis.segments[2].speed == Fraction(1, 4) and analysis.segments[1].end_s == 2
    assert len(analysis.curve) == 12 and analysis.curve[11].end_s == 3
    assert analysis.evidence == ["metadata: com.android.capture.fps (240)", "blend"]


def test_the_analysis_notes_lead_the_evidence_lines():
    notes = ["the file looks truncated: the container lists 315, only 157 frames are in it; ..."]
    analysis = parse_speed_result({**RESULT, "analysis": {"notes": notes, "complete": False}})
    assert analysis.evidence[0] == f"note: {notes[0]}"
    assert (
        parse_speed_result({**RESULT, "analysis": {"notes": "odd"}}).evidence
        == parse_speed_result(RESULT).evidence
    )


def test_audio_findings_lead_the_evidence_lines():
    """The detect JSON's ``evidence.audio``: a confirmed change and a change only the sound heard."""
    audio = {
        "status": "used",
        "boundaries": [
            {"time": 1.0, "video_speed_ratio": 0.125, "audio": None, "verdict": "no reading"},
            {"time": 2.0, "video_speed_ratio": 2.0, "audio": {"speed_ratio": 2.01}, "verdict": "agrees"},
        ],
        "changes": [{"time": 2.5, "speed_ratio": 0.5, "octaves": -1.0, "correlation": 0.8}],
    }
    analysis = parse_speed_result({**RESULT, "evidence": {"items": RESULT["evidence"], "audio": audio}})
    assert analysis.evidence[:2] == [
        "audio: at 2.00 s the picture changes speed x2; the sound agrees",
        "audio: pitch shift at 2.50 s (speed x0.5)",
    ]
    for status in ("off", "silent", "no audio track"):
        quiet = parse_speed_result(
            {**RESULT, "evidence": {"items": RESULT["evidence"], "audio": {"status": status}}}
        )
        assert quiet.evidence == ["metadata: com.android.capture.fps (240)", "blend"]
    broken = parse_speed_result(
        {**RESULT, "evidence": {"items": [], "audio": {"status": "unreadable: bad packet"}}}
    )
    assert broken.evidence == ["audio: unreadable: bad packet"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"class": "fast"}, "realtime, slowmo"),
        ({"confidence": 1.5}, "confidence"),
        ({"segments": [{"start": 2, "end": 1, "class": "still", "confidence": 0.1}]}, "end before start"),
        ({"curve": [{"start": "x", "end": 1}]}, "curve[0].start"),
        ({"speed": [1]}, "speed"),
    ],
)
def test_parse_speed_result_names_what_it_cannot_read(change, named):
    with pytest.raises(EngineRequestError, match="detect_speed answered") as caught:
        parse_speed_result({**RESULT, **change})
    assert named in str(caught.value)


def test_parse_the_engine_job_answer_wrapping():
    detect_json = {
        **RESULT,
        "speed": 0.125,
        "speed_exact": "1/8",
        "evidence": {
            "decided_by": "metadata",
            "model_provider": "CPUExecutionProvider",
            "items": RESULT["evidence"],
        },
    }
    for answer in (
        {"path": "/m/a.mp4", "speed": detect_json},
        {"clips": [{"name": "a", "speed": detect_json}]},
    ):
        analysis = parse_speed_result(answer)
        assert analysis.speed == Fraction(1, 8) and analysis.model == "metadata, CPUExecutionProvider"
        assert analysis.evidence[0] == "metadata: com.android.capture.fps (240)"


def test_still_clip_has_no_speed():
    analysis = parse_speed_result({"speed": None, "capture_fps": None, "class": "still", "confidence": 0.2})
    assert analysis.speed is None and analysis.segments == [] and style.speed_text(analysis.speed) == "—"


def test_requests_describe_work_in_otio(sample_clip, tmp_path):
    request = detect_request(sample_clip, Fraction(30), 166)
    import json

    import opentimelineio as otio

    clip = otio.adapters.read_from_string(json.dumps(request["clip"]), "otio_json")
    assert isinstance(clip, otio.schema.Clip)
    assert clip.media_reference.target_url == sample_clip.resolve().as_uri()
    assert clip.media_reference.available_range.duration == otio.opentime.RationalTime(166, 30)
    order = RenderOrder(
        sample_clip, tmp_path / "out.mp4", Fraction(1, 4), "flow", 10, 40, Fraction(30000, 1001)
    )
    assert order.request() == {
        "source": str(sample_clip.resolve()),
        "output": str((tmp_path / "out.mp4").resolve()),
        "speed": "1/4",
        "model": "flow",
        "in_frame": 10,
        "out_frame": 40,
        "overwrite": False,
    }
    answer = {"report": {"frames_written": 120}, "output": "/a/b.mp4", "sidecar": "/a/b.mp4.chronoscope.json"}
    assert output_paths(answer) == [Path("/a/b.mp4"), Path("/a/b.mp4.chronoscope.json")]
    assert parse_render_result(answer).frames_written == 120
    for bad in ({"files": ["/a/c.mov"]}, {"output": 3}, {"output": "/a/b.mp4", "report": []}, None):
        with pytest.raises(EngineRequestError, match="retime answered"):
            parse_render_result(bad)


def test_timecode_and_speed_text():
    assert style.timecode(0, Fraction(30)) == "00:00:00:00"
    assert style.timecode(Fraction(41, 4), Fraction(30)) == "00:00:00:10+1/4"
    assert style.timecode(30 * 3600 + 61 * 30 + 29, Fraction(30000, 1001)) == "01:01:01:29"
    assert style.timecode(24 * 60, Fraction(24000, 1001)) == "00:01:00:00"
    assert style.speed_text(Fraction(1, 8)) == "1/8 (8x slow)"
    assert style.speed_text(Fraction(4)) == "4 (4x fast)"
    assert style.speed_text(Fraction(1)) == "1 (real time)"
    assert style.speed_text(Fraction(5, 4)) == "5/4 (1.25x fast)"
    assert style.speed_text(Fraction(43, 699)) == "0.06152 (16.3x slow)"


def test_preview_size_caps_large_frames():
    assert preview_size(1280, 720) == (1280, 720)
    assert preview_size(3840, 2160) == (1920, 1080)
    assert preview_size(4096, 2160) == (1920, 1012)
    assert preview_size(1080, 1920) == (608, 1080)


def test_frame_source_reads_exact_frames(sample_clip):
    import av

    source = open_frame_source(sample_clip)
    try:
        assert (source.info.frame_count, source.info.rate) == (166, 30)
        with av.open(str(sample_clip)) as container:
            decoded = []
            for decoded_frame in container.decode(video=0):
                decoded.append(decoded_frame.to_ndarray(format="rgb24"))
                if len(decoded) == 40:
                    break
        for index in (39, 3, 4, 20, 0):
            assert np.array_equal(source.frame(index), decoded[index])
        assert not source.frame(4).flags.writeable
    finally:
        source.close()


def test_curve_plot_draws_curve_confidence_and_boundaries(qtbot):
    plot = SpeedCurvePlot()
    qtbot.addWidget(plot)
    plot.resize(600, 160)
    plot.set_clip(90, Fraction(30))
    plot.set_analysis(None, "Speed analysis unavailable: detect_speed is not available in this engine build")
    empty = _pixels(plot)
    assert not plot.has_curve()
    plot.set_analysis(parse_speed_result(RESULT))
    drawn = _pixels(plot)
    assert plot.has_curve()
    # the line sits at 1x over the first second and at 1/8 after it
    x_early, x_late = int(plot.x_of(15)), int(plot.x_of(45))
    assert drawn[int(plot.y_of(1.0)), x_early].min() > 200
    assert drawn[int(plot.y_of(0.125)), x_late].min() > 200
    assert drawn[int(plot.y_of(1.0)), x_late].min() < 200
    # confidence shading is blue-ish around the line, and the segment band uses the class colour
    shade = drawn[int(plot.y_of(1.0)) - 6, x_early]
    assert shade[2] > shade[0] + 20
    band = drawn[plot.height() - 9, int(plot.x_of(75))]
    assert tuple(band) == style.class_colour("synthetic_slowmo").getRgb()[:3]
    assert np.abs(drawn.astype(int) - empty.astype(int)).mean() > 1


def test_strip_colours_segments_and_timeline_clips_by_class(qtbot):
    strip = TimelineStrip()
    qtbot.addWidget(strip)
    strip.resize(600, strip.height())
    strip.set_clip(90, Fraction(30))
    strip.set_segments(parse_speed_result(RESULT))
    strip.set_timeline(
        [TimelineItem("a", Fraction(0), 50, Fraction(1)), TimelineItem("b", Fraction(50), 50, Fraction(1, 2))]
    )
    strip.set_item_class(1, "sped_up")
    pixels = _pixels(strip)
    y = strip._clip_top() + strip.ROW_CLIP - 3
    assert tuple(pixels[y, int(strip.x_of(45)) + 30]) == style.class_colour("slowmo").getRgb()[:3]
    x_b = int(62 + 0.75 * strip.plot_width())
    assert (
        tuple(pixels[strip.ROW_TIMELINE - 2, x_b]) == style.class_colour("sped_up").darker(140).getRgb()[:3]
    )
    picked = []
    strip.item_selected.connect(picked.append)
    from PyQt6.QtCore import QPoint, Qt

    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=QPoint(x_b, 10))
    assert picked == [1] and strip.selected == 1


def test_settings_round_trip_and_refuse_bad_values(caplog):
    settings = AppSettings()
    assert settings.path == settings_path() and settings.target_speed == DEFAULT_SPEED
    settings.target_speed = Fraction(1, 8)
    settings.backend = "blend"
    settings.sync()
    again = AppSettings()
    assert (again.target_speed, again.backend) == (Fraction(1, 8), "blend")
    again._store.setValue("retime/speed", "3")
    with caplog.at_level(logging.WARNING):
        assert again.target_speed == DEFAULT_SPEED
    assert "not in (0, 1]" in caplog.text
