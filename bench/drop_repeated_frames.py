"""Write a clip without the exact repeats a camera padded it with, at the rate it really ran.

    .venv/bin/python bench/drop_repeated_frames.py IN.mp4 OUT.mp4

Some cameras fill a 30 fps stream from a slower sensor by repeating a frame now and then (the
ffmpegfs snowboard clip repeats one frame in nine: a 26.7 fps capture). Training reads such a clip
as ordinary footage at its stream rate, so each repeat would look like made slow motion. A frame
whose mean absolute grey difference to the one before is below ``--threshold`` (at a quarter of the
size, 0 to 255) is dropped, and the rest are written at stream rate x kept / all frames. Use it only
on footage that never holds still: a repeat cannot be told from a still moment.
"""

from __future__ import annotations

import argparse
import logging
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.media import VideoWriter, probe  # noqa: E402

log = logging.getLogger("drop_repeated_frames")


def repeated_frames(source: Path, threshold: float) -> list[bool]:
    """For every frame, whether it repeats the one before (first pass: greys at a quarter size)."""
    flags, previous = [], None
    with av.open(str(source)) as container:
        for frame in container.decode(video=0):
            grey = frame.to_ndarray(format="gray")[::4, ::4].astype(np.float32)
            flags.append(previous is not None and float(np.abs(grey - previous).mean()) < threshold)
            previous = grey
    return flags


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument(
        "--threshold", type=float, default=1.0, help="grey difference below which a frame repeats"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rate = probe(args.source).video_stream.frame_rate
    repeats = repeated_frames(args.source, args.threshold)
    kept = repeats.count(False)
    true_rate = (Fraction(rate) * kept / len(repeats)).limit_denominator(1001)
    name = args.source.name
    log.info("%s: %d of %d frames kept; %s fps becomes %s", name, kept, len(repeats), rate, true_rate)
    with av.open(str(args.source)) as container, VideoWriter(
        args.output, rate=true_rate, codec="h264", quality=16
    ) as writer:
        for frame, repeat in zip(container.decode(video=0), repeats, strict=False):
            if not repeat:
                writer.write(frame.to_ndarray(format="rgb24"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
