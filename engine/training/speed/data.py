"""The training cache: every variant of every source, re-encoded identically, as small grey frames.

For each source one ``.npz`` file under the cache folder (written through a temporary name, so a
build interrupted half-way resumes at the next missing source):

- a real clip captured and played at P fps (ordinary footage anchors s = 1): ``real_k`` holds every
  k-th frame (k = 1, 2, 4, 8), and ``dup_f`` / ``blend_f`` / ``interp_f`` hold fake slow motion by a
  factor f = 2, 4 (synthetic),
- a procedural render at 240 fps: ``render_n`` holds every n-th frame played at 30 fps
  (speed n / 8: n = 1 is genuine 8x slow motion),
- a user's clip stored at 100 fps or more (a high-rate capture stored at its own rate, so C = P)
  is cached like a render: ``render_n`` is every n-th frame played at 30 fps, speed 30 n / P.

``build_user_cache`` does the same for a user's own footage (``chronoscope train speed``): any
folders of clips, searched recursively, one cache file per clip keyed by its path and size.

Every speed stored here is the one the network is taught to read: the speed of the frames *played at
30 fps* (``PLAY_FPS``), since the network sees frames, not their timestamps. For a real clip at P
fps that is k * 30 / P for every k-th frame (a 10 fps clip is read 3x fast, and
``engine.speed.detect.rate_offset_log2`` adds log2(P / 30) back at inference), and 30 / (P f) for
fake slow motion by f. Caches written before this rule (``CACHE_FORMAT``) are rebuilt.

Every variant is encoded with H.264 at the same quality (crf 23) at ``ENCODE_PX`` square and
decoded again before it is shrunk to ``READ_PX``, so the codec cannot tell variants apart.
No torch here; the training loop reads the cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from engine.errors import CorruptMediaError, TrainingDataError
from engine.media import VIDEO_FILE_SUFFIXES, FrameReader
from engine.scenes import h264_roundtrip, random_scene, render_frames
from engine.scenes.retime import synthetic_slowmo
from engine.speed.heldout import HELD_OUT_CLIPS
from engine.speed.windows import WINDOW_FRAMES, to_small_grey

log = logging.getLogger(__name__)

ENCODE_PX = 192
CRF = 23
REAL_STRIDES = (1, 2, 4, 8)
SLOWMO_FACTORS = (2, 4)
SLOWMO_SOURCE_FRAMES = 60
RENDER_STRIDES = (1, 2, 4, 8, 16)
RENDER_FPS = 240
PLAY_FPS = 30
RENDER_FRAMES = 480
MAX_CLIP_FRAMES = 400
CACHE_FORMAT = 2  # 2: real-clip speeds relative to 30 fps playback (1: speed k at any rate)
TRAIN_RENDER_SEEDS = tuple(range(17))  # what the shipped network was trained on (the model card)
EVAL_RENDER_SEEDS = tuple(range(1000, 1008))
KIND_PREFIX = {"duplicate": "dup", "blend": "blend", "interpolate": "interp"}
HIGH_RATE_FPS = Fraction(100)
MIN_USER_CLIP_FRAMES = WINDOW_FRAMES * max(REAL_STRIDES) + 8
VIDEO_SUFFIXES = VIDEO_FILE_SUFFIXES


@dataclass(frozen=True)
class Variant:
    """One cached sequence: its frames, its speed, and whether its frames are synthetic."""

    key: str
    frames: np.ndarray
    speed: Fraction
    synthetic: bool


@dataclass
class Source:
    """One cached source (a clip or a render) and its variants by key."""

    name: str
    variants: dict[str, Variant]


def grey_to_rgb(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [np.repeat(frame[..., None], 3, axis=2) for frame in frames]


def reencode_small(frames: list[np.ndarray], fps: Fraction | int) -> np.ndarray:
    """H.264 round trip at crf 23 (grey frames as RGB), then shrink: the common codec control."""
    rgb = frames if frames[0].ndim == 3 else grey_to_rgb(frames)
    decoded = h264_roundtrip(rgb, fps, crf=CRF)
    return np.stack([to_small_grey(frame) for frame in decoded])


def read_clip_grey(path: Path, max_frames: int = MAX_CLIP_FRAMES) -> tuple[list[np.ndarray], Fraction]:
    """The clip's first ``max_frames`` frames, grey, ``ENCODE_PX`` square; and its rate."""
    frames = []
    with FrameReader(path, size=(ENCODE_PX, ENCODE_PX), strict=False, exact_levels=False) as reader:
        rate = reader.info.frame_rate
        for frame in reader.frames():
            frames.append(to_grey_full(frame.image))
            if len(frames) >= max_frames:
                break
    return frames, rate


def to_grey_full(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def clip_variants(path: Path) -> list[Variant]:
    frames, rate = read_clip_grey(path)
    return clip_variants_from(frames, rate)


def speed_at_play_rate(stride: Fraction, rate: Fraction) -> Fraction:
    """Speed of every ``stride``-th frame of real-time footage at ``rate`` fps, played at 30 fps."""
    return stride * PLAY_FPS / rate


def clip_variants_from(
    frames: list[np.ndarray], rate: Fraction, slowmo_source_frames: int = SLOWMO_SOURCE_FRAMES
) -> list[Variant]:
    """Ordinary footage: every k-th frame and fake slow motion by 2 and 4 (synthetic) made from its
    first ``slowmo_source_frames`` frames; speeds as played at 30 fps (``speed_at_play_rate``)."""
    rate = Fraction(rate)
    variants = [
        Variant(f"real_{k}", reencode_small(frames[::k], rate), speed_at_play_rate(Fraction(k), rate), False)
        for k in REAL_STRIDES
    ]
    source = frames[:slowmo_source_frames]
    for kind, prefix in KIND_PREFIX.items():
        for factor in SLOWMO_FACTORS:
            slowed = synthetic_slowmo(source, factor, kind)
            speed = speed_at_play_rate(Fraction(1, factor), rate)
            variants.append(Variant(f"{prefix}_{factor}", reencode_small(slowed, rate), speed, True))
    return variants


def render_variants(seed: int, texture_paths: tuple[Path, ...]) -> list[Variant]:
    rng = np.random.default_rng(seed)
    spec = random_scene(
        seed,
        width=128,
        height=96,
        capture_fps=RENDER_FPS,
        duration_frames=RENDER_FRAMES,
        object_count=int(rng.integers(2, 7)),
        texture_paths=texture_paths,
        shutter_angle_deg=float(rng.uniform(45, 360)),
        camera_pan=bool(rng.random() < 0.6),
        flicker_hz=float(rng.choice([0.0, 100.0, 120.0])),
    )
    frames = list(render_frames(spec))
    return [
        Variant(
            f"render_{n}",
            reencode_small(frames[::n], PLAY_FPS),
            Fraction(PLAY_FPS * n, RENDER_FPS),
            False,
        )
        for n in RENDER_STRIDES
    ]


def save_variants(path: Path, variants: list[Variant]) -> None:
    """One source's variants in one ``.npz``, written to a temporary name and renamed."""
    meta = {v.key: {"speed": str(v.speed), "synthetic": v.synthetic} for v in variants}
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        meta=np.array(json.dumps(meta)),
        format=np.array(CACHE_FORMAT),
        **{v.key: v.frames for v in variants},
    )
    temporary = path.with_name(path.name + ".partial")
    temporary.write_bytes(buffer.getvalue())
    temporary.replace(path)


def cache_is_current(path: Path) -> bool:
    """Whether ``path`` exists and was written under this ``CACHE_FORMAT`` (else it is rebuilt)."""
    if not path.exists():
        return False
    try:
        with np.load(path) as data:
            return "format" in data.files and int(data["format"]) == CACHE_FORMAT
    except (OSError, ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile):
        return False


def load_variants(path: Path) -> list[Variant]:
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        return [
            Variant(key, data[key], Fraction(info["speed"]), bool(info["synthetic"]))
            for key, info in meta.items()
        ]


def build_cache(
    clips_dir: Path, cache_dir: Path, *, render_seeds: tuple[int, ...] = TRAIN_RENDER_SEEDS
) -> list[Path]:
    """Fill ``cache_dir`` with one file per training source; sources already cached are skipped."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    clips = sorted(p for p in clips_dir.iterdir() if p.is_file() and p.name not in HELD_OUT_CLIPS)
    written = []
    for clip in clips:
        target = cache_dir / f"clip-{clip.stem}.npz"
        if not cache_is_current(target):
            log.info("caching clip %s", clip.name)
            save_variants(target, clip_variants(clip))
        written.append(target)
    for seed in render_seeds:
        target = cache_dir / f"render-{seed}.npz"
        if not cache_is_current(target):
            log.info("caching render seed %d", seed)
            save_variants(target, render_variants(seed, tuple(clips)))
        written.append(target)
    return written


def high_rate_variants(frames: list[np.ndarray], rate: Fraction) -> list[Variant]:
    """A clip stored at its capture rate (>= 100 fps): every n-th frame played at 30 fps, speed 30 n / P."""
    return [
        Variant(f"render_{n}", reencode_small(frames[::n], PLAY_FPS), Fraction(PLAY_FPS * n) / rate, False)
        for n in RENDER_STRIDES
        if len(frames[::n]) >= 2 * WINDOW_FRAMES
    ]


def find_clips(data_dirs: Sequence[Path]) -> list[Path]:
    """Every video file under the folders (searched recursively) or named directly, sorted."""
    clips: set[Path] = set()
    for entry in data_dirs:
        entry = Path(entry)
        if entry.is_file():
            clips.add(entry.resolve())
        elif entry.is_dir():
            clips.update(
                path.resolve()
                for path in entry.rglob("*")
                if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES
            )
        else:
            raise TrainingDataError(f"--data {entry}: no such file or folder")
    if not clips:
        raise TrainingDataError(
            f"no video files in {', '.join(str(p) for p in data_dirs)}; "
            f"looked for {', '.join(sorted(VIDEO_SUFFIXES))}"
        )
    return sorted(clips)


def user_cache_name(path: Path) -> str:
    """Cache file stem for a user's clip: its name plus a digest of its full path and size."""
    digest = hashlib.sha256(f"{path.resolve()}:{path.stat().st_size}".encode()).hexdigest()[:10]
    return f"clip-{path.stem}-{digest}"


def build_user_cache(
    clips: Sequence[Path],
    cache_dir: Path,
    *,
    render_seeds: Sequence[int] = (),
    slowmo_source_frames: int = SLOWMO_SOURCE_FRAMES,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Cache a user's clips (and optional procedural renders textured by them); skip what is cached.

    A clip below 100 fps is ordinary footage (anchors s = 1, gives subsampled and fake slow-motion
    variants); a clip at 100 fps or more is a high-rate capture (every n-th frame at 30 fps). Clips
    that cannot be decoded or are shorter than ``MIN_USER_CLIP_FRAMES`` are skipped with a warning.
    ``slowmo_source_frames`` of each clip are made into fake slow motion (fewer: a faster cache).
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    skipped: list[str] = []
    for clip in clips:
        target = cache_dir / f"{user_cache_name(clip)}.npz"
        if cache_is_current(target):
            written.append(target)
            continue
        if progress is not None:
            progress(f"reading {clip.name}")
        try:
            frames, rate = read_clip_grey(clip)
        except (CorruptMediaError, OSError, ValueError) as error:
            log.warning("training data: skipping %s: %s", clip, error)
            skipped.append(f"{clip.name} (unreadable)")
            continue
        if len(frames) < MIN_USER_CLIP_FRAMES:
            log.warning(
                "training data: skipping %s: %d frames, need at least %d",
                clip,
                len(frames),
                MIN_USER_CLIP_FRAMES,
            )
            skipped.append(f"{clip.name} ({len(frames)} frames)")
            continue
        variants = (
            high_rate_variants(frames, rate)
            if rate >= HIGH_RATE_FPS
            else clip_variants_from(frames, rate, slowmo_source_frames)
        )
        save_variants(target, variants)
        written.append(target)
    if not written:
        raise TrainingDataError(
            f"none of the {len(clips)} clips is usable ({', '.join(skipped)}); "
            f"each clip needs at least {MIN_USER_CLIP_FRAMES} decodable frames"
        )
    for seed in render_seeds:
        target = cache_dir / f"render-{seed}.npz"
        if not cache_is_current(target):
            if progress is not None:
                progress(f"rendering scene {seed}")
            save_variants(target, render_variants(seed, tuple(clips)))
        written.append(target)
    return written
