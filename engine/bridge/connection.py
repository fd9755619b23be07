"""Reaching the engine: connect (starting it on demand), notice that it stopped, log its events,
``ping``, and say what went wrong in an editor's words: the scripts show these messages in
Resolve, where job ids, socket addresses and the client library's advice mean nothing."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

from engine import __version__
from engine.bridge.protocol import PROTOCOL_VERSION
from engine.errors import (
    CapabilityNotAvailableError,
    ChronoscopeError,
    EngineNotRunningError,
    EngineRequestError,
    JobCancelledError,
    JobInterruptedError,
)
from engine.processes import pid_alive

log = logging.getLogger(__name__)

_JOB_TIMED_OUT = re.compile(r"^job \S+ did not finish within (?P<seconds>\S+) s(?P<rest>.*)$", re.DOTALL)
_NO_ANSWER = re.compile(
    r"^the engine at \S+ did not (?:answer \S+|confirm the subscription to \S+) within (?P<seconds>\S+) s"
    r"(?P<rest>.*)$",
    re.DOTALL,
)
_ENDPOINT = re.compile(r"\s*\b(?:ipc|tcp|inproc)://\S+")
_JOB_ID = re.compile(r"\bjob '?[0-9a-f]{16,}'?")
_ENGINE_ERROR = re.compile(r"^engine error in \S+: ")
_RESUBMIT = re.compile(
    r"(?:start the engine and )?(?:submit|resubmit) (?:the job|it)[^;.]*", re.IGNORECASE
)

ENGINE_START_TIMEOUT_S = 60.0


def connect_engine(start_engine: bool):
    from engine.server.client import EngineClient, ensure_engine_running
    from engine.server.process import find_running_engine

    if start_engine:
        return ensure_engine_running(timeout_s=ENGINE_START_TIMEOUT_S)
    connection = find_running_engine()
    if connection is None:
        raise EngineNotRunningError(
            "no Chronoscope engine is running; start one with `chronoscope engine start` "
            '(or let the script start it: "start_engine": true)'
        )
    return EngineClient(connection)


def log_event(event) -> None:
    content = event.content
    if event.msg_type == "progress":
        done, total = content.get("done"), content.get("total")
        counts = f" {done}/{total}" if total else ""
        log.info("progress%s %s", counts, content.get("message", ""))
    elif event.msg_type == "log":
        log.info("engine: %s", content.get("message", content))


def ping(*, start_engine: bool = True) -> dict[str, Any]:
    with editor_words("the ping"), connect_engine(start_engine) as client:
        answer = client.ping()
        info = client.info()
    return {
        "version": __version__,
        "protocol": PROTOCOL_VERSION,
        "python": sys.executable,
        "engine": {"pid": answer.get("pid"), "capabilities": info.get("capabilities", {})},
    }


def engine_stopped(client) -> bool:
    """Whether the engine ``client`` talks to has stopped (crashed, killed, shut down): its process
    is gone, or, where a process cannot be looked at (Windows), it no longer answers ``ping``."""
    if not pid_alive(client.connection.pid):
        return True
    if os.name != "nt":
        return False
    try:
        client.ping()
    except ChronoscopeError:
        return True
    return False


def _seconds(text: str) -> str:
    try:
        return f"{float(text):g}"
    except ValueError:
        return text


def in_editor_words(error: ChronoscopeError, doing: str) -> ChronoscopeError:
    """``error`` (from the engine client, about ``doing``: "the analysis", "the render") said for
    an editor: no job id, no socket address, and what to do in Resolve rather than with the
    client library. The same class, so that the reply's ``type`` still names what failed."""
    text = str(error)
    if isinstance(error, JobInterruptedError):
        text = (
            f"the Chronoscope engine stopped before {doing} finished (it crashed or was shut down); "
            "run the script again: it starts the engine (or start it with `chronoscope engine start`)"
        )
    elif isinstance(error, JobCancelledError):
        text = f"{doing} was cancelled in the Chronoscope engine; run the script again to redo it"
    elif found := _JOB_TIMED_OUT.match(text):
        text = (
            f"{doing} did not finish within {_seconds(found['seconds'])} s{found['rest']} "
            "(timeout_s in resolve-bridge.json gives each clip longer)"
        )
    elif found := _NO_ANSWER.match(text):
        text = f"the Chronoscope engine did not answer within {_seconds(found['seconds'])} s{found['rest']}"
    text = _ENGINE_ERROR.sub(f"the Chronoscope engine could not finish {doing}: ", text)
    text = _RESUBMIT.sub("run the script again", _JOB_ID.sub("the job", _ENDPOINT.sub("", text)))
    try:
        return type(error)(text)
    except TypeError:  # a class whose constructor wants more than a message
        return EngineRequestError(text)


@contextlib.contextmanager
def editor_words(doing: str) -> Iterator[None]:
    """Raise what the engine client raises about ``doing`` in an editor's words (``in_editor_words``)."""
    try:
        yield
    except CapabilityNotAvailableError:
        raise
    except ChronoscopeError as error:
        raise in_editor_words(error, doing) from None
