"""The rife synthesis backends on ONNX Runtime, on real Middlebury frames (resized small)."""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

import engine.interp.rife as rife
from engine.errors import ModelNotFoundError, UnsupportedOptionError
from engine.interp.base import available_backends, create_backend
from engine.models.registry import ENV_MODELS_DIR
from engine.models.runtime import CPU, ENV_PROVIDERS, choose_providers

REPO_ROOT = Path(__file__).resolve().parent.parent
PREPARED = Path(os.environ.get(ENV_MODELS_DIR) or REPO_ROOT / "build" / "models")
# Not multiples of 32 or 64, so padding and cropping are exercised.
WIDTH, HEIGHT = 168, 126


@pytest.fixture
def models(monkeypatch) -> Path:
    """Point the engine at the prepared models, on the CPU; skip when they are absent."""
    if not all((PREPARED / f"{name}.manifest.json").is_file() for name in rife.PREFERENCE):
        pytest.skip(f"RIFE models not prepared in {PREPARED} (run `chronoscope models prepare`)")
    monkeypatch.setenv(ENV_MODELS_DIR, str(PREPARED))
    monkeypatch.setenv(ENV_PROVIDERS, CPU)
    return PREPARED


def _load(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(cv2.resize(bgr, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)[:, :, ::-1])


@pytest.fixture
def triplet(shared_data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    root = shared_data / "triplets" / "middlebury-other"
    if not root.is_dir():
        pytest.skip(f"Middlebury triplets not found under {shared_data}")
    sequence = "MiniCooper"  # a car drives by: blending gives 27.4 dB at this size, RIFE 32-37 dB
    first, second = (_load(root / "input" / sequence / name) for name in ("frame10.png", "frame11.png"))
    return first, second, _load(root / "gt" / sequence / "frame10i11.png")


def _psnr(image: np.ndarray, truth: np.ndarray) -> float:
    error = np.mean((image.astype(np.float64) - truth.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / error))


def test_backends_are_registered_even_without_models():
    assert {"rife", "rife-hdv3", "rife-4.2x"} <= set(available_backends())


@pytest.mark.parametrize("name", ["rife", "rife-hdv3", "rife-4.2x"])
def test_missing_model_says_how_to_prepare(name, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_MODELS_DIR, str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="chronoscope models prepare"):
        create_backend(name)


@pytest.mark.parametrize("name", ["rife-hdv3", "rife-4.2x"])
def test_midpoint_beats_blending_on_a_real_pair(models, triplet, name):
    frame0, frame1, truth = triplet
    backend = create_backend(name)
    result = backend.synthesize(frame0, frame1, Fraction(1, 2))
    assert result.frame.shape == frame0.shape and result.frame.dtype == np.uint8
    assert result.risk.shape == frame0.shape[:2] and result.risk.dtype == np.float32
    assert 0.0 <= result.risk.min() and result.risk.max() <= 1.0
    blend = ((frame0.astype(np.uint16) + frame1) // 2).astype(np.uint8)
    assert _psnr(result.frame, truth) > _psnr(blend, truth) + 2.0
    assert result.backend == name and backend.execution_provider == CPU
    assert any(name in note and "MIT" in note for note in result.notes)
    backend.close()
    with pytest.raises(UnsupportedOptionError, match="closed"):
        backend.synthesize(frame0, frame1, 0.5)


def test_risk_map_points_at_the_real_errors(models, triplet):
    frame0, frame1, truth = triplet
    result = create_backend("rife-4.2x").synthesize(frame0, frame1, 0.5)
    error = np.abs(result.frame.astype(np.float32) - truth).mean(axis=2)
    riskiest = result.risk >= np.quantile(result.risk, 0.95)
    assert error[riskiest].mean() > 2.0 * error[~riskiest].mean()


def test_content_entering_at_the_edge_is_risky(models):
    rng = np.random.default_rng(7)
    texture = cv2.resize(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8), (240, 160),
                         interpolation=cv2.INTER_CUBIC)
    frame0 = np.ascontiguousarray(texture[:, 16:216])
    frame1 = np.ascontiguousarray(texture[:, 0:200])  # the camera pans left: new content at the left edge
    result = create_backend("rife-4.2x").synthesize(frame0, frame1, 0.5)
    # At the left edge only frame1 holds the content; in the middle both frames agree.
    edge, middle = result.risk[:, :4].mean(), result.risk[:, 40:160].mean()
    assert edge > 0.3 and edge > 5 * middle


def test_rife_prefers_hdv3(models, triplet):
    backend = create_backend("rife")
    assert backend.chosen_model == "rife-hdv3"
    result = backend.synthesize(triplet[0], triplet[1], 0.5)
    assert result.backend == "rife" and any("rife-hdv3" in note for note in result.notes)


def test_v4_follows_t(models, triplet):
    frame0, frame1, _ = triplet
    early, late = create_backend("rife-4.2x").synthesize_many(frame0, frame1, [0.2, 0.8])
    def distance(a, b):
        return np.abs(a.astype(np.float32) - b).mean()
    assert distance(early.frame, frame0) < distance(late.frame, frame0)
    assert distance(late.frame, frame1) < distance(early.frame, frame1)


def test_hdv3_bisection_shares_passes_and_reports_quantised_times(models, triplet, caplog):
    frame0, frame1, _ = triplet
    backend = create_backend("rife-hdv3")
    session = backend._session
    calls = []
    original_run = session.run
    session.run = lambda feeds: calls.append(1) or original_run(feeds)
    with caplog.at_level(logging.WARNING):
        quarter, half, three_quarters = backend.synthesize_many(frame0, frame1, [0.25, 0.5, 0.75])
    assert len(calls) == 3  # 1/2, then 1/4 and 3/4 from it
    midpoint = backend.synthesize(frame0, frame1, 0.5)
    assert np.array_equal(midpoint.frame, half.frame)
    assert not caplog.records
    odd = backend.synthesize(frame0, frame1, 0.3)
    assert any("rendered at 5/16" in note for note in odd.notes)
    assert "rife-4.2x" in caplog.text
    assert odd.risk.min() >= 0 and odd.risk.max() <= 1


def test_dyadic_time():
    assert rife.dyadic_time(0.5, 4) == Fraction(1, 2)
    assert rife.dyadic_time(Fraction(3, 8), 4) == Fraction(3, 8)
    assert rife.dyadic_time(0.3, 4) == Fraction(5, 16)
    assert rife.dyadic_time(0.001, 4) == Fraction(1, 16)
    assert rife.dyadic_time(Fraction(1, 3), 6) == Fraction(21, 64)


def test_sixteen_bit_and_alpha_pass_through(models, triplet):
    frame0, frame1, _ = triplet
    alpha = np.zeros(frame0.shape[:2], np.uint16)
    alpha[:, : WIDTH // 2] = 65535
    deep0 = np.dstack((frame0.astype(np.uint16) * 257, alpha))
    deep1 = np.dstack((frame1.astype(np.uint16) * 257, alpha))
    backend = create_backend("rife-4.2x")
    result = backend.synthesize(deep0, deep1, 0.5)
    assert result.frame.shape == deep0.shape and result.frame.dtype == np.uint16
    assert result.frame[:, :40, 3].min() > 60000 and result.frame[:, -40:, 3].max() < 5000
    eight_bit = backend.synthesize(frame0, frame1, 0.5).frame
    assert np.abs((result.frame[:, :, :3] / 257.0) - eight_bit).max() <= 1.5


def test_bad_inputs_are_refused(models, triplet):
    frame0, frame1, _ = triplet
    backend = create_backend("rife-4.2x")
    with pytest.raises(UnsupportedOptionError, match="outside"):
        backend.synthesize(frame0, frame1, 1.0)
    with pytest.raises(UnsupportedOptionError, match="differ"):
        backend.synthesize(frame0, frame1[:-2], 0.5)
    with pytest.raises(UnsupportedOptionError, match="max_bisection_depth"):
        create_backend("rife-hdv3", max_bisection_depth=0)


def test_provider_choice_and_override(monkeypatch):
    monkeypatch.delenv(ENV_PROVIDERS, raising=False)
    providers, reason = choose_providers()
    assert providers[-1] == CPU
    monkeypatch.setenv(ENV_PROVIDERS, "NoSuchExecutionProvider")
    with pytest.raises(UnsupportedOptionError, match="available:"):
        choose_providers()


def test_gpu_fallback_is_a_warning_only_where_there_is_a_gpu(models, monkeypatch, caplog):
    """With onnxruntime-gpu but no usable GPU, loading says why the models run on the CPU: a
    WARNING where an NVIDIA GPU is there but cannot be used (a set-up to fix), INFO on a machine
    without one (every command warned there before)."""
    from engine.models.runtime import GPU_PROVIDERS, create_session, nvidia_device_present

    monkeypatch.delenv(ENV_PROVIDERS, raising=False)
    with caplog.at_level(logging.INFO, logger="engine.models.runtime"):
        session = create_session("rife-hdv3")
    about_cpu = [r for r in caplog.records if "runs on the CPU" in r.getMessage()]
    gpu_build = any(name in ort.get_available_providers() for name in GPU_PROVIDERS)
    if session.provider in GPU_PROVIDERS or not gpu_build:
        assert not about_cpu
        return
    assert about_cpu and session.fallback_reason
    expected = logging.WARNING if nvidia_device_present() else logging.INFO
    assert all(record.levelno == expected for record in about_cpu)
