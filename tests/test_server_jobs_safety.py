"""Engines and clients that must not spoil each other's jobs, over real sockets: one engine per job
journal, one request per job id, every event of a job to its own waiter on a shared client, a
connection file and runtime folder closed to others, and an engine that went away named as such."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import zmq
from process_control import engine_starter, wait_for

from engine.errors import (
    ConnectionFileError,
    EngineAlreadyRunningError,
    EngineNotRunningError,
    EngineTimeoutError,
    JobInterruptedError,
    JobNotFoundError,
    UnsupportedOptionError,
)
from engine.processes import pid_alive
from engine.server.client import EngineClient
from engine.server.connection import connection_file_path, ensure_private_dir
from engine.server.handlers import Handler
from engine.server.jobs import JobJournal, JobQueue
from engine.server.process import find_running_engine, start_engine, stop_engine
from engine.server.server import Engine, EngineConfig

pytestmark = pytest.mark.skipif(os.name == "nt", reason="ipc://, POSIX modes and signals")

# Jobs for the engine processes: ``render_timeline`` writes its output through a temporary file and
# holds it open until a release file appears; ``retime`` holds its worker for ``hold_s`` without
# ever looking at its cancel token (a step that cannot be interrupted).
SAFETY_MODULE = textwrap.dedent(
    """
    import time
    from pathlib import Path
    from engine.server.handlers import Handler
    from engine.server.outputs import requested_output


    def make_writer(message):
        output = requested_output(message.content)
        release = Path(message.content["release"])

        def work(context):
            with context.output(output) as temporary:
                temporary.write_bytes(b"partial")
                while not release.exists():
                    context.check_cancelled()
                    time.sleep(0.02)
                temporary.write_bytes(b"complete")
            return {"output": str(output)}

        return work


    def make_stubborn(message):
        hold_s = float(message.content["hold_s"])

        def work(context):
            context.progress(0, 1, "holding")
            deadline = time.monotonic() + hold_s
            while time.monotonic() < deadline:
                time.sleep(0.02)
            return {"held_s": hold_s}

        return work


    def register_handlers(registry):
        registry.register(Handler("render_timeline", job=make_writer))
        registry.register(Handler("retime", job=make_stubborn))
    """
)


@pytest.fixture
def safety_engine(tmp_path, monkeypatch):
    """Starts a background engine that serves the jobs above; stops whatever runs at the end."""
    start = engine_starter(tmp_path, monkeypatch, "chrono_test_safety", SAFETY_MODULE)
    yield start
    stop_engine(timeout_s=5, force=True)


def _partials(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if ".partial-" in path.name)


# --------------------------------------------------------------------- one engine per job journal


def test_a_second_engine_on_the_same_journal_is_refused_and_the_first_job_completes(
    safety_engine, tmp_path, isolated_places
):
    """An engine started with a connection file of its own elsewhere used to read the running
    engine's journal, call its running job interrupted and remove its temporary file."""
    first = safety_engine()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    output, release = out_dir / "render.bin", tmp_path / "release"
    job_id = "first-engine-job-01"
    journal = isolated_places / "cache" / "jobs"
    with EngineClient(first) as client:
        client.subscribe(job_id)
        client.submit("render_timeline", {"output": str(output), "release": str(release)}, job_id=job_id)
        wait_for(lambda: _partials(out_dir), 20, "the job to be writing")
        partial = _partials(out_dir)

        other = tmp_path / "elsewhere" / "engine.json"
        second = subprocess.run(
            [sys.executable, "-m", "engine.server", "--no-log-file", "--connection-file", str(other)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2, second.stderr
        refusal = second.stderr.strip().splitlines()[-1]
        assert refusal == (
            f"chronoscope engine run: error: the job journal {journal} is in use by engine pid "
            f"{first.pid}; stop that engine first, or run this one with its own CHRONOSCOPE_HOME"
        )
        assert "interrupted" not in second.stderr
        # the way the app starts an engine for a connection file of its own: one line, with the reason
        with pytest.raises(EngineNotRunningError, match=f"in use by engine pid {first.pid}") as refused:
            start_engine(connection_file=other, timeout_s=60)
        assert "\n" not in str(refused.value)
        assert not other.exists()

        assert _partials(out_dir) == partial, "the second engine removed the running job's file"
        assert client.job_status(job_id)["state"] == "running"
        release.touch()
        assert client.wait_for_job(job_id, timeout_s=20) == {"output": str(output)}
    assert output.read_bytes() == b"complete"
    assert _partials(out_dir) == []


def test_two_job_queues_never_share_a_journal(tmp_path):
    folder = tmp_path / "jobs"
    first = JobQueue(1, journal=JobJournal(folder))
    try:
        with pytest.raises(EngineAlreadyRunningError, match=f"in use by engine pid {os.getpid()}"):
            JobQueue(1, journal=JobJournal(folder))
    finally:
        first.shutdown()
    again = JobQueue(1, journal=JobJournal(folder))  # the lock is let go at shutdown
    again.shutdown()


# --------------------------------------------------------------------- one request per job id


def counting_job(message):
    """``steps`` steps of ``step_s`` each, cancellable between steps."""
    steps = int(message.content["steps"])
    step_s = float(message.content.get("step_s", 0.0))

    def work(context):
        for step in range(steps):
            if context.token.wait(step_s):
                context.check_cancelled()
            context.progress(step + 1, steps, f"step {step + 1}")
        return {"steps_done": steps, "attempt": context.attempt}

    return work


@pytest.fixture
def zmq_context():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def _ipc_engine(zmq_context, tmp_path, **config) -> Engine:
    engine = Engine(
        EngineConfig(transport="ipc", runtime_dir=tmp_path / "rt", capability_modules=(), **config),
        context=zmq_context,
    )
    engine.registry.register(Handler("retime", job=counting_job))
    engine.start()
    return engine


@pytest.fixture
def ipc_engine(zmq_context, tmp_path):
    engine = _ipc_engine(zmq_context, tmp_path, journal_dir=tmp_path / "jobs")
    yield engine
    engine.stop()
    assert engine.wait_stopped(5)


def test_a_job_id_given_again_with_a_different_request_is_refused(ipc_engine, zmq_context, tmp_path):
    with EngineClient(ipc_engine.connection, context=zmq_context) as client:
        done_id = "shot-0420-retime"
        assert client.run_job("retime", {"steps": 2}, job_id=done_id, timeout_s=10) == {
            "steps_done": 2,
            "attempt": 1,
        }
        # the same request answers with the job that ran; nothing runs again
        assert client.run_job("retime", {"steps": 2}, job_id=done_id, timeout_s=10)["attempt"] == 1
        with pytest.raises(
            UnsupportedOptionError,
            match=f"job id '{done_id}' was used for a different retime request \\(that job is done\\); "
            "choose a new id",
        ):
            client.run_job("retime", {"steps": 3}, job_id=done_id, timeout_s=10)

        running_id = "long-running-01"
        client.submit("retime", {"steps": 500, "step_s": 0.02}, job_id=running_id)
        # the same request attaches to the job (as a client retrying its submission would)
        again = client.request("retime", {"steps": 500, "step_s": 0.02, "job_id": running_id}).content
        assert again["state"] in ("queued", "running") and again["attempt"] == 1
        with pytest.raises(UnsupportedOptionError, match="was used for a different retime request"):
            client.submit("retime", {"steps": 5}, job_id=running_id)
        client.cancel(running_id)
        assert client.job_status(done_id)["result"] == {"steps_done": 2, "attempt": 1}


def test_a_changed_request_for_a_job_that_runs_again_starts_over(tmp_path):
    """A failed, cancelled or interrupted job may be sent again with a changed request; what the
    other request checkpointed must not make it continue the other work."""
    seen = []

    def checkpointing(context):
        seen.append(context.checkpoint)
        context.save_checkpoint({"frames_done": 10})
        raise UnsupportedOptionError("stopped")

    jobs = JobQueue(1, journal=JobJournal(tmp_path / "jobs"))
    try:
        for request in ({"speed": "1/2"}, {"speed": "1/2"}, {"speed": "1/4"}):
            jobs.submit("retime", checkpointing, job_id="rerun-job-01", request=request)
            wait_for(lambda: jobs.status("rerun-job-01")["state"] == "failed", 10, "the job to fail")
    finally:
        jobs.shutdown()
    assert seen == [None, {"frames_done": 10}, None]


# --------------------------------------------------------------------- a shared client's events


def _own_events(events, job_id):
    assert all(event.identities[:1] == [job_id.encode()] for event in events), job_id
    states = [event.content["state"] for event in events if event.msg_type == "status"]
    progress = [event.content["done"] for event in events if event.msg_type == "progress"]
    return states, progress


def test_a_job_waited_on_after_another_gets_all_its_events(ipc_engine, zmq_context):
    with EngineClient(ipc_engine.connection, context=zmq_context) as client:
        first = "events-first-01"
        client.subscribe(first)
        client.submit("retime", {"steps": 6, "step_s": 0.06}, job_id=first)
        second_events = []
        assert client.run_job("retime", {"steps": 3, "step_s": 0.06}, on_event=second_events.append)
        first_events = []
        assert client.wait_for_job(first, on_event=first_events.append, timeout_s=10)["steps_done"] == 6
        states, progress = _own_events(first_events, first)
        assert states == ["queued", "running", "done"]
        assert progress == [1, 2, 3, 4, 5, 6]
        assert [event.msg_type for event in first_events].count("result") == 1
        second_id = second_events[0].identities[0].decode()
        assert _own_events(second_events, second_id) == (["queued", "running", "done"], [1, 2, 3])


def test_two_threads_sharing_a_client_each_get_every_event_of_their_job_once(ipc_engine, zmq_context):
    seen: dict[str, list] = {}
    failures: list[BaseException] = []
    with EngineClient(ipc_engine.connection, context=zmq_context) as client:

        def wait(job_id: str, steps: int) -> None:
            events: list = []
            try:
                client.run_job(
                    "retime", {"steps": steps, "step_s": 0.06}, job_id=job_id, on_event=events.append
                )
            except BaseException as error:  # noqa: BLE001 - reported by the assertion below
                failures.append(error)
            seen[job_id] = events

        threads = [threading.Thread(target=wait, args=(f"shared-thread-{n}", 5 + n)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert failures == []
    for n in range(2):
        job_id = f"shared-thread-{n}"
        states, progress = _own_events(seen[job_id], job_id)
        assert states == ["queued", "running", "done"], job_id
        assert progress == list(range(1, 6 + n)), job_id


def test_events_are_matched_to_the_exact_job_id(ipc_engine, zmq_context):
    """ZeroMQ matches topics by prefix: a subscription to a job also hears the jobs whose ids begin
    with its id. Those are not passed on."""
    with EngineClient(ipc_engine.connection, context=zmq_context) as client:
        client.subscribe("prefix-job")
        client.submit("retime", {"steps": 2}, job_id="prefix-job")
        client.submit("retime", {"steps": 2}, job_id="prefix-job1")
        for job_id in ("prefix-job", "prefix-job1"):
            wait_for(lambda j=job_id: client.job_status(j)["state"] == "done", 10, f"{job_id} to finish")
        events = []
        while (event := client.next_event(0.5)) is not None:
            events.append(event)
        states, progress = _own_events(events, "prefix-job")
        assert states == ["queued", "running", "done"] and progress[-1:] == [2]


# --------------------------------------------------------------------- the key stays private


def test_a_connection_file_open_to_others_is_refused_until_made_private(safety_engine):
    connection = safety_engine()
    path = connection_file_path()
    path.chmod(0o644)
    try:
        fix = f"make it private with `chmod 600 {path}`"
        with pytest.raises(ConnectionFileError, match=f"is open to other users \\(mode 0644\\).*{fix}"):
            EngineClient.connect()
        with pytest.raises(ConnectionFileError, match="chmod 600"):
            find_running_engine()
        with pytest.raises(ConnectionFileError, match="chmod 600"):
            start_engine(timeout_s=10)  # neither used nor taken for stale
        with pytest.raises(ConnectionFileError, match="chmod 600"):
            stop_engine(timeout_s=5)
        assert pid_alive(connection.pid) and path.exists()
    finally:
        path.chmod(0o600)  # as the message says; then the engine can be stopped again
    with EngineClient.connect() as client:
        assert client.ping()["pid"] == connection.pid


def test_the_runtime_folder_is_made_private(safety_engine, isolated_places):
    runtime = isolated_places / "runtime"
    runtime.mkdir()
    runtime.chmod(0o777)
    (runtime / "frames").mkdir()
    (runtime / "frames").chmod(0o755)
    connection = safety_engine()
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700
    assert stat.S_IMODE((runtime / "frames").stat().st_mode) == 0o700
    with EngineClient.connect() as client:
        assert client.ping()["pid"] == connection.pid


def test_a_runtime_folder_of_another_user_is_refused(tmp_path, isolated_places):
    runtime = isolated_places / "runtime"
    if os.geteuid() == 0:
        runtime.mkdir()
        os.chown(runtime, 65534, 65534)
        owner = 65534
    else:
        runtime.symlink_to("/")
        owner = os.stat("/").st_uid
    with pytest.raises(ConnectionFileError, match=f"belongs to another user \\(uid {owner}"):
        ensure_private_dir(runtime)
    refused = subprocess.run(
        [sys.executable, "-m", "engine.server", "--no-log-file"], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2
    assert f"{runtime} (its connection file, lock and sockets) belongs to another user (uid {owner}" in (
        refused.stderr
    )
    # CHRONOSCOPE_HOME holds the runtime folder here: XDG_RUNTIME_DIR would not move it
    assert "point CHRONOSCOPE_HOME at a folder of yours" in refused.stderr
    assert "XDG_RUNTIME_DIR" not in refused.stderr


def test_a_folder_of_the_users_choosing_is_never_changed_only_refused_when_others_write_there(tmp_path):
    """A --connection-file in the home folder made the home folder 0700."""
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o755)
    assert ensure_private_dir(home) == home
    assert stat.S_IMODE(home.stat().st_mode) == 0o755
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ConnectionFileError, match="lets other users write in it"):
        ensure_private_dir(shared)
    shared.chmod(0o1777)  # sticky, as /tmp: others cannot replace a file they do not own
    assert ensure_private_dir(shared) == shared


# --------------------------------------------------------------------- an engine that went away


def test_a_subscription_to_a_dead_engine_says_it_is_gone(safety_engine):
    connection = safety_engine()
    with EngineClient(connection) as client:
        client.subscribe("before-the-end")
        os.kill(connection.pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(connection.pid), 10, "the engine to die")
        with pytest.raises(EngineTimeoutError, match=f"engine pid {connection.pid} is no longer running"):
            client.subscribe("after-the-end", timeout_s=0.5)


def test_a_wait_ended_by_engine_stop_says_the_engine_stopped(safety_engine):
    """`engine stop` while a job's worker cannot stop within the engine's shutdown wait: the waiter
    hears that the job was interrupted, not that job_status timed out."""
    connection = safety_engine()
    outcome: list[BaseException | dict] = []
    job_id = "stubborn-job-01"

    def wait() -> None:
        with EngineClient(connection) as client:
            try:
                outcome.append(client.run_job("retime", {"hold_s": 30}, job_id=job_id))
            except BaseException as error:  # noqa: BLE001 - checked below
                outcome.append(error)

    waiter = threading.Thread(target=wait)
    waiter.start()
    with EngineClient(connection) as client:
        wait_for(lambda: _state(client, job_id) == "running", 20, "the job to run")
    assert stop_engine(timeout_s=30) == "stopped"
    waiter.join(30)
    assert not waiter.is_alive()
    (error,) = outcome
    assert isinstance(error, JobInterruptedError), error
    assert f"job {job_id} was interrupted when its engine stopped" in str(error)

    with EngineClient(safety_engine()) as client:  # the next engine knows it, and it can be resumed
        assert client.job_status(job_id)["state"] == "interrupted"


def test_a_wait_on_a_killed_engine_says_it_is_gone(safety_engine):
    connection = safety_engine()
    job_id = "killed-engine-job"
    with EngineClient(connection) as client:
        client.subscribe(job_id)
        client.submit("retime", {"hold_s": 30}, job_id=job_id)
        wait_for(lambda: _state(client, job_id) == "running", 20, "the job to run")
        os.kill(connection.pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(connection.pid), 10, "the engine to die")
        started = time.monotonic()
        with pytest.raises(
            JobInterruptedError,
            match=f"engine pid {connection.pid} stopped \\(shut down or died\\) before job {job_id} was seen",
        ):
            client.wait_for_job(job_id, timeout_s=30)
        assert time.monotonic() - started < 4.0  # not after a job_status that waits in vain


def _state(client: EngineClient, job_id: str) -> str | None:
    try:
        return client.job_status(job_id, timeout_s=5)["state"]
    except JobNotFoundError:  # not queued yet
        return None


def test_jobs_stopped_by_the_engine_stopping_end_interrupted_not_cancelled(tmp_path):
    """A job cancelled because the engine stops is resumable: it used to end 'cancelled', as if a
    client had cancelled it, and its waiter heard so."""
    jobs = JobQueue(1, journal=JobJournal(tmp_path / "jobs"))
    started = threading.Event()

    def long(context):
        started.set()
        while not context.token.wait(0.01):
            pass
        context.check_cancelled()

    def never(context):
        return {}

    jobs.submit("retime", long, job_id="running-1")
    jobs.submit("retime", never, job_id="queued-1")
    assert started.wait(5)
    jobs.shutdown()
    assert jobs.status("running-1")["state"] == "interrupted"
    assert jobs.status("queued-1")["state"] == "interrupted"
    other = JobQueue(1, journal=JobJournal(tmp_path / "other"))
    other.submit("retime", long, job_id="cancelled-1")
    other.cancel("cancelled-1")
    deadline = time.monotonic() + 5
    while other.status("cancelled-1")["state"] != "cancelled":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    other.shutdown()
