"""The preview app's fixes after the audit: EDL rates, starting an engine on request, renders that
wait for an engine or are retried, a timeline clip's speed kept to that clip, run-only options,
the output codec, truncated files, message colours, screenshots of stills, Out as the last frame
included, evidence lines counted."""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from gui_windows import offline_window

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PyQt6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl  # noqa: E402
from PyQt6.QtGui import QDropEvent  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from engine.server.process import stop_engine  # noqa: E402
from gui.engine_link import EngineLink  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402
from gui.settings import AppSettings  # noqa: E402
from gui.style import timecode  # noqa: E402
from tests.media_factory import render_clip, truncated_copy  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
WAIT_MS = 60_000
INTERRUPTED, WAITING = "interrupted", "waiting"  # gui.engine_link's job_finished states


def combo_index(combo, value) -> int:
    return next((i for i in range(combo.count()) if combo.itemData(i) == value), -1)


@pytest.fixture
def clip(shared_data) -> Path:
    return shared_data / "clips" / "hug-lego-movie.mp4"


@pytest.fixture
def window(qtbot, qapp):
    """The window with no engine (none runs for this test's isolated home; none is started)."""
    win = offline_window(qtbot, qapp)
    yield win
    win.close()


def _slow_edl(tmp_path: Path, shared_data: Path) -> Path:
    """A 30 fps EDL: the lego clip at M2 15.0 (1/2 at 30 fps, 62.5 % if read at 24), then bedroom."""
    clips = shared_data / "clips"
    text = f"""TITLE: Audit EDL
FCM: NON-DROP FRAME

001  HUG      V     C        00:00:01:00 00:00:02:00 01:00:00:00 01:00:02:00
M2   HUG            015.0                00:00:01:00
* FROM CLIP NAME: hug-lego-movie.mp4
* FROM FILE: {clips / "hug-lego-movie.mp4"}

002  BED      V     C        00:00:01:00 00:00:03:00 01:00:02:00 01:00:04:00
* FROM CLIP NAME: sam2-bedroom.mp4
* FROM FILE: {clips / "sam2-bedroom.mp4"}
"""
    path = tmp_path / "slow.edl"
    path.write_text(text)
    return path


# ---------------------------------------------------------------------- 1. EDL frame rate


def test_an_edl_opened_in_the_app_is_read_at_the_rate_asked_and_remembered(
    qtbot, window, shared_data, tmp_path
):
    edl = _slow_edl(tmp_path, shared_data)
    asked = []

    def provider(path, default):
        asked.append((path.name, default))
        return Fraction(30)

    window.edl_rate_provider = provider
    assert window.open_path(edl)
    assert asked == [("slow.edl", Fraction(24))]
    assert window.source.info.path.name == "hug-lego-movie.mp4"
    assert (window.in_frame, window.out_frame) == (30, 60)  # 00:00:01:00 at 30 fps, 1 s at 1/2
    assert window.target_speed == Fraction(1, 2)
    assert "EDL read at 30 fps" in window.inspector.timeline_label.text()
    assert window.inspector.timeline_label.isVisible()
    assert window.strip.rate_note == "EDL read at 30 fps"
    assert AppSettings().edl_rate == Fraction(30)

    # dropped on the window: asked again, the last rate offered first; cancelling opens nothing
    asked.clear()
    window.edl_rate_provider = lambda path, default: asked.append(default)
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(edl))])
    drop = QDropEvent(
        QPointF(20, 20),
        Qt.DropAction.CopyAction,
        data,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(drop)
    assert asked == [Fraction(30)]
    assert window.source.info.path.name == "hug-lego-movie.mp4"


def test_the_edl_rate_dialog_offers_the_editors_rates(qtbot, window, tmp_path):
    from gui.dialogs import EdlRateDialog, ask_edl_rate

    seen = []

    def pick_25():
        shown = [w for w in QApplication.topLevelWidgets() if isinstance(w, EdlRateDialog) and w.isVisible()]
        if not shown:
            QTimer.singleShot(20, pick_25)
            return
        dialog = shown[0]
        seen.append(dialog.rate_combo.currentData())  # the default given
        dialog.rate_combo.setCurrentIndex(combo_index(dialog.rate_combo, Fraction(25)))
        dialog.accept()

    dialog = EdlRateDialog(tmp_path / "x.edl", Fraction(30000, 1001))
    qtbot.addWidget(dialog)
    assert [dialog.rate_combo.itemText(i) for i in range(dialog.rate_combo.count())] == [
        "23.976 fps",
        "24 fps",
        "25 fps",
        "29.97 fps",
        "30 fps",
        "48 fps",
        "50 fps",
        "59.94 fps",
        "60 fps",
    ]
    QTimer.singleShot(0, pick_25)
    assert ask_edl_rate(window, tmp_path / "x.edl", Fraction(30000, 1001)) == Fraction(25)
    assert seen == [Fraction(30000, 1001)]


def test_gui_rate_option_is_checked_as_renders_is(tmp_path):
    from engine.errors import UnsupportedOptionError
    from gui.app import build_parser, check_arguments, edl_rate_of

    parser = build_parser()
    args = parser.parse_args(["--rate", "29.97", "reel.edl"])
    check_arguments(args)
    assert edl_rate_of(args) == Fraction(30000, 1001)
    assert edl_rate_of(parser.parse_args(["--screenshot", "x.png", "reel.edl"])) == Fraction(24)
    assert edl_rate_of(parser.parse_args(["reel.edl"])) is None  # the app asks
    with pytest.raises(UnsupportedOptionError, match="only needed for EDLs"):
        check_arguments(parser.parse_args(["--rate", "30", "cut.otio"]))
    with pytest.raises(UnsupportedOptionError, match="--rate needs an EDL"):
        check_arguments(parser.parse_args(["--rate", "30"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["--rate", "0", "reel.edl"])


# ---------------------------------------------------------------------- 2. and 5. engine, renders


def test_start_engine_starts_one_and_waiting_renders_then_run(qtbot, window, clip, tmp_path):
    """--no-start-engine only keeps the app from starting an engine on its own: Start engine does."""
    window.link.connect_engine()
    qtbot.waitUntil(lambda: window.engine_status == "disconnected", timeout=WAIT_MS)
    assert window.open_path(clip)
    window.set_target_speed(Fraction(1, 2))
    window.set_backend("blend")
    window.in_frame, window.out_frame = 10, 13
    job = window.queue_render(tmp_path)
    assert window.queue.entries[job].state == "waiting"
    assert window.queue.state_text(job) == "waiting for engine"
    assert "waits for one" in window.message_bar.text()
    try:
        window.engine_button.click()
        qtbot.waitUntil(lambda: window.engine_status == "connected", timeout=WAIT_MS)
        assert window.link.state.started_here
        qtbot.waitUntil(lambda: window.queue.entries[job].state == "done", timeout=WAIT_MS)
        assert window.queue.entries[job].outputs[0].exists()
        assert window.waiting_renders == []
    finally:
        window.close()
        stop_engine(force=True)


def test_a_render_the_engine_dropped_waits_or_offers_retry(qtbot, window, clip, tmp_path):
    assert window.open_path(clip)
    never_started = window.queue_render(tmp_path)
    was_running = window.queue_render(tmp_path)
    window.waiting_renders.clear()  # as if an engine had taken both
    window.queue.set_queued(never_started)
    window.queue.set_queued(was_running)
    window.queue.update_progress(was_running, 5, 20, "")
    stopped = "engine pid 1 stopped (shut down or died) before job x was seen to finish"
    window._job_finished(never_started, INTERRUPTED, stopped)
    window._job_finished(was_running, INTERRUPTED, stopped)

    assert window.queue.entries[never_started].state == "waiting"
    assert window.queue.state_text(never_started) == "waiting for engine"
    assert window.waiting_renders == [never_started]
    assert window.queue.entries[was_running].state == "failed"
    assert window.queue.state_text(was_running) == "engine stopped"
    tip = window.queue.state_bar(was_running).toolTip()
    assert tip == "The engine stopped while rendering; Retry renders it again."
    assert "same id" not in window.message_bar.text() and "Retry" in window.message_bar.text()
    assert window.queue.retry_button(was_running).isVisibleTo(window.queue)
    menu = window.queue.context_menu(was_running)
    assert [a.text() for a in menu.actions() if a.isEnabled() and not a.isSeparator()] == ["Retry"]

    window.queue.retry_button(was_running).click()  # no engine: it waits for one, same id
    assert window.queue.entries[was_running].state == "waiting"
    assert window.waiting_renders == [never_started, was_running]
    window._job_finished(never_started, WAITING, "no engine")
    assert window.waiting_renders == [never_started, was_running]


# ---------------------------------------------------------------------- 3. speeds and run options


def _two_clip_timeline(tmp_path: Path, shared_data: Path) -> Path:
    import opentimelineio as otio

    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for name, scalar in (("slow", 0.5), ("plain", 1.0)):
        clip = otio.schema.Clip(
            name=name,
            media_reference=otio.schema.ExternalReference(
                target_url=(shared_data / "clips" / "hug-lego-movie.mp4").as_uri()
            ),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(10, 30), otio.opentime.RationalTime(20, 30)
            ),
        )
        if scalar != 1.0:
            clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=scalar))
        track.append(clip)
    timeline = otio.schema.Timeline(name="cut")
    timeline.tracks.append(track)
    path = tmp_path / "cut.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


def test_a_timeline_clips_speed_stays_with_that_clip(qtbot, window, clip, shared_data, tmp_path):
    window.inspector.speed_combo.setCurrentIndex(combo_index(window.inspector.speed_combo, Fraction(1, 8)))
    assert window.target_speed == Fraction(1, 8) and AppSettings().target_speed == Fraction(1, 8)
    assert window.open_path(_two_clip_timeline(tmp_path, shared_data))
    assert window.target_speed == Fraction(1, 2)
    window.select_timeline_item(1)
    assert window.target_speed == 1  # 100 %: nothing to generate
    assert window.inspector.target_speed() == 1
    window.select_timeline_item(0)
    assert window.target_speed == Fraction(1, 2)
    window.close()
    assert AppSettings().target_speed == Fraction(1, 8)  # the timeline's speeds are not saved
    reopened = MainWindow(EngineLink(start_engine=False), AppSettings())
    qtbot.addWidget(reopened)
    assert reopened.open_path(clip)
    assert reopened.target_speed == Fraction(1, 8)


def test_command_line_options_are_not_saved(qapp):
    from gui.app import apply_run_options, build_parser

    settings = AppSettings()
    args = build_parser().parse_args(["--speed", "1/8", "--risk", "--wipe", "--model", "blend", "c.mp4"])
    apply_run_options(settings, args)
    assert (settings.target_speed, settings.show_risk, settings.compare_mode, settings.backend) == (
        Fraction(1, 8),
        True,
        "wipe",
        "blend",
    )
    settings.sync()
    saved = AppSettings()
    assert (saved.target_speed, saved.show_risk, saved.compare_mode, saved.backend) == (
        Fraction(1, 4),
        False,
        "side",
        "flow",
    )
    settings.show_risk = False  # the user's own choice later in the run is saved
    settings.sync()
    assert AppSettings().show_risk is False and settings.show_risk is False


# ---------------------------------------------------------------------- 4. output codec


def test_the_output_codec_follows_the_source_and_the_users_choice(qtbot, window, clip, tmp_path):
    from gui.output_names import codec_for_source

    assert codec_for_source("prores", 10) == "prores"
    assert codec_for_source("h264", 10) == "prores"
    assert codec_for_source("hevc", 8) == "h265"
    assert codec_for_source("mpeg4", 8) == "h264"
    prores = render_clip(
        tmp_path / "plate.mov", codec="prores_ks", pixel_format="yuv422p10le", frame_count=12, b_frames=0
    )
    out = tmp_path / "out"
    out.mkdir()
    assert window.open_path(prores)
    assert window.inspector.codec_combo.currentText() == "Like the source: ProRes 422 HQ (.mov, 10-bit)"
    job = window.queue_render(out)
    order = window.queue.entries[job].order
    assert order.output.suffix == ".mov" and order.request()["codec"] == "prores"
    assert window.open_path(clip)
    job = window.queue_render(out)
    assert window.queue.entries[job].order.output.suffix == ".mp4"
    window.inspector.codec_combo.setCurrentIndex(window.inspector.codec_combo.findData("ffv1"))
    job = window.queue_render(out)
    order = window.queue.entries[job].order
    assert order.output.name.endswith(".25pct.flow.mkv") and order.request()["codec"] == "ffv1"
    assert AppSettings().codec == "ffv1"


# ---------------------------------------------------------------------- 6., 7. messages


def test_a_truncated_file_is_opened_with_a_warning(qtbot, window, tmp_path):
    whole = render_clip(tmp_path / "whole.mp4", frame_count=60, faststart=True)
    cut = truncated_copy(whole, tmp_path / "cut.mp4", 0.5)
    assert window.open_path(cut)
    frames = window.source.info.frame_count
    assert 0 < frames < 60
    text = window.message_bar.text()
    assert "cut.mp4 looks truncated" in text and f"frames 0 to {frames - 1} only" in text
    assert window.message_bar.level == "warning"


def test_the_message_bar_is_coloured_by_level(qtbot, window):
    panel = window.palette().window().color()
    shown = {}
    for level in ("error", "warning", "info"):
        window.show_message(f"a {level}", level)
        qtbot.wait(20)
        image = window.grab().toImage()  # as the window draws it (the bar alone paints otherwise)
        point = window.message_bar.mapTo(window, QPoint(4, window.message_bar.height() // 2))
        shown[level] = image.pixelColor(point)
    error, warning, info = shown["error"], shown["warning"], shown["info"]
    assert error.red() > 1.5 * error.green() and error.red() > 1.5 * error.blue(), error.name()
    assert warning.red() > warning.green() > 1.5 * warning.blue(), warning.name()  # amber
    assert max(abs(info.red() - info.green()), abs(info.green() - info.blue())) < 16, info.name()
    assert len({error.name(), warning.name(), info.name(), panel.name()}) == 4

    from gui.style import message_colours

    for level in shown:
        background, text = message_colours(level)
        assert shown[level].name() == background.name()
        assert _contrast(background, text) >= 7, level


def _contrast(a, b) -> float:
    def luminance(colour) -> float:
        def channel(value: float) -> float:
            return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

        return (
            0.2126 * channel(colour.redF())
            + 0.7152 * channel(colour.greenF())
            + 0.0722 * channel(colour.blueF())
        )

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


# ---------------------------------------------------------------------- 8. screenshot of a still


def test_a_screenshot_of_a_still_image_is_taken_once_shown(tmp_path, shared_data):
    from engine.server.process import start_engine

    still = render_clip(tmp_path / "clip.mp4", frame_count=1)
    connection, started = start_engine(timeout_s=30)
    try:
        out = tmp_path / "shot.png"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "engine.cli",
                "gui",
                "--screenshot",
                str(out),
                "--timeout-s",
                "30",
                "--size",
                "800x500",
                str(still),
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        )
    finally:
        stop_engine(force=True)
    assert result.returncode == 0, result.stderr
    assert out.exists()


# ---------------------------------------------------------------------- 9., 10. text


def test_out_shows_the_last_frame_included(qtbot, window, clip, tmp_path):
    assert window.open_path(clip)
    window.seek(Fraction(40))
    window.mark_in()
    window.seek(Fraction(80))
    window.mark_out()
    rate = window.source.info.rate
    assert window.inspector.range_label.text().startswith(f"{timecode(40, rate)} – {timecode(80, rate)}")
    job = window.queue_render(tmp_path)
    name = window.queue.table.cellWidget(0, 0)
    assert "source frames 40 to 80" in name.toolTip()
    assert window.queue.entries[job].order.out_frame == 81  # the engine's out_frame stays exclusive


def test_evidence_beyond_six_lines_is_counted_and_in_the_tooltip(qapp):
    from gui.inspector import Inspector
    from gui.results import SpeedAnalysis

    inspector = Inspector()
    lines = [f"finding {n}" for n in range(9)]
    inspector.set_analysis(SpeedAnalysis(Fraction(1), None, "realtime", 0.9, evidence=lines))
    text = inspector.evidence_label.text()
    assert "finding 5" in text and "finding 6" not in text and "… 3 more" in text
    assert all(line in inspector.evidence_label.toolTip() for line in lines)


def test_a_long_ramp_summary_never_widens_the_window(qtbot, window, clip):
    win = window
    assert win.open_path(clip)
    narrowest = win.minimumSizeHint().width()
    for index, speed in enumerate([Fraction(1), Fraction(1, 4), Fraction(1, 2), Fraction(1, 8)] * 4):
        win.add_ramp_keyframe(Fraction(5 + 8 * index), speed)
    assert win.ramp_summary_label.full_text.startswith("RAMP 100% → 25% → 50% → 12.5%")
    assert win.minimumSizeHint().width() <= narrowest
    win.resize(1024, 640)
    qtbot.wait(50)
    assert win.width() == 1024
    shown = win.ramp_summary_label.text()
    assert shown.endswith("…") and win.ramp_summary_label.toolTip() == win.ramp_summary_label.full_text


def test_the_inspector_names_the_speed_model_and_where_it_ran():
    from gui.results import parse_speed_result

    analysis = parse_speed_result({
        "speed": 1.0, "capture_fps": 24.0, "class": "realtime", "confidence": 0.8, "segments": [],
        "evidence": {"decided_by": "learned", "model_provider": "CPUExecutionProvider", "items": []},
    })
    assert analysis.model == "learned on CPU"
