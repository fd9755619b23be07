"""bench/speed_gpu.py, cross-validating speed-training recipes: folds by source, a real training job
on a tiny cache read out of fold, the report's medians, seed averaging and fold-judged correction,
and a pack that refuses what it should."""

from __future__ import annotations

import argparse
import json
import math
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "bench"))

import speed_gpu  # noqa: E402

from engine.errors import TrainingDataError, UnsupportedOptionError  # noqa: E402
from engine.speed.windows import READ_PX  # noqa: E402
from engine.training.speed.data import Variant, save_variants, speed_at_play_rate  # noqa: E402


def test_folds_split_clips_by_sorted_name_and_renders_by_seed_and_every_job_is_planned():
    folds = speed_gpu.assign_folds(["b.mp4", "a.mp4", "c.mp4", "d.mp4"])
    assert [folds[f"clip-{name}"] for name in "abcd"] == [0, 1, 2, 0]
    assert folds["render-4"] == 1 and folds["render-16"] == 1
    jobs = speed_gpu.all_jobs(["w8", "diff"])
    assert len(jobs) == 2 * speed_gpu.FOLDS * len(speed_gpu.SEEDS) + 2 * len(speed_gpu.SEEDS)
    assert len({job.name for job in jobs}) == len(jobs)
    assert len(speed_gpu.all_jobs(["w8"], finals=False)) == speed_gpu.FOLDS * len(speed_gpu.SEEDS)


def _tiny_cache(folder: Path) -> dict[str, int]:
    """Three drifting-texture clips at 30 fps as the cache holds them, one per fold."""
    folder.mkdir()
    folds = {}
    for index in range(3):
        rng = np.random.default_rng(index)
        texture = rng.integers(0, 255, size=(READ_PX, 3 * READ_PX), dtype=np.uint8)
        video = np.stack([np.roll(texture, -(index + 1) * i, axis=1)[:, :READ_PX] for i in range(96)])
        variants = [
            Variant(f"real_{k}", video[::k], speed_at_play_rate(Fraction(k), Fraction(30)), False)
            for k in (1, 2, 4, 8)
        ]
        save_variants(folder / f"clip-c{index}.npz", variants)
        folds[f"clip-c{index}"] = index
    return folds


def test_a_job_trains_on_the_other_folds_and_reads_only_its_own(tmp_path):
    folds = _tiny_cache(tmp_path / "cache")
    job = speed_gpu.Job("diff", 0, 1)
    result = speed_gpu._train_job(
        ({"recipe": job.recipe, "seed": job.seed, "fold": job.fold}, str(tmp_path / "cache"), str(tmp_path),
         0.02, "cpu", folds)
    )  # fmt: skip
    assert result["name"] == "diff-s0-f1" and result["steps"] >= 1
    assert result["training_sources"] == ["clip-c0", "clip-c2"]
    assert {read[0] for read in result["reads"]} == {"clip-c1"}
    assert result["recipe_settings"]["frames_input"] is False
    # windows hop half a window, as detect reads: real_1 has 96 frames, (96 - 8) / 4 + 1 windows
    assert sum(1 for read in result["reads"] if read[1] == "real_1") == 23


def _job(recipe: str, seed: int, fold: int, reads: list[list]) -> dict:
    return {"recipe": recipe, "seed": seed, "fold": fold, "name": f"{recipe}-s{seed}-f{fold}", "steps": 10,
            "reads": reads}  # fmt: skip


def _reads(source: str, distort, noise: float = 0.0, rng=None) -> list[list]:
    """Windows of a clip at every stride, read as ``distort(target)`` (plus noise)."""
    rows = []
    for k in (1, 2, 4, 8):
        target = math.log2(k)
        for start in range(0, 40, 4):
            value = distort(target) + (rng.normal(0, noise) if rng is not None else 0.0)
            rows.append([source, f"real_{k}", start, value, target, -3.0, False])
    return rows


def test_the_report_takes_medians_averages_seeds_and_judges_the_correction_fold_by_fold(tmp_path):
    rng = np.random.default_rng(0)
    jobs = []
    for fold in range(3):
        for seed in (0, 1):
            # every clip reads 2 octaves slow and half as steep: read = -2 + 0.5 * target
            jobs.append(_job("w8", seed, fold, _reads(f"clip-{fold}", lambda t: -2 + 0.5 * t, 0.05, rng)))
            # a second recipe reads right, but cannot read clip-2 every 8th frame (too short)
            rows = [row for row in _reads(f"clip-{fold}", lambda t: t) if fold != 2 or row[1] != "real_8"]
            jobs.append(_job("w16", seed, fold, rows))
    (tmp_path / "run").mkdir()
    results = {"settings": {"minutes": 1}, "machine": {}, "cache_sha256": {}, "jobs": jobs}
    (tmp_path / "run" / speed_gpu.RESULTS_NAME).write_text(json.dumps(results))
    output = tmp_path / "report.json"
    args = argparse.Namespace(run=tmp_path / "run", output=output, local_cache=None, export=None,
                              models_dir=tmp_path / "models")  # fmt: skip
    assert speed_gpu.report(args) == 0
    summary = json.loads(output.read_text())
    assert summary["variants_compared"] == 11  # clip-2's real_8 is left out for both recipes
    slow = summary["recipes"]["w8"]
    assert slow["seeds_averaged"]["originals_bias_log2"] == pytest.approx(-2.0, abs=0.05)
    assert slow["seeds_averaged"]["slope_real"] == pytest.approx(0.5, abs=0.05)
    assert slow["seeds_averaged"]["faster_within_half_octave"] == 0.0
    judged = slow["correction_judged_by_fold"]
    assert judged["figures"]["real_abs_log2"] < 0.1
    assert judged["fits_by_fold"]["0"]["offset"] == pytest.approx(-2.0, abs=0.1)
    right = summary["recipes"]["w16"]["seeds_averaged"]
    assert right["real_abs_log2"] == pytest.approx(0.0, abs=1e-6)
    assert right["faster_within_half_octave"] == 1.0
    args.export = "nothing-like-this"
    with pytest.raises(UnsupportedOptionError, match="the run has w16, w8"):
        speed_gpu.report(args)


def test_a_pack_never_replaces_a_folder_that_is_not_one_and_refuses_too_few_clips(tmp_path):
    other = tmp_path / "precious"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    args = argparse.Namespace(pack=other, clips=tmp_path / "clips", wheel_dir=tmp_path / "wheels")
    with pytest.raises(UnsupportedOptionError, match="holds no pack"):
        speed_gpu.pack(args)
    assert (other / "keep.txt").read_text() == "mine"
    (tmp_path / "clips").mkdir()
    args.pack = tmp_path / "pack"
    with pytest.raises(TrainingDataError, match="0 training clips"):
        speed_gpu.pack(args)
    # an interrupted pack leaves only its .partial folder, and the next pack may begin again
    assert not args.pack.exists() and (tmp_path / "pack.partial").is_dir()


def test_a_run_never_deletes_a_work_folder_it_did_not_make(tmp_path):
    work = tmp_path / "mine"
    work.mkdir()
    (work / "thesis.txt").write_text("years of work")
    args = argparse.Namespace(out=tmp_path / "out", work=work, pack=tmp_path / "pack", device="cpu",
                              cache_workers=1, recipes=["w8"], no_finals=True, limit_jobs=0,
                              minutes=0.1)  # fmt: skip
    with pytest.raises(UnsupportedOptionError, match="is no work folder of this script"):
        speed_gpu.run(args)
    assert (work / "thesis.txt").read_text() == "years of work"


def test_the_machine_refuses_clips_whose_frames_differ_from_the_packed_ones(tmp_path):
    from engine.scenes import write_video

    pack = tmp_path / "pack"
    (pack / "clips").mkdir(parents=True)
    frames = [np.full((64, 64, 3), 10 * i, np.uint8) for i in range(12)]
    write_video(frames, pack / "clips" / "a.mp4", 30, crf=0)
    index = {"clips": {"a.mp4": {"frames": 12, "rate": "30", "frames_sha256": "0" * 64}}, "folds": {}}
    (pack / speed_gpu.INDEX_NAME).write_text(json.dumps(index))
    with pytest.raises(TrainingDataError, match="a.mp4: the frames read here differ"):
        speed_gpu.build_cache(pack, tmp_path / "cache", workers=1)
