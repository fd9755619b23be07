"""EDL events read as CMX 3600 means them: a dissolve's incoming clip shows its own media, each M2
line retimes the clip it names (names with spaces too), every track sits at its record positions
from the timeline's start timecode, and a drop-frame EDL read at 24 fps is refused naming the rate."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
from media_factory import render_clip

from engine.errors import TimelineError
from engine.media import FrameReader
from engine.render import render_timeline
from engine.timeline import list_segments, read_timeline, write_timeline

HOUR_FRAMES_24 = 86400


def _edl(folder: Path, text: str, name: str = "cut.edl") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def _segments(edl: Path, **options) -> dict[str, object]:
    return {s.clip_name: s for s in list_segments(read_timeline(edl, **options), check_time_warps=False)}


def _media(folder: Path) -> tuple[Path, Path]:
    """Two clips told apart by size: 'bars' 48x32, 'dog' 64x48, 48 frames at 24 fps."""
    bars = render_clip(folder / "bars.mp4", rate=Fraction(24), frame_count=48, size=(48, 32))
    dog = render_clip(folder / "dog24.mp4", rate=Fraction(24), frame_count=48, size=(64, 48))
    return bars, dog


def _otio_writer_dissolve(bars: Path, dog: Path) -> str:
    """What OpenTimelineIO's cmx_3600 writer exports for 'bars' dissolving into 'dog' at half speed
    (its M2 line carries the clip name, tab separated; FROM is the outgoing clip, TO the incoming)."""
    return (
        "TITLE: dissolve\n\n"
        "001  bars     V     C        00:00:00:10 00:00:01:10 01:00:00:00 01:00:01:00\n"
        f"* FROM CLIP NAME:  bars\n* FROM CLIP: {bars}\n* OTIO TRUNCATED REEL NAME FROM: bars.mp4\n"
        "002  bars     V     C        00:00:01:10 00:00:01:10 01:00:01:00 01:00:01:00\n"
        "002  dog24mp4 V     D 008    00:00:00:20 00:00:01:20 01:00:01:00 01:00:02:00\n"
        f"* FROM CLIP NAME:  bars\n* FROM CLIP: {bars}\n* OTIO TRUNCATED REEL NAME FROM: bars.mp4\n"
        "M2   dog\t\t12.0\t\t\t00:00:00:20\n"
        f"* TO CLIP NAME:  dog\n* TO CLIP: {dog}\n* OTIO TRUNCATED REEL NAME FROM: dog24.mp4\n"
    )


def _frames(path: Path) -> list:
    with FrameReader(path) as reader:
        return [frame.image.astype(float) for frame in reader]


def test_dissolve_incoming_clip_shows_its_to_clip_media(tmp_path):
    bars, dog = _media(tmp_path)
    edl = _edl(tmp_path, _otio_writer_dissolve(bars, dog))
    segments = _segments(edl)
    assert [(s.clip_name, s.media_path) for s in segments.values()] == [("bars", bars), ("dog", dog)]
    incoming = segments["dog"]
    assert incoming.time_scalar == Fraction(1, 2)
    assert (incoming.source_start_frames, incoming.record_start_frames) == (20, 24)
    assert incoming.record_frames == 24

    # The render shows dog's frames from 20 at half speed, never bars' (which has another size).
    summary = render_timeline(edl, tmp_path / "out", model="nearest", codec="ffv1")
    (clip,) = [c for c in summary.clips if c["status"] == "rendered"]
    assert clip["clip_name"] == "dog"
    source = _frames(dog)
    rendered = _frames(Path(clip["output"]))
    assert len(rendered) == clip["head_frames"] + 24 + clip["tail_frames"]
    body = rendered[clip["head_frames"] : clip["head_frames"] + 24]
    assert all(image.shape == source[0].shape for image in body)
    shown = [min(range(len(source)), key=lambda n: abs(source[n] - image).mean()) for image in body]
    assert shown[0] == 20 and shown == sorted(shown)
    assert set(range(20, 32)) <= set(shown) <= set(range(20, 33))
    # the new timeline keeps the EDL's start timecode
    new = read_timeline(tmp_path / "out" / "cut.chronoscope.otio")
    assert new.global_start_time == otio.opentime.RationalTime(HOUR_FRAMES_24, 24)


def test_dissolve_without_to_clip_line(tmp_path):
    """A FROM CLIP that is the outgoing clip's file is not the incoming clip's: the incoming reel's
    file from another event is, else none; a FROM CLIP naming another file is the incoming one's."""
    bars, dog = _media(tmp_path)
    block = (
        "001  B001     V     C        00:00:00:10 00:00:01:10 01:00:00:00 01:00:01:00\n"
        f"* FROM CLIP NAME: bars\n* FROM CLIP: {bars}\n"
        "002  B001     V     C        00:00:01:10 00:00:01:10 01:00:01:00 01:00:01:00\n"
        "002  DOG      V     D    008 00:00:00:20 00:00:01:20 01:00:01:00 01:00:02:00\n"
        f"* FROM CLIP NAME: bars\n* FROM CLIP: {bars}\n"
    )
    later = (
        "003  DOG      V     C        00:00:01:20 00:00:02:00 01:00:02:00 01:00:02:04\n"
        f"* FROM CLIP NAME: dog\n* FROM CLIP: {dog}\n"
    )
    with_later = list_segments(read_timeline(_edl(tmp_path, "TITLE: t\n\n" + block + later)))
    assert [(s.index_in_track, s.clip_name, s.media_path) for s in with_later] == [
        (0, "bars", bars), (2, "dog24", dog), (3, "dog", dog)
    ]

    alone = list_segments(read_timeline(_edl(tmp_path, "TITLE: t\n\n" + block, "alone.edl")))
    assert alone[1].media_kind == "missing" and alone[1].clip_name != "bars"

    cut, dissolve = block.split("002  B001", 1)
    dissolve = dissolve.replace(f"* FROM CLIP NAME: bars\n* FROM CLIP: {bars}\n", f"* FROM CLIP: {dog}\n")
    own_file = _edl(tmp_path, "TITLE: t\n\n" + cut + "002  B001" + dissolve, "own.edl")
    assert [s.media_path for s in list_segments(read_timeline(own_file))] == [bars, dog]


E4 = """TITLE: e4
FCM: NON-DROP FRAME

001  M24      V     C        00:00:01:00 00:00:01:12 01:00:00:00 01:00:01:00
M2   M24         012.0                00:00:01:00
* FROM CLIP NAME: m24.mp4
* FROM CLIP: /media/m24.mp4

002  M24      V     C        00:00:01:12 00:00:01:12 01:00:01:00 01:00:01:00
002  DOG      V     D    012 00:00:00:10 00:00:01:10 01:00:01:00 01:00:02:00
M2   M24         012.0                00:00:01:12
* FROM CLIP NAME: m24.mp4
* TO CLIP NAME: dog24.mp4
* TO CLIP: /media/dog24.mp4
"""


def test_m2_retimes_only_the_reel_it_names(tmp_path):
    segments = _segments(_edl(tmp_path, E4))
    assert segments["m24.mp4"].time_scalar == Fraction(1, 2)
    dog = segments["dog24.mp4"]
    assert dog.time_scalar == 1 and not dog.is_retimed
    assert (dog.source_start_frames, dog.source_duration_frames, dog.record_frames) == (10, 24, 24)


def test_each_side_of_a_dissolve_gets_its_own_m2(tmp_path):
    # both sides' M2 lines in the dissolve, the incoming one first: the adapter alone keeps the last
    two = E4.replace(
        "M2   M24         012.0                00:00:01:12\n",
        "M2   DOG         048.0                00:00:00:10\n"
        "M2   M24         012.0                00:00:01:12\n",
    ).replace("00:00:00:10 00:00:01:10 01:00:01:00", "00:00:00:10 00:00:02:10 01:00:01:00")
    segments = _segments(_edl(tmp_path, two))
    assert segments["m24.mp4"].time_scalar == Fraction(1, 2)
    assert segments["dog24.mp4"].time_scalar == 2

    # the outgoing clip's speed written only in the dissolve: it goes to the outgoing clip's event
    only_in_dissolve = E4.replace("M2   M24         012.0                00:00:01:00\n", "").replace(
        "00:00:01:00 00:00:01:12 01:00:00:00", "00:00:01:00 00:00:02:00 01:00:00:00"
    )
    segments = _segments(_edl(tmp_path, only_in_dissolve))
    outgoing = segments["m24.mp4"]
    assert outgoing.time_scalar == Fraction(1, 2) and outgoing.source_duration_frames == 24
    assert segments["dog24.mp4"].time_scalar == 1


def test_both_sides_on_one_reel_told_apart_by_the_m2_timecode(tmp_path):
    same_reel = (
        "TITLE: same\n\n"
        "001  A001     V     C        00:00:01:00 00:00:02:00 01:00:00:00 01:00:01:00\n"
        "* FROM CLIP: /media/a001.mov\n"
        "002  A001     V     C        00:00:02:00 00:00:02:00 01:00:01:00 01:00:01:00\n"
        "002  A001     V     D    006 00:00:05:00 00:00:06:00 01:00:01:00 01:00:02:00\n"
        "M2   A001        012.0                00:00:05:00\n"
        "M2   A001        024.0                00:00:02:00\n"
        "* FROM CLIP: /media/a001.mov\n"
    )
    first, second = list_segments(read_timeline(_edl(tmp_path, same_reel)))
    assert first.time_scalar == 1 and second.time_scalar == Fraction(1, 2)
    assert second.source_start_frames == 120 and second.source_duration_frames == 24


@pytest.mark.parametrize(
    ("m2", "scalar"),
    [
        ("M2   dog slow A001       012.0                00:00:00:20", Fraction(1, 2)),
        ("M2   dog slow A001\t\t12.0\t\t\t00:00:00:20", Fraction(1, 2)),
        ("M2   dog slow A001       0.5                  00:00:00:20", Fraction(1, 48)),
        ("M2   dog 2 take 3        018.0                00:00:00:20", Fraction(3, 4)),
        ("M2   dog slow A001       -025.0               00:00:00:20", Fraction(-25, 24)),
    ],
)
def test_m2_names_with_spaces(tmp_path, m2, scalar):
    edl = _edl(
        tmp_path,
        "TITLE: spaces\nFCM: NON-DROP FRAME\n\n"
        "001  AX       V     C        00:00:00:20 00:00:01:20 01:00:00:00 01:00:01:00\n"
        f"{m2}\n* FROM CLIP NAME: dog slow A001\n* FROM CLIP: /media/dog24.mp4\n",
    )
    (segment,) = _segments(edl).values()
    (warp,) = segment.time_warps
    assert Fraction(warp.time_scalar).limit_denominator(1000) == scalar
    assert segment.record_frames == 24 and segment.source_start_frames == 20


def test_m2_naming_nothing_in_a_cut_is_applied_with_a_warning(tmp_path, caplog):
    edl = _edl(
        tmp_path,
        "TITLE: t\n\n001  A001     V     C        00:00:00:20 00:00:01:20 01:00:00:00 01:00:01:00\n"
        "M2   B002        012.0                00:00:00:20\n* FROM CLIP: /media/a001.mov\n",
    )
    with caplog.at_level(logging.WARNING, logger="engine.timeline.edl"):
        (segment,) = _segments(edl).values()
    assert segment.time_scalar == Fraction(1, 2)
    assert "M2 'B002' does not name the event's reel A001" in caplog.text
    # a clip name written with _ for its spaces names it: no WARNING
    caplog.clear()
    named = edl.read_text().replace("B002    ", "dog_slow")
    edl.write_text(named.replace("* FROM", "* FROM CLIP NAME: dog slow\n* FROM"))
    with caplog.at_level(logging.WARNING, logger="engine.timeline.edl"):
        (segment,) = _segments(edl).values()
    assert segment.time_scalar == Fraction(1, 2) and not caplog.text


E1 = """TITLE: e1
FCM: NON-DROP FRAME

001  A001     V     C        00:00:01:00 00:00:02:00 01:00:00:00 01:00:01:00
* FROM CLIP: /media/a001.mov
002  A002     V     C        00:00:01:00 00:00:02:16 01:00:01:00 01:00:02:16
* FROM CLIP: /media/a002.mov
003  A002     A     C        00:00:03:00 00:00:03:08 01:00:00:08 01:00:00:16
* FROM CLIP: /media/a002.mov
004  A001     AA    C        00:00:01:00 00:00:01:08 01:00:02:16 01:00:03:00
* FROM CLIP: /media/a001.mov
"""


def test_edl_tracks_sit_at_their_record_positions(tmp_path):
    timeline = read_timeline(_edl(tmp_path, E1))
    assert timeline.global_start_time == otio.opentime.RationalTime(HOUR_FRAMES_24, 24)
    assert all(track.source_range is None for track in timeline.tracks)
    positions = [(s.track_label, s.record_start_frames, s.record_frames) for s in list_segments(timeline)]
    # A1 holds 003 (at 8) then 004 (at 64); A2 holds 004 only, from 64
    assert positions == [("V1", 0, 24), ("V1", 24, 40), ("A1", 8, 8), ("A1", 64, 8), ("A2", 64, 8)]
    # OTIO's own arithmetic agrees
    for track in timeline.tracks:
        for index, item in enumerate(track):
            if isinstance(item, otio.schema.Clip):
                start = track.range_of_child_at_index(index).start_time.value
                assert start in {p[1] for p in positions if p[0][0] == track.name[0]}
    written = write_timeline(timeline, tmp_path / "cut.otio")
    again = read_timeline(written)
    assert again.global_start_time == timeline.global_start_time
    placed = [(s.track_label, s.record_start_frames) for s in list_segments(again)]
    assert placed == [p[:2] for p in positions]


def test_an_edl_written_back_keeps_its_record_timecodes(tmp_path):
    """The cmx_3600 writer counted record times from 00:00:00:00, so an EDL starting at 01:00:00:00
    came back an hour early."""
    timeline = read_timeline(_edl(tmp_path, E1))
    text = write_timeline(timeline, tmp_path / "again.edl").read_text()
    assert "01:00:00:00 01:00:01:00" in text and " 00:00:00:00 00:00:01:00" not in text
    again = read_timeline(tmp_path / "again.edl")
    assert again.global_start_time == timeline.global_start_time
    video = [(s.clip_name, s.record_start_frames, s.record_frames) for s in list_segments(again)]
    assert video == [(s.clip_name, s.record_start_frames, s.record_frames)
                     for s in list_segments(timeline) if s.track_label == "V1"]
    assert timeline.tracks[0].source_range is None  # the timeline given is left as it was


def test_track_ranges_starting_before_zero_place_clips_from_the_earliest_track():
    """How the cmx_3600 adapter (and `otio convert` from an EDL) writes each track's first record
    in: V1 from 01:00:00:00 (-86400), A1 from 01:00:02:16 (-86464). Positions count from the
    earliest, as reading the EDL itself does (before: A1 at 64 alone, but every clip of a file
    converted from an EDL an hour late)."""
    rt, tr = otio.opentime.RationalTime, otio.opentime.TimeRange

    def track(name: str, kind: str, first_record: int) -> otio.schema.Track:
        clip = otio.schema.Clip(
            name=f"{name} clip",
            media_reference=otio.schema.ExternalReference(target_url="/media/a.mov"),
            source_range=tr(rt(0, 24), rt(8, 24)),
        )
        placed = otio.schema.Track(name=name, kind=kind, children=[clip])
        placed.source_range = tr(rt(-first_record, 24), rt(8, 24))
        return placed

    video = track("V1", otio.schema.TrackKind.Video, HOUR_FRAMES_24)
    sound = track("A1", otio.schema.TrackKind.Audio, HOUR_FRAMES_24 + 64)
    timeline = otio.schema.Timeline(tracks=[video, sound])
    assert [s.record_start_frames for s in list_segments(timeline)] == [0, 64]


def test_an_edl_converted_to_otio_lists_its_clips_where_the_edl_does(tmp_path):
    edl = _edl(tmp_path, E1)
    converted = tmp_path / "converted.otio"
    otio.adapters.write_to_file(
        otio.adapters.read_from_file(str(edl), adapter_name="cmx_3600", rate=24), str(converted)
    )
    direct = [(s.track_label, s.record_start_frames) for s in list_segments(read_timeline(edl))]
    assert [(s.track_label, s.record_start_frames) for s in list_segments(read_timeline(converted))] == direct


def test_drop_frame_edl_without_a_rate_is_refused_naming_the_rate(tmp_path):
    body = "001  AX       V     C        00:00:10;00 00:00:11;00 01:00:00;00 01:00:01;00\n"
    edl = _edl(tmp_path, "TITLE: df\nFCM: DROP FRAME\n\n" + body)
    with pytest.raises(TimelineError) as refused:
        read_timeline(edl)
    message = str(refused.value)
    assert "\n" not in message and "not a valid drop frame rate" in message
    assert "read it with --rate 29.97" in message
    at_sixty = body.replace("00:00:11;00 01:00:00;00 01:00:01;00", "00:00:10;58 01:00:00;00 01:00:00;58")
    sixty = _edl(tmp_path, "TITLE: df\nFCM: DROP FRAME\n\n" + at_sixty, "60.edl")
    with pytest.raises(TimelineError, match=r"--rate 59\.94"):
        read_timeline(sixty, rate=25)
    (segment,) = list_segments(read_timeline(edl, rate=29.97))
    assert segment.timeline_rate == Fraction(30000, 1001)
