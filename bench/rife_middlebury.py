"""RIFE backends on the Middlebury "other" triplets: quality, speed and how well the risk map ranks errors.

For each installed RIFE model (``rife-hdv3``, ``rife-4.2x``) and each of the 12 triplets (frame10,
frame11, true middle frame10i11) at t = 0.5, full resolution: PSNR over RGB, SSIM (11x11 Gaussian
window, sigma 1.5, per channel, averaged), seconds per frame through the whole backend (padding,
ONNX Runtime, risk map; one untimed warm-up run per model first), and the risk check: the mean
absolute error of the 5% riskiest pixels divided by that of the others (above 1 means the risk
map points at real errors).

Writes JSON to ``--output``. Models come from ``--models-dir`` / $CHRONOSCOPE_MODELS_DIR.

examples:
  python bench/rife_middlebury.py --output bench/results/rife_middlebury.json
  python bench/rife_middlebury.py --output /tmp/r.json --models rife-4.2x --threads 2
  CHRONOSCOPE_ORT_PROVIDERS=CPUExecutionProvider python bench/rife_middlebury.py --output /tmp/r.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from engine.fsutil import write_text_atomic  # noqa: E402
from engine.interp.rife import PREFERENCE, RifeHDv3Synthesizer, RifeV4Synthesizer  # noqa: E402
from engine.models.registry import ENV_MODELS_DIR  # noqa: E402

log = logging.getLogger("bench.rife_middlebury")
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "triplets" / "middlebury-other"
RISKIEST_FRACTION = 0.05


def psnr_db(frame: np.ndarray, truth: np.ndarray) -> float:
    mse = float(np.mean((frame.astype(np.float64) - truth.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(255.0**2 / mse))


def ssim(frame: np.ndarray, truth: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    scores = []
    for channel in range(3):
        x = frame[:, :, channel].astype(np.float64)
        y = truth[:, :, channel].astype(np.float64)

        def blur(image: np.ndarray) -> np.ndarray:
            return cv2.GaussianBlur(image, (11, 11), 1.5)[5:-5, 5:-5]

        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        scores.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return float(np.mean(scores))


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(path)
    return np.ascontiguousarray(image[:, :, ::-1])


def _parsed_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="examples:" + __doc__.split("examples:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with input/ and gt/")
    parser.add_argument("--models", nargs="+", choices=PREFERENCE, default=list(PREFERENCE))
    parser.add_argument("--models-dir", type=Path, help="models folder (default: $CHRONOSCOPE_MODELS_DIR)")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: all cores)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(levelname)s: %(message)s")
    args = _parsed_args(argv)
    if args.models_dir:
        os.environ[ENV_MODELS_DIR] = str(args.models_dir)
    sequences = sorted(path.name for path in (args.data / "input").iterdir() if path.is_dir())
    triplets = {name: (_read(args.data / "input" / name / "frame10.png"),
                       _read(args.data / "input" / name / "frame11.png"),
                       _read(args.data / "gt" / name / "frame10i11.png")) for name in sequences}
    report: dict[str, object] = {
        "data": str(args.data),
        "t": 0.5,
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "models": {},
    }
    for name in args.models:
        factory = RifeHDv3Synthesizer if name == "rife-hdv3" else RifeV4Synthesizer
        backend = factory(threads=args.threads)
        first = triplets[sequences[0]]
        backend.synthesize(first[0], first[1], 0.5)
        rows = {}
        for sequence, (frame0, frame1, truth) in triplets.items():
            started = time.perf_counter()
            result = backend.synthesize(frame0, frame1, 0.5)
            seconds = time.perf_counter() - started
            error = np.abs(result.frame.astype(np.float32) - truth).mean(axis=2)
            riskiest = result.risk >= np.quantile(result.risk, 1.0 - RISKIEST_FRACTION)
            rows[sequence] = {
                "psnr_db": psnr_db(result.frame, truth),
                "ssim": ssim(result.frame, truth),
                "seconds": seconds,
                "risk_error_ratio": float(error[riskiest].mean() / max(error[~riskiest].mean(), 1e-6)),
                "risk_score": result.risk_score, "size": f"{frame0.shape[1]}x{frame0.shape[0]}",
            }
            row = rows[sequence]
            log.info("%s %-12s %.2f dB  SSIM %.4f  %.2f s  risk ratio %.1f", name, sequence,
                     row["psnr_db"], row["ssim"], seconds, row["risk_error_ratio"])
        report["models"][name] = {
            "provider": backend.execution_provider,
            "mean_psnr_db": float(np.mean([row["psnr_db"] for row in rows.values()])),
            "mean_ssim": float(np.mean([row["ssim"] for row in rows.values()])),
            "seconds_per_frame": float(np.mean([row["seconds"] for row in rows.values()])),
            "mean_risk_error_ratio": float(np.mean([row["risk_error_ratio"] for row in rows.values()])),
            "sequences": rows,
        }
        backend.close()
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    for name, summary in report["models"].items():
        print(f"{name:<10} {summary['provider']:<22} PSNR {summary['mean_psnr_db']:.2f} dB  "
              f"SSIM {summary['mean_ssim']:.4f}  {summary['seconds_per_frame']:.2f} s/frame  "
              f"risk ratio {summary['mean_risk_error_ratio']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
