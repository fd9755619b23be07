"""Stopping a training loop between two steps: SIGINT (Ctrl-C) and SIGTERM only ask the loop to
stop, so it saves a whole checkpoint (``--resume`` continues it) and then ends as the signal would
have ended the command. Used by ``train speed`` and ``train tsr``."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class StopRequest:
    """The signal that asked a training loop to stop (None: none yet)."""

    signal_number: int | None = None


@contextlib.contextmanager
def stop_at_a_step_boundary() -> Iterator[StopRequest]:
    """While the block runs on the main thread, SIGINT (Ctrl-C) and SIGTERM only ask the loop to
    stop (``StopRequest``), so that it stops between two steps and saves a whole checkpoint rather
    than dying mid-step. The first such signal puts the earlier handlers back, so a second one acts
    at once. ``resend`` hands the signal to them once the checkpoint is saved."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {
        number: signal.getsignal(number)
        for number in (signal.SIGINT, signal.SIGTERM)
        if signal.getsignal(number) is not signal.SIG_IGN  # ignored stays ignored
    }

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    def ask_to_stop(number, frame) -> None:
        request.signal_number = number
        restore()

    for number in previous:
        signal.signal(number, ask_to_stop)
    try:
        yield request
    finally:
        restore()


def resend(request: StopRequest) -> None:
    """Deliver the signal that stopped the loop to the handlers that were there before it (the
    command's: Ctrl-C raises ``KeyboardInterrupt``, SIGTERM ends the command as it would have)."""
    if request.signal_number is not None:
        signal.raise_signal(request.signal_number)
        raise KeyboardInterrupt  # a handler that ignored it: stop all the same
