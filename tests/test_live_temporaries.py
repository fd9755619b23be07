"""A temporary is removed as a leftover only when its writer is gone: a second job aimed at an
output that another process is writing is refused up front, naming that process, and the first
one's work is kept; the leftovers of a killed writer are still removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from media_factory import render_clip

import engine.fsutil
from engine.errors import OutputExistsError
from engine.fsutil import (
    atomic_path,
    live_writer,
    remove_leftover_temporaries,
    remove_quietly,
    temporary_sibling,
)
from engine.repair import repair_clip
from engine.retime import retime_clip

REPO = Path(__file__).resolve().parent.parent

_WRITER = """
import os, sys
from pathlib import Path
from engine.fsutil import temporary_sibling
for name in sys.argv[2:]:
    print(temporary_sibling(Path(name), directory=sys.argv[1] == "folder"), flush=True)
if os.environ.get("KILL_ITSELF"):
    os.kill(os.getpid(), 9)
sys.stdin.read()  # holds its temporaries until told to go
"""


class Writer:
    """Another process that writes temporaries of ``destinations`` (and holds them until stopped)."""

    def __init__(self, *destinations: Path, directory: bool = False, kill_itself: bool = False):
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        if kill_itself:
            env["KILL_ITSELF"] = "1"
        kind = "folder" if directory else "file"
        command = [sys.executable, "-c", _WRITER, kind, *map(str, destinations)]
        self.process = subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.temporaries = [Path(self.process.stdout.readline().strip()) for _ in destinations]
        assert all(path.name for path in self.temporaries), "the writer did not start"

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.kill()
        self.process.stdin.close()
        self.process.stdout.close()


def killed_writer(*destinations: Path, directory: bool = False) -> list[Path]:
    """The temporaries a process killed with SIGKILL mid-write left (with their lock files)."""
    with Writer(*destinations, directory=directory, kill_itself=True) as writer:
        assert writer.process.wait(timeout=30) == -signal.SIGKILL
        return writer.temporaries


def _names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_a_temporary_that_another_process_writes_is_kept_and_the_sweep_refused(tmp_path):
    destination = tmp_path / "a.mov"
    with Writer(destination) as writer:
        (temporary,) = writer.temporaries
        temporary.write_bytes(b"frames of the first render")
        with pytest.raises(OutputExistsError) as refused:
            remove_leftover_temporaries(destination)
        message = str(refused.value)
        assert f"another render is writing {destination} now (process {writer.process.pid})" in message
        assert "wait for it or choose another name" in message
        assert temporary.read_bytes() == b"frames of the first render"
        remove_quietly(temporary)  # the engine's sweep of journaled names leaves it too
        assert temporary.read_bytes() == b"frames of the first render"


def test_the_leftovers_of_a_killed_writer_go_with_their_lock_files(tmp_path):
    destination = tmp_path / "a.mov"
    (temporary,) = killed_writer(destination)
    (folder,) = killed_writer(tmp_path / "frames", directory=True)
    assert temporary.exists() and folder.is_dir() and len(_names(tmp_path)) == 4  # each with its lock
    remove_leftover_temporaries(destination)
    remove_leftover_temporaries(tmp_path / "frames")
    assert _names(tmp_path) == []


def test_the_engine_sweep_of_a_killed_jobs_temporary_takes_its_lock_file_too(tmp_path):
    (temporary,) = killed_writer(tmp_path / "a.mov")
    remove_quietly(temporary)
    assert _names(tmp_path) == []


def test_live_writer_names_a_running_writer_and_never_a_leftover_nor_touches_either(tmp_path):
    destination, other = tmp_path / "a.mov", tmp_path / "a.mp4"
    assert live_writer(destination) is None
    with Writer(destination) as writer:
        assert live_writer(destination) == f"process {writer.process.pid}"
        assert live_writer(other) is None  # a.mp4 is another output
        assert live_writer(destination) == f"process {writer.process.pid}"  # its lock still held
        with pytest.raises(OutputExistsError):
            remove_leftover_temporaries(destination)
    (temporary,) = killed_writer(destination)
    left = _names(tmp_path)
    assert live_writer(destination) is None and _names(tmp_path) == left and temporary.exists()
    with atomic_path(destination) as own:
        own.write_bytes(b"this process writes it")
        assert live_writer(destination) == f"process {os.getpid()}"


def test_a_lock_file_left_without_its_temporary_is_swept(tmp_path):
    (temporary,) = killed_writer(tmp_path / "a.mov")
    temporary.unlink()  # the temporary removed by hand; its lock file stays
    assert len(_names(tmp_path)) == 1
    remove_leftover_temporaries(tmp_path / "a.mov")
    assert _names(tmp_path) == []


def test_a_temporary_of_another_thread_of_this_process_is_kept(tmp_path):
    destination = tmp_path / "a.mov"
    written = threading.Event()
    checked = threading.Event()

    def write() -> None:
        with atomic_path(destination) as temporary:
            temporary.write_bytes(b"first")
            written.set()
            checked.wait(30)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert written.wait(30)
        with pytest.raises(OutputExistsError, match=f"process {os.getpid()}"):
            remove_leftover_temporaries(destination)
    finally:
        checked.set()
        thread.join(30)
    assert destination.read_bytes() == b"first"
    assert _names(tmp_path) == ["a.mov"]


def test_finished_writes_leave_no_lock_files(tmp_path):
    destination = tmp_path / "a.mov"
    with atomic_path(destination) as temporary:
        temporary.write_bytes(b"new")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "b.mov") as temporary:
        raise RuntimeError("encoder died")
    with atomic_path(tmp_path / "frames", directory=True) as folder:
        (folder / "0.png").write_bytes(b"png")
    with atomic_path(tmp_path / "frames", directory=True) as folder:  # replacing a folder
        (folder / "0.png").write_bytes(b"png 2")
    with pytest.raises(OutputExistsError), atomic_path(destination, replace=False) as temporary:
        temporary.write_bytes(b"refused")
    assert _names(tmp_path) == ["a.mov", "frames"]
    assert not [path for path in engine.fsutil._OWN if path.startswith(str(tmp_path.resolve()))]


def test_a_file_system_without_locks_tells_writers_by_pid_on_this_host(tmp_path, monkeypatch):
    monkeypatch.setattr(engine.fsutil, "_try_lock", lambda handle: None)
    destination = tmp_path / "a.mov"
    with Writer(destination) as writer:
        with pytest.raises(OutputExistsError, match=f"process {writer.process.pid}"):
            remove_leftover_temporaries(destination)
        writer.kill()
        remove_leftover_temporaries(destination)
    assert _names(tmp_path) == []
    mine = temporary_sibling(destination)
    with pytest.raises(OutputExistsError, match=f"process {os.getpid()}"):
        remove_leftover_temporaries(destination)
    remove_quietly(mine)
    assert _names(tmp_path) == []


def test_without_locks_another_hosts_temporary_is_kept_and_named(tmp_path, monkeypatch):
    monkeypatch.setattr(engine.fsutil, "_try_lock", lambda handle: None)
    (temporary,) = killed_writer(tmp_path / "a.mov")
    lock = engine.fsutil._lock_path_of(temporary)
    lock.write_text("4242 render-node-7\n")
    with pytest.raises(OutputExistsError) as refused:
        remove_leftover_temporaries(tmp_path / "a.mov")
    assert "process 4242 on render-node-7" in str(refused.value)
    assert f"remove {temporary}" in str(refused.value)
    assert temporary.exists()


@pytest.mark.parametrize("run", ["retime", "repair"])
def test_a_second_render_of_an_output_being_written_is_refused_and_the_first_kept(tmp_path, run):
    clip = render_clip(tmp_path / "clip.mp4", frame_count=8)
    out = tmp_path / "conc" / "a.mov"
    with Writer(out) as writer:
        (temporary,) = writer.temporaries
        temporary.write_bytes(b"the first render's frames")
        with pytest.raises(OutputExistsError) as refused:
            if run == "retime":
                retime_clip(clip, out, speed=0.5, model="blend")
            else:
                repair_clip(clip, out, model="blend")
        assert str(refused.value) == (
            f"another render is writing {out} now (process {writer.process.pid}); "
            "wait for it or choose another name"
        )
        assert temporary.read_bytes() == b"the first render's frames"
        assert not out.exists()


def test_a_render_refused_while_the_first_stretches_its_audio(tmp_path):
    clip = render_clip(tmp_path / "clip.mp4", frame_count=8)
    out = tmp_path / "a.mov"
    with Writer(out.with_name("a.mov.audio.mov")) as writer:
        with pytest.raises(OutputExistsError, match=f"writing {out} now \\(process {writer.process.pid}\\)"):
            retime_clip(clip, out, speed=0.5, model="blend")
        assert writer.temporaries[0].exists()


def test_a_retime_after_a_killed_one_removes_its_leftovers_and_renders(tmp_path):
    clip = render_clip(tmp_path / "clip.mp4", frame_count=8)
    out = tmp_path / "a.mov"
    killed_writer(out, out.with_name("a.mov.chronoscope.json"), out.with_name("a.mov.audio.mov"))
    retime_clip(clip, out, speed=0.5, model="blend")
    assert _names(tmp_path) == ["a.mov", "a.mov.chronoscope.json", "clip.mp4"]
