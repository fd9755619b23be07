"""``chronoscope fill``: gaps of a timeline filled with frames synthesized from the clips around them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.commands.argtypes import frame_rate
from engine.commands.clip_options import add_clip_output_options
from engine.interp.base import check_backend_name
from engine.interp.checks import to_check_suffix
from engine.render.fill import fill_gaps
from engine.timeline import PathMap

NAME = "fill"
HELP = "fill gaps of a timeline with frames synthesized from the clips on either side"
DESCRIPTION = """\
Replaces each named gap of TIMELINE's video tracks with a clip of the same length whose frames are
synthesized between the last frame the clip before it shows and the first frame the clip after it
shows (t = i / (G + 1) for a gap of G frames). Nothing else on the timeline moves. Across a scene
cut the nearer picture is repeated instead of a morph, and the summary says so with risk 1.

--gap TRACK:INDEX names item INDEX of track TRACK, counted from 0 with gaps and transitions, as
`chronoscope segments` shows them (repeatable); --gap all fills every gap that has a clip right
before and right after it.

Writes OUTDIR/<track>_<index>_fill_<hash>.<ext> per gap, shown as the clip before the gap
(its rotation, pixel aspect, bit depth, colour primaries and transfer; a WARNING where the clip
after it is shown otherwise) and with no start timecode (its frames are made),
OUTDIR/<timeline>.chronoscope.otio (the gaps replaced; tracks, clips, transitions, markers and
metadata kept), for an EDL or FCP 7 XML
the same in its own format (OUTDIR/<timeline>.chronoscope.edl or .xml; an EDL holds the video
events only, and where the timeline has audio clips a WARNING and the summary's
editor_timeline_note say so: the .otio keeps them), and OUTDIR/<timeline>.fill-summary.json;
nothing in OUTDIR that a fill of this timeline did not write is written over.
A gap that cannot be filled (no clip on one side, media missing) stays a gap, is listed with the
reason, and the exit status is 1.

Re-running skips gaps whose fill was already rendered with the same content hash (both source
files, the frames around the gap, its length, model, codec, version): they are listed as "skipped
(already rendered)", so an interrupted fill resumes where it stopped.

Fills build up: gaps that an earlier fill of the same timeline into OUTDIR filled stay filled in
the new timeline, listed as "kept", while their fill media is there and still made from the same
frames (a gap named again is filled again, and that fill replaces the earlier one). When the
timeline reads differently since (the file changed, another --rate or --map), the earlier fills
are not kept, and a note says which gaps to name again.

examples:
  chronoscope fill cut.otio --gap V1:2 -o out/
  chronoscope fill cut.otio --gap all --model flow --codec h264 -o out/ --json
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("timeline", type=Path, help="the timeline file")
    parser.add_argument(
        "--gap",
        action="append",
        required=True,
        metavar="TRACK:INDEX",
        help="the gap to fill, e.g. V1:2 (repeatable), or all",
    )
    parser.add_argument("-o", "--outdir", type=Path, required=True, help="folder for the media and timeline")
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
        "--map", action="append", default=[], metavar="FROM=TO", help="remap a media path prefix (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    if args.model is not None:
        check_backend_name(args.model)
    summary = fill_gaps(
        args.timeline,
        args.outdir,
        gaps=args.gap,
        model=args.model,
        codec=args.codec,
        quality=args.quality,
        path_map=PathMap.from_strings(args.map) if args.map else None,
        rate=args.rate,
    )
    if args.json:
        sys.stdout.write(json.dumps(summary.to_dict()) + "\n")
    else:
        for gap in summary.gaps:
            where = f"{gap.track}:{gap.index_in_track} ({gap.frames} frames)"
            if gap.done:
                notes = f"; {'; '.join(gap.notes)}" if gap.notes else ""
                done = f" ({gap.reason})" if gap.status in ("resumed", "kept") else ""
                verb = "kept" if gap.status == "kept" else "filled"
                check = to_check_suffix(gap.to_check_runs, of="the fill", at=gap.to_check_at)
                sys.stdout.write(
                    f"{verb} {where} between {gap.before_clip} and {gap.after_clip}, "
                    f"risk max {max(gap.risk, default=0.0):.2f}{check}: {gap.output}{done}{notes}\n"
                )
            else:
                sys.stdout.write(f"not filled {where}: {gap.reason}\n")
        for note in summary.notes:
            sys.stdout.write(f"note: {note}\n")
        counts = summary.to_dict()["counts"]
        kept = f"{counts['kept']} kept from an earlier fill, " if counts["kept"] else ""
        sys.stdout.write(
            f"{counts['filled']} filled, {counts['resumed']} skipped (already rendered), {kept}"
            f"{counts['not_filled']} not filled; new timeline: {summary.timeline_path}\n"
        )
        if summary.editor_timeline_path:
            note = f"; {summary.editor_timeline_note}" if summary.editor_timeline_note else ""
            sys.stdout.write(f"the same for the editor: {summary.editor_timeline_path}{note}\n")
        elif summary.editor_timeline_note:
            sys.stdout.write(f"not written for the editor: {summary.editor_timeline_note}\n")
    for gap in summary.gaps:
        if not gap.done:
            print(
                f"chronoscope fill: gap {gap.track}:{gap.index_in_track} not filled: {gap.reason}",
                file=sys.stderr,
            )
    return 0 if summary.ok else 1
