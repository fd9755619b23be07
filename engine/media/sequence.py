"""Image sequences (DPX, EXR, TIFF, PNG, JPEG frames, one file each) read as one clip.

A sequence has no frame rate of its own: the timeline that names it gives one. So a sequence is
written down as a small JSON *sequence description* (suffix ``.chronoseq``) holding the folder, the
file-name pattern, the first frame number, the frame count, the rate, and a fingerprint of every
frame file's name, size and modification time. ``engine.media._open.open_input`` opens a
description as the frames it describes (FFmpeg's image2 demuxer), so everything that reads media by
path (the frame reader, probe, retime, render) reads sequences too, with frame 0 being the
sequence's first frame. A description is rewritten only when what it says changes, so its own size
and modification time (what render caches key on) change when a frame file does.

    sequence = find_sequence(Path("plates/A001.1001.dpx"), rate=Fraction(24))
    description = describe(sequence)          # in the cache folder, .../A001-1a2b3c4d5e6f.chronoseq
    with FrameReader(description) as reader: ...

A sequence with a hole (a frame file missing between its first and last) is refused by
``find_sequence``, naming the missing frames: what an editor's hold or black would put there is a
choice, not a guess to make silently. ``find_sequence_runs`` takes it as it is, for the work that
knows what to do about a missing frame (``chronoscope repair`` fills it as a dropped frame; a
retimed range may lie on either side of it): the unbroken runs of frames between the holes. Its
description reads as the first run to anything that knows nothing of holes (FFmpeg's image2
reader stops at a missing file), and lists the later runs (``ImageSequence.later_runs``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from engine.errors import CorruptMediaError, MediaNotFoundError, UnsupportedOptionError
from engine.fsutil import write_text_atomic

log = logging.getLogger(__name__)

SEQUENCE_SUFFIX = ".chronoseq"
IMAGE_SUFFIXES = (".dpx", ".exr", ".tif", ".tiff", ".png", ".jpg", ".jpeg")
"""Frame files of image sequences (DPX, EXR, TIFF, PNG, JPEG)."""
DESCRIPTION_VERSION = 1
MAX_SEQUENCE_FRAMES = 10_000_000
MAX_FRAME_NUMBER = 2**31 - 1
"""FFmpeg's image2 reader counts frame numbers in a C int."""
MIN_RATE = Fraction(1, 100)
MAX_RATE = 1_000_000
"""The fastest rate a sequence is read at: high-speed cameras shoot 30000 to 90000 fps and more.
FFmpeg's image2 reader counts time in frames (its time base is 1/rate), so any rate is exact."""
_MAX_DESCRIPTION_BYTES = 1 << 20
_PRINTF_NUMBER = re.compile(r"%(0?)(\d*)d")
_HASH_RUN = re.compile(r"#+")
_LAST_DIGITS = re.compile(r"(\d+)(?!.*\d)")


@dataclass(frozen=True)
class ImageSequence:
    """Frames ``first`` .. ``first + count - 1`` named ``prefix`` + number + ``suffix`` in ``folder``.

    ``padding`` is the number's width with leading zeros (0: written as is, ``shot.7.png``).
    """

    folder: Path
    prefix: str
    suffix: str
    padding: int
    first: int
    count: int
    rate: Fraction
    later_runs: tuple[tuple[int, int], ...] = ()
    """(first, count) of each unbroken run of frames after a hole, in order (``find_sequence_runs``);
    empty for a sequence without holes. ``first`` and ``count`` are the first run's."""
    read_folder: Path | None = None
    """Where FFmpeg reads the (first) run's frames when it ends at a hole: a folder of links to
    exactly those frames (``describe``), since FFmpeg's image2 reader would read on into the hole
    and fail there. None: read from ``folder``."""

    @property
    def last(self) -> int:
        """The last frame of the first (for a sequence without holes, the only) run."""
        return self.first + self.count - 1

    @property
    def final(self) -> int:
        """The number of the sequence's last frame, after any hole."""
        if self.later_runs:
            first, count = self.later_runs[-1]
            return first + count - 1
        return self.last

    @property
    def span_frames(self) -> int:
        """Frames from the first to the final one, holes included (frame numbers count them)."""
        return self.final - self.first + 1

    def runs(self) -> list[ImageSequence]:
        """Each unbroken run of frames as a sequence of its own (one for a sequence without holes)."""
        first_run = replace(self, later_runs=(), read_folder=None)
        later = [replace(first_run, first=first, count=count) for first, count in self.later_runs]
        return [first_run, *later]

    def missing(self) -> list[int]:
        """The numbers of the frame files missing between the first frame and the final one."""
        numbers = []
        end = self.last
        for first, count in self.later_runs:
            numbers.extend(range(end + 1, first))
            end = first + count - 1
        return numbers

    def frame_name(self, number: int) -> str:
        return f"{self.prefix}{number:0{self.padding}d}{self.suffix}" if self.padding else (
            f"{self.prefix}{number}{self.suffix}"
        )

    def frame_path(self, number: int) -> Path:
        return self.folder / self.frame_name(number)

    @property
    def display_name(self) -> str:
        """``A001.####.dpx``: the way editors write a sequence (``#`` per digit, or ``#`` unpadded)."""
        return f"{self.prefix}{'#' * max(self.padding, 1)}{self.suffix}"

    @property
    def ffmpeg_pattern(self) -> str:
        """The full path as FFmpeg's image2 demuxer takes it: ``%`` doubled, the number as ``%04d``."""
        number = f"%0{self.padding}d" if self.padding else "%d"
        folder = self.read_folder or self.folder
        literal = (os.path.join(str(folder), "") + self.prefix).replace("%", "%%")
        return literal + number + self.suffix.replace("%", "%%")

    def fingerprint(self) -> str:
        """SHA-256 over every frame file's name, size, modification and change time, in every run
        (raises on a missing or empty one)."""
        digest = hashlib.sha256()
        numbers = [n for run in self.runs() for n in range(run.first, run.last + 1)]
        for number in numbers:
            path = self.frame_path(number)
            try:
                stat = path.stat()
            except FileNotFoundError:
                shown = self.folder / self.display_name
                raise MediaNotFoundError(
                    f"image sequence {shown}: frame {number} ({path.name}) is missing"
                ) from None
            if stat.st_size == 0:
                raise CorruptMediaError(
                    f"image sequence {self.folder / self.display_name}: frame {number} ({path.name}) is "
                    "an empty file (0 bytes); render it again"
                )
            # the change time too: a frame replaced in place by one of the same size (uncompressed
            # DPX, TIFF) with its modification time set back is still a change
            digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}\n".encode())
        return digest.hexdigest()


def find_sequence(path: Path, rate: Fraction, *, first: int | None = None) -> ImageSequence:
    """The sequence ``path`` belongs to: a frame file (``A001.1001.dpx``), or a pattern written
    ``A001.%04d.dpx`` or ``A001.####.dpx``.

    From a frame file the sequence is the unbroken run of numbers around it; from a pattern it
    starts at ``first`` (default: the lowest number present). A hole after the start is refused,
    naming the missing frames (FFmpeg's reader would stop there with an error, not at the end).
    """
    path = Path(path)
    folder = path.parent
    name = path.name
    if path.is_dir():
        raise UnsupportedOptionError(
            f"{path} is a folder; name one of its frames (A001.1001.dpx) or the pattern (A001.####.dpx)"
        )
    pattern = None if path.is_file() else _split_pattern(name)  # a frame's name may hold # or %
    if pattern is not None:
        prefix, suffix, padding = pattern
        return sequence_from_parts(folder, prefix, suffix, padding, rate, first=first)
    extension = Path(name).suffix
    match = _LAST_DIGITS.search(name[: len(name) - len(extension)])  # not the 4 of .mp4
    if match is None:
        raise UnsupportedOptionError(
            f"{path} has no frame number in its name; an image sequence is named like A001.1001.dpx"
        )
    if not path.is_file():
        raise MediaNotFoundError(f"image sequence frame not found: {path}")
    prefix, digits, suffix = name[: match.start()], match.group(1), name[match.end():]
    padding = _padding_of(digits, folder, prefix, suffix)
    if first is None:
        numbers = _numbers_in(folder, prefix, suffix, padding)
        first = int(digits)
        while first - 1 in numbers:
            first -= 1
        earlier = [n for n in numbers if n < first]
        if earlier:  # the frame named lies after a hole: the frames before it are the sequence's too
            raise CorruptMediaError(
                f"image sequence {folder / (prefix + '#' * max(padding, 1) + suffix)} has a hole: "
                f"{_number_range(max(earlier) + 1, first - 1)} missing (frames from {min(earlier)} to "
                f"{max(earlier)} come before it); render the missing frames, or move the frames "
                "before the hole aside"
            )
    return sequence_from_parts(folder, prefix, suffix, padding, rate, first=first)


def find_sequence_runs(path: Path, rate: Fraction) -> ImageSequence:
    """The sequence ``path`` belongs to (a frame file or a pattern, as ``find_sequence`` takes it),
    holes and all: from its lowest frame number to its highest, the unbroken runs between holes
    in ``later_runs``. A frame named anywhere in it, after a hole too, names the whole sequence."""
    path = Path(path)
    if path.is_dir():
        raise UnsupportedOptionError(
            f"{path} is a folder; name one of its frames (A001.1001.dpx) or the pattern (A001.####.dpx)"
        )
    pattern = None if path.is_file() else _split_pattern(path.name)
    if pattern is not None:
        prefix, suffix, padding = pattern
    else:
        extension = Path(path.name).suffix
        match = _LAST_DIGITS.search(path.name[: len(path.name) - len(extension)])
        if match is None:
            raise UnsupportedOptionError(
                f"{path} has no frame number in its name; an image sequence is named like A001.1001.dpx"
            )
        if not path.is_file():
            raise MediaNotFoundError(f"image sequence frame not found: {path}")
        prefix, suffix = path.name[: match.start()], path.name[match.end():]
        padding = _padding_of(match.group(1), path.parent, prefix, suffix)
    return sequence_from_parts(path.parent, prefix, suffix, padding, rate, holes=True)


def sequence_from_parts(
    folder: Path,
    prefix: str,
    suffix: str,
    padding: int,
    rate: Fraction,
    *,
    first: int | None = None,
    last: int | None = None,
    holes: bool = False,
) -> ImageSequence:
    """The sequence of files ``prefix`` + number (``padding`` digits, 0: unpadded) + ``suffix`` in
    ``folder`` from ``first`` (default: the lowest number present) to the last before any hole; a
    hole followed by more frames is refused, naming the missing frames, unless ``holes``: then the
    runs after it are ``later_runs``. With ``last`` (what a timeline lists) the sequence ends
    there at the latest, and what lies beyond is not looked at."""
    rate = check_sequence_rate(rate)
    shown = Path(folder) / f"{prefix}{'#' * max(padding, 1)}{suffix}"
    numbers = _numbers_in(Path(folder), prefix, suffix, padding)
    if not numbers:
        raise MediaNotFoundError(f"image sequence {shown}: no frame files match it")
    start = min(numbers) if first is None else first
    if start not in numbers:
        raise MediaNotFoundError(f"image sequence {shown}: frame {start} is missing")
    end = start
    while end + 1 in numbers and (last is None or end < last):
        end += 1
    later = sorted(n for n in numbers if n > end and (last is None or n <= last))
    later_runs: list[tuple[int, int]] = []
    if later and holes:
        for number in later:
            if later_runs and number == sum(later_runs[-1]):
                later_runs[-1] = (later_runs[-1][0], later_runs[-1][1] + 1)
            else:
                later_runs.append((number, 1))
        later = []
    if later:
        raise CorruptMediaError(
            f"image sequence {shown} has a hole: "
            f"{_number_range(end + 1, later[0] - 1)} missing (frames {start}-{end} are there, and more "
            f"from {later[0]}); render the missing frames, or cut the clip before the hole"
        )
    final = sum(later_runs[-1]) - 1 if later_runs else end
    if final > MAX_FRAME_NUMBER or start < 0:
        raise UnsupportedOptionError(
            f"image sequence {shown} numbers its frames {start}-{final}; frame numbers from 0 to "
            f"{MAX_FRAME_NUMBER} are read: renumber the files"
        )
    count = final - start + 1
    if count > MAX_SEQUENCE_FRAMES:
        raise UnsupportedOptionError(
            f"image sequence {shown} has {count} frames; at most {MAX_SEQUENCE_FRAMES} are read"
        )
    first_count = end - start + 1
    return ImageSequence(Path(folder), prefix, suffix, padding, start, first_count, rate, tuple(later_runs))


def describe(sequence: ImageSequence, folder: Path | None = None) -> Path:
    """Write (or keep, when unchanged) the sequence's description; return its path.

    The file lives in ``folder`` (default: the cache folder's ``sequences``), named after the
    sequence and a hash of its pattern, first frame, frame count and rate.
    """
    if folder is None:
        from engine.places import places

        folder = places().cache_dir / "sequences"
    record = {
        "chronoscope_sequence": DESCRIPTION_VERSION,
        "folder": str(sequence.folder.absolute()),
        "prefix": sequence.prefix,
        "suffix": sequence.suffix,
        "padding": sequence.padding,
        "first": sequence.first,
        "count": sequence.count,
        "rate": f"{sequence.rate.numerator}/{sequence.rate.denominator}",
        "fingerprint": sequence.fingerprint(),
        # no frame after the last when described: one appearing later is a change (a sequence cut
        # at what a timeline lists may have files after it, which are none of its business)
        "ends_there": not sequence.frame_path(sequence.final + 1).exists(),
    }
    keyed = [record["folder"], record["prefix"], record["suffix"], record["padding"],
             record["first"], record["count"], record["rate"]]
    if sequence.later_runs:
        record["later_runs"] = [list(run) for run in sequence.later_runs]
        keyed.append(record["later_runs"])
    key = hashlib.sha256(json.dumps(keyed).encode()).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", sequence.prefix).strip("_")[:60] or "sequence"
    path = Path(folder) / f"{stem}-{key}{SEQUENCE_SUFFIX}"
    if _ends_at_hole(sequence):
        view = path.with_suffix(VIEW_SUFFIX)
        _make_view(replace(sequence, read_folder=view))
        record["read_folder"] = str(view)
    text = json.dumps(record, indent=1) + "\n"
    try:
        unchanged = path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        unchanged = False
    if not unchanged:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)
        log.debug("described %s as %s", sequence.display_name, path)
    return path


VIEW_SUFFIX = ".frames"
"""A description's folder of links to the frames of a run that ends at a hole (``describe``)."""


def _ends_at_hole(sequence: ImageSequence) -> bool:
    """Whether the (first) run is followed by a missing frame and then more frames."""
    if sequence.later_runs:
        return True
    if sequence.frame_path(sequence.last + 1).exists():
        return False
    later = _numbers_in(sequence.folder, sequence.prefix, sequence.suffix, sequence.padding)
    return any(number > sequence.last + 1 for number in later)


def _make_view(sequence: ImageSequence) -> None:
    """Fill ``sequence.read_folder`` with links to exactly the frames of its (first) run, so that
    FFmpeg's image2 reader ends where the run does; links already right are kept."""
    view = sequence.read_folder
    assert view is not None
    try:
        view.mkdir(parents=True, exist_ok=True)
        numbers = range(sequence.first, sequence.last + 1)
        wanted = {sequence.frame_name(n): sequence.frame_path(n).absolute() for n in numbers}
        for entry in view.iterdir():
            target = wanted.get(entry.name)
            if target is None or not entry.is_symlink() or Path(os.readlink(entry)) != target:
                entry.unlink()
        for name, target in wanted.items():
            link = view / name
            if not link.is_symlink():
                os.symlink(target, link)
    except OSError as error:
        missing = sequence.last + 1
        raise CorruptMediaError(
            f"image sequence {sequence.folder / sequence.display_name} has a hole: frame {missing} "
            f"({sequence.frame_name(missing)}) is missing, and frames {sequence.first}-{sequence.last} "
            f"before it cannot be read on their own here: links to them cannot be made in {view} "
            f"({error.strerror or error}); render the missing frames, or move the frames after the hole aside"
        ) from None


def is_description(path: Path) -> bool:
    return Path(path).suffix.lower() == SEQUENCE_SUFFIX


def read_description(path: Path) -> ImageSequence:
    """The sequence a description names, checked against the frame files as they are now."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(_MAX_DESCRIPTION_BYTES + 1)
        if len(raw) > _MAX_DESCRIPTION_BYTES:
            raise ValueError("too large")
        record = json.loads(raw.decode("utf-8"))
        if record.get("chronoscope_sequence") != DESCRIPTION_VERSION:
            version = record.get("chronoscope_sequence")
            raise ValueError(f"version {version!r}, expected {DESCRIPTION_VERSION}")
        sequence = ImageSequence(
            folder=Path(_field(record, "folder", str)),
            prefix=_field(record, "prefix", str),
            suffix=_field(record, "suffix", str),
            padding=_field(record, "padding", int),
            first=_field(record, "first", int),
            count=_field(record, "count", int),
            rate=check_sequence_rate(Fraction(_field(record, "rate", str))),
            later_runs=_later_runs(record),
            read_folder=Path(_field(record, "read_folder", str)) if "read_folder" in record else None,
        )
        if sequence.count < 1 or sequence.padding < 0 or sequence.count > MAX_SEQUENCE_FRAMES:
            raise ValueError("count or padding out of range")
        fingerprint = _field(record, "fingerprint", str)
    except (ValueError, ZeroDivisionError, UnicodeDecodeError, AttributeError) as error:
        raise CorruptMediaError(f"{path} is not a readable image sequence description ({error})") from None
    grown = record.get("ends_there") is True and sequence.frame_path(sequence.final + 1).exists()
    filled = any(sequence.frame_path(number).exists() for number in sequence.missing())
    grown = grown or filled
    if sequence.fingerprint() != fingerprint or grown:
        raise CorruptMediaError(
            f"image sequence {sequence.folder / sequence.display_name} changed after it was described "
            f"({path.name}): plan the work again"
        )
    if sequence.read_folder is not None and not sequence.read_folder.is_dir():
        _make_view(sequence)  # the cache was cleaned meanwhile
    return sequence


def _field(record: dict, name: str, kind: type) -> object:
    value = record.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"field {name!r} is not {kind.__name__}")
    return value


def _later_runs(record: dict) -> tuple[tuple[int, int], ...]:
    """A description's ``later_runs``: (first, count) pairs after the first run, in order."""
    value = record.get("later_runs", [])
    if not isinstance(value, list):
        raise ValueError("field 'later_runs' is not a list")
    runs = []
    end = _field(record, "first", int) + _field(record, "count", int)
    for item in value:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in item)
            or item[0] <= end
            or item[1] < 1
        ):
            raise ValueError("field 'later_runs' holds a run that does not follow a hole")
        runs.append((item[0], item[1]))
        end = item[0] + item[1]
    return tuple(runs)


def check_sequence_rate(rate: Fraction | int | float | str) -> Fraction:
    """``rate`` as a Fraction when image sequences can be read at it (``MIN_RATE`` to ``MAX_RATE``
    frames a second); ``UnsupportedOptionError`` otherwise."""
    try:
        value = Fraction(rate)
    except (ValueError, TypeError, ZeroDivisionError):
        raise UnsupportedOptionError(f"image sequence rate {rate!r} is not a number") from None
    if not MIN_RATE <= value <= MAX_RATE:
        raise UnsupportedOptionError(
            f"image sequence rate {rate} fps is out of range (0.01 to {MAX_RATE:,} frames a second)"
        )
    return value


def _split_pattern(name: str) -> tuple[str, str, int] | None:
    """(prefix, suffix, padding) of ``A001.%04d.dpx`` or ``A001.####.dpx``; None for a plain name."""
    for regex in (_PRINTF_NUMBER, _HASH_RUN):
        found = list(regex.finditer(name))
        if not found:
            continue
        if len(found) > 1:
            raise UnsupportedOptionError(f"image sequence pattern {name!r} has more than one frame number")
        match = found[0]
        if regex is _PRINTF_NUMBER:
            padding = int(match.group(2) or 0) if match.group(1) else 0
        else:
            padding = len(match.group(0)) if len(match.group(0)) > 1 else 0
        return name[: match.start()], name[match.end():], padding
    return None


def _padding_of(digits: str, folder: Path, prefix: str, suffix: str) -> int:
    """The width numbers are padded to, judged from one frame's digits and its neighbours' names:
    ``0042`` is padded to 4; ``42`` is unpadded when shorter numbers sit beside it unpadded."""
    if digits.startswith("0"):
        return len(digits)
    if len(digits) == 1:
        return 0
    unpadded = _numbers_in(folder, prefix, suffix, 0)
    return 0 if any(len(str(n)) < len(digits) for n in unpadded) else len(digits)


def _numbers_in(folder: Path, prefix: str, suffix: str, padding: int) -> set[int]:
    """Frame numbers of files in ``folder`` named ``prefix`` + digits + ``suffix`` with that padding."""
    try:
        names = [entry.name for entry in folder.iterdir()]
    except FileNotFoundError:
        raise MediaNotFoundError(f"image sequence folder not found: {folder}") from None
    except NotADirectoryError:
        raise MediaNotFoundError(f"image sequence folder is not a folder: {folder}") from None
    exact = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix) + r"\Z")
    numbers = set()
    for name in names:
        match = exact.match(name)
        if match is None:
            continue
        digits = match.group(1)
        if padding and len(digits) < padding:
            continue
        if padding and len(digits) > padding and digits.startswith("0"):
            continue
        if not padding and len(digits) > 1 and digits.startswith("0"):
            continue
        numbers.add(int(digits))
    return numbers


def _number_range(low: int, high: int) -> str:
    return f"frame {low} is" if low == high else f"frames {low}-{high} are"


def shown_name(path: Path) -> str:
    """How to name ``path`` to a person: a sequence description as the frames it names
    (``image sequence /plates/A001.####.dpx``), anything else as itself."""
    if not is_description(path):
        return str(path)
    try:
        with open(path, "rb") as handle:
            record = json.loads(handle.read(_MAX_DESCRIPTION_BYTES).decode("utf-8"))
        digits = "#" * max(int(record["padding"]), 1)
        return f"image sequence {Path(record['folder']) / (record['prefix'] + digits + record['suffix'])}"
    except (OSError, ValueError, KeyError, TypeError):
        return str(path)
