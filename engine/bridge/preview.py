"""The ``open_preview`` operation: the Chronoscope preview app on the timeline, in the background."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

from engine.errors import EngineNotRunningError, UnsupportedOptionError
from engine.places import places

log = logging.getLogger(__name__)

EARLY_EXIT_WAIT_S = 3.0
"""How long a preview started in the background is watched: one that cannot start (no display, a
Qt platform that does not load) ends within it, and is reported instead of "started"."""


def open_preview(
    timeline_path: Path, *, screenshot: Path | None = None, wait: bool = False, timeout_s: float = 60.0
) -> dict[str, Any]:
    """Start the preview app on the timeline, detached (or wait for it with ``wait``). A detached
    app that fails within ``EARLY_EXIT_WAIT_S`` could not start: that is an error, with its log."""
    command = [sys.executable, "-m", "engine.cli", "gui", str(timeline_path.absolute())]
    if screenshot is not None:
        command[4:4] = ["--screenshot", str(Path(screenshot).absolute())]
    log_path = places().log_dir / "preview.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {"stdin": subprocess.DEVNULL}
    if sys.platform == "win32":
        options["creationflags"] = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        options["start_new_session"] = True
    with open(log_path, "ab") as log_stream:
        child = subprocess.Popen(command, stdout=log_stream, stderr=log_stream, **options)
    log.info("preview app pid %d on %s; log: %s", child.pid, timeline_path, log_path)
    reply: dict[str, Any] = {"pid": child.pid, "timeline": str(timeline_path), "log": str(log_path)}
    if not wait:
        try:  # an app that cannot start (no display, no Qt platform) ends within moments
            status = child.wait(timeout=EARLY_EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            return reply
        if status == 0:  # closed at once by the editor
            return {**reply, "returncode": 0}
        raise UnsupportedOptionError(
            f"the preview app ended at once (status {status}); see {log_path}:\n{_log_tail(log_path)}"
        )
    if wait:
        try:
            reply["returncode"] = child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise EngineNotRunningError(
                f"the preview app did not finish within {timeout_s} s; see {log_path}"
            ) from None
        if reply["returncode"] != 0:
            raise UnsupportedOptionError(
                f"the preview app exited with status {reply['returncode']}; see {log_path}:\n"
                f"{_log_tail(log_path)}"
            )
    return reply


def _log_tail(log_path: Path, lines: int = 5) -> str:
    return "\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
