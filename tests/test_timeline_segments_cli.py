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
    assert lines[0] == "timeline 'Chase scene v3': 8 clips, 2 gaps"
    # gaps in their place, by the TRACK:INDEX fill takes; the one before V2's first clip cannot be filled
    assert lines.index("V1   #3   gap  rec 144+24 @ 24000/1001  (fill --gap V1:3)") == 3
    assert "V2   #0   gap  rec 0+48 @ 24000/1001" in lines
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
    assert [(g["item"], g["record_start_frames"], g["record_frames"], g["between_clips"])
            for g in listing["gaps"]] == [("V1:3", "144", "24", True), ("V2:0", "0", "48", False)]


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


def _image_sequence_timeline(tmp_path: Path, *, frame: bytes = b"not a png") -> Path:
    import opentimelineio as otio

    folder = tmp_path / "seq"
    folder.mkdir()
    for number in range(1001, 1025):
        (folder / f"f.{number:04d}.png").write_bytes(frame)
    reference = otio.schema.ImageSequenceReference(
        target_url_base=str(folder) + "/",
        name_prefix="f.",
        name_suffix=".png",
        start_frame=1001,
        frame_zero_padding=4,
        rate=24,
        available_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, 24), otio.opentime.RationalTime(24, 24)
        ),
    )
    clip = otio.schema.Clip(
        name="plate",
        media_reference=reference,
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, 24), otio.opentime.RationalTime(12, 24)
        ),
    )
    clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video, children=[clip])
    path = tmp_path / "plates.otio"
    otio.adapters.write_to_file(otio.schema.Timeline(name="plates", tracks=[track]), str(path))
    return path


def test_an_image_sequence_clip_is_listed_with_its_pattern(tmp_path, capsys):
    assert _run([str(_image_sequence_timeline(tmp_path)), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["segments"]
    assert row["media_kind"] == "image_sequence"
    assert row["image_sequence"] == str(tmp_path / "seq" / "f.####.png")
    assert row["media_path"].endswith(".chronoseq") and not row["media_missing"]
    assert row["time_scalar"] == "1/2"


def test_a_render_of_an_image_sequence_of_empty_files_is_refused_by_name(tmp_path, capsys):
    from engine.cli import main

    timeline = _image_sequence_timeline(tmp_path, frame=b"")
    assert main(["render", str(timeline), "-o", str(tmp_path / "out"), "--no-engine", "--json"]) == 1
    (clip,) = json.loads(capsys.readouterr().out)["clips"]
    assert clip["status"] == "cannot_render"
    assert "frame 1001 (f.1001.png) is an empty file" in clip["reason"]


def test_a_render_of_an_image_sequence_of_files_that_are_no_pictures_fails(tmp_path, capsys):
    from engine.cli import main

    timeline = _image_sequence_timeline(tmp_path)
    assert main(["render", str(timeline), "-o", str(tmp_path / "out"), "--no-engine", "--json"]) == 1
    (clip,) = json.loads(capsys.readouterr().out)["clips"]
    assert clip["status"] == "failed"
