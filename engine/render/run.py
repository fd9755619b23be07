"""``render_timeline``: every slow-motion clip of a timeline rendered, and a new timeline pointing at it.

    summary = render_timeline(Path("cut.otio"), Path("out"), model="flow", codec="prores")
    summary.timeline_path      # out/cut.chronoscope.otio: retimed clips re-pointed, warps removed
    summary.to_dict()          # also written as out/cut.render-summary.json

Segments render in this process (``runner=InProcessRunner(jobs)``) or as jobs of the engine
(``EngineRunner``, engine.render.capability; the CLI starts the engine on demand). Either way each
segment is ``engine.render.segment.render_segment`` of a ``SegmentSpec``. Before rendering, a
segment whose output and sidecar carry its content hash is skipped (``resumed``): re-running after
an interruption redoes only what was not finished. Smooth cuts resume the same way, one by one.
Clips that share a render (the same content hash, ``engine.render.plan``) are rendered once, and
each has its own record in the summary with that render's outcome.

Clips that cannot be rendered (missing media, unsupported time effects) keep their original media
and warps in the new timeline and are listed in the summary with the reason; the render of
everything else goes on. ``RenderSummary.ok`` is False when any clip could not be rendered or
any smooth cut asked for failed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import opentimelineio as otio

from engine.errors import ChronoscopeError, JobCancelledError, UnsupportedOptionError
from engine.interp import resolve_clip_model
from engine.interp.checks import runs_text
from engine.media.probe import VideoStreamInfo
from engine.media.timecode import timecode_frames
from engine.media.writer import check_quality
from engine.render.edl_rate import read_edl_at_media_rate
from engine.render.outputs import TIMELINE_SUFFIX as TIMELINE_SUFFIX  # engine.render exports it from here
from engine.render.outputs import claim_output_folder, write_results
from engine.render.plan import ClipEntry, RenderPlan, SegmentSpec, plan_render
from engine.render.segment import (
    ALREADY_RENDERED,
    RENDERED_MEANWHILE,
    discard_unfinished,
    is_finished,
    output_lock,
    render_segment,
)
from engine.render.smoothcut import (
    apply_smooth_cuts,
    check_smooth_cut_frames,
    place_frames_to_check,
    plan_smooth_cuts,
    render_smooth_cut,
    resumed_smooth_cut,
)
from engine.retime import make_synthesizer
from engine.retime.report import RetimeReport
from engine.timeline import (
    PathMap,
    RenderedMedia,
    adapter_for,
    attach_results,
    media_base_dir,
    parse_fraction,
    replace_media,
)
from engine.timeline.items import parse_item, track_labels
from engine.timeline.paths import rebase_relative_media

log = logging.getLogger(__name__)

SUMMARY_SUFFIX = ".render-summary.json"
LEGACY_SUMMARY_NAME = "render-summary.json"
STATUS_WORDS = {"resumed": ALREADY_RENDERED}
"""How the table names a status where the JSON value (read by the Resolve bridge) is not the words
``render --help`` and the summary line use."""

SegmentProgress = Callable[[SegmentSpec, int, int], None]


class SegmentRunner(Protocol):
    """Renders a list of specs; calls ``on_done`` for each as it finishes (report or error)."""

    def run(
        self,
        specs: list[SegmentSpec],
        on_progress: SegmentProgress,
        on_done: Callable[[SegmentSpec, RetimeReport | None, ChronoscopeError | None], None],
    ) -> None: ...


def run_on_threads(
    work: Callable[[SegmentSpec], None], specs: list, jobs: int, stop: threading.Event, name: str
) -> None:
    """``work`` for each spec on ``jobs`` threads. Ctrl-C (KeyboardInterrupt, which only this
    thread receives) sets ``stop`` for the segments in progress to end at their next check, drops
    the segments not started, waits for the threads, and is raised again: nothing keeps rendering
    after the user stopped it."""
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix=name)
    try:
        for future in [pool.submit(work, spec) for spec in specs]:
            future.result()
    except BaseException:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def stop_check(stop: threading.Event) -> Callable[[], None]:
    """A ``check_cancelled`` for work inside this process: raises once ``stop`` is set."""

    def check() -> None:
        if stop.is_set():
            raise JobCancelledError("the render was interrupted")

    return check


class InProcessRunner:
    """Segments on ``jobs`` threads of this process, one synthesizer per thread; ``check_cancelled``
    (an engine job's) is asked at every frame and between network passes."""

    def __init__(self, jobs: int = 1, check_cancelled: Callable[[], None] | None = None) -> None:
        self.jobs = max(1, jobs)
        self.check_cancelled = check_cancelled

    def run(self, specs, on_progress, on_done) -> None:
        local = threading.local()
        synthesizers = []
        lock = threading.Lock()
        stop = threading.Event()
        interrupted = stop_check(stop)

        def check() -> None:
            interrupted()
            if self.check_cancelled is not None:
                self.check_cancelled()

        def one(spec: SegmentSpec) -> None:
            try:
                if getattr(local, "synthesizers", None) is None:
                    local.synthesizers = {}
                if spec.model not in local.synthesizers:
                    created = make_synthesizer(spec.model)
                    local.synthesizers[spec.model] = created
                    with lock:
                        synthesizers.append(created)
                report = render_segment(
                    spec,
                    synthesizer=local.synthesizers[spec.model],
                    on_progress=lambda done, total: on_progress(spec, done, total),
                    check_cancelled=check,
                )
            except JobCancelledError:
                raise
            except ChronoscopeError as error:
                on_done(spec, None, error)
                return
            on_done(spec, report, None)

        try:
            if self.jobs == 1:
                for spec in specs:
                    one(spec)
            else:
                run_on_threads(one, specs, self.jobs, stop, "render")
        finally:
            for synthesizer in synthesizers:
                synthesizer.close()


@dataclass
class RenderSummary:
    """What a render did for each clip, and where the new timeline is."""

    timeline: str
    outdir: str
    timeline_path: str | None
    runner: str
    clips: list[dict[str, Any]] = field(default_factory=list)
    editor_timeline_path: str | None = None
    """The new timeline in the format the timeline was exported in (EDL, FCP 7 XML), if written."""
    editor_timeline_note: str = ""
    """Why that copy was not written (the format cannot hold the new timeline), or, when it was,
    what it leaves out and where that is kept (an EDL holds no audio events)."""
    kept_effects: list[str] = field(default_factory=list)
    smooth_cuts: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [c for c in self.clips if c["status"] in ("failed", "cannot_render")]

    @property
    def failed_smooth_cuts(self) -> list[dict[str, Any]]:
        return [cut for cut in self.smooth_cuts if cut["status"] == "failed"]

    @property
    def ok(self) -> bool:
        """Everything asked for was rendered: no clip and no smooth cut failed (the exit status)."""
        return not self.failed and not self.failed_smooth_cuts

    def count(self, status: str) -> int:
        return sum(1 for c in self.clips if c["status"] == status)

    def to_dict(self) -> dict[str, Any]:
        return {
            "timeline": self.timeline,
            "outdir": self.outdir,
            "new_timeline": self.timeline_path,
            "editor_timeline": self.editor_timeline_path,
            "editor_timeline_note": self.editor_timeline_note,
            "runner": self.runner,
            "ok": self.ok,
            "counts": {
                status: self.count(status)
                for status in ("rendered", "resumed", "pass_through", "cannot_render", "failed")
            },
            "clips": self.clips,
            "kept_effects": self.kept_effects,
            "smooth_cuts": self.smooth_cuts,
            "smooth_cut_counts": {
                status: sum(1 for cut in self.smooth_cuts if cut["status"] == status)
                for status in ("rendered", "resumed", "skipped", "failed")
            },
            "seconds": round(self.seconds, 3),
        }

    def table(self) -> str:
        """A plain-text table, one line per clip (its status in ``STATUS_WORDS``' words where they
        differ from the JSON value: a resumed clip is "skipped (already rendered)", as the summary
        line and ``render --help`` say)."""
        header = (
            "track",
            "clip",
            "speed",
            "status",
            "frames",
            "model",
            "risk max",
            "to check",
            "seconds",
            "output / reason",
        )
        rows = [header]
        for clip in self.clips:
            report = clip.get("report") or {}
            rows.append(
                (
                    f"{clip['track']} #{clip['index_in_track']}",
                    clip["clip_name"],
                    clip["speed"] or "-",
                    STATUS_WORDS.get(clip["status"], clip["status"]),
                    str(report.get("frames_written", "-")),
                    str(report.get("model", "-")),
                    f"{report['risk_max']:.2f}" if "risk_max" in report else "-",
                    _to_check_cell(report),
                    f"{report['seconds']:.1f}" if "seconds" in report else "-",
                    clip.get("reason", "")
                    if clip["status"] in ("failed", "cannot_render")
                    else clip.get("output") or clip.get("reason", ""),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
            for row in rows
        ]
        return "\n".join(line.rstrip() for line in lines)


def _to_check_cell(report: dict) -> str:
    """The frames of a clip's render to look at (``12-15, 40``), ``none``, or ``-`` when not known."""
    runs = report.get("frames_to_check")
    if not isinstance(runs, list):
        return "-"
    return runs_text(runs, limit=3) or "none"


def render_timeline(
    timeline_path: Path,
    outdir: Path,
    *,
    model: str | None = None,
    codec: str = "prores",
    quality: int | None = None,
    speedup: bool = False,
    path_map: PathMap | None = None,
    runner: SegmentRunner | None = None,
    on_progress: SegmentProgress | None = None,
    on_segment_done: Callable[[SegmentSpec, str], None] | None = None,
    detect: Callable[[ClipEntry], dict[str, Any] | None] | None = None,
    smooth_cut_frames: int = 0,
    rate: float | None = None,
    only: list[str] | set[tuple[str, int]] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> RenderSummary:
    """Render a timeline file into ``outdir``; see the module docstring. Returns the summary, which
    is also written to ``outdir/NAME.render-summary.json`` (``summary_path``). Nothing in
    ``outdir`` that this render did not make is written over (``engine.render.outputs``): a
    summary or new timeline that another job or program writes there while it renders is kept,
    and ``OutputExistsError`` names it (the rendered clips stay; rendering again takes them).

    ``smooth_cut_frames`` N > 0 smooths every jump cut between clips at speed 1 with N synthesized
    frames (``engine.render.smoothcut``), rendered in this process; the summary lists each cut
    smoothed or skipped, with the reason. ``rate`` is an EDL's frame rate (``read_timeline``).
    ``only`` names the clips to render (``"V1:3"`` texts or (track, index) pairs, as ``chronoscope
    segments`` counts them); the others pass through. A name that is not a clip is refused.
    ``on_start(frames)`` is told, before the first segment renders, how many frames the segments
    still to render have in all (what ``on_progress`` counts towards)."""
    started = time.perf_counter()
    check_smooth_cut_frames(smooth_cut_frames)
    check_quality(codec, quality)
    # absolute: segments may be rendered by the engine, whose working folder is not the caller's
    timeline_path, outdir = Path(timeline_path).absolute(), Path(outdir).absolute()
    timeline = read_edl_at_media_rate(timeline_path, rate, path_map)
    chosen = None if only is None else chosen_clips(timeline, only)
    summary_file = summary_path(outdir, timeline_path)
    claim = claim_output_folder(outdir, timeline_path, "render", summary_file, outdir / LEGACY_SUMMARY_NAME)
    model = resolve_clip_model(model)
    plan = plan_render(
        timeline,
        outdir,
        media_timecodes=adapter_for(timeline_path) == "cmx_3600",
        base_dir=media_base_dir(timeline_path),
        path_map=path_map,
        model=model,
        codec=codec,
        quality=quality,
        speedup=speedup,
        only=chosen,
    )
    runner = runner or InProcessRunner()
    results: dict[str, tuple[str, RetimeReport | None, str]] = {}
    pending: list[SegmentSpec] = []
    seen: set[str] = set()
    for entry in plan.to_render:
        spec = entry.spec
        if spec.key in seen:
            continue  # a render shared with a clip before it (the same content hash): once is enough
        seen.add(spec.key)
        finished = is_finished(spec)
        if finished is not None:
            log.info("%s: already rendered (%s), skipped", spec.clip_name, spec.output)
            results[spec.key] = ("resumed", finished, ALREADY_RENDERED)
            if on_segment_done is not None:
                on_segment_done(spec, "resumed")
            continue
        pending.append(spec)
    lock = threading.Lock()

    def done(spec: SegmentSpec, report: RetimeReport | None, error: ChronoscopeError | None) -> None:
        with lock:
            if error is not None:
                log.warning("%s (%s #%d) failed: %s", spec.clip_name, spec.track, spec.index_in_track, error)
                results[spec.key] = ("failed", None, str(error))
            elif report is not None and report.rendered_meanwhile:
                results[spec.key] = ("resumed", report, RENDERED_MEANWHILE)
            else:
                results[spec.key] = ("rendered", report, "")
        if on_segment_done is not None:
            on_segment_done(spec, results[spec.key][0])

    if on_start is not None:
        on_start(sum(spec.total_frames for spec in pending))
    if pending:
        runner.run(pending, on_progress or (lambda spec, done_frames, total: None), done)
    _check_still_there(plan, results)
    smooth_cuts = _smooth_cuts(timeline, plan, outdir, smooth_cut_frames, model, codec, quality)
    summary = _summarise(plan, results, timeline_path, outdir, type(runner).__name__)
    summary.smooth_cuts = smooth_cuts
    rebase_relative_media(timeline, media_base_dir(timeline_path))  # it is written into OUTDIR
    new_timeline = _new_timeline(timeline, plan, results, detect, smooth_cuts)
    summary.seconds = time.perf_counter() - started
    # the summary, then the new timeline and its editor copy, each replacing only the file that
    # stood there when the folder was claimed (one that appeared meanwhile is kept: refused)
    write_results(claim, summary, new_timeline)
    return summary


def chosen_clips(timeline, names: list[str] | set[tuple[str, int]]) -> set[tuple[str, int]]:
    """The clips ``names`` picks (``"V1:3"``: item 3 of track V1, counted from 0 with gaps and
    transitions, as ``chronoscope segments`` shows them), checked against the timeline: a name of
    no track, or of an item that is not a clip, is refused by name before any work."""
    tracks = track_labels(timeline)
    chosen: set[tuple[str, int]] = set()
    for name in names:
        if isinstance(name, str):
            label, index = parse_item(name, "clip")
        else:
            label, index = str(name[0]).upper(), int(name[1])
        if label not in tracks:
            raise UnsupportedOptionError(
                f"clip {label}:{index}: the timeline has no track {label}; tracks: {', '.join(tracks)}"
            )
        _, track = tracks[label]
        if not 0 <= index < len(track) or not isinstance(track[index], otio.schema.Clip):
            what = type(track[index]).__name__.lower() if 0 <= index < len(track) else "past the end"
            raise UnsupportedOptionError(
                f"clip {label}:{index}: item {index} of {label} is {what}, not a clip "
                "(`chronoscope segments TIMELINE` lists the clips and their places)"
            )
        chosen.add((label, index))
    return chosen


def summary_path(outdir: Path, timeline_path: Path) -> Path:
    """``OUTDIR/NAME.render-summary.json``, beside the new timeline ``NAME.chronoscope.otio``."""
    return Path(outdir) / (Path(timeline_path).stem + SUMMARY_SUFFIX)


def _smooth_cuts(
    timeline,
    plan: RenderPlan,
    outdir: Path,
    frames: int,
    model: str | None,
    codec: str,
    quality: int | None,
) -> list[dict[str, Any]]:
    """Render the smooth cuts asked for; one record per cut (rendered, resumed, skipped or failed),
    in timeline order (track, then place on the track) whichever cuts resumed.

    A cut already rendered with the same content hash is not rendered again (``resumed``), and
    the model is loaded only when some cut needs it. A cut that cannot be planned or rendered
    (unreadable media) is "failed" with the error; the others go on."""
    if not frames:
        return []
    segments = [entry.segment for entry in plan.entries if entry.segment is not None]
    infos: dict[Path, VideoStreamInfo] = {}
    cuts, records = plan_smooth_cuts(
        timeline, segments, outdir, frames=frames, codec=codec, model=model, quality=quality, infos=infos
    )
    pending = []
    for cut in cuts:
        resumed = resumed_smooth_cut(cut)
        if resumed is not None:
            records.append(resumed)
            continue
        pending.append(cut)
    if pending:
        synthesizer = make_synthesizer(model)
        try:
            for cut in pending:
                # one render at a time writes a cut: another render of this timeline into OUTDIR
                # waits, then takes it, as segments do (engine.render.segment.render_segment)
                with output_lock(Path(cut.output)):
                    resumed = resumed_smooth_cut(cut)
                    if resumed is not None:
                        records.append(resumed)
                        continue
                    discard_unfinished(Path(cut.output))
                    try:
                        record = render_smooth_cut(
                            cut, synthesizer=synthesizer, codec=codec, quality=quality, infos=infos
                        )
                        records.append(record)
                    except ChronoscopeError as error:
                        log.warning("smooth cut %s failed: %s", cut.output, error)
                        records.append({**cut.to_dict(), "status": "failed", "reason": str(error)})
        finally:
            synthesizer.close()
    place_frames_to_check(records, timeline)
    return sorted(records, key=lambda record: (record["track_position"], record["first_index"]))


def _check_still_there(plan: RenderPlan, results: dict[str, tuple[str, RetimeReport | None, str]]) -> None:
    """A render whose output is gone by the end (its folder deleted or moved during the render) is
    failed, not listed as rendered with the new timeline pointing at nothing."""
    for entry in plan.to_render:
        status, _, _ = results.get(entry.spec.key, ("failed", None, ""))
        if status in ("rendered", "resumed") and is_finished(entry.spec) is None:
            reason = (
                f"{entry.spec.output} is gone: it disappeared after it was rendered (was the output "
                "folder deleted or moved during the render?); render again"
            )
            spec = entry.spec
            log.warning("%s (%s #%d): %s", spec.clip_name, spec.track, spec.index_in_track, reason)
            results[entry.spec.key] = ("failed", None, reason)


def _summarise(
    plan: RenderPlan,
    results: dict[str, tuple[str, RetimeReport | None, str]],
    timeline_path: Path,
    outdir: Path,
    runner: str,
) -> RenderSummary:
    summary = RenderSummary(
        str(timeline_path), str(outdir), None, runner, kept_effects=list(plan.kept_effects)
    )
    for entry in plan.entries:
        record: dict[str, Any] = {
            "track": entry.track,
            "index_in_track": entry.index_in_track,
            "clip_name": entry.clip_name,
            "speed": entry.speed,
            "status": entry.action,
            "reason": entry.reason,
        }
        if entry.spec is not None:
            status, report, reason = results.get(entry.spec.key, ("failed", None, "not rendered"))
            record["status"] = status
            record["reason"] = reason or entry.reason  # a shared render's says whose it is
            record["output"] = entry.spec.output
            record["timeline_frames"] = entry.spec.output_frames
            record["head_frames"] = entry.spec.head_frames
            record["tail_frames"] = entry.spec.tail_frames
            if report is not None:
                record["report"] = report.summary()
        summary.clips.append(record)
    return summary


def _start_frames(report: RetimeReport, rate: Fraction) -> int:
    """The frame number a rendered clip's start timecode labels at the timeline ``rate`` (it is
    written at that rate), 0 for one without: where its media time starts in the new timeline."""
    if not report.start_timecode:
        return 0
    return timecode_frames(report.start_timecode, rate) or 0


def _new_timeline(
    timeline,
    plan: RenderPlan,
    results: dict[str, tuple[str, RetimeReport | None, str]],
    detect,
    smooth_cuts: list[dict[str, Any]],
) -> otio.schema.Timeline:
    """The timeline with rendered clips re-pointed, smooth cuts in and the results attached."""
    renders = {}
    for entry in plan.to_render:
        status, report, _ = results.get(entry.spec.key, ("failed", None, ""))
        if report is None or status not in ("rendered", "resumed"):
            continue
        renders[entry.segment.clip] = RenderedMedia(
            Path(entry.spec.output).resolve(),
            frames=report.frames_written,
            head_frames=entry.spec.head_frames,
            start_frames=_start_frames(report, parse_fraction(entry.spec.output_rate)),
            info={**report.summary(), "content_hash": entry.spec.content_hash},
        )
    if detect is not None:
        for entry in plan.entries:
            found = detect(entry)
            if found:
                attach_results(entry.segment.clip, found)
    failed = [
        {
            "clip": e.clip_name,
            "track": e.track,
            "index_in_track": e.index_in_track,
            "reason": e.reason or results.get(e.spec.key if e.spec else "", ("", None, ""))[2],
        }
        for e in plan.entries
        if e.action == "cannot_render"
        or (e.spec is not None and results.get(e.spec.key, ("failed",))[0] == "failed")
    ]
    smoothed = [
        {
            key: cut.get(key)
            for key in ("track", "first_index", "where", "frames", "status", "reason", "output")
        }
        for cut in smooth_cuts
    ]
    attach_results(
        timeline,
        {"render": {"not_rendered": failed, "kept_effects": plan.kept_effects, "smooth_cuts": smoothed}},
    )
    new_timeline = replace_media(timeline, renders)
    apply_smooth_cuts(new_timeline, [cut for cut in smooth_cuts if cut["status"] in ("rendered", "resumed")])
    return new_timeline
