"""Stopping the bridge part way: SIGTERM (or Ctrl-Break) acts like Ctrl-C, so the engine job being
waited for is cancelled and the script still gets its one reply."""

from __future__ import annotations

import signal
import threading

_STOPPING = threading.Event()


def stop_on_terminate():
    """Make SIGTERM stop the bridge like Ctrl-C (so it cancels its engine job and still answers);
    returns the handlers it replaced, by signal. The stop is also kept in
    ``_STOPPING``: an interrupt that lands as a job finishes gives that job's result, and the next
    step must not start another job (``check_stopping``)."""
    _STOPPING.clear()

    def interrupt(signum, frame):
        _STOPPING.set()
        raise KeyboardInterrupt

    replaced = {}
    # SIGBREAK: what the Resolve scripts send on Windows (Ctrl-Break), where SIGTERM cannot be caught
    for number in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGBREAK", None)):
        if number is None:
            continue
        try:
            replaced[number] = signal.signal(number, interrupt)
        except (ValueError, OSError):  # not the main thread, or no such signal here
            pass
    return replaced


def check_stopping() -> None:
    """Before starting another engine job: stop here if the bridge was told to stop."""
    if _STOPPING.is_set():
        raise KeyboardInterrupt
