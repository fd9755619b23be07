"""The preview app's fixes after the second audit: the default output folder made on a fresh
install, output names a live render or an engine job holds, retimed frame numbers counted from In
as the render counts them, stepping to a render's frames to check, an interrupted analysis told in
the app's terms, image sequences with a missing frame, the window title of a sequence, keys for a
focused list, and the layout at small window sizes."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import pytest
from gui_windows import connected_window, offline_window

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PyQt6.QtCore import Qt  # noqa: E402

from engine.places import places  # noqa: E402
from engine.server.process import start_engine, stop_engine  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402
from gui.settings import AppSettings  # noqa: E402
from tests.media_factory import render_clip  # noqa: E402

WAIT_MS = 60_000  # returns as soon as the condition holds; long only for a loaded machine
RENDER_MS = 120_000
SHOTS = os.environ.get("CHRONOSCOPE_TEST_SHOTS")  # a folder to keep the screenshots in


@pytest.fixture
def engine():
    """A real engine process for this test's isolated CHRONOSCOPE_HOME; stopped afterwards."""
    connection, started = start_engine(timeout_s=30)
    assert started
    yield connection
    stop_engine(force=True)


def _engine_window(qtbot, qapp) -> MainWindow:
    return connected_window(qtbot, qapp, wait_ms=WAIT_MS)


@pytest.fixture
def window(qtbot, qapp, engine):
    win = _engine_window(qtbot, qapp)
    yield win
    win.close()


@pytest.fixture
def offline(qtbot, qapp):
    """The window with no engine (none runs for this test's isolated home; none is started)."""
    win = offline_window(qtbot, qapp)
    yield win
    win.close()


@pytest.fixture
def small_clip(tmp_path) -> Path:
    """24 frames of 64x48 at 25 fps."""
    folder = tmp_path / "media"
    folder.mkdir()
    return render_clip(folder / "small.mp4", frame_count=24)


def _shot(widget, name: str, tmp_path: Path) -> Path:
    folder = Path(SHOTS) if SHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    assert widget.grab().save(str(path))
    return path


def _finished(qtbot, window, job_id: str, timeout: int = RENDER_MS):
    entries = window.queue.entries
    qtbot.waitUntil(
        lambda: entries[job_id].state in ("done", "failed", "cancelled", "unavailable"), timeout=timeout
    )
    return entries[job_id]


# ---------------------------------------------------------------------- 1. the default output folder


def test_the_first_render_of_a_fresh_install_makes_the_default_folder(qtbot, window, small_clip):
    default = places().data_dir / "renders"
    assert window.settings.render_folder is None and not default.exists()
    assert window.open_path(small_clip)
    window.set_target_speed(Fraction(1, 2))
    window.in_frame, window.out_frame = 4, 8
    job = window.queue_render()
    entry = _finished(qtbot, window, job)
    assert entry.state == "done", entry.message
    assert entry.outputs[0].parent == default and entry.outputs[0].is_file()
    assert window.message_bar.text() == ""


def test_a_chosen_output_folder_that_is_gone_or_a_file_is_refused_in_the_apps_terms(
    qtbot, offline, small_clip, tmp_path
):
    assert offline.open_path(small_clip)
    gone = tmp_path / "renders-on-a-drive-not-connected"
    offline.settings.render_folder = gone
    assert offline.queue_render() is None
    message = offline.message_bar.text()
    assert str(gone) in message and "does not exist" in message and "Render ▸ Output folder" in message
    assert not gone.exists() and offline.queue.entries == {}
    a_file = tmp_path / "renders.txt"
    a_file.write_text("not a folder")
    offline.settings.render_folder = a_file
    assert offline.queue_render() is None
    assert "is a file, not a folder" in offline.message_bar.text()
    assert offline.queue.entries == {}


# ---------------------------------------------------------------------- 2. output names taken


def test_a_reopened_session_leaves_the_name_of_a_render_still_running_alone(
    qtbot, qapp, engine, shared_data, tmp_path
):
    from engine.server.client import EngineClient

    clip = shared_data / "clips" / "hug-lego-movie.mp4"
    first = _engine_window(qtbot, qapp)
    first.settings.render_folder = tmp_path
    first.set_target_speed(Fraction(1, 4))
    assert first.open_path(clip)
    running = first.queue_render()  # the whole clip at 1/4: minutes on a CPU
    output = first.queue.entries[running].order.output
    qtbot.waitUntil(lambda: first.queue.entries[running].started, timeout=WAIT_MS)
    first.close()  # the render goes on in the engine
    second = _engine_window(qtbot, qapp)
    try:
        assert second.settings.render_folder == tmp_path and second.open_path(clip)
        assert not output.exists()
        assert second._output_path(tmp_path) == output.with_name("hug-lego-movie.25pct.flow-2.mp4")
        assert str(output) in second.link.state.job_outputs  # the engine names its jobs' outputs
        assert output in second._taken_outputs()
        # without the engine's word, the live writer's lock alone keeps the name
        second.link.state.job_outputs = ()
        assert second._output_path(tmp_path).name == "hug-lego-movie.25pct.flow-2.mp4"
    finally:
        with EngineClient(engine) as client:
            client.cancel(running)
        second.close()


def test_a_render_whose_output_appeared_before_it_began_goes_to_the_next_free_name(
    qtbot, offline, small_clip, tmp_path
):
    assert offline.open_path(small_clip)
    offline.set_target_speed(Fraction(1, 2))
    job = offline.queue_render(tmp_path)
    entry = offline.queue.entries[job]
    taken = entry.order.output
    assert entry.state == "waiting" and taken.name == "small.50pct.flow.mp4"
    taken.write_bytes(b"another program's file")  # appears before any engine takes the render
    offline.link.start_engine()
    try:
        entry = _finished(qtbot, offline, job)
        assert entry.state == "done", entry.message
        assert entry.order.output.name == "small.50pct.flow-2.mp4" and entry.outputs[0].is_file()
        assert taken.read_bytes() == b"another program's file"
        assert offline.queue.table.cellWidget(0, 0).full_text == "small.50pct.flow-2.mp4"
        assert "small.50pct.flow-2.mp4" in offline.queue.table.cellWidget(0, 0).toolTip()
        assert offline.message_bar.text() == ""
    finally:
        stop_engine(force=True)


def test_retry_of_a_render_whose_output_is_taken_now_goes_to_the_next_free_name(
    qtbot, offline, small_clip, tmp_path
):
    assert offline.open_path(small_clip)
    offline.set_target_speed(Fraction(1, 2))
    job = offline.queue_render(tmp_path)
    offline.cancel_render(job)
    entry = offline.queue.entries[job]
    assert entry.state == "cancelled"
    entry.order.output.write_bytes(b"another program's file")
    offline.link.start_engine()
    try:
        qtbot.waitUntil(lambda: offline.engine_status == "connected", timeout=WAIT_MS)
        offline.retry_render(job)
        entry = _finished(qtbot, offline, job)
        assert entry.state == "done", entry.message
        assert entry.order.output.name == "small.50pct.flow-2.mp4"
    finally:
        stop_engine(force=True)


# ---------------------------------------------------------------------- 3. retimed frames counted from In


def test_the_retimed_frame_number_is_the_renders_counted_from_in(qtbot, window, small_clip, tmp_path):
    import numpy as np

    from engine.media import FrameReader

    assert window.open_path(small_clip)
    window.set_target_speed(Fraction(2, 5))  # a timeline clip's 40 %: positions not on a 1/k grid
    window.in_frame, window.out_frame = 6, 12
    window._marks_edited()
    assert "(6 → 15 frames)" in window.inspector.range_label.text()
    job = window.queue_render(tmp_path)
    entry = _finished(qtbot, window, job)
    assert entry.state == "done", entry.message
    with FrameReader(entry.outputs[0]) as reader:
        rendered = [frame.image.astype(int) for frame in reader]
    assert len(rendered) == 15
    # the render's frame 5 is source frame 8 (6 + 5 x 2/5): the app shows it as retimed frame 5
    window.seek(Fraction(8))
    assert window.position == 8 and window.frame_label.text().endswith("retimed frame 5")
    differences = [np.abs(rendered[5] - window.source.frame(n).astype(int)).mean() for n in (7, 8, 9)]
    assert differences[1] < min(differences[0], differences[2])
    # one step on is the render's frame 6, at 8 + 2/5 (a frame the render makes)
    window.step(1)
    assert window.position == Fraction(42, 5) and window.frame_label.text().endswith("retimed frame 6")
    window.seek(Fraction(2))
    assert window.frame_label.text().endswith("not rendered (before In)")
    window.seek(Fraction(20))
    assert window.frame_label.text().endswith("not rendered (after Out)")


# ---------------------------------------------------------------------- 4. frames to check


def test_the_frames_to_check_of_a_render_are_listed_and_stepped_to(qtbot, window, small_clip, tmp_path):
    from engine.interp.checks import frame_runs, runs_text
    from engine.retime import read_sidecar

    assert window.open_path(small_clip)
    window.set_target_speed(Fraction(1, 4))
    window.in_frame, window.out_frame = 4, 10
    window._marks_edited()
    job = window.queue_render(tmp_path)
    entry = _finished(qtbot, window, job)
    assert entry.state == "done", entry.message
    listed = read_sidecar(entry.outputs[0]).frames_to_check
    assert listed and entry.frames_to_check == listed  # the flow model doubts this synthetic motion
    tip = window.queue.state_bar(job).toolTip()
    assert f"frames to check: {runs_text(frame_runs(listed))}" in tip
    menu = window.queue.context_menu(job)
    actions = {action.text(): action for action in menu.actions()}
    assert actions["Next frame to check"].isEnabled() and actions["Previous frame to check"].isEnabled()
    # the editor moved on: another speed and marks; stepping brings the render's back
    window.set_target_speed(Fraction(1, 2))
    window.clear_marks()
    window.seek(Fraction(0))
    actions["Next frame to check"].trigger()
    assert window.target_speed == Fraction(1, 4) and window._render_range() == (4, 10)
    assert window.position == 4 + Fraction(listed[0], 4)
    assert window.frame_label.text().endswith(f"retimed frame {listed[0]}")
    window.queue.table.clearSelection()
    qtbot.keyClick(window, Qt.Key.Key_C)  # the last render of this clip that lists frames to check
    assert window.frame_label.text().endswith(f"retimed frame {listed[1]}")
    qtbot.keyClick(window, Qt.Key.Key_C, Qt.KeyboardModifier.ShiftModifier)
    assert window.frame_label.text().endswith(f"retimed frame {listed[0]}")
    qtbot.keyClick(window, Qt.Key.Key_C, Qt.KeyboardModifier.ShiftModifier)  # round to the last one
    assert window.frame_label.text().endswith(f"retimed frame {listed[-1]}")
    _shot(window.queue, "frames_to_check_queue.png", tmp_path)


# ---------------------------------------------------------------------- 5. an engine stopped mid-analysis


def test_an_engine_stopped_during_the_analysis_is_told_in_the_apps_terms(qtbot, window, engine, shared_data):
    from engine.server.client import EngineClient
    from gui.main_window import ANALYSING_TEXT

    clip = shared_data / "clips" / "sam2-dog.mp4"
    assert window.open_path(clip)
    with EngineClient(engine) as client:
        qtbot.waitUntil(
            lambda: any(job["kind"] == "detect_speed" for job in client.info()["jobs"]["active"]),
            timeout=WAIT_MS,
        )
    stop_engine()  # as `chronoscope engine stop` does
    key = str(window.source.info.path)
    message = "The engine stopped during the speed analysis; it runs again when the engine is back."
    qtbot.waitUntil(lambda: window.analysis_messages.get(key) == message, timeout=WAIT_MS)
    assert window.inspector.analysis_status.text() == message
    assert window.strip.clip_label == "analysis waits for the engine" and not window.analysis_settled()
    qtbot.waitUntil(lambda: window.engine_status == "lost", timeout=WAIT_MS)
    assert window.message_bar.text().startswith("The engine was stopped. Use Engine ▸ Start engine")
    assert window.engine_label.text() == "Engine stopped"
    shown = " ".join([window.message_bar.text(), window.inspector.analysis_status.text()])
    assert "job" not in shown and "resume" not in shown
    window.link.start_engine()
    qtbot.waitUntil(lambda: window.engine_status == "connected", timeout=WAIT_MS)
    assert window.analysis_messages.get(key) == ANALYSING_TEXT  # it runs again


# ---------------------------------------------------------------------- 6, 7. a sequence with a missing frame


def _sequence_with_a_hole(folder: Path, missing: int = 1012) -> list[Path]:
    """A001.1001.png .. A001.1024.png (frame_pattern pictures, 64x48), without ``missing``."""
    from PyQt6.QtGui import QImage

    from tests.media_factory import frame_pattern

    folder.mkdir(parents=True)
    paths = []
    for index in range(24):
        number = 1001 + index
        if number == missing:
            continue
        picture = frame_pattern(index)
        image = QImage(picture.tobytes(), 64, 48, 64 * 3, QImage.Format.Format_RGB888)
        path = folder / f"A001.{number}.png"
        assert image.save(str(path), "PNG")
        paths.append(path)
    return paths


def test_a_sequence_with_a_missing_frame_opens_and_renders_on_either_side(qtbot, window, tmp_path):
    import numpy as np

    from engine.media import FrameReader
    from tests.media_factory import frame_pattern

    frames = _sequence_with_a_hole(tmp_path / "plates")
    window.sequence_rate_provider = lambda path, sequence, default: Fraction(24)
    assert window.open_path(frames[3])
    info = window.source.info
    assert info.frame_count == 24 and info.missing_frames == (11,)
    assert info.missing_names == ("A001.1012.png",)
    warning = window.message_bar.text()
    assert window.message_bar.level == "warning"
    assert "A001.####.png lacks A001.1012.png (frame 11)" in warning and "chronoscope repair" in warning
    assert window.windowTitle() == "A001.####.png — Chronoscope"  # not the description's file name
    # frames after the hole are shown where they belong
    assert np.array_equal(window.source.frame(15), frame_pattern(15))
    assert np.array_equal(window.source.frame(10), frame_pattern(10))
    window.set_target_speed(Fraction(1, 2))
    with qtbot.waitSignal(window.link.preview_failed, timeout=WAIT_MS):
        window.seek(Fraction(11))  # the missing frame itself
    assert window.viewer.original is None
    assert window.viewer.placeholder == "Frame 11 (A001.1012.png) is missing from A001.####.png."
    _shot(window, "sequence_missing_frame.png", tmp_path)
    with qtbot.waitSignal(window.link.preview_failed, timeout=WAIT_MS):
        window.seek(Fraction(21, 2))  # between frame 10 and the missing one: nothing to make it from
    assert window.viewer.original is not None and window.viewer.original_label == "ORIGINAL · frame 10"
    assert window.viewer.generated_label == "RETIMED · none: frame 11 (A001.1012.png) is missing"
    assert "Preview failed" not in window.message_bar.text()
    _shot(window, "sequence_before_missing_frame.png", tmp_path)
    with qtbot.waitSignal(window.preview_shown, timeout=WAIT_MS):
        window.seek(Fraction(31, 2))
    assert window.viewer.original is not None and window.viewer.original_label == "ORIGINAL · frame 15"
    # the whole sequence crosses the hole: refused, saying what to do
    assert window.queue_render(tmp_path / "out") is None
    refused = window.message_bar.text()
    assert "crosses the missing A001.1012.png" in refused and "chronoscope repair" in refused
    assert window.queue.entries == {}
    # after the hole: rendered from the frames it names
    window.in_frame, window.out_frame = 14, 20
    window._marks_edited()
    (tmp_path / "out").mkdir()
    job = window.queue_render(tmp_path / "out")
    entry = _finished(qtbot, window, job)
    assert entry.state == "done", entry.message
    assert entry.order.output.name == "A001.f14-19.50pct.flow.mp4"
    with FrameReader(entry.outputs[0]) as reader:
        rendered = [frame.image.astype(int) for frame in reader]
    assert len(rendered) == 12
    differences = [np.abs(rendered[2] - frame_pattern(n).astype(int)).mean() for n in (14, 15, 16)]
    assert differences[1] < min(differences[0], differences[2])  # output frame 2 is source frame 15
    # before it too
    window.in_frame, window.out_frame = 2, 11
    window._marks_edited()
    job = window.queue_render(tmp_path / "out")
    assert _finished(qtbot, window, job).state == "done"
    qtbot.waitUntil(window.analysis_settled, timeout=WAIT_MS)


def test_the_window_title_names_an_image_sequence_as_editors_write_it(qtbot, offline, tmp_path):
    frames = _sequence_with_a_hole(tmp_path / "plates", missing=0)  # no hole
    offline.sequence_rate_provider = lambda path, sequence, default: Fraction(25)
    assert offline.open_path(frames[0])
    assert offline.windowTitle() == "A001.####.png — Chronoscope"
    assert offline.message_bar.text() == ""


# ---------------------------------------------------------------------- 8. keys for a focused list


def test_a_focused_list_takes_its_keys_and_the_window_keeps_its_shortcuts_elsewhere(
    qtbot, offline, small_clip
):
    assert offline.open_path(small_clip)
    offline.set_target_speed(Fraction(1, 2))
    offline.seek(Fraction(10))
    offline.activateWindow()
    combo = offline.inspector.speed_combo
    combo.setFocus()
    qtbot.waitUntil(combo.hasFocus, timeout=WAIT_MS)
    start = combo.currentIndex()
    qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentIndex() == start + 1 and offline.target_speed == combo.currentData()
    qtbot.keyClick(combo, Qt.Key.Key_Up)
    assert combo.currentIndex() == start and offline.target_speed == Fraction(1, 2)
    for key in (Qt.Key.Key_Right, Qt.Key.Key_Left, Qt.Key.Key_L, Qt.Key.Key_I, Qt.Key.Key_W):
        qtbot.keyClick(combo, key)
    assert offline.position == 10 and offline.shuttle == 0 and offline.in_frame is None
    assert offline.viewer.compare_mode == "side"
    codec = offline.inspector.codec_combo
    codec.setFocus()
    qtbot.waitUntil(codec.hasFocus, timeout=WAIT_MS)
    qtbot.keyClick(codec, Qt.Key.Key_F)  # typing picks the entry starting with it: FFV1
    assert offline.codec_choice == "ffv1"
    # elsewhere the single keys are the transport's again
    offline.viewer.setFocus()
    qtbot.waitUntil(offline.viewer.hasFocus, timeout=WAIT_MS)
    qtbot.keyClick(offline.viewer, Qt.Key.Key_Right)
    assert offline.position == Fraction(21, 2)
    qtbot.keyClick(offline.viewer, Qt.Key.Key_I)
    assert offline.in_frame == 10
    # keys with Ctrl or Alt stay the window's in a focused list too
    combo.setFocus()
    qtbot.waitUntil(combo.hasFocus, timeout=WAIT_MS)
    qtbot.keyClick(combo, Qt.Key.Key_X, Qt.KeyboardModifier.AltModifier)
    assert offline.in_frame is None


# ---------------------------------------------------------------------- 9. layout at small sizes


def _wholly_shown(widget, window) -> bool:
    """Whether all of ``widget`` is on screen in ``window``: visible, not clipped by a scroll area."""
    from PyQt6.QtCore import QRect

    inside = QRect(widget.mapTo(window, widget.rect().topLeft()), widget.size())
    return (
        widget.isVisible()
        and widget.visibleRegion().boundingRect() == widget.rect()
        and window.rect().contains(inside)
    )


def test_queue_render_and_the_key_hint_stay_whole_at_small_sizes(qtbot, window, shared_data, tmp_path):
    assert window.open_path(shared_data / "clips" / "hug-lego-movie.mp4")  # a long analysis
    qtbot.waitUntil(lambda: window._clip_key() in window.analyses, timeout=RENDER_MS)
    button, hint = window.inspector.render_button, window.key_hint
    smallest = (window.minimumSizeHint().width(), window.minimumSizeHint().height())
    for size in ((1024, 640), (1280, 800), smallest):
        window.resize(*size)
        qtbot.wait(100)
        assert window.inspector_scroll.verticalScrollBar().maximum() > 0 or size == (1280, 800)
        assert _wholly_shown(button, window), size
        shown = hint.text()
        assert shown == hint.full_text or shown.endswith("…"), (size, shown)
        assert hint.fontMetrics().horizontalAdvance(shown) <= hint.contentsRect().width()
        _shot(window, f"layout-{size[0]}x{size[1]}.png", tmp_path)
    window.resize(1024, 640)
    qtbot.wait(100)
    long = "Render finished: " + str(tmp_path / ("a-long-folder-name-" * 8) / "hug-lego-movie.25pct.flow.mp4")
    window.statusBar().showMessage(long, 8000)
    shown = window.statusBar().currentMessage()
    assert shown.endswith("…") and window.status_bar.full_message() == long
    assert window.statusBar().fontMetrics().horizontalAdvance(shown) <= window.status_bar.message_room()
    assert window.statusBar().toolTip() == long
    _shot(window, "layout-1024x640-long-status.png", tmp_path)


# ---------------------------------------------------------------------- 10. outputs and open errors


def test_an_output_folder_that_is_a_file_is_named_as_one_by_the_engine(engine, small_clip, tmp_path):
    from engine.errors import UnsupportedOptionError
    from engine.server.client import EngineClient

    a_file = tmp_path / "renders"
    a_file.write_text("not a folder")
    request = {"source": str(small_clip), "output": str(a_file / "x.mp4"), "speed": "1/2", "model": "flow"}
    with EngineClient(engine) as client, pytest.raises(UnsupportedOptionError) as refused:
        client.submit("retime", request)
    assert f"{a_file} is a file, not a folder" in str(refused.value)
    assert "does not exist" not in str(refused.value)


def test_an_open_error_names_the_file_once_and_the_output_folder_can_go_back_to_the_default(
    qtbot, offline, small_clip, tmp_path
):
    damaged = tmp_path / "cut-off.mp4"  # the index (moov) is at the end: cut off with it
    damaged.write_bytes(small_clip.read_bytes()[: small_clip.stat().st_size // 2])
    assert not offline.open_path(damaged)
    message = offline.message_bar.text()
    assert message.startswith("Cannot open cut-off.mp4: ") and str(damaged) not in message, message
    assert offline.open_path(small_clip)
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    offline.settings.render_folder = chosen
    offline._show_output_folder()
    assert offline.default_folder_action.isEnabled() and str(chosen) in offline.output_folder_action.toolTip()
    job = offline.queue_render()
    assert f"in {chosen}" in offline.queue.table.cellWidget(0, 0).toolTip()  # the row names its folder
    offline.cancel_render(job)
    offline.default_folder_action.trigger()
    assert offline.settings.render_folder is None and AppSettings().render_folder is None
    assert offline.output_folder() == places().data_dir / "renders"
    assert not offline.default_folder_action.isEnabled()
    assert "(the default)" in offline.output_folder_action.toolTip()


# ---------------------------------------------------------------------- 11. settings that fall back, stills


def test_invalid_view_settings_fall_back_with_a_warning(qapp, caplog):
    import logging

    settings = AppSettings()
    settings._store.setValue("view/compare", "diagonal")
    settings._store.setValue("view/risk", "banana")
    settings.sync()
    with caplog.at_level(logging.WARNING, logger="gui.settings"):
        read = AppSettings()
        assert read.compare_mode == "side" and read.show_risk is False
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("compare mode 'diagonal'" in text for text in warnings), warnings
    assert any("risk overlay 'banana'" in text for text in warnings), warnings
    read.show_risk = True
    read.compare_mode = "wipe"
    caplog.clear()
    assert AppSettings().show_risk is True and AppSettings().compare_mode == "wipe"
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_a_still_image_shows_no_rate_and_cannot_be_queued(qtbot, offline, tmp_path):
    from PyQt6.QtGui import QImage

    path = tmp_path / "poster.png"
    image = QImage(64, 48, QImage.Format.Format_RGB888)
    image.fill(Qt.GlobalColor.darkCyan)
    assert image.save(str(path), "PNG")
    assert offline.open_path(path)
    inspector = offline.inspector
    assert inspector.format_label.text() == "64×48 · still image"
    assert inspector.length_label.text() == "1 frame"
    assert "fps" not in inspector.format_label.text() and "→" not in inspector.range_label.text()
    assert not inspector.render_button.isEnabled()
    assert offline.queue_render(tmp_path) is None and offline.queue.entries == {}
    assert "nothing to render" in offline.message_bar.text()
    qtbot.waitUntil(lambda: offline.viewer.original is not None, timeout=WAIT_MS)
    _shot(offline, "still-image.png", tmp_path)
