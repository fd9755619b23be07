"""The installer's per-OS table (installer/locations.py) for Linux, macOS and Windows, the files it
generates for each OS, the ONNX Runtime swap, and the manifest and uninstall rules."""

from __future__ import annotations

import configparser
import importlib.metadata
import os
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "installer"))

import install  # noqa: E402
import locations  # noqa: E402
import manifest as install_manifest  # noqa: E402
import uninstall  # noqa: E402

MAC_HOME = PurePosixPath("/Users/ed")
WIN_HOME = PureWindowsPath(r"C:\Users\ed")
WIN_ENV = {
    "LOCALAPPDATA": r"C:\Users\ed\AppData\Local",
    "APPDATA": r"C:\Users\ed\AppData\Roaming",
    "CommonProgramFiles": r"C:\Program Files\Common Files",
}


def test_linux_folders_match_platformdirs_as_the_engine_reads_them(monkeypatch, tmp_path):
    from engine.places import places

    monkeypatch.delenv("CHRONOSCOPE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    for variable in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(variable, raising=False)
    ours = locations.user_folders("linux", {}, tmp_path)
    engine = places()
    assert (Path(ours.data_dir), Path(ours.config_dir), Path(ours.cache_dir), Path(ours.models_dir)) == (
        engine.data_dir,
        engine.config_dir,
        engine.cache_dir,
        engine.models_dir,
    )
    assert Path(ours.data_dir) == tmp_path / ".local" / "share" / "Chronoscope"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    assert (
        Path(
            locations.user_folders("linux", {"XDG_DATA_HOME": str(tmp_path / "xdg-data")}, tmp_path).data_dir
        )
        == places().data_dir
        == tmp_path / "xdg-data" / "Chronoscope"
    )


def test_chronoscope_home_overrides_every_folder_as_places_does(isolated_places):
    import os

    from engine.places import places

    ours = locations.user_folders("linux", dict(os.environ), Path("/nowhere"))
    assert Path(ours.data_dir) == places().data_dir == isolated_places / "data"
    assert Path(ours.config_dir) == places().config_dir
    assert Path(ours.models_dir) == places().models_dir


def test_macos_table():
    folders = locations.user_folders("macos", {}, MAC_HOME)
    assert folders.data_dir == MAC_HOME / "Library" / "Application Support" / "Chronoscope"
    assert folders.config_dir == folders.data_dir
    assert folders.cache_dir == MAC_HOME / "Library" / "Caches" / "Chronoscope"
    venv = locations.venv_layout(folders.data_dir, "macos")
    assert venv.chronoscope == folders.data_dir / "venv" / "bin" / "chronoscope"
    registrations = locations.registrations("macos", {}, MAC_HOME)
    assert registrations.autostart_kind == "launchd"
    assert (
        registrations.autostart_file == MAC_HOME / "Library" / "LaunchAgents" / "org.chronoscope.engine.plist"
    )
    assert registrations.launcher_file == MAC_HOME / "Applications" / "Chronoscope Preview.command"
    assert registrations.environment_file is None
    scripts = locations.resolve_script_folders("macos", {}, MAC_HOME)
    root = MAC_HOME / "Library" / "Application Support" / "Blackmagic Design" / "DaVinci Resolve" / "Fusion"
    assert scripts == {"Utility": root / "Scripts" / "Utility", "Edit": root / "Scripts" / "Edit"}


def test_windows_table():
    folders = locations.user_folders("windows", WIN_ENV, WIN_HOME)
    assert folders.data_dir == PureWindowsPath(r"C:\Users\ed\AppData\Local\Chronoscope")
    assert folders.cache_dir == PureWindowsPath(r"C:\Users\ed\AppData\Local\Chronoscope\Cache")
    venv = locations.venv_layout(folders.data_dir, "windows")
    assert venv.python == folders.data_dir / "venv" / "Scripts" / "python.exe"
    assert venv.chronoscope_gui.name == "chronoscope-gui.exe"
    registrations = locations.registrations("windows", WIN_ENV, WIN_HOME)
    programs = PureWindowsPath(r"C:\Users\ed\AppData\Roaming\Microsoft\Windows\Start Menu\Programs")
    assert registrations.autostart_file == programs / "Startup" / "Chronoscope Engine.cmd"
    assert registrations.launcher_file == programs / "Chronoscope Preview.cmd"
    scripts = locations.resolve_script_folders("windows", WIN_ENV, WIN_HOME)
    assert scripts["Utility"] == PureWindowsPath(
        r"C:\Users\ed\AppData\Roaming\Blackmagic Design\DaVinci Resolve\Support\Fusion\Scripts\Utility"
    )
    without_env = locations.user_folders("windows", {}, WIN_HOME)
    assert without_env.data_dir == WIN_HOME / "AppData" / "Local" / "Chronoscope"


def test_ofx_target_prefers_plugin_path_then_writable_standard_then_user_folder():
    standard = locations.ofx_target("windows", WIN_ENV, WIN_HOME, writable=lambda folder: True)
    assert standard.folder == PureWindowsPath(r"C:\Program Files\Common Files\OFX\Plugins")
    assert not standard.needs_plugin_path
    fallback = locations.ofx_target("macos", {}, MAC_HOME, writable=lambda folder: False)
    assert fallback.folder == MAC_HOME / "Library" / "Application Support" / "Chronoscope" / "OFX" / "Plugins"
    assert fallback.needs_plugin_path and "/Library/OFX/Plugins" in fallback.reason
    linux = locations.ofx_target(
        "linux",
        {"OFX_PLUGIN_PATH": "/studio/ofx:/other"},
        PurePosixPath("/home/ed"),
        writable=lambda folder: False,
    )
    assert linux.folder == PurePosixPath("/studio/ofx") and not linux.needs_plugin_path
    assert locations.ofx_target(
        "linux", {}, PurePosixPath("/home/ed"), writable=lambda folder: True
    ).folder == PurePosixPath("/usr/OFX/Plugins")


def test_unknown_platform_is_refused_with_the_known_ones():
    with pytest.raises(locations.UnknownPlatformError, match="linux, macos, windows"):
        locations.user_folders("beos", {}, PurePosixPath("/home/ed"))


def test_generated_registration_files_per_os(tmp_path):
    mac = locations.venv_layout(MAC_HOME / "Chronoscope", "macos")
    agent = plistlib.loads(install.launchd_plist(mac, {}).encode())
    assert agent["Label"] == "org.chronoscope.engine"
    assert agent["ProgramArguments"] == [str(mac.chronoscope), "engine", "run", "--ok-if-running"]
    assert agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["RunAtLoad"] is True and "EnvironmentVariables" not in agent
    win = locations.venv_layout(PureWindowsPath(r"C:\Users\ed\AppData\Local\Chronoscope"), "windows")
    startup = install.windows_startup_cmd(win, {"CHRONOSCOPE_HOME": r"D:\portable"})
    assert startup.endswith("\r\n") and "\n" not in startup.replace("\r\n", "")
    assert r'set "CHRONOSCOPE_HOME=D:\portable"' in startup
    assert f'"{win.chronoscope}" --quiet engine start' in startup
    odd = locations.venv_layout(PurePosixPath("/home/ed/My $Films"), "linux")
    entry = configparser.ConfigParser(interpolation=None)
    entry.read_string(install.desktop_entry(odd))
    portable = configparser.ConfigParser(interpolation=None)
    portable.read_string(install.desktop_entry(odd, {"CHRONOSCOPE_HOME": "/media/ed/cs"}))
    assert portable["Desktop Entry"]["Exec"].startswith('env "CHRONOSCOPE_HOME=/media/ed/cs" "/home/ed/My ')
    assert entry["Desktop Entry"]["Exec"] == '"/home/ed/My \\\\$Films/venv/bin/chronoscope-gui" %f'
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.read_string(install.systemd_unit(odd, {"CHRONOSCOPE_HOME": "/data/cs"}))
    assert unit["Service"]["ExecStart"] == '"/home/ed/My $Films/venv/bin/chronoscope" engine run'
    assert unit["Service"]["Environment"] == '"CHRONOSCOPE_HOME=/data/cs"'
    assert unit["Service"]["Restart"] == "on-failure"
    assert unit["Service"]["RestartPreventExitStatus"] == "2"
    assert unit["Install"]["WantedBy"] == "default.target"


def _systemd_command_line(value: str) -> list[str]:
    """The argv systemd makes of an ``ExecStart=`` value, by the rules systemd.service(5) gives
    under "Command lines" (the ones the installer's units use): words split at blanks, a word in
    double quotes taken whole with C-style escapes undone, then "%%" is "%" and "$$" is "$"."""
    words, index = [], 0
    while index < len(value):
        if value[index] == " ":
            index += 1
            continue
        word = []
        if value[index] == '"':
            index += 1
            while value[index] != '"':
                if value[index] == "\\":
                    index += 1
                word.append(value[index])
                index += 1
            index += 1
        else:
            while index < len(value) and value[index] != " ":
                word.append(value[index])
                index += 1
        words.append("".join(word))
    for word in words:
        assert "%" not in word.replace("%%", ""), f"{word!r} holds a specifier"
    for word in words[1:]:  # no variables are substituted in the program's own path
        assert "${" not in word.replace("$$", ""), f"{word!r} would be substituted"
    unescaped = [word.replace("%%", "%") for word in words]
    return unescaped[:1] + [word.replace("$$", "$") for word in unescaped[1:]]


ODD_FOLDERS = ["Zoë O'Brien – Média", 'say "cut"', "back\\slash", "100% slow", "My $Films", "${HOME}"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="systemd units run on Linux")
@pytest.mark.parametrize("folder", [*ODD_FOLDERS, "a=b's", "$O'Brien"])
def test_the_systemd_unit_runs_the_engine_from_any_folder_name(tmp_path, folder):
    """systemd refused the unit of a user named O'Brien: it takes no apostrophe, quote or backslash
    in the name of the program a command line runs (only in its arguments), and reads % and $."""
    layout = locations.venv_layout(PurePosixPath(tmp_path / folder), "linux")
    executable = Path(layout.chronoscope)
    executable.parent.mkdir(parents=True)
    executable.write_text('#!/bin/sh\necho "$0" "$@"\n')
    executable.chmod(0o755)
    unit_file = tmp_path / "chronoscope-engine.service"
    unit_file.write_text(install.systemd_unit(layout, {"CHRONOSCOPE_HOME": str(tmp_path / "100% home")}))
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.read_string(unit_file.read_text())
    argv = _systemd_command_line(unit["Service"]["ExecStart"])
    ran = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30)
    assert ran.stdout == f"{executable} engine run\n"
    environment = unit["Service"]["Environment"]  # no variables are substituted there either
    assert _systemd_command_line(environment)[0] == f"CHRONOSCOPE_HOME={tmp_path}/100% home"
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return
    verified = subprocess.run(
        [analyze, "verify", str(unit_file)],
        capture_output=True, text=True, check=False, env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
    )
    output = verified.stdout + verified.stderr
    assert verified.returncode == 0, output
    assert "special characters" not in output and "Specifier" not in output, output


def test_onnxruntime_is_swapped_by_gpu_and_extras_are_kept():
    metadata = "\n".join(
        "Requires-Dist: " + requirement
        for requirement in importlib.metadata.metadata("chronoscope").get_all("Requires-Dist")
    )
    cpu = install.runtime_requirements(metadata, gpu="cpu")
    assert not any(requirement.startswith("onnxruntime-gpu") for requirement in cpu)
    assert 'onnxruntime>=1.18; sys_platform != "darwin"' in cpu
    assert any(requirement.startswith("PyQt6") for requirement in cpu)
    assert any(requirement.startswith("otio-fcp-adapter") for requirement in cpu)
    assert not any(requirement.startswith(("torch", "pytest", "ruff")) for requirement in cpu)
    assert not any("extra" in requirement for requirement in cpu)
    cuda = install.runtime_requirements(metadata, gpu="cuda", extras=())
    assert 'onnxruntime-gpu[cuda,cudnn]>=1.18; sys_platform != "darwin"' in cuda
    assert not any(requirement.startswith("PyQt6") for requirement in cuda)
    assert install.extra_requirements(metadata, "train")[0].startswith("torch==")


def test_gpu_choice(tmp_path):
    assert install.choose_gpu("auto", "linux", True) == "cuda"
    assert install.choose_gpu("auto", "linux", False) == "cpu"
    assert install.choose_gpu("cpu", "windows", True) == "cpu"
    with pytest.raises(install.InstallError, match="no CUDA on macOS"):
        install.choose_gpu("cuda", "macos", False)
    (tmp_path / "driver" / "nvidia").mkdir(parents=True)
    (tmp_path / "driver" / "nvidia" / "version").write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module 570.1\n"
    )
    found, evidence = install.detect_nvidia("linux", proc_root=tmp_path)
    assert found and "570.1" in evidence
    assert install.detect_nvidia("macos", proc_root=tmp_path) == (False, "macOS has no CUDA")


def test_uninstall_removes_listed_items_only_and_keeps_edited_files(tmp_path):
    prefix = tmp_path / "prefix"
    made = prefix / "scripts"
    made.mkdir(parents=True)
    listed, edited = made / "a.py", made / "b.lua"
    listed.write_text("print('a')\n")
    edited.write_text("-- b\n")
    stranger = tmp_path / "stranger.txt"
    stranger.write_text("not ours\n")
    bundle = prefix / "Chronoscope.ofx.bundle" / "Contents"
    bundle.mkdir(parents=True)
    record = install_manifest.Manifest(platform="linux", prefix=str(prefix))
    record.add("dir", prefix, "environment")
    record.add("dir", made, "resolve")
    record.add("file", listed, "resolve", sha256=install_manifest.sha256_file(listed))
    record.add("file", edited, "resolve", sha256=install_manifest.sha256_file(edited))
    record.add("tree", bundle.parent, "ofx")
    path = prefix / locations.MANIFEST_NAME
    install_manifest.write_manifest(record, path)
    edited.write_text("-- b, edited by the editor\n")

    problems = uninstall.uninstall(install_manifest.read_manifest(path), path)
    assert len(problems) == 1 and "changed after it was installed" in problems[0]
    assert not listed.exists() and not bundle.exists() and edited.exists() and path.exists()
    assert stranger.read_text() == "not ours\n"
    assert uninstall.uninstall(install_manifest.read_manifest(path), path, force=True) == []
    assert not prefix.exists() and stranger.exists()


def test_manifest_of_unknown_format_is_refused(tmp_path):
    path = tmp_path / "install-manifest.json"
    path.write_text('{"format": 99, "items": []}')
    with pytest.raises(install_manifest.ManifestError, match="format 99"):
        install_manifest.read_manifest(path)


def _uninstall_script(*arguments) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, REPO_ROOT / "installer" / "uninstall.py", *map(str, arguments)],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_a_dry_run_says_what_the_uninstall_does_with_each_folder(tmp_path):
    """--dry-run said "kept ~/.local/bin: it holds files the installer did not put there" of folders
    that hold only files the real run removes (and then removes the folders)."""
    prefix = tmp_path / "prefix"
    bin_folder = tmp_path / "home" / ".local" / "bin"
    scripts = tmp_path / "home" / "Utility"
    theirs = tmp_path / "home" / "shared"
    for folder in (prefix, bin_folder, scripts, theirs):
        folder.mkdir(parents=True)
    record = install_manifest.Manifest(platform="linux", prefix=str(prefix))
    for folder in (tmp_path / "home" / ".local", bin_folder, scripts, theirs):
        record.add("dir", folder, "commands")
    launcher, edited, ours = bin_folder / "chronoscope", scripts / "Detect.py", theirs / "ours.txt"
    for path in (launcher, edited, ours):
        path.write_text("installed\n")
        record.add("file", path, "commands", sha256=install_manifest.sha256_file(path))
    edited.write_text("edited by the user\n")
    (theirs / "user.txt").write_text("the user's\n")
    manifest_file = prefix / locations.MANIFEST_NAME
    install_manifest.write_manifest(record, manifest_file)

    planned = _uninstall_script("--prefix", prefix, "--dry-run")
    assert planned.returncode == 0, planned.stderr
    said = planned.stderr
    assert f"would remove folder {bin_folder}" in said and f"would remove folder {bin_folder.parent}" in said
    assert f"kept {bin_folder}" not in said and f"would keep {bin_folder}" not in said
    assert f"would keep {edited}: it was changed after it was installed" in said
    assert f"would keep {scripts}: it still holds {edited}, which would be kept" in said
    assert f"would keep {theirs}: it holds files the installer did not put there" in said
    assert f"would keep {manifest_file}" in said
    assert launcher.exists() and edited.exists() and manifest_file.exists()

    done = _uninstall_script("--prefix", prefix, "--verbose")
    assert done.returncode == 3  # the edited script is kept, as the dry run said
    assert not bin_folder.parent.exists() and scripts.is_dir() and (theirs / "user.txt").exists()
    assert not ours.exists() and edited.exists() and manifest_file.exists()
