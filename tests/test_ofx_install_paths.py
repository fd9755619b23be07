"""Where the OFX bundle is built and where the installer puts it, per platform."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "ofx_install_paths", REPO_ROOT / "plugins" / "ofx_bridge" / "install_paths.py"
)
install_paths = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = install_paths
_spec.loader.exec_module(install_paths)


def test_standard_folders_per_platform():
    assert install_paths.plugin_folders("linux", {}) == [PurePosixPath("/usr/OFX/Plugins")]
    assert install_paths.plugin_folders("macos", {}) == [PurePosixPath("/Library/OFX/Plugins")]
    assert install_paths.plugin_folders("windows", {}) == [
        PureWindowsPath(r"C:\Program Files\Common Files\OFX\Plugins")
    ]
    assert install_paths.standard_folder("windows", {"CommonProgramFiles": r"D:\Common"}) == PureWindowsPath(
        r"D:\Common\OFX\Plugins"
    )


def test_ofx_plugin_path_entries_come_first_without_duplicates():
    environ = {"OFX_PLUGIN_PATH": "/opt/ofx::/usr/OFX/Plugins:/home/me/ofx"}
    assert install_paths.plugin_folders("linux", environ) == [
        PurePosixPath("/opt/ofx"),
        PurePosixPath("/usr/OFX/Plugins"),
        PurePosixPath("/home/me/ofx"),
    ]
    assert install_paths.install_target("linux", environ) == PurePosixPath("/opt/ofx/Chronoscope.ofx.bundle")
    windows = {"OFX_PLUGIN_PATH": r"E:\ofx;F:\more"}
    assert install_paths.plugin_folders("windows", windows)[:2] == [
        PureWindowsPath(r"E:\ofx"),
        PureWindowsPath(r"F:\more"),
    ]


def test_bundle_layout_and_built_bundle():
    assert install_paths.built_bundle() == REPO_ROOT / "build" / "ofx" / "Chronoscope.ofx.bundle"
    bundle = PurePosixPath("Chronoscope.ofx.bundle")
    assert (
        str(install_paths.bundle_binary(bundle, "linux"))
        == "Chronoscope.ofx.bundle/Contents/Linux-x86-64/Chronoscope.ofx"
    )
    assert str(install_paths.bundle_binary(bundle, "windows")).endswith("Contents/Win64/Chronoscope.ofx")
    assert str(install_paths.bundle_binary(bundle, "macos")).endswith("Contents/MacOS/Chronoscope.ofx")
    with pytest.raises(ValueError, match="known; use one of: linux, windows, macos"):
        install_paths.plugin_folders("beos", {})


def test_command_prints_json(capsys, monkeypatch):
    monkeypatch.delenv("OFX_PLUGIN_PATH", raising=False)
    monkeypatch.delenv("CommonProgramFiles", raising=False)
    assert install_paths.main(["--json", "--platform", "windows"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["binary"] == "Chronoscope.ofx.bundle/Contents/Win64/Chronoscope.ofx"
    assert record["install_target"] == r"C:\Program Files\Common Files\OFX\Plugins\Chronoscope.ofx.bundle"
