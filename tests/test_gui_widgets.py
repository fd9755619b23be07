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
from engine.media import FrameReader  # noqa: E402
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
        assert analysis.speed == Fraction(1, 8) and analysis.model == "metadata on CPU"
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
    from av.video.reformatter import Interpolation

    from engine.media.reader import EXACT_LEVEL_FLAGS

    exact = int(Interpolation.BILINEAR) | EXACT_LEVEL_FLAGS  # the reader's exact 8-bit conversion
    source = open_frame_source(sample_clip)
    try:
        assert (source.info.frame_count, source.info.rate) == (166, 30)
        with av.open(str(sample_clip)) as container:
            decoded = []
            for decoded_frame in container.decode(video=0):
                decoded.append(decoded_frame.reformat(format="rgb24", interpolation=exact).to_ndarray())
                if len(decoded) == 40:
                    break
        for index in (39, 3, 4, 20, 0):
            assert np.array_equal(source.frame(index), decoded[index])
        assert not source.frame(4).flags.writeable
    finally:
        source.close()


def test_a_stalled_recording_is_shown_on_the_grid_retime_renders(tmp_path, qtbot):
    """Frames for 10/30 to 29/30 s missing: the app counts 60 frames at 30 fps, as `retime`
    does, and shows at frame 35 the frame recorded at 35/30 s (file frame 15), not file frame 35;
    inside the stall it shows the nearer recorded frame."""
    from media_factory import render_clip

    stamps = list(range(10)) + list(range(30, 60))
    clip = render_clip(tmp_path / "stall.mp4", rate=Fraction(30), pts=stamps, time_base=Fraction(1, 30))
    source = open_frame_source(clip)
    try:
        assert (source.info.frame_count, source.info.rate, source.info.is_vfr) == (60, 30, True)
        from gui.inspector import Inspector

        inspector = Inspector()
        qtbot.addWidget(inspector)
        inspector.set_clip(source.info)
        assert inspector.format_label.text() == "64×48 · 30 fps · variable, read by its timestamps"
        assert inspector.length_label.text().startswith("60 frames")
        with FrameReader(clip) as reader:
            recorded = [frame.image for frame in reader]
        assert np.array_equal(source.frame(35), recorded[15])
        assert np.array_equal(source.frame(12), recorded[9])
        assert np.array_equal(source.frame(25), recorded[10])
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
    # a click asks for the clip; the window selects it once its media is shown
    assert picked == [1] and strip.selected == -1
    strip.set_selected(1)
    assert strip.selected == 1


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


def test_output_names_carry_the_range_and_stay_unique_and_short(tmp_path):
    from gui.output_names import MAX_NAME_BYTES, range_part, speed_part, unique_output_path

    assert range_part(10, 40, 166) == "f10-39" and range_part(0, 166, 166) == ""
    assert [speed_part(s) for s in (Fraction(1, 4), Fraction(1, 8), Fraction(1, 16), Fraction(1, 3))] == [
        "25pct",
        "12_5pct",
        "6_25pct",
        "33_33pct",
    ]
    assert speed_part(None) == "ramp"
    parts = ["f10-40", "25pct", "flow"]
    first = unique_output_path(tmp_path, "hug-lego-movie", parts)
    assert first.name == "hug-lego-movie.f10-40.25pct.flow.mp4"
    # a queued render has no file yet: its name is taken all the same
    assert unique_output_path(tmp_path, "hug-lego-movie", parts, [first]).name.endswith("flow-2.mp4")
    first.write_bytes(b"")
    assert unique_output_path(tmp_path, "hug-lego-movie", parts).name.endswith("flow-2.mp4")
    # a long stem (in UTF-8, several bytes a character) is shortened; the parts stay whole
    long_stem = "Übergang_東京_" * 40
    name = unique_output_path(tmp_path, long_stem, parts, [tmp_path / "x"]).name
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES and name.endswith("~.f10-40.25pct.flow.mp4")
    assert name.startswith("Übergang_東京_")


def test_evidence_keeps_ntsc_frame_rates():
    items = [
        {"stage": "metadata", "finding": "stream playback rate fps", "value": 30000 / 1001},
        {"stage": "metadata", "finding": "stream playback rate fps", "value": 24000 / 1001},
        {"stage": "metadata", "finding": "stream playback rate fps", "value": 60000 / 1001},
        {"stage": "learned", "finding": "median log2 speed over 3 probes", "value": 0.05574905872344971},
    ]
    analysis = parse_speed_result({**RESULT, "evidence": items})
    assert [line.rsplit(" ", 1)[-1] for line in analysis.evidence] == [
        "(29.97)",
        "(23.976)",
        "(59.94)",
        "(0.0557)",
    ]
    assert style.rate_text(Fraction(24000, 1001)) == "23.976 fps" and style.rate_text(240) == "240 fps"


@pytest.mark.parametrize("rate", [Fraction(30000, 1001), Fraction(24000, 1001), Fraction(25)])
@pytest.mark.parametrize("width", [700, 1280, 2400])
def test_ruler_labels_whole_seconds_without_overlap_or_cut_labels(qtbot, rate, width):
    from PyQt6.QtGui import QFontMetricsF

    strip = TimelineStrip()
    qtbot.addWidget(strip)
    strip.resize(width, strip.height())
    strip.set_clip(300, rate)
    metrics = QFontMetricsF(strip.ruler_font())
    ticks = strip.ruler_ticks()
    labelled = [(x, label) for _frame, x, label in ticks if label]
    assert len(labelled) >= 3
    step = ticks[1][0] - ticks[0][0]
    if step >= round(rate):  # whole seconds: the labels read :00, as timecode counts them
        assert step % round(rate) == 0 and all(label.endswith(":00") for _x, label in labelled)
    for (x, label), (next_x, _next) in zip(labelled, labelled[1:], strict=False):
        assert x + 3 + metrics.horizontalAdvance(label) < next_x, "ruler labels overlap"
    assert all(x + 3 + metrics.horizontalAdvance(label) <= width for x, label in labelled)


def test_unknown_saved_model_falls_back_to_the_default_with_a_warning(qtbot, caplog):
    from gui.inspector import Inspector
    from gui.settings import DEFAULT_BACKEND, choose_backend

    served = ["blend", "flow", "nearest", "rife"]
    with caplog.at_level(logging.WARNING):
        assert choose_backend("rife-old", served) == DEFAULT_BACKEND == "flow"
    assert "'rife-old' is not one this engine serves" in caplog.text
    assert choose_backend("rife", served) == "rife" and choose_backend("x", ["blend"]) == "blend"
    inspector = Inspector()
    qtbot.addWidget(inspector)
    picked = []
    inspector.backend_changed.connect(picked.append)
    inspector.set_backends(served, choose_backend("rife-old", served))
    assert inspector.backend() == "flow" and picked == ["flow"]


def test_target_speed_list_reads_every_speed():
    from gui.inspector import speed_choice_text

    assert speed_choice_text(Fraction(1, 4)) == "25%  (4x slower)"
    assert speed_choice_text(Fraction(1, 16)) == "6.25%  (16x slower)"
    assert speed_choice_text(Fraction(1, 3)) == "33.33%  (3x slower)"
    assert speed_choice_text(Fraction(2, 5)) == "40%  (2.5x slower)"
    assert style.frames_text(1) == "1 frame" and style.frames_text(2) == "2 frames"


def test_message_text_breaks_long_paths():
    from gui.main_window import ZERO_WIDTH_SPACE, breakable_text

    text = "Cannot open missing_reel_" + "B" * 180 + ".mp4: not found"
    shown = breakable_text(text)
    assert shown.replace(ZERO_WIDTH_SPACE, "") == text
    assert max(len(word) for word in shown.replace(ZERO_WIDTH_SPACE, " ").split()) <= 24
    assert breakable_text("a short message") == "a short message"
