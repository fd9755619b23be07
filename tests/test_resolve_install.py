"""Where the installer puts the Resolve scripts, the files it copies, and (only with a real
Resolve, when RESOLVE_SCRIPT_API is set) a live check of the calls the scripts rely on."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugins" / "davinci_resolve"
sys.path.insert(0, str(PLUGIN_DIR))

import chronoscope_resolve  # noqa: E402
import install_paths  # noqa: E402


def test_script_folders_per_os():
    home = Path("/home/ed")
    assert install_paths.script_folders("linux", {}, home) == {
        "Utility": home / ".local/share/DaVinciResolve/Fusion/Scripts/Utility",
        "Edit": home / ".local/share/DaVinciResolve/Fusion/Scripts/Edit",
    }
    assert install_paths.script_folder("Edit", "darwin", {}, Path("/Users/ed")) == Path(
        "/Users/ed/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Edit"
    )
    windows = install_paths.script_folder(
        "Utility", "win32", {"APPDATA": "C:/Users/ed/AppData/Roaming"}, home
    )
    assert windows == Path(
        "C:/Users/ed/AppData/Roaming/Blackmagic Design/DaVinci Resolve/Support/Fusion/Scripts/Utility"
    )
    with pytest.raises(install_paths.UnknownPlatformError, match="it runs on: linux, darwin, win32"):
        install_paths.scripts_root("sunos5")
    with pytest.raises(ValueError, match="use one of: Utility, Edit"):
        install_paths.script_folder("Color")


def test_every_file_to_install_exists_and_python_scripts_are_stdlib_only():
    assert all(path.is_file() for path in install_paths.source_files())
    stdlib = set(sys.stdlib_module_names)
    for name in (*install_paths.PYTHON_SCRIPTS, "chronoscope_resolve.py", "install_paths.py"):
        text = (PLUGIN_DIR / name).read_text(encoding="utf-8")
        for line in text.splitlines():
            words = line.split()
            if line.startswith(("import ", "from ")) and words[1] != "__future__":
                module = words[1].split(".")[0]
                assert module in stdlib or module in ("chronoscope_resolve", "collections"), f"{name}: {line}"


def test_config_folder_matches_the_engine_places(isolated_places, monkeypatch):
    from engine.places import places

    assert Path(chronoscope_resolve.user_config_dir()) == places().config_dir
    monkeypatch.delenv("CHRONOSCOPE_HOME")
    monkeypatch.setenv("XDG_CONFIG_HOME", "/tmp/xdg-config")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/tmp/xdg-runtime")
    if sys.platform.startswith("linux"):
        assert Path(chronoscope_resolve.user_config_dir()) == places().config_dir
    assert chronoscope_resolve.user_config_dir({}, "win32").endswith(
        os.path.join("AppData", "Local", "Chronoscope")
    )
    assert chronoscope_resolve.user_config_dir({}, "darwin").endswith(
        os.path.join("Library", "Application Support", "Chronoscope")
    )


@pytest.mark.skipif(
    not os.environ.get("RESOLVE_SCRIPT_API"), reason="live test: set RESOLVE_SCRIPT_API with Resolve running"
)
def test_live_resolve_exports_the_current_timeline(tmp_path):
    sys.path.insert(0, os.path.join(os.environ["RESOLVE_SCRIPT_API"], "Modules"))
    module = importlib.import_module("DaVinciResolveScript")
    resolve = module.scriptapp("Resolve")
    assert resolve is not None, "Resolve is not running or refuses external scripts"
    project, timeline = chronoscope_resolve.current_timeline(resolve)
    path = chronoscope_resolve.export_timeline(resolve, timeline, str(tmp_path))
    from engine.timeline import list_segments, read_timeline

    segments = list_segments(read_timeline(path), check_time_warps=False)
    items = [item for _, item in chronoscope_resolve.video_items(timeline)]
    assert len([s for s in segments if s.track_kind == "Video"]) == len(items)
    assert isinstance(timeline.GetMarkers(), dict)
