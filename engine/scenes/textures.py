"""Textures for procedural scenes: photographs, video frames, and built-in patterns that need no data.

Every texture is a float32 RGB array in 8-bit levels (0..255). Built-in textures are drawn from a
``numpy.random.Generator`` so that a scene's seed fixes them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from engine.errors import CorruptMediaError, MediaNotFoundError, NotVideoError, SceneSpecError
from engine.scenes.spec import TextureSpec

log = logging.getLogger(__name__)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(30, 225, size=3).astype(np.float32)


def noise_texture(width: int, height: int, scale_px: float, rng: np.random.Generator) -> np.ndarray:
    """Coloured multi-octave value noise: texture at many scales, so optical flow has something to hold."""
    result = np.zeros((height, width, 3), np.float32)
    amplitude, total = 1.0, 0.0
    feature = max(scale_px, 1.0)
    while feature >= 1.0:
        cells_x = max(2, int(round(width / feature)) + 1)
        cells_y = max(2, int(round(height / feature)) + 1)
        layer = rng.uniform(-1.0, 1.0, size=(cells_y, cells_x, 3)).astype(np.float32)
        result += amplitude * cv2.resize(layer, (width, height), interpolation=cv2.INTER_CUBIC)
        total += amplitude
        amplitude *= 0.55
        feature /= 2.0
    base = _random_colour(rng)
    return np.clip(base + 70.0 * result / total, 0, 255).astype(np.float32)


def checker_texture(width: int, height: int, scale_px: float, rng: np.random.Generator) -> np.ndarray:
    """Two-colour checkerboard with squares of ``scale_px`` and a little grain."""
    ys, xs = np.mgrid[0:height, 0:width]
    cells = ((xs // max(int(scale_px), 1)) + (ys // max(int(scale_px), 1))) % 2
    first, second = _random_colour(rng), _random_colour(rng)
    texture = np.where(cells[..., None] == 0, first, second).astype(np.float32)
    texture += rng.normal(0, 4.0, size=texture.shape).astype(np.float32)
    return np.clip(texture, 0, 255)


def gradient_texture(width: int, height: int, scale_px: float, rng: np.random.Generator) -> np.ndarray:
    """A linear colour ramp in a random direction, with fine noise so it is not flat."""
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (np.cos(angle) * xs + np.sin(angle) * ys) / max(width, height)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    first, second = _random_colour(rng), _random_colour(rng)
    texture = first + ramp[..., None] * (second - first)
    fine = noise_texture(width, height, max(scale_px / 2, 1.0), rng) - 128.0
    return np.clip(texture + 0.4 * fine, 0, 255).astype(np.float32)


def _load_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise NotVideoError(f"texture image {path} cannot be read (not an image OpenCV understands)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32)


def _load_video_frame(path: Path, frame_index: int) -> np.ndarray:
    import av  # only video textures need PyAV; procedural scenes render without the media stack

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise NotVideoError(f"texture video {path} has no video stream")
            last = None
            for index, frame in enumerate(container.decode(video=0)):
                last = frame
                if index >= frame_index:
                    break
    except av.error.FFmpegError as error:
        raise CorruptMediaError(f"texture video {path} cannot be decoded: {error}") from error
    if last is None:
        raise NotVideoError(f"texture video {path} has no frames")
    return last.to_ndarray(format="rgb24").astype(np.float32)


def _fit(image: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Scale a photograph to cover width x height (keeping aspect), then take a random crop."""
    source_h, source_w = image.shape[:2]
    factor = max(width / source_w, height / source_h)
    if factor > 1.0 or factor < 0.5:
        scaled_w = max(width, int(np.ceil(source_w * factor)))
        scaled_h = max(height, int(np.ceil(source_h * factor)))
        interpolation = cv2.INTER_AREA if factor < 1.0 else cv2.INTER_CUBIC
        image = cv2.resize(image, (scaled_w, scaled_h), interpolation=interpolation)
    x0 = int(rng.integers(0, image.shape[1] - width + 1))
    y0 = int(rng.integers(0, image.shape[0] - height + 1))
    return np.ascontiguousarray(image[y0 : y0 + height, x0 : x0 + width])


def make_texture(spec: TextureSpec, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Return a float32 RGB texture of ``height`` x ``width`` described by ``spec``."""
    if spec.kind == "noise":
        return noise_texture(width, height, spec.scale_px, rng)
    if spec.kind == "checker":
        return checker_texture(width, height, spec.scale_px, rng)
    if spec.kind == "gradient":
        return gradient_texture(width, height, spec.scale_px, rng)
    path = Path(spec.path)
    if not path.is_file():
        raise MediaNotFoundError(f"texture file not found: {path}")
    if spec.kind == "image":
        image = _load_image(path)
    elif spec.kind == "video":
        image = _load_video_frame(path, spec.frame_index)
    else:
        raise SceneSpecError(f"texture kind {spec.kind!r} is not known")
    return _fit(image, width, height, rng)
