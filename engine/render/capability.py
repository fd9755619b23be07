"""The engine capabilities ``retime`` and ``render_timeline``.

``retime`` request content, one of:

    {"segment": <SegmentSpec.to_dict()>}                      one clip of a timeline render
    {"source": "/abs/clip.mp4", "output": "/abs/slow.mov", "speed": "1/4",
     "model": "flow", "audio": "stretch", "codec": "prores", "overwrite": false,
     "in_frame": 20, "out_frame": 26}

``source``, ``output`` and ``speed`` are required (speed as "num/den" text, exact, or a number),
or ``ramp`` instead of ``speed``: speed keyframes over output frames in ``engine.retime.ramp``'s
JSON (``[{"frame": 0, "speed": "1"}, {"frame": 48, "speed": "1/4"}]``, frame 0 at ``in_frame``);
the rest are optional. ``in_frame``/``out_frame`` (whole numbers, 0-based frame indices of the
source, out exclusive; either may be left out: the clip's start / end) retime only that range
(``retime_clip``'s ``source_range``); a range outside the clip or an empty one is refused when
the job runs, with a message naming the clip's frames. The result is
``{"report": <RetimeReport summary>, "output": ..., "sidecar": ...}``.

A ``segment`` is checked as a plain retime is: its output is never its source (also through a
symbolic or hard link), and an existing file there is refused unless this render made it (its
sidecar carries the segment's content hash, or its name does, as ``hashed_name`` writes it: what
resuming a render finds), an earlier attempt of the same job wrote it, or ``overwrite`` is true.
Unknown fields are refused, naming the valid ones; the model, codec and audio mode, and the
folders written, are checked before the job is queued.

``render_timeline``: ``{"timeline": "/abs/cut.otio", "outdir": "/abs/out", "model": ...,
"codec": ..., "speedup": false, "rate": null}`` (``rate``: an EDL's frame rate); the engine
renders the segments itself (in its job thread) and the result is the render summary
(``RenderSummary.to_dict()``).

Install with ``chronoscope engine run --capability-module engine.render.capability`` (the CLI's
``render`` starts its engine so), or list the module in the engine's default capability modules.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any

from engine.errors import OutputExistsError, RequestValueError, UnsupportedOptionError
from engine.interp.base import check_backend_name
from engine.media import CODECS
from engine.media._open import check_media_path
from engine.media.writer import check_output_path
from engine.render.outputs import HASH_CHARACTERS_IN_NAME
from engine.render.plan import SegmentSpec
from engine.render.segment import render_segment
from engine.retime import AUDIO_MODES, parse_ramp, parse_speed, read_sidecar, retime_clip, sidecar_path
from engine.retime.core import codec_for_output
from engine.retime.ramp import RAMP_EXAMPLE
from engine.retime.report import SIDECAR_SUFFIX
from engine.server.outputs import (
    absolute_path,
    check_writable_folder,
    is_own_output,
    requested_output,
    requested_overwrite,
)
from engine.server.protocol import quote
from engine.server.requests import check_fields, check_number_texts, parse_number
from engine.timeline.guard import require_timeline_file

MODULE = "engine.render.capability"
JOB_FIELDS = ("job_id", "resume")
RETIME_FIELDS = (
    "source",
    "output",
    "speed",
    "ramp",
    "model",
    "audio",
    "codec",
    "overwrite",
    "in_frame",
    "out_frame",
)
SEGMENT_FIELDS = ("segment", "overwrite")
RENDER_TIMELINE_FIELDS = ("timeline", "outdir", "model", "codec", "speedup", "rate", "clips")
MAX_CHOSEN_CLIPS = 10_000
MAX_FRAMES = 2**31 - 1
MIN_RATE = Fraction(1, 1000)
MAX_RATE = 10_000
_SEGMENT_NUMBERS = (
    "output_rate",
    "source_rate",
    "source_start_frames",
    "source_end_frames",
    "time_scalar",
    "media_start_frames",
)
_SEGMENT_COUNTS = ("index_in_track", "output_frames", "head_frames", "tail_frames")
_SEGMENT_TEXTS = ("key", "clip_name", "track", "source", "output", "codec", "content_hash")


def _absolute(content: dict[str, Any], key: str) -> Path:
    return absolute_path(content.get(key), key)


def _option(content: dict[str, Any], key: str, kind: type, default: Any = None) -> Any:
    value = content.get(key, default)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool) and kind is not bool):
        raise UnsupportedOptionError(f"{key} = {quote(value)}; expected {kind.__name__}")
    return value


def _check_model(model: str | None, key: str = "model") -> None:
    if model is not None:
        try:
            check_backend_name(model)
        except UnsupportedOptionError as error:
            raise UnsupportedOptionError(f"{key}: {error}") from None


def _check_codec(codec: str | None, key: str = "codec") -> None:
    if codec is not None and codec not in CODECS:
        raise UnsupportedOptionError(
            f"{key} {quote(codec)} is not supported; use one of: {', '.join(CODECS)}"
        )


def _check_audio(audio: str | None) -> None:
    if audio is not None and audio not in AUDIO_MODES:
        raise UnsupportedOptionError(
            f"audio {quote(audio)} is not supported; use one of: {', '.join(AUDIO_MODES)}"
        )


def _same_file(first: Path, second: Path) -> bool:
    """Whether two paths name one file: the same after resolving links, or the same inode."""
    if os.path.realpath(first) == os.path.realpath(second):
        return True
    try:
        return os.path.samefile(first, second)
    except OSError:  # one does not exist (yet)
        return False


def _check_segment_spec(data: Any) -> SegmentSpec:
    """The segment of a request, with every field of the type and range a render can use."""
    spec = SegmentSpec.from_dict(data)
    for name in _SEGMENT_TEXTS:
        if not isinstance(getattr(spec, name), str):
            raise UnsupportedOptionError(f"segment {name} = {quote(getattr(spec, name))}; expected text")
    for name in _SEGMENT_NUMBERS:
        value = getattr(spec, name)
        if not isinstance(value, str):
            raise UnsupportedOptionError(
                f"segment {name} = {quote(value)}; expected a number as text (24000/1001)"
            )
        parse_number(value, f"segment {name}", "24000/1001 or 0.5")
    for name in _SEGMENT_COUNTS:
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_FRAMES:
            raise RequestValueError(
                f"segment {name} = {quote(value)}; expected a whole number from 0 to {MAX_FRAMES}"
            )
    if not isinstance(spec.freeze_frame, bool):
        raise UnsupportedOptionError(
            f"segment freeze_frame = {quote(spec.freeze_frame)}; expected true or false"
        )
    if spec.quality is not None and (isinstance(spec.quality, bool) or not isinstance(spec.quality, int)):
        raise UnsupportedOptionError(f"segment quality = {quote(spec.quality)}; expected a whole number")
    if not all(isinstance(note, str) for note in spec.notes):
        raise UnsupportedOptionError("segment notes must be a list of texts")
    _check_model(_option({"model": spec.model}, "model", str), "segment model")
    _check_codec(spec.codec, "segment codec")
    return spec


def _made_by_this_render(spec: SegmentSpec, output: Path) -> bool:
    """Whether the file at ``output`` is this segment's own render (finished or cut short): its
    sidecar carries the segment's content hash and the file's size as written, or its name carries
    the hash (``hashed_name``) and no sidecar says otherwise."""
    digest = spec.content_hash
    if len(digest) < HASH_CHARACTERS_IN_NAME:
        return False
    report = read_sidecar(output)
    if report is not None:
        if report.content_hash != digest:
            return False
        # a file replaced after the render (the user's own edit saved over it) is no longer ours
        return (
            report.output_bytes is None
            or not output.is_file()
            or output.stat().st_size == report.output_bytes
        )
    name = output.name[: -len(output.suffix)] if output.suffix else output.name
    return name.endswith(f"_{digest[:HASH_CHARACTERS_IN_NAME]}")


def check_segment_output(spec: SegmentSpec, overwrite: bool) -> None:
    """Refuse a segment output that is its source, or an existing file this render did not make."""
    source, output = Path(spec.source), Path(spec.output)
    if _same_file(output, source):
        raise UnsupportedOptionError(
            f"segment output {spec.output} is its source {spec.source}; write the render elsewhere"
        )
    try:
        exists = output.exists() or output.is_symlink()
    except OSError as error:
        raise UnsupportedOptionError(f"segment output {quote(spec.output)} cannot be used: {error}") from None
    replace = overwrite or is_own_output(output) or (exists and _made_by_this_render(spec, output))
    if exists and not replace:
        raise OutputExistsError(
            f"segment output {spec.output} exists and was not rendered from this segment (its sidecar "
            "and name carry another content hash, or none); set overwrite to true to replace it"
        )
    check_output_path(
        output, source, overwrite=replace, what="rendered segment", companions=(SIDECAR_SUFFIX,)
    )


def _make_segment_job(content: dict[str, Any]):
    check_fields(content, (*SEGMENT_FIELDS, *JOB_FIELDS), "retime request with a segment")
    spec = _check_segment_spec(content["segment"])
    for key in ("source", "output"):
        absolute_path(getattr(spec, key), f"segment {key}")
    overwrite = requested_overwrite(content)
    output = Path(spec.output)
    if not output.parent.is_dir():
        raise UnsupportedOptionError(f"segment output {spec.output}: folder {output.parent} does not exist")
    check_writable_folder(output.parent, "segment output")
    check_segment_output(spec, overwrite)

    def work_segment(context) -> dict:
        # again as it starts: a file may have appeared there while the job was queued
        check_segment_output(spec, overwrite or str(output) in context.previous_outputs)
        report = render_segment(
            spec,
            on_progress=lambda done, total: context.progress(done, total, spec.clip_name),
            check_cancelled=context.check_cancelled,
        )
        context.record_output(output)
        context.record_output(sidecar_path(output))
        return {
            "report": report.to_dict(),
            "output": spec.output,
            "sidecar": str(sidecar_path(output)),
        }

    return work_segment


def make_retime_job(message):
    """Check a ``retime`` request; return the work to queue."""
    content = message.content
    if "segment" in content:
        return _make_segment_job(content)
    check_fields(content, (*RETIME_FIELDS, *JOB_FIELDS), "retime request")
    source = check_media_path(_absolute(content, "source"))
    output = requested_output(content, "output")
    if _same_file(output, source):
        raise UnsupportedOptionError(
            f"output {output} is the source itself; write the retimed clip elsewhere"
        )
    speed = content.get("speed")
    ramp = None
    if "ramp" in content:
        if speed is not None:
            raise UnsupportedOptionError("retime takes a speed or a ramp, not both")
        check_number_texts(content["ramp"], "retime ramp", keys=("frame", "speed"))
        ramp = parse_ramp(content["ramp"], where="retime ramp")
    elif speed is None:
        raise UnsupportedOptionError(
            f'retime needs a speed (e.g. "1/4"), a ramp (e.g. {RAMP_EXAMPLE}) or a segment'
        )
    else:
        check_number_texts(speed, "speed")
        parse_speed(speed)
    model = _option(content, "model", str)
    audio = _option(content, "audio", str)
    codec = _option(content, "codec", str)
    _check_model(model)
    _check_audio(audio)
    _check_codec(codec)
    if codec is None:
        codec_for_output(output)
    overwrite = _option(content, "overwrite", bool, False)
    in_frame = _option(content, "in_frame", int)
    out_frame = _option(content, "out_frame", int)
    for key, value in (("in_frame", in_frame), ("out_frame", out_frame)):
        if value is not None and not 0 <= value <= MAX_FRAMES:
            raise UnsupportedOptionError(f"{key} = {value}; frames are numbered from 0 to {MAX_FRAMES}")
    if out_frame == 0 or in_frame is not None and out_frame is not None and out_frame <= in_frame:
        raise UnsupportedOptionError(
            f"in_frame {in_frame or 0} to out_frame {out_frame} is empty; "
            "out_frame (exclusive) must be above in_frame"
        )

    def work_clip(context) -> dict:
        whole_clip = in_frame is None and out_frame is None
        report = retime_clip(
            source,
            output,
            speed=speed,
            ramp=ramp,
            source_range=None if whole_clip else (in_frame, out_frame),
            model=model,
            audio=audio,
            codec=codec,
            overwrite=overwrite or str(output) in context.previous_outputs,
            on_progress=lambda done, total: context.progress(done, total, source.name),
            check_cancelled=context.check_cancelled,
        )
        context.record_output(output)
        context.record_output(sidecar_path(output))
        return {"report": report.summary(), "output": str(output), "sidecar": str(sidecar_path(output))}

    return work_clip


def _check_outdir(outdir: Path) -> None:
    """Refuse an output folder that is a file, or that cannot be created or written in."""
    try:
        is_file = outdir.exists() and not outdir.is_dir()
        existing = outdir
        while not existing.exists():
            existing = existing.parent
    except OSError as error:
        raise UnsupportedOptionError(f"outdir {quote(str(outdir))} cannot be used: {error}") from None
    if is_file:
        raise OutputExistsError(f"outdir {outdir} is a file; name a folder")
    if not existing.is_dir():
        raise UnsupportedOptionError(
            f"outdir {outdir}: {existing} is a file, so the folder cannot be made there"
        )
    check_writable_folder(existing, "outdir")


def make_render_timeline_job(message):
    """Check a ``render_timeline`` request; return the work to queue."""
    from engine.render.run import InProcessRunner, render_timeline

    content = message.content
    check_fields(content, (*RENDER_TIMELINE_FIELDS, *JOB_FIELDS), "render_timeline request")
    timeline = _absolute(content, "timeline")
    outdir = _absolute(content, "outdir")
    model = _option(content, "model", str)
    codec = _option(content, "codec", str, "prores")
    speedup = _option(content, "speedup", bool, False)
    rate = content.get("rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)):
        raise UnsupportedOptionError(f"rate = {quote(rate)}; expected a number of frames per second")
    if rate is not None and not MIN_RATE <= parse_number(rate, "rate", "24 or 29.97") <= MAX_RATE:
        raise UnsupportedOptionError(f"rate = {rate}; a frame rate is from {float(MIN_RATE)} to {MAX_RATE}")
    _check_model(model)
    _check_codec(codec)
    require_timeline_file(timeline)
    _check_outdir(outdir)
    only = _chosen_clips(content.get("clips"))

    def work(context) -> dict:
        def progress(spec, done, total):
            context.check_cancelled()
            context.progress(done, total, spec.clip_name)

        summary = render_timeline(
            timeline,
            outdir,
            model=model,
            codec=codec,
            speedup=speedup,
            runner=InProcessRunner(1, check_cancelled=context.check_cancelled),
            on_progress=progress,
            rate=rate,
            only=only,
        )
        return summary.to_dict()

    return work


def _chosen_clips(value: Any) -> set[tuple[str, int]] | None:
    """A request's ``clips``: ``[{"track": "V1", "index_in_track": 3, ...}]`` (other keys, such as
    a client's names and frames, are its own), or None for every clip."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_CHOSEN_CLIPS:
        raise RequestValueError(
            f"clips = {quote(value)}; expected a list of at most {MAX_CHOSEN_CLIPS} "
            '{"track": "V1", "index_in_track": N}'
        )
    chosen = set()
    for item in value:
        track = item.get("track") if isinstance(item, dict) else None
        index = item.get("index_in_track") if isinstance(item, dict) else None
        if (
            not isinstance(track, str)
            or track[:1] not in ("V", "A")
            or not track[1:].isdigit()
            or isinstance(index, bool)
            or not isinstance(index, int)
            or not 0 <= index <= MAX_FRAMES
        ):
            raise RequestValueError(
                f'clips item {quote(item)}; expected {{"track": "V1", "index_in_track": N}}'
            )
        chosen.add((track, index))
    return chosen


def register_handlers(registry) -> None:
    """Install ``retime`` and ``render_timeline`` in an engine's handler registry."""
    from engine.server.handlers import Handler

    registry.register(
        Handler(
            "retime",
            job=make_retime_job,
            description="a clip or timeline segment, slowed down",
            # no fields here: make_retime_job checks them per form (a clip, or a segment)
        )
    )
    registry.register(
        Handler(
            "render_timeline",
            job=make_render_timeline_job,
            description="every slow-motion clip of a timeline",
            fields=RENDER_TIMELINE_FIELDS,
        )
    )
