"""Write-back: chronoscope metadata and rendered media in a Resolve-shaped timeline, round-tripped
through real files."""

from __future__ import annotations

import json
import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import opentimelineio as otio
import pytest

from engine.errors import TimelineError
from engine.timeline import (
    RenderedMedia,
    attach_results,
    fraction_text,
    list_segments,
    read_timeline,
    replace_media,
    results_of,
    time_map,
    write_timeline,
)

FIXTURES = Path(__file__).parent / "fixtures" / "timelines"
RESOLVE = FIXTURES / "resolve_export.otio"
NTSC_24 = Fraction(24000, 1001)


def _render(path: Path, frames: int, rate: Fraction = NTSC_24) -> Path:
    """Encode a tiny real clip (64x48) with ``frames`` frames, each a different grey."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(frames):
            image = np.full((48, 64, 3), (index * 5) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _count_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def _item_summary(timeline: otio.schema.Timeline) -> list[tuple]:
    return [
        (track.name, track.kind, [(type(item).__name__, item.name) for item in track])
        for track in timeline.tracks
    ]


def test_round_trip_resolve_timeline_with_results_and_rendered_media(tmp_path):
    timeline = read_timeline(RESOLVE)
    original_text = RESOLVE.read_text()
    segments = list_segments(timeline)
    retimed = [s for s in segments if s.track_kind == "Video" and s.is_retimed and not s.is_freeze_frame
               and s.media_path is not None]
    assert [s.clip_name for s in retimed] == ["A002_C001.mov", "A004_C002.mov", "overlay v2.mov"]

    attach_results(timeline, {"job": "chase-v3", "engine": "chronoscope"})
    attach_results(timeline.tracks[0], {"risk": {"max": 0.2}})
    renders = {}
    for segment in retimed:
        mapping = time_map(segment)
        attach_results(segment.clip, {
            "speed": {"estimate": 0.5, "class": "synthetic_slowmo", "confidence": 0.8},
            "time_map": mapping.to_dict(),
        })
        head = segment.transition_head_frames
        path = _render(tmp_path / f"{Path(segment.clip_name).stem}_retimed.mp4", head + segment.record_frames)
        renders[segment.clip] = RenderedMedia(path, frames=_count_frames(path), head_frames=head,
                                              info={"backend": "flow", "risk_max": 0.1})

    result = replace_media(timeline, renders)
    out = write_timeline(result, tmp_path / "chase_retimed.otio")
    again = read_timeline(out)

    # The input timeline object and file are untouched.
    assert RESOLVE.read_text() == original_text
    assert [e.schema_name() for e in timeline.tracks[0][2].effects] == ["LinearTimeWarp"]

    # Structure: tracks, gaps, transitions and clips in the same places and on the same frames.
    assert _item_summary(again) == _item_summary(read_timeline(RESOLVE))
    before = [(s.track_label, s.record_start_frames, s.record_frames) for s in segments]
    after_segments = list_segments(again)
    assert [(s.track_label, s.record_start_frames, s.record_frames) for s in after_segments] == before
    assert again.global_start_time == otio.opentime.RationalTime(86400, 24000 / 1001)

    # Resolve's own metadata and markers survive everywhere.
    assert again.metadata["Resolve_OTIO"]["Resolve OTIO Meta Version"] == "1.0"
    assert again.tracks[2].metadata["Resolve_OTIO"]["Audio Type"] == "Stereo"
    assert [m.name for m in again.tracks.markers] == ["review"]
    a001 = again.tracks[0][0]
    assert [m.name for m in a001.markers] == ["focus"]
    assert a001.effects[0].metadata["Resolve_OTIO"]["Effect Name"] == "Transform"
    assert a001.metadata["Resolve_OTIO"]["Link Group ID"] == 1
    assert again.tracks[0][1].schema_name() == "Transition"

    # Our metadata.
    assert results_of(again) == {"job": "chase-v3", "engine": "chronoscope", "version": 1}
    assert results_of(again.tracks[0])["risk"] == {"max": 0.2}

    # Replaced clips: new media, range from the rendered head, no warps, lineage recorded.
    by_name = {s.clip_name: s for s in after_segments}
    a002 = by_name["A002_C001.mov"]
    assert a002.target_url == str((tmp_path / "A002_C001_retimed.mp4").absolute())
    assert a002.time_warps == () and a002.time_scalar == 1
    assert a002.source_start_frames == 6 and a002.record_frames == 96
    assert a002.available_range.duration.value == 6 + 96
    a002_map = time_map(a002)
    assert a002_map.needed_source_frames() == (0, 6 + 95) and a002_map.handles_available is True
    stored = results_of(a002.clip)
    assert stored["speed"]["class"] == "synthetic_slowmo"
    assert stored["time_map"]["time_scalar"] == "1/2"
    assert stored["retimed_from"]["target_url"] == "/Volumes/Footage/Day 1/A002_C001.mov"
    assert stored["retimed_from"]["time_warps"][0]["time_scalar"] == 0.5
    assert stored["render"] == {"backend": "flow", "risk_max": 0.1, "frames": 102, "head_frames": 6}
    assert a002.clip.metadata["Resolve_OTIO"]["Link Group ID"] == 2
    assert a002.clip.active_media_reference_key == "DEFAULT_MEDIA"

    # Untouched clips keep their media strings byte for byte (Windows and UNC paths included).
    assert by_name["B001.mov"].target_url == "C:\\Footage\\Day 2\\B001.mov"
    assert by_name["broll.mov"].target_url == "\\\\server\\share\\broll.mov"
    assert by_name["B001.mov"].time_scalar == 2
    written = out.read_text()
    assert json.dumps("C:\\Footage\\Day 2\\B001.mov") in written
    assert json.dumps("\\\\server\\share\\broll.mov") in written
    assert by_name["A003_C007.mov"].is_freeze_frame


def test_windows_paths_survive_plain_round_trip(tmp_path):
    timeline = read_timeline(RESOLVE)
    out = write_timeline(timeline, tmp_path / "same.otio")
    original = json.loads(RESOLVE.read_text())
    rewritten = json.loads(out.read_text())

    def urls(node):
        if isinstance(node, dict):
            if "target_url" in node:
                yield node["target_url"]
            for value in node.values():
                yield from urls(value)
        elif isinstance(node, list):
            for value in node:
                yield from urls(value)

    assert list(urls(rewritten)) == list(urls(original))
    assert "C:\\Footage\\Day 2\\B001.mov" in list(urls(rewritten))


def test_render_shorter_than_clip_is_refused_unless_allowed(tmp_path, caplog):
    timeline = read_timeline(RESOLVE)
    segment = next(s for s in list_segments(timeline) if s.clip_name == "A004_C002.mov")
    short = RenderedMedia(tmp_path / "short.mp4", frames=30)
    with pytest.raises(TimelineError, match=r"has 30 frames after its head, the clip lasts 40"):
        replace_media(timeline, {segment.clip: short})
    with caplog.at_level(logging.WARNING):
        result = replace_media(timeline, {segment.clip: short}, allow_length_change=True)
    assert "shortened" in caplog.text
    assert next(s for s in list_segments(result) if s.clip_name == "A004_C002.mov").record_frames == 30


def test_replace_media_refuses_foreign_clip():
    timeline = read_timeline(RESOLVE)
    stranger = otio.schema.Clip(name="stranger")
    with pytest.raises(TimelineError, match="'stranger' is not in timeline"):
        replace_media(timeline, {stranger: RenderedMedia("/tmp/x.mov", frames=10)})


def test_attach_results_refuses_values_json_cannot_hold():
    timeline = read_timeline(RESOLVE)
    clip = timeline.tracks[0][0]
    with pytest.raises(TimelineError, match="plain JSON"):
        attach_results(clip, {"speed": float("nan")})
    with pytest.raises(TimelineError, match="fraction_text"):
        attach_results(clip, {"scalar": Fraction(1, 3)})
    assert "chronoscope" not in clip.metadata
    attach_results(clip, {"scalar": fraction_text(Fraction(1, 3))})
    attach_results(clip, {"risk": 0.3})
    assert results_of(clip) == {"scalar": "1/3", "risk": 0.3, "version": 1}


def test_failed_write_leaves_nothing_and_keeps_older_file(tmp_path):
    timeline = read_timeline(RESOLVE)
    target = tmp_path / "cut.edl"
    target.write_text("older edl\n")
    with pytest.raises(TimelineError, match="cannot write .*cut.edl as cmx_3600"):
        write_timeline(timeline, target)
    assert target.read_text() == "older edl\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.edl"]


def test_single_track_timeline_writes_edl_and_reads_back(tmp_path):
    source = read_timeline(FIXTURES / "chase_scene.edl")
    out = write_timeline(source, tmp_path / "again.edl")
    again = list_segments(read_timeline(out))
    assert [(s.clip_name, s.record_start_frames, s.record_frames) for s in again] == [
        ("A001_C003.mov", 0, 48), ("A002_C001.mov", 48, 96), ("A003_C007.mov", 168, 48)
    ]
    assert again[1].time_scalar == Fraction(1, 2) and again[2].is_freeze_frame


def test_write_fcp_xml_and_read_back(tmp_path):
    source = read_timeline(FIXTURES / "chase_scene.xml")
    out = write_timeline(source, tmp_path / "again.xml")
    again = list_segments(read_timeline(out))
    assert [(s.track_label, s.clip_name, s.record_start_frames) for s in again] == [
        ("V1", "A001_C003.mov", 0), ("V1", "B001.mov", 72), ("A1", "A001_C003.mov", 0)
    ]


def test_markers_stay_on_their_picture_when_a_clip_is_pointed_at_its_render(tmp_path):
    timeline = read_timeline(RESOLVE)
    segment = next(s for s in list_segments(timeline) if s.clip_name == "A004_C002.mov")
    start = segment.clip.source_range.start_time
    marker = otio.schema.Marker(
        name="hit",
        marked_range=otio.opentime.TimeRange(
            start + otio.opentime.RationalTime(4, start.rate), otio.opentime.RationalTime(2, start.rate)
        ),
    )
    segment.clip.markers.append(marker)
    assert segment.clip.trimmed_range().contains(marker.marked_range.start_time)
    render = RenderedMedia(tmp_path / "a004.mov", frames=45, head_frames=3)
    result = replace_media(timeline, {segment.clip: render})
    clip = next(s for s in list_segments(result) if s.clip_name == "A004_C002.mov").clip
    (moved,) = clip.markers
    rate = clip.source_range.start_time.rate
    assert moved.marked_range.start_time.rescaled_to(rate).value == 3 + 4  # head, then 4 frames in
    assert moved.marked_range.duration.rescaled_to(rate).value == 2
    assert clip.trimmed_range().contains(moved.marked_range.start_time)
