"""Retime memory and exactness (issue 3): a short and a long 1080p clip retimed at 0.25x, each in
its own process, peak resident memory from ``resource.getrusage``; JSON out.

Checks, per run: the output has exactly 4x the source frames; peak memory of the long clip against
the short one (it must not grow with length); and, on a clip with a cut in the middle, that no
synthesized frame blends across the cut: ``blended_at_middle_pair`` counts the in-betweens of the
pair at the cut that the scene-cut guard did not answer with the nearer frame (must be 0 for "cut").

Test clips are frames of /work/shared/data/clips (gopro-max-heromode.mp4, then sam2-dog.mp4 after
the cut) scaled to the chosen size, looped to the length wanted, written with
engine.media.write_video (H.264).

    python bench/retime_memory.py --output bench/results/retime_memory.json            # 10 s vs 60 s, flow
    python bench/retime_memory.py --seconds 2 --long-seconds 6 --height 540 --models blend   # reduced
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from engine.fsutil import write_text_atomic  # noqa: E402
from engine.media import FrameReader, VideoWriter, probe  # noqa: E402

CLIPS = REPO.parent / "shared" / "data" / "clips"
RATE = Fraction(24)
SPEED = "1/4"


def _frames(source: Path, size: tuple[int, int], count: int):
    """``count`` frames of ``source`` at ``size``, from the start again as often as needed (each
    restart is a jump in the picture, like a cut)."""
    produced = 0
    while produced < count:
        with FrameReader(source, size=size) as reader:
            for frame in reader.frames():
                if produced == count:
                    return
                produced += 1
                yield frame.image


def make_clip(path: Path, seconds: int, size: tuple[int, int], *, cut: bool) -> Path:
    count = int(seconds * RATE)
    first = count // 2 if cut else count
    with VideoWriter(path, rate=RATE, codec="h264", quality=18) as writer:
        for image in _frames(CLIPS / "gopro-max-heromode.mp4", size, first):
            writer.write(image)
        if cut:
            for image in _frames(CLIPS / "sam2-dog.mp4", size, count - first):
                writer.write(image)
    return path


def child(source: Path, output: Path, model: str) -> None:
    from engine.retime import retime_clip

    started = time.perf_counter()
    report = retime_clip(source, output, speed=SPEED, model=model, audio="drop", overwrite=True)
    source_frames = probe(source).video_stream.frame_count
    cut_frame = source_frames // 2
    across = [r.output_frame for r in report.risk if r.source_frame == cut_frame - 1]
    guarded = {
        frame
        for note in report.notes
        if "scene cut" in note.note
        for frame in range(note.first_output_frame, note.last_output_frame + 1)
    }
    result = {
        "source_frames": source_frames,
        "output_frames": report.frames_written,
        "exactly_4x": report.frames_written == 4 * source_frames,
        "frames_synthesized": report.frames_synthesized,
        "frames_at_middle_pair": len(across),
        "blended_at_middle_pair": len([frame for frame in across if frame not in guarded]),
        "scene_cut_fallback_frames": len(guarded),
        "notes": [n.note for n in report.notes][:5],
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    sys.stdout.write(json.dumps(result) + "\n")


def run_child(source: Path, output: Path, model: str) -> dict:
    completed = subprocess.run(
        [sys.executable, __file__, "--child", str(source), str(output), model],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _progress(run: dict) -> None:
    sys.stderr.write(
        f"{run['clip']} {run['model']}: {run['output_frames']} frames, {run['seconds']} s, "
        f"peak {run['peak_rss_mib']} MiB\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--long-seconds", type=int, default=60, help="0: no long clip")
    parser.add_argument("--no-cut", action="store_true", help="leave out the clip with a cut")
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--models", nargs="+", default=["flow"])
    parser.add_argument(
        "--long-models", nargs="+", default=None, help="models for the long clip (default --models)"
    )
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--child", nargs=3, metavar=("SOURCE", "OUTPUT", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.child[2])
        return 0
    size = (round(args.height * 16 / 9 / 2) * 2, args.height)
    results: dict = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_start": os.getloadavg(),
        },
        "size": list(size),
        "rate": str(RATE),
        "speed": SPEED,
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="retime-memory-") as folder:
        work = Path(folder)
        short = make_clip(work / "short.mp4", args.seconds, size, cut=False)
        clips = [("short", short)]
        if not args.no_cut:
            clips.append(("cut", make_clip(work / "cut.mp4", args.seconds, size, cut=True)))
        for model in args.models:
            for name, clip in clips:
                run = run_child(clip, work / f"{name}_{model}.mp4", model)
                results["runs"].append({"clip": name, "model": model, **run})
                _progress(results["runs"][-1])
        long = make_clip(work / "long.mp4", args.long_seconds, size, cut=False) if args.long_seconds else None
        for model in (args.long_models or args.models) if long else []:
            run = run_child(long, work / f"long_{model}.mp4", model)
            results["runs"].append({"clip": "long", "model": model, **run})
            _progress(results["runs"][-1])
    results["machine"]["load_average_end"] = os.getloadavg()
    by_key = {(r["clip"], r["model"]): r for r in results["runs"]}
    results["memory_ratio_long_vs_short"] = {
        model: round(by_key[("long", model)]["peak_rss_mib"] / by_key[("short", model)]["peak_rss_mib"], 3)
        for model in (args.long_models or args.models)
        if ("short", model) in by_key and ("long", model) in by_key
    }
    text = json.dumps(results, indent=1) + "\n"
    if args.output:
        write_text_atomic(args.output, text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
