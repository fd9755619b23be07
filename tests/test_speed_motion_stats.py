"""Motion statistics on procedural scenes with known motion, exposure and light flicker."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import InsufficientFramesError
from engine.scenes import ObjectSpec, SceneSpec, TextureSpec, render_frames, subsample
from engine.speed.motion_stats import (
    MotionStats,
    brightness_series,
    capture_rates_matching_flicker,
    flicker_peak,
    flow_magnitude_percentiles,
    mains_alias_cycles_per_frame,
    optical_flows,
    window_motion_stats,
)


def _pan(fps: int, pan_px_s: float, frames: int, shutter_angle_deg: float = 180.0) -> list[np.ndarray]:
    spec = SceneSpec(
        width=160,
        height=120,
        capture_fps=fps,
        duration_frames=frames,
        camera_velocity_px_s=(pan_px_s, 0),
        shutter_angle_deg=shutter_angle_deg,
        background=TextureSpec("noise", 12.0),
        noise_sigma=0.5,
        shot_noise_gain=0.0,
        seed=3,
        subframes=32,
    )
    return list(render_frames(spec))


def test_flow_measures_the_pan_and_grows_k_times_when_subsampled():
    frames = _pan(fps=120, pan_px_s=240.0, frames=13)  # 2 px per frame, to the left in the image
    median = flow_magnitude_percentiles(optical_flows(frames))[:, 0]
    assert np.median(median) == pytest.approx(2.0, abs=0.3)
    faster = flow_magnitude_percentiles(optical_flows(list(subsample(frames, 3))))[:, 0]
    assert np.median(faster) == pytest.approx(6.0, abs=0.6)


def test_blur_anisotropy_grows_with_exposure():
    short = window_motion_stats(_pan(fps=30, pan_px_s=150.0, frames=6, shutter_angle_deg=30.0))
    long = window_motion_stats(_pan(fps=30, pan_px_s=150.0, frames=6, shutter_angle_deg=360.0))
    assert long.blur_anisotropy > short.blur_anisotropy + 0.2
    assert long.flow_p50_px == pytest.approx(short.flow_p50_px, rel=0.2)


@pytest.mark.parametrize(
    ("fps", "flicker_hz", "expected"),
    [(30, 100.0, 1 / 3), (30, 120.0, 0.0), (240, 100.0, 100 / 240), (25, 100.0, 0.0), (1000, 120.0, 0.12)],
)
def test_mains_alias(fps, flicker_hz, expected):
    assert mains_alias_cycles_per_frame(fps, flicker_hz) == pytest.approx(expected)


def test_flicker_of_mains_light_points_at_the_capture_rate():
    lamp = ObjectSpec(shape="disc", size_px=6.0, position_px=(20, 20), velocity_px_s=(40, 0), gravity=False)
    spec = SceneSpec(
        width=96,
        height=64,
        capture_fps=240,
        duration_frames=48,
        objects=[lamp],
        flicker_hz=100.0,
        flicker_depth=0.4,
        shutter_angle_deg=90.0,
        noise_sigma=0.5,
        seed=2,
    )
    frames = list(render_frames(spec))
    peak, share = flicker_peak(brightness_series(frames))
    assert peak == pytest.approx(100 / 240, abs=0.025)
    assert share > 0.5
    matches = capture_rates_matching_flicker(peak, [24, 25, 30, 60, 120, 240, 480])
    assert (240.0, 100.0) in matches
    assert all(fps != 30 for fps, _ in matches)


def test_no_flicker_without_mains_light():
    frames = _pan(fps=240, pan_px_s=0.0, frames=32)
    _, share = flicker_peak(brightness_series(frames))
    assert share < 0.5


def test_window_stats_vector_is_fixed_length_and_finite():
    stats = window_motion_stats(_pan(fps=60, pan_px_s=120.0, frames=10))
    vector = stats.to_vector()
    assert vector.shape == (len(MotionStats.FEATURES),)
    assert np.all(np.isfinite(vector))
    assert stats.to_dict()["frame_count"] == 10


def test_too_few_frames():
    with pytest.raises(InsufficientFramesError, match="at least 3"):
        window_motion_stats(_pan(fps=30, pan_px_s=10.0, frames=2))
