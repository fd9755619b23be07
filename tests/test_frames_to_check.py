"""Frames to check: a made frame whose worst subject-sized patch is probably wrong is listed for the
editor, in the retime report and on the command line, while a mean over the frame hides it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from test_interp_scenes import texture

from engine.interp import create_backend
from engine.interp.checks import (
    CHECK_LEVELS,
    check_line,
    frame_runs,
    local_risk,
    needs_check,
    runs_text,
)
from engine.repair import repair_clip
from engine.retime import retime_clip, sidecar_path

REPO_ROOT = Path(__file__).resolve().parent.parent
HEIGHT, WIDTH, SQUARE = 160, 240, 40
BACKGROUND = texture(HEIGHT, WIDTH, seed=1)


def _picture(x: int) -> np.ndarray:
    frame = BACKGROUND.copy()
    frame[60 : 60 + SQUARE, x : x + SQUARE] = texture(SQUARE, SQUARE, seed=2)
    return frame


def _clip(path: Path, xs: list[int]) -> Path:
    """A lossless 25 fps clip of a textured square at each x of ``xs`` over a textured background."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.height, stream.width, stream.pix_fmt = HEIGHT, WIDTH, "bgr0"
        for x in xs:
            for packet in stream.encode(av.VideoFrame.from_ndarray(_picture(x), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


# the square creeps 4 px a frame (flow places it), then jumps 30 px a frame three times
CREEP_THEN_JUMP = [20, 24, 28, 32, 36, 40, 70, 100, 130, 130]


def test_local_risk_finds_one_broken_subject_that_the_mean_hides():
    risk = np.zeros((HEIGHT, WIDTH), np.float32)
    risk[60:90, 100:130] = 1.0  # a subject: 2 % of the picture
    assert float(risk.mean()) < 0.03
    assert local_risk(risk) == pytest.approx(1.0)
    spread = np.full((HEIGHT, WIDTH), 0.3, np.float32)
    assert local_risk(spread) == pytest.approx(0.3)
    assert local_risk(np.zeros((0, 0), np.float32)) == 0.0
    assert 0.0 < local_risk(np.ones((2, 2), np.float32)) <= 1.0  # tiny maps never fail


def test_frames_are_listed_only_for_measured_models_and_never_for_fallbacks():
    assert needs_check("flow", 1.0) and not needs_check("flow", 0.5)
    assert not needs_check("flow", 1.0, fallback=True)
    assert not needs_check("my-own-rife", 1.0)  # no measured level: listed nowhere
    assert "not measured for model my-own-rife" in check_line([3], 10, "my-own-rife")
    assert check_line([], 10, "flow").startswith("frames to check: none of 10 generated")


def test_frame_runs_read_as_an_editor_writes_them():
    assert frame_runs([9, 3, 4, 5, 4]) == [[3, 5], [9, 9]]
    assert runs_text(frame_runs([3, 4, 5, 9])) == "3-5, 9"
    assert runs_text([[n, n] for n in range(0, 20, 2)], limit=3) == "0, 2, 4, … 7 more"


def test_a_subject_that_jumps_is_listed_and_a_creeping_one_is_not():
    backend = create_backend("flow")
    crept = backend.synthesize_many(_picture(20), _picture(24), [0.5])[0]
    jumped = backend.synthesize_many(_picture(40), _picture(70), [0.5])[0]
    truth = _picture(55)
    wrong_share = float(np.mean(np.abs(jumped.frame.astype(int) - truth.astype(int)).max(axis=2) > 24))
    assert wrong_share > 0.01, "the jump is visibly wrong in the made frame"
    assert crept.risk_local < CHECK_LEVELS["flow"] <= jumped.risk_local
    # the mean of the map does not tell them apart as well: both are small numbers
    assert jumped.risk_score < 0.2


def _noisy_grey(seed: int) -> np.ndarray:
    """A flat grey picture with a camera's noise (sigma 2 levels): a wall, a clear sky."""
    noise = np.random.default_rng(seed).normal(0.0, 2.0, (96, 128, 3))
    return np.clip(128.0 + noise, 0, 255).astype(np.uint8)


def test_flow_lists_no_flat_noisy_picture_but_a_subject_that_jumps_and_turns_over():
    """flow's check weighs the geometric part of its risk map (flow that disagrees both ways, holes,
    occlusion) by the picture's detail: in a flat noisy picture the flow disagrees everywhere and
    the map reads 1, but nothing there can look wrong (it listed such frames); a subject jumping far
    and turning over in front of a detailed background is wrong and listed."""
    backend = create_backend("flow")
    (flat,) = backend.synthesize_many(_noisy_grey(1), _noisy_grey(2), [0.5])
    assert local_risk(flat.risk) > CHECK_LEVELS["flow"], "its map alone would list it"
    assert not needs_check("flow", flat.risk_local)

    background = texture(96, 128, seed=3)
    subject = texture(32, 32, seed=4)
    before, after = background.copy(), background.copy()
    before[30:62, 10:42] = subject
    after[30:62, 80:112] = subject[:, ::-1]
    (jumped,) = backend.synthesize_many(before, after, [0.5])
    assert needs_check("flow", jumped.risk_local)


def test_a_client_gets_the_local_risk_the_engine_measured(tmp_path):
    from process_control import background_engine

    from engine.server.client import EngineClient

    with background_engine(tmp_path / "home") as (connection, _), EngineClient(connection) as client:
        (flat,) = client.synthesize(_noisy_grey(1), _noisy_grey(2), [0.5], backend="flow")
    assert local_risk(flat.risk) > CHECK_LEVELS["flow"] > flat.risk_local


def test_a_retime_reports_the_frames_to_check(tmp_path):
    clip = _clip(tmp_path / "square.mkv", CREEP_THEN_JUMP)
    out = tmp_path / "slow.mkv"
    report = retime_clip(clip, out, speed="1/2", model="flow", codec="ffv1", audio="drop")
    made_after = {item.output_frame: item.source_frame for item in report.risk}
    listed = report.frames_to_check
    # at half speed, output frame 2n + 1 is made between source frames n and n + 1
    assert listed and {made_after[frame] for frame in listed} <= {5, 6, 7}
    assert {made_after[frame] for frame in listed} >= {6, 7}, listed
    assert all(item.local is not None for item in report.risk)
    sidecar = json.loads(sidecar_path(out).read_text())
    assert sidecar["frames_to_check"] == frame_runs(listed)
    assert all(item["check"] == (item["output_frame"] in listed) for item in sidecar["risk"])
    assert report.summary()["frames_to_check"] == frame_runs(listed)


def test_the_retime_command_names_the_frames_to_check(tmp_path):
    clip = _clip(tmp_path / "square.mkv", CREEP_THEN_JUMP)
    out = tmp_path / "slow.mkv"
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "retime", str(clip), "--speed", "1/2", "--model", "flow",
         "--audio", "drop", "-o", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    sidecar = json.loads(sidecar_path(out).read_text())
    expected = runs_text(sidecar["frames_to_check"])
    assert f"frames to check: {expected} (" in done.stdout, done.stdout
    assert "measured for flow" in done.stdout


def test_a_repair_lists_the_filled_frames_a_jump_breaks(tmp_path):
    from tests.media_factory import render_images

    # frames 0-9 on a 25 fps grid with 4 and 7 dropped: the square creeps across 4, jumps across 7
    xs = {0: 20, 1: 24, 2: 28, 3: 32, 5: 40, 6: 44, 8: 104, 9: 108}
    clip = render_images(tmp_path / "gaps.mp4", [_picture(x) for x in xs.values()], list(xs), 25)
    out = tmp_path / "fixed.mkv"
    report = repair_clip(clip, out, model="flow")
    filled = {fill.first_output_frame: fill for fill in report.fills}
    assert sorted(filled) == [4, 7]
    assert report.frames_to_check == [7] and filled[7].check == [7] and filled[4].check == []
    assert json.loads(sidecar_path(out).read_text())["frames_to_check"] == [[7, 7]]


def test_a_rendered_timeline_marks_the_frames_to_check_on_the_clip(tmp_path):
    import opentimelineio as otio

    from engine.render import render_timeline
    from engine.timeline import read_timeline
    from engine.timeline.rates import time_range

    media = _clip(tmp_path / "square.mkv", CREEP_THEN_JUMP)
    clip = otio.schema.Clip(
        name="square",
        media_reference=otio.schema.ExternalReference(target_url=media.as_uri()),
        source_range=time_range(4, 8, 25),  # 8 record frames at half speed: source 4 to 8
    )
    clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    cut = otio.schema.Timeline(name="cut")
    cut.tracks.append(otio.schema.Track(kind=otio.schema.TrackKind.Video, children=[clip]))
    otio.adapters.write_to_file(cut, str(tmp_path / "cut.otio"))

    summary = render_timeline(tmp_path / "cut.otio", tmp_path / "out", model="flow", codec="ffv1")
    (rendered,) = [c for c in summary.clips if c["status"] == "rendered"]
    runs = json.loads(sidecar_path(Path(rendered["output"])).read_text())["frames_to_check"]
    assert runs, "the jumps are listed"
    (new_clip,) = read_timeline(Path(summary.timeline_path)).tracks[0]
    marked = [
        [m.marked_range.start_time.to_frames(), m.marked_range.end_time_inclusive().to_frames()]
        for m in new_clip.markers
    ]
    assert marked == runs
    assert all(m.color == otio.schema.MarkerColor.RED and m.name.startswith("Chronoscope: check")
               for m in new_clip.markers)


def _square_timeline(tmp_path: Path, items: list[tuple[str, int, int]]) -> Path:
    """A 25 fps timeline from 01:00:00:00 of clips (name, first source frame, frames) of the
    creeping-then-jumping square, and gaps (name "gap")."""
    import opentimelineio as otio

    from engine.timeline.rates import time_range

    media = _clip(tmp_path / "square.mkv", CREEP_THEN_JUMP)
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for name, start, frames in items:
        if name == "gap":
            track.append(otio.schema.Gap(source_range=time_range(0, frames, 25)))
        else:
            reference = otio.schema.ExternalReference(target_url=media.as_uri())
            track.append(otio.schema.Clip(name=name, media_reference=reference,
                                          source_range=time_range(start, frames, 25)))
    cut = otio.schema.Timeline(name="cut", global_start_time=otio.opentime.RationalTime(90000, 25))
    cut.tracks.append(track)
    otio.adapters.write_to_file(cut, str(tmp_path / "cut.otio"))
    return tmp_path / "cut.otio"


def _check_markers(clip) -> list[tuple[str, list[int]]]:
    import opentimelineio as otio

    assert all(m.color == otio.schema.MarkerColor.RED for m in clip.markers)
    return [
        (m.name, [m.marked_range.start_time.to_frames(), m.marked_range.end_time_inclusive().to_frames()])
        for m in clip.markers
    ]


def test_a_fill_says_where_its_frames_to_check_are_and_marks_them(tmp_path, capsys):
    from engine.cli import main
    from engine.timeline import read_timeline

    # the square jumps 30 px a frame across the gap (timeline frames 5-6): flow's frames are listed
    cut = _square_timeline(tmp_path, [("a", 0, 5), ("gap", 0, 2), ("b", 7, 3)])
    outdir = tmp_path / "out"
    fill = ["fill", str(cut), "--gap", "V1:1", "-o", str(outdir), "--model", "flow", "--codec", "ffv1"]
    assert main(fill) == 0
    out = capsys.readouterr().out
    # counted in the fill, and where the timeline shows them
    assert "to check: frames 0-1 of the fill (timeline 01:00:00:05-01:00:00:06)" in out
    (gap,) = json.loads((outdir / "cut.fill-summary.json").read_text())["gaps"]
    sidecar = json.loads(sidecar_path(Path(gap["output"])).read_text())
    # the summary lists them as the sidecar and every other report do: runs, first and last
    assert gap["frames_to_check"] == sidecar["frames_to_check"] == [[0, 1]]
    assert gap["record_start_frame"] == 5 and gap["frames_to_check_at"] == "timeline 01:00:00:05-01:00:00:06"
    filled = read_timeline(outdir / "cut.chronoscope.otio").tracks[0][1]
    assert _check_markers(filled) == [("Chronoscope: check frames 0-1 of the fill", [0, 1])]


def test_a_smooth_cut_says_where_its_frames_to_check_are_and_marks_them(tmp_path, capsys):
    from engine.cli import main
    from engine.timeline import read_timeline

    # a jump cut at timeline frame 5 (source frame 5 left out): 2 frames replace frames 4 and 5
    cut = _square_timeline(tmp_path, [("a", 0, 5), ("b", 6, 4)])
    outdir = tmp_path / "out"
    assert main(["render", str(cut), "-o", str(outdir), "--smooth-cuts", "2", "--model", "flow",
                 "--codec", "ffv1", "--no-engine"]) == 0
    out = capsys.readouterr().out
    assert "to check: frames 0-1 of the smooth cut (timeline 01:00:00:04-01:00:00:05)" in out
    (record,) = json.loads((outdir / "cut.render-summary.json").read_text())["smooth_cuts"]
    sidecar = json.loads(sidecar_path(Path(record["output"])).read_text())
    assert record["frames_to_check"] == sidecar["frames_to_check"] == [[0, 1]]
    assert record["record_start_frame"] == 4
    smoothed = read_timeline(outdir / "cut.chronoscope.otio").tracks[0][1]
    assert smoothed.name == "smooth cut a > b"
    assert _check_markers(smoothed) == [("Chronoscope: check frames 0-1 of the smooth cut", [0, 1])]


def test_timeline_places_give_record_timecodes_or_timeline_frames():
    import opentimelineio as otio

    from engine.timeline.checkmarks import timeline_places

    timeline = otio.schema.Timeline(global_start_time=otio.opentime.RationalTime(86400, 24))
    assert timeline_places([[0, 0], [2, 2]], 40, timeline) == "timeline 01:00:01:16, 01:00:01:18"
    assert timeline_places([], 40, timeline) == ""
    no_start = otio.schema.Timeline()
    runs = [[0, 0], [2, 3], [5, 5], [7, 7], [9, 9], [11, 11]]
    assert timeline_places(runs, 40, no_start) == "timeline frames 40, 42-43, 45, 47, … 2 more"
