"""The engine process: sockets, the request loop, the control thread, events and jobs.

Threads and the sockets each one owns (ZeroMQ sockets are never shared between threads):

* the serving thread (``Engine.serve``): the request ROUTER, the events XPUB and the outbox PULL.
  It answers ``ping``, ``info``, ``job_status``, ``cancel`` and ``shutdown`` inline, queues jobs,
  and hands direct work (``synthesize``) to the request threads. It forwards whatever arrives on
  the outbox (replies and events from other threads) to the request socket or the events socket,
  and greets each new event subscription with a ``welcome`` event on that topic.
* the control thread: the control ROUTER (``ping``, ``cancel``, ``shutdown``), served on its own
  poller so that it never waits behind requests or jobs.
* request threads and job workers: they send nothing themselves; they serialize their replies and
  events and push them through the outbox (one PUSH socket behind a lock).

Large frames for ``synthesize`` may come through the frame exchange (``exchange``), jobs are
journaled so that a restarted engine knows which ones were cut short (``jobs``), and files are
written only where a request names them (``outputs``).

Every refusal (unsigned, invalid signature, duplicate, oversized, malformed, wrong version,
unknown type) is logged at WARNING with its reason and answered with a ``refused`` message when
the sender's identity is known; the engine keeps serving.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from engine import __version__
from engine.errors import ChronoscopeError, EngineNotRunningError, MessageRefusedError, UnsupportedOptionError
from engine.interp.base import available_backends
from engine.places import places
from engine.processes import pid_alive
from engine.server.connection import (
    ConnectionInfo,
    check_transport,
    default_transport,
    ipc_endpoints,
    new_key,
    remove_connection_file,
    remove_ipc_files,
    write_connection_file,
)
from engine.server.exchange import EngineExchange, exchange_dir, remove_orphans
from engine.server.handlers import (
    DEFAULT_CAPABILITY_MODULES,
    BackendCache,
    HandlerRegistry,
    Reply,
    default_registry,
    import_backends,
    install_capabilities,
)
from engine.server.jobs import JobJournal, JobQueue
from engine.server.outputs import own_outputs
from engine.server.protocol import (
    CONTROL_TYPES,
    PROTOCOL_VERSION,
    REFUSED,
    REQUEST_TYPES,
    Limits,
    Message,
    Session,
    error_content,
    reply_type,
)

log = logging.getLogger(__name__)

_POLL_MS = 250
_CONTROL_POLL_MS = 50
_CLOSE_LINGER_MS = 1000
_TAG_REPLY = b"R"
_TAG_EVENT = b"P"
_TAG_WAKE = b"W"


@dataclass
class EngineConfig:
    """How to run an engine. ``connection_file`` None: write none (an engine inside a test).
    ``journal_dir`` None: keep no job journal, so nothing survives the engine (``run_engine``
    sets it to ``places().cache_dir / "jobs"``)."""

    transport: str = field(default_factory=default_transport)
    workers: int = 2
    request_threads: int = 2
    limits: Limits = field(default_factory=Limits)
    connection_file: Path | None = None
    runtime_dir: Path | None = None
    capability_modules: tuple[str, ...] = DEFAULT_CAPABILITY_MODULES
    key: str | None = None
    shutdown_wait_s: float = 5.0
    journal_dir: Path | None = None

    def __post_init__(self) -> None:
        check_transport(self.transport)
        for name in ("workers", "request_threads"):
            if getattr(self, name) < 1:
                raise UnsupportedOptionError(f"{name} = {getattr(self, name)}; at least 1 is needed")


class Engine:
    """One engine: bind, serve until shut down, clean up. See the module docstring for threads."""

    def __init__(
        self,
        config: EngineConfig | None = None,
        *,
        context: zmq.Context | None = None,
        registry: HandlerRegistry | None = None,
    ):
        self.config = config or EngineConfig()
        self._own_context = context is None
        self.context = context or zmq.Context()
        self.key = self.config.key or new_key()
        self.session = Session(self.key, limits=self.config.limits)
        self.backends = BackendCache()
        import_backends()
        self.exchange = EngineExchange(exchange_dir(self.config.runtime_dir or places().runtime_dir))
        self.registry = registry or default_registry(self.backends, self.config.limits, self.exchange)
        self.warnings: list[str] = install_capabilities(self.registry, self.config.capability_modules)
        self.connection: ConnectionInfo | None = None
        self.jobs: JobQueue | None = None
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._started_ns = time.monotonic_ns()
        self._outbox_lock = threading.Lock()
        self._request: zmq.Socket | None = None
        self._control: zmq.Socket | None = None
        self._events: zmq.Socket | None = None
        self._outbox_pull: zmq.Socket | None = None
        self._outbox_push: zmq.Socket | None = None
        self._request_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._providers: list[str] | None = None
        self._ipc_dir_made = False
        self._thread: threading.Thread | None = None
        self._control_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ set-up and life cycle

    def bind(self) -> ConnectionInfo:
        """Create and bind the sockets, start the job workers, write the connection file."""
        # the job journal first: an engine refused it (another engine uses it) binds nothing
        journal = JobJournal(self.config.journal_dir) if self.config.journal_dir else None
        self.jobs = JobQueue(self.config.workers, publish=self.publish, journal=journal)
        try:
            return self._bind()
        except BaseException as error:
            for name in ("_request", "_control", "_events", "_outbox_pull", "_outbox_push"):
                socket = getattr(self, name, None)
                if socket is not None:
                    socket.close(linger=0)
            self.jobs.shutdown(wait_s=self.config.shutdown_wait_s)  # and let go of the journal
            if isinstance(error, zmq.ZMQError):
                raise EngineNotRunningError(
                    f"the engine cannot listen over {self.config.transport}: {error}"
                ) from None
            raise

    def _bind(self) -> ConnectionInfo:
        transport = self.config.transport
        self._request = self._router()
        self._control = self._router()
        self._events = self.context.socket(zmq.XPUB)
        self._events.setsockopt(zmq.XPUB_VERBOSE, 1)
        self._events.setsockopt(zmq.SNDHWM, 0)
        ipc_dir = None
        if transport == "tcp":
            endpoints = {
                role: f"tcp://127.0.0.1:{sock.bind_to_random_port('tcp://127.0.0.1')}"
                for role, sock in (
                    ("request", self._request),
                    ("control", self._control),
                    ("events", self._events),
                )
            }
        else:
            if transport == "ipc":
                runtime_dir = self.config.runtime_dir or places().runtime_dir
                endpoints, folder, self._ipc_dir_made = ipc_endpoints(runtime_dir, os.getpid())
                ipc_dir = str(folder) if self._ipc_dir_made else None
                if self._ipc_dir_made:
                    self.warnings.append(f"sockets in {folder}: the runtime folder path is too long for ipc")
            else:
                tag = uuid.uuid4().hex[:12]
                endpoints = {
                    role: f"inproc://chronoscope-{tag}-{role}" for role in ("request", "control", "events")
                }
            self._request.bind(endpoints["request"])
            self._control.bind(endpoints["control"])
            self._events.bind(endpoints["events"])
        outbox_endpoint = f"inproc://chronoscope-outbox-{uuid.uuid4().hex[:12]}"
        self._outbox_pull = self.context.socket(zmq.PULL)
        self._outbox_pull.bind(outbox_endpoint)
        self._outbox_push = self.context.socket(zmq.PUSH)
        self._outbox_push.setsockopt(zmq.SNDHWM, 0)
        self._outbox_push.connect(outbox_endpoint)
        self._request_pool = concurrent.futures.ThreadPoolExecutor(
            self.config.request_threads, thread_name_prefix="chronoscope-request"
        )
        self.connection = ConnectionInfo(
            transport=transport,
            request=endpoints["request"],
            control=endpoints["control"],
            events=endpoints["events"],
            key=self.key,
            pid=os.getpid(),
            ipc_dir=ipc_dir,
            exchange_dir=str(self.exchange.folder),
        )
        remove_orphans(self.exchange.folder, pid_alive)
        self._control_thread = threading.Thread(
            target=self._serve_control, name="chronoscope-control", daemon=True
        )
        if self.config.connection_file:
            write_connection_file(self.connection, self.config.connection_file)
        log.info(
            "engine %s listening: %s",
            os.getpid(),
            ", ".join(f"{k} {v}" for k, v in self.connection.endpoints().items()),
        )
        return self.connection

    def _router(self) -> zmq.Socket:
        socket = self.context.socket(zmq.ROUTER)
        limits = self.config.limits
        socket.setsockopt(zmq.MAXMSGSIZE, max(limits.max_json_bytes, limits.max_buffer_bytes))
        socket.setsockopt(zmq.SNDHWM, 0)
        return socket

    def serve(self) -> None:
        """Serve until a ``shutdown`` request or ``request_stop``; then clean up. Blocks."""
        if self.connection is None:
            self.bind()
        self._control_thread.start()
        poller = zmq.Poller()
        poller.register(self._request, zmq.POLLIN)
        poller.register(self._outbox_pull, zmq.POLLIN)
        poller.register(self._events, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                ready = dict(poller.poll(_POLL_MS))
                try:
                    if self._request in ready:
                        self._on_request(self._request.recv_multipart(copy=False))
                    if self._outbox_pull in ready:
                        self._forward(self._outbox_pull.recv_multipart(copy=False))
                    if self._events in ready:
                        self._on_subscription(self._events.recv())
                except Exception:  # one bad message must not take the engine down
                    log.exception("engine loop error; serving on")
        finally:
            self._cleanup()

    def start(self) -> ConnectionInfo:
        """Bind here and serve on a background thread (for tests and embedding); returns the endpoints."""
        connection = self.bind()
        self._thread = threading.Thread(target=self.serve, name="chronoscope-engine", daemon=True)
        self._thread.start()
        return connection

    def request_stop(self) -> None:
        """Ask the serving loop to finish now; safe from any thread (signal handlers: ``stop_soon``)."""
        self._stop.set()
        self._outbox_send(_TAG_WAKE, [])

    def stop_soon(self) -> None:
        """Ask the serving loop to finish within one poll interval; for signal handlers (takes no lock)."""
        self._stop.set()

    def wait_stopped(self, timeout_s: float | None = None) -> bool:
        """Wait until the engine has shut down and cleaned up; True if it has."""
        return self._stopped.wait(timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop a ``start``-ed engine and wait for it."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _cleanup(self) -> None:
        log.info("engine shutting down")
        self._stop.set()
        if self.jobs is not None:
            self.jobs.shutdown(cancel=True, wait_s=self.config.shutdown_wait_s)
        self._request_pool.shutdown(wait=True, cancel_futures=True)
        if self._control_thread is not None and self._control_thread.is_alive():
            self._control_thread.join(self.config.shutdown_wait_s)
        while self._outbox_pull.poll(0):
            self._forward(self._outbox_pull.recv_multipart(copy=False))
        with self._outbox_lock:
            self._outbox_push.close(linger=0)
            self._outbox_push = None
        self._outbox_pull.close(linger=0)
        self._request.close(linger=_CLOSE_LINGER_MS)
        self._events.close(linger=_CLOSE_LINGER_MS)
        self.backends.close_all()
        self.exchange.close()
        if self.connection is not None:
            if self.config.connection_file:
                remove_connection_file(self.config.connection_file, pid=self.connection.pid)
            remove_ipc_files(self.connection, remove_dir=self._ipc_dir_made)
        if self._own_context:
            self.context.term()
        self._stopped.set()
        log.info("engine stopped")

    # ------------------------------------------------------------------ outbox, events

    def _outbox_send(self, tag: bytes, frames: list) -> None:
        with self._outbox_lock:
            if self._outbox_push is None:
                log.debug("engine closed; dropping outgoing %s message", tag)
                return
            self._outbox_push.send_multipart([tag, *frames], copy=False)

    def _forward(self, frames: list[zmq.Frame]) -> None:
        tag, rest = frames[0].bytes, frames[1:]
        if tag == _TAG_REPLY:
            self._request.send_multipart(rest, copy=False)
        elif tag == _TAG_EVENT:
            self._events.send_multipart(rest, copy=False)

    def publish(
        self, topic: str, event_type: str, content: dict[str, Any], buffers: list | None = None
    ) -> None:
        """Publish an event on the events socket with ``topic`` (a job id); safe from any thread."""
        message = self.session.message(
            event_type, content, buffers=buffers or [], identities=[topic.encode()]
        )
        self._outbox_send(_TAG_EVENT, self.session.serialize(message))

    def _on_subscription(self, frame: bytes) -> None:
        if frame[:1] != b"\x01":
            return
        topic = frame[1:]
        welcome = self.session.message(
            "welcome", {"topic": topic.decode("utf-8", "replace")}, identities=[topic]
        )
        self.session.send(self._events, welcome)

    # ------------------------------------------------------------------ requests

    def _on_request(self, frames: list[zmq.Frame]) -> None:
        try:
            message = self.session.deserialize(frames, accept=REQUEST_TYPES)
        except MessageRefusedError as refusal:
            self._refuse("request", refusal, self._request)
            return
        log.debug("request %s %s", message.msg_type, message.msg_id)
        handler = None
        try:
            reply = self._core(message)
            if reply is None:
                handler = self.registry.get(message.msg_type)
                if handler.job is not None:
                    reply = self._submit_job(handler, message)
        except ChronoscopeError as error:
            log.warning("%s request refused: %s", message.msg_type, error)
            reply = Reply(error_content(error))
        except Exception as error:  # a bug in a handler must not take the engine down
            log.exception("%s request crashed", message.msg_type)
            reply = Reply(error_content(error))
        if reply is None:
            self._request_pool.submit(self._run_direct, handler, message)
            return
        try:
            frames = self.session.serialize(self._reply_message(message, reply))
        except ChronoscopeError as error:
            log.warning("%s reply could not be sent: %s", message.msg_type, error)
            frames = self.session.serialize(self._reply_message(message, Reply(error_content(error))))
        self._request.send_multipart(frames, copy=False)

    def _reply_message(self, request: Message, reply: Reply) -> Message:
        content = reply.content if "status" in reply.content else {"status": "ok", **reply.content}
        return self.session.message(
            reply_type(request.msg_type), content, buffers=reply.buffers, parent=request
        )

    def _run_direct(self, handler, message: Message) -> None:
        try:
            reply = handler.direct(message)
        except ChronoscopeError as error:
            log.warning("%s request failed: %s", message.msg_type, error)
            reply = Reply(error_content(error))
        except Exception as error:  # a bug in a handler must not take the engine down
            log.exception("%s request crashed", message.msg_type)
            reply = Reply(error_content(error))
        try:
            frames = self.session.serialize(self._reply_message(message, reply))
        except ChronoscopeError as error:
            log.warning("%s reply could not be sent: %s", message.msg_type, error)
            frames = self.session.serialize(self._reply_message(message, Reply(error_content(error))))
        self._outbox_send(_TAG_REPLY, frames)

    def _submit_job(self, handler, message: Message) -> Reply:
        job_id = message.content.get("job_id")
        if job_id is not None and not isinstance(job_id, str):
            raise UnsupportedOptionError(f"job_id {job_id!r} is not text")
        resume = message.content.get("resume", False)
        if not isinstance(resume, bool):
            raise UnsupportedOptionError(f"resume = {resume!r}; give true or false")
        if resume:
            if job_id is None:
                raise UnsupportedOptionError("resume needs the job_id of the job to resume")
            stored = self.jobs.request_of(job_id, message.msg_type)
            message = Message(
                header=message.header, content=stored, buffers=[], identities=message.identities
            )
        request = {key: value for key, value in message.content.items() if key not in ("job_id", "resume")}
        # an id asked for again: the same request answers with its job, a different one is refused
        known = self.jobs.known(job_id, message.msg_type, request) if job_id is not None else None
        if known is not None:
            return Reply({"job_id": job_id, "state": known["state"], "attempt": known["attempt"]})
        with own_outputs(self.jobs.outputs_of(job_id) if job_id is not None else ()):
            work = handler.job(message)
        description = self.jobs.submit(message.msg_type, work, job_id=job_id, request=request)
        return Reply(
            {
                "job_id": description["job_id"],
                "state": description["state"],
                "attempt": description["attempt"],
            }
        )

    def _refuse(self, channel: str, refusal: MessageRefusedError, socket: zmq.Socket) -> None:
        log.warning("refused a message on the %s channel: %s", channel, refusal)
        if not refusal.identities:
            return
        content = {**error_content(refusal), "reason": refusal.reason}
        header = self.session.new_header(REFUSED, refusal.parent_id)
        self.session.send(socket, Message(header=header, content=content, identities=refusal.identities))

    def _core(self, message: Message) -> Reply | None:
        """Answer the engine's own request types; None for types routed to handlers."""
        kind = message.msg_type
        if kind == "ping":
            return Reply(self._ping_content())
        if kind == "info":
            return Reply(self.describe())
        if kind == "job_status":
            return Reply(self.jobs.status(self._job_id(message)))
        if kind == "cancel":
            return Reply(self.jobs.cancel(self._job_id(message)))
        if kind == "shutdown":
            log.info("shutdown requested")
            self.request_stop()
            return Reply({"stopping": True})
        return None

    @staticmethod
    def _job_id(message: Message) -> str:
        job_id = message.content.get("job_id")
        if not isinstance(job_id, str):
            raise UnsupportedOptionError(f"{message.msg_type} needs a job_id (text), got {job_id!r}")
        return job_id

    def _ping_content(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "protocol_version": PROTOCOL_VERSION, "uptime_s": self.uptime_s()}

    def uptime_s(self) -> float:
        return round((time.monotonic_ns() - self._started_ns) / 1e9, 3)

    def execution_providers(self) -> list[str]:
        """The ONNX Runtime execution providers models load with here, best first (looked up
        once): those this onnxruntime build offers and this machine can run. A GPU provider the
        build offers but the machine cannot use (no driver, no GPU) is left out, with the reason
        in the warnings."""
        if self._providers is None:
            try:
                from engine.models.runtime import choose_providers

                chosen, left_out = choose_providers()
            except ImportError as error:
                message = f"onnxruntime cannot be imported ({error}); learned models are unavailable"
                log.warning(message)
                self.warnings.append(message)
                self._providers = []
            except ChronoscopeError as error:
                self.warnings.append(str(error))
                self._providers = []
            else:
                if left_out:
                    self.warnings.append(f"GPU execution providers not used: {left_out}")
                self._providers = list(chosen)
        return self._providers

    def describe(self) -> dict[str, Any]:
        """What ``info`` and ``chronoscope engine status`` show."""
        limits = self.config.limits
        return {
            "version": __version__,
            "protocol_version": PROTOCOL_VERSION,
            "pid": os.getpid(),
            "uptime_s": self.uptime_s(),
            "transport": self.connection.transport if self.connection else None,
            "endpoints": self.connection.endpoints() if self.connection else {},
            "exchange_dir": str(self.exchange.folder),
            "journal_dir": str(self.config.journal_dir) if self.config.journal_dir else None,
            "models_loaded": self.backends.loaded(),
            "execution_providers": self.execution_providers(),
            "synthesis_backends": available_backends(),
            "capabilities": {"available": self.registry.available(), "missing": self.registry.missing()},
            "jobs": self.jobs.summary() if self.jobs else {},
            "limits": {"max_json_bytes": limits.max_json_bytes, "max_buffer_bytes": limits.max_buffer_bytes},
            "warnings": list(self.warnings),
        }

    # ------------------------------------------------------------------ control channel

    def _serve_control(self) -> None:
        socket = self._control
        try:
            while not self._stop.is_set():
                if not socket.poll(_CONTROL_POLL_MS):
                    continue
                frames = socket.recv_multipart(copy=False)
                try:
                    message = self.session.deserialize(frames, accept=CONTROL_TYPES)
                except MessageRefusedError as refusal:
                    self._refuse("control", refusal, socket)
                    continue
                try:
                    reply = self._core(message)
                except ChronoscopeError as error:
                    log.warning("%s control request refused: %s", message.msg_type, error)
                    reply = Reply(error_content(error))
                except Exception as error:  # a bug must not silence the control channel
                    log.exception("%s control request crashed", message.msg_type)
                    reply = Reply(error_content(error))
                self.session.send(socket, self._reply_message(message, reply))
        finally:
            socket.close(linger=_CLOSE_LINGER_MS)
