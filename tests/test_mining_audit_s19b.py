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
import subprocess
from pathlib import Path

import cv2
import pytest

from engine.cli import main
from engine.errors import UnsupportedOptionError
from engine.media import VideoWriter, probe_video
from engine.mining import MineOptions, mine, pipeline, read_manifest
from engine.scenes import random_scene, render_frames, write_video
from engine.training.tsr.data import discover_dataset, exclude_clips, load_clip

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


# -- 2. a gate that cannot be used leaves no folder ----------------------------------------------------


@pytest.mark.parametrize("evaluation", ["missing", "{}", "[1, 2]", "not json"])
def test_an_unusable_evaluation_is_refused_before_the_dataset_folder_is_made(
    renders, tmp_path, capsys, evaluation
):
    library = tmp_path / "library"
    library.mkdir()
    shutil.copy(renders["r12"], library / "a.mp4")
    path = tmp_path / "eval.json"
    if evaluation != "missing":
        path.write_text(evaluation, encoding="utf-8")
    out = tmp_path / "dse"
    code = main(["mine", str(library), "--out", str(out), "--extract", "--evaluation", str(path)])
    assert code == 2
    assert str(path) in capsys.readouterr().err
    assert not out.exists()


def test_a_codec_or_setting_refused_leaves_no_folder_and_an_existing_dataset_is_checked_too(
    renders, tmp_path, monkeypatch
):
    library = tmp_path / "library"
    library.mkdir()
    shutil.copy(renders["r12"], library / "a.mp4")
    out = tmp_path / "ds"
    monkeypatch.setattr(pipeline, "check_codec", _refuse_codec)
    with pytest.raises(UnsupportedOptionError, match="not available here"):
        _mine([library], out, extract=True)
    assert not out.exists()
    monkeypatch.undo()
    _mine([library], out, extract=True)
    with pytest.raises(UnsupportedOptionError, match="--density"):
        _mine([library], out, density=0.5)
    before = (out / "manifest.jsonl").read_bytes()
    with pytest.raises(UnsupportedOptionError, match="confidence gate"):
        _mine([library], out, min_confidence=0.7)
    assert (out / "manifest.jsonl").read_bytes() == before


def _refuse_codec(codec: str) -> str:
    raise UnsupportedOptionError(f"codec {codec!r} is not available here")


# -- 3. clips above 1000 fps keep their rate -------------------------------------------------------------


def _sequence(folder: Path, count: int = 24) -> Path:
    folder.mkdir(parents=True)
    for index, frame in enumerate(_frames(12, count, size=(96, 64))):
        cv2.imwrite(str(folder / f"A001.{1001 + index:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder / "A001.####.png"


def test_ffv1_clips_above_1000_fps_are_refused_before_anything_is_written(tmp_path, capsys):
    _sequence(tmp_path / "library" / "plates")
    out = tmp_path / "ds"
    code = main(
        ["mine", str(tmp_path / "library"), "--out", str(out), "--extract", "--sequence-rate", "30000"]
    )
    assert code == 2
    error = capsys.readouterr().err
    assert "--sequence-rate 30000" in error and "milliseconds" in error and "--codec" in error, error
    assert "png" in error and "prores" in error
    assert not out.exists()
    with pytest.raises(UnsupportedOptionError, match="milliseconds"):
        VideoWriter(tmp_path / "fast.mkv", rate=30000, codec="ffv1")
    assert not list(tmp_path.glob("*fast*"))


@pytest.mark.parametrize("codec", ["png", "prores"])
def test_a_30000_fps_sequence_is_extracted_at_30000_fps_and_trained_on_at_that_rate(tmp_path, codec):
    _sequence(tmp_path / "library" / "plates")
    out = tmp_path / "ds"
    # the frames of a 240 fps render read as faster than a 30000 fps capture: a gate of 0 takes them
    summary = _mine(
        [tmp_path / "library"], out, extract=True, sequence_rate="30000", codec=codec, min_confidence=0.0
    )
    assert summary.ok and summary.clips_written == 1, (summary.failures, summary)
    (clip,) = discover_dataset(out)
    assert clip.capture_fps == 30000
    loaded = load_clip(clip, max_frames=100, max_side_px=256)
    assert loaded.frame_count == 24
    if codec == "prores":
        info = probe_video(clip.path)
        assert (info.frame_rate, info.frame_count) == (30000, 24)
        probed = subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "v",
             "-show_entries", "stream=r_frame_rate,nb_frames", "-of", "json", str(clip.path)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        (stream,) = json.loads(probed.stdout)["streams"]
        assert stream == {"r_frame_rate": "30000/1", "nb_frames": "24"}


def test_a_video_captured_above_1000_fps_is_not_extracted_as_ffv1(tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    write_video(_frames(12), library / "fast.mov", 2000)
    out = tmp_path / "ds"
    summary = _mine([library], out, extract=True, min_confidence=0.0)
    assert summary.accepted == 1, summary
    assert summary.clips_written == 0 and not summary.ok
    (failure,) = summary.failures
    assert "milliseconds" in failure and "--codec" in failure and "png" in failure
    assert not list((out / "clips").iterdir())
    assert not [row for row in read_manifest(out / "manifest.jsonl") if row["row"] == "clip"]
