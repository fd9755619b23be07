"""Opening media with PyAV and turning its errors into Chronoscope's own.

Every path into FFmpeg goes through ``open_input``: a missing file, a folder, an empty file, a file
that is no media at all and a damaged container each become one named ``ChronoscopeError`` with a
one-line message. ``av_errors`` wraps the code that decodes, so raw ``av.error.*`` exceptions never
reach a user.
"""

from __future__ import annotations

import contextlib
import logging
import struct
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import av.container

from engine.errors import CorruptMediaError, EmptyMediaError, MediaNotFoundError, NotVideoError
from engine.media.sequence import is_description, read_description, shown_name

log = logging.getLogger(__name__)

_MP4_FAMILY = "MP4/QuickTime"
# Leading bytes of container formats, to tell "damaged video" from "not media at all".
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (4, b"ftyp", _MP4_FAMILY),
    (4, b"moov", "QuickTime"),
    (4, b"mdat", "QuickTime"),
    (4, b"wide", "QuickTime"),
    (4, b"free", "QuickTime"),
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (0, b"RIFF", "AVI"),
    (0, b"\x00\x00\x01\xba", "MPEG program stream"),
    (0, b"\x47", "MPEG transport stream"),
    (0, b"FLV", "FLV"),
    (0, b"OggS", "Ogg"),
)


def sniff_container(path: Path) -> str | None:
    """Name the container family that ``path``'s first bytes announce, or None."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    for offset, magic, name in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return name
    return None


_BOX_HEADER_BYTES = 8
_MAX_TOP_LEVEL_BOXES = 10_000


def mp4_index_is_missing(path: Path) -> bool:
    """True when the MP4/QuickTime file at ``path`` has no index (``moov`` box) among its top-level
    boxes: a recording cut off before the camera wrote the index at the end.

    Only box headers are read (8 or 16 bytes each); a box size that cannot be followed means False
    (the file is damaged in some other way).
    """
    size_bytes = path.stat().st_size
    found: set[bytes] = set()
    offset = 0
    with open(path, "rb") as handle:
        for _ in range(_MAX_TOP_LEVEL_BOXES):
            if offset + _BOX_HEADER_BYTES > size_bytes:
                break
            handle.seek(offset)
            box_size, box_type = struct.unpack(">I4s", handle.read(_BOX_HEADER_BYTES))
            found.add(box_type)
            if box_size == 1:  # a 64-bit size follows the type
                large = handle.read(8)
                if len(large) < 8:
                    break
                box_size = struct.unpack(">Q", large)[0]
            if box_size == 0:  # the box runs to the end of the file
                break
            if box_size < _BOX_HEADER_BYTES:
                return False  # not a box structure we understand: say nothing about it
            offset += box_size
    return bool(found) and b"moov" not in found


def check_media_path(path: Path) -> Path:
    """Return ``path`` as a Path if it names a non-empty regular file; raise a named error otherwise."""
    path = Path(path)
    if not path.exists():
        raise MediaNotFoundError(f"media file not found: {path}")
    if path.is_dir():
        raise NotVideoError(f"{path} is a folder, not a video file")
    if not path.is_file():
        raise NotVideoError(f"{path} is not a regular file (a device, pipe or socket), not a video file")
    if path.stat().st_size == 0:
        raise EmptyMediaError(f"{path} is empty (0 bytes)")
    return path


@contextlib.contextmanager
def open_input(path: Path) -> Iterator[av.container.InputContainer]:
    """Open ``path`` for reading as ``with open_input(path) as container``; errors become ours."""
    path = check_media_path(path)
    if is_description(path):
        container = _open_sequence(path)
    else:
        container = _open_file(path)
    try:
        with av_errors(path, "reading"):
            yield container
    finally:
        container.close()


def _open_file(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as error:
        family = sniff_container(path)
        if family is None:
            raise NotVideoError(f"{path} is not a video file (FFmpeg reads no media format in it)") from None
        if family.endswith("QuickTime") and mp4_index_is_missing(path):
            raise CorruptMediaError(
                f"{path} looks like {family} but cannot be opened: its index (the moov atom) is "
                "missing, as when a recording is cut off before the camera finishes the file; "
                "the video cannot be read without it"
            ) from None
        raise CorruptMediaError(
            f"{path} looks like {family} but cannot be opened: {_reason(error)}"
        ) from None


def _open_sequence(path: Path) -> av.container.InputContainer:
    """The frames a sequence description names, through FFmpeg's image2 demuxer (frame 0 is the
    sequence's first frame, timestamps count frames at the described rate)."""
    sequence = read_description(path)
    options = {
        "pattern_type": "sequence",
        "start_number": str(sequence.first),
        "start_number_range": "1",
        "framerate": f"{sequence.rate.numerator}/{sequence.rate.denominator}",
    }
    try:
        return av.open(sequence.ffmpeg_pattern, mode="r", format="image2", options=options)
    except av.error.FFmpegError as error:
        raise CorruptMediaError(
            f"image sequence {sequence.folder / sequence.display_name} cannot be opened: {_reason(error)}"
        ) from None


@contextlib.contextmanager
def av_errors(path: Path, action: str) -> Iterator[None]:
    """Turn PyAV/FFmpeg exceptions raised inside the block into ``CorruptMediaError``."""
    try:
        yield
    except av.error.FFmpegError as error:
        raise CorruptMediaError(f"{shown_name(path)}: error while {action}: {_reason(error)}") from None


def _reason(error: av.error.FFmpegError) -> str:
    text = error.strerror or str(error)
    log_entry = getattr(error, "log", None)
    if log_entry and len(log_entry) > 1 and log_entry[1]:
        text = f"{text} ({log_entry[1][2].strip()})"
    return text


def is_attached_picture(stream: av.stream.Stream) -> bool:
    """True for a still image attached to the file (cover art, a thumbnail): a "video" stream of
    one picture with no timing, which is not the video."""
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def video_streams(container: av.container.InputContainer) -> list[av.video.stream.VideoStream]:
    """The container's video streams in file order, without attached pictures (cover art).

    Stream ``n`` of ``FrameReader`` and ``probe(...).video[n]`` both count in this list.
    """
    return [stream for stream in container.streams.video if not is_attached_picture(stream)]


def _stream_kind(stream: av.stream.Stream) -> str:
    kind = "cover art" if stream.type == "video" and is_attached_picture(stream) else stream.type
    return f"{kind} ({stream.codec_context.name})"


def require_video(path: Path, container: av.container.InputContainer) -> None:
    """Raise ``EmptyMediaError`` for a container with no streams, ``NotVideoError`` for one without
    video (an attached picture such as cover art is not video)."""
    if not container.streams:
        raise EmptyMediaError(f"{path} holds no streams (an empty container)")
    if not video_streams(container):
        kinds = ", ".join(_stream_kind(s) for s in container.streams)
        raise NotVideoError(f"{path} has no video stream; it holds: {kinds}")


def fraction_or_none(value: object) -> Fraction | None:
    """A PyAV rational (Fraction, int or None) as a Fraction; zero and missing become None."""
    if value is None:
        return None
    fraction = Fraction(value)
    return fraction if fraction != 0 else None


def fraction_text(value: Fraction | None) -> str | None:
    """A Fraction as "num/den" text for JSON, None stays None."""
    if value is None:
        return None
    return f"{value.numerator}/{value.denominator}"
