"""How long an engine job takes to stop once cancelled, in the middle of a batch of made frames.

Starts a real engine process in a throw-away ``CHRONOSCOPE_HOME`` (a running engine of yours is
never touched), submits a ``retime`` of the bundled sample at ``--speed`` (1/16: fifteen
in-between frames per pair of source frames, made in one batch), waits until the first batch is
written, lets the next batch run for ``--into-batch-s`` seconds, cancels, and measures the time
until the job's state leaves ``running``. Also reports the frames written and what was left in
the output folder (nothing, when the cancel cleaned up).

Baseline: the same script run against an older commit. Check it out (``git worktree add``), copy
this script into its bench/, and run it with ``PYTHONPATH`` set to that checkout. Without
``PYTHONPATH``, the editable install of this checkout is what gets imported, by the script and by
the engine it starts. In results/: cancel_latency.json (this code) and
cancel_latency_608148e-parent.json (before the cancel points).

    .venv/bin/python bench/cancel_latency.py --model rife-hdv3 --output bench/results/cancel_latency.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "hug-lego-movie.mp4"

log = logging.getLogger("cancel_latency")


def measure(model: str, speed: str, into_batch_s: float) -> dict:
    from engine.server.client import EngineClient
    from engine.server.process import start_engine, stop_engine

    output = Path(tempfile.mkdtemp(prefix="cancel-latency-")) / "slow.mov"
    first_batch = int(speed.split("/")[1]) + 1  # an exact frame, then the batch after it
    connection, _ = start_engine(timeout_s=120, capability_modules=["engine.render.capability"])
    try:
        with EngineClient(connection) as client:
            request = {"source": str(SAMPLE), "output": str(output), "speed": speed, "model": model}
            job_id = client.submit("retime", {**request, "in_frame": 0, "out_frame": 6})
            while (status := client.job_status(job_id))["progress"].get("done", 0) < first_batch:
                if status["state"] not in ("queued", "running"):
                    raise SystemExit(f"the retime ended before its first batch: {status}")
                time.sleep(0.05)
            time.sleep(into_batch_s)
            cancelled_at = time.monotonic()
            client.cancel(job_id)
            while client.job_status(job_id)["state"] == "running":
                time.sleep(0.02)
            stopped_s = time.monotonic() - cancelled_at
            status = client.job_status(job_id)
    finally:
        stop_engine(timeout_s=10, force=True)
    return {
        "model": model,
        "speed": speed,
        "cancelled_into_batch_s": into_batch_s,
        "state": status["state"],
        "seconds_from_cancel_to_stop": round(stopped_s, 3),
        "frames_written": status["progress"].get("done"),
        "left_in_output_folder": sorted(path.name for path in output.parent.iterdir()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="rife-hdv3", help="synthesis model (default rife-hdv3)")
    parser.add_argument("--speed", default="1/16", help="retime speed as 1/n (default 1/16)")
    parser.add_argument("--into-batch-s", type=float, default=1.0, help="cancel this long into a batch")
    parser.add_argument("--output", type=Path, help="write the JSON here too")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ["CHRONOSCOPE_HOME"] = tempfile.mkdtemp(prefix="cancel-latency-home-")
    result = measure(args.model, args.speed, args.into_batch_s)
    text = json.dumps(result, indent=2) + "\n"
    sys.stdout.write(text)
    if args.output is not None:
        from engine.fsutil import write_text_atomic

        write_text_atomic(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
