"""Requests an engine process must refuse early, cheaply and by name, over real ipc:// sockets:
numbers too long to read, values no path or job can use, unknown fields, too many or too large
frames, a client that never reads its answers, another protocol version, a message without a
delimiter. The engine keeps serving through all of them."""

from __future__ import annotations

import json
import os
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
import zmq
from media_factory import render_clip
from process_control import background_engine

from engine.errors import (
    FileAccessError,
    JobNotFoundError,
    MessageRefusedError,
    ProtocolVersionError,
    RequestValueError,
    TimelineError,
    UnsupportedOptionError,
)
from engine.server import protocol
from engine.server.client import EngineClient
from engine.server.connection import ConnectionInfo
from engine.server.protocol import DELIMITER, Session

pytestmark = pytest.mark.skipif(os.name == "nt", reason="ipc:// and /proc")


@pytest.fixture(scope="module")
def engine_home(tmp_path_factory):
    """A background engine process (shipped capabilities) with its own home; its log file too."""
    with background_engine(tmp_path_factory.mktemp("limits-engine")) as started:
        yield started


@pytest.fixture
def connection(engine_home) -> ConnectionInfo:
    return engine_home[0]


@pytest.fixture
def client(connection):
    with EngineClient(connection) as client:
        yield client


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return render_clip(tmp_path_factory.mktemp("limits-media") / "clip.mp4", rate=Fraction(25), frame_count=6)


@pytest.fixture
def raw(connection):
    """A bare DEALER on the request socket, and a session with the engine's key."""
    context = zmq.Context.instance()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(connection.request)
    yield socket, Session(connection.key)
    socket.close()


def _answer(socket, session, timeout_ms=10_000):
    assert socket.poll(timeout_ms), "the engine sent no answer"
    return session.deserialize(socket.recv_multipart())


def _memory_mib(pid: int, field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of process ``pid``, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def _wait_idle(pid: int, timeout_s: float = 90) -> None:
    """Wait until process ``pid`` stops using the processor (its work queued meanwhile is done)."""

    def cpu_ticks() -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    deadline = time.monotonic() + timeout_s
    last = cpu_ticks()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_ticks()
        if now - last <= 2:
            return
        last = now
    raise AssertionError(f"engine pid {pid} still busy after {timeout_s} s")


def _frames(session: Session, msg_type: str, content_bytes: bytes, buffers=()) -> list:
    header = json.dumps(session.new_header(msg_type).to_dict()).encode()
    return [DELIMITER, session.sign([header, content_bytes, *buffers]), header, content_bytes, *buffers]


# ----------------------------------------------- sizes (first: they measure the peak memory)


def test_a_request_with_too_many_buffers_is_refused(raw):
    socket, session = raw
    buffers = [b"\0" * 16] * 20
    socket.send_multipart(session.serialize(session.message("synthesize", {}, buffers=buffers)))
    answer = _answer(socket, session)
    assert (answer.msg_type, answer.content["reason"]) == ("refused", "oversized")
    assert "20 buffers; the limit is 16" in answer.content["evalue"]


def test_an_8k_float_frame_of_the_ofx_bridge_fits_one_buffer():
    """The OFX bridge sends each frame as one buffer, float frames as 16-bit: an 8K DCI frame
    (283 MB) was dropped by a 256 MiB limit and every frame waited out the host's timeout."""
    limits = protocol.Limits()
    eight_k = 8192 * 4320 * 4 * 2
    assert limits.max_frame_bytes >= eight_k and limits.largest_frame_bytes >= eight_k
    assert 2 * eight_k <= limits.max_buffer_bytes


def test_a_frame_over_the_limit_is_dropped_as_it_arrives(connection, client):
    """ZeroMQ's per-frame limit was 1 GiB: a 600 MB buffer was taken in whole before it was refused."""
    peak_before = _memory_mib(connection.pid, "VmHWM")
    context = zmq.Context.instance()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(connection.request)
    session = Session(connection.key)
    try:
        big = np.zeros(600 * 1024 * 1024, np.uint8)
        socket.send_multipart(session.serialize(session.message("synthesize", {}, buffers=[big])), copy=False)
        del big
        time.sleep(1.0)
        assert client.ping()["pid"] == connection.pid
    finally:
        socket.close()
    assert _memory_mib(connection.pid, "VmHWM") - peak_before < 150


def test_a_client_that_never_reads_cannot_grow_the_engine(connection, client):
    """Replies queued without end for a client that does not read them: 3.1 GB in the audit."""
    peak_before = _memory_mib(connection.pid, "VmHWM")
    context = zmq.Context.instance()
    stuck = context.socket(zmq.DEALER)
    stuck.setsockopt(zmq.LINGER, 0)
    stuck.setsockopt(zmq.RCVHWM, 1)
    stuck.setsockopt(zmq.RCVBUF, 4096)
    stuck.connect(connection.request)
    session = Session(connection.key)
    frame = np.random.default_rng(1).integers(0, 255, (256, 256, 3), np.uint8)
    descriptors = {
        "frame0": {"buffer": 0, "shape": [256, 256, 3], "dtype": "uint8"},
        "frame1": {"buffer": 1, "shape": [256, 256, 3], "dtype": "uint8"},
    }
    try:
        for _ in range(40):  # each reply: 64 frames and risk maps, about 29 MB
            message = session.message(
                "synthesize", {"backend": "blend", "times": [0.5] * 64, **descriptors}, buffers=[frame, frame]
            )
            stuck.send_multipart(session.serialize(message), copy=False)
        _wait_idle(connection.pid)
        grown = _memory_mib(connection.pid, "VmHWM") - peak_before
    finally:
        stuck.close()
    assert grown < 500, f"the engine grew by {grown} MiB for a client that reads nothing"
    assert client.ping()["pid"] == connection.pid


# --------------------------------------------------------------------- numbers


def test_a_number_too_long_to_read_is_refused_at_once(client, clip, tmp_path):
    """Fraction("1e-9999999") held the interpreter lock for 15 s: every thread of the engine froze."""
    request = {"source": str(clip), "output": str(tmp_path / "out.mp4")}
    started = time.monotonic()
    with pytest.raises(
        RequestValueError, match="speed = '1e-9999999' has an exponent of 7 digits; at most 2"
    ):
        client.request("retime", {**request, "speed": "1e-9999999"}, timeout_s=10)
    with pytest.raises(RequestValueError, match=r"ramp\[0\].speed = '1e-99999999' has an exponent"):
        client.request("retime", {**request, "ramp": [{"frame": 0, "speed": "1e-99999999"}]}, timeout_s=10)
    with pytest.raises(RequestValueError, match="has 5000 digits|written with 5000 characters"):
        client.request("retime", {**request, "speed": "1" * 5000}, timeout_s=10)
    times = {"backend": "blend", "times": ["1e-9999999"], "frame0": {}, "frame1": {}}
    with pytest.raises(RequestValueError, match=r"times\[0\] = '1e-9999999' has an exponent"):
        client.request("synthesize", times, timeout_s=10)
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(RequestValueError, match="'1e-9999999' has an exponent"):  # nor does the client
        client.synthesize(frame, frame, ["1e-9999999"], backend="blend", timeout_s=10)
    assert time.monotonic() - started < 5
    assert client.ping()["pid"] > 0


def test_names_that_look_like_numbers_are_names(client, clip, tmp_path):
    """Every text of a request was read as a number: a clip named '1e100' failed its render."""
    cut = tmp_path / "cut.otio"
    named = otio.schema.Clip(
        name="1e100",
        media_reference=otio.schema.ExternalReference(target_url=str(clip)),
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, 25), otio.opentime.RationalTime(4, 25)
        ),
    )
    named.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    otio.adapters.write_to_file(otio.schema.Timeline(tracks=[otio.schema.Track(children=[named])]), str(cut))
    chosen = [{"track": "V1", "index_in_track": 0, "name": "1" * 80 + "e100"}]
    request = {"timeline": str(cut), "outdir": str(tmp_path / "out"), "model": "nearest", "codec": "ffv1"}
    summary = client.run_job("render_timeline", {**request, "clips": chosen}, timeout_s=120)
    assert [c["status"] for c in summary["clips"]] == ["rendered"]


def test_checking_a_large_otio_does_not_stop_the_serving_loop(client, connection):
    """A 14 MB OTIO was parsed on the serving thread: nothing else was answered for 2.8 s."""
    track = otio.schema.Track()
    for number in range(9000):
        track.append(
            otio.schema.Clip(
                name=f"c{number}",
                media_reference=otio.schema.ExternalReference(target_url="/nowhere/clip.mp4"),
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(0, 30), otio.opentime.RationalTime(10, 30)
                ),
            )
        )
    text = otio.adapters.write_to_string(otio.schema.Timeline(name="big", tracks=[track]), "otio_json")
    latencies: list[float] = []
    done = threading.Event()

    def ping_meanwhile():
        with EngineClient(connection) as pinger:
            while not done.is_set():
                started = time.monotonic()
                pinger.request("ping", timeout_s=10)
                latencies.append(time.monotonic() - started)
                time.sleep(0.02)

    thread = threading.Thread(target=ping_meanwhile)
    thread.start()
    time.sleep(0.2)
    try:
        with pytest.raises(Exception, match="media file not found"):
            client.submit("detect_speed", {"clip": text, "audio": False})
    finally:
        time.sleep(0.2)
        done.set()
        thread.join()
    assert max(latencies) < 0.9, f"pings waited up to {max(latencies):.2f} s behind the OTIO check"


def test_a_number_that_is_not_finite_is_malformed_and_no_job_is_left(raw, client):
    """1e999 parsed to inf: the job was registered, its journal write failed, and it never ran."""
    socket, session = raw
    content = b'{"path": "/nowhere/clip.mp4", "density": 1e999, "job_id": "phantom-job-1"}'
    socket.send_multipart(_frames(session, "detect_speed", content))
    answer = _answer(socket, session)
    assert (answer.msg_type, answer.content["reason"]) == ("refused", "malformed")
    assert "1e999 is too large to be finite" in answer.content["evalue"]
    with pytest.raises(JobNotFoundError):
        client.job_status("phantom-job-1")


# --------------------------------------------------------------------- fields and values


def test_unknown_fields_are_refused_naming_the_valid_ones(client, clip, tmp_path):
    """``in_fram``, ``overwrit`` and ``codek`` were ignored: the whole clip, in ProRes, reported done."""
    request = {"source": str(clip), "output": str(tmp_path / "out.mov"), "speed": "1/2"}
    for typo in ("in_fram", "overwrit", "codek"):
        with pytest.raises(
            UnsupportedOptionError, match=f"unknown field '{typo}'; valid: audio, codec, in_frame"
        ):
            client.submit("retime", {**request, typo: 1})
    with pytest.raises(
        UnsupportedOptionError, match="unknown field 'out'; valid: clips, codec, job_id, model, outdir"
    ):
        client.submit("render_timeline", {"timeline": "/x.otio", "out": "/tmp"})
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(UnsupportedOptionError, match="unknown field 'time'; valid: backend, frame0"):
        client.request("synthesize", {"backend": "blend", "time": [0.5], "frame0": {}, "frame1": {}})
    assert client.synthesize(frame, frame, [0.5], backend="blend")[0].frame.shape == (8, 8, 3)
    assert not (tmp_path / "out.mov").exists()


def test_bad_paths_and_values_are_refused_when_the_request_is_checked(client, clip, tmp_path):
    """They used to be accepted and fail later as 'internal error' tracebacks, or not at all."""
    request = {"source": str(clip), "output": str(tmp_path / "out.mp4"), "speed": "1/2"}
    with pytest.raises(RequestValueError, match="output = .* holds a NUL character"):
        client.submit("retime", {**request, "output": str(tmp_path / "a\0b.mp4")})
    with pytest.raises(FileAccessError, match="cannot write in folder /proc/self"):
        client.submit("retime", {**request, "output": "/proc/self/x.mov"})
    for key, value, message in (
        ("codec", "nope", "codec 'nope' is not supported; use one of: h264"),
        ("model", "nope", "synthesis model not available: 'nope'; available: "),
        ("audio", "nope", "audio 'nope' is not supported; use one of: drop, stretch, keep"),
        ("in_frame", 10**30, "in_frame is a whole number of 31 digits"),
    ):
        with pytest.raises(UnsupportedOptionError, match=message):
            client.submit("retime", {**request, key: value})
    with pytest.raises(Exception, match="media file not found: /nowhere.mp4"):
        client.submit("retime", {**request, "source": "/nowhere.mp4"})
    with pytest.raises(RequestValueError, match="density is a whole number of 31 digits"):
        client.submit("detect_speed", {"path": str(clip), "density": 10**30})
    with pytest.raises(TimelineError, match="/nowhere.otio cannot be read"):
        client.submit("render_timeline", {"timeline": "/nowhere.otio", "outdir": str(tmp_path / "o")})
    frame = {"buffer": 0, "shape": [2**62, 4], "dtype": "uint8"}
    with pytest.raises(UnsupportedOptionError, match="holds more elements than any array can"):
        client.request(
            "synthesize",
            {"backend": "blend", "times": [0.5], "frame0": frame, "frame1": frame},
            buffers=[b"\0" * 16],
        )
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_a_long_value_is_quoted_short_in_the_reply_and_the_log(client, clip, tmp_path, engine_home):
    """A 10 MB value was copied whole into the refusal and into the engine's log line."""
    _, log_file = engine_home
    log_before = log_file.stat().st_size
    request = {"source": str(clip), "output": str(tmp_path / "out.mp4"), "speed": "x" * 5_000_000}
    with pytest.raises(Exception, match="speed") as refused:
        client.submit("retime", request)
    message = str(refused.value)
    assert len(message) < 1500 and "characters left out" in message
    assert log_file.stat().st_size - log_before < 20_000


# --------------------------------------------------------------------- refusals


def test_a_message_without_delimiter_is_refused_to_its_sender(raw, client):
    socket, session = raw
    socket.send_multipart([b"hello"])
    answer = _answer(socket, session, timeout_ms=5000)
    assert (answer.msg_type, answer.content["reason"]) == ("refused", "malformed")
    assert client.ping()["pid"] > 0


def test_a_client_of_another_protocol_version_hears_why(raw, connection, monkeypatch):
    """A refusal was written in the engine's version, which a client of another version dropped as
    'wrong protocol version': it waited 30 s for nothing."""
    socket, _ = raw
    monkeypatch.setattr(protocol, "PROTOCOL_VERSION", "2.0")  # this side is a client of 2.0 now
    newer = Session(connection.key)
    socket.send_multipart(newer.serialize(newer.message("ping")))
    answer = _answer(socket, newer, timeout_ms=5000)
    assert answer.msg_type == "refused" and answer.content["reason"] == "wrong protocol version"
    assert answer.content["protocol_version"] == "1.0"
    assert "'2.0' was sent; this side speaks 1.0" in answer.content["evalue"]


def test_a_stale_connection_file_of_another_version_does_not_block_start_or_stop(tmp_path, monkeypatch):
    """A file of another protocol version naming a pid that is no engine now (reused by another
    program after a crash) made start, stop and status all say 'stop that engine' forever."""
    import subprocess
    import sys

    from engine.server.connection import connection_file_path, write_connection_file
    from engine.server.process import find_running_engine, stop_engine

    monkeypatch.setenv("CHRONOSCOPE_HOME", str(tmp_path / "home"))
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        path = connection_file_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        stale = ConnectionInfo(
            transport="ipc", request="ipc:///nowhere/r", control="ipc:///nowhere/c",
            events="ipc:///nowhere/e", key="k" * 64, pid=bystander.pid, protocol_version="9.0",
        )
        write_connection_file(stale, path)
        assert find_running_engine(path) is None
        assert stop_engine(path, timeout_s=2) == "stale" and not path.exists()
        assert bystander.poll() is None, "the program now using that pid is left alone"
    finally:
        bystander.kill()
        bystander.wait()


def test_a_connection_file_of_another_protocol_version_is_refused_before_connecting(connection):
    other = ConnectionInfo(**{**connection.to_dict(), "protocol_version": "2.0"})
    started = time.monotonic()
    with pytest.raises(ProtocolVersionError, match="speaks protocol 2.0; this client speaks 1.0"):
        with EngineClient(other) as client:
            client.ping()
    assert time.monotonic() - started < 1
    with pytest.raises(MessageRefusedError):  # and a refusal is still raised as one
        with EngineClient(connection) as client:
            client.request("ping", {"pad": "x" * (17 * 1024 * 1024)})
