"""What a timeline render does to each clip: render it, pass it through, or list why it cannot.

``plan_render`` walks the timeline's segments (``engine.timeline.list_segments``):

- a video clip with a time scalar below 1 (slow motion, and a FreezeFrame) becomes a
  ``SegmentSpec``: its exact time map (transition overlaps included, so a dissolve into it has
  frames to dissolve), its media, and where its render goes; unless every frame it shows is one
  of its media's frames as it is (high-frame-rate media slowed to its own frames,
  ``plays_own_frames``): it passes through, there is nothing to make;
- clips at 1x pass through untouched, and so do clips above 1x unless ``speedup`` asks to render
  them too (by skipping source frames);
- a generator (a solid colour, bars) passes through with its speed change: its picture does not
  depend on speed;
- everything that cannot be rendered is listed with its reason (missing media, a time effect we
  do not support, a speed change on a compound clip or inside one), and so are effects that stay
  in the timeline for the editor's application to apply (a Transform): nothing is dropped silently.

Clips that would render the same frames (the same content hash: media, range, speed, model,
codec) share one render, named after the first of them in timeline order.

A ``SegmentSpec`` is plain JSON (``to_dict``/``from_dict``) so the same record drives the render
in this process and as an engine job. Its ``content_hash`` covers what decides the pixels: the
source file's identity (path, size, modification time), the map, the model, the codec and
quality, and the render format version. A render whose sidecar carries the same hash is finished.
"""

from __future__ import annotations

import hashlib
import json
import logging
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio

from engine import __version__
from engine.errors import ChronoscopeError, InvalidTimeWarpError, UnsupportedOptionError
from engine.filetypes import VIDEO_FILE_SUFFIXES
from engine.media import CODECS, MediaInfo, probe
from engine.media.timecode import start_timecode, timecode_frames
from engine.render.outputs import hashed_name
from engine.timeline import (
    PathMap,
    Segment,
    TimeMap,
    combined_time_scalar,
    exact_frames,
    fcp_time_remap,
    fraction_text,
    list_segments,
    parse_fraction,
    time_map,
    time_warps_of,
)

log = logging.getLogger(__name__)

RENDER_FORMAT_VERSION = 2
"""In every content hash: raised when outputs are written differently. 2: rendered clips carry the
source's timecode at their first frame, fills and smooth cuts their source's rotation, pixel
aspect and colour tags (an output made before lacks them, so it is made again)."""
MAX_CLIP_NAME_BYTES = 120
"""Of a clip's name in its render's file name, in UTF-8; the content hash follows."""
MEDIA_NAME_SUFFIXES = VIDEO_FILE_SUFFIXES | {".exr", ".dpx", ".tif", ".tiff", ".png", ".jpg", ".jpeg"}
"""Endings of a clip name that only repeat its media's file type (``A002_C001.mov``): left out of
its render's name. Any other dot is part of the name (``Interview 12.5 fps``)."""


@dataclass(frozen=True)
class SegmentSpec:
    """One clip to render: where its frames come from, how they map, and where they go."""

    key: str
    clip_name: str
    track: str
    index_in_track: int
    source: str
    output: str
    output_rate: str
    source_rate: str
    source_start_frames: str
    source_end_frames: str
    time_scalar: str
    freeze_frame: bool
    output_frames: int
    head_frames: int
    tail_frames: int
    media_start_frames: str
    model: str | None
    codec: str
    quality: int | None = None
    content_hash: str = ""
    notes: tuple[str, ...] = ()

    def time_map(self) -> TimeMap:
        """The clip's time map, rebuilt exactly from the spec's numbers."""
        start = parse_fraction(self.source_start_frames)
        return TimeMap(
            clip_name=self.clip_name,
            output_frames=self.output_frames,
            output_rate=parse_fraction(self.output_rate),
            source_rate=parse_fraction(self.source_rate),
            source_start_frames=start,
            time_scalar=parse_fraction(self.time_scalar),
            freeze_frame=self.freeze_frame,
            source_range_end_frames=parse_fraction(self.source_end_frames),
            head_output_frames=self.head_frames,
            tail_output_frames=self.tail_frames,
        )

    @property
    def total_frames(self) -> int:
        return self.head_frames + self.output_frames + self.tail_frames

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["notes"] = list(self.notes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmentSpec:
        if not isinstance(data, dict):
            raise UnsupportedOptionError(f"a segment must be an object, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise UnsupportedOptionError(
                f"segment has unknown fields {unknown}; known: {', '.join(sorted(known))}"
            )
        try:
            values = dict(data)
            values["notes"] = tuple(values.get("notes", ()))
            return cls(**values)
        except TypeError as error:
            raise UnsupportedOptionError(f"segment is incomplete: {error}") from None


@dataclass
class ClipEntry:
    """One clip of the timeline and what the render does with it."""

    clip_name: str
    track: str
    index_in_track: int
    action: str
    speed: str | None
    reason: str = ""
    spec: SegmentSpec | None = None
    segment: Segment | None = field(default=None, repr=False)


@dataclass
class RenderPlan:
    """Every clip's entry, and the effects that stay in the timeline unrendered."""

    entries: list[ClipEntry]
    kept_effects: list[str]

    @property
    def to_render(self) -> list[ClipEntry]:
        return [e for e in self.entries if e.action == "render"]

    @property
    def unrenderable(self) -> list[ClipEntry]:
        return [e for e in self.entries if e.action == "cannot_render"]


def content_hash(identity: dict[str, Any]) -> str:
    """SHA-256 of a canonical JSON form of ``identity``."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


SAMPLE_BYTES = 64 * 1024
"""Bytes read at the start, middle and end of a source file for its identity."""


def source_identity(path: Path) -> dict[str, Any]:
    """What identifies a source file's content for a content hash: path, size, modification time,
    and a SHA-256 of 64 KiB at its start, middle and end. The sample tells a file replaced in place
    by one of the same size whose modification time was set back (``touch -r``, a sync tool keeping
    times), which the size and time alone took for the same file, and served a stale render."""
    path = Path(path)
    stat = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        middle = max(0, stat.st_size // 2 - SAMPLE_BYTES // 2)
        for offset in sorted({0, middle, max(0, stat.st_size - SAMPLE_BYTES)}):
            handle.seek(offset)
            digest.update(handle.read(SAMPLE_BYTES))
    return {
        "path": str(path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sample_sha256": digest.hexdigest(),
    }


def synthesized_hash(kind: str, values: dict[str, Any], sources: dict[str, Path]) -> str:
    """The content hash of frames synthesized between two pictures (a smooth cut, a fill).

    Covers what decides the pixels, as a segment's hash does: ``kind``, the settings and frame
    numbers in ``values`` (model, codec, quality, which file frames, how many), each source file's
    identity, and the versions.
    """
    return content_hash(
        {
            "kind": kind,
            **values,
            "sources": {name: source_identity(path) for name, path in sources.items()},
            "chronoscope": __version__,
            "render_format": RENDER_FORMAT_VERSION,
        }
    )


def safe_name(name: str) -> str:
    """``name`` for a file name on every file system: letters and digits of any script (in their
    composed form, as macOS and Windows spell them), ``-`` and ``_`` are kept, and every other run
    of characters (separators, spaces, dots, symbols, emoji) becomes one ``_``; "" when none is left.
    ``A/B:c d é 🎬`` gives ``A_B_c_d_é``."""
    kept = "".join(
        character if character.isalnum() or character in "-_" else " "
        for character in unicodedata.normalize("NFC", name)
    )
    return "_".join(kept.split()).strip("_")


def _without_media_suffix(name: str) -> str:
    """``A002_C001.mov`` without ``.mov``; a name not ending in a media file's suffix as it is."""
    suffix = Path(name).suffix
    return name[: -len(suffix)] if suffix.lower() in MEDIA_NAME_SUFFIXES else name


def output_stem(segment: Segment) -> str:
    """``V1_002_A002_C001``: track, place on it, clip name (``safe_name``, without its media's file
    suffix); safe on every file system. The file name adds the content hash
    (``engine.render.outputs.hashed_name``)."""
    # dots too: a name must have none but its suffix's, or ``shot.v2`` would pass for a suffix
    stem = safe_name(_without_media_suffix(segment.clip_name))
    # the hash keeps names apart; the clip's name is cut so that the name and its report's fit in
    # the 255 bytes file systems allow (a 250-character clip name stopped the whole render)
    stem = stem.encode()[:MAX_CLIP_NAME_BYTES].decode(errors="ignore").rstrip("_") or "clip"
    return f"{segment.track_label}_{segment.index_in_track:03d}_{stem}"


def _other_effects(clip: otio.schema.Clip) -> list[str]:
    """The names of ``clip``'s effects other than speed changes, as the editor knows them: a
    Resolve effect by its own name ("Transform"), and one Resolve marks not enabled left out
    (Resolve writes its standard effects on every clip, switched on or not)."""
    names = []
    for effect in clip.effects:
        if isinstance(effect, otio.schema.TimeEffect) or fcp_time_remap(effect):
            continue
        resolve = effect.metadata.get("Resolve_OTIO")
        resolve = resolve if isinstance(resolve, Mapping) else {}
        if resolve.get("Enabled") is False:
            continue
        name = resolve.get("Effect Name") or effect.effect_name or effect.name or effect.schema_name()
        names.append(str(name))
    return names


def _changes_speed(effect: otio.schema.Effect) -> bool:
    return isinstance(effect, otio.schema.TimeEffect) or bool(fcp_time_remap(effect))


def _speed_text(item: otio.core.Item) -> str | None:
    """``1/2``, ``freeze``: the combined speed of ``item``'s time warps (None when not readable)."""
    warps = time_warps_of(item)  # reads only the effects: a composition's as well as a clip's
    try:
        scalar = combined_time_scalar(warps)
    except InvalidTimeWarpError:
        return None
    return "freeze" if any(w.is_hold for w in warps) else fraction_text(scalar)


def _nested_items(timeline: otio.schema.Timeline) -> tuple[list[str], list[ClipEntry]]:
    """Nested compositions (compound clips) stay as they are: each is listed. One that changes
    speed itself (a time warp on the compound clip, or on a composition inside it), and each clip
    inside one that changes speed, is an entry that cannot be rendered, so the render says it did
    not render it (and exits 1) instead of passing over it."""
    kept: list[str] = []
    entries: list[ClipEntry] = []
    counts: dict[str, int] = {}
    for track in timeline.tracks:
        if not isinstance(track, otio.schema.Track):
            continue
        number = counts[track.kind] = counts.get(track.kind, 0) + 1
        label = f"{'A' if track.kind == otio.schema.TrackKind.Audio else 'V'}{number}"
        for index, item in enumerate(track):
            if not isinstance(item, otio.core.Composition):
                continue
            nested = f"nested {item.schema_name()} {item.name!r}"
            kept.append(f"{label} #{index}: {nested}: not rendered")
            compositions = [item, *item.find_children(descended_from_type=otio.core.Composition)]
            for composition in compositions:
                enabled = [effect for effect in composition.effects if getattr(effect, "enabled", True)]
                if any(_changes_speed(effect) for effect in enabled):
                    inside = "" if composition is item else f" (inside the {nested})"
                    entries.append(
                        ClipEntry(
                            composition.name,
                            label,
                            index,
                            "cannot_render",
                            _speed_text(composition),
                            reason=f"a speed change on a compound clip{inside} is not rendered: "
                            "put the speed change on its clips, or flatten it in the editor "
                            "(Resolve: Decompose in Place), and export again",
                        )
                    )
            for clip in item.find_clips():
                if any(_changes_speed(effect) for effect in clip.effects):
                    entries.append(
                        ClipEntry(
                            clip.name,
                            label,
                            index,
                            "cannot_render",
                            None,
                            reason=f"inside the {nested}, whose clips are not rendered: "
                            "flatten it in the editor (Resolve: Decompose in Place) and export again",
                        )
                    )
    return kept, entries


def _no_media_reason(clip: otio.schema.Clip) -> str:
    """Why a clip without a media reference cannot be rendered; an EDL event that names only a
    tape reel says which reel, and what the EDL needs to name a file."""
    edl = clip.metadata.get("cmx_3600") or {}
    reel = edl.get("reel") if hasattr(edl, "get") else None
    if reel:
        return (
            f"the EDL names reel {reel!r} but no media file: add a '* FROM CLIP:' line with the "
            "file's path to the event, or export the timeline as OTIO"
        )
    return "the clip names no media file (no media reference)"


def with_media_range(segment: Segment, probes: dict[Path, MediaInfo] | None = None) -> Segment:
    """``segment`` with the range its media file covers, when an EDL gave none (EDLs never do):
    from the file's start timecode (0 without one) for its length, in the clip's source frames.
    An EDL names source frames by the camera file's timecode: without this a clip of a file
    starting at 01:00:00:00 would be looked for an hour past its end. A timecode labels frames, so
    where the EDL and the file count the same frames per second (24 and 23.976 alike) its frame
    number is the start; otherwise it is converted through the file's clock. ``probes`` caches
    each file's header across the clips of one timeline (an EDL cuts many events from one file)."""
    if segment.available_range is not None or segment.media is None or not segment.media.exists:
        return segment
    path = Path(segment.media_path)
    probes = {} if probes is None else probes
    try:
        if path not in probes:
            probes[path] = probe(path, scan_packets=False)
    except ChronoscopeError:
        return segment  # unreadable media fails its render with the reader's own message
    info = probes[path]
    video = info.video_stream
    file_rate, rate = Fraction(video.rate), segment.source_rate
    timecode = start_timecode(info)
    counted = timecode_frames(timecode, file_rate) if timecode else 0
    if counted is None:
        log.warning("%s: media timecode %r not understood; its first frame is taken as 0",
                    segment.describe(), timecode)
    label = Fraction(counted or 0)
    frames = Fraction(video.frame_count) if video.frame_count > 0 else video.duration_s * file_rate
    scale = Fraction(1)  # file frames per source frame: 1 where both count the same frames a second
    if round(file_rate) != round(rate):
        log.warning(
            "%s: the timeline counts %s fps and %s runs at %s fps; its source timecodes are converted "
            "through the file's clock", segment.describe(), fraction_text(rate), path.name,
            fraction_text(file_rate),
        )
        scale = rate / file_rate
    available = otio.opentime.TimeRange(
        otio.opentime.RationalTime(float(label * scale), float(rate)),
        otio.opentime.RationalTime(float(frames * scale), float(rate)),
    )
    return replace(segment, available_range=available)


def with_inferred_media_range(segment: Segment, probes: dict[Path, MediaInfo] | None = None) -> Segment:
    """``segment`` with its media's range when the timeline gave none (an OTIO clip written without
    ``available_range``): OTIO counts source frames in the media's own time, from its start
    timecode, so that range (``with_media_range``) is taken, unless the clip's frames lie outside
    it and inside the file counted from 0 (a hand-written timeline numbering file frames)."""
    by_timecode = with_media_range(segment, probes)
    if by_timecode is segment or by_timecode.available_range is None or not _outside_media(by_timecode):
        return by_timecode
    available = by_timecode.available_range
    from_zero = replace(
        by_timecode,
        available_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, available.start_time.rate), available.duration
        ),
    )
    if _outside_media(from_zero):
        return by_timecode
    log.info("%s: source frames counted from the file's first frame (they lie outside its timecode)",
             segment.describe())
    return from_zero


def plan_render(
    timeline: otio.schema.Timeline,
    outdir: Path,
    *,
    base_dir: Path | None = None,
    path_map: PathMap | None = None,
    model: str | None = None,
    codec: str = "prores",
    quality: int | None = None,
    speedup: bool = False,
    media_timecodes: bool = False,
    only: set[tuple[str, int]] | None = None,
) -> RenderPlan:
    """Decide, for every clip, whether it is rendered, passed through, or cannot be rendered.

    ``only`` (track label, index in track) pairs: the clips chosen for this render; every other
    clip passes through as it is, its speed change kept ("not chosen"). None: every clip.

    ``media_timecodes``: the timeline is an EDL, whose source frames are counted from each media
    file's start timecode (``with_media_range``); other timelines say where their media start, and
    where one does not, it is found (``with_inferred_media_range``). A range found so is written
    into the clip's media reference, so the new timeline states it."""
    if codec not in CODECS:
        raise UnsupportedOptionError(f"codec {codec!r} not supported; use one of: {', '.join(CODECS)}")
    outdir = Path(outdir)
    kept_effects, entries = _nested_items(timeline)
    probes: dict[Path, MediaInfo] = {}
    for listed in list_segments(timeline, base_dir=base_dir, path_map=path_map, check_time_warps=False):
        try:
            segment = (with_media_range if media_timecodes else with_inferred_media_range)(listed, probes)
        except InvalidTimeWarpError:
            segment = listed  # its speed cannot be rendered: said below, for this clip alone
        if segment.available_range is not None and listed.available_range is None:
            reference = segment.clip.media_reference
            if isinstance(reference, otio.schema.ExternalReference):
                reference.available_range = segment.available_range
        entry = ClipEntry(
            segment.clip_name,
            segment.track_label,
            segment.index_in_track,
            "pass_through",
            None,
            segment=segment,
        )
        entries.append(entry)
        try:
            scalar = segment.time_scalar
        except InvalidTimeWarpError as error:
            entry.action, entry.reason = "cannot_render", str(error)
            continue
        entry.speed = "freeze" if segment.is_freeze_frame else fraction_text(scalar)
        if not segment.is_retimed:
            entry.reason = "real time"
            continue
        if only is not None and (segment.track_label, segment.index_in_track) not in only:
            entry.reason = "not chosen for this render: passed through, its speed change kept"
            continue
        if scalar > 1 and not segment.is_freeze_frame and not speedup:
            entry.reason = "faster than real time: passed through (render it with --speedup)"
            continue
        if segment.track_kind != otio.schema.TrackKind.Video:
            entry.reason = "speed change on an audio clip: the warp stays in the timeline, for the editor"
            continue
        if not segment.enabled:
            entry.reason = "disabled clip: passed through"
            continue
        if segment.media_kind == "generator":
            kind = getattr(segment.clip.media_reference, "generator_kind", "") or "generator"
            entry.reason = (
                f"generated picture ({kind}): its speed does not change it; kept as it is, "
                "speed change included"
            )
            continue
        if segment.media_kind == "missing":
            entry.action, entry.reason = "cannot_render", _no_media_reason(segment.clip)
            continue
        if segment.media_kind not in ("file", "image_sequence"):
            entry.action = "cannot_render"
            entry.reason = f"{segment.media_kind} media: only media files and image sequences are rendered"
            continue
        if segment.media_kind == "image_sequence" and segment.media is None:
            entry.action, entry.reason = "cannot_render", segment.media_problem
            continue
        if segment.media is None or not segment.media.exists:
            entry.action = "cannot_render"
            shown = segment.media_path or segment.target_url
            entry.reason = f"media not found: {shown}" + (
                f" ({segment.media_problem})" if segment.media_problem else ""
            )
            continue
        outside = _outside_media(segment)
        if outside:
            entry.action, entry.reason = "cannot_render", outside
            continue
        if 0 < scalar < 1 and plays_own_frames(segment):
            entry.reason = PLAYS_OWN_FRAMES
            continue
        entry.action = "render"
        entry.spec = _spec(segment, outdir, model=model, codec=codec, quality=quality)
        kept_effects.extend(
            f"{segment.describe()}: effect {effect!r} kept in the timeline, not applied by the render"
            for effect in _other_effects(segment.clip)
        )
    entries.sort(key=lambda entry: (entry.track[0] != "V", int(entry.track[1:]), entry.index_in_track))
    _share_identical_renders(entries)
    return RenderPlan(entries, kept_effects)


PLAYS_OWN_FRAMES = "plays its own frames at this speed: nothing to make"
"""Why a slowed clip of high-frame-rate media passes through (``plays_own_frames``)."""


def plays_own_frames(segment: Segment) -> bool:
    """Whether every frame the clip shows on the timeline is a frame of its media as it is, so that
    there is nothing to make: the media frames it advances per timeline frame (its time scalar
    times the media rate over the timeline rate) are a whole number, and it starts on a media
    frame. 50 fps media at 50 % on a 25 fps timeline, or 120 fps at 20 % on 24 fps, is genuine
    high-frame-rate slow motion: rendering it would only re-encode the camera's frames. Exact
    fractions throughout; a freeze frame or a speed that cannot be read is never so."""
    try:
        mapping = time_map(segment)
    except InvalidTimeWarpError:
        return False
    step = mapping.step_frames
    if mapping.freeze_frame or step <= 0 or step.denominator != 1:
        return False
    first = mapping.source_start_frames - (mapping.available_start_frames or 0)
    return first.denominator == 1


def _share_identical_renders(entries: list[ClipEntry]) -> None:
    """Point every clip whose render would be the same frames as an earlier one's (the same
    content hash) at that earlier render: rendered once, named after the first such clip."""
    first: dict[str, SegmentSpec] = {}
    for entry in entries:
        if entry.spec is None:
            continue
        shared = first.setdefault(entry.spec.content_hash, entry.spec)
        if shared is entry.spec:
            continue
        entry.spec = replace(entry.spec, output=shared.output, key=shared.key)
        entry.reason = (
            f"the same frames as {shared.track} #{shared.index_in_track} {shared.clip_name!r}: "
            "its render is used"
        )
        log.info("%s (%s #%d): %s", entry.clip_name, entry.track, entry.index_in_track, entry.reason)


def _outside_media(segment: Segment) -> str:
    """Why none of the clip's own frames is in its media ("" when some are, or when unknown)."""
    mapping = time_map(segment)
    needed = mapping.needed_source_frames(include_transitions=False)
    start, end = mapping.available_start_frames, mapping.available_end_frames
    if needed is None or start is None or end is None:
        return ""
    if needed[1] < start or needed[0] >= end:
        rate = fraction_text(segment.source_rate)
        return (
            f"its source frames {needed[0]} to {needed[1]} lie outside its media, which covers frames "
            f"{fraction_text(start)} to {fraction_text(end - 1)} (at {rate} fps, counted from the "
            "media's start timecode): check the timeline's source timecodes and the file it points at"
        )
    return ""


def _spec(
    segment: Segment, outdir: Path, *, model: str | None, codec: str, quality: int | None
) -> SegmentSpec:
    mapping = time_map(segment)
    media_start = Fraction(0)
    if segment.available_range is not None:
        media_start = exact_frames(segment.available_range.start_time, segment.source_rate)
    notes = []
    if mapping.handles_available is False:
        needed = mapping.needed_source_frames()
        notes.append(
            f"needs source frames {needed[0]} to {needed[1]}, beyond the media's "
            f"{fraction_text(mapping.available_start_frames)} to "
            f"{fraction_text(mapping.available_end_frames - 1)}: "
            "end frames are held"
        )
        log.warning("%s %s", segment.describe(), notes[-1])
    source = Path(segment.media_path)
    values = {
        "output_rate": fraction_text(mapping.output_rate),
        "source_rate": fraction_text(mapping.source_rate),
        "source_start_frames": fraction_text(mapping.source_start_frames),
        "source_end_frames": fraction_text(mapping.source_range_end_frames),
        "time_scalar": fraction_text(mapping.time_scalar),
        "freeze_frame": mapping.freeze_frame,
        "output_frames": mapping.output_frames,
        "head_frames": mapping.head_output_frames,
        "tail_frames": mapping.tail_output_frames,
        "media_start_frames": fraction_text(media_start),
        "model": model,
        "codec": codec,
        "quality": quality,
    }
    identity = {
        **values,
        "source": source_identity(source),
        "chronoscope": __version__,
        "render_format": RENDER_FORMAT_VERSION,
    }
    digest = content_hash(identity)
    output = outdir / hashed_name(output_stem(segment), codec, digest)
    return SegmentSpec(
        key=output.name,
        clip_name=segment.clip_name,
        track=segment.track_label,
        index_in_track=segment.index_in_track,
        source=str(source),
        output=str(output),
        content_hash=digest,
        notes=tuple(notes),
        **values,
    )
