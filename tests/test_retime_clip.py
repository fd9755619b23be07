"""retime_clip and `chronoscope retime` on small clips rendered with PyAV: frame counts, exact
timestamps, content of source and generated frames, scene cuts, ramps, audio stretch, bounded
memory, and the errors bad input gets."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media_factory import (
    combing,
    frame_pattern,
    render_clip,
    render_interlaced_clip,
    render_multitrack_clip,
    render_with_sound,
    truncated_copy,
    write_text_file,
)

from engine.cli import main
from engine.errors import (
    ChronoscopeError,
    FrameOutOfRangeError,
    JobCancelledError,
    MediaNotFoundError,
    ModelNotFoundError,
    OutputExistsError,
    RetimeSpeedError,
    UnsupportedOptionError,
)
from engine.media import FrameReader, probe
from engine.retime import (
    RampMap,
    atempo_chain,
    make_synthesizer,
    parse_ramp,
    read_sidecar,
    render_mapped,
    retime_clip,
    sidecar_path,
)
from engine.timeline import TimeMap

NTSC_30 = Fraction(30000, 1001)


def _lossless_clip(path: Path, images: list[np.ndarray], rate: Fraction = Fraction(25)) -> Path:
    """An FFV1 .mkv clip holding exactly ``images`` (RGB, lossless)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=rate)
        stream.height, stream.width = images[0].shape[:2]
        stream.pix_fmt = "bgr0"
        for image in images:
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _read_all(path: Path) -> list[np.ndarray]:
    with FrameReader(path) as reader:
        return [frame.image for frame in reader]


def test_quarter_speed_has_four_times_the_frames_at_exact_times(tmp_path):
    clip = render_clip(tmp_path / "clip.mp4", rate=NTSC_30, frame_count=20)
    out = tmp_path / "slow.mov"
    report = retime_clip(clip, out, speed="0.25", model="blend", codec="h264", audio="drop")

    assert report.frames_written == 80
    assert (report.frames_exact, report.frames_synthesized, report.frames_held) == (20, 57, 3)
    with FrameReader(out) as reader:
        assert reader.info.frame_rate == NTSC_30
        times = [frame.time_s for frame in reader]
    assert times == [Fraction(n * 1001, 30000) for n in range(80)]
    assert report.risk and all(0.0 <= r.risk <= 1.0 for r in report.risk)
    assert [r.output_frame for r in report.risk][:3] == [1, 2, 3]
    assert [r.phase for r in report.risk][:3] == ["1/4", "1/2", "3/4"]
    assert report.notes[-1].note.startswith("after the end of the media")
    assert (report.notes[-1].first_output_frame, report.notes[-1].last_output_frame) == (77, 79)

    stored = json.loads(sidecar_path(out).read_text())
    assert stored["frames_written"] == 80 and stored["speed"] == "1/4" and stored["model"] == "blend"
    assert read_sidecar(out).frames_synthesized == 57


def test_source_frames_pass_through_and_blend_lands_between(tmp_path):
    images = [frame_pattern(i, 64, 48) for i in range(6)]
    clip = _lossless_clip(tmp_path / "src.mkv", images)
    out = tmp_path / "half.mkv"
    report = retime_clip(clip, out, speed=Fraction(1, 2), model="blend")
    frames = _read_all(out)
    assert len(frames) == 12 and report.codec == "ffv1"
    for k in range(6):
        np.testing.assert_array_equal(frames[2 * k], images[k])
    for k in range(5):
        expected = (images[k].astype(np.float32) + images[k + 1]) / 2
        assert np.abs(frames[2 * k + 1].astype(np.float32) - expected).max() <= 1.0
    np.testing.assert_array_equal(frames[11], images[5])


def test_a_cut_inside_the_clip_gives_no_blended_frames(tmp_path):
    rng = np.random.default_rng(7)
    first_shot = [frame_pattern(i, 128, 96) for i in range(8)]
    other = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    second_shot = [np.roll(other, 2 * i, axis=1) for i in range(8)]
    images = first_shot + second_shot
    clip = _lossless_clip(tmp_path / "cut.mkv", images)
    out = tmp_path / "cut_slow.mkv"
    report = retime_clip(clip, out, speed=Fraction(1, 4), model="blend")
    frames = _read_all(out)
    across = frames[7 * 4 + 1 : 8 * 4]
    assert len(across) == 3
    for frame in across:
        assert np.array_equal(frame, images[7]) or np.array_equal(frame, images[8])
    cut_notes = [n for n in report.notes if "scene cut" in n.note]
    assert [(n.first_output_frame, n.last_output_frame) for n in cut_notes] == [(29, 31)]
    risky = {r.output_frame: r.risk for r in report.risk}
    assert all(risky[n] == 1.0 for n in (29, 30, 31))
    # Within the shots the frames really are blends (not copies of a neighbour).
    assert not np.array_equal(frames[2], images[0]) and not np.array_equal(frames[2], images[1])


def test_ramp_positions_are_exact_and_count_follows_the_source():
    ramp = parse_ramp([{"frame": 0, "speed": 1}, {"frame": 8, "speed": "1/4"}])
    assert ramp.position_at(8) == 5
    assert ramp.position_at(4) == Fraction(4 * (1 + Fraction(5, 8)) / 2)
    assert ramp.position_at(12) == 6
    mapping = RampMap("ramp", ramp, source_frames=10, output_rate=NTSC_30, source_rate=NTSC_30)
    assert mapping.output_frames == 12 + 16
    frames = list(mapping)
    assert [m.source_position_frames for m in frames] == [
        mapping.frame(n).source_position_frames for n in range(28)
    ]
    assert frames[-1].source_position_frames == Fraction(6) + Fraction(15, 4)
    steps = [
        b.source_position_frames - a.source_position_frames for a, b in zip(frames, frames[1:], strict=False)
    ]
    assert all(later <= earlier for earlier, later in zip(steps, steps[1:], strict=False))


def test_ramp_retime_writes_the_mapped_frame_count(tmp_path):
    clip = render_clip(tmp_path / "clip.mp4", rate=Fraction(25), frame_count=12)
    ramp_file = tmp_path / "ramp.json"
    ramp_file.write_text(json.dumps([{"frame": 0, "speed": 1.0}, {"frame": 4, "speed": 0.5}]))
    out = tmp_path / "ramp.mp4"
    assert (
        main(["retime", str(clip), "--ramp", str(ramp_file), "--model", "blend", "-o", str(out), "--json"])
        == 0
    )
    report = read_sidecar(out)
    # p(4) = 3; then 0.5 per frame: frames 5.. reach 12 at n = 4 + 18 = 22, so 22 frames.
    assert report.frames_written == 22 and report.ramp[1] == {"frame": 4, "speed": "1/2"}
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 22


def test_audio_stretch_keeps_pitch_and_has_the_stretched_length(tmp_path):
    clip = render_clip(tmp_path / "tone.mp4", rate=Fraction(25), frame_count=25, audio=True)
    out = tmp_path / "tone_slow.mp4"
    report = retime_clip(clip, out, speed=Fraction(1, 4), model="nearest")
    assert report.audio == "stretch"
    with av.open(str(clip)) as container:
        source_samples = container.streams.audio[0].duration  # 1/48000: samples played, no padding
    assert report.audio_samples == round(source_samples * 4)
    with av.open(str(out)) as container:
        stream = container.streams.audio[0]
        samples = np.concatenate([f.to_ndarray()[0] for f in container.decode(stream)])
        video_duration = Fraction(100, 25)
    # The writer stops audio at the end of the video (100 frames = 4 s); AAC adds at most a frame.
    assert abs(len(samples) - min(report.audio_samples, int(video_duration * 48000))) <= 2048
    middle = samples[48000:96000]
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))))
    peak_hz = np.argmax(spectrum) * 48000 / len(middle)
    assert abs(peak_hz - 440) < 5, peak_hz


@pytest.mark.parametrize("speed", [Fraction(1, 2), Fraction(1, 4)])
def test_stretched_sound_is_exactly_as_long_as_the_picture(tmp_path, speed):
    """The AAC encoder pads its last frame with silence, and decoding gives that padding: a 1 s
    tone decodes to more than 48 000 samples. The sound plays as long as the container says
    (48 000), so the stretched sound ends with the last frame, not the padding / speed later
    (the padding was stretched too: 16 ms at 1/2)."""
    clip = render_clip(tmp_path / "tone.mp4", rate=Fraction(25), frame_count=25, audio=True)
    with av.open(str(clip)) as container:
        decoded = sum(f.samples for f in container.decode(audio=0))
    assert decoded > 48000  # the padding this test is about
    out = tmp_path / "slow.mp4"
    report = retime_clip(clip, out, speed=speed, model="nearest")
    assert report.audio_samples == round(48000 / speed)
    with av.open(str(out)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        picture_s = Fraction(video.duration) * Fraction(video.time_base)
        sound_s = Fraction(audio.duration) * Fraction(audio.time_base)
    assert picture_s == Fraction(25) / 25 / speed
    assert sound_s == picture_s


def test_atempo_chain_multiplies_to_the_speed_within_range():
    for speed in (Fraction(1, 4), Fraction(1, 10), Fraction(3, 7), Fraction(1, 3)):
        chain = atempo_chain(speed)
        assert math.prod(chain) == speed
        assert all(Fraction(1, 2) <= f <= 2 for f in chain)
    assert atempo_chain(Fraction(1, 4)) == [Fraction(1, 2), Fraction(1, 2)]


PEAK_SCRIPT = """
import sys, tracemalloc
from fractions import Fraction
from engine.retime import retime_clip

def peak(clip, out):
    tracemalloc.start()
    try:
        retime_clip(clip, out, speed=Fraction(1, 2), model="blend", codec="ffv1")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

short, long, folder = sys.argv[1:4]
peak(short, folder + "/warm.mkv")
print(peak(short, folder + "/short.mkv"), peak(long, folder + "/long.mkv"))
"""


def test_memory_does_not_grow_with_clip_length(tmp_path):
    """Peak Python allocations while retiming a 12- and a 72-frame clip, measured in a fresh
    interpreter so that nothing else in the test process (earlier tests' threads and caches) is
    counted: in one full run of the suite the in-process measurement failed once and passed alone."""
    short = render_clip(tmp_path / "short.mp4", size=(160, 120), frame_count=12, rate=Fraction(25))
    long = render_clip(tmp_path / "long.mp4", size=(160, 120), frame_count=72, rate=Fraction(25))
    measured = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(short), str(long), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    assert measured.returncode == 0, measured.stderr
    short_peak, long_peak = (int(value) for value in measured.stdout.split()[-2:])
    frame_bytes = 160 * 120 * 3
    # Holding the clip would add 60 source frames (and 120 outputs); allow a few frames of slack.
    assert long_peak < short_peak + 8 * frame_bytes, (short_peak, long_peak)


@pytest.mark.parametrize("speed", ["0", "-0.5", "nan", "inf", "2", "fast", "", "1_0", "0_5"])
def test_bad_speeds_are_refused_with_one_line(tmp_path, speed, capsys):
    clip = render_clip(tmp_path / "clip.mp4", frame_count=4)
    out = tmp_path / "out.mp4"
    assert main(["retime", str(clip), "--speed", speed, "-o", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("chronoscope retime: error:") and "\n" not in error
    assert not out.exists()


def test_speed_above_one_renders_when_allowed(tmp_path):
    clip = render_clip(tmp_path / "clip.mp4", frame_count=12)
    with pytest.raises(RetimeSpeedError, match="above 1"):
        retime_clip(clip, tmp_path / "fast.mp4", speed=2, model="blend")
    report = retime_clip(clip, tmp_path / "fast.mp4", speed=2, model="blend", allow_speedup=True)
    assert report.frames_written == 6 and report.frames_exact == 6


def test_missing_corrupt_and_unreadable_inputs(tmp_path, capsys):
    with pytest.raises(MediaNotFoundError):
        retime_clip(tmp_path / "nowhere.mp4", tmp_path / "o.mp4", speed=0.5, model="blend")
    text = write_text_file(tmp_path / "notes.mp4")
    with pytest.raises(ChronoscopeError):
        retime_clip(text, tmp_path / "o.mp4", speed=0.5, model="blend")
    argv = ["retime", str(text), "--ramp", str(tmp_path / "no_ramp.json"), "-o", str(tmp_path / "o.mp4")]
    assert main(argv) == 2
    assert "no_ramp.json does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_missing_model_file_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("CHRONOSCOPE_MODELS_DIR", raising=False)
    clip = render_clip(tmp_path / "clip.mp4", frame_count=4)
    with pytest.raises(ModelNotFoundError, match="models prepare"):
        retime_clip(clip, tmp_path / "o.mp4", speed=0.5, model="rife-hdv3")
    assert not (tmp_path / "o.mp4").exists()


def test_audio_keep_only_at_speed_one_and_no_overwrite(tmp_path):
    clip = render_clip(tmp_path / "clip.mp4", frame_count=8, audio=True)
    with pytest.raises(UnsupportedOptionError, match="only fits speed 1"):
        retime_clip(clip, tmp_path / "o.mp4", speed=0.5, audio="keep", model="blend")
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError):
        retime_clip(clip, existing, speed=0.5, model="blend")
    assert existing.read_bytes() == b"keep me"


def test_overwriting_a_folder_of_png_frames_never_takes_other_files_with_it(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    clip = render_clip(project / "clip.mp4", frame_count=8)
    (project / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match=r"holding other files \(clip.mp4, notes.txt\)"):
        retime_clip(clip, project, speed=0.5, codec="png", model="blend", overwrite=True)
    assert sorted(p.name for p in project.iterdir()) == ["clip.mp4", "notes.txt"]
    frames = tmp_path / "frames"
    retime_clip(clip, frames, speed=0.5, codec="png", model="blend", source_range=(0, 2))
    assert len(list(frames.iterdir())) == 4
    retime_clip(clip, frames, speed=0.5, codec="png", model="blend", source_range=(0, 3), overwrite=True)
    assert len(list(frames.iterdir())) == 6, "a folder of our own frames is replaced"


def test_sigterm_stops_a_retime_and_leaves_nothing_half_written(tmp_path):
    clip = render_clip(tmp_path / "clip.mp4", frame_count=60, size=(320, 240), audio=True)
    out = tmp_path / "slow.mov"
    command = [sys.executable, "-m", "engine.cli", "retime", str(clip), "--speed", "0.1", "--model", "flow"]
    command += ["-o", str(out)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".slow.partial-*")) and child.poll() is None:
            assert time.monotonic() < deadline, "the retime never started writing"
            time.sleep(0.02)
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 143, stderr.decode()
    assert "chronoscope retime: terminated" in stderr.decode() and "Traceback" not in stderr.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_a_retime_removes_the_temporaries_a_killed_one_left(tmp_path):
    clip = render_clip(tmp_path / "clip.mp4", frame_count=8)
    left = (".out.partial-abc.mp4", ".out.mp4.audio.partial-abc.m4a", ".out.mp4.chronoscope.partial-x.json")
    for name in left:
        (tmp_path / name).write_bytes(b"left by kill -9")
    (tmp_path / ".other.partial-abc123.mp4").write_bytes(b"someone else's")
    (tmp_path / ".out.partial-abc123.mov").write_bytes(b"out.mov being written at this moment")
    retime_clip(clip, tmp_path / "out.mp4", speed=0.5, model="blend")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".other.partial-abc123.mp4",
        ".out.partial-abc123.mov",
        "clip.mp4",
        "out.mp4",
        "out.mp4.chronoscope.json",
    ]


def test_a_portrait_phone_clip_stays_portrait(tmp_path):
    clip = render_clip(tmp_path / "phone.mp4", frame_count=6, rotation_deg=90)
    out = tmp_path / "slow.mp4"
    retime_clip(clip, out, speed=0.5, model="blend")
    assert probe(out).video_stream.rotation_deg == 90
    with FrameReader(clip, apply_rotation=True) as source, FrameReader(out, apply_rotation=True) as result:
        assert source.read_frame(0).image.shape == result.read_frame(0).image.shape == (64, 48, 3)


def test_cancelled_retime_leaves_nothing(tmp_path):
    clip = render_clip(tmp_path / "clip.mp4", frame_count=12, audio=True)
    calls = []

    def cancel_at_ten():
        calls.append(1)
        if len(calls) == 10:
            raise JobCancelledError("cancelled")

    with pytest.raises(JobCancelledError):
        retime_clip(clip, tmp_path / "out.mp4", speed=0.5, model="blend", check_cancelled=cancel_at_ten)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_a_cancel_stops_a_batch_of_in_between_frames_at_the_next_frame(tmp_path, monkeypatch):
    """At 1/16 the 15 in-between frames of a pair are made in one batch (slow with RIFE on a CPU):
    a cancel during the batch must not wait for the rest of it."""
    from engine.interp import base
    from engine.interp.base import SynthesisResult, Synthesizer

    made = []

    class CountingMix(Synthesizer):
        NAME = "test-counting-mix"

        def synthesize(self, frame0, frame1, t):
            made.append(t)
            mixed = (frame0.astype(np.float32) * (1 - float(t)) + frame1 * float(t)).astype(frame0.dtype)
            return SynthesisResult(
                frame=mixed, risk=np.zeros(frame0.shape[:2], np.float32), backend=self.NAME
            )

    monkeypatch.setitem(base._REGISTRY, CountingMix.NAME, CountingMix)  # for this test only
    clip = render_clip(tmp_path / "clip.mp4", frame_count=12)

    def cancel_once_making_frames():
        if made:
            raise JobCancelledError("cancelled")

    with pytest.raises(JobCancelledError):
        retime_clip(
            clip,
            tmp_path / "out.mp4",
            speed="1/16",
            model="test-counting-mix",
            check_cancelled=cancel_once_making_frames,
        )
    assert len(made) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_a_source_range_gives_out_minus_in_over_speed_frames_from_in(tmp_path):
    images = [frame_pattern(i, 64, 48) for i in range(14)]
    clip = _lossless_clip(tmp_path / "src.mkv", images)
    out = tmp_path / "range.mkv"
    report = retime_clip(clip, out, speed="1/2", source_range=(5, 11), model="blend")
    assert report.frames_written == 12 and report.source_range == [5, 11]
    # frame 11 exists, so the in-between after frame 10 blends towards it: nothing is held
    assert (report.frames_exact, report.frames_synthesized, report.frames_held) == (6, 6, 0)
    assert report.time_map["source_start_frames"] == "5"
    assert report.time_map["last"]["source_position_frames"] == "21/2"
    with FrameReader(out) as reader:
        decoded = list(reader)
    assert [frame.time_s for frame in decoded] == [Fraction(n, 25) for n in range(12)]
    for k in range(6):
        np.testing.assert_array_equal(decoded[2 * k].image, images[5 + k])
    expected = (images[10].astype(np.float32) + images[11]) / 2
    assert np.abs(decoded[11].image.astype(np.float32) - expected).max() <= 1.0
    assert json.loads(sidecar_path(out).read_text())["source_range"] == [5, 11]


def test_a_range_at_the_end_holds_the_last_frame_and_open_ends_work(tmp_path):
    clip = render_clip(tmp_path / "clip.mp4", rate=NTSC_30, frame_count=24)
    report = retime_clip(clip, tmp_path / "tail.mp4", speed="1/4", source_range=(20, None), model="blend")
    assert report.frames_written == 16 and report.source_range == [20, 24]
    assert (report.frames_exact, report.frames_held) == (4, 3)
    with FrameReader(tmp_path / "tail.mp4") as reader:
        assert [f.time_s for f in reader] == [Fraction(n * 1001, 30000) for n in range(16)]
    head = retime_clip(clip, tmp_path / "head.mp4", speed="1/3", source_range=(None, 5), model="nearest")
    assert head.frames_written == 15 and head.source_range == [0, 5]


def test_a_ramp_over_a_range_starts_at_in(tmp_path):
    clip = render_clip(tmp_path / "clip.mp4", frame_count=30)
    ramp = parse_ramp([{"frame": 0, "speed": 1}, {"frame": 8, "speed": 0.5}])
    report = retime_clip(clip, tmp_path / "ramp.mp4", ramp=ramp, source_range=(10, 20), model="blend")
    assert report.time_map["source_start_frames"] == "10"
    ranged = RampMap("x", ramp, 10, Fraction(25), Fraction(25), source_start_frames=Fraction(10))
    # 8 output frames ramp from 1 to 1/2 (6 source frames), the 4 left at 1/2 take 8 more
    assert report.frames_written == ranged.output_frames == 16
    positions = [mapped.source_position_frames for mapped in ranged.frames()]
    assert positions[0] == 10 and positions[-1] < 20


def test_audio_of_a_range_is_stretched_to_exactly_that_range(tmp_path):
    clip = render_clip(tmp_path / "tone.mp4", rate=Fraction(25), frame_count=25, audio=True)
    out = tmp_path / "part.mp4"
    report = retime_clip(clip, out, speed=Fraction(1, 2), source_range=(5, 15), model="nearest")
    assert report.audio == "stretch" and report.frames_written == 20
    # frames 5..14 are 0.4 s of audio; at half speed that is 0.8 s: 38400 samples at 48 kHz, exactly
    assert report.audio_samples == 38400 and report.audio_sample_rate == 48000
    with av.open(str(out)) as container:
        samples = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    assert abs(len(samples) - 38400) <= 2048


def _click_time_s(path: Path) -> float:
    with av.open(str(path)) as container:
        samples = np.concatenate([frame.to_ndarray()[0] for frame in container.decode(audio=0)])
    return float(np.argmax(np.abs(samples) > 0.3)) / 48000


@pytest.mark.parametrize("audio", ["stretch", "keep"])
def test_sound_that_starts_after_the_picture_stays_in_sync(tmp_path, audio):
    """A recorder's sound starting 0.5 s after the first frame: a click 1.6 s into the clip is at
    1.1 s of the sound. Retimed from frame 25 (1.0 s), it belongs 0.6 s / speed into the output;
    counting the sound from its own first sample put it a second early."""
    sound = np.zeros(int(3.5 * 48000), np.float32)
    sound[int(1.1 * 48000) : int(1.1 * 48000) + 480] = 0.8
    clip = render_clip(
        tmp_path / "late.mov", rate=Fraction(25), frame_count=100, audio=True, sound=sound,
        audio_start_s=Fraction(1, 2),
    )
    speed = Fraction(1, 2) if audio == "stretch" else Fraction(1)
    out = tmp_path / f"{audio}.mov"
    retime_clip(clip, out, speed=speed, source_range=(25, 50), model="nearest", audio=audio)
    assert _click_time_s(out) == pytest.approx(float(Fraction(6, 10) / speed), abs=0.05)


def _energy_centre_s(samples: np.ndarray, around_s: float, rate: int = 48000) -> float:
    low, high = int((around_s - 0.25) * rate), int((around_s + 0.25) * rate)
    energy = np.square(samples[low:high].astype(np.float64))
    return (low + float((np.arange(energy.size) * energy).sum() / energy.sum())) / rate


@pytest.mark.parametrize("speed", [Fraction(1, 2), Fraction(1, 4)])
def test_stretched_sound_is_heard_with_its_frame(tmp_path, speed):
    """atempo plays early (about 19 ms at 1/2, 47 ms at 1/4 on these beeps, uncompensated): each
    sound must land at its source time / speed. (The beeps last 60 ms: WSOLA smears a shorter
    sound further ahead, see ``engine.retime.audio.atempo_lead_samples``.)"""
    rate = 48000
    sound = np.zeros(2 * rate, np.float32)
    ticks_s = (0.5, 1.5)
    beep = 0.8 * np.sin(2 * np.pi * 1000 * np.arange(2880) / rate) * np.hanning(2880)
    for at in ticks_s:
        start = int(at * rate)
        sound[start : start + beep.size] = beep
    clip = render_clip(tmp_path / "ticks.mov", rate=Fraction(25), frame_count=50, audio=True, sound=sound)
    out = tmp_path / "slow.mov"
    retime_clip(clip, out, speed=speed, model="nearest")
    with av.open(str(out)) as container:
        heard = np.concatenate([frame.to_ndarray()[0] for frame in container.decode(audio=0)])
    for at in ticks_s:
        belongs = (at + 2879 / 2 / rate) / float(speed)
        assert _energy_centre_s(heard, belongs) == pytest.approx(belongs, abs=0.005)


BEEP_AT_S = (0.5, 1.5)
BEEP_SAMPLES_S = 0.06


def _beeping_clip(path: Path, *, audio_codec: str, sample_rate: int) -> Path:
    """50 frames at 25 fps with a 60 ms 1 kHz beep (Hann-shaped) at each of ``BEEP_AT_S``, in
    ``audio_codec`` at ``sample_rate``; an AAC track is stamped so that its priming is skipped."""
    length = round(BEEP_SAMPLES_S * sample_rate)
    sound = np.zeros(2 * sample_rate, np.float32)
    for at in BEEP_AT_S:
        start = round(at * sample_rate)
        tone = np.sin(2 * np.pi * 1000 * np.arange(length) / sample_rate) * np.hanning(length)
        sound[start : start + length] = 0.8 * tone
    pictures = [frame_pattern(n) for n in range(50)]
    return render_with_sound(
        path, pictures, rate=25, sound=sound, sample_rate=sample_rate, audio_codec=audio_codec
    )


@pytest.mark.parametrize("speed", [Fraction(1, 2), Fraction(1, 4)])
@pytest.mark.parametrize(
    ("audio_codec", "sample_rate", "suffix"),
    [
        ("aac", 48000, ".mov"),
        ("aac", 44100, ".mp4"),
        ("pcm_s16le", 48000, ".mp4"),
        ("pcm_s16le", 44100, ".mp4"),
    ],
)
def test_stretched_aac_sound_is_not_late_by_the_encoders_priming(
    tmp_path, speed, audio_codec, sample_rate, suffix
):
    """The AAC encoder puts 1024 samples of priming ahead of the sound; unmarked, every stretched
    sound came 21 ms (48 kHz) or 23 ms (44.1 kHz) late. A beep at source time t is heard at
    t / speed, within a few ms, whether the source's sound was AAC or PCM (atempo's lead is
    measured on beeps; measured on a noise burst it left them up to 10 ms late at 44.1 kHz)."""
    clip = _beeping_clip(tmp_path / "beeps.mov", audio_codec=audio_codec, sample_rate=sample_rate)
    out = tmp_path / f"slow{suffix}"
    report = retime_clip(clip, out, speed=speed, model="nearest")
    assert report.audio == "stretch" and report.audio_sample_rate == sample_rate
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
        heard = np.concatenate([frame.to_ndarray()[0] for frame in container.decode(audio=0)])
    for at in BEEP_AT_S:
        centre_s = at + (round(BEEP_SAMPLES_S * sample_rate) - 1) / 2 / sample_rate
        belongs = centre_s / float(speed)
        assert _energy_centre_s(heard, belongs, sample_rate) == pytest.approx(belongs, abs=0.005)


def test_a_truncated_clip_is_retimed_with_its_sound_up_to_the_cut(tmp_path, caplog):
    """A file cut off while it was copied (index at the front, tail missing): the picture ends
    where it is cut, and so does the sound, stretched, with a warning (it was refused)."""
    whole = render_clip(tmp_path / "whole.mp4", frame_count=50, audio=True, faststart=True)
    cut = truncated_copy(whole, tmp_path / "cut.mp4", keep_fraction=0.6)
    with av.open(str(cut)) as container:
        packets = [packet for packet in container.demux(audio=0) if packet.size]
        assert packets[-1].is_corrupt, "the cut should end in a damaged packet"
        complete = sum(frame.samples for packet in packets[:-1] for frame in packet.decode())
    out = tmp_path / "slow.mov"
    report = retime_clip(cut, out, speed=Fraction(1, 2), model="nearest")
    assert report.audio == "stretch" and report.audio_samples == 2 * complete
    assert any("cut.mp4 is truncated" in r.message and r.levelname == "WARNING" for r in caplog.records)


def test_frames_held_within_the_last_frames_duration_are_no_warning(tmp_path, caplog):
    """At 0.5 the last output frame falls half a frame after the last source frame by
    construction: held, noted in the report, but not a WARNING (it was one on every retime)."""
    clip = render_clip(tmp_path / "clip.mp4", frame_count=10)
    report = retime_clip(clip, tmp_path / "slow.mov", speed=Fraction(1, 2), model="nearest")
    assert report.frames_held == 1 and any("held" in note.note for note in report.notes)
    assert not [r for r in caplog.records if r.levelname == "WARNING" and "outside the media" in r.message]


def test_frames_a_map_asks_for_beyond_the_media_are_still_a_warning(tmp_path, caplog):
    """A timeline clip asking for 15 frames of a 10-frame file: the 5 it lacks are held, WARNING."""
    clip = render_clip(tmp_path / "clip.mp4", frame_count=10)
    frame_map = TimeMap(
        clip_name="clip", output_frames=15, output_rate=Fraction(25), source_rate=Fraction(25),
        source_start_frames=Fraction(0), time_scalar=Fraction(1), freeze_frame=False,
        source_range_end_frames=Fraction(15),
    )
    synthesizer = make_synthesizer("nearest")
    try:
        report = render_mapped(clip, tmp_path / "long.mov", frame_map, synthesizer=synthesizer)
    finally:
        synthesizer.close()
    assert report.frames_held == 5
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "clip: 5 output frames lie outside the media; its end frames are held" in warned


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command to write the test file")
def test_sound_with_no_channel_layout_is_stretched(tmp_path):
    """Multi-track camera and recorder files leave the layout unspecified ("1 channels")."""
    clip = render_multitrack_clip(tmp_path / "multi.mov")
    with av.open(str(clip)) as container:
        assert "channels" in container.streams.audio[0].layout.name, "the layout should be unnamed"
    out = tmp_path / "out.mov"
    report = retime_clip(clip, out, speed=Fraction(1, 2), model="nearest", source_range=(0, 10))
    # 10 frames at 25 fps are 0.4 s of sound; at half speed 0.8 s
    assert report.audio == "stretch" and report.audio_samples == round(0.8 * report.audio_sample_rate)
    # PCM from the camera stays PCM in a .mov: slowed, not made lossy
    assert [track.codec for track in probe(out).audio] == ["pcm_s24le"]


def test_audio_kept_at_speed_one_covers_the_range(tmp_path):
    clip = render_clip(tmp_path / "tone.mp4", rate=Fraction(25), frame_count=25, audio=True)
    out = tmp_path / "cut.mp4"
    report = retime_clip(clip, out, speed=1, source_range=(5, 15), model="nearest", audio="keep")
    assert report.audio == "keep" and report.frames_written == 10
    with av.open(str(out)) as container:
        samples = sum(f.samples for f in container.decode(audio=0))
    # copied packets: 0.4 s (19200 samples), cut at AAC packet boundaries (1024 samples)
    assert abs(samples - 19200) <= 2048


@pytest.mark.parametrize(
    ("source_range", "error", "words"),
    [
        ((-1, 5), FrameOutOfRangeError, "in frame -1 is outside the clip: it has frames 0 to 11"),
        ((12, 14), FrameOutOfRangeError, "in frame 12 is outside the clip"),
        ((0, 13), FrameOutOfRangeError, "out frame 13 is past the end of the clip: it has 12 frames"),
        ((5, 5), UnsupportedOptionError, "source range 5 to 5 is empty"),
        ((8, 3), UnsupportedOptionError, "source range 8 to 3 is empty"),
        ((1.5, 4), UnsupportedOptionError, "in frame 1.5 is not a whole frame number"),
    ],
)
def test_bad_ranges_are_refused_and_leave_nothing(tmp_path, source_range, error, words):
    clip = render_clip(tmp_path / "clip.mp4", frame_count=12)
    out = tmp_path / "out.mp4"
    with pytest.raises(error, match=words):
        retime_clip(clip, out, speed=0.5, source_range=source_range, model="blend")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_cli_in_and_out(tmp_path, capsys):
    clip = render_clip(tmp_path / "clip.mp4", frame_count=12)
    out = tmp_path / "part.mp4"
    argv = ["retime", str(clip), "--speed", "1/4", "--in", "3", "--out", "7", "--model", "blend"]
    assert main([*argv, "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames_written"] == 16 and summary["source_range"] == [3, 7]
    with FrameReader(out) as reader:
        assert reader.frame_count == 16
    for bad, words in (
        (["--in", "3", "--out", "3"], "--in 3 --out 3 is an empty range"),
        (["--in", "-2"], "--in -2 is below 0"),
        (["--out", "40"], "out frame 40 is past the end of the clip: it has 12 frames"),
    ):
        target = tmp_path / "bad.mp4"
        argv = ["retime", str(clip), "--speed", "0.5", *bad, "--model", "blend", "-o", str(target)]
        assert main(argv) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("chronoscope retime: error:") and words in error and "\n" not in error
        assert not target.exists()


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"in_frame": "3"}, "in_frame = '3'; expected int"),
        ({"out_frame": True}, "out_frame = True; expected int"),
        ({"in_frame": -1}, "in_frame = -1; frames are numbered from 0"),
        ({"in_frame": 8, "out_frame": 8}, "in_frame 8 to out_frame 8 is empty"),
    ],
)
def test_the_retime_capability_checks_its_frame_range(tmp_path, fields, words):
    from engine.render.capability import make_retime_job
    from engine.server.protocol import Header, Message

    source = render_clip(tmp_path / "a.mp4", frame_count=8)
    content = {"source": str(source), "output": str(tmp_path / "b.mp4"), "speed": "1/2"}
    message = Message(Header("m1", "retime", "1.0", "2026-01-01T00:00:00Z", "s1"), {**content, **fields})
    with pytest.raises(UnsupportedOptionError, match=words):
        make_retime_job(message)


def test_a_result_longer_than_a_day_is_refused_before_any_work(tmp_path):
    clip = render_clip(tmp_path / "clip.mp4", frame_count=25, audio=True)
    with pytest.raises(RetimeSpeedError, match=r"would become 25000000 frames .* the limit is 24 hours"):
        retime_clip(clip, tmp_path / "out.mp4", speed=Fraction(1, 1_000_000), model="blend")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_a_stalled_recording_is_retimed_by_its_timestamps_and_keeps_its_sound(tmp_path):
    """A recording that stalled (frames for 10/30 to 29/30 s missing) is read by the clock: the
    stall is made between the frames either side, every frame keeps its time, and the sound is
    stretched with the picture (by frame index the picture ran 0.67 s ahead of the sound)."""
    stamps = list(range(10)) + list(range(30, 60))
    clip = render_clip(
        tmp_path / "stall.mp4", rate=Fraction(30), pts=stamps, time_base=Fraction(1, 30), audio=True
    )
    out = tmp_path / "slow.mp4"
    report = retime_clip(clip, out, speed=0.5, model="blend")
    assert report.audio == "stretch"
    assert report.source_grid == {
        "rate": "30", "grid_frames": 60, "file_frames": 40, "empty_slots": 20, "frames_left_out": 0
    }
    assert report.frames_written == 120 and report.output_rate == "30"
    # output frame 40 shows 20/30 s: 11/21 of the way across the stall from file frame 9 to 10
    stall = next(item for item in report.risk if item.output_frame == 40)
    assert (stall.source_frame, stall.phase) == (9, "11/21")
    [made] = [note for note in report.notes if note.note.startswith("made across a stall")]
    assert made.note == "made across a stall: 20 frames missing between source frames 9 and 10"
    assert (made.first_output_frame, made.last_output_frame, made.fallback) == (19, 59, False)
    info = probe(out)
    assert info.video_stream.frame_count == 120 and info.video_stream.frame_rate == 30
    assert abs(float(info.audio[0].duration_s) - 4.0) < 0.05
    with FrameReader(clip) as source, FrameReader(out) as result:
        # 70 / 2 = 35/30 s is file frame 15 (pts 35), written as it is (by index: frame 35)
        shown = result.read_frame(70).image.astype(float)
        differences = [np.abs(shown - source.read_frame(n).image).mean() for n in range(12, 40)]
        assert 12 + int(np.argmin(differences)) == 15


def test_a_phone_clip_with_jittered_timestamps_keeps_its_standard_rate(tmp_path):
    """Timestamps a tick either side of 1/30 s (an average of 29.3 fps here) are put on 30 fps:
    one frame per slot, nothing made or left out, and the sound is stretched."""
    jitter = [3 * n + (n % 2) for n in range(41)]
    phone = render_clip(
        tmp_path / "phone.mp4", rate=Fraction(30), pts=jitter, time_base=Fraction(1, 90), audio=True
    )
    assert probe(phone).video_stream.is_vfr
    report = retime_clip(phone, tmp_path / "phone_slow.mp4", speed=0.5, model="blend")
    assert report.audio == "stretch"
    assert report.output_rate == "30" and report.frames_written == 82
    assert report.source_grid["empty_slots"] == 0 and report.source_grid["frames_left_out"] == 0
    assert (report.frames_exact, report.frames_synthesized, report.frames_held) == (41, 40, 1)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command to write the test file")
def test_a_retimed_clip_starts_at_the_timecode_of_its_first_source_frame(tmp_path):
    """A camera file at 01:00:10:00 retimed from its frame 5 starts at 01:00:10:05 (tmcd track in
    .mov): the slowed clip can be found against its source. Before, it had no timecode."""
    from engine.media.timecode import start_timecode

    clip = render_multitrack_clip(tmp_path / "camera.mov", timecode="01:00:10:00")
    out = tmp_path / "slow.mov"
    retime_clip(clip, out, speed=Fraction(1, 2), source_range=(5, 20), model="blend", audio="drop")
    assert start_timecode(probe(out)) == "01:00:10:05"
    whole = tmp_path / "whole.mp4"
    retime_clip(clip, whole, speed=Fraction(1, 2), model="blend", audio="drop")
    assert start_timecode(probe(whole)) == "01:00:10:00"


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command to write the test file")
def test_every_audio_track_is_kept_at_speed_one(tmp_path):
    clip = render_multitrack_clip(tmp_path / "multi.mov")
    out = tmp_path / "kept.mov"
    retime_clip(clip, out, speed=1, source_range=(5, 20), model="nearest", audio="keep")
    info = probe(out)
    assert len(info.audio) == 2
    assert all(abs(float(track.duration_s) - 0.6) < 0.05 for track in info.audio)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command to write the test file")
def test_interlaced_source_is_deinterlaced_before_frames_are_made(tmp_path, caplog):
    """Frames made between two combed frames comb twice over; the fields are merged first."""
    clip = render_interlaced_clip(tmp_path / "fields.mp4", frame_count=12)
    with FrameReader(clip) as reader:
        source_combing = np.mean([combing(frame.image) for frame in reader])
    out = tmp_path / "slow.mp4"
    report = retime_clip(clip, out, speed=Fraction(1, 2), model="flow", audio="drop")
    assert report.frames_written == 24
    assert "merged (bwdif deinterlacing)" in caplog.text
    assert probe(out).video_stream.interlaced is False
    with FrameReader(out) as reader:
        assert max(combing(frame.image) for frame in reader) < 0.6 * source_combing


def test_a_file_that_appears_at_the_output_while_rendering_is_never_replaced(tmp_path):
    """Two jobs given one name (a preview app queueing twice): the later finisher must not write
    over the first one's file."""
    clip = render_clip(tmp_path / "clip.mp4", rate=Fraction(25), frame_count=8)
    out = tmp_path / "slow.mp4"

    def other_job_finishes(done: int, total: int) -> None:
        if done == 3 and not out.exists():
            out.write_bytes(b"the other job's render")

    with pytest.raises(OutputExistsError, match="appeared while it was being written"):
        retime_clip(clip, out, speed=Fraction(1, 2), model="nearest", on_progress=other_job_finishes)
    assert out.read_bytes() == b"the other job's render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "slow.mp4"]
    # asked to overwrite, it replaces
    retime_clip(clip, out, speed=Fraction(1, 2), model="nearest", overwrite=True)
    assert probe(out).video_stream.frame_count == 16


def test_long_output_names_fit_the_file_system_or_are_refused_before_any_work(tmp_path):
    clip = render_clip(tmp_path / "clip.mp4", rate=Fraction(25), frame_count=4, audio=True)
    # 236 bytes: fits with its report (.chronoscope.json); its temporaries used not to (errno 36)
    out = tmp_path / ("editor_final_v3_" + "A" * 216 + ".mp4")
    retime_clip(clip, out, speed=Fraction(1, 2), model="nearest", audio="stretch")
    assert probe(out).video_stream.frame_count == 8 and sidecar_path(out).is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    too_long = tmp_path / ("editor_final_v3_" + "A" * 230 + ".mp4")
    with pytest.raises(UnsupportedOptionError, match=r"too long with its .chronoscope.json.*238 bytes"):
        retime_clip(clip, too_long, speed=Fraction(1, 2), model="nearest")
    assert not too_long.exists()


def test_only_frames_that_fell_back_are_counted_as_fallbacks(tmp_path):
    """A learned model notes how it ran on every frame it makes (its provider): that is an account,
    not a fallback; the held last frame is one (it used to count 10 of 10 generated frames)."""
    clip = render_clip(tmp_path / "clip.mp4", frame_count=6)
    report = retime_clip(clip, tmp_path / "slow.mkv", speed=Fraction(1, 3), model="rife-4.2x")
    assert report.frames_synthesized == 10 and report.frames_held == 2
    assert any(not note.fallback for note in report.notes)
    assert report.fallbacks == report.frames_held
    assert read_sidecar(tmp_path / "slow.mkv").to_dict()["fallback_frames"] == 2


def test_pcm_sound_asked_to_be_stretched_at_speed_one_is_reencoded_for_mp4(tmp_path, capsys):
    """--audio stretch at speed 1 became keep, whose copy .mp4 cannot take from PCM: refused."""
    source = _beeping_clip(tmp_path / "camera.mov", audio_codec="pcm_s16le", sample_rate=48000)
    out = tmp_path / "same.mp4"
    assert main(["retime", str(source), "--speed", "1", "--audio", "stretch", "-o", str(out)]) == 0
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
    assert main(["retime", str(source), "--speed", "1", "-o", str(tmp_path / "copy.mp4")]) == 2
    assert "--audio drop" in capsys.readouterr().err


def _warnings(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]


@pytest.mark.parametrize(
    ("pixel_format", "output", "written", "keeping"),
    [
        ("yuv444p", "slow.mp4", "writes 4:2:0, a quarter", "ffv1 (.mkv) and png (a folder) keep 4:4:4"),
        ("yuv444p", "slow.mov", "writes 4:2:2, half", "ffv1 (.mkv) and png (a folder) keep 4:4:4"),
        ("yuv422p", "slow.mp4", "writes 4:2:0, half",
         "prores (.mov), ffv1 (.mkv) and png (a folder) keep 4:2:2"),
    ],
)
def test_colour_resolution_lost_by_the_output_codec_is_warned(
    tmp_path, caplog, pixel_format, output, written, keeping
):
    """A 4:4:4 or 4:2:2 master written as 4:2:0 H.264 (or 4:4:4 as ProRes 422) loses colour
    resolution: said once, naming the codecs that keep it."""
    clip = render_clip(tmp_path / "master.mkv", codec="ffv1", pixel_format=pixel_format, frame_count=6)
    retime_clip(clip, tmp_path / output, speed=Fraction(1, 2), model="nearest")
    lost = [message for message in _warnings(caplog) if "colour samples" in message]
    assert len(lost) == 1, _warnings(caplog)
    assert written in lost[0] and keeping in lost[0]


def test_nothing_is_said_where_the_output_keeps_the_colour(tmp_path, caplog):
    clip = render_clip(tmp_path / "camera.mp4", frame_count=6)  # 4:2:0 8-bit
    retime_clip(clip, tmp_path / "slow.mp4", speed=Fraction(1, 2), model="nearest")
    master = render_clip(tmp_path / "master.mkv", codec="ffv1", pixel_format="yuv444p", frame_count=6)
    retime_clip(master, tmp_path / "slow.mkv", speed=Fraction(1, 2), model="nearest")
    said = _warnings(caplog)
    assert not [message for message in said if "colour samples" in message or "High 10" in message], said


def test_ten_bit_h264_is_warned_as_hard_to_play(tmp_path, caplog):
    clip = render_clip(tmp_path / "log.mov", codec="prores_ks", pixel_format="yuv422p10le", frame_count=6)
    out = tmp_path / "slow.mp4"
    retime_clip(clip, out, speed=Fraction(1, 2), model="nearest")
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.profile == "High 10"
    high10 = [message for message in _warnings(caplog) if "High 10" in message]
    assert len(high10) == 1 and "--codec h265" in high10[0]
    caplog.clear()
    retime_clip(clip, tmp_path / "slow_hevc.mp4", speed=Fraction(1, 2), model="nearest", codec="h265")
    assert not [message for message in _warnings(caplog) if "High 10" in message]
