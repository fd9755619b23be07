"""Synthetic frame pairs with an exactly known in-between frame, for the interpolation tests,
and checks that the ground truth is what it claims.

A textured square slides over a static textured background. Positions are whole pixels, so the
true frame at any t whose displacement is whole is rendered exactly, with nothing resampled.
"""

from __future__ import annotations

import cv2
import numpy as np

SQUARE_PX = 64
START_XY = (60, 50)


def texture(height: int, width: int, seed: int, channels: int = 3) -> np.ndarray:
    """A smooth multi-scale random colour texture (uint8), the same for the same seed."""
    rng = np.random.default_rng(seed)
    total = np.zeros((height, width, channels), np.float32)
    for cell_px, amplitude in ((32, 0.5), (12, 0.3), (5, 0.2)):
        coarse = rng.random((max(2, height // cell_px), max(2, width // cell_px), channels), dtype=np.float32)
        fine = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        total += amplitude * fine.reshape(height, width, channels)
    return np.clip(total * 255.0, 0, 255).astype(np.uint8)


def square_scene(offset_xy: tuple[int, int], height: int = 160, width: int = 240) -> np.ndarray:
    """The background with the square's top-left corner at START_XY + offset_xy (RGB uint8)."""
    frame = texture(height, width, seed=1).copy()
    square = texture(SQUARE_PX, SQUARE_PX, seed=2)
    x = START_XY[0] + offset_xy[0]
    y = START_XY[1] + offset_xy[1]
    frame[y : y + SQUARE_PX, x : x + SQUARE_PX] = square
    return frame


def square_alpha(offset_xy: tuple[int, int], height: int = 160, width: int = 240) -> np.ndarray:
    """Alpha for ``square_scene``: opaque square, half-transparent background (uint8, h x w)."""
    alpha = np.full((height, width), 128, np.uint8)
    x = START_XY[0] + offset_xy[0]
    y = START_XY[1] + offset_xy[1]
    alpha[y : y + SQUARE_PX, x : x + SQUARE_PX] = 255
    return alpha


def find_square(frame: np.ndarray) -> tuple[int, int]:
    """Top-left corner of the square's texture in ``frame``, by template matching."""
    square = texture(SQUARE_PX, SQUARE_PX, seed=2)
    image = frame[..., :3]
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    scores = cv2.matchTemplate(image, square, cv2.TM_SQDIFF)
    _, _, location, _ = cv2.minMaxLoc(scores)
    return location[0] - START_XY[0], location[1] - START_XY[1]


def psnr_db(frame: np.ndarray, truth: np.ndarray) -> float:
    """PSNR over all channels, relative to the dtype's full range."""
    peak = float(np.iinfo(truth.dtype).max)
    mse = float(np.mean((frame.astype(np.float64) - truth.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def test_square_scene_ground_truth_is_found_where_it_was_drawn():
    for offset in ((0, 0), (8, 4), (16, 8), (3, 11)):
        assert find_square(square_scene(offset)) == offset


def test_psnr_of_identical_frames_is_infinite_and_drops_with_noise():
    frame = square_scene((0, 0))
    assert psnr_db(frame, frame) == float("inf")
    noisy = np.clip(frame.astype(np.int16) + 4, 0, 255).astype(np.uint8)
    assert 30.0 < psnr_db(noisy, frame) < 37.0
