"""Rendering only the clips an editor chose: `render --clip V1:1`, and the engine's
``render_timeline`` request with ``clips`` (what the Resolve script sends for its flagged clips).
The others pass through with their speed change kept; a name that is not a clip is refused."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
from media_factory import render_clip
from process_control import background_engine

from engine.cli import main
from engine.errors import UnsupportedOptionError
from engine.render import render_timeline
from engine.server.client import EngineClient
from engine.timeline import read_timeline


def _cut(folder: Path) -> Path:
    """V1: a at 1/2, b at 1/4, c at 1x, a gap, d at 1/2."""
    shot = render_clip(folder / "shot.mp4", rate=Fraction(25), frame_count=30)
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    clips = (("a", 0, 8, 0.5), ("b", 10, 8, 0.25), ("c", 20, 6, 1.0), ("d", 4, 6, 0.5))
    for name, start, duration, scalar in clips:
        if name == "d":
            track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, 25), otio.opentime.RationalTime(5, 25)
            )))
        clip = otio.schema.Clip(
            name=name,
            media_reference=otio.schema.ExternalReference(target_url=str(shot)),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(start, 25), otio.opentime.RationalTime(duration, 25)
            ),
        )
        if scalar != 1:
            clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=scalar))
        track.append(clip)
    path = folder / "cut.otio"
    otio.adapters.write_to_file(otio.schema.Timeline(name="cut", tracks=[track]), str(path))
    return path


def _statuses(summary: dict) -> dict[str, tuple[str, str]]:
    return {c["clip_name"]: (c["status"], c.get("reason") or "") for c in summary["clips"]}


def test_render_only_the_clips_named(tmp_path, capsys):
    cut = _cut(tmp_path)
    assert main(["render", str(cut), "-o", str(tmp_path / "out"), "--model", "blend", "--codec", "ffv1",
                 "--no-engine", "--clip", "V1:1", "--clip", "v1:4", "--json"]) == 0
    statuses = _statuses(json.loads(capsys.readouterr().out))
    assert statuses["b"][0] == statuses["d"][0] == "rendered"
    not_chosen = "not chosen for this render: passed through, its speed change kept"
    assert statuses["a"] == ("pass_through", not_chosen)
    assert statuses["c"] == ("pass_through", "real time")
    new = read_timeline(tmp_path / "out" / "cut.chronoscope.otio")
    warps = {clip.name: [e.time_scalar for e in clip.effects] for clip in new.find_clips()}
    assert warps == {"a": [0.5], "b": [], "c": [], "d": []}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("V2:0", "the timeline has no track V2; tracks: V1"),
        ("V1:3", "item 3 of V1 is gap, not a clip"),
        ("V1:9", "item 9 of V1 is past the end, not a clip"),
        ("first", "clip 'first' is not TRACK:INDEX"),
    ],
)
def test_a_clip_name_that_is_not_a_clip_is_refused_before_any_work(tmp_path, name, message):
    cut = _cut(tmp_path)
    with pytest.raises(UnsupportedOptionError, match=message):
        render_timeline(cut, tmp_path / "out", model="blend", codec="ffv1", only=[name])
    assert not list((tmp_path / "out").glob("*.mkv"))


@pytest.mark.skipif(os.name == "nt", reason="ipc://")
def test_the_engine_renders_the_clips_a_request_lists(tmp_path):
    cut = _cut(tmp_path)
    with background_engine(tmp_path / "home") as (connection, _), EngineClient(connection) as client:
        request = {"timeline": str(cut), "outdir": str(tmp_path / "out"), "model": "blend"}
        request["codec"] = "ffv1"
        # what the Resolve bridge sends: its own keys beside the place of each clip
        chosen = [{"track": "V1", "index_in_track": 1, "record_start_frame": 16, "name": "b"}]
        summary = client.run_job("render_timeline", {**request, "clips": chosen}, timeout_s=300)
        statuses = _statuses(summary)
        assert statuses["b"][0] == "rendered"
        assert {statuses[name][0] for name in "acd"} == {"pass_through"}
        with pytest.raises(Exception, match=r"clips item .*expected \{\"track\": \"V1\""):
            client.run_job("render_timeline", {**request, "clips": [{"track": 1}]}, timeout_s=60)


def test_a_clip_whose_speed_cannot_be_rendered_does_not_stop_the_others(tmp_path):
    """Reverse playback on one clip of a timeline without media ranges stopped the whole render,
    even with --clip naming another clip."""
    shot = render_clip(tmp_path / "shot.mp4", rate=Fraction(25), frame_count=30)
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for name, scalar in (("slow", 0.5), ("rev", -1.0)):
        clip = otio.schema.Clip(
            name=name,
            media_reference=otio.schema.ExternalReference(target_url=str(shot)),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(4, 25), otio.opentime.RationalTime(6, 25)
            ),
        )
        clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=scalar))
        track.append(clip)
    cut = tmp_path / "cut.otio"
    otio.adapters.write_to_file(otio.schema.Timeline(tracks=[track]), str(cut))
    summary = render_timeline(cut, tmp_path / "out", model="blend", codec="ffv1", only=["V1:0"])
    statuses = _statuses(summary.to_dict())
    assert statuses["slow"][0] == "rendered"
    assert statuses["rev"][0] == "cannot_render" and "reverse" in statuses["rev"][1]


def test_a_refused_clip_name_leaves_no_output_folder(tmp_path, capsys):
    cut = _cut(tmp_path)
    assert main(["render", str(cut), "-o", str(tmp_path / "out"), "--clip", "A1:0", "--no-engine"]) == 2
    assert "no track A1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
