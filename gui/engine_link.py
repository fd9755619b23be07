"""The app's connection to the engine: its state, preview frames, analysis and render jobs.

Everything here runs off the UI thread and reports through Qt signals, so the window never
waits on the engine. It talks to the engine only through ``engine.server.client``.

Preview frames follow "latest wins": a scrub replaces the request still waiting, so a stale
position is never sent; an answer for a position the user already left is dropped, never shown.
A synthesize request already on the wire cannot be recalled, so at most one is in flight.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal

from engine.errors import (
    CapabilityNotAvailableError,
    ChronoscopeError,
    EngineNotRunningError,
    EngineTimeoutError,
    JobCancelledError,
    JobInterruptedError,
    OutputExistsError,
    WaitStoppedError,
)
from engine.interp.checks import needs_check
from engine.processes import pid_alive
from engine.server.client import EngineClient
from engine.server.connection import connection_file_path
from gui import results
from gui.frames import FrameSource

log = logging.getLogger(__name__)

PING_EVERY_S = 1.0
PING_TIMEOUT_S = 1.0
INFO_EVERY_PINGS = 5
PREVIEW_TIMEOUT_S = 20.0
# While scrubbing, previews come from a cheaper setting of the model (full output size; flow at
# half scale, DIS "ultrafast", no splatting: about 10x cheaper at 720p); when the playhead rests,
# the same frame is made again at full quality.
DRAFT_OPTIONS: dict[str, dict[str, Any]] = {
    "flow": {"preset": "ultrafast", "flow_scale": 0.5, "splat": False}
}
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider", "ROCMExecutionProvider")
START_ADVICE = "Use Engine ▸ Start engine (or Start engine in the status bar)"
# job_finished states besides done | failed | cancelled | unavailable: no engine took the render
# (it waits for one), the engine stopped while it had it, or the engine refused its output name (a
# file is there, or another render writes it now)
WAITING, INTERRUPTED, OUTPUT_TAKEN = "waiting", "interrupted", "output taken"


def new_job_id() -> str:
    return uuid.uuid4().hex


@dataclass
class EngineState:
    """What the status bar shows about the engine."""

    status: str = "disconnected"  # disconnected | starting | connected | lost
    message: str = ""  # the technical reason (connection files, sockets): for the log only
    pid: int | None = None
    providers: list[str] = field(default_factory=list)
    backends: list[str] = field(default_factory=list)
    models_loaded: list[str] = field(default_factory=list)
    available: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    started_here: bool = False
    start_failed: bool = False  # the app tried to start an engine and could not
    job_outputs: tuple[str, ...] = ()
    """The outputs of the jobs queued or running in the engine (any client's): names taken."""
    shut_down: bool = False  # lost: it was stopped (``chronoscope engine stop``), not killed or hung

    def serves(self, capability: str) -> bool:
        return capability in self.available

    @property
    def device(self) -> str:
        """Where the loaded models run: GPU when any runs on a GPU provider, else CPU."""
        return "GPU" if any(p in GPU_PROVIDERS for p in self.models_loaded) else "CPU"

    def summary(self) -> str:
        if self.status == "connected":
            return f"Engine pid {self.pid} · {self.device} · {len(self.backends)} models"
        if self.status == "starting":
            return "Engine: starting…"
        if self.status == "lost":
            return "Engine stopped" if self.shut_down else "Engine lost"
        return "Engine: not running"

    def user_message(self) -> str:
        """What the window tells the editor about an engine it cannot use, in the app's terms;
        the technical reason (``message``) goes to the log."""
        if self.status == "lost" and self.shut_down:
            return f"The engine was stopped. {START_ADVICE} to start a new one."
        if self.status == "lost":
            return f"The engine stopped answering. {START_ADVICE} to start a new one."
        if self.status == "connected":
            return ""
        if self.status == "starting":
            return "The engine is starting; previews and renders wait for it."
        if self.start_failed:
            return f"The engine could not be started (the log says why). {START_ADVICE} to try again."
        return f"No engine is running. {START_ADVICE} to start one."

    def details(self) -> str:
        """The tooltip: models, execution providers, capabilities."""
        return (
            f"models: {', '.join(self.backends) or 'none'}\n"
            f"loaded: {', '.join(self.models_loaded) or 'none yet'}\n"
            f"ONNX Runtime providers: {', '.join(self.providers) or 'none'}\n"
            f"serves: {', '.join(self.available) or 'nothing'}; "
            f"not in this build: {', '.join(self.missing) or 'none'}"
        )


@dataclass(frozen=True)
class PreviewRequest:
    """Show the clip at ``position_frames`` (source frames, exact; a fraction means in-between)."""

    serial: int
    source: FrameSource
    position_frames: Fraction
    backend: str


@dataclass
class PreviewFrame:
    """The answer to a ``PreviewRequest``: the generated frame, its risk map, how long it took."""

    serial: int
    position_frames: Fraction
    frame: np.ndarray
    risk: np.ndarray | None
    risk_score: float
    backend: str
    latency_s: float
    notes: list[str] = field(default_factory=list)
    draft: bool = False
    risk_local: float = 0.0
    """The worst subject-sized patch of the risk map (``engine.interp.checks.local_risk``)."""
    check: bool = False
    """The local risk reaches the model's measured level: a frame to look at (never for a draft)."""


class EngineLink(QObject):
    """Owns the engine connection and the threads that talk to it."""

    state_changed = pyqtSignal(object)  # EngineState
    original_ready = pyqtSignal(int, object, object)  # serial, position (Fraction), array
    preview_ready = pyqtSignal(object)  # PreviewFrame
    preview_failed = pyqtSignal(int, str)  # serial, message
    analysis_ready = pyqtSignal(str, object)  # path, SpeedAnalysis
    analysis_failed = pyqtSignal(str, str, bool)  # path, message, capability unavailable
    analysis_interrupted = pyqtSignal(str)  # path: the engine stopped before the analysis ended
    job_progress = pyqtSignal(str, int, int, str)  # job id, done, total (0: unknown), message
    # job id, done|failed|cancelled|unavailable|waiting|interrupted|output taken, then a
    # RenderResult (done) or the message
    job_finished = pyqtSignal(str, str, object)

    def __init__(self, *, start_engine: bool = True, connection_file: Path | None = None, parent=None):
        super().__init__(parent)
        self._start_engine = start_engine
        self._connection_file = connection_file
        self._connection = None
        self.state = EngineState()
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._pending: PreviewRequest | None = None
        self._pending_refine: PreviewRequest | None = None
        self._latest_serial = 0
        self._serial_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()
        self._jobs: dict[str, EngineClient] = {}
        self._jobs_lock = threading.Lock()
        self._connect_lock = threading.Lock()
        self._preview_thread = self._spawn(self._preview_loop, "chronoscope-preview", False)
        self._refine_thread = self._spawn(self._preview_loop, "chronoscope-refine", True)
        self._monitor_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ connection

    def _spawn(self, target, name: str, *args) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, args=args, daemon=True)
        with self._threads_lock:  # the GUI thread and the connect thread both start threads
            thread.start()
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        return thread

    def connect_engine(self) -> None:
        """Find the engine in the background (and start one when none answers, unless the link
        was made with ``start_engine=False``); ``state_changed`` reports the outcome."""
        self._begin_connect(self._start_engine)

    def start_engine(self) -> None:
        """The user asked for an engine (Engine ▸ Start engine): connect to the running one or
        start one, whatever ``start_engine`` said (it only keeps the app from starting one on
        its own at launch)."""
        self._begin_connect(True)

    def _begin_connect(self, start: bool) -> None:
        if self.state.status == "starting":
            return
        self._set_state(EngineState(status="starting"))
        self._spawn(self._connect, "chronoscope-connect", start)

    def _connect(self, start: bool) -> None:
        with self._connect_lock:
            try:
                if start:
                    from engine.server.process import start_engine

                    connection, started = start_engine(connection_file=self._connection_file)
                else:
                    connection, started = EngineClient.connect(self._connection_file).connection, False
                with EngineClient(connection) as client:
                    info = client.info(timeout_s=5.0)
            except ChronoscopeError as error:
                log.warning("engine not connected: %s", error)
                self._set_state(EngineState(status="disconnected", message=str(error), start_failed=start))
                return
            self._connection = connection
            self._set_state(self._state_from_info(info, started))
            if self._monitor_thread is None or not self._monitor_thread.is_alive():
                self._monitor_thread = self._spawn(self._monitor_loop, "chronoscope-monitor")

    @staticmethod
    def _state_from_info(info: dict[str, Any], started: bool) -> EngineState:
        capabilities = info.get("capabilities") or {}
        return EngineState(
            status="connected",
            pid=info.get("pid"),
            providers=list(info.get("execution_providers") or []),
            backends=list(info.get("synthesis_backends") or []),
            models_loaded=[str(m.get("execution_provider", "")) for m in info.get("models_loaded") or []],
            available=list(capabilities.get("available") or []),
            missing=list(capabilities.get("missing") or []),
            started_here=started,
            job_outputs=_job_outputs(info),
        )

    def _set_state(self, state: EngineState) -> None:
        self.state = state
        self.state_changed.emit(state)

    def _monitor_loop(self) -> None:
        """Ping on the control channel; two misses in a row mean the engine went away."""
        misses = beats = 0
        client = EngineClient(self._connection)
        try:
            while not self._stop.wait(PING_EVERY_S):
                if self.state.status != "connected":
                    return
                try:
                    client.ping(timeout_s=PING_TIMEOUT_S)
                    misses = 0
                    beats += 1
                    if beats % INFO_EVERY_PINGS == 0:
                        self._refresh_info(client)
                except ChronoscopeError as error:
                    misses += 1
                    if misses >= 2:
                        shut_down = self._was_shut_down()
                        how = "was stopped" if shut_down else "stopped answering"
                        log.warning("engine pid %s %s: %s", self.state.pid, how, error)
                        self._set_state(
                            EngineState(
                                status="lost",
                                pid=self.state.pid,
                                message=f"engine pid {self.state.pid} {how} ({error})",
                                shut_down=shut_down,
                            )
                        )
                        return
        finally:
            client.close()

    def _was_shut_down(self) -> bool:
        """Whether the engine that stopped answering was shut down (it removes its connection
        file as it ends, and its process is gone) rather than killed, crashed or hung."""
        connection = self._connection
        if connection is None or pid_alive(connection.pid):
            return False
        path = Path(self._connection_file) if self._connection_file else connection_file_path()
        return not path.exists()

    def _refresh_info(self, client: EngineClient) -> None:
        info = client.info(timeout_s=PING_TIMEOUT_S * 2)
        state = self._state_from_info(info, self.state.started_here)
        if state != self.state and self.state.status == "connected":
            self._set_state(state)

    def user_text(self, error: ChronoscopeError) -> str:
        """``error`` as the window shows it: a connection problem in the app's terms (its
        technical detail, sockets and connection files, is logged), anything else as it is."""
        if isinstance(error, EngineTimeoutError):
            log.warning("the engine did not answer in time: %s", error)
            return "the engine did not answer in time; it may be busy or stopped"
        if isinstance(error, EngineNotRunningError):
            if self.state.status != "connected":
                return self.state.user_message()
            log.warning("the engine stopped answering: %s", error)
            return f"the engine stopped answering. {START_ADVICE} to start a new one."
        if isinstance(error, JobInterruptedError):
            log.warning("a job was interrupted: %s", error)
            return "the engine stopped before it was done; it runs again when the engine is back"
        return str(error)

    def _client(self) -> EngineClient:
        if self._connection is None or self.state.status != "connected":
            raise_not_connected(self.state)
        return EngineClient(self._connection)

    # ------------------------------------------------------------------ previews

    def next_serial(self) -> int:
        with self._serial_lock:
            self._latest_serial += 1
            return self._latest_serial

    def is_current(self, serial: int) -> bool:
        return serial == self._latest_serial

    def request_preview(self, request: PreviewRequest) -> None:
        """Queue ``request``, replacing any request not yet started (latest wins).

        For a model with a draft setting the answer is a draft; ask ``request_refine`` for the
        full-quality frame once the playhead rests.
        """
        with self._wake:
            self._pending = request
            self._wake.notify_all()

    def request_refine(self, request: PreviewRequest) -> None:
        """Make ``request``'s frame at full quality (on its own thread, so scrubbing never waits)."""
        with self._wake:
            self._pending_refine = request
            self._wake.notify_all()

    def has_draft(self, backend: str) -> bool:
        return backend in DRAFT_OPTIONS

    def _take_request(self, refine: bool) -> PreviewRequest | None:
        slot = "_pending_refine" if refine else "_pending"
        with self._wake:
            while getattr(self, slot) is None and not self._stop.is_set():
                self._wake.wait(0.5)
            request = getattr(self, slot)
            setattr(self, slot, None)
            return request

    def _preview_loop(self, refine: bool) -> None:
        client: EngineClient | None = None
        connection = None
        try:
            while not self._stop.is_set():
                request = self._take_request(refine)
                if request is None or not self.is_current(request.serial):
                    continue
                if connection is not self._connection and client is not None:
                    client.close()
                    client = None
                if client is None and self._connection is not None:
                    connection = self._connection
                    client = EngineClient(connection)
                if refine:
                    self._serve_refine(client, request)
                else:
                    self._serve_preview(client, request)
        finally:
            if client is not None:
                client.close()

    def _serve_preview(self, client: EngineClient | None, request: PreviewRequest) -> None:
        started_ns = time.monotonic_ns()
        position = request.position_frames
        base = int(position)  # floor for non-negative positions
        try:
            frame0 = request.source.frame(base)
            self.original_ready.emit(request.serial, position, frame0)
            if position == base:
                return
            self._synthesize(client, request, frame0, DRAFT_OPTIONS.get(request.backend), started_ns)
        except ChronoscopeError as error:
            if self.is_current(request.serial):
                self.preview_failed.emit(request.serial, self.user_text(error))

    def _serve_refine(self, client: EngineClient | None, request: PreviewRequest) -> None:
        started_ns = time.monotonic_ns()
        try:
            frame0 = request.source.frame(int(request.position_frames))
            self._synthesize(client, request, frame0, None, started_ns)
        except ChronoscopeError as error:
            log.warning("full-quality preview of frame %s failed: %s", request.position_frames, error)

    def _synthesize(
        self,
        client: EngineClient | None,
        request: PreviewRequest,
        frame0: np.ndarray,
        options: dict[str, Any] | None,
        started_ns: int,
    ) -> None:
        position = request.position_frames
        base = int(position)
        frame1 = request.source.frame(min(base + 1, request.source.info.frame_count - 1))
        if not self.is_current(request.serial):
            return
        if client is None or self.state.status != "connected":
            raise_not_connected(self.state)
        result = client.synthesize(
            frame0,
            frame1,
            [position - base],
            backend=request.backend,
            options=options,
            timeout_s=PREVIEW_TIMEOUT_S,
        )[0]
        if not self.is_current(request.serial):
            log.debug("dropped a stale preview for frame %s", position)
            return
        self.preview_ready.emit(
            PreviewFrame(
                serial=request.serial,
                position_frames=position,
                frame=result.frame,
                risk=result.risk,
                risk_score=result.risk_score,
                backend=result.backend,
                latency_s=(time.monotonic_ns() - started_ns) / 1e9,
                notes=list(result.notes),
                draft=options is not None,
                risk_local=result.risk_local,
                check=options is None
                and needs_check(result.backend, result.risk_local, fallback=result.fallback),
            )
        )

    # ------------------------------------------------------------------ analysis and renders

    def analyse(self, path: Path, rate: Fraction | None, frame_count: int | None) -> None:
        """Run ``detect_speed`` on a clip; ``analysis_ready`` or ``analysis_failed`` answers."""
        self._spawn(self._analyse, "chronoscope-detect", Path(path), rate, frame_count)

    def _analyse(self, path: Path, rate: Fraction | None, frame_count: int | None) -> None:
        """One analysis; when the link closes first, the engine's job is cancelled (it served only
        this window) and nothing is reported."""
        key = str(path)
        job_id = uuid.uuid4().hex
        try:
            with self._client() as client:
                try:
                    result = client.run_job(
                        "detect_speed",
                        results.detect_request(path, rate, frame_count),
                        job_id=job_id,
                        stop=self._stop,
                    )
                except WaitStoppedError:
                    try:
                        client.cancel(job_id)
                    except ChronoscopeError as error:
                        log.debug("could not cancel the analysis of %s: %s", path.name, error)
                    log.debug("analysis of %s cancelled: the app closed", path.name)
                    return
            analysis = results.parse_speed_result(result)
        except CapabilityNotAvailableError as error:
            self.analysis_failed.emit(key, str(error), True)
            return
        except (JobInterruptedError, EngineNotRunningError) as error:
            # the engine stopped (shut down, killed): the window asks again when one is back
            log.warning("speed analysis of %s: the engine stopped: %s", path.name, error)
            self.analysis_interrupted.emit(key)
            return
        except ChronoscopeError as error:
            log.warning("speed analysis of %s failed: %s", path.name, error)
            self.analysis_failed.emit(key, self.user_text(error), False)
            return
        self.analysis_ready.emit(key, analysis)

    def submit_render(self, order: results.RenderOrder, job_id: str | None = None) -> str:
        """Queue a ``retime`` job for ``order``; returns the job id its signals carry. Give the
        ``job_id`` of an earlier attempt to run it again (the engine resumes an interrupted job
        given again with its id and request)."""
        job_id = job_id or new_job_id()
        self._spawn(self._render, "chronoscope-render", job_id, order)
        return job_id

    def _render(self, job_id: str, order: results.RenderOrder) -> None:
        """One render. It finishes as done, failed, cancelled or unavailable, or ``WAITING`` when
        no engine took it (it can be sent again once one runs), ``INTERRUPTED`` when the engine
        stopped (died, shut down) while it had it, or ``OUTPUT_TAKEN`` when the engine refused its
        output: a file is there, or another render writes it now."""

        def on_event(event) -> None:
            if event.msg_type == "progress":
                content = event.content
                self.job_progress.emit(
                    job_id,
                    int(content.get("done") or 0),
                    int(content.get("total") or 0),
                    str(content.get("message", "")),
                )

        try:
            client = self._client()
        except ChronoscopeError as error:
            self.job_finished.emit(job_id, WAITING, self.user_text(error))
            return
        with self._jobs_lock:
            self._jobs[job_id] = client
        submitted = False
        try:
            client.subscribe(job_id)
            client.submit("retime", order.request(), job_id=job_id)
            submitted = True
            rendered = results.parse_render_result(
                client.wait_for_job(job_id, on_event=on_event, stop=self._stop)
            )
        except WaitStoppedError:
            log.info("render %s goes on in the engine: the app closed", job_id)
        except CapabilityNotAvailableError as error:
            self.job_finished.emit(job_id, "unavailable", str(error))
        except JobCancelledError:
            self.job_finished.emit(job_id, "cancelled", "cancelled")
        except OutputExistsError as error:
            log.warning("render %s: its output is taken: %s", job_id, error)
            self.job_finished.emit(job_id, OUTPUT_TAKEN, str(error))
        except (JobInterruptedError, EngineNotRunningError) as error:
            log.warning("render %s: no engine to finish it: %s", job_id, error)
            self.job_finished.emit(job_id, INTERRUPTED if submitted else WAITING, self.user_text(error))
        except EngineTimeoutError as error:
            log.warning("render %s: the engine did not answer: %s", job_id, error)
            self.job_finished.emit(job_id, "failed" if submitted else WAITING, self.user_text(error))
        except ChronoscopeError as error:
            log.warning("render %s failed: %s", job_id, error)
            self.job_finished.emit(job_id, "failed", self.user_text(error))
        else:
            self.job_finished.emit(job_id, "done", rendered)
        finally:
            with self._jobs_lock:
                self._jobs.pop(job_id, None)
            client.close()

    def cancel_job(self, job_id: str) -> None:
        """Ask the engine to cancel a render; ``job_finished`` reports when it stopped."""
        self._spawn(self._cancel, "chronoscope-cancel", job_id)

    def _cancel(self, job_id: str) -> None:
        try:
            with self._client() as client:
                client.cancel(job_id)
        except ChronoscopeError as error:
            log.warning("cancel of job %s failed: %s", job_id, error)

    # ------------------------------------------------------------------ shutdown

    def running_threads(self) -> list[str]:
        """The names of this link's threads still running (after ``close``: none, normally)."""
        with self._threads_lock:
            return [thread.name for thread in self._threads if thread.is_alive()]

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the threads (the engine keeps running for other clients): a speed analysis in
        progress is cancelled, a render goes on in the engine and writes its output."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + timeout_s
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def _job_outputs(info: dict[str, Any]) -> tuple[str, ...]:
    """The outputs named by the jobs an engine's ``info`` lists as queued or running."""
    active = (info.get("jobs") or {}).get("active") or []
    return tuple(sorted({str(job["output"]) for job in active if job.get("output")}))


def raise_not_connected(state: EngineState) -> None:
    """Refuse work for an engine the app cannot use, saying so in the app's terms."""
    from engine.errors import EngineNotRunningError

    if state.message:
        log.info("no engine for this request: %s", state.message)
    raise EngineNotRunningError(state.user_message())
