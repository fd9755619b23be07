"""Decision rules around the learned estimator: high-rate streams, the playback-rate offset, and
when a synthetic-retime pattern may decide. Clips are rendered here (procedural scenes, PyAV)."""

from __future__ import annotations

import json
import math
import shutil
from fractions import Fraction

import numpy as np
import pytest

from engine.models.manifest import manifest_path_for
from engine.scenes import h264_roundtrip, random_scene, render_frames, write_video
from engine.speed.detect import (
    _learned_estimate,
    detect_speed,
    detect_speed_frames,
    network_synthetic_bar,
    rate_offset_log2,
    retime_agrees,
)
from engine.speed.estimator import (
    MODEL_PATH,
    RATE_RELATIVE_RECIPE_VERSION,
    TRAINING_MODULE,
    SpanEstimate,
    SpeedModel,
    recipe_version,
)
from engine.speed.result import SpeedClass
from engine.speed.synthetic_retime import RetimeFinding, detect_synthetic_retime, flicker_gains


@pytest.mark.parametrize(
    ("playback_fps", "offset"),
    [(Fraction(24000, 1001), -0.3236), (25, -0.2630), (30, 0.0), (10, -1.585), (60, 1.0), (240, 3.0)],
)
def test_rate_offset_is_log2_of_playback_rate_over_30(playback_fps, offset):
    assert rate_offset_log2(Fraction(playback_fps), every_rate=True) == pytest.approx(offset, abs=1e-3)
    legacy = rate_offset_log2(Fraction(playback_fps), every_rate=False)
    assert legacy == pytest.approx(max(offset, 0.0), abs=1e-3)


@pytest.mark.parametrize(
    ("converter", "version"),
    [
        ({"module": TRAINING_MODULE, "version": 2}, 2),
        ({"module": TRAINING_MODULE, "version": 1}, 1),
        ({"module": TRAINING_MODULE}, 1),
        ({}, 1),
        ({"module": "engine.models.convert_rife", "version": 2}, 1),
        ({"module": TRAINING_MODULE, "version": "2"}, 1),
        ({"module": TRAINING_MODULE, "version": 2.0}, 1),
        ({"module": TRAINING_MODULE, "version": True}, 1),
    ],
)
def test_recipe_version_is_read_strictly_from_the_manifest(converter, version):
    assert recipe_version(converter) == version


def test_detect_adds_the_rate_offset_below_30fps_only_for_version_2_networks(tmp_path):
    """The same network file under a version-1 and a version-2 manifest, on a 24 fps pan: the
    version-2 reading is log2(24 / 30) lower; the shipped network is version 1."""
    shipped = SpeedModel()
    assert not shipped.reads_at_play_rate
    manifest = json.loads(manifest_path_for(MODEL_PATH).read_text())
    manifest["converter"]["version"] = RATE_RELATIVE_RECIPE_VERSION
    copied = tmp_path / MODEL_PATH.name
    shutil.copyfile(MODEL_PATH, copied)
    manifest_path_for(copied).write_text(json.dumps(manifest))
    version_2 = SpeedModel(copied)
    assert version_2.reads_at_play_rate
    rng = np.random.default_rng(3)
    texture = np.repeat(np.repeat(rng.integers(0, 255, (60, 200, 3), dtype=np.uint8), 2, 0), 2, 1)
    frames = [np.ascontiguousarray(texture[:, 3 * i : 3 * i + 160]) for i in range(48)]
    legacy = detect_speed_frames(frames, Fraction(24), model=shipped).learned_log2_speed
    rate_relative = detect_speed_frames(frames, Fraction(24), model=version_2).learned_log2_speed
    assert legacy is not None and rate_relative is not None
    assert rate_relative - legacy == pytest.approx(math.log2(24 / 30), abs=1e-6)


def test_high_rate_stream_without_tag_is_its_own_capture_rate(tmp_path):
    """A 240 fps render stored at 240 fps: real time, captured at 240 (not about 1400 fps)."""
    spec = random_scene(11, width=128, height=96, capture_fps=240, duration_frames=120)
    path = tmp_path / "stored-240.mp4"
    write_video(render_frames(spec), path, 240, crf=20)
    result = detect_speed(path).to_json()
    assert result["class"] == "realtime"
    assert result["capture_fps"] == pytest.approx(240.0)
    assert result["evidence"]["decided_by"] == "metadata"
    assert result["scores"]["learned_log2_speed"] > -1.0


def test_a_still_high_rate_stream_stays_still(tmp_path):
    """A still picture stored at 120 fps with no capture tag: too still to tell, clip and segments
    alike (it used to come out as real time captured at 120 fps over still segments)."""
    picture = np.random.default_rng(2).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    path = tmp_path / "still-120.mp4"
    write_video([picture] * 96, path, 120, crf=20)
    result = detect_speed(path, audio=False).to_json()
    assert result["class"] == "still" and result["capture_fps"] is None
    assert {segment["class"] for segment in result["segments"]} == {"still"}


def span(log2_speed: float | None, synthetic: float = 0.0) -> SpanEstimate:
    return SpanEstimate(log2_speed, 0.35, synthetic, 5.0, 3)


@pytest.mark.parametrize(
    ("finding", "estimate", "decisive"),
    [
        (RetimeFinding("duplicate", Fraction(2), confidence=0.55), span(0.0), True),
        (RetimeFinding("blend", Fraction(2), confidence=0.95), span(-3.0), True),
        (RetimeFinding("interpolate", Fraction(4), confidence=0.64), span(-3.0), False),
        (RetimeFinding("interpolate", Fraction(4), confidence=0.64), span(-3.0, 0.9), True),
        (RetimeFinding("interpolate", Fraction(2), confidence=0.68), span(-1.2), True),
        (RetimeFinding("blend", Fraction(3, 2), confidence=0.75), span(0.1), False),
        (RetimeFinding("blend", Fraction(2), confidence=0.75), span(None), False),
    ],
)
def test_weak_patterns_need_the_learned_stage_to_agree(finding, estimate, decisive):
    assert retime_agrees(finding, estimate) is decisive


def test_on_high_rate_streams_no_pattern_decides_without_the_network():
    """Sub-pixel motion at 120-240 fps makes near copies and neighbour means of captured frames."""
    strong_blend = RetimeFinding("blend", Fraction(2), confidence=0.99)
    duplicate = RetimeFinding("duplicate", Fraction(2), confidence=0.9)
    assert not retime_agrees(strong_blend, span(-0.1), high_rate=True)
    assert not retime_agrees(duplicate, span(0.0), high_rate=True)
    assert retime_agrees(strong_blend, span(-0.1, 0.9), high_rate=True)
    assert retime_agrees(duplicate, span(0.0, 0.9), high_rate=True)


@pytest.mark.parametrize("capture_fps", [120, 240])
def test_high_rate_segments_agree_with_the_clip(tmp_path, capture_fps):
    """Every segment of a native-rate render says what the clip says: real time at C = P."""
    spec = random_scene(capture_fps, width=160, height=120, capture_fps=capture_fps, duration_frames=96)
    path = tmp_path / f"native-{capture_fps}.mp4"
    write_video(render_frames(spec), path, capture_fps, crf=23)
    result = detect_speed(path).to_json()
    assert result["class"] == "realtime" and result["capture_fps"] == pytest.approx(capture_fps)
    assert {segment["class"] for segment in result["segments"]} == {"realtime"}


def test_flicker_gains_divide_out_global_brightness():
    base = np.random.default_rng(0).uniform(40, 200, size=(32, 48)).astype(np.float32)
    frames = [base * (1.0 + 0.2 * np.sin(i * 2.1)) for i in range(12)]
    gains = flicker_gains(frames)
    levelled = [frame * gain for frame, gain in zip(frames, gains, strict=True)]
    assert np.ptp([frame.mean() for frame in levelled]) < 0.01 * base.mean()


def test_mains_flicker_in_genuine_footage_is_not_made_frames():
    """A 240 fps scene lit at 100 Hz, every 2nd frame played at 30: the flicker aliases to a
    period of 3 frames, which used to pass for interpolated frames (validation seed 2002)."""
    spec = random_scene(
        2002, width=256, height=144, capture_fps=240, duration_frames=64, object_count=3, flicker_hz=100.0
    )
    frames = h264_roundtrip(list(render_frames(spec))[::2][:24], 30)
    finding = detect_synthetic_retime(frames)
    assert not finding.is_synthetic, finding.to_dict()


def test_no_pattern_in_tested_motion_raises_the_networks_bar():
    """Where the linear-motion test had motion to work on and found no made frames, the network
    alone needs p > 0.8 to call frames made; untested or patterned windows keep 0.5."""
    evidence: list = []
    tested_none = RetimeFinding("none", confidence=0.6, motion_tested=True)
    untested_none = RetimeFinding("none", confidence=0.6, motion_tested=False)
    still = RetimeFinding("still", confidence=0.8)
    assert network_synthetic_bar([tested_none, tested_none, untested_none], evidence) == 0.8
    assert any("no periodic made frames" in item.finding for item in evidence)
    assert network_synthetic_bar([tested_none, untested_none], []) == 0.5
    assert network_synthetic_bar([untested_none, None], []) == 0.5
    assert network_synthetic_bar([still, tested_none], []) == 0.8
    assert network_synthetic_bar([], []) == 0.5


@pytest.mark.parametrize(
    ("probability", "bar", "expected"),
    [
        (0.72, 0.5, "synthetic_slowmo"),
        (0.72, 0.8, "slowmo"),
        (0.96, 0.8, "synthetic_slowmo"),
    ],
)
def test_network_alone_calls_slow_frames_made_only_above_its_bar(probability, bar, expected):
    estimate = _learned_estimate(-2.0, 0.35, probability, Fraction(30), [], synthetic_bar=bar)
    assert estimate.speed_class.value == expected


def test_probes_whose_check_could_not_test_abstain_from_the_retime_vote():
    """One probe with made frames, one whose motion was too steady or sparse to test: the made
    frames decide. Probes that tested their motion and found none still vote against."""
    from engine.speed.detect import ProbeResult, _aggregate, _probe_estimate

    def probe(start: int, finding: RetimeFinding, reading: SpanEstimate) -> ProbeResult:
        estimate = _probe_estimate(reading, finding, Fraction(30))
        return ProbeResult(start, start + 32, reading, finding, estimate)

    made = probe(0, RetimeFinding("interpolate", Fraction(2), confidence=0.9), span(-1.0))
    untested = probe(32, RetimeFinding("none", confidence=0.6, motion_tested=False), span(-0.3))
    tested = probe(64, RetimeFinding("none", confidence=0.6, motion_tested=True), span(-0.3))
    assert _aggregate([made, untested], Fraction(30), []).speed_class is SpeedClass.SYNTHETIC_SLOWMO
    assert _aggregate([made, tested, tested], Fraction(30), []).speed_class is not SpeedClass.SYNTHETIC_SLOWMO


def test_still_probes_pass_the_retime_check_on_a_limited_number_of_times():
    """Nine still probes, checks scheduled on 0, 4 and 8: each still one passes its check to the
    next, but only RETIME_PROBES extra checks in all, so a still clip does not check them all."""
    from engine.speed.detect import RETIME_PROBES, ProbeResult, RetimeSchedule, _probe_estimate

    schedule = RetimeSchedule.for_probes(9)
    still = RetimeFinding("still", confidence=0.8)
    checked = []
    for number in range(9):
        wanted = schedule.wants(number)
        finding = still if wanted else None
        reading = span(None)
        schedule.record(
            number,
            ProbeResult(
                number * 32,
                number * 32 + 32,
                reading,
                finding,
                _probe_estimate(reading, finding, Fraction(30)),
            ),
        )
        if wanted:
            checked.append(number)
    scheduled = [number for number in range(9) if number % schedule.every == 0]
    assert set(scheduled) <= set(checked)
    assert len(checked) == len(scheduled) + RETIME_PROBES


@pytest.mark.parametrize(("confidence", "made"), [(0.88, True), (0.7, False)])
def test_a_tie_goes_to_made_frames_only_on_a_decisive_pattern(confidence, made):
    """One probe with an interpolation pattern (the network reads it slow, so it agrees), one
    whose tested motion showed none: a pattern decisive on its own wins the tie, a weaker one
    does not."""
    from engine.speed.detect import ProbeResult, _aggregate, _probe_estimate

    def probe(start: int, finding: RetimeFinding, reading: SpanEstimate) -> ProbeResult:
        return ProbeResult(
            start, start + 32, reading, finding, _probe_estimate(reading, finding, Fraction(30))
        )

    pattern = probe(0, RetimeFinding("interpolate", Fraction(2), confidence=confidence), span(-1.0))
    assert pattern.estimate.speed_class is SpeedClass.SYNTHETIC_SLOWMO
    tested = probe(32, RetimeFinding("none", confidence=0.6, motion_tested=True), span(-0.3))
    clip = _aggregate([pattern, tested], Fraction(30), [])
    assert (clip.speed_class is SpeedClass.SYNTHETIC_SLOWMO) is made


def test_a_clip_whose_every_probe_is_called_made_is_made():
    """The gopro walk of the held-out set, as its three probes read: two whose tested motion showed
    no pattern but whose network probability passes the raised bar, and one with a decisive
    interpolation pattern where the network reads 0.28. Every probe, and so every segment, is
    made slow motion; the clip used to average the probabilities (0.73, under the bar) and come
    out as genuine slow motion, contradicting all of them."""
    from engine.speed.detect import EVERY_PROBE_MADE, _aggregate, build_segments

    tested = RetimeFinding("none", confidence=0.6, motion_tested=True)
    probes = [
        probe_of(0, tested, span(-4.0, 0.92)),
        probe_of(32, tested, span(-4.5, 0.98)),
        probe_of(64, RetimeFinding("interpolate", Fraction(4), confidence=0.9), span(-2.5, 0.28)),
    ]
    assert all(item.estimate.speed_class is SpeedClass.SYNTHETIC_SLOWMO for item in probes)
    evidence = []
    clip = _aggregate(probes, Fraction(30), evidence)
    assert clip.speed_class is SpeedClass.SYNTHETIC_SLOWMO
    assert clip.speed == probes[0].estimate.speed
    assert evidence[-1].stage == "synthetic_retime" and evidence[-1].finding.startswith(EVERY_PROBE_MADE)
    assert evidence[-1].value == "3/3"
    segments = build_segments(probes, 96, Fraction(30))
    assert {segment.estimate.speed_class for segment in segments} == {SpeedClass.SYNTHETIC_SLOWMO}


def test_network_only_calls_make_a_clip_only_when_every_probe_agrees():
    """Tested probes with no pattern: two above the network's raised bar and one under it is the
    genuine validation render of seed 2003 (240 fps played at 30), which stays genuine slow
    motion; when all three are over the bar the clip is made, credited to the network."""
    from engine.speed.detect import EVERY_PROBE_MADE, _aggregate

    tested = RetimeFinding("none", confidence=0.6, motion_tested=True)
    over = [probe_of(start, tested, span(-3.0, 0.95)) for start in (0, 32)]
    under = probe_of(64, tested, span(-3.0, 0.1))
    assert under.estimate.speed_class is SpeedClass.SLOWMO
    assert _aggregate([*over, under], Fraction(30), []).speed_class is SpeedClass.SLOWMO
    evidence = []
    clip = _aggregate([*over, probe_of(64, tested, span(-3.0, 0.9))], Fraction(30), evidence)
    assert clip.speed_class is SpeedClass.SYNTHETIC_SLOWMO
    assert (evidence[-1].stage, evidence[-1].finding, evidence[-1].value) == (
        "learned",
        EVERY_PROBE_MADE,
        "3/3",
    )


def probe_of(start: int, finding: RetimeFinding, reading: SpanEstimate):
    from engine.speed.detect import ProbeResult, _probe_estimate

    return ProbeResult(start, start + 32, reading, finding, _probe_estimate(reading, finding, Fraction(30)))


def test_one_probe_read_far_from_its_neighbours_does_not_split_one_speed_in_two():
    """A 120 fps take played at 30, as its three probes read (3.73x, 5.93x and 3.98x slow): the
    second probe is too far from the first to join it, the third joins the second, and the two
    runs agree as runs (medians 0.38 octave apart). It came out as two segments, 3.7x and 4.9x
    slow, and mining cut it into clips at 112 and 146 fps."""
    import math

    from engine.speed.detect import build_segments

    tested = RetimeFinding("none", confidence=0.6, motion_tested=True)
    readings = [math.log2(0.2677), math.log2(0.1687), math.log2(0.2509)]
    starts = (0, 32, 64)
    probes = [probe_of(start, tested, span(value)) for start, value in zip(starts, readings, strict=True)]
    assert all(item.estimate.speed_class is SpeedClass.SLOWMO for item in probes)
    (segment,) = build_segments(probes, 96, Fraction(30))
    assert (segment.start_frame, segment.end_frame) == (0, 96)
    assert 3.5 < 1 / float(segment.estimate.speed) < 4.5

    octaves = (0.0, -1.0, -2.0)
    ramp = [probe_of(start, tested, span(value)) for start, value in zip(starts, octaves, strict=True)]
    assert len(build_segments(ramp, 96, Fraction(30))) == 3, "an octave apart is a change of speed"


def test_a_segment_of_one_probe_is_that_probe():
    """Its confidence is the probe's own (the curve and the segment used to differ in the third
    decimal: the segment swapped the probe's spread for the model's)."""
    from engine.speed.detect import build_segments

    tested = RetimeFinding("none", confidence=0.6, motion_tested=True)
    reading = SpanEstimate(-0.2, 0.61, 0.01, 5.0, 3)
    (segment,) = build_segments([probe_of(0, tested, reading)], 32, Fraction(30))
    assert segment.estimate.confidence == probe_of(0, tested, reading).estimate.confidence
    assert segment.estimate.speed_log2_sigma == 0.61


def test_segments_that_differ_from_the_clip_are_noted_with_their_shares():
    from engine.speed.detect import segment_share_note
    from engine.speed.result import SpeedEstimate, SpeedSegment

    def estimate(speed_class: SpeedClass, speed: Fraction | None = Fraction(1, 4)) -> SpeedEstimate:
        return SpeedEstimate(speed, Fraction(30), None, 0.9, speed_class)

    made, genuine = estimate(SpeedClass.SYNTHETIC_SLOWMO), estimate(SpeedClass.SLOWMO)
    segments = [SpeedSegment(0, 240, made, 2), SpeedSegment(240, 320, genuine, 1)]
    note = segment_share_note(segments, genuine)
    assert note == (
        "the segments differ from the clip (slowmo): 75 % synthetic_slowmo, 25 % slowmo; "
        "the clip pools every probe"
    )
    assert segment_share_note(segments[:1], made) is None
    assert "100 % synthetic_slowmo" in segment_share_note(segments[:1], genuine)


def test_once_made_frames_are_found_later_probes_that_read_slow_are_checked():
    """A procedural scene with every frame shown twice, read whole (5 probes; checks scheduled on
    0, 2 and 4): the pattern in probe 0 has probes 1 and 3, which read still or slow, checked too,
    so no segment comes out as still or many times slow between made ones. A clip with no pattern
    keeps the sparse schedule."""
    from engine.speed.detect import RetimeSchedule

    spec = random_scene(21, width=160, height=120, capture_fps=30, duration_frames=80)
    doubled = [frame for frame in render_frames(spec) for _ in range(2)]
    result = detect_speed_frames(doubled, Fraction(30))
    assert len(result.probes) == 5
    assert all(probe.retime is not None for probe in result.probes)
    assert {segment.estimate.speed_class for segment in result.segments} == {SpeedClass.SYNTHETIC_SLOWMO}
    assert result.estimate.speed == Fraction(1, 2)

    schedule = RetimeSchedule.for_probes(9)
    tested = RetimeFinding("none", confidence=0.6, motion_tested=True)
    for number in range(9):
        schedule.record(number, probe_of(number * 32, tested if schedule.wants(number) else None, span(-1.0)))
    assert not schedule.made_found


def test_probes_read_before_made_frames_were_found_are_checked_after_all():
    """Real time, then a replay of every frame shown four times, then real time, read whole (9
    probes; checks scheduled on 0, 3 and 6). The replay's first probes read still to the network
    (three of four pairs are copies) and were never checked, since nothing had found made frames
    yet: at --density 1 they came out as a still segment inside the made slow motion. Once probe 3
    finds the pattern they are checked after all."""
    spec = random_scene(23, width=160, height=120, capture_fps=30, duration_frames=144)
    frames = list(render_frames(spec))
    clip = frames[:32] + [frame for frame in frames[32:80] for _ in range(4)] + frames[80:144]
    result = detect_speed_frames(clip, Fraction(30))
    assert len(result.probes) == 9
    replay = [probe for probe in result.probes if 32 <= probe.start_frame and probe.end_frame <= 224]
    assert len(replay) == 6
    assert all(probe.retime is not None and probe.retime.is_synthetic for probe in replay)
    classes = [segment.estimate.speed_class for segment in result.segments]
    assert SpeedClass.STILL not in classes
    made = [s for s in result.segments if s.estimate.speed_class is SpeedClass.SYNTHETIC_SLOWMO]
    assert len(made) == 1 and made[0].start_frame == 32 and made[0].end_frame == 224
