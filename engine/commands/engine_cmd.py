"""``chronoscope engine``: run, start, stop and inspect this user's engine process."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.commands.argtypes import positive_int, positive_seconds
from engine.errors import ChronoscopeError, EngineAlreadyRunningError
from engine.server.connection import TRANSPORTS, default_transport
from engine.server.protocol import Limits

log = logging.getLogger(__name__)

NAME = "engine"
HELP = "run, start, stop or inspect the background engine"
DESCRIPTION = """\
The engine is the process that loads models and does the work for the Qt app, the Resolve
scripts, the OFX bridge and the client commands. One runs per user; its connection file (in the
runtime folder, readable by you only) holds its endpoints and signing key.

  run      serve in the foreground; logs to stderr and to the log folder's engine.log
  start    start one in the background unless one answers already, wait until it answers (exit 2
           when options were given that the engine already running was not started with)
  stop     shut it down over the control channel, wait, remove the connection file; an engine
           that cannot be reached so (its connection file lost or damaged) is found by the lock
           it holds and stopped with SIGTERM; --force kills one that does not stop
  status   endpoints, pid, loaded models, execution providers, job queue (exit 3: none running;
           exit 4: an engine holds the runtime folder but does not answer)

examples:
  chronoscope engine start
  chronoscope engine status --json
  chronoscope engine run --transport tcp --workers 4
  chronoscope engine start --capability-module mystudio.chronoscope_jobs
  chronoscope engine stop
"""

EXIT_NOT_RUNNING = 3
EXIT_NOT_ANSWERING = 4
EXIT_OPTIONS_NOT_APPLIED = 2
LOG_FORMAT = "%(asctime)s chronoscope-engine[%(process)d]: %(levelname)s: %(name)s: %(message)s"
_MIB = 1024 * 1024


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``chronoscope engine run`` (and ``python -m engine.server``)."""
    parser.add_argument(
        "--transport",
        choices=TRANSPORTS[:2],
        default=default_transport(),
        help="ipc (Unix sockets; Linux/macOS default) or tcp on 127.0.0.1 (Windows default)",
    )
    parser.add_argument("--workers", type=positive_int, default=2, help="job worker threads (default 2)")
    parser.add_argument(
        "--request-threads",
        type=positive_int,
        default=2,
        help="threads for direct requests such as synthesize (default 2)",
    )
    parser.add_argument(
        "--max-buffer-mib",
        type=positive_int,
        default=Limits().max_buffer_bytes // _MIB,
        help="largest total of image buffers in one message, MiB (default %(default)s)",
    )
    parser.add_argument(
        "--capability-module",
        action="append",
        default=[],
        metavar="MODULE",
        help="also import MODULE and call its register_handlers(registry) (repeatable)",
    )
    parser.add_argument(
        "--connection-file",
        type=Path,
        default=None,
        help="where to write the connection file (default: the runtime folder)",
    )
    parser.add_argument(
        "--log-file", type=Path, default=None, help="log file (default: log folder/engine.log)"
    )
    parser.add_argument(
        "--no-log-file",
        action="store_true",
        help="log to stderr only (start uses it: the engine's stderr is the log file)",
    )
    parser.add_argument(
        "--ok-if-running",
        action="store_true",
        help="exit 0, not 2, when another engine serves already (for service managers that restart "
        "on any other status, such as launchd's KeepAlive)",
    )


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="engine_action", metavar="ACTION")
    actions.required = True
    run_parser = actions.add_parser("run", help="serve in the foreground")
    add_run_arguments(run_parser)
    start = actions.add_parser("start", help="start in the background unless one is running")
    start.add_argument(
        "--transport", choices=TRANSPORTS[:2], default=None, help="ipc or tcp (default: per OS)"
    )
    start.add_argument("--workers", type=positive_int, default=None, help="job worker threads")
    start.add_argument(
        "--capability-module",
        action="append",
        default=[],
        metavar="MODULE",
        help="also import MODULE and call its register_handlers(registry) (repeatable)",
    )
    start.add_argument(
        "--timeout-s", type=positive_seconds, default=30.0, help="how long to wait for it to answer"
    )
    start.add_argument("--json", action="store_true", help="print the connection (without the key) as JSON")
    stop = actions.add_parser("stop", help="shut the engine down")
    stop.add_argument(
        "--timeout-s", type=positive_seconds, default=10.0, help="how long to wait for it to exit"
    )
    stop.add_argument("--force", action="store_true", help="terminate an engine that does not answer")
    status = actions.add_parser("status", help="show the running engine")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument(
        "--timeout-s", type=positive_seconds, default=5.0, help="how long to wait for answers"
    )


def _engine_config(args: argparse.Namespace):
    from engine.server.handlers import DEFAULT_CAPABILITY_MODULES
    from engine.server.server import EngineConfig

    limits = Limits(max_buffer_bytes=args.max_buffer_mib * _MIB)
    return EngineConfig(
        transport=args.transport,
        workers=args.workers,
        request_threads=args.request_threads,
        limits=limits,
        connection_file=args.connection_file,
        capability_modules=(*DEFAULT_CAPABILITY_MODULES, *args.capability_module),
    )


def _log_to_file(path: Path) -> logging.Handler:
    from engine.errors import FileAccessError
    from engine.places import folder_fix

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as error:
        raise FileAccessError(
            f"cannot write the engine's log {path}: {error.strerror or error}; {folder_fix(path.parent)} "
            "(or give --log-file FILE, or --no-log-file)"
        ) from None
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.getLogger().addHandler(handler)
    return handler


def _run_foreground(args: argparse.Namespace) -> int:
    from engine.server.process import engine_log_path, run_engine

    config = _engine_config(args)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    file_handler = None if args.no_log_file else _log_to_file(args.log_file or engine_log_path())
    try:
        run_engine(config)
    except EngineAlreadyRunningError as error:
        if not args.ok_if_running:
            raise
        log.info("not serving: %s", error)
    finally:
        if file_handler is not None:
            logging.getLogger().removeHandler(file_handler)
            file_handler.close()
    return 0


def _public(connection) -> dict:
    data = connection.to_dict()
    data.pop("key", None)
    return data


def _start(args: argparse.Namespace) -> int:
    from engine.server.process import start_engine

    connection, started = start_engine(
        transport=args.transport,
        workers=args.workers,
        timeout_s=args.timeout_s,
        capability_modules=args.capability_module,
    )
    not_applied = [] if started else _options_not_applied(args, connection)
    if args.json:
        print(json.dumps({**_public(connection), "started": started, "not_applied": not_applied}, indent=2))
    else:
        print(f"engine {'started' if started else 'already running'}: pid {connection.pid}")
        for role, endpoint in connection.endpoints().items():
            print(f"  {role:8} {endpoint}")
    if not_applied:
        print(
            f"chronoscope engine start: error: the engine pid {connection.pid} was already running, so "
            f"{', '.join(not_applied)} {'was' if len(not_applied) == 1 else 'were'} not applied to it; "
            "stop it first (`chronoscope engine stop`) to start one with them",
            file=sys.stderr,
        )
        return EXIT_OPTIONS_NOT_APPLIED
    return 0


def _options_not_applied(args: argparse.Namespace, connection) -> list[str]:
    """The options of ``start`` that the engine already running does not have (it was started
    before, with its own): a transport or worker count other than its own, any capability module."""
    from engine.server.client import EngineClient

    not_applied = []
    if args.transport is not None and args.transport != connection.transport:
        not_applied.append(f"--transport {args.transport} (it uses {connection.transport})")
    if args.workers is not None:
        try:
            with EngineClient(connection) as client:
                workers = client.info(timeout_s=args.timeout_s).get("jobs", {}).get("workers")
        except ChronoscopeError as error:
            log.warning("cannot ask the running engine for its worker count: %s", error)
            workers = None
        if workers != args.workers:
            running = f" (it has {workers})" if workers is not None else ""
            not_applied.append(f"--workers {args.workers}{running}")
    not_applied += [f"--capability-module {module}" for module in args.capability_module]
    return not_applied


def _stop(args: argparse.Namespace) -> int:
    from engine.server.process import stop_engine

    outcome = stop_engine(timeout_s=args.timeout_s, force=args.force)
    messages = {
        "stopped": "engine stopped",
        "not running": "no engine is running",
        "stale": "no engine was running; removed its stale connection file",
        "killed": "engine did not answer and was terminated",
        "terminated": "engine stopped (SIGTERM): it could not be reached through its connection file",
    }
    print(messages[outcome])
    return 0


def _pid_in(connection_file: Path) -> int | None:
    """The pid of the engine holding the runtime folder's lock, else the one its connection file names."""
    from engine.server.connection import read_connection_file
    from engine.server.process import engine_lock_holder

    holder = engine_lock_holder(connection_file.parent)
    if holder is not None:
        return holder
    try:
        return read_connection_file(connection_file).pid
    except ChronoscopeError:
        return None


def _connection_file_lost(connection_file: Path) -> str:
    """"gone" or "damaged" when ``connection_file`` cannot lead to an engine, else ""."""
    from engine.errors import EngineNotRunningError
    from engine.server.connection import read_connection_file

    try:
        read_connection_file(connection_file, private=False)
    except EngineNotRunningError:
        return "gone"
    except ChronoscopeError:
        return "damaged"
    return ""


def _status(args: argparse.Namespace) -> int:
    from engine.server.client import EngineClient
    from engine.server.connection import connection_file_path
    from engine.server.process import engine_lock_held, find_running_engine

    connection = find_running_engine(timeout_s=args.timeout_s)
    if connection is None and engine_lock_held(connection_file_path().parent):
        pid = _pid_in(connection_file_path())
        who = f"pid {pid}" if pid is not None else "a process"
        lost = _connection_file_lost(connection_file_path())
        if lost:
            why = f"its connection file {connection_file_path()} is {lost}, so no one can reach it"
            fix = "`chronoscope engine stop` ends it (`--force` if it does not stop)"
        else:
            why = f"does not answer within {args.timeout_s:g} s: it is busy, starting, or hung"
            fix = "`chronoscope engine stop --force` ends it"
        message = f"an engine ({who}) holds {connection_file_path().parent} but {why}; {fix}"
        if args.json:
            print(json.dumps({"running": True, "answering": False, "pid": pid, "message": message}, indent=2))
        else:
            print(message)
        return EXIT_NOT_ANSWERING
    if connection is None:
        if args.json:
            print(json.dumps({"running": False, "connection_file": str(connection_file_path())}, indent=2))
        else:
            print("no engine is running")
        return EXIT_NOT_RUNNING
    with EngineClient(connection) as client:
        info = client.info(timeout_s=args.timeout_s)
    info.pop("status", None)
    if args.json:
        print(json.dumps({"running": True, "connection_file": str(connection_file_path()), **info}, indent=2))
        return 0
    print(
        f"engine {info['version']} (protocol {info['protocol_version']}), pid {info['pid']}, "
        f"up {info['uptime_s']:.0f} s, transport {info['transport']}"
    )
    for role, endpoint in info["endpoints"].items():
        print(f"  {role:8} {endpoint}")
    print(f"  frames   {info['exchange_dir']} (frame exchange)")
    print(f"execution providers: {', '.join(info['execution_providers']) or 'none'}")
    print(f"synthesis backends:  {', '.join(info['synthesis_backends']) or 'none'}")
    loaded = [f"{m['name']} ({m['execution_provider']})" for m in info["models_loaded"]]
    print(f"models loaded:       {', '.join(loaded) or 'none'}")
    capabilities = info["capabilities"]
    print(f"not in this build:   {', '.join(capabilities['missing']) or 'nothing'}")
    jobs = info["jobs"]
    counts = ", ".join(f"{n} {state}" for state, n in jobs["counts"].items() if n)
    print(f"jobs ({jobs['workers']} workers): {counts or 'none yet'}")
    for job in jobs["active"]:
        progress = job["progress"]
        total = f"/{progress['total']}" if progress["total"] is not None else ""
        print(f"  {job['job_id']}  {job['kind']:16} {job['state']:9} {progress['done']}{total}")
    if jobs["counts"].get("interrupted"):
        print("interrupted jobs can be resumed by submitting them again with the same job id")
    for warning in info["warnings"]:
        print(f"warning: {warning}")
    return 0


def run(args: argparse.Namespace) -> int:
    actions = {"run": _run_foreground, "start": _start, "stop": _stop, "status": _status}
    return actions[args.engine_action](args)


def main_run(argv: Sequence[str]) -> int:
    """Entry point of ``python -m engine.server``: ``chronoscope engine run`` without the other commands."""
    parser = argparse.ArgumentParser(
        prog="python -m engine.server", description="Serve the Chronoscope engine."
    )
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    try:
        return _run_foreground(args)
    except ChronoscopeError as error:
        print(f"chronoscope engine run: error: {error}", file=sys.stderr)
        return 2
