"""Where the installer puts the Resolve scripts, the entry scripts it writes from the templates,
the manual install command, and (only with a real Resolve, when RESOLVE_SCRIPT_API is set) a live
check of the calls the scripts rely on."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path, PureWindowsPath

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


def _imports(text: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            modules.add(node.module.split(".")[0])
    return modules


def test_every_file_to_install_exists_and_python_scripts_are_stdlib_only(tmp_path):
    assert all(path.is_file() for path in install_paths.source_files())
    texts = [
        (PLUGIN_DIR / name).read_text(encoding="utf-8")
        for name in ("chronoscope_resolve.py", "install_paths.py")
    ]
    texts += [text for name, text in install_paths.entry_texts(tmp_path).items() if name.endswith(".py")]
    for text in texts:
        assert _imports(text) <= {*sys.stdlib_module_names, "DaVinciResolveScript"}  # Resolve's own


def test_one_template_makes_every_entry_and_each_names_its_module(tmp_path):
    modules = tmp_path / "modules"
    texts = install_paths.entry_texts(modules)
    assert sorted(texts) == sorted(
        f"{title}{suffix}" for title in chronoscope_resolve.TITLES.values() for suffix in (".py", ".lua")
    )
    assert {e.action: e.title for e in install_paths.ENTRIES} == chronoscope_resolve.TITLES
    lua_titles = (PLUGIN_DIR / "chronoscope_resolve.lua").read_text(encoding="utf-8")
    for entry in install_paths.ENTRIES:
        assert f'{entry.action} = "{entry.title}"' in lua_titles
        python = texts[f"{entry.title}.py"]
        lua = texts[f"{entry.title}.lua"]
        assert python.startswith(f'"""{entry.title} (DaVinci Resolve, Workspace > Scripts).')
        assert f"_shared.run({entry.action!r}, globals())" in python
        assert f'dofile(shared_module).run("{entry.action}", resolve)' in lua
        assert f"SHARED_MODULE = {str(modules / 'chronoscope_resolve.py')!r}" in python
        assert f'local shared_module = "{modules / "chronoscope_resolve.lua"}"' in lua
        # no search of Resolve's folders: the module's path is written in, and the code is short
        python_code = [line for line in python.split('"""', 2)[2].splitlines() if line.strip()]
        lua_code = [line for line in lua.splitlines() if line.strip() and not line.startswith("--")]
        assert len(python_code) <= 12 and len(lua_code) <= 10
        assert not any("Fusion" in line or "APPDATA" in line for line in python_code + lua_code)
        compile(python, entry.file_name(".py"), "exec")


def test_entries_for_a_windows_install_hold_the_path_exactly():
    folder = PureWindowsPath(r"C:\Users\ed 'o\AppData\Local\Chronoscope\resolve")
    texts = install_paths.entry_texts(folder)
    namespace: dict = {}
    python = texts["Chronoscope - Detect Speed.py"]
    line = next(line for line in python.splitlines() if line.startswith("SHARED_MODULE = "))
    exec(line, namespace)
    assert (
        namespace["SHARED_MODULE"]
        == r"C:\Users\ed 'o\AppData\Local\Chronoscope\resolve\chronoscope_resolve.py"
    )
    lua = texts["Chronoscope - Detect Speed.lua"]
    escaped = r"C:\\Users\\ed 'o\\AppData\\Local\\Chronoscope\\resolve\\chronoscope_resolve.lua"
    assert f'local shared_module = "{escaped}"' in lua


def test_a_relative_modules_folder_or_unknown_language_is_refused():
    with pytest.raises(ValueError, match="is relative; Resolve runs scripts from its own working folder"):
        install_paths.entry_texts("resolve")
    with pytest.raises(ValueError, match=r"use one of: \.py, \.lua"):
        install_paths.entry_text(install_paths.ENTRIES[0], ".js", "/opt/chronoscope")


def test_manual_install_command_writes_the_entries(tmp_path):
    command = [sys.executable, str(PLUGIN_DIR / "install_paths.py")]
    utility = tmp_path / "Utility"
    done = subprocess.run(
        [*command, "install", "--scripts-dir", str(utility), "--modules-dir", str(tmp_path / "modules")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    written = [Path(line) for line in done.stdout.splitlines()]
    assert sorted(path.name for path in written) == sorted(
        [*install_paths.ENTRY_FILES, *install_paths.SHARED_MODULES.values()]
    )
    assert (tmp_path / "modules" / "chronoscope_resolve.py").read_bytes() == (
        PLUGIN_DIR / "chronoscope_resolve.py"
    ).read_bytes()
    assert (utility / "Chronoscope - Open in Preview.lua").read_text(encoding="utf-8") == (
        install_paths.entry_texts(tmp_path / "modules")["Chronoscope - Open in Preview.lua"]
    )
    assert sorted(path.name for path in utility.iterdir()) == sorted(install_paths.ENTRY_FILES)

    checkout = subprocess.run(
        [*command, "install", "--scripts-dir", str(tmp_path / "dev")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checkout.returncode == 0, checkout.stderr
    assert repr(str(PLUGIN_DIR / "chronoscope_resolve.py")) in (
        tmp_path / "dev" / "Chronoscope - Detect Speed.py"
    ).read_text(encoding="utf-8")
    assert len(checkout.stdout.splitlines()) == 6

    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be")
    refused = subprocess.run(
        [*command, "install", "--scripts-dir", str(blocked / "Utility")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 2 and refused.stderr.startswith("install_paths.py: error: ")
    assert "Traceback" not in refused.stderr
    helped = subprocess.run([*command, "install", "--help"], capture_output=True, text=True, check=False)
    assert "--modules-dir" in helped.stdout and "--subfolder {Utility,Edit}" in helped.stdout


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
