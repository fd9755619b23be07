"""`chronoscope render` through a real engine process started on demand (ZeroMQ, signed messages)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
from media_factory import render_clip

from engine.cli import main
from engine.media import FrameReader
from engine.render import summary_path
from engine.server.process import stop_engine


def test_render_through_the_engine_matches_the_timeline(tmp_path):
    shot = render_clip(tmp_path / "shot.mov", rate=Fraction(25), frame_count=30)
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    for name, start, duration, scalar in (("a", 0, 12, 0.5), ("b", 10, 8, 0.25), ("c", 20, 6, 1.0)):
        clip = otio.schema.Clip(
            name=name,
            media_reference=otio.schema.ExternalReference(target_url=str(shot)),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(start, 25), otio.opentime.RationalTime(duration, 25)
            ),
        )
        clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=scalar))
        track.append(clip)
    cut = tmp_path / "cut.otio"
    otio.adapters.write_to_file(otio.schema.Timeline(name="cut", tracks=[track]), str(cut))
    outdir = tmp_path / "out"
    try:
        assert (
            main(
                [
                    "render",
                    str(cut),
                    "-o",
                    str(outdir),
                    "--model",
                    "blend",
                    "--codec",
                    "h264",
                    "--jobs",
                    "2",
                    "--json",
                ]
            )
            == 0
        )
    finally:
        stop_engine()
    summary = json.loads(summary_path(outdir, cut).read_text())
    assert summary["runner"] == "EngineRunner"
    assert [c["status"] for c in summary["clips"]] == ["rendered", "rendered", "pass_through"]
    outputs = {c["clip_name"]: c.get("output") for c in summary["clips"]}
    for name, frames in (("a", 12), ("b", 8)):
        with FrameReader(Path(outputs[name])) as reader:
            assert [f.time_s for f in reader] == [Fraction(n, 25) for n in range(frames)]
