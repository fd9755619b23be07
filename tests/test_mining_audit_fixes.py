"""``chronoscope mine`` after the audit: a dataset keeps its gate and where it came from, a moved
library keeps its clips, long names, files replaced before extraction, Ctrl-C with workers, Ray
that cannot be joined, image sequences, and the messages and summaries.

Every render is a procedural 240 fps scene written at its capture rate (a high-rate stream: its
one segment is accepted with an exactly known rate), so a run over a few of them takes seconds.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pyarrow.parquet as pq
import pytest

from engine.cli import main
from engine.errors import ClusterNotReachableError, MediaWriteError, UnsupportedOptionError
from engine.media import probe_video
from engine.mining import MineOptions, mine, pipeline, progress, read_manifest
from engine.mining.extract import clip_name, extract_segment
from engine.mining.manifest import clip_rows, complete_rows
from engine.mining.runners import PoolRunner, error_text
from engine.mining.sources import content_hash, expand_sources
from engine.scenes import random_scene, render_frames, write_video

GATE = 0.9
SEEDS = (12, 13, 14, 17)
"""Scenes the detector reads as high-rate capture, each one accepted segment."""
REPO = Path(__file__).resolve().parent.parent


def _frames(seed: int, count: int = 96):
    spec = random_scene(seed, width=160, height=120, capture_fps=240, duration_frames=count)
    return list(render_frames(spec))


@pytest.fixture(scope="module")
def renders(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("renders")
    made = {}
    for seed in SEEDS:
        made[f"r{seed}"] = folder / f"r{seed}.mp4"
        write_video(_frames(seed), made[f"r{seed}"], 240)
    return made


def _library(folder: Path, renders: dict[str, Path], **names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, render in names.items():
        shutil.copy(renders[render], folder / f"{name}.mp4")
    return folder


def _mine(sources, out: Path, **options) -> pipeline.MineSummary:
    if not {"evaluation", "max_fpr"} & set(options):
        options.setdefault("min_confidence", GATE)
    return mine(MineOptions([str(source) for source in sources], out, progress=False, **options))


def _clips(out: Path) -> set[str]:
    folder = out / "clips"
    return {path.name for path in folder.iterdir()} if folder.is_dir() else set()


def _listed_clips(out: Path) -> set[str]:
    """The clip files the manifest lists (the latest clip row of each segment)."""
    rows = clip_rows(read_manifest(out / "manifest.jsonl")).values()
    return {Path(row["clip"]).name for row in rows if row.get("clip")}


def _evaluation(path: Path) -> Path:
    """A speed_eval result whose curve gives the gate 0.80 at a false-positive rate of 0.05 and
    0.60 at 0.3."""
    rows = [{"true_class": "slowmo", "class": "slowmo", "confidence": 0.95} for _ in range(10)]
    rows += [{"true_class": "realtime", "class": "slowmo", "confidence": 0.79} for _ in range(2)]
    rows += [{"true_class": "realtime", "class": "slowmo", "confidence": 0.59} for _ in range(2)]
    rows += [{"true_class": "realtime", "class": "realtime", "confidence": 0.9} for _ in range(6)]
    path.write_text(json.dumps({"rows": rows}))
    return path


# -- 4b, 12. a dataset keeps its gate: where it came from, and its --max-fpr ------------------------


def test_a_plain_rerun_keeps_where_the_gate_came_from(renders, tmp_path):
    library = _library(tmp_path / "library", renders, a="r12")
    evaluation = _evaluation(tmp_path / "speed_eval.json")
    out = tmp_path / "ds"
    first = _mine([library], out, evaluation=evaluation)
    assert first.gate.min_confidence == 0.8 and first.gate.source == str(evaluation)
    again = _mine([library], out, evaluation=None)  # no gate option at all
    assert again.gate.source == str(evaluation), "the gate was not given with --min-confidence"
    card = (out / "README.md").read_text()
    assert f"- source: {evaluation}" in card and "given with --min-confidence" not in card
    assert "**0.80**" in card and "0.050" in card
    assert {row["gate_source"] for row in read_manifest(out / "manifest.jsonl")} == {str(evaluation)}


def test_a_different_max_fpr_on_a_dataset_is_refused_like_a_different_gate(renders, tmp_path, capsys):
    library = _library(tmp_path / "library", renders, a="r12")
    evaluation = _evaluation(tmp_path / "speed_eval.json")
    out = tmp_path / "ds"
    _mine([library], out, evaluation=evaluation)
    with pytest.raises(UnsupportedOptionError, match=r"--max-fpr 0\.3"):
        _mine([library], out, max_fpr=0.3)
    status = main(["mine", str(library), "--out", str(out), "--max-fpr", "0.3"])
    assert status == 2 and "--max-fpr 0.3" in capsys.readouterr().err
    same = _mine([library], out, evaluation=evaluation, max_fpr=0.05)
    assert same.files_skipped == 1 and same.gate.min_confidence == 0.8
    with pytest.raises(UnsupportedOptionError, match="give one of them"):
        MineOptions([str(library)], out, min_confidence=0.9, max_fpr=0.05)


# -- 5. a moved or renamed library keeps its rows and clips -----------------------------------------


def test_a_moved_library_keeps_its_clips_and_nothing_is_mined_or_dropped_again(renders, tmp_path):
    library = _library(tmp_path / "library", renders, a="r12", b="r13")
    out = tmp_path / "ds"
    _mine([library], out, extract=True)
    clips_before = _clips(out)
    assert len(clips_before) == 2

    moved = tmp_path / "library-moved"
    library.rename(moved)
    (moved / "b.mp4").rename(moved / "b-renamed.mp4")
    summary = _mine([moved], out, extract=True)
    assert summary.duplicates == 0 and summary.gone_sources == [], "the moved files' clips are orphaned"
    assert _clips(out) == clips_before == _listed_clips(out)
    assert summary.dataset.clips == 2 and summary.dataset.orphaned_clips == 0 and summary.dataset.files == 2
    assert summary.ok, summary.failures
    assert (summary.files_moved, summary.files_mined, summary.clips_written) == (2, 0, 0)
    table = pq.read_table(out / "manifest.parquet").to_pylist()
    assert {Path(row["source"]).name for row in table} == {"a.mp4", "b-renamed.mp4"}
    assert all(row["clip"] and not row["source_missing"] and not row["duplicate_of"] for row in table)
    assert {row["moved_from"] for row in table} == {str(library / "a.mp4"), str(library / "b.mp4")}

    again = _mine([moved], out, extract=True)
    assert (again.files_skipped, again.files_moved, again.files_mined) == (2, 0, 0)


def test_an_orphaned_clip_never_wins_over_a_live_copy_of_the_same_footage(renders, tmp_path):
    library = _library(tmp_path / "library", renders, a="r12")
    out = tmp_path / "ds"
    _mine([library], out, extract=True)
    (old_clip,) = _clips(out)
    shutil.copy(library / "a.mp4", library / "b.mp4")  # a copy (new mtime: another hash), then
    (library / "a.mp4").unlink()  # the original goes
    summary = _mine([library], out, extract=True)
    assert summary.clips_written == 1 and summary.gone_sources == [str(library / "a.mp4")]
    (new_clip,) = _clips(out)
    assert new_clip.startswith("b-") and _listed_clips(out) == {new_clip}
    assert (out / "retired" / old_clip).is_file()
    table = {Path(row["source"]).name: row for row in pq.read_table(out / "manifest.parquet").to_pylist()}
    assert table["b.mp4"]["clip"] == f"clips/{new_clip}" and not table["b.mp4"]["duplicate_of"]
    assert table["a.mp4"]["source_missing"] and table["a.mp4"]["duplicate_of"] == f"clips/{new_clip}"


# -- 6. long source names ---------------------------------------------------------------------------


def test_clip_names_fit_the_file_system_and_keep_what_makes_them_unique():
    stem = "Zeitlupe_東京_ñ_" * 20  # 360 bytes of UTF-8
    names = {clip_name(f"/lib/{stem}{index}.mp4", "fast-sha256:ab", index, 240, "ffv1") for index in range(3)}
    assert len(names) == 3
    for name in names:
        assert len(name.encode("utf-8")) <= 247 and name.endswith("-240fps.mkv")
        assert name.startswith("Zeitlupe_東京_ñ_") and name.encode("utf-8").decode("utf-8") == name
    assert clip_name("/lib/short.mp4", "h", 2, 240, "ffv1").startswith("short-")


def test_a_source_with_a_long_name_is_extracted(renders, tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    long_name = "very_long_camera_export_" + "东" * 70 + ".mp4"  # 238 bytes
    shutil.copy(renders["r12"], library / long_name)
    out = tmp_path / "ds"
    summary = _mine([library], out, extract=True)
    assert summary.ok and summary.clips_written == 1, summary.failures
    (clip,) = _clips(out)
    assert len(clip.encode()) <= 255 and probe_video(out / "clips" / clip).frame_count == 96


def test_error_text_keeps_the_cause_at_the_end_of_a_long_message():
    where = "/data/" + "y" * 400
    message = f"could not move {where}.partial-x.mkv to {where}.mkv: File name too long"
    text = error_text(MediaWriteError(message))
    assert text.startswith("MediaWriteError: could not move /data/yyy")
    assert text.endswith("File name too long")
    assert len(text) < 330 and " ... " in text


# -- 7. a file replaced between mining and extraction -----------------------------------------------


def test_a_source_replaced_after_it_was_mined_is_not_extracted_under_its_old_hash(renders, tmp_path):
    source = shutil.copy(renders["r12"], tmp_path / "a.mp4")
    digest = content_hash(source)
    shutil.copy(renders["r13"], source)
    result = extract_segment(str(source), 0, 96, "240", str(tmp_path / "c.mkv"), "ffv1", digest)
    assert "changed since it was mined" in result["changed"] and not (tmp_path / "c.mkv").exists()
    assert list(tmp_path.glob(".*partial*")) == []


def test_a_run_says_so_when_a_source_changes_before_its_clip_is_made(renders, tmp_path, monkeypatch):
    library = _library(tmp_path / "library", renders, a="r12")
    out = tmp_path / "ds"
    real_gone_sources = pipeline.gone_sources

    def replace_then_look(rows, found):  # runs between the analysis and the extraction
        shutil.copy(renders["r13"], library / "a.mp4")
        return real_gone_sources(rows, found)

    monkeypatch.setattr(pipeline, "gone_sources", replace_then_look)
    summary = _mine([library], out, extract=True)
    assert summary.clips_written == 0 and summary.extract_failures == 1 and not summary.ok
    assert "changed since it was mined" in summary.failures[0] and "mines it again" in summary.failures[0]
    assert _clips(out) == set()
    monkeypatch.undo()
    again = _mine([library], out, extract=True)
    assert again.files_mined == 1 and again.clips_written == 1 and again.ok
    (row,) = [row for row in complete_rows(read_manifest(out / "manifest.jsonl"))]
    assert row["content_hash"] == content_hash(library / "a.mp4")


# -- 10. Ctrl-C during extraction with worker processes ---------------------------------------------


class _InterruptedPool(PoolRunner):
    """A pool whose run is interrupted (Ctrl-C) once its first result has been recorded."""

    def __init__(self, **_: object) -> None:
        super().__init__(2, retries=0)
        self.results = 0

    def next_done(self):
        if self.results == 1:
            raise KeyboardInterrupt
        self.results += 1
        return super().next_done()


def test_clips_finished_after_ctrl_c_are_not_left_unlisted(renders, tmp_path, monkeypatch):
    library = _library(tmp_path / "library", renders, a="r12", b="r13", c="r14", d="r17")
    out = tmp_path / "ds"
    _mine([library], out)
    monkeypatch.setattr(pipeline, "make_runner", lambda **options: _InterruptedPool(**options))
    with pytest.raises(KeyboardInterrupt):
        _mine([library], out, extract=True)
    listed = _listed_clips(out)
    assert len(listed) == 1, "the first clip is recorded"
    assert _clips(out) == listed, "clips/ holds only what the manifest lists"
    monkeypatch.undo()
    summary = _mine([library], out, extract=True)
    assert summary.clips_written == 3 and _clips(out) == _listed_clips(out)


# -- 13. a Ray cluster that cannot be joined leaves no dataset folder -------------------------------


def test_a_run_that_cannot_join_ray_leaves_no_dataset_folder(renders, tmp_path, monkeypatch, capsys):
    library = _library(tmp_path / "library", renders, a="r12")

    def cannot_join(**options):
        raise ClusterNotReachableError("--ray local: cannot join the Ray cluster (a test)")

    monkeypatch.setattr(pipeline, "make_runner", cannot_join)
    out = tmp_path / "ds"
    status = main(["mine", str(library), "--out", str(out), "--ray", "local", "--min-confidence", "0.9"])
    assert status == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == ["chronoscope mine: error: --ray local: cannot join the Ray cluster (a test)"]
    assert not (tmp_path / "ds").exists()


# -- 11. image sequences ------------------------------------------------------------------------------


def _sequence(folder: Path, seed: int, count: int = 96) -> Path:
    folder.mkdir(parents=True)
    for index, frame in enumerate(_frames(seed, count)):
        cv2.imwrite(str(folder / f"A001.{1001 + index:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder / "A001.####.png"


def test_image_sequences_are_mined_at_the_sequence_rate_and_skipped_without_one(renders, tmp_path, caplog):
    library = _library(tmp_path / "library", renders, a="r13")
    pattern = _sequence(library / "plates", 12)
    (library / "plates" / "notes.txt").write_text("a shot list")
    out = tmp_path / "ds"
    caplog.set_level(logging.INFO, logger="engine.mining")
    without = _mine([library], out)
    assert without.files_seen == 1
    assert f"image sequence(s) skipped: {pattern}" in caplog.text and "--sequence-rate" in caplog.text
    assert "notes.txt" not in caplog.text and "plates: 1 file(s) skipped" in caplog.text

    summary = _mine([library], out, extract=True, sequence_rate="240")
    assert summary.ok and summary.files_mined == 1 and summary.clips_written == 2, summary.failures
    rows = complete_rows(read_manifest(out / "manifest.jsonl"))
    (row,) = [row for row in rows if row["source"] == str(pattern)]
    assert row["accepted"] and row["frame_count"] == 96 and row["settings"]["sequence_rate"] == "240"
    (clip,) = [name for name in _clips(out) if name.startswith("A001-")]
    assert probe_video(out / "clips" / clip).frame_count == 96 and clip.endswith("-240fps.mkv")

    kept = _mine([library], out, extract=True)  # the dataset keeps its sequence rate
    assert (kept.files_skipped, kept.files_mined, kept.gone_sources) == (2, 0, [])
    with pytest.raises(UnsupportedOptionError, match="--sequence-rate 240 and this run asks for 1000"):
        _mine([library], out, sequence_rate="1000")


def test_a_sequence_is_named_by_its_folder_a_glob_of_its_frames_or_one_frame(tmp_path):
    pattern = _sequence(tmp_path / "plates", 12, count=4)
    (tmp_path / "plates" / "still.png").write_bytes((tmp_path / "plates" / "A001.1001.png").read_bytes())
    assert expand_sources([str(tmp_path / "plates")]) == [str(pattern)]
    assert expand_sources([str(tmp_path / "plates" / "A001.*.png")]) == [str(pattern)]
    assert expand_sources([str(tmp_path / "plates" / "A001.1002.png")]) == [str(pattern)]
    assert expand_sources([str(tmp_path / "plates" / "A001.%04d.png")]) == [str(pattern)]
    still = str(tmp_path / "plates" / "still.png")
    assert expand_sources([still]) == [still]
    assert content_hash(str(pattern)).startswith("sequence-sha256:")


def test_a_sequence_with_a_hole_is_a_corrupt_file_naming_the_missing_frame(tmp_path):
    pattern = _sequence(tmp_path / "library" / "plates", 12, count=24)
    (pattern.parent / "A001.1010.png").unlink()
    summary = _mine([tmp_path / "library"], tmp_path / "ds", sequence_rate="240")
    (row,) = read_manifest(tmp_path / "ds" / "manifest.jsonl")
    assert row["source"] == str(pattern) and row["status"] == "corrupt" and "1010" in row["reason"]
    assert summary.files_rejected == 1 and summary.ok


def test_mine_help_tells_of_sequences_and_of_ctrl_c(capsys):
    with pytest.raises(SystemExit):
        main(["mine", "--help"])
    text = capsys.readouterr().out
    assert "--sequence-rate" in text and "Image sequences" in text and "130 when interrupted" in text


# -- nits: messages, summaries, the card ------------------------------------------------------------


def test_the_last_progress_line_is_logged_once(monkeypatch, caplog):
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.0)
    caplog.set_level(logging.INFO, logger="engine.mining.progress")
    with progress.Progress(2, "mining", "file") as bar:
        bar.update()
        bar.update()
    assert sum("mining: 2 of 2 files" in record.getMessage() for record in caplog.records) == 1


def test_skips_are_logged_once_each_and_name_the_right_file(renders, tmp_path, monkeypatch, caplog):
    library = _library(tmp_path / "library", renders, a="r12")
    (library / "notes.txt").write_text("x")
    (library / "thumb.jpg").write_bytes(b"jpeg?")
    (library / "sound.m4a").write_bytes(b"m4a?")
    (library / "link.mp4").symlink_to(library / "a.mp4")
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.INFO, logger="engine.mining.sources")
    found = expand_sources(["library", "library/a.mp4"])
    assert found == [str(library / "a.mp4")]
    assert "library/a.mp4: skipped, a link to" not in caplog.text, "a.mp4 is no link"
    assert "library/link.mp4: skipped, a link to" in caplog.text
    assert "library: 3 file(s) skipped, neither video" in caplog.text and ".jpg .m4a .txt" in caplog.text


def test_an_unusable_file_is_named_once_in_its_warning(tmp_path, caplog):
    library = tmp_path / "library"
    library.mkdir()
    (library / "notes.mp4").write_text("not a video at all")
    _mine([library], tmp_path / "ds")
    (line,) = [record.getMessage() for record in caplog.records if "skipped:" in record.getMessage()]
    assert line.count("notes.mp4") == 1


def test_json_has_extract_failures_and_an_absolute_out(renders, tmp_path, monkeypatch, capsys):
    library = _library(tmp_path / "library", renders, a="r12")
    monkeypatch.chdir(tmp_path)
    status = main(["mine", "library", "--out", "ds", "--extract", "--min-confidence", "0.9", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert status == 0 and data["out"] == str(tmp_path / "ds") and data["extract_failures"] == 0
    assert data["files_moved"] == 0 and data["clips_written"] == 1 and library.is_dir()


def test_the_card_names_every_field_the_manifest_holds(renders, tmp_path):
    library = _library(tmp_path / "library", renders, a="r12")
    (library / "notes.mp4").write_text("not a video")
    out = tmp_path / "ds"
    _mine([library], out, extract=True)
    card = (out / "README.md").read_text()
    fields = {name for row in read_manifest(out / "manifest.jsonl") for name in row}
    fields |= set(pq.read_table(out / "manifest.parquet").column_names)
    assert sorted(name for name in fields if f"`{name}`" not in card) == []


# -- a real interrupt, from outside ---------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_kill_int_exits_130_and_leaves_only_listed_clips(renders, tmp_path):
    library = _library(tmp_path / "library", renders, a="r12", b="r13", c="r14", d="r17")
    out = tmp_path / "ds"
    _mine([library], out)
    command = [sys.executable, "-m", "engine.cli", "mine", str(library), "--out", str(out), "--extract"]
    command += ["--workers", "2"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and not _listed_clips(out):
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be interrupted"
    os.kill(process.pid, signal.SIGINT)  # the first clip is recorded: `kill -INT` (or `timeout -s INT`)
    assert process.wait(timeout=120) == 130
    assert len(_listed_clips(out)) < 4 and _clips(out) == _listed_clips(out)


def test_an_interrupt_just_after_a_clip_is_listed_keeps_that_clip(renders, tmp_path, monkeypatch):
    """Ctrl-C landing after a clip's manifest row was written and before the run counted it removed
    the clip the manifest lists (the Ctrl-C test above caught it under load: the manifest listed
    a-...-240fps.mkv, clips/ was empty). What the manifest on disk lists is kept."""
    library = _library(tmp_path / "library", renders, a="r12", b="r13")
    out = tmp_path / "ds"
    _mine([library], out)
    original = pipeline._Rows.append

    def append_then_interrupt(self, rows):
        original(self, rows)
        if any(row.get("row") == "clip" and row.get("clip") for row in rows):
            raise KeyboardInterrupt

    monkeypatch.setattr(pipeline._Rows, "append", append_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _mine([library], out, extract=True, workers=1)
    assert len(_listed_clips(out)) == 1
    assert _clips(out) == _listed_clips(out)
