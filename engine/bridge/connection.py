"""Reaching the engine: connect (starting it on demand), log its events, and ``ping``."""

from __future__ import annotations

import logging
import sys
from typing import Any

from engine import __version__
from engine.bridge.protocol import PROTOCOL_VERSION
from engine.errors import EngineNotRunningError

log = logging.getLogger(__name__)

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
    with connect_engine(start_engine) as client:
        answer = client.ping()
        info = client.info()
    return {
        "version": __version__,
        "protocol": PROTOCOL_VERSION,
        "python": sys.executable,
        "engine": {"pid": answer.get("pid"), "capabilities": info.get("capabilities", {})},
    }
