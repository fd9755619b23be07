"""Fake slow motion generators: lengths, what each kind puts between captured frames, and refusals."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.errors import SceneSpecError
from engine.scenes.retime import synthetic_slowmo


def moving_bar(count: int, step_px: int = 4) -> list[np.ndarray]:
    frames = []
    for index in range(count):
        frame = np.full((48, 64), 40, np.uint8)
        x = 8 + index * step_px
        frame[16:32, x : x + 6] = 220
        frames.append(frame)
    return frames


@pytest.mark.parametrize("kind", ["duplicate", "blend", "interpolate"])
@pytest.mark.parametrize("factor", [2, 4])
def test_slowmo_keeps_captured_frames_and_adds_factor_minus_one(kind, factor):
    frames = moving_bar(6)
    slowed = synthetic_slowmo(frames, factor, kind)
    assert len(slowed) == (len(frames) - 1) * factor + 1
    for index, frame in enumerate(frames):
        assert np.array_equal(slowed[index * factor], frame)


def test_duplicate_repeats_blend_mixes_interpolate_moves():
    frames = moving_bar(3, step_px=8)
    assert np.array_equal(synthetic_slowmo(frames, 2, "duplicate")[1], frames[0])
    mixed = synthetic_slowmo(frames, 2, "blend")[1].astype(int)
    assert np.abs(mixed - (frames[0].astype(int) + frames[1]) / 2).max() <= 1


def test_interpolated_frame_is_the_half_way_shift_not_a_mix():
    rng = np.random.default_rng(3)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (64, 120)).astype(np.uint8), (5, 5), 1.5)
    frames = [np.ascontiguousarray(texture[:, 24 - 6 * i : 24 - 6 * i + 80]) for i in range(3)]
    truth = texture[:, 21:101].astype(float)
    made = synthetic_slowmo(frames, 2, "interpolate")[1].astype(float)
    mixed = synthetic_slowmo(frames, 2, "blend")[1].astype(float)
    inner = np.s_[8:-8, 8:-8]
    assert np.abs(made - truth)[inner].mean() < 0.5 * np.abs(mixed - truth)[inner].mean()


@pytest.mark.parametrize(
    ("frames", "factor", "kind", "message"),
    [
        (2, 2, "reverse", "valid: duplicate, blend, interpolate"),
        (2, 1, "blend", r"outside \[2, 16\]"),
        (1, 2, "blend", "at least 2"),
    ],
)
def test_bad_requests_are_refused(frames, factor, kind, message):
    with pytest.raises(SceneSpecError, match=message):
        synthetic_slowmo(moving_bar(frames), factor, kind)
