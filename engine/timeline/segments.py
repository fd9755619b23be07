"""The clips of a timeline as ``Segment`` records: where each sits, what media it shows, how fast.

A segment is one Clip on a top-level track. Gaps and transitions are not segments, but they stay in
the timeline (a segment keeps a reference to its clip for write-back), and a transition's overlap
into a clip is recorded on the segment. Record positions are counted here, exactly, in frames of
the timeline rate, rather than with OTIO's float arithmetic.

Time warps: enabled ``LinearTimeWarp`` effects on a clip multiply (two of 0.5 make 0.25); a
``FreezeFrame`` makes the clip a hold of its first source frame (scalar 0), and so does a plain
LinearTimeWarp of scalar exactly 0, which is how OTIO defines a FreezeFrame and how its EDL reader
writes an EDL freeze (``M2 ... 000.0``) into an .otio file. A negative scalar (reverse playback,
not supported yet), NaN or infinity raise ``InvalidTimeWarpError`` naming the clip and the value.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio

from engine.errors import (
    ChronoscopeError,
    InvalidTimeWarpError,
    MediaNotFoundError,
    TimelineError,
    UnsupportedOptionError,
)
from engine.timeline.fcp7xml import FCP7_SUFFIX, remap_advice, time_remap_of
from engine.timeline.paths import MediaLocation, PathMap, media_location
from engine.timeline.rates import exact_frames, exact_number, exact_rate, fraction_text, time_range

log = logging.getLogger(__name__)

DEFAULT_RATE = Fraction(24)

WARP_LINEAR = "linear"
WARP_FREEZE = "freeze"
WARP_OTHER = "other"
WARP_SCHEMAS = {WARP_LINEAR: "LinearTimeWarp", WARP_FREEZE: "FreezeFrame", WARP_OTHER: "TimeEffect"}


@dataclass(frozen=True)
class TimeWarp:
    """One time effect on a clip, as written in the file."""

    kind: str
    name: str
    effect_name: str
    time_scalar: float | None
    enabled: bool = True

    @property
    def is_hold(self) -> bool:
        """Enabled, and a FreezeFrame or a LinearTimeWarp of scalar exactly 0 (OTIO's FreezeFrame)."""
        return self.enabled and (
            self.kind == WARP_FREEZE or (self.kind == WARP_LINEAR and self.time_scalar == 0)
        )

    def to_dict(self) -> dict[str, Any]:
        scalar = self.time_scalar
        return {
            "kind": self.kind,
            "name": self.name,
            "effect_name": self.effect_name,
            "time_scalar": scalar if scalar is None or math.isfinite(scalar) else str(scalar),
            "enabled": self.enabled,
        }


@dataclass
class Segment:
    """One clip of a timeline with its place, media, source range and time warps.

    Frames: ``record_start_frames`` and ``record_frames`` are in frames of ``timeline_rate`` and
    counted from the start of the timeline (a track whose ``source_range`` starts at -64 starts 64
    frames in; add the timeline's global start for timecode).
    ``source_range`` is the clip's own OTIO range (its start in media frames at ``source_rate``,
    its duration being the clip's length on the track, as OTIO and Resolve define it).
    """

    track_kind: str
    track_index: int
    track_name: str
    clip_name: str
    index_in_track: int
    timeline_rate: Fraction
    source_rate: Fraction
    source_range: otio.opentime.TimeRange
    record_start_frames: Fraction
    record_frames: int
    available_range: otio.opentime.TimeRange | None
    time_warps: tuple[TimeWarp, ...]
    media_kind: str
    target_url: str | None
    media: MediaLocation | None
    media_problem: str = ""
    transition_head_frames: int = 0
    transition_tail_frames: int = 0
    enabled: bool = True
    clip: otio.schema.Clip | None = field(default=None, repr=False, compare=False)

    @property
    def track_label(self) -> str:
        """``V1``, ``V2``, ``A1``: the way editors name tracks."""
        letter = "A" if self.track_kind == otio.schema.TrackKind.Audio else "V"
        return f"{letter}{self.track_index + 1}"

    @property
    def media_path(self) -> Path | None:
        return self.media.local_path if self.media else None

    @property
    def record_range(self) -> otio.opentime.TimeRange:
        """The clip's place on its track, at the timeline rate."""
        return time_range(self.record_start_frames, self.record_frames, self.timeline_rate)

    @property
    def source_start_frames(self) -> Fraction:
        return exact_frames(self.source_range.start_time, self.source_rate)

    @property
    def source_duration_frames(self) -> Fraction:
        """The clip's source range length in source frames (media it spans at speed 1)."""
        return exact_frames(self.source_range.duration, self.source_rate)

    @property
    def is_freeze_frame(self) -> bool:
        return any(w.is_hold for w in self.time_warps)

    @property
    def is_retimed(self) -> bool:
        return self.time_scalar != 1 or self.is_freeze_frame

    @property
    def time_scalar(self) -> Fraction:
        """The combined, validated speed: product of the LinearTimeWarps, 0 for a hold (a
        FreezeFrame, or a LinearTimeWarp of scalar 0).

        Raises ``InvalidTimeWarpError`` for a negative scalar, NaN, infinity, or a time effect that
        is neither.
        """
        return combined_time_scalar(self.time_warps, where=self.describe())

    @property
    def handle_head_frames(self) -> Fraction | None:
        """Media frames available before the source range starts (None when unknown)."""
        if self.available_range is None:
            return None
        return self.source_start_frames - exact_frames(self.available_range.start_time, self.source_rate)

    @property
    def handle_tail_frames(self) -> Fraction | None:
        """Media frames available after the source range ends at speed 1 (None when unknown)."""
        if self.available_range is None:
            return None
        available_end = exact_frames(self.available_range.end_time_exclusive(), self.source_rate)
        return available_end - (self.source_start_frames + self.source_duration_frames)

    def describe(self) -> str:
        """``clip 'A001' (V1 #2)``: how messages name this segment."""
        return f"clip {self.clip_name!r} ({self.track_label} #{self.index_in_track})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary (exact numbers as ``"num/den"`` strings)."""
        try:
            scalar: str | None = fraction_text(self.time_scalar)
            problem = ""
        except InvalidTimeWarpError as error:
            scalar, problem = None, str(error)
        return {
            "track": self.track_label,
            "track_kind": self.track_kind,
            "track_name": self.track_name,
            "clip_name": self.clip_name,
            "index_in_track": self.index_in_track,
            "enabled": self.enabled,
            "timeline_rate": fraction_text(self.timeline_rate),
            "source_rate": fraction_text(self.source_rate),
            "record_start_frames": fraction_text(self.record_start_frames),
            "record_frames": self.record_frames,
            "source_start_frames": fraction_text(self.source_start_frames),
            "source_duration_frames": fraction_text(self.source_duration_frames),
            "available_range": _range_dict(self.available_range, self.source_rate),
            "time_warps": [w.to_dict() for w in self.time_warps],
            "time_scalar": scalar,
            "freeze_frame": self.is_freeze_frame,
            "time_warp_problem": problem,
            "media_kind": self.media_kind,
            "target_url": self.target_url,
            "media_path": str(self.media_path) if self.media_path else None,
            "image_sequence": self.media.decoded if isinstance(self.media, SequenceLocation) else None,
            "media_problem": self.media_problem,
            "transition_head_frames": self.transition_head_frames,
            "transition_tail_frames": self.transition_tail_frames,
        }


def _range_dict(value: otio.opentime.TimeRange | None, rate: Fraction) -> dict[str, str] | None:
    if value is None:
        return None
    return {
        "start_frames": fraction_text(exact_frames(value.start_time, rate)),
        "duration_frames": fraction_text(exact_frames(value.duration, rate)),
    }


def time_warps_of(clip: otio.schema.Clip) -> tuple[TimeWarp, ...]:
    """The time effects on ``clip``, in order, whether valid or not. A LinearTimeWarp of scalar
    exactly 0 is a hold, as OTIO defines FreezeFrame (a LinearTimeWarp of scalar 0), so it is
    listed as one (``WARP_FREEZE``)."""
    warps = []
    for effect in clip.effects:
        enabled = bool(getattr(effect, "enabled", True))
        remap = fcp_time_remap(effect)
        if remap:
            warps.append(TimeWarp(WARP_OTHER, remap, effect.effect_name, None, enabled))
            continue
        if not isinstance(effect, otio.schema.TimeEffect):
            continue
        if isinstance(effect, otio.schema.FreezeFrame) or (
            isinstance(effect, otio.schema.LinearTimeWarp) and effect.time_scalar == 0
        ):
            warps.append(TimeWarp(WARP_FREEZE, effect.name, effect.effect_name, 0.0, enabled))
        elif isinstance(effect, otio.schema.LinearTimeWarp):
            scalar = float(effect.time_scalar)
            warps.append(TimeWarp(WARP_LINEAR, effect.name, effect.effect_name, scalar, enabled))
        else:
            warps.append(TimeWarp(WARP_OTHER, effect.name, effect.effect_name, None, enabled))
    return tuple(warps)


def fcp_time_remap(effect: otio.schema.Effect) -> str:
    """``Time Remap at 50 %`` when ``effect`` is an FCP 7 XML speed change still in the plain
    Effect the fcp_xml adapter made of it (``read_timeline`` turns a constant one into a
    LinearTimeWarp; one kept in an OTIO file converted by other tools is not), else "". Its in and
    out points are not read as speed-changed source frames, so the clip is refused by name rather
    than played at the wrong speed."""
    if isinstance(effect, otio.schema.TimeEffect):
        return ""
    remap = time_remap_of(effect)
    if remap is None or not remap.changes_speed:
        return ""
    return remap.label() + FCP7_SUFFIX


def combined_time_scalar(warps: tuple[TimeWarp, ...], *, where: str = "clip") -> Fraction:
    """Multiply the enabled warps' scalars exactly; a hold (FreezeFrame, or a LinearTimeWarp of
    scalar 0) gives 0. Validates each warp."""
    scalar = Fraction(1)
    freeze = False
    for warp in warps:
        if not warp.enabled:
            continue
        label = f"{WARP_SCHEMAS[warp.kind]}{f' {warp.name!r}' if warp.name else ''}"
        if warp.is_hold:
            freeze = True
            continue
        if warp.kind == WARP_OTHER and (warp.name or "").endswith("(FCPXML timeMap)"):
            raise InvalidTimeWarpError(
                f"{where}: its {warp.name} cannot be rendered; a timeMap with one speed throughout can "
                "(Final Cut Pro's constant speed changes); ramps, reverse and speed changes of clip "
                "elements cannot yet"
            )
        if warp.kind == WARP_OTHER and FCP7_SUFFIX in (warp.name or ""):
            remap, _, reason = (warp.name or "").partition(FCP7_SUFFIX)
            raise InvalidTimeWarpError(
                f"{where}: its {remap}{FCP7_SUFFIX} is not read{reason}; {remap_advice(remap)}"
            )
        if warp.kind == WARP_OTHER:
            raise InvalidTimeWarpError(
                f"{where}: time effect {label} is not supported; works: LinearTimeWarp, FreezeFrame"
            )
        value = warp.time_scalar
        if value is None or not math.isfinite(value):
            raise InvalidTimeWarpError(
                f"{where}: time warp {label} has time_scalar {value}; it must be a finite number, 0 or above "
                "(1 = real time, 0.5 = half speed, 0 = a hold)"
            )
        if value < 0:
            raise InvalidTimeWarpError(
                f"{where}: time warp {label} has time_scalar {value}; reverse playback (a negative scalar) "
                "is not supported yet; a scalar above 0 works (1 = real time, 0.5 = half speed)"
            )
        scalar *= exact_number(value, what="time_scalar")
    return Fraction(0) if freeze else scalar


def timeline_rate(timeline: otio.schema.Timeline) -> Fraction:
    """The timeline's frame rate, exact: from its global start time, else its first item.

    Falls back to 24 fps with a WARNING when nothing in the timeline carries a rate.
    """
    if timeline.global_start_time is not None:
        return exact_rate(timeline.global_start_time.rate)
    for track in timeline.tracks:
        for item in track:
            if isinstance(item, otio.core.Item) and item.source_range is not None:
                return exact_rate(item.source_range.duration.rate)
    log.warning("timeline %r carries no frame rate; assuming %s fps", timeline.name, DEFAULT_RATE)
    return DEFAULT_RATE


def _media_of(
    clip: otio.schema.Clip, base_dir: Path | None, path_map: PathMap | None
) -> tuple[str, str | None, MediaLocation | None, str]:
    """Return (media kind, target_url as written, location, problem)."""
    reference = clip.media_reference
    if isinstance(reference, otio.schema.ExternalReference):
        target = reference.target_url
        if not target:
            return "file", target, None, "the media reference has an empty target_url"
        try:
            location = media_location(target, base_dir=base_dir, path_map=path_map)
        except UnsupportedOptionError as error:
            return "file", target, None, str(error)
        return "file", target, location, location.reason
    if isinstance(reference, otio.schema.ImageSequenceReference):
        location, problem = _sequence_location(reference, base_dir, path_map)
        return "image_sequence", reference.target_url_base, location, problem
    if isinstance(reference, otio.schema.GeneratorReference):
        return "generator", None, None, ""
    return "missing", None, None, "the clip has no media reference"


@dataclass(frozen=True)
class SequenceLocation(MediaLocation):
    """An image sequence's location: ``decoded`` is its name as editors write it
    (``/plates/A001.####.dpx``), ``local_path`` its description (``engine.media.sequence``)."""

    frames: otio.opentime.TimeRange | None = None
    """What the files cover, in the clip's source time: the reference's ``available_range`` cut to
    the files there, or the files' frame numbers when it gives none."""


def _sequence_location(
    reference: otio.schema.ImageSequenceReference, base_dir: Path | None, path_map: PathMap | None
) -> tuple[MediaLocation | None, str]:
    """Where an OTIO image sequence is: its frames checked and written down as a sequence description
    (``engine.media.sequence``), which every media reader opens as one clip; or why it cannot be."""
    from engine.media.sequence import describe, sequence_from_parts  # PyAV only when needed

    digits = "#" * max(reference.frame_zero_padding, 1)
    shown = f"{reference.target_url_base or ''}{reference.name_prefix}{digits}{reference.name_suffix}"
    if not reference.target_url_base:
        return None, "the image sequence has an empty target_url_base"
    if reference.frame_step != 1:
        return None, (
            f"image sequence {shown} has a frame step of {reference.frame_step}; only a step of 1 "
            "(every file) is read"
        )
    try:
        folder = media_location(reference.target_url_base, base_dir=base_dir, path_map=path_map)
        if folder.local_path is None:
            return None, folder.reason
        listed = reference.number_of_images_in_sequence()
        sequence = sequence_from_parts(
            Path(folder.local_path), reference.name_prefix, reference.name_suffix,
            reference.frame_zero_padding, exact_rate(reference.rate), first=reference.start_frame,
            last=reference.start_frame + listed - 1 if listed else None,
        )
        description = describe(sequence)
    except ChronoscopeError as error:
        return None, str(error)
    except OSError as error:
        return None, f"image sequence {shown}: {error.strerror or error}"
    frames = otio.opentime.TimeRange(
        otio.opentime.RationalTime(sequence.first, reference.rate),
        otio.opentime.RationalTime(sequence.count, reference.rate),
    )
    # the files there: a timeline listing more (handles not delivered) finds the clips that need
    # frames beyond them refused by name when planned, not the whole sequence refused
    listed = reference.available_range
    if listed is not None:
        files = otio.opentime.RationalTime(sequence.count, reference.rate)
        frames = otio.opentime.TimeRange(listed.start_time, min(listed.duration, files))
    shown = str(sequence.folder / sequence.display_name)
    return SequenceLocation(reference.target_url_base, shown, description, frames=frames), ""


def _source_rate(clip: otio.schema.Clip, fallback: Fraction) -> Fraction:
    if clip.source_range is not None:
        return exact_rate(clip.source_range.start_time.rate)
    available = clip.media_reference.available_range if clip.media_reference else None
    if available is not None:
        return exact_rate(available.start_time.rate)
    return fallback


def _source_range(clip: otio.schema.Clip, where: str) -> otio.opentime.TimeRange:
    if clip.source_range is not None:
        return clip.source_range
    available = clip.media_reference.available_range if clip.media_reference else None
    if available is None:
        raise TimelineError(f"{where} has neither a source_range nor media with an available_range")
    return available


def _whole_frames(value: Fraction, where: str) -> int:
    whole = round(value)
    if whole != value:
        log.warning("%s lasts %s timeline frames, not a whole number; counting %d", where, value, whole)
    return whole


def _track_start_frames(track: otio.schema.Track, rate: Fraction) -> Fraction:
    """Where the track's first item sits on the record clock: a ``source_range`` starting before 0
    (how the cmx_3600 adapter, and files converted from EDLs by it, write a track's first record
    in) puts it that many frames in (``list_segments`` counts from the earliest track's); one
    starting after 0 (a trimmed track) is not applied: WARNING."""
    if track.source_range is None:
        return Fraction(0)
    start = exact_frames(track.source_range.start_time, rate)
    if start > 0:
        log.warning("track %r: its source_range starts %s frames into its items; listed from its first item, "
                    "untrimmed", track.name, start)
        return Fraction(0)
    return -start


@dataclass(frozen=True)
class GapPlace:
    """A gap on a top-level track: ``track`` and ``index_in_track`` as ``TRACK:INDEX`` names it
    (``chronoscope fill --gap V1:2``), its place and length in timeline frames, counted as
    ``Segment.record_start_frames`` is, and whether a clip is right before and right after it
    (what a fill needs)."""

    track: str
    index_in_track: int
    record_start_frames: Fraction
    record_frames: Fraction
    between_clips: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "track": self.track,
            "index_in_track": self.index_in_track,
            "item": f"{self.track}:{self.index_in_track}",
            "record_start_frames": fraction_text(self.record_start_frames),
            "record_frames": fraction_text(self.record_frames),
            "between_clips": self.between_clips,
        }


def list_gaps(timeline: otio.schema.Timeline) -> list[GapPlace]:
    """Every gap on the timeline's top-level tracks, track by track, placed as ``list_segments``
    places clips."""
    rate = timeline_rate(timeline)
    tracks = [t for t in timeline.tracks if isinstance(t, otio.schema.Track)]
    first_record = min((_track_start_frames(t, rate) for t in tracks), default=Fraction(0))
    gaps: list[GapPlace] = []
    kind_counts: dict[str, int] = {}
    for track in tracks:
        kind_counts[track.kind] = kind_counts.get(track.kind, 0) + 1
        label = f"{'A' if track.kind == otio.schema.TrackKind.Audio else 'V'}{kind_counts[track.kind]}"
        position = _track_start_frames(track, rate) - first_record
        children = list(track)
        for index, item in enumerate(children):
            if isinstance(item, otio.schema.Transition):
                continue
            duration = exact_frames(item.duration(), rate)
            if isinstance(item, otio.schema.Gap):
                between = 0 < index < len(children) - 1 and all(
                    isinstance(children[i], otio.schema.Clip) for i in (index - 1, index + 1)
                )
                gaps.append(GapPlace(label, index, position, duration, between))
            position += duration
    return gaps


def list_segments(
    timeline: otio.schema.Timeline,
    *,
    base_dir: Path | None = None,
    path_map: PathMap | None = None,
    check_time_warps: bool = True,
    warn_nested: bool = True,
) -> list[Segment]:
    """List every clip on the timeline's top-level tracks as a ``Segment``, track by track.

    ``base_dir`` anchors relative media paths (pass the timeline file's folder); ``path_map``
    remaps media prefixes. With ``check_time_warps`` (default) an invalid time warp raises
    ``InvalidTimeWarpError`` here; without it, the error comes when ``Segment.time_scalar`` is read.
    Clips inside nested stacks (compound clips) are not listed; each is logged at WARNING, unless
    ``warn_nested`` is false: what lists the same timeline again for its own ends (``check_media``,
    the write-back, the EDL rate check) passes False, so that a command warns once.
    """
    rate = timeline_rate(timeline)
    segments: list[Segment] = []
    kind_counts: dict[str, int] = {}
    # tracks written from an EDL by the cmx_3600 adapter start at their first record in (-86400 at
    # 01:00:00:00): positions count from the earliest of them, as the timeline starts there
    starts = [_track_start_frames(t, rate) for t in timeline.tracks if isinstance(t, otio.schema.Track)]
    first_record = min(starts, default=Fraction(0))
    for track in timeline.tracks:
        if not isinstance(track, otio.schema.Track):
            if warn_nested:
                log.warning("timeline %r: top-level %s %r is not a track; its clips are not listed",
                            timeline.name, track.schema_name(), track.name)
            continue
        track_index = kind_counts.get(track.kind, 0)
        kind_counts[track.kind] = track_index + 1
        position = _track_start_frames(track, rate) - first_record
        children = list(track)
        for index, item in enumerate(children):
            if isinstance(item, otio.schema.Transition):
                continue
            duration = exact_frames(item.duration(), rate)
            if isinstance(item, otio.schema.Clip):
                segments.append(
                    _segment(timeline, track, track_index, children, index, item, position, duration, rate,
                             base_dir, path_map)
                )
            elif not isinstance(item, otio.schema.Gap) and warn_nested:
                letter = "A" if track.kind == otio.schema.TrackKind.Audio else "V"
                log.warning("%s%d %r item %d (%s %r) is nested; its clips are not listed",
                            letter, track_index + 1, track.name, index, item.schema_name(), item.name)
            position += duration
    if check_time_warps:
        for segment in segments:
            combined_time_scalar(segment.time_warps, where=segment.describe())
    return segments


def _segment(
    timeline: otio.schema.Timeline,
    track: otio.schema.Track,
    track_index: int,
    children: list,
    index: int,
    clip: otio.schema.Clip,
    position: Fraction,
    duration: Fraction,
    rate: Fraction,
    base_dir: Path | None,
    path_map: PathMap | None,
) -> Segment:
    kind, target, location, problem = _media_of(clip, base_dir, path_map)
    available = clip.media_reference.available_range if clip.media_reference else None
    if isinstance(location, SequenceLocation):
        available = location.frames
    letter = "A" if track.kind == otio.schema.TrackKind.Audio else "V"
    where = f"clip {clip.name!r} ({letter}{track_index + 1} #{index})"
    before = children[index - 1] if index > 0 else None
    after = children[index + 1] if index + 1 < len(children) else None
    head = exact_frames(before.in_offset, rate) if isinstance(before, otio.schema.Transition) else Fraction(0)
    tail = exact_frames(after.out_offset, rate) if isinstance(after, otio.schema.Transition) else Fraction(0)
    return Segment(
        track_kind=track.kind,
        track_index=track_index,
        track_name=track.name,
        clip_name=clip.name,
        index_in_track=index,
        timeline_rate=rate,
        source_rate=_source_rate(clip, rate),
        source_range=_source_range(clip, where),
        record_start_frames=position,
        record_frames=_whole_frames(duration, where),
        available_range=available,
        time_warps=time_warps_of(clip),
        media_kind=kind,
        target_url=target,
        media=location,
        media_problem=problem,
        transition_head_frames=_whole_frames(head, f"{where} transition in"),
        transition_tail_frames=_whole_frames(tail, f"{where} transition out"),
        enabled=bool(clip.enabled and track.enabled),
        clip=clip,
    )


@dataclass(frozen=True)
class MissingMedia:
    """A clip whose media file is not on this machine."""

    track: str
    clip_name: str
    index_in_track: int
    target_url: str | None
    local_path: Path | None
    reason: str

    def describe(self) -> str:
        where = f"clip {self.clip_name!r} ({self.track} #{self.index_in_track})"
        if self.local_path is not None:
            shown = str(self.local_path)
            if self.target_url and self.target_url != shown:
                shown += f" (written as {self.target_url!r})"
            return f"{where}: media not found: {shown}"
        return f"{where}: {self.reason or 'media not found'}"


def check_media(
    timeline: otio.schema.Timeline,
    *,
    base_dir: Path | None = None,
    path_map: PathMap | None = None,
) -> list[MissingMedia]:
    """List every clip whose media does not exist here (generators are skipped: they need none)."""
    missing = []
    segments = list_segments(
        timeline, base_dir=base_dir, path_map=path_map, check_time_warps=False, warn_nested=False
    )
    for segment in segments:
        if segment.media_kind == "generator":
            continue
        if segment.media is not None and segment.media.exists:
            continue
        missing.append(
            MissingMedia(
                track=segment.track_label,
                clip_name=segment.clip_name,
                index_in_track=segment.index_in_track,
                target_url=segment.target_url,
                local_path=segment.media_path,
                reason=segment.media_problem or "media not found",
            )
        )
    return missing


def require_media(
    timeline: otio.schema.Timeline,
    *,
    base_dir: Path | None = None,
    path_map: PathMap | None = None,
) -> None:
    """Raise ``MediaNotFoundError`` naming the first missing clip and path (and how many more)."""
    missing = check_media(timeline, base_dir=base_dir, path_map=path_map)
    if not missing:
        return
    more = f" (and {len(missing) - 1} more clips with missing media)" if len(missing) > 1 else ""
    raise MediaNotFoundError(missing[0].describe() + more)
