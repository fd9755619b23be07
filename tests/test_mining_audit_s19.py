"""``chronoscope mine`` after the s19 audit: high-speed image sequences at their true rate, an
unusable --sequence-rate refused up front, globs over linked folders, and gate options checked
before the dataset folder is made."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import pytest

from engine.cli import main
from engine.errors import UnsupportedOptionError
from engine.mining import MineOptions, mine, read_manifest, sources
from engine.mining.manifest import complete_rows
from engine.mining.sources import content_hash, expand_sources
from engine.mining.stages import MineSettings, mine_file
from engine.mining.storage import CachePolicy
from engine.scenes import random_scene, render_frames, write_video

GATE = 0.9


def _frames(seed: int, count: int):
    spec = random_scene(seed, width=96, height=64, capture_fps=240, duration_frames=count)
    return list(render_frames(spec))


def _sequence(folder: Path, count: int = 24) -> Path:
    folder.mkdir(parents=True)
    for index, frame in enumerate(_frames(12, count)):
        cv2.imwrite(str(folder / f"A001.{1001 + index:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder / "A001.####.png"


def _mine(sources, out: Path, **options):
    options.setdefault("min_confidence", GATE)
    return mine(MineOptions([str(source) for source in sources], out, progress=False, **options))


# -- 1. high-speed sequences, and a rate that cannot be used --------------------------------------


def test_a_high_speed_sequence_is_mined_at_its_true_rate(tmp_path):
    pattern = _sequence(tmp_path / "library" / "plates")
    summary = _mine([tmp_path / "library"], tmp_path / "ds", sequence_rate="30000")
    assert summary.ok and summary.files_mined == 1, summary.failures
    rows = complete_rows(read_manifest(tmp_path / "ds" / "manifest.jsonl"))
    assert rows and all(row["source"] == str(pattern) for row in rows)
    assert all(row.get("status") not in ("undecodable", "error") for row in rows), rows
    assert {row["settings"]["sequence_rate"] for row in rows} == {"30000"}
    assert {row["playback_rate"] for row in rows if row["row"] == "segment"} == {"30000"}


def test_an_unusable_sequence_rate_is_refused_with_exit_2_before_anything_is_written(tmp_path, capsys):
    _sequence(tmp_path / "library" / "plates", count=4)
    out = tmp_path / "ds"
    library = str(tmp_path / "library")
    code = main(["mine", library, "--out", str(out), "--extract", "--sequence-rate", "2000000"])
    assert code == 2
    assert "--sequence-rate 2000000" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(UnsupportedOptionError, match="out of range"):
        _mine([tmp_path / "library"], out, sequence_rate="0.001")
    assert not out.exists()


def test_a_rate_a_task_cannot_read_at_is_no_fact_about_the_file(tmp_path):
    pattern = str(_sequence(tmp_path / "plates", count=4))
    settings = MineSettings(min_confidence=GATE, cache=CachePolicy(sequence_rate="2000000"))
    (row,) = mine_file(pattern, content_hash(pattern), settings)
    assert row["status"] == "error" and "out of range" in row["reason"]  # transient: tried again


def test_a_sequence_with_a_hole_is_corrupt_and_mined_once_the_frame_is_back(tmp_path):
    pattern = _sequence(tmp_path / "library" / "plates")
    missing = pattern.parent / "A001.1010.png"
    kept = tmp_path / "kept.png"
    os.replace(missing, kept)
    _mine([tmp_path / "library"], tmp_path / "ds", sequence_rate="240")
    (row,) = read_manifest(tmp_path / "ds" / "manifest.jsonl")
    assert row["status"] == "corrupt" and "1010" in row["reason"]
    os.replace(kept, missing)
    again = _mine([tmp_path / "library"], tmp_path / "ds")
    assert again.files_mined == 1 and again.ok, again.failures
    rows = complete_rows(read_manifest(tmp_path / "ds" / "manifest.jsonl"))
    assert rows and all(row["row"] == "segment" for row in rows)


# -- 2. a ** glob over linked folders --------------------------------------------------------------


def test_a_glob_over_looping_links_ends_and_names_each_file_once(tmp_path):
    folder = tmp_path / "gl" / "a"
    folder.mkdir(parents=True)
    write_video(_frames(12, 8), folder / "x.mp4", 240)
    (folder / "up").symlink_to("..")
    (folder / "self").symlink_to(".")
    assert expand_sources([str(tmp_path / "gl" / "**" / "*.mp4")]) == [str(folder / "x.mp4")]


def test_a_glob_without_links_matches_what_glob_matches(tmp_path, monkeypatch):
    import glob

    for name in ("a/b/c/x.mp4", "a/y.mp4", "a/.hidden/z.mp4", "a/b/w.mov", "v.mp4", "a/b/c/n.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    absolute = str(tmp_path / "**" / "*.mp4")
    for pattern in ("**/*.mp4", "a/**/*.mp4", "a/*/c/*", "a/**", "*/b/**/*.m*", absolute):
        assert sources._glob_each_folder_once(pattern) == set(glob.glob(pattern, recursive=True)), pattern
