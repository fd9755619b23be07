"""Batch render of timeline exports: every slow-motion clip rendered through ``engine.retime``, and
a new timeline pointing at the renders (``render_timeline``). Retimed segments, smooth cuts and fills
all resume by content hash (``finished_report``): a re-run skips what is already rendered. Every
file they write carries its content hash in its name, and nothing they did not make is written over
(``engine.render.outputs``).

    summary = render_timeline(Path("cut.otio"), Path("out"), model="flow", codec="prores")
    summary = render_timeline(Path("cut.otio"), Path("out"), smooth_cut_frames=4)   # jump cuts smoothed
    fill_gaps(Path("cut.otio"), Path("out"), gaps=["V1:2"])                           # a gap filled

``engine.render.capability`` serves the same work as engine jobs (``retime``, ``render_timeline``);
``engine.render.remote.EngineRunner`` submits segments to the engine.
"""

from engine.render.fill import FillSummary, GapFill, fill_gaps, fill_summary_path
from engine.render.plan import ClipEntry, RenderPlan, SegmentSpec, content_hash, output_stem, plan_render
from engine.render.run import TIMELINE_SUFFIX, InProcessRunner, RenderSummary, render_timeline, summary_path
from engine.render.segment import ALREADY_RENDERED, finished_report, is_finished, render_segment
from engine.render.smoothcut import (
    SmoothCut,
    apply_smooth_cuts,
    plan_smooth_cuts,
    render_smooth_cut,
    resumed_smooth_cut,
)

__all__ = [
    "ALREADY_RENDERED",
    "ClipEntry",
    "FillSummary",
    "GapFill",
    "SmoothCut",
    "apply_smooth_cuts",
    "fill_gaps",
    "fill_summary_path",
    "finished_report",
    "plan_smooth_cuts",
    "render_smooth_cut",
    "resumed_smooth_cut",
    "InProcessRunner",
    "RenderPlan",
    "RenderSummary",
    "SegmentSpec",
    "TIMELINE_SUFFIX",
    "content_hash",
    "is_finished",
    "output_stem",
    "plan_render",
    "render_segment",
    "render_timeline",
    "summary_path",
]
