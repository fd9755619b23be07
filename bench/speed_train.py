"""Build the speed-training cache and train the speed network (CPU, minutes); resumable.

.venv/bin/python bench/speed_train.py cache            # build/speed-cache/*.npz
.venv/bin/python bench/speed_train.py train --minutes 12 [--device cuda] [--differences-only]
.venv/bin/python bench/speed_train.py train --steps 3000 --lr 2e-4 \
    --init-weights engine/speed/model/speed_net.weights.pt   # fine-tune the shipped network
.venv/bin/python bench/speed_train.py export [--model-dir DIR]

`train` resumes <cache>/checkpoint.pt (or --checkpoint) and exports speed_net.onnx, its manifest and
speed_net.weights.pt (the starting point of `chronoscope train speed`) into --model-dir, by default
engine/speed/model (the shipped network). The recipe options are those bench/speed_gpu.py compares
by cross-validation; a checkpoint of another recipe is not resumed. To fine-tune on other footage
without labels use `chronoscope train speed --data DIR -o MODEL.onnx` instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("step", choices=("cache", "train", "export"))
    parser.add_argument("--clips", type=Path, default=REPO.parent / "shared" / "data" / "clips")
    parser.add_argument("--cache", type=Path, default=REPO / "build" / "speed-cache")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: <cache>/checkpoint.pt")
    parser.add_argument("--model-dir", type=Path, default=None, help="default: engine/speed/model")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=None, help="steps in all (the schedule runs over them)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (cosine decay)")
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="cpu")
    parser.add_argument("--window-frames", type=int, default=None, help="frames a window (default 8)")
    parser.add_argument("--min-crop-px", type=int, default=None, help="smallest random crop (default 72)")
    parser.add_argument(
        "--init-weights",
        type=Path,
        default=None,
        help="start from these weights (a state dict, e.g. engine/speed/model/speed_net.weights.pt, the "
        "shipped network, recipe version 1) instead of from scratch; a checkpoint to resume wins",
    )
    parser.add_argument(
        "--differences-only",
        action="store_true",
        help="the network sees the frame differences, not the frames (bench/speed_gpu.py's `diff`)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.step == "cache":
        from engine.training.speed.data import build_cache

        build_cache(args.clips, args.cache)
        return 0
    from engine.training.speed.recipe import Recipe
    from engine.training.speed.train import MODEL_DIR, export_model, train, weights_recipe_version

    checkpoint = args.checkpoint or args.cache / "checkpoint.pt"
    if args.step == "train":
        settings = {
            "window_frames": args.window_frames,
            "min_crop_px": args.min_crop_px,
            "frames_input": False if args.differences_only else None,
        }
        recipe = Recipe(**{key: value for key, value in settings.items() if value is not None})
        train(
            args.cache,
            minutes=None if args.steps else args.minutes,
            steps=args.steps,
            seed=args.seed,
            learning_rate=args.lr,
            device=args.device,
            checkpoint=checkpoint,
            recipe=recipe,
            init_weights=args.init_weights,
            init_recipe_version=weights_recipe_version(args.init_weights),
        )
    export_model(checkpoint, args.model_dir or MODEL_DIR)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
