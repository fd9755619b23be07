"""``--sequence-rate`` and ``--still``, for the commands that read one clip (probe, detect,
retime, repair): CLIP may name an image sequence, one file per frame, read at the rate given
(``engine.media.sequence``).

An image that is one frame of a numbered sequence of two or more frames, named without either
option, is refused, naming the sequence: read as it is it would be a one-frame clip at a rate
FFmpeg invents (25 fps), which is rarely what was meant. ``--sequence-rate`` reads the sequence,
``--still`` that one image alone (as the preview app asks: the sequence, or only this image).

A sequence with a hole (a frame file missing) is refused where a command reads it whole; repair
takes it with its holes (``fill_holes``: each missing frame is a dropped frame it fills), and
retime takes a range on either side of a hole (``clip_and_range``)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from engine.errors import CorruptMediaError, FrameOutOfRangeError, UnsupportedOptionError
from engine.media.rates import parse_frame_rate
from engine.media.sequence import (
    IMAGE_SUFFIXES,
    ImageSequence,
    describe,
    find_sequence,
    find_sequence_runs,
)

_PRINTF_NUMBER = re.compile(r"%0?\d*d")


def add_sequence_rate_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--sequence-rate FPS`` and ``--still`` (see ``clip_as_media``)."""
    parser.add_argument(
        "--sequence-rate",
        default=None,
        metavar="FPS",
        help="read CLIP as an image sequence (one file per frame: DPX, EXR, TIFF, PNG, JPEG) at FPS "
        "(24, 23.976 or 24000/1001): CLIP names one of its frames (A001.1001.dpx) or the pattern "
        "(A001.####.dpx or A001.%%04d.dpx); frames are counted from the sequence's first, as 0",
    )
    parser.add_argument(
        "--still",
        action="store_true",
        help="read CLIP as one still image even where it is a frame of a numbered image sequence "
        "(without this or --sequence-rate, such a frame is refused)",
    )


def _is_pattern(clip: Path) -> bool:
    return not clip.exists() and ("#" in clip.name or bool(_PRINTF_NUMBER.search(clip.name)))


def _checked(args: argparse.Namespace) -> tuple[Path, str | None]:
    """CLIP and the ``--sequence-rate`` text, with conflicting options refused up front."""
    clip = Path(args.clip)
    rate_text = getattr(args, "sequence_rate", None)
    still = bool(getattr(args, "still", False))
    if still and rate_text is not None:
        raise UnsupportedOptionError(
            "--still reads CLIP as one image and --sequence-rate reads the image sequence it belongs "
            "to; give one of them"
        )
    if still and _is_pattern(clip):
        raise UnsupportedOptionError(
            f"{clip} names an image sequence, not one image; --still needs a frame's own file name"
        )
    if rate_text is None and _is_pattern(clip):
        raise UnsupportedOptionError(
            f"{clip} names an image sequence: give its frame rate with --sequence-rate (e.g. 24)"
        )
    if rate_text is None and not still:
        _refuse_one_frame_of_a_sequence(clip)
    return clip, rate_text


def _refuse_one_frame_of_a_sequence(clip: Path) -> None:
    """Refuse an image that is one frame of a numbered sequence of two or more frames."""
    if clip.suffix.lower() not in IMAGE_SUFFIXES or not clip.is_file():
        return
    try:
        sequence = find_sequence_runs(clip, parse_frame_rate("24"))  # the rate is not looked at
    except UnsupportedOptionError:  # no frame number in its name: a still
        return
    present = sequence.span_frames - len(sequence.missing())
    if present < 2:
        return
    raise UnsupportedOptionError(
        f"{clip.name} is one frame of the image sequence {sequence.folder / sequence.display_name} "
        f"({_frames_text(sequence)}); read alone it would be a one-frame clip: add --sequence-rate FPS "
        "(e.g. 24) to read the sequence as a clip, or --still to read only this image"
    )


def _frames_text(sequence: ImageSequence) -> str:
    """``frames 1001-1048, 48 in all`` (``..., 47 present: 1010 missing`` with holes)."""
    span = f"frames {sequence.first}-{sequence.final}"
    missing = sequence.missing()
    if not missing:
        return f"{span}, {sequence.count} in all"
    return f"{span}, {sequence.span_frames - len(missing)} present: {_numbers_text(missing)} missing"


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
