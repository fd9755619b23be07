"""``chronoscope render``: render every slow-motion clip of a timeline and write a timeline that uses it."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import threading
from pathlib import Path

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from engine.commands.argtypes import frame_rate
from engine.commands.clip_options import add_clip_output_options
from engine.errors import ChronoscopeError, UnsupportedOptionError
from engine.interp.base import check_backend_name
from engine.interp.checks import to_check_suffix
from engine.progress import progress_callback
from engine.render.plan import SegmentSpec
from engine.render.run import InProcessRunner, render_timeline
from engine.render.smoothcut import MAX_SMOOTH_CUT_FRAMES
from engine.timeline import PathMap
from engine.timeline.guard import require_timeline_file

log = logging.getLogger(__name__)

NAME = "render"
HELP = "render a timeline's slow-motion clips and write a timeline that points at them"
DESCRIPTION = """\
Reads TIMELINE (OTIO; EDL, FCP XML and FCPX XML through the OTIO adapters) and renders every video
clip whose speed is below 1 (LinearTimeWarp, FreezeFrame; an EDL's M2 line; an FCP 7 XML Time
Remap or FCPX timeMap at one speed) at its length on the timeline: exactly as many frames as it
occupies, plus the frames a transition into or out of it overlaps, each frame at the source time
the time map gives (handles used). Clips at 1x and faster pass through untouched (--speedup
renders faster clips too, by skipping source frames).

Writes OUTDIR/<track>_<index>_<clip>_<hash>.<ext> per rendered clip (<hash>: the first 10
characters of its content hash), each with a report beside it (.chronoscope.json: per-frame risk,
fallbacks, content hash, start_timecode). A rendered clip keeps its source's rotation, pixel
aspect, bit depth, colour primaries and transfer, and carries the source's timecode at its first
frame (none where the source has none); smooth cuts keep their source's tags but get no timecode
(their frames are made, not the source's). Also writes OUTDIR/<timeline>.chronoscope.otio (the
same timeline with rendered clips re-pointed, counted from their timecode, and their warps
removed; tracks, gaps, transitions, markers, other effects and metadata kept), for an EDL or
FCP 7 XML the same in its own format (OUTDIR/<timeline>.chronoscope.edl or .xml, to import back
into the editor; an EDL holds the video events only, and where the timeline has audio clips a
WARNING and the summary's editor_timeline_note say so: the .otio keeps them), and
OUTDIR/<timeline>.render-summary.json.
Nothing in OUTDIR that a render of this timeline did not write is written over: other timelines
can render into the same folder, and a clip whose media is an earlier render is never overwritten
by its own re-render. A render with other settings writes new files beside the earlier ones (the
timelines made before may point at them); delete those you no longer need. Renders named without
a hash (by Chronoscope before November 2026) are not resumed: they are rendered again.

Re-running skips clips and smooth cuts whose output carries the same content hash (source file,
range, speed, model, codec, version): they are listed as "skipped (already rendered)", so an
interrupted render resumes where it stopped. Clips that cannot be rendered (media missing,
unsupported time effects) are listed with the reason and keep their original media, and so are
smooth cuts that fail; the exit status is then 1. Effects other than speed changes stay in the
timeline and are listed.

Segments render in parallel as jobs of the engine (started on demand), or in this process with
--no-engine.

--smooth-cuts N smooths jump cuts, as Resolve's Smooth Cut does: where two adjacent clips on a
video track show the same media at speed 1 and the second starts up to 2 s of source after the
first ends (and the pictures at the cut are not a real scene cut), N frames are synthesized
between them as a short new clip (OUTDIR/<track>_<a>-<b>_smoothcut_<hash>.<ext>, <a> and <b> the
two clips' places on the track: V1_000-001_smoothcut_1bd798cc08.mov) that replaces the last N/2
frames of the first clip and the first N - N/2 of the second: the timeline keeps its length.
Each pair of adjacent clips of the same media is listed, smoothed or skipped with the reason;
cuts between different media are real cuts, left alone and not listed.

examples:
  chronoscope render cut.otio -o out/
  chronoscope render cut.otio -o out/ --model flow --codec h264 --no-engine --jobs 2
  chronoscope render interview.otio -o out/ --smooth-cuts 4 --no-engine
  chronoscope render reel1.xml -o out/ --map 'C:\\Footage=/mnt/footage' --json
  chronoscope render reel2.edl -o out/ --rate 29.97
  chronoscope render cut.otio -o out/ --clip V1:3 --clip V2:0
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("timeline", type=Path, help="the timeline file")
    parser.add_argument(
        "-o", "--outdir", type=Path, required=True, help="folder for rendered media and the new timeline"
    )
    add_clip_output_options(parser, codec_default="prores")
    parser.add_argument(
        "--rate",
        type=frame_rate,
        help=(
            "frame rate of an EDL (EDLs do not say; default 24, or 23.976 when its media run at that; "
            "29.97 for drop frame; 24000/1001 exactly)"
        ),
    )
    parser.add_argument(
        "--speedup", action="store_true", help="also render clips faster than 1x (dropping frames)"
    )
    parser.add_argument(
        "--clip",
        action="append",
        metavar="TRACK:INDEX",
        help="render only this clip, e.g. V1:3 as `chronoscope segments` numbers them (repeatable); "
        "the others pass through",
    )
    parser.add_argument(
        "--detect", action="store_true", help="add speed-detection results to the new timeline"
    )
    parser.add_argument(
        "--smooth-cuts",
        type=int,
        default=0,
        metavar="N",
        help="smooth jump cuts (same media, a small jump forward) with N synthesized frames",
    )
    parser.add_argument(
        "--no-engine", action="store_true", help="render in this process instead of the engine"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="segments rendered at once (default 2, at most the CPU count)",
    )
    parser.add_argument(
        "--map", action="append", default=[], metavar="FROM=TO", help="remap a media path prefix (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")


def _detector():
    """``detect_speed`` when the speed package provides it, else None."""
    try:
        from engine.speed.detect import detect_speed
    except ImportError as error:
        log.warning(
            "--detect: speed detection is not available in this build (%s); rendering without it", error
        )
        return None

    def detect(entry) -> dict | None:
        segment = entry.segment
        if (
            segment is None
            or segment.track_kind != "Video"
            or segment.media_path is None
            or not segment.media.exists
        ):
            return None
        try:
            result = detect_speed(segment.media_path)
        except ChronoscopeError as error:
            log.warning("--detect: %s: %s", segment.describe(), error)
            return {"speed_error": str(error)}
        return {"speed": result.to_json()}

    return detect


class _Bars:
    """One overall progress bar (frames) and one per segment in flight, on a terminal (log lines
    printed above them); elsewhere an INFO line on the whole render every so often
    (``engine.progress``). The overall total is set when the render knows it (``start``)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._lock = threading.Lock()
        self._bars: dict[str, tqdm] = {}
        self._done: dict[str, int] = {}
        self._total: int | None = None
        self._exits = contextlib.ExitStack()
        self._log_progress = None
        if self.enabled:
            self._exits.enter_context(logging_redirect_tqdm())
        elif enabled:
            self._log_progress = self._exits.enter_context(progress_callback("render"))
        self.overall = tqdm(
            total=None,
            desc="render",
            unit="frame",
            disable=not self.enabled,
            file=sys.stderr,
            position=0,
        )

    def start(self, total_frames: int) -> None:
        """The frames of every segment still to render (``render_timeline``'s ``on_start``)."""
        with self._lock:
            self._total = total_frames
            self.overall.reset(total=total_frames)

    def progress(self, spec: SegmentSpec, done: int, total: int) -> None:
        with self._lock:
            bar = self._bars.get(spec.key)
            if bar is None:
                bar = tqdm(
                    total=total,
                    desc=spec.clip_name[:24],
                    unit="frame",
                    disable=not self.enabled,
                    file=sys.stderr,
                    leave=False,
                    position=len(self._bars) + 1,
                )
                self._bars[spec.key] = bar
            bar.update(done - bar.n)
            self.overall.update(done - self._done.get(spec.key, 0))
            self._done[spec.key] = done
            if self._log_progress is not None and self._total:
                self._log_progress(sum(self._done.values()), self._total)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self.overall.close()
        self._exits.close()


def _smooth_cut_line(cut: dict) -> str:
    if cut["status"] not in ("rendered", "resumed"):
        where = cut.get("where") or f"{cut['track']} #{cut['first_index']}-#{cut['first_index'] + 1}"
        return f"smooth cut {cut['status']}: {where}: {cut['reason']}"
    done = f" ({cut['reason']})" if cut["status"] == "resumed" else ""
    runs, at = cut.get("frames_to_check", []), cut.get("frames_to_check_at", "")
    check = to_check_suffix(runs, of="the smooth cut", at=at)
    return (
        f"smooth cut: {cut['track']} #{cut['first_index']}-#{cut['first_index'] + 1} "
        f"({cut['first_clip']} > {cut['second_clip']}, jump {cut['jump_frames']} frames): "
        f"{cut['frames']} frames replace the last {cut['from_first']} of the first clip and the first "
        f"{cut['from_second']} of the second, risk max {max(cut['risk'], default=0.0):.2f}"
        f"{check}; {cut['output']}{done}"
    )


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.smooth_cuts <= MAX_SMOOTH_CUT_FRAMES:
        raise UnsupportedOptionError(
            f"--smooth-cuts {args.smooth_cuts}: give 1 to {MAX_SMOOTH_CUT_FRAMES} frames (0: none)"
        )
    cpus = os.cpu_count() or 1
    jobs = args.jobs if args.jobs is not None else min(2, cpus)
    if jobs < 1:
        raise UnsupportedOptionError(f"--jobs {jobs}: give 1 or more")
    path_map = PathMap.from_strings(args.map) if args.map else None
    # what would fail every clip, or find no timeline, is refused before an engine is started
    if args.model is not None:
        check_backend_name(args.model)
    require_timeline_file(args.timeline)
    detect = _detector() if args.detect else None
    runner = InProcessRunner(jobs)
    if not args.no_engine:
        from engine.render.remote import EngineRunner, connect_render_engine

        try:
            runner = EngineRunner(connect_render_engine(workers=jobs), jobs)
        except ChronoscopeError as error:
            log.warning("rendering in this process instead of the engine: %s", error)
    bars = _Bars(not args.json)
    try:
        summary = render_timeline(
            args.timeline,
            args.outdir,
            model=args.model,
            codec=args.codec,
            quality=args.quality,
            speedup=args.speedup,
            path_map=path_map,
            runner=runner,
            on_progress=bars.progress,
            detect=detect,
            smooth_cut_frames=args.smooth_cuts,
            rate=args.rate,
            only=args.clip,
            on_start=bars.start,
        )
    finally:
        bars.close()
    if args.json:
        sys.stdout.write(json.dumps(summary.to_dict()) + "\n")
    else:
        sys.stdout.write(summary.table() + "\n")
        for line in summary.kept_effects:
            sys.stdout.write(f"kept, not rendered: {line}\n")
        for cut in summary.smooth_cuts:
            sys.stdout.write(_smooth_cut_line(cut) + "\n")
        counts = summary.to_dict()["counts"]
        sys.stdout.write(
            f"{counts['rendered']} rendered, {counts['resumed']} skipped (already rendered), "
            f"{counts['pass_through']} passed "
            f"through, {counts['cannot_render'] + counts['failed']} not rendered; "
            f"new timeline: {summary.timeline_path}\n"
        )
        if summary.editor_timeline_path:
            note = f"; {summary.editor_timeline_note}" if summary.editor_timeline_note else ""
            sys.stdout.write(f"the same for the editor: {summary.editor_timeline_path}{note}\n")
        elif summary.editor_timeline_note:
            sys.stdout.write(f"not written for the editor: {summary.editor_timeline_note}\n")
        if args.smooth_cuts:
            cuts = summary.to_dict()["smooth_cut_counts"]
            sys.stdout.write(
                f"smooth cuts: {cuts['rendered']} rendered, {cuts['resumed']} skipped (already rendered), "
                f"{cuts['skipped'] + cuts['failed']} not smoothed\n"
            )
    for clip in summary.failed:
        print(
            f"chronoscope render: not rendered: {clip['track']} #{clip['index_in_track']} "
            f"{clip['clip_name']}: {clip['reason']}",
            file=sys.stderr,
        )
    for cut in summary.failed_smooth_cuts:
        print(f"chronoscope render: {_smooth_cut_line(cut)}", file=sys.stderr)
    return 0 if summary.ok else 1
