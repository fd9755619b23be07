"""``chronoscope repair``: dropped and duplicated frames of a clip replaced by synthesized ones."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.commands.clip_options import add_clip_output_options
from engine.commands.sequence_option import add_sequence_rate_option, clip_as_media
from engine.errors import UnsupportedOptionError
from engine.interp import DEFAULT_MODEL
from engine.interp.checks import check_line, frame_runs, runs_text
from engine.progress import progress_callback, progress_stages
from engine.repair import JUMP_MODES, JUMPS_INSERT, MAX_DUPLICATE_REPEATS, analyse_clip, repair_clip
from engine.repair.run import REPAIR_AUDIO_MODES
from engine.retime import sidecar_path
from engine.retime.audio import AUDIO_KEEP
from engine.timeline import fraction_text

NAME = "repair"
HELP = "replace dropped and duplicated frames of a clip with synthesized ones"
DESCRIPTION = f"""\
Finds the frames CLIP lacks and fills them, so that OUT has a constant frame rate with every slot
filled:
  - timestamp gaps: in a constant-rate stream, a frame interval of k frames means k - 1 frames are
    missing; they are synthesized at their times between the frames on either side;
  - duplicated frames: a run of r repeats between distinct frames A and B becomes r in-betweens at
    t = i / (r + 1) (runs longer than --max-repeats, runs at the very end, and runs after which
    the picture moves on by one frame's worth of motion, not r + 1, are kept as holds);
  - frame jumps: consecutive frames that moved a whole multiple (2x, 3x) of the clip's motion per
    frame, with no timestamp gap: the frames dropped there are inserted (--jumps report only lists
    them). Found only where the whole picture moves steadily (a pan); stretches that move too
    little to tell are named ("not judged ..."; jumps_unjudged in the report). Measured on 13 real
    clips with frames left out: 13 of 78 such drops found, none invented (bench/repair_jumps.py);
  - damaged frames: frames lost to damage in the file, or decoded garbled (after damage, until the
    next undamaged keyframe), are dropped frames too: left out and filled (before the first or
    after the last undamaged frame, that frame is held); a WARNING and the report's damaged_frames
    name them. A file in which no frame decodes undamaged is refused.
An image sequence (--sequence-rate) may have holes: each missing frame file is a timestamp gap,
filled.
Across a scene cut nothing is synthesized: the nearer frame is repeated and the report says so.
Audio (--audio): keep (default) copies the sound unchanged, or re-encodes it as AAC, in sync, where
OUT's container cannot take it as it is (PCM into .mp4); drop leaves it out. The report (every
filled run: output frames, kind, t, risk per frame, and what was kept as is) is printed and written
beside OUT as OUT.chronoscope.json. OUT is written under a temporary name and renamed when
complete; its codec follows its suffix (.mov ProRes, .mp4 H.264, .mkv FFV1, no suffix PNG
frames) unless --codec names one. --dry-run only analyses and lists what would be filled. OUT's
folder is checked before the analysis: one that cannot be written is named at once.

Models: {DEFAULT_MODEL} by default when the models run on a GPU, flow on the CPU; also blend, nearest,
rife / rife-hdv3 / rife-4.2x, rife-mined (RIFE 4.2x fine-tuned on mined high-rate renders).

examples:
  chronoscope repair capture.mp4 -o capture_fixed.mov
  chronoscope repair screen.mkv -o fixed.mkv --model flow --json
  chronoscope repair anim.mp4 -o anim_fixed.mp4 --jumps report --max-repeats 2
  chronoscope repair camera.mov -o camera_fixed.mp4 --audio drop
  chronoscope repair capture.mp4 --dry-run
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clip", type=Path, help="the clip to repair")
    add_sequence_rate_option(parser)
    parser.add_argument("-o", "--output", type=Path, default=None, help="the repaired clip (or PNG folder)")
    parser.add_argument(
        "--dry-run", action="store_true", help="only analyse: list what would be filled, write nothing"
    )
    add_clip_output_options(parser, codec_default=None)
    parser.add_argument(
        "--jumps",
        choices=JUMP_MODES,
        default=JUMPS_INSERT,
        help="frame jumps without a timestamp gap: insert the dropped frames (default) or only report them",
    )
    parser.add_argument(
        "--max-repeats",
        type=int,
        default=MAX_DUPLICATE_REPEATS,
        metavar="N",
        help=f"longest duplicate run replaced (default {MAX_DUPLICATE_REPEATS}); longer runs are holds",
    )
    parser.add_argument(
        "--audio",
        choices=REPAIR_AUDIO_MODES,
        default=AUDIO_KEEP,
        help="audio: keep (default: copied, or re-encoded where OUT cannot take it as it is) or drop",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _span(first: int, last: int) -> str:
    """``frame 20`` or ``frames 20-22``, as every frame list is written (``runs_text``)."""
    return f"frame{'s' if last > first else ''} {runs_text([[first, last]])}"


def _describe(fill) -> str:
    span = _span(fill.first_output_frame, fill.last_output_frame)
    if fill.held:
        return f"  {span}: {fill.kind}, {'; '.join(fill.notes)}"
    risk = max(fill.risk, default=0.0)
    notes = f"; {'; '.join(fill.notes)}" if fill.notes else ""
    return (
        f"  {span}: {fill.kind} between source frames {fill.before_source_frame} and "
        f"{fill.after_source_frame}, t = {', '.join(fill.times)}, risk max {risk:.2f}{notes}"
    )


def unjudged_line(runs: list[list[int]]) -> str:
    """The line saying where frames lost without a timestamp gap could not be looked for."""
    return (
        f"  not judged for frames lost without a timestamp gap: source frames {runs_text(runs)} "
        "(too little motion to tell a lost frame from motion; timestamp gaps, duplicates and damage "
        "are still found there)"
    )


def _dry_run(args: argparse.Namespace) -> int:
    with progress_callback(f"repair {args.clip.name}: analysing", enabled=not args.json) as on_progress:
        plan = analyse_clip(
            clip_as_media(args, fill_holes=True),
            jumps=args.jumps,
            max_duplicate_repeats=args.max_repeats,
            on_progress=on_progress,
        )
    fills = [
        {
            "kind": fill.kind,
            "first_output_frame": fill.first_output_frame,
            "last_output_frame": fill.first_output_frame + fill.frames - 1,
            "before_source_frame": fill.before_frame,
            "after_source_frame": fill.after_frame,
            "times": [fraction_text(t) for t in fill.times()],
            "damaged": fill.damaged,
            "held": fill.held,
        }
        for fill in sorted([*plan.fills, *plan.holds], key=lambda fill: fill.first_output_frame)
    ]
    summary = {
        "source": str(args.clip),
        "output_rate": fraction_text(plan.grid.rate),
        "source_frames": plan.source_frames,
        "output_frames": plan.output_frames,
        "frames_to_synthesize": plan.frames_to_synthesize,
        "fills": fills,
        "kept": plan.notes,
        "jumps_reported": plan.jumps_reported,
        "grid_notes": plan.grid_notes,
        "damaged_frames": frame_runs(plan.damaged_frames),
        "jumps_unjudged": plan.jumps_unjudged,
    }
    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return 0
    lines = [
        f"{args.clip}: {plan.source_frames} frames; repaired it would have {plan.output_frames} at "
        f"{summary['output_rate']} fps, {plan.frames_to_synthesize} synthesized"
    ]
    lines.extend(
        f"  output {_span(f['first_output_frame'], f['last_output_frame'])}: {f['kind']} "
        + (
            f"(source frame {f['before_source_frame']} held)"
            if f["held"]
            else f"between source frames {f['before_source_frame']} and {f['after_source_frame']}"
        )
        for f in fills
    )
    lines.extend(f"  kept: {note}" for note in plan.notes)
    lines.extend(f"  grid: {note}" for note in plan.grid_notes)
    if plan.damaged_frames:
        lines.append(f"  damaged source frames: {runs_text(frame_runs(plan.damaged_frames))}")
    if plan.jumps_unjudged:
        lines.append(unjudged_line(plan.jumps_unjudged))
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.max_repeats < 1:
        raise UnsupportedOptionError(f"--max-repeats {args.max_repeats}: give 1 or more")
    if args.dry_run:
        if args.output is not None:
            raise UnsupportedOptionError(
                "--dry-run writes nothing; leave out -o, or drop --dry-run to repair"
            )
        return _dry_run(args)
    if args.output is None:
        raise UnsupportedOptionError("give -o OUT for the repaired clip (or --dry-run to only analyse)")
    with progress_stages(enabled=not args.json) as stage:
        report = repair_clip(
            clip_as_media(args, fill_holes=True),
            args.output,
            model=args.model,
            codec=args.codec,
            quality=args.quality,
            jumps=args.jumps,
            max_duplicate_repeats=args.max_repeats,
            audio=args.audio,
            overwrite=args.overwrite,
            on_analysis_progress=stage(f"repair {args.clip.name}: analysing"),
            on_progress=stage(f"repair {args.clip.name}: writing"),
        )
    if args.json:
        sys.stdout.write(json.dumps({**report.to_dict(), "report": str(sidecar_path(args.output))}) + "\n")
        return 0
    counts = report.counts()
    lines = [
        f"{report.output}: {report.frames_written} frames at {report.output_rate} fps from "
        f"{report.source_frames} source frames; {report.frames_synthesized} synthesized by {report.model} "
        f"({counts['timestamp_gap']} for timestamp gaps, {counts['duplicate']} replacing duplicates, "
        f"{counts['jump']} for frame jumps, {counts['damaged']} for damaged frames)"
        f"{f', {report.frames_held} held' if report.frames_held else ''}; audio {report.audio}"
    ]
    lines.extend(_describe(fill) for fill in report.fills)
    lines.extend(f"  kept: {note}" for note in report.kept)
    lines.extend(f"  grid: {note}" for note in report.grid_notes)
    if report.damaged_frames:
        lines.append(f"  damaged source frames (left out, filled): {runs_text(report.damaged_frames)}")
    lines.extend(
        f"  jump (reported, not filled): {jump['missing_frames']} frame(s) between source frames "
        f"{jump['before_frame']} and {jump['after_frame']}"
        for jump in report.jumps_reported
    )
    if report.jumps_unjudged:
        lines.append(unjudged_line(report.jumps_unjudged))
    if not report.changed:
        lines.append("  nothing to repair: no dropped or duplicated frames found")
    elif report.frames_synthesized:
        lines.append(check_line(report.frames_to_check, report.frames_synthesized, report.model))
    lines.append(f"report: {sidecar_path(args.output)}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
