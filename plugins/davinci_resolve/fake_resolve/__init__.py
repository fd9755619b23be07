"""A faithful fake of DaVinci Resolve's scripting API, for tests and for drawing the README pictures.

It follows Resolve's scripting README (Developer/Scripting/README.txt, Resolve 18.5 to 20):

- indices are 1-based (``GetTimelineByIndex``, ``GetItemListInTrack``), and a bad index gives None;
- calls that fail return False (or None where the README says an object is returned), never raise;
- timeline markers are placed at ``frameId`` counted from the timeline's first frame, at most one
  per frame (``AddMarker`` answers False when the frame is taken); ``GetMarkers`` answers
  ``{frameId: {"color", "duration", "note", "name", "customData"}}`` with float keys and durations,
  as Resolve does;
- ``TimelineItem.GetStart``/``GetEnd``/``GetDuration``/``GetLeftOffset``/``GetRightOffset`` take
  ``subframe_precision`` (Resolve 19.0.2): whole frames by default, fractional frames when True.
  Start and end are timeline frames including the timeline's start frame (01:00:00:00 = 86400 at
  24 fps; 01:00:00;00 = 107892 on a 29.97 drop-frame timeline); ``GetEnd`` is exclusive. The
  offsets are the media frames before and after the ones the clip shows, so that
  ``MediaPoolItem.GetClipProperty("Start") + GetLeftOffset() == GetSourceStartFrame()`` (as
  gyroflow-plugins issue 25 measured in Resolve);
- ``GetSourceStartFrame``/``GetSourceEndFrame`` are the first and last frame of the media the
  clip shows (media frames from the file's first, the last one included),
  ``GetSourceStartTime``/``GetSourceEndTime`` the same in seconds (the end exclusive);
- media pool items answer ``GetClipProperty()`` (all properties as a dict; naming one is a
  deprecated calling convention since Resolve 20, still answered) with, among others, "File
  Path", "FPS", "Frames", "Start" and "End" (first and last frame in the file), "Duration",
  "Start TC" and "End TC" (the file's own start timecode, from its ``timecode`` tag);
  ``Folder.GetClipList()`` lists a bin's items;
- tracks and clips can be disabled (``SetTrackEnable``/``GetIsTrackEnabled``,
  ``SetClipEnabled``/``GetClipEnabled``) and locked; ``CreateCompoundClip`` nests clips in a
  compound clip, which has a media pool item of its own;
- media with sound is placed with a linked clip on the audio track of the same number, as
  Resolve's append does;
- ``Timeline.Export(path, resolve.EXPORT_OTIO)`` writes a real OTIO file shaped as Resolve writes
  it (gaps between clips, ``global_start_time``, ``metadata["Resolve_OTIO"]``, video and audio
  tracks, ``enabled`` flags, media ranges counted from the file's start timecode, clip speed as a
  ``LinearTimeWarp`` named "" with effect name "", a speed ramp as a plain ``TimeEffect`` whose
  ``Resolve_OTIO`` metadata holds its "Key Frames" and "Speed Ratio", the plain "Resolve Effect"
  entries Resolve writes on every clip (Transform, Cropping, ... ; Volume on sound), one "Link
  Group ID" per linked picture and sound pair, a compound clip as a nested ``Stack``, and
  timeline markers with their colour, name and ``Resolve_OTIO`` "Note" and "Keywords" but
  without their customData, which Resolve's OTIO does not carry), and
  ``MediaPool.ImportTimelineFromFile`` reads one back (markers without customData, as Resolve);
- ``MediaPool.ImportMedia`` probes real files with PyAV and skips what it cannot read.

What Resolve does only through its UI has a ``fake_`` method, e.g. ``FakeTimeline.fake_append``
(place a clip with a given speed, as "Change Clip Speed" would) and
``FakeTimelineItem.fake_speed_ramp`` (a retime curve). Inject the fake as the
``DaVinciResolveScript`` module with ``install(resolve)``; ``resolve.fake_calls`` records every
API call by name, so a test can assert that a script never touched a timeline it must not change.
"""

from __future__ import annotations

import itertools
import math
import re
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


def _frames_per_second(rate: Fraction) -> int:
    """The frames a timecode counts per second: 30 for 29.97, 24 for 23.976."""
    return round(rate)


def _can_drop_frame(rate: Fraction) -> bool:
    """Drop-frame timecode exists for 29.97 and 59.94 only."""
    return Fraction(rate).denominator == 1001 and _frames_per_second(rate) in (30, 60)


def _dropped_per_minute(rate: Fraction) -> int:
    """Frame numbers a drop-frame timecode skips each minute but every tenth: 2 at 29.97, 4 at 59.94."""
    return _frames_per_second(rate) // 15


def timecode_to_frames(timecode: str, rate: Fraction, drop_frame: bool = False) -> int | None:
    """``01:00:00:00`` (or ``01:00:00;00``, drop frame) as a frame count at ``rate``; None when not
    a timecode. 01:00:00;00 at 29.97 drop frame is frame 107892."""
    found = re.fullmatch(r"(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})", str(timecode).strip())
    if not found:
        return None
    hours, minutes, seconds, _, frames = found.groups()
    fps = _frames_per_second(rate)
    hours, minutes, seconds, frames = int(hours), int(minutes), int(seconds), int(frames)
    if minutes > 59 or seconds > 59 or frames >= fps:
        return None
    count = ((hours * 60 + minutes) * 60 + seconds) * fps + frames
    if drop_frame and _can_drop_frame(rate):
        total_minutes = hours * 60 + minutes
        count -= _dropped_per_minute(rate) * (total_minutes - total_minutes // 10)
    return count


def frames_to_timecode(frames: int, rate: Fraction, drop_frame: bool = False) -> str:
    """A frame count as Resolve shows it: ``01:00:00:00``, or ``01:00:00;00`` in drop frame."""
    fps = _frames_per_second(rate)
    frames = int(frames)
    separator = ":"
    if drop_frame and _can_drop_frame(rate):
        separator = ";"
        dropped = _dropped_per_minute(rate)
        per_ten_minutes = 600 * fps - 9 * dropped
        per_minute = 60 * fps - dropped
        tens, rest = divmod(frames, per_ten_minutes)
        frames += 9 * dropped * tens
        if rest > dropped:
            frames += dropped * ((rest - dropped) // per_minute)
    hours, minutes, seconds = frames // (3600 * fps), frames // (60 * fps) % 60, frames // fps % 60
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{frames % fps:02d}"


def _start_frame(rate: Fraction, drop_frame: bool = False) -> int:
    """01:00:00:00 at the timeline rate, Resolve's default timeline start (107892 at 29.97 DF)."""
    return timecode_to_frames("01:00:00:00", rate, drop_frame)


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


class _PoolItem(_Markers):
    """What every media pool item answers: its name, ids, markers over its frames, and clip
    properties (``_properties``), one by name or all as a dict, as the scripting README says."""

    _name: str
    _id: str
    rate: Fraction
    frames: int

    def _marker_span(self) -> int:
        return self.frames

    def GetName(self):  # noqa: N802
        return self._name

    def GetMediaId(self):  # noqa: N802
        return self._id

    def GetUniqueId(self):  # noqa: N802
        return self._id

    def _properties(self) -> dict[str, str]:
        return {
            "Clip Name": self._name,
            "FPS": f"{float(self.rate):.3f}".rstrip("0").rstrip("."),
            "Frames": str(self.frames),
        }

    def GetClipProperty(self, propertyName=None):  # noqa: N802, N803
        properties = self._properties()
        if propertyName is None or propertyName == "":
            return properties
        return properties.get(propertyName, "")


class FakeMediaPoolItem(_PoolItem):
    """A media file in the pool. ``start_timecode`` is the file's own (its ``timecode`` tag,
    ``00:00:00:00`` without one); ``start_timecode_frames`` is the frame number it labels at the
    file's rate, where Resolve's OTIO export starts the media's ``available_range``."""

    def __init__(
        self,
        resolve: FakeResolve,
        path: Path,
        rate: Fraction,
        frames: int,
        size: tuple[int, int],
        has_audio: bool = False,
        start_timecode: str = "",
    ):
        self._resolve = resolve
        self.path = Path(path)
        self.rate = rate
        self.frames = frames
        self.size = size
        self.has_audio = has_audio
        self.drop_frame = ";" in start_timecode and _can_drop_frame(rate)
        counted = timecode_to_frames(start_timecode, rate, self.drop_frame) if start_timecode else None
        self.start_timecode_frames = counted or 0
        self._id = _unique_id()
        self._name = self.path.name
        self._init_markers()

    @property
    def start_timecode(self) -> str:
        return frames_to_timecode(self.start_timecode_frames, self.rate, self.drop_frame)

    def _properties(self) -> dict[str, str]:
        """As the scripting README's property list writes them: "Start" and "End" are the first
        and last frame of the clip in its file (0 and Frames - 1 for a whole file; a subclip's own
        range otherwise), "Duration" and the "TC" pair are timecodes ("End TC" just past the last
        frame)."""
        return {
            **super()._properties(),
            "File Name": self.path.name,
            "File Path": str(self.path),
            "Resolution": f"{self.size[0]}x{self.size[1]}",
            "Type": "Video + Audio" if self.has_audio else "Video",
            "Start": "0",
            "End": str(self.frames - 1),
            "Duration": frames_to_timecode(self.frames, self.rate, self.drop_frame),
            "Start TC": self.start_timecode,
            "End TC": frames_to_timecode(
                self.start_timecode_frames + self.frames, self.rate, self.drop_frame
            ),
        }


class FakeCompoundPoolItem(_PoolItem):
    """The media pool item of a compound clip: no file, Type "Compound"."""

    path = None
    has_audio = False

    def __init__(self, resolve: FakeResolve, name: str, rate: Fraction, frames: int):
        self._resolve = resolve
        self._name = name
        self.rate = Fraction(rate)
        self.frames = frames
        self._id = _unique_id()
        self._init_markers()

    def _properties(self) -> dict[str, str]:
        return {**super()._properties(), "File Name": "", "File Path": "", "Type": "Compound"}


class FakeFolder(_Recorder):
    def __init__(self, resolve: FakeResolve, name: str, parent: FakeFolder | None = None):
        self._resolve = resolve
        self._name = name
        self.parent = parent
        self.clips: list[FakeMediaPoolItem | FakeCompoundPoolItem] = []
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


def _frames(value: Fraction, subframe_precision: Any) -> int | float:
    """Whole frames (Resolve's default), or fractional ones when ``subframe_precision`` is True."""
    return float(value) if subframe_precision is True else math.floor(value)


class FakeCompound:
    """What a compound clip holds: its own video and audio tracks, items placed from frame 0."""

    def __init__(self) -> None:
        self.tracks: dict[str, list[list[FakeTimelineItem]]] = {"video": [], "audio": []}


class FakeTimelineItem(_Markers):
    """A clip on a track. ``start_frames`` is a timeline frame (a Fraction when the clip sits between
    frames), ``source_start_frames`` a media frame; ``speed`` 1 = 100 %. A compound clip has
    ``compound`` set and ``media_item`` its compound media pool item; a speed ramp has ``ramp``
    (``[(frame in the clip, speed), ...]``)."""

    def __init__(
        self,
        timeline: FakeTimeline,
        media_item: FakeMediaPoolItem | FakeCompoundPoolItem | None,
        name: str,
        start_frames: int | Fraction,
        duration_frames: int,
        source_start_frames: Fraction,
        speed: Fraction,
        offline_path: str = "",
        *,
        track_type: str = "video",
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
        self.track_type = track_type
        self.enabled = True
        self.compound: FakeCompound | None = None
        self.ramp: list[tuple[int, Fraction]] = []
        self.linked: list[FakeTimelineItem] = []
        self.flags: list[str] = []
        self.fake_link_group: int | None = None  # the "Link Group ID" it was imported with
        self.clip_color = ""
        self.properties: dict[str, Any] = {"RetimeProcess": 0}
        self._id = _unique_id()
        self._init_markers()

    def _marker_span(self) -> int:
        return self.duration_frames

    def _media_frames_per_frame(self) -> Fraction:
        """Media frames the clip advances per timeline frame."""
        media_rate = self.media_item.rate if self.media_item is not None else self.timeline.rate
        return self.speed * media_rate / self.timeline.rate

    def _media_frames_shown(self) -> Fraction:
        return Fraction(self.duration_frames) * self._media_frames_per_frame()

    def GetName(self):  # noqa: N802
        return self._name

    def GetStart(self, subframe_precision=False):  # noqa: N802
        return _frames(Fraction(self.start_frames), subframe_precision)

    def GetEnd(self, subframe_precision=False):  # noqa: N802
        return _frames(Fraction(self.start_frames) + self.duration_frames, subframe_precision)

    def GetDuration(self, subframe_precision=False):  # noqa: N802
        return _frames(Fraction(self.duration_frames), subframe_precision)

    def _pool_start_frames(self) -> int:
        """The media pool item's "Start": where the clip's pool item begins in its file."""
        media = self.media_item
        start = media.GetClipProperty("Start") if isinstance(media, FakeMediaPoolItem) else ""
        return int(start) if str(start).isdigit() else 0

    def GetLeftOffset(self, subframe_precision=False):  # noqa: N802
        """Media frames of the pool item before the clip's first one (how far it could be
        extended at its head): ``GetClipProperty("Start") + GetLeftOffset() ==
        GetSourceStartFrame()``, as gyroflow-plugins issue 25 found in Resolve."""
        if self.compound is not None:
            return _frames(Fraction(0), subframe_precision)
        return _frames(self.source_start_frames - self._pool_start_frames(), subframe_precision)

    def GetRightOffset(self, subframe_precision=False):  # noqa: N802
        """Media frames after the last one the clip shows (how far it could be extended at its tail)."""
        media = self.media_item
        if self.compound is not None or media is None:
            return _frames(Fraction(0), subframe_precision)
        after = Fraction(media.frames) - self.source_start_frames - self._media_frames_shown()
        return _frames(max(after, Fraction(0)), subframe_precision)

    def GetSourceStartFrame(self):  # noqa: N802
        """The first media frame the clip shows, counted from the file's first frame (its pool
        item's "Start" plus ``GetLeftOffset()``)."""
        return self._pool_start_frames() + self.GetLeftOffset()

    def GetSourceEndFrame(self):  # noqa: N802
        """The last media frame the clip shows (included)."""
        return max(
            math.ceil(self.source_start_frames + self._media_frames_shown()) - 1, self.GetSourceStartFrame()
        )

    def GetSourceStartTime(self):  # noqa: N802
        rate = self.media_item.rate if self.media_item is not None else self.timeline.rate
        return float(self.source_start_frames / rate)

    def GetSourceEndTime(self):  # noqa: N802
        rate = self.media_item.rate if self.media_item is not None else self.timeline.rate
        return float((self.source_start_frames + self._media_frames_shown()) / rate)

    def GetMediaPoolItem(self):  # noqa: N802
        return self.media_item

    def GetUniqueId(self):  # noqa: N802
        return self._id

    def GetTrackTypeAndIndex(self):  # noqa: N802
        for index, items in enumerate(self.timeline.tracks.get(self.track_type, []), start=1):
            if any(item is self for item in items):
                return [self.track_type, index]
        return None

    def GetClipEnabled(self):  # noqa: N802
        return self.enabled

    def SetClipEnabled(self, enabled):  # noqa: N802
        self._record("SetClipEnabled", enabled)
        if not isinstance(enabled, bool):
            return False
        self.enabled = enabled
        return True

    def GetLinkedItems(self):  # noqa: N802
        return list(self.linked)

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

    # ------------------------------------------------------------------ fake-only

    def fake_speed_ramp(self, keyframes: list[tuple[int, Fraction]]) -> None:
        """Give the clip a speed ramp (Resolve's Retime Curve): ``[(frame in the clip, speed), ...]``,
        e.g. ``[(0, 1), (40, Fraction(1, 4))]``. Its export is a plain TimeEffect, as Resolve's."""
        self.ramp = [(int(frame), Fraction(speed)) for frame, speed in keyframes]
        if self.ramp:
            self.speed = sum((speed for _, speed in self.ramp), Fraction(0)) / len(self.ramp)


class FakeTimeline(_Markers):
    def __init__(
        self,
        project: FakeProject,
        name: str,
        rate: Fraction,
        start_frame: int | None = None,
        *,
        drop_frame: bool = False,
    ):
        self._resolve = project._resolve
        self.project = project
        self._name = name
        self.rate = Fraction(rate)
        self.drop_frame = bool(drop_frame) and _can_drop_frame(self.rate)
        self.start_frame = _start_frame(self.rate, self.drop_frame) if start_frame is None else start_frame
        self.tracks: dict[str, list[list[FakeTimelineItem]]] = {"video": [[]], "audio": [[]], "subtitle": []}
        self.track_enabled: dict[tuple[str, int], bool] = {}
        self.track_locked: dict[tuple[str, int], bool] = {}
        self._link_groups: dict[int, int] = {}
        self._id = _unique_id()
        self._init_markers()

    def _marker_span(self) -> int:
        return max(1, self.GetEndFrame() - self.start_frame)

    def _all_items(self) -> list[FakeTimelineItem]:
        return [item for kind in TRACK_TYPES for track in self.tracks[kind] for item in track]

    def _track_exists(self, trackType: Any, trackIndex: Any) -> bool:  # noqa: N803
        return (
            trackType in TRACK_TYPES
            and isinstance(trackIndex, int)
            and not isinstance(trackIndex, bool)
            and 1 <= trackIndex <= len(self.tracks[trackType])
        )

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
        ends = [item.GetEnd() for item in self._all_items()]
        return max(ends, default=self.start_frame)

    def GetStartTimecode(self):  # noqa: N802
        return frames_to_timecode(self.start_frame, self.rate, self.drop_frame)

    def SetStartTimecode(self, timecode):  # noqa: N802
        """Moves the whole timeline (its clips keep their places relative to its start)."""
        self._record("SetStartTimecode", timecode)
        frames = timecode_to_frames(timecode, self.rate, self.drop_frame)
        if frames is None:
            return False
        shift = frames - self.start_frame
        for item in self._all_items():
            item.start_frames += shift
        self.start_frame = frames
        return True

    def GetSetting(self, settingName=None):  # noqa: N802, N803
        settings = {
            "timelineFrameRate": f"{float(self.rate):g}",
            "timelineResolutionWidth": "1920",
            "timelineDropFrameTimecode": "1" if self.drop_frame else "0",
        }
        if settingName is None or settingName == "":
            return settings
        return settings.get(settingName, "")

    def GetTrackCount(self, trackType):  # noqa: N802, N803
        if trackType not in TRACK_TYPES:
            return 0
        return len(self.tracks[trackType])

    def GetTrackName(self, trackType, trackIndex):  # noqa: N802, N803
        if not self._track_exists(trackType, trackIndex):
            return None
        return f"{trackType.capitalize()} {trackIndex}"

    def AddTrack(self, trackType, subTrackType=None):  # noqa: N802, N803
        self._record("AddTrack", trackType, subTrackType)
        if trackType not in TRACK_TYPES:
            return False
        self.tracks[trackType].append([])
        return True

    def SetTrackEnable(self, trackType, trackIndex, enabled):  # noqa: N802, N803
        self._record("SetTrackEnable", trackType, trackIndex, enabled)
        if not self._track_exists(trackType, trackIndex) or not isinstance(enabled, bool):
            return False
        self.track_enabled[(trackType, trackIndex)] = enabled
        return True

    def GetIsTrackEnabled(self, trackType, trackIndex):  # noqa: N802, N803
        if not self._track_exists(trackType, trackIndex):
            return False
        return self.track_enabled.get((trackType, trackIndex), True)

    def SetTrackLock(self, trackType, trackIndex, locked):  # noqa: N802, N803
        self._record("SetTrackLock", trackType, trackIndex, locked)
        if not self._track_exists(trackType, trackIndex) or not isinstance(locked, bool):
            return False
        self.track_locked[(trackType, trackIndex)] = locked
        return True

    def GetIsTrackLocked(self, trackType, trackIndex):  # noqa: N802, N803
        if not self._track_exists(trackType, trackIndex):
            return False
        return self.track_locked.get((trackType, trackIndex), False)

    def GetItemListInTrack(self, trackType, index):  # noqa: N802
        if not self._track_exists(trackType, index):
            return None
        return sorted(self.tracks[trackType][index - 1], key=lambda item: item.start_frames)

    def GetCurrentVideoItem(self):  # noqa: N802
        playhead = self.project.playhead_frames.get(self._id, self.start_frame)
        for track in reversed(self.tracks["video"]):
            for item in track:
                if item.start_frames <= playhead < item.GetEnd():
                    return item
        return None

    def CreateCompoundClip(self, timelineItems, clipInfo=None):  # noqa: N802, N803
        """Nest ``timelineItems`` (of this timeline) in a compound clip, placed on the lowest video
        track among them, spanning them all; ``clipInfo``: {"name", "startTimecode"}. Returns the
        compound clip's timeline item (None when the items are not all on this timeline)."""
        self._record("CreateCompoundClip", timelineItems, clipInfo)
        info = clipInfo if isinstance(clipInfo, dict) else {}
        items = timelineItems if isinstance(timelineItems, list) else []
        places = [
            item.GetTrackTypeAndIndex() if isinstance(item, FakeTimelineItem) else None for item in items
        ]
        if not items or any(
            place is None or item.timeline is not self for item, place in zip(items, places, strict=True)
        ):
            return None
        video = [index for kind, index in places if kind == "video"]
        if not video:
            return None
        start = min(Fraction(item.start_frames) for item in items)
        end = max(Fraction(item.start_frames) + item.duration_frames for item in items)
        compound = FakeCompound()
        lowest = {kind: min(index for k, index in places if k == kind) for kind, _ in places}
        for item, (kind, index) in zip(items, places, strict=True):
            self.tracks[kind][index - 1].remove(item)
            inner = compound.tracks.setdefault(kind, [])
            while len(inner) <= index - lowest[kind]:
                inner.append([])
            item.start_frames = Fraction(item.start_frames) - start
            inner[index - lowest[kind]].append(item)
        folders = self.project.media_pool.root.walk()
        count = sum(
            1 for folder in folders for clip in folder.clips if isinstance(clip, FakeCompoundPoolItem)
        )
        name = str(info.get("name") or f"Compound Clip {count + 1}")
        length = math.ceil(end - start)
        pool_item = FakeCompoundPoolItem(self._resolve, name, self.rate, length)
        self.project.media_pool.current.clips.append(pool_item)
        created = FakeTimelineItem(self, pool_item, name, start, length, Fraction(0), Fraction(1))
        created.compound = compound
        self.tracks["video"][min(video) - 1].append(created)
        return created

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
        record_frame: int | Fraction | None = None,
        audio: bool | None = None,
    ) -> FakeTimelineItem | None:
        """Place ``media_item`` on video track ``track_index`` playing at ``speed`` (1/2 = 50 %).

        Stands in for the editor's Change Clip Speed; ``duration_frames`` is the clip's length on
        the timeline. Media with sound also gets a linked clip on audio track ``track_index`` (as
        Resolve's append does; ``audio=False`` leaves it out). Returns None when it would overlap a
        clip or run past the media.
        """
        speed = Fraction(speed)
        for kind in ("video", "audio"):
            while len(self.tracks[kind]) < track_index:
                self.tracks[kind].append([])
        track = self.tracks["video"][track_index - 1]
        start = Fraction(
            record_frame
            if record_frame is not None
            else max(
                (Fraction(item.start_frames) + item.duration_frames for item in track),
                default=self.start_frame,
            )
        )
        start = int(start) if start.denominator == 1 else start
        end = start + duration_frames
        if start < self.start_frame or duration_frames < 1:
            return None
        if any(
            item.start_frames < end and start < item.start_frames + item.duration_frames for item in track
        ):
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
        if audio is not False and (audio or media_item.has_audio):
            sound = FakeTimelineItem(
                self,
                media_item,
                media_item.GetName(),
                start,
                duration_frames,
                Fraction(source_start_frames),
                speed,
                track_type="audio",
            )
            sound.linked, item.linked = [item], [sound]
            self.tracks["audio"][track_index - 1].append(sound)
        return item

    def fake_to_otio(self) -> otio.schema.Timeline:
        """This timeline as Resolve's OTIO export writes it."""
        rate = _rate_value(self.rate)
        timeline = otio.schema.Timeline(name=self._name)
        timeline.global_start_time = otio.opentime.RationalTime(self.start_frame, rate)
        timeline.metadata["Resolve_OTIO"] = {"Resolve OTIO Meta Version": "1.0"}
        self._link_groups = self._link_group_ids()
        for kind in ("video", "audio"):
            for index, items in enumerate(self.tracks[kind], start=1):
                track = self._track_otio(kind, index, items, self.start_frame)
                track.enabled = self.GetIsTrackEnabled(kind, index)
                track.metadata["Resolve_OTIO"] = {"Locked": self.GetIsTrackLocked(kind, index)}
                timeline.tracks.append(track)
        for frame, info in sorted(self._markers.items()):
            # Resolve writes a marker's colour, name and note; its customData stays behind
            marker = otio.schema.Marker(
                name=info["name"],
                marked_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(frame, rate),
                    otio.opentime.RationalTime(info["duration"], rate),
                ),
                color=info["color"].upper(),
                metadata={"Resolve_OTIO": {"Keywords": [], "Note": info["note"]}},
            )
            timeline.tracks.markers.append(marker)
        return timeline

    def _link_group_ids(self) -> dict[int, int]:
        """One "Link Group ID" per clip and the clips linked to it (picture and its sound), numbered
        in timeline order, by ``id`` of the item; clips linked to nothing have none."""
        groups: dict[int, int] = {}

        def walk(tracks: dict[str, list[list[FakeTimelineItem]]]) -> None:
            for kind in ("video", "audio"):
                for items in tracks.get(kind, []):
                    for item in sorted(items, key=lambda i: i.start_frames):
                        if item.linked and id(item) not in groups:
                            number = len(set(groups.values())) + 1
                            for member in (item, *item.linked):
                                groups[id(member)] = number
                        if item.compound is not None:
                            walk(item.compound.tracks)

        walk(self.tracks)
        return groups

    def _track_otio(
        self, kind: str, index: int, items: list[FakeTimelineItem], origin: Fraction
    ) -> otio.schema.Track:
        """A track of clips placed from ``origin`` (the timeline's first frame, or 0 in a compound clip)."""
        rate = _rate_value(self.rate)
        track = otio.schema.Track(
            name=f"{kind.capitalize()} {index}",
            kind=otio.schema.TrackKind.Video if kind == "video" else otio.schema.TrackKind.Audio,
        )
        position = Fraction(origin)
        for item in sorted(items, key=lambda i: i.start_frames):
            start = Fraction(item.start_frames)
            if start > position:
                track.append(
                    otio.schema.Gap(duration=otio.opentime.RationalTime(float(start - position), rate))
                )
            track.append(self._compound_otio(item) if item.compound is not None else self._clip_otio(item))
            position = start + item.duration_frames
        return track

    def _compound_otio(self, item: FakeTimelineItem) -> otio.schema.Stack:
        rate = _rate_value(self.rate)
        stack = otio.schema.Stack(
            name=item.GetName(),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(item.duration_frames, rate)
            ),
        )
        stack.metadata["Resolve_OTIO"] = {"Clip Color": item.clip_color or "Orange"}
        stack.enabled = item.enabled
        for kind in ("video", "audio"):
            for index, items in enumerate(item.compound.tracks.get(kind, []), start=1):
                stack.append(self._track_otio(kind, index, items, Fraction(0)))
        return stack

    def _clip_otio(self, item: FakeTimelineItem) -> otio.schema.Clip:
        """A clip as Resolve exports it: source frames counted from the media's start timecode
        (where its ``available_range`` starts), its speed change, then Resolve's own effects."""
        rate = _rate_value(self.rate)
        media = item.media_item
        media_rate = _rate_value(media.rate) if media else rate
        media_start = media.start_timecode_frames if isinstance(media, FakeMediaPoolItem) else 0
        if media is not None:
            reference = otio.schema.ExternalReference(
                target_url=str(media.path),
                available_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(media_start, media_rate),
                    otio.opentime.RationalTime(media.frames, media_rate),
                ),
            )
        else:
            reference = otio.schema.MissingReference(name=item.offline_path)
        clip = otio.schema.Clip(
            name=item.GetName(),
            media_reference=reference,
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(float(media_start + item.source_start_frames), media_rate),
                otio.opentime.RationalTime(item.duration_frames, rate),
            ),
        )
        clip.enabled = item.enabled
        clip.metadata["Resolve_OTIO"] = {"Clip Color": item.clip_color or "Orange"}
        group = self._link_groups.get(id(item))
        if group is not None:
            clip.metadata["Resolve_OTIO"]["Link Group ID"] = group
        if item.ramp:
            average = item.speed
            clip.effects.append(
                otio.schema.TimeEffect(
                    name="",
                    effect_name="",
                    metadata={
                        "Resolve_OTIO": {
                            "Key Frames": [[frame, float(speed)] for frame, speed in item.ramp],
                            "Speed Ratio": float(average),
                        }
                    },
                )
            )
        elif item.speed != 1:
            warp = otio.schema.LinearTimeWarp(name="", time_scalar=float(item.speed))
            warp.effect_name = ""  # Resolve names neither (OTIO's default effect name is "LinearTimeWarp")
            clip.effects.append(warp)
        for effect in RESOLVE_EFFECTS[item.track_type]:
            clip.effects.append(_resolve_effect(*effect))
        return clip


RESOLVE_EFFECTS = {
    "video": (
        ("Transform", 2, 1, True),
        ("Cropping", 3, 1, True),
        ("Dynamic Zoom", 59, 1, False),
        ("Composite", 1, 1, True),
        ("Video Faders", 36, 3, True),
    ),
    "audio": (("Volume", 62, 1, True),),
}
"""The plain effects Resolve's OTIO export writes on every clip, each at its defaults (an empty
parameter list): (name, type, display type, enabled)."""


def _resolve_effect(name: str, kind: int, display: int, enabled: bool) -> otio.schema.Effect:
    return otio.schema.Effect(
        name="",
        effect_name="Resolve Effect",
        metadata={
            "Resolve_OTIO": {
                "Display Type": display,
                "Effect Name": name,
                "Enabled": enabled,
                "Name": name,
                "Parameters": [],
                "Type": kind,
            }
        },
    )


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
                has_audio = bool(container.streams.audio)
                timecode = stream.metadata.get("timecode") or container.metadata.get("timecode") or ""
        except (av.FFmpegError, IndexError, OSError, ValueError):
            return None
        if frames < 1:
            return None
        return FakeMediaPoolItem(self._resolve, Path(path), rate, frames, size, has_audio, timecode.strip())

    def CreateEmptyTimeline(self, name):  # noqa: N802
        self._record("CreateEmptyTimeline", name)
        if not isinstance(name, str) or not name or any(t._name == name for t in self.project.timelines):
            return None
        timeline = FakeTimeline(self.project, name, self.project.rate, drop_frame=self.project.drop_frame)
        self.project.timelines.append(timeline)
        self.project.current_timeline = timeline
        return timeline

    def AppendToTimeline(self, clips):  # noqa: N802
        """``[{"mediaPoolItem", "startFrame", "endFrame", "trackIndex"?, "recordFrame"?, "mediaType"?}]``.

        ``endFrame`` is inclusive, as in Resolve; ``mediaType`` 1 places the picture only (media with
        sound otherwise gets its linked audio clip)."""
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
                audio=False if info.get("mediaType") == 1 else None,
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
        tracks = [t for t in source.tracks if isinstance(t, otio.schema.Track)]
        if rate is None:
            clips = [c for t in tracks for c in t.find_clips()]
            rate = (
                Fraction(clips[0].source_range.duration.rate).limit_denominator(1001)
                if clips
                else self.project.rate
            )
        start = int(round(source.global_start_time.value)) if source.global_start_time else _start_frame(rate)
        timeline = FakeTimeline(self.project, name, rate, start, drop_frame=self.project.drop_frame)
        timeline.tracks["video"], timeline.tracks["audio"] = [], []
        search = self._search_folders(options)
        for track in tracks:
            kind = "audio" if track.kind == otio.schema.TrackKind.Audio else "video"
            timeline.tracks[kind].append(self._imported_track(timeline, track, kind, start, search, options))
            if not track.enabled:
                timeline.track_enabled[(kind, len(timeline.tracks[kind]))] = False
        for kind in ("video", "audio"):
            if not timeline.tracks[kind]:
                timeline.tracks[kind].append([])
        _link_imported(timeline)
        for marker in source.tracks.markers:
            # no customData: Resolve's OTIO carries none
            written = str(marker.color or "").capitalize()
            timeline.AddMarker(
                int(marker.marked_range.start_time.to_frames(float(rate))),
                written if written in MARKER_COLORS else "Blue",
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

    def _imported_track(self, timeline, track, kind, origin, search, options) -> list[FakeTimelineItem]:
        """The items of an OTIO track, placed from ``origin``; a nested Stack becomes a compound clip."""
        items: list[FakeTimelineItem] = []
        rate = timeline.rate
        position = Fraction(origin)
        for child in track:
            if isinstance(child, otio.schema.Transition):
                continue
            length = Fraction(child.duration().to_frames(float(rate)))
            place = int(position) if position.denominator == 1 else position
            if isinstance(child, otio.schema.Clip):
                item = self._imported_item(timeline, child, place, int(length), search, options)
                item.track_type = kind
                items.append(item)
            elif isinstance(child, otio.schema.Stack):
                items.append(self._imported_compound(timeline, child, place, int(length), search, options))
            position += length
        return items

    def _imported_compound(self, timeline, stack, start, length, search, options) -> FakeTimelineItem:
        compound = FakeCompound()
        for track in stack:
            if isinstance(track, otio.schema.Track):
                kind = "audio" if track.kind == otio.schema.TrackKind.Audio else "video"
                compound.tracks[kind].append(self._imported_track(timeline, track, kind, 0, search, options))
        pool_item = FakeCompoundPoolItem(self._resolve, stack.name, timeline.rate, length)
        self.current.clips.append(pool_item)
        item = FakeTimelineItem(timeline, pool_item, stack.name, start, length, Fraction(0), Fraction(1))
        item.compound = compound
        item.enabled = bool(stack.enabled)
        return item

    def _imported_item(self, timeline, clip, start, length, search, options) -> FakeTimelineItem:
        reference = clip.media_reference
        path = ""
        if isinstance(reference, otio.schema.ExternalReference):
            path = reference.target_url
            if path.startswith("file://"):
                from urllib.parse import unquote, urlparse

                path = unquote(urlparse(path).path)
        elif isinstance(reference, otio.schema.MissingReference):
            path = reference.name
        media = next((c for f in search for c in f.clips if c.path is not None and str(c.path) == path), None)
        if media is None and options.get("importSourceClips", True) is not False and path:
            candidate = path
            if not Path(candidate).is_file() and options.get("sourceClipsPath"):
                candidate = str(Path(options["sourceClipsPath"]) / Path(path).name)
            media = self._probe(candidate)
            if media is not None:
                self.current.clips.append(media)
        scalar = Fraction(1)
        ramp: list[tuple[int, Fraction]] = []
        for effect in clip.effects:
            if isinstance(effect, otio.schema.LinearTimeWarp):
                scalar *= Fraction(effect.time_scalar).limit_denominator(100000)
            elif isinstance(effect, otio.schema.TimeEffect):
                keys = (effect.metadata.get("Resolve_OTIO") or {}).get("Key Frames") or []
                ramp = [(int(key[0]), Fraction(key[1]).limit_denominator(100000)) for key in keys]
        source_rate = float(media.rate) if media else float(timeline.rate)
        source_start = (
            Fraction(clip.source_range.start_time.to_frames(source_rate)) if clip.source_range else 0
        )
        if media is not None:  # source frames count from the media's start timecode
            source_start -= media.start_timecode_frames
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
        item.enabled = bool(clip.enabled)
        group = (clip.metadata.get("Resolve_OTIO") or {}).get("Link Group ID")
        item.fake_link_group = group if isinstance(group, int) and not isinstance(group, bool) else None
        if ramp:
            item.fake_speed_ramp(ramp)
        return item


def _link_imported(timeline: FakeTimeline) -> None:
    """Link the imported clips that share a "Link Group ID" (a picture and its sound)."""
    groups: dict[int, list[FakeTimelineItem]] = {}
    for kind in ("video", "audio"):
        for items in timeline.tracks[kind]:
            for item in items:
                if item.fake_link_group is not None:
                    groups.setdefault(item.fake_link_group, []).append(item)
    for members in groups.values():
        for member in members:
            member.linked = [other for other in members if other is not member]


class FakeProject(_Recorder):
    def __init__(self, resolve: FakeResolve, name: str, rate: Fraction, drop_frame: bool = False):
        self._resolve = resolve
        self._name = name
        self.rate = Fraction(rate)
        self.drop_frame = bool(drop_frame) and _can_drop_frame(self.rate)
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
        settings = {
            "timelineFrameRate": f"{float(self.rate):g}",
            "timelineDropFrameTimecode": "1" if self.drop_frame else "0",
        }
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
        project = FakeProject(
            self._resolve, projectName, self._resolve.fake_project_rate, self._resolve.fake_drop_frame
        )
        self.projects.append(project)
        self.current = project
        return project

    def LoadProject(self, projectName):  # noqa: N802, N803
        project = next((p for p in self.projects if p._name == projectName), None)
        if project is not None:
            self.current = project
        return project


class FakeResolve(_Recorder):
    """The ``resolve`` object. ``studio=False`` makes it the free edition (Lua only, from 21.1);
    ``drop_frame`` gives new projects drop-frame timecode (29.97 and 59.94 only)."""

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
        drop_frame: bool = False,
    ):
        self._resolve = self
        self.fake_calls: list[tuple[object, str, tuple]] = []
        self.studio = studio
        self.version = version
        self.fake_project_rate = Fraction(project_rate)
        self.fake_drop_frame = drop_frame
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
        tagged = info["note"].rsplit("\n", 1)[-1].startswith("Chronoscope marker: ")
        ours = tagged or info["customData"].startswith('{"chronoscope":')
        owner = "Chronoscope" if ours else "editor"
        text = f"frame {frame:>4}  +{int(info['duration'])}  {info['color']:<7} {info['name']}   [{owner}]"
        cv2.putText(image, text, (40, y), font, 0.45, (235, 235, 235), 1, cv2.LINE_AA)
    path = Path(path)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")
    return path
