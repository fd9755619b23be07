"""Build the speed-training cache and train the speed network (CPU, minutes); resumable.

.venv/bin/python bench/speed_train.py cache            # build/speed-cache/*.npz
.venv/bin/python bench/speed_train.py train --minutes 12 [--device cuda]

`train` resumes build/speed-cache/checkpoint.pt and exports engine/speed/model/speed_net.onnx, its
manifest and speed_net.weights.pt (the starting point of `chronoscope train speed`). To fine-tune
on other footage without labels use `chronoscope train speed --data DIR -o MODEL.onnx` instead.
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
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (cosine decay)")
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="cpu")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.step == "cache":
        from engine.training.speed.data import build_cache

        build_cache(args.clips, args.cache)
        return 0
    from engine.training.speed.train import export_model, train

    if args.step == "train":
        train(args.cache, minutes=args.minutes, learning_rate=args.lr, device=args.device)
    export_model(args.cache)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
