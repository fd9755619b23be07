"""The engine process: sockets, the request loop, the control thread, events and jobs.

Threads and the sockets each one owns (ZeroMQ sockets are never shared between threads):

* the serving thread (``Engine.serve``): the request ROUTER, the events XPUB and the outbox PULL.
  It answers ``ping``, ``info``, ``job_status``, ``cancel`` and ``shutdown`` inline and hands every
  other request to the request threads: direct work (``synthesize``) and the checking of job
  requests (which may parse a large OTIO) both run there, so the serving thread never waits on
  them. At most ``MAX_REQUESTS_IN_FLIGHT`` wait for or run on those threads; one more is answered
  at once with ``EngineBusyError``. It forwards whatever arrives on the outbox (replies and events
  from other threads) to the request socket or the events socket, and greets each new event
  subscription with a ``welcome`` event on that topic.
* the control thread: the control ROUTER (``ping``, ``cancel``, ``shutdown``), served on its own
  poller so that it never waits behind requests or jobs.
* request threads and job workers: they send nothing themselves; they serialize their replies and
  events and push them through the outbox (one PUSH socket behind a lock).

Large frames for ``synthesize`` may come through the frame exchange (``exchange``), jobs are
journaled so that a restarted engine knows which ones were cut short (``jobs``), and files are
written only where a request names them (``outputs``).

Every refusal (unsigned, invalid signature, duplicate, oversized, malformed, wrong version,
unknown type) is logged at WARNING with its reason and answered with a ``refused`` message (the
ROUTER always knows the sender, even of a message with no delimiter); the engine keeps serving.

Before a handler sees a request, its values are checked (``requests.check_values``: numbers too
long to read, NUL characters) and, when the handler lists its fields, unknown fields are refused.
A plugin that calls ``sys.exit()`` or raises ``KeyboardInterrupt`` while checking a request or
running a job fails that request or job (``CapabilityModuleError``); the engine serves on.

Memory a client can make the engine hold is bounded where ZeroMQ lets it be: ZeroMQ drops a
frame over ``Limits.largest_frame_bytes`` as it arrives (``MAXMSGSIZE``; it has no limit on the
number of frames in a message, which it takes in whole before the engine sees it: those are
counted, and refused, at once), a request may carry at most ``MAX_REQUEST_BUFFERS`` buffers, at
most ``REQUEST_QUEUE_MESSAGES`` requests and ``REPLY_QUEUE_MESSAGES`` replies wait per client (a
client sends one request at a time per socket), and events wait at most ``EVENT_QUEUE_MESSAGES``
per subscriber. A reply to a client that does not read its answers is dropped (and logged) rather
than queued without end; so is an event to a subscriber that does not read them (it finds the
job's state with ``job_status``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import errno
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
from engine.errors import (
    CapabilityModuleError,
    ChronoscopeError,
    EngineBusyError,
    EngineNotRunningError,
    MessageRefusedError,
    UnsupportedOptionError,
)
from engine.interp.base import refresh_backends
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
    DELIMITER,
    MALFORMED,
    PROTOCOL_VERSION,
    REFUSED,
    REQUEST_TYPES,
    Limits,
    Message,
    Session,
    error_content,
    quote,
    reply_type,
    shorten,
)
from engine.server.requests import check_fields, check_values

log = logging.getLogger(__name__)

_POLL_MS = 250
_CONTROL_POLL_MS = 50
_CLOSE_LINGER_MS = 1000
_TAG_REPLY = b"R"
_TAG_EVENT = b"P"
_TAG_WAKE = b"W"
MAX_REQUEST_BUFFERS = 16
REQUEST_QUEUE_MESSAGES = 8
REPLY_QUEUE_MESSAGES = 2
EVENT_QUEUE_MESSAGES = 10_000
MAX_REQUESTS_IN_FLIGHT = 64


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
        limits = self.config.limits
        request_limits = dataclasses.replace(limits, max_buffers=min(limits.max_buffers, MAX_REQUEST_BUFFERS))
        self.session = Session(self.key, limits=request_limits)
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
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self._dropped_replies = 0

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
        # a subscriber that does not read loses events beyond these, rather than growing the engine
        self._events.setsockopt(zmq.SNDHWM, EVENT_QUEUE_MESSAGES)
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
        socket.setsockopt(zmq.MAXMSGSIZE, self.config.limits.largest_frame_bytes)
        socket.setsockopt(zmq.SNDHWM, REPLY_QUEUE_MESSAGES)
        socket.setsockopt(zmq.RCVHWM, REQUEST_QUEUE_MESSAGES)
        # a reply that cannot be queued (its client does not read) raises, to be dropped and logged
        socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
        return socket

    def _send_to_peer(self, socket: zmq.Socket, frames: list, what: str) -> None:
        """Send ``frames`` on a ROUTER without waiting: a client that does not read its answers
        (its queue is full) or that is gone loses this one, with a log line, and nothing else."""
        try:
            socket.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            self._dropped_replies += 1
            log.warning(
                "dropped a %s to a client that does not read its answers (%d queued for it already; "
                "%d dropped in all)",
                what,
                REPLY_QUEUE_MESSAGES,
                self._dropped_replies,
            )
        except zmq.ZMQError as error:
            if error.errno != errno.EHOSTUNREACH:
                raise
            log.info("dropped a %s: its client has disconnected", what)

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
            self._send_to_peer(self._request, rest, "reply")
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
            self._refuse("request", refusal, self._request, frames)
            return
        log.debug("request %s %s", message.msg_type, message.msg_id)
        try:
            reply = self._core(message)
        except ChronoscopeError as error:
            log.warning("%s request refused: %s", message.msg_type, shorten(str(error)))
            reply = Reply(error_content(error))
        except Exception as error:  # a bug must not take the engine down
            log.exception("%s request crashed", message.msg_type)
            reply = Reply(error_content(error))
        if reply is None:
            reply = self._hand_over(message)
        if reply is not None:
            self._send_to_peer(self._request, self._reply_frames(message, reply), "reply")

    def _hand_over(self, message: Message) -> Reply | None:
        """Give a routed request to the request threads; a reply now only when they are too busy."""
        with self._in_flight_lock:
            if self._in_flight >= MAX_REQUESTS_IN_FLIGHT:
                busy = EngineBusyError(
                    f"{self._in_flight} requests are being checked or served already, the most this "
                    "engine takes at once; send this one again when some are answered"
                )
                log.warning("%s request refused: %s", message.msg_type, busy)
                return Reply(error_content(busy))
            self._in_flight += 1
        try:
            self._request_pool.submit(self._serve_routed, message)
        except RuntimeError:  # the pool is shut down: the engine is stopping
            with self._in_flight_lock:
                self._in_flight -= 1
            return Reply(error_content(UnsupportedOptionError("the engine is shutting down")))
        return None

    def _serve_routed(self, message: Message) -> None:
        """On a request thread: check the request, then answer it (direct) or queue its job."""
        try:
            reply = self._routed_reply(message)
            self._outbox_send(_TAG_REPLY, self._reply_frames(message, reply))
        except BaseException:  # nothing may end a request thread silently
            log.exception("%s request: its reply could not be sent", message.msg_type)
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1

    def _routed_reply(self, message: Message) -> Reply:
        handler = None
        try:
            handler = self.registry.get(message.msg_type)
            check_values(message.content, "")
            fields = handler.known_fields()
            if fields is not None:
                check_fields(message.content, fields, f"{message.msg_type} request")
            if handler.job is not None:
                return self._submit_job(handler, message)
            return handler.direct(message)
        except ChronoscopeError as error:
            log.warning("%s request refused: %s", message.msg_type, shorten(str(error)))
            return Reply(error_content(error))
        except Exception as error:  # a bug in a handler must not take the engine down
            log.exception("%s request crashed", message.msg_type)
            return Reply(error_content(error))
        except BaseException as error:  # sys.exit() or KeyboardInterrupt from a plugin's check
            failure = CapabilityModuleError(
                f"checking the {message.msg_type} request raised {type(error).__name__}"
                f"({shorten(str(error), 200)!r}) in {handler.module if handler else 'the engine'}; "
                "a capability module must raise a ChronoscopeError to refuse a request, never exit"
            )
            log.error("%s request failed: %s", message.msg_type, failure)
            return Reply(error_content(failure))

    def _reply_frames(self, message: Message, reply: Reply) -> list:
        try:
            return self.session.serialize(self._reply_message(message, reply))
        except ChronoscopeError as error:
            log.warning("%s reply could not be sent: %s", message.msg_type, shorten(str(error)))
            return self.session.serialize(self._reply_message(message, Reply(error_content(error))))

    def _reply_message(self, request: Message, reply: Reply) -> Message:
        content = reply.content if "status" in reply.content else {"status": "ok", **reply.content}
        return self.session.message(
            reply_type(request.msg_type), content, buffers=reply.buffers, parent=request
        )

    def _submit_job(self, handler, message: Message) -> Reply:
        job_id = message.content.get("job_id")
        if job_id is not None and not isinstance(job_id, str):
            raise UnsupportedOptionError(f"job_id {quote(job_id)} is not text")
        resume = message.content.get("resume", False)
        if not isinstance(resume, bool):
            raise UnsupportedOptionError(f"resume = {quote(resume)}; give true or false")
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

    def _refuse(
        self, channel: str, refusal: MessageRefusedError, socket: zmq.Socket, frames: list[zmq.Frame]
    ) -> None:
        log.warning("refused a message on the %s channel: %s", channel, shorten(str(refusal)))
        identities = refusal.identities
        if not identities and refusal.reason == MALFORMED and frames and frames[0].bytes != DELIMITER:
            # no delimiter: the ROUTER still put the sender's identity first
            identities = [frames[0].bytes]
        if not identities:
            return
        content = {**error_content(refusal), "reason": refusal.reason, "protocol_version": PROTOCOL_VERSION}
        header = self.session.new_header(REFUSED, refusal.parent_id)
        message = Message(header=header, content=content, identities=identities)
        self._send_to_peer(socket, self.session.serialize(message), "refusal")

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
            raise UnsupportedOptionError(f"{message.msg_type} needs a job_id (text), got {quote(job_id)}")
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
            "synthesis_backends": refresh_backends(),  # models added since start included
            "capabilities": {"available": self.registry.available(), "missing": self.registry.missing()},
            "jobs": self.jobs.summary() if self.jobs else {},
            "limits": {
                "max_json_bytes": limits.max_json_bytes,
                "max_buffer_bytes": limits.max_buffer_bytes,
                "max_frame_bytes": limits.max_frame_bytes,
                "max_request_buffers": self.session.limits.max_buffers,
                "max_queued_jobs": self.jobs.max_queued if self.jobs else None,
            },
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
                    self._refuse("control", refusal, socket, frames)
                    continue
                try:
                    reply = self._core(message)
                except ChronoscopeError as error:
                    log.warning("%s control request refused: %s", message.msg_type, shorten(str(error)))
                    reply = Reply(error_content(error))
                except Exception as error:  # a bug must not silence the control channel
                    log.exception("%s control request crashed", message.msg_type)
                    reply = Reply(error_content(error))
                self._send_to_peer(socket, self._reply_frames(message, reply), "control reply")
        finally:
            socket.close(linger=_CLOSE_LINGER_MS)
