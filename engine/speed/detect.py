"""``detect_speed``: a clip in, its playback speed out, per segment, with the evidence behind it.

Stages, cheapest first:

1. container metadata (``metadata_stage``): a capture-rate tag decides the clip on its own;
2. sparse probes: short spans of consecutive frames (``PROBE_FRAMES``), spread over the clip and
   started at keyframes where possible, decoded once at reduced size (the decoder scales while
   converting). Each probe gets
   - the synthetic-retime check (duplicated, blended, interpolated frames) on a few of them
     (``RetimeSchedule``: a still probe passes its check on to the next; once made frames are
     found, every later probe that reads still or slow is checked, and so, read again, is every
     earlier one that was not),
   - the learned estimator (``estimate_span``: windows, re-speeding of slow spans, ``still``);
3. per probe an estimate, then the clip's estimate (median over the probes that move) and
   segments where the speed changes (ramps, replays) by merging neighbouring probes that agree;
4. with ``audio``, the sound (``engine.speed.audio_pitch``): evidence only, never a decision.

Decisions between the stages (measured in engine/speed/model/MODEL_CARD.md):
- the network reads speed as if the frames played at 30 fps; the playback rate's offset
  log2(P / 30) is added (``rate_offset_log2``; above 30 fps only for version-1 networks such as
  the shipped one),
- a blend or interpolation pattern decides only when strong, or when the network agrees
  (``retime_agrees``); duplicates decide alone,
- a stream of 100 fps or more with no capture tag is captured at its own rate (C = P) unless
  the frames say otherwise (``high_rate_agrees``),
- where the synthetic-retime check had enough motion to test for made frames and found none,
  the network alone needs a synthetic probability above ``UNPATTERNED_SYNTHETIC_PROBABILITY``
  (0.8, not 0.5) to call frames made (``network_synthetic_bar``); so does a probe too short for
  the check (under ``RETIME_MIN_FRAMES``, 12), whose call of made frames keeps half its
  confidence, and the evidence says the check could not run,
- the clip is made slow motion when most probes whose check could tell found a pattern, or half
  of them with one pattern decisive on its own, or when every probe was called made
  (``_aggregate``): a clip never contradicts probes that all agree.

Time is exact inside (frame pts times the stream's time base); seconds appear only in
``DetectionResult.to_json``. Variable frame rate needs nothing special: probes are placed by
frame index and reported by their timestamps; a jump in the timestamps (frames missing) is named
in ``analysis.notes``. A damaged stream is read with ``strict=False``; what could not be decoded is
listed in ``analysis.notes``, a probe lost to damage is read again from the first keyframe after
the damage (``replacement_probe``), and the result covers the rest.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from engine.errors import CorruptMediaError, InsufficientFramesError, UnsupportedOptionError
from engine.media import FrameReader
from engine.media.probe import video_info_and_index
from engine.speed.audio_pitch import AudioFindings, audio_findings
from engine.speed.estimator import (
    MODEL_LOG2_SIGMA,
    RESPEED_BELOW_LOG2,
    SpanEstimate,
    SpeedModel,
    estimate_span,
    shared_model,
)
from engine.speed.metadata_stage import HIGH_RATE_FPS, RateMetadata, metadata_stage, read_rate_metadata
from engine.speed.result import Evidence, SpeedClass, SpeedEstimate, SpeedSegment, WindowEstimate
from engine.speed.synthetic_retime import MIN_FRAMES as RETIME_MIN_FRAMES
from engine.speed.synthetic_retime import RetimeFinding, detect_synthetic_retime
from engine.speed.windows import WINDOW_FRAMES

log = logging.getLogger(__name__)

PROBE_FRAMES = 32
MIN_PROBES = 3
MAX_PROBES = 40
RETIME_PROBES = 2
RETIME_FRAMES = 24
DEFAULT_DENSITY = 0.08
READ_WIDTH_PX = 320
REALTIME_LOG2 = 0.5
SYNTHETIC_PROBABILITY = 0.5
UNPATTERNED_SYNTHETIC_PROBABILITY = 0.8
RETIME_MIN_CONFIDENCE = 0.5
UNCHECKED_MADE_WEIGHT = 0.5
"""A probe too short for the made-frame check (8-11 frames) that the network alone calls made
keeps half the confidence: one window of real-time sam2-juggle read made at 0.81 (0.79 overall)."""
SEGMENT_JOIN_LOG2 = 0.6
DECISIVE_METADATA_CONFIDENCE = 0.85
KEYFRAME_SNAP_FRAMES = 2 * PROBE_FRAMES
REFERENCE_FPS = Fraction(30)
HIGH_RATE_LOG2 = 2.0
RETIME_DECISIVE_CONFIDENCE = 0.8
RETIME_AGREEMENT_LOG2 = 2 * MODEL_LOG2_SIGMA
_NORMAL = NormalDist()
MISSING_FRAMES_TOLERANCE = 0.02
GAP_STEPS = 4
MAX_GAP_NOTES = 5
MIN_SIDE_PX = 32
PATTERN_VOTE = "probes with periodic made frames"
EVERY_PROBE_MADE = "every probe called made"


@dataclass
class ProbeResult:
    """One probe: its frame range, what each stage said, and the combined estimate."""

    start_frame: int
    end_frame: int
    span: SpanEstimate
    retime: RetimeFinding | None
    estimate: SpeedEstimate


@dataclass
class Analysis:
    """What was looked at: frames in the clip, frames decoded, probes, and anything that went wrong."""

    frame_count: int
    frames_decoded: int = 0
    probes_planned: int = 0
    probes_analysed: int = 0
    is_vfr: bool = False
    complete: bool = True
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame_count": self.frame_count,
            "frames_decoded": self.frames_decoded,
            "probes_planned": self.probes_planned,
            "probes_analysed": self.probes_analysed,
            "variable_frame_rate": self.is_vfr,
            "complete": self.complete,
            "notes": list(self.notes),
        }


@dataclass
class DetectionResult:
    """The clip's estimate, its segments and speed curve (per probe), and what was analysed;
    ``probes`` keeps each probe's stages (for benchmarks and debugging, not in the JSON).

    ``frame_times`` maps a frame index to its presentation time (exact seconds, a Fraction);
    index ``frame_count`` gives the end of the clip.
    """

    estimate: SpeedEstimate
    segments: list[SpeedSegment]
    curve: list[WindowEstimate]
    analysis: Analysis
    decided_by: str
    frame_times: Callable[[int], Fraction]
    model_provider: str = ""
    learned_log2_speed: float | None = None
    synthetic_probability: float | None = None
    audio: AudioFindings | None = None
    probes: list[ProbeResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The JSON of ``chronoscope detect --json`` (seconds and floats at this edge only)."""
        estimate = self.estimate

        def speed_of(item: SpeedEstimate) -> float | None:
            return None if item.speed is None else float(item.speed)

        def span(start: int, end: int, item: SpeedEstimate) -> dict[str, Any]:
            return {
                "start": float(self.frame_times(start)),
                "end": float(self.frame_times(end)),
                "start_frame": start,
                "end_frame": end,
                "speed": speed_of(item),
                "class": item.speed_class.value,
                "confidence": round(item.confidence, 4),
                "log2_sigma": round(item.speed_log2_sigma, 4),
            }

        return {
            "speed": speed_of(estimate),
            "speed_exact": None if estimate.speed is None else str(estimate.speed),
            "playback_fps": float(estimate.playback_rate),
            "capture_fps": _capture_fps(estimate),
            "class": estimate.speed_class.value,
            "confidence": round(estimate.confidence, 4),
            "log2_sigma": round(estimate.speed_log2_sigma, 4),
            "segments": [span(s.start_frame, s.end_frame, s.estimate) for s in self.segments],
            "curve": [span(w.start_frame, w.end_frame, w.estimate) for w in self.curve],
            "evidence": {
                "decided_by": self.decided_by,
                "model_provider": self.model_provider,
                "items": [item.to_dict() for item in estimate.evidence],
                "audio": (self.audio or AudioFindings("off")).to_dict(),
            },
            "scores": {
                "learned_log2_speed": self.learned_log2_speed,
                "synthetic_probability": self.synthetic_probability,
            },
            "analysis": self.analysis.to_dict(),
        }


def _capture_fps(estimate: SpeedEstimate) -> float | None:
    """The capture rate for the JSON: None for made slow motion (its frames were not captured at
    playback / speed; that rate, 119.88 fps for 4x made frames at 29.97, named no camera) and for
    a still clip."""
    if estimate.capture_rate is None or estimate.speed_class is SpeedClass.SYNTHETIC_SLOWMO:
        return None
    return float(estimate.capture_rate)


def class_for_log2(log2_speed: float) -> SpeedClass:
    if log2_speed > REALTIME_LOG2:
        return SpeedClass.SPED_UP
    if log2_speed < -REALTIME_LOG2:
        return SpeedClass.SLOWMO
    return SpeedClass.REALTIME


def class_confidence(speed_class: SpeedClass, log2_speed: float, sigma: float) -> float:
    """Probability that the true log2 speed lies in ``speed_class``'s range, under N(log2, sigma)."""
    sigma = max(sigma, 1e-3)
    below = _NORMAL.cdf((-REALTIME_LOG2 - log2_speed) / sigma)
    above = 1.0 - _NORMAL.cdf((REALTIME_LOG2 - log2_speed) / sigma)
    value = {SpeedClass.SLOWMO: below, SpeedClass.SPED_UP: above}.get(speed_class, 1.0 - below - above)
    return float(min(max(value, 0.01), 0.99))


def _learned_estimate(
    log2_speed: float,
    sigma: float,
    synthetic_probability: float,
    playback_rate: Fraction,
    evidence: list[Evidence],
    *,
    snap_realtime: bool = True,
    synthetic_bar: float = SYNTHETIC_PROBABILITY,
) -> SpeedEstimate:
    speed_class = class_for_log2(log2_speed)
    confidence = class_confidence(speed_class, log2_speed, sigma)
    # A stream of 100 fps or more reads real time once its rate is taken into account, so made
    # frames there (30 fps footage interpolated up to 240 and stored at 240) never read slow:
    # the network's call decides them too (genuine 240 fps renders stored at 240: 0.0001).
    made_high_rate = playback_rate >= HIGH_RATE_FPS and speed_class is SpeedClass.REALTIME
    if (speed_class is SpeedClass.SLOWMO or made_high_rate) and synthetic_probability > synthetic_bar:
        speed_class, confidence = SpeedClass.SYNTHETIC_SLOWMO, synthetic_probability * confidence
    elif speed_class is SpeedClass.SLOWMO:
        confidence *= 1.0 - synthetic_probability
    snap = snap_realtime and speed_class is SpeedClass.REALTIME
    speed = Fraction(1) if snap else Fraction(2.0**log2_speed)
    return SpeedEstimate(
        speed=speed,
        playback_rate=playback_rate,
        capture_rate=None,
        confidence=float(min(max(confidence, 0.01), 0.99)),
        speed_class=speed_class,
        speed_log2_sigma=sigma,
        evidence=evidence,
    )


def rate_offset_log2(playback_rate: Fraction, *, every_rate: bool) -> float:
    """What to add to the network's log2 speed for a stream played at ``playback_rate``.

    The network sees frames, not timestamps: it reads the speed the frames would have played at
    30 fps. A stream played faster shows less motion per frame at the same speed: 60 fps real-time
    footage reads as 2x slow and a 240 fps capture stored at 240 as 8x slow; a 10 fps one reads
    3x fast. So log2 s = network + log2(P / 30) (0 at 30 fps, -0.32 at 24). A network trained so
    (recipe version 2, ``SpeedModel.reads_at_play_rate``) gets it at every rate; version-1
    networks (the shipped one, and fine-tunes made before version 2) anchored all ordinary footage
    at 0 whatever its rate, so ``every_rate=False`` adds it above 30 fps only.
    """
    if not every_rate and playback_rate <= REFERENCE_FPS:
        return 0.0
    return math.log2(playback_rate / REFERENCE_FPS)


def network_synthetic_bar(findings: Sequence[RetimeFinding | None], evidence: list[Evidence]) -> float:
    """The synthetic probability the network needs to call frames made on its own.

    When most checked windows had enough textured motion for the linear-motion test and showed
    no periodic made frames, that absence is evidence: the bar rises from 0.5 to
    ``UNPATTERNED_SYNTHETIC_PROBABILITY``. On validation data (renders of seeds 2000-2007 and
    made slow motion of the training clips) the network alone called 3 genuine renders made at
    0.66, 0.72 and 0.98 with no pattern found, and made slow motion with no pattern found at 0.82
    to 0.99: 0.8 removes two of the three without losing any made case. A higher bar would
    lose made cases the pattern tests miss (coffee 0.93-0.94, a render at 0.82).
    """
    checked = [item for item in findings if item is not None and item.kind != "still"]
    unpatterned = [item for item in checked if item.kind == "none" and item.motion_tested]
    if checked and 2 * len(unpatterned) > len(checked):
        evidence.append(
            Evidence(
                "synthetic_retime",
                "motion tested, no periodic made frames: the network alone needs more",
                UNPATTERNED_SYNTHETIC_PROBABILITY,
                0.0,
            )
        )
        return UNPATTERNED_SYNTHETIC_PROBABILITY
    return SYNTHETIC_PROBABILITY


def retime_agrees(retime: RetimeFinding, span: SpanEstimate, *, high_rate: bool = False) -> bool:
    """A synthetic-retime finding is decisive when it is strong, or when the learned stage agrees.

    Duplicates are exact copies and decide on their own. A blend or interpolation pattern can also
    come from captured frames (periodic motion blur in genuine slow motion); it decides when its
    confidence reaches ``RETIME_DECISIVE_CONFIDENCE``, or when the network agrees: it calls the
    frames made, or calls the span slow, as slow as the pattern's factor says (within 2 sigma of
    the model; genuine 8x slow motion read as a 4x pattern is 1 log2 off). The threshold comes from
    validation renders (seeds 2000-2007: weak false patterns at 0.64 and 0.75, made blends 0.95+).
    On a ``high_rate`` stream (100 fps or more) motion per frame is sub-pixel, so captured frames
    come out as near copies or as the mean of their neighbours after compression: there any
    pattern, duplicates included, decides only when the network calls the frames made.
    """
    if high_rate:
        return span.synthetic_probability > SYNTHETIC_PROBABILITY
    if retime.kind == "duplicate" or retime.confidence >= RETIME_DECISIVE_CONFIDENCE:
        return True
    if span.log2_speed is None or retime.factor is None:
        return False
    if span.synthetic_probability > SYNTHETIC_PROBABILITY:
        return True
    slow = span.log2_speed < -REALTIME_LOG2
    return slow and abs(span.log2_speed + math.log2(retime.factor)) <= RETIME_AGREEMENT_LOG2


def _probe_estimate(
    span: SpanEstimate,
    retime: RetimeFinding | None,
    playback_rate: Fraction,
    *,
    unchecked_frames: int | None = None,
) -> SpeedEstimate:
    """One probe's estimate. ``unchecked_frames``: the check was due but the probe had only that
    many frames, fewer than it needs (``RETIME_MIN_FRAMES``)."""
    evidence: list[Evidence] = []
    if retime is not None:
        evidence.append(
            Evidence(
                "synthetic_retime",
                f"finding: {retime.kind}",
                None if retime.factor is None else float(retime.factor),
                retime.confidence,
            )
        )
        if retime.is_synthetic and retime.confidence >= RETIME_MIN_CONFIDENCE:
            if retime_agrees(retime, span, high_rate=playback_rate >= HIGH_RATE_FPS):
                decided = retime.to_estimate(playback_rate)
                if decided is not None:
                    return decided
            else:
                evidence.append(
                    Evidence(
                        "synthetic_retime",
                        "pattern not decisive: the learned stage disagrees",
                        span.log2_speed,
                        0.0,
                    )
                )
    if span.still or (retime is not None and retime.kind == "still"):
        evidence.append(Evidence("learned", "motion energy below the still floor", span.motion_energy, 0.8))
        return SpeedEstimate(None, playback_rate, None, 0.8, SpeedClass.STILL, evidence=evidence)
    assert span.log2_speed is not None
    evidence.append(Evidence("learned", "log2 speed", span.log2_speed, 1.0))
    evidence.append(Evidence("learned", "synthetic-frame probability", span.synthetic_probability, 0.0))
    if span.respeed_strides:
        evidence.append(Evidence("learned", "re-speeded with strides", str(span.respeed_strides), 0.0))
    if unchecked_frames is not None:
        evidence.append(
            Evidence(
                "synthetic_retime",
                f"not checked: {unchecked_frames} frames, the made-frame check needs {RETIME_MIN_FRAMES}; "
                "the network alone needs more, and its call of made frames counts for less",
                UNPATTERNED_SYNTHETIC_PROBABILITY,
                0.0,
            )
        )
        bar = UNPATTERNED_SYNTHETIC_PROBABILITY
    else:
        bar = network_synthetic_bar([retime], evidence)
    estimate = _learned_estimate(
        span.log2_speed,
        span.log2_sigma,
        span.synthetic_probability,
        playback_rate,
        evidence,
        snap_realtime=False,
        synthetic_bar=bar,
    )
    if unchecked_frames is not None and estimate.speed_class is SpeedClass.SYNTHETIC_SLOWMO:
        estimate.confidence = max(0.01, estimate.confidence * UNCHECKED_MADE_WEIGHT)
    return estimate


def plan_probes(frame_count: int, keyframes: Sequence[int], density: float) -> list[tuple[int, int]]:
    """Frame ranges to analyse: every frame for short clips, else spread probes near keyframes."""
    if not 0 < density <= 1:
        raise UnsupportedOptionError(f"density {density} is outside (0, 1]; 0.08 reads about 8 % of frames")
    if frame_count < WINDOW_FRAMES:
        raise InsufficientFramesError(
            f"the clip has {frame_count} frames; speed detection needs at least {WINDOW_FRAMES}"
        )
    whole = frame_count // PROBE_FRAMES
    count = min(max(MIN_PROBES, round(frame_count * density / PROBE_FRAMES)), MAX_PROBES)
    if whole <= count or density >= 1:  # density 1 reads every frame, however long the clip
        ranges = [
            (start, min(start + PROBE_FRAMES, frame_count)) for start in range(0, frame_count, PROBE_FRAMES)
        ]
        if len(ranges) > 1 and ranges[-1][1] - ranges[-1][0] < WINDOW_FRAMES:
            last = ranges.pop()
            ranges[-1] = (ranges[-1][0], last[1])
        return ranges
    keys = np.asarray(sorted(keyframes), dtype=np.int64)
    spacing = (frame_count - PROBE_FRAMES) / (count - 1)
    # a probe that starts on a keyframe decodes only its own frames; one between keyframes decodes
    # from the keyframe before it (up to a whole GOP: 250 frames of a camera file). A probe moves
    # back to a keyframe up to KEYFRAME_SNAP_FRAMES before it; where probes are sparser than that
    # (long clips), to the nearest keyframe within half the spacing, so they stay spread.
    sparse = spacing // 2 > KEYFRAME_SNAP_FRAMES
    last_start = frame_count - PROBE_FRAMES
    ranges = []
    for index in range(count):
        target = round(index * spacing)
        if keys.size:
            if sparse:
                usable = keys[(keys <= last_start) & (np.abs(keys - target) <= spacing // 2)]
                if ranges:
                    usable = usable[usable >= ranges[-1][1]]
            else:  # a probe that snaps onto the one before it is dropped (the shipped figures' plan)
                usable = keys[(keys <= target) & (target - keys <= KEYFRAME_SNAP_FRAMES)]
            if usable.size:
                target = int(usable[np.argmin(np.abs(usable - target))])
        if ranges and target < ranges[-1][1]:
            continue
        ranges.append((target, min(target + PROBE_FRAMES, frame_count)))
    return ranges


def _aggregate(
    probes: Sequence[ProbeResult], playback_rate: Fraction, evidence: list[Evidence]
) -> SpeedEstimate:
    """One estimate for a run of probes: still, synthetic (made-frame majority), or the median speed.

    The pattern vote counts the probes whose check could tell: those with a pattern, and those
    with none where the motion was tested for one. A probe whose motion was too steady or too
    sparse to test abstains (a constant pan shows no made frames whether or not there are any). A
    tie goes to the made frames when one of their patterns is decisive on its own
    (``RETIME_DECISIVE_CONFIDENCE``): a periodic pattern that strong is positive evidence, while
    finding none in one window is only its absence there.

    When every moving probe was called made (by its pattern, or by the network above the bar its
    own check set), so is the run, whatever the vote: averaging the network's probabilities let
    such a clip come out as genuine slow motion when the probe made by a pattern read a low
    probability, contradicting every one of its segments. Counting network-only calls in the
    vote instead of asking for all of them cost a genuine 240 fps validation render (2 of its 3
    probes over the bar, 0.66 on average), so it is all or the vote."""
    moving = [probe for probe in probes if probe.estimate.speed_class is not SpeedClass.STILL]
    if not moving:
        evidence.append(Evidence("detect", "every probe is too still to tell", len(probes), 0.8))
        return SpeedEstimate(None, playback_rate, None, 0.8, SpeedClass.STILL, evidence=evidence)
    checked = [
        probe
        for probe in moving
        if probe.retime is not None
        and probe.retime.kind != "still"
        and (probe.retime.is_synthetic or probe.retime.motion_tested)
    ]
    patterned = [
        probe
        for probe in checked
        if probe.estimate.speed_class is SpeedClass.SYNTHETIC_SLOWMO and probe.retime.is_synthetic
    ]
    decisive_tie = (
        checked
        and 2 * len(patterned) == len(checked)
        and max(probe.retime.confidence for probe in patterned) >= RETIME_DECISIVE_CONFIDENCE
    )
    pattern_vote = bool(checked) and (2 * len(patterned) > len(checked) or bool(decisive_tie))
    unanimous = all(probe.estimate.speed_class is SpeedClass.SYNTHETIC_SLOWMO for probe in moving)
    if pattern_vote or unanimous:
        made, voters = (patterned, checked) if pattern_vote else (moving, moving)
        speeds = sorted(probe.estimate.speed for probe in made if probe.estimate.speed is not None)
        speed = speeds[len(speeds) // 2] if speeds else None
        confidence = float(np.mean([probe.estimate.confidence for probe in made])) * len(made) / len(voters)
        if pattern_vote:
            evidence.append(
                Evidence("synthetic_retime", PATTERN_VOTE, f"{len(made)}/{len(voters)}", confidence)
            )
        else:
            evidence.append(
                Evidence(
                    "synthetic_retime" if patterned else "learned",
                    EVERY_PROBE_MADE + (f" ({len(patterned)} by a periodic pattern)" if patterned else ""),
                    f"{len(made)}/{len(voters)}",
                    confidence,
                )
            )
        return SpeedEstimate(
            speed,
            playback_rate,
            None,
            min(max(confidence, 0.01), 0.99),
            SpeedClass.SYNTHETIC_SLOWMO,
            evidence=evidence,
        )
    learned = [probe.span for probe in moving if probe.span.log2_speed is not None]
    if not learned:
        probe = max(moving, key=lambda item: item.estimate.confidence)
        return probe.estimate
    values = np.array([span.log2_speed for span in learned])
    log2_speed = float(np.median(values))
    spread = float(np.std(values)) / math.sqrt(len(values))
    sigma = math.hypot(spread, MODEL_LOG2_SIGMA)
    synthetic_probability = float(np.mean([span.synthetic_probability for span in learned]))
    evidence.append(Evidence("learned", f"median log2 speed over {len(learned)} probes", log2_speed, 1.0))
    evidence.append(Evidence("learned", "spread of probe log2 speeds", float(np.std(values)), 0.0))
    evidence.append(Evidence("learned", "mean synthetic-frame probability", synthetic_probability, 0.0))
    bar = network_synthetic_bar([probe.retime for probe in moving], evidence)
    return _learned_estimate(
        log2_speed, sigma, synthetic_probability, playback_rate, evidence, synthetic_bar=bar
    )


def _stage_that_found_stillness(probes: list[ProbeResult]) -> str:
    """The stage name for a clip too still to tell: the learned stage's motion floor when it found
    any probe still, otherwise the synthetic-retime check (it found the frames unchanging)."""
    if any(probe.span.still for probe in probes):
        return "learned"
    return "synthetic_retime"


def high_rate_agrees(metadata_estimate: SpeedEstimate | None, clip: SpeedEstimate) -> bool:
    """A stream of 100 fps or more with no capture tag is taken as captured at its own rate (C = P)
    unless the frames say otherwise: made frames (synthetic), or a speed more than
    ``HIGH_RATE_LOG2`` (4x) away from real time after the playback-rate offset. At these rates the
    network's reading of native-rate renders spreads over about +-1.5 log2 (validation renders,
    seeds 13, 14, 120-122 at 120 fps: -1.53 to +0.99), so less than 4x is not evidence. A still
    clip stays still: C = P is an assumption about a stream with no tag, not evidence of motion."""
    if metadata_estimate is None or metadata_estimate.capture_rate != metadata_estimate.playback_rate:
        return False
    if metadata_estimate.playback_rate < HIGH_RATE_FPS:
        return False
    if clip.speed_class is SpeedClass.REALTIME:
        return True
    return (
        clip.speed_class in (SpeedClass.SLOWMO, SpeedClass.SPED_UP)
        and clip.speed is not None
        and abs(math.log2(clip.speed)) <= HIGH_RATE_LOG2
    )


def own_rate_confidence(estimate: SpeedEstimate) -> float:
    """Probability, under N(log2 s, sigma), that the speed is within ``HIGH_RATE_LOG2`` of real time:
    how well the frames agree with a high-rate stream captured at its own rate."""
    if estimate.speed is None:
        return 0.5
    log2_speed = math.log2(estimate.speed)
    sigma = max(estimate.speed_log2_sigma, MODEL_LOG2_SIGMA)
    inside = _NORMAL.cdf((HIGH_RATE_LOG2 - log2_speed) / sigma) - _NORMAL.cdf(
        (-HIGH_RATE_LOG2 - log2_speed) / sigma
    )
    return float(min(max(inside, 0.01), 0.99))


def _at_own_rate(segment: SpeedSegment, metadata_estimate: SpeedEstimate) -> SpeedSegment:
    """A segment of a high-rate stream whose frames agree with C = P, restated as real time."""
    if not high_rate_agrees(metadata_estimate, segment.estimate) or segment.estimate.speed is None:
        return segment
    estimate = SpeedEstimate(
        Fraction(1),
        metadata_estimate.playback_rate,
        metadata_estimate.playback_rate,
        own_rate_confidence(segment.estimate),
        SpeedClass.REALTIME,
        speed_log2_sigma=segment.estimate.speed_log2_sigma,
        evidence=[
            *segment.estimate.evidence,
            Evidence("detect", "high-rate stream with no tag: captured at its own rate", None, 0.0),
        ],
    )
    return replace(segment, estimate=estimate, pixels=segment.pixel_estimate)


def _as_tagged(segment: SpeedSegment, metadata_estimate: SpeedEstimate) -> SpeedSegment:
    """A segment of a clip whose capture-rate tag decided, restated at the tag's speed so the
    segments say what the clip says; what the pixels read stays in the segment's evidence and in
    ``pixels`` (the dataset gate judges by them)."""
    pixels = segment.estimate
    estimate = replace(
        metadata_estimate,
        evidence=[
            *pixels.evidence,
            Evidence(
                "detect",
                f"capture-rate tag decides; pixels say {pixels.speed_class.value}",
                None if pixels.speed is None else float(pixels.speed),
                0.0,
            ),
        ],
    )
    return replace(segment, estimate=estimate, pixels=pixels)


def _merged(segments: list[SpeedSegment]) -> list[SpeedSegment]:
    """Neighbouring segments that now say the same (restated by the metadata) as one segment; the
    first keeps its evidence of what the pixels read."""
    merged: list[SpeedSegment] = []
    for segment in segments:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and previous.estimate.speed_class is segment.estimate.speed_class
            and previous.estimate.speed == segment.estimate.speed
            and previous.pixel_estimate.speed_class is segment.pixel_estimate.speed_class
        ):
            merged[-1] = replace(
                previous,
                end_frame=segment.end_frame,
                window_count=previous.window_count + segment.window_count,
            )
        else:
            merged.append(segment)
    return merged


def _family(estimate: SpeedEstimate) -> str:
    if estimate.speed_class in (SpeedClass.STILL, SpeedClass.SYNTHETIC_SLOWMO):
        return estimate.speed_class.value
    return "captured"


def _same_segment(current: list[ProbeResult], probe: ProbeResult) -> bool:
    """A probe joins the run when it is of the same kind and its speed is near the run's median."""
    if _family(current[-1].estimate) != _family(probe.estimate):
        return False
    speeds = [item.estimate.speed for item in current if item.estimate.speed is not None]
    if not speeds or probe.estimate.speed is None:
        return True
    median = float(np.median([math.log2(speed) for speed in speeds]))
    return abs(math.log2(probe.estimate.speed) - median) < SEGMENT_JOIN_LOG2


def _median_log2_speed(run: list[ProbeResult]) -> float | None:
    speeds = [item.estimate.speed for item in run if item.estimate.speed is not None]
    return float(np.median([math.log2(speed) for speed in speeds])) if speeds else None


def _runs_agree(earlier: list[ProbeResult], later: list[ProbeResult]) -> bool:
    """Two neighbouring runs of the same kind whose median speeds are near: one probe that read far
    from its neighbours split them (a 120 fps take read 3.7x slow over its first probe and 4.9x over
    the next two), though as runs they agree."""
    if _family(earlier[-1].estimate) != _family(later[0].estimate):
        return False
    first, second = _median_log2_speed(earlier), _median_log2_speed(later)
    if first is None or second is None:
        return first is None and second is None
    return abs(first - second) < SEGMENT_JOIN_LOG2


def build_segments(
    probes: Sequence[ProbeResult], frame_count: int, playback_rate: Fraction
) -> list[SpeedSegment]:
    """Merge neighbouring probes that agree, then neighbouring runs of them that agree (as runs,
    by their medians); segments tile the clip, split half-way between probes."""
    runs: list[list[ProbeResult]] = []
    for probe in probes:
        if runs and _same_segment(runs[-1], probe):
            runs[-1].append(probe)
        else:
            runs.append([probe])
    joined: list[list[ProbeResult]] = []
    for run in runs:
        if joined and _runs_agree(joined[-1], run):
            joined[-1] = joined[-1] + run
        else:
            joined.append(run)
    runs = joined
    segments = []
    for index, run in enumerate(runs):
        start = 0 if index == 0 else (runs[index - 1][-1].end_frame + run[0].start_frame) // 2
        end = (
            frame_count
            if index == len(runs) - 1
            else (run[-1].end_frame + runs[index + 1][0].start_frame) // 2
        )
        # A run of one probe is that probe: re-aggregating would swap its own spread for the model's.
        estimate = run[0].estimate if len(run) == 1 else _aggregate(run, playback_rate, [])
        segments.append(SpeedSegment(start, max(end, start + 1), estimate, len(run)))
    return segments


@dataclass
class _ProbeRead:
    """The frames of one probe that can be analysed, the index of the first, and how far damage
    reached: the last frame lost or garbled in the range read (None when none was)."""

    images: list[np.ndarray]
    first: int
    damaged_through: int | None = None


def _read_probe(reader: FrameReader, start: int, stop: int, analysis: Analysis) -> _ProbeRead:
    """The frames ``start`` to ``stop`` that can be analysed, with one note for what damage did to
    them: frames lost (the probe stops before them, since the ones after would read as a jump in
    time) or frames garbled (none of the probe is analysed)."""
    images = []
    first = start
    concealed = 0
    last_concealed: int | None = None
    lost: tuple[int, int] | None = None
    damage_before = reader.damage_count
    try:
        for frame in reader.frames(start, stop):
            if images and frame.index != first + len(images) and reader.damage_count > damage_before:
                # a gap with no damage is the container's: AVI's empty frames, which came before
                lost = (first + len(images), frame.index - 1)
                break
            if frame.concealed:
                concealed += 1
                last_concealed = frame.index
            if not images:
                first = frame.index
            images.append(frame.image)
    except CorruptMediaError as error:
        analysis.complete = False
        analysis.notes.append(f"frames {start}-{stop - 1}: {error}")
        log.warning("speed detection: %s", error)
        analysis.frames_decoded += len(images)
        return _ProbeRead(images, first, stop - 1 if len(images) < stop - start else None)
    lost_text = "" if lost is None else f"frames {lost[0]}-{lost[1]} could not be decoded"
    if concealed:
        # decoded after damage, before the next keyframe: the decoder filled in what it lost, so
        # the pictures may be garbled and none of this probe is analysed
        analysis.complete = False
        garbled = "1 frame may be garbled" if concealed == 1 else f"{concealed} frames may be garbled"
        analysis.notes.append(
            f"frames {start}-{stop - 1}: the stream is damaged there ({garbled}"
            + (f"; {lost_text}" if lost_text else "")
            + "); not analysed"
        )
        analysis.frames_decoded += len(images)
        reached = max(last_concealed or start, lost[1] if lost else start)
        return _ProbeRead([], first, reached)
    if lost is not None:
        analysis.complete = False
        analysis.notes.append(f"{lost_text}; the probe at {start} stops before them")
    elif len(images) < stop - start:
        analysis.complete = False
        analysis.notes.append(
            f"frames {start}-{stop - 1}: only {len(images)} of {stop - start} could be decoded"
        )
    analysis.frames_decoded += len(images)
    return _ProbeRead(images, first, None if lost is None else lost[1])


def replacement_probe(damaged_through: int, keyframes: Sequence[int], limit: int) -> tuple[int, int] | None:
    """Where to read instead of a probe lost to damage that reached frame ``damaged_through``: from
    the first keyframe after it (the decoder is clean again there), up to ``PROBE_FRAMES`` frames
    and no further than ``limit`` (the next probe's start, or the clip's end); None where fewer than
    a window's frames fit. Without it a damaged probe left its part of the clip unread: a .mkv
    damaged in its second probe was read for its first second only, its table covering six."""
    after = [int(key) for key in keyframes if int(key) > damaged_through]
    if not after:
        return None
    start = min(after)
    stop = min(start + PROBE_FRAMES, limit)
    return (start, stop) if stop - start >= WINDOW_FRAMES else None


def timestamp_gap_notes(pts: np.ndarray, time_base: Fraction, frame_step_pts: int) -> list[str]:
    """A note for each jump in the timestamps of more than ``GAP_STEPS`` typical intervals: frames
    are missing there (lost to damage, or a recording that stalled), which a variable-rate note
    alone did not say."""
    if len(pts) < 2 or frame_step_pts <= 0:
        return []
    steps = np.diff(pts.astype(np.int64))
    notes = []
    for index in np.flatnonzero(steps > GAP_STEPS * frame_step_pts)[:MAX_GAP_NOTES]:
        gap = Fraction(int(steps[index])) * time_base
        missing = round(Fraction(int(steps[index]), frame_step_pts)) - 1
        at = Fraction(int(pts[index]) - int(pts[0])) * time_base
        notes.append(
            f"the timestamps jump {float(gap):.3f} s after frame {index} (at {float(at):.3f} s): about "
            f"{missing} frames are missing there (lost to damage, or a recording that stalled)"
        )
    return notes


@dataclass
class RetimeSchedule:
    """Which probes get the synthetic-retime check: ``RETIME_PROBES`` spread over the clip, and
    the next probe after any whose check found too little motion to tell (made frames show only
    where something moves, so a still stretch passes its check on instead of spending it), at
    most ``RETIME_PROBES`` times per clip, so a still clip does not check every probe. Once a
    check finds made frames (``made_found``), every later probe that reads still or slow is checked
    too: the network reads duplicated frames as still or very slow, so unchecked probes of a
    retimed clip came out as still segments or at 20-40x slow between made ones when ``--density``
    was raised. These extra checks only add patterns they find: one that finds none is dropped,
    not counted against made frames. Checking every later probe, and counting what it did not
    find, cost a made case of the held-out set (minterpolated bikes: one pattern among 4 checked
    probes, not 1 of 2) and one of the validation set (interpolated sam2-dog)."""

    every: int
    owed: bool = False
    passed_on: int = 0
    made_found: bool = False
    first_made: int | None = None
    """The number of the first probe whose check found made frames."""

    @classmethod
    def for_probes(cls, count: int) -> RetimeSchedule:
        return cls(every=max(1, count // RETIME_PROBES))

    def wants(self, number: int) -> bool:
        return self.owed or number % self.every == 0

    def to_check_again(self, probes: list[tuple[int, ProbeResult]]) -> list[int]:
        """Once made frames are found: the positions in ``probes`` ((number, probe) pairs) of the
        probes before the first finding that were not checked and read still or slow. They were
        read before anything said the clip is retimed (a replay of duplicated frames between real
        time reads still to the network: at ``--density 1`` its first probes came out as a still
        segment inside the made slow motion)."""
        if self.first_made is None:
            return []
        return [
            position
            for position, (number, probe) in enumerate(probes)
            if number < self.first_made and probe.retime is None and _reads_still_or_slow(probe.span)
        ]

    def record(self, number: int, probe: ProbeResult) -> None:
        found = probe.retime is not None and probe.retime.is_synthetic
        if found and not self.made_found:
            self.first_made = number
        self.made_found = self.made_found or found
        scheduled = number % self.every == 0
        if self.owed and not scheduled:
            self.passed_on += 1
        self.owed = (
            probe.retime is not None and probe.retime.kind == "still" and self.passed_on < RETIME_PROBES
        )


def _analyse_probe(
    images: list[np.ndarray],
    start: int,
    check_retime: bool,
    playback_rate: Fraction,
    model: SpeedModel,
    extend: Callable[[int], list[np.ndarray]] | None,
    check_if_slow: bool = False,
) -> ProbeResult:
    """Read one probe: the learned estimate (re-speeded when slow), then the synthetic-retime check
    when ``check_retime``, or when ``check_if_slow`` and the probe reads still or slow."""
    span = estimate_span(images, model)
    if extend is not None and span.log2_speed is not None and span.log2_speed < RESPEED_BELOW_LOG2:
        wanted = WINDOW_FRAMES * 2 ** min(5, int(round(-span.log2_speed)) + 1)
        if wanted > len(images):
            longer = images + extend(wanted - len(images))
            if len(longer) > len(images):
                images = longer
                span = estimate_span(images, model)
    offset = rate_offset_log2(playback_rate, every_rate=model.reads_at_play_rate)
    if offset and span.log2_speed is not None:
        span = replace(
            span,
            log2_speed=span.log2_speed + offset,
            window_log2_speeds=[value + offset for value in span.window_log2_speeds],
        )
    retime = None
    if (check_retime or (check_if_slow and _reads_still_or_slow(span))) and len(images) >= RETIME_MIN_FRAMES:
        retime = detect_synthetic_retime(images[:RETIME_FRAMES])
        if not check_retime and not retime.is_synthetic:
            # an extra check only adds a pattern it finds; finding none there would vote against
            # made frames and raise the network's bar (a made validation case lost that way)
            retime = None
    unchecked = len(images) if check_retime and len(images) < RETIME_MIN_FRAMES else None
    estimate = _probe_estimate(span, retime, playback_rate, unchecked_frames=unchecked)
    return ProbeResult(start, start + len(images), span, retime, estimate)


def _reads_still_or_slow(span: SpanEstimate) -> bool:
    return span.still or (span.log2_speed is not None and span.log2_speed < -REALTIME_LOG2)


def _checked_again(probe: ProbeResult, images: list[np.ndarray], playback_rate: Fraction) -> ProbeResult:
    """``probe`` with the synthetic-retime check run on ``images`` (its first frames) after all,
    when that finds made frames; as it was otherwise (see ``RetimeSchedule.to_check_again``)."""
    if len(images) < RETIME_MIN_FRAMES:
        return probe
    retime = detect_synthetic_retime(images[:RETIME_FRAMES])
    if not retime.is_synthetic:
        return probe
    return replace(probe, retime=retime, estimate=_probe_estimate(probe.span, retime, playback_rate))


def _read_size(width: int, height: int) -> tuple[int, int] | None:
    if width <= READ_WIDTH_PX:
        return None
    scaled_height = max(2, int(round(height * READ_WIDTH_PX / width / 2)) * 2)
    return READ_WIDTH_PX, scaled_height


def _frames_to_result(
    probes: list[ProbeResult],
    frame_count: int,
    playback_rate: Fraction,
    metadata_evidence: list[Evidence],
    metadata_estimate: SpeedEstimate | None,
    analysis: Analysis,
    frame_times: Callable[[int], Fraction],
    model: SpeedModel,
) -> DetectionResult:
    if not probes:
        raise CorruptMediaError(
            "no frames could be analysed: " + ("; ".join(analysis.notes) or "nothing decodable")
        )
    curve = [WindowEstimate(p.start_frame, max(p.end_frame, p.start_frame + 1), p.estimate) for p in probes]
    for probe in probes:
        if any(item.finding.startswith("not checked:") for item in probe.estimate.evidence):
            analysis.notes.append(
                f"frames {probe.start_frame}-{probe.end_frame - 1}: too few for the made-frame check "
                f"(it needs {RETIME_MIN_FRAMES}); the network alone judged them, with a higher bar "
                "for made frames"
            )
    segments = build_segments(probes, frame_count, playback_rate)
    evidence = list(metadata_evidence)
    clip = _aggregate(probes, playback_rate, evidence)
    decided_by = "learned"
    if clip.speed_class is SpeedClass.STILL:
        decided_by = _stage_that_found_stillness(probes)
    elif clip.speed_class is SpeedClass.SYNTHETIC_SLOWMO and any(
        item.stage == "synthetic_retime" and item.finding.startswith((PATTERN_VOTE, EVERY_PROBE_MADE))
        for item in clip.evidence
    ):
        decided_by = "synthetic_retime"
    tag_decides = (
        metadata_estimate is not None and metadata_estimate.confidence >= DECISIVE_METADATA_CONFIDENCE
    )
    if tag_decides and decided_by == "synthetic_retime":  # a pattern of made frames, not a guess
        assert metadata_estimate is not None
        clip.evidence.append(
            Evidence(
                "detect",
                f"the metadata says {metadata_estimate.speed_class.value} (capture "
                f"{float(metadata_estimate.capture_rate or 0):g} fps), but the frames are made: the "
                "metadata names the rate the camera ran at, not these frames",
                None if metadata_estimate.speed is None else float(metadata_estimate.speed),
                0.0,
            )
        )
    elif tag_decides:
        assert metadata_estimate is not None
        metadata_estimate.evidence = evidence + [
            Evidence(
                "detect",
                f"pixels say {clip.speed_class.value}",
                None if clip.speed is None else float(clip.speed),
                0.0,
            )
        ]
        clip, decided_by = metadata_estimate, "metadata"
        segments = _merged([_as_tagged(segment, metadata_estimate) for segment in segments])
    elif high_rate_agrees(metadata_estimate, clip):
        assert metadata_estimate is not None
        metadata_estimate.confidence = max(metadata_estimate.confidence, own_rate_confidence(clip))
        metadata_estimate.evidence = evidence + [
            Evidence(
                "detect",
                f"pixels say {clip.speed_class.value}; a high-rate stream with no tag is its capture rate",
                None if clip.speed is None else float(clip.speed),
                0.0,
            )
        ]
        clip, decided_by = metadata_estimate, "metadata"
        segments = _merged([_at_own_rate(segment, metadata_estimate) for segment in segments])
    clip.evidence.append(Evidence("detect", "decided by", decided_by, 0.0))
    differing = segment_share_note(segments, clip)
    if differing:
        analysis.notes.append(differing)
    learned = [p.span for p in probes if p.span.log2_speed is not None]
    return DetectionResult(
        clip,
        segments,
        curve,
        analysis,
        decided_by,
        frame_times,
        model.provider,
        learned_log2_speed=float(np.median([span.log2_speed for span in learned])) if learned else None,
        synthetic_probability=float(np.mean([span.synthetic_probability for span in learned]))
        if learned
        else None,
        probes=list(probes),
    )


def detect_speed_frames(
    frames: Sequence[np.ndarray], playback_rate: Fraction | int, *, model: SpeedModel | None = None
) -> DetectionResult:
    """Detect the speed of frames already in memory (every frame analysed), played at ``playback_rate``."""
    playback_rate = Fraction(playback_rate)
    if playback_rate <= 0:
        raise UnsupportedOptionError(f"playback rate {playback_rate} fps is not positive")
    if len(frames) < WINDOW_FRAMES:
        raise InsufficientFramesError(
            f"{len(frames)} frames given; speed detection needs at least {WINDOW_FRAMES} consecutive frames"
        )
    model = model or shared_model()
    analysis = Analysis(frame_count=len(frames), frames_decoded=len(frames))
    ranges = plan_probes(len(frames), (), 1.0)
    analysis.probes_planned = len(ranges)
    schedule = RetimeSchedule.for_probes(len(ranges))
    probes = []
    for number, (start, stop) in enumerate(ranges):
        probes.append(
            _analyse_probe(
                list(frames[start:stop]),
                start,
                schedule.wants(number),
                playback_rate,
                model,
                None,
                check_if_slow=schedule.made_found,
            )
        )
        schedule.record(number, probes[-1])
    for position in schedule.to_check_again(list(enumerate(probes))):
        probe = probes[position]
        probes[position] = _checked_again(
            probe, list(frames[probe.start_frame : probe.end_frame]), playback_rate
        )
    analysis.probes_analysed = len(probes)
    finding = metadata_stage(RateMetadata(playback_rate))
    return _frames_to_result(
        probes,
        len(frames),
        playback_rate,
        finding.evidence,
        finding.estimate,
        analysis,
        lambda index: Fraction(index) / playback_rate,
        model,
    )


def detect_speed(
    path: Path,
    *,
    density: float = DEFAULT_DENSITY,
    model: SpeedModel | None = None,
    progress: Callable[[float], None] | None = None,
    audio: bool = True,
) -> DetectionResult:
    """Detect the playback speed of the clip at ``path``: stages, probes, segments; see the module doc.

    ``density`` is about the share of frames analysed (0.08 by default; 1 analyses every frame).
    Probes are at least 3 where the clip holds them (keyframe snapping may merge two on a short
    clip), short clips are read whole and very slow spans are read further for re-speeding.
    The synthetic-retime check runs on the first 24 frames of 2 probes spread over the clip, and
    on the next probe after one whose check found too little motion. With ``audio`` the sound
    is read too (``engine.speed.audio_pitch``): its pitch shifts are checked against each change of
    speed between segments and scanned for changes the picture missed. The audio is evidence only;
    speeds and classes come from the picture.
    """
    path = Path(path)
    meta = read_rate_metadata(path)
    finding = metadata_stage(meta)
    model = model or shared_model()
    with FrameReader(path, strict=False, exact_levels=False) as reader:
        info = reader.info
        frame_count = info.frame_count
        if frame_count < WINDOW_FRAMES:
            kind = "a still image (1 frame)" if frame_count == 1 else f"{frame_count} frames"
            raise InsufficientFramesError(
                f"{path} holds {kind}; speed detection needs a clip of at least {WINDOW_FRAMES} frames"
            )
        if min(info.width, info.height) < MIN_SIDE_PX:
            raise UnsupportedOptionError(
                f"{path} has frames of {info.width}x{info.height} pixels, too small to tell motion "
                f"apart from noise; speed detection needs at least {MIN_SIDE_PX} pixels on each side"
            )
        size = _read_size(info.width, info.height)
        time_base = reader.time_base
        pts = np.array(reader.pts_index)
        _, scan = video_info_and_index(path, info.index, {}, scan_packets=True)
        keyframes = np.searchsorted(pts, scan.keyframe_pts) if scan is not None else np.array([0])
        result = _detect_in(reader, path, size, pts, time_base, keyframes, density, finding, model, progress)
        video_start_s = float(int(pts[0]) * time_base) if len(pts) else 0.0
    if audio:
        result.audio = audio_findings(
            path,
            [
                (
                    float(result.frame_times(item.start_frame)),
                    float(result.frame_times(item.end_frame)),
                    None if item.estimate.speed is None else float(item.estimate.speed),
                )
                for item in result.segments
            ],
            origin_s=video_start_s,
        )
    return result


def missing_frames_note(
    found: int, listed: int | None, truncated: bool, reason: str | None = None
) -> str | None:
    """What to tell the user when the file holds fewer frames than its container lists: a file cut
    short (a copy or download that stopped) keeps a header promising the whole clip. Off by up to
    ``MISSING_FRAMES_TOLERANCE`` (some muxers count one frame more or less) is not worth a note.
    ``reason``: what the container promised (``VideoStreamInfo.truncation_reason``: a Matroska
    file says its duration, not its frames)."""
    short = listed is not None and listed - found > max(2, MISSING_FRAMES_TOLERANCE * listed)
    if not (truncated or short):
        return None
    if listed is not None and short:
        listed_text = f"the container lists {listed}"
    else:
        listed_text = reason or "its last packet is cut"
    return (
        f"the file looks truncated: {listed_text}, only {found} frames are in it; "
        "the result covers those frames"
    )


def segment_share_note(segments: Sequence[SpeedSegment], clip: SpeedEstimate) -> str | None:
    """A note when the segments do not all say what the clip says: each class's share of the
    clip's frames. The clip's answer pools every probe (one reading of a uniform clip is steadier
    than a vote of its parts), so on a ramp, a replay or a clip read unevenly it can differ from
    most of its duration; the note says so instead of leaving the two to contradict each other."""
    frames: dict[str, int] = {}
    for segment in segments:
        name = segment.estimate.speed_class.value
        frames[name] = frames.get(name, 0) + segment.end_frame - segment.start_frame
    if set(frames) == {clip.speed_class.value}:
        return None
    total = sum(frames.values())
    shares = ", ".join(
        f"{100 * count / total:.0f} % {name}"
        for name, count in sorted(frames.items(), key=lambda item: -item[1])
    )
    return (
        f"the segments differ from the clip ({clip.speed_class.value}): {shares}; the clip pools every probe"
    )


def _detect_in(
    reader: FrameReader,
    path: Path,
    size: tuple[int, int] | None,
    pts: np.ndarray,
    time_base: Fraction,
    keyframes: np.ndarray,
    density: float,
    finding,
    model: SpeedModel,
    progress: Callable[[float], None] | None,
) -> DetectionResult:
    info = reader.info
    frame_count = info.frame_count
    ranges = plan_probes(frame_count, [int(k) for k in keyframes], density)
    analysis = Analysis(frame_count=frame_count, probes_planned=len(ranges), is_vfr=bool(info.is_vfr))
    missing = missing_frames_note(
        frame_count, info.container_frame_count, bool(info.truncated), info.truncation_reason()
    )
    if missing:
        analysis.complete = False
        analysis.notes.append(missing)
    if info.is_vfr:
        analysis.notes.append(
            "variable frame rate: probes are placed by frame and reported by their timestamps"
        )
    frame_step_pts = int(np.median(np.diff(pts))) if len(pts) > 1 else 1
    analysis.notes.extend(timestamp_gap_notes(pts, time_base, frame_step_pts))
    playback_rate = Fraction(info.frame_rate)
    schedule = RetimeSchedule.for_probes(len(ranges))

    def frame_times(index: int) -> Fraction:
        if index < len(pts):
            return (int(pts[index]) - int(pts[0])) * time_base
        return (int(pts[-1]) - int(pts[0]) + frame_step_pts * (index - len(pts) + 1)) * time_base

    probes: list[ProbeResult] = []
    numbers: list[int] = []
    with FrameReader(path, size=size, strict=False, exact_levels=False) as small_reader:
        number = 0
        while number < len(ranges):
            start, stop = ranges[number]
            read = _read_probe(small_reader, start, stop, analysis)
            images, first = read.images, read.first
            next_start = ranges[number + 1][0] if number + 1 < len(ranges) else frame_count
            if len(images) < WINDOW_FRAMES:
                instead = (
                    None
                    if read.damaged_through is None
                    else replacement_probe(read.damaged_through, keyframes, next_start)
                )
                if instead is not None:
                    analysis.notes.append(
                        f"the probe at frame {start} is read after the damage instead, at {instead[0]}"
                    )
                    ranges[number] = instead
                else:
                    number += 1
                continue

            def extend(
                count: int, end: int = first + len(images), limit: int = next_start
            ) -> list[np.ndarray]:
                stop_at = min(end + count, limit)
                if stop_at <= end:
                    return []
                return _read_probe(small_reader, end, stop_at, analysis).images

            probes.append(
                _analyse_probe(
                    images,
                    first,
                    schedule.wants(number),
                    playback_rate,
                    model,
                    extend,
                    check_if_slow=schedule.made_found,
                )
            )
            numbers.append(number)
            schedule.record(number, probes[-1])
            if progress is not None:
                progress((number + 1) / len(ranges))
            number += 1
        for position in schedule.to_check_again(list(zip(numbers, probes, strict=True))):
            probe = probes[position]
            stop = min(probe.end_frame, probe.start_frame + RETIME_FRAMES)
            # read again for the check alone: what the first reading found (damage) is already noted
            images = _read_probe(
                small_reader, probe.start_frame, stop, Analysis(frame_count=frame_count)
            ).images
            probes[position] = _checked_again(probe, images, playback_rate)
    analysis.probes_analysed = len(probes)
    return _frames_to_result(
        probes, frame_count, playback_rate, finding.evidence, finding.estimate, analysis, frame_times, model
    )
