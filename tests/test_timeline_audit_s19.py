"""Timelines as editing applications export them (audit s19): an EDL freeze that OTIO's own EDL
reader turned into a LinearTimeWarp of scalar 0 is a hold everywhere (segments, render, fill)."""

from __future__ import annotations

import argparse
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from media_factory import render_clip

from engine.cli import main
from engine.commands import segments as segments_command
from engine.media import FrameReader
from engine.render import fill_gaps, render_timeline
from engine.timeline import list_segments, read_timeline, time_map

RATE = 25


def _segments_json(path: Path, capsys, *extra: str) -> tuple[int, list[dict]]:
    parser = argparse.ArgumentParser(prog="chronoscope segments")
    segments_command.configure(parser)
    status = segments_command.run(parser.parse_args([str(path), "--json", *extra]))
    return status, json.loads(capsys.readouterr().out)["segments"]


def _frames(path: Path) -> list[np.ndarray]:
    with FrameReader(path) as reader:
        return [frame.image for frame in reader]


@pytest.fixture()
def freeze_edl(tmp_path) -> Path:
    """A 25 fps EDL: a one-second hold of source frame 25 (``M2 ... 000.0``), a 10-frame gap on
    the record side, then 10 frames at speed 1 from source frame 40."""
    media = render_clip(tmp_path / "src.mp4", rate=Fraction(RATE), frame_count=60, size=(64, 48))
    path = tmp_path / "frz.edl"
    path.write_text(
        "TITLE: FREEZE\nFCM: NON-DROP FRAME\n\n"
        "001  SRC      V     C        00:00:01:00 00:00:01:01 01:00:00:00 01:00:01:00\n"
        "M2   SRC         000.0                00:00:01:00\n"
        f"* FROM CLIP NAME: src.mp4\n* FROM CLIP: {media}\n\n"
        "002  SRC      V     C        00:00:01:15 00:00:02:00 01:00:01:10 01:00:01:20\n"
        f"* FROM CLIP NAME: src.mp4\n* FROM CLIP: {media}\n"
    )
    return path


def _converted_by_otio(edl: Path) -> Path:
    """The .otio OTIO's own EDL reader makes of ``edl``: its freeze is a LinearTimeWarp of 0."""
    converted = edl.with_name("frz_conv.otio")
    otio.adapters.write_to_file(otio.adapters.read_from_file(str(edl), rate=RATE), str(converted))
    (effect,) = read_timeline(converted).find_clips()[0].effects
    assert effect.schema_name() == "LinearTimeWarp" and effect.time_scalar == 0
    return converted


def test_linear_time_warp_of_zero_is_listed_as_a_hold_like_the_edl_freeze(freeze_edl, capsys):
    converted = _converted_by_otio(freeze_edl)
    status, rows = _segments_json(converted, capsys)
    assert status == 0
    held = rows[0]
    assert held["freeze_frame"] is True and held["time_warp_problem"] == ""
    assert held["time_scalar"] == "0" and held["time_warps"][0]["kind"] == "freeze"
    assert held["time_map"]["first"]["source_frame"] == held["time_map"]["last"]["source_frame"] == 25
    # the EDL read by Chronoscope (a FreezeFrame) lists the same hold
    edl_status, edl_rows = _segments_json(freeze_edl, capsys, "--rate", "25")
    assert edl_status == 0
    assert edl_rows[0]["time_map"] == held["time_map"]


def test_fixture_with_scalar_zero_is_a_hold_not_an_error():
    fixture = Path(__file__).parent / "fixtures" / "timelines" / "warp_zero.otio"
    (segment,) = list_segments(read_timeline(fixture))
    assert segment.is_freeze_frame and segment.time_scalar == 0 and segment.is_retimed
    mapping = time_map(segment)
    assert mapping.freeze_frame and mapping.step_frames == 0
    assert {mapped.source_frame for mapped in mapping.frames()} == {10}


def test_otio_freeze_renders_the_held_frame_as_the_edl_does(freeze_edl, tmp_path):
    converted = _converted_by_otio(freeze_edl)
    from_otio = render_timeline(converted, tmp_path / "otio", model="nearest", codec="ffv1")
    from_edl = render_timeline(freeze_edl, tmp_path / "edl", model="nearest", codec="ffv1", rate=RATE)
    assert from_otio.ok and from_edl.ok
    assert [c["status"] for c in from_otio.clips] == ["rendered", "pass_through"]
    otio_frames = _frames(Path(from_otio.clips[0]["output"]))
    edl_frames = _frames(Path(from_edl.clips[0]["output"]))
    assert len(otio_frames) == len(edl_frames) == 25
    source = _frames(freeze_edl.with_name("src.mp4"))
    for made, expected in zip(otio_frames, edl_frames, strict=True):
        assert np.array_equal(made, expected)
        assert np.array_equal(made, otio_frames[0])
    assert np.abs(otio_frames[0].astype(int) - source[25].astype(int)).mean() < 2
    new = read_timeline(Path(from_otio.timeline_path))
    assert [e.schema_name() for e in new.find_clips()[0].effects] == []


def test_a_gap_after_an_otio_freeze_is_filled(freeze_edl, tmp_path):
    converted = _converted_by_otio(freeze_edl)
    summary = fill_gaps(converted, tmp_path / "fill", gaps=["V1:1"], model="blend", codec="ffv1")
    assert [(g.track, g.index_in_track, g.status) for g in summary.gaps] == [("V1", 1, "filled")]


def _edl_of(folder: Path, media: Path, header: str, events: str) -> Path:
    path = folder / "cut.edl"
    path.write_text(header + events.format(media=media))
    return path


DF_EVENTS = (
    "001  SRC      V     C        00:00:00;00 00:00:00;15 01:00:00;00 01:00:01;00\n"
    "M2   SRC         015.0                00:00:00;00\n"
    "* FROM CLIP NAME: src.mov\n* FROM CLIP: {media}\n\n"
    "002  SRC      V     C        00:00:01;00 00:00:02;00 01:00:01;00 01:00:02;00\n"
    "* FROM CLIP NAME: src.mov\n* FROM CLIP: {media}\n"
)


@pytest.mark.parametrize(
    ("header", "rate", "fcm"),
    [
        ("TITLE: DF CUT\nFCM: DROP FRAME\n\n", "29.97", "FCM: DROP FRAME"),
        ("TITLE: NDF CUT\nFCM: NON-DROP FRAME\n\n", "30", "FCM: NON-DROP FRAME"),
    ],
)
def test_the_edl_copy_keeps_its_frame_code_mode(tmp_path, header, rate, fcm):
    media_rate = Fraction(30000, 1001) if fcm == "FCM: DROP FRAME" else Fraction(30)
    media = render_clip(tmp_path / "src.mov", rate=media_rate, frame_count=90, size=(64, 48))
    events = DF_EVENTS if fcm == "FCM: DROP FRAME" else DF_EVENTS.replace(";", ":")
    edl = _edl_of(tmp_path, media, header, events)
    assert main(["render", str(edl), "--rate", rate, "-o", str(tmp_path / "out"), "--model", "nearest",
                 "--codec", "ffv1", "--no-engine"]) == 0
    lines = (tmp_path / "out" / "cut.chronoscope.edl").read_text().splitlines()
    assert lines[0].startswith("TITLE: ") and lines[1] == fcm and lines[2] == ""
    assert sum(line.startswith("FCM:") for line in lines) == 1
    separator = ";" if fcm == "FCM: DROP FRAME" else ":"
    assert lines[3].startswith("001 ") and lines[3].endswith(f"01:00:00{separator}00 01:00:01{separator}00")
    # the copy reads back where the clips were
    copy = read_timeline(tmp_path / "out" / "cut.chronoscope.edl", rate=float(media_rate))
    assert [(s.record_start_frames, s.record_frames) for s in list_segments(copy)] == [(0, 30), (30, 30)]


def test_an_fcm_line_goes_first_when_there_is_no_title():
    from engine.timeline.editor_copy import frame_code_mode

    event = "001  AX       V     C        00:00:00;00 00:00:01;00 01:00:00;00 01:00:01;00\n"
    assert frame_code_mode(event) == "FCM: DROP FRAME\n\n" + event
    kept = "TITLE: x\nFCM: NON-DROP FRAME\n\n" + event.replace(";", ":")
    assert frame_code_mode(kept) == kept


def test_a_resumed_clip_reads_skipped_in_the_table_and_resumed_in_json(tmp_path, capsys):
    from timeline_factory import half_speed_timeline

    cut = half_speed_timeline(tmp_path)
    command = ["render", str(cut), "-o", str(tmp_path / "out"), "--model", "nearest", "--codec", "ffv1",
               "--no-engine"]
    assert main(command) == 0
    capsys.readouterr()
    assert main(command) == 0
    lines = capsys.readouterr().out.splitlines()
    (row,) = [line for line in lines if line.startswith("V1 #0")]
    assert row.split()[4:7] == ["skipped", "(already", "rendered)"]
    assert " resumed " not in row
    assert any(line.startswith("0 rendered, 1 skipped (already rendered)") for line in lines)
    assert main([*command, "--json"]) == 0
    (clip,) = json.loads(capsys.readouterr().out)["clips"]
    assert clip["status"] == "resumed"  # the value the Resolve bridge reads


def _cut_media(path: Path) -> Path:
    """24 frames at 25 fps, 96x64: a textured shot panning right, cut at frame 12 to another shot."""
    from engine.media import write_video

    generator = np.random.default_rng(3)
    shots = [
        (generator.random((80, 160, 3)) * 255).astype(np.uint8).repeat(2, 0).repeat(2, 1),
        np.full((160, 320, 3), (30, 200, 90), np.uint8),
    ]
    shots[1][::7] = 250
    frames = [shots[n >= 12][10 : 10 + 64, n * 2 : n * 2 + 96].copy() for n in range(24)]
    return write_video(path, frames, rate=Fraction(RATE), codec="ffv1")


@pytest.mark.parametrize(
    ("model", "words"),
    [
        ("nearest", "nearest frame (what the nearest model shows anyway)"),
        ("blend", "nearest frame instead of blend"),
    ],
)
def test_the_scene_cut_warning_names_the_clip_and_its_frames(tmp_path, caplog, model, words):
    media = _cut_media(tmp_path / "cut.mkv")
    clip = otio.schema.Clip(
        name="shot A",
        media_reference=otio.schema.ExternalReference(target_url=str(media)),
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(8, RATE), otio.opentime.RationalTime(8, RATE)
        ),
    )
    clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    gap = otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=otio.opentime.RationalTime(2, RATE)))
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video, children=[gap, clip])
    path = tmp_path / "cut.otio"
    otio.adapters.write_to_file(otio.schema.Timeline(name="cut", tracks=[track]), str(path))
    caplog.set_level("WARNING")
    summary = render_timeline(path, tmp_path / "out", model=model, codec="ffv1")
    assert summary.ok
    warnings = [r.getMessage() for r in caplog.records if "scene cut" in r.getMessage()]
    # 8 source frames from frame 8 at half speed: output frame 7 lies between source frames 11 and 12
    (warning,) = warnings
    assert warning.startswith("V1 #1 shot A: between source frames 11 and 12, output frame 7: scene cut (")
    assert warning.endswith(f"): {words}")
    assert "nearest frame instead of nearest" not in warning


def _nested_timeline(folder: Path) -> Path:
    """A half-speed clip, then a compound clip (a nested stack holding one clip)."""
    media = render_clip(folder / "src.mp4", rate=Fraction(RATE), frame_count=40, size=(64, 48))

    def clip(name: str, start: int) -> otio.schema.Clip:
        return otio.schema.Clip(
            name=name,
            media_reference=otio.schema.ExternalReference(target_url=str(media)),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(start, RATE), otio.opentime.RationalTime(6, RATE)
            ),
        )

    slowed = clip("slowed", 0)
    slowed.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    inner = otio.schema.Track(name="inner", kind=otio.schema.TrackKind.Video, children=[clip("inside", 20)])
    compound = otio.schema.Stack(name="compound", children=[inner])
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video, children=[slowed, compound])
    path = folder / "nest.otio"
    otio.adapters.write_to_file(otio.schema.Timeline(name="nest", tracks=[track]), str(path))
    return path


def _nested_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "is nested" in r.getMessage()]


def test_a_nested_stack_is_warned_about_once_per_command(tmp_path, caplog, capsys):
    cut = _nested_timeline(tmp_path)
    caplog.set_level("WARNING")
    status, rows = _segments_json(cut, capsys)
    assert status == 0 and [row["clip_name"] for row in rows] == ["slowed"]
    nested = "V1 'V1' item 1 (Stack 'compound') is nested; its clips are not listed"
    assert _nested_warnings(caplog) == [nested]
    caplog.clear()
    summary = render_timeline(cut, tmp_path / "out", model="nearest", codec="ffv1")
    assert [c["status"] for c in summary.clips][0] == "rendered"
    assert len(_nested_warnings(caplog)) == 1
