"""Scale-out: a local process pool and a local Ray cluster give the same manifest as in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.mining import MineOptions, mine, read_manifest
from engine.mining.manifest import complete_rows
from engine.mining.mixed import build_mixed_folder
from engine.mining.runners import ray_available

GATE = 0.9


def _confidences(rows: list[dict]) -> dict[tuple, float]:
    return {
        (Path(row["source"]).name, row["segment_index"]): row["confidence"]
        for row in complete_rows(rows)
        if row["row"] == "segment"
    }


def _assert_same(rows: list[dict], reference: list[dict]) -> None:
    assert _comparable(rows) == _comparable(reference)
    ours, theirs = _confidences(rows), _confidences(reference)
    assert ours.keys() == theirs.keys()
    for key, value in ours.items():
        assert value == pytest.approx(theirs[key], abs=0.02), key


def _comparable(rows: list[dict]) -> set[tuple]:
    """What must agree between runners (run groups and timings differ by nature)."""
    return {
        (
            Path(row["source"]).name,
            row["row"],
            row.get("segment_index"),
            row.get("start_frame"),
            row.get("end_frame"),
            row.get("class"),
            row.get("accepted"),
            row.get("status"),
            row.get("dhash"),
        )
        for row in complete_rows(rows)
    }


@pytest.fixture(scope="module")
def library_and_reference(tmp_path_factory, shared_clips):
    folder = tmp_path_factory.mktemp("library")
    build_mixed_folder(shared_clips, folder, real_clips=("sam2-juggle.mp4",), render_seeds=(11,))
    out = tmp_path_factory.mktemp("in-process")
    mine(MineOptions([str(folder)], out, min_confidence=GATE, progress=False))
    return folder, read_manifest(out / "manifest.jsonl")


@pytest.fixture(scope="module")
def ray_cluster():
    if not ray_available():
        pytest.skip("ray is not installed (pip install 'chronoscope[mining]')")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_two_pool_workers_give_the_in_process_manifest(library_and_reference, tmp_path):
    folder, reference = library_and_reference
    summary = mine(MineOptions([str(folder)], tmp_path, workers=2, min_confidence=GATE, progress=False))
    assert summary.runner.startswith("process-pool (2")
    _assert_same(read_manifest(tmp_path / "manifest.jsonl"), reference)


def test_ray_with_two_workers_gives_the_in_process_manifest(library_and_reference, ray_cluster, tmp_path):
    folder, reference = library_and_reference
    summary = mine(
        MineOptions(
            [str(folder)], tmp_path, ray_address="local", extract=True, min_confidence=GATE, progress=False
        )
    )
    assert summary.runner == "ray (2 workers)"
    rows = read_manifest(tmp_path / "manifest.jsonl")
    _assert_same(rows, reference)
    assert summary.clips_written >= 1
    assert all((tmp_path / row["clip"]).is_file() for row in rows if row["row"] == "clip" and row["clip"])
