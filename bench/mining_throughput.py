"""Mining throughput and dataset quality on a mixed folder with known truth; writes JSON.

The folder (engine.mining.mixed.build_mixed_folder): real-time clips cut from shared/data/clips,
fake slow motion made from them (duplicated and blended frames, 4x), genuine high-rate renders
(engine.scenes, 240 and 120 fps) written at their capture rate and played at 30 fps, the real
high-speed sequences of shared/data/highspeed played at 30 fps, a truncated MP4 and a text file
named .mp4.

Throughput, on the same folder, each into a fresh dataset folder:
- decode only: every frame of every file decoded once by engine.media.FrameReader (the floor a
  pipeline that reads everything would pay; mining reads about 12 % of frames at 320 px),
- in-process, a local pool of 2 workers, local Ray with 1 and with 2 workers (Ray start-up
  timed apart),
reported as files per hour and hours of video per hour.

Quality: precision and recall of the accepted set against the truth, per file (a file counts as
accepted when any of its segments is) and per second of accepted playback. The gate is the
measured one (engine.mining.gate: bench/results/speed_eval.json or build/speed-eval.json) unless
--min-confidence is given.

    .venv/bin/python bench/mining_throughput.py --output bench/results/mining_throughput.json
    .venv/bin/python bench/mining_throughput.py --real-clips 2 --renders 2 --output /tmp/mt.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.fsutil import write_text_atomic  # noqa: E402
from engine.media import FrameReader  # noqa: E402
from engine.mining import MineOptions, mine, read_manifest  # noqa: E402
from engine.mining.manifest import complete_rows  # noqa: E402
from engine.mining.mixed import DEFAULT_REAL_CLIPS, MixedFile, build_mixed_folder  # noqa: E402
from engine.mining.sources import expand_sources  # noqa: E402
from engine.scenes import write_video  # noqa: E402

log = logging.getLogger("bench.mining")


def add_highspeed(highspeed_dir: Path, folder: Path, width_px: int, max_frames: int) -> list[MixedFile]:
    """The real high-speed PNG sequences, scaled to ``width_px`` and played at 30 fps."""
    truth = []
    for sequence in sorted(p for p in highspeed_dir.iterdir() if p.is_dir()):
        capture = float(sequence.name.rsplit("-", 1)[-1].removesuffix("fps"))
        images = []
        for png in sorted(sequence.glob("*.png"))[:max_frames]:
            image = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
            if image.dtype == np.uint16:
                image = (image / max(int(image.max()), 1) * 255).astype(np.uint8)
            if image.ndim == 2:
                image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
            else:
                image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            height = max(2, int(round(image.shape[0] * width_px / image.shape[1] / 2)) * 2)
            images.append(cv2.resize(image, (width_px, height), interpolation=cv2.INTER_AREA))
        if len(images) < 16:
            continue
        path = folder / "genuine" / f"{sequence.name}-played30.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(images, path, Fraction(30))
        truth.append(MixedFile(str(path.relative_to(folder)), "highspeed_real", True, capture))
    return truth


def decode_only(files: list[Path]) -> dict:
    started = time.perf_counter()
    frames = 0
    video_s = 0.0
    for path in files:
        try:
            with FrameReader(path, strict=False) as reader:
                rate = float(reader.info.frame_rate)
                count = sum(1 for _ in reader.frames())
        except Exception as error:  # noqa: BLE001 - the corrupt files of the folder: count them as read
            log.info("decode only: %s: %s", path.name, error)
            continue
        frames += count
        video_s += count / rate
    wall_s = time.perf_counter() - started
    return {"wall_s": wall_s, "frames": frames, "video_s": video_s}


def quality(rows: list[dict], truth: dict[str, MixedFile]) -> dict:
    segments = [row for row in complete_rows(rows) if row["row"] == "segment"]
    accepted_files = {row["source"] for row in segments if row["accepted"]}
    genuine_files = {source for source, item in truth.items() if item.genuine}
    true_positive = accepted_files & genuine_files
    accepted_s = sum(row["end_s"] - row["start_s"] for row in segments if row["accepted"])
    genuine_s = sum(row["end_s"] - row["start_s"] for row in segments if truth[row["source"]].genuine)
    accepted_genuine_s = sum(
        row["end_s"] - row["start_s"] for row in segments if row["accepted"] and truth[row["source"]].genuine
    )
    false_positives = sorted(
        f"{Path(source).name} ({truth[source].kind})" for source in accepted_files - genuine_files
    )
    missed = sorted(
        f"{Path(source).name} ({truth[source].kind})" for source in genuine_files - accepted_files
    )
    return {
        "files": len(truth),
        "genuine_files": len(genuine_files),
        "accepted_files": len(accepted_files),
        "precision_files": len(true_positive) / len(accepted_files) if accepted_files else None,
        "recall_files": len(true_positive) / len(genuine_files) if genuine_files else None,
        "precision_seconds": accepted_genuine_s / accepted_s if accepted_s else None,
        "recall_seconds": accepted_genuine_s / genuine_s if genuine_s else None,
        "false_positives": false_positives,
        "missed": missed,
        "per_kind": {
            kind: {
                "files": sum(1 for item in truth.values() if item.kind == kind),
                "accepted": sum(1 for source in accepted_files if truth[source].kind == kind),
            }
            for kind in sorted({item.kind for item in truth.values()})
        },
    }


def run_mode(name: str, folder: Path, work: Path, **options) -> tuple[dict, list[dict]]:
    out = work / f"ds-{name}"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    summary = mine(MineOptions([str(folder)], out, progress=False, **options))
    wall_s = time.perf_counter() - started
    rows = read_manifest(out / "manifest.jsonl")
    return {
        "wall_s": wall_s,
        "runner": summary.runner,
        "files": summary.files_mined,
        "gate": summary.gate.min_confidence,
    }, rows


def per_hour(result: dict, files: int, video_s: float) -> dict:
    result["files_per_hour"] = files / result["wall_s"] * 3600
    result["video_hours_per_hour"] = video_s / result["wall_s"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "mining_throughput.json")
    parser.add_argument("--real-clips", type=int, default=len(DEFAULT_REAL_CLIPS))
    parser.add_argument("--renders", type=int, default=4)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--real-frames", type=int, default=150)
    parser.add_argument("--render-frames", type=int, default=192)
    parser.add_argument("--min-confidence", type=float)
    parser.add_argument("--modes", default="decode,inprocess,pool2,ray1,ray2")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(levelname)s: %(message)s")
    modes = args.modes.split(",")
    report: dict = {"config": vars(args) | {"data": str(args.data), "output": str(args.output)}}
    report["config"]["cpu_count"] = os.cpu_count()
    report["config"]["load_average_start"] = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mining-bench-") as temporary:
        work = Path(temporary)
        folder = work / "library"
        started = time.perf_counter()
        truth_list = build_mixed_folder(
            args.data / "clips",
            folder,
            real_clips=DEFAULT_REAL_CLIPS[: args.real_clips],
            render_seeds=tuple(range(2000, 2000 + args.renders)),
            width_px=args.width,
            real_frames=args.real_frames,
            render_frames_count=args.render_frames,
        )
        truth_list += add_highspeed(args.data / "highspeed", folder, args.width, args.render_frames)
        report["build_s"] = time.perf_counter() - started
        truth = {str((folder / item.name).resolve()): item for item in truth_list}
        files = expand_sources([str(folder)])
        decoded = decode_only(files)
        video_s = decoded["video_s"]
        report["folder"] = {
            "files": len(files),
            "video_s": video_s,
            "frames": decoded["frames"],
            "kinds": {
                kind: sum(1 for i in truth_list if i.kind == kind)
                for kind in sorted({i.kind for i in truth_list})
            },
        }
        if "decode" in modes:
            report["decode_only"] = per_hour(decoded, len(files), video_s)
        gate = {"min_confidence": args.min_confidence} if args.min_confidence is not None else {}
        if "inprocess" in modes:
            result, rows = run_mode("inprocess", folder, work, **gate)
            report["in_process"] = per_hour(result, len(files), video_s)
            report["quality"] = quality(rows, truth)
            report["gate"] = result["gate"]
        if "pool2" in modes:
            result, _ = run_mode("pool2", folder, work, workers=2, **gate)
            report["pool_2_workers"] = per_hour(result, len(files), video_s)
        for workers in (1, 2):
            key = f"ray_{workers}_worker" + ("s" if workers > 1 else "")
            if f"ray{workers}" not in modes:
                continue
            try:
                import ray
            except ImportError:
                report[key] = {"skipped": "ray is not installed"}
                continue
            started = time.perf_counter()
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            ray_start_s = time.perf_counter() - started
            result, rows = run_mode(f"ray{workers}", folder, work, ray_address="local", **gate)
            result["ray_start_s"] = ray_start_s
            report[key] = per_hour(result, len(files), video_s)
            if "quality" in report:
                report[key]["quality_matches_in_process"] = quality(rows, truth) == report["quality"]
            ray.shutdown()
        if "in_process" in report:
            base = report["in_process"]["wall_s"]
            for key in ("pool_2_workers", "ray_1_worker", "ray_2_workers"):
                if "wall_s" in report.get(key, {}):
                    report[key]["speedup_vs_in_process"] = base / report[key]["wall_s"]
        if "wall_s" in report.get("ray_1_worker", {}) and "wall_s" in report.get("ray_2_workers", {}):
            report["ray_2_vs_1_worker_speedup"] = (
                report["ray_1_worker"]["wall_s"] / report["ray_2_workers"]["wall_s"]
            )
    report["config"]["load_average_end"] = os.getloadavg()
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "config"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
