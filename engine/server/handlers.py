"""What the engine does for each request type beyond its own housekeeping.

The engine answers ``ping``, ``info``, ``job_status``, ``cancel`` and ``shutdown`` itself. Every
other request type is routed through a ``HandlerRegistry``: a dict of msg_type -> ``Handler``.
A handler either answers directly (``direct``: runs on the engine's request threads and returns a
``Reply``, e.g. ``synthesize``) or validates the request and returns the work to queue as a job
(``job``: e.g. ``retime``, ``render_timeline``, ``detect_speed``). A request type that no handler
serves gets a clear error reply naming what this engine build does serve.

Capabilities are installed by modules that define ``register_handlers(registry)``; the engine
imports those named in ``EngineConfig.capability_modules`` at start (``DEFAULT_CAPABILITY_MODULES``
plus any ``chronoscope engine run --capability-module MODULE``). A module that cannot be imported
or registered (whatever it raises, a ``SyntaxError`` or ``sys.exit()`` included) becomes a WARNING
and an entry in ``info``'s warnings; the engine serves the rest. A module that registers a request
type another module already serves replaces that handler, with a WARNING naming both.

A handler may list the request ``fields`` it knows; the engine then refuses a request naming any
other (with the list of valid ones) before the handler sees it. ``job_id`` and ``resume`` belong
to every job request and need not be listed. A capability module looks like this::

    def make_retime_job(message):                # check the request; raise a ChronoscopeError
        clip = parse_clip(message.content)       # subclass and it is the reply, nothing queued
        output = requested_output(message.content)            # engine.server.outputs
        overwrite = requested_overwrite(message.content)

        def work(context):                       # runs on a job worker
            ...                                  # context.progress / log / check_cancelled,
            with context.output(output, overwrite=overwrite) as temporary:
                write_media(temporary, ...)      # renamed into place when the block completes
            return {"timeline": ..., "outputs": [str(output)]}   # JSON-ready

        return work

    def register_handlers(registry):
        registry.register(Handler("retime", job=make_retime_job, description="...",
                                  fields=("source", "output", "speed", "overwrite")))

``direct`` handlers (return a ``Reply`` at once, on a request thread) suit quick answers such as
``synthesize``; ``job`` handlers suit work that takes seconds or writes files.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
import time as time_module
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from engine.errors import CapabilityNotAvailableError, UnsupportedOptionError
from engine.interp.base import (
    Synthesizer,
    available_backends,
    check_frame_pair,
    create_backend,
    refresh_backends,
)
from engine.interp.checks import needs_check
from engine.server.exchange import EngineExchange, align
from engine.server.exchange import is_descriptor as is_exchange_descriptor
from engine.server.jobs import JobFunction
from engine.server.protocol import (
    REQUEST_TYPES,
    Buffer,
    Limits,
    Message,
    decode_array,
    encode_array,
    quote,
)
from engine.server.requests import parse_number

log = logging.getLogger(__name__)

CORE_TYPES = frozenset({"ping", "info", "job_status", "cancel", "shutdown"})
ROUTED_TYPES = REQUEST_TYPES - CORE_TYPES
DEFAULT_CAPABILITY_MODULES: tuple[str, ...] = ("engine.render.capability", "engine.speed.capability")
BACKEND_PACKAGE = "engine.interp"
MAX_TIMES_PER_REQUEST = 256
JOB_FIELDS = frozenset({"job_id", "resume"})
"""Fields every job request may carry besides its handler's own (see ``engine.server.server``)."""


@dataclass
class Reply:
    """A direct handler's answer: JSON content and raw buffers."""

    content: dict[str, Any] = field(default_factory=dict)
    buffers: list[Buffer] = field(default_factory=list)


@dataclass(frozen=True)
class Handler:
    """Serves one request type, either ``direct`` or as a ``job`` (exactly one of them)."""

    msg_type: str
    direct: Callable[[Message], Reply] | None = None
    job: Callable[[Message], JobFunction] | None = None
    description: str = ""
    fields: Iterable[str] | None = None
    """The request fields this handler reads; None: any (the handler checks them itself)."""

    def __post_init__(self) -> None:
        if (self.direct is None) == (self.job is None):
            raise ValueError(f"handler for {self.msg_type!r} must set exactly one of direct and job")
        if self.fields is not None:
            object.__setattr__(self, "fields", frozenset(self.fields))

    @property
    def module(self) -> str:
        """The module whose function serves the request (for messages about plugins)."""
        function = self.direct or self.job
        return getattr(function, "__module__", None) or "?"

    def known_fields(self) -> frozenset[str] | None:
        """The fields a request for this handler may name (with ``job_id``/``resume`` for jobs)."""
        if self.fields is None:
            return None
        return self.fields | JOB_FIELDS if self.job is not None else self.fields


class HandlerRegistry:
    """The request types this engine build serves beyond the core ones."""

    def __init__(self, handlers: Iterable[Handler] = ()):
        self._handlers: dict[str, Handler] = {}
        for handler in handlers:
            self.register(handler)

    def register(self, handler: Handler) -> Handler | None:
        """Serve ``handler.msg_type`` with ``handler``; returns the handler it replaces (a WARNING
        names both), or None."""
        if handler.msg_type not in ROUTED_TYPES:
            raise UnsupportedOptionError(
                f"cannot register a handler for {quote(handler.msg_type)}; routed request types: "
                f"{', '.join(sorted(ROUTED_TYPES))}"
            )
        replaced = self._handlers.get(handler.msg_type)
        if replaced is not None and replaced is not handler:
            log.warning(
                "%s: the handler from %s replaces the one from %s",
                handler.msg_type,
                handler.module,
                replaced.module,
            )
        self._handlers[handler.msg_type] = handler
        return replaced

    def get(self, msg_type: str) -> Handler:
        try:
            return self._handlers[msg_type]
        except KeyError:
            raise CapabilityNotAvailableError(
                f"{msg_type} is not available in this engine build; available: "
                f"{', '.join(sorted(CORE_TYPES | set(self._handlers)))}"
            ) from None

    def available(self) -> list[str]:
        return sorted(self._handlers)

    def missing(self) -> list[str]:
        return sorted(ROUTED_TYPES - set(self._handlers))


def import_backends() -> None:
    """Import the synthesis backends package so that its backends register themselves."""
    try:
        importlib.import_module(BACKEND_PACKAGE)
    except ImportError as error:
        log.warning(
            "synthesis backends in %s could not be imported (%s); serving only those registered",
            BACKEND_PACKAGE,
            error,
        )


def install_capabilities(registry: HandlerRegistry, module_names: Iterable[str]) -> list[str]:
    """Import each module and call its ``register_handlers(registry)``; return warnings for modules
    that failed (whatever they raised, ``sys.exit()`` included) and for handlers one replaced."""
    warnings = []
    for name in module_names:
        before = {msg_type: registry.get(msg_type) for msg_type in registry.available()}
        try:
            module = importlib.import_module(name)
            module.register_handlers(registry)
        except (Exception, SystemExit) as error:  # a plugin's failure must not stop the engine
            message = f"capability module {name} not installed: {type(error).__name__}: {error}"
            log.warning(message)
            warnings.append(message)
            continue
        for msg_type, previous in before.items():
            current = registry.get(msg_type)
            if current is not previous:
                warnings.append(
                    f"capability module {name} replaced the {msg_type} handler from {previous.module}"
                )
    return warnings


class BackendCache:
    """Synthesis backends created on first use and kept, one per name and options, until their model
    files change on disk (``Synthesizer.files_changed``).

    Each backend is used by one request at a time (its own lock), since not every backend is safe
    to share between threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[Synthesizer, threading.Lock]] = {}

    def get(self, name: str, options: dict[str, Any]) -> tuple[Synthesizer, threading.Lock]:
        key = (name, json.dumps(options, sort_keys=True))
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0].files_changed():
                # trained or prepared again under its name while the engine ran: load what is there
                # now. The old backend is not closed here, since a request may still be using it;
                # it goes when the last one lets go of it.
                log.info("the model files of synthesis backend %s changed on disk: loading them again", name)
                del self._entries[key]
                entry = None
                refresh_backends()  # a model of the same name may be of another architecture now
            if entry is None:
                try:
                    backend = create_backend(name, **options)
                except TypeError as error:
                    raise UnsupportedOptionError(
                        f"options {options} not accepted by backend {name!r}: {error}"
                    ) from None
                log.info("synthesis backend %s created (%s)", name, backend.execution_provider)
                entry = (backend, threading.Lock())
                self._entries[key] = entry
            return entry

    def loaded(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "name": name,
                    "options": json.loads(options),
                    "execution_provider": backend.execution_provider,
                }
                for (name, options), (backend, _) in self._entries.items()
            ]

    def close_all(self) -> None:
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
        for backend, lock in entries:
            with lock:
                backend.close()


def parse_time(value: Any, where: str = "time") -> Fraction:
    """A time in (0, 1) from the wire: a number, or a rational as text ("1/3")."""
    time = parse_number(value, where, "0.5 or '1/3'")
    if not 0 < time < 1:
        raise UnsupportedOptionError(
            f"time {quote(value)} is outside (0, 1); in-between frames need 0 < t < 1"
        )
    return time


def synthesize_handler(
    backends: BackendCache, limits: Limits, exchange: EngineExchange | None = None
) -> Handler:
    """``synthesize``: content {backend, times, frame0, frame1, options?, output?}.

    The two frames are message buffers or regions of the client's exchange file (see
    ``exchange``). The reply holds, per time, a frame and a float32 risk map: as buffers, or
    written into the ``output`` region of the exchange when the request names one. The reply's
    ``timings_ns`` holds the time the backend itself took (``model``) and the time spent on the
    results' ``risk_score`` and ``risk_local`` (part of the synthesis result, defined in
    engine.interp; ``check``: the local risk reaches the model's measured level), so a client
    can tell the engine's own overhead from the synthesis."""

    def run(message: Message) -> Reply:
        content = message.content
        name = content.get("backend")
        if isinstance(name, str) and name not in available_backends():
            refresh_backends()  # a model added to the models folder since the engine started
        if not isinstance(name, str) or name not in available_backends():
            got = f"; {quote(name)} is not one" if name is not None else ""
            names = ", ".join(available_backends()) or "none"
            raise UnsupportedOptionError(f"synthesize needs a backend name{got}; available: {names}")
        times_raw = content.get("times")
        if not isinstance(times_raw, list) or not times_raw:
            raise UnsupportedOptionError(
                f"synthesize needs a non-empty list of times in (0, 1), got {quote(times_raw)}"
            )
        if len(times_raw) > MAX_TIMES_PER_REQUEST:
            raise UnsupportedOptionError(
                f"{len(times_raw)} times in one request; at most {MAX_TIMES_PER_REQUEST}: "
                "send several requests"
            )
        times = [parse_time(value, f"times[{index}]") for index, value in enumerate(times_raw)]
        options = content.get("options", {})
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise UnsupportedOptionError(f"synthesize options must be an object, got {quote(options)}")
        frame0 = _input_array(content.get("frame0"), message, exchange)
        frame1 = _input_array(content.get("frame1"), message, exchange)
        output = content.get("output")
        if output is not None and exchange is None:
            raise UnsupportedOptionError("this engine has no frame exchange; send frames as buffers")
        pixels = frame0.shape[0] * frame0.shape[1] if frame0.ndim >= 2 else 0
        reply_bytes = len(times) * (align(frame0.nbytes) + align(pixels * 4))
        region = exchange.writer(output) if output is not None else None
        if region is not None and reply_bytes > region.capacity:
            raise UnsupportedOptionError(
                f"{len(times)} frames of {frame0.shape} {frame0.dtype} need {reply_bytes} bytes; "
                f"the output region holds {region.capacity}"
            )
        if region is None and reply_bytes > limits.max_buffer_bytes:
            raise UnsupportedOptionError(
                f"{len(times)} frames of {frame0.shape} {frame0.dtype} make a {reply_bytes}-byte reply; "
                f"the limit is {limits.max_buffer_bytes}: ask for fewer times per request"
            )
        for time in times:
            check_frame_pair(frame0, frame1, time)
        backend, lock = backends.get(name, options)
        with lock:
            started_ns = time_module.perf_counter_ns()
            results = backend.synthesize_many(frame0, frame1, times)
            model_ns = time_module.perf_counter_ns() - started_ns
        started_ns = time_module.perf_counter_ns()
        risk_scores = [result.risk_score for result in results]
        local_risks = [result.risk_local for result in results]
        risk_score_ns = time_module.perf_counter_ns() - started_ns
        buffers: list[Buffer] = []

        def encode(array: np.ndarray) -> dict[str, Any]:
            return region.put(array) if region is not None else encode_array(array, buffers)

        frames = []
        for time, result, risk_score, local in zip(times, results, risk_scores, local_risks, strict=True):
            frames.append(
                {
                    "t": str(time),
                    "frame": encode(result.frame),
                    "risk": encode(result.risk.astype("float32", copy=False)),
                    "risk_score": risk_score,
                    "risk_local": local,
                    "check": needs_check(result.backend, local, fallback=result.fallback),
                    "notes": list(result.notes),
                    "backend": result.backend,
                }
            )
        return Reply(
            {
                "backend": name,
                "execution_provider": backend.execution_provider,
                "frames": frames,
                "timings_ns": {"model": model_ns, "risk_score": risk_score_ns},
            },
            buffers,
        )

    return Handler(
        "synthesize",
        direct=run,
        description="in-between frames and risk maps for one frame pair",
        fields=SYNTHESIZE_FIELDS,
    )


SYNTHESIZE_FIELDS = ("backend", "times", "frame0", "frame1", "options", "output")


def _input_array(descriptor: Any, message: Message, exchange: EngineExchange | None) -> np.ndarray:
    if is_exchange_descriptor(descriptor):
        if exchange is None:
            raise UnsupportedOptionError("this engine has no frame exchange; send frames as buffers")
        return exchange.read(descriptor)
    return decode_array(descriptor, message.buffers)


def default_registry(
    backends: BackendCache, limits: Limits, exchange: EngineExchange | None = None
) -> HandlerRegistry:
    """The handlers every engine build has: ``synthesize``."""
    return HandlerRegistry([synthesize_handler(backends, limits, exchange)])
