"""The time map: exact source positions per output frame, at NTSC rates, over long timelines."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from engine.errors import FrameOutOfRangeError, InvalidTimeWarpError, TimelineError
from engine.timeline import (
    exact_number,
    exact_rate,
    list_segments,
    read_timeline,
    read_timeline_string,
    time_map,
    write_timeline,
)

FIXTURES = Path(__file__).parent / "fixtures" / "timelines"
NTSC_30 = Fraction(30000, 1001)
NTSC_24 = Fraction(24000, 1001)


def _one_clip_timeline(
    *,
    timeline_rate: Fraction,
    source_rate: Fraction,
    source_start: int,
    duration: int,
    warps: list[otio.schema.Effect],
    available: tuple[int, int] | None = None,
) -> otio.schema.Timeline:
    """A timeline with one clip whose source range is written at ``source_rate``."""
    available_range = None
    if available is not None:
        available_range = otio.opentime.TimeRange(
            otio.opentime.RationalTime(available[0], float(source_rate)),
            otio.opentime.RationalTime(available[1], float(source_rate)),
        )
    clip = otio.schema.Clip(
        name="long take",
        media_reference=otio.schema.ExternalReference(
            target_url="/media/long.mov", available_range=available_range
        ),
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(source_start, float(source_rate)),
            otio.opentime.RationalTime(duration, float(source_rate)),
        ),
    )
    clip.effects.extend(warps)
    timeline = otio.schema.Timeline(name="t", tracks=[otio.schema.Track(name="V1", children=[clip])])
    timeline.global_start_time = otio.opentime.RationalTime(0, float(timeline_rate))
    return timeline


def _through_file(timeline: otio.schema.Timeline, tmp_path: Path) -> otio.schema.Timeline:
    path = tmp_path / "t.otio"
    write_timeline(timeline, path)
    return read_timeline(path)


def test_rates_are_exact():
    assert exact_rate(24000 / 1001) == NTSC_24
    assert exact_rate(23.976) == NTSC_24
    assert exact_rate(29.97) == NTSC_30
    assert exact_rate(59.94) == Fraction(60000, 1001)
    assert exact_rate(25.0) == 25
    assert exact_rate(12.5) == Fraction(25, 2)
    assert exact_number(1 / 3) == Fraction(1, 3)
    assert exact_number(0.4) == Fraction(2, 5)
    with pytest.raises(TimelineError, match="frame rate 0.0"):
        exact_rate(0.0)


def test_ten_minutes_at_2997_half_speed_has_no_drift(tmp_path):
    frames = 10 * 60 * 30 + 1  # more than ten minutes at 30000/1001
    start = 108000
    timeline = _one_clip_timeline(
        timeline_rate=NTSC_30, source_rate=NTSC_30, source_start=start, duration=frames,
        warps=[otio.schema.LinearTimeWarp(time_scalar=0.5)],
    )
    (segment,) = list_segments(_through_file(timeline, tmp_path))
    mapping = time_map(segment)
    assert len(mapping) == frames
    last = mapping.frame(frames - 1)
    expected = Fraction(start) + Fraction(frames - 1, 2)
    assert last.source_position_frames == expected
    assert (last.source_frame, last.phase, last.exact) == (start + 9000, Fraction(0), True)
    assert mapping.frame(frames - 2).phase == Fraction(1, 2)
    # Every frame: floor/phase split is consistent and even frames are exact.
    for mapped in mapping:
        assert mapped.source_frame + mapped.phase == mapped.source_position_frames
        assert mapped.exact == (mapped.output_frame % 2 == 0)
    # The same map computed the float way (seconds per frame, accumulated) lands elsewhere.
    seconds, step_s = 0.0, 1 / 29.97 * 0.5
    for _ in range(frames - 1):
        seconds += step_s
    float_frames = start + seconds * 29.97
    assert float_frames != float(expected)
    assert mapping.source_time(frames - 1) == otio.opentime.RationalTime(float(expected), 30000 / 1001)


def test_third_speed_over_twelve_minutes_at_23976():
    frames = 12 * 60 * 24
    timeline = _one_clip_timeline(
        timeline_rate=NTSC_24, source_rate=NTSC_24, source_start=86400, duration=frames,
        warps=[otio.schema.LinearTimeWarp(time_scalar=1 / 3)],
    )
    mapping = time_map(list_segments(timeline)[0])
    assert mapping.time_scalar == Fraction(1, 3)
    n = frames - 1
    last = mapping.frame(n)
    assert last.source_position_frames == 86400 + Fraction(n, 3)
    assert last.phase == Fraction(n % 3, 3)
    accumulated = 86400.0
    for _ in range(n):
        accumulated += 1 / 3
    assert accumulated != float(last.source_position_frames), "float accumulation drifts; ours must not"


def test_source_rate_differs_from_timeline_rate():
    # 29.97 media on a 23.976 timeline at real time: 1.25 source frames per output frame.
    timeline = _one_clip_timeline(
        timeline_rate=NTSC_24, source_rate=NTSC_30, source_start=0, duration=600, warps=[],
    )
    (segment,) = list_segments(timeline)
    assert segment.record_frames == 480
    mapping = time_map(segment)
    assert mapping.step_frames == Fraction(5, 4)
    assert [m.source_position_frames for m in mapping.frames()][:5] == [0, Fraction(5, 4), Fraction(5, 2),
                                                                        Fraction(15, 4), 5]
    assert mapping.frame(479).source_position_frames == Fraction(479 * 5, 4)
    # 59.94 media slowed to 0.4 on a 29.97 timeline: 0.8 source frames per output frame.
    slow = _one_clip_timeline(
        timeline_rate=NTSC_30, source_rate=Fraction(60000, 1001), source_start=100, duration=200,
        warps=[otio.schema.LinearTimeWarp(time_scalar=0.4)],
    )
    slow_map = time_map(list_segments(slow)[0])
    assert slow_map.step_frames == Fraction(4, 5)
    assert slow_map.frame(99).source_position_frames == 100 + Fraction(99 * 4, 5)


def test_freeze_frame_shows_first_source_frame():
    timeline = _one_clip_timeline(
        timeline_rate=Fraction(25), source_rate=Fraction(25), source_start=77, duration=50,
        warps=[otio.schema.FreezeFrame()],
    )
    mapping = time_map(list_segments(timeline)[0])
    assert mapping.freeze_frame and mapping.step_frames == 0
    assert {(m.source_frame, m.exact) for m in mapping} == {(77, True)}
    assert mapping.needed_source_frames() == (77, 77)
    assert not mapping.needs_handles


def test_handles_needed_and_available():
    fast = _one_clip_timeline(
        timeline_rate=Fraction(24), source_rate=Fraction(24), source_start=10, duration=48,
        warps=[otio.schema.LinearTimeWarp(time_scalar=2.0)], available=(0, 200),
    )
    mapping = time_map(list_segments(fast)[0])
    assert mapping.needed_source_frames() == (10, 10 + 47 * 2)
    assert mapping.needs_handles and mapping.handles_available is True
    short = _one_clip_timeline(
        timeline_rate=Fraction(24), source_rate=Fraction(24), source_start=10, duration=48,
        warps=[otio.schema.LinearTimeWarp(time_scalar=2.0)], available=(0, 60),
    )
    short_map = time_map(list_segments(short)[0])
    assert short_map.needs_handles and short_map.handles_available is False
    unknown = _one_clip_timeline(
        timeline_rate=Fraction(24), source_rate=Fraction(24), source_start=10, duration=48,
        warps=[otio.schema.LinearTimeWarp(time_scalar=2.0)],
    )
    assert time_map(list_segments(unknown)[0]).handles_available is None
    slow = _one_clip_timeline(
        timeline_rate=Fraction(24), source_rate=Fraction(24), source_start=10, duration=48,
        warps=[otio.schema.LinearTimeWarp(time_scalar=0.5)], available=(10, 48),
    )
    slow_map = time_map(list_segments(slow)[0])
    assert slow_map.needed_source_frames() == (10, 34)  # 10 + 47/2 = 33.5: needs frame 34 to blend
    assert not slow_map.needs_handles and slow_map.handles_available is True


def test_resolve_export_maps_including_transition_overlap():
    segments = {s.clip_name: s for s in list_segments(read_timeline(FIXTURES / "resolve_export.otio"))}
    a002 = time_map(segments["A002_C001.mov"])
    assert a002.visible_output_frames == (-6, 96)
    head = a002.frame(-6)
    assert head.source_position_frames == 86500 - 3
    assert a002.needed_source_frames() == (86497, 86548)
    assert a002.needed_source_frames(include_transitions=False) == (86500, 86548)
    with pytest.raises(FrameOutOfRangeError, match="frames -6 to 95"):
        a002.frame(96)
    freeze = time_map(segments["A003_C007.mov"])
    assert freeze.output_frames == 48 and {m.source_frame for m in freeze} == {1000}
    quarter = time_map(segments["A004_C002.mov"])
    assert quarter.frame(39).source_position_frames == 86400 + Fraction(39, 4)
    summary = time_map(segments["B001.mov"]).to_dict()
    assert summary["time_scalar"] == "2"
    assert summary["last"]["source_frame"] == 120 + 47 * 2
    # B001 at 2x needs source frames up to 214, but its media ends at frame 199.
    assert summary["needed_source_frames"] == [120, 214]
    assert summary["needs_handles"] is True and summary["handles_available"] is False


def test_disabled_warp_is_ignored_and_other_time_effects_refused():
    disabled = otio.schema.LinearTimeWarp(time_scalar=-1.0)
    disabled.enabled = False
    timeline = _one_clip_timeline(
        timeline_rate=Fraction(24), source_rate=Fraction(24), source_start=0, duration=10, warps=[disabled],
    )
    assert list_segments(timeline)[0].time_scalar == 1
    text = otio.adapters.write_to_string(
        _one_clip_timeline(timeline_rate=Fraction(24), source_rate=Fraction(24), source_start=0, duration=10,
                           warps=[otio.schema.TimeEffect(name="ramp", effect_name="SpeedRamp")])
    )
    expected = "TimeEffect 'ramp' is not supported; works: LinearTimeWarp"
    with pytest.raises(InvalidTimeWarpError, match=expected):
        list_segments(read_timeline_string(text))


def test_fraction_phase_is_always_in_unit_interval():
    timeline = _one_clip_timeline(
        timeline_rate=NTSC_24, source_rate=Fraction(50), source_start=3, duration=500,
        warps=[otio.schema.LinearTimeWarp(time_scalar=0.37)],
    )
    mapping = time_map(list_segments(timeline)[0])
    for mapped in mapping:
        assert 0 <= mapped.phase < 1
        assert mapped.source_frame == math.floor(mapped.source_position_frames)


def test_length_not_whole_in_timeline_frames_is_counted_and_warned(caplog):
    # 101 frames of 29.97 media last 80.8 frames of a 23.976 timeline.
    timeline = _one_clip_timeline(
        timeline_rate=NTSC_24, source_rate=NTSC_30, source_start=0, duration=101, warps=[],
    )
    with caplog.at_level("WARNING"):
        (segment,) = list_segments(timeline)
    assert segment.record_frames == 81
    assert "404/5 timeline frames, not a whole number" in caplog.text


def test_nested_stack_is_skipped_with_warning_and_disabled_flags_kept(caplog):
    timeline = _one_clip_timeline(
        timeline_rate=Fraction(24), source_rate=Fraction(24), source_start=0, duration=10, warps=[],
    )
    inner = otio.schema.Clip(
        name="inside",
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, 24), otio.opentime.RationalTime(12, 24)
        ),
    )
    compound = otio.schema.Stack(name="compound", children=[otio.schema.Track(children=[inner])])
    track = timeline.tracks[0]
    track.insert(0, compound)
    after = otio.schema.Clip(
        name="after",
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, 24), otio.opentime.RationalTime(5, 24)
        ),
    )
    after.enabled = False
    track.append(after)
    with caplog.at_level("WARNING"):
        segments = list_segments(timeline)
    assert "(Stack 'compound') is nested; its clips are not listed" in caplog.text
    assert [(s.clip_name, s.record_start_frames, s.enabled) for s in segments] == [
        ("long take", 12, True), ("after", 22, False)
    ]
