"""Stopping a child process at a chosen moment, for the kill-and-resume tests."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path


def stop_mid_write(child: subprocess.Popen, finished: Path | str, outdir: Path, partial: str) -> None:
    """Freeze ``child`` (SIGSTOP) as soon as ``finished`` exists (a path, or a pattern in
    ``outdir``) and a temporary matching ``partial`` is being written, then SIGKILL it: what is on
    disk is what a kill at that moment leaves, however loaded the machine."""

    def is_finished() -> bool:
        return finished.exists() if isinstance(finished, Path) else bool(list(outdir.glob(finished)))

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and child.poll() is None:
        if is_finished() and list(outdir.glob(partial)):
            child.send_signal(signal.SIGSTOP)
            break
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
