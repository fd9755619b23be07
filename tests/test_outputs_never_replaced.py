"""What was already written is never lost: a file that appears at an output's name after the
command's checks ran (another job, the user saving a file there) is kept byte for byte, and the
command says so. Covered here: a timeline render's and a fill's summary, new timeline and editor
copy; the report beside a retimed or repaired clip; a clip retired twice under one name; an
interpolated image. Files appear through the commands' own hooks (a segment done, progress) or
just before the final rename (``os.link`` in engine.fsutil), never by waiting."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import opentimelineio as otio
import pytest
from media_factory import frame_pattern, render_clip
from timeline_factory import half_speed_timeline

import engine.fsutil
from engine.cli import main
from engine.errors import OutputExistsError
from engine.interp.images import write_image
from engine.mining.dataset import retire_clip
from engine.render import fill_gaps, fill_summary_path, render_timeline, summary_path
from engine.repair import repair_clip
from engine.retime import retime_clip, sidecar_path
from engine.timeline.rates import time_range

THEIRS = b"a file another program put there while the command ran"
REAL_LINK = os.link
RATE = Fraction(25)

pytestmark = pytest.mark.skipif(os.name == "nt", reason="the final rename is os.link on POSIX")


def _appearing_before_link(monkeypatch, destination: Path) -> list[Path]:
    """``os.link`` as the final rename calls it; for ``destination`` another program writes that
    name first, just before the rename. Returns the names it was called for."""
    calls = []

    def link(source, target, *args, **kwargs):
        calls.append(Path(target))
        if Path(target) == destination:
            destination.write_bytes(THEIRS)
        return REAL_LINK(source, target, *args, **kwargs)

    monkeypatch.setattr(engine.fsutil.os, "link", link)
    return calls


def _partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name or p.name.endswith(".lock"))


# -- a timeline render and a fill: summary, new timeline, editor copy --------------------------------


def _edl(tmp_path: Path) -> Path:
    """Two events from 01:00:00:00, the second at half speed (its M2 line): a copy in EDL too."""
    media = render_clip(tmp_path / "src.mp4", rate=RATE, frame_count=40)
    path = tmp_path / "cut.edl"
    path.write_text(
        "TITLE: cut\nFCM: NON-DROP FRAME\n\n"
        "001  SRC      V     C        00:00:00:00 00:00:00:10 01:00:00:00 01:00:00:10\n"
        f"* FROM CLIP NAME: src.mp4\n* FROM CLIP: {media}\n"
        "002  SRC      V     C        00:00:00:10 00:00:00:14 01:00:00:10 01:00:00:18\n"
        "M2   SRC       012.5                00:00:00:10\n"
        f"* FROM CLIP NAME: src.mp4\n* FROM CLIP: {media}\n"
    )
    return path


def _render(timeline: Path, outdir: Path, **options):
    return render_timeline(timeline, outdir, model="blend", codec="ffv1", **options)


def test_a_summary_that_appears_while_the_timeline_renders_is_kept_and_named(tmp_path):
    timeline = half_speed_timeline(tmp_path)
    outdir = tmp_path / "out"
    summary_file = summary_path(outdir, timeline)

    def another_job_writes_the_summary(spec, status):
        summary_file.write_bytes(THEIRS)

    with pytest.raises(OutputExistsError) as refused:
        _render(timeline, outdir, on_segment_done=another_job_writes_the_summary)
    message = str(refused.value)
    assert str(summary_file) in message and "while this render of cut.otio ran" in message
    assert "move that file away" in message and "render again" in message
    assert summary_file.read_bytes() == THEIRS
    assert not (outdir / "cut.chronoscope.otio").exists(), "nothing may vouch for a timeline"
    (render,) = outdir.glob("V1_000_shot_*.mkv")
    assert sidecar_path(render).is_file(), "the rendered clip is kept"
    assert _partials(outdir) == []
    # the user moves it away: rendering again takes the clip already rendered
    summary_file.rename(tmp_path / "theirs.json")
    summary = _render(timeline, outdir)
    assert [clip["status"] for clip in summary.clips] == ["resumed"]
    assert json.loads(summary_file.read_text())["new_timeline"] == str(outdir / "cut.chronoscope.otio")


def test_a_rerender_replaces_its_own_timeline_but_not_one_put_in_its_place_meanwhile(tmp_path):
    timeline = half_speed_timeline(tmp_path)
    outdir = tmp_path / "out"
    new_timeline = outdir / "cut.chronoscope.otio"
    summary_file = summary_path(outdir, timeline)
    _render(timeline, outdir)
    first_summary = summary_file.read_bytes()

    def the_user_saves_over_it(spec, status):  # the file the claim found is no longer there
        new_timeline.unlink()
        new_timeline.write_bytes(THEIRS)

    with pytest.raises(OutputExistsError, match="cut.chronoscope.otio appeared") as refused:
        _render(timeline, outdir, on_segment_done=the_user_saves_over_it)
    assert "not what stood there when it began" in str(refused.value)
    assert new_timeline.read_bytes() == THEIRS
    assert summary_file.read_bytes() == first_summary, "neither is written"
    # moved away, a render again replaces its own summary (it stood there when the render began)
    new_timeline.rename(tmp_path / "theirs.otio")
    _render(timeline, outdir)
    assert summary_file.read_bytes() != first_summary
    assert json.loads(summary_file.read_text())["clips"][0]["status"] == "resumed"
    assert otio.adapters.read_from_file(str(new_timeline)).name == "cut"
    assert _partials(outdir) == []


def test_an_editor_copy_that_appears_while_rendering_is_kept_and_the_summary_says_why(tmp_path):
    edl = _edl(tmp_path)
    outdir = tmp_path / "out"
    copy = outdir / "cut.chronoscope.edl"

    def the_editor_exports_there(spec, status):
        copy.write_bytes(THEIRS)

    summary = _render(edl, outdir, rate=25, on_segment_done=the_editor_exports_there)
    assert copy.read_bytes() == THEIRS
    assert summary.editor_timeline_path is None
    assert str(copy) in summary.editor_timeline_note and "move it away" in summary.editor_timeline_note
    written = json.loads(summary_path(outdir, edl).read_text())
    assert (
        written["editor_timeline"] is None and written["editor_timeline_note"] == summary.editor_timeline_note
    )
    assert (outdir / "cut.chronoscope.otio").is_file(), "the OTIO timeline is written as ever"
    assert _partials(outdir) == []


def _gap_timeline(tmp_path: Path) -> Path:
    media = render_clip(tmp_path / "shot.mp4", rate=RATE, frame_count=24)
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    for name, start in (("a", 0), ("b", 10)):
        reference = otio.schema.ExternalReference(
            target_url=str(media), available_range=time_range(0, 24, RATE)
        )
        track.append(
            otio.schema.Clip(name=name, media_reference=reference, source_range=time_range(start, 6, RATE))
        )
        if name == "a":
            track.append(otio.schema.Gap(source_range=time_range(0, 4, RATE)))
    timeline = otio.schema.Timeline(name="gaps")
    timeline.tracks.append(track)
    path = tmp_path / "gaps.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


def test_a_fill_summary_that_appears_just_before_its_rename_is_kept(tmp_path, monkeypatch, capsys):
    timeline = _gap_timeline(tmp_path)
    outdir = tmp_path / "out"
    summary_file = fill_summary_path(outdir, timeline)
    calls = _appearing_before_link(monkeypatch, summary_file)
    status = main(
        ["fill", str(timeline), "--gap", "V1:1", "-o", str(outdir), "--model", "blend", "--codec", "ffv1"]
    )
    assert status == 2
    error = capsys.readouterr().err
    assert str(summary_file) in error and "appeared while it was being written" in error
    assert summary_file in calls
    assert summary_file.read_bytes() == THEIRS
    assert not (outdir / "gaps.chronoscope.otio").exists()
    (fill,) = outdir.glob("V1_001_fill_*.mkv")
    assert sidecar_path(fill).is_file(), "the fill frames are kept for the next run"
    assert _partials(outdir) == []
    # moved away, filling again takes the fill, and a fill after it replaces its own summary
    monkeypatch.setattr(engine.fsutil.os, "link", REAL_LINK)
    summary_file.rename(tmp_path / "theirs.json")
    fill_gaps(timeline, outdir, gaps=["V1:1"], model="blend", codec="ffv1")
    first = os.stat(summary_file)
    again = fill_gaps(timeline, outdir, gaps=["V1:1"], model="blend", codec="ffv1")
    assert [gap.status for gap in again.gaps] == ["resumed"]
    assert os.stat(summary_file).st_ino != first.st_ino, "replaced by the new run's summary"
    assert (outdir / "gaps.chronoscope.otio").is_file()


# -- the report beside a retimed or repaired clip -------------------------------------------------


def test_a_report_that_appears_while_a_clip_is_retimed_is_kept(tmp_path):
    source = render_clip(tmp_path / "src.mp4", rate=RATE, frame_count=6)
    output = tmp_path / "slow.mkv"
    report = sidecar_path(output)

    def another_program_writes_the_report(done, total):
        if not report.exists():
            report.write_bytes(THEIRS)

    with pytest.raises(OutputExistsError, match="appeared while it was being written") as refused:
        retime_clip(source, output, speed="1/2", model="blend", on_progress=another_program_writes_the_report)
    assert str(report) in str(refused.value)
    assert report.read_bytes() == THEIRS
    assert output.is_file(), "the media, made without overwrite into a free name, stays"
    assert _partials(tmp_path) == []


def test_a_report_standing_without_its_clip_is_refused_before_any_work_unless_overwriting(tmp_path, capsys):
    source = render_clip(tmp_path / "src.mp4", rate=RATE, frame_count=6)
    output = tmp_path / "slow.mkv"
    report = sidecar_path(output)
    report.write_bytes(THEIRS)  # left by a clip since moved away
    command = ["retime", str(source), "--speed", "0.5", "--model", "blend", "-o", str(output)]
    assert main(command) == 2
    error = capsys.readouterr().err
    assert str(report) in error and "--overwrite" in error
    assert report.read_bytes() == THEIRS and not output.exists()
    assert main([*command, "--overwrite"]) == 0, "asked to overwrite: the report is replaced"
    assert json.loads(report.read_text())["frames_written"] == 12


def test_a_report_that_appears_while_a_clip_is_repaired_is_kept(tmp_path):
    source = render_clip(tmp_path / "src.mp4", rate=RATE, pts=[0, 1, 2, 4, 5, 6], time_base=Fraction(1, 25))
    output = tmp_path / "fixed.mkv"
    report = sidecar_path(output)

    def another_program_writes_the_report(done, total):
        if not report.exists():
            report.write_bytes(THEIRS)

    with pytest.raises(OutputExistsError, match="appeared while it was being written"):
        repair_clip(source, output, model="blend", on_progress=another_program_writes_the_report)
    assert report.read_bytes() == THEIRS
    assert output.is_file()
    report.unlink()
    with pytest.raises(OutputExistsError, match="fixed.mkv exists"):
        repair_clip(source, output, model="blend")
    report.write_bytes(THEIRS)
    output.unlink()
    with pytest.raises(OutputExistsError, match="fixed.mkv.chronoscope.json exists"):
        repair_clip(source, output, model="blend")
    assert report.read_bytes() == THEIRS and not output.exists()


# -- a clip retired twice under one name ------------------------------------------------------------


def test_a_clip_retired_twice_under_one_name_keeps_both(tmp_path, monkeypatch):
    out = tmp_path / "dataset"
    clips = out / "clips"
    clips.mkdir(parents=True)
    name = "shot-0123456789-s000-25fps.mkv"
    render_clip(clips / name, rate=RATE, frame_count=4)
    first = (clips / name).read_bytes()
    assert retire_clip(out, f"clips/{name}", "its source changed") == f"retired/{name}"
    render_clip(clips / name, rate=RATE, frame_count=6)
    second = (clips / name).read_bytes()
    assert second != first
    moved = retire_clip(out, f"clips/{name}", "its source changed again")
    assert moved == "retired/shot-0123456789-s000-25fps.2.mkv"
    assert (out / "retired" / name).read_bytes() == first
    assert (out / moved).read_bytes() == second
    assert not (clips / name).exists()
    # one that appears at the next free name just before the move is kept too
    render_clip(clips / name, rate=RATE, frame_count=8)
    third = (clips / name).read_bytes()
    taken = out / "retired" / "shot-0123456789-s000-25fps.3.mkv"
    _appearing_before_link(monkeypatch, taken)
    assert retire_clip(out, f"clips/{name}", "dropped") == "retired/shot-0123456789-s000-25fps.4.mkv"
    assert taken.read_bytes() == THEIRS
    assert (out / "retired" / "shot-0123456789-s000-25fps.4.mkv").read_bytes() == third


# -- an interpolated image -------------------------------------------------------------------------


def test_an_image_that_appears_just_before_its_rename_is_kept_without_overwrite(tmp_path, monkeypatch):
    pixels = frame_pattern(3)
    asked = tmp_path / "asked.png"
    asked.write_bytes(THEIRS)
    write_image(asked, pixels, replace=True)  # --overwrite: replaced
    assert np.array_equal(cv2.cvtColor(cv2.imread(str(asked)), cv2.COLOR_BGR2RGB), pixels)
    path = tmp_path / "middle.png"
    _appearing_before_link(monkeypatch, path)
    with pytest.raises(OutputExistsError, match="middle.png appeared while it was being written"):
        write_image(path, pixels, replace=False)
    assert path.read_bytes() == THEIRS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["asked.png", "middle.png"]


def test_interpolate_keeps_an_image_that_appears_before_its_rename(tmp_path, monkeypatch, capsys):
    """`chronoscope interpolate` checks its output is free, then writes for a while: an image that
    appears meanwhile is kept and named (exit 2); with --overwrite it is replaced."""
    first, second = tmp_path / "f0.png", tmp_path / "f1.png"
    cv2.imwrite(str(first), frame_pattern(3))
    cv2.imwrite(str(second), frame_pattern(4))
    out = tmp_path / "mid.png"
    command = ["interpolate", str(first), str(second), "--t", "0.5", "-o", str(out), "--model", "blend"]
    _appearing_before_link(monkeypatch, out)
    assert main(command) == 2
    assert "mid.png appeared while it was being written" in capsys.readouterr().err
    assert out.read_bytes() == THEIRS
    assert main([*command, "--overwrite"]) == 0 and out.read_bytes() != THEIRS
