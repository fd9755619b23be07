"""A finished output is renamed into place only where nothing stands: a file that appears at the
final name a moment before the rename (another render, the user copying a file in) is kept, byte
for byte, the new result is dropped with its temporary, and the error names the file."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path

import opentimelineio as otio
import pytest
from timeline_factory import half_speed_timeline

import engine.fsutil
import engine.media.writer
import engine.render.segment
from engine.errors import OutputExistsError
from engine.fsutil import move_into_place, temporary_sibling
from engine.render import render_timeline
from engine.render.plan import SegmentSpec, plan_render
from engine.render.segment import render_segment
from engine.retime import sidecar_path

THEIRS = b"a file another program put there, not made by this render"


def _finished(destination: Path, content: bytes = b"new result") -> Path:
    temporary = temporary_sibling(destination)
    temporary.write_bytes(content)
    return temporary


def _appearing_before_link(monkeypatch, destination: Path) -> list[Path]:
    """``os.link`` as the final rename calls it, but the other file is created first: what a
    second writer does between any check and the rename. Returns the names it was called for."""
    real_link = os.link
    calls = []

    def link(source, target, *args, **kwargs):
        calls.append(Path(target))
        Path(destination).write_bytes(THEIRS)
        return real_link(source, target, *args, **kwargs)

    monkeypatch.setattr(engine.fsutil.os, "link", link)
    return calls


def _without_hard_links(monkeypatch) -> list[Path]:
    """A file system that takes no hard links (FAT, some network shares): ``os.link`` fails EPERM."""
    calls = []

    def link(source, target, *args, **kwargs):
        calls.append(Path(target))
        raise OSError(errno.EPERM, os.strerror(errno.EPERM), str(source), None, str(target))

    monkeypatch.setattr(engine.fsutil.os, "link", link)
    return calls


# -- engine.fsutil.move_without_replacing ----------------------------------------------------------


@pytest.mark.skipif(os.name == "nt", reason="Windows renames without a hard link")
def test_a_file_that_appears_just_before_the_move_is_kept_and_the_result_dropped(tmp_path, monkeypatch):
    destination = tmp_path / "render.mov"
    temporary = _finished(destination)
    calls = _appearing_before_link(monkeypatch, destination)
    with pytest.raises(OutputExistsError, match="appeared while it was being written") as refused:
        engine.fsutil.move_without_replacing(temporary, destination)
    assert calls == [destination]
    assert str(destination) in str(refused.value) and "move that file away" in str(refused.value)
    assert destination.read_bytes() == THEIRS
    assert not temporary.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["render.mov"]


def test_a_file_there_before_the_move_is_kept(tmp_path):
    destination = tmp_path / "render.mov"
    destination.write_bytes(THEIRS)
    temporary = _finished(destination)
    with pytest.raises(OutputExistsError, match="render.mov"):
        engine.fsutil.move_without_replacing(temporary, destination)
    assert destination.read_bytes() == THEIRS
    assert [p.name for p in tmp_path.iterdir()] == ["render.mov"]


def test_with_nothing_there_the_result_is_moved_into_place(tmp_path):
    destination = tmp_path / "render.mov"
    temporary = _finished(destination, b"frames")
    engine.fsutil.move_without_replacing(temporary, destination)
    assert destination.read_bytes() == b"frames"
    assert destination.stat().st_nlink == 1, "no second name left pointing at it"
    assert [p.name for p in tmp_path.iterdir()] == ["render.mov"]


@pytest.mark.skipif(os.name == "nt", reason="Windows renames without a hard link")
def test_without_hard_links_it_checks_then_renames_and_still_refuses(tmp_path, monkeypatch, caplog):
    calls = _without_hard_links(monkeypatch)
    free = tmp_path / "free.mov"
    temporary = _finished(free, b"frames")
    with caplog.at_level(logging.WARNING, logger="engine.fsutil"):
        engine.fsutil.move_without_replacing(temporary, free)
    assert free.read_bytes() == b"frames" and not temporary.exists()
    assert any("no hard links" in record.getMessage() for record in caplog.records), "never silent"
    taken = tmp_path / "taken.mov"
    taken.write_bytes(THEIRS)
    temporary = _finished(taken)
    with pytest.raises(OutputExistsError, match="taken.mov"):
        engine.fsutil.move_without_replacing(temporary, taken)
    assert taken.read_bytes() == THEIRS and not temporary.exists()
    assert calls == [free, taken]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["free.mov", "taken.mov"]


@pytest.mark.skipif(os.name == "nt", reason="symbolic links")
def test_a_dangling_symbolic_link_at_the_name_is_not_replaced_either(tmp_path, monkeypatch):
    destination = tmp_path / "render.mov"
    destination.symlink_to(tmp_path / "nowhere.mov")
    for hard_links in (True, False):
        if not hard_links:
            _without_hard_links(monkeypatch)
        temporary = _finished(destination)
        with pytest.raises(OutputExistsError):
            engine.fsutil.move_without_replacing(temporary, destination)
        assert destination.is_symlink() and not temporary.exists()


def test_a_folder_of_frames_is_moved_only_where_nothing_stands(tmp_path):
    destination = tmp_path / "frames"
    folder = temporary_sibling(destination, directory=True)
    (folder / "frames_000000.png").write_bytes(b"png")
    engine.fsutil.move_without_replacing(folder, destination)
    assert [p.name for p in destination.iterdir()] == ["frames_000000.png"]
    folder = temporary_sibling(destination, directory=True)
    (folder / "frames_000000.png").write_bytes(b"other png")
    with pytest.raises(OutputExistsError, match="frames"):
        engine.fsutil.move_without_replacing(folder, destination)
    assert (destination / "frames_000000.png").read_bytes() == b"png"
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]


def test_move_into_place_without_replace_still_leaves_the_temporary_to_its_caller(tmp_path):
    """``engine.server.outputs.publish`` removes it itself and words its own error."""
    destination = tmp_path / "render.mov"
    destination.write_bytes(THEIRS)
    temporary = _finished(destination)
    with pytest.raises(FileExistsError):
        move_into_place(temporary, destination, replace=False)
    assert temporary.exists() and destination.read_bytes() == THEIRS
    engine.fsutil.remove_quietly(temporary)  # as the caller does: with its writer's lock file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["render.mov"]


# -- the render of a timeline segment --------------------------------------------------------------


def _spec(tmp_path: Path) -> SegmentSpec:
    timeline = otio.adapters.read_from_file(str(half_speed_timeline(tmp_path)))
    (entry,) = plan_render(timeline, tmp_path / "out", model="blend", codec="ffv1").to_render
    Path(entry.spec.output).parent.mkdir(parents=True, exist_ok=True)
    return entry.spec


def _intruding_before_rename(monkeypatch, chosen: Callable[[Path], bool]) -> list[Path]:
    """Every atomic write (the media writer's, the sidecar's) works as before, but once the content
    of a ``chosen`` destination is complete, just before its rename, another program writes that
    name. Returns the names written so."""
    real = engine.fsutil.atomic_path
    written = []

    @contextlib.contextmanager
    def atomic_path(destination, **options):
        with real(destination, **options) as temporary:
            yield temporary
            if chosen(Path(destination)):
                Path(destination).write_bytes(THEIRS)
                written.append(Path(destination))

    monkeypatch.setattr(engine.fsutil, "atomic_path", atomic_path)
    monkeypatch.setattr(engine.media.writer, "atomic_path", atomic_path)
    return written


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name or p.name.endswith(".lock"))


def test_a_file_that_appears_at_a_segment_output_just_before_its_rename_is_kept(tmp_path, monkeypatch):
    timeline = half_speed_timeline(tmp_path)
    outdir = tmp_path / "out"
    written = _intruding_before_rename(monkeypatch, lambda path: path.suffix == ".mkv")
    summary = render_timeline(timeline, outdir, model="blend", codec="ffv1")
    (clip,) = summary.clips
    (output,) = written
    assert output.parent == outdir
    assert output.read_bytes() == THEIRS, "the file that appeared was replaced by the render"
    assert clip["status"] == "failed"
    assert str(output) in clip["reason"] and "appeared while it was being written" in clip["reason"]
    assert not sidecar_path(output).exists(), "no report may vouch for a file this render did not make"
    assert _leftovers(outdir) == []


def test_a_sidecar_that_appears_just_before_its_rename_is_kept(tmp_path, monkeypatch):
    spec = _spec(tmp_path)
    output = Path(spec.output)
    _intruding_before_rename(monkeypatch, lambda path: path == sidecar_path(output))
    with pytest.raises(OutputExistsError, match="appeared while it was being written"):
        render_segment(spec)
    assert sidecar_path(output).read_bytes() == THEIRS
    assert output.is_file(), "the media, renamed before, stays: complete and this render's own"
    assert _leftovers(output.parent) == []


def test_a_file_that_appears_while_a_segment_waits_for_its_output_is_kept(tmp_path, monkeypatch):
    spec = _spec(tmp_path)
    output = Path(spec.output)
    real_lock = engine.render.segment.output_lock

    @contextlib.contextmanager
    def lock_taken_after_another_wrote_it(path, check_cancelled=None):
        output.write_bytes(THEIRS)  # what another render or program wrote while this one waited
        with real_lock(path, check_cancelled):
            yield

    monkeypatch.setattr(engine.render.segment, "output_lock", lock_taken_after_another_wrote_it)
    with pytest.raises(OutputExistsError, match="waited for it") as refused:
        render_segment(spec)
    assert str(output) in str(refused.value) and "move that file away" in str(refused.value)
    assert output.read_bytes() == THEIRS
    assert not sidecar_path(output).exists()
    assert _leftovers(output.parent) == []


def test_a_segment_still_replaces_its_own_unfinished_render_that_stood_there(tmp_path):
    spec = _spec(tmp_path)
    output = Path(spec.output)
    output.write_bytes(b"a render of this segment cut short")  # its hashed name says it is ours
    report = render_segment(spec)
    assert report.frames_written == spec.total_frames
    assert output.read_bytes() != b"a render of this segment cut short"
    assert sidecar_path(output).is_file()
    assert _leftovers(output.parent) == []
