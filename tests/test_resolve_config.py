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
io.write("COMMAND\\t", settings.command[1], "\\n")
io.write("RENDER_DIR\\t", tostring(settings.render_dir), "\\n")
"""
CALL = """
local M = dofile({module})
local ok, problem = pcall(function() M.call_bridge(M.load_settings(), {{op = "ping"}}) end)
io.write(ok and "" or (problem.user or tostring(problem)))
"""
STAND_IN = """
import json, os, sys
with open(os.environ["STAND_IN_REQUEST"], "w") as handle:
    handle.write(sys.stdin.read())
lua = "--reply" in sys.argv
print('return {ok = true, op = "ping"}' if lua else json.dumps({"ok": True, "op": "ping"}))
"""


def lua_program(tmp_path: Path, template: str, config: Path, **env: str) -> str:
    program = tmp_path / "program.lua"
    program.write_text(template.format(module=install_paths.lua_string(str(SHARED))), encoding="utf-8")
    environment = {**os.environ, "CHRONOSCOPE_BRIDGE_CONFIG": str(config), **env}
    done = subprocess.run([LUA, str(program)], capture_output=True, timeout=60, env=environment, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode("utf-8")


@pytest.fixture
def accented(tmp_path) -> Path:
    """An interpreter path with accents and an emoji outside the Basic Multilingual Plane."""
    command = tmp_path / "Jósé venv 🎬" / "bin" / "python"
    command.parent.mkdir(parents=True)
    command.write_text("")
    return command


def read_in_lua(config: Path) -> dict[str, str]:
    out = lua_program(config.parent, READ_BACK, config)
    return dict(line.split("\t", 1) for line in out.splitlines())


def read_in_python(config: Path) -> dict[str, str]:
    env = {**os.environ, "CHRONOSCOPE_BRIDGE_CONFIG": str(config)}
    try:
        settings = chronoscope_resolve.load_settings(env)
    except chronoscope_resolve.ScriptError as error:
        return {"ERROR": str(error)}
    return {"COMMAND": settings["command"][0], "RENDER_DIR": str(settings.get("render_dir"))}


def timeout_sent(config: Path, request: Path) -> tuple[str, str]:
    """What the Lua and the Python script make of the config's timeout_s when they call the bridge
    (here a stand-in that keeps the request in ``request``): the timeout_s sent, or the error shown."""
    said = lua_program(config.parent, CALL, config)
    # a request without timeout_s gets the bridge's default, 600 s
    lua = said or repr(float(json.loads(request.read_text()).get("timeout_s", 600)))
    request.unlink(missing_ok=True)
    env = {**os.environ, "CHRONOSCOPE_BRIDGE_CONFIG": str(config)}
    try:
        chronoscope_resolve.call_bridge(chronoscope_resolve.load_settings(env), {"op": "ping"})
    except chronoscope_resolve.ScriptError as error:
        return lua, str(error)
    return lua, repr(float(json.loads(request.read_text())["timeout_s"]))


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
    ("written", "meant"),
    [
        ("600", 600.0),
        ("42.5", 42.5),
        ("1e3", 1000.0),  # read as 1 before
        ("2.5E-1", 0.25),
        ("-5", "-5"),  # ignored before: the bridge's 600 s was used
        ("0", "0"),
        ("-0.5", "-0.5"),
        ('"600"', "'600'"),
        ("true", "True"),
        ("null", 600.0),
        ("NaN", "nan"),
        ("Infinity", "inf"),
        ("1e999", "inf"),
        ("2592000", 2592000.0),  # 30 days
        ("2592001", "2592001"),
        ("1e308", "1e+308"),  # overflowed the bridge's wait: a traceback
    ],
)
def test_lua_reads_timeout_s_as_json_does_and_refuses_what_python_refuses(
    tmp_path, monkeypatch, written, meant
):
    monkeypatch.setenv("STAND_IN_REQUEST", str(tmp_path / "request.json"))
    stand_in = tmp_path / "stand_in.py"
    stand_in.write_text(STAND_IN)
    config = tmp_path / "resolve-bridge.json"
    command = json.dumps([sys.executable, str(stand_in)])
    config.write_text(f'{{"command": {command}, "timeout_s": {written}}}', encoding="utf-8")
    lua, python = timeout_sent(config, tmp_path / "request.json")
    if isinstance(meant, float):
        assert lua == python == repr(meant)
    else:
        assert (
            lua
            == python
            == (
                f"timeout_s in {config} must be a number of seconds above 0 and at most 2592000 (30 "
                f"days; e.g. 600), not {meant}"
            )
        )


@needs_lua
def test_lua_refuses_a_config_that_is_not_json_naming_it(tmp_path):
    config = tmp_path / "resolve-bridge.json"
    config.write_text(f'{{"command": [{json.dumps(sys.executable)}], "timeout_s": 06}}', encoding="utf-8")
    assert read_in_python(config)["ERROR"].startswith(f"{config} cannot be read (")
    message = read_in_lua(config)["ERROR"]
    assert message.startswith(f"{config} cannot be read (") and message.endswith(
        "re-run the Chronoscope installer"
    )
