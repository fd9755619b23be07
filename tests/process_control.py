"""Stopping a child process at a chosen moment, for the kill-and-resume tests."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from pathlib import Path


def stop_mid_write(child: subprocess.Popen, finished: Path | str, outdir: Path, partial: str) -> None:
    """Freeze ``child`` (SIGSTOP) as soon as ``finished`` exists (a path, or a pattern in
    ``outdir``) and a temporary matching ``partial`` is being written, then SIGKILL it: what is on
    disk is what a kill at that moment leaves, however loaded the machine."""

    def is_finished() -> bool:
        return finished.exists() if isinstance(finished, Path) else bool(list(outdir.glob(finished)))

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and child.poll() is None:
        if is_finished() and list(outdir.glob(partial)):
            child.send_signal(signal.SIGSTOP)
            break
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()


def wait_for(condition, timeout_s: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail the test naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def engine_starter(tmp_path: Path, monkeypatch, module_name: str, source: str):
    """A function that starts a background engine serving the capability module ``source`` (named
    ``module_name``, put on PYTHONPATH); yield it from a fixture, then ``stop_engine`` at the end."""
    import os
    import sys

    from engine.server.process import start_engine

    modules = tmp_path / "modules"
    modules.mkdir(exist_ok=True)
    (modules / f"{module_name}.py").write_text(source)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(modules), *sys.path]))

    def start():
        connection, started = start_engine(timeout_s=60, capability_modules=[module_name])
        assert started
        return connection

    return start


@contextlib.contextmanager
def background_engine(
    home: Path, capability_modules: list[str] | None = None, python_path: Path | None = None
):
    """A background engine process with its own ``CHRONOSCOPE_HOME`` (journal, log, runtime
    folder), serving the shipped capabilities and ``capability_modules`` (found on ``python_path``
    too); yields (connection, log file) and stops it at the end."""
    import os
    import sys

    import pytest

    from engine.server.connection import connection_file_path
    from engine.server.process import engine_log_path, start_engine, stop_engine

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHRONOSCOPE_HOME", str(home))
        if python_path is not None:
            patch.setenv("PYTHONPATH", os.pathsep.join([str(python_path), *sys.path]))
        connection, started = start_engine(timeout_s=60, capability_modules=capability_modules or ())
        assert started
        try:
            yield connection, engine_log_path()
        finally:
            assert stop_engine(connection_file_path(), timeout_s=10, force=True) == "stopped"
