"""Frame-synthesis speed and peak memory at 540p, 1080p and 4K, per backend, against ffmpeg minterpolate.

The frame pair is two frames of a real clip (shared/data/clips/sam2-juggle.mp4, frames 0 and 2,
1280x720) resized to each size, so the motion scales with the picture as it would in footage.

Each backend runs in its own child process (so that its peak memory is its own): it loads the
pair, makes one untimed frame at t = 1/2 (warm-up: ONNX sessions, OpenCV threads), then times
``--repeats`` frames and reports frames per second (from the median) and the process's peak
resident memory, and the peak minus the resident memory before the first frame (what synthesis
itself needed).

ffmpeg minterpolate (defaults, mi_mode=mci) gets the same pair as raw RGB video on a pipe
(a, b, a, b, ... at 1 fps, doubled to 2 fps, output discarded; scene-change detection off so that
every frame is really interpolated), so no PNG encoding is counted; frames per second are
interpolated frames over wall time, and its peak memory and CPU time come from the operating
system's accounting of the child (``os.wait4``).

On a shared, loaded machine wall time swings several-fold between runs, so each row also gives
CPU seconds per frame (user + system, all threads): a load-independent cost. It counts both
cores for multi-threaded OpenCV work and one for ffmpeg's single-threaded filter, so it is the
conservative comparison for our backends.

All in one run on one machine; the JSON records the machine's load.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import CLIPS, clip_frames, machine_facts  # noqa: E402

from engine.errors import ChronoscopeError  # noqa: E402
from engine.fsutil import write_text_atomic  # noqa: E402

log = logging.getLogger("bench.tsr_speed")

SIZES = {"540p": (960, 540), "1080p": (1920, 1080), "4K": (3840, 2160)}
DEFAULT_BACKENDS = ("blend", "flow", "rife-hdv3", "rife-4.2x", "ensemble")
SOURCE_CLIP = CLIPS / "sam2-juggle.mp4"
MINTERPOLATE_INPUT_FRAMES = 4

EPILOG = """\
examples:
  CHRONOSCOPE_MODELS_DIR=build/models python bench/tsr_speed.py --output bench/results/tsr_speed.json
  python bench/tsr_speed.py --output /tmp/s.json --sizes 1080p --backends flow --repeats 3
"""


def frame_pair(size: str) -> tuple[np.ndarray, np.ndarray]:
    """Frames 0 and 2 of the source clip, resized to ``size``."""
    width, height = SIZES[size]
    frames = clip_frames(SOURCE_CLIP, frames=3, width=1280)
    return tuple(
        cv2.resize(frames[index], (width, height), interpolation=cv2.INTER_CUBIC) for index in (0, 2)
    )


def peak_rss_bytes() -> int:
    """Peak resident memory of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def current_rss_bytes() -> int:
    """Resident memory now (Linux /proc; falls back to the peak elsewhere)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return peak_rss_bytes()


def cpu_seconds(who: int) -> float:
    """User plus system CPU time of this process (all its threads) or of its waited-for children."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def child(backend_name: str, size: str, repeats: int) -> dict:
    """Measure one backend at one size in this (child) process."""
    from engine.interp import create_backend

    frame0, frame1 = frame_pair(size)
    backend = create_backend(backend_name)
    before = current_rss_bytes()
    first = backend.synthesize(frame0, frame1, 0.5)
    times_s = []
    cpu_started_s = cpu_seconds(resource.RUSAGE_SELF)
    for _ in range(repeats):
        started = time.perf_counter()
        backend.synthesize(frame0, frame1, 0.5)
        times_s.append(time.perf_counter() - started)
    cpu_per_frame_s = (cpu_seconds(resource.RUSAGE_SELF) - cpu_started_s) / repeats
    median_s = statistics.median(times_s)
    return {
        "method": backend_name,
        "size": size,
        "frames_per_s": round(1.0 / median_s, 4),
        "seconds_per_frame": [round(value, 4) for value in times_s],
        "cpu_seconds_per_frame": round(cpu_per_frame_s, 4),
        "peak_rss_mib": round(peak_rss_bytes() / 2**20, 1),
        "synthesis_peak_mib": round((peak_rss_bytes() - before) / 2**20, 1),
        "execution_provider": backend.execution_provider,
        "notes": first.notes,
    }


def run_child(backend_name: str, size: str, repeats: int) -> dict:
    command = [sys.executable, __file__, "--child", backend_name, size, str(repeats)]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        tail = completed.stderr.strip().splitlines()[-1:] or ["no output"]
        raise ChronoscopeError(f"{backend_name} at {size} failed: {tail[0]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def minterpolate(ffmpeg: str, size: str) -> dict:
    frame0, frame1 = frame_pair(size)
    width, height = SIZES[size]
    command = [
        ffmpeg,
        "-v",
        "error",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-r",
        "1",
        "-i",
        "-",
        "-vf",
        "minterpolate=fps=2:mi_mode=mci",
        "-f",
        "null",
        "-",
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    for index in range(MINTERPOLATE_INPUT_FRAMES):
        process.stdin.write((frame0 if index % 2 == 0 else frame1).tobytes())
    process.stdin.close()
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed_s = time.perf_counter() - started
    if status != 0:
        raise ChronoscopeError(
            f"ffmpeg minterpolate at {size} failed: {errors.decode(errors='replace')[-200:]}"
        )
    made = MINTERPOLATE_INPUT_FRAMES - 1
    cpu_per_frame_s = (usage.ru_utime + usage.ru_stime) / made
    peak = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
    return {
        "method": "ffmpeg-minterpolate",
        "size": size,
        "frames_per_s": round(made / elapsed_s, 4),
        "seconds_per_frame": [round(elapsed_s / made, 4)],
        "cpu_seconds_per_frame": round(cpu_per_frame_s, 4),
        "peak_rss_mib": round(peak / 2**20, 1),
        "synthesis_peak_mib": None,
        "execution_provider": "CPU (ffmpeg)",
        "notes": [
            f"{MINTERPOLATE_INPUT_FRAMES} frames piped as rawvideo, {made} interpolated, "
            "process start included"
        ],
    }


def _parsed_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output", type=Path, help="JSON file to write")
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    parser.add_argument("--backends", nargs="+", default=list(DEFAULT_BACKENDS))
    parser.add_argument("--repeats", type=int, default=2, help="timed frames per backend and size (median)")
    parser.add_argument("--no-ffmpeg", action="store_true", help="leave out ffmpeg minterpolate")
    parser.add_argument("--ffmpeg", default="ffmpeg", help="ffmpeg executable (default: on PATH)")
    parser.add_argument("--child", nargs=3, metavar=("BACKEND", "SIZE", "REPEATS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.child and not args.output:
        parser.error("--output is required")
    if args.repeats < 1:
        parser.error("--repeats must be 1 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parsed_args(argv)
    if args.child:
        logging.basicConfig(level=logging.WARNING)
        backend_name, size, repeats = args.child
        print(json.dumps(child(backend_name, size, int(repeats))))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ffmpeg = None if args.no_ffmpeg else shutil.which(args.ffmpeg)
    if not args.no_ffmpeg and not ffmpeg:
        log.warning("ffmpeg not found as %r: the minterpolate baseline is left out", args.ffmpeg)
    load_before = machine_facts()["load_average_1_5_15_min"]
    rows = []
    for size in args.sizes:
        if ffmpeg:
            rows.append(minterpolate(ffmpeg, size))
            log.info("%s ffmpeg-minterpolate %.3f frames/s", size, rows[-1]["frames_per_s"])
        for name in args.backends:
            try:
                rows.append(run_child(name, size, args.repeats))
            except ChronoscopeError as error:
                log.warning("%s", error)
                continue
            log.info("%s %s %.3f frames/s", size, name, rows[-1]["frames_per_s"])
    speedups = {}
    for size in args.sizes:
        reference = next(
            (row for row in rows if row["size"] == size and row["method"] == "ffmpeg-minterpolate"), None
        )
        if reference:
            speedups[size] = {
                row["method"]: {
                    "wall": round(row["frames_per_s"] / reference["frames_per_s"], 2),
                    "cpu": round(
                        reference["cpu_seconds_per_frame"] / max(row["cpu_seconds_per_frame"], 1e-9), 2
                    ),
                }
                for row in rows
                if row["size"] == size and row["method"] != "ffmpeg-minterpolate"
            }
    report = {
        "benchmark": "tsr_speed",
        "source": f"{SOURCE_CLIP.name} frames 0 and 2, resized",
        "sizes": {size: SIZES[size] for size in args.sizes},
        "machine": machine_facts(),
        "load_average_at_start": load_before,
        "results": rows,
        "speedup_vs_minterpolate": speedups,
    }
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    print(
        f"{'size':6s} {'method':20s} {'frames/s':>9s} {'cpu s/fr':>9s} {'peak MiB':>9s} {'synth MiB':>9s} "
        f"{'x wall':>7s} {'x cpu':>7s}"
    )
    for row in rows:
        ratio = speedups.get(row["size"], {}).get(row["method"], {"wall": 1.0, "cpu": 1.0})
        extra = "" if row["synthesis_peak_mib"] is None else f"{row['synthesis_peak_mib']:9.1f}"
        print(
            f"{row['size']:6s} {row['method']:20s} {row['frames_per_s']:9.3f} "
            f"{row['cpu_seconds_per_frame']:9.3f} {row['peak_rss_mib']:9.1f} {extra:>9s} "
            f"{ratio['wall']:7.2f} {ratio['cpu']:7.2f}"
        )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
