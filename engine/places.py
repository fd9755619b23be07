"""Where Chronoscope keeps things on disk: one table, from platformdirs.

``CHRONOSCOPE_HOME`` overrides every location (tests and portable installs use it): each place
becomes a subfolder of it.
"""

from __future__ import annotations

import logging
import os
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
