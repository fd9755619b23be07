"""The `chronoscope` command itself: help, version, and how errors reach the user."""

from __future__ import annotations

import subprocess
import sys

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
