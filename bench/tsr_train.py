"""Fine-tune RIFE on high-rate footage and measure before and after in the same run (JSON out).

Drives ``engine.training.tsr.train.train_tsr`` the way ``chronoscope train tsr`` does, with PSNR and
SSIM from bench/_common.py. Data:

- training: ``--dataset`` (default: shared/data/clips, real footage, every video file its own
  source, split by source so some are held out; a ``chronoscope mine --extract`` dataset, given
  as DATASET/ or DATASET/clips, is read through its manifest: split by source video, capture
  rate per clip; ``--exclude-source GLOB`` leaves out clips whose source path matches) plus
  ``--renders`` procedural 240 fps scenes (seeds 1000+), cached under build/tsr-cache. Their
  textures are procedural by default: ``--textures middlebury`` uses the Middlebury photographs,
  which then appear in training and in the Middlebury measurement alike (a leak; use it only to
  compare);
- measured, never trained on: renders with seeds 0..``--eval-renders``-1, the real high-speed
  sequences in shared/data/highspeed, Middlebury "other" (t = 1/2, full size), and the dataset's
  held-out sources.

The model goes to ``--models-dir`` (default build/tsr-models) as NAME.onnx with manifest and card.

    .venv/bin/python bench/tsr_train.py --steps 300 --output bench/results/tsr_train.json
    .venv/bin/python bench/tsr_train.py --dataset DATASET/clips --renders 0 --exclude-source '*phantom*'
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from _common import MIDDLEBURY, REPO_ROOT, SHARED_DATA, machine_facts, psnr_db, ssim

from engine.fsutil import write_text_atomic
from engine.training.tsr.train import TrainConfig, train_tsr

log = logging.getLogger("bench.tsr_train")


def _parsed_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, default=SHARED_DATA / "clips")
    parser.add_argument("--no-dataset", action="store_true", help="train on renders only")
    parser.add_argument("--renders", type=int, default=6)
    parser.add_argument("--eval-renders", type=int, default=2)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--init", default="rife-4.2x")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-frames", type=int, default=48, help="frames read per dataset clip")
    parser.add_argument("--name", default="rife-tuned")
    parser.add_argument("--models-dir", type=Path, default=REPO_ROOT / "build" / "tsr-models")
    parser.add_argument("--work-dir", type=Path, help="checkpoint folder (default build/tsr-work/NAME)")
    parser.add_argument(
        "--exclude-source",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out dataset clips whose source path, name or file matches (repeatable)",
    )
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--textures", choices=("procedural", "middlebury"), default="procedural")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch default)")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "bench" / "results" / "tsr_train.json")
    return parser.parse_args()


def main() -> int:
    args = _parsed_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    textures = ()
    if args.textures == "middlebury":
        textures = tuple(sorted((MIDDLEBURY / "input").glob("*/frame10.png")))
    config = TrainConfig(
        output=args.models_dir / f"{args.name}.onnx",
        dataset=None if args.no_dataset else args.dataset,
        init=args.init,
        steps=args.steps,
        device=args.device,
        renders=args.renders,
        resume=args.resume,
        batch_size=args.batch_size,
        crop_px=args.crop,
        learning_rate=args.learning_rate,
        max_frames_per_clip=args.max_frames,
        work_dir=args.work_dir or REPO_ROOT / "build" / "tsr-work" / args.name,
        cache_dir=REPO_ROOT / "build" / "tsr-cache",
        wheel_cache=REPO_ROOT / "build" / "wheels",
        eval_renders=args.eval_renders,
        cpu_threads=args.threads,
        eval_highspeed=SHARED_DATA / "highspeed",
        eval_middlebury=MIDDLEBURY,
        texture_paths=textures,
        exclude_sources=tuple(args.exclude_source),
    )
    started = time.perf_counter()
    result = train_tsr(config, metrics={"psnr_db": psnr_db, "ssim": ssim})
    report = {
        "benchmark": "tsr_train",
        "wall_s": round(time.perf_counter() - started, 1),
        "render_textures": args.textures,
        "model": str(result.export.model_path),
        "card": str(result.export.card_path),
        "steps": result.steps,
        "resumed_from_step": result.resumed_from_step,
        "metrics_before": result.metrics_before,
        "metrics_after": result.metrics_after,
        "change": result.card["metrics"]["change"],
        "default_eligible": result.default_eligible,
        "default_reason": result.default_reason,
        "training": result.card["training"],
        "data": {key: value for key, value in result.card["data"].items() if not key.endswith("_names")},
        "machine": machine_facts(),
    }
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    log.info("wrote %s", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
