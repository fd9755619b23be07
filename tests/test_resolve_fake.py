"""The fake Resolve API keeps the documented rules (1-based indices, False/None on failure, one
marker per frame, frames from the timeline start) and its OTIO export reads as Resolve's does."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugins" / "davinci_resolve"
sys.path.insert(0, str(PLUGIN_DIR))

import fake_resolve  # noqa: E402
from fake_resolve import FakeResolve, demo_project  # noqa: E402

from engine.timeline import list_segments, read_timeline  # noqa: E402


@pytest.fixture
def resolve():
    fake = FakeResolve(project_rate=Fraction(30))
    fake_resolve.install(fake)
    yield fake
    fake_resolve.uninstall()


def test_indices_are_one_based_and_failures_answer_false_or_none(resolve, sample_clip, tmp_path):
    import DaVinciResolveScript

    assert DaVinciResolveScript.scriptapp("Resolve") is resolve
    assert DaVinciResolveScript.scriptapp("Fusion") is None
    project, timeline = demo_project(resolve, sample_clip)
    assert project.GetTimelineByIndex(1) is timeline
    assert project.GetTimelineByIndex(0) is None and project.GetTimelineByIndex(2) is None
    assert timeline.GetItemListInTrack("video", 0) is None
    assert timeline.GetItemListInTrack("video", 2) is None
    items = timeline.GetItemListInTrack("video", 1)
    assert [(i.GetStart(), i.GetEnd()) for i in items] == [(108000, 108060), (108070, 108150)]
    assert timeline.GetStartFrame() == 108000 and timeline.GetStartTimecode() == "01:00:00:00"
    pool = project.GetMediaPool()
    assert pool.CreateEmptyTimeline("Cut 1") is None
    assert pool.ImportMedia([str(tmp_path / "missing.mov")]) == []
    assert pool.SetCurrentFolder("not a folder") is False
    assert pool.ImportTimelineFromFile(str(tmp_path / "missing.otio")) is None
    assert timeline.Export(str(tmp_path / "no-such-dir" / "x.otio"), resolve.EXPORT_OTIO) is False
    assert timeline.Export(str(tmp_path / "x.edl"), resolve.EXPORT_EDL) is False


def test_markers_one_per_frame_with_custom_data(resolve, sample_clip):
    _, timeline = demo_project(resolve, sample_clip)
    assert timeline.AddMarker(10, "Red", "again", "", 1, "") is False
    assert timeline.AddMarker(20, "Orange", "not a marker colour", "", 1, "") is False
    assert timeline.AddMarker(20, "Green", "x", "n", 0, "") is False
    assert timeline.AddMarker(150, "Green", "past the end", "", 1, "") is False
    assert timeline.AddMarker(20, "Green", "mine", "note", 5, '{"k": 1}') is True
    markers = timeline.GetMarkers()
    assert list(markers) == [10.0, 20.0]
    assert markers[20.0] == {
        "color": "Green",
        "duration": 5.0,
        "note": "note",
        "name": "mine",
        "customData": '{"k": 1}',
    }
    assert timeline.GetMarkerByCustomData('{"k": 1}') == {20.0: markers[20.0]}
    assert timeline.UpdateMarkerCustomData(20, "other") and timeline.GetMarkerCustomData(20) == "other"
    assert timeline.DeleteMarkerByCustomData("other") is True
    assert timeline.DeleteMarkerAtFrame(20) is False
    assert timeline.DeleteMarkersByColor("Blue") is True and timeline.GetMarkers() == {}


def test_export_is_resolve_shaped_otio_and_imports_back(resolve, sample_clip, tmp_path):
    project, timeline = demo_project(resolve, sample_clip)
    path = tmp_path / "cut.otio"
    assert timeline.Export(str(path), resolve.EXPORT_OTIO) is True
    exported = read_timeline(path)
    assert exported.global_start_time == otio.opentime.RationalTime(108000, 30)
    assert "Resolve_OTIO" in exported.metadata
    track = exported.tracks[0]
    assert [type(child).__name__ for child in track] == ["Clip", "Gap", "Clip"]
    segments = list_segments(exported)
    assert [(int(s.record_start_frames), s.record_frames, s.time_scalar) for s in segments] == [
        (0, 60, 1),
        (70, 80, Fraction(1, 2)),
    ]
    assert segments[1].source_start_frames == 60 and segments[1].media_path == sample_clip.absolute()
    assert [effect.schema_name() for effect in segments[1].clip.effects] == ["LinearTimeWarp"]

    pool = project.GetMediaPool()
    imported = pool.ImportTimelineFromFile(
        str(path),
        {"timelineName": "Again", "importSourceClips": False, "sourceClipsFolders": [pool.GetRootFolder()]},
    )
    assert imported is not None and imported.GetName() == "Again"
    assert project.GetCurrentTimeline() is imported and project.GetTimelineCount() == 2
    again = imported.GetItemListInTrack("video", 1)
    assert [(i.GetStart(), i.GetEnd(), i.speed) for i in again] == [
        (108000, 108060, 1),
        (108070, 108150, Fraction(1, 2)),
    ]
    assert again[0].GetMediaPoolItem() is pool.GetRootFolder().GetClipList()[0]
    assert imported.GetMarkers()[10.0]["name"] == "check the focus"
    assert pool.ImportTimelineFromFile(str(path), {"timelineName": "Again"}) is None


def test_import_without_source_clips_leaves_unknown_media_offline(resolve, sample_clip, tmp_path):
    project, timeline = demo_project(resolve, sample_clip)
    path = tmp_path / "cut.otio"
    timeline.Export(str(path), resolve.EXPORT_OTIO)
    pool = project.GetMediaPool()
    empty_bin = pool.AddSubFolder(pool.GetRootFolder(), "Empty")
    pool.SetCurrentFolder(empty_bin)
    imported = pool.ImportTimelineFromFile(
        str(path), {"timelineName": "Offline", "importSourceClips": False, "sourceClipsFolders": [empty_bin]}
    )
    assert all(item.GetMediaPoolItem() is None for item in imported.GetItemListInTrack("video", 1))


def test_marker_strip_picture(resolve, sample_clip, tmp_path):
    import cv2

    _, timeline = demo_project(resolve, sample_clip)
    picture = fake_resolve.draw_markers(timeline, tmp_path / "strip.png")
    image = cv2.imread(str(picture))
    assert image.shape[1] == 960 and image.shape[0] >= 150
    # the user's Blue marker at frame 10 is drawn on the ruler
    x = int(20 + 10 * (960 - 40) / 150)
    assert tuple(image[46, x + 1]) == (230, 120, 40)
