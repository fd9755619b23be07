"""How well the duplicate test tells repeated frames from motion, on real clips re-encoded.

    .venv/bin/python bench/duplicate_levels.py --output bench/results/duplicate_levels.json

Each shared real clip's first 40 frames, at their size and 640 wide, are shown twice each (as
duplicated "slow motion" and telecine leave them) and encoded with H.264 at crf 18 and 28. Every
pair is then either a repeat (frames 2k, 2k + 1) or motion (2k + 1, 2k + 2). For each pair the
three numbers of ``engine.interp.duplicates`` are measured (mean and 99.5th-percentile luma
difference, largest 8 px window change), and the test's verdict is counted three ways side by
side: the fixed test as it stands, without the window condition (the test before it), and in
context (``duplicates_in_context``, what ``repair`` uses: the pairs around each one known). The
same 40 frames shown once and encoded alike (``continuous``) count what the tests take for repeats
in footage that has none. A repeat called motion is a duplicate missed; motion called a repeat is
a false duplicate (a held or replaced frame).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import CLIPS, machine_facts  # noqa: E402
from engine.fsutil import write_text_atomic  # noqa: E402
from engine.interp import duplicates  # noqa: E402
from engine.media import FrameReader  # noqa: E402

log = logging.getLogger("bench.duplicate_levels")
FRAMES = 40


def _frames(clip: Path, width: int | None) -> list[np.ndarray]:
    images = []
    with FrameReader(clip, exact_levels=False) as reader:
        for frame in reader.frames():
            image = frame.image
            if width is not None:
                height = round(image.shape[0] * width / image.shape[1] / 2) * 2
                image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
            images.append(np.ascontiguousarray(image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]))
            if len(images) == FRAMES:
                break
    return images


def _encoded(images: list[np.ndarray], crf: int, path: Path) -> list[np.ndarray]:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width = images[0].shape[:2]
        stream.pix_fmt, stream.options = "yuv420p", {"crf": str(crf), "g": "12"}
        for index, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with FrameReader(path, exact_levels=False) as reader:
        return [frame.image for frame in reader.frames()]


def _verdicts(differences: list[duplicates.PairDifference], in_context: list[bool]) -> dict[str, object]:
    now = sum(difference.is_duplicate() for difference in differences)
    before = sum(difference.is_duplicate(block_tolerance=float("inf")) for difference in differences)
    values = np.asarray([(d.mean, d.peak, d.block) for d in differences])
    return {
        "pairs": len(differences),
        "called_duplicate": int(now),
        "called_duplicate_without_window": int(before),
        "called_duplicate_in_context": int(sum(in_context)),
        "mean_max": float(values[:, 0].max()),
        "peak_min": float(values[:, 1].min()),
        "peak_max": float(values[:, 1].max()),
        "window_min": float(values[:, 2].min()),
        "window_max": float(values[:, 2].max()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=CLIPS, help="folder of real clips (default: shared)")
    parser.add_argument("--output", type=Path, required=True, help="JSON results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for clip in sorted(args.clips.iterdir()):
            for width in (None, 640):
                images = _frames(clip, width)
                doubled = [image for image in images for _ in (0, 1)]
                for crf in (18, 28):
                    back = _encoded(doubled, crf, Path(scratch) / f"{clip.stem}.mp4")
                    pairs = [duplicates.pair_difference(back[k - 1], back[k]) for k in range(1, len(back))]
                    context = duplicates.duplicates_in_context(pairs)
                    once = _encoded(images, crf, Path(scratch) / f"{clip.stem}-once.mp4")
                    plain = [duplicates.pair_difference(once[k - 1], once[k]) for k in range(1, len(once))]
                    row = {"clip": clip.name, "width": width or images[0].shape[1], "crf": crf,
                           "repeats": _verdicts(pairs[0::2], context[0::2]),
                           "motion": _verdicts(pairs[1::2], context[1::2]),
                           "continuous": _verdicts(plain, duplicates.duplicates_in_context(plain))}
                    rows.append(row)
                    log.info("%s %s crf %d: repeats %d/%d found (%d in context), motion %d/%d called "
                             "repeats (%d), continuous %d/%d (%d)", clip.name, row["width"], crf,
                             *(row[kind][key] for kind in ("repeats", "motion", "continuous")
                               for key in ("called_duplicate", "pairs", "called_duplicate_in_context")))
    keys = ("pairs", "called_duplicate", "called_duplicate_without_window", "called_duplicate_in_context")
    totals = {
        f"{kind} crf {crf}": {key: sum(row[kind][key] for row in rows if row["crf"] == crf) for key in keys}
        for kind in ("repeats", "motion", "continuous")
        for crf in (18, 28)
    }
    result = {"machine": machine_facts(), "tolerances": {"mean": duplicates.MEAN_TOLERANCE,
              "peak": duplicates.PEAK_TOLERANCE, "window": duplicates.BLOCK_TOLERANCE},
              "totals": totals, "rows": rows}
    write_text_atomic(args.output, json.dumps(result, indent=1) + "\n")
    log.info("totals: %s; written %s", totals, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
