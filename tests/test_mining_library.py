"""``chronoscope mine`` over a library that changes between runs, on tiny renders made here.

Each render is a procedural 240 fps scene written at its capture rate (a high-rate stream: its
segment is accepted with an exactly known rate), so a run over a few of them takes seconds.
What is checked: transient outcomes are tried again, incremental extraction de-duplicates
against earlier clips whatever the order files arrived in, changed and deleted sources leave the
dataset describing the library as it is, --out is refused where a run would do harm, damaged
frames never shift a clip's timing, a dataset keeps its settings, and the run's messages stay
short and say which counts are this run's.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from engine.cli import main
from engine.errors import FileAccessError, UnsupportedOptionError
from engine.media import FrameReader, probe_video
from engine.mining import MineOptions, mine, pipeline, progress, read_manifest
from engine.mining.extract import MIN_CLIP_FRAMES, extract_segment
from engine.mining.manifest import complete_rows, joined_segments
from engine.scenes import random_scene, render_frames, write_video

GATE = 0.9
SEEDS = (14, 12, 13)


def _render(path: Path, seed: int, frames: int = 96) -> Path:
    spec = random_scene(seed, width=160, height=120, capture_fps=240, duration_frames=frames)
    write_video(list(render_frames(spec)), path, 240)
    return path


@pytest.fixture(scope="module")
def renders(tmp_path_factory) -> dict[str, Path]:
    """Three different 240 fps scenes, and a longer one with 1.5 KB damaged in the middle."""
    folder = tmp_path_factory.mktemp("renders")
    made = {f"r{seed}": _render(folder / f"r{seed}.mp4", seed) for seed in SEEDS}
    long = _render(folder / "long.mp4", 13, frames=160)
    data = bytearray(long.read_bytes())
    middle = len(data) // 2
    for index in range(middle, middle + 1500):
        data[index] ^= 0x5A
    made["damaged"] = folder / "damaged.mp4"
    made["damaged"].write_bytes(bytes(data))
    return made


def _mine(sources, out: Path, **options) -> pipeline.MineSummary:
    options.setdefault("min_confidence", GATE)
    return mine(MineOptions([str(source) for source in sources], out, progress=False, **options))


def _library(tmp_path: Path, renders: dict[str, Path], **names: str) -> Path:
    """A library folder with ``name=render`` copies."""
    folder = tmp_path / "library"
    folder.mkdir(parents=True, exist_ok=True)
    for name, render in names.items():
        shutil.copy(renders[render], folder / f"{name}.mp4")
    return folder


def _clips(out: Path) -> list[str]:
    folder = out / "clips"
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


def _accepted(out: Path) -> dict[str, tuple]:
    """Per accepted segment (by file name): whether it has a clip, whether it is a duplicate."""
    rows = read_manifest(out / "manifest.jsonl")
    return {
        Path(row["source"]).name: (bool(row["clip"]), bool(row["duplicate_of"]))
        for row in joined_segments(rows)
        if row["row"] == "segment" and row["accepted"]
    }


# -- 1. transient outcomes -------------------------------------------------------------------------


def test_a_file_away_while_it_was_mined_is_mined_by_the_next_run(renders, tmp_path, monkeypatch):
    library = _library(tmp_path, renders, a="r14")
    source = library / "a.mp4"
    real_hash = pipeline.content_hash

    def hash_then_move_away(name: str) -> str:
        digest = real_hash(name)
        os.rename(name, f"{name}.away")  # moved away between the scan and the mining
        return digest

    monkeypatch.setattr(pipeline, "content_hash", hash_then_move_away)
    first = _mine([library], tmp_path / "ds")
    (row,) = read_manifest(tmp_path / "ds" / "manifest.jsonl")
    assert row["row"] == "file" and row["status"] == "missing"
    assert not first.ok and "a.mp4" in first.failures[0]
    monkeypatch.undo()
    os.rename(f"{source}.away", source)  # back, same content and mtime: the same hash

    again = _mine([library], tmp_path / "ds")
    assert (again.files_mined, again.files_skipped) == (1, 0), "a transient outcome is not done"
    current = complete_rows(read_manifest(tmp_path / "ds" / "manifest.jsonl"))
    assert [row["row"] for row in current] == ["segment"] and current[0]["accepted"]
    assert again.ok


def test_a_transient_row_never_hides_the_rows_of_a_file_mined_before():
    def group(status=None, digest="h", group_id="g"):
        if status:
            return [{"row": "file", "source": "a", "content_hash": digest, "run_group": group_id,
                     "file_rows": 1, "status": status}]  # fmt: skip
        return [{"row": "segment", "source": "a", "content_hash": digest, "run_group": group_id,
                 "file_rows": 1, "segment_index": 0}]  # fmt: skip

    rows = group() + group("unreadable", "", "g2") + group("missing", "h", "g3")
    assert [row["row"] for row in complete_rows(rows)] == ["segment"]
    rows += group("error", "new", "g4")  # a new content hash: the old segments are gone
    assert [row.get("status") for row in complete_rows(rows)] == ["error"]


# -- 2. incremental extraction de-duplicates against earlier runs' clips ---------------------------


@pytest.mark.parametrize(
    "first,second", [("b", "a"), ("a", "b")], ids=["new-copy-sorts-first", "new-copy-sorts-last"]
)
def test_incremental_extraction_gives_what_one_run_over_all_files_gives(renders, tmp_path, first, second):
    together = _library(tmp_path / "together", renders, a="r14", b="r14", c="r12")
    _mine([together], tmp_path / "ds-together", extract=True)
    expected = _accepted(tmp_path / "ds-together")
    assert expected == {"a.mp4": (True, False), "b.mp4": (False, True), "c.mp4": (True, False)}

    library = _library(tmp_path / "growing", renders, **{first: "r14", "c": "r12"})
    out = tmp_path / "ds"
    _mine([library], out, extract=True)
    shutil.copy(renders["r14"], library / f"{second}.mp4")
    summary = _mine([library], out, extract=True)
    assert _accepted(out) == expected
    assert len(_clips(out)) == 2, "the same footage twice in clips/"
    assert summary.duplicates == 1
    if first == "b":  # the better-ranked copy arrived later: the earlier clip is retired
        assert summary.clips_retired == 1 and (out / "retired" / "README.md").is_file()


# -- 5. the library changes: touched, replaced, deleted --------------------------------------------


def test_changed_files_retire_their_old_clips_and_deleted_ones_are_flagged_not_retried(
    renders, tmp_path, caplog
):
    library = _library(tmp_path, renders, touched="r14", replaced="r13", deleted="r12")
    out = tmp_path / "ds"
    _mine([library], out, extract=True)
    old_clips = _clips(out)
    assert len(old_clips) == 3

    stamp = (library / "touched.mp4").stat().st_mtime_ns + 5_000_000_000
    os.utime(library / "touched.mp4", ns=(stamp, stamp))
    shutil.copy(renders["damaged"], library / "replaced.mp4")
    (library / "deleted.mp4").unlink()
    summary = _mine([library], out, extract=True)

    assert summary.ok, summary.failures
    assert summary.gone_sources == [str((library / "deleted.mp4").resolve())]
    assert summary.clips_retired == 2
    clips = _clips(out)
    assert len(clips) == 3 and len(set(clips) & set(old_clips)) == 1, "touched and replaced get new clips"
    assert sorted(path.name for path in (out / "retired").glob("*.mkv")) == sorted(
        set(old_clips) - set(clips)
    )
    note = (out / "retired" / "README.md").read_text()
    assert note.count("its source changed") == 2

    table = pq.read_table(out / "manifest.parquet").to_pylist()
    listed = {row["clip"] for row in table if row["clip"]}
    assert listed == {f"clips/{name}" for name in clips}, "every clip in clips/ is listed, and only those"
    deleted = [row for row in table if row["source"].endswith("deleted.mp4")]
    assert [(row["source_missing"], row["orphaned"]) for row in deleted] == [(True, True)]
    card = (out / "README.md").read_text()
    assert "sources that no longer exist: 1" in card and "orphaned clips: 1" in card
    assert summary.dataset.orphaned_clips == 1 and summary.dataset.clips == 3

    caplog.clear()
    again = _mine([library], out, extract=True)
    assert again.ok and again.files_mined == 0 and again.clips_written == 0
    assert "trying again" not in caplog.text


def test_a_source_deleted_before_extraction_is_reported_once_not_retried(renders, tmp_path, caplog):
    library = _library(tmp_path, renders, kept="r14", gone="r12")
    out = tmp_path / "ds"
    _mine([library], out)
    (library / "gone.mp4").unlink()
    caplog.clear()
    summary = _mine([library], out, extract=True, retries=3)
    assert summary.ok and summary.extract_failures == 0
    assert summary.clips_written == 1 and summary.gone_sources == [str((library / "gone.mp4").resolve())]
    assert "trying again" not in caplog.text
    # 11. messages name the file and the reason, never a whole manifest row
    assert len(caplog.text) < 2000 and "evidence" not in caplog.text


# -- 6. --out where a run would do harm -----------------------------------------------------------


def test_out_is_refused_when_it_is_not_a_dataset_or_is_the_library(renders, tmp_path):
    library = _library(tmp_path, renders, a="r14")
    mine_folder = tmp_path / "mine"
    mine_folder.mkdir()
    (mine_folder / "README.md").write_text("my own notes")
    (mine_folder / "report.md").write_text("my report")
    with pytest.raises(
        UnsupportedOptionError, match=r"not empty and is not a dataset .* README\.md, report\.md"
    ):
        _mine([library], mine_folder)
    assert (mine_folder / "README.md").read_text() == "my own notes"
    with pytest.raises(UnsupportedOptionError, match="is the library"):
        _mine([library], library)
    with pytest.raises(UnsupportedOptionError, match="holds the library"):
        _mine([library / "a.mp4"], tmp_path)
    assert sorted(path.name for path in library.iterdir()) == ["a.mp4"]
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(UnsupportedOptionError, match="is a file, not a folder"):
        _mine([library], afile)
    with pytest.raises(FileAccessError, match="cannot create the dataset folder /proc/ds.*does not take"):
        _mine([library], Path("/proc/ds"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _mine([library], empty).files_mined == 1, "an empty folder is a fine new dataset"


# -- 7. damaged frames never shift a clip's timing ------------------------------------------------


def test_damaged_frames_cut_the_clip_before_them_and_the_manifest_says_so(renders, tmp_path):
    library = _library(tmp_path, renders, damaged="damaged")
    out = tmp_path / "ds"
    summary = _mine([library], out, extract=True)
    (segment,) = [
        row for row in joined_segments(read_manifest(out / "manifest.jsonl")) if row["row"] == "segment"
    ]
    assert segment["accepted"] and (segment["start_frame"], segment["end_frame"]) == (0, 160)
    assert summary.clips_cut == 1
    assert "damage" in segment["clip_cut"] or "cannot be decoded" in segment["clip_cut"]
    frames = segment["clip_frames"]
    assert MIN_CLIP_FRAMES <= frames < 160
    clip = out / segment["clip"]
    assert probe_video(clip).frame_count == frames
    with FrameReader(renders["damaged"], strict=False) as source, FrameReader(clip) as written:
        for index in (0, frames // 2, frames - 1):
            expected = source.read_frame(index).image.astype(int)
            assert abs(written.read_frame(index).image.astype(int) - expected).mean() < 3, index
    assert "Clips cut or refused" in (out / "report.md").read_text()


def test_a_segment_with_too_few_good_frames_before_damage_is_refused(renders, tmp_path):
    probe = extract_segment(str(renders["damaged"]), 0, 160, "240", str(tmp_path / "probe.mkv"), "ffv1")
    damaged_at = probe["end_frame"]
    start = damaged_at - MIN_CLIP_FRAMES + 1
    result = extract_segment(str(renders["damaged"]), start, 160, "240", str(tmp_path / "c.mkv"), "ffv1")
    assert "refused" in result and not (tmp_path / "c.mkv").exists()
    assert list(tmp_path.glob(".*partial*")) == []
    whole = extract_segment(str(renders["r14"]), 0, 96, "240", str(tmp_path / "w.mkv"), "ffv1")
    assert whole == {"frames": 96, "rate": "240", "codec": "ffv1"}


# -- 8. a dataset keeps its settings ---------------------------------------------------------------


def test_changed_settings_on_a_dataset_are_refused_naming_the_setting(renders, tmp_path):
    library = _library(tmp_path, renders, a="r14")
    out = tmp_path / "ds"
    _mine([library], out, extract=True)
    for options, named in (
        ({"extract": True, "codec": "h264"}, "--codec h264.* --codec ffv1"),
        ({"density": 0.5}, "--density 0.12 and this run asks for 0.5"),
        ({"audio_cue": True}, "without --audio-cue and this run asks with"),
    ):
        with pytest.raises(UnsupportedOptionError, match=named):
            _mine([library], out, **options)
    same = _mine([library], out, extract=True, codec="ffv1", density=0.12)
    assert same.files_skipped == 1 and same.files_mined == 0


# -- 13. progress without a terminal, counts that say whose, missing list entries, terse errors ----


def test_progress_is_logged_without_a_terminal(renders, tmp_path, monkeypatch, caplog):
    library = _library(tmp_path, renders, a="r14", b="r12")
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.0)
    caplog.set_level(logging.INFO, logger="engine.mining.progress")
    mine(MineOptions([str(library)], tmp_path / "ds", min_confidence=GATE, progress=True))
    lines = [record.getMessage() for record in caplog.records if record.name == "engine.mining.progress"]
    assert "mining: 1 of 2 files (50 %)" in "\n".join(lines)
    assert any(line.startswith("mining: 2 of 2 files (100 %)") for line in lines)


def test_a_missing_list_entry_is_reported_each_run_and_never_written_as_a_row(renders, tmp_path, capsys):
    library = _library(tmp_path, renders, a="r14")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{library / 'a.mp4'}\nmissing.mp4\n")
    out = tmp_path / "ds"
    for _ in range(2):
        status = main(["mine", f"@{listing}", "--out", str(out), "--min-confidence", "0.9", "--json"])
        data = json.loads(capsys.readouterr().out)
        assert status == 1 and data["missing_inputs"] == [str(tmp_path / "missing.mp4")]
    assert {row["source"] for row in read_manifest(out / "manifest.jsonl")} == {str(library / "a.mp4")}
    assert "## Missing inputs" in (out / "report.md").read_text()
    assert data["files_skipped"] == 1 and data["dataset"]["files"] == 1


def test_the_summary_says_which_counts_are_this_runs_and_which_the_datasets(renders, tmp_path, capsys):
    library = _library(tmp_path, renders, a="r14")
    out = tmp_path / "ds"
    arguments = ["mine", str(library), "--out", str(out), "--min-confidence", "0.9", "--extract"]
    assert main(arguments) == 0
    capsys.readouterr()
    assert main(arguments) == 0
    text = capsys.readouterr().out
    assert "this run: 0 files mined, 1 already done" in text and "0 clips written" in text
    assert "dataset now: 1 files, 1 accepted segments, 1 clips" in text
