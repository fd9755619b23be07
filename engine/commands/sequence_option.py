"""``--sequence-rate``, for the commands that read one clip (probe, detect, retime, repair): CLIP
may name an image sequence, one file per frame, read at the rate given (``engine.media.sequence``).

A sequence with a hole (a frame file missing) is refused where a command reads it whole; repair
takes it with its holes (``fill_holes``: each missing frame is a dropped frame it fills), and
retime takes a range on either side of a hole (``clip_and_range``)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from engine.errors import CorruptMediaError, FrameOutOfRangeError, UnsupportedOptionError
from engine.media.rates import parse_frame_rate
from engine.media.sequence import describe, find_sequence, find_sequence_runs

_PRINTF_NUMBER = re.compile(r"%0?\d*d")


def add_sequence_rate_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--sequence-rate FPS`` (see ``clip_as_media``)."""
    parser.add_argument(
        "--sequence-rate",
        default=None,
        metavar="FPS",
        help="read CLIP as an image sequence (one file per frame: DPX, EXR, TIFF, PNG, JPEG) at FPS "
        "(24, 23.976 or 24000/1001): CLIP names one of its frames (A001.1001.dpx) or the pattern "
        "(A001.####.dpx or A001.%%04d.dpx); frames are counted from the sequence's first, as 0",
    )


def _checked(args: argparse.Namespace) -> tuple[Path, str | None]:
    """CLIP and the ``--sequence-rate`` text; a pattern without a rate is refused."""
    clip = Path(args.clip)
    rate_text = getattr(args, "sequence_rate", None)
    if rate_text is None and not clip.exists() and ("#" in clip.name or _PRINTF_NUMBER.search(clip.name)):
        raise UnsupportedOptionError(
            f"{clip} names an image sequence: give its frame rate with --sequence-rate (e.g. 24)"
        )
    return clip, rate_text


def _numbers_text(numbers: list[int], *, limit: int = 6) -> str:
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    parts = [str(a) if a == b else f"{a}-{b}" for a, b in runs[:limit]]
    if len(runs) > limit:
        parts.append(f"and {len(runs) - limit} more")
    return ", ".join(parts)


def clip_as_media(args: argparse.Namespace, *, fill_holes: bool = False) -> Path:
    """The media file the command reads for ``args.clip``: the clip itself, or, with
    ``--sequence-rate``, the description of the image sequence it names. A sequence with a hole is
    refused, naming the missing frames, unless ``fill_holes`` (repair: the description lists the
    runs between holes, ``engine.media.sequence.find_sequence_runs``)."""
    clip, rate_text = _checked(args)
    if rate_text is None:
        return clip
    rate = parse_frame_rate(rate_text)
    if fill_holes:
        return describe(find_sequence_runs(clip, rate))
    return describe(find_sequence(clip, rate))


def clip_and_range(
    args: argparse.Namespace, source_range: tuple[int | None, int | None] | None
) -> tuple[Path, tuple[int | None, int | None] | None, int]:
    """``(media, range, frame_base)`` for a command that reads a range of CLIP (retime's --in and
    --out): for an image sequence with holes, the unbroken run of frames the range lies in, the
    range counted in that run, and where the run starts in the sequence (frames counted from the
    sequence's first, as 0); for anything else ``clip_as_media``, the range as given and 0.

    A range that crosses a hole is refused, naming the missing frames and the ranges on either
    side of it."""
    clip, rate_text = _checked(args)
    if rate_text is None:
        return clip, source_range, 0
    sequence = find_sequence_runs(clip, parse_frame_rate(rate_text))
    if not sequence.later_runs:
        return describe(sequence), source_range, 0
    span = sequence.span_frames
    in_frame, out_frame = source_range if source_range is not None else (None, None)
    in_frame = 0 if in_frame is None else in_frame
    out_frame = span if out_frame is None else out_frame
    if not 0 <= in_frame < out_frame <= span:
        raise FrameOutOfRangeError(
            f"frames {in_frame} to {out_frame} (out exclusive) are not a range of image sequence "
            f"{sequence.folder / sequence.display_name}: it has frames 0 to {span - 1} "
            f"(counted from its first, {sequence.first}, as 0)"
        )
    runs = [(run, run.first - sequence.first) for run in sequence.runs()]
    for run, start in runs:
        if start <= in_frame and out_frame <= start + run.count:
            return describe(run), (in_frame - start, out_frame - start), start
    missing = [n for n in sequence.missing() if in_frame <= n - sequence.first < out_frame]
    sides = ", ".join(
        f"--in {max(start, in_frame)} --out {min(start + run.count, out_frame)}"
        for run, start in runs
        if start < out_frame and start + run.count > in_frame
    )
    files = _numbers_text(missing)
    raise CorruptMediaError(
        f"image sequence {sequence.folder / sequence.display_name} lacks {sequence.frame_name(missing[0])}"
        f"{f' and more (numbers {files})' if len(missing) > 1 else ''}: frame"
        f"{'s' if len(missing) > 1 else ''} {_numbers_text([n - sequence.first for n in missing])} "
        f"(counted from its first, {sequence.first}, as 0) of the range {in_frame} to {out_frame - 1} "
        f"asked for; retime a range on one side of the hole ({sides}), or fill it first: "
        "`chronoscope repair` fills a missing frame as a dropped one, and its output can be retimed whole"
    )
