"""``chronoscope train speed``: fine-tuning the speed network on footage without labels.

The clips are rendered here with PyAV (a textured pan, small and short); training runs a few
steps on the CPU through the real recipe, exports ONNX, and the engine loads the result.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.errors import TrainingDataError
from engine.models.manifest import manifest_path_for, read_manifest, sha256_file
from engine.scenes import write_video
from engine.speed.detect import detect_speed
from engine.speed.estimator import SpeedModel
from engine.training.speed.data import (
    CACHE_FORMAT,
    MIN_USER_CLIP_FRAMES,
    build_user_cache,
    cache_is_current,
    clip_variants_from,
    find_clips,
    high_rate_variants,
    load_variants,
    user_cache_name,
)

pytest.importorskip("torch")

import torch  # noqa: E402

from engine.speed.windows import READ_PX  # noqa: E402
from engine.training.speed.data import Source, Variant, speed_at_play_rate  # noqa: E402
from engine.training.speed.finetune import (  # noqa: E402
    DEFAULT_LEARNING_RATE,
    FineTuneConfig,
    fine_tune,
    split_sources,
)
from engine.training.speed.net import SpeedNet  # noqa: E402
from engine.training.speed.train import Sampler, export_checkpoint, train  # noqa: E402
from engine.training.speed.validation import validation_errors  # noqa: E402


def ten_fps_source(frames: int = 96, rate: Fraction = Fraction(10)) -> Source:
    """A real clip (at 10 fps unless told) as the cache holds it: every k-th frame, speeds as
    played at 30 fps."""
    rng = np.random.default_rng(11)
    video = rng.integers(0, 255, size=(frames, READ_PX, READ_PX), dtype=np.uint8)
    variants = {
        f"real_{k}": Variant(f"real_{k}", video[::k], speed_at_play_rate(Fraction(k), rate), False)
        for k in (1, 2, 4, 8)
    }
    return Source(f"clip-{rate}-fps", variants)


def test_sampler_anchors_a_10fps_clip_where_its_frames_read_at_30fps():
    batch = Sampler([ten_fps_source()], seed=0).batch()
    anchored = batch["log2_speed"][batch["anchored"]]
    assert len(anchored) > 0
    assert torch.allclose(anchored, torch.full_like(anchored, math.log2(3)))
    first, second = batch["pairs"][:, 0], batch["pairs"][:, 1]
    differences = batch["log2_speed"][second] - batch["log2_speed"][first]
    assert torch.allclose(differences, batch["pair_delta"], atol=1e-6)


class ConstantReader(torch.nn.Module):
    """Reads every window at the same log2 speed, never made."""

    def __init__(self, log2_speed: float) -> None:
        super().__init__()
        self.log2_speed = log2_speed

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        count = frames.shape[0]
        return torch.full((count,), self.log2_speed), torch.full((count,), -5.0)


@pytest.mark.parametrize(
    ("rate", "version", "real_time_target"),
    [(10, 2, math.log2(3)), (10, 1, 0.0), (60, 2, -1.0), (60, 1, -1.0), (30, 1, 0.0)],
)
def test_validation_judges_a_network_by_what_detect_adds_for_its_version(rate, version, real_time_target):
    """detect adds log2(P / 30) to a version-2 reading at every rate, to a version-1 one above
    30 fps only: the reading that makes detect say real time is the target."""
    source = ten_fps_source(rate=Fraction(rate))
    errors = validation_errors(ConstantReader(1.0), [source], torch.device("cpu"), version)
    assert errors["realtime_bias"] == pytest.approx(1.0 - real_time_target, abs=1e-6)


def test_cache_is_current_says_no_to_damaged_files(tmp_path):
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.npz"
    np.savez_compressed(truncated, format=np.array(CACHE_FORMAT), meta=np.array("{}"))
    truncated.write_bytes(truncated.read_bytes()[:40])
    odd = tmp_path / "odd.npz"
    np.savez_compressed(odd, format=np.array([1, 2]), meta=np.array("{}"))
    for path in (empty, truncated, odd, tmp_path / "missing.npz"):
        assert not cache_is_current(path)


def test_a_version_1_checkpoint_is_not_resumed(tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    network = SpeedNet()
    optimiser = torch.optim.AdamW(network.parameters())
    torch.save(
        {
            "network": network.state_dict(),
            "optimiser": optimiser.state_dict(),
            "step": 5,
            "history": [],
            "best": None,
        },
        checkpoint,
    )
    with pytest.raises(TrainingDataError, match="recipe version 1"):
        train(tmp_path, steps=6, sources=[ten_fps_source()], checkpoint=checkpoint, minutes=None)


def test_an_unchanged_start_is_exported_under_its_own_recipe_version(tmp_path):
    """Nothing beats the start (a constant score): the best network is the version-1 start, and
    its export says version 1; the last network, trained, says version 2."""
    start = tmp_path / "start.pt"
    torch.save(SpeedNet().state_dict(), start)
    checkpoint = train(
        tmp_path,
        steps=2,
        minutes=None,
        sources=[ten_fps_source()],
        checkpoint=tmp_path / "checkpoint.pt",
        init_weights=start,
        init_recipe_version=1,
        score=lambda network, version: 0.0,
    )
    kept = export_checkpoint(checkpoint, tmp_path / "kept.onnx", best=True)
    last = export_checkpoint(checkpoint, tmp_path / "last.onnx", best=False)
    assert read_manifest(manifest_path_for(kept)).converter["version"] == 1
    assert read_manifest(manifest_path_for(last)).converter["version"] == 2


def pan_frames(seed: int, count: int, step_px: float) -> list[np.ndarray]:
    """A random texture panned ``step_px`` per frame, 96 x 64 RGB."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 255, size=(64, 512, 3), dtype=np.uint8)
    texture = np.repeat(np.repeat(texture[::4, ::4], 4, axis=0), 4, axis=1)
    return [np.ascontiguousarray(texture[:, int(i * step_px) : int(i * step_px) + 96]) for i in range(count)]


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("footage")
    (folder / "nested").mkdir()
    for seed, name in enumerate(("a.mp4", "b.mp4", "nested/c.mov")):
        write_video(pan_frames(seed, MIN_USER_CLIP_FRAMES + 4, 2.5), folder / name, Fraction(25), crf=23)
    (folder / "notes.txt").write_text("not a clip")
    return folder


def test_find_clips_searches_folders_recursively_and_refuses_empty(footage, tmp_path):
    names = [path.name for path in find_clips([footage])]
    assert names == ["a.mp4", "b.mp4", "c.mov"]
    with pytest.raises(TrainingDataError, match="no video files"):
        find_clips([tmp_path])
    with pytest.raises(TrainingDataError, match="no such file or folder"):
        find_clips([tmp_path / "missing"])


def test_short_clips_are_skipped_and_all_short_is_refused(tmp_path):
    write_video(pan_frames(7, 20, 2.0), tmp_path / "short.mp4", Fraction(25), crf=23)
    with pytest.raises(TrainingDataError, match="at least"):
        build_user_cache(find_clips([tmp_path]), tmp_path / "cache")


def test_high_rate_clip_becomes_anchored_slow_motion():
    frames = [frame[..., 0] for frame in pan_frames(3, 128, 0.5)]
    variants = {v.key: v for v in high_rate_variants(frames, Fraction(120))}
    assert variants["render_1"].speed == Fraction(1, 4)
    assert variants["render_4"].speed == Fraction(1)
    assert not any(v.synthetic for v in variants.values())


@pytest.mark.parametrize(
    ("rate", "real_time_read"),
    [(Fraction(10), Fraction(3)), (Fraction(30), Fraction(1)), (Fraction(60), Fraction(1, 2))],
)
def test_real_clip_speeds_are_what_the_frames_show_played_at_30fps(rate, real_time_read):
    """A 10 fps clip shows three times the motion per frame of a 30 fps one: the network is taught
    to read it 3x fast, and detect adds log2(10 / 30) back (``rate_offset_log2``). A 60 fps phone
    clip is read 2x slow and detect adds 1: before, it was anchored at 0 and detect read it 2x fast."""
    frames = [frame[..., 0] for frame in pan_frames(4, 40, 1.0)]
    variants = {v.key: v for v in clip_variants_from(frames, rate, slowmo_source_frames=10)}
    assert variants["real_1"].speed == real_time_read
    assert variants["real_4"].speed == 4 * real_time_read
    assert variants["dup_2"].speed == real_time_read / 2 and variants["dup_2"].synthetic
    assert variants["interp_4"].speed == real_time_read / 4


def test_cache_from_an_older_format_is_rebuilt(tmp_path):
    clip = tmp_path / "footage" / "a.mp4"
    clip.parent.mkdir()
    write_video(pan_frames(5, MIN_USER_CLIP_FRAMES + 2, 2.0), clip, Fraction(10), crf=23)
    cache = tmp_path / "cache"
    cache.mkdir()
    stale = cache / f"{user_cache_name(clip)}.npz"
    np.savez_compressed(stale, meta=np.array('{"real_1": {"speed": "1", "synthetic": false}}'))
    assert not cache_is_current(stale)
    (written,) = build_user_cache([clip], cache, slowmo_source_frames=10)
    assert written == stale and cache_is_current(stale)
    with np.load(stale) as data:
        assert int(data["format"]) == CACHE_FORMAT
    assert {v.key: v.speed for v in load_variants(stale)}["real_1"] == Fraction(3)


def test_split_holds_out_whole_clips_and_keeps_renders_for_training():
    sources = [Source(f"clip-{n}", {}) for n in "abcde"] + [Source("render-5000", {})]
    training, validation, note = split_sources(sources, 0.2, 0)
    assert len(validation) == 1 and "held out" in note
    assert not {s.name for s in training} & {s.name for s in validation}
    assert "render-5000" in {s.name for s in training}
    few_training, few_validation, few_note = split_sources(sources[:2], 0.2, 0)
    assert len(few_training) == 2 and "too few" in few_note


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory) -> Path:
    """One work folder for the module: the clips are cached once, later runs resume."""
    return tmp_path_factory.mktemp("speed-train")


@pytest.fixture(scope="module")
def trained(footage, work_dir, tmp_path_factory):
    """Three steps of fine-tuning on the footage, checkpointed in ``work_dir``."""
    output = tmp_path_factory.mktemp("models") / "my-speed.onnx"
    config = FineTuneConfig(
        data=(footage,),
        output=output,
        steps=3,
        device="cpu",
        renders=0,
        work_dir=work_dir,
        slowmo_source_frames=16,
    )
    return fine_tune(config)


def test_fine_tune_exports_a_model_the_engine_loads(footage, work_dir, trained):
    result, output = trained, trained.model_path
    assert output.name == "my-speed.onnx" and output.is_file()
    manifest = read_manifest(manifest_path_for(output))
    assert manifest.name == "my-speed" and manifest.sha256 == sha256_file(output)
    assert result.steps == 3 and len(result.validation_sources) == 1
    assert set(result.metrics_after) >= {"realtime_bias", "log2_error", "synthetic_accuracy"}
    assert result.exported_step in (0, 3)
    # best-keeping: never worse than the start (up to float rounding between two evaluations)
    assert result.metrics_after["log2_error"] <= result.metrics_before["log2_error"] + 1e-6
    model = SpeedModel(output)
    # trained: recipe version 2 (offset at every rate); the unchanged shipped start: version 1
    assert model.reads_at_play_rate == (result.exported_step > 0)
    assert result.recipe_version == (2 if result.exported_step > 0 else 1)
    detected = detect_speed(find_clips([footage])[0], model=model)
    assert detected.learned_log2_speed is not None

    cached = list((work_dir / "cache").glob("*.npz"))
    assert len(cached) == 3 and {v.key for v in load_variants(cached[0])} >= {"real_1", "real_8", "dup_2"}


def test_cli_resumes_the_checkpoint_and_detect_uses_the_model(footage, work_dir, trained, tmp_path, capsys):
    """Resumes the module's fine-tune (step 3) up to step 7 in the same work folder."""
    output = tmp_path / "cli-speed.onnx"
    argv = ["train", "speed", "--data", str(footage), "--steps", "7", "--renders", "0", "-o", str(output)]
    assert main([*argv, "--work-dir", str(work_dir), "--resume", "--json"]) == 0
    reported = json.loads(capsys.readouterr().out, parse_constant=_refuse)  # strict JSON: no NaN
    assert reported["model_path"] == str(output) and reported["steps"] == 7
    assert reported["resumed_from_step"] == 3 and reported["exported_step"] in (0, 3, 7)
    # the resumed run went on along the whole run's schedule: its last step (6 of 7) had the rate an
    # uninterrupted run has there, not one restarted at the peak after step 3
    state = torch.load(work_dir / "checkpoint.pt", weights_only=False, map_location="cpu")
    expected = DEFAULT_LEARNING_RATE * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * 6 / 7)))
    assert state["optimiser"]["param_groups"][0]["lr"] == pytest.approx(expected, rel=1e-6)
    clip = find_clips([footage])[0]
    assert main(["detect", "--model", str(output), "--json", str(clip)]) == 0
    assert json.loads(capsys.readouterr().out)["scores"]["learned_log2_speed"] is not None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--resume", "--from-scratch"], "conflict"),
        (["--resume", "--work-dir", "{tmp}/empty"], "no checkpoint"),
        (["--steps", "0"], "at least 1 step"),
        (["--device", "cpu", "-o", "{tmp}/m.pt"], "MODEL.onnx"),
        (["-o", "{tmp}/folder.onnx"], "is a folder; name the model file"),
    ],
)
def test_cli_refuses_bad_options_before_any_work(footage, tmp_path, capsys, extra, message):
    (tmp_path / "folder.onnx").mkdir()
    argv = ["train", "speed", "--data", str(footage), "-o", str(tmp_path / "m.onnx"), "--device", "cpu"]
    status = main([*argv, *(item.format(tmp=tmp_path) for item in extra)])
    assert status == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "empty").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.onnx"]


def _refuse(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def test_detect_names_a_missing_model(footage, tmp_path, capsys):
    status = main(["detect", "--model", str(tmp_path / "absent.onnx"), str(find_clips([footage])[0])])
    assert status == 2 and "absent.onnx" in capsys.readouterr().err
