"""A mixed folder with known truth, for the mining tests and benchmark.

Real-time clips cut from real footage, fake slow motion made from them (duplicated and blended
frames), genuine high-rate renders (engine.scenes) written both at their capture rate and played
at 30 fps, plus a truncated file and a text file named ``.mp4``. ``truth`` says, per file,
whether it holds genuine high-rate capture.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from engine.media import FrameReader
from engine.scenes import random_scene, render_frames, write_video
from engine.scenes.retime import synthetic_slowmo
from engine.speed.heldout import HELD_OUT_CLIPS

# The clips the speed model never saw in training: a precision measured on training clips would
# flatter the detector.
DEFAULT_REAL_CLIPS = HELD_OUT_CLIPS
# Render seeds used by nothing else: training renders are seeds 0-23, bench/speed_eval.py's are
# 1000-1007, and the detector's thresholds were set on validation renders 2000-2007.
HELD_OUT_RENDER_SEEDS_START = 3000


@dataclass
class MixedFile:
    name: str
    kind: str
    genuine: bool
    capture_fps: float | None = None


def _read_real(path: Path, width_px: int, frames: int) -> tuple[list[np.ndarray], Fraction]:
    with FrameReader(path, strict=False) as reader:
        info = reader.info
        height = max(2, int(round(info.height * width_px / info.width / 2)) * 2)
        rate = info.frame_rate
    images = []
    with FrameReader(path, size=(width_px, height), strict=False) as reader:
        for frame in reader.frames(0, min(frames, reader.frame_count)):
            images.append(frame.image)
    return images, rate


def build_mixed_folder(
    clips_dir: Path,
    folder: Path,
    *,
    real_clips: tuple[str, ...] = DEFAULT_REAL_CLIPS[:2],
    render_seeds: tuple[int, ...] = (11, 12),
    width_px: int = 160,
    real_frames: int = 64,
    render_frames_count: int = 96,
    corrupt: bool = True,
) -> list[MixedFile]:
    """Write the mixed folder; return what each file truly is."""
    folder.mkdir(parents=True, exist_ok=True)
    truth: list[MixedFile] = []
    first_real: Path | None = None
    for number, name in enumerate(real_clips):
        images, rate = _read_real(clips_dir / name, width_px, real_frames)
        stem = Path(name).stem
        real = folder / "realtime" / f"{stem}.mp4"
        real.parent.mkdir(parents=True, exist_ok=True)
        write_video(images, real, rate)
        truth.append(MixedFile(str(real.relative_to(folder)), "realtime", False, float(rate)))
        first_real = first_real or real
        kind = ("duplicate", "blend")[number % 2]
        fake = folder / "synthetic" / f"{stem}-{kind}4.mp4"
        fake.parent.mkdir(parents=True, exist_ok=True)
        write_video(synthetic_slowmo(images[: real_frames // 3], 4, kind), fake, rate)
        truth.append(MixedFile(str(fake.relative_to(folder)), f"synthetic_{kind}", False))
    for number, seed in enumerate(render_seeds):
        capture = (240, 120)[number % 2]
        spec = random_scene(
            seed,
            width=width_px,
            height=int(width_px * 3 / 4) // 2 * 2,
            capture_fps=capture,
            duration_frames=render_frames_count,
        )
        frames = list(render_frames(spec))
        played = folder / "genuine" / f"render{seed}-{capture}fps-played30.mp4"
        played.parent.mkdir(parents=True, exist_ok=True)
        write_video(frames, played, 30)
        truth.append(MixedFile(str(played.relative_to(folder)), "genuine_played_slow", True, float(capture)))
        native = folder / "genuine" / f"render{seed}-{capture}fps-native.mp4"
        write_video(frames, native, capture)
        truth.append(MixedFile(str(native.relative_to(folder)), "genuine_native_rate", True, float(capture)))
    if corrupt and first_real is not None:
        broken = folder / "broken" / "truncated.mp4"
        broken.parent.mkdir(parents=True, exist_ok=True)
        data = first_real.read_bytes()
        broken.write_bytes(data[: len(data) // 3])
        truth.append(MixedFile(str(broken.relative_to(folder)), "corrupt", False))
        text = folder / "broken" / "notes.mp4"
        text.write_text("this is a text file, not a video\n", encoding="utf-8")
        truth.append(MixedFile(str(text.relative_to(folder)), "text", False))
    return truth


def copy_tree(source: Path, destination: Path) -> None:
    shutil.copytree(source, destination, dirs_exist_ok=True)
