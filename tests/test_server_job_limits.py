"""The job queue of a real engine process under pressure, over ipc://: a job is registered only
once the journal holds it, the queue refuses more than it can hold, a large request is kept by its
digest, and a job interrupted by a killed engine keeps its checkpoint however many jobs finish
after it."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine.errors import EngineBusyError, JobJournalError, JobNotFoundError, UnsupportedOptionError
from engine.processes import pid_alive
from engine.server.client import EngineClient
from engine.server.connection import connection_file_path
from engine.server.jobs import MAX_QUEUED_JOBS
from engine.server.process import start_engine, stop_engine

pytestmark = pytest.mark.skipif(os.name == "nt", reason="ipc:// and signals")

JOBS_MODULE = textwrap.dedent(
    """
    import time
    from pathlib import Path
    from engine.server.handlers import Handler


    def make_job(message):
        content = message.content
        mode = content.get("mode", "quick")
        release = Path(content["release"]) if "release" in content else None

        def work(context):
            previous = context.checkpoint
            if mode == "hold":
                context.save_checkpoint({"held": True, "attempt": context.attempt})
                while not release.exists():
                    context.check_cancelled()
                    time.sleep(0.02)
            return {"mode": mode, "previous_checkpoint": previous, "attempt": context.attempt}

        return work


    def register_handlers(registry):
        registry.register(Handler("detect_speed", job=make_job, description="jobs for the queue tests"))
    """
)


class EngineHome:
    """An engine process serving ``JOBS_MODULE`` in its own home; started and killed on demand."""

    def __init__(self, home: Path):
        self.home = home
        self.modules = home / "modules"
        self.modules.mkdir()
        (self.modules / "chrono_test_jobs.py").write_text(JOBS_MODULE)
        self.connection = None

    @property
    def journal(self) -> Path:
        return self.home / "cache" / "jobs"

    def environment(self, patch: pytest.MonkeyPatch) -> None:
        patch.setenv("CHRONOSCOPE_HOME", str(self.home))
        patch.setenv("PYTHONPATH", os.pathsep.join([str(self.modules), *sys.path]))

    def start(self):
        self.connection, started = start_engine(timeout_s=60, capability_modules=["chrono_test_jobs"])
        assert started
        return self.connection

    def kill(self) -> None:
        os.kill(self.connection.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(self.connection.pid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        assert stop_engine(connection_file_path(), timeout_s=10, force=True) in ("stopped", "not running")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    runner = EngineHome(tmp_path_factory.mktemp("jobs-engine"))
    with pytest.MonkeyPatch.context() as patch:
        runner.environment(patch)
        runner.start()
        try:
            yield runner
        finally:
            runner.stop()


@pytest.fixture
def client(engine):
    with EngineClient(engine.connection) as client:
        yield client


def _wait_settled(client: EngineClient, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        counts = client.info()["jobs"]["counts"]
        if counts["queued"] == 0 and counts["running"] == 0:
            return counts
        assert time.monotonic() < deadline, f"jobs still unfinished: {counts}"
        time.sleep(0.05)


def test_a_job_the_journal_cannot_record_is_refused_and_leaves_nothing_behind(client, engine):
    """A job was registered before its journal record was written: when writing failed it stayed
    queued forever, could not be cancelled, and made the engine's shutdown crash."""
    blocker = engine.journal / "journal-refuses-1.json"
    blocker.mkdir()  # the record cannot be renamed into place: it is a folder
    try:
        with pytest.raises(JobJournalError, match="journal-refuses-1: the job journal cannot record it"):
            client.submit("detect_speed", {"mode": "quick"}, job_id="journal-refuses-1")
        with pytest.raises(JobNotFoundError):
            client.job_status("journal-refuses-1")
        with pytest.raises(JobNotFoundError):
            client.cancel("journal-refuses-1")
    finally:
        blocker.rmdir()
    assert client.run_job("detect_speed", {"mode": "quick"}, job_id="journal-refuses-1", timeout_s=30)[
        "mode"
    ] == ("quick")


def test_the_queue_refuses_jobs_beyond_its_limit(client, tmp_path):
    """3000 jobs were queued without a word: each one's request and journal record kept."""
    release = tmp_path / "release"
    for _ in range(2):
        client.submit("detect_speed", {"mode": "hold", "release": str(release)})
    deadline = time.monotonic() + 30
    while client.info()["jobs"]["counts"]["running"] < 2:
        assert time.monotonic() < deadline, "the holding jobs did not start"
        time.sleep(0.02)
    queued = [client.submit("detect_speed", {"mode": "quick"}) for _ in range(MAX_QUEUED_JOBS)]
    with pytest.raises(EngineBusyError, match=f"{MAX_QUEUED_JOBS} jobs are waiting already"):
        client.submit("detect_speed", {"mode": "quick"})
    release.touch()
    _wait_settled(client)
    assert client.job_status(queued[-1])["state"] == "done"


def test_a_large_request_is_kept_by_its_digest_not_whole(client, engine):
    """A 10 MB field in each of 60 jobs: 600 MB more engine memory, a 601 MB journal."""
    request = {"mode": "quick", "note": "x" * 2_000_000}
    client.run_job("detect_speed", request, job_id="large-request-1", timeout_s=30)
    assert (engine.journal / "large-request-1.json").stat().st_size < 64 * 1024
    # the same id and request answers with that job; another request under the id is refused
    assert client.request("detect_speed", {**request, "job_id": "large-request-1"}).content["state"] == "done"
    with pytest.raises(UnsupportedOptionError, match="was used for a different detect_speed request"):
        client.submit("detect_speed", {**request, "note": "y" * 2_000_000}, job_id="large-request-1")


def test_an_interrupted_job_keeps_its_checkpoint_however_many_jobs_finish_after_it(
    tmp_path, tmp_path_factory
):
    """The 256 newest finished jobs were kept, and an interrupted one counted as finished: its
    checkpoint was gone when the user came back to resume it."""
    runner = EngineHome(tmp_path_factory.mktemp("resume-engine"))
    release = tmp_path / "release"
    with pytest.MonkeyPatch.context() as patch:
        runner.environment(patch)
        try:
            with EngineClient(runner.start()) as client:
                client.submit("detect_speed", {"mode": "hold", "release": str(release)}, job_id="cut-short-1")
                deadline = time.monotonic() + 30
                while client.job_status("cut-short-1")["state"] != "running":
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
                time.sleep(0.3)  # its checkpoint is saved as it starts
            runner.kill()
            with EngineClient(runner.start()) as client:
                assert client.job_status("cut-short-1")["state"] == "interrupted"
                for _ in range(2):  # more finished jobs than are kept
                    for _ in range(150):
                        client.submit("detect_speed", {"mode": "quick"})
                    _wait_settled(client)
                assert client.job_status("cut-short-1")["state"] == "interrupted"
                release.touch()
                result = client.resume_job("detect_speed", "cut-short-1", timeout_s=30)
                assert result["previous_checkpoint"] == {"held": True, "attempt": 1}
                assert result["attempt"] == 2
        finally:
            runner.stop()


def test_a_job_queue_registers_nothing_it_cannot_journal(tmp_path):
    """Registered first and journaled after, a request JSON could not hold left a job that was
    never run, could not be cancelled, and made the shutdown raise."""
    from engine.server.jobs import JobJournal, JobQueue

    jobs = JobQueue(1, journal=JobJournal(tmp_path / "jobs"))
    try:
        with pytest.raises(JobJournalError, match="cannot be kept in the job journal"):
            jobs.submit("detect_speed", lambda context: {}, job_id="not-json-1", request={"x": float("inf")})
        with pytest.raises(JobNotFoundError):
            jobs.status("not-json-1")
        assert jobs.summary()["counts"]["queued"] == 0
        assert not (tmp_path / "jobs" / "not-json-1.json").exists()
    finally:
        jobs.shutdown(wait_s=5)
