"""The options every command that renders whole clips shares (retime, repair, render, fill):
which synthesis model, which codec, at what quality."""

from __future__ import annotations

import argparse

from engine.interp import clip_model_help
from engine.media import codec_choices


def add_clip_output_options(parser: argparse.ArgumentParser, *, codec_default: str | None) -> None:
    """Add ``--model``, ``--codec`` and ``--quality``; ``codec_default`` None: from the output's suffix."""
    parser.add_argument("--model", default=None, metavar="M", help=clip_model_help())
    default_text = codec_default if codec_default else "from OUT's suffix"
    parser.add_argument(
        "--codec",
        choices=sorted(codec_choices()),
        default=codec_default,
        help=f"output codec (default {default_text})",
    )
    parser.add_argument(
        "--quality", type=int, default=None,
        help="codec quality: the CRF of h264 and h265 (lower is better); the other codecs take none",
    )
