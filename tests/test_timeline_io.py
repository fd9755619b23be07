"""Reading timelines: OTIO shaped like Resolve's export, EDL and FCP XML through adapters, bad input."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from engine.errors import (
    AdapterNotAvailableError,
    ChronoscopeError,
    InvalidTimeWarpError,
    MediaNotFoundError,
    TimelineError,
    TimelineNotFoundError,
)
from engine.timeline import (
    PathMap,
    available_formats,
    check_media,
    list_segments,
    media_base_dir,
    read_timeline,
    read_timeline_string,
    require_media,
    time_map,
    write_timeline,
)

FIXTURES = Path(__file__).parent / "fixtures" / "timelines"
RESOLVE = FIXTURES / "resolve_export.otio"


def test_resolve_export_lists_clips_not_gaps_or_transitions():
    timeline = read_timeline(RESOLVE)
    segments = list_segments(timeline)
    assert [(s.track_label, s.index_in_track, s.clip_name) for s in segments] == [
        ("V1", 0, "A001_C003.mov"),
        ("V1", 2, "A002_C001.mov"),
        ("V1", 4, "A003_C007.mov"),
        ("V1", 5, "B001.mov"),
        ("V1", 6, "A004_C002.mov"),
        ("V2", 1, "overlay v2.mov"),
        ("V2", 2, "broll.mov"),
        ("A1", 0, "A001_C003.mov"),
    ]
    assert all(s.timeline_rate == Fraction(24000, 1001) for s in segments)
    # The transition between the first two clips takes no time; the gap of 24 frames does.
    assert [s.record_start_frames for s in segments if s.track_label == "V1"] == [0, 48, 168, 216, 264]
    first, second = segments[0], segments[1]
    assert (first.transition_head_frames, first.transition_tail_frames) == (0, 6)
    assert (second.transition_head_frames, second.transition_tail_frames) == (6, 0)
    assert second.record_range == otio.opentime.TimeRange(
        otio.opentime.RationalTime(48, 24000 / 1001), otio.opentime.RationalTime(96, 24000 / 1001)
    )


def test_resolve_export_time_warps_and_rates():
    segments = {(s.track_label, s.clip_name): s for s in list_segments(read_timeline(RESOLVE))}
    assert segments[("V1", "A001_C003.mov")].time_scalar == 1
    assert not segments[("V1", "A001_C003.mov")].is_retimed
    assert segments[("V1", "A002_C001.mov")].time_scalar == Fraction(1, 2)
    freeze = segments[("V1", "A003_C007.mov")]
    assert freeze.is_freeze_frame and freeze.time_scalar == 0
    # Its source range is written at 29.97 (60 frames): 48 frames on the 23.976 timeline.
    assert freeze.source_rate == Fraction(30000, 1001)
    assert freeze.record_frames == 48
    assert segments[("V1", "A004_C002.mov")].time_scalar == Fraction(1, 4), "stacked warps multiply"
    assert segments[("V2", "overlay v2.mov")].time_scalar == Fraction(2, 5)
    a001 = segments[("V1", "A001_C003.mov")]
    assert (a001.handle_head_frames, a001.handle_tail_frames) == (24, 240 - 24 - 48)


def test_resolve_export_media_paths_decoded():
    segments = {s.clip_name: s for s in list_segments(read_timeline(RESOLVE))}
    assert segments["overlay v2.mov"].media_path == Path("/Volumes/Footage/Graphics Pack/overlay v2.mov")
    assert segments["overlay v2.mov"].target_url == "file:///Volumes/Footage/Graphics%20Pack/overlay%20v2.mov"
    windows = segments["B001.mov"]
    assert windows.target_url == "C:\\Footage\\Day 2\\B001.mov"
    assert windows.media_path is None and "Windows path" in windows.media_problem
    path_map = PathMap.from_pairs({"C:\\Footage": "/mnt/footage"})
    mapped = list_segments(read_timeline(RESOLVE), path_map=path_map)
    assert {s.clip_name: s.media_path for s in mapped}["B001.mov"] == Path("/mnt/footage/Day 2/B001.mov")


def test_edl_through_cmx3600_adapter():
    timeline = read_timeline(FIXTURES / "chase_scene.edl")
    segments = list_segments(timeline)
    assert [s.clip_name for s in segments] == ["A001_C003.mov", "A002_C001.mov", "A003_C007.mov"]
    assert [s.record_start_frames for s in segments] == [0, 48, 168]
    assert [s.record_frames for s in segments] == [48, 96, 48]
    assert segments[0].target_url == "/Volumes/Footage/Day 1/A001_C003.mov"
    # M2 12.0 fps in a 24 fps EDL is half speed; M2 000.0 is CMX 3600's freeze frame.
    assert segments[1].time_scalar == Fraction(1, 2)
    assert segments[2].is_freeze_frame
    assert {m.source_position_frames for m in time_map(segments[2])} == {Fraction(1000)}
    assert time_map(segments[1]).frame(95).source_position_frames == Fraction(86500) + Fraction(95, 2)


@pytest.mark.parametrize("rate", [24000 / 1001, 23.976])
def test_edl_rate_option_sets_frame_rate(rate):
    segments = list_segments(read_timeline(FIXTURES / "chase_scene.edl", rate=rate))
    assert segments[0].timeline_rate == Fraction(24000, 1001)
    assert segments[0].source_start_frames == 86424
    # M2 12.0 counts in nominal 24 fps: still half speed (the adapter alone says 0.5005).
    assert segments[1].time_scalar == Fraction(1, 2)
    raw = otio.adapters.read_from_file(str(FIXTURES / "chase_scene.edl"), rate=24000 / 1001)
    assert raw.tracks[0][1].effects[0].time_scalar == pytest.approx(0.5005)


RESOLVE_M2_EDL = """TITLE: Resolve speed changes
FCM: NON-DROP FRAME

001  AX       V     C        00:00:01:00 00:00:02:00 01:00:00:00 01:00:01:00
M2   AX             012.0                00:00:01:00
* FROM CLIP NAME: half.mov

002  AX       V     C        00:00:03:00 00:00:04:00 01:00:01:00 01:00:02:00
M2   AX             048.0                00:00:03:00
* FROM CLIP NAME: double.mov

003  AX       V     C        00:00:05:00 00:00:06:00 01:00:02:00 01:00:03:00
M2   AX             000.0                00:00:05:00
* FROM CLIP NAME: hold.mov

004  AX       V     C        00:00:07:00 00:00:08:00 01:00:03:00 01:00:04:00
M2   AX             -024.0               00:00:07:00
* FROM CLIP NAME: back.mov

005  AX       V     C        00:00:09:00 00:00:09:12 01:00:04:00 01:00:05:00
M2   AX             012.0                00:00:09:00
* FROM CLIP NAME: avid-half.mov

006  AX       V     C        00:00:10:00 00:00:11:00 01:00:05:00 01:00:06:00
* FROM CLIP NAME: plain.mov
"""


def test_edl_speeds_written_as_resolve_writes_them(tmp_path):
    """DaVinci Resolve writes the source out as if the clip played at normal speed (source and
    record durations equal), and the adapter alone ignores the M2 line then (OTIO issue #948)."""
    edl = tmp_path / "resolve.edl"
    edl.write_text(RESOLVE_M2_EDL)
    raw = otio.adapters.read_from_file(str(edl), adapter_name="cmx_3600", rate=24)
    assert [len(clip.effects) for clip in raw.find_clips()] == [0, 0, 0, 0, 1, 0], "the adapter changed"
    segments = list_segments(read_timeline(edl), check_time_warps=False)
    assert [s.record_frames for s in segments] == [24] * 6
    assert [s.source_start_frames for s in segments] == [24, 72, 120, 168, 216, 240]
    assert segments[0].time_scalar == Fraction(1, 2)
    assert segments[1].time_scalar == 2
    assert segments[2].is_freeze_frame
    with pytest.raises(InvalidTimeWarpError, match="negative"):
        segments[3].time_scalar  # noqa: B018 - reverse is refused by name, not read as real time
    assert segments[4].time_scalar == Fraction(1, 2)
    assert segments[5].time_warps == () and not segments[5].is_retimed
    # a speed with a decimal reads exactly (the adapter alone: 22.8 / 24 = 0.9500000000000001)
    edl.write_text(RESOLVE_M2_EDL.replace("M2   AX             012.0", "M2   AX             022.8"))
    assert list_segments(read_timeline(edl), check_time_warps=False)[0].time_scalar == Fraction(19, 20)


def test_edl_with_drop_frame_m2_lines(tmp_path):
    edl = tmp_path / "df.edl"
    edl.write_text(
        "TITLE: df\nFCM: DROP FRAME\n\n"
        "001  AX       V     C        00:00:59;28 00:01:00;28 01:00:00;00 01:00:01;00\n"
        "M2   AX             015.0                00:00:59;28\n"
        "* FROM CLIP NAME: slow.mov\n"
    )
    (segment,) = list_segments(read_timeline(edl, rate=29.97))
    assert segment.timeline_rate == Fraction(30000, 1001)
    assert segment.source_start_frames == 1798  # 00:00:59;28 in drop frame
    assert segment.record_frames == 30 and segment.time_scalar == Fraction(1, 2)


def test_fcp_xml_through_adapter():
    timeline = read_timeline(FIXTURES / "chase_scene.xml")
    assert timeline.global_start_time.value == 86400
    segments = list_segments(timeline)
    assert [(s.track_label, s.clip_name, s.record_start_frames) for s in segments] == [
        ("V1", "A001_C003.mov", 0),
        ("V1", "B001.mov", 72),
        ("A1", "A001_C003.mov", 0),
    ]
    assert segments[0].timeline_rate == Fraction(24000, 1001)
    assert segments[0].source_start_frames == 86424
    assert segments[0].media_path == Path("/Volumes/Footage/Day 1/A001_C003.mov")
    assert segments[1].media.decoded == "C:/Footage/Day 2/B001.mov"


TIME_REMAP = """<filter><effect><name>Time Remap</name><effectid>timeremap</effectid>
  <effectcategory>motion</effectcategory><effecttype>motion</effecttype><mediatype>video</mediatype>
  <parameter><parameterid>variablespeed</parameterid><name>variablespeed</name><value>{variable}</value></parameter>
  <parameter><parameterid>speed</parameterid><name>speed</name><value>{speed}</value></parameter>
  <parameter><parameterid>reverse</parameterid><name>reverse</name><value>{reverse}</value></parameter>
</effect></filter>
            </clipitem>"""


def _remapped_chase_scene(
    folder: Path, speed: str, *, in_out: tuple[int, int] = (24, 72), variable: int = 0, reverse: str = "FALSE"
) -> Path:
    """The chase scene with its first clip (48 frames from 01:00:00:00 + ``in``) given a Time
    Remap filter, with the clipitem's ``in`` and ``out`` as given (FCP 7 counts them on the
    retimed clip: 24 to 72 at 50 % plays source frames 12 to 36)."""
    text = (FIXTURES / "chase_scene.xml").read_text()
    points = "<in>{}</in>\n            <out>{}</out>"
    text = text.replace(points.format(24, 72), points.format(*in_out), 1)
    first_end = text.index("</clipitem>") + len("</clipitem>")
    remap = TIME_REMAP.format(speed=speed, variable=variable, reverse=reverse)
    xml = folder / "remap.xml"
    xml.write_text(text[: text.index("</clipitem>")] + remap + text[first_end:])
    return xml


@pytest.mark.parametrize(
    ("speed", "in_out", "source_start", "scalar"),
    [
        ("100", (24, 72), 86424, None),
        ("50", (24, 72), 86412, Fraction(1, 2)),  # in/out on the retimed clip, as FCP 7 and Premiere write
        ("200", (24, 72), 86448, Fraction(2)),
        ("50", (24, 48), 86424, Fraction(1, 2)),  # in/out as source frames, as some tools write them
        ("50", (24, 71), 86412, Fraction(1, 2)),  # Premiere's out one short (OTIO issue #287)
        ("33.3333", (24, 72), 86408, Fraction(1, 3)),  # the fraction its digits were rounded from
        ("40", (25, 73), Fraction(86410), Fraction(2, 5)),
        ("40", (24, 72), Fraction(864096, 10), Fraction(2, 5)),  # between two source frames
    ],
)
def test_fcp_xml_constant_time_remap_plays_the_right_source_frames(
    tmp_path, speed, in_out, source_start, scalar
):
    """A clip's Time Remap at one forward speed is a LinearTimeWarp from the source frame it plays
    from (the adapter alone read ``in`` as a source frame and the clip as real time)."""
    xml = _remapped_chase_scene(tmp_path, speed, in_out=in_out)
    segment = list_segments(read_timeline(xml))[0]
    assert segment.record_frames == 48 and segment.source_start_frames == source_start
    if scalar is None:
        assert not segment.is_retimed
        return
    assert segment.time_scalar == scalar
    assert [warp.name for warp in segment.time_warps] == [f"Time Remap at {speed} % (FCP 7 XML)"]
    assert list_segments(read_timeline(xml))[1].source_start_frames == 100  # the other clip unchanged


@pytest.mark.parametrize(
    ("speed", "options", "refusal"),
    [
        (
            "50",
            {"variable": 1},
            r"its Time Remap at variable speed \(FCP 7 XML\) is not read; one constant speed cannot hold a "
            r"ramp .*split the clip where its speed changes into pieces of constant speed",
        ),
        (
            "50",
            {"reverse": "TRUE"},
            r"its Time Remap at 50 %, reversed \(FCP 7 XML\) is not read; reverse playback is not rendered "
            r"from any timeline format .*render the reversed clip in the editor first",
        ),
        ("-100", {}, r"its Time Remap at -100 %, reversed \(FCP 7 XML\) is not read; reverse playback"),
        (
            "0",
            {},
            r"its Time Remap at 0 % \(FCP 7 XML\) is not read: a hold \(speed 0\); export the timeline as "
            r"OTIO or an EDL",
        ),
        ("fast", {}, r"its Time Remap with speed 'fast' \(FCP 7 XML\) is not read: 'fast' is not a speed"),
        (
            "50",
            {"in_out": (24, 30)},
            r"its Time Remap at 50 % \(FCP 7 XML\) is not read: its in and out points \(24 to 30, 6 frames\) "
            r"fit neither the 48 frames it uses on the timeline nor the 24 source frames they play at that "
            r"speed; export the timeline as OTIO or an EDL",
        ),
    ],
)
def test_fcp_xml_time_remaps_that_cannot_be_read_are_refused_by_name(tmp_path, speed, options, refusal):
    """Never played at normal speed or from a guessed frame: refused naming the clip and why."""
    xml = _remapped_chase_scene(tmp_path, speed, **options)
    segment = list_segments(read_timeline(xml), check_time_warps=False)[0]
    with pytest.raises(InvalidTimeWarpError, match=r"clip 'A001_C003.mov' \(V1 #0\): " + refusal) as caught:
        segment.time_scalar  # noqa: B018
    if "reversed" in refusal or "variable" in refusal:
        # a reversed clip or a ramp is refused in OTIO and EDLs too: they are not offered
        assert "export the timeline as OTIO" not in str(caught.value)


def test_a_time_remap_switched_off_is_no_speed_change_and_reverse_may_be_written_1(tmp_path):
    xml = _remapped_chase_scene(tmp_path, "50")
    xml.write_text(xml.read_text().replace("<filter><effect>", "<filter><enabled>FALSE</enabled><effect>"))
    segment = list_segments(read_timeline(xml))[0]
    assert not segment.is_retimed and segment.source_start_frames == 86424
    xml = _remapped_chase_scene(tmp_path, "50", reverse="1")
    with pytest.raises(InvalidTimeWarpError, match=r"Time Remap at 50 %, reversed \(FCP 7 XML\) is not read"):
        list_segments(read_timeline(xml))


TRANSITION_XML = """<?xml version="1.0" encoding="UTF-8"?>
<xmeml version="4"><sequence id="sequence-1"><name>t</name><duration>96</duration>
<rate><timebase>24</timebase><ntsc>FALSE</ntsc></rate>
<media><video><track>
<clipitem id="clipitem-1"><name>a</name><rate><timebase>24</timebase><ntsc>FALSE</ntsc></rate>
  <start>0</start><end>-1</end><in>0</in><out>60</out>
  <file id="file-1"><name>m.mov</name><pathurl>file:///tmp/m.mov</pathurl>
    <rate><timebase>24</timebase><ntsc>FALSE</ntsc></rate><duration>500</duration></file>
</clipitem>
<transitionitem><rate><timebase>24</timebase><ntsc>FALSE</ntsc></rate>
  <start>36</start><end>60</end><alignment>center</alignment>
  <effect><name>Cross Dissolve</name><effectid>Cross Dissolve</effectid><effecttype>transition</effecttype>
    <mediatype>video</mediatype></effect></transitionitem>
<clipitem id="clipitem-2"><name>b</name><rate><timebase>24</timebase><ntsc>FALSE</ntsc></rate>
  <start>-1</start><end>96</end><in>40</in><out>{out}</out>
  <file id="file-1"/>
  <filter><effect><name>Time Remap</name><effectid>timeremap</effectid>
    <parameter><parameterid>variablespeed</parameterid><value>0</value></parameter>
    <parameter><parameterid>speed</parameterid><value>50</value></parameter>
    <parameter><parameterid>reverse</parameterid><value>FALSE</value></parameter></effect></filter>
</clipitem>
</track></video></media></sequence></xmeml>
"""


@pytest.mark.parametrize(
    ("out", "source_start"),
    [
        (100, 26),  # FCP 7: in 40 and out 100 on the slowed clip, 12 of them overlapped by the dissolve
        (70, 46),  # source frames: 40 where the dissolve starts, 6 more (12 x 50 %) at the cut
    ],
)
def test_fcp_xml_time_remap_behind_a_dissolve_counts_the_overlap(tmp_path, out, source_start):
    """Clip b at 50 % starts with a 24-frame dissolve centred on its cut (``start`` -1): its in and
    out span the dissolve's first half too, on whichever clock the file counts them."""
    xml = tmp_path / "dissolve.xml"
    xml.write_text(TRANSITION_XML.format(out=out))
    clip = list_segments(read_timeline(xml))[1]
    assert (clip.record_start_frames, clip.record_frames, clip.transition_head_frames) == (48, 48, 12)
    assert clip.source_start_frames == source_start and clip.time_scalar == Fraction(1, 2)


def test_fcp_xml_time_remap_of_a_clip_at_another_rate_than_the_sequence(tmp_path):
    """A 25 fps clip at 50 % in a 50 fps sequence: its in and out count its own frames (24 of them
    for 48 sequence frames), so it starts at source frame 100 x 50 % = 50."""
    text = _remapped_chase_scene(tmp_path, "50").read_text()
    clip_rate = "<rate><timebase>24</timebase><ntsc>TRUE</ntsc></rate>"
    first = text.index("<clipitem")
    head, rest = text[:first], text[first:]
    head = head.replace(clip_rate, "<rate><timebase>50</timebase><ntsc>FALSE</ntsc></rate>")
    rest = rest.replace(clip_rate, "<rate><timebase>25</timebase><ntsc>FALSE</ntsc></rate>", 2)
    points = "<in>{}</in>\n            <out>{}</out>"
    rest = rest.replace(points.format(24, 72), points.format(100, 124), 1)
    hour = "<string>01:00:00:00</string>\n                <frame>86400</frame>"
    rest = rest.replace(hour, "<string>00:00:00:00</string>\n                <frame>0</frame>", 1)
    xml = tmp_path / "rates.xml"
    xml.write_text(head + rest)
    segment = list_segments(read_timeline(xml))[0]
    assert segment.source_rate == 25 and segment.time_scalar == Fraction(1, 2)
    assert segment.source_start_frames == 50


def test_a_time_remap_left_as_a_plain_effect_in_an_otio_file_is_still_refused(tmp_path):
    """An OTIO file converted from FCP 7 XML by other tools keeps the filter as a plain Effect."""
    xml = _remapped_chase_scene(tmp_path, "50")
    timeline = otio.adapters.read_from_file(str(xml), adapter_name="fcp_xml")
    converted = tmp_path / "converted.otio"
    otio.adapters.write_to_file(timeline, str(converted))
    segment = list_segments(read_timeline(converted), check_time_warps=False)[0]
    with pytest.raises(InvalidTimeWarpError, match=r"its Time Remap at 50 % \(FCP 7 XML\) is not read"):
        segment.time_scalar  # noqa: B018


def test_bare_clip_is_wrapped_in_a_timeline():
    timeline = read_timeline(FIXTURES / "bare_clip.otio")
    assert isinstance(timeline, otio.schema.Timeline)
    (segment,) = list_segments(timeline)
    assert segment.clip_name == "A002_C001.mov"
    assert segment.timeline_rate == Fraction(30000, 1001)
    assert segment.time_scalar == Fraction(1, 4)


def test_track_and_stack_json_are_wrapped():
    resolve = read_timeline(RESOLVE)
    track_text = otio.adapters.write_to_string(resolve.tracks[1])
    wrapped = read_timeline_string(track_text, source="V2 track")
    assert [s.clip_name for s in list_segments(wrapped)] == ["overlay v2.mov", "broll.mov"]
    stack_text = otio.adapters.write_to_string(resolve.tracks)
    assert len(list_segments(read_timeline_string(stack_text))) == 8


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("not_otio.otio", "JSON parse error"),
        ("other_json.otio", "JSON but not OTIO"),
        ("unknown_schema.otio", "unknown OTIO schema EditDecisionList.1"),
    ],
)
def test_files_that_are_not_timelines_are_refused_by_name(name, reason):
    with pytest.raises(TimelineError) as caught:
        read_timeline(FIXTURES / name)
    assert name in str(caught.value)
    assert reason in str(caught.value)


def test_otio_object_that_is_not_a_timeline_is_refused(tmp_path):
    marker_file = tmp_path / "marker.otio"
    marker_file.write_text(otio.adapters.write_to_string(otio.schema.Marker(name="m")))
    with pytest.raises(TimelineError, match="holds a Marker, not a timeline"):
        read_timeline(marker_file)


def test_missing_timeline_file_and_unknown_suffix(tmp_path):
    with pytest.raises(TimelineNotFoundError) as caught:
        read_timeline(tmp_path / "nope.otio")
    assert isinstance(caught.value, FileNotFoundError)
    unknown = tmp_path / "cut.aaf"
    unknown.write_text("x")
    with pytest.raises(AdapterNotAvailableError, match=r"'\.aaf'.*works: \.otio"):
        read_timeline(unknown)


def test_missing_adapter_names_what_works(tmp_path, monkeypatch):
    edl = tmp_path / "cut.edl"
    edl.write_text((FIXTURES / "chase_scene.edl").read_text())
    installed = [n for n in otio.adapters.available_adapter_names() if n != "cmx_3600"]
    monkeypatch.setattr(otio.adapters, "available_adapter_names", lambda: installed)
    assert ".edl" not in available_formats()
    with pytest.raises(AdapterNotAvailableError) as caught:
        read_timeline(edl)
    message = str(caught.value)
    assert "otio-cmx3600-adapter" in message and ".otio (otio_json)" in message and ".edl (" not in message


@pytest.mark.parametrize(
    ("name", "value"),
    [("warp_negative.otio", "-1.0"), ("warp_nan.otio", "nan"),
     ("warp_infinite.otio", "inf")],
)
def test_bad_time_warps_name_clip_and_value(name, value):
    timeline = read_timeline(FIXTURES / name)
    with pytest.raises(InvalidTimeWarpError) as caught:
        list_segments(timeline)
    message = str(caught.value)
    assert value in message
    assert "clip '" in message and ".mov'" in message
    if name == "warp_negative.otio":
        assert "reverse playback" in message and "not supported yet" in message
    (segment,) = list_segments(timeline, check_time_warps=False)
    with pytest.raises(InvalidTimeWarpError):
        time_map(segment)


def test_nan_file_is_hand_written_because_otio_json_spells_it_bare():
    text = (FIXTURES / "warp_nan.otio").read_text()
    assert '"time_scalar": NaN' in text
    with pytest.raises(ValueError):
        json.loads(text, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))


def test_missing_media_listed_and_required():
    timeline = read_timeline(FIXTURES / "missing_media.otio")
    (missing,) = check_media(timeline)
    assert missing.clip_name == "LOST_C001.mov"
    assert missing.local_path == Path("/nonexistent/chronoscope-test/LOST_C001.mov")
    with pytest.raises(MediaNotFoundError) as caught:
        require_media(timeline)
    assert "LOST_C001.mov" in str(caught.value)
    assert "/nonexistent/chronoscope-test/LOST_C001.mov" in str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)


def test_check_media_with_real_files_and_path_map(tmp_path, sample_clip):
    timeline = read_timeline(RESOLVE)
    before = {m.clip_name for m in check_media(timeline)}
    assert "A001_C003.mov" in before and "B001.mov" in before
    footage = tmp_path / "footage"
    for relative in ["Day 1/A001_C003.mov", "Day 1/A002_C001.mov", "Day 2/B001.mov"]:
        target = footage / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(sample_clip.read_bytes())
    path_map = PathMap.from_pairs({"/Volumes/Footage": str(footage), "C:\\Footage": str(footage)})
    after = check_media(timeline, path_map=path_map)
    assert {m.clip_name for m in after} == {"A003_C007.mov", "A004_C002.mov", "overlay v2.mov", "broll.mov"}
    unc = next(m for m in after if m.clip_name == "broll.mov")
    assert unc.local_path is None and "Windows path" in unc.reason
    with pytest.raises(MediaNotFoundError, match=r"and 3 more"):
        require_media(timeline, path_map=path_map)


def test_relative_media_resolves_against_base_dir(tmp_path, sample_clip):
    clip = otio.schema.Clip(
        name="rel",
        media_reference=otio.schema.ExternalReference(target_url="media/rel.mp4"),
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, 24), otio.opentime.RationalTime(5, 24)
        ),
    )
    path = tmp_path / "cut.otio"
    write_timeline(otio.schema.Timeline(tracks=[otio.schema.Track(children=[clip])]), path)
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "rel.mp4").write_bytes(sample_clip.read_bytes())
    timeline = read_timeline(path)
    assert check_media(timeline, base_dir=path.parent) == []
    assert list_segments(timeline, base_dir=path.parent)[0].media_path == tmp_path / "media" / "rel.mp4"


def test_all_errors_are_chronoscope_errors():
    assert issubclass(TimelineNotFoundError, ChronoscopeError)
    assert issubclass(InvalidTimeWarpError, TimelineError)


def _bundle_source(tmp_path: Path, sample_clip: Path) -> otio.schema.Timeline:
    media = tmp_path / "source" / "hug.mp4"
    media.parent.mkdir()
    media.write_bytes(sample_clip.read_bytes())
    clip = otio.schema.Clip(
        name="hug",
        media_reference=otio.schema.ExternalReference(target_url=media.as_uri()),
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, 24), otio.opentime.RationalTime(10, 24)
        ),
    )
    clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    return otio.schema.Timeline(name="bundle", tracks=[otio.schema.Track(name="V1", children=[clip])])


def test_otiod_bundle_round_trip_finds_its_media(tmp_path, sample_clip):
    bundle = write_timeline(_bundle_source(tmp_path, sample_clip), tmp_path / "cut.otiod")
    assert (bundle / "media" / "hug.mp4").is_file()
    timeline = read_timeline(bundle)
    (segment,) = list_segments(timeline, base_dir=media_base_dir(bundle))
    assert segment.time_scalar == Fraction(1, 2)
    assert check_media(timeline, base_dir=media_base_dir(bundle)) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.otiod", "source"]


OTIOD_WRITER = """
import resource, signal, sys
from pathlib import Path
import opentimelineio as otio
from engine.errors import ChronoscopeError
from engine.timeline import write_timeline
timeline = otio.adapters.read_from_file(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), int(sys.argv[3])))
try:
    write_timeline(timeline, Path(sys.argv[2]))
except ChronoscopeError as error:
    sys.exit(f"refused: {error}")
"""


def test_an_otiod_bundle_whose_timeline_cannot_be_written_is_refused_and_left_out(tmp_path):
    import subprocess
    import sys

    pytest.importorskip("resource", reason="file size limits are POSIX")
    media = tmp_path / "source" / "tiny.mp4"
    media.parent.mkdir()
    media.write_bytes(b"\0" * 2000)  # copied into the bundle, never read
    track = otio.schema.Track(name="V1")
    for index in range(60):  # a timeline far larger than its media
        track.append(otio.schema.Clip(
            name=f"shot {index}",
            media_reference=otio.schema.ExternalReference(target_url=media.as_uri()),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(index, 24), otio.opentime.RationalTime(1, 24)
            ),
        ))
    source = tmp_path / "cut.otio"
    otio.adapters.write_to_file(otio.schema.Timeline(name="big", tracks=[track]), str(source))
    assert source.stat().st_size > 20_000
    bundle = tmp_path / "cut.otiod"
    command = [sys.executable, "-c", OTIOD_WRITER, str(source), str(bundle), "10000"]
    repo = Path(__file__).parent.parent
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=repo)
    assert done.returncode == 1, done.stderr
    assert f"refused: cannot write {bundle}: its timeline (content.otio) did not reach the disk whole" in (
        done.stderr
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cut.otio", "source"], "nothing half-written"


def test_otioz_bundle_reads_and_extracts(tmp_path, sample_clip):
    bundle = write_timeline(_bundle_source(tmp_path, sample_clip), tmp_path / "cut.otioz")
    (segment,) = list_segments(read_timeline(bundle))
    assert segment.target_url == "media/hug.mp4"
    folder = tmp_path / "unpacked"
    folder.mkdir()
    timeline = read_timeline(bundle, adapter_args={"extract_to_directory": str(folder)})
    assert check_media(timeline, base_dir=media_base_dir(bundle, extracted_to=folder)) == []


def test_fcpx_xml_through_adapter():
    segments = list_segments(read_timeline(FIXTURES / "chase_scene.fcpxml"))
    assert [(s.clip_name, s.record_start_frames, s.record_frames) for s in segments] == [
        ("A001_C003", 0, 48), ("B001", 72, 48)
    ]
    assert segments[0].timeline_rate == 24
    assert segments[0].source_start_frames == 86424
    assert segments[0].media_path == Path("/Volumes/Footage/Day 1/A001_C003.mov")
    assert segments[1].media.decoded == "C:/Footage/Day 2/B001.mov"


def test_fcpx_xml_at_ntsc_rate_is_refused_rather_than_mistimed():
    # The adapter alone reads this 23.976 file at 23 fps: 46 frames where the clip has 48.
    raw = otio.adapters.read_from_file(str(FIXTURES / "chase_scene_2398.fcpxml"))
    clip = next(iter(raw.find_clips()))
    assert clip.source_range.duration.value == 46
    with pytest.raises(TimelineError, match="24000/1001 fps, which the installed fcpx_xml adapter truncates"):
        read_timeline(FIXTURES / "chase_scene_2398.fcpxml")


def _fcpxml_19(tmp_path: Path, *, time_map: str = "") -> Path:
    """chase_scene.fcpxml as FCPXML 1.9 writes it: each asset's file in a media-rep child."""
    text = (FIXTURES / "chase_scene.fcpxml").read_text().replace('version="1.8"', 'version="1.9"')
    for name, src in (
        ("A001_C003", "file:///Volumes/Footage/Day%201/A001_C003.mov"),
        ("B001", "file:///C:/Footage/Day%202/B001.mov"),
    ):
        start = text.index(f'<asset id="r{2 if name == "A001_C003" else 3}"')
        end = text.index("/>", start)
        asset = text[start:end].replace(f' src="{src}"', "")
        media_rep = f'><media-rep kind="original-media" src="{src}"/></asset>'
        text = text[:start] + asset + media_rep + text[end + 2 :]
    if time_map:
        clip = (
            '<asset-clip name="A001_C003" ref="r2" offset="0s" start="3601s" duration="2s" '
            'format="r1" tcFormat="NDF"/>'
        )
        assert clip in text
        text = text.replace(clip, clip[:-2] + f"><timeMap>{time_map}</timeMap></asset-clip>")
    path = tmp_path / "chase19.fcpxml"
    path.write_text(text)
    return path


def test_fcpx_xml_19_media_reps_are_found():
    """FCPXML 1.9+ names files in media-rep children; the adapter alone leaves every clip missing."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = _fcpxml_19(Path(folder))
        raw = otio.adapters.read_from_file(str(path))
        assert all(isinstance(c.media_reference, otio.schema.MissingReference) for c in raw.find_clips())
        segments = list_segments(read_timeline(path))
    assert segments[0].media_path == Path("/Volumes/Footage/Day 1/A001_C003.mov")
    assert segments[0].source_start_frames == 86424 and segments[0].handle_head_frames == 24
    assert segments[1].media.decoded == "C:/Footage/Day 2/B001.mov"


def _points(*pairs: tuple[str, str], interp: str = "smooth2") -> str:
    return "".join(f'<timept time="{t}" value="{v}" interp="{interp}"/>' for t, v in pairs)


def test_fcpx_xml_constant_speed_time_map_is_read(tmp_path):
    """Final Cut Pro's "Slow 50 %": time (adjusted clip time) 3600 s to 3604 s shows original time
    3600 s to 3602 s; the clip starts at adjusted 3601 s, so at original 3600.5 s (frame 86412)."""
    path = _fcpxml_19(tmp_path, time_map=_points(("3600s", "3600s"), ("3604s", "3602s")))
    first, second = list_segments(read_timeline(path))
    assert first.time_scalar == Fraction(1, 2) and first.is_retimed
    assert first.source_start_frames == 86412 and first.record_frames == 48
    assert not second.is_retimed
    # three points on one straight line are one speed too
    path = _fcpxml_19(tmp_path, time_map=_points(("3600s", "3600s"), ("3602s", "3601s"), ("3604s", "3602s")))
    assert list_segments(read_timeline(path))[0].time_scalar == Fraction(1, 2)


FCPXML_25 = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE fcpxml>
<fcpxml version="1.10">
  <resources>
    <format id="r1" frameDuration="1/25s" width="256" height="144"/>
    <asset id="r2" name="c25" start="36000s" duration="72/25s" hasVideo="1" format="r1">
      <media-rep kind="original-media" src="file:///media/c25.mov"/>
    </asset>
  </resources>
  <library><event name="ev"><project name="p"><sequence format="r1" duration="76/25s" tcStart="0s">
    <spine>
      <asset-clip ref="r2" offset="0s" name="slow" start="900010/25s" duration="29/25s" format="r1">
        <timeMap>
          <timept time="900000/25s" value="900000/25s"/><timept time="900144/25s" value="900072/25s"/>
        </timeMap>
      </asset-clip>
      <gap name="Gap" offset="29/25s" start="3600s" duration="29/25s"/>
      <asset-clip ref="r2" offset="58/25s" name="real" start="900030/25s" duration="18/25s" format="r1"/>
    </spine>
  </sequence></project></event></library>
</fcpxml>
"""


def test_fcpx_xml_times_are_exact_frames(tmp_path):
    """The adapter alone computes int(29 / 25 * 25) = 28: every clip a frame short and shifted."""
    path = tmp_path / "c25.fcpxml"
    path.write_text(FCPXML_25)
    segments = list_segments(read_timeline(path))
    assert [(s.clip_name, s.record_start_frames, s.record_frames) for s in segments] == [
        ("slow", 0, 29), ("real", 58, 18)
    ]
    assert segments[0].source_start_frames == 900005 and segments[0].time_scalar == Fraction(1, 2)
    assert segments[1].source_start_frames == 900030


def test_fcpx_xml_start_timecode_is_the_timelines_start_not_a_gap(tmp_path):
    """FCP places clips at offsets from the sequence's tcStart (01:00:00:00 = 3600 s); the adapter
    alone puts an hour-long gap at the head of the track."""
    text = FCPXML_25.replace('tcStart="0s"', 'tcStart="3600s"')
    for old, new in (("0s", "90000/25s"), ("29/25s", "90029/25s"), ("58/25s", "90058/25s")):
        text = text.replace(f'offset="{old}"', f'offset="{new}"')
    path = tmp_path / "tc.fcpxml"
    path.write_text(text)
    timeline = read_timeline(path)
    assert timeline.global_start_time == otio.opentime.RationalTime(90000, 25)
    segments = list_segments(timeline)
    assert [(s.clip_name, s.record_start_frames) for s in segments] == [("slow", 0), ("real", 58)]


def test_fcpx_xml_one_clip_slowed_twice_from_two_places(tmp_path):
    """The same shot used twice at 50 %: each use is matched by its start, not refused."""
    text = (FIXTURES / "chase_scene.fcpxml").read_text()
    slow = _points(("3600s", "3600s"), ("3610s", "3605s"))
    tail = ' duration="2s" format="r1" tcFormat="NDF"/>'
    first = '<asset-clip name="A001_C003" ref="r2" offset="0s" start="3601s"' + tail
    second = '<asset-clip name="B001" ref="r3" offset="3s" start="100/24s"' + tail
    text = text.replace(first, first[:-2] + f"><timeMap>{slow}</timeMap></asset-clip>")
    text = text.replace(
        second,
        '<asset-clip name="A001_C003" ref="r2" offset="3s" start="3604s" duration="2s" format="r1" '
        f'tcFormat="NDF"><timeMap>{slow}</timeMap></asset-clip>',
    )
    path = tmp_path / "twice.fcpxml"
    path.write_text(text)
    uses = list_segments(read_timeline(path))
    assert [(s.time_scalar, s.source_start_frames) for s in uses] == [
        (Fraction(1, 2), 3600.5 * 24),
        (Fraction(1, 2), 3602 * 24),
    ]


@pytest.mark.parametrize(
    ("points", "what"),
    [
        (_points(("3600s", "3600s"), ("3602s", "3601s"), ("3604s", "3603s")), "speed ramp"),
        (_points(("3600s", "3604s"), ("3604s", "3600s")), "reverse speed"),
        (_points(("0s", "0s"), ("4s", "2s"), interp="linear"), "speed change that does not cover the clip"),
    ],
)
def test_fcpx_xml_time_maps_that_cannot_be_rendered_are_refused_by_name(tmp_path, points, what):
    segments = list_segments(read_timeline(_fcpxml_19(tmp_path, time_map=points)), check_time_warps=False)
    with pytest.raises(InvalidTimeWarpError, match=rf"its {what} \(FCPXML timeMap\) cannot be rendered"):
        segments[0].time_scalar  # noqa: B018
    assert not segments[1].is_retimed
