"""``--sequence-rate``, for the commands that read one clip (probe, detect, retime, repair): CLIP
may name an image sequence, one file per frame, read at the rate given (``engine.media.sequence``)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from engine.errors import UnsupportedOptionError
from engine.media.rates import parse_frame_rate
from engine.media.sequence import describe, find_sequence

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


def clip_as_media(args: argparse.Namespace) -> Path:
    """The media file the command reads for ``args.clip``: the clip itself, or, with
    ``--sequence-rate``, the description of the image sequence it names."""
    clip = Path(args.clip)
    rate_text = getattr(args, "sequence_rate", None)
    if rate_text is None:
        if not clip.exists() and ("#" in clip.name or _PRINTF_NUMBER.search(clip.name)):
            raise UnsupportedOptionError(
                f"{clip} names an image sequence: give its frame rate with --sequence-rate (e.g. 24)"
            )
        return clip
    return describe(find_sequence(clip, parse_frame_rate(rate_text)))
