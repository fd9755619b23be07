"""Fake slow motion made the way editors make it: duplicated, blended or flow-interpolated frames.

These build the synthetic cases for training and evaluating the speed detector. ``factor`` is the
slow-down: 2 shows every captured frame over 2 output frames (speed 1/2 of the source), 4 over 4.

- ``duplicate``: each frame repeated ``factor`` times.
- ``blend``: ``factor - 1`` cross-fades between neighbours (weights ``i / factor``).
- ``interpolate``: ``factor - 1`` frames warped along DIS optical flow both ways and mixed, as a
  plain optical-flow retime does (what ffmpeg's minterpolate and editors' "optical flow" modes do).

Frames are grey (h, w) or RGB (h, w, 3) uint8; flow is computed on grey at the frame's size.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from engine.errors import SceneSpecError

SLOWMO_KINDS = ("duplicate", "blend", "interpolate")


def _grey(frame: np.ndarray) -> np.ndarray:
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def flow_interpolate(
    previous: np.ndarray, following: np.ndarray, t: float, flow_engine: cv2.DISOpticalFlow
) -> np.ndarray:
    """The frame at time ``t`` in (0, 1) between two frames: both warped along DIS flow, then mixed."""
    forward = flow_engine.calc(_grey(previous), _grey(following), None)
    backward = flow_engine.calc(_grey(following), _grey(previous), None)
    height, width = previous.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    from_previous = cv2.remap(
        previous,
        xs + t * backward[..., 0],
        ys + t * backward[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    from_following = cv2.remap(
        following,
        xs + (1 - t) * forward[..., 0],
        ys + (1 - t) * forward[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    mixed = (1 - t) * from_previous.astype(np.float32) + t * from_following.astype(np.float32)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def synthetic_slowmo(frames: Sequence[np.ndarray], factor: int, kind: str) -> list[np.ndarray]:
    """Slow ``frames`` down ``factor`` times by ``kind`` (duplicate, blend, interpolate)."""
    if kind not in SLOWMO_KINDS:
        raise SceneSpecError(f"slow-motion kind {kind!r} is not known; valid: {', '.join(SLOWMO_KINDS)}")
    if not 2 <= factor <= 16:
        raise SceneSpecError(f"slow-motion factor {factor} is outside [2, 16]")
    if len(frames) < 2:
        raise SceneSpecError(f"{len(frames)} frames given; slowing down needs at least 2")
    flow_engine = (
        cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) if kind == "interpolate" else None
    )
    result: list[np.ndarray] = []
    for previous, following in zip(frames[:-1], frames[1:], strict=True):
        result.append(previous)
        for step in range(1, factor):
            t = step / factor
            if kind == "duplicate":
                result.append(previous)
            elif kind == "blend":
                mixed = (1 - t) * previous.astype(np.float32) + t * following.astype(np.float32)
                result.append(np.clip(mixed + 0.5, 0, 255).astype(np.uint8))
            else:
                result.append(flow_interpolate(previous, following, t, flow_engine))
    result.append(frames[-1])
    return result
