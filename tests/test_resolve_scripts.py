"""The three Python scripts run end to end as Resolve runs them (the entry script the installer
writes, executed with ``resolve`` predefined or reached through ``DaVinciResolveScript`` in
sys.modules), against the fake Resolve, the real bridge process and a real engine in the isolated
CHRONOSCOPE_HOME, on the sample clip.

The engine serves ``detect_speed`` and ``render_timeline``, so detection and rendering run for
real; the halves that need no detector (markers from issue-4-shaped results, the bin and the new
timeline from a rendered OTIO) are also tested on their own.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import sys
import time
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
from media_factory import render_clip

PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugins" / "davinci_resolve"
sys.path.insert(0, str(PLUGIN_DIR))

import chronoscope_resolve  # noqa: E402
import fake_resolve  # noqa: E402
import install_paths  # noqa: E402
from fake_resolve import FakeResolve, demo_project  # noqa: E402

from engine.commands import bridge  # noqa: E402
from engine.server.process import stop_engine  # noqa: E402
from engine.timeline import RenderedMedia, list_segments, read_timeline, replace_media, write_timeline  # noqa: E402

TITLES = {entry.action: entry.title for entry in install_paths.ENTRIES}
MUTATING = {
    "AddMarker",
    "DeleteMarkerAtFrame",
    "DeleteMarkersByColor",
    "DeleteMarkerByCustomData",
    "UpdateMarkerCustomData",
    "SetProperty",
    "AddFlag",
    "ClearFlags",
    "SetClipColor",
    "SetName",
    "AddTrack",
}


@pytest.fixture
def resolve():
    fake = FakeResolve(project_rate=Fraction(30))
    fake_resolve.install(fake)
    yield fake
    fake_resolve.uninstall()


@pytest.fixture
def scripts(tmp_path) -> Path:
    """Resolve's Utility folder with the entry scripts written as the installer writes them, their
    shared modules copied to a folder of their own (the installer's ``<prefix>/resolve``)."""
    utility = tmp_path / "Fusion" / "Scripts" / "Utility"
    install_paths.install(utility, tmp_path / "Chronoscope" / "resolve")
    return utility


@pytest.fixture
def installed(isolated_places):
    """The bridge config an installer writes; the engine this test starts is stopped at the end."""
    path = bridge.install_config()
    yield path
    stop_engine(timeout_s=10, force=True)


def run_script(scripts: Path, action: str, capsys, predefined: dict | None = None) -> str:
    """Run the installed entry script as Resolve would: as ``__main__``, with ``predefined`` globals
    (inside Resolve: ``resolve``), else reaching Resolve through DaVinciResolveScript."""
    capsys.readouterr()
    runpy.run_path(str(scripts / f"{TITLES[action]}.py"), init_globals=predefined, run_name="__main__")
    return capsys.readouterr().out


def snapshot(timeline) -> tuple[str, dict]:
    return otio.adapters.write_to_string(timeline.fake_to_otio(), "otio_json"), timeline.GetMarkers()


def changes(resolve, timeline) -> list[str]:
    objects = [timeline, *timeline.GetItemListInTrack("video", 1)]
    return [name for name in resolve.fake_calls_on(*objects) if name in MUTATING]


def test_detect_speed_script_end_to_end(resolve, installed, scripts, sample_clip, capsys):
    _, timeline = demo_project(resolve, sample_clip)
    resolve.fake_calls.clear()
    fake_resolve.uninstall()  # inside Resolve the script gets ``resolve`` predefined, nothing to import
    out = run_script(scripts, "detect", capsys, {"resolve": resolve})
    assert "Traceback" not in out
    assert "markers added" in out, out
    owned = [m for m in timeline.GetMarkers().values() if chronoscope_resolve.is_own_marker(m["customData"])]
    assert owned and all(json.loads(m["customData"])["kind"] == "speed" for m in owned)
    assert timeline.GetMarkers()[10.0]["name"] == "check the focus"
    # what an editor reads: the class in words, a rounded speed, a confidence in percent; the
    # engine's technical findings only at the end of a note, under its own heading
    lines = [line for line in out.splitlines() if line.startswith("Chronoscope - Detect Speed: V1 ")]
    assert len(lines) == 2, out
    assert all(re.search(r"confidence \d+%", line) for line in lines), lines
    assert not any(re.search(r"\d\.\d{4}", line) for line in lines), lines
    assert "at 50% on the timeline it plays at" in lines[1], lines
    for marker in owned:
        assert not re.search(r"\d\.\d{4}", marker["name"]), marker["name"]
        person, _, details = marker["note"].partition("\nDetails:\n")
        assert details and "Provider" not in person and "decided" not in person and "_" not in person, marker[
            "note"
        ]


def test_markers_from_detect_results_rerun_replaces_only_its_own(
    resolve, installed, sample_clip, tmp_path, capsys
):
    _, timeline = demo_project(resolve, sample_clip)
    timeline.AddMarker(30, "Pink", "the editor's, on a segment start", "", 1, "")
    timeline.AddMarker(100, "Green", "same colour as ours", "", 1, '{"not": "ours"}')
    path = chronoscope_resolve.export_timeline(resolve, timeline, str(tmp_path))
    settings = chronoscope_resolve.load_settings()
    media = str(sample_clip.absolute())
    first = {
        "speed": 0.125,
        "capture_fps": 240,
        "class": "slowmo",
        "confidence": 0.9,
        "segments": [
            {"start": 0, "end": 1, "speed": 1, "class": "realtime", "confidence": 0.8},
            {"start": 1, "end": 5.5, "speed": 0.125, "class": "slowmo", "confidence": 0.9},
        ],
        "evidence": [{"stage": "metadata", "finding": "stream rate", "value": 30}],
    }
    console = chronoscope_resolve.Console("test")
    reply = chronoscope_resolve.call_bridge(
        settings,
        {"op": "detect", "timeline": path, "results": {media: first}, "start_engine": False},
        console,
    )
    removed, added, skipped, kept = chronoscope_resolve.apply_markers(
        timeline, reply["markers"], reply["clips"]
    )
    assert (removed, added, skipped, kept) == (0, 3, [], 0)
    markers = timeline.GetMarkers()
    # the editor's marker holds frame 30, so the slow-motion segment's marker starts one frame later
    assert markers[31.0]["name"] == "Slow motion 1/8 (240 fps)" and markers[31.0]["duration"] == 29.0
    assert markers[0.0]["color"] == "Blue" and markers[70.0]["color"] == "Green"
    assert markers[0.0]["note"].endswith(
        "Details:\nmetadata: stream rate (30)\n\nChronoscope marker: V1, clip at frame 0: hug-lego-movie.mp4"
    )

    second = {**first, "class": "synthetic_slowmo", "segments": []}
    reply = chronoscope_resolve.call_bridge(
        settings, {"op": "detect", "timeline": path, "results": {media: second}, "start_engine": False}
    )
    assert chronoscope_resolve.apply_markers(timeline, reply["markers"], reply["clips"]) == (3, 2, [], 0)
    markers = timeline.GetMarkers()
    ours = {frame: m for frame, m in markers.items() if chronoscope_resolve.is_own_marker(m["customData"])}
    assert sorted(ours) == [0.0, 70.0] and {m["color"] for m in ours.values()} == {"Red"}
    assert markers[10.0]["name"] == "check the focus"
    assert markers[30.0]["name"] == "the editor's, on a segment start"
    assert markers[100.0]["customData"] == '{"not": "ours"}'
    fake_resolve.draw_markers(timeline, tmp_path / "markers.png")


def test_a_rerun_keeps_the_markers_of_clips_not_analysed_this_time(resolve, installed, tmp_path, capsys):
    """Run 2 cannot analyse clip b (here a result the bridge cannot use; in use a timeout or an
    engine error): b keeps its markers from run 1, a's are replaced; a clip that has left the
    timeline loses its markers."""
    a_path = render_clip(tmp_path / "a.mp4", rate=Fraction(30), frame_count=60)
    b_path = render_clip(tmp_path / "b.mp4", rate=Fraction(30), frame_count=60)
    project = resolve.GetProjectManager().CreateProject("rerun")
    pool = project.GetMediaPool()
    a, b = pool.ImportMedia([str(a_path), str(b_path)])
    timeline = pool.CreateEmptyTimeline("Rerun")
    timeline.fake_append(a, source_start_frames=0, duration_frames=40)
    timeline.fake_append(
        b, source_start_frames=0, duration_frames=40, record_frame=timeline.GetStartFrame() + 50
    )
    settings = chronoscope_resolve.load_settings()
    good = {"speed": 0.25, "capture_fps": 120, "class": "slowmo", "confidence": 0.9, "segments": []}

    def detect(results):
        path = chronoscope_resolve.export_timeline(resolve, timeline, str(tmp_path))
        request = {"op": "detect", "timeline": path, "results": results, "start_engine": False}
        reply = chronoscope_resolve.call_bridge(settings, request)
        return chronoscope_resolve.apply_markers(timeline, reply["markers"], reply["clips"])

    assert detect({str(a_path): good, str(b_path): good}) == (0, 2, [], 0)
    assert detect({str(a_path): {**good, "class": "realtime"}, str(b_path): {"class": "??"}}) == (1, 1, [], 1)
    markers = timeline.GetMarkers()
    assert [(frame, m["color"]) for frame, m in sorted(markers.items())] == [(0.0, "Blue"), (50.0, "Green")]
    # b moves: its old place names no clip any more, so its marker there goes with the next run
    (moved,) = [i for i in timeline.GetItemListInTrack("video", 1) if i.GetMediaPoolItem() is b]
    moved.start_frames += 10
    assert detect({str(a_path): good, str(b_path): {"class": "??"}}) == (2, 1, [], 0)
    assert sorted(timeline.GetMarkers()) == [0.0]


def test_render_slow_motion_script_end_to_end(resolve, installed, scripts, sample_clip, capsys):
    project, timeline = demo_project(resolve, sample_clip)
    resolve.fake_calls.clear()
    before = snapshot(timeline)
    out = run_script(scripts, "render", capsys)
    assert "Traceback" not in out
    assert snapshot(timeline) == before and changes(resolve, timeline) == []
    created = project.GetCurrentTimeline()
    assert created.GetName() == "Cut 1 (Chronoscope)"
    assert all(item.speed == 1 for item in created.GetItemListInTrack("video", 1))


def test_render_slow_motion_renders_only_the_flagged_clips_when_any_is_flagged(
    resolve, installed, scripts, sample_clip, capsys
):
    """Rendering takes time on a CPU: an editor flags the slowed clips to render now. A flagged
    clip was rendered on top of every slowed one, and a flagged clip at 100 % went to the engine,
    which passed it through."""
    project = resolve.GetProjectManager().CreateProject("flags")
    media = project.GetMediaPool().ImportMedia([str(sample_clip.absolute())])[0]
    timeline = project.GetMediaPool().CreateEmptyTimeline("Two slow")
    timeline.fake_append(media, source_start_frames=0, duration_frames=20, speed=Fraction(1, 2))
    chosen = timeline.fake_append(
        media, source_start_frames=40, duration_frames=20, speed=Fraction(1, 2), record_frame=108020
    )
    chosen.AddFlag("Purple")
    out = run_script(scripts, "render", capsys)
    assert "Traceback" not in out
    title = "Chronoscope - Render Slow Motion: "
    assert f"{title}1 of 1 clips rendered into " in out, out
    assert f"{title}not rendered: V1 hug-lego-movie.mp4: not flagged Purple: only the flagged clips" in out
    created = project.GetCurrentTimeline()
    items = created.GetItemListInTrack("video", 1)
    # the first keeps its speed for Resolve to play; the flagged one is the render, at 100 %
    assert [item.speed for item in items] == [Fraction(1, 2), 1]
    assert items[0].GetMediaPoolItem() is media and items[1].GetMediaPoolItem() is not media


def test_rendered_timeline_becomes_a_new_timeline_and_bin(resolve, sample_clip, tmp_path, capsys):
    project, timeline = demo_project(resolve, sample_clip)
    resolve.fake_calls.clear()
    pool = project.GetMediaPool()
    before = snapshot(timeline)
    exported = tmp_path / "cut.otio"
    timeline.Export(str(exported), resolve.EXPORT_OTIO)
    source = read_timeline(exported)
    slow = [s for s in list_segments(source) if s.time_scalar < 1]
    (tmp_path / "render").mkdir()
    rendered = render_clip(tmp_path / "render" / "clip2.mp4", rate=Fraction(30), frame_count=80)
    new_timeline = replace_media(source, {slow[0].clip: RenderedMedia(rendered, 80)})
    out_path = tmp_path / "render" / "cut.chronoscope.otio"
    write_timeline(new_timeline, out_path)
    reply = {
        "timeline": str(out_path),
        "media": [str(rendered)],
        "clips": [{"track": "V1"}],
        "output_dir": str(out_path.parent),
    }
    for expected in ("Cut 1 (Chronoscope)", "Cut 1 (Chronoscope 2)"):
        created = chronoscope_resolve.import_render(
            project, timeline, reply, chronoscope_resolve.Console("t")
        )
        assert created.GetName() == expected and project.GetCurrentTimeline() is created
    bins = pool.GetRootFolder().GetSubFolderList()
    assert [b.GetName() for b in bins] == ["Chronoscope"]
    # the second import finds the render in the pool (its "File Path") and uses it again
    assert [c.GetName() for c in bins[0].GetClipList()] == ["clip2.mp4"]
    assert pool.GetCurrentFolder() is pool.GetRootFolder()
    items = created.GetItemListInTrack("video", 1)
    assert [(i.GetStart() - created.GetStartFrame(), i.GetDuration(), i.speed) for i in items] == [
        (0, 60, 1),
        (70, 80, 1),
    ]
    assert items[0].GetMediaPoolItem().path == sample_clip.absolute()
    assert items[1].GetMediaPoolItem() is bins[0].GetClipList()[0]
    assert snapshot(timeline) == before and changes(resolve, timeline) == []


def test_open_in_preview_script_end_to_end(
    resolve, installed, scripts, sample_clip, tmp_path, capsys, monkeypatch
):
    settings = json.loads(installed.read_text())
    shot = tmp_path / "preview.png"
    settings["screenshot"] = str(shot)
    installed.write_text(json.dumps(settings))
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    demo_project(resolve, sample_clip)
    out = run_script(scripts, "preview", capsys)
    assert "Traceback" not in out
    assert "Chronoscope - Open in Preview: preview app started on 'Cut 1'" in out, out
    assert shot.is_file() and shot.stat().st_size > 1000


def test_missing_installation_is_a_clear_message(
    resolve, scripts, sample_clip, capsys, monkeypatch, tmp_path
):
    monkeypatch.setenv("PATH", str(tmp_path))
    demo_project(resolve, sample_clip)
    out = run_script(scripts, "detect", capsys)
    assert (
        "Chronoscope - Detect Speed: error: Chronoscope is not installed, or this script cannot find it"
        in out
    )
    assert "chronoscope bridge --install-config" in out and "Traceback" not in out

    config = Path(os.environ["CHRONOSCOPE_HOME"]) / "config" / "resolve-bridge.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"command": [str(tmp_path / "uninstalled" / "python"), "-m", "engine.cli"]}))
    out = run_script(scripts, "render", capsys)
    assert (
        f"Chronoscope is not installed where {config} says: "
        f"{tmp_path / 'uninstalled' / 'python'} does not exist" in out
    )


def test_missing_engine_nothing_to_do_and_no_timeline_are_clear(
    resolve, installed, scripts, sample_clip, capsys, tmp_path
):
    settings = json.loads(installed.read_text())
    installed.write_text(json.dumps({**settings, "start_engine": False}))
    out = run_script(scripts, "detect", capsys)
    assert "Chronoscope - Detect Speed: error: no project is open in Resolve" in out

    project, timeline = demo_project(resolve, sample_clip)
    out = run_script(scripts, "detect", capsys)
    assert "error: no Chronoscope engine is running; start one with `chronoscope engine start`" in out

    pool = project.GetMediaPool()
    pool.CreateEmptyTimeline("Real time")
    pool.AppendToTimeline(
        [{"mediaPoolItem": pool.GetRootFolder().GetClipList()[0], "startFrame": 0, "endFrame": 29}]
    )
    out = run_script(scripts, "render", capsys)
    assert "error: timeline 'Real time' has no clip slower than 100 %" in out
    assert "slow a clip down (Change Clip Speed)" in out and "Traceback" not in out
    assert project.GetTimelineCount() == 2


def test_entry_runs_its_module_from_any_folder_and_says_when_it_is_gone(resolve, installed, tmp_path, capsys):
    modules = tmp_path / "odd 'name' \"quoted\" back\\slash é $HOME"
    utility = tmp_path / "Utility"
    install_paths.install(utility, modules)
    out = run_script(utility, "detect", capsys)
    assert out == (
        "Chronoscope - Detect Speed: error: no project is open in Resolve; "
        "open one and run the script again\n"
    )

    (modules / "chronoscope_resolve.py").unlink()
    out = run_script(utility, "render", capsys)
    assert out == (
        f"Chronoscope - Render Slow Motion: error: {modules / 'chronoscope_resolve.py'} is missing; "
        "run the Chronoscope installer again\n"
    )


FAKE_BRIDGE = r"""
import json, os, signal, sys, time

request = json.loads(sys.stdin.read())
with open(os.environ["FAKE_BRIDGE_REQUEST"], "w") as handle:
    json.dump(request, handle)
stop = []
signal.signal(signal.SIGTERM, lambda number, frame: stop.append(number))
key = '{"chronoscope":1,"kind":"speed","clip":"a.mp4","track":"V1","record_start_frame":0,"media":"/m/a.mp4",'
clips = [
    {"clip": "a.mp4", "track": "V1", "record_start_frame": 0, "media": "/m/a.mp4", "marker_key": key,
     "status": "detected", "summary": "slow motion 1/4 (shot at 120 fps), confidence 90%"},
    {"clip": "b.mp4", "track": "V1", "record_start_frame": 50, "media": "/m/b.mp4",
     "marker_key": key.replace("a.mp4", "b.mp4").replace(":0,", ":50,"), "status": "stopped",
     "summary": "not analysed: Chronoscope was stopped before it got to this clip"},
]
markers = [{"frame": 0, "duration": 40, "color": "Green", "name": "Slow motion 1/4 (120 fps)", "note": "",
            "custom_data": key + '"segment":{},"result":{}}', "clip": "a.mp4", "track": "V1"}]
if os.environ["FAKE_BRIDGE_MODE"] == "talkative":  # a long run that says what it does as it goes
    for number in range(1, 13):
        print(f"chronoscope: INFO: detect {number}/12", file=sys.stderr, flush=True)
        time.sleep(0.1)
    print(json.dumps({"ok": True, "op": "detect", "clips": clips[:1], "markers": markers}))
else:  # stuck after its first clip: silent until stopped, then it answers with what it had
    print("chronoscope: INFO: detect 2/2", file=sys.stderr, flush=True)
    while not stop:
        time.sleep(0.02)
    stopped = "stopped before it finished; its engine job was cancelled"
    print(json.dumps({"ok": True, "op": "detect", "clips": clips, "markers": markers, "stopped": stopped}))
    sys.exit(130)
"""


@pytest.fixture
def fake_bridge(tmp_path, monkeypatch):
    """Settings whose command is a stand-in bridge (``FAKE_BRIDGE``), with a silence limit of
    ``timeout_s`` 0.2 s plus 0.3 s; returns (settings, the request it was sent, the mode setter)."""
    script = tmp_path / "fake_bridge.py"
    script.write_text(FAKE_BRIDGE)
    request = tmp_path / "request.json"
    monkeypatch.setenv("FAKE_BRIDGE_REQUEST", str(request))
    monkeypatch.setattr(chronoscope_resolve, "SILENCE_MARGIN_S", 0.3)
    monkeypatch.setattr(chronoscope_resolve, "POLL_S", 0.05)
    settings = {"command": [sys.executable, str(script)], "timeout_s": 0.2, "start_engine": False}

    def mode(name: str) -> None:
        monkeypatch.setenv("FAKE_BRIDGE_MODE", name)

    return settings, request, mode


@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in bridge catches SIGTERM")
def test_a_long_run_that_keeps_talking_is_never_cut_short(fake_bridge):
    """``timeout_s`` bounds one engine job, not the whole run: it goes to the bridge, and a run of
    many jobs lasting far longer than ``timeout_s`` plus the margin is waited for to the end."""
    settings, request, mode = fake_bridge
    mode("talkative")
    started = time.monotonic()
    reply = chronoscope_resolve.call_bridge(settings, {"op": "detect", "timeline": "/t.otio"})
    assert time.monotonic() - started > 1.0
    assert [c["clip"] for c in reply["clips"]] == ["a.mp4"] and "stopped" not in reply
    sent = json.loads(request.read_text())
    assert sent["timeout_s"] == 0.2 and sent["start_engine"] is False


@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in bridge catches SIGTERM")
def test_a_silent_bridge_is_stopped_and_what_it_finished_is_applied(resolve, fake_bridge, tmp_path, capsys):
    settings, _request, mode = fake_bridge
    mode("silent")
    project = resolve.GetProjectManager().CreateProject("p")
    timeline = project.GetMediaPool().CreateEmptyTimeline("Stuck")
    media = project.GetMediaPool().ImportMedia([str(render_clip(tmp_path / "a.mp4", rate=Fraction(30)))])[0]
    timeline.fake_append(media, source_start_frames=0, duration_frames=20)
    timeline.fake_append(
        media, source_start_frames=0, duration_frames=20, record_frame=timeline.GetStartFrame() + 50
    )
    console = chronoscope_resolve.Console("test")
    chronoscope_resolve.detect_workflow(resolve, settings, console)
    out = capsys.readouterr().out
    assert "test: V1 b.mp4: not analysed: Chronoscope was stopped before it got to this clip" in out
    assert (
        "test: Chronoscope said nothing for 0.5 s, longer than one engine job may take (timeout_s 0.2 s); it "
        "was stopped and its engine job cancelled; the 1 clips analysed before that get their markers" in out
    ), out
    assert timeline.GetMarkers()[0.0]["name"] == "Slow motion 1/4 (120 fps)"


def test_timeout_from_the_config_bounds_each_engine_job(resolve, installed, scripts, sample_clip, capsys):
    settings = json.loads(installed.read_text())
    installed.write_text(json.dumps({**settings, "timeout_s": 0.2}))
    _, timeline = demo_project(resolve, sample_clip)
    out = run_script(scripts, "detect", capsys)
    lines = [line for line in out.splitlines() if line.startswith("Chronoscope - Detect Speed: V1 ")]
    assert lines and all("not analysed: " in line and "within 0.2 s" in line for line in lines), out
    assert "0 markers added" in out


def test_render_reports_what_it_leaves_on_a_drop_frame_timeline(installed, scripts, sample_clip, capsys):
    """A 29.97 drop-frame timeline (01:00:00;00 is frame 107892) with a flagged 50 % clip to
    render, and what cannot be rendered: a speed ramp, a compound clip, flagged offline media, a
    flagged clip that is disabled. The render goes ahead and the console names each clip it left, and why."""
    resolve = FakeResolve(project_rate=Fraction(30000, 1001), drop_frame=True)
    fake_resolve.install(resolve)
    try:
        project = resolve.GetProjectManager().CreateProject("df")
        pool = project.GetMediaPool()
        media = pool.ImportMedia([str(sample_clip.absolute())])[0]
        timeline = pool.CreateEmptyTimeline("DF cut")
        start = timeline.GetStartFrame()
        assert start == 107892
        chosen = timeline.fake_append(media, source_start_frames=0, duration_frames=30, speed=Fraction(1, 2))
        chosen.AddFlag("Purple")
        ramped = timeline.fake_append(
            media, source_start_frames=20, duration_frames=20, record_frame=start + 30
        )
        ramped.fake_speed_ramp([(0, 1), (19, Fraction(1, 2))])
        off = timeline.fake_append(
            media, source_start_frames=60, duration_frames=20, record_frame=start + 50, speed=Fraction(1, 2)
        )
        off.SetClipEnabled(False)
        off.AddFlag("Purple")
        gone = fake_resolve.FakeTimelineItem(
            timeline, None, "offline.mov", start + 70, 20, Fraction(0), Fraction(1, 2)
        )
        gone.offline_path = "/nowhere/A001_C002.mov"
        gone.AddFlag("Purple")
        timeline.tracks["video"][0].append(gone)
        inner = timeline.fake_append(
            media, source_start_frames=90, duration_frames=20, speed=Fraction(1, 2), record_frame=start + 90
        )
        timeline.CreateCompoundClip([inner], {"name": "Slow bit"})
        out = run_script(scripts, "render", capsys)
    finally:
        fake_resolve.uninstall()
    assert "Traceback" not in out
    created = project.GetCurrentTimeline()
    assert created.GetName() == "DF cut (Chronoscope)", out
    assert (created.GetStartFrame(), created.GetStartTimecode()) == (107892, "01:00:00;00")
    title = "Chronoscope - Render Slow Motion: "
    assert f"{title}1 of 1 clips rendered into " in out, out
    assert (
        f"{title}not rendered: V1 hug-lego-movie.mp4: its speed ramp (2 keyframes, speed ratio 75%) is not "
        in out
    )
    assert f"{title}not rendered: V1 hug-lego-movie.mp4: the clip is disabled: not rendered" in out
    assert (
        f"{title}not rendered: V1 offline.mov: media offline: Resolve has no file for "
        "'/nowhere/A001_C002.mov'" in out
    )
    assert (
        f"{title}not rendered: V1 Slow bit: a compound clip (a nested timeline): its clips are not rendered; "
        in out
    )
    assert "Decompose in Place" in out and "None" not in out
    items = created.GetItemListInTrack("video", 1)
    folder = Path(os.environ["CHRONOSCOPE_HOME"]) / "data" / "resolve-renders" / "df" / "DF_cut"
    assert items[0].speed == 1 and items[0].GetMediaPoolItem().path.parent == folder


def test_a_second_render_resumes_in_the_same_folder_and_imports_nothing_again(
    resolve, installed, sample_clip, capsys
):
    """Every run of one project's timeline renders into one folder, named after both: the second
    run finds the first's render by its content hash (nothing is rendered or written again), and
    the media pool item of that file is used again instead of a second copy in the bin."""
    project = resolve.GetProjectManager().CreateProject("Projet d'été")
    pool = project.GetMediaPool()
    media = pool.ImportMedia([str(sample_clip.absolute())])[0]
    timeline = pool.CreateEmptyTimeline("Cut 1 / final")
    timeline.fake_append(media, source_start_frames=0, duration_frames=20)
    timeline.fake_append(
        media, source_start_frames=40, duration_frames=16, speed=Fraction(1, 2), record_frame=108020
    )
    settings = chronoscope_resolve.load_settings()
    folder = (
        Path(os.environ["CHRONOSCOPE_HOME"]) / "data" / "resolve-renders" / "Projet_d_été" / "Cut_1_final"
    )

    first = chronoscope_resolve.render_workflow(resolve, settings, chronoscope_resolve.Console("first"))
    written = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    renders = [name for name in written if name.endswith(".mov")]
    assert len(renders) == 1, written
    project.SetCurrentTimeline(timeline)
    capsys.readouterr()
    second = chronoscope_resolve.render_workflow(resolve, settings, chronoscope_resolve.Console("second"))
    out = capsys.readouterr().out
    assert "Traceback" not in out
    again = f"second: 1 of 1 clips rendered into {folder} (1 of them rendered by an earlier run, "
    assert again + "taken as they were)" in out, out
    assert "second: 1 rendered files were in the media pool already" in out
    assert {path.name: path.stat().st_mtime_ns for path in folder.iterdir() if path.suffix == ".mov"} == {
        name: written[name] for name in renders
    }
    (chronoscope_bin,) = pool.GetRootFolder().GetSubFolderList()
    assert [item.GetName() for item in chronoscope_bin.GetClipList()] == renders
    assert [first.GetName(), second.GetName()] == [
        "Cut 1 / final (Chronoscope)",
        "Cut 1 / final (Chronoscope 2)",
    ]
    used = [[i.GetMediaPoolItem() for i in t.GetItemListInTrack("video", 1)] for t in (first, second)]
    assert used[0] == used[1] and used[0][1] is chronoscope_bin.GetClipList()[0]


def test_markers_on_the_rendered_timeline_are_still_known_as_ours(resolve, installed, sample_clip, capsys):
    """Render Slow Motion builds its new timeline from OTIO, and Resolve's OTIO keeps a marker's
    colour, name and note but not its customData. Detect run on that timeline still knows
    Chronoscope's markers (by their note's last line and colour) and replaces them, rather than
    adding new ones beside them; the editor's marker stays, and a clip not analysed this time keeps
    its markers."""
    project, timeline = demo_project(resolve, sample_clip)
    settings = chronoscope_resolve.load_settings()
    result = {"speed": 0.25, "capture_fps": 120, "class": "slowmo", "confidence": 0.9, "segments": []}

    def detect(on, results):
        folder = Path(os.environ["CHRONOSCOPE_HOME"]) / "exports"
        folder.mkdir(exist_ok=True)
        path = chronoscope_resolve.export_timeline(resolve, on, str(folder))
        request = {"op": "detect", "timeline": path, "results": results, "start_engine": False}
        reply = chronoscope_resolve.call_bridge(settings, request)
        return chronoscope_resolve.apply_markers(on, reply["markers"], reply["clips"])

    assert detect(timeline, {str(sample_clip.absolute()): result}) == (0, 2, [], 0)
    created = chronoscope_resolve.render_workflow(resolve, settings, chronoscope_resolve.Console("render"))
    carried = created.GetMarkers()
    assert sorted(carried) == [0.0, 10.0, 70.0] and {m["customData"] for m in carried.values()} == {""}

    render = created.GetItemListInTrack("video", 1)[1].GetMediaPoolItem().path  # the 50 % clip's render
    both = {str(sample_clip.absolute()): result, str(render): {**result, "class": "realtime"}}
    assert detect(created, both) == (2, 2, [], 0)
    markers = created.GetMarkers()
    assert sorted(markers) == [0.0, 10.0, 70.0], markers
    assert markers[10.0]["name"] == "check the focus"
    assert [markers[f]["color"] for f in (0.0, 70.0)] == ["Green", "Blue"]
    own = [f for f, m in carried.items() if chronoscope_resolve.is_own_marker("", m["note"], m["color"])]
    assert own == [0.0, 70.0]
    # the render's result cannot be used this time: its clip keeps its marker, the other's is replaced
    assert detect(created, {**both, str(render): {"class": "??"}}) == (1, 1, [], 1)
    assert sorted(created.GetMarkers()) == [0.0, 10.0, 70.0]
