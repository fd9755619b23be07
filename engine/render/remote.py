"""Rendering segments as engine jobs: ``EngineRunner`` submits one ``retime`` job per segment.

The engine is started on demand with the render capability installed
(``engine.render.capability``). Up to ``jobs`` segments are in flight at once, each waited for by
its own client connection; progress events come back per segment. An engine that is already
running without the capability cannot take the jobs: ``connect_render_engine`` says so and the
caller renders in this process instead (a WARNING).
"""

from __future__ import annotations

import logging
import threading
import uuid

from engine.errors import CapabilityNotAvailableError, ChronoscopeError, JobCancelledError, WaitStoppedError
from engine.render.capability import MODULE
from engine.render.run import run_on_threads
from engine.retime.report import RetimeReport
from engine.server.client import EngineClient
from engine.server.process import start_engine

log = logging.getLogger(__name__)


def connect_render_engine(workers: int, timeout_s: float = 60.0):
    """Start (or find) this user's engine and check that it serves ``retime``; return its connection.

    Raises ``CapabilityNotAvailableError`` when a running engine lacks the render capability.
    """
    connection, started = start_engine(workers=workers, timeout_s=timeout_s, capability_modules=[MODULE])
    with EngineClient(connection) as client:
        info = client.info()
    available = info.get("capabilities", {}).get("available", [])
    if "retime" not in available:
        raise CapabilityNotAvailableError(
            f"the running engine (pid {connection.pid}) does not serve retime (it serves: "
            f"{', '.join(available) or 'nothing beyond the core'}); restart it with "
            f"`chronoscope engine stop` and render again, or use --no-engine"
        )
    log.info("%s engine pid %d for the render", "started" if started else "using", connection.pid)
    return connection


class EngineRunner:
    """Segments as ``retime`` jobs of the engine at ``connection``, ``jobs`` at a time."""

    def __init__(self, connection, jobs: int = 2) -> None:
        self.connection = connection
        self.jobs = max(1, jobs)

    def run(self, specs, on_progress, on_done) -> None:
        """Ctrl-C cancels the segments' jobs in the engine (they remove their temporary files) and
        submits no more."""
        stop = threading.Event()

        def one(spec) -> None:
            def on_event(event) -> None:
                if event.msg_type == "progress":
                    done, total = event.content.get("done"), event.content.get("total")
                    if isinstance(done, int) and isinstance(total, int):
                        on_progress(spec, done, total)

            if stop.is_set():
                return
            job_id = uuid.uuid4().hex
            try:
                with EngineClient(self.connection) as client:
                    try:
                        result = client.run_job(
                            "retime", {"segment": spec.to_dict()}, on_event=on_event, job_id=job_id, stop=stop
                        )
                    except WaitStoppedError:
                        client.cancel(job_id)
                        log.info("cancelled the engine's job for %s", spec.clip_name)
                        return
            except JobCancelledError:
                raise
            except ChronoscopeError as error:
                on_done(spec, None, error)
                return
            report = RetimeReport.from_dict(result["report"])
            on_progress(spec, report.frames_written, report.frames_written)
            on_done(spec, report, None)

        run_on_threads(one, specs, self.jobs, stop, "render-client")
