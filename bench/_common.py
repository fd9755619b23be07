"""Code the frame-synthesis benchmarks share: metrics, test data, baselines, machine facts.

- ``psnr_db`` over RGB and ``ssim`` (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5,
  K1 = 0.01, K2 = 0.03, per RGB channel, averaged over channels and valid windows), uint8 frames.
- ``spearman``: rank correlation with tied ranks averaged (no SciPy needed).
- ``load_triplets``: the Middlebury "other" triplets (frame10, frame11, true middle frame10i11).
- ``procedural_sets``: high-rate renders of engine.scenes (Middlebury photographs as textures),
  and ``clip_frames``: real clips, for subsampling with ground truth at every dropped frame.
- ``naive_dis`` and ``minterpolate_frames``: the two classical baselines (DIS warp both ways;
  ffmpeg's minterpolate with its defaults, mi_mode=mci).
- ``machine_facts``: platform, CPU count, load average, library versions, for the JSON.
"""

from __future__ import annotations

import logging
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from engine.errors import ChronoscopeError, MediaNotFoundError  # noqa: E402
from engine.fsutil import atomic_path  # noqa: E402

log = logging.getLogger("bench.common")

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
MIDDLEBURY = SHARED_DATA / "triplets" / "middlebury-other"
CLIPS = SHARED_DATA / "clips"


def psnr_db(frame: np.ndarray, truth: np.ndarray) -> float:
    """PSNR over all RGB values of uint8 frames."""
    mse = mse_levels(frame, truth)
    return float("inf") if mse == 0 else 10.0 * float(np.log10(255.0**2 / mse))


def mse_levels(frame: np.ndarray, truth: np.ndarray) -> float:
    """Mean squared error in 8-bit levels over all values."""
    return float(np.mean((frame.astype(np.float64) - truth.astype(np.float64)) ** 2))


def ssim(frame: np.ndarray, truth: np.ndarray) -> float:
    """Mean SSIM over RGB channels: Gaussian 11x11 window, sigma 1.5, valid windows only."""
    c1 = (0.01 * 255.0) ** 2
    c2 = (0.03 * 255.0) ** 2
    kernel = cv2.getGaussianKernel(11, 1.5)
    window = kernel @ kernel.T

    def filtered(image: np.ndarray) -> np.ndarray:
        return cv2.filter2D(image, -1, window, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]

    values = []
    for channel in range(3):
        x = frame[..., channel].astype(np.float64)
        y = truth[..., channel].astype(np.float64)
        mu_x = filtered(x)
        mu_y = filtered(y)
        var_x = filtered(x * x) - mu_x**2
        var_y = filtered(y * y) - mu_y**2
        cov = filtered(x * y) - mu_x * mu_y
        numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
        denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
        values.append(float(np.mean(numerator / denominator)))
    return float(np.mean(values))


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), np.float64)
    ranks[order] = np.arange(len(values), dtype=np.float64)
    for value in np.unique(values):
        tied = values == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(first: list[float], second: list[float]) -> float:
    """Spearman rank correlation (ties get their mean rank); NaN when either side is constant."""
    a = np.asarray(first, np.float64)
    b = np.asarray(second, np.float64)
    if len(a) != len(b):
        raise ValueError(f"spearman needs equal lengths, got {len(a)} and {len(b)}")
    if len(a) < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise MediaNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_triplets(
    root: Path, names: list[str] | None
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Middlebury triplets by sequence name: (frame10, frame11, true frame10i11), RGB uint8."""
    gt_root = root / "gt"
    if not gt_root.is_dir():
        raise MediaNotFoundError(f"no Middlebury triplets at {root} (expected input/ and gt/ folders)")
    available = sorted(path.name for path in gt_root.iterdir() if path.is_dir())
    chosen = names or available
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        raise ChronoscopeError(f"unknown sequences {unknown}; available: {', '.join(available)}")
    return {
        name: (
            read_rgb(root / "input" / name / "frame10.png"),
            read_rgb(root / "input" / name / "frame11.png"),
            read_rgb(gt_root / name / "frame10i11.png"),
        )
        for name in chosen
    }


def procedural_sets(
    count: int, *, width: int = 320, height: int = 240, capture_fps: int = 240, frames: int = 33
) -> Iterator[tuple[str, np.ndarray]]:
    """``count`` random engine.scenes renders (seeds 0..count-1), Middlebury photographs as textures.

    Each is (name, frames of shape (frames, height, width, 3) uint8), rendered at ``capture_fps``
    with motion blur and sensor noise, so subsampling by k keeps k - 1 true frames per gap.
    """
    from engine.scenes import random_scene, render_frames

    textures = tuple(sorted((MIDDLEBURY / "input").glob("*/frame10.png")))
    for seed in range(count):
        spec = random_scene(
            seed,
            width=width,
            height=height,
            capture_fps=capture_fps,
            duration_frames=frames,
            texture_paths=textures,
        )
        yield f"scene{seed}@{capture_fps}fps", np.stack(list(render_frames(spec)))


def clip_frames(path: Path, *, frames: int, width: int) -> np.ndarray:
    """The first ``frames`` frames of a real clip, scaled to ``width`` (even height), RGB uint8."""
    import av

    decoded = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")
            height = 2 * round(rgb.shape[0] * width / rgb.shape[1] / 2)
            decoded.append(cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA))
            if len(decoded) == frames:
                break
    if len(decoded) < 3:
        raise ChronoscopeError(f"{path} gave {len(decoded)} frames; need at least 3")
    return np.stack(decoded)


def naive_dis(frame0: np.ndarray, frame1: np.ndarray, t: float) -> np.ndarray:
    """Baseline: DIS both ways, backward warp each frame by its own flow scaled to t, average."""
    luma0 = cv2.cvtColor(frame0, cv2.COLOR_RGB2GRAY)
    luma1 = cv2.cvtColor(frame1, cv2.COLOR_RGB2GRAY)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow01 = dis.calc(luma0, luma1, None)
    flow10 = dis.calc(luma1, luma0, None)
    height, width = luma0.shape
    xs = np.arange(width, dtype=np.float32)[None, :].repeat(height, axis=0)
    ys = np.arange(height, dtype=np.float32)[:, None].repeat(width, axis=1)
    warped0 = cv2.remap(
        frame0,
        xs + t * flow10[..., 0],
        ys + t * flow10[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    warped1 = cv2.remap(
        frame1,
        xs + (1 - t) * flow01[..., 0],
        ys + (1 - t) * flow01[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    mixed = (1 - t) * warped0.astype(np.float32) + t * warped1.astype(np.float32)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def minterpolate_frames(ffmpeg: str, frame0: np.ndarray, frame1: np.ndarray, steps: int) -> list[np.ndarray]:
    """ffmpeg minterpolate (defaults, mi_mode=mci): the frames at t = 1/steps .. (steps-1)/steps.

    frame0, frame1, frame1 as a 1 fps PNG sequence, interpolated to ``steps`` fps; output frame j
    (from 0) is at t = j / steps. The time includes starting ffmpeg and PNG input/output.
    """
    with tempfile.TemporaryDirectory(prefix="chronoscope-minterpolate-") as folder:
        work = Path(folder)
        for index, frame in enumerate((frame0, frame1, frame1)):
            cv2.imwrite(str(work / f"in{index:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        command = [
            ffmpeg,
            "-v",
            "error",
            "-y",
            "-framerate",
            "1",
            "-i",
            str(work / "in%03d.png"),
            "-vf",
            f"minterpolate=fps={steps}:mi_mode=mci",
            str(work / "out%03d.png"),
        ]
        subprocess.run(command, check=True, capture_output=True)
        return [read_rgb(work / f"out{index + 1:03d}.png") for index in range(1, steps)]


def machine_facts() -> dict[str, object]:
    """Where a benchmark ran: enough to tell whether two JSON files are comparable."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "opencv": cv2.__version__,
        "opencv_threads": cv2.getNumThreads(),
        "load_average_1_5_15_min": [round(value, 2) for value in load],
    }


def save_side_by_side(folder: Path, name: str, frames: list[np.ndarray], labels: list[str]) -> Path:
    """One PNG of labelled RGB tiles side by side (written atomically)."""
    tiles = []
    for frame, label in zip(frames, labels, strict=True):
        tile = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR).copy()
        cv2.putText(tile, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(tile, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    destination = folder / f"{name}.png"
    with atomic_path(destination) as temporary:
        if not cv2.imwrite(str(temporary), np.concatenate(tiles, axis=1)):
            raise ChronoscopeError(f"could not write {destination}")
    return destination
