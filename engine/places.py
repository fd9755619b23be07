"""Where Chronoscope keeps things on disk: one table, from platformdirs.

``CHRONOSCOPE_HOME`` overrides every location (tests and portable installs use it): each place
becomes a subfolder of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from platformdirs import PlatformDirs

APP_NAME = "Chronoscope"

log = logging.getLogger(__name__)
_told: set[str] = set()  # the rejected XDG_RUNTIME_DIR values already warned about


@dataclass(frozen=True)
class Places:
    config_dir: Path
    data_dir: Path
    models_dir: Path
    cache_dir: Path
    log_dir: Path
    runtime_dir: Path


def places() -> Places:
    """Return the folders for settings, models, render cache, logs and the connection file."""
    override = os.environ.get("CHRONOSCOPE_HOME")
    if override:
        root = Path(override)
        return Places(
            config_dir=root / "config",
            data_dir=root / "data",
            models_dir=root / "data" / "models",
            cache_dir=root / "cache",
            log_dir=root / "log",
            runtime_dir=root / "runtime",
        )
    dirs = PlatformDirs(APP_NAME, appauthor=False)
    data_dir = Path(dirs.user_data_dir)
    # Without XDG_RUNTIME_DIR (ssh sessions, containers) platformdirs picks /tmp/runtime-UID and
    # warns; that folder is private to the user, which is all the engine needs. A standing filter,
    # not catch_warnings: that swaps the filter list, and the copy it left behind (with "always"
    # at its head) printed every ignored warning at interpreter exit, such as a ResourceWarning
    # for the engine a command leaves running.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    runtime_dir = Path(dirs.user_runtime_dir)
    xdg_runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if not xdg_runtime:
        log.debug("XDG_RUNTIME_DIR is not set: runtime folder %s", runtime_dir)
    elif Path(xdg_runtime) not in runtime_dir.parents and xdg_runtime not in _told:
        # platformdirs takes XDG_RUNTIME_DIR only as a folder of the user's with mode 0700; every
        # process falls back alike, so the engine is still found, but not where the user said
        _told.add(xdg_runtime)
        log.warning(
            "XDG_RUNTIME_DIR %s is not a private folder of yours (owned by you, mode 0700), so the "
            "engine's connection file and sockets are in %s; `chmod 700 %s` to use it",
            xdg_runtime,
            runtime_dir,
            xdg_runtime,
        )
    return Places(
        config_dir=Path(dirs.user_config_dir),
        data_dir=data_dir,
        models_dir=data_dir / "models",
        cache_dir=Path(dirs.user_cache_dir),
        log_dir=Path(dirs.user_log_dir),
        runtime_dir=runtime_dir,
    )


PLACE_VARIABLES = {
    "config_dir": "XDG_CONFIG_HOME",
    "data_dir": "XDG_DATA_HOME",
    "models_dir": "XDG_DATA_HOME",
    "cache_dir": "XDG_CACHE_HOME",
    "log_dir": "XDG_STATE_HOME",
    "runtime_dir": "XDG_RUNTIME_DIR",
}
"""The variable that moves each place on Linux and the BSDs (platformdirs' XDG folders)."""


def place_of(path: Path) -> str | None:
    """The name of the place (a ``Places`` field) that ``path`` is, or lies in; None for a folder
    of the user's choosing."""
    resolved = Path(os.path.abspath(path))
    own = places()
    found = None
    depth = -1
    for name in PLACE_VARIABLES:
        root = Path(os.path.abspath(getattr(own, name)))
        if (resolved == root or root in resolved.parents) and len(root.parts) > depth:
            found, depth = name, len(root.parts)
    return found


def how_to_move(place: str | None) -> str:
    """How the user puts the place ``place`` (a ``Places`` field; None: a folder of the user's
    choosing) elsewhere, as the variables are set now: "set XDG_STATE_HOME (or ...) to ..."."""
    if place is None:
        return "use a folder of your own"
    if os.environ.get("CHRONOSCOPE_HOME"):
        return "point CHRONOSCOPE_HOME at a folder of yours (it holds every Chronoscope folder)"
    if sys.platform in ("win32", "darwin"):
        return "set CHRONOSCOPE_HOME to a folder of yours (it moves every Chronoscope folder)"
    return f"set {PLACE_VARIABLES[place]} (or CHRONOSCOPE_HOME) to a folder of yours"


def folder_problem(path: Path, *, private: bool = False) -> str:
    """Why a folder cannot be made or written in by this user ("" when it can), found by trying:
    a probe file is made in it (or, when it is missing, a probe folder where it would be made) and
    removed at once. ``private``: a folder that must be the user's own (POSIX). The text follows
    the folder's name: "is not writable (Permission denied)"."""
    path = Path(path)
    existing = path
    while not os.path.lexists(existing) and existing.parent != existing:
        existing = existing.parent
    if existing != path:
        if not existing.is_dir():
            return f"cannot be made: {existing} is a file, not a folder"
        try:
            probe = tempfile.mkdtemp(prefix=".chronoscope-probe-", dir=existing)
        except OSError as error:
            return f"cannot be made: {existing} is not writable ({error.strerror or error})"
        os.rmdir(probe)
        return ""
    if not path.is_dir():
        return "is a file, not a folder"
    if private and os.name != "nt":
        owner = path.stat().st_uid
        if owner != os.getuid():
            return f"belongs to another user (uid {owner}, you are {os.getuid()})"
    try:
        handle, probe_file = tempfile.mkstemp(prefix=".chronoscope-probe-", dir=path)
    except OSError as error:
        return f"is not writable ({error.strerror or error})"
    os.close(handle)
    with contextlib.suppress(OSError):
        os.unlink(probe_file)
    return ""


def folder_fix(path: Path) -> str:
    """What to do about a folder of Chronoscope's that ``folder_problem`` refused."""
    path = Path(path)
    existing = path
    while not os.path.lexists(existing) and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        action = f"move the file {existing} aside"
    elif os.name != "nt" and existing.stat().st_uid != os.getuid():
        action = f"make {existing} yours (`sudo chown $USER {existing}`)"
    elif not stat.S_IMODE(existing.stat().st_mode) & stat.S_IWUSR:
        action = f"make {existing} writable (`chmod u+w {existing}`)"
    else:  # writable by its mode: a read-only file system, or the immutable attribute
        action = f"make {existing} writable (its file system is read-only, or it is marked immutable)"
    return f"{action}, or {how_to_move(place_of(path))}"
