"""The first, cheapest speed stage: what the container says about capture rate and playback rate.

What each finding means for the speed s = P / C (P = the stream's playback rate, C = capture rate):

- ``com.android.capture.fps`` (Android MediaRecorder, written as an ``mdta`` key in MP4/MOV) is C.
  A 240 fps capture stored at 30 fps gives s = 30/240 = 1/8, genuine slow motion. A time lapse
  (capture 1 fps, stored at 30) gives s = 30, sped up. C equal to P is real time.
- A stream rate of 100 fps or more without a capture tag is a high-rate capture stored at its own
  rate. Played as the file says, it runs in real time: s = 1 and C = P. It is the raw material of
  genuine slow motion (conformed to 30 fps it gives s = 30 / P), which is what editors do with it,
  so the evidence carries that conform speed. Confidence is moderate: a high rate can also come
  from frame interpolation, which the synthetic-retime stage checks next.
- ``com.apple.quicktime.full-frame-rate-playback-intent`` = 1 on a high-rate file says "play at the
  full rate": real time, high confidence. Its value 0 appears on ordinary iPhone clips and on
  slow-motion originals alike, so it is recorded as evidence of weight 0 and decides nothing.
- A stream below 100 fps with no capture tag says nothing about speed: the stage returns no
  estimate and the next stages decide.

The stage's input is a plain ``RateMetadata`` record (rates and tags), so it is testable without
files. ``read_rate_metadata`` fills one from a file through PyAV.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from engine.errors import NotVideoError
from engine.media._open import open_input, video_streams
from engine.speed.result import Evidence, SpeedClass, SpeedEstimate

log = logging.getLogger(__name__)

STAGE = "metadata"
HIGH_RATE_FPS = Fraction(100)
CONFORM_RATE_FPS = Fraction(30)
MAX_TAG_RATE_FPS = Fraction(1_000_000)
REALTIME_TOLERANCE = Fraction(1, 100)
RATE_MAX_DENOMINATOR = 1001

ANDROID_CAPTURE_FPS = "com.android.capture.fps"
APPLE_FULL_RATE_INTENT = "com.apple.quicktime.full-frame-rate-playback-intent"
APPLE_MAKE = "com.apple.quicktime.make"
CAPTURE_RATE_TAGS = (ANDROID_CAPTURE_FPS,)

CONFIDENCE_CAPTURE_TAG = 0.9
CONFIDENCE_FULL_RATE_INTENT = 0.85
CONFIDENCE_HIGH_RATE_STREAM = 0.6


@dataclass
class RateMetadata:
    """What the metadata stage looks at: the stream's rate and the tags of container and stream.

    ``playback_rate`` is the average frame rate of the video stream (frames over duration), the
    rate an editor's timeline plays it at. ``tags`` merges container and video-stream tags with
    lower-cased keys (container wins on a clash).
    """

    playback_rate: Fraction
    tags: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        self.playback_rate = Fraction(self.playback_rate)
        self.tags = {str(key).lower(): str(value) for key, value in self.tags.items()}


@dataclass
class MetadataFinding:
    """The stage's answer: an estimate when the metadata decides, and the evidence either way."""

    estimate: SpeedEstimate | None
    evidence: list[Evidence] = field(default_factory=list)
    capture_rate_tag: Fraction | None = None
    high_rate_stream: bool = False


def rate_from_tag(text: str) -> Fraction | None:
    """Parse a frame-rate tag ("240.000000", "29.97", "30000/1001"); None when it is not a rate."""
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        try:
            number = float(text)
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        value = Fraction(number)
    if value <= 0 or value > MAX_TAG_RATE_FPS:
        return None
    return value.limit_denominator(RATE_MAX_DENOMINATOR)


def read_rate_metadata(path: Path) -> RateMetadata:
    """Read the video stream's average rate and all container and stream tags through PyAV.

    Raises ``MediaNotFoundError`` for a missing file, ``NotVideoError`` for a folder or a file with
    no video stream, and ``CorruptMediaError`` for a media file that cannot be opened (cut short
    before its index, damaged).
    """
    path = Path(path)
    with open_input(path) as container:
        videos = video_streams(container)
        if not videos:
            raise NotVideoError(f"{path} has no video stream")
        stream = videos[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate:
            raise NotVideoError(f"{path}: the video stream has no frame rate")
        tags = {key.lower(): value for key, value in stream.metadata.items()}
        tags.update({key.lower(): value for key, value in container.metadata.items()})
    return RateMetadata(playback_rate=Fraction(rate), tags=tags, source=str(path))


def _is_realtime(speed: Fraction) -> bool:
    return abs(speed - 1) <= REALTIME_TOLERANCE


def _class_for_speed(speed: Fraction) -> SpeedClass:
    if _is_realtime(speed):
        return SpeedClass.REALTIME
    return SpeedClass.SLOWMO if speed < 1 else SpeedClass.SPED_UP


def _capture_rate_from_tags(meta: RateMetadata, evidence: list[Evidence]) -> tuple[str, Fraction] | None:
    for key in CAPTURE_RATE_TAGS:
        if key not in meta.tags:
            continue
        rate = rate_from_tag(meta.tags[key])
        if rate is None:
            log.warning(
                "%s: ignoring capture-rate tag %s=%r: not a positive frame rate",
                meta.source or "clip",
                key,
                meta.tags[key],
            )
            evidence.append(Evidence(STAGE, f"unreadable tag {key}", meta.tags[key], 0.0))
            continue
        return key, rate
    return None


def metadata_stage(meta: RateMetadata) -> MetadataFinding:
    """Decide what the container metadata says about speed; see the module docstring."""
    playback = meta.playback_rate
    evidence: list[Evidence] = [Evidence(STAGE, "stream playback rate fps", float(playback), 0.0)]
    high_rate = playback >= HIGH_RATE_FPS

    tagged = _capture_rate_from_tags(meta, evidence)
    if tagged is not None:
        key, capture = tagged
        speed = playback / capture
        evidence.append(Evidence(STAGE, f"capture rate tag {key}", float(capture), CONFIDENCE_CAPTURE_TAG))
        speed_class = _class_for_speed(speed)
        if speed_class is SpeedClass.REALTIME:
            capture = playback
        estimate = SpeedEstimate(
            speed=Fraction(1) if speed_class is SpeedClass.REALTIME else speed,
            playback_rate=playback,
            capture_rate=capture,
            confidence=CONFIDENCE_CAPTURE_TAG,
            speed_class=speed_class,
            evidence=list(evidence),
        )
        if high_rate and speed_class is SpeedClass.REALTIME:
            estimate.evidence.append(
                Evidence(STAGE, "speed if conformed to 30 fps", float(CONFORM_RATE_FPS / playback), 0.0)
            )
        return MetadataFinding(
            estimate, estimate.evidence, capture_rate_tag=capture, high_rate_stream=high_rate
        )

    intent = meta.tags.get(APPLE_FULL_RATE_INTENT, "").strip()
    if intent:
        evidence.append(
            Evidence(
                STAGE,
                f"tag {APPLE_FULL_RATE_INTENT}",
                intent,
                CONFIDENCE_FULL_RATE_INTENT if intent == "1" and high_rate else 0.0,
            )
        )

    if not high_rate:
        evidence.append(Evidence(STAGE, "no capture-rate metadata and stream below 100 fps", None, 0.0))
        return MetadataFinding(None, evidence)

    confidence = CONFIDENCE_FULL_RATE_INTENT if intent == "1" else CONFIDENCE_HIGH_RATE_STREAM
    evidence.append(Evidence(STAGE, "high-rate stream played at its own rate", float(playback), confidence))
    evidence.append(Evidence(STAGE, "speed if conformed to 30 fps", float(CONFORM_RATE_FPS / playback), 0.0))
    estimate = SpeedEstimate(
        speed=Fraction(1),
        playback_rate=playback,
        capture_rate=playback,
        confidence=confidence,
        speed_class=SpeedClass.REALTIME,
        evidence=list(evidence),
    )
    return MetadataFinding(estimate, estimate.evidence, high_rate_stream=True)
