"""Where the viewer gets source frames: ``engine.media.FrameReader`` behind a small interface.

The viewer needs four things of a clip: its frame count, its exact rate, its size, and frame
``n`` as an RGB array. ``FrameSource`` gives those over the project's one frame reader, with the
last few frames cached (stepping back and forth re-decodes nothing) and frames larger than
``MAX_PREVIEW_SIZE`` scaled down while decoding (previews of 4K clips stay interactive).

A variable-frame-rate clip (phones, recordings that stalled) is shown on the constant grid
``chronoscope retime`` renders it on (``engine.media.frame_slots.clip_grid``): frame ``n`` is the
recorded frame nearest n / rate seconds after the first, so the app's frame numbers, In/Out marks
and times are the engine's.

Reading media is not loading models: this is the one thing the app does without the engine.
A reader serves one thread at a time, so every call holds the source's lock.
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from engine.errors import ChronoscopeError, FrameOutOfRangeError, MediaNotFoundError
from engine.media import FrameReader
from engine.media.frame_slots import clip_grid
from engine.media.probe import probe
from engine.media.sequence import ImageSequence, describe, is_description, read_description
from engine.media.timecode import start_timecode

log = logging.getLogger(__name__)

CACHE_FRAMES = 24
MAX_PREVIEW_SIZE = (1920, 1080)


@dataclass(frozen=True)
class ClipInfo:
    """What the app shows about a clip before any analysis."""

    path: Path
    width: int
    height: int
    rate: Fraction
    frame_count: int
    preview_width: int
    preview_height: int
    is_vfr: bool = False
    capture_fps: Fraction | None = None
    display_name: str = ""
    """The name to show: the file's, or an image sequence's (``A001.####.dpx``)."""
    truncated: bool = False
    """The file ends early (cut short or damaged): only ``frame_count`` complete frames are read."""
    listed_frame_count: int | None = None
    """The frame count the container claims (more than ``frame_count`` when truncated)."""
    codec: str = ""
    """The video codec as FFmpeg names it (``h264``, ``hevc``, ``prores`` ...)."""
    bit_depth: int = 8
    start_timecode: str | None = None
    """The first frame's timecode on the camera's clock (``engine.media.timecode``), or None."""
    missing_frames: tuple[int, ...] = ()
    """An image sequence's frames whose files are missing (counted from its first frame, as 0)."""
    missing_names: tuple[str, ...] = ()
    """Their file names (``A001.1020.png``), in the same order."""
    analysed_frames: int | None = None
    """Frames the speed analysis reads, where fewer than ``frame_count``: a sequence with holes is
    analysed up to its first missing frame (the engine reads a sequence's first run)."""

    def missing_text(self) -> str:
        """What the editor should know about missing frames of a sequence, or "" when none are."""
        if not self.missing_frames:
            return ""
        name = self.display_name or self.path.name
        files = _listed(self.missing_names)
        frames = _listed([str(n) for n in self.missing_frames])
        plural = "s" if len(self.missing_frames) > 1 else ""
        return (
            f"{name} lacks {files} (frame{plural} {frames}): the app shows the frames on either side; "
            "render In to Out on one side of a missing frame, or fill it first with `chronoscope "
            "repair` (it makes a missing frame as a dropped one) and open the repaired clip. The speed "
            f"analysis covers frames 0 to {(self.analysed_frames or self.frame_count) - 1}."
        )

    def missing_in(self, start: int, end: int) -> list[int]:
        """The missing frames from ``start`` to ``end`` (out exclusive)."""
        return [n for n in self.missing_frames if start <= n < end]

    def truncation_text(self) -> str:
        """What the editor should know about a truncated file, or "" when it is complete."""
        if not self.truncated:
            return ""
        name = self.display_name or self.path.name
        listed = (
            f"the file lists {self.listed_frame_count} frames but "
            if self.listed_frame_count and self.listed_frame_count > self.frame_count
            else ""
        )
        return (
            f"{name} looks truncated or damaged: {listed}only {self.frame_count} can be read. "
            f"The app shows, analyses and renders frames 0 to {self.frame_count - 1} only."
        )


def preview_size(width: int, height: int, limit: tuple[int, int] = MAX_PREVIEW_SIZE) -> tuple[int, int]:
    """``(width, height)`` scaled to fit ``limit`` (even numbers, aspect kept); unchanged when it fits."""
    scale = min(1.0, limit[0] / width, limit[1] / height)
    if scale >= 1.0:
        return width, height
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _listed(items, limit: int = 4) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


class FrameSource:
    """Random access to a clip's frames as read-only (height, width, 3) uint8 RGB arrays.

    An image sequence with holes (missing frame files) is read run by run, each unbroken run of
    frames through a reader of its own, its frames counted across the holes from the sequence's
    first (``engine.media.sequence.find_sequence_runs``); a missing frame is refused, naming it.
    """

    def __init__(self, path: Path):
        self._lock = threading.Lock()
        probe_reader = FrameReader(Path(path), apply_rotation=True, strict=False)
        try:
            stream = probe_reader.info
        finally:
            probe_reader.close()
        self._sequence = read_description(Path(path)) if is_description(Path(path)) else None
        self._runs: list[tuple[int, ImageSequence]] = []  # (first frame, run) after the first run
        self._run_readers: dict[int, FrameReader] = {}
        self._grid = clip_grid(Path(path), stream)
        rotated = stream.rotation_deg % 180 != 0
        width, height = (stream.height, stream.width) if rotated else (stream.width, stream.height)
        size = preview_size(width, height)
        capture = getattr(stream.capture, "capture_fps", None)
        self.info = ClipInfo(
            path=Path(path).resolve(),
            width=width,
            height=height,
            rate=self._grid.rate,
            frame_count=self._grid.slot_count,
            preview_width=size[0],
            preview_height=size[1],
            is_vfr=bool(stream.is_vfr),
            capture_fps=Fraction(capture) if capture else None,
            display_name=_display_name(Path(path)),
            truncated=bool(stream.truncated),
            listed_frame_count=stream.container_frame_count,
            codec=str(stream.codec or ""),
            bit_depth=int(stream.bit_depth or 8),
            start_timecode=_start_timecode(Path(path)),
        )
        if self._sequence is not None and self._sequence.later_runs:
            sequence = self._sequence
            self._runs = [(run.first - sequence.first, run) for run in sequence.runs()[1:]]
            self.info = replace(
                self.info,
                frame_count=sequence.span_frames,
                missing_frames=tuple(n - sequence.first for n in sequence.missing()),
                missing_names=tuple(sequence.frame_name(n) for n in sequence.missing()),
                analysed_frames=sequence.count,
            )
        self._size = None if size == (width, height) else size
        self._reader = FrameReader(
            Path(path),
            apply_rotation=True,
            strict=False,
            size=None if size == (width, height) else size,
        )
        self._cache: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` in presentation order (of the grid, for a variable frame rate)."""
        if not 0 <= index < self.info.frame_count:
            raise FrameOutOfRangeError(
                f"frame {index} is outside {self.info.display_name or self.info.path.name}, "
                f"which has frames 0 to {self.info.frame_count - 1}"
            )
        with self._lock:
            cached = self._cache.get(index)
            if cached is not None:
                self._cache.move_to_end(index)
                return cached
            image = self._read(index)
            image.flags.writeable = False
            self._cache[index] = image
            while len(self._cache) > CACHE_FRAMES:
                self._cache.popitem(last=False)
            return image

    def _read(self, index: int) -> np.ndarray:
        if not self._runs or index < self._sequence.count:
            return self._reader.read_frame(self._recorded_frame(index)).image
        start, run = next(((start, run) for start, run in reversed(self._runs) if start <= index), (0, None))
        if run is None or index >= start + run.count:
            missing = self._sequence.frame_name(self._sequence.first + index)
            raise MediaNotFoundError(
                f"frame {index} of {self.info.display_name} is missing ({missing} is not in "
                f"{self._sequence.folder}); `chronoscope repair` fills it"
            )
        reader = self._run_readers.get(start)
        if reader is None:
            reader = FrameReader(describe(run), apply_rotation=True, strict=False, size=self._size)
            self._run_readers[start] = reader
        return reader.read_frame(index - start).image

    def _recorded_frame(self, index: int) -> int:
        """The file frame shown at grid frame ``index``: the nearer of two around a stall."""
        place = self._grid.locate(Fraction(index))
        return place.lower if place.phase < Fraction(1, 2) else place.upper

    def close(self) -> None:
        with self._lock:
            self._cache.clear()
            self._reader.close()
            for reader in self._run_readers.values():
                reader.close()
            self._run_readers.clear()


def open_frame_source(path: Path) -> FrameSource:
    """The frame source for a clip; ``MediaNotFoundError``, ``NotVideoError`` ... when it cannot be read."""
    return FrameSource(Path(path))


def _start_timecode(path: Path) -> str | None:
    """The file's start timecode as ``chronoscope probe`` reads it (container headers only)."""
    try:
        return start_timecode(probe(path, scan_packets=False))
    except ChronoscopeError as error:
        log.debug("no start timecode for %s: %s", path, error)
        return None


def _display_name(path: Path) -> str:
    if is_description(path):
        return read_description(path).display_name
    return path.name
