"""The risk score ranks frames by their real error, and the ``ensemble`` backend averages its members.

Ground truth comes from engine.scenes: a procedural scene rendered at 240 fps (small, 160x120) is
subsampled by 2, 4 and 8, and every dropped frame is made from its neighbours and compared with
the frame that was dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_interp_scenes import find_square, psnr_db, square_scene

from engine.errors import ModelNotFoundError, UnsupportedOptionError
from engine.interp import DEFAULT_MODEL, create_backend
from engine.interp.ensemble import EnsembleSynthesizer, disagreement_risk, mean_frame, weighted_frame
from engine.scenes import random_scene, render_frames

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILT_MODELS = REPO_ROOT / "build" / "models"


def _ranks(values: list[float]) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    return ranks


def spearman(first: list[float], second: list[float]) -> float:
    return float(np.corrcoef(_ranks(first), _ranks(second))[0, 1])


@pytest.fixture(scope="module")
def scene_frames() -> np.ndarray:
    spec = random_scene(3, width=160, height=120, capture_fps=240, duration_frames=17, object_count=3)
    return np.stack(list(render_frames(spec)))


def subsampled_errors(backend, frames: np.ndarray) -> tuple[list[float], list[float]]:
    """(risk score, MSE against the dropped frame) for every frame made at factors 2, 4 and 8."""
    scores, errors = [], []
    for factor in (2, 4, 8):
        for start in range(0, len(frames) - factor, factor):
            times = [j / factor for j in range(1, factor)]
            results = backend.synthesize_many(frames[start], frames[start + factor], times)
            for j, result in enumerate(results, start=1):
                truth = frames[start + j].astype(np.float64)
                scores.append(result.risk_score)
                errors.append(float(np.mean((result.frame - truth) ** 2)))
    return scores, errors


@pytest.mark.parametrize("name", ["flow", "blend"])
def test_risk_score_ranks_frames_by_their_real_error(name, scene_frames):
    scores, errors = subsampled_errors(create_backend(name), scene_frames)
    assert len(scores) == 8 + 4 * 3 + 2 * 7
    assert spearman(scores, errors) >= 0.5, (scores, errors)


def test_ensemble_mixes_its_members_by_their_risk_and_flags_their_disagreement():
    frame0 = square_scene((0, 0))
    frame1 = square_scene((16, 8))
    ensemble = EnsembleSynthesizer(learned="nearest")
    result = ensemble.synthesize(frame0, frame1, 0.5)
    by_flow = create_backend("flow").synthesize(frame0, frame1, 0.5)
    by_nearest = create_backend("nearest").synthesize(frame0, frame1, 0.5)
    weight_flow = (1.05 - by_flow.risk.astype(np.float64)) ** 2
    weight_nearest = (1.05 - by_nearest.risk.astype(np.float64)) ** 2
    mixed = (by_flow.frame * weight_flow[..., None] + by_nearest.frame * weight_nearest[..., None]) / (
        weight_flow + weight_nearest
    )[..., None]
    assert np.abs(result.frame.astype(np.float64) - mixed).max() <= 1.0
    assert result.backend == "ensemble"
    disagreement = disagreement_risk(by_flow.frame, by_nearest.frame)
    assert np.all(result.risk >= disagreement - 1e-6)
    assert np.all(result.risk >= 0.5 * (by_flow.risk + by_nearest.risk) - 1e-6)
    moved_region = result.risk[58:106, 68:124]
    assert moved_region.mean() > 0.5 > result.risk[130:, :40].mean()
    assert psnr_db(result.frame, square_scene((8, 4))) > psnr_db(by_nearest.frame, square_scene((8, 4))) + 3.0
    assert np.array_equal(weighted_frame(frame0, by_flow.risk, frame0, by_nearest.risk), frame0)


def test_ensemble_keeps_sixteen_bit_and_alpha():
    frame0 = np.dstack([square_scene((0, 0)), np.full((160, 240), 200, np.uint8)]).astype(np.uint16) * 257
    frame1 = np.dstack([square_scene((8, 4)), np.full((160, 240), 100, np.uint8)]).astype(np.uint16) * 257
    result = EnsembleSynthesizer(learned="blend").synthesize(frame0, frame1, 0.5)
    assert result.frame.dtype == np.uint16 and result.frame.shape == frame0.shape
    assert abs(int(np.median(result.frame[..., 3])) - 150 * 257) <= 257
    assert np.array_equal(mean_frame(frame0, frame0), frame0)


def test_ensemble_without_prepared_models_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("CHRONOSCOPE_MODELS_DIR", str(tmp_path / "empty"))
    with pytest.raises((ModelNotFoundError, UnsupportedOptionError), match="models prepare|not available"):
        create_backend("ensemble")


@pytest.mark.skipif(not (BUILT_MODELS / "rife-hdv3.onnx").is_file(), reason="RIFE models not prepared")
def test_default_ensemble_with_rife_puts_the_square_where_it_belongs(monkeypatch):
    monkeypatch.setenv("CHRONOSCOPE_MODELS_DIR", str(BUILT_MODELS))
    frame0 = square_scene((0, 0))
    frame1 = square_scene((16, 8))
    truth = square_scene((8, 4))
    backend = create_backend(DEFAULT_MODEL)
    result = backend.synthesize(frame0, frame1, 0.5)
    assert find_square(result.frame) == (8, 4)
    assert psnr_db(result.frame, truth) > 30.0
