"""Names of render outputs: readable, unique, and short enough for any file system.

A name is ``<stem>[.f<in>-<out>].<speed>.<model>[-<n>].<suffix>``: the source's stem, the source
range when it is not the whole clip (first and last frame, as the app shows In and Out), the target speed
(``25pct``, ``12_5pct``, ``33_33pct`` or ``ramp``) and the model; the suffix is the output codec's
(``.mov`` ProRes, ``.mp4`` H.264/H.265, ``.mkv`` FFV1: ``CODEC_SUFFIXES``). ``-2``, ``-3`` ... keep it apart
from files already in the folder (and their reports), from outputs a live render writes now (another
session's, which leaves only temporaries until it ends), and from the outputs of renders already
queued in the window or the engine (which have no file yet). The stem is shortened so that the
name stays within ``MAX_NAME_BYTES`` (UTF-8).

Outputs go to the folder chosen in Render ▸ Output folder, else to ``default_output_folder()``,
which the app makes when a render needs it (a fresh install has none).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from engine.fsutil import live_writer
from engine.places import places
from engine.retime.report import SIDECAR_SUFFIX
from gui.settings import CODEC_SUFFIXES

MAX_NAME_BYTES = 200
OUTPUT_SUFFIX = ".mp4"
SHORTENED_MARK = "~"
# source codecs (FFmpeg names) whose family the output keeps; 10-bit and intermediate sources
# (ProRes, DNxHD/HR) go to ProRes, anything else to H.264
SOURCE_FAMILIES = {"h264": "h264", "hevc": "h265", "ffv1": "ffv1", "prores": "prores", "dnxhd": "prores"}


def default_output_folder() -> Path:
    """Where renders go until the editor chooses a folder: the data folder's ``renders``."""
    return places().data_dir / "renders"


def output_folder_problem(folder: Path) -> str:
    """Why renders cannot go into ``folder`` (a sentence for the editor), or "" when it is a folder."""
    folder = Path(folder)
    if folder.is_dir():
        return ""
    if folder.exists():
        return f"The output folder {folder} is a file, not a folder."
    return f"The output folder {folder} does not exist (moved, renamed, or on a drive not connected?)."


def codec_for_source(codec: str, bit_depth: int) -> str:
    """The output codec a render of a source defaults to: ProRes (.mov, 10-bit 4:2:2) for ProRes,
    DNx and any source of 10 bits or more, else the source's own family (H.264, H.265, FFV1)."""
    family = SOURCE_FAMILIES.get(codec.lower(), "h264")
    if family == "prores" or (bit_depth >= 10 and family != "ffv1"):
        return "prores"
    return family


def codec_suffix(codec: str | None) -> str:
    """The file suffix for an output ``codec``; ``.mp4`` when none is named."""
    return CODEC_SUFFIXES.get(codec or "", OUTPUT_SUFFIX)


def speed_part(speed: Fraction | None) -> str:
    """``25pct``, ``12_5pct``, ``6_25pct``, ``33_33pct`` (at most two decimals); ``ramp`` for None."""
    if speed is None:
        return "ramp"
    percent = f"{float(speed) * 100:.2f}".rstrip("0").rstrip(".")
    return f"{percent.replace('.', '_')}pct"


def range_part(in_frame: int, out_frame: int, frame_count: int) -> str:
    """``f10-39`` for source frames 10 to 39 (``out_frame`` 40 is exclusive, as the app's marks are
    kept; the name says the last frame, as the app shows Out); empty for the whole clip."""
    if in_frame <= 0 and out_frame >= frame_count:
        return ""
    return f"f{in_frame}-{out_frame - 1}"


def shorten_to_bytes(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes, never inside a character."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[: max(0, max_bytes)].decode("utf-8", errors="ignore")


def output_name(stem: str, suffix_parts: list[str], count: int = 1, suffix: str = OUTPUT_SUFFIX) -> str:
    """The file name for ``stem`` and its suffix parts, ending in ``suffix`` (the codec's);
    ``count`` > 1 adds ``-count``.

    The suffix parts are kept whole; the stem is shortened (ending in ``~``) when the name would
    pass ``MAX_NAME_BYTES``.
    """
    tail = "".join(f".{part}" for part in suffix_parts if part)
    tail += (f"-{count}" if count > 1 else "") + suffix
    room = MAX_NAME_BYTES - len(tail.encode("utf-8"))
    if len(stem.encode("utf-8")) > room:
        stem = shorten_to_bytes(stem, room - len(SHORTENED_MARK)) + SHORTENED_MARK
    return stem + tail


def output_taken(path: Path, taken: Collection[Path] = ()) -> bool:
    """Whether a render must not write ``path``: a file is there (or its report, which the engine
    keeps beside it), a live process writes it now (``engine.fsutil.live_writer``: another session's
    render, or another program through the same temporaries), or it is in ``taken`` (the outputs of
    renders queued in this window or held by the engine, which have no file yet)."""
    path = Path(path)
    taken_paths = {Path(item).resolve() for item in taken}
    report = path.with_name(path.name + SIDECAR_SUFFIX)
    return (
        path.exists()
        or path.is_symlink()
        or report.exists()
        or path.resolve() in taken_paths
        or live_writer(path) is not None
    )


def unique_output_path(
    folder: Path,
    stem: str,
    suffix_parts: list[str],
    taken: Collection[Path] = (),
    suffix: str = OUTPUT_SUFFIX,
) -> Path:
    """The first ``output_name`` in ``folder`` that no render may be writing (``output_taken``)."""
    count = 1
    while True:
        candidate = folder / output_name(stem, suffix_parts, count, suffix)
        if not output_taken(candidate, taken):
            return candidate
        count += 1


@dataclass(frozen=True)
class OutputNaming:
    """What a render's output is named from, kept so that a name found taken when the engine
    refuses it can give way to the next free one (``-2``, ``-3`` ...)."""

    folder: Path
    stem: str
    suffix_parts: tuple[str, ...]
    suffix: str = OUTPUT_SUFFIX

    def free_path(self, taken: Collection[Path] = ()) -> Path:
        return unique_output_path(self.folder, self.stem, list(self.suffix_parts), taken, self.suffix)
