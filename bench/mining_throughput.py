"""Mining throughput and dataset quality on a mixed folder with known truth; writes JSON.

The folder (engine.mining.mixed.build_mixed_folder): real-time clips cut from the clips of
shared/data/clips that the speed model never saw in training, fake slow motion made from them
(duplicated and blended frames, 4x), genuine high-rate renders (engine.scenes, 240 and 120 fps,
seeds from 3000 on, which neither training, bench/speed_eval.py nor the detector's threshold
validation used) written at their capture rate and played at 30 fps, the real
high-speed sequences of shared/data/highspeed played at 30 fps (every sequence with at least the
detector's minimum of frames; 16-bit frames scaled by the sequence's maximum, as a camera's
export would, not frame by frame), a truncated MP4 and a text file named .mp4.

Throughput, on the same folder, each into a fresh dataset folder:
- decode only: every frame of every file decoded once by engine.media.FrameReader (the floor a
  pipeline that reads everything would pay; mining reads about 12 % of frames at 320 px),
- in-process (the model may use every core), a local pool of 1 and of 2 workers, local Ray with
  1 and with 2 workers (Ray start-up and the workers' first import and model load timed apart),
reported as files per hour and hours of video per hour.

Where the time goes, per mode: every manifest row carries its task's wall and CPU seconds and
the worker that ran it. The bench sums them per worker (busy time), reports the fixed cost
(wall minus the busiest worker), the CPU a task used per second of its wall time (above 1: the
task used more than one core, e.g. FFmpeg's decoder threads; below 1: it waited for a core), and
the whole machine's CPU use from /proc/stat during the mode, so that load from other processes
on a shared machine shows. ``calibrate`` times the same pure-CPU work in 1 and in 2 processes:
the speed-up the machine could give any program at that moment, next to the pipeline's.

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
from engine.mining.mixed import (  # noqa: E402
    DEFAULT_REAL_CLIPS,
    HELD_OUT_RENDER_SEEDS_START,
    MixedFile,
    build_mixed_folder,
)
from engine.mining.sources import expand_sources  # noqa: E402
from engine.mining.stages import UNREADABLE  # noqa: E402
from engine.scenes import write_video  # noqa: E402
from engine.speed.windows import WINDOW_FRAMES  # noqa: E402

log = logging.getLogger("bench.mining")


def _to_rgb(image: np.ndarray, top: int, width_px: int) -> np.ndarray:
    if image.dtype == np.uint16:
        image = (image.astype(np.float64) / max(top, 1) * 255).astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    height = max(2, int(round(image.shape[0] * width_px / image.shape[1] / 2)) * 2)
    return cv2.resize(image, (width_px, height), interpolation=cv2.INTER_AREA)


def add_highspeed(highspeed_dir: Path, folder: Path, width_px: int, max_frames: int) -> list[MixedFile]:
    """The real high-speed PNG sequences, scaled to ``width_px`` and played at 30 fps."""
    truth = []
    for sequence in sorted(p for p in highspeed_dir.iterdir() if p.is_dir()):
        capture = float(sequence.name.rsplit("-", 1)[-1].removesuffix("fps"))
        raw = [
            cv2.imread(str(png), cv2.IMREAD_UNCHANGED) for png in sorted(sequence.glob("*.png"))[:max_frames]
        ]
        if len(raw) < WINDOW_FRAMES:
            log.warning(
                "%s: %d frames, fewer than the detector needs (%d)", sequence.name, len(raw), WINDOW_FRAMES
            )
            continue
        top = max(int(image.max()) for image in raw)
        images = [_to_rgb(image, top, width_px) for image in raw]
        path = folder / "genuine" / f"{sequence.name}-played30.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(images, path, Fraction(30))
        truth.append(MixedFile(str(path.relative_to(folder)), "highspeed_real", True, capture))
    return truth


def machine_cpu() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine since boot, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def task_accounting(rows: list[dict], wall_s: float, cpu_before: tuple[int, int]) -> dict:
    """Per-worker busy time, fixed cost, CPU per task-second, and the machine's CPU use meanwhile."""
    busy_after, total_after = machine_cpu()
    tasks: dict[tuple[str, str], dict] = {}
    for row in complete_rows(rows):
        if "task" in row:
            tasks[(row["source"], row["content_hash"])] = row["task"]
    per_worker: dict[str, float] = {}
    for task in tasks.values():
        per_worker[task["worker"]] = per_worker.get(task["worker"], 0.0) + task["wall_s"]
    task_wall_s = sum(task["wall_s"] for task in tasks.values())
    task_cpu_s = sum(task["cpu_s"] for task in tasks.values())
    cores = os.cpu_count() or 1
    machine_busy_s = (busy_after - cpu_before[0]) / max(total_after - cpu_before[1], 1) * cores * wall_s
    busiest_s = max(per_worker.values()) if per_worker else 0.0
    return {
        "tasks": len(tasks),
        "workers_seen": len(per_worker),
        "task_wall_s_sum": task_wall_s,
        "task_cpu_s_sum": task_cpu_s,
        "cpu_per_task_second": task_cpu_s / task_wall_s if task_wall_s else None,
        "task_wall_s_median": float(np.median([task["wall_s"] for task in tasks.values()]))
        if tasks
        else None,
        "busy_s_per_worker": sorted(per_worker.values(), reverse=True),
        "fixed_cost_s": wall_s - busiest_s,
        "machine_busy_core_s": machine_busy_s,
        "machine_busy_cores": machine_busy_s / wall_s if wall_s else None,
        "others_core_s_estimate": machine_busy_s - task_cpu_s,
    }


def decode_only(files: list[str]) -> dict:
    """Every frame of every file decoded once; the folder's unreadable files are skipped."""
    started = time.perf_counter()
    frames = 0
    video_s = 0.0
    for source in files:
        try:
            with FrameReader(Path(source), strict=False) as reader:
                rate = float(reader.info.frame_rate)
                count = sum(1 for _ in reader.frames())
        except UNREADABLE as error:
            log.info("decode only: %s: %s", Path(source).name, error)
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
        "missed_detail": {
            Path(source).name: [
                {
                    "frames": [row["start_frame"], row["end_frame"]],
                    "class": row["class"],
                    "confidence": row["confidence"],
                    "decided_by": row["detector"]["decided_by"],
                    "reason": row["reason"],
                }
                for row in segments
                if row["source"] == source
            ]
            or [row.get("reason") for row in complete_rows(rows) if row["source"] == source]
            for source in sorted(genuine_files - accepted_files)
        },
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
    cpu_before = machine_cpu()
    started = time.perf_counter()
    summary = mine(MineOptions([str(folder)], out, progress=False, **options))
    wall_s = time.perf_counter() - started
    rows = read_manifest(out / "manifest.jsonl")
    return {
        "wall_s": wall_s,
        "runner": summary.runner,
        "files": summary.files_mined,
        "gate": summary.gate.min_confidence,
        "accounting": task_accounting(rows, wall_s, cpu_before),
        "load_average_after": os.getloadavg(),
    }, rows


def _warm_ray_workers(ray, workers: int) -> float:
    """Start every Ray worker and load the speed model in it (what each worker pays once)."""
    from engine.mining.runners import _run_task

    warm = ray.remote(num_cpus=1)(_run_task)
    started = time.perf_counter()
    ray.get([warm.remote(_load_model) for _ in range(workers)])
    return time.perf_counter() - started


def _load_model() -> str:
    from engine.mining.stages import _model

    return _model(1).provider


CALIBRATION_UNITS = 8
CALIBRATION_LOOPS = 6_000_000


def _spin(loops: int) -> float:
    """A fixed piece of pure CPU work (no I/O, no threads); returns its CPU seconds."""
    started = time.process_time()
    total = 0
    for value in range(loops):
        total += value & 7
    return time.process_time() - started


def parallel_ceiling(workers: int) -> dict:
    """What ``workers`` processes of pure CPU work achieve on this machine right now: the best
    speed-up any pipeline could reach at this moment (other users' load included)."""
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        list(pool.map(_spin, [1000] * workers))
        started = time.perf_counter()
        cpu_s = sum(pool.map(_spin, [CALIBRATION_LOOPS] * CALIBRATION_UNITS))
        wall_s = time.perf_counter() - started
    return {"workers": workers, "wall_s": wall_s, "cpu_s": cpu_s, "cores_used": cpu_s / wall_s}


def calibrate() -> dict:
    one, two = parallel_ceiling(1), parallel_ceiling(2)
    return {"one_process": one, "two_processes": two, "speedup_2_vs_1": one["wall_s"] / two["wall_s"]}


def _same_accepted(ours: dict, reference: dict) -> bool:
    keys = ("accepted_files", "false_positives", "missed", "per_kind")
    return all(ours[key] == reference[key] for key in keys)


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
    parser.add_argument("--renders", type=int, default=8)
    parser.add_argument("--render-seed-start", type=int, default=HELD_OUT_RENDER_SEEDS_START)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--real-frames", type=int, default=150)
    parser.add_argument("--render-frames", type=int, default=192)
    parser.add_argument("--min-confidence", type=float)
    parser.add_argument("--modes", default="decode,inprocess,calibrate,pool1,pool2,ray1,ray2")
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
            render_seeds=tuple(range(args.render_seed_start, args.render_seed_start + args.renders)),
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
        if "calibrate" in modes:
            report["calibration_pure_cpu_before"] = calibrate()
        for workers in (1, 2):
            key = f"pool_{workers}_worker" + ("s" if workers > 1 else "")
            if f"pool{workers}" not in modes:
                continue
            result, rows = run_mode(f"pool{workers}", folder, work, workers=workers, isolate=True, **gate)
            report[key] = per_hour(result, len(files), video_s)
            report[key]["quality"] = quality(rows, truth)
            if "quality" in report:
                report[key]["same_accepted_files_as_in_process"] = _same_accepted(
                    report[key]["quality"], report["quality"]
                )
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
            ray_warm_s = _warm_ray_workers(ray, workers)
            result, rows = run_mode(f"ray{workers}", folder, work, ray_address="local", **gate)
            result["ray_start_s"] = ray_start_s
            result["ray_worker_warm_s"] = ray_warm_s
            report[key] = per_hour(result, len(files), video_s)
            report[key]["quality"] = quality(rows, truth)
            if "quality" in report:
                report[key]["same_accepted_files_as_in_process"] = _same_accepted(
                    report[key]["quality"], report["quality"]
                )
            ray.shutdown()
        if "calibrate" in modes:
            report["calibration_pure_cpu_after"] = calibrate()
        if "in_process" in report:
            base = report["in_process"]["wall_s"]
            for key in ("pool_1_worker", "pool_2_workers", "ray_1_worker", "ray_2_workers"):
                if "wall_s" in report.get(key, {}):
                    report[key]["speedup_vs_in_process"] = base / report[key]["wall_s"]
        for kind in ("pool", "ray"):
            one, two = report.get(f"{kind}_1_worker", {}), report.get(f"{kind}_2_workers", {})
            if "wall_s" in one and "wall_s" in two:
                report[f"{kind}_2_vs_1_worker_speedup"] = one["wall_s"] / two["wall_s"]
                busy_one = max(one["accounting"]["busy_s_per_worker"], default=0.0)
                busy_two = max(two["accounting"]["busy_s_per_worker"], default=0.0)
                if busy_two:
                    report[f"{kind}_2_vs_1_worker_speedup_busy_time"] = busy_one / busy_two
    report["config"]["load_average_end"] = os.getloadavg()
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "config"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
