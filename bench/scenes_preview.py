"""Render three procedural scenes and write contact sheets (PNG) plus a JSON summary with timings.

Look at the sheets to check that scenes look like footage: textures, bounces, spin, occlusion,
motion blur, flicker. With ../shared/data present, photographs and video frames texture the
scenes; without it, built-in textures are used.

examples:
  python bench/scenes_preview.py --output bench/results/scenes
  python bench/scenes_preview.py --output /tmp/scenes --columns 4 --frames 96
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from engine.fsutil import atomic_path, write_text_atomic
from engine.scenes import random_scene, render_frames, subsample

log = logging.getLogger("scenes_preview")

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _texture_sources() -> tuple[Path, ...]:
    sources = sorted((SHARED / "triplets").rglob("frame10.png"))[:4] + sorted(
        (SHARED / "clips").glob("sam2-*.mp4")
    )
    return tuple(sources)


def contact_sheet(frames: list[np.ndarray], columns: int, label_every: int) -> np.ndarray:
    height, width = frames[0].shape[:2]
    rows = (len(frames) + columns - 1) // columns
    sheet = np.zeros((rows * (height + 2), columns * (width + 2), 3), np.uint8)
    for index, frame in enumerate(frames):
        row, column = divmod(index, columns)
        tile = frame.copy()
        cv2.putText(tile, str(index * label_every), (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1)
        sheet[
            row * (height + 2) : row * (height + 2) + height,
            column * (width + 2) : column * (width + 2) + width,
        ] = tile
    return sheet


def _parsed_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", type=Path, default=Path("bench/results/scenes"))
    parser.add_argument("--frames", type=int, default=240, help="frames per scene at the capture rate")
    parser.add_argument("--columns", type=int, default=6)
    parser.add_argument("--every", type=int, default=8, help="put every n-th frame on the sheet")
    return parser.parse_args()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args = _parsed_args()
    sources = _texture_sources()
    scenes = [
        (
            "photo_textures_240fps",
            random_scene(1, capture_fps=240, duration_frames=args.frames, texture_paths=sources),
        ),
        (
            "procedural_960fps_flicker",
            random_scene(
                2, capture_fps=960, duration_frames=args.frames, shutter_angle_deg=360.0, flicker_hz=100.0
            ),
        ),
        (
            "photo_textures_480fps_wide_shutter",
            random_scene(
                3,
                capture_fps=480,
                duration_frames=args.frames,
                object_count=6,
                texture_paths=sources,
                shutter_angle_deg=270.0,
            ),
        ),
    ]
    summary = {"texture_sources": [str(path) for path in sources], "scenes": []}
    for name, spec in scenes:
        start = time.perf_counter()
        frames = list(render_frames(spec))
        elapsed_s = time.perf_counter() - start
        picked = list(subsample(frames, args.every))
        destination = args.output / f"{name}.png"
        with atomic_path(destination) as temporary:
            if not cv2.imwrite(
                str(temporary),
                cv2.cvtColor(contact_sheet(picked, args.columns, args.every), cv2.COLOR_RGB2BGR),
            ):
                raise OSError(f"could not write {destination}")
        seconds_of_footage = Fraction(spec.duration_frames) / spec.capture_fps
        summary["scenes"].append(
            {
                "name": name,
                "sheet": str(destination),
                "size": [spec.width, spec.height],
                "capture_fps": str(spec.capture_fps),
                "frames": spec.duration_frames,
                "shutter_angle_deg": spec.shutter_angle_deg,
                "objects": len(spec.objects),
                "textures": sorted({obj.texture.kind for obj in spec.objects} | {spec.background.kind}),
                "flicker_hz": spec.flicker_hz,
                "render_s": round(elapsed_s, 3),
                "render_frames_per_s": round(spec.duration_frames / elapsed_s, 1),
                "render_s_per_footage_s": round(elapsed_s / float(seconds_of_footage), 3),
            }
        )
        log.info("%s: %d frames in %.2f s -> %s", name, spec.duration_frames, elapsed_s, destination)
    write_text_atomic(args.output / "scenes_preview.json", json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
