"""What a speed-training run may vary (its ``Recipe``), and the per-window augmentation it uses.

The default recipe is the shipped network's. ``bench/speed_gpu.py`` compares recipes by
cross-validation (the model card's Session 7). A checkpoint records its recipe (``recipe_of``), and
so does an exported model's manifest (``converter.recipe``).

Augmentation, the controls against shortcuts: ``crop_window`` takes a random square crop of
``min_crop_px`` to ``READ_PX`` (the random rescale), a random horizontal flip and a random time
reversal; ``jitter`` gives each window a contrast 0.7-1.3 and brightness +-0.1 and each frame a
gain +-3 % and offset +-1.5 %, in one vectorised pass over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import cv2
import numpy as np

from engine.errors import TrainingDataError, UnsupportedOptionError
from engine.models.manifest import read_manifest
from engine.speed.windows import INPUT_PX, READ_PX, WINDOW_FRAMES
from engine.training.speed.net import SpeedNet

BATCH_PAIRS = 16
MIN_CROP_PX = 72
RENDER_SHARE = 0.35


@dataclass(frozen=True)
class Recipe:
    """What a training run may vary (``bench/speed_gpu.py`` compares them by cross-validation).

    The defaults are the shipped network's: windows of ``WINDOW_FRAMES`` frames, a network 24
    channels wide that sees the frames and their differences, random crops of ``MIN_CROP_PX`` to
    ``READ_PX``, 16 window pairs a step, and ``RENDER_SHARE`` of the pairs from renders.
    """

    window_frames: int = WINDOW_FRAMES
    network_width: int = 24
    min_crop_px: int = MIN_CROP_PX
    batch_pairs: int = BATCH_PAIRS
    frames_input: bool = True
    render_share: float = RENDER_SHARE

    def validate(self) -> None:
        if not 2 <= self.window_frames <= 64:
            raise UnsupportedOptionError(f"window of {self.window_frames} frames; use 2 to 64")
        if not 8 <= self.network_width <= 256:
            raise UnsupportedOptionError(f"network width {self.network_width}; use 8 to 256")
        if not INPUT_PX // 2 <= self.min_crop_px <= READ_PX:
            raise UnsupportedOptionError(
                f"smallest crop {self.min_crop_px} px; use {INPUT_PX // 2} to {READ_PX}"
            )
        if self.batch_pairs < 1:
            raise UnsupportedOptionError(f"{self.batch_pairs} window pairs a step; use at least 1")
        if not 0.0 <= self.render_share <= 1.0:
            raise UnsupportedOptionError(f"render share {self.render_share}; use 0 to 1")

    def network(self) -> SpeedNet:
        return SpeedNet(
            window_frames=self.window_frames, width=self.network_width, frames_input=self.frames_input
        )


def recipe_from(settings: dict, where: str) -> Recipe:
    """A recipe from its recorded settings (a checkpoint's ``recipe``, a manifest's
    ``converter.recipe``); none recorded is the default recipe. Unknown settings are refused."""
    unknown = sorted(set(settings) - {f.name for f in fields(Recipe)})
    if unknown:
        raise TrainingDataError(
            f"{where} records recipe settings this version does not know ({', '.join(unknown)}); "
            "it was made by a newer Chronoscope"
        )
    return Recipe(**settings)


def recipe_in_manifest(manifest_path: Path) -> Recipe:
    """The recipe an exported model's manifest records (``converter.recipe``); none is the default."""
    return recipe_from(read_manifest(manifest_path).converter.get("recipe", {}), str(manifest_path))


def recipe_of(state: dict, where: str = "the checkpoint") -> Recipe:
    """The recipe a checkpoint was trained with; checkpoints that record none used the defaults."""
    return recipe_from(state.get("recipe", {}), where)


def recipe_differences(first: Recipe, second: Recipe) -> list[str]:
    """The settings two recipes differ in, as ``name: first -> second``."""
    return [
        f"{f.name}: {getattr(first, f.name)} -> {getattr(second, f.name)}"
        for f in fields(Recipe)
        if getattr(first, f.name) != getattr(second, f.name)
    ]


def crop_window(window: np.ndarray, rng: np.random.Generator, min_crop_px: int = MIN_CROP_PX) -> np.ndarray:
    """(T, READ_PX, READ_PX) uint8 -> (T, INPUT_PX, INPUT_PX) uint8: a random square crop of
    ``min_crop_px`` to ``READ_PX`` (the random rescale), random horizontal flip and time reversal."""
    crop = int(rng.integers(min_crop_px, READ_PX + 1))
    y, x = (int(rng.integers(0, READ_PX - crop + 1)) for _ in range(2))
    out = np.stack(
        [
            cv2.resize(frame[y : y + crop, x : x + crop], (INPUT_PX, INPUT_PX), interpolation=cv2.INTER_AREA)
            for frame in window
        ]
    )
    if rng.random() < 0.5:
        out = out[:, :, ::-1]
    if rng.random() < 0.5:
        out = out[::-1]
    return out


def jitter(windows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, T, H, W) uint8 -> float32 in [0, 1]: per-window contrast 0.7-1.3 and brightness +-0.1,
    per-frame gain +-3 % and offset +-1.5 % (one vectorised pass over the batch)."""
    count, frames = windows.shape[:2]
    out = windows.astype(np.float32) / 255.0
    contrast = rng.uniform(0.7, 1.3, size=(count, 1, 1, 1)).astype(np.float32)
    brightness = rng.uniform(-0.1, 0.1, size=(count, 1, 1, 1)).astype(np.float32)
    gains = rng.uniform(0.97, 1.03, size=(count, frames, 1, 1)).astype(np.float32)
    offsets = rng.uniform(-0.015, 0.015, size=(count, frames, 1, 1)).astype(np.float32)
    out = (out - 0.5) * contrast + 0.5 + brightness
    return np.clip(out * gains + offsets, 0.0, 1.0, out=out)
