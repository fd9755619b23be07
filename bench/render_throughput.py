"""Render throughput: a timeline with 3 retimed clips, per model, wall time and peak memory (JSON).

Builds a procedural source clip (moving textured scene) at the given size, a timeline of
``--minutes`` length with three clips slowed to 0.5, 0.25 and 0.1 (each ``--clip-seconds`` long on
the timeline) and the rest at 1x, renders it in a fresh process per model (``--no-engine``,
ProRes), and records wall time and peak resident memory (ru_maxrss of the child). Also times
ffmpeg's minterpolate (mci) on the 0.25 clip when the ffmpeg binary is present, and, with
``--memory-check``, renders a 10x longer timeline with the same retimed clips to compare memory.

    python bench/render_throughput.py --output bench/results/render_throughput.json
    python bench/render_throughput.py --width 320 --height 180 --minutes 0.25 --models blend flow  # reduced
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import opentimelineio as otio

REPO = Path(__file__).resolve().parent.parent
RATE = Fraction(24000, 1001)


def _scene(index: int, width: int, height: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    shift = index * 3.0
    texture = (np.sin((x + shift) / 17.0) * np.cos(y / 23.0) * 90 + 128).astype(np.uint8)
    image = np.stack([texture, np.roll(texture, index, axis=0), 255 - texture], axis=2)
    cx = int((index * 7) % width)
    image[height // 3 : height // 3 + height // 6, max(0, cx - 20) : cx + 20] = (250, 240, 10)
    return image


def make_source(path: Path, frames: int, width: int, height: int) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "20", "g": "24"}
        for index in range(frames):
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(_scene(index, width, height), format="rgb24")
            ):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def make_timeline(path: Path, source: Path, source_frames: int, minutes: float, clip_frames: int) -> Path:
    rate = float(RATE)
    total = int(minutes * 60 * rate)
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    reference_range = otio.opentime.TimeRange(
        otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(source_frames, rate)
    )
    placed, position = 0, 0
    scalars = [0.5, 0.25, 0.1]
    while position < total:
        scalar = scalars[placed] if placed < len(scalars) else 1.0
        duration = clip_frames if scalar != 1.0 else min(clip_frames * 4, total - position)
        start = (position // 7) % max(1, source_frames - duration - 2) if scalar == 1.0 else 0
        clip = otio.schema.Clip(
            name=f"clip{placed}",
            media_reference=otio.schema.ExternalReference(
                target_url=str(source), available_range=reference_range
            ),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(start, rate), otio.opentime.RationalTime(duration, rate)
            ),
        )
        if scalar != 1.0:
            clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=scalar))
        track.append(clip)
        placed += 1
        position += duration
    otio.adapters.write_to_file(otio.schema.Timeline(name=path.stem, tracks=[track]), str(path))
    return path


def run_render(timeline: Path, outdir: Path, model: str) -> dict:
    command = [
        sys.executable,
        "-c",
        "import resource, sys; from engine.cli import main; code = main(sys.argv[1:]); "
        "print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); "
        "sys.exit(code)",
        "-q",
        "render",
        str(timeline),
        "-o",
        str(outdir),
        "--model",
        model,
        "--codec",
        "prores",
        "--no-engine",
        "--jobs",
        "1",
        "--json",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    wall_s = time.perf_counter() - started
    maxrss_kb = next(
        (int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("MAXRSS")), None
    )
    summary = json.loads(done.stdout) if done.returncode == 0 else None
    rendered = [c for c in (summary or {}).get("clips", []) if c["status"] == "rendered"]
    frames = sum(c["report"]["frames_written"] for c in rendered)
    return {
        "model": model,
        "exit_status": done.returncode,
        "wall_s": round(wall_s, 2),
        "peak_rss_mib": round(maxrss_kb / 1024, 1) if maxrss_kb else None,
        "frames_rendered": frames,
        "frames_per_s": round(frames / wall_s, 2) if wall_s else None,
        "error": None if done.returncode == 0 else done.stderr.strip().splitlines()[-1:],
    }


def run_minterpolate(source: Path, frames: int, out: Path) -> dict | None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return None
    rate = RATE * 4
    command = [
        ffmpeg,
        "-v",
        "error",
        "-y",
        "-i",
        str(source),
        "-frames:v",
        str(frames),
        "-vf",
        f"minterpolate=fps={rate.numerator}/{rate.denominator}:mi_mode=mci,setpts=4*PTS",
        "-c:v",
        "prores_ks",
        "-profile:v",
        "3",
        str(out),
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    wall_s = time.perf_counter() - started
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "wall_s": round(wall_s, 2),
        "output_frames": frames * 4,
        "peak_rss_mib_children_max": round(child / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument(
        "--clip-seconds", type=float, default=2.0, help="timeline length of each retimed clip"
    )
    parser.add_argument("--models", nargs="+", default=["blend", "flow", "rife-hdv3", "ensemble"])
    parser.add_argument("--memory-check", action="store_true", help="also render a 10x longer timeline")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    clip_frames = int(args.clip_seconds * float(RATE))
    source_frames = max(clip_frames * 4 + 10, 120)
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "size": [args.width, args.height],
        "timeline_minutes": args.minutes,
        "retimed_clips": {"scalars": [0.5, 0.25, 0.1], "timeline_frames_each": clip_frames},
        "renders": [],
    }
    with tempfile.TemporaryDirectory(prefix="render-bench-") as folder:
        work = Path(folder)
        source = make_source(work / "source.mp4", source_frames, args.width, args.height)
        timeline = make_timeline(work / "one.otio", source, source_frames, args.minutes, clip_frames)
        for model in args.models:
            results["renders"].append(run_render(timeline, work / f"out-{model}", model))
        if args.memory_check:
            long = make_timeline(work / "ten.otio", source, source_frames, args.minutes * 10, clip_frames)
            results["memory_check"] = {
                "short": run_render(timeline, work / "mem-short", args.models[0]),
                "ten_times_longer": run_render(long, work / "mem-long", args.models[0]),
            }
        results["ffmpeg_minterpolate_quarter_clip"] = run_minterpolate(
            source, clip_frames // 4, work / "minterpolate.mov"
        )
    text = json.dumps(results, indent=1)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
