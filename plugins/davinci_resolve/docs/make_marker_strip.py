"""Draw docs/markers.png: the markers Chronoscope - Detect Speed leaves on a timeline, on the fake.

    .venv/bin/python plugins/davinci_resolve/docs/make_marker_strip.py

The timeline is the fake's demo (samples/hug-lego-movie.mp4: 60 frames at 100 %, a gap, 80 frames
at 50 %, and an editor's marker at frame 10). The detect result is an example in issue 4's shape,
fed through the real bridge and the script's marker code, run twice to show that a re-run replaces
only Chronoscope's markers.
"""

from __future__ import annotations

import sys
import tempfile
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLUGIN_DIR = HERE.parent
REPO = PLUGIN_DIR.parent.parent
sys.path.insert(0, str(PLUGIN_DIR))

import chronoscope_resolve  # noqa: E402
from fake_resolve import FakeResolve, demo_project, draw_markers  # noqa: E402

from engine.bridge.config import install_config  # noqa: E402

EXAMPLE = {
    "speed": 0.125,
    "capture_fps": 240,
    "class": "slowmo",
    "confidence": 0.9,
    "segments": [
        {"start": 0, "end": 1, "speed": 1, "class": "realtime", "confidence": 0.8},
        {"start": 1, "end": 3, "speed": 0.125, "class": "slowmo", "confidence": 0.9},
        {"start": 3, "end": "11/2", "speed": 0.5, "class": "synthetic_slowmo", "confidence": 0.7},
    ],
    "evidence": {"metadata": "no capture-rate tag", "synthetic_retime": "no duplicate period"},
}


def main() -> None:
    clip = REPO / "samples" / "hug-lego-movie.mp4"
    resolve = FakeResolve(project_rate=Fraction(30))
    _, timeline = demo_project(resolve, clip)
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "resolve-bridge.json"
        install_config(config)
        settings = chronoscope_resolve.load_settings({"CHRONOSCOPE_BRIDGE_CONFIG": str(config)})
        path = chronoscope_resolve.export_timeline(resolve, timeline, folder)
        for _ in range(2):
            reply = chronoscope_resolve.call_bridge(
                settings,
                {"op": "detect", "timeline": path, "results": {str(clip): EXAMPLE}, "start_engine": False},
            )
            chronoscope_resolve.apply_markers(timeline, reply["markers"], reply["clips"])
    print(draw_markers(timeline, HERE / "markers.png"))


if __name__ == "__main__":
    main()
