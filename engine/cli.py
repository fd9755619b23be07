"""The ``chronoscope`` command: parses arguments, then hands over to one subcommand module.

An error that Chronoscope raises on purpose, or one the file system raises (permission denied, disk
full), prints as one line on stderr and exits with status 2; ``--debug`` shows the traceback too.
Anything else is a bug and prints a traceback with status 70. Ctrl-C exits with 130 and SIGTERM
with 143, both after the command has removed what it was writing.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence

from engine import __version__
from engine.commands import COMMAND_MODULES
from engine.errors import ChronoscopeError

log = logging.getLogger("chronoscope")

EXIT_OK = 0
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
EXIT_INTERNAL_ERROR = 70

EPILOG = """\
examples:
  chronoscope probe clip.mp4
  chronoscope probe clip.mp4 --json
  chronoscope --debug probe broken.mov
"""


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage mistakes in one line, like every other error: what is wrong and where to look."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = OneLineErrorParser(
        prog="chronoscope",
        description="Speed detection, slow-motion retiming and fill frames for video editors.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"chronoscope {__version__}")
    parser.add_argument("--debug", action="store_true", help="log details and show tracebacks on errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineErrorParser)
    subparsers.required = True
    modules: dict[str, object] = {}
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(
            module.NAME,
            help=module.HELP,
            description=module.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure(sub)
        modules[module.NAME] = module
    return parser, modules


def _configure_logging(debug: bool, quiet: bool) -> None:
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="chronoscope: %(levelname)s: %(message)s", stream=sys.stderr)
    if not debug:
        logging.getLogger("libav").setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    parser, modules = _build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.debug, args.quiet)
    module = modules[args.command]
    try:
        if getattr(module, "KEEPS_DEFAULT_SIGTERM", False):
            return int(module.run(args) or EXIT_OK)
        with _terminate_as_interrupt():
            return int(module.run(args) or EXIT_OK)
    except ChronoscopeError as error:
        if args.debug:
            log.exception("%s failed", args.command)
        print(f"chronoscope {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as interrupt:
        terminated = isinstance(interrupt, Terminated)
        print(f"chronoscope {args.command}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except OSError as error:
        # the file system said no (disk full, permission, a file where a folder should be): the
        # user's to fix, said in one line
        if args.debug:
            log.exception("%s failed", args.command)
        print(f"chronoscope {args.command}: error: {_os_error_text(error)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception:
        traceback.print_exc(file=sys.stderr)
        print(
            f"chronoscope {args.command}: internal error (a bug): please report it with the traceback above",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a job scheduler, a shutdown): unwinds like Ctrl-C, so that temporaries
    are removed and engine jobs cancelled, instead of the process dying mid-write."""


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM raises ``Terminated`` in the main thread. A command that
    installs its own handler (the engine, the Resolve bridge) replaces this one; one whose module
    sets ``KEEPS_DEFAULT_SIGTERM`` (the Qt app: its event loop would never let the handler run)
    keeps the default, which ends the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _os_error_text(error: OSError) -> str:
    """``Permission denied: /path`` rather than ``[Errno 13] Permission denied: '/path'``."""
    reason = error.strerror or str(error)
    names = [str(name) for name in (error.filename, error.filename2) if name is not None]
    return f"{reason}: {' -> '.join(names)}" if names else reason


if __name__ == "__main__":
    sys.exit(main())
