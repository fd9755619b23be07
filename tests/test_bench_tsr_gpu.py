"""bench/tsr_gpu.py, the pack / train-elsewhere / finish split, on a tiny mined dataset: what travels is
what was read, the frame limits hold, the weights survive the shards, and finish refuses other data."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "bench"))

import tsr_gpu  # noqa: E402

from engine.errors import TrainingDataError, UnsupportedOptionError  # noqa: E402
from engine.training.tsr.train import prepare_data  # noqa: E402


def _mined_dataset(root: Path, frame_counts: list[int]) -> Path:
    """clips/ and manifest rows as ``chronoscope mine --extract`` writes them, one source per clip."""
    from engine.scenes import write_video

    (root / "clips").mkdir(parents=True)
    rows = []
    for index, count in enumerate(frame_counts):
        rng = np.random.default_rng(index)
        frames = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(count)]
        write_video(frames, root / "clips" / f"clip{index}.mkv", 240, crf=0)
        rows.append({"row": "clip", "source": f"/lib/s{index}.mp4", "content_hash": f"h{index}",
                     "clip": f"clips/clip{index}.mkv", "conform_rate": "240"})  # fmt: skip
    (root / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return root


def _pack_args(dataset: Path, pack: Path, **changes) -> argparse.Namespace:
    settings = dict(
        dataset=dataset, pack=pack, renders=0, batch_size=1, crop=64, learning_rate=1e-5, max_frames=8,
        jpeg_quality=95, wheel_cache=pack / "no-wheels", site_wheels=pack / "no-wheels", frames_only=True,
    )  # fmt: skip
    settings.update(changes)
    return argparse.Namespace(**settings)


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("tsr-gpu")
    dataset = _mined_dataset(root / "DATASET", [6, 10, 10, 10, 10, 10])
    pack = root / "pack"
    assert tsr_gpu.pack(_pack_args(dataset / "clips", pack)) == 0
    return dataset, pack, tsr_gpu.read_index(pack)


def test_pack_holds_the_training_split_with_its_hashes_and_limits(packed):
    dataset, pack, index = packed
    recipe = index["recipe"]
    config = tsr_gpu.recipe_config(recipe, renders=0)
    data = prepare_data(config, None)
    assert [record["name"] for record in index["clips"]] == [clip.clip.name for clip in data.train]
    assert index["held_out"] == [clip.name for clip in data.split.held_out]
    assert [record["frames"] for record in index["clips"]] == [clip.frame_count for clip in data.train]
    assert recipe["max_frames_per_clip"] == 8 and all(record["frames"] <= 8 for record in index["clips"])
    assert isinstance(recipe["jpeg_psnr_db"], dict) and recipe["jpeg_psnr_db"]["min"] > 30
    loaded = tsr_gpu.read_pack(pack, max_frames=5)
    assert all(clip.frame_count == 5 for clip in loaded)
    for clip, original in zip(loaded, data.train, strict=True):
        assert clip.clip == original.clip
        # JPEG at quality 95 of random noise: close to, not equal to, the decoded frames
        assert np.abs(clip.frames.astype(int) - original.frames[:5].astype(int)).mean() < 12
    hashes = tsr_gpu.packed_hashes(pack, 5)
    assert hashes == {clip.clip.name: tsr_gpu.frame_hashes(clip.frames[:5]) for clip in data.train}


def test_finish_refuses_data_other_than_what_trained(packed):
    _, pack, index = packed
    recipe = dict(index["recipe"], max_frames_per_clip=5)
    data = prepare_data(tsr_gpu.recipe_config(recipe, renders=0), None)
    run = {
        "train_clips": [clip.clip.name for clip in data.train],
        "clip_sha256": tsr_gpu.packed_hashes(pack, 5),
        "render_seeds": [],
        "render_sha256": {},
    }
    assert tsr_gpu.check_same_data(run, data) == []
    changed = replace(data.train[0], frames=data.train[0].frames.copy())
    changed.frames[2, 0, 0, 0] ^= 1
    with pytest.raises(TrainingDataError, match="other frames here"):
        tsr_gpu.check_same_data(run, replace(data, train=[changed, *data.train[1:]]))
    with pytest.raises(TrainingDataError, match="render seeds"):
        tsr_gpu.check_same_data({**run, "render_seeds": [1000]}, data)
    older = {key: value for key, value in run.items() if not key.endswith("sha256")}
    assert len(tsr_gpu.check_same_data(older, data)) == 2


def test_renders_made_differently_there_are_noted_not_refused(packed):
    from engine.training.tsr.data import render_clips

    _, pack, index = packed
    recipe = dict(index["recipe"], max_frames_per_clip=5, renders=1)
    config = tsr_gpu.recipe_config(recipe, render_size=(64, 48))
    data = prepare_data(config, None)
    render = render_clips([1000], None, width=64, height=48)[0]
    run = {
        "train_clips": [clip.clip.name for clip in data.train if clip.clip.kind != "render"],
        "clip_sha256": tsr_gpu.packed_hashes(pack, 5),
        "render_seeds": [1000],
        "render_sha256": {"1000": tsr_gpu.frames_sha256(render.frames)},
    }
    assert tsr_gpu.check_same_data(run, data) == []
    run["render_sha256"]["1000"] = "0" * 64
    (noted,) = tsr_gpu.check_same_data(run, data)
    assert "render seeds [1000] render differently" in noted


def test_weights_survive_the_shards(tmp_path):
    network = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Conv2d(8, 3, 1))
    state = network.state_dict()
    names = tsr_gpu.save_shards(state, tmp_path, shard_bytes=600)
    assert len(names) > 1
    back = tsr_gpu.load_shards(tmp_path, names)
    assert list(back) == list(state)
    assert all(torch.equal(back[key], state[key]) for key in state)
    (tmp_path / names[-1]).unlink()
    with pytest.raises(TrainingDataError, match="missing"):
        tsr_gpu.load_shards(tmp_path, names)


def test_pack_never_deletes_a_folder_that_is_not_a_pack(packed, tmp_path):
    dataset, _, _ = packed
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    with pytest.raises(UnsupportedOptionError, match="not an earlier pack"):
        tsr_gpu.pack(_pack_args(dataset / "clips", precious))
    assert (precious / "keep.txt").read_text() == "mine"
    with pytest.raises(UnsupportedOptionError, match="at least 3 frames"):
        tsr_gpu.pack(_pack_args(dataset / "clips", tmp_path / "new", max_frames=2))
    with pytest.raises(UnsupportedOptionError, match="crop"):
        tsr_gpu.pack(_pack_args(dataset / "clips", tmp_path / "new", crop=100))
    assert not (tmp_path / "new").exists()


def test_step_plan_respects_both_limits_and_the_measured_overhead():
    assert tsr_gpu.planned_steps(330, 0.046, 20000) == 5900
    assert tsr_gpu.planned_steps(330, 0.046, 100) == 100
    assert tsr_gpu.planned_steps(1, 0.046, 20000) == tsr_gpu.MIN_STEPS
