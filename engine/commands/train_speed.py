"""``chronoscope train speed``: fine-tune the playback-speed estimator on your own footage, no labels."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
from pathlib import Path

from engine.errors import TrainingDependencyError, UnsupportedOptionError

HELP = "fine-tune the speed detector on your own footage (no labels; needs the train extra)"
DESCRIPTION = """\
Fine-tunes the learned speed estimator that `chronoscope detect` uses on your own footage,
without labels, by the shipped model's self-supervised recipe in its current form (version 2;
the model card says what changed). Ordinary footage (any clip below 100 fps: a 60 fps phone
clip and a 24 fps film alike) is real time on every frame, every k-th frame of it is k times
faster (equivariance), and fake slow motion made from it (duplicated, blended, interpolated
frames) teaches the synthetic-frame output. Clips stored at 100 fps or more are taken as
high-rate captures and teach genuine slow motion; --renders N (default 2) adds procedural
240 fps scenes textured by your clips.

DIR is a folder of clips (searched recursively) or a clip; give --data more than once for more.
A fifth of the clips (when there are at least 3) is held out, never trained on, and measured
before, at every checkpoint and after; the network that does best on them is exported (the
starting one, unchanged, when training does not help). Training starts from the shipped
weights and checkpoints into a work folder (--work-dir, default the cache folder,
speed-train/NAME-HASH, HASH of the output's full path) every --checkpoint-every steps and when
Ctrl-C or SIGTERM stops it; --resume continues it up to --steps in all, on the same --data. One
run at a time trains in a work folder. The model is written to MODEL.onnx with a
manifest beside it; use it with `chronoscope detect --model MODEL.onnx CLIP`.

Needs torch: pip install 'chronoscope[train]'. Uses a CUDA GPU when torch sees one (--device).

examples:
  chronoscope train speed --data ~/footage -o my-speed.onnx
  chronoscope train speed --data ~/footage --data ~/more --steps 3000 --device cuda -o my-speed.onnx
  chronoscope train speed --data ~/footage --resume --steps 6000 -o my-speed.onnx
  chronoscope detect --model my-speed.onnx clip.mp4
"""

TRAIN_EXTRA_MODULES = ("torch",)
DEVICES = ("auto", "cuda", "cpu")


def missing_train_modules() -> list[str]:
    """The modules of the ``train`` extra this command needs that are not installed."""
    return [name for name in TRAIN_EXTRA_MODULES if importlib.util.find_spec(name) is None]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", type=Path, action="append", metavar="DIR", required=True, help="folder of clips, or a clip"
    )
    parser.add_argument(
        "-o", "--output", type=Path, metavar="MODEL.onnx", required=True, help="model to write"
    )
    parser.add_argument("--steps", type=int, default=600, help="optimiser steps in all (default 600)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="auto (default), cuda or cpu")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the work folder's checkpoint (the same --data; --steps counts the whole run)",
    )
    parser.add_argument(
        "--renders",
        type=int,
        default=2,
        metavar="N",
        help="add N procedural 240 fps scenes (default 2); more (e.g. 16) keep genuine slow motion "
        "from drifting towards real time, at some cost to synthetic-frame detection (model card)",
    )
    parser.add_argument(
        "--learning-rate", type=float, default=2e-4, help="peak AdamW learning rate (default 2e-4)"
    )
    parser.add_argument("--from-scratch", action="store_true", help="start from random weights")
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=100,
        metavar="N",
        help="save the checkpoint and measure the held-out clips every N steps (default 100)",
    )
    parser.add_argument("--work-dir", type=Path, help="checkpoint and cache folder")
    parser.add_argument("--seed", type=int, default=0, help="sampling and split seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    if args.resume and args.from_scratch:
        raise UnsupportedOptionError("--resume and --from-scratch conflict: resume continues a checkpoint")
    missing = missing_train_modules()
    if missing:
        raise TrainingDependencyError(
            f"chronoscope train speed needs {', '.join(missing)}, which is not installed; "
            "install the train extra: pip install 'chronoscope[train]'"
        )
    from engine.training.speed.finetune import FineTuneConfig, fine_tune

    config = FineTuneConfig(
        data=tuple(args.data),
        output=args.output,
        steps=args.steps,
        device=args.device,
        resume=args.resume,
        renders=args.renders,
        learning_rate=args.learning_rate,
        seed=args.seed,
        work_dir=args.work_dir,
        checkpoint_every_steps=args.checkpoint_every,
    )
    if args.from_scratch:
        config.init_weights = None
    result = fine_tune(config)
    if args.json:
        print(
            json.dumps(
                {
                    "model_path": str(result.model_path),
                    "steps": result.steps,
                    "exported_step": result.exported_step,
                    "recipe_version": result.recipe_version,
                    "resumed_from_step": result.resumed_from_step,
                    "device": result.device,
                    "train_sources": result.train_sources,
                    "validation_sources": result.validation_sources,
                    "validation": result.validation_note,
                    "metrics_before": _json_metrics(result.metrics_before),
                    "metrics_after": _json_metrics(result.metrics_after),
                    "seconds": round(result.seconds, 1),
                },
                indent=2,
            )
        )
        return 0
    held_out = not set(result.validation_sources) <= set(result.train_sources)
    judged_on = "the held-out clips" if held_out else "the training clips: none could be held out"
    print(f"{result.model_path}: {result.steps} steps on {result.device} in {result.seconds:.0f} s")
    print(
        f"  exported the network of step {result.exported_step} (best on {judged_on}; "
        f"recipe version {result.recipe_version})"
    )
    print(f"  validation: {result.validation_note}")
    for key, after in result.metrics_after.items():
        before = result.metrics_before.get(key, float("nan"))
        print(f"  {key:<20} {_metric_text(before):>8} -> {_metric_text(after):>8}")
    print(f"  use it: chronoscope detect --model {result.model_path} CLIP")
    return 0


def _json_metrics(metrics: dict[str, float]) -> dict[str, float | None]:
    """Metrics for JSON: one that could not be measured (no real-time clip held out) is null, not
    NaN, which strict JSON readers refuse."""
    return {key: value if math.isfinite(value) else None for key, value in metrics.items()}


def _metric_text(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "n/a"
