"""``chronoscope mine`` and ``train tsr --dataset`` after the second s19 audit: a renamed source's
clips are described by their latest manifest row (so ``--exclude-source`` matches the new name),
options that refuse a run are checked before the dataset folder is made, and clips above
1000 fps keep their rate.

Every video is a procedural 240 fps scene written at its capture rate (a high-rate stream: its one
segment is accepted with an exactly known rate), so a run over a few of them takes seconds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.mining import MineOptions, mine
from engine.scenes import random_scene, render_frames, write_video
from engine.training.tsr.data import discover_dataset, exclude_clips

GATE = 0.9


def _frames(seed: int, count: int = 96, size: tuple[int, int] = (160, 120)):
    spec = random_scene(seed, width=size[0], height=size[1], capture_fps=240, duration_frames=count)
    return list(render_frames(spec))


@pytest.fixture(scope="module")
def renders(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("renders")
    made = {}
    for seed in (12, 13):
        made[f"r{seed}"] = folder / f"r{seed}.mp4"
        write_video(_frames(seed), made[f"r{seed}"], 240)
    return made


def _mine(sources, out: Path, **options):
    options.setdefault("min_confidence", GATE)
    return mine(MineOptions([str(source) for source in sources], out, progress=False, **options))


# -- 1. a renamed source: its clips follow the new name into training --------------------------------


def test_a_renamed_source_is_excluded_by_its_new_name_and_not_by_its_old(renders, tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    shutil.copy(renders["r12"], library / "a.mp4")
    shutil.copy(renders["r13"], library / "b.mp4")
    out = tmp_path / "ds"
    assert _mine([library], out, extract=True).clips_written == 2
    (library / "b.mp4").rename(library / "b-renamed.mp4")
    summary = _mine([library], out, extract=True)
    assert (summary.files_moved, summary.clips_written) == (1, 0), summary

    clips = discover_dataset(out)
    assert len(clips) == 2
    assert sorted(Path(clip.origin).name for clip in clips) == ["a.mp4", "b-renamed.mp4"]
    kept, excluded = exclude_clips(clips, ["*b-renamed*"])
    assert [Path(clip.origin).name for clip in excluded] == ["b-renamed.mp4"]
    assert [Path(clip.origin).name for clip in kept] == ["a.mp4"]
    kept, excluded = exclude_clips(clips, [str(library / "b.mp4")])
    assert excluded == [], "the dead old path still names the clip"


def test_a_clip_whose_segment_no_longer_names_it_stays_out_of_training(tmp_path):
    folder = tmp_path / "DATASET"
    (folder / "clips").mkdir(parents=True)
    for name in ("old.mkv", "new.mkv", "plain.mkv"):
        write_video(_frames(12, count=6, size=(64, 48)), folder / "clips" / name, 240)
    segment = {"row": "clip", "source": "/lib/a.mp4", "content_hash": "h1", "segment_index": 0}
    rows = [
        {**segment, "clip": "clips/old.mkv", "conform_rate": "240"},
        # retired, though its file could not be moved away: no longer the dataset's
        {**segment, "clip": None, "retired": "retired/old.mkv", "conform_rate": "240"},
        {**segment, "content_hash": "h2", "clip": "clips/new.mkv", "conform_rate": "240"},
        {"row": "clip", "clip": "clips/plain.mkv", "source": "/lib/p.mp4", "conform_rate": "240"},
        {"row": "clip", "clip": "clips/plain.mkv", "source": "/lib/p2.mp4", "conform_rate": "480"},
    ]
    (folder / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    clips = {clip.name: clip for clip in discover_dataset(folder)}
    assert sorted(clips) == ["clips/new.mkv", "clips/plain.mkv"]
    assert clips["clips/plain.mkv"].origin == "/lib/p2.mp4" and clips["clips/plain.mkv"].capture_fps == 480
