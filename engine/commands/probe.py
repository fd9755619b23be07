"""``chronoscope probe``: what a clip holds, as a short table or as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

from engine.commands.sequence_option import add_sequence_rate_option, clip_as_media
from engine.errors import UnsupportedOptionError
from engine.fsutil import check_plain_destination, write_text_atomic
from engine.media import MediaInfo, VideoStreamInfo, probe
from engine.media.frame_slots import FrameSlots, clip_grid
from engine.media.sequence import read_description
from engine.media.timecode import start_timecode

NAME = "probe"
HELP = "describe a clip: streams, exact frame rate and count, VFR, rotation, capture-rate tags"
DESCRIPTION = """\
Reads the container and demuxes every video packet (no decoding) to give the exact frame count,
frame times and whether the frame rate is variable. Rates are exact fractions (30000/1001, not
29.97). Capture-rate evidence is listed where the container has it: the Android
com.android.capture.fps tag, Apple QuickTime tags, and a stream rate of 100 fps or more.

--json prints the full description as JSON (fractions as "num/den" text); with --output FILE it
is written to FILE instead (through a temporary name, renamed when complete). For an image
sequence (--sequence-rate), "path" is CLIP as given, "image_sequence" the frames read and
"size_bytes" their total.

examples:
  chronoscope probe clip.mp4
  chronoscope probe clip.mp4 --json
  chronoscope probe clip.mp4 --json --output out/clip.probe.json
  chronoscope probe --quick big-archive.mov
"""


COLOR_PRIMARIES = {
    1: "BT.709",
    5: "BT.601 PAL",
    6: "BT.601 NTSC",
    9: "BT.2020",
    11: "DCI-P3",
    12: "Display P3",
}
COLOR_TRANSFERS = {
    1: "BT.709",
    6: "BT.601",
    8: "linear",
    13: "sRGB",
    14: "BT.2020",
    16: "PQ (HDR10)",
    18: "HLG",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clip", type=Path, metavar="CLIP", help="the media file to describe")
    add_sequence_rate_option(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--output", type=Path, metavar="FILE", help="write the JSON to FILE (needs --json)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="trust the container's headers instead of scanning packets (faster on huge files, less exact)",
    )


def run(args: argparse.Namespace) -> int:
    if args.output is not None and not args.json:
        raise UnsupportedOptionError("--output writes JSON; add --json")
    if args.output is not None:
        check_plain_destination(args.output, inputs=[args.clip])
    media = clip_as_media(args)
    info = _as_given(probe(media, scan_packets=not args.quick), args.clip, media)
    if args.json:
        text = json.dumps(info.to_dict(), indent=2) + "\n"
        if args.output is not None:
            write_text_atomic(args.output, text)
        else:
            sys.stdout.write(text)
        return 0
    sys.stdout.write(format_table(info))
    return 0


def _as_given(info: MediaInfo, clip: Path, media: Path) -> MediaInfo:
    """``info`` as the user knows the clip: for an image sequence, the path is CLIP as given (the
    pattern or a frame's name; the frames read are in ``image_sequence``) and ``size_bytes`` the
    frames' total, not the engine's internal description file (a 286-byte .chronoseq in its cache)."""
    if not info.image_sequence:
        return info
    sequence = read_description(media)
    numbers = [number for run in sequence.runs() for number in range(run.first, run.last + 1)]
    size = sum(sequence.frame_path(number).stat().st_size for number in numbers)
    return replace(info, path=Path(clip), size_bytes=size)


def _rate_text(rate: Fraction | None) -> str:
    if rate is None:
        return "-"
    if rate.denominator == 1:
        return f"{rate.numerator} fps"
    return f"{rate.numerator}/{rate.denominator} ({float(rate):.3f}) fps"


def _seconds_text(seconds: Fraction | None) -> str:
    return "-" if seconds is None else f"{float(seconds):.3f} s"


def _video_rows(video: VideoStreamInfo, *, still: bool = False) -> list[tuple[str, str]]:
    """The rows of one video stream; ``still``: one image, whose rate and duration are FFmpeg's
    defaults (25 fps, 0.040 s), not the file's."""
    rate = _rate_text(video.frame_rate) + f"  [{video.sources.get('frame_rate', '?')}]"
    rows = [
        (f"video #{video.index}", f"{video.codec} {video.profile or ''}".strip()),
        ("  size", f"{video.width}x{video.height}"),
        ("  pixels", f"{video.pixel_format}, {video.bit_depth}-bit{', alpha' if video.has_alpha else ''}"),
        ("  frame rate", "-  (a still image has none)" if still else rate),
        ("  frames", f"{video.frame_count}  [{video.sources.get('frame_count', '?')}]"),
        ("  duration", "-" if still else _seconds_text(video.duration_s)),
        ("  time base", f"{video.time_base.numerator}/{video.time_base.denominator}"),
    ]
    if still:
        pass  # one image: no frame intervals to vary
    elif video.sources.get("is_vfr", "").startswith("not checked"):
        rows.append(("  variable rate", "not checked (--quick reads the headers only)"))
    elif video.is_vfr:
        rows.append(
            (
                "  variable rate",
                f"yes: frame intervals {_seconds_text(video.min_frame_interval_s)}"
                f" to {_seconds_text(video.max_frame_interval_s)}",
            )
        )
    else:
        rows.append(("  variable rate", "no"))
    if video.rotation_deg:
        rows.append(("  rotation", f"{video.rotation_deg} degrees  [{video.sources.get('rotation_deg')}]"))
    if video.sample_aspect_ratio and video.sample_aspect_ratio != 1:
        sar = video.sample_aspect_ratio
        rows.append(("  pixel aspect", f"{sar.numerator}:{sar.denominator} (anamorphic)"))
    if video.color_primaries or video.color_transfer:
        primaries = _code_text(COLOR_PRIMARIES, video.color_primaries)
        transfer = _code_text(COLOR_TRANSFERS, video.color_transfer)
        rows.append(("  colour", f"primaries {primaries}, transfer {transfer}"))
    if video.interlaced:
        rows.append(("  interlaced", "yes (fields): retime, repair and render merge them (bwdif)"))
    if video.truncated:
        rows.append(("  truncated", f"yes: {video.truncation_reason()}"))
    capture = video.capture
    if capture.capture_fps is not None:
        rows.append(("  capture rate", f"{_rate_text(capture.capture_fps)}  [{capture.capture_fps_source}]"))
    if capture.high_frame_rate_stream:
        rows.append(("  high frame rate", "yes (stream rate of 100 fps or more)"))
    for key, value in capture.hints.items():
        rows.append(("  tag", f"{key} = {value}"))
    return rows


def _code_text(names: dict[int, str], code: int | None) -> str:
    """A colour code's name, 'unspecified' when the file gives none, the code when it is unknown."""
    if code is None:
        return "unspecified"
    return names.get(code, f"code {code}")


def _is_still(info: MediaInfo, video: VideoStreamInfo) -> bool:
    """One image read through FFmpeg's image demuxers (png_pipe, image2), not a one-frame clip."""
    return (
        video.frame_count == 1
        and (info.container_format.endswith("_pipe") or info.container_format == "image2")
        and not info.image_sequence
    )


def _grid_text(grid: FrameSlots) -> str:
    """How retime and the preview app place a variable-frame-rate clip's frames."""
    return (
        f"{grid.slot_count} frames at {_rate_text(grid.rate)} by timestamps"
        f" ({grid.empty_slots} made where frames are missing, {grid.frames_left_out} left out)"
    )


def format_table(info: MediaInfo) -> str:
    """The human-readable description: one "name  value" line each."""
    rows = [
        ("file", str(info.path)),
        *([("sequence", info.image_sequence)] if info.image_sequence else []),
        ("container", f"{info.container_format} ({info.container_long_name})"),
        ("duration", _seconds_text(info.duration_s)),
    ]
    timecode = start_timecode(info)
    if timecode:
        rows.append(("timecode", f"{timecode} (the first frame's)"))
    for video in info.video:
        rows.extend(_video_rows(video, still=_is_still(info, video)))
        if video.is_vfr and video.index == info.video_stream.index:
            rows.append(("  retime grid", _grid_text(clip_grid(info.path, video))))
    for audio in info.audio:
        rows.append(
            (
                f"audio #{audio.index}",
                f"{audio.codec}, {audio.sample_rate} Hz, {audio.channels} ch ({audio.layout})",
            )
        )
    width = max(len(name) for name, _ in rows)
    return "".join(f"{name:<{width}}  {value}\n" for name, value in rows)
