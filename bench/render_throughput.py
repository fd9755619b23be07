"""Render throughput: a timeline with 3 retimed clips, per model, wall time and peak memory (JSON).

Builds a procedural source clip (moving textured scene) at the given size, a timeline of exactly
``--minutes`` length with three clips slowed to 0.5, 0.25 and 0.1 (each ``--clip-seconds`` long on
the timeline) and the rest at 1x, renders it in a fresh process per model (``--no-engine``,
ProRes, one job), and records wall time and peak resident memory (ru_maxrss of the child).

Every render is checked, and a failed check stops the benchmark: exit status 0, the three
retimed clips rendered with exactly their timeline frames (from the summary, and from counting
the packets of each output file), and the new timeline exactly as long as the original.

With ``--memory-check`` it also renders a timeline of 10 x ``--minutes`` (the same three retimed
clips first, then 1x clips up to exactly that length) with the first model, and compares peak
memory with the render of that model above: the longer timeline must not use more (within
``--memory-tolerance``).
Also times ffmpeg's minterpolate (mci) on the 0.25 clip when the ffmpeg binary is present.
The JSON is rewritten after every render, so a long run that is stopped keeps what it measured.

    python bench/render_throughput.py --memory-check --output bench/results/render_throughput.json
    python bench/render_throughput.py --width 320 --height 180 --minutes 0.25 --models blend flow  # reduced
"""

from __future__ import annotations

import argparse
import json
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
from _common import REPO_ROOT, machine_facts

from engine.fsutil import write_text_atomic

RATE = Fraction(24000, 1001)
SCALARS = (0.5, 0.25, 0.1)


class BenchCheckError(RuntimeError):
    """A render did not produce what the timeline asks for: the timings would mean nothing."""


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


def timeline_frames_for(minutes: float) -> int:
    """Whole timeline frames in ``minutes`` at 24000/1001 (rounded down)."""
    return int(Fraction(minutes).limit_denominator(1000) * 60 * RATE)


def make_timeline(path: Path, source: Path, source_frames: int, total_frames: int, clip_frames: int) -> Path:
    """Three retimed clips of ``clip_frames`` first, then 1x clips to exactly ``total_frames``."""
    rate = RATE.numerator / RATE.denominator
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    reference_range = otio.opentime.TimeRange(
        otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(source_frames, rate)
    )
    placed, position = 0, 0
    while position < total_frames:
        scalar = SCALARS[placed] if placed < len(SCALARS) else 1.0
        duration = min(clip_frames if scalar != 1.0 else clip_frames * 4, total_frames - position)
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
    timeline = otio.schema.Timeline(name=path.stem, tracks=[track])
    _check_timeline(timeline, total_frames, clip_frames)
    otio.adapters.write_to_file(timeline, str(path))
    return path


def _check_timeline(timeline: otio.schema.Timeline, total_frames: int, clip_frames: int) -> None:
    duration = timeline.duration()
    if duration.value != total_frames:
        raise BenchCheckError(f"timeline is {duration.value} frames, wanted {total_frames}")
    retimed = [
        clip
        for clip in timeline.find_clips()
        if any(isinstance(effect, otio.schema.LinearTimeWarp) for effect in clip.effects)
    ]
    lengths = [clip.duration().value for clip in retimed]
    if len(retimed) != len(SCALARS) or any(length != clip_frames for length in lengths):
        raise BenchCheckError(f"retimed clips are {lengths} frames, wanted {len(SCALARS)} x {clip_frames}")


def _packets(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)


def _check_render(summary: dict, outdir: Path, timeline: Path, clip_frames: int) -> list[int]:
    """The frames of each rendered clip, checked against the timeline; raises BenchCheckError."""
    rendered = [c for c in summary["clips"] if c["status"] == "rendered"]
    if len(rendered) != len(SCALARS) or summary["counts"]["failed"] or summary["counts"]["cannot_render"]:
        raise BenchCheckError(f"{outdir}: counts {summary['counts']}, wanted {len(SCALARS)} rendered")
    frames = []
    for clip in rendered:
        written = clip["report"]["frames_written"]
        in_file = _packets(Path(clip["output"]))
        if not written == in_file == clip["timeline_frames"] == clip_frames:
            raise BenchCheckError(
                f"{clip['output']}: {written} frames written, {in_file} in the file, "
                f"{clip['timeline_frames']} on the timeline, wanted {clip_frames}"
            )
        frames.append(in_file)
    original = otio.adapters.read_from_file(str(timeline))
    new = otio.adapters.read_from_file(summary["new_timeline"])
    if new.duration() != original.duration():
        raise BenchCheckError(f"new timeline lasts {new.duration()}, the original {original.duration()}")
    warps = [c.name for c in new.find_clips() if c.effects]
    if warps:
        raise BenchCheckError(f"new timeline keeps warps on {warps}")
    return frames


def run_render(timeline: Path, outdir: Path, model: str, clip_frames: int) -> dict:
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
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    wall_s = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchCheckError(f"render with {model} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    maxrss_kb = next(
        (int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("MAXRSS")), None
    )
    summary = json.loads(done.stdout)
    frames = _check_render(summary, outdir, timeline, clip_frames)
    return {
        "model": model,
        "wall_s": round(wall_s, 2),
        "peak_rss_mib": round(maxrss_kb / 1024, 1) if maxrss_kb else None,
        "timeline_clips": len(summary["clips"]),
        "frames_rendered": sum(frames),
        "frames_per_s": round(sum(frames) / wall_s, 3),
        "checked": "3 clips x timeline frames (summary and file packets), new timeline length, no warps",
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
    # A child of its own reports ffmpeg's peak memory: RUSAGE_CHILDREN here would include the renders.
    wrapper = [
        sys.executable,
        "-c",
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
    ]
    started = time.perf_counter()
    done = subprocess.run(wrapper + command, check=True, capture_output=True, text=True)
    wall_s = time.perf_counter() - started
    return {
        "wall_s": round(wall_s, 2),
        "output_frames": frames * 4,
        "peak_rss_mib": round(int(done.stdout.split()[-1]) / 1024, 1),
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
    parser.add_argument("--models", nargs="+", default=["blend", "flow", "rife", "ensemble"])
    parser.add_argument("--memory-check", action="store_true", help="also render a 10x longer timeline")
    parser.add_argument(
        "--memory-tolerance",
        type=float,
        default=0.05,
        help="relative peak-memory growth the 10x timeline may show before the check fails (default 0.05)",
    )
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    clip_frames = int(Fraction(args.clip_seconds).limit_denominator(1000) * RATE)
    total_frames = timeline_frames_for(args.minutes)
    if total_frames < clip_frames * len(SCALARS):
        parser.error(f"--minutes {args.minutes} is shorter than the three retimed clips")
    source_frames = max(clip_frames * 4 + 10, 120)
    results: dict = {
        "machine": machine_facts(),
        "size": [args.width, args.height],
        "codec": "prores",
        "runner": "--no-engine --jobs 1",
        "timeline_minutes": args.minutes,
        "timeline_frames": total_frames,
        "rate": f"{RATE.numerator}/{RATE.denominator}",
        "retimed_clips": {"scalars": list(SCALARS), "timeline_frames_each": clip_frames},
        "renders": [],
    }

    def save() -> None:
        text = json.dumps(results, indent=1)
        if args.output:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(args.output, text + "\n")

    with tempfile.TemporaryDirectory(prefix="render-bench-") as folder:
        work = Path(folder)
        source = make_source(work / "source.mp4", source_frames, args.width, args.height)
        timeline = make_timeline(work / "one.otio", source, source_frames, total_frames, clip_frames)
        for index, model in enumerate(args.models):
            result = run_render(timeline, work / f"out-{model}", model, clip_frames)
            results["renders"].append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)
            save()
            if index == 0 and args.memory_check:
                long_frames = timeline_frames_for(args.minutes * 10)
                long = make_timeline(work / "ten.otio", source, source_frames, long_frames, clip_frames)
                longer = run_render(long, work / "mem-long", model, clip_frames)
                longer["timeline_frames"] = long_frames
                growth = longer["peak_rss_mib"] / result["peak_rss_mib"] - 1
                results["memory_check"] = {
                    "model": model,
                    "timeline_frames": [total_frames, long_frames],
                    "peak_rss_mib": [result["peak_rss_mib"], longer["peak_rss_mib"]],
                    "growth": round(growth, 4),
                    "tolerance": args.memory_tolerance,
                    "passed": growth <= args.memory_tolerance,
                    "ten_times_longer": longer,
                }
                print(json.dumps(results["memory_check"]), file=sys.stderr, flush=True)
                save()
        results["ffmpeg_minterpolate_quarter_clip"] = run_minterpolate(
            source, clip_frames // 4, work / "minterpolate.mov"
        )
    save()
    print(json.dumps(results, indent=1))
    return 0 if results.get("memory_check", {}).get("passed", True) else 1


if __name__ == "__main__":
    sys.exit(main())
