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

from fake_resolve import FakeResolve, demo_project  # noqa: E402

from engine.commands import bridge  # noqa: E402
from engine.errors import UnsupportedOptionError  # noqa: E402
from engine.server.process import stop_engine  # noqa: E402

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
        assert reply["ok"] and reply["op"] == "ping" and reply["protocol"] == bridge.PROTOCOL_VERSION
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


def test_stopping_an_overrunning_bridge_cancels_its_job_and_still_replies(exported):
    """What the Resolve scripts do when the bridge overruns its time (``stop_bridge``: SIGTERM,
    then a wait): the bridge cancels the engine job it waits for and answers."""
    import chronoscope_resolve

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
        child.stdin.write(json.dumps({"op": "detect", "timeline": str(exported)}))
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
        message = "stopped before it finished; its engine job was cancelled"
        assert json.loads(out) == {"ok": False, "error": {"type": "Interrupted", "message": message}}
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
        (0, 30, "Blue", "Real time 100% (30 fps)"),
        (30, 30, "Green", "Slow motion 12.5% (240 fps)"),
        (70, 80, "Green", "Slow motion 12.5% (240 fps)"),
    ]
    custom = json.loads(reply["markers"][1]["custom_data"])
    assert reply["markers"][1]["custom_data"].startswith(bridge.MARKER_TAG)
    assert custom["segment"]["end"] == "11/2" and custom["result"]["class"] == "slowmo"
    assert custom["media"] == media and custom["track"] == "V1"
    note = reply["markers"][1]["note"]
    assert "confidence 0.90" in note and "- metadata: no capture-rate tag" in note
    assert "evidence:\n- note: the segments differ from the clip (slowmo): 82 % slowmo" in note
    assert '- estimator: {"log2_speed": -3.0}' in note


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
    assert "no clip slower than 100 % and none marked for Chronoscope" in error["message"]
    assert "or flag it Purple" in error["message"]
    # a flagged clip is work: the next thing missing is the engine
    status, out = ask(
        {
            "op": "render",
            "timeline": str(path),
            "start_engine": False,
            "clips": [{"track": "V1", "record_start_frame": 0}],
        }
    )
    assert json.loads(out)["error"]["type"] == "EngineNotRunningError"


def test_render_names_missing_media(exported, tmp_path, ask):
    moved = tmp_path / "moved.otio"
    moved.write_text(exported.read_text().replace("hug-lego-movie.mp4", "gone.mp4"))
    status, out = ask({"op": "render", "timeline": str(moved), "start_engine": False})
    error = json.loads(out)["error"]
    assert error["type"] == "MediaNotFoundError" and "gone.mp4" in error["message"]


def test_lua_reply_is_a_lua_chunk_with_bytes_escaped():
    text = bridge.format_reply({"ok": True, "name": 'Slow "é"\n', "n": [1, 2.5, None], "t": False}, "lua")
    assert text == (
        'return {["ok"] = true, ["name"] = "Slow \\034\\195\\169\\034\\010", '
        '["n"] = {1, 2.5, nil}, ["t"] = false}\n'
    )
    for reply_format in ("lua", "json"):  # neither carries NaN: refused, never a reply the script cannot read
        with pytest.raises(UnsupportedOptionError, match="holds (nan|NaN)"):
            bridge.format_reply({"ok": True, "x": float("nan")}, reply_format)


def test_install_config_names_this_interpreter(isolated_places):
    path = bridge.install_config()
    assert path == isolated_places / "config" / "resolve-bridge.json"
    settings = json.loads(path.read_text())
    assert settings["command"] == [sys.executable, "-m", "engine.cli"]
    settings["render_flag"] = "Cyan"
    path.write_text(json.dumps(settings))
    bridge.install_config()
    assert json.loads(path.read_text())["render_flag"] == "Cyan"


def test_engine_answers_are_read_in_the_shapes_the_capabilities_give(tmp_path):
    result = {"speed": 1, "class": "realtime", "capture_fps": 30, "confidence": 0.5, "segments": []}
    assert (
        bridge.detect_result_of({"clips": [{"name": "a", "path": "/a.mov", "speed": result}], "otio": {}})
        == result
    )
    assert bridge.detect_result_of({"path": "/a.mov", "speed": result}) == result
    assert bridge.detect_result_of(result) == result
    new = tmp_path / "cut.chronoscope.otio"
    new.write_text("{}")
    summary = {"new_timeline": str(new), "clips": [{"output": "/r/a.mov"}, {"status": "pass_through"}]}
    assert bridge._rendered_timeline(summary, tmp_path, "cut") == new
    assert bridge._rendered_media(summary) == ["/r/a.mov"]
    with pytest.raises(bridge.TimelineNotFoundError, match="named no new timeline file"):
        bridge._rendered_timeline({}, tmp_path / "empty", "cut")


def test_marker_note_lines_read_the_detect_json_evidence():
    """``chronoscope detect --json``'s evidence (findings under items, the sound under audio)."""
    evidence = {
        "decided_by": "learned",
        "items": [{"stage": "learned", "finding": "median log2 speed", "value": -3.0}],
        "audio": {
            "status": "used",
            "boundaries": [],
            "changes": [{"time": 4.0, "speed_ratio": 2.0, "octaves": 1.0}],
        },
    }
    assert bridge.evidence_lines(evidence) == [
        "decided_by: learned",
        "audio: pitch shift at 4.00 s (speed x2)",
        "learned: median log2 speed (-3.0)",
    ]
    assert bridge.evidence_lines({**evidence, "audio": {"status": "off"}})[1:] == [
        "learned: median log2 speed (-3.0)"
    ]
