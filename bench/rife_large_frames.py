"""RIFE on large frames: whole-frame pass against reduced-scale flow and tiles, against ground truth.

A 4K pass does not fit the memory budget (engine/interp/rife.py), so 4K frames are made either
with the flow at half scale (Practical-RIFE's own practice) or tile by tile. This bench compares
both with the whole-frame pass on frames where all three fit: the 12 Middlebury "other" triplets
upscaled by ``--upscale`` (bicubic; 2 gives 1168x776 and so on, with motion in pixels doubled as
in footage twice the size). The tiles strategy runs with a budget that gives tiles of the same
share of the frame that the default budget gives at 4K (1472 px tiles on 3840x2160: 3 x 2
tiles), ``--tile-budget-mib``.

Per model and method: mean PSNR and SSIM against the true middle frame, seconds per frame, and
the mean absolute difference from the whole-frame result (8-bit levels). JSON with per-frame
records to ``--output``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MIDDLEBURY, load_triplets, machine_facts, psnr_db, ssim  # noqa: E402

from engine.fsutil import write_text_atomic  # noqa: E402
from engine.interp.base import create_backend  # noqa: E402
from engine.interp.rife import SCALE_STRATEGY, TILES_STRATEGY, pass_mib  # noqa: E402

log = logging.getLogger("bench.rife_large_frames")

EPILOG = """\
examples:
  CHRONOSCOPE_MODELS_DIR=build/models python bench/rife_large_frames.py --output /tmp/large.json
  python bench/rife_large_frames.py --output /tmp/l.json --models rife-hdv3 --sequences MiniCooper Walking
"""

WHOLE_BUDGET_MIB = 1_000_000


def _parsed_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--models", nargs="+", default=["rife-hdv3", "rife-4.2x"])
    parser.add_argument("--sequences", nargs="+", help="Middlebury sequences (default: all 12)")
    parser.add_argument("--upscale", type=int, default=2, help="upscaling factor of the triplets (default 2)")
    parser.add_argument("--tile-budget-mib", type=int, default=240, help="tiles method budget (512 px)")
    return parser.parse_args(argv)


def _upscaled(image: np.ndarray, factor: int) -> np.ndarray:
    height, width = image.shape[:2]
    return cv2.resize(image, (width * factor, height * factor), interpolation=cv2.INTER_CUBIC)


def main(argv: list[str] | None = None) -> int:
    args = _parsed_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    triplets = load_triplets(MIDDLEBURY, args.sequences)
    # Just under the smallest whole-frame pass (unpadded, so under it for any pad multiple): every
    # frame takes the scale path, and its half-scale pass (a quarter of the memory) runs whole.
    scale_budget_mib = min(
        pass_mib(first.shape[0] * args.upscale, first.shape[1] * args.upscale, 1)
        for first, _, _ in triplets.values()
    ) - 1
    methods = {
        "whole": {"memory_budget_mib": WHOLE_BUDGET_MIB},
        "scale": {"memory_budget_mib": scale_budget_mib, "large_frames": SCALE_STRATEGY},
        "tiles": {"memory_budget_mib": args.tile_budget_mib, "large_frames": TILES_STRATEGY},
    }
    records = []
    for model in args.models:
        backends = {method: create_backend(model, **options) for method, options in methods.items()}
        for name, (first, second, truth) in triplets.items():
            frame0, frame1, true_frame = (_upscaled(image, args.upscale) for image in (first, second, truth))
            whole_frame = None
            for method, backend in backends.items():
                started = time.perf_counter()
                result = backend.synthesize(frame0, frame1, 0.5)
                seconds = time.perf_counter() - started
                if method == "whole":
                    whole_frame = result.frame
                difference = float(np.abs(result.frame.astype(np.int16) - whole_frame).mean())
                records.append({
                    "model": model, "sequence": name, "method": method,
                    "psnr_db": psnr_db(result.frame, true_frame), "ssim": ssim(result.frame, true_frame),
                    "seconds": seconds, "mean_abs_diff_from_whole": difference,
                    "risk_score": result.risk_score,
                })
                log.info("%s %s %s: %.2f dB, %.1f s", model, name, method, records[-1]["psnr_db"], seconds)
    summary = {}
    for model in args.models:
        for method in methods:
            rows = [row for row in records if row["model"] == model and row["method"] == method]
            summary[f"{model} {method}"] = {
                "psnr_db": round(statistics.fmean(row["psnr_db"] for row in rows), 3),
                "ssim": round(statistics.fmean(row["ssim"] for row in rows), 4),
                "seconds_per_frame": round(statistics.median(row["seconds"] for row in rows), 2),
                "mean_abs_diff_from_whole": round(
                    statistics.fmean(row["mean_abs_diff_from_whole"] for row in rows), 3
                ),
            }
    height, width = next(iter(triplets.values()))[0].shape[:2]
    report = {
        "set": f"middlebury-other x{args.upscale} ({width * args.upscale}x{height * args.upscale})",
        "frames": len(triplets), "tile_budget_mib": args.tile_budget_mib,
        "scale_budget_mib": scale_budget_mib, "machine": machine_facts(),
        "ort_providers": os.environ.get("CHRONOSCOPE_ORT_PROVIDERS", ""),
        "summary": summary, "records": records,
    }
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    for key, row in summary.items():
        print(f"{key:24s} {row['psnr_db']:7.3f} dB  SSIM {row['ssim']:.4f}  "
              f"{row['seconds_per_frame']:6.2f} s  diff {row['mean_abs_diff_from_whole']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
