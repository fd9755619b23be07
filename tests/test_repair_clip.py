"""`chronoscope repair`: dropped frames (timestamp gaps, frame jumps) and duplicates filled by
synthesis, on clips the tests render with PyAV (expected answers written down) and on a real clip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from media_factory import frame_pattern, render_clip, render_images

from engine.cli import main
from engine.errors import OutputExistsError, UnsupportedOptionError
from engine.media import FrameReader, probe
from engine.media.frame_slots import clip_grid
from engine.repair import analyse_clip, frame_grid, repair_clip
from engine.retime import sidecar_path

RATE = Fraction(25)
SIZE = (160, 120)


def _texture(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (SIZE[1] * 2, SIZE[0] * 3, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 1.5)


def _picture(texture: np.ndarray, index: int) -> np.ndarray:
    """Frame ``index`` of a camera pan over a texture: 2.5 px right and 0.7 px down per frame."""
    move = np.float32([[1, 0, -20 - index * 2.5], [0, 1, -10 - index * 0.7]])
    return cv2.warpAffine(texture, move, SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _write(path: Path, images: list[np.ndarray], pts: list[int], rate: Fraction = RATE) -> Path:
    """H.264 (crf 12) with frame k at pts ``pts[k]`` in a time base of 1 / rate."""
    return render_images(path, images, pts, rate)


def _frames(path: Path) -> list:
    with FrameReader(path) as reader:
        return list(reader)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-9)))


@pytest.fixture(scope="module")
def pan() -> list[np.ndarray]:
    texture = _texture()
    return [_picture(texture, i) for i in range(32)]


def test_timestamp_gaps_are_filled_at_their_times(tmp_path, pan):
    dropped = (8, 17, 18)
    kept = [i for i in range(30) if i not in dropped]
    clip = _write(tmp_path / "gaps.mp4", [pan[i] for i in kept], kept)
    assert probe(clip).video_stream.frame_count == 27

    report = repair_clip(clip, tmp_path / "fixed.mp4", model="flow", quality=12)

    frames = _frames(tmp_path / "fixed.mp4")
    assert len(frames) == 30 == report.output_frames == report.frames_written
    assert [f.time_s for f in frames] == [Fraction(n, 25) for n in range(30)]
    assert probe(tmp_path / "fixed.mp4").video_stream.frame_rate == RATE
    assert [(f.kind, f.first_output_frame, f.last_output_frame, f.times) for f in report.fills] == [
        ("timestamp_gap", 8, 8, ["1/2"]),
        ("timestamp_gap", 17, 18, ["1/3", "2/3"]),
    ]
    assert report.counts() == {"timestamp_gap": 3, "duplicate": 0, "jump": 0, "damaged": 0}
    for index in dropped:
        made, nearest = frames[index].image, pan[index - 1] if index != 18 else pan[19]
        # The synthesized frame is the dropped one, clearly better than repeating a neighbour.
        assert _psnr(made, pan[index]) > _psnr(nearest, pan[index]) + 4
        assert _psnr(made, pan[index]) > 30
    for index in kept:
        assert _psnr(frames[index].image, pan[index]) > 30
    sidecar = json.loads(sidecar_path(tmp_path / "fixed.mp4").read_text())
    assert sidecar["changed"] is True and sidecar["counts"]["timestamp_gap"] == 3
    assert all(0.0 <= r <= 1.0 for fill in sidecar["fills"] for r in fill["risk"])


def test_duplicate_runs_become_in_betweens(tmp_path, pan):
    shown = list(range(30))
    shown[10] = shown[11] = 9  # frames 10, 11 repeat 9: t = 1/3, 2/3 between 9 and 12
    shown[20] = 19
    clip = _write(tmp_path / "dups.mp4", [pan[i] for i in shown], list(range(30)))

    report = repair_clip(clip, tmp_path / "fixed.mkv", model="flow")

    frames = _frames(tmp_path / "fixed.mkv")
    assert len(frames) == 30
    assert [(f.kind, f.duplicates_replaced, f.times) for f in report.fills] == [
        ("duplicate", [10, 11], ["1/3", "2/3"]),
        ("duplicate", [20], ["1/2"]),
    ]
    for index in (10, 11, 20):
        assert _psnr(frames[index].image, pan[index]) > _psnr(pan[shown[index]], pan[index]) + 4


def test_copies_under_heavy_compression_are_told_by_the_motion_around_them(tmp_path, pan):
    """At crf 32 the copy of frame 19 differs from it by compression noise over the fixed
    tolerance (a 99.5th percentile of 0.014 against 0.012): it was kept as a frame. Between frames
    that move it changes a fifth as much as they do, so it is found as a copy."""
    shown = list(range(30))
    shown[10], shown[20] = 9, 19
    clip = render_images(tmp_path / "crf32.mp4", [pan[i] for i in shown], list(range(30)), RATE, crf=32)

    plan = analyse_clip(clip)

    assert [(f.kind, f.duplicates_replaced) for f in plan.fills] == [("duplicate", [10]), ("duplicate", [20])]
    continuous = render_images(tmp_path / "pan.mp4", pan[:30], list(range(30)), RATE, crf=32)
    assert analyse_clip(continuous).fills == []


def test_frame_jump_without_timestamp_gap_is_inserted(tmp_path, pan):
    shown = [i for i in range(31) if i != 14]  # frame 14 lost, timestamps re-stamped 0..29
    clip = _write(tmp_path / "jump.mp4", [pan[i] for i in shown], list(range(30)))

    report = repair_clip(clip, tmp_path / "fixed.mp4", model="flow")

    frames = _frames(tmp_path / "fixed.mp4")
    assert len(frames) == 31 and [f.time_s for f in frames][-1] == Fraction(30, 25)
    assert [(f.kind, f.first_output_frame, f.jump_frames) for f in report.fills] == [("jump", 14, 1)]
    assert _psnr(frames[14].image, pan[14]) > _psnr(pan[13], pan[14]) + 4
    assert _psnr(frames[30].image, pan[30]) > 29.5  # a kept frame after two H.264 encodes (29.99 dB)

    listed = repair_clip(clip, tmp_path / "listed.mp4", model="flow", jumps="report")
    assert listed.fills == [] and listed.output_frames == 30
    assert listed.jumps_reported == [{"before_frame": 13, "after_frame": 14, "missing_frames": 1}]


def test_clean_clip_is_unchanged_and_long_holds_and_end_repeats_are_kept(tmp_path, pan):
    clean = _write(tmp_path / "clean.mp4", pan[:30], list(range(30)))
    plan = analyse_clip(clean)
    assert plan.fills == [] and plan.notes == [] and plan.output_frames == 30

    shown = list(range(30))
    shown[5:15] = [4] * 10  # a 10-frame hold: longer than 7 repeats, kept
    shown[27:] = [26] * 3  # repeats at the very end: nothing after them to aim at
    held = _write(tmp_path / "held.mp4", [pan[i] for i in shown], list(range(30)))
    plan = analyse_clip(held)
    assert plan.fills == []
    assert plan.notes == [
        "frames 5 to 14 repeat frame 4 (10 repeats, more than 7): kept as a hold",
        "frames 27 to 29 repeat frame 26 at the end of the clip: kept (no later frame to synthesize toward)",
    ]
    assert len(analyse_clip(held, max_duplicate_repeats=10).fills) == 1


def test_real_clip_dropped_frames_and_clean_copy(tmp_path, shared_data):
    source = shared_data / "clips" / "gopro-max-heromode.mp4"  # 848x480 hand-held, 29.97 fps
    with FrameReader(source, size=(320, 182)) as reader:
        truth = [frame.image for frame, _ in zip(reader.frames(), range(36), strict=False)]
    clean = _write(tmp_path / "gopro.mp4", truth, list(range(36)), Fraction(24))
    assert analyse_clip(clean).fills == []
    report = repair_clip(clean, tmp_path / "clean_out.mp4", model="flow")
    assert (
        not report.changed
        and report.frames_synthesized == 0
        and len(_frames(tmp_path / "clean_out.mp4")) == 36
    )

    dropped = (12, 24)
    kept = [i for i in range(36) if i not in dropped]
    gaps = _write(tmp_path / "gopro_gaps.mp4", [truth[i] for i in kept], kept, Fraction(24))
    report = repair_clip(gaps, tmp_path / "fixed.mov", model="flow")
    frames = _frames(tmp_path / "fixed.mov")
    assert len(frames) == 36 and frames[-1].time_s == Fraction(35, 24)
    assert [f.first_output_frame for f in report.fills] == [12, 24]
    for index in dropped:
        nearest = max(_psnr(truth[index - 1], truth[index]), _psnr(truth[index + 1], truth[index]))
        # Measured: 33.0 dB against 28.7 for the better neighbour.
        assert _psnr(frames[index].image, truth[index]) > nearest + 2.5


def test_audio_is_copied_and_cli_reports(tmp_path, capsys):
    clip = render_clip(
        tmp_path / "tone.mp4", rate=RATE, pts=[0, 1, 2, 4, 5, 6, 7], time_base=1 / RATE, audio=True
    )
    assert main(["repair", str(clip), "-o", str(tmp_path / "out.mp4"), "--model", "blend", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["output_frames"] == 8 and printed["audio"] == "copied"
    assert printed["fills"][0]["first_output_frame"] == 3
    info = probe(tmp_path / "out.mp4")
    assert info.audio and info.video_stream.frame_count == 8

    assert main(["repair", str(clip), "-o", str(tmp_path / "out2.mkv"), "--model", "blend"]) == 0
    text = capsys.readouterr().out
    assert "1 synthesized by blend (1 for timestamp gaps" in text
    assert "frame 3: timestamp_gap between source frames 2 and 3, t = 1/2" in text


def _camera_clip_with_pcm(path: Path, *, beep_at_s: float = 0.5, rate: int = 48000) -> Path:
    """A .mov as cameras write them: 25 frames with frame 5 missing (a timestamp gap), and 16-bit
    PCM sound, silent but for a 60 ms 1 kHz beep (Hann-shaped) at ``beep_at_s``."""
    length = round(0.06 * rate)
    sound = np.zeros(rate, np.float32)
    start = round(beep_at_s * rate)
    beep = np.sin(2 * np.pi * 1000 * np.arange(length) / rate) * np.hanning(length)
    sound[start : start + length] = 0.8 * beep
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=RATE)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.time_base = video.codec_context.time_base = 1 / RATE
        audio = container.add_stream("pcm_s16le", rate=rate)
        audio.layout = "mono"
        for n in (n for n in range(25) if n != 5):
            frame = av.VideoFrame.from_ndarray(frame_pattern(n), format="rgb24")
            frame.pts, frame.time_base = n, 1 / RATE
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        samples = (sound * 32767).astype(np.int16)[None, :]
        chunk = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        chunk.sample_rate, chunk.pts, chunk.time_base = rate, 0, Fraction(1, rate)
        for packet in audio.encode(chunk):
            container.mux(packet)
        for packet in audio.encode(None):
            container.mux(packet)
    return path


def test_pcm_sound_going_into_mp4_is_reencoded_in_sync(tmp_path, caplog, capsys):
    """.mp4 cannot hold PCM: repair re-encodes it as AAC (an INFO line says so), the beep still at
    its time, where it refused and pointed at options repair does not have."""
    clip = _camera_clip_with_pcm(tmp_path / "camera.mov")
    out = tmp_path / "fixed.mp4"
    caplog.set_level("INFO")
    report = repair_clip(clip, out, model="blend")
    assert report.audio == "re-encoded" and report.frames_synthesized == 1
    assert any("re-encoded as AAC" in r.message and r.levelname == "INFO" for r in caplog.records)
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
        heard = np.concatenate([frame.to_ndarray()[0] for frame in container.decode(audio=0)])
    energy = np.square(heard[: 48000].astype(np.float64))
    centre_s = float((np.arange(energy.size) * energy).sum() / energy.sum()) / 48000
    assert centre_s == pytest.approx(0.5 + (2880 - 1) / 2 / 48000, abs=0.002)
    # into .mov the PCM is copied as it is
    assert repair_clip(clip, tmp_path / "fixed.mov", model="blend").audio == "copied"


def test_repair_audio_drop_and_bad_modes(tmp_path, capsys):
    clip = _camera_clip_with_pcm(tmp_path / "camera.mov")
    out = tmp_path / "quiet.mp4"
    assert main(["repair", str(clip), "-o", str(out), "--model", "blend", "--audio", "drop"]) == 0
    assert "audio dropped" in capsys.readouterr().out
    assert probe(out).audio == []
    with pytest.raises(SystemExit):
        main(["repair", str(clip), "-o", str(tmp_path / "x.mp4"), "--audio", "stretch"])
    assert "invalid choice: 'stretch'" in capsys.readouterr().err
    with pytest.raises(UnsupportedOptionError, match="use one of: keep, drop"):
        repair_clip(clip, tmp_path / "y.mp4", model="blend", audio="copy")


def test_dry_run_lists_without_writing(tmp_path, capsys):
    clip = render_clip(tmp_path / "gaps.mp4", rate=RATE, pts=[0, 1, 2, 5, 6, 7], time_base=1 / RATE)
    assert main(["repair", str(clip), "--dry-run", "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert (planned["source_frames"], planned["output_frames"], planned["frames_to_synthesize"]) == (6, 8, 2)
    assert planned["fills"][0]["times"] == ["1/3", "2/3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gaps.mp4"]
    assert main(["repair", str(clip), "--dry-run", "-o", str(tmp_path / "x.mp4")]) == 2
    assert main(["repair", str(clip)]) == 2
    assert "give -o OUT" in capsys.readouterr().err


def test_dry_run_names_a_single_frame_as_one_frame(tmp_path, capsys):
    clip = render_clip(tmp_path / "gaps.mp4", rate=RATE, pts=[0, 1, 2, 4, 5, 6, 9, 10], time_base=1 / RATE)
    assert main(["repair", str(clip), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "  output frame 3: timestamp_gap between source frames 2 and 3" in out
    assert "  output frames 7-8: timestamp_gap between source frames 5 and 6" in out
    assert "3-3" not in out


def test_bad_input_is_refused_cleanly(tmp_path, pan):
    variable = _write(tmp_path / "vfr.mp4", pan[:8], [0, 1, 2, 3, 5, 6, 8, 9], Fraction(100))
    assert analyse_clip(variable).output_frames == 10
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError):
        repair_clip(variable, out, model="blend")
    assert out.read_bytes() == b"keep me"
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(variable.read_bytes()[: variable.stat().st_size // 3])
    assert main(["repair", str(damaged), "-o", str(tmp_path / "x.mp4"), "--model", "blend"]) != 0
    assert not (tmp_path / "x.mp4").exists()
    assert list(tmp_path.glob(".*partial*")) == []


def _phone_stamps(frames: int, rate: float, jitter_ms: float, seed: int = 5) -> list[int]:
    """Presentation times in 1/90000 s of a phone clip whose rate drifts off its nominal one."""
    rng = np.random.default_rng(seed)
    return [round(n * 90000 / rate + rng.uniform(-jitter_ms, jitter_ms) * 90) for n in range(frames)]


def test_a_drifting_phone_clip_is_repaired_on_the_grid_retime_conforms_it_to(tmp_path):
    """A phone clip at 29.88 fps, +-1 ms of jitter: repair wrote it at its own mean interval's rate
    (13410000/449011 fps in an audit, a rate no editor uses) where retime put it on 29.97."""
    pts = _phone_stamps(300, 29.88, 1.0)
    clip = render_clip(tmp_path / "phone.mp4", rate=Fraction(30), pts=pts, time_base=Fraction(1, 90000))
    video = probe(clip).video_stream
    expected = clip_grid(clip, video)
    assert expected.rate == Fraction(30000, 1001) and expected.empty_slots >= 1
    plan = analyse_clip(clip, find_jumps=False)
    assert plan.grid.rate == expected.rate
    assert plan.output_frames == expected.slot_count
    assert [plan.output_positions[i] for i in expected.frames.tolist()] == expected.slots.tolist()
    assert sum(fill.missing_timestamps for fill in plan.fills) == expected.empty_slots
    assert "placed by their timestamps on a 30000/1001 fps grid" in plan.grid_notes[0]
    report = repair_clip(clip, tmp_path / "fixed.mp4", model="blend", plan=plan)
    written = probe(tmp_path / "fixed.mp4").video_stream
    assert (report.output_rate, written.frame_count) == ("30000/1001", expected.slot_count)
    assert written.frame_rate == expected.rate and not written.is_vfr
    # the picture still lasts as long as the recording
    assert abs(float(written.duration_s) - float(video.duration_s)) < 1.5 / 30


def test_a_stalled_variable_rate_clip_is_repaired_by_its_timestamps(tmp_path, pan):
    """A recording that stalls for 0.2 s and stamps two frames 4 ms apart was refused as
    variable-frame-rate; it is conformed as retime does it: the stall filled, the crowded frame
    left out, and its sound kept in time."""
    stamps = [n * 40 for n in range(12)] + [11 * 40 + 4] + [n * 40 + 200 for n in range(12, 23)]
    images = pan[:24]
    clip = render_images(tmp_path / "stall.mp4", images, stamps, Fraction(1000))
    video = probe(clip).video_stream
    assert video.is_vfr
    expected = clip_grid(clip, video)
    assert expected.rate == 25 and expected.frames_left_out == 1 and expected.empty_slots == 5
    plan = analyse_clip(clip)
    assert plan.grid.rate == 25 and plan.output_frames == expected.slot_count
    assert [fill.missing_timestamps for fill in plan.fills] == [5]
    assert plan.fills[0].duplicates_replaced == [] and plan.kept_frames[12] is False
    assert "frame 12 comes less than a quarter frame after frame 11" in plan.grid_notes[1]
    report = repair_clip(clip, tmp_path / "fixed.mp4", model="blend", plan=plan)
    assert report.grid_notes == plan.grid_notes
    assert (report.frames_written, report.frames_synthesized) == (expected.slot_count, 5)
    written = _frames(tmp_path / "fixed.mp4")
    assert len(written) == expected.slot_count
    # the frame after the stall is the source's frame 13, in its slot (17: frame 11's, then 5 made)
    likeness = [_psnr(frame.image, images[13]) for frame in written]
    assert int(np.argmax(likeness)) == 17 and likeness[17] > 30


def test_frame_grid_fits_rounded_millisecond_timestamps():
    pts = np.array([round(n * 1001 / 30) for n in range(40) if n not in (10, 11)], dtype=np.int64)
    grid = frame_grid(pts, Fraction(1, 1000), Fraction(30000, 1001))
    assert grid.rate == Fraction(30000, 1001)
    assert grid.slot_count == 40 and grid.slots[10] == 12


@pytest.mark.parametrize("rate", [Fraction(30000, 1001), Fraction(60000, 1001), Fraction(24000, 1001)])
def test_a_matroska_grid_is_the_standard_rate_its_frames_fit(rate):
    """Matroska gives whole milliseconds and a stream rate averaged over the dropped frames: the
    repair of a 29.97 fps recording was written at 21250/709 fps."""
    pts = np.array([round(n * 1000 / rate) for n in range(90) if n not in (40, 41, 42)], dtype=np.int64)
    measured = Fraction(len(pts) - 1) / (Fraction(int(pts[-1] - pts[0]), 1000))
    for declared in (None, measured):
        grid = frame_grid(pts, Fraction(1, 1000), declared)
        assert grid.rate == rate and grid.slot_count == 90


def test_a_clip_off_every_standard_rate_keeps_its_own():
    pts = np.array([n * 3005 for n in range(300)], dtype=np.int64)  # 29.95 fps at 90 kHz
    assert frame_grid(pts, Fraction(1, 90000), None).rate == Fraction(90000, 3005)


def test_a_held_moment_is_kept_and_copies_standing_in_for_lost_frames_are_replaced(tmp_path, shared_data):
    """A dog pausing for five frames (with sensor noise) was 'repaired' into a slow crawl: the
    motion after the copies (one frame's worth, not six) tells a hold from lost frames."""
    with FrameReader(shared_data / "clips" / "sam2-dog.mp4", size=(320, 180)) as reader:
        frames = [frame.image for frame, _ in zip(reader.frames(), range(60), strict=False)]
    rng = np.random.default_rng(1)

    def noisy(images: list[np.ndarray]) -> list[np.ndarray]:
        return [np.clip(i + rng.normal(0, 2, i.shape), 0, 255).astype(np.uint8) for i in images]

    frames = noisy(frames)  # the copies are exact copies, as a camera or an encoder repeats a frame
    held = frames[:40] + [frames[39]] * 5 + frames[40:55]
    lost = frames[:40] + [frames[39]] * 5 + frames[45:]
    plan = analyse_clip(_write(tmp_path / "held.mp4", held, list(range(len(held)))))
    assert plan.fills == []
    assert len(plan.notes) == 1 and "a held moment, kept" in plan.notes[0]
    plan = analyse_clip(_write(tmp_path / "lost.mp4", lost, list(range(len(lost)))))
    assert [(f.kind, f.before_frame, f.after_frame) for f in plan.fills] == [("duplicate", 39, 45)]


def test_a_phone_clip_a_little_off_its_declared_rate_is_not_taken_for_variable_rate():
    """29.95 fps with half a millisecond of jitter, declared 29.97: the declared rate drifted a
    frame off after a few hundred frames and the clip was refused as variable-frame-rate."""
    rng = np.random.default_rng(1)
    pts = [n * 3005 + (int(rng.integers(-50, 51)) if n else 0) for n in range(300) if n not in (150, 151)]
    grid = frame_grid(np.array(pts, dtype=np.int64), Fraction(1, 90000), Fraction(30000, 1001))
    assert grid.slot_count == 300 and grid.slots[150] == 152
    assert abs(float(grid.rate) - 90000 / 3005) < 0.01


_REFUSE_ANALYSIS = """
import sys
import engine.repair.run
import engine.retime.clip


def analysed(*args, **kwargs):
    raise SystemExit("the clip was analysed before the output folder was checked")


engine.repair.run.analyse_clip = analysed
engine.retime.clip.render_mapped = analysed
from engine.cli import main

sys.exit(main(sys.argv[1:]))
"""


def _run_with_read_only_folder(folder: Path, argv: list[str]) -> subprocess.CompletedProcess:
    """Run ``chronoscope ARGV`` with ``folder`` read-only, analysis and rendering replaced by a
    failure (so a refusal is known to come before any work): as root (who writes anywhere) in a
    mount namespace of its own where ``folder`` is a read-only bind mount, as the audit had it;
    as anyone else with the folder's mode made read-only."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    command = [sys.executable, "-c", _REFUSE_ANALYSIS, *argv]
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
        finally:
            folder.chmod(0o755)
    if shutil.which("unshare") is None:
        pytest.skip("running as root without unshare: no way to make a folder read-only for root")
    remount = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    namespace = ["unshare", "--mount", "--propagation", "private", "sh", "-c", remount, str(folder)]
    probe_run = subprocess.run([*namespace, "true"], capture_output=True, text=True, timeout=60, check=False)
    if probe_run.returncode != 0:
        pytest.skip(f"no read-only bind mount here: {probe_run.stderr.strip()}")
    inside = [*namespace, *command]
    return subprocess.run(inside, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("command", ["repair", "retime"])
def test_an_output_folder_that_cannot_be_written_is_named_before_any_work(tmp_path, command):
    """Before, repair analysed the whole clip (39 s on a 10 s 720p clip) and then failed naming
    its hidden temporary (`.cups.partial-xxx.mov: Read-only file system`); retime named the
    temporary too."""
    clip = render_clip(tmp_path / "clip.mp4", rate=RATE, frame_count=12)
    folder = tmp_path / "locked"
    folder.mkdir()
    argv = [command, str(clip), "-o", str(folder / "out.mov"), "--model", "blend"]
    if command == "retime":
        argv += ["--speed", "1/2"]
    done = _run_with_read_only_folder(folder, argv)
    error = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    assert done.returncode == 2, done.stderr
    what = "repaired clip" if command == "repair" else "retimed clip"
    assert f"chronoscope {command}: error: cannot write the {what} into {folder}: " in error, error
    assert ("Read-only file system" if os.geteuid() == 0 else "Permission denied") in error
    assert ".partial" not in done.stderr and "analysed" not in done.stderr
    assert list(folder.iterdir()) == []


def _small_mover(texture: np.ndarray, index: int) -> np.ndarray:
    """A locked-off shot: a still texture and a 10 px square crossing it 2 px a frame."""
    picture = texture[: SIZE[1], : SIZE[0]].copy()
    picture[50:60, 20 + 2 * index : 30 + 2 * index] = 255
    return picture


def test_where_too_little_moves_to_find_a_lost_frame_repair_says_so(tmp_path, capsys):
    """A frame lost without a timestamp gap in a locked-off shot with a small mover cannot be told
    from motion (the picture's motion is far under the floor): repair said "nothing to repair: no
    dropped or duplicated frames found", as if it had looked. Now it names the frames it could not
    judge, in the report and on the command line; a pan (judged) names none."""
    texture = _texture(seed=5)
    shown = [i for i in range(31) if i != 14]
    clip = _write(tmp_path / "street.mp4", [_small_mover(texture, i) for i in shown], list(range(30)))
    plan = analyse_clip(clip)
    assert plan.fills == []
    assert any(first <= 13 and 14 <= last for first, last in plan.jumps_unjudged), plan.jumps_unjudged
    assert main(["repair", str(clip), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "not judged for frames lost without a timestamp gap: source frames" in out, out
    report = repair_clip(clip, tmp_path / "fixed.mp4", model="blend")
    assert report.fills == [] and report.jumps_unjudged == plan.jumps_unjudged
    sidecar = json.loads(sidecar_path(tmp_path / "fixed.mp4").read_text())
    assert sidecar["jumps_unjudged"] == plan.jumps_unjudged
    pan = [_picture(texture, i) for i in range(30)]
    assert analyse_clip(_write(tmp_path / "pan.mp4", pan, list(range(30)))).jumps_unjudged == []
