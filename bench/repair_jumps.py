"""How many frames lost without a timestamp gap `repair` finds, and how many it invents, on real clips.

    .venv/bin/python bench/repair_jumps.py --output bench/results/repair_jumps.json

Each shared real clip's first 140 frames are encoded (H.264 crf 20, timestamps renumbered) at 320
and 640 px wide twice: continuous, and with source frames 30, 61-62 and 100 left out (three jumps:
one, two and one frames lost, as a capture that dropped frames leaves them). ``analyse_clip`` runs
on each with ``jumps="report"``. Counted: the jumps found where frames were lost (and with the
right count), jumps reported anywhere else (in continuous copies, a clip's own lost frames show up
at the same place in every copy), and the share of frames too still to judge (``jumps_unjudged``).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import CLIPS, machine_facts  # noqa: E402
from engine.fsutil import write_text_atomic  # noqa: E402
from engine.repair import analyse_clip  # noqa: E402

log = logging.getLogger("bench.repair_jumps")
FRAMES = 140
LEFT_OUT = (30, 61, 62, 100)


def _copy(clip: Path, width: int, left_out: tuple[int, ...], destination: Path) -> Path:
    chosen = "+".join(f"eq(n\\,{index})" for index in left_out)
    filters = f"select='lt(n\\,{FRAMES})*not({chosen or 0})',setpts=N/FRAME_RATE/TB,scale={width}:-2"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-vf", filters, "-an", "-c:v", "libx264",
         "-crf", "20", "-g", "24", str(destination)],
        check=True,
    )
    return destination


def _lost_before() -> dict[int, int]:
    """Frame index in the copy -> frames lost just before it."""
    kept = [index for index in range(FRAMES) if index not in LEFT_OUT]
    return {i: kept[i] - kept[i - 1] - 1 for i in range(1, len(kept)) if kept[i] - kept[i - 1] > 1}


def _jumps(path: Path) -> tuple[dict[int, int], int, int]:
    plan = analyse_clip(path, jumps="report")
    found = {jump["after_frame"]: jump["missing_frames"] for jump in plan.jumps_reported}
    unjudged = sum(last - first + 1 for first, last in plan.jumps_unjudged)
    return found, unjudged, plan.source_frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=CLIPS, help="folder of real clips (default: shared)")
    parser.add_argument("--output", type=Path, required=True, help="JSON results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    truth = _lost_before()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for clip in sorted(args.clips.iterdir()):
            for width in (320, 640):
                continuous = _copy(clip, width, (), Path(scratch) / f"{clip.stem}_{width}_all.mp4")
                dropped = _copy(clip, width, LEFT_OUT, Path(scratch) / f"{clip.stem}_{width}_lost.mp4")
                found_all, unjudged_all, frames_all = _jumps(continuous)
                found, unjudged, frames = _jumps(dropped)
                row = {
                    "clip": clip.name,
                    "width": width,
                    "jumps": len(truth),
                    "found": sum(index in found for index in truth),
                    "found_with_count": sum(found.get(index) == count for index, count in truth.items()),
                    "elsewhere": sorted(index for index in found if index not in truth),
                    "in_continuous_copy": sorted(found_all),
                    "unjudged_frames": unjudged,
                    "unjudged_frames_continuous": unjudged_all,
                    "frames": frames,
                    "frames_continuous": frames_all,
                }
                rows.append(row)
                log.info("%s %d: %d/%d found, elsewhere %s, continuous %s, %d of %d frames unjudged",
                         clip.name, width, row["found"], row["jumps"], row["elsewhere"],
                         row["in_continuous_copy"], unjudged, frames)
    totals = {
        "jumps": sum(row["jumps"] for row in rows),
        "found": sum(row["found"] for row in rows),
        "found_with_count": sum(row["found_with_count"] for row in rows),
        "elsewhere": sum(len(row["elsewhere"]) for row in rows),
        "in_continuous_copies": sum(len(row["in_continuous_copy"]) for row in rows),
        "unjudged_share": sum(row["unjudged_frames"] for row in rows) / sum(row["frames"] for row in rows),
    }
    result = {"machine": machine_facts(), "left_out": LEFT_OUT, "totals": totals, "rows": rows}
    write_text_atomic(args.output, json.dumps(result, indent=1) + "\n")
    log.info("totals: %s; written %s", totals, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
