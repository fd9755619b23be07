"""Remove what ``installer/install.py`` made: exactly the items its manifest lists, nothing else.

    python3 installer/uninstall.py [--prefix DIR] [--dry-run] [--force]

Order: registrations are undone first (the systemd user unit disabled and stopped, the launchd
agent unloaded), then files, copied folders and the environment are removed, then the folders the
installer created, deepest first and only when empty, and the manifest last. A file whose content
changed since it was installed (an edited Resolve script, say) is kept with a warning unless
``--force``. An item that cannot be removed (permission denied, say) is reported, one line each,
and the rest are removed; the manifest is then kept for a second run. An engine is stopped only
when it runs from the environment being removed; another one (a developer's, from another
environment) is left running. The engine is looked for with the variables the install recorded
(``CHRONOSCOPE_HOME``, which the launchers and the autostart entry give it) as well as the
caller's. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))

import locations  # noqa: E402
from manifest import Manifest, ManifestError, read_manifest, sha256_file  # noqa: E402

log = logging.getLogger("chronoscope-uninstall")

CONNECTION_FILE_CODE = (
    "from engine.server.connection import connection_file_path; print(connection_file_path())"
)

EPILOG = """\
examples:
  python3 installer/uninstall.py
  python3 installer/uninstall.py --dry-run
  python3 installer/uninstall.py --prefix /opt/chronoscope
"""


def _undo_service(detail: str, dry_run: bool) -> list[str]:
    """Disable a registration; returns problems (not fatal: the files go regardless)."""
    kind, _, name = detail.partition(":")
    if kind == "systemd-user":
        commands = [
            ["systemctl", "--user", "disable", "--now", name],
            ["systemctl", "--user", "daemon-reload"],
        ]
    elif kind == "launchd":
        commands = [["launchctl", "bootout", name]]
    else:
        return [f"unknown registration {detail!r}; undo it by hand"]
    problems = []
    for command in commands:
        if dry_run:
            log.info("would run: %s", " ".join(command))
            continue
        if shutil.which(command[0]) is None:
            problems.append(f"{command[0]} not found: {detail} was not undone")
            continue
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            problems.append(f"{' '.join(command)} failed: {(completed.stderr or completed.stdout).strip()}")
    return problems


def _error_text(error: OSError) -> str:
    return error.strerror or str(error)


def engine_environments(manifest: Manifest, environ: Mapping[str, str]) -> list[dict[str, str]]:
    """The environments in which to look for the install's engine: with the folder variables the
    install recorded (the launchers and the autostart entry run the engine with them), then the
    caller's own. A manifest of an earlier installer records none: a prefix that is
    ``$CHRONOSCOPE_HOME/data`` (beside its ``runtime`` folder) says the variable was set."""
    recorded = manifest.options.get("environment")
    if not isinstance(recorded, dict):
        prefix = Path(manifest.prefix)
        inferred = prefix.name == "data" and (prefix.parent / "runtime").is_dir()
        recorded = {locations.ENV_HOME: str(prefix.parent)} if inferred else {}
    caller = dict(environ)
    found = [{**caller, **{str(k): str(v) for k, v in recorded.items()}}] if recorded else []
    return [*found, caller] if caller not in found else found


def _running_engine_pid(python: Path, env: Mapping[str, str] | None = None) -> int | None:
    """The pid in this user's engine connection file, as the environment's engine finds it with
    ``env`` (the file lies where its variables say); None when there is none."""
    try:
        found = subprocess.run(
            [str(python), "-c", CONNECTION_FILE_CODE],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=None if env is None else dict(env),
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        log.warning("cannot ask %s where the engine's connection file is: %s", python, error)
        return None
    if found.returncode != 0 or not found.stdout.strip():
        log.warning("cannot find the engine's connection file: %s", (found.stderr or "").strip()[-300:])
        return None
    try:
        record = json.loads(Path(found.stdout.strip().splitlines()[-1]).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pid = record.get("pid") if isinstance(record, dict) else None
    return pid if isinstance(pid, int) and pid > 0 else None


def process_command_line(pid: int) -> list[str] | None:
    """The command line of process ``pid``: from /proc on Linux, from ``ps`` on macOS and other
    POSIX systems; None when it cannot be read (gone, or Windows)."""
    proc = Path("/proc") / str(pid) / "cmdline"
    if sys.platform.startswith("linux"):
        try:
            return [part for part in proc.read_bytes().decode(errors="replace").split("\0") if part]
        except OSError:
            return None
    if os.name == "nt" or shutil.which("ps") is None:
        return None
    try:
        listed = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [listed.stdout.strip()] if listed.returncode == 0 and listed.stdout.strip() else None


def runs_from(command_line: Sequence[str], venv: Path) -> bool:
    """Whether a process with ``command_line`` runs from ``venv``: its interpreter or the script it
    runs lies in that environment. The engine runs as ``<venv>/bin/python -m engine.server`` or as
    ``<venv>/bin/python <venv>/bin/chronoscope engine run`` (``ps`` gives the whole command line as
    one string, which then starts with the interpreter's path)."""
    roots = {os.path.normcase(os.path.abspath(venv)), os.path.normcase(os.path.realpath(venv))}
    for part in command_line[:2]:
        absolute = os.path.abspath(part)
        # the folders resolved, not the file: the environment's python is a link to the base one
        forms = {
            absolute,
            os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute)),
        }
        if any(os.path.normcase(form).startswith(root + os.sep) for form in forms for root in roots):
            return True
    return False


def _stop_engine(
    venv: Path,
    dry_run: bool,
    command_line: Callable[[int], list[str] | None] = process_command_line,
    environments: Sequence[Mapping[str, str]] = (),
) -> str:
    """Stop the engine when it runs from the environment about to be removed (started by hand, say),
    looking for it in each of ``environments`` (default: the caller's); leave any other engine of
    the user running. Returns the problems, one per line, or ''."""
    python = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    if not python.is_file():
        return ""
    problems = []
    seen: set[int] = set()
    for env in environments or [dict(os.environ)]:
        pid = _running_engine_pid(python, env)
        if pid is not None and pid in seen:
            continue
        if pid is not None:
            seen.add(pid)
        problem = _stop_engine_pid(venv, python, pid, dry_run, command_line, env)
        if problem:
            problems.append(problem)
    return "\n".join(problems)


def _stop_engine_pid(
    venv: Path,
    python: Path,
    pid: int | None,
    dry_run: bool,
    command_line: Callable[[int], list[str] | None],
    env: Mapping[str, str],
) -> str:
    if pid is None:
        log.info("no engine is running")
        return ""
    running = command_line(pid)
    if running is None:
        log.warning(
            "an engine (pid %d) is running, and whether it runs from %s cannot be told here; left "
            "running: stop it with `chronoscope engine stop` if it is this install's",
            pid,
            venv,
        )
        return ""
    if not runs_from(running, venv):
        shown = " ".join(running)[:200]
        log.warning("left the engine pid %d running: it does not run from %s (%s)", pid, venv, shown)
        return ""
    command = [str(python), "-m", "engine.cli", "--quiet", "engine", "stop"]
    if dry_run:
        log.info("would run: %s (engine pid %d runs from %s)", " ".join(command), pid, venv)
        return ""
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=60, check=False, env=dict(env)
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"the engine pid {pid}, running from {venv}, was not stopped: {error}"
    if completed.returncode != 0:
        return (
            f"the engine pid {pid}, running from {venv}, was not stopped: "
            f"{(completed.stderr or completed.stdout).strip()}"
        )
    log.info("stopped the engine pid %d, which ran from %s", pid, venv)
    return ""


def _remove_tree(path: Path, kind: str) -> list[str]:
    """Remove a listed folder with its content; the problems, one per item, naming what stayed.

    An environment's ``pyvenv.cfg``, the mark that the folder is one, goes last: when something in
    it cannot be removed, a second run after the fix still knows the folder for an environment."""
    marker = path / "pyvenv.cfg"
    if kind == "venv" and not marker.is_file():
        return [f"{path} is listed as the environment but holds no pyvenv.cfg; left alone"]
    if kind == "tree" and not path.name.endswith(".bundle"):
        return [f"{path} is listed as a bundle but is not named *.bundle; left alone"]
    failures: list[str] = []

    def failed(_function, entry, error_info) -> None:
        error = error_info if isinstance(error_info, BaseException) else error_info[1]
        failures.append(f"{entry}: {_error_text(error) if isinstance(error, OSError) else error}")

    handler = {"onexc": failed} if sys.version_info >= (3, 12) else {"onerror": failed}
    try:
        entries = [entry for entry in path.iterdir() if entry != marker]
    except OSError as error:
        return [f"could not remove {path}: {_error_text(error)}"]
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, **handler)
        else:
            try:
                entry.unlink()
            except OSError as error:
                failed(None, entry, error)
    if not failures:
        try:
            marker.unlink(missing_ok=True)
            path.rmdir()
        except OSError as error:
            failed(None, error.filename or path, error)
    if not failures:
        return []
    shown = "; ".join(failures[:3]) + (f"; and {len(failures) - 3} more" if len(failures) > 3 else "")
    return [f"could not remove {path} completely: {shown}"]


def uninstall(
    manifest: Manifest, manifest_file: Path, *, dry_run: bool = False, force: bool = False
) -> list[str]:
    """Remove every item of ``manifest``; return the problems (items left, registrations not undone)."""
    problems: list[str] = []
    for item in manifest.items:
        if item.kind == "service":
            problems += _undo_service(item.detail, dry_run)
    environments = engine_environments(manifest, os.environ)
    for item in manifest.items:
        if item.kind == "venv":
            problem = _stop_engine(Path(item.path), dry_run, environments=environments)
            if problem:
                problems += problem.splitlines()
    folders: list[Path] = []
    left: list[Path] = []
    gone: set[Path] = set()  # removed, or in a dry run what would be: a folder of only these empties
    for item in manifest.items:
        path = Path(item.path)
        if item.kind == "service":
            continue
        if item.kind == "dir":
            folders.append(path)
            continue
        if not os.path.lexists(path):
            continue
        if item.kind == "file":
            try:
                if item.sha256 and not force and path.is_file() and sha256_file(path) != item.sha256:
                    if dry_run:
                        log.info("would keep %s: it was changed after it was installed (--force)", path)
                    else:
                        problems.append(
                            f"{path} was changed after it was installed; kept (use --force to remove it)"
                        )
                    left.append(path)
                    continue
                if dry_run:
                    log.info("would remove %s", path)
                else:
                    path.unlink()
                gone.add(path)
            except OSError as error:
                problems.append(f"could not remove {path}: {_error_text(error)}")
                left.append(path)
        elif dry_run:
            log.info("would remove %s", path)
            gone.add(path)
        else:
            tree_problems = _remove_tree(path, item.kind)
            problems += tree_problems
            if tree_problems:
                left.append(path)
    if not dry_run and not problems:
        try:
            manifest_file.unlink()
        except OSError as error:
            problems.append(f"could not remove the manifest {manifest_file}: {_error_text(error)}")
    elif left:
        log.info("would keep %s, for what would be left", manifest_file)
    else:
        log.info("would remove %s", manifest_file)
        gone.add(manifest_file)
    for folder in sorted(folders, key=lambda path: len(path.parts), reverse=True):
        if not folder.is_dir():
            continue
        remaining = [entry for entry in folder.iterdir() if entry not in gone]
        if remaining:
            ours = [path for path in left if folder in path.parents] + (
                [manifest_file] if manifest_file.parent == folder and manifest_file.exists() else []
            )
            verb = "would keep" if dry_run else "kept"
            if ours:
                why = "would be kept" if dry_run else "could not be removed"
                log.info("%s %s: it still holds %s, which %s", verb, folder, ours[0], why)
            else:
                log.info("%s %s: it holds files the installer did not put there", verb, folder)
            continue
        if dry_run:
            log.info("would remove folder %s", folder)
            gone.add(folder)
            continue
        try:
            folder.rmdir()
        except OSError as error:
            problems.append(f"could not remove the folder {folder}: {_error_text(error)}")
    return problems


def _parsed_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="uninstall.py",
        description="Remove exactly what installer/install.py made, as its manifest lists it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--prefix", type=Path, help="the prefix given to install.py (default: the per-user data folder)"
    )
    parser.add_argument("--dry-run", action="store_true", help="show what would be removed; remove nothing")
    parser.add_argument(
        "--force", action="store_true", help="also remove files changed since they were installed"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="say what is removed")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parsed_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.dry_run else logging.WARNING,
        format="uninstall: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    platform = locations.current_platform()
    prefix = args.prefix or Path(locations.user_folders(platform, os.environ, Path.home()).data_dir)
    manifest_file = Path(locations.manifest_path(prefix))
    try:
        manifest = read_manifest(manifest_file)
    except FileNotFoundError:
        print(
            f"uninstall: error: no install manifest at {manifest_file}; nothing was installed there "
            "(give --prefix as the installer's closing line `uninstall:` says: the prefix install.py "
            f"was given, or $CHRONOSCOPE_HOME/data when {locations.ENV_HOME} was set for the install)",
            file=sys.stderr,
        )
        return 1
    except ManifestError as error:
        print(f"uninstall: error: {error}", file=sys.stderr)
        return 1
    problems = uninstall(manifest, manifest_file, dry_run=args.dry_run, force=args.force)
    for problem in problems:
        print(f"uninstall: {problem}", file=sys.stderr)
    if problems:
        if manifest_file.exists():
            print(
                f"uninstall: the manifest {manifest_file} is kept for what is left; run again after fixing "
                "the above",
                file=sys.stderr,
            )
        return 3
    verb = "would remove" if args.dry_run else "removed"
    print(f"Chronoscope {verb}: {len(manifest.items)} items listed in {manifest_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
