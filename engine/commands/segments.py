"""``chronoscope segments``: list a timeline's clips with their time warps and time maps, and its gaps."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.commands.argtypes import frame_rate
from engine.errors import InvalidTimeWarpError
from engine.fsutil import check_plain_destination, write_text_atomic
from engine.render.edl_rate import read_edl_at_media_rate
from engine.timeline import (
    PathMap,
    Segment,
    check_media,
    fraction_text,
    list_gaps,
    list_segments,
    media_base_dir,
    require_media,
    time_map,
    timeline_rate,
)
from engine.timeline.items import track_labels

NAME = "segments"
HELP = "list a timeline's clips with their speed changes and source frames, and its gaps"
DESCRIPTION = """\
Reads an OTIO timeline (.otio, .otioz, .otiod), an EDL (.edl), FCP 7 XML (.xml) or FCPX XML
(.fcpxml) and lists every clip on its top-level tracks: track, position and length on the timeline,
combined time warp (LinearTimeWarp scalars multiplied; a FreezeFrame, or a LinearTimeWarp of
scalar 0 as OTIO writes an EDL freeze, holds its first frame), and
the source frames the first and last timeline frames show. Frames are counted exactly in the
timeline's rate (24000/1001 stays 24000/1001). Gaps are listed in their place too, numbered as
`chronoscope fill --gap TRACK:INDEX` takes them ("V1   #2   gap  rec 35+3 @ 24  (fill --gap
V1:2)" for a gap between two video clips, which fill can fill; "gaps" in --json); transitions
are not listed, but count in INDEX. `render --clip` takes a clip's TRACK:INDEX the same way.

Exit status 1 when a clip has a time warp that cannot be rendered (negative, NaN, infinite, or
a time effect other than LinearTimeWarp and FreezeFrame).

examples:
  chronoscope segments cut.otio
  chronoscope segments cut.otio --json --output segments.json
  chronoscope segments reel1.edl --rate 23.976
  chronoscope segments cut.otio --map 'C:\\Footage=/mnt/footage' --require-media
"""

EXIT_BAD_TIME_WARP = 1


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("timeline", type=Path, help="timeline file: .otio .otioz .otiod .edl .xml .fcpxml")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--output", type=Path, help="write the listing to this file instead of stdout")
    parser.add_argument(
        "--rate",
        type=frame_rate,
        help="frame rate of an EDL (EDLs do not say; default 24, or 23.976 when its media run at that)",
    )
    parser.add_argument("--name", help="which timeline, when the file holds several")
    parser.add_argument(
        "--map",
        action="append",
        default=None,
        metavar="OLD=NEW",
        help="replace a media path prefix, e.g. 'C:\\Footage=/mnt/footage' (repeatable)",
    )
    parser.add_argument(
        "--require-media", action="store_true", help="fail (status 2) when any clip's media file is missing"
    )


def run(args: argparse.Namespace) -> int:
    path_map = PathMap.from_strings(args.map or [])
    if args.output:
        check_plain_destination(args.output, inputs=[args.timeline])
    timeline = read_edl_at_media_rate(args.timeline, args.rate, path_map, name=args.name)
    base_dir = media_base_dir(args.timeline)
    if args.require_media:
        require_media(timeline, base_dir=base_dir, path_map=path_map)
    segments = list_segments(timeline, base_dir=base_dir, path_map=path_map, check_time_warps=False)
    absent = check_media(timeline, base_dir=base_dir, path_map=path_map)
    missing = {(m.track, m.index_in_track) for m in absent}
    rows = [_row(segment, (segment.track_label, segment.index_in_track) in missing) for segment in segments]
    gaps = [gap.to_dict() for gap in list_gaps(timeline)]
    if args.json:
        listing = {"timeline": str(args.timeline), "name": timeline.name, "segments": rows, "gaps": gaps}
        text = json.dumps(listing, indent=2)
    else:
        order = list(track_labels(timeline))
        text = _table(timeline.name, rows, gaps, order, fraction_text(timeline_rate(timeline)))
    if args.output:
        write_text_atomic(args.output, text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return EXIT_BAD_TIME_WARP if any(row["time_warp_problem"] for row in rows) else 0


def _row(segment: Segment, media_missing: bool) -> dict[str, Any]:
    row = segment.to_dict()
    row["media_missing"] = media_missing
    try:
        row["time_map"] = time_map(segment).to_dict()
    except InvalidTimeWarpError:
        row["time_map"] = None
    return row


def _frames_text(mapped: dict[str, Any]) -> str:
    """``86547`` on a source frame, ``86547+1/2`` between two."""
    return str(mapped["source_frame"]) if mapped["exact"] else f"{mapped['source_frame']}+{mapped['phase']}"


def _table(
    name: str, rows: list[dict[str, Any]], gaps: list[dict[str, Any]], timeline_order: list[str], rate: str
) -> str:
    """One line per clip and per gap, track by track (in ``timeline_order``), in their places."""
    counted = f", {len(gaps)} gap{'s' if len(gaps) != 1 else ''}" if gaps else ""
    lines = [f"timeline {name!r}: {len(rows)} clips{counted}"]
    items = sorted(
        [(row, "clip") for row in rows] + [(gap, "gap") for gap in gaps],
        key=lambda pair: (timeline_order.index(pair[0]["track"]), pair[0]["index_in_track"]),
    )
    for row, kind in items:
        where = f"{row['track']:<4} #{row['index_in_track']:<3}"
        if kind == "gap":
            position = f"rec {row['record_start_frames']}+{row['record_frames']} @ {rate}"
            fillable = row["between_clips"] and row["track"].startswith("V")
            lines.append(f"{where} gap  {position}" + (f"  (fill --gap {row['item']})" if fillable else ""))
            continue
        position = f"rec {row['record_start_frames']}+{row['record_frames']} @ {row['timeline_rate']}"
        mapping = row["time_map"]
        if mapping is None:
            speed = f"time warp: {row['time_warp_problem']}"
        else:
            speed = "freeze" if mapping["freeze_frame"] else f"speed {mapping['time_scalar']}"
            if mapping["output_frames"]:
                speed += f"  src {_frames_text(mapping['first'])} -> {_frames_text(mapping['last'])}"
            needed = mapping["needed_source_frames"]
            if needed and mapping["needs_handles"]:
                state = {True: "present", False: "MISSING", None: "unknown"}[mapping["handles_available"]]
                speed += f"  needs {needed[0]}..{needed[1]} (handles {state})"
        media = row["image_sequence"] or row["media_path"] or row["target_url"] or row["media_kind"]
        if row["media_missing"]:
            media += " (not found)"
        lines.append(f"{where} {row['clip_name']}  {position}  {speed}  {media}")
    return "\n".join(lines)
