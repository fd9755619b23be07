"""``chronoscope segments``: the listing a pipeline engineer reads or parses."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from engine.commands import COMMAND_MODULES
from engine.commands import segments as command
from engine.errors import MediaNotFoundError, TimelineError

FIXTURES = Path(__file__).parent / "fixtures" / "timelines"


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="chronoscope segments")
    command.configure(parser)
    return command.run(parser.parse_args(argv))


def test_registered_with_the_contract():
    assert "engine.commands.segments" in COMMAND_MODULES
    assert command.NAME == "segments"
    assert "examples:" in command.DESCRIPTION


def test_table_lists_clips_speeds_and_source_frames(capsys):
    assert _run([str(FIXTURES / "resolve_export.otio")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "timeline 'Chase scene v3': 8 clips"
    a002 = next(line for line in lines if "A002_C001.mov" in line)
    assert "rec 48+96 @ 24000/1001" in a002 and "speed 1/2" in a002
    assert "src 86500 -> 86547+1/2" in a002
    b001 = next(line for line in lines if "B001.mov" in line)
    assert "needs 120..214 (handles MISSING)" in b001
    assert "freeze  src 1000 -> 1000" in out


def test_json_output_written_atomically(tmp_path):
    out = tmp_path / "segments.json"
    assert _run([str(FIXTURES / "resolve_export.otio"), "--json", "--output", str(out)]) == 0
    listing = json.loads(out.read_text())
    rows = {(r["track"], r["clip_name"]): r for r in listing["segments"]}
    assert rows[("V1", "A004_C002.mov")]["time_scalar"] == "1/4"
    assert rows[("V1", "A004_C002.mov")]["time_map"]["last"]["source_position_frames"] == "345639/4"
    assert rows[("V1", "B001.mov")]["target_url"] == "C:\\Footage\\Day 2\\B001.mov"
    assert rows[("V1", "B001.mov")]["media_missing"] is True
    assert [p.name for p in tmp_path.iterdir()] == ["segments.json"]


def test_bad_time_warp_is_listed_with_status_1(capsys):
    assert _run([str(FIXTURES / "warp_nan.otio"), "--json"]) == 1
    (row,) = json.loads(capsys.readouterr().out)["segments"]
    assert row["time_map"] is None
    assert "time_scalar nan" in row["time_warp_problem"]
    assert row["time_warps"][0]["time_scalar"] == "nan"


def test_require_media_and_path_map(tmp_path, sample_clip, capsys):
    with pytest.raises(MediaNotFoundError, match="LOST_C001.mov"):
        _run([str(FIXTURES / "missing_media.otio"), "--require-media"])
    (tmp_path / "LOST_C001.mov").write_bytes(sample_clip.read_bytes())
    status = _run([str(FIXTURES / "missing_media.otio"), "--require-media",
                   "--map", f"/nonexistent/chronoscope-test={tmp_path}"])
    assert status == 0
    assert "(not found)" not in capsys.readouterr().out


def test_rate_is_refused_for_formats_that_carry_their_own():
    with pytest.raises(TimelineError, match="only needed for EDLs"):
        _run([str(FIXTURES / "resolve_export.otio"), "--rate", "25"])
