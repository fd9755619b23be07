"""Progress of `repair`, `retime` and `render`: bars on a terminal with log lines above them, not
on the end of a bar's line; INFO lines where no bar is drawn; `repair` shows its analysis, then
its writing, each with its own total; `render`'s overall bar has the frames of the render as its
total. Real clips, real commands; the terminal is a text stream that says it is one."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

from media_factory import render_clip
from timeline_factory import slowed_timeline

import engine.progress
from engine.cli import main

RATE = 25


class Terminal(io.StringIO):
    """What a terminal is shown: a text stream that says it is a TTY, as stderr."""

    def isatty(self) -> bool:
        return True


@contextlib.contextmanager
def on_terminal() -> Iterator[Terminal]:
    """stderr replaced by a ``Terminal``, with the command line's log handler writing to it (in
    the test's body: pytest sets its own stderr again after the fixtures)."""
    screen = Terminal()
    handler = logging.StreamHandler(screen)
    handler.setFormatter(logging.Formatter("chronoscope: %(levelname)s: %(message)s"))
    root = logging.getLogger()
    level, real = root.level, sys.stderr
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    sys.stderr = screen
    try:
        yield screen
    finally:
        sys.stderr = real
        root.removeHandler(handler)
        root.setLevel(level)


def _progress_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "engine.progress"]


def _gapped_clip(folder: Path) -> Path:
    """29 frames with every fifth lost (timestamp gaps): 24 frames to analyse, 29 to write."""
    pts = [i for i in range(30) if i % 5 != 4]
    return render_clip(folder / "gaps.mp4", rate=RATE, size=(32, 24), pts=pts, time_base=Fraction(1, RATE))


def _lines_of(lines: list[str], stage: str) -> list[str]:
    return [line for line in lines if line.startswith(f"repair gaps.mp4: {stage}: ")]


def test_repair_says_how_far_its_analysis_then_its_writing_are_where_no_bar_is_drawn(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(engine.progress, "LOG_INTERVAL_S", 0.0)  # a line at every report
    caplog.set_level(logging.INFO)
    source = _gapped_clip(tmp_path)
    assert main(["repair", str(source), "-o", str(tmp_path / "fixed.mp4"), "--model", "blend"]) == 0
    lines = _progress_lines(caplog)
    analysing, writing = _lines_of(lines, "analysing"), _lines_of(lines, "writing")
    assert analysing and writing, lines
    assert lines.index(analysing[-1]) < lines.index(writing[0]), "the analysis ends before writing begins"
    assert all(" of 24 frames" in line for line in analysing)
    assert analysing[-1].startswith("repair gaps.mp4: analysing: 24 of 24 frames (100 %)")
    assert all(" of 29 frames" in line for line in writing)
    assert writing[-1].startswith("repair gaps.mp4: writing: 29 of 29 frames (100 %)")

    caplog.clear()
    assert main(["repair", str(source), "--dry-run"]) == 0
    analysing = _lines_of(_progress_lines(caplog), "analysing")
    assert analysing and analysing[-1].startswith("repair gaps.mp4: analysing: 24 of 24 frames")


def test_short_work_prints_no_progress_lines_where_no_bar_is_drawn(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    source = _gapped_clip(tmp_path)
    assert main(["repair", str(source), "-o", str(tmp_path / "fixed.mp4"), "--model", "blend"]) == 0
    assert _progress_lines(caplog) == []


def _log_lines_start_lines(screen: str, marker: str) -> int:
    """How many log lines ``marker`` begins on the screen, each checked to start a line (after a
    newline or a carriage return that cleared a bar, and any moves of the cursor up to the bars
    above), never the end of a bar's text."""
    starts = [match.start() for match in re.finditer(re.escape(marker), screen)]
    for start in starts:
        before = re.sub(r"(\x1b\[A)+$", "", screen[:start])
        assert not before or before[-1] in "\n\r", (
            f"a log line printed onto a bar: {screen[max(0, start - 80) : start + 40]!r}"
        )
    return len(starts)


def test_repair_on_a_terminal_shows_analysis_then_writing_bars_and_log_lines_above_them(tmp_path):
    source = _gapped_clip(tmp_path)
    with on_terminal() as terminal:
        assert main(["repair", str(source), "-o", str(tmp_path / "fixed.mp4"), "--model", "blend"]) == 0
    screen = terminal.getvalue()
    analysing = screen.index("repair gaps.mp4: analysing:")
    writing = screen.index("repair gaps.mp4: writing:")
    assert analysing < writing
    assert "/24 [" in screen[analysing:writing] and "/29 [" in screen[writing:]
    assert _log_lines_start_lines(screen, "chronoscope: INFO: wrote ") == 1


def test_retime_on_a_terminal_prints_warnings_above_its_bar(tmp_path):
    # a bar that jumps from frame to frame: the blend's cut guard WARNs while the bar is drawn
    source = render_clip(tmp_path / "src.mp4", rate=RATE, frame_count=4, size=(16, 16))
    command = ["retime", str(source), "--speed", "1/8", "--model", "blend", "-o", str(tmp_path / "s.mp4")]
    with on_terminal() as terminal:
        assert main(command) == 0
    screen = terminal.getvalue()
    assert "retime src.mp4:" in screen
    assert _log_lines_start_lines(screen, "chronoscope: WARNING: ") >= 1
    assert "scene cut" in screen and "src.mp4: between source frames 0 and 1" in screen


def test_render_shows_the_frames_of_the_whole_render_as_its_total(tmp_path):
    cut = slowed_timeline(tmp_path, frames=12, used=20, speed=0.5, size=(32, 24))
    command = ["render", str(cut), "-o", str(tmp_path / "out"), "--model", "blend", "--no-engine"]
    with on_terminal() as terminal:
        assert main([*command, "--codec", "h264"]) == 0
    screen = terminal.getvalue()
    assert re.search(r"render: 100%\|[^\r\n]*\| 20/20 \[", screen), screen[-600:]
    assert _log_lines_start_lines(screen, "chronoscope: INFO: ") >= 1


def test_render_says_how_far_it_is_where_no_bar_is_drawn(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(engine.progress, "LOG_INTERVAL_S", 0.0)
    caplog.set_level(logging.INFO)
    cut = slowed_timeline(tmp_path, frames=12, used=20, speed=0.5, size=(32, 24))
    command = ["render", str(cut), "-o", str(tmp_path / "out"), "--model", "blend", "--no-engine"]
    assert main([*command, "--codec", "h264"]) == 0
    lines = [line for line in _progress_lines(caplog) if line.startswith("render: ")]
    assert lines and all(" of 20 frames" in line for line in lines)
    assert lines[-1].startswith("render: 20 of 20 frames (100 %)")
