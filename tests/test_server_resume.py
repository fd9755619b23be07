"""A real engine process killed with SIGKILL mid-job: no half-written output, a clear error for the
client, and after a restart the job is ``interrupted`` and a resubmission continues and completes.
Also: a client that disconnects mid-job does not stop the engine."""

from __future__ import annotations

import os
import signal
import textwrap

import pytest
from process_control import engine_starter, wait_for

from engine.errors import EngineTimeoutError, JobInterruptedError, OutputExistsError
from engine.processes import pid_alive
from engine.server.client import EngineClient
from engine.server.process import stop_engine

pytestmark = pytest.mark.skipif(os.name == "nt", reason="SIGKILL and ipc://")

CHUNK_BYTES = 4096

# A render_timeline stand-in that renders chunks into its work folder (saving a checkpoint after
# each), then writes them to its output through context.output. With ``hold_writing_after`` its
# first attempt stops writing after that many chunks and waits there to be killed, so the kill lands
# mid-write however slow or loaded the machine is.
WRITER_MODULE = textwrap.dedent(
    """
    import time
    from engine.server.handlers import Handler
    from engine.server.outputs import requested_output, requested_overwrite


    def make_job(message):
        output = requested_output(message.content)
        overwrite = requested_overwrite(message.content)
        chunks = int(message.content["chunks"])
        step_s = float(message.content["step_s"])
        hold_after = message.content.get("hold_writing_after")

        def work(context):
            resumed_from = (context.checkpoint or {}).get("chunks_done", 0)
            for number in range(resumed_from, chunks):
                context.check_cancelled()
                time.sleep(step_s)
                part = context.work_dir / f"chunk-{number}.bin"
                part.write_bytes(bytes([65 + number]) * CHUNK_BYTES)
                context.save_checkpoint({"chunks_done": number + 1})
                context.progress(number + 1, 2 * chunks, "rendering")
            with context.output(output, overwrite=overwrite) as temporary:
                with open(temporary, "wb") as stream:
                    for number in range(chunks):
                        stream.write((context.work_dir / f"chunk-{number}.bin").read_bytes())
                        stream.flush()
                        context.progress(chunks + number + 1, 2 * chunks, "writing")
                        while context.attempt == 1 and hold_after == number + 1:
                            context.check_cancelled()
                            time.sleep(0.02)
                        time.sleep(step_s)
            return {"output": str(output), "resumed_from": resumed_from, "attempt": context.attempt}

        return work


    def make_plain_writer(message):
        from pathlib import Path
        from engine.fsutil import atomic_path

        output = Path(message.content["output"])

        def work(context):
            # writes the way the media writer does (atomic_path), not through context.output
            with atomic_path(output) as temporary:
                temporary.write_bytes(b"half")
                while True:
                    context.check_cancelled()
                    time.sleep(0.02)

        return work


    def register_handlers(registry):
        registry.register(Handler("render_timeline", job=make_job))
        registry.register(Handler("retime", job=make_plain_writer))
    """
).replace("CHUNK_BYTES", str(CHUNK_BYTES))


@pytest.fixture
def writer_engine(tmp_path, monkeypatch):
    """Starts engines that serve the writer job; stops whatever runs at the end."""
    start = engine_starter(tmp_path, monkeypatch, "chrono_test_writer", WRITER_MODULE)
    yield start
    stop_engine(timeout_s=5, force=True)


def _partials(folder):
    return sorted(path.name for path in folder.iterdir() if ".partial-" in path.name)


def test_kill_mid_write_leaves_no_output_then_restart_resumes_the_job(writer_engine, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    output = out_dir / "render.bin"
    request = {"output": str(output), "chunks": 6, "step_s": 0.1}
    job_id = "render-kill-0001"

    first = writer_engine()
    with EngineClient(first) as client:
        client.subscribe(job_id)
        client.submit("render_timeline", {**request, "hold_writing_after": 2}, job_id=job_id)
        wait_for(
            lambda: client.job_status(job_id)["progress"]["done"] == 8, 20, "the job to be writing its output"
        )
        os.kill(first.pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(first.pid), 10, "the engine to die")

        assert not output.exists(), "a half-written output appeared at the destination"
        assert len(_partials(out_dir)) == 1, "the kill should have hit the write in progress"

        with pytest.raises(EngineTimeoutError, match=f"engine pid {first.pid} is no longer running"):
            client.job_status(job_id, timeout_s=0.5)

    second = writer_engine()
    assert second.pid != first.pid
    with EngineClient(second) as client:
        status = client.job_status(job_id)
        assert status["state"] == "interrupted"
        assert status["kind"] == "render_timeline"
        assert _partials(out_dir) == [], "the restarted engine left the temporary file"
        with pytest.raises(JobInterruptedError, match="resume"):
            client.wait_for_job(job_id, timeout_s=5)

        result = client.resume_job("render_timeline", job_id, timeout_s=30)
        assert result == {"output": str(output), "resumed_from": 6, "attempt": 2}
        expected = b"".join(bytes([65 + number]) * CHUNK_BYTES for number in range(6))
        assert output.read_bytes() == expected
        status = client.job_status(job_id)
        assert (status["state"], status["attempt"], status["outputs"]) == ("done", 2, [str(output)])

        # submitting a done job again (the same request) answers with its result and runs nothing
        first_request = {**request, "hold_writing_after": 2}
        assert client.run_job("render_timeline", first_request, job_id=job_id, timeout_s=10) == result
        # another job never replaces the file unless asked
        with pytest.raises(OutputExistsError, match="set overwrite to true"):
            client.run_job("render_timeline", {**request, "chunks": 1}, timeout_s=10)
        assert output.read_bytes() == expected
        replaced = client.run_job(
            "render_timeline", {**request, "chunks": 1, "step_s": 0, "overwrite": True}, timeout_s=10
        )
        assert replaced["attempt"] == 1
        assert output.read_bytes() == b"A" * CHUNK_BYTES
        assert _partials(out_dir) == []


def test_temporaries_of_a_killed_engine_are_removed_when_it_next_starts(writer_engine, tmp_path):
    """Whatever writes a temporary name inside a job (the media writer, a sidecar, the audio
    track), the journal knows it, so the next engine removes what a SIGKILL left."""
    output = tmp_path / "clip.mov"
    first = writer_engine()
    with EngineClient(first) as client:
        job_id = client.submit("retime", {"output": str(output)})
        wait_for(lambda: _partials(tmp_path), 20, "the job to be writing")
        os.kill(first.pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(first.pid), 10, "the engine to die")
    assert len(_partials(tmp_path)) == 1
    second = writer_engine()
    with EngineClient(second) as client:
        assert client.job_status(job_id)["state"] == "interrupted"
    assert _partials(tmp_path) == [] and not output.exists()


def test_a_client_that_disconnects_mid_job_does_not_stop_it(writer_engine, tmp_path):
    connection = writer_engine()
    output = tmp_path / "left-behind.bin"
    job_id = "render-orphan-01"
    with EngineClient(connection) as leaving:
        leaving.subscribe(job_id)
        leaving.submit("render_timeline", {"output": str(output), "chunks": 3, "step_s": 0.05}, job_id=job_id)
    with EngineClient(connection) as other:
        wait_for(lambda: other.job_status(job_id)["state"] == "done", 20, "the job to finish")
        assert other.ping()["pid"] == connection.pid
    assert output.stat().st_size == 3 * CHUNK_BYTES
