"""Every per-OS place the installer writes to or registers with: one table, standard library only.

The installer runs with the system ``python3`` before any environment exists, so platformdirs is
not available: the folders it would give for ``PlatformDirs("Chronoscope", appauthor=False)`` are
written out here (``engine/places.py`` reads the same folders through platformdirs, and the tests
check that both agree). The Resolve script folders and the OFX plugin folders are not repeated:
they come from ``plugins/davinci_resolve/install_paths.py`` and ``plugins/ofx_bridge/install_paths.py``
in the source checkout.

Every function takes the platform (``linux``, ``macos``, ``windows``), the environment and the home
folder explicitly, so that the table can be tested for any OS on any OS::

    python3 installer/locations.py --platform windows --home 'C:\\Users\\ed'
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from types import ModuleType

APP_NAME = "Chronoscope"
PLATFORMS = ("linux", "macos", "windows")
ENV_HOME = "CHRONOSCOPE_HOME"
SYSTEMD_UNIT_NAME = "chronoscope-engine.service"
LAUNCHD_LABEL = "org.chronoscope.engine"
DESKTOP_ENTRY_NAME = "chronoscope.desktop"
ENVIRONMENT_D_NAME = "60-chronoscope-ofx.conf"
MANIFEST_NAME = "install-manifest.json"
VENV_NAME = "venv"
SOURCE_ROOT = Path(__file__).resolve().parent.parent
RESOLVE_PLATFORM_NAMES = {"linux": "linux", "macos": "darwin", "windows": "win32"}


class UnknownPlatformError(ValueError):
    """A platform name the table has no row for; the message lists the known ones."""


def current_platform() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    if sys.platform.startswith("linux"):
        return "linux"
    raise UnknownPlatformError(f"Chronoscope installs on {', '.join(PLATFORMS)}; this is {sys.platform!r}")


def check_platform(platform: str) -> str:
    if platform not in PLATFORMS:
        raise UnknownPlatformError(f"platform {platform!r} is not known; use one of: {', '.join(PLATFORMS)}")
    return platform


def path_type(platform: str) -> type[PurePath]:
    return PureWindowsPath if check_platform(platform) == "windows" else PurePosixPath


def _xdg(env: Mapping[str, str], variable: str, home: PurePath, default: str) -> PurePath:
    """An XDG base directory: the variable when set to an absolute path, else ``home/default``."""
    value = env.get(variable, "")
    if value and PurePosixPath(value).is_absolute():
        return PurePosixPath(value)
    return home / default


def _local_appdata(env: Mapping[str, str], home: PurePath) -> PurePath:
    value = env.get("LOCALAPPDATA")
    return PureWindowsPath(value) if value else home / "AppData" / "Local"


def _roaming_appdata(env: Mapping[str, str], home: PurePath) -> PurePath:
    value = env.get("APPDATA")
    return PureWindowsPath(value) if value else home / "AppData" / "Roaming"


@dataclass(frozen=True)
class UserFolders:
    """Chronoscope's per-user folders, as ``engine.places`` finds them with platformdirs."""

    data_dir: PurePath
    config_dir: PurePath
    cache_dir: PurePath
    models_dir: PurePath


def user_folders(platform: str, env: Mapping[str, str], home: PurePath) -> UserFolders:
    """Data (models, the default install prefix), config (bridge config) and cache (wheels)."""
    platform = check_platform(platform)
    home = path_type(platform)(home)
    override = env.get(ENV_HOME)
    if override:
        root = path_type(platform)(override)
        return UserFolders(root / "data", root / "config", root / "cache", root / "data" / "models")
    if platform == "linux":
        data = _xdg(env, "XDG_DATA_HOME", home, ".local/share") / APP_NAME
        config = _xdg(env, "XDG_CONFIG_HOME", home, ".config") / APP_NAME
        cache = _xdg(env, "XDG_CACHE_HOME", home, ".cache") / APP_NAME
    elif platform == "macos":
        data = home / "Library" / "Application Support" / APP_NAME
        config = data
        cache = home / "Library" / "Caches" / APP_NAME
    else:
        data = _local_appdata(env, home) / APP_NAME
        config = data
        cache = data / "Cache"
    return UserFolders(data, config, cache, data / "models")


@dataclass(frozen=True)
class VenvLayout:
    """Where the executables of a virtual environment live."""

    root: PurePath
    python: PurePath
    chronoscope: PurePath
    chronoscope_gui: PurePath


def venv_layout(prefix: PurePath, platform: str) -> VenvLayout:
    root = path_type(platform)(prefix) / VENV_NAME
    if platform == "windows":
        scripts = root / "Scripts"
        return VenvLayout(
            root, scripts / "python.exe", scripts / "chronoscope.exe", scripts / "chronoscope-gui.exe"
        )
    scripts = root / "bin"
    return VenvLayout(root, scripts / "python", scripts / "chronoscope", scripts / "chronoscope-gui")


def command_folder(platform: str, home: PurePath) -> PurePath | None:
    """The per-user folder for commands, where the installer puts launchers of ``chronoscope`` and
    ``chronoscope-gui``: ``~/.local/bin`` (the XDG base directory spec's, which most Linux shells put
    on PATH when it exists; also used on macOS). None on Windows: the commands stay in the
    environment's ``Scripts`` folder and are named by their full path."""
    if check_platform(platform) == "windows":
        return None
    return path_type(platform)(home) / ".local" / "bin"


@dataclass(frozen=True)
class Registrations:
    """The files that register Chronoscope with the desktop: engine autostart and the preview app."""

    autostart_kind: str  # systemd-user, launchd, startup-folder
    autostart_file: PurePath
    launcher_kind: str  # desktop-entry, command-file, start-menu
    launcher_file: PurePath
    environment_file: PurePath | None  # Linux: systemd environment.d, for OFX_PLUGIN_PATH


def registrations(platform: str, env: Mapping[str, str], home: PurePath) -> Registrations:
    platform = check_platform(platform)
    home = path_type(platform)(home)
    if platform == "linux":
        config = _xdg(env, "XDG_CONFIG_HOME", home, ".config")
        data = _xdg(env, "XDG_DATA_HOME", home, ".local/share")
        return Registrations(
            "systemd-user",
            config / "systemd" / "user" / SYSTEMD_UNIT_NAME,
            "desktop-entry",
            data / "applications" / DESKTOP_ENTRY_NAME,
            config / "environment.d" / ENVIRONMENT_D_NAME,
        )
    if platform == "macos":
        return Registrations(
            "launchd",
            home / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist",
            "command-file",
            home / "Applications" / "Chronoscope Preview.command",
            None,
        )
    programs = _roaming_appdata(env, home) / "Microsoft" / "Windows" / "Start Menu" / "Programs"
    return Registrations(
        "startup-folder",
        programs / "Startup" / "Chronoscope Engine.cmd",
        "start-menu",
        programs / "Chronoscope Preview.cmd",
        None,
    )


def _load_plugin_module(source_root: Path, relative: str, name: str) -> ModuleType:
    """Import one of the plugins' ``install_paths.py`` from the source checkout."""
    path = Path(source_root) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: --source must be a Chronoscope checkout")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def resolve_paths(source_root: Path = SOURCE_ROOT) -> ModuleType:
    """``plugins/davinci_resolve/install_paths.py``: the script folders and the files to copy."""
    return _load_plugin_module(
        source_root, "plugins/davinci_resolve/install_paths.py", "chronoscope_resolve_install_paths"
    )


def ofx_paths(source_root: Path = SOURCE_ROOT) -> ModuleType:
    """``plugins/ofx_bridge/install_paths.py``: the bundle layout and the OFX plugin folders."""
    return _load_plugin_module(
        source_root, "plugins/ofx_bridge/install_paths.py", "chronoscope_ofx_install_paths"
    )


def resolve_script_folders(
    platform: str, env: Mapping[str, str], home: PurePath, source_root: Path = SOURCE_ROOT
) -> dict[str, PurePath]:
    """Resolve's per-user ``Fusion/Scripts/{Utility,Edit}`` folders, from the Resolve plugin's table."""
    module = resolve_paths(source_root)
    folders = module.script_folders(RESOLVE_PLATFORM_NAMES[check_platform(platform)], env, Path(home))
    return {name: path_type(platform)(str(folder)) for name, folder in folders.items()}


@dataclass(frozen=True)
class OfxTarget:
    """The folder the OFX bundle goes into, and why; ``needs_plugin_path`` when hosts will not find it
    unless ``OFX_PLUGIN_PATH`` names the folder."""

    folder: PurePath
    reason: str
    needs_plugin_path: bool


def ofx_user_folder(platform: str, env: Mapping[str, str], home: PurePath) -> PurePath:
    """The per-user fallback folder for the bundle (not one hosts search by themselves)."""
    return user_folders(platform, env, home).data_dir / "OFX" / "Plugins"


def ofx_target(
    platform: str,
    env: Mapping[str, str],
    home: PurePath,
    *,
    writable=None,
    source_root: Path = SOURCE_ROOT,
) -> OfxTarget:
    """Where the bundle goes: the first ``OFX_PLUGIN_PATH`` entry, else the platform's standard folder
    when this user may write there (``writable(folder)``), else the per-user fallback folder."""
    module = ofx_paths(source_root)
    ofx_platform = check_platform(platform)
    standard = module.standard_folder(ofx_platform, env)
    folders = module.plugin_folders(ofx_platform, env)
    if folders[0] != standard:
        return OfxTarget(
            path_type(platform)(str(folders[0])), f"first entry of {module.PLUGIN_PATH_VARIABLE}", False
        )
    writable = writable or folder_writable
    if writable(Path(str(standard))):
        return OfxTarget(path_type(platform)(str(standard)), "the standard OFX folder", False)
    return OfxTarget(ofx_user_folder(platform, env, home), f"{standard} is not writable by this user", True)


def folder_writable(folder: Path) -> bool:
    """True when ``folder`` exists and is writable, or its nearest existing parent is."""
    candidate = Path(folder)
    while not candidate.exists():
        if candidate.parent == candidate:
            return False
        candidate = candidate.parent
    return candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK)


def manifest_path(prefix: PurePath) -> PurePath:
    return prefix / MANIFEST_NAME


def _table(platform: str, env: Mapping[str, str], home: PurePath) -> dict[str, object]:
    folders = user_folders(platform, env, home)
    record: dict[str, object] = {name: str(value) for name, value in asdict(folders).items()}
    record["venv"] = {
        name: str(value) for name, value in asdict(venv_layout(folders.data_dir, platform)).items()
    }
    record["registrations"] = {
        name: str(value) if value is not None else None
        for name, value in asdict(registrations(platform, env, home)).items()
    }
    record["resolve_script_folders"] = {
        name: str(value) for name, value in resolve_script_folders(platform, env, home).items()
    }
    commands = command_folder(platform, home)
    record["command_folder"] = str(commands) if commands is not None else None
    record["ofx_user_folder"] = str(ofx_user_folder(platform, env, home))
    record["manifest"] = str(manifest_path(folders.data_dir))
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Print every place the installer uses on a platform.",
        epilog="examples:\n  python3 installer/locations.py\n"
        "  python3 installer/locations.py --platform macos --home /Users/ed",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--platform", choices=PLATFORMS, default=None, help="default: this machine's")
    parser.add_argument("--home", default=None, help="home folder (default: yours)")
    args = parser.parse_args(argv)
    platform = args.platform or current_platform()
    home = args.home or str(Path.home())
    env = os.environ if platform == current_platform() else {}
    print(json.dumps(_table(platform, env, path_type(platform)(home)), indent=2))
    return 0


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    sys.exit(main())
