"""The learned speed estimator through the committed ONNX model, ``detect_speed`` and ``chronoscope detect``.

Real footage: a clip held out of training (sam2-juggle) at its own speed and subsampled. Bad
input (too short, a still image, a missing file, a damaged stream, variable frame rate) is
rendered here with PyAV.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from engine.cli import main
from engine.commands.detect import format_table
from engine.errors import InsufficientFramesError
from engine.media import FrameReader
from engine.models.manifest import manifest_path_for, read_manifest, sha256_file
from engine.scenes import random_scene, render_frames, write_video
from engine.speed.detect import PROBE_FRAMES, _merged, detect_speed, detect_speed_frames, plan_probes
from engine.speed.estimator import MODEL_PATH, estimate_span, shared_model
from engine.speed.result import SpeedClass, SpeedEstimate, SpeedSegment

HELD_OUT = "sam2-juggle.mp4"


@pytest.fixture(scope="module")
def juggle_frames() -> list[np.ndarray]:
    path = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "clips" / HELD_OUT
    if not path.is_file():
        pytest.skip(f"shared data clip {path} not found")
    with FrameReader(path, size=(320, 180)) as reader:
        return [frame.image for frame in reader.frames(0, 200)]


def test_committed_model_matches_its_manifest_and_is_small():
    manifest = read_manifest(manifest_path_for(MODEL_PATH))
    assert manifest.sha256 == sha256_file(MODEL_PATH)
    assert MODEL_PATH.stat().st_size < 10 * 1024 * 1024
    assert manifest.input_names() == ["frames"]
    assert manifest.output_names() == ["log2_speed", "synthetic_logit"]


def test_held_out_original_is_near_real_time_and_its_4x_subsample_is_clearly_faster(juggle_frames):
    """Within a factor of 2 of real time (the model reads this clip about 1.8x slow: see the
    model card), and the 4x subsample clearly faster."""
    model = shared_model()
    original = estimate_span(juggle_frames[:64], model)
    faster = estimate_span(juggle_frames[::4][:48], model)
    assert abs(original.log2_speed) < 1.0, original
    assert faster.log2_speed > original.log2_speed + 1.0, (original.log2_speed, faster.log2_speed)
    assert faster.log2_speed > 0.0


def test_equivariance_roughly_holds_on_a_held_out_clip(juggle_frames):
    model = shared_model()
    one = estimate_span(juggle_frames[:40], model).log2_speed
    two = estimate_span(juggle_frames[::2][:40], model).log2_speed
    four = estimate_span(juggle_frames[::4][:40], model).log2_speed
    assert 0.3 < two - one < 1.7
    assert 1.0 < four - one < 3.0


def test_still_footage_is_called_still_not_guessed():
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (120, 160, 3)).astype(np.uint8), (7, 7), 2)
    frames = [np.clip(base + rng.normal(0, 0.6, base.shape), 0, 255).astype(np.uint8) for _ in range(24)]
    result = detect_speed_frames(frames, 30)
    assert result.estimate.speed_class is SpeedClass.STILL
    assert result.estimate.speed is None
    assert result.decided_by in ("learned", "synthetic_retime")  # a stage name, like every other answer
    assert any(item.stage == result.decided_by for probe in result.probes for item in probe.estimate.evidence)


def scene_clip(path: Path, frames: int = 48, fps: int = 30, seed: int = 5) -> Path:
    spec = random_scene(seed, width=160, height=96, capture_fps=fps, duration_frames=frames)
    write_video(render_frames(spec), path, fps, crf=20)
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_cli_json_has_the_documented_shape(tmp_path, capsys):
    clip = scene_clip(tmp_path / "scene.mp4")
    plot = tmp_path / "curve.png"
    status, out, _ = run_cli(capsys, "detect", str(clip), "--json", "--plot", str(plot))
    assert status == 0
    data = json.loads(out)
    for key in ("speed", "capture_fps", "class", "confidence", "segments", "evidence", "curve"):
        assert key in data
    assert data["class"] in {c.value for c in SpeedClass}
    assert 0 <= data["confidence"] <= 1
    assert data["segments"][0]["start"] == 0.0
    assert math.isclose(data["segments"][-1]["end"], 48 / 30, rel_tol=1e-6)
    for item in data["segments"] + data["curve"]:
        assert set(item) >= {"start", "end", "speed", "class", "confidence"}
        assert item["end"] > item["start"]
    assert data["evidence"]["decided_by"]
    assert cv2.imread(str(plot)).shape == (320, 900, 3)


def test_cli_table_names_class_and_segments(tmp_path, capsys):
    clip = scene_clip(tmp_path / "scene.mp4")
    status, out, _ = run_cli(capsys, "detect", str(clip))
    assert status == 0
    assert "class" in out and "start s" in out and "decided by" in out


def test_clip_shorter_than_a_window_is_refused_with_the_count(tmp_path, capsys):
    clip = scene_clip(tmp_path / "short.mp4", frames=5)
    status, _, err = run_cli(capsys, "detect", str(clip))
    assert status == 2
    assert "5 frames" in err and "at least 8" in err


def test_still_image_file_is_refused(tmp_path, capsys):
    image = tmp_path / "still.png"
    cv2.imwrite(str(image), np.full((48, 64, 3), 128, np.uint8))
    status, _, err = run_cli(capsys, "detect", str(image))
    assert status == 2
    assert "still image" in err or "at least 8" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--output", "x.json"], "add --json"),
        (["--density", "0"], "outside (0, 1]"),
        (["--plot", "x.jpg"], "PNG"),
    ],
)
def test_conflicting_or_bad_options_are_refused(tmp_path, capsys, extra, message):
    clip = scene_clip(tmp_path / "scene.mp4", frames=12)
    status, _, err = run_cli(capsys, "detect", str(clip), *extra)
    assert status == 2 and message in err


def test_frames_too_small_to_tell_motion_are_refused(tmp_path, capsys):
    path = tmp_path / "tiny.mp4"
    spec = random_scene(7, width=160, height=96, capture_fps=30, duration_frames=12)
    write_video((image[::8, ::8] for image in render_frames(spec)), path, 30, crf=20)
    status, _, err = run_cli(capsys, "detect", str(path))
    assert status == 2 and "20x12 pixels, too small" in err


def test_missing_file_is_named(tmp_path, capsys):
    status, _, err = run_cli(capsys, "detect", str(tmp_path / "nope.mp4"))
    assert status == 2 and "nope.mp4" in err


def test_variable_frame_rate_is_reported_by_timestamps(tmp_path):
    path = tmp_path / "vfr.mkv"
    spec = random_scene(7, width=160, height=96, capture_fps=30, duration_frames=40)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        time_ms = 0
        for index, image in enumerate(render_frames(spec)):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = time_ms, Fraction(1, 1000)
            time_ms += 33 if index % 2 else 50
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    result = detect_speed(path)
    data = result.to_json()
    assert result.analysis.is_vfr
    assert any("variable frame rate" in note for note in data["analysis"]["notes"])
    last_start_ms = sum(33 if i % 2 else 50 for i in range(39))
    assert data["segments"][-1]["end"] > last_start_ms / 1000


@pytest.mark.allow_error_log
def test_damaged_stream_reports_what_was_analysed(tmp_path):
    clip = scene_clip(tmp_path / "scene.mkv", frames=96, seed=9)
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4000] = bytes(4000)
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(bytes(data))
    try:
        result = detect_speed(damaged, density=1.0)
    except InsufficientFramesError:
        pytest.fail("a partly damaged clip must still be analysed")
    assert result.analysis.frames_decoded >= 8
    assert result.analysis.probes_analysed >= 1
    if result.analysis.frames_decoded < result.analysis.frame_count:
        assert not result.analysis.complete and result.analysis.notes


def test_probes_cover_short_clips_and_spread_over_long_ones_at_keyframes():
    assert plan_probes(40, [0], 0.12) == [(0, 32), (32, 40)]
    assert plan_probes(36, [0], 0.12) == [(0, 36)]
    ranges = plan_probes(3000, list(range(0, 3000, 250)), 0.12)
    assert len(ranges) >= 3
    assert all(stop - start == PROBE_FRAMES for start, stop in ranges)
    assert all(start % 250 == 0 or start % 250 > 2 * PROBE_FRAMES for start, _ in ranges)
    assert any(start % 250 == 0 and start > 0 for start, _ in ranges)
    assert ranges[-1][1] <= 3000
    # sparse probes in a camera file (a keyframe every 250 frames) all start on a keyframe, so none
    # decodes a GOP to reach its frames, and they stay spread over the clip
    sparse = plan_probes(1798, list(range(0, 1798, 250)), 0.08)
    assert [start for start, _ in sparse] == [0, 500, 1250, 1750]
    with pytest.raises(InsufficientFramesError, match="at least 8"):
        plan_probes(5, [0], 0.12)
    # --density 1 analyses every frame, however many probes that takes
    every = plan_probes(3000, list(range(0, 3000, 250)), 1.0)
    assert every[0][0] == 0 and every[-1][1] == 3000
    assert all(a[1] == b[0] for a, b in zip(every, every[1:], strict=False))


def test_segments_restated_by_a_capture_tag_are_one_segment_and_the_table_reads_right():
    tagged = SpeedEstimate(Fraction(25, 240), Fraction(25), Fraction(240), 0.9, SpeedClass.SLOWMO)
    other = SpeedEstimate(Fraction(1), Fraction(25), Fraction(25), 0.8, SpeedClass.REALTIME)
    segments = [SpeedSegment(0, 54, tagged), SpeedSegment(54, 147, tagged), SpeedSegment(147, 250, other)]
    merged = [(s.start_frame, s.end_frame, s.window_count) for s in _merged(segments)]
    assert merged == [(0, 147, 2), (147, 250, 1)]
    segment = {"start": 0.0, "end": 1.0, "speed": 0.985, "class": "realtime", "confidence": 0.8}
    analysis = {"frames_decoded": 32, "frame_count": 30, "probes_analysed": 1, "complete": True, "notes": []}
    data = {
        "clip": "a.mp4", "class": "realtime", "confidence": 0.8, "speed": 0.985, "playback_fps": 30000 / 1001,
        "capture_fps": 30000 / 1001 / 0.985, "segments": [segment], "analysis": analysis,
        "evidence": {"decided_by": "learned", "audio": None, "items": []},
    }
    table = format_table(data)
    assert "playback    29.97 fps" in table and "0.985 (real time)" in table and "x slow" not in table


def test_a_speed_change_splits_into_segments(juggle_frames):
    """Real time, then the same action 4x sped up (a fast replay): two segments, the second faster."""
    frames = juggle_frames[:64] + juggle_frames[::4][:48]
    result = detect_speed_frames(frames, 24)
    assert len(result.segments) >= 2
    first, last = result.segments[0], result.segments[-1]
    assert first.start_frame == 0 and last.end_frame == len(frames)
    boundary = result.segments[1].start_frame
    assert 48 <= boundary <= 80

    def measured(start: int, end: int) -> float:
        return float(
            np.mean([math.log2(w.estimate.speed) for w in result.curve if start <= w.start_frame < end])
        )

    assert measured(boundary, len(frames)) > measured(0, boundary) + 1.0


def test_genuine_slow_motion_is_re_speeded_and_found_slow():
    """A 240 fps render played at 30 fps (s = 1/8): the estimate re-speeds and lands well below 1."""
    spec = random_scene(1001, width=128, height=96, capture_fps=240, duration_frames=256, flicker_hz=0.0)
    frames = list(render_frames(spec))
    span = estimate_span(frames, shared_model())
    assert span.log2_speed < -1.5, span
    assert span.respeed_strides


def test_a_file_cut_short_is_reported_incomplete(tmp_path):
    """A faststart MP4 whose second half is missing (a copy that stopped): its header still lists
    every frame. The result covers the frames that are there and says the file looks truncated."""
    whole = scene_clip(tmp_path / "scene.mp4", frames=96, seed=4)
    faststart = tmp_path / "faststart.mp4"
    with (
        av.open(str(whole)) as source,
        av.open(str(faststart), "w", options={"movflags": "faststart"}) as out,
    ):
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = stream
            out.mux(packet)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(faststart.read_bytes()[: faststart.stat().st_size * 55 // 100])
    result = detect_speed(cut, audio=False)
    assert not result.analysis.complete
    assert any("truncated" in note and "lists 96" in note for note in result.analysis.notes)
    assert detect_speed(faststart, audio=False).analysis.complete
    # a .mkv cut so: its last cluster ends cleanly, and only its declared duration tells
    whole_mkv = scene_clip(tmp_path / "scene.mkv", frames=96, seed=4)
    cut_mkv = tmp_path / "cut.mkv"
    cut_mkv.write_bytes(whole_mkv.read_bytes()[: whole_mkv.stat().st_size * 55 // 100])
    result = detect_speed(cut_mkv, audio=False)
    assert not result.analysis.complete
    assert any("truncated" in note and "runs to 3.200 s" in note for note in result.analysis.notes)
    assert detect_speed(whole_mkv, audio=False).analysis.complete


def test_damage_partway_is_reported_and_its_garbled_frames_are_not_analysed(tmp_path):
    """Bytes zeroed in the middle of a stream: the decoder drops some frames and fills in the next
    ones until a keyframe. Those may be garbled, so no probe reads them, and the result says so."""
    clip = scene_clip(tmp_path / "scene.mp4", frames=150, seed=6)
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle : middle + len(data) // 10] = bytes(len(data) // 10)
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    with FrameReader(damaged, strict=False) as reader:
        frames = [(frame.index, frame.concealed) for frame in reader]
        assert reader.damage_count > 0 and reader.damage
    assert any(concealed for _, concealed in frames), "some frames follow the damage"
    result = detect_speed(damaged, audio=False, density=1)
    assert not result.analysis.complete
    assert any("damaged" in note or "could not be decoded" in note for note in result.analysis.notes)
    assert result.analysis.probes_analysed < result.analysis.probes_planned


@pytest.mark.parametrize("flag", ["--output", "--plot"])
def test_an_unwritable_destination_is_refused_before_the_analysis(tmp_path, capsys, flag):
    clip = scene_clip(tmp_path / "scene.mp4", frames=12)
    folder = tmp_path / "results.png"
    folder.mkdir()
    extra = ["--json"] if flag == "--output" else []
    status, out, err = run_cli(capsys, "detect", str(clip), *extra, flag, str(folder))
    assert status == 2 and "is a folder" in err and "Traceback" not in err
    blocked = tmp_path / "file"
    blocked.write_text("a file, not a folder")
    status, _, err = run_cli(capsys, "detect", str(clip), *extra, flag, str(blocked / "x.png"))
    assert status == 2 and "cannot make the folder" in err


def test_table_columns_stay_aligned_with_long_speeds():
    from engine.commands.detect import format_table

    segment = {"start": 0.0, "end": 1.0, "speed": 0.0615, "class": "synthetic_slowmo", "confidence": 0.91}
    data = {
        "clip": "c.mp4",
        "class": "synthetic_slowmo",
        "confidence": 0.9,
        "speed": 0.0615,
        "playback_fps": 30.0,
        "capture_fps": 487.8,
        "evidence": {"decided_by": "learned", "items": [], "audio": {"status": "off"}},
        "segments": [segment, {**segment, "speed": 1.0, "class": "realtime"}],
        "analysis": {
            "frames_decoded": 30,
            "frame_count": 30,
            "probes_analysed": 1,
            "complete": True,
            "notes": [],
        },
    }
    lines = format_table(data).splitlines()
    header = next(line for line in lines if "start s" in line)
    rows = [line for line in lines if line.strip().startswith(("0.000",))]
    assert len(rows) == 2
    assert {row.index(cls) for row, cls in zip(rows, ("synthetic_slowmo", "realtime"), strict=True)} == {
        header.index("class")
    }


def test_plot_has_time_ticks_a_key_and_marks_speeds_off_its_scale(tmp_path):
    from dataclasses import replace

    from engine.commands.detect import CLASS_COLOURS_BGR, PLOT_SIZE_PX, render_plot, time_step_s

    assert [time_step_s(span) for span in (10.6, 1.0, 95.0, 0.3)] == pytest.approx([2.0, 0.1, 10.0, 0.05])
    spec = random_scene(6, width=160, height=96, capture_fps=30, duration_frames=48)
    result = detect_speed_frames(list(render_frames(spec)), Fraction(30))
    slow = replace(result.curve[0].estimate, speed=Fraction(1, 64), speed_class=SpeedClass.SLOWMO)
    result.curve[0] = replace(result.curve[0], estimate=slow)
    image = render_plot(result)
    width, height = PLOT_SIZE_PX
    assert image.shape == (height, width, 3)
    key = image[height - 22 :, width // 2 :]
    for colour in CLASS_COLOURS_BGR.values():
        assert (key == colour).all(axis=2).any(), f"no key swatch of colour {colour}"
    blue = np.array(CLASS_COLOURS_BGR["slowmo"])
    above_floor = image[height - 62 - 8 : height - 62 - 3]  # over the bar drawn at the floor
    assert (above_floor == blue).all(axis=2).sum() > 20  # the triangle at the bottom edge


def _mkv_with_gop(path: Path, frames: int, gop: int, seed: int) -> Path:
    spec = random_scene(seed, width=160, height=96, capture_fps=30, duration_frames=frames)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        stream.options = {"crf": "20", "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "bf": "0"}
        for image in render_frames(spec):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.mark.allow_error_log
def test_a_probe_lost_to_damage_is_read_again_after_the_damage(tmp_path):
    """A damaged packet inside the second of three probes (frame 70 of a 180-frame .mkv with a
    keyframe every 30): frames 70-89 come out garbled, so that probe (60-91) is not analysed. It
    was dropped and nothing replaced it, so the clip between the first probe and the last went
    unread while the table covered it. Now a probe is read from the first keyframe after the
    damage, and the notes say so."""
    clip = _mkv_with_gop(tmp_path / "gop.mkv", 180, 30, seed=11)
    with av.open(str(clip)) as container:
        positions = {
            index: packet.pos
            for index, packet in enumerate(container.demux(video=0))
            if packet.pts is not None
        }
    data = bytearray(clip.read_bytes())
    start, stop = positions[70] + 40, positions[71] - 8
    data[start:stop] = np.random.default_rng(3).integers(0, 256, stop - start, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(bytes(data))
    assert plan_probes(180, list(range(0, 180, 30)), 0.08)[1] == (60, 92)
    result = detect_speed(damaged, audio=False)
    starts = [probe.start_frame for probe in result.probes]
    assert 90 in starts and 60 not in starts, (starts, result.analysis.notes)
    assert any("after the damage instead" in note for note in result.analysis.notes)
    assert not result.analysis.complete


def test_a_jump_in_the_timestamps_is_named_as_missing_frames(tmp_path):
    """A 30 fps clip whose frames 40-54 are missing (lost to damage by the demuxer, or a stall):
    the notes said only 'variable frame rate'; now they name the jump and the frames missing."""
    spec = random_scene(12, width=160, height=96, capture_fps=30, duration_frames=96)
    path = tmp_path / "gap.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 30)
        for index, image in enumerate(render_frames(spec)):
            if 40 <= index < 55:
                continue
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, 30)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    result = detect_speed(path, audio=False)
    assert result.analysis.frame_count == 81
    notes = [note for note in result.analysis.notes if "timestamps jump" in note]
    assert len(notes) == 1 and "after frame 39" in notes[0], notes
    assert "about 15 frames are missing" in notes[0], notes


def test_the_table_counts_the_frames_the_probes_analysed():
    """Frames decoded for a probe that damage left unanalysed were counted as analysed ('64 of
    151 frames in 1 probes' for one probe of 32); now the probes' frames are, in English."""
    segment = {"start": 0.0, "end": 6.0, "speed": 0.52, "class": "slowmo", "confidence": 0.78}
    curve = [dict(segment, start_frame=0, end_frame=32)]
    analysis = {"frames_decoded": 64, "frame_count": 151, "probes_analysed": 1, "complete": False}
    analysis["notes"] = []
    data = {
        "clip": "a.mkv", "class": "slowmo", "confidence": 0.8, "speed": 0.52, "playback_fps": 29.97,
        "capture_fps": 57.6, "segments": [segment], "curve": curve, "analysis": analysis,
        "evidence": {"decided_by": "learned", "audio": None, "items": []},
    }
    assert "analysed    32 of 151 frames in 1 probe (64 decoded; incomplete)" in format_table(data)


@pytest.mark.parametrize("count", [8, 11])
def test_a_clip_too_short_for_the_made_frame_check_is_not_called_made_with_confidence(juggle_frames, count):
    """8-11 frames of real-time sam2-juggle: the made-frame check needs 12, so it was skipped and
    the network alone called the frames made at the ordinary bar (0.81 > 0.5), confidence 0.79.
    Now the evidence says the check could not run, the network needs the raised bar, and a call
    of made frames there keeps half its confidence."""
    result = detect_speed_frames(juggle_frames[:count], 24)
    findings = [item.finding for item in result.estimate.evidence] + [
        item.finding for segment in result.segments for item in segment.estimate.evidence
    ]
    assert any(finding.startswith(f"not checked: {count} frames") for finding in findings), findings
    assert any("too few for the made-frame check" in note for note in result.analysis.notes)
    if result.estimate.speed_class is SpeedClass.SYNTHETIC_SLOWMO:
        assert result.estimate.confidence < 0.5, result.estimate


def test_made_slow_motion_has_no_capture_rate(juggle_frames):
    """Each frame of sam2-juggle shown 4 times (made 4x slow motion) at 29.97 fps: no camera ran at
    the 119.88 fps that playback / speed gives, and the table printed it as the capture rate."""
    frames = [image for image in juggle_frames[:24] for _ in range(4)]
    result = detect_speed_frames(frames, Fraction(30000, 1001))
    assert result.estimate.speed_class is SpeedClass.SYNTHETIC_SLOWMO
    data = result.to_json()
    assert "capture_fps" in data and data["capture_fps"] is None
    assert "capture     -" in format_table(dict(data, clip="made.mp4"))


def test_a_refused_run_leaves_no_folder_for_its_plot(tmp_path, capsys):
    """--plot new/sub/p.png on a clip too short to analyse: the folders were made before the
    analysis and left behind when it was refused; now they are made only when the plot is written."""
    short = scene_clip(tmp_path / "short.mp4", frames=3)
    status, _, err = run_cli(capsys, "detect", str(short), "--plot", str(tmp_path / "new" / "sub" / "p.png"))
    assert status == 2 and "at least" in err
    assert not (tmp_path / "new").exists()
    clip = scene_clip(tmp_path / "scene.mp4", frames=12)
    plot = tmp_path / "made" / "sub" / "p.png"
    assert run_cli(capsys, "detect", str(clip), "--no-audio", "--plot", str(plot))[0] == 0
    assert plot.is_file()


def test_model_option_messages_say_what_is_wrong(tmp_path, capsys):
    """--model with no manifest beside it, a damaged fine-tuned model, a synthesis model and a
    folder: each message says what was given and what would work, not an errno, a window shape,
    'no such file', or `models prepare` (which rebuilds only the shipped models)."""
    clip = scene_clip(tmp_path / "scene.mp4", frames=12)
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(MODEL_PATH.read_bytes())
    status, _, err = run_cli(capsys, "detect", str(clip), "--model", str(bare))
    assert status == 2 and "has no manifest beside it" in err and "chronoscope train speed" in err
    assert "Errno" not in err
    damaged = tmp_path / "mine.onnx"
    data = bytearray(MODEL_PATH.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    manifest_path_for(damaged).write_bytes(manifest_path_for(MODEL_PATH).read_bytes())
    status, _, err = run_cli(capsys, "detect", str(clip), "--model", str(damaged))
    assert status == 2 and "Run `chronoscope models prepare`" not in err, err
    assert "train it again (`chronoscope train speed`)" in err, err
    status, _, err = run_cli(capsys, "detect", str(clip), "--model", str(tmp_path))
    assert status == 2 and "is a folder" in err
    synthesis = tmp_path / "rife.onnx"
    synthesis.write_bytes(b"not used")
    text = manifest_path_for(MODEL_PATH).read_text().replace('"frames"', '"img0"')
    manifest_path_for(synthesis).write_text(text)
    status, _, err = run_cli(capsys, "detect", str(clip), "--model", str(synthesis))
    assert status == 2 and "is not a speed model" in err and "window" not in err, err


def test_a_damaged_shipped_speed_model_says_to_reinstall(tmp_path, monkeypatch):
    """The shipped network comes with Chronoscope: neither `models prepare` nor `train speed`
    gives it back (its manifest names the training module, so the user-model advice applied)."""
    from engine.errors import ModelIntegrityError
    from engine.speed import estimator

    shipped = tmp_path / "speed_net.onnx"
    data = bytearray(MODEL_PATH.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shipped.write_bytes(bytes(data))
    manifest_path_for(shipped).write_bytes(manifest_path_for(MODEL_PATH).read_bytes())
    monkeypatch.setattr(estimator, "MODEL_PATH", shipped)
    with pytest.raises(ModelIntegrityError) as refused:
        estimator.SpeedModel(shipped)
    text = str(refused.value)
    assert "reinstall" in text and "train it again" not in text and "models prepare" not in text, text
    assert "`git checkout engine/speed/model`" in text


@pytest.mark.allow_error_log
def test_a_damaged_packet_is_warned_about_once(tmp_path, caplog):
    """A .ts with a damaged packet mid-stream: detect scans its packets three times (index,
    keyframes, frames) and printed the same 'video packet is damaged' WARNING each time."""
    clip = scene_clip(tmp_path / "scene.ts", frames=96, seed=8)
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = np.random.default_rng(1).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(bytes(data))
    with caplog.at_level("WARNING"):
        detect_speed(damaged, audio=False)
    warned = [item.getMessage() for item in caplog.records if "damaged in the middle" in item.getMessage()]
    assert len(warned) == 1, warned
