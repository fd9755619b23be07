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
    with warnings.catch_warnings(record=True) as caught:
        # Without XDG_RUNTIME_DIR (ssh sessions, containers) platformdirs picks /tmp/runtime-UID and
        # warns on every call; that folder is private to the user, which is all the engine needs.
        warnings.simplefilter("always")
        runtime_dir = Path(dirs.user_runtime_dir)
    for warning in caught:
        log.debug("runtime folder %s: %s", runtime_dir, warning.message)
    return Places(
        config_dir=Path(dirs.user_config_dir),
        data_dir=data_dir,
        models_dir=data_dir / "models",
        cache_dir=Path(dirs.user_cache_dir),
        log_dir=Path(dirs.user_log_dir),
        runtime_dir=runtime_dir,
    )
