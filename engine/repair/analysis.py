"""Finding what a clip lacks: dropped frames (timestamp gaps, frame jumps) and duplicated frames.

One forward pass over the clip (``analyse_clip``) gives a ``RepairPlan``: which source frames are
written as they are, and where each one lands on the output's constant frame grid. Every empty
slot between two written frames is later filled by synthesis between them. Three causes leave
empty slots:

- **timestamp gaps**: the stream is meant to be constant-rate, but a pts delta of k frame
  intervals means k - 1 frames are missing (``FrameGrid`` puts every frame on its slot). A
  variable-frame-rate clip (a phone drifting off its nominal rate, a recording that stalled) is
  placed by its timestamps on the grid ``retime`` conforms it to (``repair_grid``), so the slots
  its drift and stalls leave empty count as timestamp gaps;
- **duplicates** (``engine.interp.duplicates``, judged in context: a copy under heavy compression
  differs from its frame by more than the fixed tolerance, but a fifth as much as the moving pairs
  around it): a run of r repeats between distinct frames A and B is replaced, so A, r empty
  slots, B become r in-betweens at t = i / (r + 1). A run longer than ``max_duplicate_repeats``
  is a hold or a still shot and is kept; so is a run at the very end (there is no frame after it
  to synthesize toward), and a run after which the picture moves on by about one frame's worth of
  motion, not the r + 1 that lost frames would leave (a held moment: ``_held_moment``);
- **damage**: frames the decoder lost to damage, made with errors, or decoded after damage before
  the next undamaged keyframe (their pictures may be garbled: ``engine.media.reader``'s lenient
  reading, ``Frame.concealed``) are dropped frames too: left out, and their slots filled between
  the undamaged frames either side. Damage before the first undamaged frame or after the last
  leaves no frame to make toward: that frame is held there instead (the plan's ``holds``). A
  clip with no undamaged frame at all is refused (``CorruptMediaError``). An image sequence's
  missing frame files are timestamp gaps (``engine.repair.sources``);
- **frame jumps**: consecutive frames whose motion is a whole multiple m >= 2 of the clip's local
  motion per frame (median of the neighbouring pairs), at least 1.6 times that of each adjacent
  pair, with both neighbours moving normally and no scene cut between them: m - 1 frames were
  dropped without a timestamp gap. They are inserted (the clip grows by m - 1 frames) or, with
  ``jumps="report"``, only listed. Where the local motion is under ``JUMP_MIN_MOTION_PX`` (a
  locked-off shot with small movers), a lost frame cannot be told from motion: those stretches are
  named (``jumps_unjudged``), not judged. Measured (``bench/repair_jumps.py``): on the 13 real
  clips at 320 and 640 px wide with one, two and one frames dropped, 13 of 78 drops were found (all
  six in the GoPro pan), 43 % of the frames were too still to judge, and no jump was reported in
  continuous copies but for one clip's own (kivy-cityCC0: the same two jumps in every copy).

Motion is the mean DIS optical-flow magnitude between the frames at ``ANALYSIS_WIDTH`` pixels.
A pair is a cut when ``engine.interp.scenecut`` finds one between its two frames, or when
``engine.interp.cutcontext`` finds one in context: a jump cut inside a locked-off shot (the
background stays, the person is suddenly elsewhere) changes little of the picture, but much more
than the still pairs around it. An edit is never repaired: no frames are inserted at a cut, and
copies just before a jump cut are kept as they are (the synthesis guard only sees the two-frame
cuts, so in-betweens there would be a morph across the edit); the plan's notes list each jump cut.
Memory is bounded: only the previous frame is held while decoding, plus a few numbers per frame.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from engine.errors import CorruptMediaError, FrameGridError, UnsupportedOptionError
from engine.interp.checks import frame_runs, runs_text
from engine.interp.cutcontext import ContextVerdict, PairChange, change_image, context_cuts, measure_pair
from engine.interp.duplicates import PairDifference, duplicates_in_context, pair_difference
from engine.interp.flow import dis_flow
from engine.interp.scenecut import scene_cut_score, small_rgb8
from engine.media import FrameReader
from engine.media.frame_slots import frame_slots, grid_rate_for
from engine.media.probe import VideoStreamInfo
from engine.media.rates import STANDARD_RATES
from engine.media.sequence import shown_name
from engine.repair.sources import SequenceRuns, holed_sequence, source_frames
from engine.timeline import fraction_text

log = logging.getLogger(__name__)

ANALYSIS_WIDTH = 256
GRID_TOLERANCE = Fraction(1, 8)
"""A frame may sit this fraction of an interval off its slot (container rounding) and still fit."""

MAX_DUPLICATE_REPEATS = 7
JUMP_WINDOW_PAIRS = 6
JUMP_MIN_REFERENCES = 4
JUMP_MIN_MOTION_PX = 0.25
"""Below this local motion per frame (analysis pixels), the clip is too still to judge a jump."""
JUMP_INTEGER_TOLERANCE = 0.3
JUMP_NEIGHBOUR_RANGE = (0.6, 1.4)
JUMP_OVER_NEIGHBOURS = 1.6
"""A jump moves at least this many times as far as each of its two neighbouring pairs."""
MAX_JUMP_FRAMES = 3
HOLD_TEST_MIN_FLOW_PX = 0.08
"""Below this motion per frame (the mean over the picture, so a small mover in a still shot reads
0.1 to 0.3), sensor noise is as large as the motion: copies are taken for lost frames."""
HOLD_TEST_MAX_FLOW_PX = 12.0
"""The motion lost frames would leave, in analysis pixels, up to which optical flow measures it
well enough to tell a held moment from lost frames (larger, DIS falls short and reads a hold)."""

JUMPS_INSERT = "insert"
JUMPS_REPORT = "report"
JUMP_MODES = (JUMPS_INSERT, JUMPS_REPORT)




@dataclass(frozen=True)
class FrameGrid:
    """Where each frame of a constant-rate stream belongs: slot n at ``start_pts + n * interval``."""

    time_base: Fraction
    start_pts: int
    interval_pts: Fraction
    slots: tuple[int, ...]

    @property
    def rate(self) -> Fraction:
        """Frames per second of the grid (exact)."""
        return 1 / (self.interval_pts * self.time_base)

    @property
    def slot_count(self) -> int:
        return self.slots[-1] + 1 if self.slots else 0


def frame_grid(pts: np.ndarray, time_base: Fraction, declared_rate: Fraction | None = None) -> FrameGrid:
    """Put every frame (pts in presentation order) on one constant frame grid.

    The interval is the declared rate when it fits the typical delta within 1% (and the frames,
    where the mean fits them), else the mean of the deltas near the median one; either is snapped
    to a standard rate within 0.2 % that the frames fit. Raises ``FrameGridError`` when a frame
    lies far off every slot or two frames share one (a true variable-frame-rate clip).
    """
    stamps = [int(value) for value in pts]
    if not stamps:
        raise FrameGridError("the clip has no frame timestamps")
    if len(stamps) == 1:
        interval = 1 / (declared_rate * time_base) if declared_rate else Fraction(1)
        return FrameGrid(time_base, stamps[0], interval, (0,))
    deltas = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    typical = statistics.median(deltas)
    near = [d for d in deltas if 0.5 * typical <= d <= 1.5 * typical]
    interval = Fraction(sum(near), len(near)) if near and typical > 0 else Fraction(0)
    if interval <= 0:
        raise FrameGridError(f"timestamps do not increase (median delta {typical} ticks of {time_base} s)")
    measured = interval
    if declared_rate:
        declared = 1 / (declared_rate * time_base)
        if abs(declared - interval) <= interval / 100 and (
            _fits_grid(stamps, declared) or not _fits_grid(stamps, measured)
        ):
            # the declared rate, unless it drifts off the frames where their own mean fits (a
            # phone's 29.95 fps declared as 29.97 was refused as variable-frame-rate)
            interval = declared
    start = stamps[0]
    # a standard rate the frames fit (Matroska keeps whole milliseconds, so a 29.97 fps recording
    # with dropped frames measured 21250/709 fps and the repair was written at that rate)
    measured_rate = 1 / (interval * time_base)
    if measured_rate not in STANDARD_RATES:
        near = [r for r in STANDARD_RATES if abs(measured_rate / r - 1) <= Fraction(2, 1000)]
        for standard in sorted(near, key=lambda r: abs(measured_rate / r - 1)):
            snapped = 1 / (standard * time_base)
            if _fits_grid(stamps, snapped):
                interval = snapped
                break
    slots = []
    for index, stamp in enumerate(stamps):
        exact = (stamp - start) / interval
        slot = round(exact)
        if abs(exact - slot) > GRID_TOLERANCE or (slots and slot <= slots[-1]):
            raise FrameGridError(
                f"frame {index} (pts {stamp}) does not fit a constant grid of {fraction_text(interval)} "
                f"ticks ({fraction_text(1 / (interval * time_base))} fps): frame intervals range from "
                f"{min(deltas)} to {max(deltas)} ticks; repair needs a constant-rate clip with gaps, "
                "not a variable-frame-rate one: conform it first (`chronoscope retime CLIP --speed 1 -o OUT` "
                "puts it on a constant grid by its timestamps)"
            )
        slots.append(slot)
    return FrameGrid(time_base, start, interval, tuple(slots))


def repair_grid(pts: np.ndarray, video: VideoStreamInfo) -> tuple[FrameGrid, frozenset[int], str | None]:
    """The grid a clip is repaired on, the frames left out of it, and a note when it was read by
    the clock: ``(grid, left_out, note)``.

    A constant-rate stream with gaps keeps its own grid (``frame_grid``). A variable-frame-rate
    clip that fits no constant grid, or fits only one at a rate no editor uses (a phone's 29.88
    fps drifting against 30), is placed by its timestamps on the grid ``retime`` conforms it to
    (``engine.media.frame_slots``): the standard rate of its typical interval, each frame within
    three quarters of a slot of its time. Slots no frame lands on are filled like timestamp gaps;
    a frame less than a quarter slot after the one before shares its slot and is left out."""
    time_base = Fraction(video.time_base)
    declared = video.r_frame_rate or video.guessed_rate
    refusal: FrameGridError | None = None
    try:
        strict = frame_grid(pts, time_base, declared)
    except FrameGridError as error:
        strict, refusal = None, error
    if strict is not None and (not video.is_vfr or strict.rate in STANDARD_RATES):
        return strict, frozenset(), None
    try:
        rate = grid_rate_for(pts, time_base, (video.r_frame_rate, video.guessed_rate))
    except UnsupportedOptionError:
        if strict is not None:
            return strict, frozenset(), None
        raise refusal from None
    if strict is not None and rate not in STANDARD_RATES:
        return strict, frozenset(), None
    placed = frame_slots(pts, time_base, rate)
    slots: list[int] = []
    left_out: set[int] = set()
    placed_at = dict(zip(placed.frames.tolist(), placed.slots.tolist(), strict=True))
    for index in range(len(pts)):
        if index in placed_at:
            slots.append(placed_at[index])
        else:
            left_out.add(index)
            slots.append(slots[-1])
    grid = FrameGrid(time_base, int(pts[0]), 1 / (rate * time_base), tuple(slots))
    note = (
        f"a variable-frame-rate clip ({len(pts)} frames): placed by their timestamps on a "
        f"{fraction_text(rate)} fps grid, as retime conforms it; {placed.empty_slots} empty slots "
        "between its frames are filled"
    )
    if left_out:
        note += f", {len(left_out)} frames less than a quarter frame after the one before are left out"
    log.info("%s", note)
    return grid, frozenset(left_out), note


def _fits_grid(stamps: list[int], interval: Fraction) -> bool:
    """Whether every stamp lies within ``GRID_TOLERANCE`` of its own slot of ``interval``."""
    last = None
    for stamp in stamps:
        exact = (stamp - stamps[0]) / interval
        slot = round(exact)
        if abs(exact - slot) > GRID_TOLERANCE or (last is not None and slot <= last):
            return False
        last = slot
    return True


@dataclass
class PairMeasure:
    """How frame ``index - 1`` and frame ``index`` differ.

    ``change`` is how much of the picture changes (``cutcontext.measure_pair``);
    ``cut`` is set for a two-frame scene cut (``scene_cut``) or a cut in context (``context``,
    its verdict: for example a jump cut within a still shot). ``after_damage``: damaged frames lie
    between the two, so ``index - 1`` is not the frame before (never a duplicate, jump or cut in
    context)."""

    index: int
    duplicate: bool
    motion_px: float = 0.0
    cut: bool = False
    change: PairChange = PairChange(0.0, 0.0)
    scene_cut: bool = False
    context: ContextVerdict | None = None
    after_damage: bool = False

    @property
    def jump_cut(self) -> bool:
        """A cut found only in context (``scene_cut`` missed it, so the synthesis guard would too)."""
        return self.context is not None and not self.scene_cut


@dataclass
class Fill:
    """Empty output slots between two written frames, and why they are empty."""

    before_frame: int
    after_frame: int
    first_output_frame: int
    frames: int
    missing_timestamps: int = 0
    duplicates_replaced: list[int] = field(default_factory=list)
    jump_frames: int = 0
    jump_cut: str | None = None
    """The note of a jump cut within a still shot between the two written frames (a timestamp gap
    at an edit): the slots get the nearer frame, never a morph across the edit."""
    damaged: list[int] = field(default_factory=list)
    """Source frames between the two that were lost to damage or decoded garbled."""
    held: bool = False
    """No undamaged frame on one side (damage at the clip's start or end): ``before_frame`` (which
    is ``after_frame``) is held in every slot, nothing is made."""

    @property
    def kind(self) -> str:
        causes = [
            name
            for name, count in (
                ("timestamp_gap", self.missing_timestamps),
                ("duplicate", len(self.duplicates_replaced)),
                ("jump", self.jump_frames),
                ("damaged", len(self.damaged)),
            )
            if count
        ]
        return "+".join(causes)

    def times(self) -> list[Fraction]:
        """t of each synthesized frame between the two written frames (none for a hold)."""
        if self.held:
            return []
        return [Fraction(i, self.frames + 1) for i in range(1, self.frames + 1)]


@dataclass
class RepairPlan:
    """What ``analyse_clip`` found and how the output is laid out."""

    source: str
    grid: FrameGrid
    source_frames: int
    kept_frames: list[bool]
    output_positions: list[int]
    fills: list[Fill]
    notes: list[str]
    jumps_reported: list[dict]
    grid_notes: list[str] = field(default_factory=list)
    """How a variable-frame-rate clip was put on the grid, and the frames left out of it."""
    damaged_frames: list[int] = field(default_factory=list)
    """Source frames lost to damage or decoded garbled: left out, their slots filled."""
    damage: list[str] = field(default_factory=list)
    """What the reader said of the damage (the first few reports)."""
    holds: list[Fill] = field(default_factory=list)
    """Slots before the first undamaged frame or after the last: that frame is held there."""
    jumps_unjudged: list[list[int]] = field(default_factory=list)
    """Runs ``[first, last]`` of source frames that move too little (under ``JUMP_MIN_MOTION_PX`` a
    frame) to tell frames lost without a timestamp gap from motion: no jump is looked for there."""

    @property
    def output_frames(self) -> int:
        return self.output_positions[-1] + 1 if self.output_positions else 0

    @property
    def frames_to_synthesize(self) -> int:
        return sum(fill.frames for fill in self.fills)

    @property
    def lead_hold(self) -> Fill | None:
        """The hold before the first undamaged frame, when the clip starts damaged."""
        return next((fill for fill in self.holds if fill.first_output_frame == 0), None)

    @property
    def tail_hold(self) -> Fill | None:
        """The hold after the last undamaged frame, when the clip ends damaged."""
        return next((fill for fill in self.holds if fill.first_output_frame > 0), None)

    @property
    def changes_anything(self) -> bool:
        return bool(self.fills or self.holds)


def _small_gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(small_rgb8(image, ANALYSIS_WIDTH), cv2.COLOR_RGB2GRAY)


def _measure_pairs(
    source: Path,
    reader: FrameReader | SequenceRuns,
    *,
    find_duplicates: bool,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[list[PairMeasure], list[int]]:
    """Duplicate test, motion, change and cut tests of every consecutive pair of undamaged frames,
    in one forward pass (the cuts in context are judged once every pair's change is known), and
    the frames that are damaged: lost (never decoded) or decoded garbled (``concealed``).
    ``on_progress(frames read, frames of the clip)`` is called after each frame."""
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    measures: list[PairMeasure] = []
    differences: list[PairDifference | None] = []
    damaged: list[int] = []
    anchor: np.ndarray | None = None
    previous: np.ndarray | None = None
    previous_gray: np.ndarray | None = None
    previous_small: np.ndarray | None = None
    previous_index = -1
    expected = 0
    for frame in reader.frames():
        damaged.extend(range(expected, frame.index))  # lost to damage: never decoded
        expected = max(expected, frame.index + 1)
        if on_progress is not None:
            on_progress(min(expected, reader.frame_count), reader.frame_count)
        if frame.concealed:
            damaged.append(frame.index)
            continue
        image = frame.image
        gray = _small_gray(image)
        small = change_image(image)
        if previous is not None:
            after_damage = frame.index != previous_index + 1
            difference = pair_difference(anchor, image) if find_duplicates and not after_damage else None
            differences.append(difference)
            duplicate = difference is not None and difference.is_duplicate()
            measure = PairMeasure(
                frame.index, duplicate, change=measure_pair(previous_small, small), after_damage=after_damage
            )
            if not duplicate:
                field_ = dis_flow(flow, previous_gray, gray)
                measure.motion_px = float(np.mean(np.hypot(field_[..., 0], field_[..., 1])))
                measure.scene_cut = measure.cut = scene_cut_score(previous, image).is_cut
            measures.append(measure)
            if not duplicate:
                anchor = image
        else:
            anchor = image
        previous, previous_gray, previous_small = image, gray, small
        previous_index = frame.index
    damaged.extend(range(expected, reader.frame_count))
    # pairs across damage are no neighbours in context, and never a cut in context themselves
    skipped = [m.duplicate or m.after_damage for m in measures]
    verdicts = context_cuts([m.change for m in measures], skipped)
    for measure, verdict in zip(measures, verdicts, strict=True):
        if verdict.cut:
            measure.context, measure.cut = verdict, True
            log.info("%s: a cut in context: %s", source, verdict.describe())
    # heavy compression's copies, told by the motion around them; a cut is no motion to judge by
    # (beside a jump cut in a near-still shot every pair looked like a copy)
    judged = [None if m.cut else difference for m, difference in zip(measures, differences, strict=True)]
    for measure, in_context in zip(measures, duplicates_in_context(judged), strict=True):
        if in_context and not measure.duplicate:
            measure.duplicate = True
            log.debug("%s: frame %d repeats frame %d (in context)", source, measure.index, measure.index - 1)
    log.debug("%s: measured %d frame pairs", source, len(measures))
    return measures, sorted(set(damaged))


def _jump_cut_note(measure: PairMeasure) -> str:
    """What the plan's notes say about a cut found in context that the two-frame test missed."""
    verdict = measure.context
    around = "" if verdict is None else f" against {verdict.before:.3f} before and {verdict.after:.3f} after"
    return (
        f"frames {measure.index - 1} and {measure.index}: a jump cut within a still shot "
        f"({measure.change.changed:.3f} of the picture changes{around}): an edit, left as it is"
    )


def _duplicate_runs(measures: list[PairMeasure]) -> list[tuple[int, int]]:
    """(first copy, last copy) of each run of duplicates, as source frame indices."""
    runs = []
    start = last = None
    for measure in measures:
        if measure.duplicate and measure.index - 1 == last:
            last = measure.index
            continue
        if start is not None:
            runs.append((start, last))
            start = last = None
        if measure.duplicate:
            start = last = measure.index
    if start is not None:
        runs.append((start, last))
    return runs


def _held_moment(measures: list[PairMeasure], first: int, last: int) -> float | None:
    """How many frames' worth of motion the picture moves on by after copies ``first``..``last``,
    when that tells a held moment (about one frame's worth) from lost frames replaced by copies
    (as many as were lost, plus one); None when it does not (a still shot, a cut, too few pairs).

    Without this a genuinely still moment (a dog pausing, with sensor noise) lost its hold: the
    copies were replaced by frames made toward the next one, a slow crawl."""
    by_index = {m.index: m for m in measures}
    after = by_index.get(last + 1)
    if after is None or after.duplicate or after.cut:
        return None
    around = [
        m.motion_px
        for m in measures
        if not (m.duplicate or m.cut)
        and (
            first - 1 - JUMP_WINDOW_PAIRS <= m.index <= first - 1
            or last + 2 <= m.index <= last + 1 + JUMP_WINDOW_PAIRS
        )
    ]
    if len(around) < JUMP_MIN_REFERENCES:
        return None
    local = statistics.median(around)
    if local < HOLD_TEST_MIN_FLOW_PX or (last - first + 2) * local > HOLD_TEST_MAX_FLOW_PX:
        return None
    frames_worth = after.motion_px / local
    return frames_worth if frames_worth < math.sqrt(last - first + 2) else None


def _jump_frames(
    measures: list[PairMeasure], slots: tuple[int, ...], copies: set[int]
) -> tuple[dict[int, int], list[int]]:
    """Source frame index -> frames dropped just before it without a timestamp gap; and the source
    frames whose pair with the frame before could not be judged, the motion around it being under
    ``JUMP_MIN_MOTION_PX``."""
    usable = {}
    for measure in measures:
        i = measure.index
        unusable = measure.duplicate or measure.cut or measure.after_damage
        if unusable or i - 1 in copies or slots[i] <= slots[i - 1]:
            continue
        usable[i] = measure.motion_px / (slots[i] - slots[i - 1])
    jumps = {}
    too_still = []
    order = sorted(usable)
    for position, i in enumerate(order):
        if slots[i] - slots[i - 1] != 1:
            continue
        around = (
            order[max(0, position - JUMP_WINDOW_PAIRS) : position]
            + order[position + 1 : position + 1 + JUMP_WINDOW_PAIRS]
        )
        references = [usable[j] for j in around]
        if len(references) < JUMP_MIN_REFERENCES:
            continue
        local = statistics.median(references)
        if local < JUMP_MIN_MOTION_PX:
            too_still.append(i)
            continue
        ratio = usable[i] / local
        multiple = round(ratio)
        if multiple < 2 or abs(ratio - multiple) > JUMP_INTEGER_TOLERANCE * multiple / 2:
            continue
        neighbours = [usable[j] / local for j in (i - 1, i + 1) if j in usable]
        low, high = JUMP_NEIGHBOUR_RANGE
        if len(neighbours) < 2 or not all(low <= value <= high for value in neighbours):
            continue
        if ratio < JUMP_OVER_NEIGHBOURS * max(neighbours):
            continue
        jumps[i] = min(multiple - 1, MAX_JUMP_FRAMES)
    return jumps, too_still


def analyse_clip(
    source: Path,
    *,
    find_duplicates: bool = True,
    find_jumps: bool = True,
    jumps: str = JUMPS_INSERT,
    max_duplicate_repeats: int = MAX_DUPLICATE_REPEATS,
    on_progress: Callable[[int, int], None] | None = None,
) -> RepairPlan:
    """Find dropped and duplicated frames of ``source``; see the module doc. ``on_progress(done,
    total)`` is told how many of the clip's frames have been analysed."""
    source = Path(source)
    if jumps not in JUMP_MODES:
        raise UnsupportedOptionError(
            f"jumps mode {jumps!r} not supported; use one of: {', '.join(JUMP_MODES)}"
        )
    if max_duplicate_repeats < 1:
        raise UnsupportedOptionError(
            f"max duplicate repeats {max_duplicate_repeats}: give 1 or more (runs longer are kept)"
        )
    with source_frames(source) as reader:
        info = reader.info
        grid, left_out, clock_note = repair_grid(reader.pts_index, info)
        measures, damaged = _measure_pairs(
            source, reader, find_duplicates=find_duplicates, on_progress=on_progress
        )
        damage = list(reader.damage)
    count = len(grid.slots)
    grid_notes = [clock_note] if clock_note else []
    grid_notes += [
        f"frame {index} comes less than a quarter frame after frame {index - 1}: left out "
        "(the two share one slot of the grid)"
        for index in sorted(left_out)
    ]
    grid_notes += _hole_notes(source)
    broken = set(damaged)
    good = [index for index in range(count) if index not in broken]
    if not good:
        raise CorruptMediaError(
            f"{shown_name(source)}: none of its {count} frames decodes without damage"
            f"{' (' + '; '.join(damage) + ')' if damage else ''}; there is nothing to repair it from"
        )
    if damaged:
        log.warning(
            "%s: source frames %s are damaged (lost, or decoded garbled): they are left out and "
            "filled as dropped frames",
            shown_name(source),
            runs_text(frame_runs(damaged)),
        )
    notes = [_jump_cut_note(m) for m in measures if m.jump_cut]
    jump_cut_after = {m.index - 1 for m in measures if m.jump_cut}
    kept = [index not in left_out and index not in broken for index in range(count)]
    copies: set[int] = set()
    for first, last in _duplicate_runs(measures):
        repeats = last - first + 1
        if last == good[-1]:
            notes.append(
                f"frames {first} to {last} repeat frame {first - 1} at the end of the clip: kept "
                "(no later frame to synthesize toward)"
            )
            continue
        if repeats > max_duplicate_repeats:
            notes.append(
                f"frames {first} to {last} repeat frame {first - 1} ({repeats} repeats, more than "
                f"{max_duplicate_repeats}): kept as a hold"
            )
            continue
        if last in jump_cut_after:
            notes.append(
                f"frames {first} to {last} repeat frame {first - 1} just before a jump cut: kept "
                "(no later frame of the same shot to synthesize toward)"
            )
            continue
        held = _held_moment(measures, first, last)
        if held is not None:
            notes.append(
                f"frames {first} to {last} repeat frame {first - 1}, but the picture then moves on by "
                f"{held:.1f} frames' worth of motion, not the {repeats + 1} lost frames would leave: "
                "a held moment, kept"
            )
            continue
        for index in range(first, last + 1):
            kept[index] = False
            if index not in left_out:
                copies.add(index)
    jump_before, too_still = (
        _jump_frames(measures, grid.slots, copies | left_out | broken) if find_jumps else ({}, [])
    )
    unjudged = [[first - 1, last] for first, last in frame_runs(too_still)]
    reported = []
    if jumps == JUMPS_REPORT:
        reported = [
            {"before_frame": i - 1, "after_frame": i, "missing_frames": n} for i, n in jump_before.items()
        ]
        jump_before = {}
    positions = []
    extra = 0
    for index, slot in enumerate(grid.slots):
        extra += jump_before.get(index, 0)
        positions.append(slot + extra)
    jump_cuts = {m.index: _jump_cut_note(m) for m in measures if m.jump_cut}
    fills = []
    previous = None
    for index in range(count):
        if not kept[index]:
            continue
        if previous is not None and positions[index] - positions[previous] > 1:
            across = [jump_cuts[i] for i in range(previous + 1, index + 1) if i in jump_cuts]
            replaced = [i for i in range(previous + 1, index) if i in copies]
            lost = [i for i in range(previous + 1, index) if i in broken and i not in left_out]
            jump = jump_before.get(index, 0)
            empty = positions[index] - positions[previous] - 1
            fills.append(
                Fill(
                    before_frame=previous,
                    after_frame=index,
                    first_output_frame=positions[previous] + 1,
                    frames=empty,
                    missing_timestamps=empty - len(replaced) - jump - len(lost),
                    duplicates_replaced=replaced,
                    jump_frames=jump,
                    jump_cut=across[0] if across else None,
                    damaged=lost,
                )
            )
        previous = index
    if previous is None:
        raise CorruptMediaError(
            f"{shown_name(source)}: only {len(good)} of its {count} frames decode without damage, and "
            "none of them can be kept; there is nothing to repair it from"
        )
    first_kept, last_kept = kept.index(True), previous
    holds = []
    if positions[first_kept] > 0:
        holds.append(
            Fill(
                before_frame=first_kept,
                after_frame=first_kept,
                first_output_frame=0,
                frames=positions[first_kept],
                damaged=[i for i in range(first_kept) if i in broken and i not in left_out],
                held=True,
            )
        )
    if positions[-1] > positions[last_kept]:
        holds.append(
            Fill(
                before_frame=last_kept,
                after_frame=last_kept,
                first_output_frame=positions[last_kept] + 1,
                frames=positions[-1] - positions[last_kept],
                damaged=[i for i in range(last_kept + 1, count) if i in broken and i not in left_out],
                held=True,
            )
        )
    for hold in holds:
        where = "before" if hold.first_output_frame == 0 else "after"
        last = hold.first_output_frame + hold.frames - 1
        log.warning(
            "%s: output frame%s %s: no undamaged frame %s them to make frames from; source frame "
            "%d is held there",
            shown_name(source),
            "s" if last > hold.first_output_frame else "",
            runs_text([[hold.first_output_frame, last]]),
            where,
            hold.before_frame,
        )
    return RepairPlan(
        source=str(source),
        grid=grid,
        source_frames=count,
        kept_frames=kept,
        output_positions=positions,
        fills=fills,
        notes=notes,
        jumps_unjudged=unjudged,
        jumps_reported=reported,
        grid_notes=grid_notes,
        damaged_frames=damaged,
        damage=damage,
        holds=holds,
    )


def _hole_notes(source: Path) -> list[str]:
    """What the grid says of the frame files an image sequence lacks (its timestamp gaps)."""
    sequence = holed_sequence(source)
    if sequence is None:
        return []
    missing = sequence.missing()
    names = ", ".join(sequence.frame_name(number) for number in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return [
        f"image sequence {sequence.folder / sequence.display_name} lacks {len(missing)} frame file"
        f"{'s' if len(missing) != 1 else ''} ({names}{more}): each is a timestamp gap, filled; output "
        f"frame n is the sequence's frame n (its first, {sequence.first}, as 0), while source frames "
        "count the files present"
    ]
