"""TSR training data: dataset discovery, the split by source, and the t of every sample (no torch)."""

from __future__ import annotations

import json
import logging
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.errors import TrainingDataError
from engine.scenes import write_video
from engine.training.tsr import data


def _ramp_clip(frames: int, name: str = "ramp", size: int = 64) -> data.LoadedClip:
    """Frame i is a flat image of value 3 * i: any truth is exactly img0 + t * (img1 - img0)."""
    stack = np.stack([np.full((size, size + 16, 3), 3 * index, np.uint8) for index in range(frames)])
    return data.LoadedClip(data.ClipSource(name, name, Path(name), "render"), stack)


def _write_clip(path: Path, frames: int = 12, width: int = 96, height: int = 64, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (height, width + frames * 2, 3), dtype=np.uint8)
    write_video(
        [np.ascontiguousarray(base[:, 2 * i : 2 * i + width]) for i in range(frames)], path, 240, crf=0
    )
    return path


def test_batch_t_matches_the_true_frame_and_the_gap():
    clips = [_ramp_clip(20)]
    rng = np.random.default_rng(1)
    batch, samples = data.make_batch(clips, rng, batch_size=64, crop_px=64, gaps_frames=(2, 3, 8))
    allowed = {Fraction(j, k) for k in (2, 3, 8) for j in range(1, k)}
    reversed_count = 0
    for index, sample in enumerate(samples):
        assert sample.t in allowed
        assert 0 < sample.offset_frames < sample.gap_frames
        assert sample.first + sample.gap_frames < 20
        t = float(batch.t[index, 0, 0, 0])
        v0, v1, truth = (float(array[index].mean()) * 255 for array in (batch.img0, batch.img1, batch.truth))
        assert truth == pytest.approx(v0 + t * (v1 - v0), abs=1e-3)
        if v0 > v1:
            reversed_count += 1
            assert t == pytest.approx(1 - float(sample.t))
        else:
            assert t == pytest.approx(float(sample.t))
    assert 0 < reversed_count < len(samples)
    assert batch.img0.shape == (64, 3, 64, 64) and batch.img0.dtype == np.float32


def test_midpoint_only_samples_even_gaps_at_one_half():
    rng = np.random.default_rng(2)
    batch, samples = data.make_batch(
        [_ramp_clip(12)], rng, batch_size=32, crop_px=64, gaps_frames=(2, 3, 4, 6, 8), midpoint_only=True
    )
    assert {sample.gap_frames for sample in samples} <= {2, 4, 6, 8}
    assert all(sample.t == Fraction(1, 2) for sample in samples)
    assert np.all(batch.t == 0.5)


def test_too_short_clips_are_refused_with_the_gaps_named():
    with pytest.raises(TrainingDataError, match=r"gaps \[4\]"):
        data.draw_sample([_ramp_clip(4)], np.random.default_rng(0), (4,), midpoint_only=False)


def _manifest_dataset(root: Path) -> Path:
    (root / "clips").mkdir(parents=True)
    rows = []
    for index, source in enumerate(["a", "a", "b", "c", "d", "e"]):
        clip = _write_clip(root / "clips" / f"seg{index}.mp4", seed=index)
        rows.append({"row": "segment", "source": str(clip), "content_hash": f"hash-{source}"})
        rows.append(
            {
                "row": "clip",
                "source": f"/library/{source}.mov",
                "content_hash": f"hash-{source}",
                "clip": f"clips/{clip.name}",
                "duplicate_of": None,
                "conform_rate": "240",
            }
        )
    rows.append({"row": "clip", "clip": "clips/missing.mp4", "content_hash": "hash-z"})
    rows.append({"row": "clip", "clip": None, "duplicate_of": "clips/seg0.mp4", "content_hash": "hash-y"})
    rows.append({"source_path": "/elsewhere/rejected.mov", "class": "realtime"})
    (root / "manifest.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    return root


def test_manifest_rows_name_clips_and_the_split_keeps_sources_whole(tmp_path):
    dataset = _manifest_dataset(tmp_path / "DATASET")
    clips = data.discover_dataset(dataset)
    assert [clip.name for clip in clips] == [f"clips/seg{i}.mp4" for i in range(6)]
    assert clips[0].capture_fps == Fraction(240)
    split = data.split_by_source(clips, 0.5, seed=3)
    train_sources = {clip.source for clip in split.train}
    held_sources = {clip.source for clip in split.held_out}
    assert train_sources and held_sources and not train_sources & held_sources
    assert train_sources | held_sources == {f"hash-{s}" for s in "abcde"}
    same = data.split_by_source(list(reversed(clips)), 0.5, seed=3)
    assert {clip.source for clip in same.held_out} == held_sources
    other = data.split_by_source(clips[:1], 0.9, seed=3)
    assert len(other.train) == 1 and not other.held_out


def test_without_a_usable_manifest_every_video_and_sequence_is_a_clip(tmp_path, caplog):
    root = tmp_path / "library"
    _write_clip(root / "a" / "one.mov", seed=1)
    _write_clip(root / "two.mp4", seed=2)
    sequence = root / "seq"
    sequence.mkdir()
    for index in range(4):
        image = np.full((40, 48), 1000 * (index + 1), np.uint16)
        cv2.imwrite(str(sequence / f"{index:03d}.png"), image)
    (root / "manifest.jsonl").write_text('{"clip": "gone.mp4"}\nnot json\n', encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        clips = data.discover_dataset(root)
    assert "names no existing clip" in caplog.text
    assert [(clip.name, clip.kind) for clip in clips] == [
        ("a/one.mov", "video"),
        ("seq", "images"),
        ("two.mp4", "video"),
    ]
    video = data.load_clip(clips[0], max_frames=5, max_side_px=48)
    assert video.frames.shape == (5, 32, 48, 3)
    images = data.load_clip(clips[1], max_frames=10, max_side_px=320)
    assert images.frames.shape == (4, 40, 48, 3)
    assert images.frames[-1].max() == 255 and images.frames[0].max() == round(255 / 4)


def test_empty_or_missing_dataset_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingDataError, match="holds no clips"):
        data.discover_dataset(tmp_path / "empty")
    with pytest.raises(TrainingDataError, match="is not a folder"):
        data.discover_dataset(tmp_path / "nowhere")


def test_renders_are_cached_by_seed(tmp_path):
    first = data.render_clips([1001], tmp_path, width=64, height=64, frames=5)
    cached = list(tmp_path.glob("*.npz"))
    assert len(cached) == 1
    again = data.render_clips([1001], tmp_path, width=64, height=64, frames=5)
    np.testing.assert_array_equal(first[0].frames, again[0].frames)
    assert first[0].frames.shape == (5, 64, 64, 3)


def test_the_clips_folder_of_a_mined_dataset_is_read_through_the_manifest_above_it(tmp_path):
    dataset = _manifest_dataset(tmp_path / "DATASET")
    (dataset / "clips" / "stray.mp4").write_bytes((dataset / "clips" / "seg0.mp4").read_bytes())
    clips = data.discover_dataset(dataset / "clips")
    assert [clip.name for clip in clips] == [f"clips/seg{i}.mp4" for i in range(6)]
    assert {clip.source for clip in clips} == {f"hash-{s}" for s in "abcde"}
    assert all(clip.capture_fps == Fraction(240) for clip in clips)
    assert clips[0].origin == "/library/a.mov"


def test_exclusions_match_the_source_path_the_name_or_the_file(tmp_path):
    clips = data.discover_dataset(_manifest_dataset(tmp_path / "DATASET"))
    kept, excluded = data.exclude_clips(clips, ["/library/a.*"])
    assert [clip.name for clip in excluded] == ["clips/seg0.mp4", "clips/seg1.mp4"]
    assert len(kept) == 4
    kept, excluded = data.exclude_clips(clips, ["*/seg5.mp4", "*nothing*"])
    assert [clip.name for clip in excluded] == ["clips/seg5.mp4"]
    assert data.exclude_clips(clips, []) == (clips, [])


@pytest.fixture(scope="module")
def mined_dataset(tmp_path_factory):
    """``chronoscope mine --extract`` on two renders (120 and 240 fps), each played at 30 fps and at
    its capture rate: real mining, real extraction, real near-duplicate removal."""
    from engine.cli import main
    from engine.mining.mixed import build_mixed_folder

    library = tmp_path_factory.mktemp("library")
    truth = build_mixed_folder(Path("unused"), library, real_clips=(), render_seeds=(12, 13), corrupt=False)
    out = tmp_path_factory.mktemp("mined") / "DATASET"
    assert main(["mine", str(library), "--out", str(out), "--extract", "--min-confidence", "0.9"]) == 0
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    return library, {str((library / item.name).resolve()): item for item in truth}, out, rows


def test_a_mined_dataset_trains_on_its_clips_at_their_capture_rate_split_by_source(mined_dataset):
    library, truth, out, rows = mined_dataset
    written = {row["clip"]: row for row in rows if row["row"] == "clip" and row.get("clip")}
    assert written, "mining accepted nothing: the loop would have nothing to train on"
    for dataset in (out, out / "clips"):
        clips = data.discover_dataset(dataset)
        assert sorted(clip.name for clip in clips) == sorted(written)
        for clip in clips:
            row = written[clip.name]
            assert clip.source == row["content_hash"] and clip.origin == row["source"]
            assert clip.capture_fps == Fraction(row["conform_rate"]).limit_denominator(1001)
            true_fps = truth[row["source"]].capture_fps
            assert float(clip.capture_fps) == pytest.approx(true_fps, rel=0.25)
    seeds = [Path(clip.origin).name.split("-")[0] for clip in clips]
    assert len(seeds) == len(set(seeds)), f"a render and its twin were both kept: {seeds}"
    loaded = data.load_clips(clips, max_frames=40, max_side_px=160, min_side_px=64)
    assert [item.clip.name for item in loaded] == [clip.name for clip in clips]
    for item in loaded:
        assert item.frames.shape[0] == min(40, written[item.clip.name]["frames"])
        assert item.frames.shape[1:] == (120, 160, 3)
    batch, samples = data.make_batch(loaded, np.random.default_rng(0), batch_size=8, crop_px=64)
    assert batch.img0.shape == (8, 3, 64, 64) and len(samples) == 8
    kept, excluded = data.exclude_clips(clips, [f"{library.resolve()}/genuine/render12-*"])
    assert excluded and all("render12-" in clip.origin for clip in excluded)
    assert all("render12-" not in clip.origin for clip in kept)
