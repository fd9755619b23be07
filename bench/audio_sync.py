"""How far stretched sound lands from its frame, per sample rate, container, speed and kind of sound.

For each sample rate (48, 44.1, 32 and 22.05 kHz by default) ffmpeg renders a 3 s clip at 30 fps,
160x90: a grey picture whose corner box flashes white on frames 6, 15, 24, ... 78 (0.2 s to 2.6 s,
every 0.3 s; multiples of 3, so that at speed 0.3 too an output frame shows each flash exactly),
and sound that is silent except for a Hann-shaped burst centred on each flash's time, in turn:
a beep (60 ms of 1 kHz, the sound the retime tests use), a pop (40 ms of 1 kHz: the film 2-pop,
one frame long) and a clap (20 ms of noise). The clip is written as H.264 + AAC in .mp4 and as
H.264 + 16-bit PCM in .mov, then retimed with the real CLI (``chronoscope retime CLIP --speed S
--audio stretch --model flow``; .mp4 gets AAC, .mov keeps PCM) and decoded with PyAV as a player
would: each video frame and each audio frame at its presentation time, after the container's
edit list (the AAC priming skipped).

The offset of a flash is the centre of the sound's energy around it (within 0.15 s / speed) minus
the presentation time of the brightest frame (the flash itself, passed through from the source);
positive is late. atempo (WSOLA) does not move every sound by the same amount: short sounds and
noise come out earlier than longer tones, and a noise burst's offset scatters by several ms from
one burst to the next; the kinds are reported apart. The source clips are measured the same way
(``1 (source)``): the method's own error.

Per case the JSON has the offset of every flash (ms) and the mean per kind, and ``engine``: the
package measured. Baseline: run this script against another checkout (``PYTHONPATH`` set to it;
the CLI is run as ``python -m engine.cli`` from a temporary folder, so ``PYTHONPATH`` wins over
the working directory), e.g. a copy of the last commit's engine:

    mkdir -p /tmp/base && git archive HEAD engine | tar -x -C /tmp/base
    PYTHONPATH=/tmp/base nice -n 5 .venv/bin/python bench/audio_sync.py \\
        --output bench/results/audio_sync_before.json
    nice -n 5 .venv/bin/python bench/audio_sync.py --output bench/results/audio_sync.json
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

log = logging.getLogger("audio_sync")

FPS = 30
FLASH_FRAMES = tuple(range(6, 79, 9))
KINDS = {  # name: (length, carrier)
    "beep": (Fraction(60, 1000), "0.8*sin(2*PI*1000*t)"),
    "pop": (Fraction(40, 1000), "0.8*sin(2*PI*1000*t)"),
    "clap": (Fraction(20, 1000), "0.5*(2*random(0)-1)"),
}
CLIP_S = 3
RATES = (48000, 44100, 32000, 22050)
SPEEDS = ("1/2", "1/4", "1/8", "0.3")
CONTAINERS = {".mp4": ("aac", ["-b:a", "192k"]), ".mov": ("pcm_s16le", [])}


def burst_kind(index: int) -> str:
    return tuple(KINDS)[index % len(KINDS)]


def _burst_expression(flash_s: Fraction, kind: str) -> str:
    """aevalsrc: a Hann-shaped burst of ``kind`` centred on ``flash_s``."""
    length_s, carrier = KINDS[kind]
    start_s = float(flash_s - length_s / 2)
    window = f"(0.5-0.5*cos(2*PI*(t-{start_s:.6f})/{float(length_s):.6f}))"
    inside = f"between(t\\,{start_s:.6f}\\,{start_s + float(length_s):.6f})"
    return f"{carrier}*{window}*{inside}"


def render_clip(path: Path, rate: int) -> Path:
    """The flashing, bursting clip at ``rate`` in ``path``'s container (see the module doc)."""
    audio_codec, audio_options = CONTAINERS[path.suffix]
    enable = "+".join(f"eq(n\\,{n})" for n in FLASH_FRAMES)
    video = (
        f"color=gray:s=160x90:r={FPS}:d={CLIP_S},format=yuv420p,"
        f"drawbox=x=8:y=8:w=24:h=24:color=white:t=fill:enable='{enable}'"
    )
    sound = "+".join(
        _burst_expression(Fraction(n, FPS), burst_kind(i)) for i, n in enumerate(FLASH_FRAMES)
    )
    command = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", video,
        "-f", "lavfi", "-i", f"aevalsrc='{sound}':s={rate}:c=mono:d={CLIP_S}",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", audio_codec, *audio_options,
        "-shortest", str(path),
    ]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return path


def flash_times_s(path: Path) -> list[Fraction]:
    """Presentation time of each flash: the brightest frame of the corner box in each run."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times, levels = [], []
        for frame in container.decode(stream):
            times.append(Fraction(frame.pts) * Fraction(stream.time_base))
            levels.append(float(frame.to_ndarray(format="gray")[8:32, 8:32].mean()))
    levels_array = np.array(levels)
    background = float(np.median(levels_array))
    lit = levels_array > background + 0.5 * (levels_array.max() - background)
    flashes, index = [], 0
    while index < lit.size:
        if not lit[index]:
            index += 1
            continue
        end = index
        while end < lit.size and lit[end]:
            end += 1
        flashes.append(times[index + int(np.argmax(levels_array[index:end]))])
        index = end
    return flashes


def decoded_sound(path: Path) -> tuple[np.ndarray, Fraction, int]:
    """The first audio stream's samples (first channel), the presentation time of the first one,
    and the sample rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        pieces, first_s = [], None
        for frame in container.decode(stream):
            if first_s is None:
                first_s = Fraction(frame.pts) * Fraction(frame.time_base)
            pieces.append(frame.to_ndarray().reshape(len(frame.layout.channels), -1)[0].astype(np.float64))
        return np.concatenate(pieces), first_s or Fraction(0), stream.rate


def energy_centre_s(samples: np.ndarray, first_s: Fraction, rate: int, around_s: Fraction,
                    half_width_s: float) -> float:
    low = max(0, int((float(around_s - first_s) - half_width_s) * rate))
    high = min(samples.size, int((float(around_s - first_s) + half_width_s) * rate))
    energy = np.square(samples[low:high])
    return float(first_s) + (low + float((np.arange(energy.size) * energy).sum() / energy.sum())) / rate


def offsets_ms(path: Path, speed: Fraction) -> list[float]:
    flashes = flash_times_s(path)
    if len(flashes) != len(FLASH_FRAMES):
        raise RuntimeError(f"{path}: {len(flashes)} flashes found, {len(FLASH_FRAMES)} rendered")
    samples, first_s, rate = decoded_sound(path)
    half_width_s = 0.15 / float(speed)
    return [1000 * (energy_centre_s(samples, first_s, rate, at, half_width_s) - float(at)) for at in flashes]


def retime(clip: Path, output: Path, speed: str) -> None:
    """The CLI in a child process, run from the output's folder (``python -m`` would import the
    ``engine`` of the working directory ahead of ``PYTHONPATH``)."""
    command = [sys.executable, "-m", "engine.cli", "--quiet", "retime", str(clip), "--speed", speed,
               "--audio", "stretch", "--model", "flow", "--overwrite", "-o", str(output)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=output.parent)


def engine_measured(folder: Path) -> str:
    """Where the child processes import ``engine`` from."""
    command = [sys.executable, "-c", "import engine; print(engine.__file__)"]
    return subprocess.run(command, check=True, capture_output=True, text=True, cwd=folder).stdout.strip()


def summary(offsets: list[float]) -> dict:
    by_kind = {kind: [v for i, v in enumerate(offsets) if burst_kind(i) == kind] for kind in KINDS}
    return {
        "offsets_ms": [round(v, 2) for v in offsets],
        **{f"{kind}_mean_ms": round(float(np.mean(values)), 2) for kind, values in by_kind.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default=",".join(map(str, RATES)), help="sample rates, comma-separated")
    parser.add_argument("--speeds", default=",".join(SPEEDS), help="speeds, comma-separated")
    parser.add_argument("--containers", default=",".join(CONTAINERS), help=".mp4 (AAC), .mov (PCM)")
    parser.add_argument("--output", type=Path, help="JSON results (default: print only)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = []
    with tempfile.TemporaryDirectory(prefix="audio-sync-") as folder:
        engine_file = engine_measured(Path(folder))
        log.info("measuring the engine in %s", Path(engine_file).parent)
        for rate in (int(r) for r in args.rates.split(",")):
            for suffix in args.containers.split(","):
                clip = render_clip(Path(folder) / f"clip{rate}{suffix}", rate)
                rows.append({"rate": rate, "container": suffix, "speed": "1 (source)",
                             **summary(offsets_ms(clip, Fraction(1)))})
                log.info("%6d %s source: %s", rate, suffix, rows[-1]["offsets_ms"])
                for speed in args.speeds.split(","):
                    output = Path(folder) / f"slow{rate}{suffix}"
                    began = time.monotonic()
                    retime(clip, output, speed)
                    rows.append({"rate": rate, "container": suffix, "speed": speed,
                                 **summary(offsets_ms(output, Fraction(speed)))})
                    log.info("%6d %s %4s: beep %+6.2f ms, pop %+6.2f ms, clap %+6.2f ms (%.0f s) %s",
                             rate, suffix, speed, rows[-1]["beep_mean_ms"], rows[-1]["pop_mean_ms"],
                             rows[-1]["clap_mean_ms"], time.monotonic() - began, rows[-1]["offsets_ms"])
    result = {
        "what": "stretched sound's offset from its frame (ms, positive = late), retime --audio stretch",
        "engine": engine_file,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "pyav": av.__version__,
            "libavfilter": ".".join(map(str, av.library_versions["libavfilter"])),
        },
        "rows": rows,
    }
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=1) + "\n")
        log.info("written %s", args.output)


if __name__ == "__main__":
    main()
