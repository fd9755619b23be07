"""How a speed network reads held-out sources: fixed windows, whole frame, no jitter, as at inference.

``window_reads`` gives every window's read beside what it should read (``target_log2_speed``, by the
recipe version the network came from); ``validation_errors`` sums them up for ``train``'s
best-keeping and ``chronoscope train speed``'s before and after; ``bench/speed_gpu.py`` takes the
reads out of fold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np
import torch

from engine.errors import TrainingDataError
from engine.speed.detect import rate_offset_log2
from engine.speed.estimator import RATE_RELATIVE_RECIPE_VERSION
from engine.speed.windows import INPUT_PX, WINDOW_FRAMES
from engine.training.speed.data import PLAY_FPS, Source, Variant
from engine.training.speed.net import SpeedNet


def target_log2_speed(key: str, variant: Variant, version: int) -> float:
    """What a network of recipe ``version`` should read on ``variant`` for ``detect`` to report its
    true speed: detect adds ``rate_offset_log2`` of the clip's rate P to the reading. Version 2 gets
    the offset at every rate, so the target is the cached speed (as played at 30 fps); version 1
    gets it above 30 fps only, so a clip at 30 fps or below should read its speed at its own rate."""
    kind, _, number = key.partition("_")
    if kind == "render":
        return math.log2(variant.speed)
    nominal = Fraction(int(number)) if kind == "real" else Fraction(1, int(number))
    clip_rate = PLAY_FPS * nominal / variant.speed  # the cache holds nominal * 30 / P
    offset = rate_offset_log2(clip_rate, every_rate=version >= RATE_RELATIVE_RECIPE_VERSION)
    return math.log2(nominal) - offset


@dataclass(frozen=True)
class WindowRead:
    """What a network read on one fixed window of a held-out variant."""

    source: str
    key: str
    start: int
    log2_speed: float
    target_log2_speed: float
    synthetic_logit: float
    synthetic: bool


def window_reads(
    network: SpeedNet,
    sources: list[Source],
    device: torch.device,
    version: int = RATE_RELATIVE_RECIPE_VERSION,
    *,
    hop: int | None = None,
) -> list[WindowRead]:
    """The network's reads on fixed windows of every variant of ``sources`` (whole frame, no jitter,
    as at inference), with what a network of recipe ``version`` should read (``target_log2_speed``).
    Windows start every ``hop`` frames (default: about six windows a variant, never overlapping)."""
    window_frames = getattr(network, "window_frames", WINDOW_FRAMES)
    reads: list[WindowRead] = []
    network.eval()
    with torch.no_grad():
        for source in sources:
            for key, variant in source.variants.items():
                frames = variant.frames
                step = hop or max(window_frames, len(frames) // 6)
                starts = list(range(0, len(frames) - window_frames + 1, step))
                if not starts:
                    continue
                small = np.stack(
                    [
                        cv2.resize(frame, (INPUT_PX, INPUT_PX), interpolation=cv2.INTER_AREA)
                        for frame in frames
                    ]
                )
                windows = np.stack([small[begin : begin + window_frames] for begin in starts])
                predicted, logits = network(torch.from_numpy(windows.astype(np.float32) / 255.0).to(device))
                target = target_log2_speed(key, variant, version)
                for begin, value, logit in zip(
                    starts, predicted.cpu().tolist(), logits.cpu().tolist(), strict=True
                ):
                    reads.append(WindowRead(source.name, key, begin, value, target, logit, variant.synthetic))
    return reads


def validation_errors(
    network: SpeedNet,
    sources: list[Source],
    device: torch.device,
    version: int = RATE_RELATIVE_RECIPE_VERSION,
) -> dict[str, float]:
    """Error of log2 s on held-out sources, on fixed windows (``window_reads``), judged by what a
    network of recipe ``version`` should read (``target_log2_speed``).

    ``realtime_bias``: mean error of log2 s read on every frame of ordinary footage (0 is right);
    ``log2_error``: mean |log2 s read - log2 s known| over every stride of ordinary footage and
    every anchored high-rate variant; ``synthetic_accuracy``: share of fake slow-motion windows
    and captured windows classified right.
    """
    reads = window_reads(network, sources, device, version)
    if not reads:
        raise TrainingDataError("the validation sources give no window")
    captured = [r for r in reads if not r.synthetic]
    originals = [r.log2_speed - r.target_log2_speed for r in reads if r.key == "real_1"]
    return {
        "realtime_bias": float(np.mean(originals)) if originals else float("nan"),
        "log2_error": float(np.mean([abs(r.log2_speed - r.target_log2_speed) for r in captured]))
        if captured
        else float("nan"),
        "synthetic_accuracy": float(np.mean([r.synthetic == (r.synthetic_logit > 0) for r in reads])),
        "windows": float(len(reads)),
    }
