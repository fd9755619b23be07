"""Remove what ``installer/install.py`` made: exactly the items its manifest lists, nothing else.

    python3 installer/uninstall.py [--prefix DIR] [--dry-run] [--force]

Order: registrations are undone first (the systemd user unit disabled and stopped, the launchd
agent unloaded), then files, copied folders and the environment are removed, then the folders the
installer created, deepest first and only when empty, and the manifest last. A file whose content
changed since it was installed (an edited Resolve script, say) is kept with a warning unless
``--force``. Standard library only.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))

import locations  # noqa: E402
from manifest import Manifest, ManifestError, read_manifest, sha256_file  # noqa: E402

log = logging.getLogger("chronoscope-uninstall")

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


def _stop_engine(venv: Path, dry_run: bool) -> None:
    """Stop an engine running from the environment about to be removed (started by hand, say)."""
    python = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    if not python.is_file():
        return
    command = [str(python), "-m", "engine.cli", "--quiet", "engine", "stop"]
    if dry_run:
        log.info("would run: %s", " ".join(command))
        return
    completed = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    log.info("engine stop: %s", (completed.stdout or completed.stderr).strip())


def _remove_tree(path: Path, kind: str) -> str:
    if kind == "venv" and not (path / "pyvenv.cfg").is_file():
        return f"{path} is listed as the environment but holds no pyvenv.cfg; left alone"
    if kind == "tree" and not path.name.endswith(".bundle"):
        return f"{path} is listed as a bundle but is not named *.bundle; left alone"
    shutil.rmtree(path)
    return ""


def uninstall(
    manifest: Manifest, manifest_file: Path, *, dry_run: bool = False, force: bool = False
) -> list[str]:
    """Remove every item of ``manifest``; return the problems (items left, registrations not undone)."""
    problems: list[str] = []
    for item in manifest.items:
        if item.kind == "service":
            problems += _undo_service(item.detail, dry_run)
    for item in manifest.items:
        if item.kind == "venv":
            _stop_engine(Path(item.path), dry_run)
    folders: list[Path] = []
    for item in manifest.items:
        path = Path(item.path)
        if item.kind == "service":
            continue
        if item.kind == "dir":
            folders.append(path)
            continue
        if not os.path.lexists(path):
            continue
        if dry_run:
            log.info("would remove %s", path)
            continue
        if item.kind == "file":
            if item.sha256 and not force and path.is_file() and sha256_file(path) != item.sha256:
                problems.append(f"{path} was changed after it was installed; kept (use --force to remove it)")
                continue
            path.unlink()
        else:
            problem = _remove_tree(path, item.kind)
            if problem:
                problems.append(problem)
    if not dry_run and not problems:
        manifest_file.unlink()
    elif dry_run:
        log.info("would remove %s", manifest_file)
    for folder in sorted(folders, key=lambda path: len(path.parts), reverse=True):
        if not folder.is_dir():
            continue
        if any(folder.iterdir()):
            log.info("kept %s: it holds files the installer did not put there", folder)
            continue
        if dry_run:
            log.info("would remove folder %s", folder)
        else:
            folder.rmdir()
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
            "(give --prefix if install.py was given one)",
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
        print(
            f"uninstall: the manifest {manifest_file} is kept for what is left; run again after fixing the "
            "above",
            file=sys.stderr,
        )
        return 3
    verb = "would remove" if args.dry_run else "removed"
    print(f"Chronoscope {verb}: {len(manifest.items)} items listed in {manifest_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
