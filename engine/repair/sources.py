"""The frames repair reads: a clip through ``FrameReader``, damage and all, or an image sequence
with holes run by run.

Repair reads leniently (``strict=False``): a frame lost to damage is a gap in the frame numbers,
and a frame the decoder made with errors (or after damage, before the next undamaged keyframe)
comes back ``concealed``; the analysis treats both as dropped frames.

An image sequence with holes (a description from ``engine.media.sequence.find_sequence_runs``)
is read as its unbroken runs, one after the other, each through a ``FrameReader`` of its own:
frames are numbered in order across the runs, and each frame's pts is its place in the whole
sequence (frame number minus the first, in frames of the sequence's rate), so a missing frame
is a timestamp gap, as in a recording that dropped it.

    with source_frames(path) as reader:      # FrameReader, or SequenceRuns for a holed sequence
        reader.info, reader.pts_index, reader.frame_count
        for frame in reader.frames(): ...
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from engine.media import FrameReader
from engine.media.probe import VideoStreamInfo
from engine.media.reader import Frame
from engine.media.sequence import ImageSequence, describe, is_description, read_description


class SequenceRuns:
    """The frames of an image sequence with holes, read run by run (see the module doc)."""

    def __init__(self, sequence: ImageSequence, **options: object) -> None:
        self.sequence = sequence
        self.shown = f"image sequence {sequence.folder / sequence.display_name}"
        self._options = {**options, "strict": False}
        self._runs = sequence.runs()
        self._descriptions = [describe(run) for run in self._runs]
        self._offsets = list(np.cumsum([0] + [run.count for run in self._runs[:-1]]))
        with FrameReader(self._descriptions[0], **self._options) as first:
            self.info: VideoStreamInfo = first.info
            self.time_base = first.time_base
        ticks = 1 / (sequence.rate * self.time_base)
        if ticks.denominator != 1:
            ticks = Fraction(round(ticks))
        slots = [run.first - sequence.first + k for run in self._runs for k in range(run.count)]
        self._pts = np.array(slots, dtype=np.int64) * int(ticks)
        self.damage: list[str] = []
        self.damage_count = 0

    @property
    def frame_count(self) -> int:
        """Frames present, every run together."""
        return int(self._pts.size)

    @property
    def pts_index(self) -> np.ndarray:
        view = self._pts.view()
        view.flags.writeable = False
        return view

    def frames(self) -> Iterator[Frame]:
        """Every frame present, in order, numbered across the runs; pts says where each belongs."""
        for description, offset in zip(self._descriptions, self._offsets, strict=True):
            with FrameReader(description, **self._options) as reader:
                for frame in reader.frames():
                    index = int(offset) + frame.index
                    yield Frame(
                        index=index,
                        pts=int(self._pts[index]),
                        time_base=self.time_base,
                        image=frame.image,
                        is_keyframe=frame.is_keyframe,
                        concealed=frame.concealed,
                    )
                self.damage_count += reader.damage_count
                self.damage.extend(reader.damage)

    def close(self) -> None:
        """Nothing stays open between runs."""

    def __enter__(self) -> SequenceRuns:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def holed_sequence(source: Path) -> ImageSequence | None:
    """The image sequence ``source`` describes when it has holes; None for anything else."""
    if not is_description(source):
        return None
    sequence = read_description(source)
    return sequence if sequence.later_runs else None


@contextlib.contextmanager
def source_frames(source: Path, **options: object) -> Iterator[FrameReader | SequenceRuns]:
    """A lenient reader of ``source`` (``FrameReader`` options), run by run for a holed sequence."""
    sequence = holed_sequence(Path(source))
    reader = SequenceRuns(sequence, **options) if sequence is not None else None
    if reader is None:
        reader = FrameReader(Path(source), **{**options, "strict": False})
    with reader:
        yield reader
