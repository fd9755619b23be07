"""Still images in and out of the synthesis interface: what ``chronoscope interpolate`` reads and writes.

Reading uses OpenCV (``cv2.imread`` with ``IMREAD_UNCHANGED``), so PNG, TIFF, JPEG, BMP and WebP
keep their bit depth and alpha. OpenCV stores colour as BGR(A); the synthesis interface wants
RGB(A), so channels are swapped on the way in and back on the way out. A grey image is spread to
three equal channels for synthesis and written back as grey. 8-bit and 16-bit samples are kept as
they are (uint8, uint16); floating-point images (OpenEXR, float TIFF) are refused with a message
that says which depths work.

Writing goes through ``engine.fsutil.atomic_path``: the file appears complete or not at all. With
``replace=False`` (where the user did not ask to overwrite) it never replaces a file, not even one
that appeared at the name after the caller checked it was free: that file is kept and
``OutputExistsError`` names it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from engine.errors import (
    MediaNotFoundError,
    MediaWriteError,
    UnreadableImageError,
    UnsupportedOptionError,
)
from engine.fsutil import atomic_path

log = logging.getLogger(__name__)

EIGHT_BIT_ONLY_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".bmp", ".webp")
NO_ALPHA_SUFFIXES = (".jpg", ".jpeg", ".jpe")
_PRINTF_INDEX = re.compile(r"%(0?\d*)d")


@dataclass
class StillImage:
    """An image as the synthesis interface wants it, and how it was stored.

    ``pixels`` is (height, width, 3 or 4) RGB(A), uint8 or uint16. ``grey`` is true when the file
    held one channel (the three channels of ``pixels`` are then equal).
    """

    pixels: np.ndarray
    grey: bool
    path: Path

    @property
    def size_text(self) -> str:
        height, width = self.pixels.shape[:2]
        channels = ("grey" if self.grey else "RGB") + (" + alpha" if self.pixels.shape[2] == 4 else "")
        return f"{width}x{height} {channels} {self.pixels.dtype.itemsize * 8}-bit"


def read_image(path: Path) -> StillImage:
    """Read an image file as RGB(A) uint8 or uint16, turned upright as its EXIF orientation says
    (as image viewers show a phone's JPEG) where it has no alpha channel.

    Raises ``MediaNotFoundError`` (no such file) or ``UnreadableImageError`` (not decodable).
    """
    path = Path(path)
    if not path.is_file():
        raise MediaNotFoundError(f"image not found: {path}")
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise UnreadableImageError(
            f"cannot decode {path} as an image; readable: PNG, TIFF, JPEG, BMP, WebP (8 or 16 bit)"
        )
    if raw.dtype not in (np.uint8, np.uint16):
        raise UnreadableImageError(
            f"{path} holds {raw.dtype} samples; frames must be 8-bit or 16-bit integers (PNG, TIFF, JPEG)"
        )
    raw = _upright(path, raw)
    if raw.ndim == 2:
        return StillImage(cv2.cvtColor(raw, cv2.COLOR_GRAY2RGB), grey=True, path=path)
    channels = raw.shape[2]
    if channels == 1:
        return StillImage(cv2.cvtColor(raw[..., 0], cv2.COLOR_GRAY2RGB), grey=True, path=path)
    if channels == 2:
        grey = cv2.cvtColor(raw[..., 0], cv2.COLOR_GRAY2RGB)
        return StillImage(np.dstack([grey, raw[..., 1]]), grey=True, path=path)
    if channels == 3:
        return StillImage(cv2.cvtColor(raw, cv2.COLOR_BGR2RGB), grey=False, path=path)
    if channels == 4:
        return StillImage(cv2.cvtColor(raw, cv2.COLOR_BGRA2RGBA), grey=False, path=path)
    raise UnreadableImageError(f"{path} has {channels} channels; frames need 1 to 4 (grey, RGB, RGBA)")


def _upright(path: Path, raw: np.ndarray) -> np.ndarray:
    """``raw`` (read with ``IMREAD_UNCHANGED``, which ignores EXIF orientation) turned as the
    file's EXIF orientation says: OpenCV applies it when reading any depth and colour, which keeps
    grey and RGB at their bit depth but not alpha, so an image with alpha stays as stored."""
    if raw.ndim == 3 and raw.shape[2] not in (1, 3):
        return raw
    oriented = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if oriented is None or oriented.dtype != raw.dtype or oriented.size != raw.size:
        return raw
    return oriented.reshape(oriented.shape[:2] + raw.shape[2:])


def check_writable(path: Path, dtype: np.dtype, *, alpha: bool = False) -> None:
    """Refuse up front an output that OpenCV cannot write, or one that would lose bit depth or
    (``alpha``: the frames have an alpha channel) alpha."""
    path = Path(path)
    if not cv2.haveImageWriter(str(path)):
        raise UnsupportedOptionError(
            f"cannot write images named {path.name!r}: unknown extension {path.suffix or '(none)'}; "
            "use .png, .tif, .tiff or .jpg"
        )
    if np.dtype(dtype) == np.uint16 and path.suffix.lower() in EIGHT_BIT_ONLY_SUFFIXES:
        raise UnsupportedOptionError(
            f"{path.name}: {path.suffix} holds 8-bit samples only and the frames are 16-bit; use .png or .tif"
        )
    if alpha and path.suffix.lower() in NO_ALPHA_SUFFIXES:
        raise UnsupportedOptionError(
            f"{path.name}: {path.suffix} holds no alpha channel and the frames have one; use .png or .tif"
        )


def to_stored(pixels: np.ndarray, grey: bool) -> np.ndarray:
    """RGB(A) pixels back to what OpenCV writes: BGR(A), or one channel for a grey image.

    Grey with alpha is written as BGRA (OpenCV writes no two-channel images).
    """
    if grey and pixels.shape[2] == 3:
        return pixels[..., 0].copy()
    if pixels.shape[2] == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA)
    return cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)


def write_image(path: Path, pixels: np.ndarray, *, grey: bool = False, replace: bool = True) -> Path:
    """Write RGB(A) ``pixels`` to ``path`` atomically; raises ``MediaWriteError`` when OpenCV fails.
    ``replace=False`` (no ``--overwrite``): a file at ``path``, even one that appeared a moment
    ago, is kept and ``OutputExistsError`` names it."""
    path = Path(path)
    check_writable(path, pixels.dtype)
    stored = to_stored(pixels, grey)
    with atomic_path(path, replace=replace) as temporary:
        try:
            written = cv2.imwrite(str(temporary), stored)
        except cv2.error as error:
            raise MediaWriteError(f"could not write {path}: {error}") from None
        if not written:
            raise MediaWriteError(f"could not write {path} (OpenCV refused the format or the folder)")
    return path


def write_risk_map(path: Path, risk: np.ndarray, *, replace: bool = True) -> Path:
    """Write a risk map in [0, 1] as a grey image: 16-bit for PNG/TIFF, 8-bit otherwise;
    ``replace`` as ``write_image``'s."""
    path = Path(path)
    sixteen = path.suffix.lower() not in EIGHT_BIT_ONLY_SUFFIXES
    peak = 65535.0 if sixteen else 255.0
    levels = np.clip(np.rint(np.asarray(risk, np.float32) * peak), 0, peak)
    return write_image(
        path,
        levels.astype(np.uint16 if sixteen else np.uint8)[..., None].repeat(3, 2),
        grey=True,
        replace=replace,
    )


def parse_time(text: str) -> Fraction:
    """A time t as given on a command line: '0.5', '1/3', '0.25'. Kept exact as a Fraction."""
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise UnsupportedOptionError(
            f"t = {text!r} is not a number; give a decimal (0.5) or a fraction (1/3)"
        ) from None
    if not 0 < value < 1:
        raise UnsupportedOptionError(f"t = {text} is outside (0, 1); in-between frames need 0 < t < 1")
    if time_label(value) in ("0.0", "1.0"):
        raise UnsupportedOptionError(
            f"t = {text} is within 0.0000005 of {time_label(value)[0]}: it would be named and reported as "
            f"t={time_label(value)}; give a t from 0.000001 to 0.999999"
        )
    return value


def time_label(t: Fraction) -> str:
    """t as it goes into a file name: up to 6 decimals, no trailing zeros ('0.5', '0.333333')."""
    text = f"{float(t):.6f}".rstrip("0")
    return text if not text.endswith(".") else text + "0"


def has_pattern(template: str) -> bool:
    """True when an output name holds ``{t}``, ``{index}`` or a printf ``%d`` / ``%04d``."""
    return "{t}" in template or "{index}" in template or bool(_PRINTF_INDEX.search(template))


def expand_pattern(template: str, t: Fraction, index: int) -> Path:
    """The output path for the ``index``-th (from 1) time ``t``: ``{t}``, ``{index}`` and ``%d`` filled in."""
    text = template.replace("{t}", time_label(t)).replace("{index}", str(index))
    text = _PRINTF_INDEX.sub(lambda match: f"%{match.group(1)}d" % index, text)
    return Path(text)
