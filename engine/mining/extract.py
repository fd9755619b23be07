"""``--extract``: each accepted segment as its own clip, conformed to its capture rate.

Conforming keeps every frame and changes only the rate: a 240 fps capture stored at 30 fps
(8x slow motion) becomes a 240 fps file of the same frames, which plays in real time and which a
training pipeline can resample as it likes. Lossless FFV1 in Matroska by default; any codec of
``engine.media.CODECS`` on request. Matroska counts time in milliseconds, so clips above
``MATROSKA_MAX_FPS`` (a high-speed camera's frames) need a codec written in .mov or .mp4, or PNG
frames: ``rate_refusal`` says so, naming them. Written through a temporary name: a killed run leaves no
half clip under the final name.

Timing is the point of such a clip, so frame ``k`` of the clip is always frame
``start_frame + k`` of the source. Where the source's frames cannot be decoded (a damaged or
missing packet, pictures the decoder concealed after it, a file that ends early) the clip is cut
just before the damage when at least ``MIN_CLIP_FRAMES`` good frames precede it, and refused
otherwise; either way the result says why (``cut``, ``refused``), and the manifest records it.
A source that is not there (moved or deleted) gives ``missing`` instead of an error, so that it
is not retried within the run. A local source whose content hash is no longer the one its rows
were mined from (the file was replaced or touched since) gives ``changed``, and no clip: the
frames of the new content would stand under the old rows' hash. The next run mines it again.

Clip names are ``{source stem}-{10 hex digits of sha256(source, hash)}-s{segment}-{rate}fps{suffix}``,
the stem cut short (whole UTF-8 characters) where the name would pass ``CLIP_NAME_MAX_BYTES``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

from engine.errors import MediaNotFoundError, UnsupportedOptionError
from engine.fsutil import MAX_NAME_BYTES
from engine.media import CODECS, FrameReader, VideoWriter, codec_choices
from engine.media.writer import MATROSKA_MAX_FPS
from engine.mining.sources import content_hash as local_content_hash
from engine.mining.storage import CachePolicy, local_copy, url_protocol

log = logging.getLogger(__name__)

DEFAULT_CODEC = "ffv1"
CLIPS_FOLDER = "clips"
MIN_CLIP_FRAMES = 16
"""A clip cut short by damage in its source is kept when it has at least this many frames."""
CLIP_NAME_MAX_BYTES = MAX_NAME_BYTES - 8
"""The longest clip name: room is left for the number a clip retired under a taken name gets
(``NAME.2.SUFFIX``, ``engine.mining.dataset.retire_clip``)."""


class _DamagedSegment(Exception):
    """Internal: too few good frames before the damage; the clip being written is dropped."""


class _SourceChanged(Exception):
    """Internal: the source's content hash changed while its clip was written; the clip is dropped."""


def check_codec(codec: str) -> str:
    """``codec`` when this PyAV build can write it; otherwise an error listing what works."""
    available = codec_choices()
    if codec not in available:
        raise UnsupportedOptionError(
            f"codec {codec!r} is not available; choose one of: {', '.join(sorted(available))}"
        )
    return codec


def rate_refusal(codec: str, rate: Fraction) -> str | None:
    """Why clips at ``rate`` cannot be written as ``codec`` (its container cannot time their
    frames: Matroska counts milliseconds), naming the codecs that can; None when they can."""
    if CODECS[codec].suffixes[0] != ".mkv" or rate <= MATROSKA_MAX_FPS:
        return None
    working = sorted(name for name in codec_choices() if CODECS[name].suffixes[0] != ".mkv")
    return (
        f"{codec} clips are written in Matroska (.mkv), which counts time in milliseconds: at "
        f"{float(rate):g} fps several frames would share a timestamp and the clip would read back at "
        f"another rate; extract with --codec {' or '.join(working)}, which keep the rate exactly "
        "(png: lossless frames, the manifest keeps their rate)"
    )


def clip_name(source: str, content_hash: str, segment_index: int, conform_rate: Fraction, codec: str) -> str:
    """A stable file name: source stem, a short hash of path and content, segment, rate. A long
    stem is cut (whole characters) so that the name stays within ``CLIP_NAME_MAX_BYTES`` of UTF-8;
    the hash, segment and rate that make it unique are always whole."""
    tag = hashlib.sha256(f"{source}\n{content_hash}".encode("utf-8", "surrogateescape")).hexdigest()[:10]
    rate = f"{float(conform_rate):g}".replace(".", "p")
    suffix = CODECS[codec].suffixes[0]
    tail = f"-{tag}-s{segment_index:03d}-{rate}fps{suffix}"
    room = CLIP_NAME_MAX_BYTES - len(tail.encode("utf-8"))
    stem = re.sub(r"[._-]?#+", "", Path(source).stem)  # an image sequence's A001.####: A001
    return f"{_cut_to_bytes(stem, room)}{tail}"


def _cut_to_bytes(text: str, limit: int) -> str:
    """The longest start of ``text`` whose UTF-8 takes at most ``limit`` bytes (whole characters;
    undecodable bytes of a file name, kept as surrogates, count one byte each)."""
    kept, used = [], 0
    for character in text:
        size = len(character.encode("utf-8", "surrogateescape"))
        if used + size > limit:
            break
        kept.append(character)
        used += size
    return "".join(kept)


def source_change(source: str, content_hash: str) -> str | None:
    """Why a local source is no longer the content its rows were mined from (its content hash
    changed: replaced or touched since), or None when it is the same, or when that cannot be
    told here (a URL, no hash recorded). A source that is gone raises ``FileNotFoundError``."""
    if not content_hash or url_protocol(source) is not None:
        return None
    now = local_content_hash(source)
    if now == content_hash:
        return None
    return (
        f"{source} changed since it was mined (content hash {_short(content_hash)} is now {_short(now)}), "
        "so no clip is made from its new content under the old rows"
    )


def _short(digest: str) -> str:
    return digest.rpartition(":")[2][:12] or "(none)"


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
    cache policy). Returns ``frames``, ``rate`` and ``codec`` of the clip, with ``end_frame`` and
    ``cut`` (the reason) when damage cut it short; ``refused`` (the reason, no clip written) when
    fewer than ``MIN_CLIP_FRAMES`` good frames come before the damage; ``missing`` when the source
    is not there; ``changed`` (the reason, no clip written) when a local source's content hash is
    no longer ``content_hash``, checked before and after the frames are copied. Raises
    ``MediaWriteError`` or a reading error on other failures.
    """
    rate = Fraction(conform_rate)
    if rate <= 0:
        raise UnsupportedOptionError(f"conform rate {conform_rate} fps is not positive")
    try:
        changed = source_change(source, content_hash)
        if changed is not None:
            raise _SourceChanged(changed)
        with (
            local_copy(source, content_hash, cache or CachePolicy()) as path,
            FrameReader(path, strict=False) as reader,
            VideoWriter(Path(destination), rate=rate, codec=codec) as writer,
        ):
            count, damage = _copy_frames(reader, writer, start_frame, end_frame)
            if damage and count < MIN_CLIP_FRAMES:
                raise _DamagedSegment(damage)
            changed = source_change(source, content_hash)  # replaced while it was read
            if changed is not None:
                raise _SourceChanged(changed)
    except _SourceChanged as change:
        return {"changed": str(change), "rate": conform_rate, "codec": codec}
    except _DamagedSegment as refused:
        reason = f"{refused}: fewer than {MIN_CLIP_FRAMES} good frames before it, so no clip"
        log.warning("%s frames %d-%d: %s", source, start_frame, end_frame - 1, reason)
        return {"refused": reason, "rate": conform_rate, "codec": codec}
    except (MediaNotFoundError, FileNotFoundError) as error:
        return {"missing": f"{source} is not there any more ({error})", "rate": conform_rate, "codec": codec}
    result: dict[str, Any] = {"frames": count, "rate": conform_rate, "codec": codec}
    if damage:
        result["end_frame"] = start_frame + count
        result["cut"] = f"{damage}: the clip stops at frame {start_frame + count - 1}"
        log.warning("%s frames %d-%d: %s", source, start_frame, end_frame - 1, result["cut"])
    log.debug(
        "extracted %s frames %d-%d to %s at %s fps",
        source,
        start_frame,
        start_frame + count - 1,
        destination,
        rate,
    )
    return result


def _copy_frames(
    reader: FrameReader, writer: VideoWriter, start_frame: int, end_frame: int
) -> tuple[int, str]:
    """Copy frames in order until the first one that is missing or concealed; (count, damage)."""
    expected = start_frame
    for frame in reader.frames(start_frame, end_frame):
        if frame.index != expected:
            return expected - start_frame, f"frames {expected}-{frame.index - 1} cannot be decoded"
        if frame.concealed:
            return expected - start_frame, f"frame {expected} follows damage (the decoder concealed it)"
        writer.write(frame.image)
        expected += 1
    if expected < end_frame:
        return expected - start_frame, f"the source ends after frame {expected - 1}"
    return expected - start_frame, ""
