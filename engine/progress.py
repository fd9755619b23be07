"""Progress bars for long work, on stderr, only when stderr is a terminal and output is not JSON.

The engine's work functions report progress through a callback ``on_progress(done, total)``;
``progress_callback`` turns such a callback into a tqdm bar, so commands need no bar code of
their own.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from tqdm import tqdm

ProgressCallback = Callable[[int, int], None]


@contextlib.contextmanager
def progress_callback(label: str, *, unit: str = "frame", enabled: bool = True) -> Iterator[ProgressCallback]:
    """Yield ``on_progress(done, total)`` drawing a bar named ``label`` (nothing when not shown)."""
    show = enabled and sys.stderr.isatty()
    with tqdm(total=None, desc=label, unit=unit, disable=not show, leave=False, file=sys.stderr) as bar:

        def on_progress(done: int, total: int) -> None:
            if bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        yield on_progress
