"""The synthesis interface and the baseline backends: registry, input checks, exactness, dtypes, alpha."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from test_interp_scenes import find_square, square_alpha, square_scene

from engine.errors import UnsupportedOptionError
from engine.interp import GuardedSynthesizer, available_backends, create_backend

CLASSICAL = ("nearest", "blend", "flow")


def _pair_u16_rgba() -> tuple[np.ndarray, np.ndarray]:
    frames = []
    for offset in ((0, 0), (16, 8)):
        rgb = square_scene(offset).astype(np.uint16) * 257
        rgb += np.arange(rgb.shape[1], dtype=np.uint16)[None, :, None] % 200
        alpha = square_alpha(offset).astype(np.uint16) * 257
        frames.append(np.dstack([rgb, alpha]))
    return frames[0], frames[1]


def test_classical_backends_are_registered():
    assert set(CLASSICAL) <= set(available_backends())


def test_unknown_backend_lists_the_available_ones():
    with pytest.raises(UnsupportedOptionError, match="'nope'.*available: .*blend.*flow.*nearest"):
        create_backend("nope")


@pytest.mark.parametrize("name", CLASSICAL)
@pytest.mark.parametrize(
    ("frame1", "t", "message"),
    [
        (np.zeros((48, 64, 3), np.uint8), 0.5, "same shape"),
        (np.zeros((64, 48, 3), np.uint16), 0.5, "same shape"),
        (np.zeros((64, 48, 3), np.uint8), 0.0, "outside"),
        (np.zeros((64, 48, 3), np.uint8), 1.0, "outside"),
        (np.zeros((64, 48, 3), np.uint8), Fraction(3, 2), "outside"),
        (np.zeros((64, 48, 3), np.uint8), -0.25, "outside"),
    ],
)
def test_bad_input_is_refused(name, frame1, t, message):
    frame0 = np.zeros((64, 48, 3), np.uint8)
    for backend in (create_backend(name), GuardedSynthesizer(create_backend(name))):
        with pytest.raises(UnsupportedOptionError, match=message):
            backend.synthesize(frame0, frame1, t)


@pytest.mark.parametrize("name", CLASSICAL)
@pytest.mark.parametrize(
    ("shape", "dtype", "message"),
    [((64, 48, 3), np.float32, "dtype"), ((64, 48, 2), np.uint8, "shape"), ((64, 48), np.uint8, "shape")],
)
def test_unsupported_frames_are_refused(name, shape, dtype, message):
    frame = np.zeros(shape, dtype)
    with pytest.raises(UnsupportedOptionError, match=message):
        create_backend(name).synthesize(frame, frame.copy(), 0.5)


def test_nearest_repeats_the_nearer_frame_exactly():
    frame0, frame1 = _pair_u16_rgba()
    nearest = create_backend("nearest")
    for t, expected in ((0.25, frame0), (Fraction(1, 2), frame1), (0.75, frame1)):
        result = nearest.synthesize(frame0, frame1, t)
        assert result.frame.dtype == np.uint16
        np.testing.assert_array_equal(result.frame, expected)
        assert result.frame is not expected
        assert result.backend == "nearest"


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_blend_is_exact_for_integer_frames(dtype):
    peak = np.iinfo(dtype).max
    rng = np.random.default_rng(7)
    frame0 = rng.integers(0, peak, (24, 32, 4), dtype=dtype, endpoint=True)
    frame1 = rng.integers(0, peak, (24, 32, 4), dtype=dtype, endpoint=True)
    frame0[0, 0] = peak
    frame1[0, 0] = peak
    blend = create_backend("blend")
    for numerator, denominator in ((1, 4), (1, 2), (2, 3)):
        result = blend.synthesize(frame0, frame1, Fraction(numerator, denominator))
        a = frame0.astype(np.int64)
        b = frame1.astype(np.int64)
        twice = 2 * (a * (denominator - numerator) + b * numerator) + denominator
        expected = twice // (2 * denominator)
        assert result.frame.dtype == dtype
        np.testing.assert_array_equal(result.frame, expected.astype(dtype))
    assert blend.synthesize(frame0, frame1, 0.5).frame[0, 0, 0] == peak


@pytest.mark.parametrize("name", CLASSICAL)
def test_uint16_rgba_round_trip(name):
    frame0, frame1 = _pair_u16_rgba()
    result = create_backend(name).synthesize(frame0, frame1, 0.5)
    assert result.frame.shape == frame0.shape
    assert result.frame.dtype == np.uint16
    assert result.risk.shape == frame0.shape[:2]
    assert result.risk.dtype == np.float32
    assert 0.0 <= result.risk.min() and result.risk.max() <= 1.0
    assert np.any(result.frame[..., :3] % 257 != 0), "16-bit precision was lost"
    alpha = result.frame[..., 3]
    if name != "blend":
        x, y = find_square(result.frame)
        opaque = alpha[50 + y + 8 : 50 + y + 56, 60 + x + 8 : 60 + x + 56]
        assert opaque.min() >= 65000, "alpha did not travel with the square"
    assert abs(int(np.median(alpha)) - 128 * 257) <= 257, "background alpha was not carried through"


def test_risk_score_is_the_mean_of_the_risk_map_and_grows_with_motion():
    frame0 = square_scene((0, 0))
    still = create_backend("blend").synthesize(frame0, frame0.copy(), 0.5)
    assert still.risk_score == 0.0
    small = create_backend("blend").synthesize(frame0, square_scene((4, 2)), 0.5)
    moved = create_backend("blend").synthesize(frame0, square_scene((16, 8)), 0.5)
    assert moved.risk_score == pytest.approx(float(moved.risk.mean()), abs=1e-6)
    assert 0.0 < small.risk_score < moved.risk_score < 1.0


@pytest.mark.parametrize("name", CLASSICAL)
@pytest.mark.parametrize("shape", [(1, 1, 3), (4, 6, 4), (15, 40, 3)])
def test_tiny_frames_keep_their_shape(name, shape):
    rng = np.random.default_rng(3)
    frame0 = rng.integers(0, 256, shape, dtype=np.uint8)
    frame1 = np.roll(frame0, 1, axis=1)
    for backend in (create_backend(name), GuardedSynthesizer(create_backend(name))):
        result = backend.synthesize(frame0, frame1, 0.5)
        assert result.frame.shape == shape
        assert result.risk.shape == shape[:2]


def test_a_backend_needs_synthesize_or_synthesize_many():
    from engine.interp.base import Synthesizer

    with pytest.raises(TypeError, match="implements neither"):

        class Empty(Synthesizer):
            NAME = "empty"

    class OnlyMany(Synthesizer):
        NAME = "only-many"

        def synthesize_many(self, frame0, frame1, times):
            return [f"{float(t):.2f}" for t in times]

    frame = np.zeros((4, 4, 3), np.uint8)
    assert OnlyMany().synthesize(frame, frame, 0.25) == "0.25"
