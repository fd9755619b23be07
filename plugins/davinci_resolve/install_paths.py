"""Where DaVinci Resolve looks for user scripts, per OS, and which files the installer copies there.

Resolve lists scripts under ``Fusion/Scripts/Utility`` on every page and those under
``Fusion/Scripts/Edit`` on the Edit page, in Workspace > Scripts. Per-user roots:

    Linux    ~/.local/share/DaVinciResolve/Fusion/Scripts
    macOS    ~/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts
    Windows  %APPDATA%\\Blackmagic Design\\DaVinci Resolve\\Support\\Fusion\\Scripts

Standard library only, so that the installer can use it before anything else is installed::

    from install_paths import script_folder, SCRIPT_FILES
    target = script_folder("Utility")
    for name in SCRIPT_FILES: copy(PLUGIN_DIR / name, target / name)
    # then: chronoscope bridge --install-config   (writes resolve-bridge.json in the config folder)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent
SUBFOLDERS = ("Utility", "Edit")
DEFAULT_SUBFOLDER = "Utility"
PYTHON_SCRIPTS = (
    "Chronoscope - Detect Speed.py",
    "Chronoscope - Render Slow Motion.py",
    "Chronoscope - Open in Preview.py",
)
LUA_SCRIPTS = (
    "Chronoscope - Detect Speed.lua",
    "Chronoscope - Render Slow Motion.lua",
    "Chronoscope - Open in Preview.lua",
)
SHARED_MODULES = ("chronoscope_resolve.py", "chronoscope_resolve.lua")
SCRIPT_FILES = PYTHON_SCRIPTS + LUA_SCRIPTS + SHARED_MODULES
BRIDGE_CONFIG_NAME = "resolve-bridge.json"


class UnknownPlatformError(ValueError):
    """The OS is not one Resolve runs on; the message lists those it does."""


def scripts_root(
    platform: str | None = None, env: Mapping[str, str] | None = None, home: Path | None = None
) -> Path:
    """The per-user ``Fusion/Scripts`` folder of Resolve on ``platform`` (default: this one)."""
    platform = platform or sys.platform
    env = os.environ if env is None else env
    home = Path(home) if home is not None else Path.home()
    if platform.startswith("linux"):
        return home / ".local" / "share" / "DaVinciResolve" / "Fusion" / "Scripts"
    if platform == "darwin":
        return (
            home
            / "Library"
            / "Application Support"
            / "Blackmagic Design"
            / "DaVinci Resolve"
            / "Fusion"
            / "Scripts"
        )
    if platform == "win32":
        appdata = env.get("APPDATA")
        base = Path(appdata) if appdata else home / "AppData" / "Roaming"
        return base / "Blackmagic Design" / "DaVinci Resolve" / "Support" / "Fusion" / "Scripts"
    raise UnknownPlatformError(
        f"DaVinci Resolve does not run on {platform!r}; it runs on: linux, darwin, win32"
    )


def script_folder(
    subfolder: str = DEFAULT_SUBFOLDER,
    platform: str | None = None,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Path:
    """``Fusion/Scripts/<subfolder>``: ``Utility`` (every page) or ``Edit`` (the Edit page)."""
    if subfolder not in SUBFOLDERS:
        raise ValueError(
            f"script subfolder {subfolder!r} is not one Resolve lists; use one of: {', '.join(SUBFOLDERS)}"
        )
    return scripts_root(platform, env, home) / subfolder


def script_folders(
    platform: str | None = None, env: Mapping[str, str] | None = None, home: Path | None = None
) -> dict[str, Path]:
    """Both folders Resolve lists scripts from, by subfolder name."""
    return {name: script_folder(name, platform, env, home) for name in SUBFOLDERS}


def source_files() -> list[Path]:
    """The files to copy, from this folder."""
    return [PLUGIN_DIR / name for name in SCRIPT_FILES]


if __name__ == "__main__":
    for name, folder in script_folders().items():
        print(f"{name}: {folder}")
