"""Training recipes of the speed network: what a run may vary, what its checkpoint records, and
that what it exports is what the engine runs (window length, differences-only input, the
out-of-fold correction inside the graph)."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ModelIntegrityError, TrainingDataError, UnsupportedOptionError
from engine.models.manifest import manifest_path_for, read_manifest
from engine.speed.estimator import RATE_RELATIVE_RECIPE_VERSION, SpeedModel
from engine.speed.windows import INPUT_PX, READ_PX

pytest.importorskip("torch")

import torch  # noqa: E402

from engine.training.speed.data import Source, Variant, speed_at_play_rate  # noqa: E402
from engine.training.speed.finetune import FineTuneConfig  # noqa: E402
from engine.training.speed.net import CalibratedSpeedNet, SpeedNet  # noqa: E402
from engine.training.speed.recipe import Recipe, crop_window, jitter, recipe_of  # noqa: E402
from engine.training.speed.train import (  # noqa: E402
    INIT_WEIGHTS,
    Sampler,
    export_checkpoint,
    export_model,
    shipped_recipe,
    train,
    weights_recipe_version,
)
from engine.training.speed.validation import window_reads  # noqa: E402


def moving_source(name: str = "clip-a", frames: int = 160, rate: Fraction = Fraction(30)) -> Source:
    """A textured square drifting right: real time at 30 fps, every k-th frame k times faster."""
    rng = np.random.default_rng(3)
    texture = rng.integers(0, 255, size=(READ_PX, 2 * READ_PX), dtype=np.uint8)
    video = np.stack([np.roll(texture, -i, axis=1)[:, :READ_PX] for i in range(frames)])
    variants = {
        f"real_{k}": Variant(f"real_{k}", video[::k], speed_at_play_rate(Fraction(k), rate), False)
        for k in (1, 2, 4, 8)
    }
    return Source(name, variants)


def trained(tmp_path: Path, recipe: Recipe, steps: int = 2) -> Path:
    """A checkpoint of ``steps`` steps of ``recipe`` on the drifting texture, at tmp_path/run/c.pt
    (a folder that does not exist yet: training makes it)."""
    return train(
        tmp_path,
        steps=steps,
        minutes=None,
        sources=[moving_source()],
        checkpoint=tmp_path / "run" / "c.pt",
        recipe=recipe,
    )


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"window_frames": 1}, "window of 1 frames"),
        ({"network_width": 4}, "network width 4"),
        ({"min_crop_px": 8}, "smallest crop 8 px"),
        ({"batch_pairs": 0}, "0 window pairs"),
        ({"render_share": 1.5}, "render share 1.5"),
    ],
)
def test_impossible_recipes_are_refused_before_training(tmp_path, settings, message):
    with pytest.raises(UnsupportedOptionError, match=message):
        train(tmp_path, steps=1, minutes=None, sources=[moving_source()], recipe=Recipe(**settings))


def test_crops_keep_the_window_shape_and_jitter_stays_in_range():
    rng = np.random.default_rng(0)
    window = np.random.default_rng(1).integers(0, 255, size=(16, READ_PX, READ_PX), dtype=np.uint8)
    for smallest in (40, 72, READ_PX):
        cropped = crop_window(window, rng, smallest)
        assert cropped.shape == (16, INPUT_PX, INPUT_PX) and cropped.dtype == np.uint8
    jittered = jitter(np.stack([cropped, cropped]), rng)
    assert jittered.dtype == np.float32 and jittered.shape == (2, 16, INPUT_PX, INPUT_PX)
    # per-window contrast and brightness differ between the two copies of one window
    assert not np.allclose(jittered[0], jittered[1])


def test_jitter_moves_each_window_by_its_brightness_and_each_frame_by_a_few_percent():
    """On mid-grey (contrast has no effect there): a window's mean is 0.5 plus its brightness,
    within +-0.1, and a frame's level within the window moves by its gain and offset, about
    +-3 %; windows spread over the whole brightness range, frames far less."""
    grey = np.full((400, 8, 4, 4), 128, np.uint8)
    out = jitter(grey, np.random.default_rng(5))
    window_means = out.mean(axis=(1, 2, 3))
    assert np.all(np.abs(window_means - 128 / 255) <= 0.1 + 0.03)
    assert window_means.std() > 0.05  # uniform over +-0.1: sd 0.058
    frame_spread = (out.mean(axis=(2, 3)) - window_means[:, None]).std()
    assert 0.005 < frame_spread < 0.03
    assert np.all(out[:, :, 0, 0] == out[:, :, 3, 3])  # one level per frame: no per-pixel noise


def test_sampler_draws_windows_of_the_recipes_length_and_no_renders_when_their_share_is_zero():
    render = Source(
        "render-0",
        {f"render_{n}": Variant(f"render_{n}", np.zeros((480 // n, READ_PX, READ_PX), np.uint8),
                                Fraction(30 * n, 240), False) for n in (1, 2, 4, 8, 16)},
    )  # fmt: skip
    sampler = Sampler([moving_source(), render], seed=0, recipe=Recipe(window_frames=16, render_share=0.0))
    batch = sampler.batch()
    assert batch["frames"].shape[1:] == (16, INPUT_PX, INPUT_PX)
    # every pair comes from the clip: its anchors are real time at 30 fps (log2 0), never a render's
    assert torch.all(batch["log2_speed"][batch["anchored"]] == 0.0)


def test_the_checkpoint_records_its_recipe_and_another_recipe_is_not_resumed(tmp_path):
    recipe = Recipe(window_frames=12, network_width=16, frames_input=False, batch_pairs=4)
    checkpoint = trained(tmp_path, recipe, steps=2)
    state = torch.load(checkpoint, weights_only=False)
    assert recipe_of(state) == recipe
    with pytest.raises(
        TrainingDataError,
        match=r"window_frames: 12 -> 8; network_width: 16 -> 24; batch_pairs: 4 -> 16; "
        r"frames_input: False -> True",
    ):
        train(
            tmp_path, steps=3, minutes=None, sources=[moving_source()], checkpoint=checkpoint, recipe=Recipe()
        )


def test_a_network_of_16_frames_exports_with_its_shape_and_detect_refuses_it_by_name(tmp_path):
    recipe = Recipe(window_frames=16, frames_input=False, batch_pairs=4)
    checkpoint = trained(tmp_path, recipe, steps=2)
    model_path = export_checkpoint(checkpoint, tmp_path / "diff16.onnx")
    manifest = read_manifest(manifest_path_for(model_path))
    assert manifest.inputs[0].shape == ("batch", 16, INPUT_PX, INPUT_PX)
    assert manifest.converter["recipe"]["frames_input"] is False
    assert "16-frame window" in manifest.description
    # the engine reads 8-frame windows: a 16-frame model is refused by name, not run wrongly
    with pytest.raises(ModelIntegrityError, match="diff16.onnx takes windows of shape"):
        SpeedModel(model_path)


def test_a_differences_only_network_runs_in_the_engine_as_trained(tmp_path):
    recipe = Recipe(frames_input=False, batch_pairs=4)
    checkpoint = trained(tmp_path, recipe, steps=2)
    model_path = export_checkpoint(checkpoint, tmp_path / "diff.onnx")
    windows = np.random.default_rng(2).random((3, 8, INPUT_PX, INPUT_PX), dtype=np.float32)
    log2_speed, probability = SpeedModel(model_path).predict(windows)
    network = recipe.network()
    network.load_state_dict(torch.load(checkpoint, weights_only=False)["network"])
    expected, _ = network.eval()(torch.from_numpy(windows))
    np.testing.assert_allclose(log2_speed, expected.detach().numpy(), atol=1e-4)
    assert np.all((0 <= probability) & (probability <= 1))


def test_the_correction_is_applied_inside_the_exported_graph_and_recorded(tmp_path):
    checkpoint = trained(tmp_path, Recipe(batch_pairs=2), steps=1)
    plain = export_checkpoint(checkpoint, tmp_path / "plain.onnx")
    corrected = export_checkpoint(
        checkpoint,
        tmp_path / "corrected.onnx",
        calibration={"offset": -1.5, "scale": 0.5, "fitted_on": "test"},
    )
    windows = np.random.default_rng(4).random((2, 8, INPUT_PX, INPUT_PX), dtype=np.float32)
    raw, _ = SpeedModel(plain).predict(windows)
    mapped, _ = SpeedModel(corrected).predict(windows)
    np.testing.assert_allclose(mapped, (raw + 1.5) / 0.5, atol=1e-4)
    assert read_manifest(manifest_path_for(corrected)).converter["calibration"]["fitted_on"] == "test"
    with pytest.raises(ValueError, match="positive"):
        CalibratedSpeedNet(SpeedNet(), 0.0, 0.0)


def test_window_reads_cover_every_variant_with_the_networks_window_and_hop():
    network = SpeedNet(window_frames=16)
    reads = window_reads(network, [moving_source(frames=160)], torch.device("cpu"), hop=8)
    by_key: dict[str, list] = {}
    for read in reads:
        by_key.setdefault(read.key, []).append(read)
    # 160 frames: real_1 has (160 - 16) / 8 + 1 windows; real_8 has 20 frames, one window
    assert len(by_key["real_1"]) == 19 and len(by_key["real_8"]) == 1
    assert by_key["real_4"][0].target_log2_speed == pytest.approx(math.log2(4))
    assert all(not read.synthetic for read in reads)


def test_the_shipped_network_is_of_the_default_recipe():
    """The shipped manifest records no recipe (it predates them): it is the default one, the one
    ``chronoscope train speed`` builds to load its weights."""
    recipe = shipped_recipe()
    assert recipe == Recipe()
    recipe.network().load_state_dict(torch.load(INIT_WEIGHTS, weights_only=True))


def test_fine_tuning_starts_from_weights_with_the_recipe_of_the_manifest_beside_them(tmp_path):
    recipe = Recipe(frames_input=False, batch_pairs=2)
    checkpoint = trained(tmp_path, recipe, steps=1)
    export_model(checkpoint, tmp_path / "model")
    weights = tmp_path / "model" / "speed_net.weights.pt"
    config = FineTuneConfig(data=(tmp_path,), output=tmp_path / "o.onnx", init_weights=weights)
    assert config.starting_recipe() == recipe
    config.starting_recipe().network().load_state_dict(torch.load(weights, weights_only=True))
    assert weights_recipe_version(weights) == RATE_RELATIVE_RECIPE_VERSION
    assert weights_recipe_version(INIT_WEIGHTS) == 1  # the shipped network predates version 2
    (tmp_path / "model" / "speed_net.manifest.json").unlink()
    assert config.starting_recipe() == Recipe()


def test_a_checkpoint_from_before_recipes_resumes_as_the_default_and_unknown_settings_are_refused(tmp_path):
    """Version-2 checkpoints written before recipes were recorded hold no ``recipe``: the default."""
    checkpoint = trained(tmp_path, Recipe(), steps=1)
    state = torch.load(checkpoint, weights_only=False)
    del state["recipe"]
    torch.save(state, checkpoint)
    train(tmp_path, steps=2, minutes=None, sources=[moving_source()], checkpoint=checkpoint)
    assert torch.load(checkpoint, weights_only=False)["step"] == 2
    with pytest.raises(TrainingDataError, match=r"checkpoint .* records recipe settings .*\(colour\)"):
        recipe_of({"recipe": {"colour": True}}, "checkpoint c.pt")
