"""The paper's loop at CPU scale: build a library, mine it, train on what was mined, measure (JSON out).

One command, resumable by its work folder (default build/tsr-loop):

1. ``library/``: a mixed folder with known truth (engine.mining.mixed.build_mixed_folder): real-time
   clips cut from the shared clips the speed model never saw, fake slow motion made from them,
   procedural renders (seeds from 3000: no training, evaluation or threshold render uses them)
   at 240/120 fps written at their capture rate and played at 30 fps, a truncated MP4 and a text
   file; plus the real high-speed sequences of shared/data/highspeed played at 30 fps
   (bench/mining_throughput.add_highspeed). Built under a temporary name with ``truth.json``,
   then renamed: a finished library is reused.
2. ``dataset/``: ``chronoscope mine library --out dataset --extract`` (resumable: the manifest is
   the checkpoint). The accepted set is scored against the truth per file and per extracted clip.
3. ``bench/tsr_train.py --dataset dataset/clips --renders 0 --exclude-source ...``: fine-tune on
   the mined clips only (no renders of its own), with the high-speed sequences' clips left out,
   because the same sequences are a measurement set. Before and after in the same run: renders
   seeds 0..1, the real high-speed sequences, Middlebury "other", the dataset's held-out sources.
   With ``--resume`` a killed run continues from its checkpoint.
4. The control (unless ``--no-control``): the same recipe and steps on the real-time clips of
   shared/data/clips, so that what fine-tuning does by itself is told apart from what mined slow
   motion adds.

The JSON holds the exact commands, the mining precision and recall, what training used and left
out, the before/after figures per set, the Middlebury rule's verdict and the wall times.

    nice -n 5 .venv/bin/python bench/tsr_loop.py --steps 300 --threads 1 --output bench/results/tsr_loop.json
    nice -n 5 .venv/bin/python bench/tsr_loop.py --resume      # after an interruption
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from _common import REPO_ROOT, SHARED_DATA, machine_facts
from mining_throughput import add_highspeed, quality

from engine.fsutil import write_text_atomic
from engine.mining import read_manifest
from engine.mining.manifest import complete_rows
from engine.mining.mixed import DEFAULT_REAL_CLIPS, HELD_OUT_RENDER_SEEDS_START, MixedFile, build_mixed_folder

log = logging.getLogger("bench.tsr_loop")

TRUTH_NAME = "truth.json"


def _parsed_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=REPO_ROOT / "build" / "tsr-loop")
    parser.add_argument("--data", type=Path, default=SHARED_DATA)
    parser.add_argument("--real-clips", type=int, default=len(DEFAULT_REAL_CLIPS))
    parser.add_argument("--renders", type=int, default=8, help="render seeds in the library")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--real-frames", type=int, default=150)
    parser.add_argument("--render-frames", type=int, default=192)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-frames", type=int, default=96, help="frames read per mined clip")
    parser.add_argument("--name", default="rife-mined")
    parser.add_argument("--resume", action="store_true", help="continue the trainings from their checkpoints")
    parser.add_argument("--no-control", action="store_true", help="skip the control run on real-time footage")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "bench" / "results" / "tsr_loop.json")
    return parser.parse_args()


def build_library(args: argparse.Namespace, library: Path) -> tuple[list[MixedFile], float, bool]:
    """The mixed folder and its truth; reused when a finished one is there."""
    truth_path = library / TRUTH_NAME
    if truth_path.is_file():
        items = [MixedFile(**item) for item in json.loads(truth_path.read_text(encoding="utf-8"))]
        log.info("reusing the library at %s (%d files)", library, len(items))
        return items, 0.0, True
    partial = library.with_name(library.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    started = time.perf_counter()
    seeds = tuple(range(HELD_OUT_RENDER_SEEDS_START, HELD_OUT_RENDER_SEEDS_START + args.renders))
    items = build_mixed_folder(
        args.data / "clips",
        partial,
        real_clips=DEFAULT_REAL_CLIPS[: args.real_clips],
        render_seeds=seeds,
        width_px=args.width,
        real_frames=args.real_frames,
        render_frames_count=args.render_frames,
    )
    items += add_highspeed(args.data / "highspeed", partial, args.width, args.render_frames)
    write_text_atomic(partial / TRUTH_NAME, json.dumps([asdict(item) for item in items], indent=1) + "\n")
    shutil.rmtree(library, ignore_errors=True)
    partial.rename(library)
    return items, time.perf_counter() - started, False


def run_logged(command: list[str], shown: str) -> float:
    """Run ``command`` (its output goes to our stderr); raise when it fails; return its wall seconds."""
    log.info("running: %s", shown)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO_ROOT)
    return time.perf_counter() - started


def mined_clips(rows: list[dict], truth: dict[str, MixedFile], dataset: Path) -> dict:
    """The extracted clips (what training reads) scored against the truth of their source file."""
    clips = [row for row in rows if row["row"] == "clip" and row.get("clip")]
    duplicates = [row for row in rows if row["row"] == "clip" and row.get("duplicate_of")]
    genuine = [row for row in clips if truth[row["source"]].genuine]
    return {
        "clips": len(clips),
        "genuine_clips": len(genuine),
        "precision_clips": len(genuine) / len(clips) if clips else None,
        "duplicates_dropped": len(duplicates),
        "per_clip": [
            {
                "clip": row["clip"],
                "source": str(Path(row["source"]).relative_to(dataset.parent / "library")),
                "source_kind": truth[row["source"]].kind,
                "true_capture_fps": truth[row["source"]].capture_fps,
                "conform_rate": row["conform_rate"],
                "frames": row.get("frames"),
            }
            for row in clips
        ],
        "duplicates": [
            {
                "source": str(Path(row["source"]).relative_to(dataset.parent / "library")),
                "duplicate_of": row["duplicate_of"],
            }
            for row in duplicates
        ],
    }


def train(
    args: argparse.Namespace, work: Path, dataset: Path, name: str, excludes: list[str]
) -> tuple[dict, dict, str, float]:
    """bench/tsr_train.py on ``dataset`` alone (no renders of its own); its JSON, card, command, seconds."""
    output = work / f"{name}.json"
    train_args = [
        "--dataset", str(dataset),
        "--renders", "0",
        "--steps", str(args.steps),
        "--threads", str(args.threads),
        "--max-frames", str(args.max_frames),
        "--name", name,
        "--models-dir", str(work / "models"),
        "--work-dir", str(work / "train" / name),
        "--output", str(output),
    ]  # fmt: skip
    for pattern in excludes:
        train_args += ["--exclude-source", pattern]
    if args.resume:
        train_args.append("--resume")
    shown = "bench/tsr_train.py " + shlex.join(train_args)
    seconds = run_logged([sys.executable, str(REPO_ROOT / "bench" / "tsr_train.py"), *train_args], shown)
    trained = json.loads(output.read_text(encoding="utf-8"))
    return trained, json.loads(Path(trained["card"]).read_text(encoding="utf-8")), shown, seconds


def main() -> int:
    args = _parsed_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    started = time.perf_counter()
    work = args.work.resolve()
    library, dataset = work / "library", work / "dataset"
    work.mkdir(parents=True, exist_ok=True)
    items, build_s, reused = build_library(args, library)
    truth = {str((library / item.name).resolve()): item for item in items}

    mine_command = [
        sys.executable,
        "-m",
        "engine.cli",
        "mine",
        str(library),
        "--out",
        str(dataset),
        "--extract",
    ]
    mine_shown = f"chronoscope mine {library} --out {dataset} --extract"
    mine_s = run_logged(mine_command, mine_shown)
    rows = read_manifest(dataset / "manifest.jsonl")
    mining = {
        "files": quality(complete_rows(rows), truth),
        "extracted": mined_clips(rows, truth, dataset),
    }
    gate = next(
        (row["gate_min_confidence"] for row in rows if row.get("gate_min_confidence") is not None), None
    )

    highspeed = sorted(path.name for path in (args.data / "highspeed").iterdir() if path.is_dir())
    excludes = [f"*/{name}-played30.mp4" for name in highspeed]
    trained, card, train_shown, train_s = train(args, work, dataset / "clips", args.name, excludes)
    control = None
    if not args.no_control:
        control_trained, control_card, control_shown, control_s = train(
            args, work, args.data / "clips", f"{args.name}-realtime-control", []
        )
        control = {
            "what": "the same recipe and steps on real-time footage (shared/data/clips, 30 fps and less, "
            "split by file): what fine-tuning alone gives, without mined slow motion",
            "command": control_shown,
            "wall_s": round(control_s, 1),
            "trained_on": control_card["data"]["train_clip_names"],
            "metrics_before": control_trained["metrics_before"],
            "metrics_after": control_trained["metrics_after"],
            "change": control_trained["change"],
            "default_eligible": control_trained["default_eligible"],
            "mined_minus_control_psnr_db": {
                name: trained["metrics_after"][name]["psnr_db"]
                - control_trained["metrics_after"][name]["psnr_db"]
                for name in trained["metrics_after"]
                if name in control_trained["metrics_after"] and name != "dataset-held-out"
            },
        }

    report = {
        "benchmark": "tsr_loop",
        "wall_s": round(time.perf_counter() - started, 1),
        "stage_wall_s": {
            "build": round(build_s, 1),
            "build_reused": reused,
            "mine": round(mine_s, 1),
            "train_and_measure": round(train_s, 1),
            "control_train_and_measure": control and control["wall_s"],
        },
        "commands": {"mine": mine_shown, "train": train_shown},
        "library": {
            "files": len(items),
            "kinds": {
                kind: sum(1 for item in items if item.kind == kind)
                for kind in sorted({i.kind for i in items})
            },
            "render_seeds": list(
                range(HELD_OUT_RENDER_SEEDS_START, HELD_OUT_RENDER_SEEDS_START + args.renders)
            ),
            "real_clips": list(DEFAULT_REAL_CLIPS[: args.real_clips]),
            "highspeed_sequences": highspeed,
            "width_px": args.width,
        },
        "mining": mining,
        "mining_gate": gate,
        "training_data": {
            "trained_on": card["data"]["train_clip_names"],
            "train_capture_fps": card["data"].get("train_capture_fps"),
            "held_out": card["data"]["held_out_clip_names"],
            "excluded": card["data"].get("excluded_clip_names"),
            "exclude_patterns": excludes,
            "renders_added": card["data"]["renders"],
            "eval_sets": card["data"]["eval_sets"],
            "disjointness": (
                "training clips come only from the mined dataset (no renders of its own); the eval "
                f"renders are {card['data']['eval_sets']['renders']}, "
                f"the library's renders seeds {HELD_OUT_RENDER_SEEDS_START}.."
                f"{HELD_OUT_RENDER_SEEDS_START + args.renders - 1}; the high-speed sequences that are "
                "measured are excluded from training by their source path; Middlebury is not in the "
                "library; dataset-held-out is the manifest's split by source video"
            ),
        },
        "training": trained["training"],
        "metrics_before": trained["metrics_before"],
        "metrics_after": trained["metrics_after"],
        "change": trained["change"],
        "default_eligible": trained["default_eligible"],
        "default_reason": trained["default_reason"],
        "model": trained["model"],
        "card": trained["card"],
        "control": control,
        "machine": machine_facts() | {"load_average_end": os.getloadavg()},
    }
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    log.info("wrote %s", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
