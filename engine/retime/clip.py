"""``retime_clip``: one clip slowed to a constant speed or along a speed ramp, with its audio.

At speed s a clip of N frames becomes ceil(N / s) frames at the same rate (exactly N / s when
1 / s is whole: 0.25 gives 4N); output frame n shows source position n * s, as
``engine.timeline.time_map`` maps a LinearTimeWarp. The last output frames may fall after the
last source frame (between it and the clip's end): that frame is held there, and the report says
so. A ramp (``engine.retime.ramp``) maps output frames to positions the same way.

A source range ``(in_frame, out_frame)`` retimes only source frames ``in_frame`` to
``out_frame - 1`` (out exclusive, as In/Out marks in an editor: 0-based frame indices of the file):
the map starts at ``in_frame`` and covers ``out_frame - in_frame`` source frames, so the output has
ceil((out - in) / s) frames (exactly (out - in) / s when 1 / s is whole), output frame n shows source
position in + n * s, and its time is n / rate. In-betweens after frame out - 1 blend towards frame
``out_frame`` when the file has it (a handle); only at the end of the file is the last frame held.
The audio covers the same range: stretched, it is sample-exact (``stretch_audio``'s ``range_s``);
kept (speed 1), it is copied from in / rate to out / rate, cut at packet boundaries.

A variable-frame-rate clip is read by its timestamps (``clip_grid``): its frames are placed on
a constant grid at the standard rate nearest their typical interval, and everything above (the
speed, the range, the rate of the output) counts frames of that grid; slots no frame lands on (a
stall) are made between the frames either side, so picture and sound keep time.

The report beside the output (``<output>.chronoscope.json``) follows its media's rule: with
``overwrite`` both may be replaced; without it neither is. A report standing there when the
retime begins (left by a clip no longer at the output name) is refused before any work
(``check_report_free``), and one that appears while it renders is kept, byte for byte:
``OutputExistsError`` names it (the media, in place already, then has no report). A report that
cannot be written (the disk filled up with the media) takes the media with it: ``FileAccessError``
names the report, and neither is left (``engine.retime.report.write_report_beside``).
"""

from __future__ import annotations

import logging
import math
from fractions import Fraction
from pathlib import Path

from engine.errors import (
    FrameOutOfRangeError,
    OutputExistsError,
    RetimeSpeedError,
    UnsupportedOptionError,
)
from engine.fsutil import check_output_folder, remove_quietly, temporary_sibling
from engine.interp import Synthesizer
from engine.media import probe
from engine.media.frame_slots import clip_grid
from engine.media.timecode import start_timecode, timecode_after
from engine.media.writer import check_output_path, check_output_rate, check_quality
from engine.retime.audio import AUDIO_DROP, AUDIO_KEEP, AUDIO_MODES, AUDIO_STRETCH, stretch_audio
from engine.retime.core import ProgressCallback, codec_for_output, make_synthesizer, render_mapped
from engine.retime.ramp import RampMap, SpeedRamp, parse_speed
from engine.retime.report import SIDECAR_SUFFIX, RetimeReport, remove_leftovers_of, sidecar_path
from engine.timeline import TimeMap, fraction_text

log = logging.getLogger(__name__)


def check_source_range(
    source_range: tuple[int | None, int | None] | None, source_frames: int
) -> tuple[int, int]:
    """``(in_frame, out_frame)`` checked against a clip of ``source_frames`` (None: the whole clip).

    Frames are 0-based indices of the file, out exclusive; the range must hold at least one frame.
    An in of None is the clip's first frame, an out of None its end.
    """
    if source_range is None:
        return 0, source_frames
    if not isinstance(source_range, (tuple, list)) or len(source_range) != 2:
        raise UnsupportedOptionError(
            f"source range {source_range!r} is not a pair; give (in_frame, out_frame), out exclusive"
        )
    in_frame, out_frame = source_range
    in_frame = 0 if in_frame is None else in_frame
    out_frame = source_frames if out_frame is None else out_frame
    for name, value in (("in frame", in_frame), ("out frame", out_frame)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise UnsupportedOptionError(f"{name} {value!r} is not a whole frame number")
    if in_frame < 0 or in_frame >= source_frames:
        raise FrameOutOfRangeError(
            f"in frame {in_frame} is outside the clip: it has frames 0 to {source_frames - 1}"
        )
    if out_frame > source_frames:
        raise FrameOutOfRangeError(
            f"out frame {out_frame} is past the end of the clip: it has {source_frames} frames, "
            f"so out (exclusive) can be at most {source_frames}"
        )
    if out_frame <= in_frame:
        raise UnsupportedOptionError(
            f"source range {in_frame} to {out_frame} is empty; out (exclusive) must be above in, "
            f"e.g. {in_frame} to {in_frame + 1} for one frame"
        )
    return in_frame, out_frame


def constant_speed_map(
    clip_name: str,
    source_frames: int,
    rate: Fraction,
    speed: Fraction,
    *,
    source_range: tuple[int, int] | None = None,
) -> TimeMap:
    """The time map of a clip of ``source_frames`` at ``rate`` played at ``speed``: the whole clip,
    or only ``source_range`` = (in_frame, out_frame), out exclusive (see the module doc)."""
    in_frame, out_frame = check_source_range(source_range, source_frames)
    return TimeMap(
        clip_name=clip_name,
        output_frames=math.ceil(Fraction(out_frame - in_frame) / speed),
        output_rate=rate,
        source_rate=rate,
        source_start_frames=Fraction(in_frame),
        time_scalar=speed,
        freeze_frame=False,
        source_range_end_frames=Fraction(out_frame),
        available_start_frames=Fraction(0),
        available_end_frames=Fraction(source_frames),
    )


def check_report_free(output: Path, *, overwrite: bool) -> None:
    """Refuse, before any work, a report standing beside ``output`` (``<output>.chronoscope.json``)
    unless ``overwrite``: without it, the report is never replaced, as its media is not, and a
    render that ended there would leave its media without one."""
    report = sidecar_path(Path(output))
    if not overwrite and (report.exists() or report.is_symlink()):
        raise OutputExistsError(
            f"{report} exists, though {Path(output).name} does not (the report of a clip since moved "
            "or deleted?); move it away, or allow overwriting (--overwrite) to replace it with this "
            "render's report"
        )


MAX_OUTPUT_HOURS = 24


def _start_timecode(info, in_frame: int, rate: Fraction) -> str | None:
    """The source's timecode at the retimed range's first frame (the start timecode plus In), so
    the slowed clip can be found against its source; None when the source has none."""
    timecode = start_timecode(info)
    if timecode is None:
        return None
    shifted = timecode_after(timecode, in_frame, rate)
    if shifted is None:
        log.warning("%s: start timecode %r is not one; the output gets none", info.path.name, timecode)
    return shifted


def _check_output_length(frames: int, rate: Fraction, name: str) -> None:
    """Refuse a result longer than ``MAX_OUTPUT_HOURS`` before any work (a speed of 1e-6 asked
    for 50 million frames and ran the machine out of memory)."""
    seconds = Fraction(frames) / rate
    if seconds > MAX_OUTPUT_HOURS * 3600:
        hours = float(seconds / 3600)
        raise RetimeSpeedError(
            f"{name} would become {frames} frames ({hours:,.0f} hours at {fraction_text(rate)} fps); "
            f"the limit is {MAX_OUTPUT_HOURS} hours: choose a faster speed or a shorter range (--in/--out)"
        )


def resolve_audio_mode(
    mode: str | None,
    *,
    source_has_audio: bool,
    codec: str,
    constant_speed: Fraction | None,
) -> str:
    """Check the audio mode against the clip; None picks stretch when there is audio to stretch.

    keep copies the audio unchanged, so it is only right at speed 1; stretch needs one constant
    speed (not a ramp) and a container (not PNG frames).
    """
    if mode is not None and mode not in AUDIO_MODES:
        raise UnsupportedOptionError(
            f"audio mode {mode!r} not supported; use one of: {', '.join(AUDIO_MODES)}"
        )
    if mode is None:
        if not source_has_audio:
            return AUDIO_DROP
        if codec == "png":
            log.warning("PNG frames hold no audio: the audio of the source is not written")
            return AUDIO_DROP
        if constant_speed is None:
            log.warning("audio is dropped: stretching follows one constant speed, and a ramp changes it")
            return AUDIO_DROP
        return AUDIO_KEEP if constant_speed == 1 else AUDIO_STRETCH
    if mode == AUDIO_DROP:
        return mode
    if not source_has_audio:
        raise UnsupportedOptionError(f"audio mode {mode}: the source has no audio stream; use drop")
    if codec == "png":
        raise UnsupportedOptionError(
            f"audio mode {mode}: PNG frames hold no audio; use drop, or write .mov/.mp4/.mkv"
        )
    if constant_speed is None:
        raise UnsupportedOptionError(
            f"audio mode {mode} needs one constant speed; a ramp changes speed: use drop"
        )
    if mode == AUDIO_KEEP and constant_speed != 1:
        raise UnsupportedOptionError(
            "audio mode keep copies the audio unchanged, which only fits speed 1, "
            f"not {fraction_text(constant_speed)}; "
            "use stretch (slower, pitch kept) or drop"
        )
    return mode  # stretch at speed 1 too: re-encoded where the output cannot take a copy


def retime_clip(
    source: Path,
    output: Path,
    *,
    speed: Fraction | float | str | None = None,
    ramp: SpeedRamp | None = None,
    source_range: tuple[int | None, int | None] | None = None,
    model: str | None = None,
    audio: str | None = None,
    codec: str | None = None,
    quality: int | None = None,
    allow_speedup: bool = False,
    overwrite: bool = False,
    synthesizer: Synthesizer | None = None,
    on_progress: ProgressCallback | None = None,
    check_cancelled=None,
    frame_base: int = 0,
) -> RetimeReport:
    """Retime ``source`` into ``output`` and write the sidecar report beside it; see the module doc.

    Give ``speed`` (0 < speed <= 1; above 1 with ``allow_speedup``) or ``ramp``.
    ``source_range`` = (in_frame, out_frame), out exclusive, retimes only those source frames
    (None: the whole clip; an in or out of None: the clip's start or end); a range outside the
    clip raises ``FrameOutOfRangeError``, an empty one ``UnsupportedOptionError``. ``model`` names
    the synthesis backend (None: the default model); a ready ``synthesizer`` may be passed instead
    (it is not closed here). ``audio``: drop, stretch, keep, or None (stretch when the source has
    audio).
    ``frame_base`` is the number the caller gives ``source``'s frame 0 (a run of an image sequence
    after a hole: its place in the whole sequence); the report's ``source_range`` counts from it.
    Errors are ``ChronoscopeError`` subclasses with one clear line each; nothing is left at
    ``output`` on failure.
    """
    source, output = Path(source), Path(output)
    if (speed is None) == (ramp is None):
        raise UnsupportedOptionError("give a speed (e.g. 0.25) or a speed ramp, not both and not neither")
    check_output_path(
        output, source, overwrite=overwrite, what="retimed clip", companions=(SIDECAR_SUFFIX,)
    )
    check_report_free(output, overwrite=overwrite)
    check_output_folder(output, what="retimed clip")
    remove_leftovers_of(output)
    constant = parse_speed(speed, allow_speedup=allow_speedup) if speed is not None else None
    if ramp is not None:
        if ramp.max_speed > 1 and not allow_speedup:
            raise RetimeSpeedError(
                f"speed ramp reaches {fraction_text(ramp.max_speed)}, above 1; slow motion needs speeds "
                "up to 1, or allow speed-up (--allow-speedup)"
            )
        if ramp.is_constant:
            constant = ramp.keyframes[0].speed
    info = probe(source)
    video = info.video_stream
    check_output_rate(output, video.frame_rate)
    grid = clip_grid(source, video)
    if video.is_vfr:
        log.warning(
            "%s has a variable frame rate: its frames are placed by their timestamps on a constant "
            "grid of %s fps (%d frames; %d made where frames are missing, %d frames left out that "
            "fell on a frame's slot)",
            source.name,
            fraction_text(grid.rate),
            grid.slot_count,
            grid.empty_slots,
            grid.frames_left_out,
        )
    if video.interlaced:
        log.warning(
            "%s is interlaced: each frame's two fields are merged (bwdif deinterlacing) before frames "
            "are made between them, so the result is progressive at the same frame rate",
            source.name,
        )
    codec = codec or codec_for_output(output)
    check_quality(codec, quality)
    audio_mode = resolve_audio_mode(
        audio,
        source_has_audio=bool(info.audio),
        codec=codec,
        constant_speed=constant,
    )
    rate = grid.rate
    in_frame, out_frame = check_source_range(source_range, grid.slot_count)
    whole_clip = (in_frame, out_frame) == (0, grid.slot_count)
    range_s = None if whole_clip else (in_frame / rate, out_frame / rate)
    if ramp is not None and not ramp.is_constant:
        frame_map = RampMap(
            source.name, ramp, out_frame - in_frame, rate, rate, source_start_frames=Fraction(in_frame)
        )
    else:
        frame_map = constant_speed_map(
            source.name, grid.slot_count, rate, constant, source_range=(in_frame, out_frame)
        )
    _check_output_length(frame_map.output_frames, rate, source.name)
    own_synthesizer = synthesizer is None
    active = make_synthesizer(model) if own_synthesizer else synthesizer
    stretched = None
    temporary_audio: Path | None = None
    try:
        audio_from = None
        audio_range_s = None
        if audio_mode == AUDIO_STRETCH:
            if len(info.audio) > 1:
                log.warning(
                    "%s has %d audio tracks; only the first is stretched and written",
                    source.name,
                    len(info.audio),
                )
            # PCM stays PCM where the container takes it (.mov, .mkv); elsewhere AAC
            pcm = info.audio[0].codec.startswith("pcm_") and output.suffix.lower() in (".mov", ".mkv")
            audio_name = output.name + (".audio.mov" if pcm else ".audio.m4a")
            temporary_audio = temporary_sibling(output.with_name(audio_name))
            stretched = stretch_audio(
                source,
                temporary_audio,
                speed=constant,
                range_s=range_s,
                video_start_s=video.start_s,
                pcm=pcm,
            )
            audio_from = temporary_audio
        elif audio_mode == AUDIO_KEEP:
            audio_from = source
            # the copy goes by the file's own clock, where the first frame is at video.start_s
            if range_s is not None or video.start_s > 0:
                first_s, end_s = range_s or (Fraction(0), grid.slot_count / rate)
                audio_range_s = (first_s + video.start_s, end_s + video.start_s)
        report = render_mapped(
            source,
            output,
            frame_map,
            synthesizer=active,
            codec=codec,
            quality=quality,
            audio_from=audio_from,
            audio_range_s=audio_range_s,
            on_progress=on_progress,
            check_cancelled=check_cancelled,
            replace=overwrite,
            timecode=_start_timecode(info, in_frame, rate),
        )
    finally:
        if own_synthesizer:
            active.close()
        if temporary_audio is not None:
            remove_quietly(temporary_audio)
    report.audio = audio_mode
    if stretched is not None:
        report.audio_samples = stretched.output_samples
        report.audio_sample_rate = stretched.sample_rate
    report.speed = fraction_text(constant) if constant is not None else None
    report.ramp = ramp.to_json() if ramp is not None else None
    counted = [frame_base + in_frame, frame_base + out_frame]
    report.source_range = None if whole_clip and not frame_base else counted
    report.write_sidecar(output, replace=overwrite)  # as its media: see the module doc
    log.info(
        "%s -> %s: %d frames (%d exact, %d synthesized, %d held), model %s, max risk %.2f",
        source.name,
        output,
        report.frames_written,
        report.frames_exact,
        report.frames_synthesized,
        report.frames_held,
        report.model,
        report.risk_max,
    )
    return report
