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

``render_timeline``: ``{"timeline": "/abs/cut.otio", "outdir": "/abs/out", "model": ...,
"codec": ..., "speedup": false, "rate": null}`` (``rate``: an EDL's frame rate); the engine
renders the segments itself (in its job thread) and the result is the render summary
(``RenderSummary.to_dict()``).

Install with ``chronoscope engine run --capability-module engine.render.capability`` (the CLI's
``render`` starts its engine so), or list the module in the engine's default capability modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.errors import UnsupportedOptionError
from engine.render.plan import SegmentSpec
from engine.render.segment import render_segment
from engine.retime import parse_ramp, parse_speed, retime_clip, sidecar_path
from engine.retime.ramp import RAMP_EXAMPLE
from engine.server.outputs import requested_output

MODULE = "engine.render.capability"


def _absolute(content: dict[str, Any], key: str) -> Path:
    value = content.get(key)
    if not isinstance(value, str) or not value:
        raise UnsupportedOptionError(f"{key} must name a file (an absolute path), got {value!r}")
    path = Path(value)
    if not path.is_absolute():
        raise UnsupportedOptionError(
            f"{key} {value!r} is relative; the engine runs elsewhere, give an absolute path"
        )
    return path


def _option(content: dict[str, Any], key: str, kind: type, default: Any = None) -> Any:
    value = content.get(key, default)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool) and kind is not bool):
        raise UnsupportedOptionError(f"{key} = {value!r}; expected {kind.__name__}")
    return value


def make_retime_job(message):
    """Check a ``retime`` request; return the work to queue."""
    content = message.content
    if "segment" in content:
        spec = SegmentSpec.from_dict(content["segment"])
        for key in ("source", "output"):
            if not Path(getattr(spec, key)).is_absolute():
                raise UnsupportedOptionError(f"segment {key} {getattr(spec, key)!r} must be an absolute path")

        def work_segment(context) -> dict:
            report = render_segment(
                spec,
                on_progress=lambda done, total: context.progress(done, total, spec.clip_name),
                check_cancelled=context.check_cancelled,
            )
            return {
                "report": report.to_dict(),
                "output": spec.output,
                "sidecar": str(sidecar_path(Path(spec.output))),
            }

        return work_segment
    source = _absolute(content, "source")
    output = requested_output(content, "output")
    speed = content.get("speed")
    ramp = None
    if "ramp" in content:
        if speed is not None:
            raise UnsupportedOptionError("retime takes a speed or a ramp, not both")
        ramp = parse_ramp(content["ramp"], where="retime ramp")
    elif speed is None:
        raise UnsupportedOptionError(
            f'retime needs a speed (e.g. "1/4"), a ramp (e.g. {RAMP_EXAMPLE}) or a segment'
        )
    else:
        parse_speed(speed)
    model = _option(content, "model", str)
    audio = _option(content, "audio", str)
    codec = _option(content, "codec", str)
    overwrite = _option(content, "overwrite", bool, False)
    in_frame = _option(content, "in_frame", int)
    out_frame = _option(content, "out_frame", int)
    for key, value in (("in_frame", in_frame), ("out_frame", out_frame)):
        if value is not None and value < 0:
            raise UnsupportedOptionError(f"{key} = {value}; frames are numbered from 0")
    if in_frame is not None and out_frame is not None and out_frame <= in_frame:
        raise UnsupportedOptionError(
            f"in_frame {in_frame} to out_frame {out_frame} is empty; "
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


def make_render_timeline_job(message):
    """Check a ``render_timeline`` request; return the work to queue."""
    from engine.render.run import InProcessRunner, render_timeline

    content = message.content
    timeline = _absolute(content, "timeline")
    outdir = _absolute(content, "outdir")
    model = _option(content, "model", str)
    codec = _option(content, "codec", str, "prores")
    speedup = _option(content, "speedup", bool, False)
    rate = content.get("rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)):
        raise UnsupportedOptionError(f"rate = {rate!r}; expected a number of frames per second")

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
        )
        return summary.to_dict()

    return work


def register_handlers(registry) -> None:
    """Install ``retime`` and ``render_timeline`` in an engine's handler registry."""
    from engine.server.handlers import Handler

    registry.register(
        Handler("retime", job=make_retime_job, description="a clip or timeline segment, slowed down")
    )
    registry.register(
        Handler(
            "render_timeline",
            job=make_render_timeline_job,
            description="every slow-motion clip of a timeline",
        )
    )
