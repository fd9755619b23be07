"""Progress bars for long work, quiet when output is not a terminal or is meant for machines."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(
    items: Iterable[T], *, total: int | None = None, label: str = "", enabled: bool = True
) -> Iterator[T]:
    """Wrap ``items`` in a progress bar on stderr when stderr is a terminal and ``enabled``."""
    show = enabled and sys.stderr.isatty()
    yield from tqdm(
        items, total=total, desc=label, unit="frame", disable=not show, leave=False, file=sys.stderr
    )
