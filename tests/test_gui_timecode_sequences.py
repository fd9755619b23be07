"""The preview app's source timecode, image sequences opened from one frame, and closing while
renders wait for an engine."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
from gui_windows import offline_window

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PyQt6.QtGui import QDropEvent, QImage  # noqa: E402

from engine.errors import UnsupportedOptionError  # noqa: E402
from engine.media.sequence import is_description  # noqa: E402
from gui import app, dialogs, main_window, results  # noqa: E402
from gui.main_window import STILL_IMAGE_TEXT, MainWindow  # noqa: E402
from gui.sequences import OPEN_ONE_FRAME, sequence_around  # noqa: E402
from gui.timecode import SourceClock  # noqa: E402
from tests.media_factory import render_clip  # noqa: E402

NTSC = Fraction(30000, 1001)


@pytest.fixture
def window(qtbot, qapp):
    """The window with no engine (none runs for this test's isolated home; none is started)."""
    win = offline_window(qtbot, qapp)
    yield win
    win.close()


def _clip_with_timecode(tmp_path: Path, timecode: str, rate: Fraction = NTSC) -> Path:
    path = tmp_path / f"tc-{timecode.replace(':', '').replace(';', 'd')}.mov"
    render_clip(path, rate=rate, frame_count=40, metadata={"timecode": timecode})
    return path


def _frames(folder: Path, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, name in enumerate(names):
        image = QImage(64, 48, QImage.Format.Format_RGB888)
        image.fill(Qt.GlobalColor.black)
        for x in range(8):
            for y in range(8):
                image.setPixel(index * 4 + x, 20 + y, 0xFFFFFF)
        path = folder / name
        assert image.save(str(path), "PNG")
        paths.append(path)
    return paths


def _drop(window: MainWindow, path: Path) -> None:
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(path))])
    no_button, no_key = Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    event = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, data, no_button, no_key)
    window.dropEvent(event)


# ---------------------------------------------------------------------- 1. source timecode


def test_the_transport_ruler_and_marks_show_the_files_start_timecode(qtbot, window, tmp_path):
    clip = _clip_with_timecode(tmp_path, "15:44:35:10")
    assert window.open_path(clip)
    window.seek(Fraction(121, 4))  # frame 30 + 1/4: one second (30 timecode frames) after the start
    assert window.timecode_label.text() == "15:44:36:10+1/4"
    assert window.inspector.range_label.text().startswith("15:44:35:10 – 15:44:36:19")
    labels = [label for _frame, _x, label in window.strip.ruler_ticks() if label]
    assert labels and all(label.startswith("15:44:3") for label in labels)
    ticks = window.strip.ruler_ticks()
    step = ticks[1][0] - ticks[0][0]
    assert window.clock.timecode_number(ticks[0][0]) % step == 0, "ticks sit where the timecode is round"
    assert "source, from 15:44:35:10" in window.inspector.timecode_label.text()
    assert "15:44:35:10" in window.inspector.timecode_label.toolTip()


def test_drop_frame_timecode_is_labelled_with_a_semicolon(qtbot, window, tmp_path):
    clip = _clip_with_timecode(tmp_path, "01:00:00;00")
    assert window.open_path(clip)
    window.seek(Fraction(5, 2))
    assert window.timecode_label.text() == "01:00:00;02+1/2"
    assert "drop frame" in window.inspector.timecode_label.text()
    # drop frame skips labels ;00 and ;01 at each minute but every tenth
    assert SourceClock.of(NTSC, "00:00:59;29").frame_text(1) == "00:01:00;02"
    assert SourceClock.of(NTSC, "00:09:59;29").frame_text(1) == "00:10:00;00"


def test_a_file_without_timecode_counts_from_zero_and_says_so(qtbot, window, tmp_path):
    clip = tmp_path / "plain.mp4"
    render_clip(clip, rate=Fraction(25), frame_count=30)
    assert window.open_path(clip)
    window.seek(Fraction(26))
    assert window.timecode_label.text() == "00:00:01:01"
    assert "no start timecode" in window.inspector.timecode_label.text()


def test_a_timeline_clip_shows_its_medias_source_timecode_and_says_which(qtbot, window, tmp_path):
    media = _clip_with_timecode(tmp_path, "10:00:00:00", Fraction(25))
    timeline = otio.schema.Timeline(name="tc")
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    track.append(
        otio.schema.Clip(
            name="shot",
            media_reference=otio.schema.ExternalReference(target_url=media.as_uri()),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(10 + 25 * 36000, 25), otio.opentime.RationalTime(20, 25)
            ),
        )
    )
    path = tmp_path / "tc.otio"
    otio.adapters.write_to_file(timeline, str(path))
    assert window.open_path(path)
    assert window.position == 10
    assert window.timecode_label.text() == "10:00:00:10"
    assert "not the timeline's record timecode" in window.inspector.timecode_label.text()


# ---------------------------------------------------------------------- 2. image sequences


def test_a_frame_of_a_sequence_opens_as_the_sequence_at_the_rate_asked(qtbot, window, tmp_path):
    frames = _frames(tmp_path / "plates", [f"shot.{n:04d}.png" for n in range(1001, 1005)])
    asked = []

    def provider(path, sequence, default):
        asked.append((path.name, sequence.display_name, sequence.count, default))
        return Fraction(25)

    window.sequence_rate_provider = provider
    assert window.open_path(frames[2])
    assert asked == [("shot.1003.png", "shot.####.png", 4, Fraction(24))]
    info = window.source.info
    assert is_description(info.path)
    assert (info.frame_count, info.rate, info.display_name) == (4, Fraction(25), "shot.####.png")
    assert window.analysis_messages[window._clip_key()] != STILL_IMAGE_TEXT
    assert window.settings.sequence_rate == Fraction(25)
    # the engine's requests name the sequence's description, which every reader reads as its frames
    assert ".chronoseq" in json.dumps(results.detect_request(info.path))
    job = window.queue_render(tmp_path / "out")
    order = window.queue.entries[job].order
    assert order.request()["source"] == str(info.path) and order.output.name.startswith("shot.")

    # dropped on the window: asked again, the last rate offered first
    asked.clear()
    _drop(window, frames[0])
    assert asked[0][3] == Fraction(25)


def test_only_this_image_cancel_and_a_lone_image(qtbot, window, tmp_path):
    frames = _frames(tmp_path / "hs", [f"{n:03d}.png" for n in range(3)])
    window.sequence_rate_provider = lambda path, sequence, default: OPEN_ONE_FRAME
    assert window.open_path(frames[1])
    assert window.source.info.frame_count == 1 and window.source.info.path == frames[1].resolve()
    window.sequence_rate_provider = lambda path, sequence, default: None
    assert not window.open_path(frames[0])
    assert window.source.info.path == frames[1].resolve(), "cancelling opens nothing"

    lone = _frames(tmp_path / "lone", ["poster.png"])[0]
    single = _frames(tmp_path / "single", ["still.0001.png"])[0]
    window.sequence_rate_provider = lambda *args: pytest.fail("a lone image is not asked about")
    assert sequence_around(lone) is None and sequence_around(single) is None
    assert window.open_path(single)
    assert window.source.info.frame_count == 1


def test_the_sequence_dialog_offers_the_usual_rates_and_one_frame(qtbot, window, tmp_path):
    frames = _frames(tmp_path / "p", [f"a{n}.png" for n in range(1, 4)])
    sequence = sequence_around(frames[0])
    dialog = dialogs.SequenceRateDialog(frames[0], sequence, Fraction(25), window)
    qtbot.addWidget(dialog)
    rates = [dialog.rate_combo.itemData(i) for i in range(dialog.rate_combo.count())]
    assert rates == list(dialogs.SEQUENCE_RATES) and Fraction(24000, 1001) in rates
    assert dialog.answer() == Fraction(25)
    assert "a#.png" in dialog.findChild(type(window.timecode_label)).text()
    dialog.one_frame_button.click()
    assert dialog.answer() == OPEN_ONE_FRAME
    assert all(f"*.{kind}" in main_window.MEDIA_FILTER for kind in ("png", "dpx", "exr", "tif", "jpg"))


def test_sequence_rate_on_the_command_line(qtbot, window, tmp_path):
    frames = _frames(tmp_path / "cli", [f"c.{n:02d}.png" for n in range(10, 16)])
    args = app.build_parser().parse_args(["--sequence-rate", "23.976", str(frames[0])])
    app.check_arguments(args)
    assert app.sequence_rate_of(args) == Fraction(24000, 1001)
    window.sequence_rate_provider = lambda *args: pytest.fail("--sequence-rate answers the question")
    assert window.open_path(args.path, sequence_rate=app.sequence_rate_of(args))
    assert window.source.info.frame_count == 6
    for bad in (["--sequence-rate", "24"], ["--sequence-rate", "24", "a.edl"], ["--sequence-rate", "0", "a"]):
        with pytest.raises(UnsupportedOptionError):
            app.check_arguments(app.build_parser().parse_args(bad))


# ---------------------------------------------------------------------- 3. closing with waiting renders


def test_closing_with_renders_waiting_for_an_engine_asks_first(qtbot, window, tmp_path):
    clip = tmp_path / "w.mp4"
    render_clip(clip, rate=Fraction(25), frame_count=12, size=(64, 48))
    assert window.open_path(clip)
    job = window.queue_render(tmp_path / "out")
    assert window.queue.state_text(job) == "waiting for engine"
    asked = []
    window.close_provider = lambda count: asked.append(count) or False
    assert not window.close()
    assert asked == [1] and window.isVisible(), "kept open: the render is not lost"
    window.close_provider = lambda count: asked.append(count) or True
    assert window.close()
    assert asked == [1, 1] and not window.isVisible()


def test_closing_without_waiting_renders_does_not_ask(qtbot, window):
    window.close_provider = lambda count: pytest.fail("nothing waits: nothing to ask")
    assert window.close()
