"""``chronoscope bridge``: the JSON-over-stdio door the Resolve scripts use, run as a real process.

Detect results shaped as issue 4 specifies are fed in through the request's ``results`` so that
marker placement is checked exactly, with or without a detector in this engine build.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest

PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugins" / "davinci_resolve"
sys.path.insert(0, str(PLUGIN_DIR))

from fake_resolve import FakeResolve, FakeTimelineItem, demo_project  # noqa: E402
from media_factory import render_clip  # noqa: E402

from engine.bridge.config import install_config  # noqa: E402
from engine.bridge.evidence import evidence_lines  # noqa: E402
from engine.bridge.markers import MARKER_TAG  # noqa: E402
from engine.bridge.protocol import PROTOCOL_VERSION, format_reply  # noqa: E402
from engine.bridge.render_result import rendered_media, rendered_timeline  # noqa: E402
from engine.bridge.results import detect_result_of  # noqa: E402
from engine.bridge.words import confidence_words, marker_name, rate_words, speed_words  # noqa: E402
from engine.commands import bridge  # noqa: E402
from engine.errors import TimelineNotFoundError, UnsupportedOptionError  # noqa: E402
from engine.server.process import stop_engine  # noqa: E402
from engine.timeline import read_timeline  # noqa: E402

DETECT_RESULT = {
    "speed": 0.125,
    "capture_fps": 240,
    "class": "slowmo",
    "confidence": 0.9,
    "segments": [
        {"start": 0, "end": 1.0, "speed": 1, "class": "realtime", "confidence": 0.8},
        {"start": 1.0, "end": "11/2", "speed": "1/8", "class": "slowmo", "confidence": 0.9},
    ],
    "evidence": {"metadata": "no capture-rate tag", "estimator": {"log2_speed": -3.0}},
    "analysis": {"notes": ["the segments differ from the clip (slowmo): 82 % slowmo, 18 % realtime"]},
}


def call(request: dict | str, *reply_format: str) -> tuple[int, str, str]:
    """The bridge as the scripts run it: a separate process."""
    text = request if isinstance(request, str) else json.dumps(request)
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "bridge", *reply_format],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def ask(monkeypatch, capsys):
    """The bridge's ``run`` in this process (stdin and stdout swapped): quick for the error paths."""

    def ask_bridge(request: dict | str, reply_format: str = "json") -> tuple[int, str]:
        text = request if isinstance(request, str) else json.dumps(request)
        monkeypatch.setattr(sys, "stdin", io.StringIO(text))
        capsys.readouterr()
        status = bridge.run(argparse.Namespace(reply=reply_format, install_config=None))
        return status, capsys.readouterr().out

    return ask_bridge


@pytest.fixture
def exported(sample_clip, tmp_path) -> Path:
    resolve = FakeResolve(project_rate=Fraction(30))
    _, timeline = demo_project(resolve, sample_clip)
    path = tmp_path / "cut.otio"
    assert timeline.Export(str(path), resolve.EXPORT_OTIO)
    return path


def test_bad_requests_get_a_json_error_naming_the_problem(tmp_path, ask):
    status, out, _ = call("not json")
    assert status == bridge.EXIT_ERROR
    reply = json.loads(out)
    assert reply["ok"] is False and reply["error"]["type"] == "UnsupportedOptionError"
    assert "not JSON" in reply["error"]["message"]
    status, out = ask({"op": "ping", "protocol": 99})
    assert "bridge protocol 99, this Chronoscope speaks 1" in json.loads(out)["error"]["message"]
    status, out = ask({"op": "ping", "protocol": True})
    assert "bridge protocol True" in json.loads(out)["error"]["message"]
    status, out = ask('{"op": "ping", "x": NaN}')
    assert "holds NaN, which is not a JSON number" in json.loads(out)["error"]["message"]
    status, out = ask('{"op": "ping", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert status == bridge.EXIT_ERROR
    assert "nests arrays and objects too deeply" in json.loads(out)["error"]["message"]
    status, out = ask({"op": "teleport"})
    assert "operations: ping, detect, render, open_preview" in json.loads(out)["error"]["message"]
    status, out = ask({"op": "detect", "timeline": str(tmp_path / "gone.otio")})
    assert json.loads(out)["error"] == {
        "type": "TimelineNotFoundError",
        "message": f"timeline file not found: {tmp_path / 'gone.otio'}",
    }


def test_fields_of_the_wrong_kind_or_out_of_range_are_refused_by_name(exported, ask):
    """Found by the s19 audit: a timeout of 1e308 s overflowed the wait (a traceback, exit 70, no
    reply); a flag of 7 was taken as "7", a disabled entry saying "banana" as a disabled clip, and a
    relative output_dir with '..' left the render folder."""
    timeline = str(exported)
    status, out = ask({"op": "detect", "timeline": timeline, "timeout_s": 1e308})
    assert status == bridge.EXIT_ERROR
    assert json.loads(out)["error"]["message"] == (
        "timeout_s must be a number of seconds above 0 and at most 2592000 (30 days), got 1e+308"
    )
    status, out = ask({"op": "render", "timeline": timeline, "flag": 7})
    assert json.loads(out)["error"]["message"] == "flag must be text, got 7"
    disabled = [{"track": "V1", "record_start_frame": 0, "what": "banana"}]
    status, out = ask({"op": "detect", "timeline": timeline, "disabled": disabled})
    assert "says what is off as 'banana'; give \"clip\" or \"track\"" in json.loads(out)["error"]["message"]
    status, out = ask({"op": "render", "timeline": timeline, "output_dir": "../../escape"})
    assert status == bridge.EXIT_ERROR
    message = json.loads(out)["error"]["message"]
    assert "output_dir '../../escape' is relative and climbs out with '..'" in message
    nowhere = [{"track": "V9", "record_start_frame": 70}]
    status, out = ask({"op": "render", "timeline": timeline, "clips": nowhere})
    assert "no clip starts where the 1 flagged clip is (V9 at frame 70) in the exported timeline" in (
        json.loads(out)["error"]["message"]
    )


def test_a_preview_app_that_cannot_start_is_said_not_started(exported, ask, monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "no-such-platform")
    status, out = ask({"op": "open_preview", "timeline": str(exported)})
    assert status == bridge.EXIT_ERROR
    message = json.loads(out)["error"]["message"]
    assert message.startswith("the preview app ended at once (status ") and "preview.log" in message


def test_missing_engine_is_a_clear_message_when_not_allowed_to_start_one(ask):
    status, out = ask({"op": "ping", "start_engine": False})
    reply = json.loads(out)
    assert status == bridge.EXIT_ERROR and reply["error"]["type"] == "EngineNotRunningError"
    assert (
        "no Chronoscope engine is running; start one with `chronoscope engine start`"
        in reply["error"]["message"]
    )


def test_ping_starts_the_engine_on_demand_and_lists_its_capabilities():
    try:
        status, out, err = call({"op": "ping"})
        reply = json.loads(out)
        assert status == 0, err
        assert reply["ok"] and reply["op"] == "ping" and reply["protocol"] == PROTOCOL_VERSION
        assert reply["engine"]["pid"] != os.getpid()
        assert (
            "detect_speed"
            in reply["engine"]["capabilities"]["available"] + reply["engine"]["capabilities"]["missing"]
        )
    finally:
        stop_engine(timeout_s=10, force=True)


def test_a_job_that_overruns_the_timeout_is_cancelled_and_the_reply_says_so(exported):
    from engine.server.client import EngineClient

    try:
        status, out, err = call({"op": "detect", "timeline": str(exported), "timeout_s": 0.2})
        reply = json.loads(out)
        assert reply["ok"], err
        messages = [clip.get("message", "") for clip in reply["clips"]]
        assert messages and all("within 0.2 s; it " in m and "cancelled" in m for m in messages), messages
        with EngineClient.connect() as client:
            deadline = time.monotonic() + 30
            while (counts := client.info()["jobs"]["counts"])["running"]:
                assert time.monotonic() < deadline, counts
                time.sleep(0.05)
        # both clips use one media file, so one analysis job served them
        assert counts["cancelled"] == 1 and counts["done"] == 0, counts
    finally:
        stop_engine(timeout_s=10, force=True)


def test_stopping_an_overrunning_bridge_keeps_the_clips_it_finished(sample_clip, tmp_path):
    """What the Resolve scripts do when the bridge says nothing for too long (``stop_bridge``:
    SIGTERM, then a wait): the bridge cancels the engine job it waits for and answers with the
    clips it had finished, their markers included; the rest are listed as stopped."""
    import chronoscope_resolve

    from engine.server.client import EngineClient

    quick = render_clip(tmp_path / "quick.mp4", rate=Fraction(30), frame_count=40)
    resolve = FakeResolve(project_rate=Fraction(30))
    pool = resolve.GetProjectManager().CreateProject("p").GetMediaPool()
    first, slow = pool.ImportMedia([str(quick), str(sample_clip.absolute())])
    timeline = pool.CreateEmptyTimeline("Two media")
    timeline.fake_append(first, source_start_frames=0, duration_frames=30)
    timeline.fake_append(slow, source_start_frames=0, duration_frames=60)
    path = tmp_path / "two.otio"
    timeline.Export(str(path), resolve.EXPORT_OTIO)
    given = {"speed": 1, "class": "realtime", "confidence": 0.8, "segments": []}
    child = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "bridge"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        child.stdin.write(json.dumps({"op": "detect", "timeline": str(path), "results": {str(quick): given}}))
        child.stdin.close()
        deadline = time.monotonic() + 60
        client = None
        while True:
            assert child.poll() is None and time.monotonic() < deadline, "no detect job appeared"
            try:
                client = client or EngineClient.connect()
                active = [job for job in client.info()["jobs"]["active"] if job["kind"] == "detect_speed"]
            except Exception:  # the engine is still starting
                active = []
            if active:
                break
            time.sleep(0.02)
        chronoscope_resolve.stop_bridge(child, grace_s=60)
        out, err = child.stdout.read(), child.stderr.read()
        assert child.returncode == 130, err
        reply = json.loads(out)
        assert reply["ok"] and reply["stopped"] == "stopped before it finished; its engine job was cancelled"
        assert [(c["clip"], c["status"]) for c in reply["clips"]] == [
            ("quick.mp4", "detected"),
            ("hug-lego-movie.mp4", "stopped"),
        ]
        assert [m["clip"] for m in reply["markers"]] == ["quick.mp4"]
        job_id = active[0]["job_id"]
        while client.job_status(job_id)["state"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert client.job_status(job_id)["state"] == "cancelled"
        client.close()
    finally:
        if child.poll() is None:
            child.kill()
        stop_engine(timeout_s=10, force=True)


def test_made_slow_motion_names_no_rate_it_was_shot_at(exported, sample_clip, ask):
    """Made frames were not shot at any rate: the rate their speed implies (30 fps at 1/4: 120 fps)
    named as "shot at 120 fps" read as a capture the editor could rely on."""
    made = {
        "speed": 0.25, "capture_fps": None, "class": "synthetic_slowmo", "confidence": 0.9,
        "segments": [{"start": 0, "end": 6, "speed": 0.25, "class": "synthetic_slowmo", "confidence": 0.9}],
        "evidence": {},
    }
    media = str(sample_clip.absolute())
    request = {"op": "detect", "timeline": str(exported), "results": {media: made}, "start_engine": False}
    status, out = ask(request)
    assert status == 0, out
    reply = json.loads(out)
    assert [m["name"] for m in reply["markers"]][0] == "Fake slow motion 1/4"
    assert reply["clips"][0]["summary"] == "fake slow motion 1/4, confidence 90%"
    assert reply["markers"][0]["note"].startswith("Fake slow motion 1/4: confidence 90%.")
    assert "shot at" not in out


def test_detect_with_given_results_maps_segments_onto_timeline_frames(exported, sample_clip, ask):
    media = str(sample_clip.absolute())
    status, out = ask(
        {"op": "detect", "timeline": str(exported), "results": {media: DETECT_RESULT}, "start_engine": False}
    )
    assert status == 0, out
    reply = json.loads(out)
    assert [c["status"] for c in reply["clips"]] == ["detected", "detected"]
    placed = [(m["frame"], m["duration"], m["color"], m["name"]) for m in reply["markers"]]
    # clip 1: media 0-2 s at 100 % on frames 0-59; clip 2: media 2-3.33 s at 50 % on frames 70-149
    assert placed == [
        (0, 30, "Blue", "Real time (30 fps)"),
        (30, 30, "Green", "Slow motion 1/8 (240 fps)"),
        (70, 80, "Green", "Slow motion 1/8 (240 fps) at 50%: plays at 1/16"),
    ]
    # the first clip's markers say real time, then slow motion (as its segments): its line says so
    # too (it said only "slow motion", the marker before it "Real time")
    assert [c["summary"] for c in reply["clips"]] == [
        "slow motion 1/8 (shot at 240 fps), confidence 90%; its markers show 50 % real time, 50 % slow "
        "motion",
        "slow motion 1/8 (shot at 240 fps), confidence 90%; at 50% on the timeline it plays at 1/16",
    ]
    custom = json.loads(reply["markers"][1]["custom_data"])
    assert reply["markers"][1]["custom_data"].startswith(MARKER_TAG)
    assert reply["markers"][1]["custom_data"].startswith(reply["clips"][0]["marker_key"])
    assert reply["markers"][2]["custom_data"].startswith(reply["clips"][1]["marker_key"])
    assert custom["segment"]["end"] == "11/2" and custom["result"]["class"] == "slowmo"
    assert custom["media"] == media and custom["track"] == "V1" and custom["record_start_frame"] == 0
    note = reply["markers"][2]["note"].split("\n")
    # what an editor reads first, then what the engine found; the technical lines come last
    assert note[:4] == [
        "Slow motion 1/8: shot at 240 fps, confidence 90%.",
        "The clip runs at 50% on the timeline: it plays at 1/16.",
        "hug-lego-movie.mp4 on V1, media 2.00 s to 3.33 s.",
        "note: the segments differ from the clip (slowmo): 82 % slowmo, 18 % realtime",
    ]
    assert note[4:-2] == ["", "Details:", "metadata: no capture-rate tag", "estimator: log2 speed -3"]
    # last, what tells the marker is Chronoscope's, and whose, once Resolve's OTIO drops customData
    assert note[-2:] == ["", "Chronoscope marker: V1, clip at frame 70: hug-lego-movie.mp4"]
    assert note[-1] == reply["clips"][1]["note_key"]


def test_marker_words_say_what_plays_on_the_timeline():
    """Speeds as editors say them, capture rates as they write them, and what plays once the
    clip's own speed change is applied: a 5x sped-up file (a 120 fps file of 24 fps motion) at
    20 % on a 24 fps timeline plays at real time."""
    assert [speed_words(s) for s in (Fraction(1, 8), 0.4, 2.747081712062257, 10.739594450373533)] == [
        "1/8",
        "1/2.5",
        "2.75x",
        "10.7x",
    ]
    assert [rate_words(r) for r in (Fraction(30000, 1001), 29.97, 240.0, 8.737, 187.42)] == [
        "29.97 fps",
        "29.97 fps",
        "240 fps",
        "8.7 fps",
        "187 fps",
    ]
    assert confidence_words(0.9876) == "confidence 99%" and confidence_words(None) == ""
    assert marker_name("sped_up", Fraction(5), Fraction(24), Fraction(1, 5)) == (
        "Sped up 5x (24 fps) at 20%: plays at real time"
    )
    assert marker_name("realtime", Fraction(1), Fraction(30), Fraction(1, 2)) == (
        "Real time (30 fps) at 50%: plays at 1/2"
    )
    assert marker_name("still", None, None, Fraction(2)) == "Still (cannot tell) at 200%"
    assert marker_name("slowmo", Fraction(1, 4), Fraction(120), None, "speed ramp (2 keyframes)") == (
        "Slow motion 1/4 (120 fps), speed ramp on the timeline"
    )


def test_detect_reports_bad_results_per_clip_and_nothing_to_do(exported, sample_clip, tmp_path, ask):
    media = str(sample_clip.absolute())
    broken = {**DETECT_RESULT, "class": "warp_speed"}
    status, out = ask(
        {"op": "detect", "timeline": str(exported), "results": {media: broken}, "start_engine": False}
    )
    reply = json.loads(out)
    assert status == 0 and reply["markers"] == []
    assert {c["status"] for c in reply["clips"]} == {"failed"}
    assert (
        "'warp_speed'; known: realtime, slowmo, synthetic_slowmo, sped_up, still"
        in reply["clips"][0]["message"]
    )

    empty = FakeResolve()
    project = empty.GetProjectManager().CreateProject("empty")
    timeline = project.GetMediaPool().CreateEmptyTimeline("Nothing")
    path = tmp_path / "nothing.otio"
    timeline.Export(str(path), empty.EXPORT_OTIO)
    status, out = ask({"op": "detect", "timeline": str(path), "start_engine": False})
    error = json.loads(out)["error"]
    assert error["type"] == "NothingToDoError" and "has no enabled video clip with media" in error["message"]


def test_render_with_no_slow_clip_is_nothing_to_do_before_any_engine(sample_clip, tmp_path, ask):
    resolve = FakeResolve(project_rate=Fraction(30))
    project = resolve.GetProjectManager().CreateProject("p")
    pool = project.GetMediaPool()
    media = pool.ImportMedia([str(sample_clip.absolute())])
    pool.CreateEmptyTimeline("Real time only")
    pool.AppendToTimeline([{"mediaPoolItem": media[0], "startFrame": 0, "endFrame": 29}])
    path = tmp_path / "rt.otio"
    project.GetCurrentTimeline().Export(str(path), resolve.EXPORT_OTIO)
    status, out = ask({"op": "render", "timeline": str(path), "flag": "Purple", "start_engine": False})
    error = json.loads(out)["error"]
    assert error["type"] == "NothingToDoError"
    assert "no clip slower than 100 %" in error["message"]
    assert "slow a clip down (Change Clip Speed)" in error["message"]
    # a flagged clip at 100 % is no work either: there are no frames to make
    status, out = ask(
        {
            "op": "render",
            "timeline": str(path),
            "start_engine": False,
            "clips": [{"track": "V1", "record_start_frame": 0}],
        }
    )
    error = json.loads(out)["error"]
    assert error["type"] == "NothingToDoError"
    assert "none of the 1 flagged clips is slower than 100 %" in error["message"]
    assert "flagged, but it plays at 100 % or faster" in error["message"]


def test_render_names_missing_media(exported, tmp_path, ask):
    moved = tmp_path / "moved.otio"
    moved.write_text(exported.read_text().replace("hug-lego-movie.mp4", "gone.mp4"))
    status, out = ask({"op": "render", "timeline": str(moved), "start_engine": False})
    error = json.loads(out)["error"]
    assert error["type"] == "MediaNotFoundError" and "gone.mp4" in error["message"]


def test_lua_reply_is_a_lua_chunk_with_bytes_escaped():
    text = format_reply({"ok": True, "name": 'Slow "é"\n', "n": [1, 2.5, None], "t": False}, "lua")
    assert text == (
        'return {["ok"] = true, ["name"] = "Slow \\034\\195\\169\\034\\010", '
        '["n"] = {1, 2.5, nil}, ["t"] = false}\n'
    )
    for reply_format in ("lua", "json"):  # neither carries NaN: refused, never a reply the script cannot read
        with pytest.raises(UnsupportedOptionError, match="holds (nan|NaN)"):
            format_reply({"ok": True, "x": float("nan")}, reply_format)


def test_install_config_names_this_interpreter(isolated_places):
    path = install_config()
    assert path == isolated_places / "config" / "resolve-bridge.json"
    settings = json.loads(path.read_text())
    assert settings["command"] == [sys.executable, "-m", "engine.cli"]
    settings["render_flag"] = "Cyan"
    path.write_text(json.dumps(settings))
    install_config()
    assert json.loads(path.read_text())["render_flag"] == "Cyan"


def test_engine_answers_are_read_in_the_shapes_the_capabilities_give(tmp_path):
    result = {"speed": 1, "class": "realtime", "capture_fps": 30, "confidence": 0.5, "segments": []}
    assert (
        detect_result_of({"clips": [{"name": "a", "path": "/a.mov", "speed": result}], "otio": {}})
        == result
    )
    assert detect_result_of({"path": "/a.mov", "speed": result}) == result
    assert detect_result_of(result) == result
    new = tmp_path / "cut.chronoscope.otio"
    new.write_text("{}")
    summary = {"new_timeline": str(new), "clips": [{"output": "/r/a.mov"}, {"status": "pass_through"}]}
    assert rendered_timeline(summary, tmp_path, "cut") == new
    assert rendered_media(summary) == ["/r/a.mov"]
    with pytest.raises(TimelineNotFoundError, match="named no new timeline file"):
        rendered_timeline({}, tmp_path / "empty", "cut")


def test_marker_note_lines_read_the_detect_json_evidence():
    """``chronoscope detect --json``'s evidence (findings under items; the sound, under audio, is
    told in the note's first part): technical lines, numbers to three significant digits."""
    evidence = {
        "decided_by": "learned",
        "model_provider": "CPUExecutionProvider",
        "items": [
            {"stage": "learned", "finding": "median log2 speed", "value": -3.0},
            {"stage": "learned", "finding": "mean synthetic-frame probability", "value": 9.7700625659062e-09},
        ],
        "audio": {
            "status": "used",
            "boundaries": [],
            "changes": [{"time": 4.0, "speed_ratio": 2.0, "octaves": 1.0}],
        },
    }
    assert evidence_lines(evidence) == [
        "decided by: learned",
        "model provider: CPUExecutionProvider",
        "learned: median log2 speed (-3)",
        "learned: mean synthetic-frame probability (9.77e-09)",
    ]


def test_render_reads_an_empty_lua_table_as_no_flagged_clips(exported, ask):
    """Lua writes an empty table as ``{}``: a render with no flagged clip must not be refused."""
    status, out = ask({"op": "render", "timeline": str(exported), "clips": {}, "start_engine": False})
    error = json.loads(out)["error"]
    assert error["type"] == "EngineNotRunningError", error
    status, out = ask({"op": "render", "timeline": str(exported), "clips": "V1", "start_engine": False})
    assert "clips must be a list of" in json.loads(out)["error"]["message"]


@pytest.fixture
def edge_timeline(sample_clip, tmp_path):
    """A timeline with what an editor's timeline holds besides plain clips, made with the fake's
    API: a clip at 100 %, a disabled clip, a clip on a disabled track, offline media, a clip with
    a speed ramp, and a compound clip holding a 50 % clip."""
    resolve = FakeResolve(project_rate=Fraction(30))
    project = resolve.GetProjectManager().CreateProject("p")
    pool = project.GetMediaPool()
    media = pool.ImportMedia([str(sample_clip.absolute())])[0]
    timeline = pool.CreateEmptyTimeline("Edges")
    start = timeline.GetStartFrame()
    timeline.fake_append(media, source_start_frames=0, duration_frames=20)
    timeline.fake_append(
        media, source_start_frames=20, duration_frames=20, record_frame=start + 20
    ).SetClipEnabled(False)
    timeline.fake_append(media, source_start_frames=0, duration_frames=30, track_index=2, record_frame=start)
    timeline.SetTrackEnable("video", 2, False)
    offline = FakeTimelineItem(timeline, None, "offline.mov", start + 40, 20, Fraction(0), Fraction(1, 2))
    offline.offline_path = "/nowhere/A001_C002.mov"
    timeline.tracks["video"][0].append(offline)
    ramped = timeline.fake_append(media, source_start_frames=40, duration_frames=30, record_frame=start + 60)
    ramped.fake_speed_ramp([(0, 1), (15, Fraction(1, 4)), (29, 1)])
    inner = timeline.fake_append(
        media, source_start_frames=100, duration_frames=40, speed=Fraction(1, 2), record_frame=start + 90
    )
    compound = timeline.CreateCompoundClip([inner], {"name": "Slow bit"})
    assert compound is not None and compound.GetStart() == start + 90
    path = tmp_path / "edges.otio"
    assert timeline.Export(str(path), resolve.EXPORT_OTIO)
    return path


def test_detect_lists_disabled_offline_ramped_and_compound_clips(edge_timeline, sample_clip, ask):
    media = str(sample_clip.absolute())
    result = {"speed": 0.25, "capture_fps": 120, "class": "slowmo", "confidence": 0.9, "segments": []}
    status, out = ask(
        {"op": "detect", "timeline": str(edge_timeline), "results": {media: result}, "start_engine": False}
    )
    assert status == 0, out
    reply = json.loads(out)
    report = [
        (c["track"], c["record_start_frame"], c["clip"], c["status"], c["summary"]) for c in reply["clips"]
    ]
    decompose = (
        "skipped: a compound clip (a nested timeline): its clips are not analysed; flatten it with "
        "Decompose in Place (right-click it on the timeline) and run again"
    )
    assert report == [
        ("V1", 0, "hug-lego-movie.mp4", "detected", "slow motion 1/4 (shot at 120 fps), confidence 90%"),
        ("V1", 20, "hug-lego-movie.mp4", "skipped", "skipped: the clip is disabled"),
        (
            "V1",
            40,
            "offline.mov",
            "missing",
            "media offline: Resolve has no file for '/nowhere/A001_C002.mov'; relink it (Media Pool: "
            "Relink Clips) and run again",
        ),
        (
            "V1",
            60,
            "hug-lego-movie.mp4",
            "detected",
            "slow motion 1/4 (shot at 120 fps), confidence 90%; its speed ramp (3 keyframes, speed ratio "
            "75%) is not mapped: one marker covers the whole clip",
        ),
        ("V1", 90, "Slow bit", "skipped", decompose),
        ("V2", 0, "hug-lego-movie.mp4", "skipped", "skipped: track V2 is disabled"),
    ]
    placed = [(m["frame"], m["duration"], m["name"]) for m in reply["markers"]]
    assert placed == [
        (0, 20, "Slow motion 1/4 (120 fps)"),
        (60, 30, "Slow motion 1/4 (120 fps), speed ramp on the timeline"),
    ]


def test_render_names_what_it_cannot_render_before_asking_the_engine(edge_timeline, ask):
    """The only slow clip is offline: the error names its media as Resolve does, and lists the
    ramp and the compound clip (how to flatten it) too."""
    status, out = ask({"op": "render", "timeline": str(edge_timeline), "start_engine": False})
    error = json.loads(out)["error"]
    assert error["type"] == "MediaNotFoundError"
    message = error["message"]
    assert message.startswith(
        "clip 'offline.mov' (V1 #2): media offline: Resolve has no file for '/nowhere/A001_C002.mov'"
    )
    assert "None" not in message
    assert "V1 'hug-lego-movie.mp4': its speed ramp (3 keyframes, speed ratio 75%) is not rendered" in message
    assert (
        "V1 'Slow bit': a compound clip (a nested timeline): its clips are not rendered; flatten it with "
        "Decompose in Place" in message
    )


def test_render_leaves_high_frame_rate_slow_motion_as_it_is(tmp_path, ask):
    """50 fps camera footage at 50 % on a 25 fps timeline shows the camera's own frames: the bridge
    picks clips by whether frames must be made (the engine's render plan's own test), so it
    sends the engine nothing and says why, instead of re-encoding the camera original."""
    media_path = render_clip(tmp_path / "camera50.mp4", rate=Fraction(50), frame_count=60)
    resolve = FakeResolve(project_rate=Fraction(25))
    pool = resolve.GetProjectManager().CreateProject("hfr").GetMediaPool()
    media = pool.ImportMedia([str(media_path)])[0]
    timeline = pool.CreateEmptyTimeline("Fifty")
    timeline.fake_append(media, source_start_frames=4, duration_frames=20, speed=Fraction(1, 2))
    path = tmp_path / "fifty.otio"
    assert timeline.Export(str(path), resolve.EXPORT_OTIO)
    status, out = ask({"op": "render", "timeline": str(path), "start_engine": False})
    error = json.loads(out)["error"]
    assert error["type"] == "NothingToDoError", error
    assert error["message"] == (
        "timeline 'Fifty': none of its 1 clips slower than 100 % needs rendering or can be rendered; "
        "V1 'camera50.mp4': plays its own frames at this speed: nothing to make"
    )


def test_render_folder_keeps_the_export_of_another_timeline(sample_clip, tmp_path, ask):
    """A render reads its timeline from a copy in its folder, named after the timeline, so that
    every run renders the same file and resumes. A timeline whose name makes the same file name
    ("Cut_1" after "Cut 1") is refused there: its copy, summary and new timeline would replace
    the other timeline's."""
    resolve = FakeResolve(project_rate=Fraction(30))
    pool = resolve.GetProjectManager().CreateProject("p").GetMediaPool()
    media = pool.ImportMedia([str(sample_clip.absolute())])[0]
    outdir = tmp_path / "renders"
    for name in ("Cut 1", "Cut_1"):
        timeline = pool.CreateEmptyTimeline(name)
        timeline.fake_append(media, source_start_frames=0, duration_frames=20, speed=Fraction(1, 2))
        path = tmp_path / f"{name}.otio"
        timeline.Export(str(path), resolve.EXPORT_OTIO)
        request = {"op": "render", "timeline": str(path), "output_dir": str(outdir), "start_engine": False}
        status, out = ask(request)
        error = json.loads(out)["error"]
        if name == "Cut 1":  # its copy is made, then the engine is missing
            assert error["type"] == "EngineNotRunningError", error
            assert read_timeline(outdir / "Cut_1.otio").name == "Cut 1"
    assert error == {
        "type": "OutputExistsError",
        "message": f"{outdir / 'Cut_1.otio'} holds the export of another timeline ('Cut 1', not 'Cut_1'); "
        "rename one of the timelines, or set another render_dir in resolve-bridge.json",
    }
    # a relative output_dir (the scripts' <project>/<timeline> without a render_dir) goes under
    # Chronoscope's data folder
    status, out = ask({**request, "output_dir": "p/Cut_1"})
    assert json.loads(out)["error"]["type"] == "EngineNotRunningError"
    copy = Path(os.environ["CHRONOSCOPE_HOME"]) / "data" / "resolve-renders" / "p" / "Cut_1" / "Cut_1.otio"
    assert read_timeline(copy).name == "Cut_1"


def _detect_killing_the_engine(timeline: Path, start_engine: bool) -> tuple[int, dict, str, int]:
    """Run the bridge's detect on ``timeline`` as the scripts do; kill the engine (SIGKILL, as a
    crash) as soon as its first analysis runs. Returns the exit status, the reply, the log and the
    killed engine's pid."""
    import signal

    from engine.server.client import EngineClient

    child = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "bridge"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        request = {"op": "detect", "timeline": str(timeline), "start_engine": start_engine, "timeout_s": 120}
        child.stdin.write(json.dumps(request))
        child.stdin.close()
        child.stdin = None  # sent: ``communicate`` only reads
        deadline = time.monotonic() + 60
        while True:
            assert child.poll() is None and time.monotonic() < deadline, "no detect job appeared"
            try:
                with EngineClient.connect() as client:
                    if any(job["kind"] == "detect_speed" for job in client.info()["jobs"]["active"]):
                        pid = client.ping()["pid"]
                        break
            except Exception:  # the engine is still starting
                pass
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)
        out, err = child.communicate(timeout=300)
    finally:
        if child.poll() is None:
            child.kill()
    return child.returncode, json.loads(out), err, pid


@pytest.fixture
def three_media(sample_clip, tmp_path) -> Path:
    """A timeline of three clips, each of its own media file (three analyses)."""
    resolve = FakeResolve(project_rate=Fraction(30))
    pool = resolve.GetProjectManager().CreateProject("p").GetMediaPool()
    paths = [sample_clip.absolute()] + [
        render_clip(tmp_path / f"d{n}.mp4", rate=Fraction(30), frame_count=60) for n in (2, 3)
    ]
    timeline = pool.CreateEmptyTimeline("Three")
    for media in pool.ImportMedia([str(path) for path in paths]):
        timeline.fake_append(media, source_start_frames=0, duration_frames=40)
    path = tmp_path / "three.otio"
    assert timeline.Export(str(path), resolve.EXPORT_OTIO)
    return path


def test_detect_starts_a_dead_engine_again_once_and_goes_on(three_media):
    """The engine dies during the first analysis: the bridge notices (its process is gone), starts
    it again and analyses that clip and the others, instead of failing each after a timeout."""
    from engine.server.client import EngineClient

    try:
        status, reply, err, killed = _detect_killing_the_engine(three_media, start_engine=True)
        assert status == 0 and reply["ok"], (reply, err)
        assert [c["status"] for c in reply["clips"]] == ["detected"] * 3, reply["clips"]
        assert reply["summary"].startswith("3 of 3 clips analysed")
        assert "the Chronoscope engine stopped while it analysed clip 'hug-lego-movie.mp4' (V1 #0)" in err
        assert "starting it again and going on with the clips left" in err
        with EngineClient.connect() as client:
            assert client.ping()["pid"] != killed
    finally:
        stop_engine(timeout_s=10, force=True)


def test_detect_says_once_that_the_engine_died_when_it_may_not_start_one(three_media):
    from engine.server.process import start_engine

    start_engine(timeout_s=60)
    try:
        status, reply, _err, _pid = _detect_killing_the_engine(three_media, start_engine=False)
    finally:
        stop_engine(timeout_s=10, force=True)
    assert status == bridge.EXIT_ERROR and reply["ok"] is False
    assert reply["error"] == {
        "type": "EngineNotRunningError",
        "message": "the Chronoscope engine stopped while it analysed clip 'hug-lego-movie.mp4' (V1 #0) (it "
        "crashed or was shut down); start it with `chronoscope engine start` and run Detect Speed again, or "
        'let the script start it ("start_engine": true in resolve-bridge.json)',
    }


def test_engine_messages_are_said_in_an_editors_words():
    """What the bridge replies is shown in Resolve: no job id, no socket address, and no advice
    meant for the client library (submitting a job again by its id)."""
    from engine.bridge.connection import in_editor_words
    from engine.errors import EngineRequestError, EngineTimeoutError, JobInterruptedError

    job = "0123456789abcdef0123456789abcdef"
    cases = {
        EngineTimeoutError(f"job {job} did not finish within 600.0 s; it was cancelled"): (
            "the analysis did not finish within 600 s; it was cancelled (timeout_s in resolve-bridge.json "
            "gives each clip longer)"
        ),
        EngineTimeoutError(
            "the engine at ipc:///run/user/1000/chronoscope/request did not answer detect_speed within "
            "30.0 s; engine pid 42 is no longer running: start one with `chronoscope engine start`"
        ): (
            "the Chronoscope engine did not answer within 30 s; engine pid 42 is no longer running: start "
            "one with `chronoscope engine start`"
        ),
        JobInterruptedError(
            f"engine pid 42 stopped (shut down or died) before job {job} was seen to finish; start the "
            "engine and submit the job again with the same id to resume it (or to get its result, if it "
            "had finished)"
        ): (
            "the Chronoscope engine stopped before the analysis finished (it crashed or was shut down); run "
            "the script again: it starts the engine (or start it with `chronoscope engine start`)"
        ),
        EngineRequestError("engine error in detect_speed: MediaReadError: cannot decode frame 3"): (
            "the Chronoscope engine could not finish the analysis: MediaReadError: cannot decode frame 3"
        ),
    }
    for error, said in cases.items():
        plain = in_editor_words(error, "the analysis")
        assert (type(plain), str(plain)) == (type(error), said)
