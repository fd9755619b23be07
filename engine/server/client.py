"""The one client library for the engine: the GUI, plugins and the CLI talk to it through this.

    with EngineClient.connect() as engine:          # from this user's connection file
        engine.ping()
        results = engine.synthesize(frame0, frame1, [Fraction(1, 2)], backend="flow")
        result = engine.run_job("retime", {...}, on_event=print)

Requests go over DEALER sockets with a timeout (never a bare REQ, which would wedge on a lost
reply); a socket that timed out is replaced so that a late answer cannot be mistaken for the next
one. One client may be shared between threads: requests are serialized per channel, so a
``ping`` on the control channel never waits behind a long ``synthesize``. Events arrive on a SUB
socket; ``subscribe`` waits for the engine's ``welcome`` on the topic, so that no event published
after it returns is lost. Whichever thread reads the SUB socket files each event under its exact
topic (ZeroMQ matches topics by prefix, so ``job-1`` also hears ``job-10``): every waiter gets
every event of its own job once, even while other jobs are waited on through the same client.

An error reply is raised as the same ``ChronoscopeError`` subclass the engine raised (for classes
in engine.errors), else as ``EngineRequestError``.

A client refuses, before it connects, an engine whose connection file names another major protocol
version (``ProtocolVersionError``, naming both); a ``refused`` answer is read whatever version sent
it, so an engine that refuses this client's version is heard saying so rather than timing out.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zmq

from engine import errors
from engine.errors import (
    ChronoscopeError,
    EngineRequestError,
    EngineTimeoutError,
    ExchangeFileError,
    JobCancelledError,
    JobInterruptedError,
    MessageRefusedError,
    ProtocolVersionError,
    UnsupportedOptionError,
    WaitStoppedError,
)
from engine.processes import pid_alive
from engine.server.connection import ConnectionInfo, read_connection_file
from engine.server.exchange import ClientExchange, align
from engine.server.exchange import dtype_name_of as exchange_dtype_name
from engine.server.jobs import JobState
from engine.server.protocol import (
    EVENT_TYPES,
    PROTOCOL_VERSION,
    REFUSED,
    REPLY_TYPES,
    Buffer,
    Limits,
    Message,
    Session,
    decode_array,
    encode_array,
)
from engine.server.requests import parse_number

if TYPE_CHECKING:
    from engine.interp.base import SynthesisResult

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
PING_TIMEOUT_S = 2.0
STATUS_TIMEOUT_S = 5.0
LATE_EVENTS_WAIT_S = 1.0
STOP_CHECK_EVERY_S = 0.1
MAX_WAIT_S = 1e9
"""The longest wait for a job a client counts down (32 years): a longer one is one without end."""
EVENT_SLICE_MS = 50  # the longest one thread reads the events socket before others may use it
EVENTS_PER_READ = 256
EXCHANGE_MIN_BYTES = 256 * 1024
_ACCEPTED_REPLIES = REPLY_TYPES | {REFUSED}
_FINISHED_STATES = {state.value for state in JobState if state.finished}

EventCallback = Callable[[Message], None]


def remote_error(reply: Message) -> ChronoscopeError:
    """The exception to raise for an error reply (or a job's error record inside one)."""
    content = reply.content
    ename, evalue = str(content.get("ename", "")), str(content.get("evalue", ""))
    if reply.msg_type == REFUSED:
        return MessageRefusedError(evalue, reason=str(content.get("reason", "")))
    return error_from_record(ename, evalue, reply.msg_type)


def check_protocol_version(connection: ConnectionInfo) -> None:
    """``ProtocolVersionError`` when the engine of ``connection`` speaks another major version."""
    theirs = str(connection.protocol_version)
    if theirs.split(".", 1)[0] != PROTOCOL_VERSION.split(".", 1)[0]:
        raise ProtocolVersionError(
            f"the engine (pid {connection.pid}) speaks protocol {theirs}; this client speaks "
            f"{PROTOCOL_VERSION}: stop that engine (`chronoscope engine stop`) and start the one of "
            "this Chronoscope, or use the client that came with that engine"
        )


def error_from_record(ename: str, evalue: str, context: str) -> ChronoscopeError:
    cls = getattr(errors, ename, None)
    if isinstance(cls, type) and issubclass(cls, ChronoscopeError) and cls is not MessageRefusedError:
        try:
            return cls(evalue)
        except TypeError:
            log.debug("error class %s cannot be rebuilt from a message", ename)
    return EngineRequestError(f"engine error in {context}: {ename}: {evalue}")


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _given_local(item: dict[str, Any]) -> float | None:
    """The engine's local risk of one made frame (its backend's own measure), when it sent one."""
    value = item.get("risk_local")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _wire_time(value: float | Fraction | str) -> float | str:
    if isinstance(value, str):  # read with the engine's limits: "1e-9999999" would freeze this side too
        return str(parse_number(value, "time", "0.5 or '1/3'"))
    if isinstance(value, Fraction):
        return str(value)
    return float(value)


class EngineClient:
    """A connection to one engine: requests, control and events."""

    def __init__(
        self, connection: ConnectionInfo, *, context: zmq.Context | None = None, limits: Limits | None = None
    ):
        check_protocol_version(connection)
        self.connection = connection
        self.context = context or zmq.Context.instance()
        self.session = Session(connection.key, limits=limits)
        self._channel_locks = {"request": threading.Lock(), "control": threading.Lock()}
        self._sockets: dict[str, zmq.Socket] = {}
        # The events socket: used by one thread at a time, the one that holds ``_events_cond``
        # or, with it released, the one that set ``_events_reading`` (see ``_read_events``).
        self._events_cond = threading.Condition(threading.Lock())
        self._events: zmq.Socket | None = None
        self._events_reading = False
        self._events_wanted = 0  # threads waiting to change the socket's subscriptions or close it
        self._topics: collections.Counter[str] = collections.Counter()
        self._pending: dict[str, collections.deque[tuple[int, Message]]] = {}
        self._welcomed: set[str] = set()
        self._arrivals = itertools.count()
        self._exchange: ClientExchange | None = None
        self.last_timings_ns: dict[str, int] = {}

    @classmethod
    def connect(cls, connection_file: Path | None = None, **kwargs) -> EngineClient:
        """A client for the engine named in ``connection_file`` (default: this user's)."""
        return cls(read_connection_file(connection_file), **kwargs)

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        for channel, lock in self._channel_locks.items():
            with lock:
                self._drop_socket(channel)
                if channel == "request" and self._exchange is not None:
                    self._exchange.close()
                    self._exchange = None
        with self._events_cond:
            self._claim_events()
            if self._events is not None:
                self._events.close(linger=0)
                self._events = None
            self._events_cond.notify_all()

    # ------------------------------------------------------------------ requests

    def _socket(self, channel: str) -> zmq.Socket:
        socket = self._sockets.get(channel)
        if socket is None:
            socket = self.context.socket(zmq.DEALER)
            socket.setsockopt(zmq.LINGER, 0)
            socket.connect(self.connection.request if channel == "request" else self.connection.control)
            self._sockets[channel] = socket
        return socket

    def _drop_socket(self, channel: str) -> None:
        socket = self._sockets.pop(channel, None)
        if socket is not None:
            socket.close(linger=0)

    def request(
        self,
        msg_type: str,
        content: dict[str, Any] | None = None,
        *,
        buffers: Sequence[Buffer] = (),
        timeout_s: float = DEFAULT_TIMEOUT_S,
        channel: str = "request",
    ) -> Message:
        """Send a request and return its ``_reply``; raise its error, or ``EngineTimeoutError``."""
        if channel not in self._channel_locks:
            raise ValueError(f"channel {channel!r} is not one of: request, control")
        with self._channel_locks[channel]:
            return self._request_locked(msg_type, content, buffers, timeout_s, channel)

    def _request_locked(
        self,
        msg_type: str,
        content: dict[str, Any] | None,
        buffers: Sequence[Buffer],
        timeout_s: float,
        channel: str,
    ) -> Message:
        self._check_outgoing(msg_type, buffers)
        socket = self._socket(channel)
        message = self.session.message(msg_type, content, buffers=buffers)
        self.session.send(socket, message)
        deadline_ns = time.monotonic_ns() + int(timeout_s * 1e9)
        ignored: list[str] = []
        while True:
            remaining_ms = (deadline_ns - time.monotonic_ns()) // 1_000_000
            if remaining_ms <= 0 or not socket.poll(remaining_ms):
                self._drop_socket(channel)
                detail = (
                    f" ({len(ignored)} unreadable answers: {', '.join(sorted(set(ignored)))})"
                    if ignored
                    else ""
                )
                raise EngineTimeoutError(
                    f"the engine at {getattr(self.connection, channel)} did not answer {msg_type} "
                    f"within {timeout_s} s{detail}{self._gone_detail()}"
                )
            try:
                reply = self.session.deserialize(socket.recv_multipart(copy=False), accept=_ACCEPTED_REPLIES)
            except MessageRefusedError as refusal:
                log.warning("ignored an answer from the engine: %s", refusal)
                ignored.append(refusal.reason)
                continue
            ours = reply.parent_id == message.msg_id or (
                reply.msg_type == REFUSED and reply.parent_id is None
            )
            if ours:
                break
            log.debug("dropped a late answer %s to %s", reply.msg_type, reply.parent_id)
        if reply.content.get("status") == "error" or reply.msg_type == REFUSED:
            raise remote_error(reply)
        return reply

    def _check_outgoing(self, msg_type: str, buffers: Sequence[Buffer]) -> None:
        """Refuse here what the engine would drop unanswered: a frame over the per-frame limit is
        cut off by ZeroMQ as it arrives (``Limits.max_frame_bytes``), and the client would wait
        for its whole timeout."""
        limits = self.session.limits
        sizes = [np.asarray(b).nbytes if isinstance(b, np.ndarray) else memoryview(b).nbytes for b in buffers]
        largest = max(sizes, default=0)
        if largest > limits.max_frame_bytes or sum(sizes) > limits.max_buffer_bytes:
            raise UnsupportedOptionError(
                f"{msg_type}: buffers of {sum(sizes)} bytes (the largest {largest}) are over the limits "
                f"({limits.max_frame_bytes} per buffer, {limits.max_buffer_bytes} in all); send large "
                "frames through the frame exchange (synthesize(..., shared=True))"
            )

    def _engine_gone(self) -> bool:
        """Whether the engine's process has ended (never said of an engine in this process)."""
        pid = self.connection.pid
        return self.connection.transport != "inproc" and pid != os.getpid() and not pid_alive(pid)

    def _gone_detail(self) -> str:
        if not self._engine_gone():
            return ""
        return (
            f"; engine pid {self.connection.pid} is no longer running: "
            "start one with `chronoscope engine start`"
        )

    def control(
        self, msg_type: str, content: dict[str, Any] | None = None, *, timeout_s: float = PING_TIMEOUT_S
    ) -> Message:
        """A request on the control channel (``ping``, ``cancel``, ``shutdown``)."""
        return self.request(msg_type, content, timeout_s=timeout_s, channel="control")

    def ping(self, timeout_s: float = PING_TIMEOUT_S) -> dict[str, Any]:
        """Pid, protocol version and uptime, over the control channel (answered even while jobs run)."""
        return self.control("ping", timeout_s=timeout_s).content

    def info(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        return self.request("info", timeout_s=timeout_s).content

    def job_status(self, job_id: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        return self.request("job_status", {"job_id": job_id}, timeout_s=timeout_s).content

    def cancel(self, job_id: str, timeout_s: float = PING_TIMEOUT_S) -> dict[str, Any]:
        return self.control("cancel", {"job_id": job_id}, timeout_s=timeout_s).content

    def shutdown(self, timeout_s: float = PING_TIMEOUT_S) -> dict[str, Any]:
        return self.control("shutdown", timeout_s=timeout_s).content

    def synthesize(
        self,
        frame0: np.ndarray,
        frame1: np.ndarray,
        times: Sequence[float | Fraction | str],
        *,
        backend: str,
        options: dict[str, Any] | None = None,
        timeout_s: float = 120.0,
        shared: bool | None = None,
        copy: bool = True,
    ) -> list[SynthesisResult]:
        """In-between frames of one pair, made by the engine's ``backend``.

        ``shared``: pass the frames through the frame exchange (a memory-mapped file in the
        engine's private folder; see ``engine.server.exchange``) rather than as message buffers.
        None picks the exchange for frames of ``EXCHANGE_MIN_BYTES`` or more when the engine
        offers one. Arrays sent as buffers come back read-only. Through the exchange they are
        copied out, so they stay valid after the next request; ``copy=False`` returns read-only
        views of the exchange instead, valid only until this client's next ``synthesize`` (for a
        preview or a host that consumes each frame at once; it saves a copy of every result).
        """
        from engine.interp.base import SynthesisResult  # here, so that clients never import the backends

        content: dict[str, Any] = {
            "backend": backend,
            "times": [_wire_time(t) for t in times],
            "options": dict(options or {}),
        }
        frame0, frame1 = np.asarray(frame0), np.asarray(frame1)
        if frame0.ndim != 3 or not self._wants_exchange(frame0, shared):
            buffers: list[Buffer] = []
            content["frame0"] = encode_array(frame0, buffers)
            content["frame1"] = encode_array(frame1, buffers)
            reply = self.request("synthesize", content, buffers=buffers, timeout_s=timeout_s)
            self.last_timings_ns = dict(reply.content.get("timings_ns") or {})
            return [
                SynthesisResult(
                    frame=decode_array(item["frame"], reply.buffers),
                    risk=decode_array(item["risk"], reply.buffers),
                    backend=item.get("backend", backend),
                    notes=list(item.get("notes", [])),
                    local_risk_given=_given_local(item),
                )
                for item in reply.content["frames"]
            ]
        frame_bytes = align(frame0.nbytes)
        output_bytes = len(times) * (frame_bytes + align(frame0.shape[0] * frame0.shape[1] * 4))
        output_offset = frame_bytes + align(frame1.nbytes)
        with self._channel_locks["request"]:
            exchange = self._exchange_for(output_offset + output_bytes)
            content["frame0"] = exchange.put(frame0, 0)
            content["frame1"] = exchange.put(frame1, frame_bytes)
            content["output"] = {"exchange": exchange.name, "offset": output_offset, "capacity": output_bytes}
            reply = self._request_locked("synthesize", content, (), timeout_s, "request")
            self.last_timings_ns = dict(reply.content.get("timings_ns") or {})
            if not exchange.intact():  # reading a shortened mapping would end this process (SIGBUS)
                raise ExchangeFileError(
                    f"exchange file {exchange.path} was shortened or removed before its results were read"
                )
            take = np.array if copy else _read_only
            return [
                SynthesisResult(
                    frame=take(exchange.read(item["frame"])),
                    risk=take(exchange.read(item["risk"])),
                    backend=item.get("backend", backend),
                    notes=list(item.get("notes", [])),
                    local_risk_given=_given_local(item),
                )
                for item in reply.content["frames"]
            ]

    def input_frames(
        self, shape: Sequence[int], dtype: np.dtype | type = np.uint8, times: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """Two writable frames inside the frame exchange, where ``synthesize`` puts its inputs.

        Decode or render straight into them and pass them to ``synthesize``: they are not copied
        again. They stay the exchange's inputs until a ``synthesize`` needs more room (larger
        frames or more than ``times`` times), after which they are ordinary arrays (and copied).
        """
        frame = np.empty(tuple(shape), dtype)
        self._wants_exchange(frame, True)
        frame_bytes = align(frame.nbytes)
        capacity = 2 * frame_bytes + times * (frame_bytes + align(frame.shape[0] * frame.shape[1] * 4))
        with self._channel_locks["request"]:
            exchange = self._exchange_for(capacity)
            name = exchange_dtype_name(frame)
            return exchange.view(0, frame.shape, name), exchange.view(frame_bytes, frame.shape, name)

    def _wants_exchange(self, frame0: np.ndarray, shared: bool | None) -> bool:
        available = self.connection.exchange_dir is not None and Path(self.connection.exchange_dir).is_dir()
        if shared is None:
            return available and np.asarray(frame0).nbytes >= EXCHANGE_MIN_BYTES
        if shared and not available:
            raise UnsupportedOptionError(
                f"shared=True, but the engine offers no frame exchange folder "
                f"({self.connection.exchange_dir!r}); use shared=False or None"
            )
        return shared

    def _exchange_for(self, capacity_bytes: int) -> ClientExchange:
        if self._exchange is None:
            self._exchange = ClientExchange(Path(self.connection.exchange_dir), capacity_bytes)
        else:
            self._exchange.ensure(capacity_bytes)
        return self._exchange

    # ------------------------------------------------------------------ events and jobs

    def subscribe(self, topic: str, timeout_s: float = 5.0) -> None:
        """Receive events with ``topic`` (a job id); returns once the engine confirms it."""
        deadline_ns = time.monotonic_ns() + int(timeout_s * 1e9)
        with self._events_cond:
            self._claim_events()
            if self._events is None:
                self._events = self.context.socket(zmq.SUB)
                self._events.setsockopt(zmq.LINGER, 0)
                self._events.connect(self.connection.events)
            self._welcomed.discard(topic)
            self._events.setsockopt(zmq.SUBSCRIBE, topic.encode())
            self._topics[topic] += 1
            if self._await_events(deadline_ns, lambda: topic in self._welcomed or None):
                return
        self.unsubscribe(topic)
        raise EngineTimeoutError(
            f"the engine at {self.connection.events} did not confirm the subscription to "
            f"{topic!r} within {timeout_s} s{self._gone_detail()}"
        )

    def unsubscribe(self, topic: str) -> None:
        """Stop receiving ``topic`` (once per ``subscribe``); its events not yet taken are dropped."""
        with self._events_cond:
            if self._topics[topic] <= 0:
                return
            self._claim_events()
            if self._events is not None:
                self._events.setsockopt(zmq.UNSUBSCRIBE, topic.encode())
            self._topics[topic] -= 1
            if self._topics[topic] <= 0:
                del self._topics[topic]
                self._pending.pop(topic, None)
                self._welcomed.discard(topic)
            self._events_cond.notify_all()  # threads that waited for the socket may read it again

    def next_event(self, timeout_s: float, topic: str | None = None) -> Message | None:
        """The next event on ``topic`` (a subscribed job id; None: on any subscribed topic, in the
        order they came), or None after ``timeout_s``. ``welcome`` events are not passed on.
        Events of other topics that arrive meanwhile are kept for their own waiters."""
        deadline_ns = time.monotonic_ns() + int(timeout_s * 1e9)
        with self._events_cond:
            return self._await_events(deadline_ns, lambda: self._take_event(topic))

    def _take_event(self, topic: str | None) -> Message | None:
        """Called with ``_events_cond`` held."""
        if topic is not None:
            waiting = self._pending.get(topic)
            return waiting.popleft()[1] if waiting else None
        oldest = min((q for q in self._pending.values() if q), key=lambda q: q[0][0], default=None)
        return oldest.popleft()[1] if oldest is not None else None

    def _claim_events(self) -> None:
        """Wait until no thread reads the events socket, to change it. Called, and returns, with
        ``_events_cond`` held: no read starts before the caller releases it."""
        self._events_wanted += 1
        try:
            while self._events_reading:
                self._events_cond.wait()
        finally:
            self._events_wanted -= 1

    def _await_events(self, deadline_ns: int, found: Callable[[], Any]) -> Any:
        """Read the events socket (or wait while another thread does) until ``found()`` gives
        something other than None, which is returned, or until ``deadline_ns``: then None. Called
        with ``_events_cond`` held."""
        polled = False
        while True:
            result = found()
            if result is not None:
                return result
            if self._events is None:
                return None
            remaining_ms = max(0, (deadline_ns - time.monotonic_ns()) // 1_000_000)
            if remaining_ms == 0 and polled:
                return None
            if self._events_reading or self._events_wanted:
                if remaining_ms == 0:
                    return None
                # another thread reads (and files this thread's events too) or changes the socket
                self._events_cond.wait(remaining_ms / 1000)
                continue
            # (more may be waiting when a read took all it takes at once)
            polled = self._read_events(min(remaining_ms, EVENT_SLICE_MS)) < EVENTS_PER_READ

    def _read_events(self, timeout_ms: int) -> int:
        """Wait up to ``timeout_ms`` for events and file those that came; return how many came.
        Called with ``_events_cond`` held; it is released while waiting, the socket left to this
        thread."""
        socket = self._events
        arrived: list[list[zmq.Frame]] = []
        self._events_reading = True
        self._events_cond.release()
        try:
            if socket.poll(timeout_ms):
                with contextlib.suppress(zmq.Again):
                    while len(arrived) < EVENTS_PER_READ:
                        arrived.append(socket.recv_multipart(zmq.NOBLOCK, copy=False))
        finally:
            self._events_cond.acquire()
            self._events_reading = False
            for frames in arrived:
                self._file_event(frames)
            self._events_cond.notify_all()
        return len(arrived)

    def _file_event(self, frames: list[zmq.Frame]) -> None:
        """Keep an event for the waiter of its topic; drop it when no one here subscribed to
        exactly that topic. Called with ``_events_cond`` held."""
        try:
            event = self.session.deserialize(frames, accept=EVENT_TYPES)
        except MessageRefusedError as refusal:
            log.warning("ignored an event from the engine: %s", refusal)
            return
        topic = event.identities[0].decode("utf-8", "replace") if event.identities else ""
        if self._topics[topic] <= 0:
            log.debug("dropped a %s event on %r: not a topic subscribed here", event.msg_type, topic)
            return
        if event.msg_type == "welcome":
            if event.content.get("topic") == topic:
                self._welcomed.add(topic)
            return
        self._pending.setdefault(topic, collections.deque()).append((next(self._arrivals), event))

    def submit(
        self, msg_type: str, content: dict[str, Any] | None = None, *, job_id: str | None = None
    ) -> str:
        """Queue a job; returns its id. Subscribe to the id first to see all of its events."""
        payload = dict(content or {})
        if job_id is not None:
            payload["job_id"] = job_id
        return self.request(msg_type, payload).content["job_id"]

    def wait_for_job(
        self,
        job_id: str,
        *,
        on_event: EventCallback | None = None,
        timeout_s: float | None = None,
        status_every_s: float = 1.0,
        stop: threading.Event | None = None,
        cancel_on_timeout: bool = False,
    ) -> dict[str, Any]:
        """Wait for a job to finish; return its result, raise its error or ``JobCancelledError``.

        Events go to ``on_event``; ``job_status`` is asked whenever no event came for
        ``status_every_s``, so a lost event cannot hang the wait. Ctrl-C cancels the job. When
        ``stop`` is set (checked every ``STOP_CHECK_EVERY_S``) the wait ends with
        ``WaitStoppedError`` and the job goes on in the engine. After ``timeout_s`` the job goes on
        too, unless ``cancel_on_timeout``; the ``EngineTimeoutError`` says which.
        """
        # capped: 1e308 s overflowed the nanoseconds (a wait of MAX_WAIT_S is one without end)
        deadline_ns = (
            None if timeout_s is None else time.monotonic_ns() + int(min(timeout_s, MAX_WAIT_S) * 1e9)
        )
        listen_s = status_every_s if stop is None else min(status_every_s, STOP_CHECK_EVERY_S)
        quiet_since_ns = time.monotonic_ns()
        try:
            while True:
                if deadline_ns is not None and time.monotonic_ns() >= deadline_ns:
                    return self._timed_out(job_id, timeout_s, cancel_on_timeout)
                if stop is not None and stop.is_set():
                    raise WaitStoppedError(f"stopped waiting for job {job_id}; it goes on in the engine")
                wait_s = listen_s
                if deadline_ns is not None:  # never listen past the deadline
                    wait_s = max(0.0, min(wait_s, (deadline_ns - time.monotonic_ns()) / 1e9))
                event = self.next_event(wait_s, topic=job_id)
                if event is None and wait_s < status_every_s:
                    # listening in short slices (to see ``stop``): ask for the status only once
                    # ``status_every_s`` has passed with no event, as without ``stop``
                    if time.monotonic_ns() - quiet_since_ns < status_every_s * 1e9:
                        continue
                quiet_since_ns = time.monotonic_ns()
                if event is not None:
                    if on_event is not None:
                        on_event(event)
                    if event.msg_type != "status" or event.content.get("state") not in _FINISHED_STATES:
                        continue
                    status = event.content
                else:
                    status = self._status_of_quiet_job(job_id, on_event)
                    if status.get("state") not in _FINISHED_STATES:
                        continue
                    if on_event is not None:
                        self._pass_on_late_events(job_id, on_event)
                return self._job_outcome(status)
        except KeyboardInterrupt:
            description = self.cancel(job_id)
            if description.get("state") == JobState.DONE.value:
                # the job finished as the user stopped it: its output is written, so say so
                log.info("job %s had finished when it was interrupted; its result stands", job_id)
                return description.get("result") or {}
            raise

    def _status_of_quiet_job(self, job_id: str, on_event: EventCallback | None) -> dict[str, Any]:
        """``job_status`` for a wait that heard nothing for a while. When the engine does not
        answer because it went away (shut down or died) during the job, say so: the status event
        an engine that shuts down sends for a job it leaves unfinished, or ``JobInterruptedError``
        when its pid is gone; else the ``EngineTimeoutError`` stands."""
        if not self._engine_gone():
            try:
                return self.job_status(job_id, timeout_s=STATUS_TIMEOUT_S)
            except EngineTimeoutError:
                last = self._take_final_status(job_id, on_event)
                if last is not None:
                    return last
                if not self._engine_gone():
                    raise
        last = self._take_final_status(job_id, on_event)
        if last is not None:
            return last
        raise JobInterruptedError(
            f"engine pid {self.connection.pid} stopped (shut down or died) before job {job_id} was "
            "seen to finish; start the engine and submit the job again with the same id to resume it "
            "(or to get its result, if it had finished)"
        )

    def _take_final_status(self, job_id: str, on_event: EventCallback | None) -> dict[str, Any] | None:
        """The job's final status among the events that came already (those before it are passed
        on), or None."""
        while (event := self.next_event(0.0, topic=job_id)) is not None:
            if on_event is not None:
                on_event(event)
            if event.msg_type == "status" and event.content.get("state") in _FINISHED_STATES:
                return event.content
        return None

    def _timed_out(self, job_id: str, timeout_s: float | None, cancel: bool) -> dict[str, Any]:
        """The wait for a job ran out: raise ``EngineTimeoutError`` saying what became of the job
        (cancelled first, when asked); a job that turns out to have just finished gives its result."""
        said = f"job {job_id} did not finish within {timeout_s} s"
        if not cancel:
            raise EngineTimeoutError(f"{said}; it goes on in the engine (see `chronoscope engine status`)")
        try:
            description = self.cancel(job_id, timeout_s=STATUS_TIMEOUT_S)
        except ChronoscopeError as error:
            raise EngineTimeoutError(f"{said}, and cancelling it failed: {error}") from None
        state = description.get("state")
        if state == JobState.CANCELLED.value:
            raise EngineTimeoutError(f"{said}; it was cancelled")
        if state in _FINISHED_STATES:  # it ended as the wait ran out: its own outcome stands
            return self._job_outcome(description)
        raise EngineTimeoutError(f"{said}; it is cancelled and stops at its next step")

    def _pass_on_late_events(self, job_id: str, on_event: EventCallback) -> None:
        """The status request found the job finished before its last events arrived (the engine
        answers requests before it forwards queued events): pass those on, up to the final status
        event, waiting at most ``LATE_EVENTS_WAIT_S`` for them."""
        deadline_ns = time.monotonic_ns() + int(LATE_EVENTS_WAIT_S * 1e9)
        while (remaining_ns := deadline_ns - time.monotonic_ns()) > 0:
            event = self.next_event(remaining_ns / 1e9, topic=job_id)
            if event is None:
                return
            on_event(event)
            if event.msg_type == "status" and event.content.get("state") in _FINISHED_STATES:
                return

    @staticmethod
    def _job_outcome(status: dict[str, Any]) -> dict[str, Any]:
        state = status.get("state")
        if state == JobState.DONE.value:
            return status.get("result") or {}
        if state == JobState.CANCELLED.value:
            raise JobCancelledError(f"job {status.get('job_id')} was cancelled")
        if state == JobState.INTERRUPTED.value:
            raise JobInterruptedError(
                f"job {status.get('job_id')} was interrupted when its engine stopped; "
                "resubmit it (or resume_job) to resume it"
            )
        error = status.get("error") or {}
        raise error_from_record(
            str(error.get("ename", "")), str(error.get("evalue", "")), str(status.get("kind"))
        )

    def run_job(
        self,
        msg_type: str,
        content: dict[str, Any] | None = None,
        *,
        on_event: EventCallback | None = None,
        timeout_s: float | None = None,
        job_id: str | None = None,
        stop: threading.Event | None = None,
        cancel_on_timeout: bool = False,
    ) -> dict[str, Any]:
        """Subscribe, submit, wait: the result of one job, with its events passed to ``on_event``.

        Give ``job_id`` to be able to resume the job after an engine restart: submitting the id
        of an interrupted, failed or cancelled job runs it again; that of a done job returns its
        result at once.
        """
        job_id = job_id or uuid.uuid4().hex
        self.subscribe(job_id)
        try:
            payload = {**(content or {}), "job_id": job_id}
            try:
                state = self.request(msg_type, payload).content.get("state")
            except KeyboardInterrupt:
                # the engine may have queued the job before the reply came: cancel it by its id
                with contextlib.suppress(ChronoscopeError):
                    self.cancel(job_id)
                raise
            if state in _FINISHED_STATES:
                return self._job_outcome(self.job_status(job_id, timeout_s=STATUS_TIMEOUT_S))
            return self.wait_for_job(
                job_id, on_event=on_event, timeout_s=timeout_s, stop=stop, cancel_on_timeout=cancel_on_timeout
            )
        finally:
            self.unsubscribe(job_id)

    def resume_job(
        self,
        msg_type: str,
        job_id: str,
        *,
        on_event: EventCallback | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Run an interrupted (or failed, or cancelled) job again from the request the engine kept."""
        return self.run_job(msg_type, {"resume": True}, on_event=on_event, timeout_s=timeout_s, job_id=job_id)


def ensure_engine_running(timeout_s: float = 30.0, **start_options) -> EngineClient:
    """A client for this user's engine, starting one in the background when none answers."""
    from engine.server.process import start_engine

    connection, _started = start_engine(timeout_s=timeout_s, **start_options)
    return EngineClient(connection)
