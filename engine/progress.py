"""Progress of long work on stderr: a bar on a terminal, periodic INFO lines anywhere else.

The engine's work functions report progress through a callback ``on_progress(done, total)``;
``progress_callback`` turns such a callback into a tqdm bar, so commands need no bar code of
their own. Work in stages (``repair``: analysing, then writing) takes one callback per stage
from ``progress_stages``: each stage's bar starts at its first report, so that its rate and time
left count from there, and replaces the bar of the stage before.

On a terminal (stderr is a TTY) log lines are printed above the bar, not onto the end of its line
(``tqdm.contrib.logging.logging_redirect_tqdm``). Elsewhere (a log file, a batch system,
``nohup``) an INFO line says how far a stage is at most every ``LOG_INTERVAL_S`` seconds, and a
last one when a stage that long ends; work shorter than that prints nothing more. With JSON
output (``enabled=False``) neither is shown.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
LOG_INTERVAL_S = 30.0
"""How often, at most, a stage's INFO line is written where no bar can be drawn."""


def duration_words(seconds: float) -> str:
    """``45 s``, ``12 min``, ``1.5 h``: a time left or taken, for a progress line."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class _Stage:
    """One stage's bar (``bar=True``) or INFO lines, from its first report on."""

    def __init__(self, label: str, unit: str, *, bar: bool, done: int, total: int) -> None:
        self.label, self.unit = label, unit
        self.done = self.first_done = self.logged = done
        self.total = total
        self.started = self.last_log = time.monotonic()
        self.bar = (
            tqdm(total=total, initial=done, desc=label, unit=unit, leave=False, file=sys.stderr)
            if bar
            else None
        )

    def update(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        if self.bar is not None:
            if self.bar.total != total:
                self.bar.total = total
            self.bar.update(done - self.bar.n)
        elif time.monotonic() - self.last_log >= LOG_INTERVAL_S:
            self._log_line()

    def _log_line(self) -> None:
        self.last_log = now = time.monotonic()
        self.logged = self.done
        elapsed = now - self.started
        rate = (self.done - self.first_done) / elapsed if elapsed > 0 else 0.0
        if self.done >= self.total:
            left = f", in {duration_words(elapsed)}"
        else:
            left = f", about {duration_words((self.total - self.done) / rate)} left" if rate > 0 else ""
        share = f" ({100 * self.done / self.total:.0f} %)" if self.total > 0 else ""
        log.info(
            "%s: %d of %d %ss%s, %.2f %ss/s%s",
            self.label, self.done, self.total, self.unit, share, rate, self.unit, left,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.logged != self.done and time.monotonic() - self.started >= LOG_INTERVAL_S:
            self._log_line()  # a stage long enough to have been waited for: say how it ended


@contextlib.contextmanager
def progress_stages(
    *, unit: str = "frame", enabled: bool = True
) -> Iterator[Callable[[str], ProgressCallback]]:
    """Yield ``stage(label)``, which gives the ``on_progress(done, total)`` of one stage of the
    work. A stage is shown from its first report until the next stage's first report (or the end
    of the block); see the module doc for how."""
    terminal = enabled and sys.stderr.isatty()
    current: list[_Stage] = []

    def stage(label: str) -> ProgressCallback:
        mine: list[_Stage] = []

        def on_progress(done: int, total: int) -> None:
            if not enabled:
                return
            if mine:
                mine[0].update(done, total)
                return
            if current:
                current.pop().close()
            mine.append(_Stage(label, unit, bar=terminal, done=done, total=total))
            current.append(mine[0])

        return on_progress

    with logging_redirect_tqdm() if terminal else contextlib.nullcontext():
        try:
            yield stage
        finally:
            if current:
                current.pop().close()


@contextlib.contextmanager
def progress_callback(label: str, *, unit: str = "frame", enabled: bool = True) -> Iterator[ProgressCallback]:
    """Yield ``on_progress(done, total)`` shown as ``label`` (see the module doc)."""
    with progress_stages(unit=unit, enabled=enabled) as stage:
        yield stage(label)
