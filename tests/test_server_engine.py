"""A real engine on a thread, talked to over real ZeroMQ sockets (inproc://, tcp on 127.0.0.1, ipc://)."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from engine.errors import (
    CapabilityNotAvailableError,
    EngineRequestError,
    EngineTimeoutError,
    JobCancelledError,
    JobNotFoundError,
    MessageRefusedError,
    OutputExistsError,
    UnsupportedOptionError,
    WaitStoppedError,
)
from engine.interp.base import SynthesisResult, Synthesizer, available_backends, register_backend
from engine.server import protocol
from engine.server.client import EngineClient
from engine.server.connection import ConnectionInfo, read_connection_file
from engine.server.handlers import Handler
from engine.server.jobs import Job, JobContext, JobJournal, JobQueue, JobState
from engine.server.outputs import requested_output
from engine.server.protocol import DELIMITER, Limits, Session
from engine.server.server import Engine, EngineConfig

SMALL_LIMITS = Limits(max_json_bytes=64 * 1024, max_buffer_bytes=2 * 1024 * 1024)


class LinearMix(Synthesizer):
    """A test backend with an exact answer: (1 - t) * frame0 + t * frame1, risk 0.25 everywhere."""

    NAME = "test-linear-mix"

    def synthesize(self, frame0, frame1, t):
        weight = float(t)
        mixed = frame0.astype(np.float64) * (1 - weight) + frame1.astype(np.float64) * weight
        return SynthesisResult(
            np.rint(mixed).astype(frame0.dtype),
            np.full(frame0.shape[:2], 0.25, np.float32),
            self.NAME,
            ["mixed"],
        )


register_backend(LinearMix)


def counting_job(message):
    """A ``retime`` stand-in: ``steps`` steps of ``step_s`` each, cancellable between steps."""
    steps = message.content.get("steps")
    if not isinstance(steps, int) or steps < 1:
        raise UnsupportedOptionError(f"steps = {steps!r}; give a whole number of at least 1")
    step_s = float(message.content.get("step_s", 0.0))
    fail_at = message.content.get("fail_at")

    def work(context):
        for step in range(steps):
            if step == fail_at:
                raise UnsupportedOptionError(f"step {step} cannot be done")
            if context.token.wait(step_s):
                context.check_cancelled()
            context.progress(step + 1, steps, f"step {step + 1}")
        context.log("all steps done")
        return {"steps_done": steps}

    return work


@pytest.fixture
def zmq_context():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def _start_engine(zmq_context, **config) -> Engine:
    engine = Engine(
        EngineConfig(
            **{"transport": "inproc", "limits": SMALL_LIMITS, "capability_modules": (), **config}
        ),
        context=zmq_context,
    )
    engine.registry.register(Handler("retime", job=counting_job))
    engine.start()
    return engine


@pytest.fixture
def engine(zmq_context):
    engine = _start_engine(zmq_context)
    yield engine
    engine.stop()
    assert engine.wait_stopped(5), "engine did not stop"


@pytest.fixture
def client(engine, zmq_context):
    with EngineClient(engine.connection, context=zmq_context, limits=SMALL_LIMITS) as client:
        yield client


def test_ping_answers_on_the_control_channel(client):
    pong = client.ping()
    assert pong["pid"] == os.getpid()
    assert pong["protocol_version"] == protocol.PROTOCOL_VERSION
    assert client.request("ping").content["status"] == "ok"  # also on the request channel


def test_info_describes_the_engine(client):
    info = client.info()
    assert info["pid"] == os.getpid()
    assert info["transport"] == "inproc"
    assert set(info["endpoints"]) == {"request", "control", "events"}
    assert "CPUExecutionProvider" in info["execution_providers"]
    # what models load with here, not every provider the onnxruntime build lists (CUDA and
    # TensorRT are listed on a machine without a GPU)
    from engine.models.runtime import GPU_PROVIDERS, choose_providers

    chosen, left_out = choose_providers()
    assert info["execution_providers"] == chosen
    if left_out:  # this machine cannot run the GPU providers its onnxruntime build lists
        assert not set(GPU_PROVIDERS) & set(info["execution_providers"])
        assert any("GPU execution providers not used" in warning for warning in info["warnings"])
    assert "test-linear-mix" in info["synthesis_backends"]
    assert info["capabilities"] == {
        "available": ["retime", "synthesize"],
        "missing": ["detect_speed", "render_timeline"],
    }
    assert info["jobs"]["workers"] == 2
    assert info["models_loaded"] == []


@pytest.mark.parametrize(("dtype", "high"), [(np.uint8, 200), (np.uint16, 60000)])
def test_synthesize_round_trip_with_buffers(client, dtype, high):
    frame0 = np.zeros((48, 64, 3), dtype)
    frame1 = np.full((48, 64, 3), high, dtype)
    frame1[10:20, 5:9] = 0
    results = client.synthesize(frame0, frame1, [0.5, "1/4"], backend="test-linear-mix")

    assert [r.frame.dtype for r in results] == [np.dtype(dtype)] * 2
    assert results[0].frame.shape == (48, 64, 3)
    assert results[0].frame[0, 0, 0] == high // 2
    assert results[1].frame[0, 0, 0] == round(high / 4)
    assert results[0].frame[15, 6, 1] == 0
    assert results[0].risk.dtype == np.float32 and results[0].risk.shape == (48, 64)
    assert np.all(results[0].risk == 0.25)
    assert results[0].notes == ["mixed"]
    loaded = client.info()["models_loaded"]
    assert loaded == [{"name": "test-linear-mix", "options": {}, "execution_provider": "CPU"}]


def test_synthesize_with_the_shipped_blend_backend(client):
    if "blend" not in available_backends():
        pytest.skip("engine.interp does not register 'blend' in this checkout")
    frame0 = np.zeros((32, 40, 3), np.uint8)
    frame1 = np.full((32, 40, 3), 100, np.uint8)
    (result,) = client.synthesize(frame0, frame1, [0.5], backend="blend")
    assert abs(int(result.frame[16, 20, 0]) - 50) <= 1


def test_synthesize_errors_are_replies_and_the_engine_keeps_serving(client):
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(UnsupportedOptionError, match="available: .*test-linear-mix"):
        client.synthesize(frame, frame, [0.5], backend="no-such-backend")
    with pytest.raises(UnsupportedOptionError, match="outside"):
        client.synthesize(frame, frame, [1.5], backend="test-linear-mix")
    with pytest.raises(UnsupportedOptionError, match="same shape"):
        client.synthesize(frame, np.zeros((8, 9, 3), np.uint8), [0.5], backend="test-linear-mix")
    bad = {
        "backend": "test-linear-mix",
        "times": [0.5],
        "frame0": {"buffer": 0, "shape": [2], "dtype": "int64"},
    }
    with pytest.raises(UnsupportedOptionError, match="dtype 'int64' is not allowed"):
        client.request("synthesize", bad, buffers=[b"\0" * 16])
    assert client.ping()["pid"] == os.getpid()


def test_missing_capability_is_a_clear_error(client):
    with pytest.raises(
        CapabilityNotAvailableError, match="detect_speed is not available in this engine build"
    ):
        client.request("detect_speed", {"clip": {}})


def test_job_runs_with_progress_status_and_result_events(client):
    events = []
    result = client.run_job("retime", {"steps": 4, "step_s": 0.06}, on_event=events.append, timeout_s=10)
    assert result == {"steps_done": 4}
    kinds = [event.msg_type for event in events]
    states = [event.content["state"] for event in events if event.msg_type == "status"]
    assert states == ["queued", "running", "done"]
    progress = [event.content["done"] for event in events if event.msg_type == "progress"]
    assert progress == sorted(progress) and progress[-1] == 4
    assert "result" in kinds and "log" in kinds
    assert kinds.index("result") < len(kinds) - 1  # the final status comes last
    status = client.job_status(events[0].content["job_id"])
    assert status["state"] == "done" and status["progress"]["done"] == 4


def test_a_status_poll_that_finds_the_job_done_still_passes_on_its_last_events(client):
    """Asking job_status all the time makes its answer overtake the job's last events (the engine
    answers requests before it forwards queued events); the waiter must still pass those on."""
    for attempt in range(12):
        job_id = f"overtaken-{attempt:04d}"
        events = []
        client.subscribe(job_id)
        client.submit("retime", {"steps": 3, "step_s": 0.0}, job_id=job_id)
        assert client.wait_for_job(job_id, on_event=events.append, timeout_s=10, status_every_s=0.0) == {
            "steps_done": 3
        }
        client.unsubscribe(job_id)
        states = [event.content["state"] for event in events if event.msg_type == "status"]
        progress = [event.content["done"] for event in events if event.msg_type == "progress"]
        assert states[-1:] == ["done"] and progress[-1:] == [3], (attempt, states, progress)


def test_ctrl_c_as_the_job_finishes_returns_its_result(client):
    """An interrupt that lands once the job is done cancels nothing: the output exists, so the
    result is returned rather than reported as interrupted."""

    def interrupt_on_the_result(event):
        if event.msg_type == "result":
            raise KeyboardInterrupt

    def interrupt_at_once(event):
        raise KeyboardInterrupt

    assert client.run_job("retime", {"steps": 2, "step_s": 0.0}, on_event=interrupt_on_the_result) == {
        "steps_done": 2
    }
    with pytest.raises(KeyboardInterrupt):  # a job still running is cancelled and the interrupt stands
        client.run_job("retime", {"steps": 500, "step_s": 0.02}, on_event=interrupt_at_once)


def test_the_timeout_is_kept_even_between_status_polls(client):
    """A wait of 0.2 s on a job of 1.5 s ends at its timeout, not at the next status poll (3 s
    here, by when the job would be done), and cancels the job when asked to."""
    job_id = "short-wait-0001"  # not subscribed: no events to wake the wait, as with a quiet job
    client.submit("retime", {"steps": 30, "step_s": 0.05}, job_id=job_id)
    with pytest.raises(EngineTimeoutError, match="did not finish within 0.2 s; it (was|is) cancelled"):
        client.wait_for_job(job_id, timeout_s=0.2, status_every_s=3.0, cancel_on_timeout=True)
    deadline = time.monotonic() + 30
    while client.job_status(job_id)["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert client.job_status(job_id)["state"] == "cancelled"


def test_a_waiter_told_to_stop_leaves_the_job_running(client):
    job_id = "left-running-0001"
    stop = threading.Event()
    stop.set()
    with pytest.raises(WaitStoppedError, match=f"stopped waiting for job {job_id}; it goes on in the engine"):
        client.run_job("retime", {"steps": 500, "step_s": 0.02}, job_id=job_id, stop=stop)
    assert client.job_status(job_id)["state"] in ("queued", "running")
    assert client.cancel(job_id)["job_id"] == job_id


def test_control_ping_answers_while_a_long_job_runs_and_cancel_stops_it(client):
    job_id = "long-job-0001"
    client.subscribe(job_id)
    assert client.submit("retime", {"steps": 500, "step_s": 0.02}, job_id=job_id) == job_id
    deadline = time.monotonic() + 5
    while client.job_status(job_id)["progress"]["done"] < 2:
        assert time.monotonic() < deadline, "job made no progress"
        time.sleep(0.02)
    client.ping(timeout_s=5.0)
    # answered while the job (10 s of steps) still runs: the control channel is not queued behind it
    assert client.job_status(job_id)["state"] == "running"
    assert client.cancel(job_id)["job_id"] == job_id
    with pytest.raises(JobCancelledError):
        client.wait_for_job(job_id, timeout_s=5)
    status = client.job_status(job_id)
    assert status["state"] == "cancelled"
    assert status["progress"]["done"] < 500


def test_a_queued_job_cancelled_never_starts(engine, client):
    blockers = [client.submit("retime", {"steps": 200, "step_s": 0.02}) for _ in range(engine.config.workers)]
    queued = client.submit("retime", {"steps": 1})
    assert client.job_status(queued)["state"] == "queued"
    assert client.cancel(queued)["state"] == "cancelled"
    for job_id in blockers:
        client.cancel(job_id)
    for job_id in blockers:
        with pytest.raises(JobCancelledError):
            client.wait_for_job(job_id, timeout_s=5)
    assert client.job_status(queued)["started"] is None


def test_a_failing_job_reports_its_error(client):
    with pytest.raises(UnsupportedOptionError, match="step 2 cannot be done"):
        client.run_job("retime", {"steps": 5, "fail_at": 2}, timeout_s=10)


@pytest.mark.allow_error_log
def test_a_crashing_job_is_reported_and_the_workers_serve_on(engine, client):
    def crash(message):
        def work(context):
            raise RuntimeError("bug in the job")

        return work

    def not_json(message):
        return lambda context: {"value": object()}

    engine.registry.register(Handler("render_timeline", job=crash))
    engine.registry.register(Handler("detect_speed", job=not_json))
    with pytest.raises(EngineRequestError, match="RuntimeError: internal error: bug in the job"):
        client.run_job("render_timeline", {}, timeout_s=10)
    with pytest.raises(EngineRequestError, match="TypeError"):
        client.run_job("detect_speed", {}, timeout_s=10)
    for _ in range(engine.config.workers + 1):
        assert client.run_job("retime", {"steps": 1}, timeout_s=10) == {"steps_done": 1}


def test_job_requests_are_validated_before_queueing(client):
    with pytest.raises(UnsupportedOptionError, match="steps = 0"):
        client.submit("retime", {"steps": 0})
    with pytest.raises(UnsupportedOptionError, match="job id 'x y' is not usable"):
        client.submit("retime", {"steps": 1}, job_id="x y")
    with pytest.raises(JobNotFoundError, match="no job 'nope-nope'"):
        client.job_status("nope-nope")


# --------------------------------------------------------------------- refusals over real sockets


@pytest.fixture
def raw(engine, zmq_context):
    """A bare DEALER on the request socket, and a session with the engine's key to read answers."""
    socket = zmq_context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(engine.connection.request)
    yield socket, Session(engine.key)
    socket.close()


def _answer(socket, session, timeout_ms=10_000):
    assert socket.poll(timeout_ms), "the engine sent no answer"
    return session.deserialize(socket.recv_multipart())


def _signed_frames(session, header_changes=None, content=b"{}"):
    header = {**session.new_header("ping").to_dict(), **(header_changes or {})}
    header_bytes = json.dumps(header).encode()
    return [DELIMITER, session.sign([header_bytes, content]), header_bytes, content]


REFUSALS = {
    "unsigned": lambda s: [DELIMITER, b"", *_signed_frames(s)[2:]],
    "invalid signature": lambda s: Session("ee" * 32).serialize(Session("ee" * 32).message("ping")),
    "oversized": lambda s: s.serialize(s.message("ping", {"pad": "x" * 70_000})),
    "malformed": lambda s: _signed_frames(s, content=b'{"unterminated": '),
    "wrong protocol version": lambda s: _signed_frames(s, {"version": "9.0"}),
    "unknown message type": lambda s: _signed_frames(s, {"msg_type": "make_coffee"}),
}


@pytest.mark.parametrize("reason", sorted(REFUSALS))
def test_refused_messages_get_a_reason_and_the_engine_keeps_serving(raw, client, caplog, reason):
    socket, session = raw
    with caplog.at_level(logging.WARNING, logger="engine.server.server"):
        socket.send_multipart(REFUSALS[reason](session))
        answer = _answer(socket, session)
    assert answer.msg_type == "refused"
    assert answer.content["reason"] == reason
    assert answer.content["status"] == "error"
    assert any(
        reason in record.getMessage() for record in caplog.records if record.levelno == logging.WARNING
    )
    assert client.ping()["pid"] == os.getpid()
    assert client.info()["pid"] == os.getpid()


def test_replayed_request_is_refused_as_duplicate(raw, client):
    socket, session = raw
    frames = session.serialize(session.message("ping"))
    socket.send_multipart(frames)
    first = _answer(socket, session)
    assert first.msg_type == "ping_reply"
    socket.send_multipart(frames)
    second = _answer(socket, session)
    assert (second.msg_type, second.content["reason"]) == ("refused", "duplicate")
    assert client.ping()["pid"] == os.getpid()


def test_oversized_buffers_are_refused(raw):
    socket, session = raw
    socket.send_multipart(
        session.serialize(session.message("synthesize", buffers=[b"\0" * (3 * 1024 * 1024)]))
    )
    answer = _answer(socket, session)
    assert answer.content["reason"] == "oversized"
    assert "limit is 2097152" in answer.content["evalue"]


def test_garbage_without_delimiter_is_refused_to_its_sender_and_the_engine_keeps_serving(raw, client, caplog):
    """The ROUTER knows who sent a message without a delimiter: the sender hears why, at once."""
    socket, session = raw
    with caplog.at_level(logging.WARNING, logger="engine.server.server"):
        socket.send_multipart([b"\xff\xfe garbage", b"more"])
        refusal = _answer(socket, session)
        socket.send_multipart(session.serialize(session.message("ping")))
        assert _answer(socket, session).msg_type == "ping_reply"
    assert (refusal.msg_type, refusal.content["reason"]) == ("refused", "malformed")
    assert "no <CHRONO|MSG> delimiter" in refusal.content["evalue"]
    assert "malformed" in caplog.text
    assert client.ping()["pid"] == os.getpid()


def test_control_channel_refuses_request_types(engine, zmq_context):
    socket = zmq_context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(engine.connection.control)
    session = Session(engine.key)
    try:
        socket.send_multipart(session.serialize(session.message("synthesize")))
        answer = _answer(socket, session)
    finally:
        socket.close()
    assert answer.content["reason"] == "unknown message type"
    assert "accepted: cancel, ping, shutdown" in answer.content["evalue"]


def test_client_with_a_wrong_key_times_out_and_says_why(engine, zmq_context):
    wrong = ConnectionInfo(**{**engine.connection.to_dict(), "key": "00" * 32})
    with EngineClient(wrong, context=zmq_context) as client:
        with pytest.raises(EngineTimeoutError, match="invalid signature"):
            client.ping(timeout_s=3.0)


def test_a_refusal_without_parent_is_raised_to_the_client(engine, zmq_context):
    with EngineClient(engine.connection, context=zmq_context) as client:
        with pytest.raises(MessageRefusedError, match="oversized"):
            client.request("ping", {"pad": "x" * 70_000})


# --------------------------------------------------------------------- transports and the connection file


def test_tcp_transport_binds_random_local_ports(zmq_context):
    engine = _start_engine(zmq_context, transport="tcp")
    try:
        endpoints = engine.connection.endpoints()
        assert all(endpoint.startswith("tcp://127.0.0.1:") for endpoint in endpoints.values())
        assert len(set(endpoints.values())) == 3
        with EngineClient(engine.connection, context=zmq_context) as client:
            assert client.ping()["pid"] == os.getpid()
            frame = np.full((16, 16, 4), 80, np.uint8)
            (result,) = client.synthesize(frame, frame * 0, [0.25], backend="test-linear-mix")
            assert result.frame[3, 3, 3] == 60
    finally:
        engine.stop()
    assert engine.wait_stopped(5)


def test_connection_file_is_private_and_removed_at_shutdown(zmq_context, tmp_path):
    path = tmp_path / "runtime" / "engine.json"
    engine = _start_engine(
        zmq_context, transport="ipc", connection_file=path, runtime_dir=tmp_path / "runtime"
    )
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        stored = read_connection_file(path)
        assert stored == engine.connection
        assert len(stored.key) == 64 and int(stored.key, 16) >= 0
        assert stored.request.startswith(f"ipc://{tmp_path}/runtime/")
        with EngineClient.connect(path, context=zmq_context) as client:
            assert client.ping()["pid"] == os.getpid()
    finally:
        engine.stop()
    assert engine.wait_stopped(5)
    assert not path.exists()
    assert not any(Path(e[len("ipc://") :]).exists() for e in stored.endpoints().values())


def test_long_runtime_dir_falls_back_to_a_short_socket_dir(zmq_context, tmp_path, caplog):
    runtime_dir = tmp_path / ("r" * 60) / ("u" * 60)
    with caplog.at_level(logging.WARNING):
        engine = _start_engine(zmq_context, transport="ipc", runtime_dir=runtime_dir)
    try:
        socket_dir = Path(engine.connection.ipc_dir)
        assert len(engine.connection.request) - len("ipc://") <= 107
        assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
        assert "too long for Unix sockets" in caplog.text
        with EngineClient(engine.connection, context=zmq_context) as client:
            assert client.ping()["pid"] == os.getpid()
            assert any("too long for ipc" in warning for warning in client.info()["warnings"])
    finally:
        engine.stop()
    assert engine.wait_stopped(5)
    assert not socket_dir.exists()


def test_request_to_no_engine_times_out(zmq_context):
    nobody = ConnectionInfo(
        transport="inproc",
        request="inproc://nobody-req",
        control="inproc://nobody-ctl",
        events="inproc://nobody-evt",
        key="11" * 32,
        pid=1,
    )
    with EngineClient(nobody, context=zmq_context) as client:
        started = time.monotonic()
        with pytest.raises(EngineTimeoutError, match="did not answer ping within 0.2 s"):
            client.ping(timeout_s=0.2)
        assert time.monotonic() - started < 10.0  # gives up after its timeout, no retries


def test_shutdown_request_stops_the_engine(zmq_context):
    engine = _start_engine(zmq_context)
    with EngineClient(engine.connection, context=zmq_context) as client:
        assert client.shutdown()["stopping"] is True
    assert engine.wait_stopped(5)


# --------------------------------------------------------------------- several clients, the frame exchange


def test_two_clients_at_once_each_get_their_own_answers(engine, zmq_context):
    failures: list[str] = []
    barrier = threading.Barrier(2)

    def work(number: int) -> None:
        with EngineClient(engine.connection, context=zmq_context, limits=SMALL_LIMITS) as client:
            barrier.wait()
            job_id = f"two-clients-{number}"
            client.subscribe(job_id)
            client.submit("retime", {"steps": 3 + number, "step_s": 0.01}, job_id=job_id)
            for index in range(15):
                value = 100 * number + 2 * index
                frame0 = np.full((24, 32, 3), value, np.uint8)
                frame1 = np.full((24, 32, 3), value + 4, np.uint8)
                (result,) = client.synthesize(frame0, frame1, ["1/2"], backend="test-linear-mix")
                if not np.all(result.frame == value + 2):
                    failures.append(f"client {number} request {index} got {result.frame[0, 0, 0]}")
                if client.ping()["pid"] != os.getpid():
                    failures.append(f"client {number}: wrong ping answer")
            if client.wait_for_job(job_id, timeout_s=10) != {"steps_done": 3 + number}:
                failures.append(f"client {number}: wrong job result")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []


@pytest.fixture
def ipc_engine(zmq_context, tmp_path):
    engine = _start_engine(zmq_context, transport="ipc", runtime_dir=tmp_path / "rt")
    yield engine
    engine.stop()
    assert engine.wait_stopped(5)


def test_frames_through_the_exchange_match_frames_as_buffers(ipc_engine, zmq_context):
    rng = np.random.default_rng(3)
    frame0 = rng.integers(0, 65535, (40, 56, 3), dtype=np.uint16)
    frame1 = rng.integers(0, 65535, (40, 56, 3), dtype=np.uint16)
    with EngineClient(ipc_engine.connection, context=zmq_context) as client:
        as_buffers = client.synthesize(frame0, frame1, ["1/3", 0.75], backend="test-linear-mix", shared=False)
        shared = client.synthesize(frame0, frame1, ["1/3", 0.75], backend="test-linear-mix", shared=True)
        views = client.synthesize(frame0, frame1, ["1/3"], backend="test-linear-mix", shared=True, copy=False)
        assert client.last_timings_ns["model"] > 0
        exchange_file = client._exchange.path
        assert stat.S_IMODE(exchange_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(exchange_file.parent.stat().st_mode) == 0o700
        assert exchange_file.parent == Path(ipc_engine.connection.exchange_dir)
        for a, b in zip(as_buffers, shared, strict=True):
            np.testing.assert_array_equal(a.frame, b.frame)
            np.testing.assert_array_equal(a.risk, b.risk)
            assert b.frame.flags.owndata  # copied out of the exchange
        np.testing.assert_array_equal(views[0].frame, as_buffers[0].frame)
        assert not views[0].frame.flags.writeable
        slot0, slot1 = client.input_frames(frame0.shape, np.uint16, times=2)
        slot0[...], slot1[...] = frame0, frame1
        in_place = client.synthesize(slot0, slot1, ["1/3", 0.75], backend="test-linear-mix", shared=True)
        for a, b in zip(as_buffers, in_place, strict=True):
            np.testing.assert_array_equal(a.frame, b.frame)
        big = np.zeros((200, 300, 3), np.uint8)
        (grown,) = client.synthesize(big, big + 10, [0.5], backend="test-linear-mix", shared=True)
        assert grown.frame[0, 0, 0] == 5
        assert not exchange_file.exists() and client._exchange.path.exists()  # grown into a new file
        (again,) = client.synthesize(slot0, slot1, ["1/3"], backend="test-linear-mix")  # now copied in
        np.testing.assert_array_equal(again.frame, as_buffers[0].frame)
        del views
    assert not any(Path(ipc_engine.connection.exchange_dir).iterdir())  # the client removed its file


def _exchange_request(client, frame_descriptor, output=None):
    content = {
        "backend": "test-linear-mix",
        "times": [0.5],
        "frame0": frame_descriptor,
        "frame1": frame_descriptor,
    }
    if output is not None:
        content["output"] = output
    return client.request("synthesize", content)


def test_the_engine_refuses_exchange_files_it_must_not_touch(ipc_engine, zmq_context, tmp_path):
    folder = Path(ipc_engine.connection.exchange_dir)
    outside = tmp_path / "secret.frames"
    outside.write_bytes(b"\0" * 4096)
    (folder / "link.frames").symlink_to(outside)
    shared = folder / "open.frames"
    shared.write_bytes(b"\0" * 4096)
    shared.chmod(0o644)
    private = folder / "ok.frames"
    private.write_bytes(b"\0" * 4096)
    private.chmod(0o600)
    frame = {"offset": 0, "shape": [8, 8, 3], "dtype": "uint8"}
    with EngineClient(ipc_engine.connection, context=zmq_context) as client:
        with pytest.raises(UnsupportedOptionError, match="not a file name of the form"):
            _exchange_request(client, {**frame, "exchange": "../secret.frames"})
        with pytest.raises(UnsupportedOptionError, match="not a plain file owned by this user"):
            _exchange_request(client, {**frame, "exchange": "link.frames"})
        with pytest.raises(UnsupportedOptionError, match="closed to others"):
            _exchange_request(client, {**frame, "exchange": "open.frames"})
        with pytest.raises(UnsupportedOptionError, match="runs past the end"):
            _exchange_request(client, {**frame, "exchange": "ok.frames", "offset": 4000})
        with pytest.raises(UnsupportedOptionError, match="output region holds 100"):
            _exchange_request(
                client,
                {**frame, "exchange": "ok.frames"},
                {"exchange": "ok.frames", "offset": 256, "capacity": 100},
            )
        reply = _exchange_request(
            client,
            {**frame, "exchange": "ok.frames"},
            {"exchange": "ok.frames", "offset": 256, "capacity": 3000},
        )
        assert reply.content["frames"][0]["frame"]["exchange"] == "ok.frames"
        assert client.ping()["pid"] == os.getpid()


# --------------------------------------------------------------------- outputs and the job journal


def test_requested_outputs_are_checked_before_anything_runs(tmp_path):
    existing = tmp_path / "taken.mov"
    existing.write_bytes(b"old")
    assert requested_output({"output": str(tmp_path / "new.mov")}) == tmp_path / "new.mov"
    with pytest.raises(UnsupportedOptionError, match="relative"):
        requested_output({"output": "clip.mov"})
    with pytest.raises(UnsupportedOptionError, match="does not exist"):
        requested_output({"output": str(tmp_path / "no" / "clip.mov")})
    with pytest.raises(UnsupportedOptionError, match="is a folder"):
        requested_output({"output": str(tmp_path)})
    with pytest.raises(OutputExistsError, match="set overwrite to true"):
        requested_output({"output": str(existing)})
    with pytest.raises(UnsupportedOptionError, match="overwrite = 'yes'"):
        requested_output({"output": str(existing), "overwrite": "yes"})
    assert requested_output({"output": str(existing), "overwrite": True}) == existing


def test_a_file_that_appears_while_the_job_runs_is_not_replaced(tmp_path):
    destination = tmp_path / "render.mov"
    context = JobContext.detached()
    with pytest.raises(OutputExistsError, match="appeared while the job ran"):
        with context.output(destination) as temporary:
            temporary.write_bytes(b"new")
            destination.write_bytes(b"someone else's")
    assert destination.read_bytes() == b"someone else's"
    assert [p.name for p in tmp_path.iterdir()] == ["render.mov"]
    with context.output(destination, overwrite=True) as temporary:
        temporary.write_bytes(b"new")
    assert destination.read_bytes() == b"new"


def test_the_journal_marks_unfinished_jobs_interrupted_and_removes_their_temporary_files(tmp_path, caplog):
    journal = JobJournal(tmp_path / "jobs")
    partial = tmp_path / ".clip.partial-abc.mov"
    partial.write_bytes(b"half")
    bystander = tmp_path / "clip.mov"
    bystander.write_bytes(b"keep")
    running = Job(job_id="cut-short-01", kind="retime", function=None, state=JobState.RUNNING)
    running.partials = [str(partial), str(bystander)]
    running.request = {"steps": 2}
    running.checkpoint = {"steps_done": 1}
    journal.write(running)
    journal.write(
        Job(job_id="finished-01", kind="retime", function=None, state=JobState.DONE, result={"x": 1})
    )
    (tmp_path / "jobs" / "garbage-0001.json").write_text("{not json")

    with caplog.at_level(logging.WARNING):
        jobs = JobQueue(1, journal=journal)
    try:
        status = jobs.status("cut-short-01")
        assert status["state"] == "interrupted"
        assert jobs.status("finished-01")["result"] == {"x": 1}
        assert not partial.exists() and bystander.read_bytes() == b"keep"
        assert "cannot be read" in caplog.text and "interrupted" in caplog.text
        assert jobs.request_of("cut-short-01", "retime") == {"steps": 2}

        seen = []

        def resume(context):
            seen.append((context.checkpoint, context.attempt))
            context.save_checkpoint({"steps_done": 2})
            return {"ok": True}

        assert jobs.submit("retime", resume, job_id="cut-short-01", request={"steps": 2})["attempt"] == 2
        deadline = time.monotonic() + 5
        while jobs.status("cut-short-01")["state"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert seen == [({"steps_done": 1}, 2)]
        assert jobs.submit("retime", resume, job_id="cut-short-01")["state"] == "done"  # not run again
        with pytest.raises(UnsupportedOptionError, match="in use by a retime job"):
            jobs.submit("render_timeline", resume, job_id="cut-short-01")
    finally:
        jobs.shutdown()
    stored = json.loads((tmp_path / "jobs" / "cut-short-01.json").read_text())
    assert stored["state"] == "done" and stored["checkpoint"] == {"steps_done": 2}


def two_file_job(message):
    """Writes ``first`` then ``second``; fails between them when ``fail`` is set."""
    first, second = requested_output(message.content, "first"), requested_output(message.content, "second")
    fail = bool(message.content.get("fail"))

    def work(context):
        for path, text in ((first, "one"), (second, "two")):
            with context.output(path) as temporary:
                temporary.write_text(f"{text} (attempt {context.attempt})")
            if fail:
                raise UnsupportedOptionError("stopped after the first file")
        return {"written": [str(first), str(second)]}

    return work


def test_a_job_run_again_may_replace_its_own_files_but_no_one_elses(zmq_context, tmp_path):
    engine = _start_engine(zmq_context, journal_dir=tmp_path / "jobs")
    engine.registry.register(Handler("render_timeline", job=two_file_job))
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    request = {"first": str(first), "second": str(second)}
    try:
        with EngineClient(engine.connection, context=zmq_context) as client:
            with pytest.raises(UnsupportedOptionError, match="stopped after the first file"):
                client.run_job(
                    "render_timeline", {**request, "fail": True}, job_id="two-files-01", timeout_s=10
                )
            assert first.read_text() == "one (attempt 1)" and not second.exists()
            with pytest.raises(OutputExistsError):
                client.run_job("render_timeline", request, job_id="two-files-02", timeout_s=10)
            result = client.run_job("render_timeline", request, job_id="two-files-01", timeout_s=10)
            assert result == {"written": [str(first), str(second)]}
            assert first.read_text() == "one (attempt 2)" and second.read_text() == "two (attempt 2)"
            assert client.job_status("two-files-01")["outputs"] == [str(first), str(second)]
    finally:
        engine.stop()
    assert engine.wait_stopped(5)
