"""Atomic writes: a reader never sees half a file, and a failure leaves the old file intact."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import OutputExistsError
from engine.fsutil import atomic_path, remove_leftover_temporaries, write_text_atomic


def test_write_text_atomic_creates_parent_and_leaves_no_temporaries(tmp_path):
    destination = tmp_path / "nested" / "result.json"
    write_text_atomic(destination, '{"ok": true}')
    assert destination.read_text() == '{"ok": true}'
    assert sorted(p.name for p in destination.parent.iterdir()) == ["result.json"]


def test_failure_keeps_existing_destination_and_removes_temporary(tmp_path):
    destination = tmp_path / "render.mov"
    destination.write_bytes(b"previous render")
    with pytest.raises(RuntimeError, match="encoder died"):
        with atomic_path(destination) as temporary:
            assert temporary.suffix == ".mov", "temporary keeps the suffix so muxers pick the format"
            assert temporary.parent == destination.parent
            temporary.write_bytes(b"half of a new render")
            raise RuntimeError("encoder died")
    assert destination.read_bytes() == b"previous render"
    assert [p.name for p in tmp_path.iterdir()] == ["render.mov"]


def test_directory_replaced_only_when_complete(tmp_path):
    destination = tmp_path / "frames"
    destination.mkdir()
    (destination / "old.png").write_bytes(b"old")
    with atomic_path(destination, directory=True) as temporary:
        (temporary / "000000.png").write_bytes(b"new")
        assert (destination / "old.png").exists(), "old folder stays until the new one is complete"
    assert sorted(p.name for p in destination.iterdir()) == ["000000.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]


def test_outputs_get_the_usual_mode_not_the_private_temporary_one(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        destination = tmp_path / "render.mp4"
        with atomic_path(destination) as temporary:
            temporary.write_bytes(b"frames")
        assert destination.stat().st_mode & 0o777 == 0o644
        folder = tmp_path / "frames"
        with atomic_path(folder, directory=True) as temporary:
            (temporary / "000000.png").write_bytes(b"png")
        assert folder.stat().st_mode & 0o777 == 0o755
    finally:
        os.umask(umask)


def test_temporaries_of_a_long_name_fit_the_file_system_and_are_found_again(tmp_path):
    destination = tmp_path / ("é" * 100 + "x" * 40 + ".mov")  # 244 bytes of UTF-8
    writer = "import os, sys, engine.fsutil as f; f.temporary_sibling(sys.argv[1]); os.kill(os.getpid(), 9)"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    subprocess.run([sys.executable, "-c", writer, str(destination)], env=env, check=False, timeout=60)
    left = sorted(tmp_path.iterdir())  # the temporary, and its writer's lock file
    assert len(left) == 2 and all(len(path.name.encode()) <= 255 for path in left)
    assert [path.suffix for path in left] == [".mov", ".lock"]
    remove_leftover_temporaries(destination)
    assert not list(tmp_path.iterdir())


def test_atomic_path_without_replace_keeps_a_file_that_appeared(tmp_path):
    destination = tmp_path / "render.mov"
    with pytest.raises(OutputExistsError, match="appeared while it was being written"):
        with atomic_path(destination, replace=False) as temporary:
            temporary.write_bytes(b"new")
            destination.write_bytes(b"other job")
    assert destination.read_bytes() == b"other job"
    assert [p.name for p in tmp_path.iterdir()] == ["render.mov"]
