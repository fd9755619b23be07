"""Where the Chronoscope Retime OpenFX bundle is built and where OFX hosts look for it.

For the installer: ``built_bundle()`` is the bundle that ``make ofx`` produces;
``plugin_folders()`` lists the folders an OFX host searches on a platform, in the order the
installer should prefer (each entry of ``OFX_PLUGIN_PATH`` first, then the platform's standard
folder); ``install_target()`` is where the bundle goes. Hosts (DaVinci Resolve among them) scan
these folders at start, so a host must be restarted after the bundle is placed.

    python plugins/ofx_bridge/install_paths.py            # this platform, as text
    python plugins/ofx_bridge/install_paths.py --json --platform windows
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

BUNDLE_NAME = "Chronoscope.ofx.bundle"
BINARY_NAME = "Chronoscope.ofx"
PLUGIN_PATH_VARIABLE = "OFX_PLUGIN_PATH"
PLATFORMS = ("linux", "windows", "macos")
# The architecture folder inside <bundle>/Contents, per the OpenFX packaging rules.
ARCHITECTURE_FOLDERS = {"linux": "Linux-x86-64", "windows": "Win64", "macos": "MacOS"}
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BundleLayout:
    """The bundle and its binary for one platform, relative to the folder that holds the bundle."""

    platform: str
    bundle: str
    binary: str
    plugin_folders: list[str]


def current_platform() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux"


def _check_platform(platform: str) -> str:
    if platform not in PLATFORMS:
        raise ValueError(f"platform {platform!r} is not known; use one of: {', '.join(PLATFORMS)}")
    return platform


def _path_type(platform: str) -> type[PurePath]:
    return PureWindowsPath if platform == "windows" else PurePosixPath


def built_bundle(repo_root: Path = REPO_ROOT) -> Path:
    """The bundle that ``make ofx`` builds (build/ofx/Chronoscope.ofx.bundle)."""
    return Path(repo_root) / "build" / "ofx" / BUNDLE_NAME


def bundle_binary(bundle: PurePath, platform: str | None = None) -> PurePath:
    """The plugin binary inside ``bundle`` for ``platform``."""
    platform = _check_platform(platform or current_platform())
    return bundle / "Contents" / ARCHITECTURE_FOLDERS[platform] / BINARY_NAME


def standard_folder(platform: str | None = None, environ: Mapping[str, str] | None = None) -> PurePath:
    """The folder every OFX host searches on ``platform``."""
    platform = _check_platform(platform or current_platform())
    environ = os.environ if environ is None else environ
    if platform == "windows":
        common = environ.get("CommonProgramFiles") or r"C:\Program Files\Common Files"
        return PureWindowsPath(common) / "OFX" / "Plugins"
    if platform == "macos":
        return PurePosixPath("/Library/OFX/Plugins")
    return PurePosixPath("/usr/OFX/Plugins")


def plugin_folders(platform: str | None = None, environ: Mapping[str, str] | None = None) -> list[PurePath]:
    """``OFX_PLUGIN_PATH`` entries (";"-separated on Windows, ":" elsewhere), then the standard folder."""
    platform = _check_platform(platform or current_platform())
    environ = os.environ if environ is None else environ
    separator = ";" if platform == "windows" else ":"
    path_type = _path_type(platform)
    folders: list[PurePath] = []
    for entry in environ.get(PLUGIN_PATH_VARIABLE, "").split(separator):
        if entry.strip() and path_type(entry.strip()) not in folders:
            folders.append(path_type(entry.strip()))
    standard = standard_folder(platform, environ)
    if standard not in folders:
        folders.append(standard)
    return folders


def install_target(platform: str | None = None, environ: Mapping[str, str] | None = None) -> PurePath:
    """Where the installer puts the bundle: the first plugin folder."""
    return plugin_folders(platform, environ)[0] / BUNDLE_NAME


def layout(platform: str | None = None, environ: Mapping[str, str] | None = None) -> BundleLayout:
    platform = _check_platform(platform or current_platform())
    bundle = PurePosixPath(BUNDLE_NAME)
    return BundleLayout(
        platform=platform,
        bundle=BUNDLE_NAME,
        binary=str(bundle_binary(bundle, platform)),
        plugin_folders=[str(folder) for folder in plugin_folders(platform, environ)],
    )


def _parsed_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Show the Chronoscope OFX bundle and the folders OFX hosts search.",
        epilog="examples:\n  python install_paths.py\n  python install_paths.py --json --platform windows",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--platform", choices=PLATFORMS, default=None, help="default: this machine's")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parsed_args(argv)
    platform = args.platform or current_platform()
    record = {
        **asdict(layout(platform)),
        "built_bundle": str(built_bundle()),
        "install_target": str(install_target(platform)),
    }
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        for name, value in record.items():
            print(f"{name}: {', '.join(value) if isinstance(value, list) else value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
