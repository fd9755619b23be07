"""What the learned speed estimator sees: short windows of small grey frames.

One definition for training and inference, so both feed the network the same thing:

- frames are read squashed to ``READ_PX`` x ``READ_PX`` (the decoder scales while converting, so
  1080p costs little more than 360p after decoding), turned grey,
- a window is ``WINDOW_FRAMES`` consecutive frames (of the clip, or of every n-th frame when the
  estimator re-speeds a slow clip), resized to ``INPUT_PX`` x ``INPUT_PX``, as float32 in [0, 1]
  shaped (batch, WINDOW_FRAMES, INPUT_PX, INPUT_PX). Training crops a random square of
  ``READ_PX`` before the resize (random rescale); inference uses the whole frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from engine.errors import InsufficientFramesError

READ_PX = 96
INPUT_PX = 64
WINDOW_FRAMES = 8


def to_small_grey(frame: np.ndarray) -> np.ndarray:
    """Any frame (grey or RGB/RGBA, uint8 or uint16, any size) as uint8 grey ``READ_PX`` square."""
    image = frame
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 3:
        image = cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2GRAY)
    if image.shape != (READ_PX, READ_PX):
        image = cv2.resize(image, (READ_PX, READ_PX), interpolation=cv2.INTER_AREA)
    return image


def window_input(frames: Sequence[np.ndarray]) -> np.ndarray:
    """``WINDOW_FRAMES`` small grey frames as the network's input, shape (1, T, INPUT_PX, INPUT_PX)."""
    if len(frames) != WINDOW_FRAMES:
        raise InsufficientFramesError(f"a window needs exactly {WINDOW_FRAMES} frames, {len(frames)} given")
    resized = [
        cv2.resize(to_small_grey(frame), (INPUT_PX, INPUT_PX), interpolation=cv2.INTER_AREA)
        for frame in frames
    ]
    return (np.stack(resized).astype(np.float32) / 255.0)[None]
