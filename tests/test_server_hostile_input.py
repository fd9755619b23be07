"""Hostile and mistaken requests to a real engine (real sockets, the shipped capabilities): each
gets a reply that names the problem, and the engine keeps serving."""

from __future__ import annotations

import os
import threading
from fractions import Fraction

import numpy as np
import pytest
import zmq
from media_factory import render_clip

from engine.errors import (
    NotVideoError,
    OutputExistsError,
    RetimeSpeedError,
    TimelineError,
    UnsupportedOptionError,
)
from engine.server.client import EngineClient
from engine.server.server import Engine, EngineConfig
from engine.timeline import read_timeline
from engine.timeline.guard import MAX_JSON_DEPTH, json_depth

DEEP = 100_000


@pytest.fixture(scope="module")
def engine():
    context = zmq.Context()
    engine = Engine(
        EngineConfig(
            transport="inproc",
            capability_modules=("engine.render.capability", "engine.speed.capability"),
        ),
        context=context,
    )
    engine.start()
    yield engine, context
    engine.stop()
    assert engine.wait_stopped(10), "engine did not stop"
    context.destroy(linger=0)


@pytest.fixture
def client(engine):
    running, context = engine
    with EngineClient(running.connection, context=context) as client:
        yield client


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return render_clip(tmp_path_factory.mktemp("hostile") / "clip.mp4", rate=Fraction(25), frame_count=12)


def _deep_otio_text(levels: int) -> str:
    """A valid OTIO Clip whose metadata holds lists nested ``levels`` deep."""
    return (
        '{"OTIO_SCHEMA": "Clip.2", "name": "deep", "metadata": {"x": '
        + "[" * levels
        + "]" * levels
        + "}}"
    )


def test_json_depth_ignores_brackets_inside_strings():
    assert json_depth('{"a": [1, {"b": "[[[[[[{{{"}]}') == 3
    assert json_depth('"]]]"') == 0
    assert json_depth(_deep_otio_text(10)) == 12


def test_deeply_nested_otio_is_refused_not_a_crash(tmp_path, client):
    """OTIO's C++ reader recurses per level: about 100 000 levels killed the engine process."""
    with pytest.raises(TimelineError, match=f"{DEEP + 2} levels deep.*more than {MAX_JSON_DEPTH} is refused"):
        client.submit("detect_speed", {"clip": _deep_otio_text(DEEP)})
    deep_file = tmp_path / "deep.otio"
    deep_file.write_text(_deep_otio_text(DEEP))
    with pytest.raises(TimelineError, match="levels deep"):
        read_timeline(deep_file)
    with pytest.raises(TimelineError, match="levels deep"):
        client.run_job("render_timeline", {"timeline": str(deep_file), "outdir": str(tmp_path / "out")})
    assert client.ping()["pid"] == os.getpid()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are a POSIX thing")
def test_a_pipe_named_as_timeline_or_media_is_refused_and_nothing_blocks(tmp_path, client):
    """Opening a FIFO blocks until a writer comes; OTIO's reader held the interpreter lock meanwhile,
    so every thread of the engine stopped."""
    fifo = tmp_path / "cut.otio"
    os.mkfifo(fifo)
    finished = threading.Event()

    def render():
        try:
            with pytest.raises(TimelineError, match="not a regular file"):
                client.run_job("render_timeline", {"timeline": str(fifo), "outdir": str(tmp_path / "out")})
        finally:
            finished.set()

    worker = threading.Thread(target=render, daemon=True)
    worker.start()
    assert finished.wait(30), "the render of a pipe did not end"
    worker.join()
    with pytest.raises(NotVideoError, match="not a regular file"):
        client.submit("detect_speed", {"path": str(fifo)})
    with pytest.raises(NotVideoError, match="not a regular file"):
        client.submit("detect_speed", {"path": "/dev/zero"})


def test_detect_speed_wants_an_absolute_path_as_text(client):
    with pytest.raises(UnsupportedOptionError, match="relative; the engine runs elsewhere"):
        client.submit("detect_speed", {"path": "../../etc/hostname"})
    with pytest.raises(UnsupportedOptionError, match="path must name a media file .* got 5"):
        client.submit("detect_speed", {"path": 5})


def test_detect_speed_refuses_fields_it_does_not_know(client, clip):
    """A typo ('densty') was ignored: the clip was analysed at the default density."""
    with pytest.raises(UnsupportedOptionError, match=r"unknown field 'densty'; valid: .*density"):
        client.submit("detect_speed", {"path": str(clip), "densty": 0.5})


def test_retime_is_checked_before_it_is_queued_and_lists_what_it_wrote(tmp_path, client, clip):
    taken = tmp_path / "taken.mp4"
    taken.write_bytes(b"an editor's file")
    request = {"source": str(clip), "output": str(taken), "speed": "1/2", "model": "nearest"}
    with pytest.raises(OutputExistsError, match="set overwrite to true"):
        client.submit("retime", request)
    with pytest.raises(RetimeSpeedError, match=r"speed \[1\] is not a number"):
        client.submit("retime", {**request, "output": str(tmp_path / "new.mp4"), "speed": [1]})
    assert taken.read_bytes() == b"an editor's file"
    output = tmp_path / "slow.mp4"
    job_id = "retime-lists-outputs"
    client.run_job("retime", {**request, "output": str(output)}, job_id=job_id, timeout_s=120)
    outputs = client.job_status(job_id)["outputs"]
    assert str(output) in outputs and any(path.endswith(".chronoscope.json") for path in outputs)


def test_synthesize_names_an_unknown_backend_before_reading_frames(client):
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(UnsupportedOptionError, match="'zzz' is not one; available: .*blend"):
        client.synthesize(frame, frame, [0.5], backend="zzz")
    with pytest.raises(UnsupportedOptionError, match=r"options must be an object, got \[\]"):
        client.request("synthesize", {"backend": "blend", "times": [0.5], "options": []})


def test_timeline_paths_must_name_regular_files(tmp_path):
    folder = tmp_path / "folder.otio"
    folder.mkdir()
    with pytest.raises(TimelineError, match="is a folder"):
        read_timeline(folder)
    device = tmp_path / "zero.otio"
    device.symlink_to("/dev/zero")
    with pytest.raises(TimelineError, match="not a regular file"):
        read_timeline(device)
