"""A faithful fake of DaVinci Resolve's scripting API, for tests and for drawing the README pictures.

It follows Resolve's scripting README (Developer/Scripting/README.txt, Resolve 18.5 to 20):

- indices are 1-based (``GetTimelineByIndex``, ``GetItemListInTrack``), and a bad index gives None;
- calls that fail return False (or None where the README says an object is returned), never raise;
- timeline markers are placed at ``frameId`` counted from the timeline's first frame, at most one
  per frame (``AddMarker`` answers False when the frame is taken); ``GetMarkers`` answers
  ``{frameId: {"color", "duration", "note", "name", "customData"}}`` with float keys and durations,
  as Resolve does;
- ``TimelineItem.GetStart``/``GetEnd`` are timeline frames including the timeline's start frame
  (01:00:00:00 = 86400 at 24 fps); ``GetEnd`` is exclusive;
- ``Timeline.Export(path, resolve.EXPORT_OTIO)`` writes a real OTIO file shaped as Resolve writes
  it (gaps between clips, ``global_start_time``, ``metadata["Resolve_OTIO"]``, clip speed as a
  ``LinearTimeWarp``), and ``MediaPool.ImportTimelineFromFile`` reads one back;
- ``MediaPool.ImportMedia`` probes real files with PyAV and skips what it cannot read.

What Resolve does only through its UI has a ``fake_`` method, e.g. ``FakeTimeline.fake_append``
(place a clip with a given speed, as "Change Clip Speed" would). Inject the fake as the
``DaVinciResolveScript`` module with ``install(resolve)``; ``resolve.fake_calls`` records every
API call by name, so a test can assert that a script never touched a timeline it must not change.
"""

from __future__ import annotations

import itertools
import sys
import types
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import opentimelineio as otio

MARKER_COLORS = (
    "Blue",
    "Cyan",
    "Green",
    "Yellow",
    "Red",
    "Pink",
    "Purple",
    "Fuchsia",
    "Rose",
    "Lavender",
    "Sky",
    "Mint",
    "Lemon",
    "Sand",
    "Cocoa",
    "Cream",
)
TRACK_TYPES = ("video", "audio", "subtitle")
_ids = itertools.count(1)


def _unique_id() -> str:
    return f"fake-{next(_ids):06d}"


def _rate_value(rate: Fraction) -> float:
    return float(rate)


def _start_frame(rate: Fraction) -> int:
    """01:00:00:00 at the timeline rate, Resolve's default timeline start."""
    return 3600 * round(rate)


class _Recorder:
    """Records API calls on the owning ``FakeResolve`` (``fake_calls``)."""

    _resolve: FakeResolve

    def _record(self, name: str, *args: Any) -> None:
        self._resolve.fake_calls.append((self, name, args))


class _Markers(_Recorder):
    """The marker block shared by Timeline, TimelineItem and MediaPoolItem."""

    def _marker_span(self) -> int:
        raise NotImplementedError

    def _init_markers(self) -> None:
        self._markers: dict[int, dict[str, Any]] = {}

    def AddMarker(self, frameId, color, name, note, duration, customData=""):  # noqa: N802, N803
        self._record("AddMarker", frameId, color, name, note, duration, customData)
        if not isinstance(frameId, (int, float)) or isinstance(frameId, bool) or int(frameId) != frameId:
            return False
        if not isinstance(duration, (int, float)) or duration < 1 or int(duration) != duration:
            return False
        if color not in MARKER_COLORS or not isinstance(name, str) or not isinstance(note, str):
            return False
        if not isinstance(customData, str):
            return False
        frame = int(frameId)
        if frame in self._markers or not 0 <= frame < self._marker_span():
            return False
        self._markers[frame] = {
            "color": color,
            "duration": float(min(int(duration), self._marker_span() - frame)),
            "note": note,
            "name": name,
            "customData": customData,
        }
        return True

    def GetMarkers(self):  # noqa: N802
        self._record("GetMarkers")
        return {float(frame): dict(info) for frame, info in sorted(self._markers.items())}

    def GetMarkerByCustomData(self, customData):  # noqa: N802, N803
        for frame, info in sorted(self._markers.items()):
            if info["customData"] == customData:
                return {float(frame): dict(info)}
        return {}

    def GetMarkerCustomData(self, frameId):  # noqa: N802, N803
        info = self._markers.get(int(frameId)) if isinstance(frameId, (int, float)) else None
        return info["customData"] if info else ""

    def UpdateMarkerCustomData(self, frameId, customData):  # noqa: N802, N803
        self._record("UpdateMarkerCustomData", frameId, customData)
        info = self._markers.get(int(frameId)) if isinstance(frameId, (int, float)) else None
        if info is None or not isinstance(customData, str):
            return False
        info["customData"] = customData
        return True

    def DeleteMarkerAtFrame(self, frameNum):  # noqa: N802, N803
        self._record("DeleteMarkerAtFrame", frameNum)
        if not isinstance(frameNum, (int, float)) or int(frameNum) not in self._markers:
            return False
        del self._markers[int(frameNum)]
        return True

    def DeleteMarkersByColor(self, color):  # noqa: N802
        self._record("DeleteMarkersByColor", color)
        frames = [f for f, info in self._markers.items() if color == "All" or info["color"] == color]
        for frame in frames:
            del self._markers[frame]
        return bool(frames)

    def DeleteMarkerByCustomData(self, customData):  # noqa: N802, N803
        self._record("DeleteMarkerByCustomData", customData)
        for frame, info in sorted(self._markers.items()):
            if info["customData"] == customData:
                del self._markers[frame]
                return True
        return False


class FakeMediaPoolItem(_Markers):
    def __init__(self, resolve: FakeResolve, path: Path, rate: Fraction, frames: int, size: tuple[int, int]):
        self._resolve = resolve
        self.path = Path(path)
        self.rate = rate
        self.frames = frames
        self.size = size
        self._id = _unique_id()
        self._name = self.path.name
        self._init_markers()

    def _marker_span(self) -> int:
        return self.frames

    def GetName(self):  # noqa: N802
        return self._name

    def GetMediaId(self):  # noqa: N802
        return self._id

    def GetUniqueId(self):  # noqa: N802
        return self._id

    def GetClipProperty(self, propertyName=None):  # noqa: N802, N803
        properties = {
            "Clip Name": self._name,
            "File Name": self.path.name,
            "File Path": str(self.path),
            "FPS": f"{float(self.rate):.3f}".rstrip("0").rstrip("."),
            "Frames": str(self.frames),
            "Resolution": f"{self.size[0]}x{self.size[1]}",
            "Type": "Video",
        }
        if propertyName is None or propertyName == "":
            return properties
        return properties.get(propertyName, "")


class FakeFolder(_Recorder):
    def __init__(self, resolve: FakeResolve, name: str, parent: FakeFolder | None = None):
        self._resolve = resolve
        self._name = name
        self.parent = parent
        self.clips: list[FakeMediaPoolItem] = []
        self.subfolders: list[FakeFolder] = []
        self._id = _unique_id()

    def GetName(self):  # noqa: N802
        return self._name

    def GetClipList(self):  # noqa: N802
        return list(self.clips)

    def GetSubFolderList(self):  # noqa: N802
        return list(self.subfolders)

    def GetUniqueId(self):  # noqa: N802
        return self._id

    def walk(self):
        yield self
        for folder in self.subfolders:
            yield from folder.walk()


class FakeTimelineItem(_Markers):
    """A clip on a track. ``source_start_frames`` is in media frames; ``speed`` 1 = 100 %."""

    def __init__(
        self,
        timeline: FakeTimeline,
        media_item: FakeMediaPoolItem | None,
        name: str,
        start_frames: int,
        duration_frames: int,
        source_start_frames: Fraction,
        speed: Fraction,
        offline_path: str = "",
    ):
        self._resolve = timeline._resolve
        self.timeline = timeline
        self.media_item = media_item
        self._name = name
        self.start_frames = start_frames
        self.duration_frames = duration_frames
        self.source_start_frames = Fraction(source_start_frames)
        self.speed = Fraction(speed)
        self.offline_path = offline_path
        self.flags: list[str] = []
        self.clip_color = ""
        self.properties: dict[str, Any] = {"RetimeProcess": 0}
        self._id = _unique_id()
        self._init_markers()

    def _marker_span(self) -> int:
        return self.duration_frames

    def GetName(self):  # noqa: N802
        return self._name

    def GetStart(self):  # noqa: N802
        return self.start_frames

    def GetEnd(self):  # noqa: N802
        return self.start_frames + self.duration_frames

    def GetDuration(self):  # noqa: N802
        return self.duration_frames

    def GetLeftOffset(self):  # noqa: N802
        return int(self.source_start_frames)

    def GetMediaPoolItem(self):  # noqa: N802
        return self.media_item

    def GetUniqueId(self):  # noqa: N802
        return self._id

    def GetProperty(self, propertyKey=None):  # noqa: N802, N803
        if propertyKey is None:
            return dict(self.properties)
        return self.properties.get(propertyKey)

    def SetProperty(self, propertyKey, propertyValue):  # noqa: N802, N803
        self._record("SetProperty", propertyKey, propertyValue)
        if propertyKey not in self.properties:
            return False
        self.properties[propertyKey] = propertyValue
        return True

    def AddFlag(self, color):  # noqa: N802
        self._record("AddFlag", color)
        if color not in MARKER_COLORS:
            return False
        if color not in self.flags:
            self.flags.append(color)
        return True

    def GetFlagList(self):  # noqa: N802
        return list(self.flags)

    def ClearFlags(self, color):  # noqa: N802
        self._record("ClearFlags", color)
        before = len(self.flags)
        self.flags = [] if color == "All" else [f for f in self.flags if f != color]
        return len(self.flags) != before

    def GetClipColor(self):  # noqa: N802
        return self.clip_color

    def SetClipColor(self, colorName):  # noqa: N802, N803
        self._record("SetClipColor", colorName)
        self.clip_color = colorName
        return True


class FakeTimeline(_Markers):
    def __init__(self, project: FakeProject, name: str, rate: Fraction, start_frame: int | None = None):
        self._resolve = project._resolve
        self.project = project
        self._name = name
        self.rate = Fraction(rate)
        self.start_frame = _start_frame(self.rate) if start_frame is None else start_frame
        self.tracks: dict[str, list[list[FakeTimelineItem]]] = {"video": [[]], "audio": [], "subtitle": []}
        self._id = _unique_id()
        self._init_markers()

    def _marker_span(self) -> int:
        return max(1, self.GetEndFrame() - self.start_frame)

    def GetName(self):  # noqa: N802
        return self._name

    def SetName(self, timelineName):  # noqa: N802, N803
        self._record("SetName", timelineName)
        if any(t._name == timelineName for t in self.project.timelines if t is not self):
            return False
        self._name = timelineName
        return True

    def GetUniqueId(self):  # noqa: N802
        return self._id

    def GetStartFrame(self):  # noqa: N802
        return self.start_frame

    def GetEndFrame(self):  # noqa: N802
        ends = [item.GetEnd() for track in self.tracks["video"] for item in track]
        return max(ends, default=self.start_frame)

    def GetStartTimecode(self):  # noqa: N802
        fps = round(self.rate)
        frames = self.start_frame
        hours, minutes, seconds = frames // (3600 * fps), frames // (60 * fps) % 60, frames // fps % 60
        return f"{hours:02d}:{minutes:02d}:{seconds:02d}:{frames % fps:02d}"

    def GetSetting(self, settingName=None):  # noqa: N802, N803
        settings = {"timelineFrameRate": f"{float(self.rate):g}", "timelineResolutionWidth": "1920"}
        if settingName is None or settingName == "":
            return settings
        return settings.get(settingName, "")

    def GetTrackCount(self, trackType):  # noqa: N802, N803
        if trackType not in TRACK_TYPES:
            return 0
        return len(self.tracks[trackType])

    def GetTrackName(self, trackType, trackIndex):  # noqa: N802, N803
        if trackType not in TRACK_TYPES or not 1 <= trackIndex <= len(self.tracks[trackType]):
            return None
        return f"{trackType.capitalize()} {trackIndex}"

    def AddTrack(self, trackType, subTrackType=None):  # noqa: N802, N803
        self._record("AddTrack", trackType, subTrackType)
        if trackType not in TRACK_TYPES:
            return False
        self.tracks[trackType].append([])
        return True

    def GetItemListInTrack(self, trackType, index):  # noqa: N802
        if (
            trackType not in TRACK_TYPES
            or not isinstance(index, int)
            or not 1 <= index <= len(self.tracks[trackType])
        ):
            return None
        return sorted(self.tracks[trackType][index - 1], key=lambda item: item.start_frames)

    def GetCurrentVideoItem(self):  # noqa: N802
        playhead = self.project.playhead_frames.get(self._id, self.start_frame)
        for track in reversed(self.tracks["video"]):
            for item in track:
                if item.start_frames <= playhead < item.GetEnd():
                    return item
        return None

    def Export(self, fileName, exportType, exportSubtype=None):  # noqa: N802, N803
        self._record("Export", fileName, exportType, exportSubtype)
        if exportType != FakeResolve.EXPORT_OTIO:
            return False
        path = Path(fileName)
        if not path.parent.is_dir():
            return False
        try:
            otio.adapters.write_to_file(self.fake_to_otio(), str(path), adapter_name="otio_json")
        except OSError:
            return False
        return True

    # ------------------------------------------------------------------ fake-only

    def fake_append(
        self,
        media_item: FakeMediaPoolItem,
        *,
        source_start_frames: int,
        duration_frames: int,
        speed: Fraction = Fraction(1),
        track_index: int = 1,
        record_frame: int | None = None,
    ) -> FakeTimelineItem | None:
        """Place ``media_item`` on video track ``track_index`` playing at ``speed`` (1/2 = 50 %).

        Stands in for the editor's Change Clip Speed; ``duration_frames`` is the clip's length on
        the timeline. Returns None when it would overlap a clip or run past the media.
        """
        speed = Fraction(speed)
        while len(self.tracks["video"]) < track_index:
            self.tracks["video"].append([])
        track = self.tracks["video"][track_index - 1]
        start = (
            record_frame
            if record_frame is not None
            else max((item.GetEnd() for item in track), default=self.start_frame)
        )
        end = start + duration_frames
        if start < self.start_frame or duration_frames < 1:
            return None
        if any(item.start_frames < end and start < item.GetEnd() for item in track):
            return None
        consumed = Fraction(duration_frames) * speed * media_item.rate / self.rate
        if source_start_frames < 0 or source_start_frames + consumed > media_item.frames:
            return None
        item = FakeTimelineItem(
            self,
            media_item,
            media_item.GetName(),
            start,
            duration_frames,
            Fraction(source_start_frames),
            speed,
        )
        track.append(item)
        return item

    def fake_to_otio(self) -> otio.schema.Timeline:
        """This timeline as Resolve's OTIO export writes it."""
        rate = _rate_value(self.rate)
        timeline = otio.schema.Timeline(name=self._name)
        timeline.global_start_time = otio.opentime.RationalTime(self.start_frame, rate)
        timeline.metadata["Resolve_OTIO"] = {"Resolve OTIO Meta Version": "1.0"}
        for index, items in enumerate(self.tracks["video"], start=1):
            track = otio.schema.Track(name=f"Video {index}", kind=otio.schema.TrackKind.Video)
            track.metadata["Resolve_OTIO"] = {"Locked": False}
            position = self.start_frame
            for item in sorted(items, key=lambda i: i.start_frames):
                if item.start_frames > position:
                    track.append(
                        otio.schema.Gap(
                            duration=otio.opentime.RationalTime(item.start_frames - position, rate)
                        )
                    )
                track.append(self._clip_otio(item))
                position = item.GetEnd()
            timeline.tracks.append(track)
        for frame, info in sorted(self._markers.items()):
            marker = otio.schema.Marker(
                name=info["name"],
                marked_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(frame, rate),
                    otio.opentime.RationalTime(info["duration"], rate),
                ),
                color=otio.schema.MarkerColor.RED if info["color"] == "Red" else otio.schema.MarkerColor.BLUE,
                metadata={"Resolve_OTIO": {"Color": info["color"], "Note": info["note"], "Keywords": []}},
            )
            timeline.tracks.markers.append(marker)
        return timeline

    def _clip_otio(self, item: FakeTimelineItem) -> otio.schema.Clip:
        rate = _rate_value(self.rate)
        media = item.media_item
        media_rate = _rate_value(media.rate) if media else rate
        if media is not None:
            reference = otio.schema.ExternalReference(
                target_url=str(media.path),
                available_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(0, media_rate),
                    otio.opentime.RationalTime(media.frames, media_rate),
                ),
            )
        else:
            reference = otio.schema.MissingReference(name=item.offline_path)
        clip = otio.schema.Clip(
            name=item.GetName(),
            media_reference=reference,
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(float(item.source_start_frames), media_rate),
                otio.opentime.RationalTime(item.duration_frames, rate),
            ),
        )
        clip.metadata["Resolve_OTIO"] = {"Link Group ID": 1, "Clip Color": item.clip_color or "Orange"}
        if item.speed != 1:
            clip.effects.append(otio.schema.LinearTimeWarp(name="Speed", time_scalar=float(item.speed)))
        return clip


class FakeMediaPool(_Recorder):
    def __init__(self, project: FakeProject):
        self._resolve = project._resolve
        self.project = project
        self.root = FakeFolder(self._resolve, "Master")
        self.current = self.root

    def GetRootFolder(self):  # noqa: N802
        return self.root

    def GetCurrentFolder(self):  # noqa: N802
        return self.current

    def SetCurrentFolder(self, folder):  # noqa: N802
        self._record("SetCurrentFolder", folder)
        if not isinstance(folder, FakeFolder) or folder not in list(self.root.walk()):
            return False
        self.current = folder
        return True

    def AddSubFolder(self, folder, name):  # noqa: N802
        self._record("AddSubFolder", folder, name)
        if not isinstance(folder, FakeFolder) or not isinstance(name, str) or not name:
            return None
        sub = FakeFolder(self._resolve, name, folder)
        folder.subfolders.append(sub)
        return sub

    def ImportMedia(self, items):  # noqa: N802
        self._record("ImportMedia", items)
        if not isinstance(items, list):
            return []
        created = []
        for entry in items:
            path = entry.get("FilePath") if isinstance(entry, dict) else entry
            media = self._probe(path)
            if media is not None:
                self.current.clips.append(media)
                created.append(media)
        return created

    def _probe(self, path: Any) -> FakeMediaPoolItem | None:
        if not isinstance(path, str) or not Path(path).is_file():
            return None
        try:
            with av.open(path) as container:
                stream = container.streams.video[0]
                rate = Fraction(stream.average_rate)
                frames = stream.frames or sum(1 for _ in container.decode(stream))
                size = (stream.codec_context.width, stream.codec_context.height)
        except (av.FFmpegError, IndexError, OSError, ValueError):
            return None
        if frames < 1:
            return None
        return FakeMediaPoolItem(self._resolve, Path(path), rate, frames, size)

    def CreateEmptyTimeline(self, name):  # noqa: N802
        self._record("CreateEmptyTimeline", name)
        if not isinstance(name, str) or not name or any(t._name == name for t in self.project.timelines):
            return None
        timeline = FakeTimeline(self.project, name, self.project.rate)
        self.project.timelines.append(timeline)
        self.project.current_timeline = timeline
        return timeline

    def AppendToTimeline(self, clips):  # noqa: N802
        """``[{"mediaPoolItem", "startFrame", "endFrame", "trackIndex"?, "recordFrame"?}]``.

        ``endFrame`` is inclusive, as in Resolve."""
        self._record("AppendToTimeline", clips)
        timeline = self.project.current_timeline
        if timeline is None or not isinstance(clips, list):
            return []
        placed = []
        for info in clips:
            if isinstance(info, FakeMediaPoolItem):
                info = {"mediaPoolItem": info, "startFrame": 0, "endFrame": info.frames - 1}
            media = info.get("mediaPoolItem") if isinstance(info, dict) else None
            if not isinstance(media, FakeMediaPoolItem):
                continue
            start, end = int(info.get("startFrame", 0)), int(info.get("endFrame", media.frames - 1))
            item = timeline.fake_append(
                media,
                source_start_frames=start,
                duration_frames=end - start + 1,
                track_index=int(info.get("trackIndex", 1)),
                record_frame=info.get("recordFrame"),
            )
            if item is not None:
                placed.append(item)
        return placed

    def ImportTimelineFromFile(self, filePath, importOptions=None):  # noqa: N802, N803
        self._record("ImportTimelineFromFile", filePath, importOptions)
        options = dict(importOptions or {})
        try:
            source = otio.adapters.read_from_file(str(filePath))
        except (otio.exceptions.OTIOError, OSError, ValueError):
            return None
        if not isinstance(source, otio.schema.Timeline):
            return None
        name = options.get("timelineName") or source.name or Path(filePath).stem
        if any(t._name == name for t in self.project.timelines):
            return None
        rate = (
            Fraction(source.global_start_time.rate).limit_denominator(1001)
            if source.global_start_time
            else None
        )
        video_tracks = [t for t in source.tracks if isinstance(t, otio.schema.Track) and t.kind == "Video"]
        if rate is None:
            clips = [c for t in video_tracks for c in t.find_clips()]
            rate = (
                Fraction(clips[0].source_range.duration.rate).limit_denominator(1001)
                if clips
                else self.project.rate
            )
        start = int(round(source.global_start_time.value)) if source.global_start_time else _start_frame(rate)
        timeline = FakeTimeline(self.project, name, rate, start)
        timeline.tracks["video"] = []
        search = self._search_folders(options)
        for track in video_tracks:
            items: list[FakeTimelineItem] = []
            timeline.tracks["video"].append(items)
            position = Fraction(start)
            for child in track:
                if isinstance(child, otio.schema.Transition):
                    continue
                length = Fraction(child.duration().to_frames(float(rate)))
                if isinstance(child, otio.schema.Clip):
                    items.append(
                        self._imported_item(timeline, child, int(position), int(length), search, options)
                    )
                position += length
        for marker in source.tracks.markers:
            color = marker.metadata.get("Resolve_OTIO", {}).get("Color", "Blue")
            timeline.AddMarker(
                int(marker.marked_range.start_time.to_frames(float(rate))),
                color,
                marker.name,
                marker.metadata.get("Resolve_OTIO", {}).get("Note", ""),
                max(1, int(marker.marked_range.duration.to_frames(float(rate)))),
            )
        self.project.timelines.append(timeline)
        self.project.current_timeline = timeline
        return timeline

    def _search_folders(self, options: dict[str, Any]) -> list[FakeFolder]:
        folders = [self.current]
        if options.get("importSourceClips", True) is False:
            folders += [f for f in options.get("sourceClipsFolders") or [] if isinstance(f, FakeFolder)]
        return folders

    def _imported_item(self, timeline, clip, start, length, search, options) -> FakeTimelineItem:
        reference = clip.media_reference
        path = ""
        if isinstance(reference, otio.schema.ExternalReference):
            path = reference.target_url
            if path.startswith("file://"):
                from urllib.parse import unquote, urlparse

                path = unquote(urlparse(path).path)
        media = next((c for f in search for c in f.clips if str(c.path) == path), None)
        if media is None and options.get("importSourceClips", True) is not False and path:
            candidate = path
            if not Path(candidate).is_file() and options.get("sourceClipsPath"):
                candidate = str(Path(options["sourceClipsPath"]) / Path(path).name)
            media = self._probe(candidate)
            if media is not None:
                self.current.clips.append(media)
        scalar = Fraction(1)
        for effect in clip.effects:
            if isinstance(effect, otio.schema.LinearTimeWarp):
                scalar *= Fraction(effect.time_scalar).limit_denominator(100000)
        source_rate = float(media.rate) if media else float(timeline.rate)
        source_start = (
            Fraction(clip.source_range.start_time.to_frames(source_rate)) if clip.source_range else 0
        )
        item = FakeTimelineItem(
            timeline,
            media,
            clip.name,
            start,
            length,
            source_start,
            scalar,
            offline_path="" if media else path,
        )
        return item


class FakeProject(_Recorder):
    def __init__(self, resolve: FakeResolve, name: str, rate: Fraction):
        self._resolve = resolve
        self._name = name
        self.rate = Fraction(rate)
        self.timelines: list[FakeTimeline] = []
        self.current_timeline: FakeTimeline | None = None
        self.media_pool = FakeMediaPool(self)
        self.playhead_frames: dict[str, int] = {}

    def GetName(self):  # noqa: N802
        return self._name

    def GetMediaPool(self):  # noqa: N802
        return self.media_pool

    def GetTimelineCount(self):  # noqa: N802
        return len(self.timelines)

    def GetTimelineByIndex(self, idx):  # noqa: N802
        if not isinstance(idx, int) or not 1 <= idx <= len(self.timelines):
            return None
        return self.timelines[idx - 1]

    def GetCurrentTimeline(self):  # noqa: N802
        return self.current_timeline

    def SetCurrentTimeline(self, timeline):  # noqa: N802
        self._record("SetCurrentTimeline", timeline)
        if timeline not in self.timelines:
            return False
        self.current_timeline = timeline
        return True

    def GetSetting(self, settingName=None):  # noqa: N802, N803
        settings = {"timelineFrameRate": f"{float(self.rate):g}"}
        if settingName is None or settingName == "":
            return settings
        return settings.get(settingName, "")


class FakeProjectManager(_Recorder):
    def __init__(self, resolve: FakeResolve):
        self._resolve = resolve
        self.projects: list[FakeProject] = []
        self.current: FakeProject | None = None

    def GetCurrentProject(self):  # noqa: N802
        return self.current

    def CreateProject(self, projectName, mediaLocationPath=None):  # noqa: N802, N803
        self._record("CreateProject", projectName)
        if not isinstance(projectName, str) or any(p._name == projectName for p in self.projects):
            return None
        project = FakeProject(self._resolve, projectName, self._resolve.fake_project_rate)
        self.projects.append(project)
        self.current = project
        return project

    def LoadProject(self, projectName):  # noqa: N802, N803
        project = next((p for p in self.projects if p._name == projectName), None)
        if project is not None:
            self.current = project
        return project


class FakeResolve(_Recorder):
    """The ``resolve`` object. ``studio=False`` makes it the free edition (Lua only, from 21.1)."""

    EXPORT_AAF = 0
    EXPORT_DRT = 1
    EXPORT_EDL = 2
    EXPORT_FCP_7_XML = 3
    EXPORT_FCPXML_1_10 = 10
    EXPORT_OTIO = 23
    EXPORT_NONE = 30

    def __init__(
        self,
        *,
        studio: bool = True,
        version: tuple[int, int, int] = (20, 2, 0),
        project_rate: Fraction = Fraction(24),
    ):
        self._resolve = self
        self.fake_calls: list[tuple[object, str, tuple]] = []
        self.studio = studio
        self.version = version
        self.fake_project_rate = Fraction(project_rate)
        self.page = "edit"
        self.project_manager = FakeProjectManager(self)

    def GetProjectManager(self):  # noqa: N802
        return self.project_manager

    def GetProductName(self):  # noqa: N802
        return "DaVinci Resolve Studio" if self.studio else "DaVinci Resolve"

    def GetVersion(self):  # noqa: N802
        return [*self.version, 0, ""]

    def GetVersionString(self):  # noqa: N802
        return ".".join(str(v) for v in self.version)

    def GetCurrentPage(self):  # noqa: N802
        return self.page

    def OpenPage(self, pageName):  # noqa: N802, N803
        if pageName not in ("media", "cut", "edit", "fusion", "color", "fairlight", "deliver"):
            return False
        self.page = pageName
        return True

    def Fusion(self):  # noqa: N802
        return None

    def fake_calls_on(self, *objects: object) -> list[str]:
        """Names of the calls made on any of ``objects`` (for "never modified" checks)."""
        return [name for owner, name, _ in self.fake_calls if any(owner is obj for obj in objects)]


def install(resolve: FakeResolve) -> types.ModuleType:
    """Put a ``DaVinciResolveScript`` module whose ``scriptapp("Resolve")`` is ``resolve`` in sys.modules."""
    module = types.ModuleType("DaVinciResolveScript")

    def scriptapp(name: str):
        return resolve if name == "Resolve" else None

    module.scriptapp = scriptapp
    sys.modules["DaVinciResolveScript"] = module
    return module


def uninstall() -> None:
    sys.modules.pop("DaVinciResolveScript", None)


def demo_project(
    resolve: FakeResolve, clip: Path, *, name: str = "Cut 1"
) -> tuple[FakeProject, FakeTimeline]:
    """A project with one timeline on ``clip``: 60 frames at 100 %, a gap, then 80 frames at 50 %,
    and a marker of the user's at frame 10 (the timeline runs at the project rate)."""
    manager = resolve.GetProjectManager()
    project = manager.GetCurrentProject() or manager.CreateProject("Chronoscope demo")
    pool = project.GetMediaPool()
    media = pool.ImportMedia([str(Path(clip).absolute())])
    if not media:
        raise ValueError(f"the fake could not import {clip}")
    timeline = pool.CreateEmptyTimeline(name)
    pool.AppendToTimeline([{"mediaPoolItem": media[0], "startFrame": 0, "endFrame": 59}])
    timeline.fake_append(
        media[0],
        source_start_frames=60,
        duration_frames=80,
        speed=Fraction(1, 2),
        record_frame=timeline.GetStartFrame() + 70,
    )
    timeline.AddMarker(10, "Blue", "check the focus", "a note of the editor's", 1, "")
    return project, timeline


def draw_markers(timeline: FakeTimeline, path: Path, *, width_px: int = 960) -> Path:
    """Draw the timeline's clips and markers as a PNG strip (for the README and for looking)."""
    import cv2
    import numpy as np

    colors_bgr = {
        "Blue": (230, 120, 40),
        "Cyan": (220, 210, 40),
        "Green": (80, 190, 60),
        "Yellow": (40, 220, 240),
        "Red": (50, 50, 220),
        "Pink": (180, 120, 240),
        "Purple": (200, 80, 150),
        "Cream": (200, 235, 245),
    }
    span = max(1, timeline.GetEndFrame() - timeline.GetStartFrame())
    markers = sorted(timeline._markers.items())
    height = 150 + 22 * len(markers)
    image = np.full((height, width_px, 3), 38, np.uint8)
    scale = (width_px - 40) / span

    def x_of(frame: float) -> int:
        return int(20 + frame * scale)

    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(
        image,
        f"{timeline.GetName()}  ({float(timeline.rate):g} fps, {span} frames)",
        (20, 22),
        font,
        0.5,
        (230, 230, 230),
        1,
        cv2.LINE_AA,
    )
    cv2.rectangle(image, (20, 34), (width_px - 20, 56), (60, 60, 60), -1)
    for frame, info in markers:
        color = colors_bgr.get(info["color"], (160, 160, 160))
        x0, x1 = x_of(frame), max(x_of(frame) + 3, x_of(frame + info["duration"]))
        cv2.rectangle(image, (x0, 40), (x1, 52), color, -1)
        cv2.drawMarker(image, (x0, 38), color, cv2.MARKER_TRIANGLE_DOWN, 10, 2)
    for item in timeline.tracks["video"][0]:
        x0, x1 = x_of(item.start_frames - timeline.start_frame), x_of(item.GetEnd() - timeline.start_frame)
        cv2.rectangle(image, (x0, 66), (x1 - 2, 108), (150, 110, 70), -1)
        label = f"{item.GetName()}  {float(item.speed) * 100:g}%"
        cv2.putText(image, label, (x0 + 4, 92), font, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.putText(image, "V1", (2, 92), font, 0.4, (200, 200, 200), 1, cv2.LINE_AA)
    for row, (frame, info) in enumerate(markers):
        y = 134 + 22 * row
        color = colors_bgr.get(info["color"], (160, 160, 160))
        cv2.rectangle(image, (20, y - 10), (32, y + 2), color, -1)
        owner = "Chronoscope" if info["customData"].startswith('{"chronoscope":') else "editor"
        text = f"frame {frame:>4}  +{int(info['duration'])}  {info['color']:<7} {info['name']}   [{owner}]"
        cv2.putText(image, text, (40, y), font, 0.45, (235, 235, 235), 1, cv2.LINE_AA)
    path = Path(path)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")
    return path
