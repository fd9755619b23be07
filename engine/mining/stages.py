"""The mining stages as plain functions of a path: what runs in-process, in a pool, or as a Ray task.

Per file (``mine_file``, the unit of work; only the path and options go in, only JSON-able rows
come out, never frames):

1. ``probe_stage``: container, resolution, frame count, audio, and the metadata speed stage
   (capture-rate tags such as ``com.android.capture.fps``, a stream rate of 100 fps or more);
2. ``speed_stage``: ``engine.speed.detect_speed``, which runs the synthetic-retime check and the
   learned estimate per window on sparse probes and merges them into segments;
3. ``assess_segment``: per segment, is it genuine high-rate capture, at what capture rate, with
   what confidence, and does it pass the quality gate (see ``engine.mining.gate``);
4. ``audio_evidence`` (optional, ``audio_cue``): what the sound says per segment
   (``engine.speed.audio_pitch``, run by ``detect_speed``): resampled sound shifts pitch by the
   speed ratio, so a pitch shift where the picture changes speed confirms the change, and one
   inside a segment points to a change the picture missed (a mining aid). Evidence only: it never
   decides (most slow motion is silent or re-scored);
5. ``segment_dhash`` for accepted segments: the perceptual hash used to drop near-duplicates.

What "genuine slow motion" means for the dataset: a segment whose frames were captured at a high
rate. Either it plays slower than it was shot (class ``slowmo``: C > P, e.g. 240 fps played at
30), or it is a high-rate stream stored at its capture rate (P >= 100 fps) whose frames move as
little per frame as a high-rate capture does. Fake slow motion (duplicated, blended or
interpolated frames), real-time, sped-up and still segments are recorded and rejected.

A note on the learned estimate at high playback rates: the network judges motion per frame, so
on a 240 fps stream it reads about what it reads when the same frames play at 30 fps. For a
high-rate stream the capture rate therefore comes from the container (C = P), and the learned
reading is kept as evidence (``pixel_speed_at_30fps``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import socket
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from engine.errors import ChronoscopeError, InsufficientFramesError, UnsupportedOptionError
from engine.media import FrameReader, probe
from engine.mining.dedupe import dhash_words, words_distance
from engine.mining.manifest import STATUS_ERROR, STATUS_MISSING, STATUS_UNREADABLE
from engine.mining.storage import CachePolicy, local_copy
from engine.speed import SpeedClass, SpeedModel, detect_speed, metadata_stage, read_rate_metadata
from engine.speed.detect import HIGH_RATE_LOG2, DetectionResult
from engine.speed.metadata_stage import MetadataFinding
from engine.speed.result import SpeedSegment, fraction_to_json

log = logging.getLogger(__name__)

REFERENCE_FPS = Fraction(30)
STANDARD_CAPTURE_RATES = tuple(
    Fraction(rate)
    for rate in (48, 50, 60, 90, 96, 100, 120, 150, 180, 200, 240, 300, 360, 400, 480, 500, 960, 1000)
)
SNAP_TOLERANCE_LOG2 = 0.25
OWN_RATE_TOLERANCE = Fraction(1, 20)
"""A capture-rate tag within 5 % of a high-rate stream's rate is its own rate (a phone's 240 fps
tag on a variable-frame-rate stream averaging 240.24 fps)."""
DHASH_FRAMES = 8
DHASH_SIZE = 8
DHASH_READ_WIDTH_PX = 160
UNREADABLE = (ChronoscopeError, OSError, av.error.FFmpegError, EOFError)


@dataclass
class MineSettings:
    """What every task needs to know; plain values so that it pickles for pools and Ray."""

    min_confidence: float
    density: float = 0.12
    audio_cue: bool = False
    model_threads: int = 0
    dhash: bool = True
    cache: CachePolicy = field(default_factory=CachePolicy)


@functools.lru_cache(maxsize=4)
def _model(threads: int) -> SpeedModel:
    """One speed model per process and thread setting (workers use 1 thread each)."""
    if threads:
        cv2.setNumThreads(threads)
    return SpeedModel(threads=threads)


def probe_stage(path: Path) -> tuple[dict[str, Any], MetadataFinding]:
    """Stage 1: the facts about the file, and what its metadata says about speed."""
    info = probe(path)
    video = info.video_stream
    finding = metadata_stage(read_rate_metadata(path))
    facts = {
        "container": info.container_format,
        "codec": video.codec,
        "width": video.width,
        "height": video.height,
        "frame_count": video.frame_count,
        "playback_rate": fraction_to_json(video.frame_rate),
        "duration_s": float(video.duration_s),
        "has_audio": bool(info.audio),
        "variable_frame_rate": bool(video.is_vfr),
    }
    return facts, finding


def speed_stage(path: Path, settings: MineSettings) -> DetectionResult:
    """Stages 2 to 4 of the speed detector: synthetic-retime check, learned windows, segments."""
    return detect_speed(
        path, density=settings.density, model=_model(settings.model_threads), audio=settings.audio_cue
    )


def snap_capture_rate(rate: Fraction) -> Fraction:
    """A measured capture rate as the nearest standard camera rate when within about 19 %."""
    best = min(STANDARD_CAPTURE_RATES, key=lambda standard: abs(math.log2(standard / rate)))
    if abs(math.log2(best / rate)) <= SNAP_TOLERANCE_LOG2:
        return best
    return Fraction(round(rate))


@dataclass
class Assessment:
    """The mining reading of one segment."""

    speed_class: str
    speed: Fraction | None
    capture_rate: Fraction | None
    conform_rate: Fraction | None
    confidence: float
    accepted: bool
    reason: str
    basis: str


def assess_segment(
    segment: SpeedSegment, playback_rate: Fraction, finding: MetadataFinding, min_confidence: float
) -> Assessment:
    """Is this segment genuine high-rate capture, at what rate, and does it pass the gate?

    The frames decide first (``segment.pixel_estimate``: what they read before any metadata
    restated the segment): still or made frames are never accepted, whatever a tag says. A
    capture-rate tag above the playback rate is accepted where the frames read slow motion too
    (one below it, a time-lapse, never is);
    a stream of 100 fps or more (untagged, or tagged with its own rate, within
    ``OWN_RATE_TOLERANCE`` for variable frame rates) where they read real time or slow motion."""
    estimate = segment.estimate
    pixels = segment.pixel_estimate
    pixel_class = pixels.speed_class
    confidence = pixels.confidence
    if pixel_class is SpeedClass.STILL:
        return Assessment(
            "still", None, None, None, confidence, False, "still: too little motion to tell", "pixels"
        )
    if pixel_class is SpeedClass.SYNTHETIC_SLOWMO:
        return Assessment(
            "synthetic_slowmo",
            pixels.speed,
            pixels.capture_rate,
            None,
            confidence,
            False,
            "fake slow motion: duplicated, blended or interpolated frames",
            "pixels",
        )
    tag = finding.capture_rate_tag
    own_rate_tag = tag is not None and abs(tag / playback_rate - 1) <= OWN_RATE_TOLERANCE
    if tag is not None and tag < playback_rate and not own_rate_tag:  # a time-lapse
        return Assessment(
            estimate.speed_class.value,
            estimate.speed,
            tag,
            None,
            confidence,
            False,
            f"the capture-rate tag says {float(tag):g} fps, below the {float(playback_rate):g} fps it "
            "plays at: sped up, not slow motion",
            "capture-rate tag",
        )
    if tag is not None and tag > playback_rate and not own_rate_tag:
        if pixel_class is not SpeedClass.SLOWMO:
            return Assessment(
                pixel_class.value,
                pixels.speed,
                pixels.capture_rate,
                None,
                confidence,
                False,
                f"the capture-rate tag says {float(tag):g} fps, but the frames read "
                f"{pixel_class.value}: a tag alone is not accepted",
                "pixels",
            )
        capture, basis = tag, "capture-rate tag, pixels agree"
        confidence = max(confidence, finding.estimate.confidence if finding.estimate else 0.0)
        speed_class, speed = "slowmo", playback_rate / tag
    elif finding.high_rate_stream and (tag is None or own_rate_tag):
        capture, speed = tag or playback_rate, Fraction(1)
        confidence = estimate.confidence
        # as detect judges a high-rate stream (``high_rate_agrees``): frames read within 4x of
        # real time agree with a capture at the stream's rate (a 240 fps render read 1.45x fast)
        near_own_rate = pixels.speed is not None and abs(math.log2(pixels.speed)) <= HIGH_RATE_LOG2
        if pixel_class in (SpeedClass.SLOWMO, SpeedClass.REALTIME) or near_own_rate:
            speed_class, basis = (
                "realtime",
                "high-rate stream at its own rate; frames move like a high-rate capture",
            )
        else:
            speed_class, basis = "realtime", "high-rate stream, but its frames move like real time at 30 fps"
            confidence = finding.estimate.confidence if finding.estimate else 0.0
            confidence = min(confidence, 1.0 - estimate.confidence)
    elif pixel_class is SpeedClass.SLOWMO:
        speed_class, speed, capture, basis = "slowmo", pixels.speed, pixels.capture_rate, "pixels"
    else:
        return Assessment(
            pixel_class.value,
            pixels.speed,
            pixels.capture_rate,
            None,
            confidence,
            False,
            f"{pixel_class.value}: not slow motion",
            "pixels",
        )
    assert capture is not None
    conform = capture if basis != "pixels" else snap_capture_rate(capture)
    if confidence < min_confidence:
        return Assessment(
            speed_class,
            speed,
            capture,
            conform,
            confidence,
            False,
            f"confidence {confidence:.3f} below the gate {min_confidence:.3f}",
            basis,
        )
    return Assessment(
        speed_class, speed, capture, conform, confidence, True, "genuine high-rate capture", basis
    )


def dhash_image(image: np.ndarray, size: int = DHASH_SIZE) -> int:
    """Difference hash: grey, (size+1) x size, one bit per horizontal neighbour pair."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    small = cv2.resize(grey, (size + 1, size), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int("".join("1" if bit else "0" for bit in bits), 2)


def segment_dhash(path: Path, start_frame: int, end_frame: int) -> str:
    """dHash of ``DHASH_FRAMES`` frames spread over the segment, as hex words joined by '-'."""
    count = end_frame - start_frame
    picks = sorted({start_frame + (count * (2 * k + 1)) // (2 * DHASH_FRAMES) for k in range(DHASH_FRAMES)})
    words = []
    with FrameReader(path, strict=False) as reader:
        info = reader.info
        height = max(2, int(round(info.height * DHASH_READ_WIDTH_PX / info.width / 2)) * 2)
    with FrameReader(path, size=(DHASH_READ_WIDTH_PX, height), strict=False, exact_levels=False) as reader:
        for index in picks:
            words.append(f"{dhash_image(reader.read_frame(index).image):016x}")
    return "-".join(words)


def dhash_distance(first: str, second: str) -> float:
    """How far apart two segments look: for each frame hash of one list, the Hamming
    distance (bits of 64) to the nearest frame hash of the other, averaged; the smaller of the
    two directions.

    Matching frames to their nearest rather than position to position finds a segment that is
    a part of another (a slow-motion replay cut from a longer capture, a segment boundary placed
    differently in two copies of the same footage).
    """
    return words_distance(dhash_words(first), dhash_words(second))


def audio_evidence(result: DetectionResult, start_s: float, end_s: float) -> list[dict[str, Any]]:
    """What the sound says about one segment (``engine.speed.audio_pitch``): the pitch shift at
    its start where the picture changes speed there, and pitch shifts inside it. Evidence only:
    ``value`` is the sound's speed ratio (after over before), never a decision."""
    audio = result.audio
    if audio is None:
        return []
    if audio.status != "used":
        return [{"finding": "audio", "value": audio.status, "weight": 0.0}]
    entries: list[dict[str, Any]] = []
    for check in audio.boundaries:
        if abs(check.time_s - start_s) < 1e-6:
            entries.append(
                {
                    "finding": "pitch shift where the picture changes speed",
                    "value": None if check.shift is None else check.shift.speed_ratio,
                    "video_speed_ratio": check.video_ratio,
                    "verdict": check.verdict,
                    "weight": 0.0,
                }
            )
    for change in audio.changes:
        if start_s < change.time_s < end_s:
            entries.append(
                {
                    "finding": "pitch shift inside the segment",
                    "value": change.shift.speed_ratio,
                    "time_s": change.time_s,
                    "weight": 0.0,
                }
            )
    return entries or [{"finding": "no pitch shift", "value": None, "weight": 0.0}]


def _evidence_by_stage(result: DetectionResult, segment: SpeedSegment) -> dict[str, list[dict[str, Any]]]:
    """What each stage said about the clip and the segment, then per probe inside the segment.

    Per-probe entries carry ``probe_frames`` [start, end): the synthetic-retime check's finding
    is only there (the segment's merged estimate keeps the learned stage's summary), and a reader
    of the manifest must see both stages to judge a rejection.
    """
    grouped: dict[str, list[dict[str, Any]]] = {}
    for item in list(result.estimate.evidence) + list(segment.estimate.evidence):
        entry = item.to_dict()
        stage = entry.pop("stage")
        if entry not in grouped.setdefault(stage, []):
            grouped[stage].append(entry)
    for window in result.curve:
        if window.start_frame < segment.start_frame or window.start_frame >= segment.end_frame:
            continue
        for item in window.estimate.evidence:
            entry = item.to_dict()
            stage = entry.pop("stage")
            entry["probe_frames"] = [window.start_frame, window.end_frame]
            grouped.setdefault(stage, []).append(entry)
    return grouped


def file_row(
    source: str, digest: str, status: str, reason: str, facts: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The row of a file that gave no segment: corrupt, not a video, too short."""
    row = {"row": "file", "source": source, "content_hash": digest, "status": status, "reason": reason}
    row.update(facts or {})
    return row


def mine_file(source: str, digest: str, settings: MineSettings) -> list[dict[str, Any]]:
    """All stages on one file or object; its manifest rows (without the run bookkeeping fields).

    ``source`` is a local path or a URL (copied to the cache for decoding, see
    ``engine.mining.storage``). Unreadable, corrupt, non-video and too-short files give one
    ``file`` row with the reason; they never raise. Anything else is a bug and propagates. Every
    row carries ``task``: the wall and CPU seconds of this call and the worker that ran it.
    """
    started_s, started_cpu_s = time.perf_counter(), time.process_time()
    with contextlib.ExitStack() as stack:
        try:
            path: Path | None = stack.enter_context(local_copy(source, digest, settings.cache))
        except UnsupportedOptionError as error:
            # how this run was asked to read the source (a sequence's rate), not a fact about the
            # content: a transient row, tried again by the next run
            path = None
            rows = [file_row(source, digest, STATUS_ERROR, f"cannot be read as asked: {error}")]
        except UNREADABLE as error:
            path, reason = None, f"cannot be fetched: {error}"
            rows = [file_row(source, digest, _status(error), reason)]
        fetched_s = time.perf_counter() - started_s
        if path is not None:
            rows = _mine_local(source, path, digest, settings)
    task = {
        "wall_s": round(time.perf_counter() - started_s, 4),
        "cpu_s": round(time.process_time() - started_cpu_s, 4),
        "fetch_s": round(fetched_s, 4),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }
    for row in rows:
        row["task"] = task
    return rows


def _mine_local(source: str, path: Path, digest: str, settings: MineSettings) -> list[dict[str, Any]]:
    try:
        facts, finding = probe_stage(path)
    except UNREADABLE as error:
        return [file_row(source, digest, _status(error), _reason(error, path, source))]
    try:
        result = speed_stage(path, settings)
    except InsufficientFramesError as error:
        return [file_row(source, digest, "too_short", _reason(error, path, source), facts)]
    except UNREADABLE as error:
        return [file_row(source, digest, _status(error), _reason(error, path, source), facts)]
    playback_rate = result.estimate.playback_rate
    times = result.frame_times
    spans = [(times(segment.start_frame), times(segment.end_frame)) for segment in result.segments]
    rows = []
    for index, segment in enumerate(result.segments):
        reading = assess_segment(segment, playback_rate, finding, settings.min_confidence)
        estimate = segment.estimate
        evidence = _evidence_by_stage(result, segment)
        if estimate.speed is not None:
            evidence.setdefault("learned", []).append(
                {
                    "finding": "pixel_speed_at_30fps",
                    "value": float(estimate.speed * REFERENCE_FPS / playback_rate),
                    "weight": 0.0,
                }
            )
        if settings.audio_cue:
            evidence["audio_pitch"] = audio_evidence(result, float(spans[index][0]), float(spans[index][1]))
        start_s, end_s = spans[index]
        row = {
            "row": "segment",
            "source": source,
            "content_hash": digest,
            "segment_index": index,
            "segment_count": len(result.segments),
            "start_s": float(start_s),
            "end_s": float(end_s),
            "start_frame": segment.start_frame,
            "end_frame": segment.end_frame,
            "playback_fps": float(playback_rate),
            "capture_fps": None if reading.capture_rate is None else float(reading.capture_rate),
            "conform_fps": None if reading.conform_rate is None else float(reading.conform_rate),
            "conform_rate": fraction_to_json(reading.conform_rate),
            "speed": None if reading.speed is None else float(reading.speed),
            "class": reading.speed_class,
            "confidence": round(reading.confidence, 4),
            "accepted": reading.accepted,
            "reason": reading.reason,
            "basis": reading.basis,
            "detector": {
                "class": estimate.speed_class.value,
                "speed": None if estimate.speed is None else float(estimate.speed),
                "confidence": round(estimate.confidence, 4),
                "clip_class": result.estimate.speed_class.value,
                "decided_by": result.decided_by,
            },
            "evidence": evidence,
            "analysis": result.analysis.to_dict(),
            "dhash": None,
        }
        row.update(facts)
        if reading.accepted and settings.dhash:
            try:
                row["dhash"] = segment_dhash(path, segment.start_frame, segment.end_frame)
            except UNREADABLE as error:
                # damage inside the segment: its frames cannot be decoded, so no clip can be made
                row["accepted"] = False
                row["reason"] = f"frames in this segment cannot be decoded: {_reason(error, path, source)}"
        rows.append(row)
    return rows


def _reason(error: BaseException, path: Path, source: str) -> str:
    """The error's message about the source as the user named it, not about a cached copy of it."""
    return str(error).replace(str(path), source)


def _status(error: BaseException) -> str:
    """The file row's status: a fact about the content, or a transient outcome (the file was
    away, an I/O error) that the next run tries again (``engine.mining.manifest.TRANSIENT_STATUSES``)."""
    name = type(error).__name__
    named = {
        "NotVideoError": "not_video",
        "MediaNotFoundError": STATUS_MISSING,
        "EmptyMediaError": "empty",
        "CorruptMediaError": "corrupt",
    }.get(name)
    if named is not None:
        return named
    if isinstance(error, FileNotFoundError):
        return STATUS_MISSING
    if isinstance(error, OSError):
        return STATUS_UNREADABLE
    return "undecodable"
