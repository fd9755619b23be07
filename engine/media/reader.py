"""The one frame reader: ``FrameReader``, a streaming, seekable reader with exact timestamps.

    with FrameReader(path, size=(960, 540)) as reader:
        for frame in reader.frames(100, 200):       # frames 100..199, decoded once each
            frame.index, frame.pts, frame.time_s    # 100, 300300, Fraction(1001, 300) ...
            frame.image                             # (540, 960, 3) uint8 RGB
        still = reader.read_frame(42).image         # random access

Frame ``n`` is the n-th frame in presentation order. Its timestamp is ``pts * time_base`` exactly,
for constant and variable frame rates alike: seeking uses a compact index of every frame's pts
(numpy int64, built by demuxing packets without decoding, once per reader, on first need), goes to
the keyframe at or before the frame and decodes forward. Memory does not grow with clip length:
frames stream through generators, and nothing keeps a list of frames.

Output formats (``output``): "rgb24" (uint8, default), "rgb48" (uint16, full 16-bit range, for
10/12-bit sources), "rgba" (uint8) and "rgba64" (uint16); alpha is opaque when the source has none.
``size=(width, height)`` scales in FFmpeg's swscale while converting, which is much cheaper than
scaling afterwards. Frames are raw, as stored: a phone clip with a 90-degree display matrix comes
back sideways unless ``apply_rotation=True`` (then ``size`` is the size after rotation).
``deinterlace=True`` merges the two fields of each interlaced frame (FFmpeg's bwdif, at the frame
rate; see ``engine.media.deinterlace``): frame numbers, timestamps and count stay the same, and
progressive frames pass untouched. 8-bit output is converted with accurate rounding and full
chroma interpolation (``exact_levels``, the default): swscale's fast default rounds down, and
frames read from 8-bit 4:2:0 video came out about one level dark (luma -1.16 on sam2-dog; exact:
+0.01), so a retimed or repaired clip cut against its original showed a step. The conversion costs
about 4x more (helper-measured at 720p: 4 -> 16 ms a frame), small beside synthesis; the speed
stages pass ``exact_levels=False``, the conversion their network was trained and measured with.
16-bit output never takes the flags (they garble 10-bit colour in this FFmpeg build).

Stream starts: a decoding run (from the start, or after a seek) begins at a keyframe. Packets before
it are not decoded and frames presented before it are not returned: a stream cut mid-GOP starts at
its first keyframe, as ``probe`` counts it. An open-GOP stream (keyframes followed by frames that
refer to the previous GOP, as x264's open-gop, broadcast and camera streams make) names pictures
the decoder cannot have when it starts at a keyframe, and FFmpeg says so; in strict mode such a
complaint within the first GOP of a run is expected: the reader says so once (WARNING), then
ignores such complaints and decodes with slice threads, since a frame-threaded strict decoder
stops for good at its first error. Errors after the first GOP of a run are damage as usual.

Damage: with ``strict=True`` (default) the decoder runs with ``err_detect=explode`` and any decoding
error raises ``CorruptMediaError`` naming the frame. With ``strict=False`` a damaged packet is
skipped with a WARNING and frames keep their true indices (looked up by pts), so a frame lost to
damage is a gap in the indices; each damage is counted in ``damage_count`` and described in
``damage`` (the first few also logged). A frame the decoder made with errors (FFmpeg conceals
them and marks the frame corrupt), or decoded after damage before the next undamaged keyframe
(it may refer to what was lost), comes back with ``concealed`` set: its picture may be garbled.
That is judged in decode order (``_DecodeOrder``): a B-frame presented before the damaged frame
it refers to is held back until that frame has been decoded. A truncated file is
not an error in either mode: the reader stops after the last complete frame, with a WARNING, and
``frame_count`` is the number of complete frames.

One reader serves one consumer at a time (it holds one decoder); open one per thread.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import Interpolation

from engine.errors import (
    CorruptMediaError,
    EmptyMediaError,
    FrameOutOfRangeError,
    NotVideoError,
    UnsupportedOptionError,
)
from engine.media._open import av_errors, open_input, require_video, video_streams
from engine.media.deinterlace import FieldMerger
from engine.media.probe import PacketScan, VideoStreamInfo, video_info_and_index, warn_once
from engine.media.sequence import shown_name
from engine.media.wide_levels import apply_gains, read_gain

log = logging.getLogger(__name__)

# name -> (FFmpeg pixel format, numpy dtype, channels)
OUTPUT_FORMATS: dict[str, tuple[str, type, int]] = {
    "rgb24": ("rgb24", np.uint8, 3),
    "rgb48": ("rgb48le", np.uint16, 3),
    "rgba": ("rgba", np.uint8, 4),
    "rgba64": ("rgba64le", np.uint16, 4),
}

EXACT_LEVEL_FLAGS = int(Interpolation.ACCURATE_RND) | int(Interpolation.FULL_CHR_H_INT)
"""swscale flags of an exact 8-bit conversion (``exact_levels``)."""

# Decode forward instead of seeking when the wanted frame is at most this many frames ahead.
FORWARD_DECODE_LIMIT_FRAMES = 48
LENIENT_DECODERS = frozenset({"tiff"})
"""Decoders that ``err_detect=explode`` makes fail on sound files (FFmpeg's TIFF decoder on any tag
it does not know, such as ResolutionUnit); they still raise on data they cannot decode."""
MAX_DAMAGE_NOTES = 5
"""Damage reports kept (and logged at WARNING) per reader; the rest are counted."""
_SEEK_ATTEMPTS = 3


class _StartComplaint(Exception):
    """Internal: the strict decoder complained within the first GOP of a run on an open-GOP stream."""


@dataclass
class _RunStart:
    """The start of one decoding run: keyframes fed and whether its first GOP has been output."""

    keyframe_pts: list[int] = field(default_factory=list)
    first_gop_done: bool = False

    def fed(self, packet: av.Packet) -> None:
        if packet.is_keyframe and packet.pts is not None and len(self.keyframe_pts) < 2:
            self.keyframe_pts.append(packet.pts)

    def output(self, frames: list[av.VideoFrame]) -> None:
        if len(self.keyframe_pts) == 2 and any(
            f.pts is not None and f.pts >= self.keyframe_pts[1] for f in frames
        ):
            self.first_gop_done = True


class _DecodeOrder:
    """Lenient reading: which decoded frames may be garbled by damage, judged in decode order.

    A frame is garbled when the decoder made it with errors (``is_corrupt``), or when it was
    decoded after a damaged or lost packet with no undamaged keyframe (presented at or before it)
    decoded in between: it may refer to what was lost. Decoders give frames in presentation order,
    so a B-frame comes out before the later frame it refers to; each frame waits (``ready``) until
    every frame decoded before it has come out, and is judged then. Only a few frames wait, and
    only the packets of the last two keyframes' groups are remembered."""

    MAX_WAITING_FRAMES = 64
    """A frame waits at most this many frames (a frame the decoder never gives stops no one)."""

    def __init__(self) -> None:
        self._pts: dict[int, int | None] = {}  # decode position -> pts
        self._keyframe: dict[int, bool] = {}
        self._before_max: dict[int, int | None] = {}  # decode position -> highest pts fed before it
        self._position_of: dict[int, int] = {}  # pts -> decode position
        self._events: set[int] = set()  # decode positions of damage
        self._next = 0
        self._lowest = 0
        self._keyframes: deque[int] = deque(maxlen=2)
        self._max_fed: int | None = None
        self._highest_out: int | None = None
        self._waiting: deque[tuple[av.VideoFrame, int]] = deque()

    def fed(self, packet: av.Packet, *, lost: bool = False) -> None:
        """``packet`` was sent to the decoder (``lost``: skipped as damaged, a frame missing)."""
        position = self._next
        self._next += 1
        self._pts[position] = packet.pts
        self._keyframe[position] = bool(packet.is_keyframe) and not lost
        self._before_max[position] = self._max_fed
        if lost:
            self._events.add(position)
            return
        if packet.pts is not None:
            self._position_of[packet.pts] = position
            self._max_fed = packet.pts if self._max_fed is None else max(self._max_fed, packet.pts)
        if packet.is_keyframe:
            if len(self._keyframes) == 2:
                self._forget_before(self._keyframes[0])
            self._keyframes.append(position)

    def damage_at_latest(self) -> None:
        """Sending the latest packet failed: what it carried is lost."""
        if self._next:
            self._events.add(self._next - 1)

    def output(self, frame: av.VideoFrame) -> bool:
        """The decoder gave ``frame``; True when it says it made it with errors."""
        latest = self._next - 1
        position = latest if frame.pts is None else self._position_of.get(frame.pts, latest)
        corrupt = bool(frame.is_corrupt)
        if corrupt:
            self._events.add(position)
        if frame.pts is not None:
            self._highest_out = frame.pts if self._highest_out is None else max(self._highest_out, frame.pts)
        self._waiting.append((frame, position))
        return corrupt

    def ready(self, *, flush: bool = False) -> list[tuple[av.VideoFrame, bool]]:
        """Frames whose judgement is known, in order, each with whether it may be garbled."""
        released = []
        while self._waiting:
            frame, position = self._waiting[0]
            need = self._before_max.get(position)
            waiting = need is not None and (self._highest_out is None or self._highest_out < need)
            if waiting and not flush and len(self._waiting) <= self.MAX_WAITING_FRAMES:
                break
            self._waiting.popleft()
            released.append((frame, self._garbled(position, frame.pts)))
        return released

    def _garbled(self, position: int, pts: int | None) -> bool:
        if not self._events:
            return False
        while position in self._pts:
            if position in self._events:
                return True
            key_pts = self._pts[position]
            if self._keyframe[position] and (pts is None or key_pts is None or key_pts <= pts):
                return False
            position -= 1
        return False

    def _forget_before(self, position: int) -> None:
        waiting = min((p for _, p in self._waiting), default=position)
        limit = min(position, waiting)
        while self._lowest < limit:
            pts = self._pts.pop(self._lowest, None)
            if pts is not None and self._position_of.get(pts) == self._lowest:
                del self._position_of[pts]
            self._keyframe.pop(self._lowest, None)
            self._before_max.pop(self._lowest, None)
            self._events.discard(self._lowest)
            self._lowest += 1


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index in presentation order, exact timestamp, and pixels."""

    index: int
    pts: int
    time_base: Fraction
    image: np.ndarray
    is_keyframe: bool = False
    concealed: bool = False
    """``strict=False`` only: decoded with errors, or after damage and before the next undamaged
    keyframe (in decode order): the decoder filled in what it lost, so the picture may be garbled."""

    @property
    def time_s(self) -> Fraction:
        """Presentation time in exact seconds (``pts * time_base``)."""
        return self.pts * self.time_base

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        """``np.asarray(frame)`` is the image, so a Frame goes wherever an array is expected."""
        return self.image if dtype is None else self.image.astype(dtype)


class FrameReader:
    """Read frames of the first (or ``stream``-th) video stream of ``path``. See the module doc."""

    def __init__(
        self,
        path: Path,
        *,
        output: str = "rgb24",
        size: tuple[int, int] | None = None,
        apply_rotation: bool = False,
        strict: bool = True,
        stream: int = 0,
        threads: int = 0,
        deinterlace: bool = False,
        exact_levels: bool = True,
    ) -> None:
        if output not in OUTPUT_FORMATS:
            raise UnsupportedOptionError(
                f"output format {output!r} not supported; use one of: " + ", ".join(OUTPUT_FORMATS)
            )
        if size is not None:
            if len(size) != 2 or any(not isinstance(v, int) or isinstance(v, bool) or v < 2 for v in size):
                raise UnsupportedOptionError(
                    f"size {size!r} is not (width, height) in whole pixels of 2 or more"
                )
        if threads < 0:
            raise UnsupportedOptionError(f"threads {threads} must be 0 (automatic) or more")
        self.path = Path(path)
        self.shown = shown_name(self.path)
        self.output = output
        self.size = tuple(size) if size is not None else None
        self.apply_rotation = apply_rotation
        self.strict = strict
        self.deinterlace = deinterlace
        self.exact_levels = exact_levels
        self._pixel_format, self._dtype, self._channels = OUTPUT_FORMATS[output]
        self._closed = False
        self._decoded: Iterator[av.VideoFrame] | None = None
        self._exits = contextlib.ExitStack()
        # Closing at garbage collection or interpreter exit at the latest: FFmpeg's frame threads
        # can hang a process that exits with an open decoder.
        self._finalizer = weakref.finalize(self, self._exits.close)
        self._container = self._exits.enter_context(open_input(self.path))
        try:
            require_video(self.path, self._container)
        except (EmptyMediaError, NotVideoError):
            self.close()
            raise
        videos = video_streams(self._container)
        if stream < 0 or stream >= len(videos):
            self.close()
            raise UnsupportedOptionError(
                f"video stream {stream} does not exist; {self.shown} has "
                f"{len(videos)} (0 to {len(videos) - 1})"
            )
        self._threads = threads
        self._open_gop = False  # complaints in a run's first GOP are expected (see _open_gop_decoder)
        self._stream = self._set_up_decoder(videos[stream])
        self._run_start_pts: int | None = None  # where the current run's demuxing began; None: file start
        self.time_base = Fraction(self._stream.time_base)
        self._info: VideoStreamInfo | None = None
        self._scan: PacketScan | None = None
        self._held: av.VideoFrame | None = None
        self._next_index: int | None = 0
        self.damage: list[str] = []
        self.damage_count = 0
        self._order: _DecodeOrder | None = None  # the current run's, when not strict
        self._judged: dict[int, bool] = {}  # pts -> may be garbled, for frames given by the run
        self._pulled_concealed = False
        self._held_concealed = False

    def _set_up_decoder(self, stream: av.video.stream.VideoStream) -> av.video.stream.VideoStream:
        # A strict decoder with frame threads stops for good at its first error; on an open-GOP
        # stream, where an error early in each run is expected, slice threads keep it going.
        stream.thread_type = "SLICE" if self._open_gop else "AUTO"
        stream.thread_count = self._threads
        if self.strict and stream.codec_context.name not in LENIENT_DECODERS:
            stream.codec_context.options = {"err_detect": "explode"}
        return stream

    # -- description ---------------------------------------------------------------------------

    @property
    def info(self) -> VideoStreamInfo:
        """The stream's probe result (frame count, exact rate, size, VFR ...); built on first use."""
        self._ensure_index()
        assert self._info is not None
        return self._info

    @property
    def frame_count(self) -> int:
        return self.info.frame_count

    @property
    def pts_index(self) -> np.ndarray:
        """Presentation timestamps of every frame, int64, in ``time_base`` units (read-only view)."""
        self._ensure_index()
        assert self._scan is not None
        view = self._scan.pts.view()
        view.flags.writeable = False
        return view

    def __len__(self) -> int:
        return self.frame_count

    def _ensure_index(self) -> None:
        if self._info is None:
            self._info, self._scan = video_info_and_index(
                self.path, self._stream.index, dict(self._container.metadata), scan_packets=True
            )

    # -- reading -------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[Frame]:
        """Yield frames ``start`` .. ``stop - 1`` (``stop=None``: to the end) in order, decoded once each.

        Reading from frame 0 needs no index; any other start builds the pts index and seeks.
        """
        self._check_open()
        if start < 0:
            raise FrameOutOfRangeError(f"start frame {start} is negative; frames count from 0")
        if start != 0 or stop is not None:
            count = self.frame_count
            if start >= count:
                raise FrameOutOfRangeError(
                    f"start frame {start} is beyond the last frame {count - 1} of {self.shown}"
                )
            if stop is not None and stop < start:
                raise FrameOutOfRangeError(f"frame range {start}..{stop} is empty or reversed")
        self._position_at(start)
        while stop is None or (self._next_index is not None and self._next_index < stop):
            frame = self._next_frame()
            if frame is None:
                return
            yield frame

    def read_frame(self, index: int) -> Frame:
        """Frame ``index`` (random access). Stepping forward continues decoding instead of seeking."""
        self._check_open()
        count = self.frame_count
        if not 0 <= index < count:
            raise FrameOutOfRangeError(
                f"frame {index} is outside {self.shown}: it has frames 0 to {count - 1}"
            )
        try:
            self._position_at(index)
            frame = self._next_frame()
            if frame is None or frame.index != index:
                raise CorruptMediaError(f"{self.shown}: frame {index} cannot be decoded")
        except CorruptMediaError:
            # the decoder may have run past the damage to the end: the next call starts afresh,
            # so one undecodable frame does not make good ones unreadable
            self._drop_decoder()
            raise
        return frame

    def _position_at(self, index: int) -> None:
        """Make the next decoded frame be frame ``index``."""
        if self._next_index is not None and self._decoded is not None and 0 <= index - self._next_index:
            if index - self._next_index <= FORWARD_DECODE_LIMIT_FRAMES:
                self._skip_to(index)
                return
        if index == 0 and self._decoded is None and self._next_index == 0:
            return  # a fresh reader (or one just restarted) is at the start
        if index == 0 and self._scan is None:
            self._restart()
            return
        self._seek_to(index)

    def _skip_to(self, index: int) -> None:
        while self._next_index is not None and self._next_index < index:
            raw = self._pull()
            if raw is None:
                raise CorruptMediaError(f"{self.shown}: the stream ends before frame {index}")
            self._next_index = self._index_of(raw, self._next_index) + 1

    def _restart(self) -> None:
        self._drop_decoder()
        self._seek_container(None)
        self._next_index = 0

    def _seek_container(self, seek_pts: int | None) -> None:
        """Demux from the keyframe at or before ``seek_pts`` (None: from the start of the file)."""
        self._run_start_pts = seek_pts
        if seek_pts is None:
            with av_errors(self.path, "seeking to the start"):
                self._container.seek(0, stream=self._stream, backward=True)
            return
        with av_errors(self.path, f"seeking to pts {seek_pts}"):
            self._container.seek(seek_pts, stream=self._stream, backward=True, any_frame=False)

    def _seek_to(self, index: int) -> None:
        self._ensure_index()
        assert self._scan is not None
        target = int(self._scan.pts[index])
        keyframes = self._scan.keyframe_pts
        nearest = int(np.searchsorted(keyframes, target, side="right")) - 1
        for attempt in range(_SEEK_ATTEMPTS):
            position = nearest - attempt
            if position <= 0:
                # at or before the first keyframe: decode from the start, which MPEG-TS and other
                # demuxers reach exactly (asked to seek to the first keyframe, they may land past it)
                break
            self._drop_decoder()
            self._seek_container(int(keyframes[position]))
            if self._decode_until(target) == "found":
                self._next_index = index
                return
        else:
            log.warning("%s: seeking to frame %d landed past it; decoding from the start", self.path, index)
        self._restart()
        if self._decode_until(target) != "found":
            raise CorruptMediaError(f"{self.shown}: frame {index} (pts {target}) cannot be decoded")
        self._next_index = index

    def _decode_until(self, target_pts: int) -> str:
        """Decode until the frame with ``target_pts`` is held; "found", "overshot" or "ended"."""
        while True:
            raw = self._pull()
            if raw is None:
                return "ended"
            if raw.pts is None or raw.pts < target_pts:
                continue
            self._held, self._held_concealed = raw, self._pulled_concealed
            return "found" if raw.pts == target_pts else "overshot"

    def _next_frame(self) -> Frame | None:
        raw = self._pull()
        if raw is None:
            return None
        expected = self._next_index if self._next_index is not None else 0
        index = self._index_of(raw, expected)
        self._next_index = index + 1
        pts = raw.pts if raw.pts is not None else self._pts_for(index)
        return Frame(
            index=index,
            pts=pts,
            time_base=self.time_base,
            image=self._to_array(raw),
            is_keyframe=bool(raw.key_frame),
            concealed=self._pulled_concealed,
        )

    def _index_of(self, raw: av.VideoFrame, expected: int) -> int:
        """The frame's index: looked up by pts when the index exists, else the running count."""
        if self._scan is None or raw.pts is None:
            return expected
        position = int(np.searchsorted(self._scan.pts, raw.pts))
        if position < self._scan.pts.size and int(self._scan.pts[position]) == raw.pts:
            return position
        log.warning(
            "%s: decoded a frame with pts %d that no packet announced; numbering it %d",
            self.path,
            raw.pts,
            expected,
        )
        return expected

    def _pts_for(self, index: int) -> int:
        if self._scan is not None and index < self._scan.pts.size:
            return int(self._scan.pts[index])
        return index

    def _pull(self) -> av.VideoFrame | None:
        """The next decoded frame; ``_pulled_concealed`` says whether it came after damage."""
        if self._held is not None:
            raw, self._held = self._held, None
            self._pulled_concealed = self._held_concealed
            return raw
        if self._decoded is None:
            self._decoded = self._decode_stream()
        raw = next(self._decoded, None)
        self._pulled_concealed = (
            self._judged.pop(raw.pts, False) if raw is not None and raw.pts is not None else False
        )
        return raw

    def _decode_stream(self) -> Iterator[av.VideoFrame]:
        """Decoded frames from the current demux position, deinterlaced when asked."""
        if not self.deinterlace:
            yield from self._decode_packets()
            return
        merger = FieldMerger(self.time_base)
        with av_errors(self.path, "deinterlacing"):
            for raw in self._decode_packets():
                yield from merger.feed(raw)
            yield from merger.flush()

    def _decode_packets(self) -> Iterator[av.VideoFrame]:
        """Decoded frames of the current run. When the decoder is replaced (an open-GOP stream, see
        ``_open_gop_decoder``), the run is decoded again from its start, past the frames already given."""
        if not self.strict:
            self._ensure_index()
        given_up_to: int | None = None
        while True:
            try:
                for raw in self._decode_run():
                    if given_up_to is not None and raw.pts is not None and raw.pts <= given_up_to:
                        continue
                    given_up_to = raw.pts if raw.pts is not None else given_up_to
                    yield raw
                return
            except _StartComplaint:
                self._open_gop_decoder()

    def _decode_run(self) -> Iterator[av.VideoFrame]:
        """Decoded frames from the current demux position, starting at a keyframe; a truncated tail
        ends it quietly."""
        damaged_tail = False
        run = _RunStart()
        start_key_pts: int | None = None
        waiting_for_keyframe = True
        order = self._order = None if self.strict else _DecodeOrder()
        with av_errors(self.path, "decoding"):
            for packet in self._container.demux(self._stream):
                if packet.size == 0:
                    yield from self._judge(self._after_start(self._decode_packet(packet, run), start_key_pts))
                    continue
                if waiting_for_keyframe:
                    if not packet.is_keyframe and self._stream_has_keyframes():
                        continue  # refers to pictures before the run: cannot be decoded
                    waiting_for_keyframe = False
                    start_key_pts = packet.pts if packet.is_keyframe else None
                if damaged_tail:
                    self._damaged("a damaged packet in the middle of the stream")
                    damaged_tail = False
                if packet.is_corrupt:
                    damaged_tail = True
                    if order is not None:
                        order.fed(packet, lost=True)
                    continue
                run.fed(packet)
                if order is not None:
                    order.fed(packet)
                yield from self._judge(self._after_start(self._decode_packet(packet, run), start_key_pts))
            if order is not None:
                yield from self._released(order.ready(flush=True))
        if damaged_tail:
            log.warning("%s is truncated: stopping after the last complete frame", self.path)

    def _judge(self, frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
        """Strict: ``frames`` as they are. Lenient: the frames whose damage is judged by now
        (``_DecodeOrder``), each frame made with errors counted as damage."""
        order = self._order
        if order is None:
            return frames
        for frame in frames:
            if order.output(frame):
                self._count_damage(
                    f"frame {self._frame_index_of(frame)} was decoded with errors", outcome="may be garbled"
                )
        return self._released(order.ready())

    def _released(self, judged: list[tuple[av.VideoFrame, bool]]) -> list[av.VideoFrame]:
        for frame, garbled in judged:
            if frame.pts is not None:
                self._judged[frame.pts] = garbled
        return [frame for frame, _ in judged]

    def _frame_index_of(self, frame: av.VideoFrame) -> str:
        if self._scan is not None and frame.pts is not None:
            return str(int(np.searchsorted(self._scan.pts, frame.pts)))
        return "?"

    @staticmethod
    def _after_start(frames: list[av.VideoFrame], start_key_pts: int | None) -> list[av.VideoFrame]:
        """Leave out frames presented before the keyframe a run starts at (leading frames of an
        open GOP: they refer to pictures the run does not have, and no index counts them)."""
        if start_key_pts is None:
            return frames
        return [f for f in frames if f.pts is None or f.pts >= start_key_pts]

    def _stream_has_keyframes(self) -> bool:
        """Whether the stream marks keyframes at all (the packet scan found some)."""
        self._ensure_index()
        assert self._scan is not None
        return self._scan.keyframe_pts.size > 0

    def _decode_packet(self, packet: av.Packet, run: _RunStart) -> list[av.VideoFrame]:
        try:
            frames = packet.decode()
        except av.error.FFmpegError as error:
            if self._explained_by_open_gop(run):
                if not self._open_gop:
                    raise _StartComplaint() from None
                log.debug("%s: open-GOP start: %s (expected)", self.path, error.strerror or error)
                return []
            self._damaged(f"decoding failed near frame {self._frame_near(packet)}: {error.strerror or error}")
            return []
        run.output(frames)
        return frames

    def _explained_by_open_gop(self, run: _RunStart) -> bool:
        """A strict decoder's complaint within the first GOP of a run, on an open-GOP stream, is
        about pictures from before the keyframe the run started at, not damage."""
        if not self.strict or run.first_gop_done:
            return False
        if self._stream.codec_context.name in LENIENT_DECODERS:
            return False
        self._ensure_index()
        assert self._scan is not None
        return self._scan.open_gop

    def _open_gop_decoder(self) -> None:
        """Reopen the file with a decoder that survives the complaints an open-GOP stream gives
        early in each run (slice threads instead of frame threads, still ``err_detect=explode``),
        and demux the current run again from where it started."""
        warn_once(
            "%s: open-GOP video: the decoder misses pictures from before the keyframe it starts at, "
            "as expected for this kind of stream; those complaints are ignored, and decoding uses "
            "fewer threads (slower) so that damage elsewhere is still found",
            self.path,
        )
        self._open_gop = True
        index = self._stream.index
        self._container.close()  # closing again when the reader closes does nothing
        self._container = self._exits.enter_context(open_input(self.path))
        self._stream = self._set_up_decoder(self._container.streams[index])
        self._seek_container(self._run_start_pts)

    def _frame_near(self, packet: av.Packet) -> str:
        """The index of the frame a packet carries, as well as it can be told."""
        if self._scan is not None and packet.pts is not None:
            return str(int(np.searchsorted(self._scan.pts, packet.pts)))
        return str(self._next_index) if self._next_index is not None else "?"

    def _damaged(self, what: str) -> None:
        """Damage at the latest packet sent: strict, an error; lenient, counted and logged, and
        what that packet carried is lost."""
        if self.strict:
            raise CorruptMediaError(f"{self.shown}: {what}")
        if self._order is not None:
            self._order.damage_at_latest()
        self._count_damage(what)

    def _count_damage(self, what: str, *, outcome: str = "skipped") -> None:
        self.damage_count += 1
        if len(self.damage) < MAX_DAMAGE_NOTES:
            self.damage.append(what)
            log.warning("%s: %s; %s (strict=False)", self.path, what, outcome)
        elif self.damage_count == MAX_DAMAGE_NOTES + 1:
            log.warning("%s: more damage; further reports at DEBUG level", self.path)
        else:
            log.debug("%s: %s; %s (strict=False)", self.path, what, outcome)

    def _to_array(self, raw: av.VideoFrame) -> np.ndarray:
        rotation = (raw.rotation % 360) if self.apply_rotation else 0
        if rotation % 90:
            log.warning(
                "%s: rotation of %d degrees is not a multiple of 90; frames left unrotated",
                self.path,
                rotation,
            )
            rotation = 0
        width, height = self.size if self.size else (None, None)
        if self.size and rotation in (90, 270):
            width, height = height, width
        shrinking = width is not None and width * height < raw.width * raw.height
        interpolation: str | int = "AREA" if shrinking else "BICUBIC"
        if self.exact_levels and self._dtype == np.uint8:
            # bilinear chroma at full size: bicubic rings up to 2 levels beside sharp colour edges
            interpolation = int(Interpolation["AREA" if shrinking else "BILINEAR"]) | EXACT_LEVEL_FLAGS
        with av_errors(self.path, "converting a frame"):
            converted = raw.reformat(
                width=width,
                height=height,
                format=self._pixel_format,
                interpolation=interpolation,
            )
            image = converted.to_ndarray()
        if self._dtype == np.uint16:
            gains = read_gain(raw.format.name, int(raw.color_range), self._pixel_format)
            if gains is not None:
                image = apply_gains(image, gains)
        if rotation:
            image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
        return image

    # -- lifetime ------------------------------------------------------------------------------

    def _drop_decoder(self) -> None:
        if self._decoded is not None:
            self._decoded.close()
        self._decoded = None
        self._held = None
        self._next_index = None
        self._order = None  # the next decode starts at a keyframe, judged afresh
        self._judged.clear()
        self._run_start_pts = None

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"reader for {self.path} is closed")

    def close(self) -> None:
        """Release the file and the decoder; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._decoded is not None:
            self._decoded.close()
            self._decoded = None
        self._finalizer()

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_frame(path: Path, index: int, **options: object) -> Frame:
    """Open ``path``, return frame ``index``, close. For one-off access; keep a reader for more."""
    with FrameReader(path, **options) as reader:
        return reader.read_frame(index)


def iter_frames(path: Path, start: int = 0, stop: int | None = None, **options: object) -> Iterator[Frame]:
    """Yield frames ``start`` .. ``stop - 1`` of ``path`` from a reader that closes when done."""
    with FrameReader(path, **options) as reader:
        yield from reader.frames(start, stop)
