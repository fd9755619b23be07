"""Training data for temporal super-resolution: clips of genuine high-rate capture, split by source.

A dataset folder is read in one of two ways:

1. ``manifest.jsonl`` (written by ``chronoscope mine --extract``): each row that names a clip file
   which exists (key ``clip``, ``clip_path``, ``extracted_path``, ``output_path`` or ``path``,
   relative to the folder or absolute) is one clip; rows with a ``row`` kind other than ``clip``
   (engine/mining's segment and file rows) are passed over. A clip's source (for the split) is
   the row's ``source_sha256``, ``source_hash``, ``content_hash``, ``source_path`` or ``source``,
   else the clip itself, so every clip mined from one video lands on the same side. Clips are
   conformed to their capture rate, so consecutive frames are consecutive captures; the row's
   ``conform_rate`` (or ``capture_fps``) is kept as the clip's capture rate. The folder may also
   be the clips folder of a mined dataset (``DATASET/clips``): the manifest one level up is read,
   restricted to the clips under the folder, so the split still follows the source videos. The
   manifest is append-only: a clip named by several rows is described by the latest (a source
   moved or renamed since: its new path, which ``exclude_clips`` matches), and a clip whose
   segment's latest row no longer names it (retired) is left out.
2. Without a manifest (or when no row names an existing clip, with a WARNING): every video file
   under the folder is a clip and its own source, and every folder holding at least
   ``MIN_SEQUENCE_IMAGES`` images (PNG, TIFF, JPEG) is one image-sequence clip.

``exclude_clips`` drops clips whose source path, name or file matches a glob: how a run keeps
footage it measures on (say, real high-speed sequences mined along with the rest) out of training.

``low_rate_clips`` finds the video clips that are not known to be high-rate footage: no manifest
gives their capture rate and their files play at under ``HIGH_RATE_FPS`` (24 to 60 fps, as
real-time footage does). Frames k apart of real-time footage are far apart in time, so training
on them teaches guesses rather than motion; the trainer warns, naming how many.

Procedural renders (engine.scenes, 240 fps) can be added; training renders use seeds from
``TRAIN_RENDER_SEED_BASE`` up, held-out renders seeds 0, 1, ..., so they never overlap.

A sample takes frames i and i + k of a clip (k from ``gaps_frames``) and the true frame i + j for
0 < j < k, at t = j / k. Augmentation: a random crop, horizontal and vertical flips, and time
reversal (the two frames swapped and t replaced by 1 - t).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from engine.errors import ChronoscopeError, TrainingDataError
from engine.filetypes import VIDEO_FILE_SUFFIXES

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
VIDEO_SUFFIXES = VIDEO_FILE_SUFFIXES
IMAGE_SUFFIXES = frozenset({".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp"})
MIN_SEQUENCE_IMAGES = 3
CLIP_KEYS = ("clip", "clip_path", "extracted_path", "output_path", "path")
SOURCE_KEYS = ("source_sha256", "source_hash", "content_hash", "source_path", "source")
DEFAULT_GAPS_FRAMES = (2, 3, 4, 6, 8)
TRAIN_RENDER_SEED_BASE = 1000
HIGH_RATE_FPS = 100
"""A video file playing at this rate or more is high-rate footage in itself (as the miner judges it)."""
RENDER_FPS = 240
RENDER_FRAMES = 33


@dataclass(frozen=True)
class ClipSource:
    """One clip of the dataset: where it is and which source it came from (the unit of the split)."""

    name: str
    source: str
    path: Path
    kind: str  # "video", "images" or "render"
    capture_fps: Fraction | None = None
    origin: str = ""  # the source video's path or URL, when a manifest names it


@dataclass
class LoadedClip:
    """A clip's frames in memory, RGB uint8 (frames, height, width, 3)."""

    clip: ClipSource
    frames: np.ndarray

    @property
    def frame_count(self) -> int:
        return int(self.frames.shape[0])


@dataclass(frozen=True)
class Sample:
    """Frames ``first`` and ``first + gap_frames`` of a clip; the truth is frame ``first + offset_frames``."""

    clip_index: int
    first: int
    gap_frames: int
    offset_frames: int

    @property
    def t(self) -> Fraction:
        return Fraction(self.offset_frames, self.gap_frames)


@dataclass
class Batch:
    """float32 NCHW arrays in [0, 1] and t shaped (N, 1, 1, 1)."""

    img0: np.ndarray
    img1: np.ndarray
    truth: np.ndarray
    t: np.ndarray


@dataclass
class Split:
    """Clips for training and held-out clips, whole sources on one side only."""

    train: list[ClipSource] = field(default_factory=list)
    held_out: list[ClipSource] = field(default_factory=list)


def discover_dataset(folder: Path) -> list[ClipSource]:
    """The clips of a dataset folder (see the module docstring); ``TrainingDataError`` when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TrainingDataError(
            f"dataset {folder} is not a folder; give the DATASET/ folder that "
            "`chronoscope mine --extract` wrote, or any folder of high-rate clips"
        )
    manifest = folder / MANIFEST_NAME
    if manifest.is_file():
        clips = _clips_from_manifest(manifest)
        if clips:
            return clips
        log.warning(
            "%s names no existing clip; using every video file and image sequence under %s", manifest, folder
        )
    elif (folder.parent / MANIFEST_NAME).is_file():
        parent_manifest = folder.parent / MANIFEST_NAME
        clips = [clip for clip in _clips_from_manifest(parent_manifest) if _is_under(clip.path, folder)]
        if clips:
            log.info(
                "%s: %d clips from %s (split by source video, capture rates from the manifest)",
                folder,
                len(clips),
                parent_manifest,
            )
            return clips
    clips = _clips_from_scan(folder)
    if not clips:
        raise TrainingDataError(
            f"dataset {folder} holds no clips: no {MANIFEST_NAME} row names an existing clip, no video file "
            f"({', '.join(sorted(VIDEO_SUFFIXES))}), no folder of {MIN_SEQUENCE_IMAGES}+ images under it"
        )
    return clips


def _clips_from_manifest(manifest: Path) -> list[ClipSource]:
    rows = _clip_rows(manifest)
    # the manifest is append-only and the latest clip row of a segment counts: a clip a segment's
    # earlier row named and its latest no longer names has left the dataset (retired), and a
    # clip named again (its source moved: new ``source``, ``moved_from`` the old) is described
    # by its latest row
    latest: dict[tuple[str, str, str], dict] = {}
    for row in rows:
        key = _segment_key(row)
        if key is not None:
            latest[key] = row
    left: set[Path] = set()
    for row in rows:
        key = _segment_key(row)
        if key is not None and latest[key] is not row:
            left |= _named_paths(row, manifest.parent) - _named_paths(latest[key], manifest.parent)
    chosen: dict[Path, dict] = {}
    for row in rows:
        path = _row_clip_path(row, manifest.parent)
        if path is not None and path not in left:
            chosen[path] = row  # a clip keeps its place in the order; its latest row describes it
    clips: list[ClipSource] = []
    for path, row in chosen.items():
        source = next((str(row[key]) for key in SOURCE_KEYS if row.get(key)), str(path))
        capture = row.get("conform_rate") or row.get("capture_fps") or row.get("capture_rate")
        origin = next((str(row[key]) for key in ("source_path", "source") if row.get(key)), "")
        clips.append(
            ClipSource(
                name=_relative_name(path, manifest.parent),
                source=source,
                path=path,
                kind="images" if path.is_dir() else "video",
                capture_fps=_fraction_or_none(capture),
                origin=origin,
            )
        )
    return clips


def _clip_rows(manifest: Path) -> list[dict]:
    """The manifest's rows of kind ``clip`` (or of no kind), in order; lines that are not JSON are
    skipped with a WARNING."""
    rows = []
    with manifest.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                log.warning("%s line %d is not JSON (%s); skipped", manifest, line_number, error)
                continue
            if isinstance(row, dict) and row.get("row", "clip") == "clip":
                rows.append(row)
    return rows


def _segment_key(row: dict) -> tuple[str, str, str] | None:
    """The mined segment a clip row is about (engine.mining: source, content hash, segment), or
    None for a row that does not say."""
    if not row.get("source") or row.get("segment_index") is None:
        return None
    return str(row["source"]), str(row.get("content_hash") or ""), str(row["segment_index"])


def _named_paths(row: dict, folder: Path) -> set[Path]:
    """Every clip path a row names, whether or not it exists."""
    return {
        Path(value) if Path(value).is_absolute() else folder / value
        for value in (row.get(key) for key in CLIP_KEYS)
        if isinstance(value, str) and value
    }


def _is_under(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def exclude_clips(
    clips: Sequence[ClipSource], patterns: Sequence[str]
) -> tuple[list[ClipSource], list[ClipSource]]:
    """(kept, excluded): a clip is excluded when a glob matches its source path, name or file path.

    Matching is case-sensitive ``fnmatch`` on whole strings (``*`` also spans ``/``), so
    ``*/highspeed-*`` or ``*phantom*`` name a family of sources wherever the library lives.
    """
    kept: list[ClipSource] = []
    excluded: list[ClipSource] = []
    for clip in clips:
        names = [text for text in (clip.origin, clip.name, clip.path.as_posix()) if text]
        if any(fnmatch.fnmatchcase(text, pattern) for pattern in patterns for text in names):
            excluded.append(clip)
        else:
            kept.append(clip)
    return kept, excluded


def low_rate_clips(clips: Sequence[ClipSource]) -> list[tuple[ClipSource, Fraction]]:
    """(clip, its file's frame rate) for each video clip without a capture rate (no manifest
    said) whose file plays at under ``HIGH_RATE_FPS``: not known to be high-rate footage. Image
    sequences have no rate of their own and are not judged; a file that cannot be probed is left
    to ``load_clips``, which says why it is skipped."""
    from engine.media import probe_video

    found = []
    for clip in clips:
        if clip.capture_fps is not None or clip.kind != "video":
            continue
        try:
            rate = probe_video(clip.path).frame_rate
        except (ChronoscopeError, OSError):
            continue
        if rate is not None and rate < HIGH_RATE_FPS:
            found.append((clip, Fraction(rate)))
    return found


def _row_clip_path(row: dict, folder: Path) -> Path | None:
    for key in CLIP_KEYS:
        value = row.get(key)
        if not isinstance(value, str) or not value:
            continue
        path = Path(value) if Path(value).is_absolute() else folder / value
        if path.is_file() or (path.is_dir() and _sequence_images(path)):
            return path
    return None


def _fraction_or_none(value: object) -> Fraction | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        rate = Fraction(str(value)).limit_denominator(1001)
    except (ValueError, ZeroDivisionError):
        return None
    return rate if rate > 0 else None


def _relative_name(path: Path, folder: Path) -> str:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return path.as_posix()


def _sequence_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _clips_from_scan(folder: Path) -> list[ClipSource]:
    clips = []
    for path in sorted(folder.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        name = _relative_name(path, folder)
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
            clips.append(ClipSource(name, name, path, "video"))
        elif path.is_dir() and len(_sequence_images(path)) >= MIN_SEQUENCE_IMAGES:
            clips.append(ClipSource(name, name, path, "images"))
    return clips


def split_by_source(clips: Sequence[ClipSource], held_out_fraction: float, seed: int = 0) -> Split:
    """Put whole sources on the training or the held-out side, by a hash of (seed, source).

    The same source always lands on the same side for the same seed, whatever else is in the
    dataset. At least one source stays for training; with a single source nothing is held out.
    """
    if not 0.0 <= held_out_fraction < 1.0:
        raise TrainingDataError(f"held-out fraction {held_out_fraction} is outside [0, 1)")
    sources = sorted({clip.source for clip in clips})
    held: set[str] = set()
    if len(sources) > 1:
        scored = sorted(sources, key=lambda source: _unit_hash(seed, source))
        held = {source for source in sources if _unit_hash(seed, source) < held_out_fraction}
        if len(held) == len(sources):
            held.discard(scored[-1])
    split = Split()
    for clip in clips:
        (split.held_out if clip.source in held else split.train).append(clip)
    return split


def _unit_hash(seed: int, source: str) -> float:
    digest = hashlib.sha256(f"{seed}\0{source}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def load_clip(clip: ClipSource, *, max_frames: int, max_side_px: int) -> LoadedClip:
    """Read up to ``max_frames`` frames, scaled down (never up) to a longer side of ``max_side_px``."""
    if clip.kind == "images":
        frames = _read_sequence(clip.path, max_frames)
    else:
        frames = _read_video(clip.path, max_frames, max_side_px)
    if len(frames) < 3:
        raise TrainingDataError(f"clip {clip.path} has {len(frames)} frames; a sample needs at least 3")
    height, width = frames[0].shape[:2]
    scale = min(1.0, max_side_px / max(height, width))
    if scale < 1.0:
        size = (max(2, round(width * scale)), max(2, round(height * scale)))
        frames = [cv2.resize(frame, size, interpolation=cv2.INTER_AREA) for frame in frames]
    return LoadedClip(clip, np.stack(frames))


def _read_video(path: Path, max_frames: int, max_side_px: int) -> list[np.ndarray]:
    """The first frames of a video, scaled in the decoder (4K footage is not decoded at 4K into memory)."""
    from engine.media import FrameReader

    with FrameReader(path, output="rgb24", strict=False) as reader:
        first = next(iter(reader.frames(0)), None)
    if first is None:
        return []
    height, width = first.image.shape[:2]
    scale = min(1.0, max_side_px / max(height, width))
    size = None
    if scale < 1.0:
        size = (max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2)))
    with FrameReader(path, output="rgb24", strict=False, size=size) as reader:
        return [np.asarray(frame) for frame, _ in zip(reader.frames(0), range(max_frames), strict=False)]


def read_image_sequence(folder: Path, max_frames: int | None = None) -> list[np.ndarray]:
    """An image sequence as RGB uint8; grey becomes RGB, 16-bit is scaled by the sequence's maximum.

    High-speed cameras often store 10 to 12 bits in 16-bit files; scaling by the brightest value
    of the whole sequence (not of each frame) keeps the exposure constant across frames.
    """
    paths = _sequence_images(Path(folder))[:max_frames]
    raw = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise TrainingDataError(f"cannot decode image {path}")
        raw.append(image)
    if not raw:
        return []
    peak = max(float(image.max()) for image in raw) if raw[0].dtype == np.uint16 else 255.0
    frames = []
    for image in raw:
        if image.dtype == np.uint16:
            image = np.clip(np.rint(image.astype(np.float32) * (255.0 / max(peak, 1.0))), 0, 255).astype(
                np.uint8
            )
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
        else:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        frames.append(image)
    return frames


def _read_sequence(folder: Path, max_frames: int) -> list[np.ndarray]:
    return read_image_sequence(folder, max_frames)


def load_clips(
    clips: Sequence[ClipSource], *, max_frames: int, max_side_px: int, min_side_px: int
) -> list[LoadedClip]:
    """Load every clip; one that cannot be read or is smaller than a crop is skipped with a WARNING."""
    loaded = []
    for clip in clips:
        try:
            item = load_clip(clip, max_frames=max_frames, max_side_px=max_side_px)
        except ChronoscopeError as error:
            log.warning("skipping clip %s: %s", clip.name, error)
            continue
        if min(item.frames.shape[1:3]) < min_side_px:
            log.warning(
                "skipping clip %s: %dx%d is smaller than the %d px crop",
                clip.name,
                item.frames.shape[2],
                item.frames.shape[1],
                min_side_px,
            )
            continue
        loaded.append(item)
    return loaded


def render_clips(
    seeds: Sequence[int],
    cache_dir: Path | None,
    *,
    width: int = 320,
    height: int = 240,
    frames: int = RENDER_FRAMES,
    texture_paths: tuple[Path, ...] = (),
) -> list[LoadedClip]:
    """Procedural 240 fps renders of engine.scenes by seed, cached as ``.npz`` in ``cache_dir`` when given."""
    from engine.fsutil import atomic_path
    from engine.scenes import random_scene, render_frames

    clips = []
    for seed in seeds:
        name = f"render-{seed}-{width}x{height}-{frames}f@{RENDER_FPS}"
        clip = ClipSource(name, name, Path(name), "render", Fraction(RENDER_FPS))
        cached = Path(cache_dir) / f"{name}-{len(texture_paths)}tex.npz" if cache_dir else None
        if cached is not None and cached.is_file():
            with np.load(cached) as archive:
                clips.append(LoadedClip(clip, archive["frames"]))
            continue
        spec = random_scene(
            seed,
            width=width,
            height=height,
            capture_fps=RENDER_FPS,
            duration_frames=frames,
            texture_paths=tuple(texture_paths),
        )
        stack = np.stack(list(render_frames(spec)))
        if cached is not None:
            with atomic_path(cached) as temporary, temporary.open("wb") as handle:
                np.savez(handle, frames=stack)
        clips.append(LoadedClip(clip, stack))
    return clips


def usable_gaps(frame_count: int, gaps_frames: Sequence[int], midpoint_only: bool) -> list[int]:
    """The gaps that fit a clip of ``frame_count`` frames (even gaps only when t must be 1/2)."""
    return [k for k in gaps_frames if k >= 2 and k < frame_count and (not midpoint_only or k % 2 == 0)]


def draw_sample(
    clips: Sequence[LoadedClip], rng: np.random.Generator, gaps_frames: Sequence[int], *, midpoint_only: bool
) -> Sample:
    """A random (clip, i, k, j) with 0 < j < k; j = k / 2 when ``midpoint_only``."""
    candidates = [
        (index, usable_gaps(clip.frame_count, gaps_frames, midpoint_only)) for index, clip in enumerate(clips)
    ]
    candidates = [(index, gaps) for index, gaps in candidates if gaps]
    if not candidates:
        raise TrainingDataError(
            f"no clip is long enough for gaps {list(gaps_frames)}"
            + (" (even gaps only, for a midpoint-only model)" if midpoint_only else "")
        )
    clip_index, gaps = candidates[int(rng.integers(len(candidates)))]
    gap = int(gaps[int(rng.integers(len(gaps)))])
    first = int(rng.integers(0, clips[clip_index].frame_count - gap))
    offset = gap // 2 if midpoint_only else int(rng.integers(1, gap))
    return Sample(clip_index, first, gap, offset)


def make_batch(
    clips: Sequence[LoadedClip],
    rng: np.random.Generator,
    *,
    batch_size: int,
    crop_px: int,
    gaps_frames: Sequence[int] = DEFAULT_GAPS_FRAMES,
    midpoint_only: bool = False,
    augment: bool = True,
) -> tuple[Batch, list[Sample]]:
    """A training batch of random crops, with flips and time reversal when ``augment``."""
    img0, img1, truth, times, samples = [], [], [], [], []
    for _ in range(batch_size):
        sample = draw_sample(clips, rng, gaps_frames, midpoint_only=midpoint_only)
        frames = clips[sample.clip_index].frames
        height, width = frames.shape[1:3]
        if min(height, width) < crop_px:
            raise TrainingDataError(
                f"clip {clips[sample.clip_index].clip.name} ({width}x{height}) is smaller "
                f"than the {crop_px} px crop"
            )
        y = int(rng.integers(0, height - crop_px + 1))
        x = int(rng.integers(0, width - crop_px + 1))
        window = (slice(y, y + crop_px), slice(x, x + crop_px))
        first = frames[sample.first][window]
        second = frames[sample.first + sample.gap_frames][window]
        middle = frames[sample.first + sample.offset_frames][window]
        t = float(sample.t)
        if augment:
            if rng.random() < 0.5:
                first, second, middle = first[:, ::-1], second[:, ::-1], middle[:, ::-1]
            if rng.random() < 0.5:
                first, second, middle = first[::-1], second[::-1], middle[::-1]
            if rng.random() < 0.5:
                first, second, t = second, first, 1.0 - t
        img0.append(first)
        img1.append(second)
        truth.append(middle)
        times.append(t)
        samples.append(sample)
    return Batch(
        _to_nchw(img0), _to_nchw(img1), _to_nchw(truth), np.asarray(times, np.float32).reshape(-1, 1, 1, 1)
    ), samples


def _to_nchw(images: list[np.ndarray]) -> np.ndarray:
    stack = np.stack([np.ascontiguousarray(image) for image in images]).astype(np.float32) * np.float32(
        1 / 255
    )
    return np.ascontiguousarray(stack.transpose(0, 3, 1, 2))
