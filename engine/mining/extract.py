"""``--extract``: each accepted segment as its own clip, conformed to its capture rate.

Conforming keeps every frame and changes only the rate: a 240 fps capture stored at 30 fps
(8x slow motion) becomes a 240 fps file of the same frames, which plays in real time and which a
training pipeline can resample as it likes. Lossless FFV1 in Matroska by default; any codec of
``engine.media.CODECS`` on request. Written through a temporary name: a killed run leaves no
half clip under the final name.
"""

from __future__ import annotations

import hashlib
import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

from engine.errors import UnsupportedOptionError
from engine.media import CODECS, FrameReader, VideoWriter, codec_choices
from engine.mining.storage import CachePolicy, local_copy

log = logging.getLogger(__name__)

DEFAULT_CODEC = "ffv1"
CLIPS_FOLDER = "clips"


def check_codec(codec: str) -> str:
    """``codec`` when this PyAV build can write it; otherwise an error listing what works."""
    available = codec_choices()
    if codec not in available:
        raise UnsupportedOptionError(
            f"codec {codec!r} is not available; choose one of: {', '.join(sorted(available))}"
        )
    return codec


def clip_name(source: str, content_hash: str, segment_index: int, conform_rate: Fraction, codec: str) -> str:
    """A stable file name: source stem, a short hash of path and content, segment, rate."""
    tag = hashlib.sha256(f"{source}\n{content_hash}".encode()).hexdigest()[:10]
    rate = f"{float(conform_rate):g}".replace(".", "p")
    suffix = CODECS[codec].suffixes[0]
    return f"{Path(source).stem}-{tag}-s{segment_index:03d}-{rate}fps{suffix}"


def extract_segment(
    source: str,
    start_frame: int,
    end_frame: int,
    conform_rate: str,
    destination: str,
    codec: str,
    content_hash: str = "",
    cache: CachePolicy | None = None,
) -> dict[str, Any]:
    """Write frames ``[start_frame, end_frame)`` of ``source`` to ``destination`` at ``conform_rate``.

    Arguments are plain strings and numbers (this runs as a pool or Ray task); a URL source is
    read through a local copy (``engine.mining.storage.local_copy``, by ``content_hash`` and the
    cache policy). Returns the clip's frame count and rate; raises ``MediaWriteError`` or a
    reading error on failure.
    """
    rate = Fraction(conform_rate)
    if rate <= 0:
        raise UnsupportedOptionError(f"conform rate {conform_rate} fps is not positive")
    count = 0
    with (
        local_copy(source, content_hash, cache or CachePolicy()) as path,
        FrameReader(path, strict=False) as reader,
        VideoWriter(Path(destination), rate=rate, codec=codec) as writer,
    ):
        for frame in reader.frames(start_frame, end_frame):
            writer.write(frame.image)
            count += 1
    if count == 0:
        raise UnsupportedOptionError(f"{source}: frames {start_frame}-{end_frame - 1} gave nothing to write")
    log.debug(
        "extracted %s frames %d-%d to %s at %s fps", source, start_frame, end_frame - 1, destination, rate
    )
    return {"frames": count, "rate": conform_rate}
