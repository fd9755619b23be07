"""The `chronoscope` command itself: help, version, and how errors reach the user."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from fractions import Fraction

import pytest

from engine import __version__
from engine.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_help_lists_subcommands_and_examples(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "probe" in out
    assert "examples:" in out


def test_unknown_subcommand_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["levitate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_user_error_is_one_line_without_traceback(tmp_path):
    missing = tmp_path / "no-such-clip.mov"
    completed = subprocess.run(
        [sys.executable, "-m", "engine.cli", "probe", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, completed.stderr
    assert "no-such-clip.mov" in lines[0]
    assert "Traceback" not in completed.stderr


def test_debug_flag_shows_traceback(tmp_path):
    missing = tmp_path / "no-such-clip.mov"
    completed = subprocess.run(
        [sys.executable, "-m", "engine.cli", "--debug", "probe", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2
    assert "Traceback" in completed.stderr


def test_a_bug_exits_70_with_its_traceback_and_a_file_system_refusal_exits_2_in_one_line(monkeypatch, capsys):
    from engine.commands import probe as probe_command

    def broken(args):
        raise RuntimeError("an unexpected state")

    monkeypatch.setattr(probe_command, "run", broken)
    assert main(["probe", "clip.mp4"]) == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: an unexpected state" in err
    assert "chronoscope probe: internal error (a bug)" in err

    def refused(args):
        raise PermissionError(13, "Permission denied", "/srv/out/cut.chronoscope.otio")

    monkeypatch.setattr(probe_command, "run", refused)
    assert main(["probe", "clip.mp4"]) == 2
    err = capsys.readouterr().err
    assert err == "chronoscope probe: error: Permission denied: /srv/out/cut.chronoscope.otio\n"


def test_usage_mistakes_are_one_line_naming_the_help(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["retime", "clip.mp4", "--speed", "0.5"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "chronoscope retime: error: the following arguments are required: -o/--output "
        "(see chronoscope retime --help)\n"
    )


def test_quality_outside_the_codec_range_is_refused_before_any_work(tmp_path, capsys):
    from media_factory import render_clip

    clip = render_clip(tmp_path / "clip.mp4", frame_count=4, audio=True)
    command = ["retime", str(clip), "--speed", "0.5", "--quality", "99", "-o", str(tmp_path / "o.mp4")]
    assert main(command) == 2
    assert "quality 99 is outside 0 to 51, the CRF range of h264" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command to write the test file")
def test_probe_shows_the_start_timecode_and_the_grid_of_a_variable_rate_clip(tmp_path, capsys):
    from media_factory import render_clip, render_multitrack_clip

    assert main(["probe", str(render_multitrack_clip(tmp_path / "tc.mov", timecode="01:00:10:00"))]) == 0
    assert re.search(r"\ntimecode +01:00:10:00 \(the first frame's\)\n", capsys.readouterr().out)
    stamps = list(range(10)) + list(range(30, 60))
    stall = render_clip(tmp_path / "stall.mp4", rate=30, pts=stamps, time_base=Fraction(1, 30))
    assert main(["probe", str(stall)]) == 0
    shown = capsys.readouterr().out
    wanted = r"\n  retime grid +60 frames at 30 fps by timestamps \(20 made where frames are missing, 0 left"
    assert re.search(wanted, shown)
