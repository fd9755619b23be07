"""Compression for rendered scenes: write H.264 files, or round-trip frames through H.264 in memory.

``crf`` is x264's constant rate factor: 0 is lossless, 18 visually clean, 23 the default, 35 and
above visibly blocky. Everything goes through PyAV; the ffmpeg command is not needed.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from engine.errors import MediaWriteError, SceneSpecError
from engine.fsutil import atomic_path

log = logging.getLogger(__name__)

MIN_CRF, MAX_CRF = 0, 51


def _check(crf: int, fps: Fraction) -> Fraction:
    if not MIN_CRF <= crf <= MAX_CRF:
        raise SceneSpecError(f"crf {crf} is outside [{MIN_CRF}, {MAX_CRF}] (18 clean, 23 default, 35 rough)")
    rate = Fraction(fps).limit_denominator(1001)
    if rate <= 0:
        raise SceneSpecError(f"frame rate {fps} is not positive")
    return rate


def _encode_into(
    container, frames: Iterable[np.ndarray], rate: Fraction, crf: int, metadata: dict[str, str] | None
) -> int:
    stream = None
    count = 0
    for frame in frames:
        if stream is None:
            height, width = frame.shape[:2]
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": str(crf), "preset": "veryfast"}
            for key, value in (metadata or {}).items():
                container.metadata[key] = value
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in stream.encode(video_frame):
            container.mux(packet)
        count += 1
    if stream is None:
        raise SceneSpecError("no frames to encode")
    for packet in stream.encode():
        container.mux(packet)
    return count


def write_video(
    frames: Iterable[np.ndarray],
    destination: Path,
    fps: Fraction | int,
    *,
    crf: int = 18,
    metadata: dict[str, str] | None = None,
) -> int:
    """Encode uint8 RGB frames to an H.264 MP4/MOV/MKV at ``fps``; return the frame count.

    ``metadata`` becomes container tags (in MP4/MOV as ``mdta`` keys, the way Android writes
    ``com.android.capture.fps``). Written through a temporary name: nothing partial is left.
    """
    rate = _check(crf, Fraction(fps))
    destination = Path(destination)
    options = (
        {"movflags": "use_metadata_tags"} if destination.suffix.lower() in (".mp4", ".mov", ".m4v") else {}
    )
    try:
        with atomic_path(destination) as temporary:
            with av.open(str(temporary), "w", options=options) as container:
                return _encode_into(container, frames, rate, crf, metadata)
    except av.error.FFmpegError as error:
        raise MediaWriteError(f"could not write {destination}: {error}") from error


def h264_roundtrip(
    frames: Iterable[np.ndarray], fps: Fraction | int = 30, *, crf: int = 23
) -> list[np.ndarray]:
    """Encode frames with H.264 at ``crf`` in memory and decode them again (compression artefacts)."""
    rate = _check(crf, Fraction(fps))
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        _encode_into(container, frames, rate, crf, None)
    buffer.seek(0)
    with av.open(buffer, "r", format="mp4") as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
