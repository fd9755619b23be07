"""Decode throughput of engine.media.FrameReader next to the ffmpeg CLI, on a 1080p H.264 clip.

Measures frames per second at full size (RGB24 arrays) and at quarter size (960x540, scaled in
swscale while converting), then `ffmpeg -hide_banner -i CLIP -f null -` and the same with
`-vf scale=960:540` on the same clip, alternating, best of --repeat runs (the machine may be
shared), plus peak RSS: this process's (the reader's; the test clip is rendered in a child
process) and ffmpeg's (VmHWM sampled from /proc). Without --clip it renders a ~10 s 1080p test
clip with PyAV into a temporary folder. Writes JSON to --output.

examples:
  python bench/decode_throughput.py --output bench/results/decode_throughput.json
  python bench/decode_throughput.py --clip ../shared/data/clips/sam2-dog.mp4 --output /tmp/dt.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.fsutil import write_text_atomic  # noqa: E402
from engine.media import FrameReader, VideoWriter, probe_video  # noqa: E402

QUARTER_SIZE = (960, 540)


def render_test_clip(path: Path, *, seconds: int = 10, rate: Fraction = Fraction(30000, 1001)) -> Path:
    """A 1920x1080 H.264 clip with moving texture (so the encoder has real work), ~``seconds`` long."""
    frame_count = int(seconds * rate)
    y, x = np.mgrid[0:1080, 0:1920]
    base = ((x // 8 + y // 8) % 2 * 60).astype(np.uint8)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 40, (1080, 1920), dtype=np.uint8)
    with VideoWriter(path, rate=rate, codec="h264", quality=23) as writer:
        for n in range(frame_count):
            shift = (n * 7) % 1920
            red = np.roll(base, shift, axis=1) + noise
            green = np.roll(noise, n * 3, axis=0) + (y * 255 // 1079).astype(np.uint8) // 2
            blue = ((x + n * 5) % 256).astype(np.uint8)
            writer.write(np.stack([red, green, blue], axis=2))
    return path


def time_reader(clip: Path, size: tuple[int, int] | None) -> dict:
    start = time.perf_counter()
    count = 0
    checksum = 0
    with FrameReader(clip, size=size) as reader:
        for frame in reader:
            count += 1
            checksum += int(frame.image[0, 0, 0])
    seconds = time.perf_counter() - start
    return {
        "frames": count,
        "seconds": round(seconds, 3),
        "fps": round(count / seconds, 1),
        "checksum": checksum,
    }


def time_ffmpeg(ffmpeg: str, clip: Path, scale: tuple[int, int] | None, frame_count: int) -> dict:
    command = [ffmpeg, "-hide_banner", "-nostats", "-i", str(clip)]
    if scale:
        command += ["-vf", f"scale={scale[0]}:{scale[1]}"]
    command += ["-f", "null", "-"]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak_kib = 0
    while process.poll() is None:
        peak_kib = max(peak_kib, _high_water_kib(process.pid))
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with status {process.returncode}")
    return {
        "command": " ".join(command),
        "seconds": round(seconds, 3),
        "fps": round(frame_count / seconds, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
    }


def _high_water_kib(pid: int) -> int:
    """VmHWM of a running process (its own peak RSS; getrusage would include what fork inherited)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"VmHWM:\s+(\d+) kB", text)
    return int(found.group(1)) if found else 0


def best_of(runs: list[dict]) -> dict:
    """The fastest of repeated runs (the machine is shared; the minimum time is the least disturbed)."""
    best = dict(min(runs, key=lambda run: run["seconds"]))
    best["all_seconds"] = [run["seconds"] for run in runs]
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--clip", type=Path, help="a clip to decode (default: render a 10 s 1080p H.264 clip)"
    )
    parser.add_argument("--seconds", type=int, default=10, help="length of the rendered clip (default 10)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each measurement; the fastest counts")
    parser.add_argument("--output", type=Path, help="where to write the JSON result")
    parser.add_argument("--render-only", type=Path, metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--save-clip", type=Path, metavar="PATH", help="keep the rendered test clip here")
    args = parser.parse_args(argv)
    if args.render_only is not None:
        render_test_clip(args.render_only, seconds=args.seconds)
        return 0
    if args.output is None:
        parser.error("--output is required")

    with tempfile.TemporaryDirectory(prefix="chronoscope-bench-") as scratch:
        clip = args.clip
        render_s = None
        if clip is None:
            start = time.perf_counter()
            # In a child process, so that this process's peak RSS is the reader's alone.
            clip = Path(scratch) / "bench-1080p.mp4"
            subprocess.run(
                [sys.executable, __file__, "--render-only", str(clip), "--seconds", str(args.seconds)],
                check=True,
            )
            render_s = round(time.perf_counter() - start, 1)
        if args.save_clip is not None and args.clip is None:
            shutil.copyfile(clip, args.save_clip)
        video = probe_video(clip)
        results: dict = {
            "clip": str(clip)
            if args.clip
            else f"rendered {video.width}x{video.height} H.264, {args.seconds} s",
            "width": video.width,
            "height": video.height,
            "frame_count": video.frame_count,
            "frame_rate": f"{video.frame_rate.numerator}/{video.frame_rate.denominator}",
            "render_s": render_s,
            "machine": {
                "python": platform.python_version(),
                "pyav": av.__version__,
                "cpu_count": os.cpu_count(),
                "platform": platform.platform(),
            },
        }
        ffmpeg = shutil.which("ffmpeg")
        runs: dict[str, list[dict]] = {}
        for _ in range(max(1, args.repeat)):
            for label, size in (("full", None), ("quarter", QUARTER_SIZE)):
                runs.setdefault(f"reader_{label}", []).append(time_reader(clip, size))
                if ffmpeg:
                    runs.setdefault(f"ffmpeg_{label}", []).append(
                        time_ffmpeg(ffmpeg, clip, size, video.frame_count)
                    )
        results.update({key: best_of(value) for key, value in runs.items()})
        results["reader_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        if not ffmpeg:
            results["ffmpeg_full"] = results["ffmpeg_quarter"] = "ffmpeg not found on PATH"
    write_text_atomic(args.output, json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
