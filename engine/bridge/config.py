"""The Resolve scripts' config, ``resolve-bridge.json``: the command that runs this bridge."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from engine.bridge.protocol import PROTOCOL_VERSION
from engine.fsutil import write_text_atomic
from engine.places import places

log = logging.getLogger(__name__)

CONFIG_FILE_NAME = "resolve-bridge.json"


def config_path() -> Path:
    return places().config_dir / CONFIG_FILE_NAME


def bridge_command() -> list[str]:
    """The command line that runs ``chronoscope`` with this interpreter (add ``bridge``)."""
    return [sys.executable, "-m", "engine.cli"]


def install_config(path: Path | None = None) -> Path:
    """Write the scripts' config (``command`` plus any settings already there) as UTF-8, through a
    temporary name; return its path."""
    path = Path(path) if path is not None else config_path()
    settings: dict[str, Any] = {}
    if path.is_file():
        try:
            settings = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            log.warning("replacing unreadable %s: %s", path, error)
        if not isinstance(settings, dict):
            settings = {}
    settings.update({"version": PROTOCOL_VERSION, "command": bridge_command()})
    # UTF-8 as it is (no \u escapes): paths with accents read the same in the Lua scripts
    write_text_atomic(path, json.dumps(settings, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
