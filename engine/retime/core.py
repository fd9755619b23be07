"""The streaming retime: read source frames in order, synthesize in-betweens, write the output.

``render_mapped(source, output, frame_map, ...)`` is the one renderer behind ``retime_clip`` (a
whole clip at a constant speed or along a ramp) and the batch render of timelines (one clip's
time map, transitions included). For each output frame the map gives an exact source position:

- on a source frame (phase 0): that frame is written as it is;
- between frames f and f + 1: the guarded synthesizer makes the frame at t = phase (consecutive
  output frames on the same pair go to ``synthesize_many`` together, so flow is computed once);
  across a scene cut the guard gives the nearer frame instead and says so, which becomes a note;
  so does a jump cut inside a still shot, which the guard's two-frame test cannot see but the
  frames around it show (``engine.interp.cutcontext``: each decoded frame is measured, about
  12 ms a frame at 720p, and the frame after a pair is decoded before the pair is made);
- before the first or after the last frame of the media: the nearest end frame is held, noted;
- on or next to a source frame lost to damage or decoded garbled (the reader reads leniently:
  ``engine.media.reader``, ``Frame.concealed``): the damaged frames are left out and the frame
  is made between the undamaged frames either side, as across a stall, with a note naming the
  damaged frames; where damage leaves no undamaged frame on one side, the nearest undamaged
  frame is held (noted), and a clip with none is refused (``CorruptMediaError``).

Memory is bounded: the reader decodes forward once, and only the two frames of the current pair
and the frame after them (plus the few in-betweens of one pair waiting to be written) are held.
It does not grow with the clip's length.

Source positions are in the map's numbering (a timeline's media may start at 86400, 01:00:00:00
at 24 fps); ``media_start_frames`` is the position of the file's first frame. When the file's own
rate differs from the map's source rate, positions are converted exactly. A variable-frame-rate
file is read by its timestamps on its own constant grid (``engine.media.frame_slots.clip_grid``),
and the map's positions are converted to that grid the same way; a stall in the recording is made
between the frames either side of it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np

from engine.errors import CorruptMediaError, UnsupportedOptionError
from engine.interp import GuardedSynthesizer, Synthesizer, create_backend, create_default_backend
from engine.interp.base import cancellable
from engine.interp.checks import frame_runs, runs_text
from engine.interp.cutcontext import ContextVerdict, CutContextStream
from engine.interp.guarded import nearest_instead, nearest_words, synthesis_place
from engine.media import CODECS, FrameReader, VideoWriter, probe
from engine.media.frame_slots import FrameSlots, SourcePlace, clip_grid
from engine.media.probe import MediaInfo, VideoStreamInfo, chroma_sampling
from engine.media.timecode import start_timecode, timecode_after, timecode_at_rate
from engine.media.writer import CarriedTags
from engine.retime.report import FrameRisk, RetimeReport
from engine.timeline import MappedFrame, fraction_text

log = logging.getLogger(__name__)

MAX_TIMES_PER_PAIR = 16
"""In-betweens of one pair synthesized in one call (bounded so that 0.01x cannot pile up frames)."""

CODEC_BY_SUFFIX = {".mp4": "h264", ".mov": "prores", ".mkv": "ffv1", "": "png"}

ProgressCallback = Callable[[int, int], None]


class FrameMap(Protocol):
    """What the renderer needs of a map: ``TimeMap`` (engine.timeline) and ``RampMap`` have it."""

    clip_name: str
    output_rate: Fraction
    source_rate: Fraction

    @property
    def output_frames(self) -> int: ...

    @property
    def visible_output_frames(self) -> tuple[int, int]: ...

    def frames(self, *, include_transitions: bool = False) -> Iterator[MappedFrame]: ...

    def to_dict(self) -> dict: ...


def codec_for_output(output: Path) -> str:
    """The codec an output name implies: .mp4 h264, .mov prores, .mkv ffv1, no suffix png."""
    suffix = Path(output).suffix.lower()
    if suffix not in CODEC_BY_SUFFIX:
        raise UnsupportedOptionError(
            f"output {output} has suffix {suffix!r}; use .mov (ProRes), .mp4 (H.264), .mkv (FFV1) "
            "or a folder name without a suffix (PNG frames), or name a codec"
        )
    return CODEC_BY_SUFFIX[suffix]


def make_synthesizer(model: str | None) -> GuardedSynthesizer:
    """The guarded synthesizer for ``model`` (None: the default model, falling back to flow with a
    WARNING when its weights are not prepared). A missing model file raises ``ModelNotFoundError``
    saying how to prepare it."""
    backend = create_default_backend(for_clips=True) if model is None else create_backend(model)
    return GuardedSynthesizer(backend)


@dataclass(frozen=True)
class PixelPlan:
    """How frames are read and written: reader format, writer bit depth and alpha, and whether
    the reader merges the fields of interlaced frames (frames made between combed frames comb)."""

    reader_format: str
    bit_depth: int | None
    alpha: bool
    deinterlace: bool = False


def pixel_plan(info: VideoStreamInfo, codec: str) -> PixelPlan:
    """Keep 10-bit and alpha when the codec can hold them; say so at WARNING when it cannot."""
    if codec not in CODECS:
        raise UnsupportedOptionError(f"codec {codec!r} not supported; use one of: {', '.join(CODECS)}")
    spec = CODECS[codec]
    alpha = info.has_alpha and bool(spec.alpha_formats)
    if info.has_alpha and not alpha:
        with_alpha = ", ".join(name for name, item in CODECS.items() if item.alpha_formats)
        log.warning(
            "codec %s has no alpha channel: the alpha of the source is dropped (codecs with alpha: %s)",
            codec,
            with_alpha,
        )
    table = spec.alpha_formats if alpha else spec.formats
    wide = info.bit_depth > 8
    if wide:
        deeper = [depth for depth in sorted(table) if depth >= info.bit_depth]
        bit_depth = deeper[0] if deeper else max(table)
    else:
        bit_depth = min(table)
    reader_format = ("rgba64" if alpha else "rgb48") if wide else ("rgba" if alpha else "rgb24")
    _warn_of_lost_colour(info.pixel_format, table.get(bit_depth, ""), codec)
    if codec == "h264" and bit_depth is not None and bit_depth > 8:
        log.warning(
            "codec h264 writes this %d-bit source as 10-bit H.264 (High 10), which QuickTime, web "
            "browsers and most hardware decoders cannot play; for a 10-bit file that plays widely "
            "write .mov (ProRes) or use --codec h265",
            info.bit_depth,
        )
    return PixelPlan(reader_format, bit_depth, alpha, deinterlace=info.interlaced)


def _keeps_colour(pixel_format: str, samples: Fraction) -> bool:
    sampling = chroma_sampling(pixel_format)
    return sampling is not None and sampling[1] >= samples


def _warn_of_lost_colour(source_format: str, output_format: str, codec: str) -> None:
    """A WARNING where ``codec`` keeps fewer colour samples than the source has (a 4:4:4 plate
    written as 4:2:0 H.264), naming the codecs that keep them all."""
    source, written = chroma_sampling(source_format), chroma_sampling(output_format)
    if source is None or written is None or written[1] >= source[1]:
        return
    keeping = [
        f"{name} ({spec.suffixes[0] or 'a folder'})"
        for name, spec in CODECS.items()
        if any(_keeps_colour(fmt, source[1]) for fmt in spec.formats.values())
    ]
    share = written[1] / source[1]
    log.warning(
        "the source's colour is %s; codec %s writes %s, %s of its colour samples; %s keep %s",
        source[0],
        codec,
        written[0],
        {Fraction(1, 2): "half", Fraction(1, 4): "a quarter"}.get(share, str(share)),
        ", ".join(keeping[:-1]) + f" and {keeping[-1]}" if len(keeping) > 1 else keeping[0],
        source[0],
    )


class _Window:
    """The last few decoded frames of a forward-only pass over the source, and the cuts in
    context (``engine.interp.cutcontext``) of every frame decoded: a jump cut inside a still shot
    passes the guard's two-frame test, but stands out against the still pairs around it."""

    HELD_BEHIND = 2
    """Frames kept behind the newest: the pair being made and the frame after it (its context).
    While a pair's context is read further on (``context_cut``), its frames are kept too."""

    CONTEXT_LEAD_FRAMES = 2
    """Frames read before the first one asked for, so that its pair has context before it."""

    def __init__(self, reader: FrameReader, start: int, *, cut_context: bool = True) -> None:
        self._reader = reader
        self._frame_count = reader.frame_count
        self._cut_context = cut_context
        self._held: dict[int, np.ndarray] = {}
        self._keep_from: int | None = None
        self.pinned: int | None = None
        """A frame kept (with those after it) while output frames wait to be made from it."""
        self.damaged: set[int] = set()
        """Frames lost to damage (never decoded) or decoded garbled (``Frame.concealed``)."""
        self.decode_s = 0.0
        self._restart(max(0, start - self.CONTEXT_LEAD_FRAMES) if cut_context else start)

    def _restart(self, index: int) -> None:
        self._frames = self._reader.frames(index)
        self._held.clear()
        self._keep_from = None
        self._last = index - 1
        self._context = CutContextStream(first_frame=index) if self._cut_context else None

    def get(self, index: int) -> np.ndarray:
        if index in self._held:
            return self._held[index]
        started = time.perf_counter()
        if index < self._last:
            log.debug("source frame %d is behind the stream (at %d); seeking", index, self._last)
            self._restart(index)
        while self._last < index:
            frame = next(self._frames, None)
            if frame is None:
                self.damaged.update(range(self._last + 1, index + 1))  # the stream ends before them
                break
            self.damaged.update(range(self._last + 1, frame.index))  # lost to damage
            self._last = frame.index
            if frame.concealed:  # garbled: neither shown nor context
                self.damaged.add(frame.index)
                continue
            if self._context is not None:
                if frame.index != self._context.frames_seen:  # frames lost to damage: no context
                    self._context = CutContextStream(first_frame=frame.index)
                self._context.push(frame.image)
            oldest = self._last - self.HELD_BEHIND
            for keep in (self._keep_from, self.pinned):
                if keep is not None:
                    oldest = min(oldest, keep)
            self._held = {k: v for k, v in self._held.items() if k >= oldest}
            self._held[self._last] = frame.image
        self.decode_s += time.perf_counter() - started
        if index not in self._held:
            raise CorruptMediaError(f"{self._reader.shown}: source frame {index} cannot be decoded")
        return self._held[index]

    @property
    def shown(self) -> str:
        return self._reader.shown

    def is_damaged(self, index: int) -> bool:
        """Whether frame ``index`` was lost to damage or decoded garbled (decoding up to it)."""
        if index in self._held:
            return False
        if index > self._last:
            try:
                self.get(index)
            except CorruptMediaError:
                return True
            return False
        return index in self.damaged

    def context_cut(self, lower: int) -> ContextVerdict | None:
        """The cut in context between source frames ``lower`` and ``lower + 1``, when there is one;
        None where there is none or no context. The frames after the pair are decoded until the
        verdict is known (usually the next one; after a pair that stands out between still pairs,
        up to ``max_lookahead_frames``: animation on twos holds each drawing, and its first moving
        pair is no cut); at the end of what can be decoded, the stream is finished there."""
        if self._context is None:
            return None
        self._keep_from = lower
        try:
            verdict = self._context.verdict(lower)
            ahead = lower + 2
            last_ahead = lower + 1 + self._context.max_lookahead_frames
            while verdict is None and ahead <= last_ahead and not self._context.ended:
                if ahead >= self._frame_count:
                    self._context.finish()
                else:
                    try:
                        self.get(ahead)
                    except CorruptMediaError:  # only context was wanted from it: the stream ends
                        self._context.finish()
                verdict = self._context.verdict(lower)
                ahead += 1
        finally:
            self._keep_from = None
        if verdict is None:
            verdict = self._context.decide(lower)
        return verdict if verdict is not None and verdict.cut else None

    def close(self) -> None:
        self._frames.close()


@dataclass
class _Pending:
    mapped: MappedFrame
    place: SourcePlace
    damaged: str = ""
    """The damaged source frames the frame is made across (``runs_text``), when there are any."""


def _around_damage(
    place: SourcePlace, slots: FrameSlots, window: _Window
) -> tuple[SourcePlace, list[int]]:
    """``place`` with damaged source frames left out: made between the undamaged frames either
    side of its position on the grid, or the nearest undamaged frame held where damage leaves
    none on one side; and the damaged frames it was moved across (none: ``place`` as it is)."""
    needed = (place.lower,) if place.phase == 0 else (place.lower, place.upper)
    if not any(window.is_damaged(frame) for frame in needed):
        return place, []
    listed = slots.frames

    def slot_of(frame: int) -> int:
        return int(slots.slots[int(np.searchsorted(listed, frame))])

    lower_slot = slot_of(place.lower)
    position = lower_slot + place.phase * (slot_of(place.upper) - lower_slot)
    at = int(np.searchsorted(listed, place.lower))
    before = next(
        (int(listed[k]) for k in range(at, -1, -1) if slot_of(int(listed[k])) <= position
         and not window.is_damaged(int(listed[k]))),
        None,
    )
    if before is not None:  # kept while the frames after it are decoded, looking for one undamaged
        window.pinned = before if window.pinned is None else min(window.pinned, before)
    after = next(
        (int(listed[k]) for k in range(at, len(listed)) if slot_of(int(listed[k])) >= position
         and not window.is_damaged(int(listed[k]))),
        None,
    )
    if before is None and after is None:
        raise CorruptMediaError(
            f"{window.shown}: none of the frames around {place.lower} decodes without damage "
            f"(frames {runs_text(frame_runs(sorted(window.damaged)))} lost or garbled)"
        )
    low = before if before is not None else -1
    high = after if after is not None else slots.file_frames
    damaged = sorted(frame for frame in window.damaged if low < frame < high)
    if before is None or after is None or before == after:
        kept = before if after is None else after
        side = "before" if before is None else "after"
        held = place.held or (
            f"no undamaged source frame {side} it: source frame {kept} is held"
            if before != after
            else ""
        )
        return SourcePlace(kept, kept, Fraction(0), held), damaged
    before_slot, after_slot = slot_of(before), slot_of(after)
    phase = (position - before_slot) / (after_slot - before_slot)
    if phase == 0:
        return SourcePlace(before, before, Fraction(0)), damaged
    return SourcePlace(before, after, phase, slots_between=after_slot - before_slot), damaged


def _source_timecode_at(
    media: MediaInfo, frame: int, rate: Fraction, output_rate: Fraction, named: str
) -> str | None:
    """The timecode of file frame ``frame`` of ``media`` (running at ``rate``) as a file at
    ``output_rate`` labels it, or None when the file has no timecode (or one that is not)."""
    start = start_timecode(media)
    if start is None:
        return None
    shifted = timecode_after(start, frame, rate)
    relabelled = timecode_at_rate(shifted, rate, output_rate) if shifted is not None else None
    if relabelled is None:
        log.warning("%s: start timecode %r of %s is not one; the output gets none",
                    named, start, media.path.name)
    return relabelled


def render_mapped(
    source: Path,
    output: Path,
    frame_map: FrameMap,
    *,
    synthesizer: Synthesizer,
    codec: str | None = None,
    media_start_frames: Fraction | int = 0,
    include_transitions: bool = False,
    quality: int | None = None,
    audio_from: Path | None = None,
    audio_range_s: tuple[Fraction, Fraction] | None = None,
    on_progress: ProgressCallback | None = None,
    check_cancelled: Callable[[], None] | None = None,
    replace: bool = True,
    timecode: str | None = None,
    timecode_from_source: bool = False,
    label: str | None = None,
) -> RetimeReport:
    """Render every output frame of ``frame_map`` from ``source`` into ``output``; see the module doc.

    ``label`` is how log lines name the clip (``render`` passes ``V1 #2 A001``, as it names clips
    elsewhere); by default the time map's clip name. A scene cut or jump cut is logged with it, the
    source frames either side and the output frames made there (counted from 0 in the output file).

    ``synthesizer`` should be a ``GuardedSynthesizer``. The output is written through a temporary
    name; on any error (or ``check_cancelled`` raising) nothing is left at ``output``. With
    ``replace=False`` a file that appears at ``output`` while it renders (another job given the same
    name) is left alone: ``OutputExistsError``. ``timecode`` is written as the output's start
    timecode (.mov, .mp4, .mkv; PNG frames hold none, so a WARNING names it) and kept in the report
    (``start_timecode``). With ``timecode_from_source`` (``render``'s clips of a timeline) it is
    the source's own timecode at the source frame the output's first frame is made from (a head
    rendered for a transition included), relabelled at the output rate where that differs; none
    where the source has no timecode. The sidecar report is not written here (the caller adds what
    it knows, then ``report.write_sidecar()``).
    """
    started = time.perf_counter()
    source, output = Path(source), Path(output)
    named = label or frame_map.clip_name
    codec = codec or codec_for_output(output)
    media = probe(source)
    info = media.video_stream
    plan = pixel_plan(info, codec)
    first, end = frame_map.visible_output_frames if include_transitions else (0, frame_map.output_frames)
    total = end - first
    if total <= 0:
        raise UnsupportedOptionError(f"{frame_map.clip_name!r} maps no output frames; nothing to render")
    media_start = Fraction(media_start_frames)
    report = RetimeReport(
        source=str(source),
        output=str(output),
        model=getattr(getattr(synthesizer, "backend", synthesizer), "NAME", type(synthesizer).__name__),
        codec=codec,
        output_rate=fraction_text(frame_map.output_rate),
        output_frames=total,
        head_frames=-first,
        time_map=frame_map.to_dict(),
        start_timecode=timecode,
    )
    synthesis_s = encode_s = 0.0
    with FrameReader(
        source, output=plan.reader_format, deinterlace=plan.deinterlace, strict=False
    ) as reader:
        slots = clip_grid(source, info)
        report.source_grid = slots.describe() if info.is_vfr else None
        scale = slots.rate / frame_map.source_rate

        def locate(mapped: MappedFrame) -> SourcePlace:
            return slots.locate((mapped.source_position_frames - media_start) * scale)

        damaged_frames: set[int] = set()
        held_for_damage: list[int] = []
        first_mapped = next(iter(frame_map.frames(include_transitions=include_transitions)))
        if timecode_from_source:
            timecode = _source_timecode_at(
                media, locate(first_mapped).lower, slots.rate, frame_map.output_rate, named
            )
            report.start_timecode = timecode
        window = _Window(
            reader, locate(first_mapped).lower, cut_context=getattr(synthesizer, "detect_cuts", False)
        )
        writer = VideoWriter(
            output,
            rate=frame_map.output_rate,
            codec=codec,
            bit_depth=plan.bit_depth,
            alpha=plan.alpha,
            quality=quality,
            audio_from=audio_from,
            audio_range_s=audio_range_s,
            carried=CarriedTags.of(info, timecode=timecode),
            replace=replace,
        )
        with writer, contextlib.closing(window):
            pending: list[_Pending] = []

            def write(image: np.ndarray) -> None:
                nonlocal encode_s
                begun = time.perf_counter()
                writer.write(image)
                encode_s += time.perf_counter() - begun
                report.frames_written += 1
                if on_progress is not None:
                    on_progress(report.frames_written, total)

            def flush() -> None:
                nonlocal synthesis_s
                if not pending:
                    return
                lower, upper = pending[0].place.lower, pending[0].place.upper
                frame0, frame1 = window.get(lower), window.get(upper)
                phases = [item.place.phase for item in pending]
                cut = window.context_cut(lower) if upper == lower + 1 else None
                made = report.frames_written, report.frames_written + len(pending) - 1
                place = (
                    f"{named}: between source frames {lower} and {upper}, output frame"
                    + (f" {made[0]}" if made[0] == made[1] else f"s {made[0]}-{made[1]}")
                )
                begun = time.perf_counter()
                with cancellable(check_cancelled), synthesis_place(place):
                    if cut is not None:
                        note = f"jump cut ({cut.describe()}): {nearest_words(report.model)}"
                        log.warning("%s: %s", place, note)
                        results = nearest_instead(frame0, frame1, phases, note, risk_value=1.0)
                    else:
                        results = synthesizer.synthesize_many(frame0, frame1, phases)
                synthesis_s += time.perf_counter() - begun
                for item, result in zip(pending, results, strict=True):
                    write(result.frame)
                    report.frames_synthesized += 1
                    report.risk.append(
                        FrameRisk.of(result, item.mapped.output_frame, lower, fraction_text(item.place.phase))
                    )
                    for note in result.notes:
                        report.add_note(item.mapped.output_frame, note, fallback=result.fallback)
                    if item.damaged:
                        report.add_note(
                            item.mapped.output_frame,
                            f"made between source frames {lower} and {upper}, across damaged source "
                            f"frames {item.damaged} (lost, or decoded garbled: left out)",
                            fallback=False,
                        )
                    elif item.place.slots_between > 1:
                        report.add_note(
                            item.mapped.output_frame,
                            f"made across a stall: {item.place.slots_between - 1} frames missing "
                            f"between source frames {lower} and {upper}",
                            fallback=False,
                        )
                pending.clear()
                window.pinned = None

            for mapped in frame_map.frames(include_transitions=include_transitions):
                if check_cancelled is not None:
                    check_cancelled()
                place, damaged = _around_damage(locate(mapped), slots, window)
                damaged_text = runs_text(frame_runs(damaged)) if damaged else ""
                damaged_frames.update(damaged)
                if place.phase == 0:
                    flush()
                    write(window.get(place.lower))
                    if place.held:
                        report.frames_held += 1
                        held = place.held
                        if damaged_text:
                            held_for_damage.append(mapped.output_frame)
                            held += f" (source frames {damaged_text} are damaged)"
                        report.add_note(mapped.output_frame, held)
                    else:
                        report.frames_exact += 1
                    continue
                if pending and (
                    (pending[0].place.lower, pending[0].place.upper) != (place.lower, place.upper)
                    or len(pending) >= MAX_TIMES_PER_PAIR
                ):
                    flush()
                pending.append(_Pending(mapped, place, damaged_text))
                window.pinned = pending[0].place.lower
            flush()
    if damaged_frames:
        log.warning(
            "%s: source frames %s are damaged (lost, or decoded garbled): left out, and the output "
            "frames on or around them made between the undamaged frames either side (the report's "
            "notes name them)",
            named,
            runs_text(frame_runs(sorted(damaged_frames))),
        )
    report.timings_s = {
        "decode": round(window.decode_s, 3),
        "synthesis": round(synthesis_s, 3),
        "encode": round(encode_s, 3),
        "total": round(time.perf_counter() - started, 3),
    }
    if report.frames_held > len(held_for_damage):
        # a slowed clip's last output frames fall after its last frame by construction, within that
        # frame's own duration: held as expected; frames the map puts further out (or before the
        # first frame) are ones the media lacks
        outside = sum(
            1
            for mapped in frame_map.frames(include_transitions=include_transitions)
            if not 0 <= (mapped.source_position_frames - media_start) * scale < slots.slot_count
        )
        if outside:
            log.warning(
                "%s: %d output frames lie outside the media; its end frames are held",
                named,
                outside,
            )
        within = report.frames_held - len(held_for_damage) - outside
        if within > 0:
            log.info(
                "%s: %d output frames fall within the last source frame's duration; it is held there",
                named,
                within,
            )
    return report
