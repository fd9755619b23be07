"""``chronoscope mine`` end to end on a small mixed folder built here from real footage and renders.

The folder (engine.mining.mixed): two real-time clips cut from shared/data/clips, fake slow
motion made from them (duplicated and blended frames), genuine high-rate renders written at their
capture rate and played at 30 fps, a truncated MP4 and a text file named .mp4.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.cli import main
from engine.errors import ChronoscopeError, UnsupportedOptionError
from engine.media import probe_video
from engine.mining import MineOptions, mine, read_manifest
from engine.mining.manifest import complete_rows, finished_files, joined_segments
from engine.mining.mixed import build_mixed_folder
from engine.processes import exclusive_lock

REPO = Path(__file__).resolve().parent.parent
GATE = 0.9


@pytest.fixture(scope="module")
def library(tmp_path_factory, shared_clips) -> tuple[Path, dict[str, object]]:
    folder = tmp_path_factory.mktemp("library")
    truth = build_mixed_folder(shared_clips, folder)
    return folder, {str((folder / item.name).resolve()): item for item in truth}


@pytest.fixture(scope="module")
def mined(library, tmp_path_factory):
    folder, truth = library
    out = tmp_path_factory.mktemp("dataset")
    summary = mine(MineOptions([str(folder)], out, extract=True, min_confidence=GATE, progress=False))
    return out, summary, read_manifest(out / "manifest.jsonl"), truth


def test_every_file_has_rows_and_unusable_files_are_reported_with_the_reason(mined):
    out, summary, rows, truth = mined
    sources = {row["source"] for row in rows}
    assert sources == set(truth)
    files = {Path(row["source"]).name: row for row in rows if row["row"] == "file"}
    assert set(files) == {"truncated.mp4", "notes.mp4"}
    assert files["notes.mp4"]["status"] == "not_video"
    assert files["truncated.mp4"]["status"] == "corrupt"
    assert all(row["reason"] for row in files.values())
    assert summary.files_rejected == 2 and summary.failures == []
    report = (out / "report.md").read_text()
    assert "truncated.mp4" in report and "notes.mp4" in report


def test_segment_rows_carry_the_documented_fields(mined):
    _, _, rows, _ = mined
    segments = [row for row in rows if row["row"] == "segment"]
    assert segments
    for row in segments:
        for field in (
            "content_hash",
            "start_s",
            "end_s",
            "playback_fps",
            "capture_fps",
            "speed",
            "class",
            "confidence",
            "evidence",
            "width",
            "height",
            "has_audio",
        ):
            assert field in row, field
        assert row["content_hash"].startswith("fast-sha256:")
        assert 0 <= row["start_s"] < row["end_s"]
        assert row["width"] == 160
        assert "metadata" in row["evidence"]
        probes = [
            entry for entries in row["evidence"].values() for entry in entries if "probe_frames" in entry
        ]
        assert probes, "the per-probe evidence of the segment is in the row"
        for entry in probes:
            start, end = entry["probe_frames"]
            assert row["start_frame"] <= start < row["end_frame"] and start < end
        assert row["task"]["wall_s"] > 0 and row["task"]["cpu_s"] > 0 and ":" in row["task"]["worker"]
    assert any(
        entry.get("finding", "").startswith("finding:")
        for row in segments
        for entry in row["evidence"].get("synthetic_retime", [])
    ), "the synthetic-retime check's findings reach the manifest"


def test_accepted_set_is_exactly_the_genuine_high_rate_files(mined):
    _, summary, rows, truth = mined
    accepted = {row["source"] for row in rows if row["row"] == "segment" and row["accepted"]}
    genuine = {source for source, item in truth.items() if item.genuine}
    assert accepted <= genuine, "a fake or real-time file passed the gate"
    assert len(accepted) >= 3, f"only {len(accepted)} of {len(genuine)} genuine files accepted"
    for row in rows:
        if row["row"] == "segment" and "synthetic" in truth[row["source"]].kind:
            assert not row["accepted"]


def test_extract_conforms_clips_to_capture_rate_and_drops_near_duplicates(mined):
    out, summary, rows, truth = mined
    records = [row for row in joined_segments(rows) if row["row"] == "segment" and row["accepted"]]
    clips = {row["clip"] for row in records if row["clip"]}
    assert summary.clips_written == len(clips) >= 2
    assert summary.duplicates >= 1, "each render is in the folder twice; one copy must be dropped"
    for row in records:
        assert bool(row["clip"]) != bool(row["duplicate_of"])
    for row in records:
        if not row["clip"]:
            continue
        info = probe_video(out / row["clip"])
        assert info.codec == "ffv1"
        assert info.frame_rate == float(row["conform_fps"])
        assert info.frame_count == row["end_frame"] - row["start_frame"]
        item = truth[row["source"]]
        if item.kind == "genuine_native_rate":
            assert info.frame_rate == item.capture_fps


def test_card_and_report_and_plots_are_written(mined):
    out, _, _, _ = mined
    card = (out / "README.md").read_text()
    assert f"**{GATE:.2f}**" in card
    for name in ("capture_rates.png", "classes.png", "rejected.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_second_run_skips_every_finished_file(mined, library):
    out, _, rows, _ = mined
    folder, truth = library
    leftover = out / "clips" / ".render-000.partial-k2j4h5g6.mkv"  # a run SIGKILLed mid-extraction
    leftover.write_bytes(b"half a clip")
    summary = mine(MineOptions([str(folder)], out, extract=True, min_confidence=GATE, progress=False))
    assert summary.files_skipped == len(truth) and summary.files_mined == 0
    assert summary.clips_written == 0
    assert read_manifest(out / "manifest.jsonl") == rows
    assert not leftover.exists()


def test_a_dataset_keeps_its_gate_and_one_run_writes_it_at_a_time(mined, library):
    out, _, rows, _ = mined
    folder, _ = library
    with pytest.raises(UnsupportedOptionError, match=f"mined with the confidence gate {GATE:g}; .* at 0.99"):
        mine(MineOptions([str(folder)], out, extract=True, min_confidence=0.99, progress=False))
    with exclusive_lock(out / ".chronoscope-mine.lock"):
        with pytest.raises(UnsupportedOptionError, match="another `chronoscope mine` is writing"):
            mine(MineOptions([str(folder)], out, min_confidence=GATE, progress=False))
    # no gate given: the dataset's own is kept (not the measured or fallback one)
    summary = mine(MineOptions([str(folder)], out, progress=False))
    assert summary.gate.min_confidence == GATE and summary.files_mined == 0
    assert read_manifest(out / "manifest.jsonl") == rows


def test_a_changed_file_replaces_its_rows_and_a_failed_one_is_tried_again():
    def group(source, digest, group_id, status=None, segments=1):
        if status is not None:
            return [{"row": "file", "source": source, "content_hash": digest, "run_group": group_id,
                     "file_rows": 1, "status": status}]
        return [{"row": "segment", "source": source, "content_hash": digest, "run_group": group_id,
                 "file_rows": segments, "segment_index": index} for index in range(segments)]

    rows = group("a.mp4", "old", "g1", segments=2) + group("a.mp4", "new", "g2")
    rows += group("b.mp4", "h", "g3", "error")
    assert [(row["content_hash"], row["segment_index"]) for row in complete_rows(rows)
            if row["source"] == "a.mp4"] == [("new", 0)]
    assert finished_files(rows) == {("a.mp4", "new")}


def test_refusals_leave_no_dataset_folder_behind(tmp_path):
    for sources in (["missing-folder"], [str(tmp_path / "*.nothing")]):
        with pytest.raises(ChronoscopeError):
            mine(MineOptions(sources, tmp_path / "ds", progress=False))
        assert not (tmp_path / "ds").exists()
    with pytest.raises(UnsupportedOptionError, match="--codec prores is for the clips of --extract"):
        MineOptions([str(tmp_path)], tmp_path / "ds", codec="prores")


def test_killed_run_resumes_without_redoing_finished_files(library, tmp_path):
    folder, truth = library
    out = tmp_path / "ds"
    command = [
        sys.executable,
        "-m",
        "engine.cli",
        "-q",
        "mine",
        str(folder),
        "--out",
        str(out),
        "--min-confidence",
        "0.9",
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = out / "manifest.jsonl"
    deadline = time.monotonic() + 60
    finished: list[dict] = []
    while time.monotonic() < deadline and process.poll() is None:
        finished = complete_rows(read_manifest(manifest)) if manifest.exists() else []
        if len({row["source"] for row in finished}) >= 4:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = complete_rows(read_manifest(manifest))
    done_before = {row["source"]: row["run_group"] for row in before}
    assert 4 <= len(done_before) < len(truth)

    summary = mine(MineOptions([str(folder)], out, min_confidence=GATE, progress=False))
    assert summary.files_skipped == len(done_before)
    assert summary.files_mined == len(truth) - len(done_before)
    after = complete_rows(read_manifest(manifest))
    assert {row["source"] for row in after} == set(truth)
    for row in after:
        if row["source"] in done_before:
            assert row["run_group"] == done_before[row["source"]], "a finished file was mined again"


def test_cli_mine_json_summary(library, tmp_path, capsys):
    folder, truth = library
    listing = tmp_path / "list.txt"
    chosen = sorted(source for source, item in truth.items() if item.kind in ("corrupt", "realtime"))
    listing.write_text("# two files\n" + "\n".join(chosen) + "\n")
    status = main(["mine", f"@{listing}", "--out", str(tmp_path / "ds"), "--min-confidence", "0.9", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert status == 0
    assert data["files_seen"] == len(chosen) and data["files_rejected"] == 1 and data["accepted"] == 0


def test_cli_refuses_a_bad_gate_and_an_unknown_codec(tmp_path, capsys):
    assert main(["mine", str(tmp_path), "--out", str(tmp_path / "ds"), "--min-confidence", "1.5"]) == 2
    assert "--min-confidence 1.5" in capsys.readouterr().err
    assert main(["mine", str(tmp_path), "--out", str(tmp_path / "ds"), "--extract", "--codec", "vp9"]) == 2
    assert "ffv1" in capsys.readouterr().err
