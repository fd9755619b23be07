"""Cross-validate speed-training recipes on a lent GPU: pack here, train there, judge here (JSON out).

On data this small one training run per recipe cannot rank recipes (the model card's Session 5:
two seeds of one recipe differed as much as any recipe change). So every recipe is trained
several times, and judged only on footage its run never trained on:

- the 9 training clips and 17 training renders are split into ``FOLDS`` folds (clips by their
  sorted order, renders by seed); each (recipe, fold, seed) trains on the other folds and reads
  every window of the held-out fold (out of fold). The test clips of bench/speed_eval.py are never
  touched. The renders are textured by all 9 clips, so a held-out clip's pictures (not its
  motion) can appear in a training render;
- each recipe is also trained on everything, once per seed (the networks that could ship).

The lent machine has torch with CUDA but no PyAV and no package registry, and takes at most 64 MiB
of files per call, so the work is cut in three:

1. ``pack`` (here): the training clips (opencv-vtest cut to its first 420 frames by stream copy,
   checked to decode to the same frames), the SHA-256 of the frames the cache reads from each
   clip, and the PyAV, opentimelineio and platformdirs wheels for Python 3.12.
2. ``run`` (there): checks the frames, builds the training cache (``engine.training.speed.data``,
   the same H.264 round trip), then trains every job at once, one process each, for ``--minutes``
   of wall time each (the cosine schedule runs over that time), and writes ``results.json`` (every
   out-of-fold window read, steps, losses, the cache's hashes) and ``finals.tar`` (the
   checkpoints trained on everything).
3. ``report`` (here): per recipe and seed and for the two seeds averaged, the out-of-fold figures
   that the issue's targets depend on (per clip and stride: the median over windows, as detect
   takes it), and a linear correction of the log2 speed fitted on the out-of-fold reads and
   judged fold by fold (fitted on two folds, measured on the third). ``--export RECIPE`` writes
   that recipe's networks trained on everything as ONNX models, plain and with the correction.

    .venv/bin/python bench/speed_gpu.py pack
    # on the GPU machine, with build/speed-gpu/pack carried:
    python3 -m pip install -q --no-index --no-deps --target /tmp/site build/speed-gpu/pack/site/*.whl
    PYTHONPATH=/tmp/site python3 bench/speed_gpu.py run --out $OUT --minutes 7
    # here, with the files it wrote copied to RUN:
    .venv/bin/python bench/speed_gpu.py report --run RUN --output engine/training/speed/crossval/NAME.json

The figures are computed in bench/_speed_cv.py. The reports of the runs so far are in
engine/training/speed/crossval/ and the model card's Session 7 reads them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import multiprocessing
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from _speed_cv import (  # noqa: E402
    FOLDS,
    common_variants,
    ensemble_reads,
    figures,
    fit_correction,
    judged_correction,
    only,
    variant_reads,
)

from engine.errors import TrainingDataError, UnsupportedOptionError  # noqa: E402
from engine.fsutil import write_text_atomic  # noqa: E402
from engine.speed.heldout import HELD_OUT_CLIPS  # noqa: E402
from engine.training.speed import data as speed_data  # noqa: E402

log = logging.getLogger("bench.speed_gpu")

DEFAULT_PACK = REPO_ROOT / "build" / "speed-gpu" / "pack"
DEFAULT_CLIPS = REPO_ROOT.parent / "shared" / "data" / "clips"
SITE_WHEELS = {
    "av": "av==18.1.0",
    "opentimelineio": "opentimelineio==0.18.1",
    "platformdirs": "platformdirs==4.14.8",
}
PIP_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
INDEX_NAME = "index.json"
WORK_MARKER = "speed-gpu-work.txt"
RESULTS_NAME = "results.json"
FINALS_NAME = "finals.tar"
TRIM_OVER_BYTES = 5_000_000
TRIM_FRAMES = speed_data.MAX_CLIP_FRAMES + 20
SEEDS = (0, 1)
RECIPES: dict[str, dict[str, Any]] = {
    "w8": {},  # the shipped network's recipe
    "w16": {"window_frames": 16},
    "w32": {"window_frames": 32},
    "diff": {"frames_input": False},
    "zoom": {"min_crop_px": 40},
    "few-renders": {"render_share": 0.15},
    "diff-zoom": {"frames_input": False, "min_crop_px": 40},
    "diff-zoom-narrow": {"frames_input": False, "min_crop_px": 40, "network_width": 12},
}
"""Run 1 compared window lengths, the model card's named next step: 8 frames at 30 fps see
0.27 s, less than a step of a walk or a throw of a juggler; 32 frames see a second. Run 2 asked
why unseen footage reads slow: the network sees only frame differences, not the frames (less
of a clip's look to remember it by); crops down to 40 px of 96 (motion up to 2.4x larger at the
same speed, so the size of motion says less); a smaller share of renders (0.15 of the pairs,
not 0.35: their slow motion may be what unfamiliar footage is taken for). Run 3 (on this 2-core
machine, the GPU time spent) put the two that helped together against differences alone. Run 4
(here too) asked whether a network half as wide (12 channels, a quarter of the weights) remembers
the clips less."""


def frames_sha256(frames: list[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(np.ascontiguousarray(frame).tobytes())
    return digest.hexdigest()


def training_clips(clips_dir: Path) -> list[Path]:
    """The shipped network's training clips: every clip but the held-out ones, sorted."""
    return sorted(p for p in clips_dir.iterdir() if p.is_file() and p.name not in HELD_OUT_CLIPS)


def assign_folds(clip_names: list[str]) -> dict[str, int]:
    folds = {f"clip-{Path(name).stem}": index % FOLDS for index, name in enumerate(sorted(clip_names))}
    folds.update({f"render-{seed}": seed % FOLDS for seed in speed_data.TRAIN_RENDER_SEEDS})
    return folds


# ---------------------------------------------------------------------------------------- pack


def pack(args: argparse.Namespace) -> int:
    final: Path = args.pack
    if final.exists() and any(final.iterdir()) and not (final / INDEX_NAME).exists():
        raise UnsupportedOptionError(f"{final} is not empty and holds no pack; name another folder")
    # built beside it and renamed at the end: an interrupted pack leaves only the .partial folder
    target = final.with_name(final.name + ".partial")
    if target.exists():
        shutil.rmtree(target)
    (target / "clips").mkdir(parents=True)
    (target / "site").mkdir()
    clips = training_clips(args.clips)
    if len(clips) < FOLDS:
        raise TrainingDataError(f"{args.clips}: {len(clips)} training clips, need at least {FOLDS}")
    index: dict[str, Any] = {"clips": {}, "folds": assign_folds([c.name for c in clips])}
    for clip in clips:
        frames, rate = speed_data.read_clip_grey(clip)
        packed = target / "clips" / clip.name
        if clip.stat().st_size > TRIM_OVER_BYTES:
            _stream_copy_head(clip, packed, TRIM_FRAMES)
            again, again_rate = speed_data.read_clip_grey(packed)
            if again_rate != rate or frames_sha256(again) != frames_sha256(frames):
                raise TrainingDataError(f"{clip.name}: the cut copy does not decode to the same frames")
            log.info("%s: cut to its first %d frames by stream copy (same frames)", clip.name, TRIM_FRAMES)
        else:
            shutil.copy2(clip, packed)
        index["clips"][clip.name] = {
            "frames": len(frames),
            "rate": str(rate),
            "frames_sha256": frames_sha256(frames),
            "bytes": packed.stat().st_size,
        }
    wheels = args.wheel_dir
    wheels.mkdir(parents=True, exist_ok=True)
    for name, pin in SITE_WHEELS.items():
        found = sorted(wheels.glob(f"{name}-*.whl"))
        if not found:
            command = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                "3.12",
                "--implementation",
                "cp",
                "-d",
                str(wheels),
                pin,
            ]
            command += [flag for platform_tag in PIP_PLATFORMS for flag in ("--platform", platform_tag)]
            subprocess.run(command, check=True)
            found = sorted(wheels.glob(f"{name}-*.whl"))
        shutil.copy2(found[-1], target / "site" / found[-1].name)
    index["recipes"] = RECIPES
    index["seeds"] = list(SEEDS)
    write_text_atomic(target / INDEX_NAME, json.dumps(index, indent=1))
    if final.exists():
        shutil.rmtree(final)
    target.rename(final)
    size = sum(p.stat().st_size for p in final.rglob("*") if p.is_file())
    log.info("pack written to %s: %.1f MiB", final, size / 2**20)
    return 0


def _stream_copy_head(source: Path, target: Path, frames: int) -> None:
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(source),
            "-map",
            "0:v:0",
            "-c",
            "copy",
            "-frames:v",
            str(frames),
            str(target),
        ],
        check=True,
    )


# ----------------------------------------------------------------------------------------- run


@dataclass(frozen=True)
class Job:
    """One training run: a recipe, a seed, and the fold it holds out (None: trains on everything)."""

    recipe: str
    seed: int
    fold: int | None

    @property
    def name(self) -> str:
        return f"{self.recipe}-s{self.seed}-" + ("all" if self.fold is None else f"f{self.fold}")


def all_jobs(recipes: list[str], finals: bool = True) -> list[Job]:
    jobs = [Job(r, s, f) for r in recipes for f in range(FOLDS) for s in SEEDS]
    return jobs + ([Job(r, s, None) for r in recipes for s in SEEDS] if finals else [])


def _cache_one(task: tuple[str, str, int | None, list[str]]) -> str:
    """One source cached: ("clip", cache, None, [clip]) or ("render", cache, seed, texture clips)."""
    kind, path, seed, paths = task
    cache_dir = Path(path)
    if kind == "clip":
        clip = Path(paths[0])
        frames, rate = speed_data.read_clip_grey(clip)
        target = cache_dir / f"clip-{clip.stem}.npz"
        speed_data.save_variants(target, speed_data.clip_variants_from(frames, rate))
    else:
        target = cache_dir / f"render-{seed}.npz"
        speed_data.save_variants(target, speed_data.render_variants(seed, tuple(Path(p) for p in paths)))
    return target.name


def build_cache(pack_dir: Path, cache_dir: Path, workers: int) -> dict[str, dict[str, str]]:
    """Check the packed clips' frames, then cache every clip and render in parallel; the hashes."""
    index = json.loads((pack_dir / INDEX_NAME).read_text())
    clips = sorted((pack_dir / "clips").iterdir())
    for clip in clips:
        expected = index["clips"].get(clip.name)
        if expected is None:
            raise TrainingDataError(f"{clip.name} is in the pack's clips but not in its index")
        frames, rate = speed_data.read_clip_grey(clip)
        if frames_sha256(frames) != expected["frames_sha256"] or str(rate) != expected["rate"]:
            raise TrainingDataError(f"{clip.name}: the frames read here differ from those packed")
    cache_dir.mkdir(parents=True, exist_ok=True)
    textures = [str(c) for c in clips]
    tasks = [("clip", str(cache_dir), None, [str(c)]) for c in clips]
    tasks += [("render", str(cache_dir), seed, textures) for seed in speed_data.TRAIN_RENDER_SEEDS]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        names = pool.map(_cache_one, tasks)
    hashes = {}
    for name in names:
        with np.load(cache_dir / name) as stored:
            hashes[name] = {
                key: hashlib.sha256(stored[key].tobytes()).hexdigest()
                for key in stored.files
                if key not in ("meta", "format")
            }
    return hashes


def _train_job(task: tuple[dict, str, str, float, str, dict[str, int]]) -> dict:
    job_fields, cache_path, work_path, minutes, device_name, folds = task
    import torch

    from engine.training.speed.recipe import Recipe
    from engine.training.speed.train import load_sources, train
    from engine.training.speed.validation import window_reads

    torch.set_num_threads(1)
    job = Job(**job_fields)
    sources = load_sources(Path(cache_path))
    training = [s for s in sources if job.fold is None or folds[s.name] != job.fold]
    held_out = [s for s in sources if job.fold is not None and folds[s.name] == job.fold]
    recipe = Recipe(**RECIPES[job.recipe])
    checkpoint = Path(work_path) / f"{job.name}.pt"
    started = time.monotonic()
    train(
        Path(cache_path),
        minutes=minutes,
        seed=job.seed,
        device=device_name,
        checkpoint=checkpoint,
        sources=training,
        resume=False,
        recipe=recipe,
    )
    seconds = time.monotonic() - started
    state = torch.load(checkpoint, weights_only=False, map_location="cpu")
    network = recipe.network()
    network.load_state_dict(state["network"])
    device = torch.device(device_name)
    reads = window_reads(network.to(device), held_out, device, hop=recipe.window_frames // 2)
    return {
        **asdict(job),
        "name": job.name,
        "recipe_settings": asdict(recipe),
        "steps": int(state["step"]),
        "seconds": round(seconds, 1),
        "last_losses": state["history"][-1] if state["history"] else {},
        "training_sources": [s.name for s in training],
        "reads": [
            [
                r.source,
                r.key,
                r.start,
                round(r.log2_speed, 4),
                round(r.target_log2_speed, 4),
                round(r.synthetic_logit, 4),
                r.synthetic,
            ]
            for r in reads
        ],
    }


def run(args: argparse.Namespace) -> int:
    import torch

    started = time.monotonic()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    work: Path = args.work
    if work.exists():
        if any(work.iterdir()) and not (work / WORK_MARKER).exists():
            raise UnsupportedOptionError(f"--work {work} is not empty and is no work folder of this script")
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / WORK_MARKER).write_text(
        "bench/speed_gpu.py run: cache and checkpoints, replaced by the next run\n"
    )
    cache_dir = work / "cache"
    index = json.loads((args.pack / INDEX_NAME).read_text())
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    hashes = build_cache(args.pack, cache_dir, args.cache_workers)
    cached_s = time.monotonic() - started
    log.info("cache built in %.0f s", cached_s)
    jobs = all_jobs(args.recipes, finals=not args.no_finals)
    if args.limit_jobs:
        jobs = jobs[: args.limit_jobs]
    tasks = [(asdict(job), str(cache_dir), str(work), args.minutes, device, index["folds"]) for job in jobs]
    results: list[dict] = []
    finals: list[str] = []
    summary: dict[str, Any] = {}

    def write_summary(complete: bool) -> None:
        summary.update(
            {
                "complete": complete,
                "machine": {
                    "gpu": torch.cuda.get_device_name(0) if device == "cuda" else "none",
                    "torch": torch.__version__,
                    "python": platform.python_version(),
                    "cpus": multiprocessing.cpu_count(),
                },
                "settings": {
                    "minutes": args.minutes,
                    "device": device,
                    "recipes": args.recipes,
                    "jobs": len(jobs),
                },
                "folds": index["folds"],
                "cache_seconds": round(cached_s, 1),
                "seconds": round(time.monotonic() - started, 1),
                "cache_sha256": hashes,
                "jobs": sorted(results, key=lambda r: r["name"]),
            }
        )
        write_text_atomic(out / RESULTS_NAME, json.dumps(summary))

    # Every result is written as it comes, so a run cut short still hands back what finished.
    with multiprocessing.get_context("spawn").Pool(len(tasks), maxtasksperchild=1) as pool:
        for result in pool.imap_unordered(_train_job, tasks):
            results.append(result)
            log.info("%s: %d steps in %.0f s", result["name"], result["steps"], result["seconds"])
            if result["fold"] is None:
                finals.append(result["name"])
                with tarfile.open(out / (FINALS_NAME + ".partial"), "w") as archive:
                    for name in sorted(finals):
                        archive.add(work / f"{name}.pt", arcname=f"{name}.pt")
                (out / (FINALS_NAME + ".partial")).replace(out / FINALS_NAME)
            write_summary(complete=False)
    write_summary(complete=True)
    log.info("done in %.0f s", time.monotonic() - started)
    return 0


# -------------------------------------------------------------------------------------- report


def report(args: argparse.Namespace) -> int:
    results = json.loads((args.run / RESULTS_NAME).read_text())
    held = [job for job in results["jobs"] if job["fold"] is not None]
    summary: dict[str, Any] = {
        "run": _relative(args.run),
        "settings": results["settings"],
        "machine": results["machine"],
        "recipes": {},
    }
    common = common_variants(held)
    summary["variants_compared"] = len(common)
    for recipe in sorted({job["recipe"] for job in held}):
        jobs = [only(job, common) for job in held if job["recipe"] == recipe]
        entry: dict[str, Any] = {
            "steps": {job["name"]: job["steps"] for job in jobs},
            "by_seed": {},
        }
        for seed in sorted({job["seed"] for job in jobs}):
            reads = variant_reads([job for job in jobs if job["seed"] == seed])
            entry["by_seed"][seed] = figures(reads)
        ensemble = ensemble_reads(jobs)
        entry["seeds_averaged"] = figures(ensemble)
        entry["seeds_averaged_per_clip_originals"] = {
            r.source: round(r.log2_speed - r.target, 3) for r in ensemble if r.key == "real_1"
        }
        entry["correction_judged_by_fold"] = judged_correction(ensemble)
        entry["correction_all_folds"] = fit_correction(ensemble)
        summary["recipes"][recipe] = entry
    summary["cache_compared_with_here"] = _compare_cache(results["cache_sha256"], args.local_cache)
    text = json.dumps(summary, indent=1)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.output, text)
    print(_table(summary))
    if args.export:
        export(args, results, summary)
    return 0


def _compare_cache(hashes: dict[str, dict[str, str]], local_cache: Path | None) -> dict[str, Any]:
    if local_cache is None or not local_cache.exists():
        return {"compared": False}
    same, different, missing = 0, [], 0
    for name, keys in hashes.items():
        path = local_cache / name
        if not path.exists():
            missing += 1
            continue
        with np.load(path) as stored:
            for key, digest in keys.items():
                if key in stored.files and hashlib.sha256(stored[key].tobytes()).hexdigest() == digest:
                    same += 1
                else:
                    different.append(f"{name}:{key}")
    return {"compared": True, "same": same, "different": different, "missing_here": missing}


def _table(summary: dict[str, Any]) -> str:
    rows = [
        "| recipe | seeds | originals bias | real |err| | MAPE | faster within 0.5 oct | renders |err| "
        "| slope | made flagged | captured flagged |",
        "|---" * 10 + "|",
    ]
    for recipe, entry in summary["recipes"].items():
        variants = [(str(seed), figs) for seed, figs in entry["by_seed"].items()]
        variants.append(("averaged", entry["seeds_averaged"]))
        variants.append(("averaged, corrected by fold", entry["correction_judged_by_fold"]["figures"]))
        for label, f in variants:
            rows.append(
                f"| {recipe} | {label} | {f['originals_bias_log2']} | {f['real_abs_log2']} | "
                f"{f['mape_real_time_and_faster']} | {f['faster_within_half_octave']} | "
                f"{f['renders_abs_log2']} | "
                f"{f['slope_real']} | {f['made_flagged']} | {f['captured_flagged']} |"
            )
    return "\n".join(rows)


def export(args: argparse.Namespace, results: dict, summary: dict) -> None:
    """The chosen recipe's networks trained on everything, as ONNX with the out-of-fold correction."""
    from engine.training.speed.train import export_checkpoint

    recipe = args.export
    if recipe not in summary["recipes"]:
        raise UnsupportedOptionError(f"--export {recipe}: the run has {', '.join(summary['recipes'])}")
    correction = dict(summary["recipes"][recipe]["correction_all_folds"])
    correction["fitted_on"] = (
        f"out-of-fold reads of {recipe} ({FOLDS} folds of the training clips and renders, seeds "
        f"averaged), bench/speed_gpu.py run {_relative(args.run)}"
    )
    args.models_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(args.run / FINALS_NAME) as archive:
        for member in archive.getmembers():
            if not member.name.startswith(f"{recipe}-"):
                continue
            checkpoint = args.models_dir / member.name
            partial = checkpoint.with_name(checkpoint.name + ".partial")
            partial.write_bytes(archive.extractfile(member).read())
            partial.replace(checkpoint)
            for suffix, calibration in (("", None), ("-corrected", correction)):
                model = args.models_dir / f"speed-{Path(member.name).stem}{suffix}.onnx"
                export_checkpoint(
                    checkpoint,
                    model,
                    calibration=calibration,
                    upstream=f"bench/speed_gpu.py {recipe} trained on all training clips and renders",
                )
                log.info("exported %s", model)


def _relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    defaults = argparse.ArgumentDefaultsHelpFormatter
    p = commands.add_parser("pack", formatter_class=defaults, help="gather the clips and wheels")
    p.add_argument("--clips", type=Path, default=DEFAULT_CLIPS, help="shared/data/clips")
    p.add_argument("--pack", type=Path, default=DEFAULT_PACK, help="the pack folder to write")
    p.add_argument(
        "--wheel-dir",
        type=Path,
        default=REPO_ROOT / "build" / "speed-gpu" / "wheels",
        help="where the Python 3.12 wheels are fetched once",
    )
    r = commands.add_parser("run", formatter_class=defaults, help="on the GPU machine: cache and train")
    r.add_argument("--pack", type=Path, default=DEFAULT_PACK)
    r.add_argument("--out", type=Path, required=True, help="where results.json and finals.tar go")
    r.add_argument("--work", type=Path, default=Path("/tmp/speed-gpu-work"), help="cache and checkpoints")
    r.add_argument("--minutes", type=float, default=7.0, help="wall time of every job (all run at once)")
    r.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    r.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    r.add_argument("--cache-workers", type=int, default=max(1, multiprocessing.cpu_count() - 1))
    r.add_argument("--no-finals", action="store_true", help="only the cross-validation jobs")
    r.add_argument("--limit-jobs", type=int, default=0, help="only the first N jobs (a dry run)")
    e = commands.add_parser("report", formatter_class=defaults, help="out-of-fold figures; export")
    e.add_argument("--run", type=Path, required=True, help="the folder holding results.json")
    e.add_argument("--output", type=Path, default=None, help="JSON out")
    e.add_argument(
        "--local-cache",
        type=Path,
        default=REPO_ROOT / "build" / "speed-cache-rate",
        help="a cache built here, compared hash by hash",
    )
    e.add_argument("--export", default=None, help="export this recipe's networks trained on everything")
    e.add_argument("--models-dir", type=Path, default=REPO_ROOT / "build" / "speed-gpu" / "models")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "run" and args.minutes <= 0:
        raise UnsupportedOptionError("--minutes must be positive")
    return {"pack": pack, "run": run, "report": report}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
