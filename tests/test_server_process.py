"""A real background engine process over ipc://, started, inspected and stopped through
``chronoscope engine`` and the client library; stale connection files; one engine per user."""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
import threading

import pytest

from engine.commands import engine_cmd
from engine.errors import EngineTimeoutError
from engine.processes import pid_alive
from engine.server.client import EngineClient, ensure_engine_running
from engine.server.connection import ConnectionInfo, connection_file_path, write_connection_file
from engine.server.process import find_running_engine, start_engine, stop_engine

pytestmark = pytest.mark.skipif(os.name == "nt", reason="ipc:// and the POSIX process checks")


def chronoscope_engine(*argv: str) -> int:
    """``chronoscope engine ...`` through the command module (without every other subcommand)."""
    parser = argparse.ArgumentParser(prog="chronoscope engine")
    engine_cmd.configure(parser)
    return engine_cmd.run(parser.parse_args(list(argv)))


@pytest.fixture
def stopped_at_end():
    """Make sure no engine process outlives the test, whatever it asserted."""
    yield
    stop_engine(timeout_s=5, force=True)


def _json_output(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_start_status_stop_through_the_cli(capsys, stopped_at_end, isolated_places):
    assert chronoscope_engine("start", "--json") == 0
    started = _json_output(capsys)
    assert started["started"] is True and started["transport"] == "ipc"
    assert "key" not in started
    path = connection_file_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert started["pid"] != os.getpid() and pid_alive(started["pid"])

    assert chronoscope_engine("start", "--json") == 0
    again = _json_output(capsys)
    assert again["started"] is False and again["pid"] == started["pid"]

    assert chronoscope_engine("status", "--json") == 0
    status = _json_output(capsys)
    assert status["running"] is True and status["pid"] == started["pid"]
    assert status["endpoints"]["request"].startswith(f"ipc://{isolated_places}")
    assert "CPUExecutionProvider" in status["execution_providers"]
    assert status["capabilities"]["missing"] == []
    served = set(status["capabilities"]["available"])
    assert {"detect_speed", "render_timeline", "retime", "synthesize"} <= served

    assert status["exchange_dir"] == str(connection_file_path().parent / "frames")
    assert status["journal_dir"] == str(isolated_places / "cache" / "jobs")
    assert chronoscope_engine("status") == 0
    text = capsys.readouterr().out
    assert f"pid {started['pid']}" in text and "(frame exchange)" in text

    with EngineClient.connect() as client:
        assert client.ping()["pid"] == started["pid"]

    assert chronoscope_engine("stop") == 0
    assert capsys.readouterr().out.strip() == "engine stopped"
    assert not path.exists()
    assert not pid_alive(started["pid"])
    assert chronoscope_engine("status") == engine_cmd.EXIT_NOT_RUNNING
    assert capsys.readouterr().out.strip() == "no engine is running"
    assert "engine stopped" in (isolated_places / "log" / "engine.log").read_text()


def test_second_foreground_engine_is_refused_and_client_starts_one_on_demand(stopped_at_end):
    client = ensure_engine_running(timeout_s=30)
    try:
        first_pid = client.ping()["pid"]
    finally:
        client.close()
    second = subprocess.run(
        [sys.executable, "-m", "engine.server", "--no-log-file"], capture_output=True, text=True, timeout=60
    )
    assert second.returncode == 2
    assert f"an engine is already running: pid {first_pid}" in second.stderr
    assert find_running_engine().pid == first_pid
    assert stop_engine() == "stopped"


def test_stale_connection_file_with_a_dead_pid_is_replaced(capsys, stopped_at_end):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    runtime = connection_file_path().parent
    stale = ConnectionInfo(
        transport="ipc",
        request=f"ipc://{runtime}/gone-req",
        control=f"ipc://{runtime}/gone-ctl",
        events=f"ipc://{runtime}/gone-evt",
        key="22" * 32,
        pid=dead_pid,
    )
    write_connection_file(stale)
    assert find_running_engine() is None
    assert chronoscope_engine("status") == engine_cmd.EXIT_NOT_RUNNING
    capsys.readouterr()

    assert chronoscope_engine("start", "--json") == 0
    fresh = _json_output(capsys)
    assert fresh["started"] is True and fresh["pid"] != dead_pid
    assert chronoscope_engine("stop") == 0


def _silent_connection(pid: int) -> None:
    runtime = connection_file_path().parent
    write_connection_file(
        ConnectionInfo(
            transport="ipc",
            request=f"ipc://{runtime}/silent-req",
            control=f"ipc://{runtime}/silent-ctl",
            events=f"ipc://{runtime}/silent-evt",
            key="33" * 32,
            pid=pid,
        )
    )


def test_unrelated_process_behind_a_connection_file_is_stale_and_never_killed(capsys):
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _silent_connection(unrelated.pid)
        assert find_running_engine(timeout_s=0.3) is None
        assert chronoscope_engine("stop", "--force", "--timeout-s", "0.5") == 0
        assert "stale connection file" in capsys.readouterr().out
        assert unrelated.poll() is None
        assert not connection_file_path().exists()
    finally:
        unrelated.kill()
        unrelated.wait()


HUNG_ENGINE = """
import fcntl, os, sys, time
handle = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(handle, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


def test_hung_engine_holding_the_lock_is_refused_then_terminated_with_force(capsys):
    lock = connection_file_path().parent / "engine.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    hung = subprocess.Popen([sys.executable, "-c", HUNG_ENGINE, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert hung.stdout.readline().strip() == "locked"
        _silent_connection(hung.pid)
        with pytest.raises(EngineTimeoutError, match="does not answer ping"):
            start_engine(timeout_s=5)
        # status does not call a live, hung engine "not running"
        assert chronoscope_engine("status", "--timeout-s", "0.3") == engine_cmd.EXIT_NOT_ANSWERING
        assert f"an engine (pid {hung.pid}) holds" in capsys.readouterr().out
        with pytest.raises(EngineTimeoutError, match="--force"):
            stop_engine(timeout_s=0.3)
        assert hung.poll() is None
        assert chronoscope_engine("stop", "--force", "--timeout-s", "0.5") == 0
        assert capsys.readouterr().out.strip() == "engine did not answer and was terminated"
        assert hung.wait(timeout=5) is not None
        assert not connection_file_path().exists()
    finally:
        hung.kill()
        hung.wait()


def test_two_starts_at_once_both_get_the_one_engine(stopped_at_end):
    """The Resolve script and the OFX host may start the engine at the same moment."""
    answers: list[tuple[ConnectionInfo, bool] | BaseException] = []

    def start() -> None:
        try:
            answers.append(start_engine(timeout_s=60))
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            answers.append(error)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert all(isinstance(answer, tuple) for answer in answers), answers
    assert len({connection.pid for connection, _ in answers}) == 1
    assert sorted(started for _, started in answers) == [False, True]


def test_stop_without_an_engine_says_so(capsys):
    assert chronoscope_engine("stop") == 0
    assert capsys.readouterr().out.strip() == "no engine is running"


def test_the_chronoscope_command_routes_to_engine(monkeypatch, capsys):
    from engine import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ["engine.commands.engine_cmd"])
    assert cli.main(["engine", "status", "--json"]) == engine_cmd.EXIT_NOT_RUNNING
    assert json.loads(capsys.readouterr().out)["running"] is False
    with pytest.raises(SystemExit):
        cli.main(["engine", "start", "--workers", "0"])
    assert "0 is below 1" in capsys.readouterr().err


def test_finding_the_runtime_folder_leaves_no_warning_filter_behind():
    """Without XDG_RUNTIME_DIR, looking up the folders used to leave a copy of the warning filters
    with "always" at its head, so Python printed a ResourceWarning at exit for the engine that
    `chronoscope engine start` or `render` leaves running (here: a child process left running)."""
    unset = ("CHRONOSCOPE_HOME", "XDG_RUNTIME_DIR")
    env = {key: value for key, value in os.environ.items() if key not in unset}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    script = (
        "import json, subprocess, sys\n"
        "from engine.places import places\n"
        "places()\n"
        "# held by a module, as engine.server.process holds the engine it started\n"
        "json.kept = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3)'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr


def _engine_pid_from(started_json: str) -> int:
    return json.loads(started_json)["pid"]


def test_an_engine_whose_connection_file_is_damaged_or_gone_is_found_by_its_lock_and_stopped(
    capsys, stopped_at_end
):
    """It used to be called stale: `stop` removed the file and said none ran, `status` sent the user
    to `stop --force`, which said none ran, and `start` refused; only kill helped."""
    from engine import doctor
    from engine.server.process import engine_lock_holder

    path = connection_file_path()
    for damage in ("damaged", "gone"):
        assert chronoscope_engine("start", "--json") == 0
        pid = _engine_pid_from(capsys.readouterr().out)
        lock = path.parent / "engine.lock"
        assert lock.read_text().strip() == str(pid)
        assert engine_lock_holder(path.parent) == pid
        if damage == "damaged":
            path.write_text("{broken")
        else:
            path.unlink()

        assert chronoscope_engine("status", "--timeout-s", "1") == engine_cmd.EXIT_NOT_ANSWERING
        said = capsys.readouterr().out
        assert f"an engine (pid {pid}) holds" in said and f"is {damage}" in said, said
        assert "`chronoscope engine stop` ends it" in said
        checked = doctor.check_engine()
        assert checked.status == "fail" and f"engine pid {pid} holds" in checked.summary, checked
        assert "engine stop" in checked.fix and "--force" not in checked.fix
        with pytest.raises(EngineTimeoutError, match=f"pid {pid}"):
            start_engine(timeout_s=5)
        assert pid_alive(pid)

        assert chronoscope_engine("stop", *(["--force"] if damage == "gone" else [])) == 0
        assert capsys.readouterr().out.strip() == (
            "engine stopped (SIGTERM): it could not be reached through its connection file"
        )
        assert not pid_alive(pid) and not path.exists()
        assert lock.read_text() == ""  # the engine let go of its lock as it stopped
        assert chronoscope_engine("status") == engine_cmd.EXIT_NOT_RUNNING
        capsys.readouterr()


def test_stop_signals_the_lock_holder_never_a_pid_only_written_down(capsys):
    """A lock file can name a pid that some other program has taken since (the engine that wrote it
    crashed, and the lock is held by a new one that has not written its own yet): /proc/locks
    says who holds the lock, and only that process is signalled."""
    if not sys.platform.startswith("linux"):
        pytest.skip("/proc/locks")
    lock = connection_file_path().parent / "engine.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    hung = subprocess.Popen([sys.executable, "-c", HUNG_ENGINE, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert hung.stdout.readline().strip() == "locked"
        lock.write_text(f"{unrelated.pid}\n")
        _silent_connection(unrelated.pid)
        assert chronoscope_engine("stop", "--force", "--timeout-s", "2") == 0
        capsys.readouterr()
        assert hung.wait(timeout=10) is not None
        assert unrelated.poll() is None, "stop signalled a process that holds no engine lock"
        assert not connection_file_path().exists()
    finally:
        for child in (hung, unrelated):
            child.kill()
            child.wait()


def test_a_missing_xdg_runtime_dir_is_made_private_and_every_command_finds_the_engine(tmp_path):
    """`env -i HOME=H XDG_RUNTIME_DIR=H/xdgrun chronoscope engine start` made H/xdgrun with mode 0755,
    which platformdirs then refused: the engine put its sockets in /tmp/runtime-UID, and `status`,
    `start` and `stop` looked there for a connection file that was in H/xdgrun, and found none."""
    import signal

    from engine.processes import process_command_line

    home = tmp_path / "h"
    (home / "tmp").mkdir(parents=True)
    xdg_runtime = home / "xdgrun"
    env = {
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(xdg_runtime),
        "TMPDIR": str(home / "tmp"),  # platformdirs' fallback, were it taken
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }

    def engine(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "engine.cli", "engine", *argv],
            capture_output=True, text=True, timeout=90, env=env, check=False,
        )

    started = engine("start", "--json")
    assert started.returncode == 0, started.stderr
    pid = _engine_pid_from(started.stdout)
    try:
        assert stat.S_IMODE(xdg_runtime.stat().st_mode) == 0o700
        folder = xdg_runtime / "Chronoscope"
        assert (folder / "engine.json").is_file()
        connection = json.loads(started.stdout)
        # sockets beside the connection file, unless that path is too long for a Unix socket
        assert connection["request"].startswith(f"ipc://{folder}/") or connection["ipc_dir"], connection
        status = engine("status", "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        assert json.loads(status.stdout)["pid"] == pid
        assert json.loads(status.stdout)["exchange_dir"] == str(folder / "frames")
        assert "XDG_RUNTIME_DIR" not in status.stderr
        stopped = engine("stop")
        assert stopped.returncode == 0 and stopped.stdout.strip() == "engine stopped", stopped.stderr
        assert not pid_alive(pid)
    finally:
        if pid_alive(pid) and "engine.server" in (process_command_line(pid) or []):
            os.kill(pid, signal.SIGKILL)


def test_a_rejected_xdg_runtime_dir_is_named_in_a_warning(tmp_path):
    """An XDG_RUNTIME_DIR open to others is refused by platformdirs; every process falls back alike,
    but not silently."""
    home = tmp_path / "h"
    (home / "tmp").mkdir(parents=True)
    xdg_runtime = home / "xdgrun"
    xdg_runtime.mkdir(mode=0o755)
    xdg_runtime.chmod(0o755)
    env = {
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(xdg_runtime),
        "TMPDIR": str(home / "tmp"),
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    status = subprocess.run(
        [sys.executable, "-m", "engine.cli", "engine", "status"],
        capture_output=True, text=True, timeout=90, env=env, check=False,
    )
    assert status.returncode == engine_cmd.EXIT_NOT_RUNNING, status.stderr
    assert f"XDG_RUNTIME_DIR {xdg_runtime} is not a private folder of yours" in status.stderr
    assert f"chmod 700 {xdg_runtime}" in status.stderr


def test_folders_made_above_a_private_folder_are_private_too(tmp_path):
    from engine.server.connection import ensure_private_dir

    made = ensure_private_dir(tmp_path / "a" / "b" / "runtime")
    for folder in (tmp_path / "a", tmp_path / "a" / "b", made):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
