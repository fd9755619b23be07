"""Whether a process of this host still runs: the engine's connection file, orphaned shared-memory
frames and the mining cache's copies all name the pid that owns them."""

from __future__ import annotations

import os
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` runs on this host; one that exited but is not reaped yet
    (a zombie) does not. On Windows always True (``os.kill`` there would end the process), so
    callers decide by other means there."""
    if pid <= 0:
        return False
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A process that has exited but not been reaped yet (Linux; elsewhere assumed not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]
