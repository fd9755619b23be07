"""``chronoscope retime``: a clip slowed down with generated in-between frames, and its risk report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.commands.clip_options import add_clip_output_options
from engine.commands.sequence_option import add_sequence_rate_option, clip_and_range
from engine.errors import UnsupportedOptionError
from engine.interp import CPU_CLIP_MODEL, DEFAULT_MODEL
from engine.interp.checks import check_line
from engine.progress import progress_callback
from engine.retime import AUDIO_MODES, load_ramp, retime_clip, sidecar_path

NAME = "retime"
HELP = "slow a clip down (constant speed or a ramp) with generated in-between frames"
DESCRIPTION = f"""\
Renders CLIP at a slower speed: at --speed 0.25 every source frame is followed by three generated
ones, so the output has exactly four times the frames at the same frame rate, each at the exact
time the time map gives (output frame n shows source position n x speed). Across a scene cut (or
a jump cut inside a still shot) the nearer frame is repeated instead of a blend, and repeated
(duplicate) source frames are not interpolated; both are listed in the report. A ramp is a JSON
list of keyframes in output frames, linear in between,
e.g. [{{"frame": 0, "speed": 1}}, {{"frame": 48, "speed": 0.25}}].

--in N and --out M retime only source frames N to M - 1 (0-based frame numbers of CLIP, out
exclusive, like In/Out marks): the output has (M - N) / speed frames starting at frame N, and the
audio covers the same range. Either may be left out (the clip's start, its end). The output's
start timecode is the source's at frame N, when the source has one. An image sequence with a
missing frame can be retimed on either side of the hole (--in/--out); a range across it is
refused (`chronoscope repair` fills the hole).

Frames lost to damage in CLIP, or decoded garbled after it (until the next undamaged keyframe),
are left out: the output frames on or next to them are made between the undamaged frames either
side, as across a stall (held where no undamaged frame follows or precedes), and a WARNING and
the report's notes name them.

A clip with a variable frame rate (phones, recordings that stalled) is read by its timestamps:
its frames are placed on a constant grid at the standard rate nearest their typical interval
(29.88 fps phone footage on 30), frames missing in a stall are made between the frames either
side, and the sound is stretched with it; --in/--out count frames of that grid.

Audio: stretch (default when the clip has audio: slowed with pitch kept, FFmpeg atempo), keep
(copied unchanged: speed 1 only), drop. Codec by default from OUT's suffix: .mov ProRes 422 HQ,
.mp4 H.264, .mkv FFV1, no suffix a folder of PNG frames (turned as the clip displays, since PNG
holds no rotation; the first frame's timecode is in the report). The output is written under a
temporary name and renamed when complete; the report (per-frame risk, fallbacks, timings,
start_timecode) goes beside it as OUT.chronoscope.json. A frame's risk (0 to 1) is about the share
of its picture the model could not vouch for: pixels the two frames around it disagree on, that
only one of them shows, or that the motion could not place (0.1: a tenth of the picture, such as a
subject that moved too far between them). Its local risk is the worst patch about a subject's
size; frames whose local risk reaches the level measured for the model are listed as frames to
check (on real clips held out of the measurement: 77 % of the visibly wrong frames for flow, 86 %
for ensemble; flow also lists many right ones; see the report's frames_to_check). The preview app
shows where (its risk overlay); interpolate --risk writes the map.

Models: by default {DEFAULT_MODEL} (best measured) when the models run on a GPU, and {CPU_CLIP_MODEL}
on the CPU, where {DEFAULT_MODEL} is far too slow for whole clips; also blend, nearest, rife /
rife-hdv3 / rife-4.2x, rife-mined (RIFE 4.2x fine-tuned on mined high-rate renders; run
`chronoscope models prepare`; without them the default falls back to flow).

examples:
  chronoscope retime clip.mp4 --speed 0.25 -o clip_slow.mov
  chronoscope retime clip.mp4 --speed 1/3 --model flow --audio drop -o slow.mp4
  chronoscope retime clip.mp4 --ramp ramp.json --codec ffv1 -o ramp.mkv --json
  chronoscope retime clip.mp4 --speed 1/2 --in 120 --out 180 -o shot_slow.mov
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clip", type=Path, help="the source clip")
    add_sequence_rate_option(parser)
    speed = parser.add_mutually_exclusive_group(required=True)
    speed.add_argument(
        "--speed",
        help="playback speed, 0 < speed <= 1 (0.25 or 1/4 = four times slower; above 1 with --allow-speedup)",
    )
    speed.add_argument("--ramp", type=Path, help="JSON file of speed keyframes over output frames")
    parser.add_argument(
        "--in",
        dest="in_frame",
        type=int,
        default=None,
        metavar="N",
        help="first source frame to retime (0-based; default 0)",
    )
    parser.add_argument(
        "--out",
        dest="out_frame",
        type=int,
        default=None,
        metavar="M",
        help="source frame where the range ends, exclusive (default: the clip's end)",
    )
    add_clip_output_options(parser, codec_default=None)
    parser.add_argument(
        "--audio",
        choices=AUDIO_MODES,
        default=None,
        help="audio: stretch (default with audio), keep (speed 1 only) or drop",
    )
    parser.add_argument(
        "--allow-speedup",
        action="store_true",
        help="accept speeds above 1 (renders by skipping source frames)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="output file (or folder for PNG frames)"
    )
    parser.add_argument("--json", action="store_true", help="print the report summary as JSON")


def run(args: argparse.Namespace) -> int:
    if args.speed is not None and args.speed.strip() == "":
        raise UnsupportedOptionError("--speed is empty; give e.g. 0.25")
    if args.in_frame is not None and args.in_frame < 0:
        raise UnsupportedOptionError(f"--in {args.in_frame} is below 0; frames are numbered from 0")
    if args.in_frame is not None and args.out_frame is not None and args.out_frame <= args.in_frame:
        raise UnsupportedOptionError(
            f"--in {args.in_frame} --out {args.out_frame} is an empty range; "
            "--out (exclusive) must be above --in"
        )
    ramp = load_ramp(args.ramp, allow_speedup=args.allow_speedup) if args.ramp else None
    whole_clip = args.in_frame is None and args.out_frame is None
    media, source_range, frame_base = clip_and_range(
        args, None if whole_clip else (args.in_frame, args.out_frame)
    )
    with progress_callback(f"retime {args.clip.name}", enabled=not args.json) as on_progress:
        report = retime_clip(
            media,
            args.output,
            speed=args.speed,
            ramp=ramp,
            source_range=source_range,
            frame_base=frame_base,
            model=args.model,
            audio=args.audio,
            codec=args.codec,
            quality=args.quality,
            allow_speedup=args.allow_speedup,
            overwrite=args.overwrite,
            on_progress=on_progress,
        )
    summary = {
        **report.summary(),
        "audio": report.audio,
        "source_range": report.source_range,
        "report": str(sidecar_path(args.output)),
    }
    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return 0
    notes = len(report.fallback_notes)
    span = ""
    if report.source_range is not None:
        span = f" from source frames {report.source_range[0]} to {report.source_range[1] - 1}"
    sys.stdout.write(
        f"{report.output}: {report.frames_written} frames at {report.output_rate} fps{span} "
        f"({report.frames_exact} source, {report.frames_synthesized} generated by {report.model}, "
        f"{report.frames_held} held), audio {report.audio}\n"
        f"risk: max {report.risk_max:.2f}, mean {report.risk_mean:.2f}; {report.fallbacks} frame"
        f"{'s' if report.fallbacks != 1 else ''} in {notes} note{'s' if notes != 1 else ''} fell back to "
        f"a repeated, nearest or held frame (scene cuts, duplicates, the clip's ends)\n"
        f"{check_line(report.frames_to_check, report.frames_synthesized, report.model)}; "
        f"report: {summary['report']}\n"
    )
    return 0
