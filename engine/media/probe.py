"""What a media file holds: ``probe(path) -> MediaInfo``.

Frame counts and timing come from demuxing the video packets without decoding them (a "packet
scan"), which is exact for constant and variable frame rates and cheap next to decoding. The scan
yields the compact presentation-timestamp index (numpy int64, 8 bytes a frame) that the reader
uses to seek. One frame is decoded to learn the rotation (display matrix) and pixel format.

Every derived value names its origin in ``VideoStreamInfo.sources`` (for example
``frame_count: "packet scan"`` or ``capture_fps: "container tag com.android.capture.fps"``).

A truncated file: a partial last packet is dropped, ``frame_count`` is the number of complete
frames, and ``truncated`` is True (the container's own claim stays in ``container_frame_count``).

A stream that starts mid-GOP (a broadcast capture, a transport stream cut anywhere, a cut made
without re-encoding): frames presented before the first keyframe, and packets that come before it,
cannot be decoded (they refer to pictures that are not in the file). They are not frames of the
clip: ``frame_count`` leaves them out (``leading_frames_left_out`` says how many, with a WARNING)
and ``start_pts`` is the first frame that is actually shown, so audio offsets stay right.

Attached pictures (cover art, thumbnails) are not video: ``video`` lists only real video streams.
"""

from __future__ import annotations

import logging
import re
from array import array
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from engine.errors import CorruptMediaError, EmptyMediaError
from engine.media._open import (
    av_errors,
    fraction_or_none,
    fraction_text,
    open_input,
    require_video,
    video_streams,
)
from engine.media.rates import HIGH_FRAME_RATE_FPS, rate_from_text_metadata
from engine.media.sequence import is_description, read_description, shown_name

log = logging.getLogger(__name__)

_WARNED: set[str] = set()
_WARNED_LIMIT = 10_000


def warn_once(message: str, *args: object) -> None:
    """Log a warning about a file once per process: one analysis probes a file several times
    (index, keyframes, frames), and the same finding three times over reads as three problems."""
    text = message % args
    if text in _WARNED:
        return
    if len(_WARNED) >= _WARNED_LIMIT:
        _WARNED.clear()
    _WARNED.add(text)
    log.warning("%s", text)


ANDROID_CAPTURE_FPS_KEY = "com.android.capture.fps"
APPLE_PLAYBACK_INTENT_KEY = "com.apple.quicktime.full-frame-rate-playback-intent"
# Other tag names that hint at a capture rate; reported as hints, never trusted as the rate.
_CAPTURE_HINT_WORDS = ("capture", "framerate", "frame-rate", "frame_rate", "slow", "fps")


@dataclass(frozen=True)
class PacketScan:
    """The video packets of one stream, in presentation order, without decoding them.

    ``pts`` holds the frames of the clip: packets before the first keyframe (in decode order) and
    frames presented before it are left out, since no decoder can produce them; ``leading_dropped``
    counts them. ``open_gop`` is True when some keyframe is followed by frames presented before it
    (they refer to the previous GOP), so a decoder that starts at a keyframe misses references.
    ``discarded`` counts packets the container's edit list hides. ``damaged_pts`` are the frames
    whose packets the demuxer marked damaged in the middle of the stream (a broadcast transport
    stream's lost packets): they keep their place in ``pts`` (the frame was there; readers leave
    it out or make it again), where their timestamp fits among the others.
    """

    pts: np.ndarray
    keyframe_pts: np.ndarray
    last_duration_pts: int
    truncated: bool
    leading_dropped: int = 0
    open_gop: bool = False
    discarded: int = 0
    damaged_pts: tuple[int, ...] = ()


@dataclass
class AudioStreamInfo:
    index: int
    codec: str
    sample_rate: int
    channels: int
    layout: str
    time_base: Fraction | None
    duration_s: Fraction | None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class CaptureInfo:
    """Capture-rate evidence found in the container, before any pixel is looked at."""

    capture_fps: Fraction | None = None
    capture_fps_source: str | None = None
    high_frame_rate_stream: bool = False
    hints: dict[str, str] = field(default_factory=dict)


@dataclass
class VideoStreamInfo:
    """One video stream. Times are exact: Fractions of seconds, or pts in ``time_base`` units.

    ``frame_rate`` is the playback rate P of the file (for a CFR stream exactly one over the frame
    interval). ``rotation_deg`` is the counter-clockwise rotation the display matrix asks for; the
    reader returns raw (unrotated) frames unless asked.
    """

    index: int
    codec: str
    profile: str | None
    width: int
    height: int
    sample_aspect_ratio: Fraction | None
    pixel_format: str
    bit_depth: int
    has_alpha: bool
    time_base: Fraction
    frame_rate: Fraction
    average_rate: Fraction | None
    guessed_rate: Fraction | None
    r_frame_rate: Fraction | None
    start_pts: int
    start_s: Fraction
    duration_s: Fraction
    frame_count: int
    container_frame_count: int | None
    is_vfr: bool
    min_frame_interval_s: Fraction | None
    max_frame_interval_s: Fraction | None
    rotation_deg: int
    truncated: bool
    capture: CaptureInfo
    metadata: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    color_primaries: int | None = None
    """FFmpeg's AVColorPrimaries code of the stream (1 BT.709, 9 BT.2020); None when unspecified."""
    color_transfer: int | None = None
    """FFmpeg's AVColorTransferCharacteristic code (1 BT.709, 16 PQ, 18 HLG); None when unspecified."""
    interlaced: bool = False
    """The first frame is coded as two fields (broadcast, older camcorders)."""
    leading_frames_left_out: int = 0
    """Frames before the first keyframe (a stream cut mid-GOP) that cannot be decoded and are not
    counted in ``frame_count``."""
    declared_end_s: Fraction | None = None
    """Where the container says the video ends (a Matroska track's DURATION tag), when it says; a
    scanned end well short of it is a truncated file."""

    def truncation_reason(self) -> str:
        """Why the file looks cut short: what the container promised that the frames fall short of."""
        if self.container_frame_count and self.container_frame_count > self.frame_count:
            return f"the container lists {self.container_frame_count} frames"
        end = self.start_s + self.duration_s
        if self.declared_end_s is not None and self.declared_end_s > end:
            return (
                f"the container says the video runs to {float(self.declared_end_s):.3f} s, "
                f"the frames end at {float(end):.3f} s"
            )
        return "its last packet is cut"

    @property
    def rate(self) -> Fraction:
        """Alias of ``frame_rate``."""
        return self.frame_rate

    @property
    def duration_frames(self) -> int:
        return self.frame_count


@dataclass
class MediaInfo:
    path: Path
    container_format: str
    container_long_name: str
    duration_s: Fraction | None
    bit_rate: int | None
    size_bytes: int
    video: list[VideoStreamInfo]
    audio: list[AudioStreamInfo]
    metadata: dict[str, str] = field(default_factory=dict)
    image_sequence: str | None = None
    """For a sequence description (``engine.media.sequence``): the frames it names,
    ``/plates/A001.####.dpx, frames 1001-1048``; ``size_bytes`` is then the description's."""

    @property
    def video_stream(self) -> VideoStreamInfo:
        """The first video stream (probe raises ``NotVideoError`` when there is none)."""
        return self.video[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: Fractions as "num/den" strings, paths as text."""
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Fraction):
        return fraction_text(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def probe(path: Path, *, scan_packets: bool = True) -> MediaInfo:
    """Describe the media file at ``path``.

    With ``scan_packets`` (the default) frame count, duration and VFR come from demuxing every
    video packet (exact; reads the file once, no decoding). Without it they come from container
    headers, which some formats leave empty or get wrong; ``sources`` says which was used.

    Raises ``MediaNotFoundError``, ``NotVideoError`` (no video stream, or not media),
    ``CorruptMediaError`` and ``EmptyMediaError`` (no frames).
    """
    path = Path(path)
    with open_input(path) as container:
        require_video(path, container)
        audio = [_audio_info(stream) for stream in container.streams.audio]
        container_duration = (
            Fraction(container.duration, av.time_base) if container.duration not in (None, 0) else None
        )
        header = dict(
            container_format=container.format.name,
            container_long_name=container.format.long_name,
            bit_rate=container.bit_rate or None,
            metadata=dict(container.metadata),
        )
        stream_indices = [stream.index for stream in video_streams(container)]
    video = [
        video_info_and_index(path, index, header["metadata"], scan_packets=scan_packets)[0]
        for index in stream_indices
    ]
    sequence = read_description(path) if is_description(path) else None
    return MediaInfo(
        path=path,
        duration_s=container_duration,
        size_bytes=path.stat().st_size,
        video=video,
        audio=audio,
        image_sequence=(
            f"{sequence.folder / sequence.display_name}, frames {sequence.first}-{sequence.last}"
            if sequence else None
        ),
        **header,
    )


def probe_video(path: Path, *, scan_packets: bool = True) -> VideoStreamInfo:
    """The first video stream of ``path``; shorthand for ``probe(path).video_stream``."""
    return probe(path, scan_packets=scan_packets).video_stream


def _audio_info(stream: av.audio.stream.AudioStream) -> AudioStreamInfo:
    context = stream.codec_context
    time_base = fraction_or_none(stream.time_base)
    duration = stream.duration * time_base if stream.duration and time_base else None
    return AudioStreamInfo(
        index=stream.index,
        codec=context.name,
        sample_rate=int(context.sample_rate or 0),
        channels=int(context.channels or 0),
        layout=context.layout.name if context.layout else "",
        time_base=time_base,
        duration_s=duration,
        metadata=dict(stream.metadata),
    )


def video_info_and_index(
    path: Path, stream_index: int, container_metadata: dict[str, str], *, scan_packets: bool
) -> tuple[VideoStreamInfo, PacketScan | None]:
    """One video stream's description and, with ``scan_packets``, its packet scan (the pts index)."""
    scan = None
    sources: dict[str, str] = {}
    with open_input(path) as container:
        stream = container.streams[stream_index]
        first = first_decoded_frame(path, container, stream)
        context = stream.codec_context
        time_base = Fraction(stream.time_base)
        average_rate = fraction_or_none(stream.average_rate)
        guessed_rate = fraction_or_none(stream.guessed_rate)
        r_frame_rate = fraction_or_none(stream.base_rate)
        pixel_format = first.format.name if first is not None else (context.pix_fmt or "unknown")
        bit_depth, has_alpha = pixel_format_depth(pixel_format)
        rotation, sources["rotation_deg"] = _rotation(first, stream.metadata)
        width = first.width if first is not None else context.width
        height = first.height if first is not None else context.height
        container_frames = int(stream.frames) or None
        header_duration = stream.duration * time_base if stream.duration else None
        declared_end = _declared_end_s(dict(stream.metadata))
        stream_meta = dict(stream.metadata)
        profile = stream.profile
        codec = context.name
        sar = fraction_or_none(stream.sample_aspect_ratio)
        header_start = stream.start_time
        primaries, transfer = _color_code(context.color_primaries), _color_code(context.color_trc)
        interlaced = bool(getattr(first, "interlaced_frame", False)) if first is not None else False
    if first is None:
        raise EmptyMediaError(f"{shown_name(path)} has a video stream with no frames")
    leading_left_out = 0
    if scan_packets:
        with open_input(path) as container:
            scan = scan_video_packets(path, container, container.streams[stream_index])
        timing = _timing_from_scan(scan, time_base, average_rate, guessed_rate, shown_name(path))
        sources.update(frame_count="packet scan", duration_s="packet scan", is_vfr="packet pts scan")
        leading_left_out = scan.leading_dropped
        if leading_left_out:
            sources["start_s"] = "first frame at or after the first keyframe"
            warn_once(
                "%s starts in the middle of a group of pictures (a cut or captured stream): %d frames "
                "before its first keyframe cannot be decoded and are left out; the video starts at %.3f s",
                path,
                leading_left_out,
                float(timing["start_s"]),
            )
        if not timing["truncated"] and ends_short(timing, declared_end):
            timing["truncated"] = True
        listed = timing["frame_count"] + scan.discarded + leading_left_out
        if (
            container_frames is not None
            and container_frames not in (timing["frame_count"], listed)
            and not scan.truncated
        ):
            warn_once(
                "%s: container lists %d frames, the packet scan found %d",
                path,
                container_frames,
                timing["frame_count"],
            )
    else:
        timing = _timing_from_headers(
            path,
            container_frames,
            header_duration,
            header_start,
            time_base,
            average_rate,
            guessed_rate,
            sources,
        )
    sources["frame_rate"] = timing.pop("frame_rate_source")
    capture = _capture_info(container_metadata, stream_meta, timing["frame_rate"])
    if capture.capture_fps_source:
        sources["capture_fps"] = capture.capture_fps_source
    if capture.high_frame_rate_stream:
        sources["high_frame_rate_stream"] = f"stream rate >= {HIGH_FRAME_RATE_FPS} fps"
    info = VideoStreamInfo(
        index=stream_index,
        codec=codec,
        profile=profile,
        width=width,
        height=height,
        sample_aspect_ratio=sar,
        pixel_format=pixel_format,
        bit_depth=bit_depth,
        has_alpha=has_alpha,
        time_base=time_base,
        average_rate=average_rate,
        guessed_rate=guessed_rate,
        r_frame_rate=r_frame_rate,
        container_frame_count=container_frames,
        rotation_deg=rotation,
        capture=capture,
        metadata=stream_meta,
        sources=sources,
        color_primaries=primaries,
        color_transfer=transfer,
        interlaced=interlaced,
        leading_frames_left_out=leading_left_out,
        declared_end_s=declared_end,
        **timing,
    )
    if info.truncated:
        warn_once("%s is truncated: %d complete frames; %s", path, info.frame_count, info.truncation_reason())
    return info, scan


TRUNCATED_SHARE = Fraction(2, 100)
"""A scanned end short of the declared one by more than this share of it (and by more than two
frames) is a truncated file (muxers round a frame either way)."""

_TAG_DURATION = re.compile(r"^(\d+):(\d{2}):(\d{2})(?:\.(\d+))?$")


def _declared_end_s(tags: dict[str, str]) -> Fraction | None:
    """Where the container says the video ends: FFmpeg's Matroska muxer writes each track's end as
    a DURATION tag (``00:00:06.027000000``). Other containers' header durations are not used:
    edit lists and stream delays make them differ from the frames' end in complete files (an MP4
    cut short is found by its frame count instead)."""
    tag = next((value for key, value in tags.items() if key.upper() == "DURATION"), None)
    match = _TAG_DURATION.match(tag.strip()) if tag else None
    if not match:
        return None
    hours, minutes, seconds, fraction = match.groups()
    whole = int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    return whole + (Fraction(int(fraction), 10 ** len(fraction)) if fraction else Fraction(0))


def ends_short(timing: dict[str, Any], declared_end: Fraction | None) -> bool:
    """Whether the frames found end well before where the container says the video ends: a
    Matroska file cut off keeps its header's duration, and its last cluster ends cleanly, so no
    packet is cut (a 6 s .mkv cut at 60 % read as a complete 3.6 s clip)."""
    if declared_end is None or not timing["frame_count"]:
        return False
    interval = timing["duration_s"] / timing["frame_count"]
    scanned_end = timing["start_s"] + timing["duration_s"]
    return declared_end - scanned_end > max(2 * interval, TRUNCATED_SHARE * declared_end)


UNSPECIFIED_COLOR_CODES = (0, 2)  # reserved, unspecified


def _color_code(value: object) -> int | None:
    """An FFmpeg colour enum as an int, None when unspecified or unreadable."""
    try:
        code = int(value)
    except (TypeError, ValueError):
        return None
    return None if code in UNSPECIFIED_COLOR_CODES else code


def first_decoded_frame(
    path: Path, container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> av.VideoFrame | None:
    """Decode and return the first frame of ``stream``, or None when it has none."""
    with av_errors(path, "decoding the first frame"):
        for packet in container.demux(stream):
            if packet.is_corrupt:
                continue
            for frame in packet.decode():
                return frame
    return None


def pixel_format_depth(pixel_format: str) -> tuple[int, bool]:
    """Bits per colour component and whether there is an alpha channel, for an FFmpeg pixel format."""
    try:
        fmt = av.VideoFormat(pixel_format)
    except (ValueError, av.error.FFmpegError):
        return 8, False
    colour = [c.bits for c in fmt.components if not c.is_alpha]
    return (max(colour) if colour else 8), any(c.is_alpha for c in fmt.components)


def chroma_sampling(pixel_format: str) -> tuple[str, Fraction] | None:
    """A pixel format's colour sampling: its J:a:b name ("4:4:4" for RGB and full-resolution
    Y'CbCr, "4:2:2", "4:2:0", "4:1:1", "4:4:0") and its colour samples per picture sample (1, 1/2,
    1/4); None for grey and unknown formats."""
    try:
        fmt = av.VideoFormat(pixel_format, 16, 16)
    except (ValueError, av.error.FFmpegError):
        return None
    colour = [c for c in fmt.components if not c.is_alpha]
    if len(colour) < 3:
        return None
    across, down = 16 // colour[1].width, 16 // colour[1].height
    name = {(1, 1): "4:4:4", (2, 1): "4:2:2", (2, 2): "4:2:0", (4, 1): "4:1:1", (1, 2): "4:4:0"}
    return name.get((across, down), f"1/{across * down} colour"), Fraction(1, across * down)


def _rotation(first: av.VideoFrame | None, stream_metadata: dict[str, str]) -> tuple[int, str]:
    if first is not None and first.rotation:
        return int(first.rotation) % 360, "display matrix"
    tag = stream_metadata.get("rotate")
    if tag:
        try:
            return (-int(float(tag))) % 360, "rotate tag (clockwise, converted to counter-clockwise)"
        except ValueError:
            log.warning("unreadable rotate tag %r; assuming no rotation", tag)
    return 0, "none found"


def scan_video_packets(
    path: Path, container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> PacketScan:
    """Demux (never decode) every packet of ``stream`` and collect presentation timestamps.

    A packet the demuxer marks corrupt at the very end is a truncated tail and is dropped; one in
    the middle is damage: its frame stays in the index when its timestamp fits (``damaged_pts``),
    as the frame was there (lenient readers find it missing and say so). Discarded packets (edit
    lists) are skipped. Packets without pts fall back to decoding.
    Frames before the first keyframe are left out (see ``PacketScan``); a stream that marks no
    keyframe at all keeps every frame.
    """
    pts_values = array("q")  # decode order
    keyframes = array("q")
    last_duration = 0
    missing_pts = 0
    discarded = 0
    corrupt_pending: av.Packet | None = None
    damaged: list[int] = []  # pts of corrupt packets followed by more of the stream
    first_key_pts: int | None = None  # of the first keyframe in decode order, edit-list hidden or not
    first_key_at = 0  # how many kept packets came before it
    latest_key_pts: int | None = None
    open_gop = False
    # an image sequence ends where its description says, though files may follow after a hole
    limit = read_description(path).count if is_description(path) else None
    with av_errors(path, "scanning packets"):
        for packet in container.demux(stream):
            if limit is not None and len(pts_values) >= limit:
                break
            if packet.size == 0:
                continue
            if packet.is_keyframe and packet.pts is not None and not packet.is_corrupt:
                latest_key_pts = packet.pts
                if first_key_pts is None:
                    first_key_pts, first_key_at = packet.pts, len(pts_values)
            elif latest_key_pts is not None and packet.pts is not None and packet.pts < latest_key_pts:
                open_gop = True
            if packet.is_discard:
                discarded += 1
                continue
            if corrupt_pending is not None:
                if corrupt_pending.pts is not None:
                    damaged.append(corrupt_pending.pts)
                corrupt_pending = None
            if packet.is_corrupt:
                corrupt_pending = packet
                continue
            if packet.pts is None:
                missing_pts += 1
                continue
            pts_values.append(packet.pts)
            if packet.is_keyframe:
                keyframes.append(packet.pts)
            last_duration = packet.duration or last_duration
    if missing_pts:
        log.warning(
            "%s: %d video packets carry no timestamp; indexing by decoding instead (slower)",
            path,
            missing_pts,
        )
        container.seek(0)
        return _scan_by_decoding(path, container, stream, truncated=corrupt_pending is not None)
    decode_order = np.frombuffer(pts_values, dtype=np.int64)
    key_pts = np.frombuffer(keyframes, dtype=np.int64)
    if first_key_pts is not None:
        decode_order = decode_order[first_key_at:]
        decode_order = decode_order[decode_order >= first_key_pts]
        key_pts = key_pts[key_pts >= first_key_pts]
    pts = np.sort(decode_order)
    fitting = _fitting_damaged_pts(pts, damaged, first_key_pts)
    if damaged:
        warn_once(
            "%s: %s damaged in the middle of the stream (%s); %s",
            shown_name(path),
            "1 video packet is" if len(damaged) == 1 else f"{len(damaged)} video packets are",
            "lost in transmission or storage",
            "the frames are left out when read, and made again where a job needs them"
            if fitting
            else "their timestamps are unreadable, so their frames are left out",
        )
    if fitting:
        pts = np.sort(np.concatenate([pts, np.asarray(fitting, dtype=np.int64)]))
    if pts.size and np.any(np.diff(pts) == 0):
        log.warning("%s: several video packets share a timestamp; frame indices follow decode order", path)
    return PacketScan(
        pts=pts,
        keyframe_pts=np.sort(key_pts),
        last_duration_pts=int(last_duration),
        truncated=corrupt_pending is not None,
        leading_dropped=len(pts_values) - int(pts.size - len(fitting)),
        open_gop=open_gop,
        discarded=discarded,
        damaged_pts=tuple(fitting),
    )


def _fitting_damaged_pts(pts: np.ndarray, damaged: list[int], first_key_pts: int | None) -> list[int]:
    """The timestamps of damaged packets that fit among the undamaged frames: inside their span,
    after the first keyframe, on no other frame's timestamp (a timestamp garbled by the damage is
    left out rather than placing a frame where none was)."""
    if not damaged or pts.size == 0:
        return []
    first, last = int(pts[0]), int(pts[-1])
    taken = set(pts.tolist())
    fitting = []
    for stamp in sorted(set(damaged)):
        if first < stamp < last and stamp not in taken and (first_key_pts is None or stamp >= first_key_pts):
            fitting.append(stamp)
    return fitting


def _scan_by_decoding(
    path: Path,
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    *,
    truncated: bool,
) -> PacketScan:
    pts_values = array("q")
    keyframes = array("q")
    last_duration = 0
    with av_errors(path, "indexing frames"):
        for packet in container.demux(stream):
            if packet.is_corrupt:
                continue
            for frame in packet.decode():
                stamp = frame.pts if frame.pts is not None else (pts_values[-1] + 1 if pts_values else 0)
                pts_values.append(stamp)
                if frame.key_frame:
                    keyframes.append(stamp)
                last_duration = frame.duration or last_duration
    return PacketScan(
        pts=np.sort(np.frombuffer(pts_values, dtype=np.int64)),
        keyframe_pts=np.sort(np.frombuffer(keyframes, dtype=np.int64)),
        last_duration_pts=int(last_duration),
        truncated=truncated,
    )


JITTER_SHARE = 0.02
"""At most this share of frame intervals may stray from the typical one for a clip to count as
constant-rate with isolated jitter (one join of an MP4 concatenation 8 ticks off in 286)."""

JITTER_INTERVAL = Fraction(1, 20)
"""How far (a share of the typical interval) those few may stray: a stall or a phone's change of
rate goes far beyond it."""


SHARED_TIMESTAMPS_SHARE = 0.25
"""A clip in which a quarter or more of the frames carry the timestamp of the frame before is faster
than its container's time steps (2000 fps in Matroska's milliseconds shares every other one): its
rate cannot be read. A few shared timestamps (damage) are warned about and read in decode order."""


def _varies(deltas: np.ndarray, typical: int) -> tuple[bool, bool]:
    """(is_vfr, isolated): whether frame intervals ``deltas`` vary beyond rounding (one tick, as
    29.97 fps in a 1/1000 time base alternates 33 and 34), and whether the rest sit on ``typical``
    but for a few (``JITTER_SHARE``) near it (``JITTER_INTERVAL``). Those few are jitter in a
    constant-rate file, not a variable rate: one interval of 520 ticks among 285 of 512 made a
    24 fps concatenation 'variable rate' at 23.999 fps."""
    off = np.abs(deltas - typical)
    straying = off > 1
    if not straying.any():
        return False, False
    near = bool((off[straying] <= JITTER_INTERVAL * typical).all())
    if near and straying.sum() <= JITTER_SHARE * deltas.size and (off == 0).mean() >= 1 - JITTER_SHARE:
        return False, True
    return bool(deltas.max() - deltas.min() > 1), False


def _timing_from_scan(
    scan: PacketScan,
    time_base: Fraction,
    average_rate: Fraction | None,
    guessed_rate: Fraction | None,
    name: str = "the clip",
) -> dict[str, Any]:
    count = int(scan.pts.size)
    if count == 0:
        raise EmptyMediaError("the video stream has no complete frames")
    start_pts = int(scan.pts[0])
    deltas = np.diff(scan.pts)
    if deltas.size:
        min_delta, max_delta = int(deltas.min()), int(deltas.max())
        typical = int(np.median(deltas))
        is_vfr, isolated = _varies(deltas, typical)
    else:
        min_delta = max_delta = typical = scan.last_duration_pts
        is_vfr = isolated = False
    shared = int(np.count_nonzero(deltas == 0)) if deltas.size else 0
    if shared and shared >= SHARED_TIMESTAMPS_SHARE * deltas.size:
        steps = 1 / time_base
        which = f"its {count} frames all carry one timestamp" if max_delta == 0 else (
            f"{shared} of its {count} frames carry the timestamp of the frame before"
        )
        raise CorruptMediaError(
            f"{name}: {which}: it counts time in steps of 1/{steps} s, coarser than its frames (a "
            f"clip faster than {steps} fps written where time is kept that coarsely, as Matroska keeps "
            "it in milliseconds), so its frame rate cannot be read; write such clips as ProRes (.mov), "
            "H.264 (.mp4) or PNG frames"
        )
    if deltas.size and min_delta == max_delta:
        frame_rate, source = 1 / (min_delta * time_base), "constant packet interval"
    elif isolated:
        frame_rate, source = 1 / (typical * time_base), "packet interval (a few off by jitter)"
    elif average_rate:
        frame_rate, source = average_rate, "stream average_rate"
    elif guessed_rate:
        frame_rate, source = guessed_rate, "stream guessed_rate"
    elif typical:
        frame_rate, source = 1 / (typical * time_base), "median packet interval"
    else:
        raise CorruptMediaError("no frame rate: the stream has one frame and no rate in its header")
    if not is_vfr and min_delta == max_delta and min_delta:
        duration_s = count / frame_rate
    else:
        last = scan.last_duration_pts or typical
        duration_s = (int(scan.pts[-1]) - start_pts + last) * time_base
    return dict(
        frame_rate=frame_rate,
        frame_rate_source=source,
        start_pts=start_pts,
        start_s=start_pts * time_base,
        duration_s=duration_s,
        frame_count=count,
        is_vfr=is_vfr,
        min_frame_interval_s=min_delta * time_base if min_delta else None,
        max_frame_interval_s=max_delta * time_base if max_delta else None,
        truncated=scan.truncated,
    )


def _timing_from_headers(
    path: Path,
    container_frames: int | None,
    header_duration: Fraction | None,
    header_start: int | None,
    time_base: Fraction,
    average_rate: Fraction | None,
    guessed_rate: Fraction | None,
    sources: dict[str, str],
) -> dict[str, Any]:
    frame_rate = average_rate or guessed_rate
    if frame_rate is None:
        raise CorruptMediaError(
            f"{shown_name(path)}: no frame rate in the stream header; probe with a packet scan"
        )
    rate_source = "stream average_rate" if average_rate else "stream guessed_rate"
    if container_frames:
        count, sources["frame_count"] = container_frames, "container frame count"
    elif header_duration:
        count = round(header_duration * frame_rate)
        sources["frame_count"] = "estimated from stream duration x rate"
    else:
        raise CorruptMediaError(
            f"{shown_name(path)}: the header gives no frame count or duration; probe with a packet scan"
        )
    duration = header_duration if header_duration else count / frame_rate
    sources["duration_s"] = "stream header" if header_duration else "frame count / rate"
    sources["is_vfr"] = "not checked (no packet scan)"
    return dict(
        frame_rate=frame_rate,
        frame_rate_source=rate_source,
        start_pts=int(header_start or 0),
        start_s=int(header_start or 0) * time_base,
        duration_s=duration,
        frame_count=count,
        is_vfr=False,
        min_frame_interval_s=None,
        max_frame_interval_s=None,
        truncated=False,
    )


def _capture_info(
    container_metadata: dict[str, str], stream_metadata: dict[str, str], frame_rate: Fraction
) -> CaptureInfo:
    capture = CaptureInfo(high_frame_rate_stream=frame_rate >= HIGH_FRAME_RATE_FPS)
    for where, tags in (("container", container_metadata), ("stream", stream_metadata)):
        for key, value in tags.items():
            lowered = key.lower()
            if lowered == ANDROID_CAPTURE_FPS_KEY:
                rate = rate_from_text_metadata(value)
                if rate is None:
                    log.warning("unreadable %s tag %r; ignored", key, value)
                    continue
                capture.capture_fps = rate
                capture.capture_fps_source = f"{where} tag {ANDROID_CAPTURE_FPS_KEY}"
                capture.hints[key] = value
            elif lowered == APPLE_PLAYBACK_INTENT_KEY or (
                lowered.startswith(("com.apple.", "com.android.", "com.samsung.", "com.sony."))
                and any(word in lowered for word in _CAPTURE_HINT_WORDS)
            ):
                capture.hints[key] = value
    return capture
