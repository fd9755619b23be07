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
import runpy
import sys
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
    removed, added, skipped = chronoscope_resolve.apply_markers(timeline, reply["markers"])
    assert (removed, added, skipped) == (0, 3, [])
    markers = timeline.GetMarkers()
    # the editor's marker holds frame 30, so the slow-motion segment's marker starts one frame later
    assert markers[31.0]["name"] == "Slow motion 12.5% (240 fps)" and markers[31.0]["duration"] == 29.0
    assert markers[0.0]["color"] == "Blue" and markers[70.0]["color"] == "Green"
    assert "- metadata: stream rate (30)" in markers[0.0]["note"]

    second = {**first, "class": "synthetic_slowmo", "segments": []}
    reply = chronoscope_resolve.call_bridge(
        settings, {"op": "detect", "timeline": path, "results": {media: second}, "start_engine": False}
    )
    assert chronoscope_resolve.apply_markers(timeline, reply["markers"]) == (3, 2, [])
    markers = timeline.GetMarkers()
    ours = {frame: m for frame, m in markers.items() if chronoscope_resolve.is_own_marker(m["customData"])}
    assert sorted(ours) == [0.0, 70.0] and {m["color"] for m in ours.values()} == {"Red"}
    assert markers[10.0]["name"] == "check the focus"
    assert markers[30.0]["name"] == "the editor's, on a segment start"
    assert markers[100.0]["customData"] == '{"not": "ours"}'
    fake_resolve.draw_markers(timeline, tmp_path / "markers.png")


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
    assert [c.GetName() for c in bins[0].GetClipList()] == ["clip2.mp4", "clip2.mp4"]
    assert pool.GetCurrentFolder() is pool.GetRootFolder()
    items = created.GetItemListInTrack("video", 1)
    assert [(i.GetStart() - created.GetStartFrame(), i.GetDuration(), i.speed) for i in items] == [
        (0, 60, 1),
        (70, 80, 1),
    ]
    assert items[0].GetMediaPoolItem().path == sample_clip.absolute()
    assert items[1].GetMediaPoolItem().path == rendered
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
    assert "error: timeline 'Real time' has no clip slower than 100 % and none marked for Chronoscope" in out
    assert "or flag it Purple" in out and "Traceback" not in out
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
