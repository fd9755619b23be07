"""``chronoscope gui [CLIP|TIMELINE]``: open the Qt preview app (the same as ``chronoscope-gui``)."""

from __future__ import annotations

import argparse

NAME = "gui"
# SIGTERM ends the Qt app at once (a Python handler would wait for the event loop: forever)
KEEPS_DEFAULT_SIGTERM = True

HELP = "open the preview app: speed curve, original vs retimed, render queue"
DESCRIPTION = """\
Opens the Chronoscope preview app on a clip or a timeline export (OTIO, EDL, FCP XML). It starts
the engine when none is running, shows the detected speed over time, the original beside the
generated slow motion (or as a wipe) with the risk map, and queues renders. A frame of a numbered
image sequence opens as the sequence at --sequence-rate (without it the app asks).

Keys: J K L shuttle, Space play/stop, Left/Right one retimed frame, Shift for 10, Up/Down segment
boundaries, I/O marks, W wipe, R risk overlay.

examples:
  chronoscope gui
  chronoscope gui clip.mp4
  chronoscope gui timeline.otio --speed 1/4 --model flow
  chronoscope gui --screenshot shot.png --seek 41/4 clip.mp4
  chronoscope gui --rate 29.97 reel2.edl
  chronoscope gui --sequence-rate 24 plates/A001.1001.dpx
"""


def configure(parser: argparse.ArgumentParser) -> None:
    from gui.app import configure as configure_app

    configure_app(parser, with_debug=False)


def run(args: argparse.Namespace) -> int:
    from gui.app import check_arguments
    from gui.app import run as run_app

    check_arguments(args)
    return run_app(args)
