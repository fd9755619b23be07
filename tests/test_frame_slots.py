"""Frames of variable-frame-rate clips placed on a constant grid by their timestamps."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from engine.errors import UnsupportedOptionError
from engine.media.frame_slots import FrameSlots, frame_slots, grid_rate_for


def test_a_constant_rate_clip_is_its_own_grid():
    slots = FrameSlots.constant(5, Fraction(25))
    assert slots.slot_count == 5 and slots.empty_slots == 0 and slots.frames_left_out == 0
    assert slots.locate(Fraction(2)).lower == 2 and slots.locate(Fraction(2)).phase == 0
    place = slots.locate(Fraction(5, 2))
    assert (place.lower, place.upper, place.phase) == (2, 3, Fraction(1, 2))
    assert "last frame is held" in slots.locate(Fraction(9, 2)).held
    assert "first frame is held" in slots.locate(Fraction(-1)).held


def test_a_stall_is_an_empty_stretch_of_slots_between_two_frames():
    pts = np.array([0, 1, 2, 10, 11])  # 1/30 s ticks: frames for 3/30 to 9/30 s are missing
    slots = frame_slots(pts, Fraction(1, 30), Fraction(30))
    assert slots.slot_count == 12 and slots.empty_slots == 7
    place = slots.locate(Fraction(6))
    assert (place.lower, place.upper, place.phase) == (2, 3, Fraction(1, 2))
    assert slots.locate(Fraction(10)).lower == 3 and slots.locate(Fraction(10)).phase == 0


def test_a_frame_less_than_a_quarter_slot_after_the_one_before_is_left_out():
    # ticks of 1/120 s on a 30 fps grid (4 ticks a slot): 7 goes to slot 2 (a quarter early), 8
    # is then on that slot
    pts = np.array([0, 5, 7, 8, 12])
    slots = frame_slots(pts, Fraction(1, 120), Fraction(30))
    assert slots.frames.tolist() == [0, 1, 2, 4]
    assert slots.slots.tolist() == [0, 1, 2, 3]
    assert slots.frames_left_out == 1 and slots.empty_slots == 0


def test_a_drifting_jittered_phone_clip_loses_no_frame_and_gets_only_the_slots_its_drift_needs():
    """29.88 fps with +-1 ms of jitter on 29.97: 900 frames span 902.7 slots, so 2 or 3 slots are
    made where the drift passes three quarters of a slot, and no frame is left out. Rounding each frame to
    its nearest slot alone left 7 frames out and made 11 slots (the audit's figures)."""
    rng = np.random.default_rng(3)
    seconds = np.arange(900) / 29.88 + rng.uniform(-0.001, 0.001, 900)
    pts = np.round(seconds * 90000).astype(np.int64)
    slots = frame_slots(pts, Fraction(1, 90000), Fraction(30000, 1001))
    assert slots.frames_left_out == 0 and slots.empty_slots <= 3
    times = (pts[slots.frames] - pts[0]) / 90000 * 30000 / 1001
    assert np.max(np.abs(slots.slots - times)) < 0.8  # every frame within three quarters of a slot


def test_the_grid_is_the_standard_rate_of_the_typical_interval():
    ticks = np.array([3 * n + (n % 2) for n in range(41)])  # 2- and 4-tick intervals of 1/90 s
    assert grid_rate_for(ticks, Fraction(1, 90)) == 30
    stalled = np.array([0, 1, 2, 30, 31, 32])
    assert grid_rate_for(stalled, Fraction(1, 25)) == 25
    # a phone's 29.88 fps average: nearer 30000/1001, but the stream says 30
    phone = np.round(np.arange(300) * 90000 / 29.88).astype(np.int64)
    assert grid_rate_for(phone, Fraction(1, 90000)) == Fraction(30000, 1001)
    assert grid_rate_for(phone, Fraction(1, 90000), (Fraction(30), None)) == 30
    # a rate far from every standard one keeps its own (a screen recording at 15 fps)
    assert grid_rate_for(np.arange(0, 150, 10), Fraction(1, 150)) == 15
    assert grid_rate_for(np.arange(0, 100, 7), Fraction(1, 100)) == Fraction(100, 7)


def test_a_grid_needs_two_increasing_timestamps():
    with pytest.raises(UnsupportedOptionError, match="one frame"):
        grid_rate_for(np.array([5]), Fraction(1, 30))
    with pytest.raises(UnsupportedOptionError, match="do not increase"):
        grid_rate_for(np.array([5, 5, 5]), Fraction(1, 30))


def test_timestamps_no_grid_can_be_made_of_leave_the_frames_in_file_order(monkeypatch, caplog):
    """probe and the preview app still open such a file (the packet scan tolerates shared
    timestamps with a warning); only the grid is given up."""
    from pathlib import Path
    from types import SimpleNamespace

    import engine.media.frame_slots as frame_slots_module

    video = SimpleNamespace(
        is_vfr=True, frame_count=3, frame_rate=Fraction(25), time_base=Fraction(1, 25),
        r_frame_rate=None, guessed_rate=None,
    )
    monkeypatch.setattr(frame_slots_module, "frame_timestamps", lambda path: np.array([5, 5, 5]))
    grid = frame_slots_module.clip_grid(Path("shared.mp4"), video)
    assert (grid.slot_count, grid.rate) == (3, 25)
    assert "do not increase" in caplog.text and "taken in file order" in caplog.text
