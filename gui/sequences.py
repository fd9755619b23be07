"""Numbered image sequences opened in the app: one frame file named, the whole run read as a clip.

A file opened from the command line, File ▸ Open or a drop that is one frame of a numbered run of
two or more (``003.png`` beside ``000.png`` .. ``014.png``; ``A001.1001.dpx``) can be the clip the
editor means. The app asks whether to open the run, and at which rate (a sequence has none), then
opens the sequence's description (``engine.media.sequence.describe``): a file every reader of the
project, the engine's requests included, reads as those frames, frame 0 being the run's first. A
lone image, or one without a frame number, stays a still.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

from engine.errors import CorruptMediaError, UnsupportedOptionError
from engine.media.rates import parse_frame_rate
from engine.media.sequence import (
    IMAGE_SUFFIXES,
    ImageSequence,
    describe,
    find_sequence_runs,
    is_description,
    read_description,
)

OPEN_ONE_FRAME = "one frame"
"""What a sequence question answers for "open only the file named", as a still image."""
_PATTERN = re.compile(r"#|%0?\d*d")


def is_pattern(path: Path) -> bool:
    """``A001.####.dpx`` or ``A001.%04d.dpx`` (not an existing file)."""
    path = Path(path)
    return not path.exists() and bool(_PATTERN.search(path.name))


def sequence_around(path: Path) -> ImageSequence | None:
    """The numbered sequence of two or more frames the image file ``path`` is one of (or the
    pattern names), at a placeholder rate of 24, holes and all (``find_sequence_runs``); None for
    a lone image, one without a frame number or a file that is no image."""
    path = Path(path)
    if not is_pattern(path) and path.suffix.lower() not in IMAGE_SUFFIXES:
        return None
    try:
        sequence = find_sequence_runs(path, Fraction(24))
    except UnsupportedOptionError:  # no frame number in the name
        return None
    present = sequence.span_frames - len(sequence.missing())
    return sequence if present >= 2 or is_pattern(path) else None


def sequence_media(path: Path, rate: Fraction) -> Path:
    """The description of the sequence ``path`` belongs to, read at ``rate``: what the app opens
    and what the engine's requests name. A sequence with holes is described with its runs
    (``gui.frames`` shows them all; ``run_range`` says what a render of a range reads)."""
    return describe(find_sequence_runs(Path(path), Fraction(rate)))


def run_range(media: Path, in_frame: int, out_frame: int) -> tuple[Path, int, int]:
    """What a render of ``in_frame`` to ``out_frame`` (out exclusive, counted from the sequence's
    first frame) of ``media`` reads: for a sequence with holes, the description of the unbroken run
    the range lies in and the range counted in that run (as ``chronoscope retime`` does); anything
    else as given. A range across a hole is refused, naming the missing frames."""
    media = Path(media)
    if not is_description(media):
        return media, in_frame, out_frame
    sequence = read_description(media)
    if not sequence.later_runs:
        return media, in_frame, out_frame
    for run in sequence.runs():
        start = run.first - sequence.first
        if start <= in_frame and out_frame <= start + run.count:
            return describe(run), in_frame - start, out_frame - start
    missing = [n for n in sequence.missing() if in_frame <= n - sequence.first < out_frame]
    names = ", ".join(sequence.frame_name(n) for n in missing[:4])
    raise CorruptMediaError(
        f"frames {in_frame} to {out_frame - 1} of {sequence.display_name} cross the missing {names}; "
        "render a range on one side of it, or fill it first with `chronoscope repair`"
    )


def sequence_rate(text: str) -> Fraction:
    """``--sequence-rate`` text (24, 23.976, 24000/1001) as an exact rate."""
    return Fraction(parse_frame_rate(text))


def output_stem(media: Path) -> str:
    """The name to give a render of ``media``: a sequence's file prefix (``A001``), or its
    folder's name when the frames are numbers only; the file's stem otherwise."""
    media = Path(media)
    if not is_description(media):
        return media.stem
    sequence = read_description(media)
    return sequence.prefix.strip("._- ") or sequence.folder.name or media.stem
