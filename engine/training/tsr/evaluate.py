"""Before-and-after measurement: the torch network on held-out frames with ground truth.

Sets (each item is two frames, the true frame between them and its t):
- ``renders``: engine.scenes renders at 240 fps with seeds 0, 1, ... (training renders use seeds
  from ``data.TRAIN_RENDER_SEED_BASE``, so these are never trained on): pairs 8 frames apart,
  truths at t = 1/4, 1/2, 3/4.
- ``highspeed/NAME``: real high-speed camera sequences (a folder of image sequences, such as
  shared/data/highspeed): pairs ``REAL_GAP_FRAMES`` apart, every t = j / gap.
- ``middlebury``: the Middlebury "other" triplets (input/NAME/frame10.png, frame11.png and
  gt/NAME/frame10i11.png), t = 1/2, full resolution.
- ``dataset-held-out``: the dataset's held-out sources, pairs ``REAL_GAP_FRAMES`` apart.

A midpoint-only network (HDv3) is measured on the t = 1/2 items only. Frames are zero-padded at
the right and bottom to the network's multiple (as the runtime does) and cropped back; the
prediction is rounded to 8 bits before it is scored, as a written frame would be.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.training.tsr.data import LoadedClip, read_image_sequence, render_clips

log = logging.getLogger(__name__)

Metric = Callable[[np.ndarray, np.ndarray], float]
RENDER_GAP_FRAMES = 8
REAL_GAP_FRAMES = 4
MAX_PAIRS_PER_CLIP = 3
EVAL_MAX_SIDE_PX = 384


def psnr_db(frame: np.ndarray, truth: np.ndarray) -> float:
    """PSNR in dB over all RGB values of two uint8 frames."""
    mse = float(np.mean((frame.astype(np.float64) - truth.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


DEFAULT_METRICS: Mapping[str, Metric] = {"psnr_db": psnr_db}


@dataclass(frozen=True)
class EvalItem:
    img0: np.ndarray
    img1: np.ndarray
    truth: np.ndarray
    t: Fraction


@dataclass
class EvalSet:
    name: str
    items: list[EvalItem] = field(default_factory=list)


def pairs_from_clip(
    frames: np.ndarray, gap_frames: int, max_pairs: int = MAX_PAIRS_PER_CLIP, step_frames: int = 1
) -> list[EvalItem]:
    """Up to ``max_pairs`` pairs ``gap_frames`` apart, spread over the clip, with every
    ``step_frames``-th truth between them (t = step / gap, 2 step / gap, ...)."""
    starts = list(range(0, len(frames) - gap_frames, gap_frames))
    if len(starts) > max_pairs:
        starts = (
            [starts[round(i * (len(starts) - 1) / (max_pairs - 1))] for i in range(max_pairs)]
            if max_pairs > 1
            else starts[:1]
        )
    return [
        EvalItem(
            frames[start], frames[start + gap_frames], frames[start + offset], Fraction(offset, gap_frames)
        )
        for start in starts
        for offset in range(step_frames, gap_frames, step_frames)
    ]


def render_set(
    count: int,
    cache_dir: Path | None,
    *,
    width: int = 320,
    height: int = 240,
    texture_paths: tuple[Path, ...] = (),
) -> EvalSet:
    """Held-out renders, seeds 0 .. count - 1."""
    clips = render_clips(
        range(count),
        cache_dir,
        width=width,
        height=height,
        frames=2 * RENDER_GAP_FRAMES + 1,
        texture_paths=texture_paths,
    )
    items = [
        item for clip in clips for item in pairs_from_clip(clip.frames, RENDER_GAP_FRAMES, step_frames=2)
    ]
    return EvalSet("renders", items)


def highspeed_sets(root: Path) -> list[EvalSet]:
    """One set per image-sequence folder under ``root``; scaled so the longer side is at most 384 px."""
    sets = []
    for folder in sorted(path for path in Path(root).iterdir() if path.is_dir()):
        frames = read_image_sequence(folder)
        if len(frames) <= REAL_GAP_FRAMES:
            log.warning(
                "high-speed sequence %s has %d frames; need more than %d",
                folder,
                len(frames),
                REAL_GAP_FRAMES,
            )
            continue
        stack = np.stack([_limit_side(frame) for frame in frames])
        sets.append(EvalSet(f"highspeed/{folder.name}", pairs_from_clip(stack, REAL_GAP_FRAMES)))
    return sets


def middlebury_set(root: Path) -> EvalSet:
    """The triplets with ground truth under ``root`` (input/ and gt/), t = 1/2."""
    root = Path(root)
    items = []
    for truth_folder in sorted(path for path in (root / "gt").iterdir() if path.is_dir()):
        name = truth_folder.name
        images = [
            _read_rgb(root / "input" / name / "frame10.png"),
            _read_rgb(root / "input" / name / "frame11.png"),
            _read_rgb(truth_folder / "frame10i11.png"),
        ]
        items.append(EvalItem(images[0], images[1], images[2], Fraction(1, 2)))
    return EvalSet("middlebury", items)


def clips_set(name: str, clips: Sequence[LoadedClip]) -> EvalSet:
    return EvalSet(name, [item for clip in clips for item in pairs_from_clip(clip.frames, REAL_GAP_FRAMES)])


def _read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _limit_side(frame: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    scale = EVAL_MAX_SIDE_PX / max(height, width)
    if scale >= 1.0:
        return frame
    return cv2.resize(frame, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)


def predict(
    network: torch.nn.Module, item: EvalItem, *, pad_multiple: int, takes_timestep: bool, device: torch.device
) -> np.ndarray:
    """The network's frame for ``item`` in fp32, as uint8 RGB of the input's size."""
    height, width = item.img0.shape[:2]
    padded_h = -(-height // pad_multiple) * pad_multiple
    padded_w = -(-width // pad_multiple) * pad_multiple

    def tensor(image: np.ndarray) -> torch.Tensor:
        chw = np.zeros((1, 3, padded_h, padded_w), np.float32)
        chw[0, :, :height, :width] = image.transpose(2, 0, 1).astype(np.float32) / 255.0
        return torch.from_numpy(chw).to(device)

    with torch.no_grad():
        if takes_timestep:
            timestep = torch.full((1, 1, 1, 1), float(item.t), device=device)
            output = network(tensor(item.img0), tensor(item.img1), timestep)
        else:
            output = network(tensor(item.img0), tensor(item.img1))
    frame = output.frame[0, :, :height, :width].float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)
    return np.rint(frame * 255.0).astype(np.uint8)


def evaluate(
    network: torch.nn.Module,
    sets: Sequence[EvalSet],
    *,
    pad_multiple: int,
    takes_timestep: bool,
    device: torch.device,
    metrics: Mapping[str, Metric] = DEFAULT_METRICS,
) -> dict[str, dict[str, float]]:
    """Mean of each metric per set (and the item count), for the t values the network can make."""
    was_training = network.training
    network.eval()
    results: dict[str, dict[str, float]] = {}
    try:
        for eval_set in sets:
            items = [item for item in eval_set.items if takes_timestep or item.t == Fraction(1, 2)]
            if not items:
                continue
            scores: dict[str, list[float]] = {name: [] for name in metrics}
            for item in items:
                frame = predict(
                    network, item, pad_multiple=pad_multiple, takes_timestep=takes_timestep, device=device
                )
                for name, metric in metrics.items():
                    scores[name].append(float(metric(frame, item.truth)))
            results[eval_set.name] = {name: float(np.mean(values)) for name, values in scores.items()}
            results[eval_set.name]["items"] = len(items)
            log.info("measured %s: %d items, %s", eval_set.name, len(items), results[eval_set.name])
    finally:
        network.train(was_training)
    return results
