"""``chronoscope-gui [CLIP|TIMELINE]``: the preview app; ``--screenshot OUT.png`` for tests and docs.

With ``--screenshot`` the app opens the file, waits until the speed analysis (or the engine's
reason for not having one) and the preview frame are shown, renders the window to a PNG and
exits. Without a display it runs on Qt's offscreen platform.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

from engine import __version__
from engine.commands.argtypes import frame_rate, positive_seconds
from engine.commands.sequence_option import add_sequence_rate_option
from engine.errors import UnsupportedOptionError
from engine.fsutil import atomic_path

log = logging.getLogger("chronoscope.gui")

EXIT_OK = 0
EXIT_USER_ERROR = 2
EXIT_TIMEOUT = 3

EPILOG = """\
examples:
  chronoscope-gui
  chronoscope-gui clip.mp4
  chronoscope-gui timeline.otio
  chronoscope-gui --screenshot docs/clip.png --seek 41/4 --wipe clip.mp4
  chronoscope-gui --ramp ramp.json clip.mp4
  chronoscope-gui --rate 29.97 reel2.edl
  chronoscope-gui --sequence-rate 24 plates/A001.1001.dpx
"""


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 1280x800") from None
    if not (320 <= width <= 8192 and 240 <= height <= 8192):
        raise argparse.ArgumentTypeError(f"{text}: width 320-8192 and height 240-8192 work")
    return width, height


def _position(text: str) -> Fraction:
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a frame position like 40 or 41/4") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: a frame position is 0 or more")
    return value


def build_parser(prog: str = "chronoscope-gui") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Preview speed analysis and slow-motion retimes of a clip or a timeline export.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    configure(parser)
    parser.add_argument("--version", action="version", version=f"chronoscope-gui {__version__}")
    return parser


def configure(parser: argparse.ArgumentParser, *, with_debug: bool = True) -> None:
    """The app's options (shared by ``chronoscope-gui`` and ``chronoscope gui``)."""
    parser.add_argument(
        "path", nargs="?", type=Path, metavar="CLIP|TIMELINE", help="a clip or a timeline to open"
    )
    parser.add_argument(
        "--screenshot", type=Path, metavar="OUT.png", help="render the window to a PNG and exit"
    )
    parser.add_argument(
        "--seek", type=_position, metavar="FRAMES", help="put the playhead here (source frames)"
    )
    parser.add_argument("--speed", type=_position, metavar="S", help="target speed, e.g. 1/4 (4x slower)")
    parser.add_argument(
        "--ramp",
        type=Path,
        metavar="RAMP.json",
        help="a speed ramp for the clip (the JSON keyframes of `chronoscope retime --ramp`)",
    )
    parser.add_argument(
        "--rate",
        type=frame_rate,
        help="frame rate of an EDL (EDLs do not say; as `chronoscope render --rate`: 29.97 for drop "
        "frame, 24000/1001 exactly; without it the app asks, and --screenshot reads at 24)",
    )
    add_sequence_rate_option(parser)
    parser.add_argument(
        "--model", metavar="NAME", help="synthesis model for previews (default: last used, flow)"
    )
    parser.add_argument("--wipe", action="store_true", help="start in wipe mode instead of side by side")
    parser.add_argument("--risk", action="store_true", help="start with the risk overlay on")
    parser.add_argument(
        "--size", type=_size, default=(1280, 800), metavar="WxH", help="window size (default 1280x800)"
    )
    parser.add_argument(
        "--timeout-s",
        type=positive_seconds,
        default=60.0,
        help="with --screenshot: the longest wait (default 60)",
    )
    parser.add_argument(
        "--no-start-engine", action="store_true", help="connect to a running engine only; never start one"
    )
    if with_debug:
        parser.add_argument("--debug", action="store_true", help="log details")


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse conflicting or out-of-range options up front (``UnsupportedOptionError``)."""
    if args.screenshot is not None and args.screenshot.suffix.lower() != ".png":
        raise UnsupportedOptionError(f"--screenshot {args.screenshot}: the file name must end in .png")
    if args.speed is not None and not 0 < args.speed <= 1:
        raise UnsupportedOptionError(f"--speed {args.speed}: a retime target is in (0, 1], e.g. 1/4")
    if args.seek is not None and args.path is None:
        raise UnsupportedOptionError("--seek needs a CLIP or TIMELINE to seek in")
    if args.ramp is not None and args.path is None:
        raise UnsupportedOptionError("--ramp needs a CLIP or TIMELINE to apply the ramp to")
    if getattr(args, "rate", None) is not None:
        if args.path is None:
            raise UnsupportedOptionError("--rate needs an EDL to read at that rate")
        if args.path.suffix.lower() != ".edl":
            raise UnsupportedOptionError(
                f"--rate {_rate_text(args.rate)}: a rate is only needed for EDLs; "
                f"{args.path.name} carries its own"
            )
    _check_sequence_rate(args)


def _check_sequence_rate(args: argparse.Namespace) -> None:
    from gui.main_window import TIMELINE_SUFFIXES
    from gui.sequences import is_pattern, sequence_rate

    text = getattr(args, "sequence_rate", None)
    if text is None:
        if args.path is not None and args.screenshot is not None and is_pattern(args.path):
            raise UnsupportedOptionError(
                f"{args.path} names an image sequence: give its frame rate with --sequence-rate (e.g. 24)"
            )
        return
    if args.path is None:
        raise UnsupportedOptionError("--sequence-rate needs an image sequence (one of its frames) to open")
    if args.path.suffix.lower() in TIMELINE_SUFFIXES:
        raise UnsupportedOptionError(
            f"--sequence-rate {text}: {args.path.name} is a timeline; --sequence-rate is for an image "
            "sequence (A001.1001.dpx or A001.####.dpx)"
        )
    sequence_rate(text)  # UnsupportedOptionError for a rate that is none


def _rate_text(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def apply_run_options(settings, args: argparse.Namespace) -> None:
    """Use ``--speed``, ``--model``, ``--wipe`` and ``--risk`` in this session only: options for
    one run are never written to the settings file."""
    if args.speed is not None:
        settings.for_this_run("target_speed", args.speed)
    if args.model:
        settings.for_this_run("backend", args.model)
    if args.wipe:
        settings.for_this_run("compare_mode", "wipe")
    if args.risk:
        settings.for_this_run("show_risk", True)


def edl_rate_of(args: argparse.Namespace) -> Fraction | None:
    """The EDL rate to open ``args.path`` at: ``--rate`` (exact for 23.976, 29.97, 59.94), 24 for
    a screenshot without it (as ``chronoscope render``), else None: the app asks."""
    from engine.timeline.rates import exact_rate

    if getattr(args, "rate", None) is not None:
        return Fraction(exact_rate(args.rate))
    if args.screenshot is not None:
        from gui.settings import DEFAULT_EDL_RATE

        return DEFAULT_EDL_RATE
    return None


def sequence_rate_of(args: argparse.Namespace) -> Fraction | None:
    """The rate to open ``args.path`` as an image sequence at (``--sequence-rate``), else None:
    the app asks when the file is a frame of one."""
    from gui.sequences import sequence_rate

    text = getattr(args, "sequence_rate", None)
    return None if text is None else sequence_rate(text)


def wait_until(app, condition: Callable[[], bool], timeout_s: float) -> bool:
    """Run the event loop until ``condition()`` holds or ``timeout_s`` passes; return whether it held."""
    from PyQt6.QtCore import QEventLoop

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.005)
    return True


def save_screenshot(window, path: Path) -> None:
    """Render ``window`` to ``path`` (PNG), written to a temporary name and renamed."""
    image = window.grab()
    with atomic_path(Path(path)) as temporary:
        if not image.save(str(temporary), "PNG"):
            raise OSError(f"Qt could not write a PNG to {temporary}")


def install_excepthook() -> None:
    """Log an exception escaping a Qt slot instead of letting PyQt abort the process."""

    def hook(kind, value, traceback) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, traceback)
            return
        log.error("unexpected error in the app", exc_info=(kind, value, traceback))

    sys.excepthook = hook


def run(args: argparse.Namespace) -> int:
    """Start the app with parsed arguments; returns the exit status."""
    if args.screenshot is not None and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6.QtWidgets import QApplication

    from gui.engine_link import EngineLink
    from gui.main_window import MainWindow
    from gui.settings import AppSettings
    from gui.style import apply_dark_palette

    app = QApplication.instance() or QApplication([sys.argv[0]])
    install_excepthook()
    app.setApplicationName("Chronoscope")
    apply_dark_palette(app)
    link = EngineLink(start_engine=not args.no_start_engine)
    settings = AppSettings()
    apply_run_options(settings, args)
    window = MainWindow(link, settings)
    window.resize(*args.size)
    window.show()
    link.connect_engine()
    opened = True
    if args.path is not None:
        if args.screenshot is not None:  # nobody to ask: a frame opens alone, as the CLI reads it
            from gui.sequences import OPEN_ONE_FRAME

            window.sequence_rate_provider = lambda _path, _sequence, _default: OPEN_ONE_FRAME
        opened = window.open_path(args.path, edl_rate=edl_rate_of(args), sequence_rate=sequence_rate_of(args))
        if opened and args.ramp is not None:
            opened = window.import_ramp(args.ramp)
        if opened and args.seek is not None:
            window.seek(args.seek)
    if args.screenshot is None:
        return app.exec()
    return _screenshot(app, window, args, opened)


def _screenshot(app, window, args: argparse.Namespace, opened: bool) -> int:
    def ready() -> bool:
        status = window.engine_status  # what the window shows, not what the link thread last set
        if status in ("", "starting"):
            return False
        if status != "connected" or not opened or window.source is None:
            return True
        analysed = window.analysis_settled()
        previewed = window.viewer.original is not None and (
            window.position == int(window.position)
            or (window.last_preview is not None and not window.last_preview.draft)
            or bool(window.preview_error)
        )
        return analysed and previewed

    done = wait_until(app, ready, args.timeout_s)
    wait_until(app, lambda: False, 0.2)
    save_screenshot(window, args.screenshot)
    window.close()
    if not done:
        log.warning("screenshot taken after %s s without the analysis and preview shown", args.timeout_s)
        return EXIT_TIMEOUT
    return EXIT_OK if opened else EXIT_USER_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_arguments(args)
    except UnsupportedOptionError as error:
        parser.error(str(error))
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="chronoscope-gui: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
