"""``resolve-bridge.json`` read alike by the Python and the Lua scripts: written as UTF-8 by
``chronoscope bridge --install-config``, and read by Lua's small JSON reader as Python's json module
reads it (``\\uXXXX`` escapes of configs written before, surrogate pairs, numbers such as ``1e3``),
refusing what the Python script refuses with the same message."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugins" / "davinci_resolve"
sys.path.insert(0, str(PLUGIN_DIR))

import chronoscope_resolve  # noqa: E402
import install_paths  # noqa: E402

from engine.bridge.config import install_config  # noqa: E402

LUA = next(
    (shutil.which(name) for name in ("lua5.4", "lua5.3", "lua5.1", "luajit", "lua") if shutil.which(name)),
    None,
)
SHARED = PLUGIN_DIR / "chronoscope_resolve.lua"
needs_lua = pytest.mark.skipif(
    LUA is None, reason="no Lua interpreter installed (Debian: apt-get install lua5.4)"
)

READ_BACK = """
local M = dofile({module})
local ok, settings = pcall(M.load_settings)
if not ok then
  io.write("ERROR\\t", settings.user or tostring(settings), "\\n")
  return
end
local timed, timeout = pcall(M.job_timeout, settings)
io.write("COMMAND\\t", settings.command[1], "\\n")
io.write("RENDER_DIR\\t", tostring(settings.render_dir), "\\n")
if timed then
  io.write("TIMEOUT\\t", string.format("%.17g", timeout), "\\n")
else
  io.write("ERROR\\t", timeout.user, "\\n")
end
"""


@pytest.fixture
def accented(tmp_path) -> Path:
    """An interpreter path with accents and an emoji outside the Basic Multilingual Plane."""
    command = tmp_path / "Jósé venv 🎬" / "bin" / "python"
    command.parent.mkdir(parents=True)
    command.write_text("")
    return command


def read_in_lua(config: Path) -> dict[str, str]:
    program = config.parent / "read_back.lua"
    program.write_text(READ_BACK.format(module=install_paths.lua_string(str(SHARED))), encoding="utf-8")
    env = {**os.environ, "CHRONOSCOPE_BRIDGE_CONFIG": str(config)}
    done = subprocess.run([LUA, str(program)], capture_output=True, timeout=60, env=env, check=False)
    assert done.returncode == 0, done.stderr
    lines = [line.split("\t", 1) for line in done.stdout.decode("utf-8").splitlines()]
    return {key: value for key, value in lines}


def read_in_python(config: Path) -> dict[str, str]:
    env = {**os.environ, "CHRONOSCOPE_BRIDGE_CONFIG": str(config)}
    try:
        settings = chronoscope_resolve.load_settings(env)
    except chronoscope_resolve.ScriptError as error:
        return {"ERROR": str(error)}
    found = {"COMMAND": settings["command"][0], "RENDER_DIR": str(settings.get("render_dir"))}
    try:
        found["TIMEOUT"] = repr(chronoscope_resolve.job_timeout(settings))
    except chronoscope_resolve.ScriptError as error:
        found["ERROR"] = str(error)
    return found


def test_install_config_writes_utf8_not_escapes(tmp_path, monkeypatch, accented):
    monkeypatch.setattr(sys, "executable", str(accented))
    path = install_config(tmp_path / "resolve-bridge.json")
    text = path.read_bytes().decode("utf-8")
    assert "Jósé venv 🎬" in text and "\\u" not in text
    assert json.loads(text)["command"][0] == str(accented)


@needs_lua
def test_lua_reads_accented_paths_written_either_way(tmp_path, accented):
    """A config written as UTF-8 (now) and one written with ASCII escapes (before): the Lua script
    reads the same path as the Python script, accents and emoji (a surrogate pair) included."""
    render_dir = str(tmp_path / "Rendus été")
    settings = {"version": 1, "command": [str(accented), "-m", "engine.cli"], "render_dir": render_dir}
    for ensure_ascii in (True, False):
        config = tmp_path / f"ascii-{ensure_ascii}.json"
        config.write_text(json.dumps(settings, ensure_ascii=ensure_ascii), encoding="utf-8")
        assert ("\\u00e9" in config.read_text()) is ensure_ascii
        lua, python = read_in_lua(config), read_in_python(config)
        assert lua["COMMAND"] == python["COMMAND"] == str(accented)
        assert lua["RENDER_DIR"] == python["RENDER_DIR"] == render_dir


@needs_lua
@pytest.mark.parametrize(
    "written",
    ["600", "42.5", "1e3", "2.5E-1", "-5", "0", "-0.5", '"600"', "true", "null", "NaN", "Infinity", "1e999"],
)
def test_lua_reads_timeout_s_as_json_does_and_refuses_what_python_refuses(tmp_path, written):
    config = tmp_path / "resolve-bridge.json"
    config.write_text(
        f'{{"command": [{json.dumps(sys.executable)}], "timeout_s": {written}}}', encoding="utf-8"
    )
    lua, python = read_in_lua(config), read_in_python(config)
    if "ERROR" in python:
        assert lua.get("ERROR") == python["ERROR"], (lua, python)
        assert "must be a number of seconds above 0 (e.g. 600), not " in python["ERROR"]
    else:
        assert "ERROR" not in lua and float(lua["TIMEOUT"]) == float(python["TIMEOUT"]), (lua, python)


@needs_lua
def test_lua_refuses_a_config_that_is_not_json_naming_it(tmp_path):
    config = tmp_path / "resolve-bridge.json"
    config.write_text(f'{{"command": [{json.dumps(sys.executable)}], "timeout_s": 06}}', encoding="utf-8")
    assert read_in_python(config)["ERROR"].startswith(f"{config} cannot be read (")
    message = read_in_lua(config)["ERROR"]
    assert message.startswith(f"{config} cannot be read (") and message.endswith(
        "re-run the Chronoscope installer"
    )
