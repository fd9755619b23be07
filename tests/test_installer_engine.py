"""The installed engine and the engines around it: uninstall stops only an engine that runs from the
environment it removes, the autostart entries do not restart an engine that exits because another
one serves already, and ``engine start`` says when its options were not applied to the engine that
was already running.

Engines run for real, in the test's own runtime folder (``CHRONOSCOPE_HOME``, see conftest)."""

from __future__ import annotations

import configparser
import json
import logging
import os
import plistlib
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "installer"))

import install  # noqa: E402
import locations  # noqa: E402
import manifest as install_manifest  # noqa: E402
import uninstall  # noqa: E402

pytestmark = pytest.mark.skipif(os.name == "nt", reason="ipc:// engines and POSIX process checks")

UNINSTALL = REPO_ROOT / "installer" / "uninstall.py"


def _engine(python: Path | str, *arguments: str, timeout_s: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-m", "engine.cli", "--quiet", "engine", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def _running_pid() -> int:
    from engine.server.connection import connection_file_path

    return json.loads(connection_file_path().read_text())["pid"]


def _alive(pid: int) -> bool:
    from engine.processes import pid_alive

    return pid_alive(pid)


@pytest.fixture
def engines_stopped_at_end() -> Iterator[None]:
    yield
    _engine(sys.executable, "stop", "--force")


def _environment_of_this_checkout(prefix: Path) -> Path:
    """A real virtual environment in ``prefix/venv`` whose python imports this checkout's engine and
    this environment's packages (as ``install.py --reuse-packages`` makes one, without the copy)."""
    venv = prefix / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "_chronoscope_test.pth").write_text(f"{REPO_ROOT}\n{sysconfig.get_paths()['purelib']}\n")
    return venv


def test_runs_from_tells_the_environment_by_interpreter_or_script():
    venv = Path("/home/ed/.local/share/Chronoscope/venv")
    assert uninstall.runs_from([f"{venv}/bin/python", "-m", "engine.server", "--no-log-file"], venv)
    assert uninstall.runs_from([f"{venv}/bin/python", f"{venv}/bin/chronoscope", "engine", "run"], venv)
    assert uninstall.runs_from([f"{venv}/bin/python -m engine.server --no-log-file"], venv)  # ps: one string
    assert not uninstall.runs_from(["/work/dev/.venv/bin/python", "-m", "engine.server"], venv)
    assert not uninstall.runs_from([f"{venv}-old/bin/python", "-m", "engine.server"], venv)


def test_uninstall_stops_only_the_engine_running_from_the_removed_environment(
    tmp_path, caplog, engines_stopped_at_end
):
    venv = _environment_of_this_checkout(tmp_path / "prefix")

    # a developer's engine, from another environment (this test's)
    started = _engine(sys.executable, "start")
    assert started.returncode == 0, started.stderr
    developers = _running_pid()
    with caplog.at_level(logging.INFO, logger="chronoscope-uninstall"):
        assert uninstall._stop_engine(venv, dry_run=False) == ""
    assert _alive(developers), "uninstall stopped an engine that does not run from the environment"
    assert f"left the engine pid {developers} running: it does not run from {venv}" in caplog.text
    assert _engine(sys.executable, "stop").returncode == 0

    # the install's own engine, started by hand from its environment
    started = _engine(venv / "bin" / "python", "start")
    assert started.returncode == 0, started.stderr
    installed = _running_pid()
    record = install_manifest.Manifest(platform="linux", prefix=str(tmp_path / "prefix"))
    record.add("dir", tmp_path / "prefix", "environment")
    record.add("venv", venv, "environment")
    install_manifest.write_manifest(record, tmp_path / "prefix" / locations.MANIFEST_NAME)
    removed = subprocess.run(
        [sys.executable, UNINSTALL, "--prefix", tmp_path / "prefix", "--verbose"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert removed.returncode == 0, removed.stderr
    assert f"stopped the engine pid {installed}, which ran from {venv}" in removed.stderr
    assert not _alive(installed) and not (tmp_path / "prefix").exists()


def test_autostart_does_not_restart_an_engine_that_exits_because_one_runs(engines_stopped_at_end):
    layout = locations.venv_layout(PurePosixPath("/home/ed/.local/share/Chronoscope"), "linux")
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.read_string(install.systemd_unit(layout, {}))
    not_restarted_on = int(unit["Service"]["RestartPreventExitStatus"])
    agent = plistlib.loads(install.launchd_plist(layout, {}).encode())
    assert agent["KeepAlive"] == {"SuccessfulExit": False}  # launchd restarts on any status but 0
    assert agent["ProgramArguments"][1:] == ["engine", "run", "--ok-if-running"]

    started = _engine(sys.executable, "start")
    assert started.returncode == 0, started.stderr
    second = _engine(sys.executable, "run", "--no-log-file")
    assert second.returncode == not_restarted_on, second.stderr
    assert "already running" in second.stderr
    as_agent = _engine(sys.executable, "run", "--no-log-file", "--ok-if-running")
    assert as_agent.returncode == 0, as_agent.stderr
    assert _alive(_running_pid())


def test_start_says_which_options_the_running_engine_was_not_started_with(engines_stopped_at_end):
    started = _engine(sys.executable, "start")
    assert started.returncode == 0, started.stderr
    pid = _running_pid()

    again = _engine(sys.executable, "start")
    assert again.returncode == 0 and f"already running: pid {pid}" in again.stdout
    same = _engine(sys.executable, "start", "--workers", "2", "--transport", "ipc")
    assert same.returncode == 0, same.stderr

    other = _engine(sys.executable, "start", "--workers", "5", "--capability-module", "mystudio.jobs")
    assert other.returncode == 2
    assert f"already running: pid {pid}" in other.stdout
    assert other.stderr.strip() == (
        f"chronoscope engine start: error: the engine pid {pid} was already running, so --workers 5 "
        "(it has 2), --capability-module mystudio.jobs were not applied to it; stop it first "
        "(`chronoscope engine stop`) to start one with them"
    )
    as_json = _engine(sys.executable, "start", "--json", "--transport", "tcp")
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["not_applied"] == ["--transport tcp (it uses ipc)"]
