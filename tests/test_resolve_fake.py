"""The fake Resolve API keeps the documented rules (1-based indices, False/None on failure, one
marker per frame, frames from the timeline start) and its OTIO export reads as Resolve's does."""

from __future__ import annotations

import json
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
    # the sample clip has sound: each clip has a linked clip on A1, as Resolve's append makes
    assert [(t.name, t.kind) for t in exported.tracks] == [("Video 1", "Video"), ("Audio 1", "Audio")]
    track = exported.tracks[0]
    assert [type(child).__name__ for child in track] == ["Clip", "Gap", "Clip"]
    segments = list_segments(exported)
    assert [
        (s.track_label, int(s.record_start_frames), s.record_frames, s.time_scalar) for s in segments
    ] == [
        ("V1", 0, 60, 1),
        ("V1", 70, 80, Fraction(1, 2)),
        ("A1", 0, 60, 1),
        ("A1", 70, 80, Fraction(1, 2)),
    ]
    assert segments[1].source_start_frames == 60 and segments[1].media_path == sample_clip.absolute()
    # as Resolve writes them: the speed as a LinearTimeWarp with no names, then Resolve's own
    # effects at their defaults; a picture and its sound share one link group per pair
    warp, *plain = segments[1].clip.effects
    assert warp.schema_name() == "LinearTimeWarp" and (warp.name, warp.effect_name) == ("", "")
    assert {effect.effect_name for effect in plain} == {"Resolve Effect"}
    assert [e.metadata["Resolve_OTIO"]["Effect Name"] for e in plain] == [
        "Transform",
        "Cropping",
        "Dynamic Zoom",
        "Composite",
        "Video Faders",
    ]
    assert [e.metadata["Resolve_OTIO"]["Effect Name"] for e in segments[3].clip.effects[1:]] == ["Volume"]
    assert [s.clip.metadata["Resolve_OTIO"]["Link Group ID"] for s in segments] == [1, 2, 1, 2]
    # a marker's colour, name and note are written; its customData is not (Resolve's OTIO has none)
    timeline.AddMarker(40, "Green", "ours", "a note", 2, '{"chronoscope": 1}')
    timeline.Export(str(path), resolve.EXPORT_OTIO)
    markers = {int(m.marked_range.start_time.value): m for m in read_timeline(path).tracks.markers}
    assert (markers[40].name, markers[40].color) == ("ours", "GREEN")
    assert json.loads(otio.adapters.write_to_string(markers[40]))["metadata"] == {
        "Resolve_OTIO": {"Keywords": [], "Note": "a note"}
    }
    assert "chronoscope" not in path.read_text()

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
    assert [(i.GetStart(), i.GetEnd()) for i in imported.GetItemListInTrack("audio", 1)] == [
        (108000, 108060),
        (108070, 108150),
    ]
    assert imported.GetMarkers()[10.0]["name"] == "check the focus"
    assert imported.GetMarkers()[40.0] == {
        "color": "Green",
        "duration": 2.0,
        "note": "a note",
        "name": "ours",
        "customData": "",
    }
    (sound, _) = imported.GetItemListInTrack("audio", 1)
    assert again[0].GetLinkedItems() == [sound]
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


def test_timeline_items_answer_as_the_scripting_readme_says(resolve, sample_clip):
    """Resolve 19.0.2's timing calls: ``subframe_precision`` gives fractional frames, whole frames
    otherwise; source frames are media frames; offsets are the media frames before and after the
    clip's, so that the pool item's "Start" plus the left offset is the first source frame
    (gyroflow-plugins issue 25)."""
    project = resolve.GetProjectManager().CreateProject("timing")
    pool = project.GetMediaPool()
    media = pool.ImportMedia([str(sample_clip.absolute())])[0]  # 30 fps, 166 frames, with sound
    assert media.GetClipProperty("Type") == "Video + Audio"
    timeline = pool.CreateEmptyTimeline("Timing")
    start = timeline.GetStartFrame()
    item = timeline.fake_append(
        media,
        source_start_frames=10,
        duration_frames=40,
        speed=Fraction(1, 2),
        record_frame=start + Fraction(5, 2),
    )
    assert (item.GetStart(), item.GetStart(True)) == (start + 2, start + 2.5)
    assert (item.GetEnd(), item.GetEnd(True)) == (start + 42, start + 42.5)
    assert (item.GetDuration(), item.GetDuration(True)) == (40, 40.0)
    assert (item.GetSourceStartFrame(), item.GetSourceEndFrame()) == (10, 29)  # 40 frames at 50 % show 20
    assert (item.GetSourceStartTime(), item.GetSourceEndTime()) == (10 / 30, 30 / 30)
    assert (item.GetLeftOffset(), item.GetRightOffset()) == (10, 136)  # media frames: 10 before, 136 after
    assert int(media.GetClipProperty("Start")) + item.GetLeftOffset() == item.GetSourceStartFrame()
    assert item.GetTrackTypeAndIndex() == ["video", 1]
    assert [i.GetTrackTypeAndIndex() for i in item.GetLinkedItems()] == [["audio", 1]]


def test_drop_frame_timelines_start_at_01_00_00_00_in_drop_frame(sample_clip, tmp_path):
    resolve = FakeResolve(project_rate=Fraction(30000, 1001), drop_frame=True)
    project = resolve.GetProjectManager().CreateProject("df")
    assert project.GetSetting("timelineDropFrameTimecode") == "1"
    pool = project.GetMediaPool()
    media = pool.ImportMedia([str(sample_clip.absolute())])[0]
    timeline = pool.CreateEmptyTimeline("DF")
    assert (timeline.GetStartFrame(), timeline.GetStartTimecode()) == (107892, "01:00:00;00")
    assert fake_resolve.frames_to_timecode(107892 + 1800, Fraction(30000, 1001), True) == "01:01:00;02"
    assert fake_resolve.timecode_to_frames("00:10:00;00", Fraction(30000, 1001), True) == 17982
    item = timeline.fake_append(media, source_start_frames=0, duration_frames=30)
    assert timeline.SetStartTimecode("00:59:59;28") and timeline.GetStartFrame() == 107890
    assert item.GetStart() == 107890 and timeline.SetStartTimecode("not a timecode") is False
    path = tmp_path / "df.otio"
    timeline.Export(str(path), resolve.EXPORT_OTIO)
    assert read_timeline(path).global_start_time.value == 107890
    back = pool.ImportTimelineFromFile(str(path), {"timelineName": "DF again"})
    assert (back.GetStartFrame(), back.GetStartTimecode()) == (107890, "00:59:59;28")
    ndf = FakeResolve(project_rate=Fraction(30000, 1001)).GetProjectManager().CreateProject("ndf")
    timeline = ndf.GetMediaPool().CreateEmptyTimeline("NDF")
    assert (timeline.GetStartFrame(), timeline.GetStartTimecode()) == (108000, "01:00:00:00")


def test_disabled_tracks_and_clips_compound_clips_and_speed_ramps_export_as_resolve_writes_them(
    resolve, sample_clip, tmp_path
):
    project, timeline = demo_project(resolve, sample_clip)
    pool = project.GetMediaPool()
    first, second = timeline.GetItemListInTrack("video", 1)
    assert timeline.GetIsTrackEnabled("video", 1) is True and timeline.GetIsTrackEnabled("video", 9) is False
    assert first.GetClipEnabled() is True and first.SetClipEnabled(False) and first.GetClipEnabled() is False
    assert timeline.SetTrackEnable("audio", 1, False) and timeline.GetIsTrackEnabled("audio", 1) is False
    second.fake_speed_ramp([(0, 1), (40, Fraction(1, 4)), (79, 1)])
    media = pool.GetRootFolder().GetClipList()[0]
    inside = timeline.fake_append(
        media, source_start_frames=0, duration_frames=20, track_index=2, audio=False
    )
    compound = timeline.CreateCompoundClip([inside], {"name": "Nest"})
    assert compound.GetName() == "Nest" and compound.GetMediaPoolItem().GetClipProperty("Type") == "Compound"
    assert timeline.GetItemListInTrack("video", 2) == [compound]
    assert timeline.CreateCompoundClip([], {}) is None
    path = tmp_path / "edges.otio"
    timeline.Export(str(path), resolve.EXPORT_OTIO)
    exported = read_timeline(path)
    video1, video2, audio1, _audio2 = exported.tracks
    assert video1.enabled and not audio1.enabled
    assert [clip.enabled for clip in video1.find_clips()] == [False, True]
    ramp = video1[2].effects[0]
    assert ramp.schema_name() == "TimeEffect" and (ramp.name, ramp.effect_name) == ("", "")
    written = ramp.metadata["Resolve_OTIO"]
    assert [list(key) for key in written["Key Frames"]] == [[0, 1.0], [40, 0.25], [79, 1.0]]
    assert written["Speed Ratio"] == 0.75
    nest = video2[0]
    assert isinstance(nest, otio.schema.Stack) and nest.name == "Nest"
    assert [clip.name for clip in nest.find_clips()] == ["hug-lego-movie.mp4"]
    back = pool.ImportTimelineFromFile(str(path), {"timelineName": "Back"})
    items = back.GetItemListInTrack("video", 1)
    assert [i.GetClipEnabled() for i in items] == [False, True] and items[1].ramp == second.ramp
    assert back.GetIsTrackEnabled("audio", 1) is False
    (nested,) = back.GetItemListInTrack("video", 2)
    assert nested.GetName() == "Nest" and nested.compound is not None


def test_media_with_a_start_timecode_exports_its_ranges_on_that_clock(resolve, tmp_path):
    """A camera file starting at 14:22:10:00: its pool item says so ("Start TC"; "Start" and "End"
    are frames in the file, "Duration" a timecode), and the OTIO export counts its frames from that
    timecode, as Resolve's does: the media's available range starts there and a clip's source
    range starts that far plus the frames it skips. Imported back, the clip shows the same frames."""
    from media_factory import render_clip

    camera = render_clip(
        tmp_path / "camera.mov", rate=Fraction(24), frame_count=48, metadata={"timecode": "14:22:10:00"}
    )
    project = resolve.GetProjectManager().CreateProject("tc")
    pool = project.GetMediaPool()
    media = pool.ImportMedia([str(camera)])[0]
    properties = media.GetClipProperty()
    assert {key: properties[key] for key in ("Start TC", "End TC", "Start", "End", "Duration", "Frames")} == {
        "Start TC": "14:22:10:00",
        "End TC": "14:22:12:00",
        "Start": "0",
        "End": "47",
        "Duration": "00:00:02:00",
        "Frames": "48",
    }
    timeline = pool.CreateEmptyTimeline("TC")
    item = timeline.fake_append(media, source_start_frames=10, duration_frames=12, speed=Fraction(1, 2))
    # 12 frames at 50 % on this 30 fps timeline show 4.8 of the file's 24 fps frames: 33.2 remain
    assert (item.GetSourceStartFrame(), item.GetLeftOffset(), item.GetRightOffset()) == (10, 10, 33)
    path = tmp_path / "tc.otio"
    timeline.Export(str(path), resolve.EXPORT_OTIO)
    clip = read_timeline(path).tracks[0][0]
    tc_frames = 24 * (14 * 3600 + 22 * 60 + 10)
    assert clip.media_reference.available_range.start_time == otio.opentime.RationalTime(tc_frames, 24)
    assert clip.source_range.start_time == otio.opentime.RationalTime(tc_frames + 10, 24)
    folders = [pool.GetRootFolder()]
    options = {"timelineName": "TC back", "importSourceClips": False, "sourceClipsFolders": folders}
    back = pool.ImportTimelineFromFile(str(path), options)
    (again,) = back.GetItemListInTrack("video", 1)
    assert again.GetMediaPoolItem() is media and again.GetSourceStartFrame() == 10
