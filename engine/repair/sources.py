"""The frames repair reads: a clip through ``FrameReader``, damage and all.

Repair reads leniently (``strict=False``): a frame lost to damage is a gap in the frame numbers,
and a frame the decoder made with errors (or after damage, before the next undamaged keyframe)
comes back ``concealed``; the analysis treats both as dropped frames.

    with source_frames(path) as reader:
        reader.info, reader.pts_index, reader.frame_count
        for frame in reader.frames(): ...
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from engine.media import FrameReader


@contextlib.contextmanager
def source_frames(source: Path, **options: object) -> Iterator[FrameReader]:
    """A lenient reader of ``source`` (``FrameReader`` options)."""
    with FrameReader(Path(source), **{**options, "strict": False}) as reader:
        yield reader
