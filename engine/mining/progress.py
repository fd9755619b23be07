"""Progress of a mining step: a bar on a terminal, periodic log lines anywhere else.

On a terminal (stderr is a TTY) a tqdm bar is drawn and log lines are printed above it, not onto
the end of its line (``tqdm.contrib.logging.logging_redirect_tqdm``). Elsewhere (a pipeline's
log file, a batch system, ``nohup``) an INFO line says how far the step is at most every
``LOG_INTERVAL_S`` seconds, and a last one when a step that long ends.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from engine.progress import LOG_INTERVAL_S, duration_words

log = logging.getLogger(__name__)


class Progress:
    """``update()`` once per item of ``total``; use as a context manager."""

    def __init__(self, total: int, label: str, unit: str, enabled: bool = True) -> None:
        self.total = total
        self.label = label
        self.unit = unit
        self.done = 0
        self._logged = 0
        self._enabled = enabled and total > 0
        self._started = time.monotonic()
        self._last_log = self._started
        self._exits = contextlib.ExitStack()
        self._bar: tqdm | None = None
        if self._enabled and sys.stderr.isatty():
            self._exits.enter_context(logging_redirect_tqdm())
            self._bar = self._exits.enter_context(
                tqdm(total=total, desc=label, unit=unit, file=sys.stderr, smoothing=0.1)
            )
        elif self._enabled:
            log.info("%s: %d %s", label, total, unit if total == 1 else f"{unit}s")

    def update(self, count: int = 1) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(count)
        elif self._enabled and time.monotonic() - self._last_log >= LOG_INTERVAL_S:
            self._log_line()

    def _log_line(self) -> None:
        self._last_log = now = time.monotonic()
        self._logged = self.done
        elapsed = now - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = f", about {duration_words((self.total - self.done) / rate)} left" if rate > 0 else ""
        log.info(
            "%s: %d of %d %ss (%.0f %%), %.2f %ss/s%s",
            self.label,
            self.done,
            self.total,
            self.unit,
            100 * self.done / self.total,
            rate,
            self.unit,
            left if self.done < self.total else f", in {duration_words(elapsed)}",
        )

    def close(self) -> None:
        if self._bar is None and self._enabled and self.done and self._logged != self.done:
            if time.monotonic() - self._started >= LOG_INTERVAL_S:
                self._log_line()  # a step long enough to have been waited for: say it ended
        self._exits.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
