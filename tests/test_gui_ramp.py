"""A speed ramp drawn on the speed curve: the keyframes it makes, the preview positions it gives,
and a render along it by a real engine process, offscreen."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PyQt6.QtCore import QPointF, Qt  # noqa: E402

from engine.retime.ramp import RampMap, parse_ramp  # noqa: E402
from engine.server.process import start_engine, stop_engine  # noqa: E402
from gui.engine_link import EngineLink  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402
from gui.ramp import MIN_RAMP_SPEED, DrawnRamp, RampAnchor, RampGrid  # noqa: E402
from gui.results import RenderOrder  # noqa: E402
from gui.settings import AppSettings  # noqa: E402
from gui.style import apply_dark_palette  # noqa: E402
from gui.timeline_strip import SpeedCurvePlot  # noqa: E402

WAIT_MS = 20_000
FRAMES = 166  # hug-lego-movie.mp4: 560x320, 30 fps


def _point(plot: SpeedCurvePlot, frames: float, speed: float):
    return QPointF(plot.x_of(frames), plot.ramp_y_of(speed)).toPoint()


# ---------------------------------------------------------------------- the ramp model (no Qt)


def test_anchors_become_the_engines_ramp_with_keyframes_on_their_frames():
    ramp = DrawnRamp(FRAMES)
    ramp.add(Fraction(20), Fraction(1))
    ramp.add(Fraction(60), Fraction(1, 4))
    ramp.add(Fraction(120), Fraction(1))
    speed_ramp = ramp.speed_ramp(0)
    # 20 frames at 1x; 40 source frames at a mean speed of 5/8 is 64 output frames; 60 more: 96
    assert speed_ramp.to_json() == [
        {"frame": 20, "speed": "1"},
        {"frame": 84, "speed": "1/4"},
        {"frame": 180, "speed": "1"},
    ]
    # the same JSON the engine parses (engine.retime.ramp), so `chronoscope retime --ramp` takes it
    assert parse_ramp(ramp.to_json(0)) == speed_ramp
    assert [h.source_frames for h in ramp.handles(0)] == [20, 60, 120]
    # from an In mark at 30, the first keyframe is at output frame 0 with the speed there
    cut = ramp.speed_ramp(30)
    assert cut.keyframes[0].frame == 0 and cut.keyframes[0].speed == Fraction(1) - Fraction(3, 4) * Fraction(
        1, 4
    )
    handles = ramp.handles(30)
    assert handles[0] == RampAnchor(Fraction(20), Fraction(1))  # before In: where it was placed
    for placed, handle in zip(ramp.anchors[1:], handles[1:], strict=True):
        # on a whole output frame: within half an output frame (so half a source frame at most)
        assert abs(handle.source_frames - placed.source_frames) <= Fraction(1, 2)


def test_the_ui_cannot_make_a_ramp_the_engine_refuses():
    ramp = DrawnRamp(FRAMES)
    assert ramp.add(Fraction(50), Fraction(0)) == 0
    assert ramp.anchors[0].speed == MIN_RAMP_SPEED  # never 0 or below
    ramp.add(Fraction(70), Fraction(3))
    assert ramp.anchors[1].speed == 1  # slow motion: at most 1
    # a keyframe less than a frame from another changes that one instead of stacking on it
    assert ramp.add(Fraction(101, 2), Fraction(1, 2)) == 0 and len(ramp) == 2
    assert ramp.anchors[0] == RampAnchor(Fraction(50), Fraction(1, 2))
    # dragging stops a frame short of the neighbour, so keyframes never share a time or swap
    ramp.move(0, Fraction(90), Fraction(1, 4))
    assert ramp.anchors[0].source_frames == 69
    ramp.move(1, Fraction(-5), Fraction(1))
    assert ramp.anchors[1].source_frames == 70
    ramp.move(1, Fraction(500), Fraction(1))
    assert ramp.anchors[1].source_frames == FRAMES - 1
    frames = [k.frame for k in ramp.speed_ramp(0).keyframes]
    assert frames == sorted(set(frames))


def test_ramp_grid_matches_the_engines_time_map():
    ramp = DrawnRamp(
        FRAMES, (RampAnchor(Fraction(10), Fraction(1)), RampAnchor(Fraction(40), Fraction(1, 5)))
    )
    grid = RampGrid(ramp.speed_ramp(5), 5)
    frame_map = RampMap(
        "clip", grid.ramp, FRAMES - 5, Fraction(30), Fraction(30), source_start_frames=Fraction(5)
    )
    for mapped in list(frame_map)[::7]:
        assert grid.position(mapped.output_frame) == mapped.source_position_frames
        assert grid.nearest(mapped.source_position_frames) == mapped.output_frame
    assert grid.output_frames(5, FRAMES) == frame_map.output_frames
    assert grid.position(-2) == 3  # before In, the first speed continues backwards


# ---------------------------------------------------------------------- drawing on the plot


def test_draw_move_and_delete_keyframes_with_the_mouse(qtbot):
    plot = SpeedCurvePlot()
    qtbot.addWidget(plot)
    plot.resize(800, 200)
    plot.show()
    plot.set_clip(FRAMES, Fraction(30))
    ramp = DrawnRamp(FRAMES)
    plot.set_ramp(ramp, 0)
    scrubs, edits = [], []
    plot.scrubbed.connect(scrubs.append)
    plot.ramp_edited.connect(lambda: edits.append(len(ramp)))
    plot.set_ramp_mode(True)
    qtbot.mouseClick(plot, Qt.MouseButton.LeftButton, pos=_point(plot, 30, 1.0))
    qtbot.mouseClick(plot, Qt.MouseButton.LeftButton, pos=_point(plot, 90, 0.25))
    qtbot.mouseClick(plot, Qt.MouseButton.LeftButton, pos=_point(plot, 140, 0.52))
    assert not scrubs, "in ramp mode a click edits the ramp and does not scrub"
    assert edits == [1, 2, 3]
    # the pointer snaps to 1 and 1/4, and reads whole percent elsewhere; frames are whole frames
    assert [
        (abs(a.source_frames - f) <= 1, a.speed) for a, f in zip(ramp.anchors, (30, 90, 140), strict=True)
    ] == [
        (True, Fraction(1)),
        (True, Fraction(1, 4)),
        (True, Fraction(1, 2)),
    ]
    assert plot.selected_key == 2
    # drag the middle keyframe to 1/8 further right
    start = ramp.handles(0)[1]
    qtbot.mousePress(plot, Qt.MouseButton.LeftButton, pos=_point(plot, float(start.source_frames), 0.25))
    assert plot.selected_key == 1
    qtbot.mouseMove(plot, _point(plot, 100, 0.125))
    qtbot.mouseRelease(plot, Qt.MouseButton.LeftButton, pos=_point(plot, 100, 0.125))
    assert len(ramp) == 3 and ramp.anchors[1].speed == Fraction(1, 8)
    assert abs(ramp.anchors[1].source_frames - 100) <= 1
    # right-click deletes the keyframe under the pointer
    handle = ramp.handles(0)[0]
    qtbot.mouseClick(
        plot, Qt.MouseButton.RightButton, pos=_point(plot, float(handle.source_frames), float(handle.speed))
    )
    assert [a.speed for a in ramp.anchors] == [Fraction(1, 8), Fraction(1, 2)]
    # out of ramp mode the plot scrubs again and the ramp stays
    plot.set_ramp_mode(False)
    qtbot.mouseClick(plot, Qt.MouseButton.LeftButton, pos=_point(plot, 60, 0.5))
    assert scrubs and len(ramp) == 2


# ---------------------------------------------------------------------- the window and the engine


@pytest.fixture
def window(qtbot, qapp, shared_data):
    connection, started = start_engine(timeout_s=30)
    assert started
    apply_dark_palette(qapp)
    link = EngineLink()
    win = MainWindow(link, AppSettings())
    win.close_provider = lambda count: True  # closing at the end of a test never asks
    qtbot.addWidget(win)
    win.resize(1100, 700)
    win.show()
    link.connect_engine()
    qtbot.waitUntil(lambda: win.engine_status == "connected", timeout=WAIT_MS)
    assert win.open_path(shared_data / "clips" / "hug-lego-movie.mp4")
    yield win
    win.close()
    stop_engine(force=True)


def test_a_drawn_ramp_drives_preview_and_render(qtbot, window, tmp_path):
    from engine.media import FrameReader
    from engine.retime import read_sidecar

    window.set_target_speed(Fraction(1, 2))
    window.set_backend("blend")
    window.in_frame, window.out_frame = 20, 34
    window._marks_changed()
    curve = window.curve
    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)
    assert curve.ramp_mode and window.ramp_action.isChecked()
    qtbot.mouseClick(curve, Qt.MouseButton.LeftButton, pos=_point(curve, 22, 1.0))
    qtbot.mouseClick(curve, Qt.MouseButton.LeftButton, pos=_point(curve, 27, 0.25))
    qtbot.mouseClick(curve, Qt.MouseButton.LeftButton, pos=_point(curve, 32, 1.0))
    ramp_json = window.ramp_json()
    ramp = parse_ramp(ramp_json)
    assert [k.speed for k in ramp.keyframes] == [1, Fraction(1, 4), 1]
    assert ramp.keyframes[0].frame in (1, 2, 3)  # about two output frames after In
    assert "RAMP 100% → 25% → 100%" == window.ramp_summary_label.full_text
    qtbot.waitUntil(lambda: window.ramp_summary_label.text() == "RAMP 100% → 25% → 100%", timeout=5000)
    assert not window.inspector.speed_combo.isEnabled()
    frame_map = RampMap("clip", ramp, 34 - 20, Fraction(30), Fraction(30), source_start_frames=Fraction(20))
    assert f"14 → {frame_map.output_frames} frames" in window.inspector.range_label.text()

    # the preview asks for the ramp's source position of the output frame the playhead is on
    target = next(m for m in frame_map if m.phase and m.output_frame > ramp.keyframes[0].frame + 2)
    requests = []
    original = window.link.request_preview
    window.link.request_preview = lambda request: (requests.append(request), original(request))
    with qtbot.waitSignal(window.preview_shown, timeout=WAIT_MS) as shown:
        window.seek(target.source_position_frames)
    assert requests[-1].position_frames == target.source_position_frames
    assert shown.args[0].position_frames == target.source_position_frames
    assert f"retimed frame {target.output_frame} at" in window.frame_label.text()
    # Right steps one output frame along the ramp, not a constant half frame
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert window.position == frame_map.source_position(target.output_frame + 1)
    assert requests[-1].position_frames == window.position

    # Delete removes the selected (last added) keyframe; the ramp is still a ramp
    qtbot.keyClick(window, Qt.Key.Key_Delete)
    assert [k["speed"] for k in window.ramp_json()] == ["1", "1/4"]
    qtbot.mouseClick(curve, Qt.MouseButton.LeftButton, pos=_point(curve, 32, 1.0))
    assert window.ramp_json() == ramp_json

    with qtbot.waitSignal(window.link.job_finished, timeout=120_000) as finished:
        job_id = window.queue_render(tmp_path)
    _, state, outcome = finished.args
    assert state == "done", outcome
    output = window.queue.entries[job_id].outputs[0]
    assert output.name == "hug-lego-movie.f20-33.ramp.blend.mp4"
    with FrameReader(output) as reader:
        assert sum(1 for _ in reader) == frame_map.output_frames
    report = read_sidecar(output)
    assert report.ramp == ramp_json and report.frames_written == frame_map.output_frames
    assert report.source_range == [20, 34]

    # clearing the ramp returns to the constant target speed
    window.clear_ramp()
    assert window.ramp_json() is None and window.inspector.speed_combo.isEnabled()
    assert window.position == window.snap(window.position) and window.position * 2 == int(window.position * 2)
    assert curve.target_speed == Fraction(1, 2)


def test_the_ramp_stays_with_its_clip_and_engine_errors_show(qtbot, window, shared_data, tmp_path):
    lego = window._clip_key()
    window.add_ramp_keyframe(Fraction(40), Fraction(1, 3))
    window.add_ramp_keyframe(Fraction(80), Fraction(1))
    assert window.ramp_json() == [{"frame": 120, "speed": "1/3"}, {"frame": 180, "speed": "1"}]
    other = shared_data / "clips" / "opencv-vtest.avi"
    assert window.open_path(other)
    assert window.ramp_json() is None and not window.curve.ramp
    assert window.open_path(Path(lego))
    assert window.ramp_json() == [{"frame": 120, "speed": "1/3"}, {"frame": 180, "speed": "1"}]
    # export writes the `chronoscope retime --ramp` file; import reads it back onto the clip
    saved = tmp_path / "ramp.json"
    assert window.export_ramp(saved)
    assert json.loads(saved.read_text()) == window.ramp_json()
    window.clear_ramp()
    assert window.ramp_json() is None
    assert window.import_ramp(saved)
    assert window.ramp_json() == [{"frame": 120, "speed": "1/3"}, {"frame": 180, "speed": "1"}]
    bad = tmp_path / "bad.json"
    bad.write_text('[{"frame": 0, "speed": 0}]')
    assert not window.import_ramp(bad)
    assert (
        "Cannot import the ramp" in window.message_bar.text() and "not above 0" in window.message_bar.text()
    )
    # a ramp the UI cannot draw (from a script, say) is refused by the engine, shown as a message
    order = RenderOrder(
        source=Path(lego),
        output=tmp_path / "bad.mp4",
        speed=Fraction(1, 2),
        backend="blend",
        in_frame=0,
        out_frame=10,
        rate=Fraction(30),
        ramp=((0, "1/2"), (0, "1/4")),
    )
    with qtbot.waitSignal(window.link.job_finished, timeout=WAIT_MS) as finished:
        job_id = window.link.submit_render(order)
        window.queue.add(job_id, order)
    _, state, message = finished.args
    assert state == "failed" and "increasing, distinct frames" in message
    assert "Render failed" in window.message_bar.text() and "distinct frames" in window.message_bar.text()
    assert not (tmp_path / "bad.mp4").exists()


def test_ramp_option_needs_a_clip(tmp_path):
    from engine.errors import UnsupportedOptionError
    from gui.app import build_parser, check_arguments

    args = build_parser().parse_args(["--ramp", str(tmp_path / "ramp.json")])
    with pytest.raises(UnsupportedOptionError, match="--ramp needs a CLIP"):
        check_arguments(args)
