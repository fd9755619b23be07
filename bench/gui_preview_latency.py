"""Preview latency in the app: from a scrub to the generated frame shown, at 720p, ``flow`` model.

Runs the real app window offscreen against a real engine process (started in a private
CHRONOSCOPE_HOME), opens a 720p clip from ../shared/data, sets the retime target (1/4 by default)
and scrubs to random in-between positions, one at a time. For each, the clock runs from
``MainWindow.seek`` to the ``preview_shown`` signal, on the UI thread: reading the two source
frames, sending them to the engine, synthesis, the reply, and handing the frame to the viewer.
The first scrub (cold: backend created, decoder warmed) is reported apart from the rest.

For a model with a draft setting (``flow``: DIS "ultrafast" at half flow scale, no splatting;
output stays 720p),
the first frame shown is the draft; the full-quality frame follows once the playhead rests.
Both times are reported.

Also measures a fast scrub: 30 positions with no pause between them, to show that stale requests
are dropped (only the last position is synthesized and shown).

Target (issue 7): under 1 s per scrub on the CPU. Writes JSON to stdout and ``--output``.

    .venv/bin/python bench/gui_preview_latency.py --output bench/results/gui_preview_latency.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
DEFAULT_CLIP = REPO_ROOT.parent / "shared" / "data" / "clips" / "sam2-dog.mp4"


def _parsed_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="a 720p clip (default: sam2-dog.mp4)")
    parser.add_argument("--scrubs", type=int, default=20, help="timed scrubs after the cold one (default 20)")
    parser.add_argument("--speed", type=Fraction, default=Fraction(1, 4), help="retime target (default 1/4)")
    parser.add_argument("--model", default="flow", help="synthesis model (default flow)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    return parser.parse_args()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    args = _parsed_args()
    if not args.clip.is_file():
        print(f"clip not found: {args.clip}", file=sys.stderr)
        return 2
    home = tempfile.mkdtemp(prefix="chronoscope-bench-gui-")
    os.environ["CHRONOSCOPE_HOME"] = home
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PyQt6.QtWidgets import QApplication

    from engine.fsutil import write_text_atomic
    from engine.server.process import start_engine, stop_engine
    from gui.app import wait_until
    from gui.engine_link import DRAFT_OPTIONS, EngineLink
    from gui.main_window import REFINE_AFTER_MS, MainWindow
    from gui.settings import AppSettings

    app = QApplication([sys.argv[0]])
    start_engine()
    link = EngineLink()
    settings = AppSettings()
    settings.target_speed = args.speed
    settings.backend = args.model
    window = MainWindow(link, settings)
    window.resize(1280, 800)
    window.show()
    link.connect_engine()
    try:
        if not wait_until(app, lambda: link.state.status == "connected", 30):
            raise SystemExit(f"engine did not connect: {link.state.summary()}")
        if not window.open_path(args.clip):
            raise SystemExit(window.message_bar.text())
        info = window.source.info
        shown: list = []
        window.preview_shown.connect(shown.append)
        rng = random.Random(args.seed)
        last = info.frame_count - 2

        def scrub(position: Fraction) -> tuple[float, float, float]:
            """Seconds to the first generated frame shown, its worker time, seconds to full quality."""
            shown.clear()
            started = time.perf_counter()
            window.seek(position)
            if not wait_until(app, lambda: bool(shown) and shown[-1].position_frames == position, 60):
                raise SystemExit(f"no preview for {position} within 60 s")
            first_s, worker_s = time.perf_counter() - started, shown[-1].latency_s
            if not wait_until(app, lambda: not shown[-1].draft, 60):
                raise SystemExit(f"no full-quality preview for {position} within 60 s")
            return first_s, worker_s, time.perf_counter() - started

        def random_position() -> Fraction:
            base = rng.randrange(0, last)
            steps = int(1 / args.speed)
            return base + Fraction(rng.randrange(1, steps), steps) * args.speed * steps

        cold_s, _, cold_full_s = scrub(random_position())
        totals, workers, fulls = [], [], []
        for _ in range(args.scrubs):
            total_s, worker_s, full_s = scrub(random_position())
            totals.append(total_s)
            workers.append(worker_s)
            fulls.append(full_s)

        shown.clear()
        started = time.perf_counter()
        positions = [random_position() for _ in range(30)]
        for position in positions:
            window.seek(position)
        final = window.position
        wait_until(app, lambda: bool(shown) and shown[-1].position_frames == final, 60)
        fast_scrub_s = time.perf_counter() - started
        wait_until(app, lambda: False, 0.5)
        result = {
            "benchmark": "gui_preview_latency",
            "clip": args.clip.name,
            "size": [info.preview_width, info.preview_height],
            "model": args.model,
            "target_speed": str(args.speed),
            "execution": link.state.device,
            "machine": {
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
            },
            "draft_options": DRAFT_OPTIONS.get(args.model),
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),
            "cold_scrub_s": round(cold_s, 4),
            "cold_full_quality_s": round(cold_full_s, 4),
            "scrubs": len(totals),
            "scrub_to_shown_s": {
                "p50": round(statistics.median(totals), 4),
                "p90": round(_percentile(totals, 0.9), 4),
                "max": round(max(totals), 4),
                "mean": round(statistics.fmean(totals), 4),
            },
            "worker_s_p50": round(statistics.median(workers), 4),
            "scrub_to_full_quality_shown_s": {
                "p50": round(statistics.median(fulls), 4),
                "p90": round(_percentile(fulls, 0.9), 4),
                "note": f"includes the {REFINE_AFTER_MS} ms rest before the full-quality request",
            },
            "fast_scrub": {
                "moves": len(positions),
                "previews_shown": len(shown),
                "last_shown_is_final_position": bool(shown) and shown[-1].position_frames == final,
                "seconds_to_final_frame": round(fast_scrub_s, 4),
            },
            "target_s": 1.0,
            "meets_target": _percentile(totals, 0.9) < 1.0,
        }
    finally:
        window.close()
        stop_engine(force=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        write_text_atomic(args.output, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
