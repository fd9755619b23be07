"""A report that cannot be written (the disk filled up with the media) leaves no output behind and
names the report: `retime`, `repair` and `render` (its segments, then its summary and timeline).

The failure is real: the command runs in a child process whose file size limit (RLIMIT_FSIZE,
``ulimit -f``) lies between the size of the media and the size of its report, measured on a first
run, so the media is written whole and the report's write fails with EFBIG, as a full disk's fails
with ENOSPC after the media took the last space. The clips are tiny (16x16), so that the report,
which grows with every made frame, is larger than the media.
"""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from media_factory import render_clip
from timeline_factory import slowed_timeline

from engine.cli import main
from engine.retime import sidecar_path

resource = pytest.importorskip("resource", reason="file size limits are POSIX")
REPO = Path(__file__).resolve().parent.parent


def _run_with_file_size_limit(command: list[str], limit_bytes: int, cwd: Path) -> subprocess.CompletedProcess:
    """``chronoscope COMMAND`` in a child that may write no file larger than ``limit_bytes``."""
    import signal

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *command],
        cwd=cwd,
        env=env,
        preexec_fn=limit,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _between(smaller: int, larger: int) -> int:
    assert larger > smaller + 200, f"the test needs a report larger than its media: {smaller} vs {larger}"
    return (smaller + larger) // 2


def _error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if " error: " in line]
    assert len(lines) == 1, stderr
    return lines[0]


def _left(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_retime_whose_report_cannot_be_written_leaves_neither_media_nor_report(tmp_path):
    source = render_clip(tmp_path / "src.mp4", frame_count=4, size=(16, 16))
    out = tmp_path / "out"
    out.mkdir()
    output = out / "slow.mp4"
    command = ["retime", str(source), "--speed", "1/8", "--model", "blend", "-o", str(output)]
    assert main(command) == 0
    limit = _between(output.stat().st_size, sidecar_path(output).stat().st_size)

    # over an earlier result (--overwrite): it is replaced, and nothing is left of either run
    done = _run_with_file_size_limit([*command, "--overwrite"], limit, tmp_path)
    assert done.returncode == 2, done.stderr
    error = _error_line(done.stderr)
    assert f"cannot write the report {sidecar_path(output)}: File too large" in error
    assert f"{output} was removed with it" in error
    assert _left(out) == []

    # into a free name: the same, and running again is not refused by a file left behind
    done = _run_with_file_size_limit(command, limit, tmp_path)
    assert done.returncode == 2 and str(sidecar_path(output)) in _error_line(done.stderr)
    assert _left(out) == []
    assert main(command) == 0
    assert _left(out) == ["slow.mp4", "slow.mp4.chronoscope.json"]


def test_repair_whose_report_cannot_be_written_leaves_neither_media_nor_report(tmp_path):
    # every third frame lost: a fill each, and the report grows faster than the media
    pts = [i for i in range(60) if i % 3 != 2]
    source = render_clip(tmp_path / "src.mp4", size=(16, 16), pts=pts, time_base=Fraction(1, 25))
    out = tmp_path / "out"
    out.mkdir()
    output = out / "fixed.mp4"
    command = ["repair", str(source), "--model", "blend", "-o", str(output)]
    assert main(command) == 0
    limit = _between(output.stat().st_size, sidecar_path(output).stat().st_size)
    output.unlink()
    sidecar_path(output).unlink()

    done = _run_with_file_size_limit(command, limit, tmp_path)
    assert done.returncode == 2, done.stderr
    error = _error_line(done.stderr)
    assert f"cannot write the repair report {sidecar_path(output)}: File too large" in error
    assert f"{output} was removed with it" in error
    assert _left(out) == []


def test_render_whose_reports_cannot_be_written_names_them_and_keeps_no_unreported_clip(tmp_path):
    cut = slowed_timeline(tmp_path, frames=8, used=24, speed=0.125, size=(16, 16))
    out = tmp_path / "out"
    command = ["render", str(cut), "-o", str(out), "--model", "blend", "--codec", "h264", "--no-engine"]
    assert main(command) == 0
    (media,) = out.glob("V1_*.mp4")
    report = sidecar_path(media)
    timeline = out / "cut.chronoscope.otio"
    sizes = {path.name: path.stat().st_size for path in (media, report, timeline)}
    for path in out.iterdir():
        path.unlink()

    # the segment's report fails: its media goes too, and the clip is said not rendered
    done = _run_with_file_size_limit(command, _between(sizes[media.name], sizes[report.name]), tmp_path)
    assert done.returncode != 0, done.stderr
    assert f"cannot write the report {report}: File too large" in done.stderr
    assert f"{media} was removed with it" in done.stderr
    assert not media.exists() and not report.exists()

    # the segment and its report fit, the new timeline does not: named, and the clip is kept
    limit = _between(max(sizes[media.name], sizes[report.name]), sizes[timeline.name])
    done = _run_with_file_size_limit(command, limit, tmp_path)
    assert done.returncode == 2, done.stderr
    error = _error_line(done.stderr)
    assert f"cannot write {timeline}: File too large" in error
    assert f"the rendered clips are kept in {out}" in error
    assert media.is_file() and report.is_file()
    assert not timeline.exists(), "no truncated timeline (OTIO's own writer ignored the failed write)"
    assert main(command) == 0, "render again: the clip is taken as rendered, the timeline written"
    assert timeline.is_file()
