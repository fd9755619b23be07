"""16-bit RGB on one scale: white at 65535, whatever the video it came from or goes to.

FFmpeg's swscale gives 16-bit RGB on scales of its own: white of 10-bit limited-range video
(Y' 940) comes out at 65283, of 8-bit video at 65021, of 10-bit grey at 65472, while an RGB
source (a DPX or 16-bit PNG plate) has white at 65535; and it writes 16-bit RGB back on its scale
(65535 became Y' 943, above white). A 10-bit DPX plate written as 10-bit video was 1.7 codes
bright on average (3.4 at white) and 10-bit video written as 16-bit PNG 0.4 % dark.

So the reader multiplies what swscale gives from Y'CbCr (and grey) video by a gain that puts
white at 65535 (``read_gain``), and the writer multiplies 16-bit RGB by the gain that puts 65535
on the target's white (``write_gain``). Each gain is measured, not assumed: a white frame is
converted the way frames are (through the source's own pixel format and range, or to the
target's), once per format.
"""

from __future__ import annotations

import functools

import av
import numpy as np

FULL_SCALE = 65535
LIMITED_WHITE_8BIT = 235
LIMITED_BLACK_8BIT = 16
MPEG_RANGE = 1
JPEG_RANGE = 2
_CALIBRATION_SIZE = 4  # even, so every chroma subsampling has whole samples
_WRITE_CALIBRATION_FORMAT = "yuv444p16le"


def _planar_frame(pixel_format: str, values: list[int]) -> av.VideoFrame:
    """A small frame of a planar 16-bit format with each plane at one value."""
    frame = av.VideoFrame(_CALIBRATION_SIZE, _CALIBRATION_SIZE, pixel_format)
    for plane, value in zip(frame.planes, values, strict=True):
        samples = plane.line_size // 2 * plane.height
        plane.update(np.full(samples, value, np.uint16).tobytes())
    return frame


@functools.lru_cache(maxsize=64)
def read_gain(source_format: str, color_range: int, output_format: str) -> tuple[float, ...] | None:
    """Per-channel gains that put white of video in ``source_format`` (FFmpeg's name, with
    ``color_range`` 2 full or else limited) at 65535 once swscale has converted it to
    ``output_format`` (rgb48le or rgba64le); None where swscale already does (RGB sources) or the
    format cannot be measured."""
    try:
        source = av.VideoFormat(source_format)
    except (ValueError, av.error.FFmpegError):
        return None
    if source.is_rgb:
        return None
    colour = [c for c in source.components if not c.is_alpha]
    has_alpha = any(c.is_alpha for c in source.components)
    # grey formats are full range, as are the old "J" formats (yuvj420p: JPEG-range Y'CbCr)
    full = color_range == JPEG_RANGE or len(colour) < 3 or source_format.startswith("yuvj")
    white = FULL_SCALE if full else LIMITED_WHITE_8BIT << 8
    if len(colour) < 3:
        canonical, values = ("ya16le", [white, FULL_SCALE]) if has_alpha else ("gray16le", [white])
    else:
        canonical = "yuva444p16le" if has_alpha else "yuv444p16le"
        values = [white, 1 << 15, 1 << 15] + ([FULL_SCALE] if has_alpha else [])
    range_name = "JPEG" if full else "MPEG"
    try:
        if canonical == "ya16le":  # packed: written as one plane of (grey, alpha) pairs
            frame = av.VideoFrame(_CALIBRATION_SIZE, _CALIBRATION_SIZE, canonical)
            plane = frame.planes[0]
            pairs = np.tile(np.asarray(values, np.uint16), plane.line_size // 4 * plane.height)
            plane.update(pairs.tobytes())
        else:
            frame = _planar_frame(canonical, values)
        frame.color_range = JPEG_RANGE if full else MPEG_RANGE
        in_source = frame.reformat(
            format=source_format, src_color_range=range_name, dst_color_range=range_name
        )
        in_source.color_range = JPEG_RANGE if full else MPEG_RANGE
        converted = in_source.reformat(format=output_format).to_ndarray()
    except (ValueError, av.error.FFmpegError):
        return None
    measured = converted[0, 0].astype(np.float64)
    if np.any(measured <= 0):
        return None
    gains = tuple(float(FULL_SCALE / value) for value in measured)
    return None if all(abs(gain - 1) < 1e-5 for gain in gains) else gains


@functools.lru_cache(maxsize=32)
def write_gain(target_format: str) -> float | None:
    """The gain that puts 16-bit RGB white (65535) on white of limited-range Y'CbCr in
    ``target_format`` when swscale converts it as the writer does (BT.709); None for RGB targets.
    Measured on a 16-bit target (Y' to 1/65535; swscale's scale is the same for 8 and 10 bits)."""
    try:
        target = av.VideoFormat(target_format)
    except (ValueError, av.error.FFmpegError):
        return None
    if target.is_rgb or not target_format.startswith("yuv"):
        return None
    image = np.full((_CALIBRATION_SIZE, _CALIBRATION_SIZE, 3), FULL_SCALE, np.uint16)
    converted = av.VideoFrame.from_ndarray(image, format="rgb48le").reformat(
        format=_WRITE_CALIBRATION_FORMAT, dst_colorspace="ITU709"
    )
    luma = float(np.frombuffer(bytes(converted.planes[0]), np.uint16)[0])
    black, white = LIMITED_BLACK_8BIT << 8, LIMITED_WHITE_8BIT << 8
    if luma <= black:
        return None
    gain = (white - black) / (luma - black)
    return None if abs(gain - 1) < 1e-5 else gain


def apply_gains(image: np.ndarray, gains: tuple[float, ...] | float) -> np.ndarray:
    """``image`` (uint16, channels last) times ``gains`` (one per channel, or one for all colour
    channels, alpha left alone), rounded and kept within 0..65535."""
    scaled = image.astype(np.float32)
    if isinstance(gains, tuple):
        scaled *= np.asarray(gains[: image.shape[2]], np.float32)
    else:
        scaled[..., :3] *= gains
    np.rint(scaled, out=scaled)
    return np.clip(scaled, 0, FULL_SCALE).astype(np.uint16)
