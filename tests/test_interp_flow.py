"""The ``flow`` backend on synthetic pairs with a known answer, on real Middlebury triplets, and at 4K."""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest
from test_interp_scenes import find_square, psnr_db, square_scene, texture

from engine.errors import UnsupportedOptionError
from engine.interp import create_backend
from engine.interp.flow import FlowSettings, FlowSynthesizer, flow_scale_for

# Measured with the default settings (bench/interp_quality.py): Dimetrodon 40.2, RubberWhale 42.3,
# Urban3 37.9 dB; the floors leave 0.5 dB for OpenCV builds that differ slightly.
MIDDLEBURY_FLOORS_DB = {"Dimetrodon": 39.7, "RubberWhale": 41.8, "Urban3": 37.4}


def _read_rgb(path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"cannot read {path}"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def test_flow_beats_blend_by_a_wide_margin_on_a_known_translation():
    frame0, frame1, truth = square_scene((0, 0)), square_scene((16, 8)), square_scene((8, 4))
    flow_db = psnr_db(create_backend("flow").synthesize(frame0, frame1, 0.5).frame, truth)
    blend_db = psnr_db(create_backend("blend").synthesize(frame0, frame1, 0.5).frame, truth)
    assert flow_db > blend_db + 5.0, (flow_db, blend_db)
    assert flow_db > 32.0


@pytest.mark.parametrize(("t", "offset"), [(0.25, (4, 2)), (0.5, (8, 4)), (0.75, (12, 6))])
def test_object_is_placed_where_it_is_at_time_t(t, offset):
    frame0, frame1 = square_scene((0, 0)), square_scene((16, 8))
    result = create_backend("flow").synthesize(frame0, frame1, t)
    assert find_square(result.frame) == offset
    assert psnr_db(result.frame, square_scene(offset)) > 32.0


def test_synthesize_many_matches_single_calls_and_reports_risk_at_the_moving_edges():
    frame0, frame1 = square_scene((0, 0)), square_scene((16, 8))
    backend = create_backend("flow")
    many = backend.synthesize_many(frame0, frame1, [0.25, 0.75])
    np.testing.assert_array_equal(many[1].frame, backend.synthesize(frame0, frame1, 0.75).frame)
    risk = many[0].risk
    still_background = risk[120:, 170:]
    square_edge = risk[50:56, 60:130]
    assert still_background.mean() < 0.05
    assert square_edge.mean() > still_background.mean() + 0.2


def test_flow_of_identical_frames_returns_the_frame():
    frame = square_scene((0, 0))
    result = create_backend("flow").synthesize(frame, frame.copy(), 0.5)
    assert np.abs(result.frame.astype(int) - frame).max() <= 1
    assert result.risk.max() < 0.1


def test_middlebury_psnr_is_above_the_measured_floor(shared_data):
    root = shared_data / "triplets" / "middlebury-other"
    backend = create_backend("flow")
    for sequence, floor_db in MIDDLEBURY_FLOORS_DB.items():
        frame0 = _read_rgb(root / "input" / sequence / "frame10.png")
        frame1 = _read_rgb(root / "input" / sequence / "frame11.png")
        truth = _read_rgb(root / "gt" / sequence / "frame10i11.png")
        result = backend.synthesize(frame0, frame1, 0.5)
        assert psnr_db(result.frame, truth) > floor_db, sequence


def test_4k_pair_runs_at_reduced_flow_scale_with_bounded_memory():
    height, width = 2160, 3840
    canvas = cv2.resize(texture(height // 4 + 8, width // 4 + 8, seed=3), (width + 32, height + 32))
    frame0 = np.ascontiguousarray(canvas[:height, :width])
    frame1 = np.ascontiguousarray(canvas[16 : 16 + height, 24 : 24 + width])
    truth = canvas[8 : 8 + height, 12 : 12 + width]
    assert flow_scale_for(height, width, FlowSettings()) == pytest.approx(0.134, abs=0.001)
    tracemalloc.start()
    try:
        result = create_backend("flow").synthesize(frame0, frame1, 0.5)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.frame.shape == frame0.shape
    assert result.frame.dtype == np.uint8
    assert result.risk.shape == (height, width)
    assert any("scale 0.134" in note for note in result.notes)
    # Output frame and risk map alone are 58 MB; everything else is sized by the 0.15 MP flow scale.
    assert peak_bytes < 400e6, f"peak {peak_bytes / 1e6:.0f} MB"
    assert psnr_db(result.frame[64:-64, 64:-64], truth[64:-64, 64:-64]) > 40.0


def test_1080p_sixteen_bit_rgba_takes_the_reduced_path_and_keeps_depth_and_alpha():
    height, width = 1080, 1920
    canvas = cv2.resize(texture(height // 4 + 8, width // 4 + 8, seed=4), (width + 32, height + 32))
    canvas16 = canvas.astype(np.uint16) * 257 + 100
    alpha = np.full((height, width, 1), 40000, np.uint16)
    frame0 = np.concatenate([canvas16[:height, :width], alpha], axis=2)
    frame1 = np.concatenate([canvas16[16 : 16 + height, 8 : 8 + width], alpha], axis=2)
    truth = canvas16[8 : 8 + height, 4 : 4 + width]
    result = create_backend("flow").synthesize(frame0, frame1, 0.5)
    assert result.frame.dtype == np.uint16 and result.frame.shape == frame0.shape
    assert any("scale 0.269" in note for note in result.notes)
    assert np.all(result.frame[..., 3] == 40000)
    inner = (slice(64, -64), slice(64, -64))
    assert psnr_db(result.frame[inner][..., :3], truth[inner]) > 40.0
    assert np.any(result.frame[..., :3] % 257 != 100 % 257), "16-bit precision was lost"
    assert result.risk.shape == (height, width) and 0.0 <= result.risk.min() <= result.risk.max() <= 1.0


def test_flow_scale_rule_keeps_720p_whole_and_reduces_1080p_and_4k_to_the_same_budget():
    settings = FlowSettings()
    assert flow_scale_for(480, 640, settings) == 1.0
    assert flow_scale_for(720, 1280, settings) == 1.0
    assert flow_scale_for(1080, 1920, settings) == pytest.approx(0.269, abs=0.001)
    assert 1080 * 1920 * flow_scale_for(1080, 1920, settings) ** 2 == pytest.approx(150_000, rel=1e-6)
    assert 2160 * 3840 * flow_scale_for(2160, 3840, settings) ** 2 == pytest.approx(150_000, rel=1e-6)


def test_bad_settings_are_refused_with_what_works():
    with pytest.raises(UnsupportedOptionError, match="preset 'slow'.*available: ultrafast, fast, medium"):
        FlowSynthesizer(preset="slow")
    with pytest.raises(UnsupportedOptionError, match="known: preset"):
        FlowSynthesizer(colour=True)
    with pytest.raises(UnsupportedOptionError, match="flow_scale"):
        create_backend("flow", flow_scale=0.0)
