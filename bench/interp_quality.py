"""Frame-synthesis quality against ground truth: every registered backend next to two baselines.

On the Middlebury "other" triplets (frame10, frame11 and the true middle frame frame10i11, 640x480)
at t = 0.5, for each method: PSNR over RGB, SSIM, and seconds per frame, all in one process on the
same machine. Methods:

- every registered synthesis backend (nearest, blend, flow, and rife when it is registered);
- ``ffmpeg-minterpolate``: ffmpeg's minterpolate filter with its defaults (mi_mode=mci) on a clip of
  frame10, frame11, frame11 at 1 fps, interpolated to 2 fps; the frame at 0.5 s is taken. Its time
  includes starting ffmpeg and PNG input/output, as an editor running it would pay;
- ``naive-dis``: OpenCV DIS flow (MEDIUM preset) both ways, each frame warped backwards to t with
  its own flow scaled by t (the flow at x is assumed to be the flow at time t), averaged.

SSIM: Wang et al. (2004) with an 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, computed
on each RGB channel and averaged over channels and pixels (windows fully inside the image).

Writes JSON (``--output``) and side-by-side PNGs (truth | blend | flow | flow risk) for a few
sequences into a folder next to it named ``<output stem>-frames``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    load_triplets,
    machine_facts,
    minterpolate_frames,
    naive_dis,
    psnr_db,
    save_side_by_side,
    ssim,
)

from engine.errors import ChronoscopeError  # noqa: E402
from engine.fsutil import write_text_atomic  # noqa: E402
from engine.interp import available_backends, create_backend  # noqa: E402

log = logging.getLogger("bench.interp_quality")

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "triplets" / "middlebury-other"
SIDE_BY_SIDE_SEQUENCES = ("Beanbags", "DogDance", "Urban3", "Walking")
T_MIDDLE = 0.5

EPILOG = """\
examples:
  python bench/interp_quality.py --output bench/results/interp_quality.json
  python bench/interp_quality.py --output /tmp/q.json --sequences Urban3 Walking --no-ffmpeg
  python bench/interp_quality.py --output /tmp/q.json --backends flow blend
"""


@dataclass
class MethodResult:
    """Scores of one method over all sequences."""

    method: str
    psnr_db: dict[str, float] = field(default_factory=dict)
    ssim: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        return {
            "mean_psnr_db": float(np.mean(list(self.psnr_db.values()))),
            "mean_ssim": float(np.mean(list(self.ssim.values()))),
            "seconds_per_frame": float(np.mean(list(self.seconds.values()))),
        }


def ffmpeg_minterpolate(ffmpeg: str) -> Callable[[np.ndarray, np.ndarray, float], np.ndarray]:
    """Baseline: ffmpeg minterpolate (defaults, mi_mode=mci) on a 1 fps clip doubled to 2 fps."""

    def run(frame0: np.ndarray, frame1: np.ndarray, t: float) -> np.ndarray:
        if t != T_MIDDLE:
            raise ChronoscopeError(f"the ffmpeg baseline makes only t = {T_MIDDLE}, not {t}")
        return minterpolate_frames(ffmpeg, frame0, frame1, 2)[0]

    return run


def _parsed_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write")
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help=f"triplet folder (default {DEFAULT_DATA})"
    )
    parser.add_argument("--sequences", nargs="+", help="sequence names (default: all)")
    parser.add_argument("--backends", nargs="+", help="backends to run (default: every registered one)")
    parser.add_argument("--no-ffmpeg", action="store_true", help="skip the ffmpeg minterpolate baseline")
    parser.add_argument("--ffmpeg", default="ffmpeg", help="ffmpeg executable (default: ffmpeg on PATH)")
    parser.add_argument(
        "--repeats", type=int, default=1, help="time each frame this many times, keep the best"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be 1 or more")
    if args.backends:
        unknown = sorted(set(args.backends) - set(available_backends()))
        if unknown:
            parser.error(f"backends not available: {unknown}; available: {', '.join(available_backends())}")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = _parsed_args(argv)
    triplets = load_triplets(args.data, args.sequences)
    methods: dict[str, Callable[[np.ndarray, np.ndarray, float], np.ndarray]] = {}
    backends = {}
    for name in args.backends or available_backends():
        try:
            backends[name] = create_backend(name)
        except ChronoscopeError as error:
            log.warning("backend %s left out: %s", name, error)
    flow_risks: dict[str, np.ndarray] = {}
    for name, backend in backends.items():

        def run_backend(frame0, frame1, t, backend=backend):
            return backend.synthesize(frame0, frame1, t).frame

        methods[name] = run_backend
    methods["naive-dis"] = naive_dis
    if not args.no_ffmpeg:
        ffmpeg = shutil.which(args.ffmpeg)
        if ffmpeg:
            methods["ffmpeg-minterpolate"] = ffmpeg_minterpolate(ffmpeg)
        else:
            log.warning("ffmpeg not found as %r: the minterpolate baseline is left out", args.ffmpeg)

    results: dict[str, MethodResult] = {name: MethodResult(name) for name in methods}
    outputs: dict[tuple[str, str], np.ndarray] = {}
    for sequence, (frame0, frame1, truth) in triplets.items():
        for name, method in methods.items():
            best_s = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                frame = method(frame0, frame1, T_MIDDLE)
                best_s = min(best_s, time.perf_counter() - start)
            results[name].psnr_db[sequence] = psnr_db(frame, truth)
            results[name].ssim[sequence] = ssim(frame, truth)
            results[name].seconds[sequence] = best_s
            outputs[(name, sequence)] = frame
        if "flow" in backends:
            flow_risks[sequence] = backends["flow"].synthesize(frame0, frame1, T_MIDDLE).risk
        log.info(
            "%s: %s",
            sequence,
            ", ".join(f"{name} {results[name].psnr_db[sequence]:.2f} dB" for name in methods),
        )

    frames_folder = args.output.parent / f"{args.output.stem}-frames"
    saved = []
    for sequence in SIDE_BY_SIDE_SEQUENCES:
        if sequence not in triplets or "flow" not in backends or "blend" not in backends:
            continue
        risk_rgb = np.repeat((flow_risks[sequence] * 255.0 + 0.5).astype(np.uint8)[..., None], 3, axis=2)
        tiles = [triplets[sequence][2], outputs[("blend", sequence)], outputs[("flow", sequence)], risk_rgb]
        labels = [
            "truth",
            f"blend {results['blend'].psnr_db[sequence]:.2f} dB",
            f"flow {results['flow'].psnr_db[sequence]:.2f} dB",
            "flow risk",
        ]
        saved.append(str(save_side_by_side(frames_folder, sequence, tiles, labels)))

    report = {
        "benchmark": "interp_quality",
        "data": str(args.data),
        "t": T_MIDDLE,
        "psnr": "over RGB, uint8 peak 255",
        "ssim": "Gaussian 11x11 sigma 1.5, per RGB channel, averaged; valid windows",
        "seconds": "per frame, best of --repeats, this process, wall clock",
        "machine": machine_facts(),
        "methods": {name: {**result.summary(), **asdict(result)} for name, result in results.items()},
        "side_by_side": saved,
    }
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    print(f"{'method':22s} {'PSNR dB':>8s} {'SSIM':>7s} {'s/frame':>8s}")
    for name, result in sorted(results.items(), key=lambda item: item[1].summary()["mean_psnr_db"]):
        summary = result.summary()
        print(
            f"{name:22s} {summary['mean_psnr_db']:8.2f} {summary['mean_ssim']:7.4f} "
            f"{summary['seconds_per_frame']:8.3f}"
        )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
