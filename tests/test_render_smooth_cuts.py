"""`chronoscope render --smooth-cuts N`: a real clip cut in two with a 6-frame jump, in a
Resolve-shaped OTIO, gets N synthesized frames at the cut; the timeline keeps its length. Smooth cuts
resume by content hash: a re-run skips them, and a render killed after the first cut resumes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from process_control import stop_mid_write

from engine.cli import main
from engine.errors import CorruptMediaError
from engine.media import FrameReader, probe, write_video
from engine.render import render_timeline
from engine.timeline import list_segments, read_timeline, results_of
from engine.timeline.rates import time_range

REPO = Path(__file__).resolve().parent.parent
RATE = Fraction(30000, 1001)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-9)))


def _clip(name: str, media: Path, start: int, frames: int, available: int) -> otio.schema.Clip:
    reference = otio.schema.ExternalReference(
        target_url=str(media), available_range=time_range(0, available, RATE)
    )
    clip = otio.schema.Clip(
        name=name, media_reference=reference, source_range=time_range(start, frames, RATE)
    )
    clip.metadata["Resolve_OTIO"] = {"Link Group ID": 1}
    return clip


def _timeline(folder: Path, media: Path, other: Path) -> Path:
    timeline = otio.schema.Timeline(name="jump cut")
    timeline.metadata["Resolve_OTIO"] = {"Resolve OTIO Meta Version": "1.0"}
    video = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    video.append(_clip("interview.mp4", media, 0, 20, 60))
    video.append(_clip("interview.mp4", media, 26, 20, 60))  # 6 frames later: a jump cut
    video.append(_clip("other.mp4", other, 0, 10, 30))  # different media: a real cut
    video.append(_clip("interview.mp4", media, 0, 10, 60))
    audio = otio.schema.Track(name="Audio 1", kind=otio.schema.TrackKind.Audio)
    audio.append(_clip("interview.mp4", media, 0, 60, 60))
    timeline.tracks.append(video)
    timeline.tracks.append(audio)
    path = folder / "cut.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


def test_jump_cut_is_smoothed_and_timeline_keeps_its_length(tmp_path, shared_data, capsys):
    with FrameReader(shared_data / "clips" / "gopro-max-heromode.mp4", size=(320, 182)) as reader:
        frames = [frame.image for frame, _ in zip(reader.frames(), range(60), strict=False)]
    media = write_video(tmp_path / "interview.mp4", frames, rate=RATE, codec="h264", quality=14)
    other = write_video(tmp_path / "other.mp4", [255 - f for f in frames[:30]], rate=RATE, codec="h264")
    with FrameReader(media) as reader:
        decoded = [frame.image for frame in reader]
    cut = _timeline(tmp_path, media, other)
    outdir = tmp_path / "out"

    status = main(
        ["render", str(cut), "-o", str(outdir), "--smooth-cuts", "4", "--model", "flow", "--codec", "h264"]
        + ["--no-engine", "--json"]
    )

    assert status == 0
    summary = json.loads(capsys.readouterr().out)
    smoothed = [c for c in summary["smooth_cuts"] if c["status"] == "rendered"]
    assert len(smoothed) == 1
    record = smoothed[0]
    assert (record["track"], record["first_index"], record["jump_frames"]) == ("V1", 0, "6")
    assert (record["frames"], record["from_first"], record["from_second"]) == (4, 2, 2)
    assert (record["before_file_frame"], record["after_file_frame"]) == (17, 28)
    skipped = [c for c in summary["smooth_cuts"] if c["status"] == "skipped"]
    assert skipped == []  # other.mp4 is a real cut and interview.mp4 after it starts backwards: not pairs

    before = read_timeline(cut)
    after = read_timeline(outdir / "cut.chronoscope.otio")
    assert after.duration() == before.duration()
    video = [
        (s.clip_name, s.record_start_frames, s.record_frames, s.source_start_frames)
        for s in list_segments(after)
        if s.track_label == "V1"
    ]
    assert video == [
        ("interview.mp4", 0, 18, 0),
        ("smooth cut interview.mp4 > interview.mp4", 18, 4, 0),
        ("interview.mp4", 22, 18, 28),
        ("other.mp4", 40, 10, 0),
        ("interview.mp4", 50, 10, 0),
    ]
    audio = [(s.record_start_frames, s.record_frames) for s in list_segments(after) if s.track_label == "A1"]
    assert audio == [(0, 60)]
    assert after.metadata["Resolve_OTIO"]["Resolve OTIO Meta Version"] == "1.0"
    listed = results_of(after)["render"]["smooth_cuts"]
    assert [(c["track"], c["first_index"], c["status"]) for c in listed] == [("V1", 0, "rendered")]
    inserted = after.tracks[0][1]
    assert results_of(inserted)["smooth_cut"]["times"] == ["1/5", "2/5", "3/5", "4/5"]

    with FrameReader(Path(record["output"])) as reader:
        made = list(reader)
    assert [f.time_s for f in made] == [Fraction(n) / RATE for n in range(4)]
    first, last = decoded[17], decoded[28]
    # The morph goes from the first clip's last frame toward the second clip's first frame.
    assert _psnr(made[0].image, first) > _psnr(made[0].image, last)
    assert _psnr(made[3].image, last) > _psnr(made[3].image, first)


def test_far_jump_is_listed_not_smoothed(tmp_path, shared_data, capsys):
    with FrameReader(shared_data / "clips" / "gopro-max-heromode.mp4", size=(160, 90)) as reader:
        frames = [frame.image for frame, _ in zip(reader.frames(), range(120), strict=False)]
    media = write_video(tmp_path / "long.mp4", frames, rate=RATE, codec="h264")
    timeline = otio.schema.Timeline(name="far")
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    track.append(_clip("long.mp4", media, 0, 10, 120))
    track.append(_clip("long.mp4", media, 100, 10, 120))  # 90 frames (3 s) later
    timeline.tracks.append(track)
    cut = tmp_path / "far.otio"
    otio.adapters.write_to_file(timeline, str(cut))

    assert main(["render", str(cut), "-o", str(tmp_path / "out"), "--smooth-cuts", "2", "--no-engine"]) == 0
    text = capsys.readouterr().out
    assert (
        "smooth cut skipped: V1 #0-#1: the second clip starts 90 source frames later, more than 2 s" in text
    )
    after = read_timeline(tmp_path / "out" / "far.chronoscope.otio")
    assert len(list(after.tracks[0])) == 2


def _gopro(shared_data: Path, size: tuple[int, int], frames: int) -> list[np.ndarray]:
    with FrameReader(shared_data / "clips" / "gopro-max-heromode.mp4", size=size) as reader:
        return [frame.image for frame, _ in zip(reader.frames(), range(frames), strict=False)]


def _stamps(outdir: Path, pattern: str) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in outdir.glob(pattern)}


def test_rerun_skips_smooth_cuts_already_rendered(tmp_path, shared_data, capsys):
    frames = _gopro(shared_data, (160, 90), 60)
    media = write_video(tmp_path / "interview.mp4", frames, rate=RATE, codec="h264", quality=14)
    other = write_video(tmp_path / "other.mp4", [255 - f for f in frames[:30]], rate=RATE, codec="h264")
    cut = _timeline(tmp_path, media, other)
    outdir = tmp_path / "out"
    command = ["render", str(cut), "-o", str(outdir), "--smooth-cuts", "4", "--model", "flow"]
    command += ["--codec", "ffv1", "--no-engine"]

    assert main(command + ["--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["smooth_cut_counts"] == {"rendered": 1, "resumed": 0, "skipped": 0, "failed": 0}
    stamps = _stamps(outdir, "*smoothcut*")
    (cut_name,) = [name for name in stamps if name.endswith(".mkv")]
    assert cut_name.startswith("V1_000-001_smoothcut_")
    assert sorted(stamps) == [cut_name, cut_name + ".chronoscope.json"]
    first_timeline = read_timeline(outdir / "cut.chronoscope.otio")

    assert main(command) == 0
    text = capsys.readouterr().out
    (line,) = [line for line in text.splitlines() if line.startswith("smooth cut: V1 #0-#1")]
    assert line.endswith(f"{cut_name} (skipped (already rendered))")
    assert "smooth cuts: 0 rendered, 1 skipped (already rendered), 0 not smoothed" in text
    assert _stamps(outdir, "*smoothcut*") == stamps
    summary = json.loads((outdir / "cut.render-summary.json").read_text())
    (record,) = summary["smooth_cuts"]
    assert (record["status"], record["reason"]) == ("resumed", "skipped (already rendered)")
    assert record["times"] == ["1/5", "2/5", "3/5", "4/5"] and len(record["risk"]) == 4
    # The timeline written from the resumed cut is the one written when it was rendered.
    again = read_timeline(outdir / "cut.chronoscope.otio")
    assert [(item.name, item.duration()) for item in again.tracks[0]] == [
        (item.name, item.duration()) for item in first_timeline.tracks[0]
    ]
    assert (
        results_of(again.tracks[0][1])["smooth_cut"] == results_of(first_timeline.tracks[0][1])["smooth_cut"]
    )

    # Another model changes the content hash: the cut is rendered again, into a file of its own;
    # the first stays as it was, for the timeline that points at it.
    assert main([("blend" if word == "flow" else word) for word in command] + ["--json"]) == 0
    third = json.loads(capsys.readouterr().out)
    assert [c["status"] for c in third["smooth_cuts"]] == ["rendered"]
    assert Path(third["smooth_cuts"][0]["output"]).name not in stamps
    assert {k: v for k, v in _stamps(outdir, "*smoothcut*").items() if k in stamps} == stamps


def test_killed_render_resumes_smooth_cuts_without_redoing_finished_ones(tmp_path, shared_data):
    small = write_video(tmp_path / "small.mp4", _gopro(shared_data, (96, 54), 60), rate=RATE, codec="h264")
    large = write_video(tmp_path / "large.mp4", _gopro(shared_data, (320, 182), 60), rate=RATE, codec="h264")
    timeline = otio.schema.Timeline(name="two cuts")
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    for media, name in ((small, "small.mp4"), (large, "large.mp4")):
        track.append(_clip(name, media, 0, 20, 60))
        track.append(_clip(name, media, 22, 20, 60))  # a 2-frame jump cut
    timeline.tracks.append(track)
    cut = tmp_path / "cuts.otio"
    otio.adapters.write_to_file(timeline, str(cut))
    outdir = tmp_path / "out"
    # 32 flow frames at 320x182 (two synthesis calls) keep the second cut's temporary in place for
    # seconds; the first cut (96x54) is quick.
    command = [sys.executable, "-m", "engine.cli", "render", str(cut), "-o", str(outdir)]
    command += ["--smooth-cuts", "32", "--model", "flow", "--codec", "ffv1", "--no-engine", "--jobs", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_sidecar = "V1_000-001_smoothcut_*.mkv.chronoscope.json"
    stop_mid_write(child, first_sidecar, outdir, ".V1_002-003_smoothcut_*.partial-*")
    assert list(outdir.glob(first_sidecar)), "the first smooth cut did not finish before the kill"
    assert list(outdir.glob(".V1_002-003_smoothcut_*.partial-*")), (
        "the kill should have hit the second one being written"
    )
    assert not list(outdir.glob("V1_002-003_smoothcut_*.mkv")), (
        "the second smooth cut finished before the kill; the test needs it cut short"
    )
    (first_out,) = outdir.glob("V1_000-001_smoothcut_*.mkv")
    first_stamp = first_out.stat().st_mtime_ns

    summary = render_timeline(cut, outdir, model="flow", codec="ffv1", smooth_cut_frames=32)
    assert [(c["first_index"], c["status"]) for c in summary.smooth_cuts] == [(0, "resumed"), (2, "rendered")]
    assert first_out.stat().st_mtime_ns == first_stamp
    with FrameReader(Path(summary.smooth_cuts[1]["output"])) as reader:
        assert reader.frame_count == 32
    assert not [p.name for p in outdir.iterdir() if ".partial-" in p.name]
    after = read_timeline(Path(summary.timeline_path))
    assert after.duration() == timeline.duration()
    assert [item.name for item in after.tracks[0]] == [
        "small.mp4",
        "smooth cut small.mp4 > small.mp4",
        "small.mp4",
        "large.mp4",
        "smooth cut large.mp4 > large.mp4",
        "large.mp4",
    ]


def _jump_cuts(folder: Path, media: Path, name: str, starts: tuple[int, ...]) -> Path:
    """A timeline of 12-frame clips of ``media`` starting at ``starts``: a jump cut between each."""
    timeline = otio.schema.Timeline(name=name)
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    for start in starts:
        track.append(_clip(Path(media).name, media, start, 12, 60))
    timeline.tracks.append(track)
    path = folder / f"{name}.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


def test_ffv1_mkv_media_is_smoothed_and_records_keep_timeline_order(tmp_path, shared_data):
    media = write_video(
        tmp_path / "interview.mkv", _gopro(shared_data, (96, 54), 60), rate=RATE, codec="ffv1"
    )
    with pytest.raises(CorruptMediaError):
        probe(media, scan_packets=False)  # our own FFV1 .mkv has no frame count in its header
    cut = _jump_cuts(tmp_path, media, "mkv", (0, 14, 28))  # 2-frame jumps: cuts #0-#1 and #1-#2
    outdir = tmp_path / "out"

    first = render_timeline(cut, outdir, model="blend", codec="ffv1", smooth_cut_frames=2)
    assert [(c["first_index"], c["status"]) for c in first.smooth_cuts] == [(0, "rendered"), (1, "rendered")]
    assert [(c["before_file_frame"], c["after_file_frame"]) for c in first.smooth_cuts] == [
        (10, 15),
        (24, 29),
    ]
    after = read_timeline(Path(first.timeline_path))
    assert after.duration() == read_timeline(cut).duration()
    assert len(list(after.tracks[0])) == 5

    # The earlier cut lost its sidecar (a kill before it was written): it is rendered again, the
    # later one resumes, and the records still come in timeline order.
    (earlier_sidecar,) = outdir.glob("V1_000-001_smoothcut_*.mkv.chronoscope.json")
    earlier_sidecar.unlink()
    second = render_timeline(cut, outdir, model="blend", codec="ffv1", smooth_cut_frames=2)
    assert [(c["first_index"], c["status"]) for c in second.smooth_cuts] == [(0, "rendered"), (1, "resumed")]
    written = json.loads((outdir / f"{cut.stem}.render-summary.json").read_text())
    assert [(c["first_index"], c["status"]) for c in written["smooth_cuts"]] == [
        (0, "rendered"),
        (1, "resumed"),
    ]


def test_unreadable_media_fails_its_cut_and_the_render_goes_on(tmp_path, shared_data, capsys):
    good = write_video(tmp_path / "good.mkv", _gopro(shared_data, (96, 54), 60), rate=RATE, codec="ffv1")
    broken = tmp_path / "broken.mov"
    broken.write_bytes(b"\0\0\0\x14ftypqt  " + bytes(range(256)) * 8)
    timeline = otio.schema.Timeline(name="mixed")
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    for media, start in ((broken, 0), (broken, 14), (good, 0), (good, 14)):
        track.append(_clip(media.name, media, start, 12, 60))
    timeline.tracks.append(track)
    cut = tmp_path / "mixed.otio"
    otio.adapters.write_to_file(timeline, str(cut))
    outdir = tmp_path / "out"

    code = main(
        ["render", str(cut), "-o", str(outdir), "--smooth-cuts", "2", "--model", "blend"]
        + ["--codec", "ffv1", "--no-engine"]
    )
    captured = capsys.readouterr()
    text = captured.out
    assert code == 1, "a smooth cut that was asked for and failed makes the render exit non-zero"
    assert "chronoscope render: smooth cut failed: V1 #0-#1:" in captured.err

    summary = json.loads((outdir / "mixed.render-summary.json").read_text())
    records = summary["smooth_cuts"]
    assert [(c["first_index"], c["status"]) for c in records] == [(0, "failed"), (2, "rendered")]
    assert "broken.mov" in records[0]["reason"] and "cannot be opened" in records[0]["reason"]
    assert f"smooth cut failed: V1 #0-#1: {records[0]['reason']}" in text
    assert "smooth cuts: 1 rendered, 0 skipped (already rendered), 1 not smoothed" in text
    after = read_timeline(outdir / "mixed.chronoscope.otio")
    assert [item.name for item in after.tracks[0]] == [
        "broken.mov",
        "broken.mov",
        "good.mkv",
        "smooth cut good.mkv > good.mkv",
        "good.mkv",
    ]
    listed = results_of(after)["render"]["smooth_cuts"]
    assert [(c["first_index"], c["status"]) for c in listed] == [(0, "failed"), (2, "rendered")]


def test_a_short_clip_between_two_jump_cuts_is_not_eaten_by_both(tmp_path, shared_data):
    """A 3-frame clip between two jumps: both 4-frame cuts were made, leaving it -1 frames long and
    the new timeline unreadable, with exit 0."""
    media = write_video(tmp_path / "shot.mp4", _gopro(shared_data, (160, 90), 100), rate=RATE, codec="h264")
    timeline = otio.schema.Timeline(name="short middle")
    video = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    for name, start, frames in (("a", 0, 40), ("b", 45, 3), ("c", 52, 38)):
        video.append(otio.schema.Clip(
            name=name,
            media_reference=otio.schema.ExternalReference(
                target_url=str(media), available_range=time_range(0, 100, RATE)
            ),
            source_range=time_range(start, frames, RATE),
        ))
    timeline.tracks.append(video)
    path = tmp_path / "cut.otio"
    otio.adapters.write_to_file(timeline, str(path))
    summary = render_timeline(path, tmp_path / "out", model="blend", codec="h264", smooth_cut_frames=4)
    statuses = [(cut["first_index"], cut["status"]) for cut in summary.smooth_cuts]
    assert statuses == [(0, "rendered"), (1, "skipped")]
    assert "too few for another" in summary.smooth_cuts[1]["reason"]
    new = read_timeline(Path(summary.timeline_path))
    for segment in list_segments(new, check_time_warps=False):
        assert segment.record_frames > 0
    assert sum(s.record_frames for s in list_segments(new, check_time_warps=False)) == 81


def test_clips_whose_source_frames_miss_their_media_are_not_smoothed_from_frame_0(tmp_path, shared_data):
    """The media starts at 01:00:00:00; the timeline's clips lie an hour before it."""
    media = write_video(tmp_path / "shot.mp4", _gopro(shared_data, (160, 90), 60), rate=RATE, codec="h264")
    timeline = otio.schema.Timeline(name="missed")
    video = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    hour = 107892  # 01:00:00;00 in frames at 29.97 drop-frame-free counting
    for start, frames in ((0, 20), (26, 20)):
        video.append(otio.schema.Clip(
            name="shot",
            media_reference=otio.schema.ExternalReference(
                target_url=str(media), available_range=time_range(hour, 60, RATE)
            ),
            source_range=time_range(start, frames, RATE),
        ))
    timeline.tracks.append(video)
    path = tmp_path / "cut.otio"
    otio.adapters.write_to_file(timeline, str(path))
    summary = render_timeline(path, tmp_path / "out", model="blend", codec="h264", smooth_cut_frames=4)
    (cut,) = summary.smooth_cuts
    assert cut["status"] == "failed" and "outside its media" in cut["reason"]


def test_a_jump_cut_in_variable_frame_rate_media_morphs_between_the_frames_shown(tmp_path):
    """A phone recording that stalled (no frames for 20 to 29 x 1001/30000 s): clips on the
    timeline count time, so the clip from 36 shows the frame recorded then, file frame 26, and
    the smooth cut morphs towards file frame 28 (by index it took frame 38, 10 frames late)."""
    from media_factory import render_clip

    stamps = list(range(20)) + list(range(30, 70))
    media = render_clip(tmp_path / "phone.mp4", rate=RATE, pts=stamps, time_base=1 / RATE, size=(64, 48))
    timeline = otio.schema.Timeline(name="vlog")
    video = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    video.append(_clip("phone.mp4", media, 0, 20, 70))
    video.append(_clip("phone.mp4", media, 36, 20, 70))
    timeline.tracks.append(video)
    cut = tmp_path / "vlog.otio"
    otio.adapters.write_to_file(timeline, str(cut))
    summary = render_timeline(cut, tmp_path / "out", model="blend", codec="h264", smooth_cut_frames=4)
    [record] = summary.smooth_cuts  # (the test pattern's frames differ like a cut: skipped)
    assert (record["before_file_frame"], record["after_file_frame"]) == (17, 28)


def test_cuts_between_different_media_are_not_listed_and_names_are_as_the_help_says(
    tmp_path, shared_data, capsys
):
    """A real cut (another file) is left alone and not listed, even next to a retimed clip; a
    smooth cut's file is named as `render --help` says."""
    with FrameReader(shared_data / "clips" / "gopro-max-heromode.mp4", size=(160, 90)) as reader:
        frames = [frame.image for frame, _ in zip(reader.frames(), range(40), strict=False)]
    media = write_video(tmp_path / "talk.mp4", frames, rate=RATE, codec="h264", quality=14)
    other = write_video(tmp_path / "cutaway.mp4", [255 - f for f in frames], rate=RATE, codec="h264")
    timeline = otio.schema.Timeline(name="cuts")
    video = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    video.append(_clip("talk a", media, 0, 10, 40))
    video.append(_clip("talk b", media, 11, 10, 40))  # a frame later: a jump cut
    slowed = _clip("cutaway", other, 0, 10, 40)  # another file, slowed: a real cut
    slowed.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    video.append(slowed)
    timeline.tracks.append(video)
    otio.adapters.write_to_file(timeline, str(tmp_path / "cuts.otio"))
    outdir = tmp_path / "out"

    assert main(["render", str(tmp_path / "cuts.otio"), "-o", str(outdir), "--smooth-cuts", "2",
                 "--model", "blend", "--codec", "ffv1", "--no-engine"]) == 0
    out = capsys.readouterr().out
    cuts = json.loads((outdir / "cuts.render-summary.json").read_text())["smooth_cuts"]
    assert [(cut["first_index"], cut["status"]) for cut in cuts] == [(0, "rendered")]
    assert "#1-#2" not in out
    assert "smooth cuts: 1 rendered, 0 skipped (already rendered), 0 not smoothed" in out

    with pytest.raises(SystemExit):
        main(["render", "--help"])
    helped = " ".join(capsys.readouterr().out.split())
    assert "(OUTDIR/<track>_<a>-<b>_smoothcut_<hash>.<ext>," in helped
    assert "cuts between different media are real cuts, left alone and not listed" in helped
    (made,) = outdir.glob("*smoothcut*.mkv")
    assert re.fullmatch(r"V1_000-001_smoothcut_[0-9a-f]{10}\.mkv", made.name)
