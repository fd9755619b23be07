"""The mining pieces on their own: sources, content hash, manifest checkpoint, gate, hashes, rates."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from engine.errors import MediaNotFoundError, UnsupportedOptionError
from engine.mining.gate import FALLBACK_MIN_CONFIDENCE, find_gate, gate_from_evaluation
from engine.mining.manifest import ManifestWriter, complete_rows, finished_files, read_manifest
from engine.mining.sources import content_hash, expand_sources
from engine.mining.stages import dhash_distance, dhash_image, snap_capture_rate


def test_sources_expand_folders_lists_and_globs_without_repeats(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    clip = tmp_path / "a" / "deep" / "one.MOV"
    clip.write_bytes(b"x")
    (tmp_path / "a" / "notes.txt").write_text("not a video")
    odd = tmp_path / "b.bin"
    odd.write_bytes(b"y")
    listing = tmp_path / "list.txt"
    listing.write_text("# comment\n\nb.bin\na/deep/one.MOV\n")
    found = expand_sources([str(tmp_path / "a"), f"@{listing}", str(tmp_path / "*.bin")])
    assert found == [str(clip.resolve()), str(odd.resolve())]
    assert expand_sources([str(tmp_path)], exclude=[tmp_path / "a"]) == []


def test_sources_that_name_nothing_are_errors(tmp_path):
    with pytest.raises(MediaNotFoundError, match="neither a file"):
        expand_sources([str(tmp_path / "missing")])
    with pytest.raises(MediaNotFoundError, match="matches no file"):
        expand_sources([str(tmp_path / "*.mp4")])
    with pytest.raises(MediaNotFoundError, match="file list"):
        expand_sources([f"@{tmp_path / 'nope.txt'}"])
    with pytest.raises(UnsupportedOptionError):
        expand_sources([])


def test_content_hash_reads_both_ends_of_a_large_file(tmp_path):
    path = tmp_path / "big.mp4"
    data = bytearray(3 << 20)
    path.write_bytes(bytes(data))
    first = content_hash(path)
    before = path.stat()
    data[-1] = 1
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    assert content_hash(path) != first, "a change in the last MiB must change the hash"
    assert content_hash(path) == content_hash(path)


def _rows(source: str, group: str, count: int) -> list[dict]:
    return [
        {
            "row": "segment",
            "source": source,
            "content_hash": "h",
            "segment_index": i,
            "run_group": group,
            "file_rows": count,
        }
        for i in range(count)
    ]


def test_manifest_cuts_a_torn_last_line_and_ignores_incomplete_groups(tmp_path, caplog):
    path = tmp_path / "manifest.jsonl"
    with ManifestWriter(path) as writer:
        writer.append(_rows("/a.mp4", "g1", 2))
    whole = path.read_bytes()
    partial = _rows("/b.mp4", "g2", 3)[:1]
    path.write_bytes(whole + (json.dumps(partial[0]) + "\n").encode() + b'{"row": "segm')
    with ManifestWriter(path) as writer:
        writer.append(_rows("/c.mp4", "g3", 1))
    assert "torn last line" in caplog.text
    rows = read_manifest(path)
    assert len(rows) == 4
    assert finished_files(rows) == {("/a.mp4", "h"), ("/c.mp4", "h")}
    assert {row["source"] for row in complete_rows(rows)} == {"/a.mp4", "/c.mp4"}


def _evaluation(tmp_path: Path) -> Path:
    rows = []
    for confidence in (0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99):
        rows.append({"true_class": "slowmo", "class": "slowmo", "confidence": confidence})
    for confidence in (0.55, 0.75, 0.85):
        rows.append({"true_class": "realtime", "class": "slowmo", "confidence": confidence})
    rows += [{"true_class": "synthetic_slowmo", "class": "synthetic_slowmo", "confidence": 0.9}] * 17
    path = tmp_path / "speed_eval.json"
    path.write_text(json.dumps({"metrics": {}, "rows": rows}))
    return path


def test_gate_is_the_smallest_threshold_within_the_false_positive_budget(tmp_path):
    path = _evaluation(tmp_path)
    gate = gate_from_evaluation(path, max_fpr=0.05)
    assert gate.min_confidence == 0.76
    assert gate.measured_fpr == pytest.approx(1 / 20)
    assert gate.measured_recall == pytest.approx(5 / 7)
    strict = gate_from_evaluation(path, max_fpr=0.01)
    assert strict.min_confidence == 0.86 and strict.measured_fpr == 0.0
    given = find_gate(min_confidence=0.93, evaluation=path)
    assert given.min_confidence == 0.93 and given.measured_recall == pytest.approx(3 / 7)


def test_an_installed_copy_has_the_measured_gate_of_the_shipped_detector(monkeypatch):
    """The held-out evaluation ships beside the model: installs used the 0.90 fallback, since the
    bench's own outputs live in ignored folders."""
    import engine.mining.gate as gate_module

    shipped = Path(gate_module.__file__).parents[1] / "speed" / "model" / "speed_eval.json"
    assert shipped in gate_module.EVAL_RESULT_PATHS
    monkeypatch.setattr("engine.mining.gate.EVAL_RESULT_PATHS", (shipped,))
    gate = find_gate()
    assert gate.source == str(shipped) and gate.measured_fpr <= 0.05
    assert (gate.min_confidence, gate.negatives, gate.positives) == (0.82, 56, 21)


def test_gate_without_a_measurement_falls_back_with_a_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr("engine.mining.gate.EVAL_RESULT_PATHS", (tmp_path / "none.json",))
    gate = find_gate()
    assert gate.min_confidence == FALLBACK_MIN_CONFIDENCE and "fallback" in gate.source
    assert "no false-positive curve" in caplog.text
    with pytest.raises(UnsupportedOptionError, match="not found"):
        find_gate(evaluation=tmp_path / "missing.json")


def test_dhash_matches_a_segment_inside_another_and_not_other_content():
    rng = np.random.default_rng(1)
    base = (rng.random((60, 80, 3)) * 255).astype(np.uint8)
    other = (rng.random((60, 80, 3)) * 255).astype(np.uint8)
    frames = [np.roll(base, shift, axis=1) for shift in range(0, 16, 2)]
    long = "-".join(f"{dhash_image(frame):016x}" for frame in frames)
    part = "-".join(f"{dhash_image(frame):016x}" for frame in frames[2:5])
    unrelated = "-".join(f"{dhash_image(np.roll(other, s, axis=1)):016x}" for s in range(3))
    assert dhash_distance(part, long) == 0
    assert dhash_distance(unrelated, long) > 16


def test_capture_rates_snap_to_camera_rates_only_when_near():
    assert snap_capture_rate(Fraction(231)) == 240
    assert snap_capture_rate(Fraction(118)) == 120
    assert snap_capture_rate(Fraction(5000)) == 5000


def test_audio_cue_puts_the_pitch_shift_in_the_segment_evidence(tmp_path):
    """A clip whose sound speeds up x2 at 3 s (resampled, so its pitch rises an octave): with
    the audio cue the segment holding 3 s names the shift; without it there is no audio entry."""
    from engine.mining.stages import MineSettings, mine_file
    from tests.media_factory import render_clip, resample_to_48k, voice

    sound = resample_to_48k(np.concatenate([voice(3.0), voice(3.0, speed=2.0, start_s=1.5)]))
    path = render_clip(
        tmp_path / "clip.mp4", rate=Fraction(25), frame_count=150, size=(96, 64), audio=True, sound=sound
    )
    rows = mine_file(str(path), "digest", MineSettings(min_confidence=0.5, audio_cue=True, dhash=False))
    entries = [entry for row in rows if row["row"] == "segment" for entry in row["evidence"]["audio_pitch"]]
    heard = [entry for entry in entries if entry["finding"] == "pitch shift inside the segment"]
    assert [(round(entry["value"]), round(entry["time_s"])) for entry in heard] == [(2, 3)], entries
    quiet = mine_file(str(path), "digest", MineSettings(min_confidence=0.5, dhash=False))
    assert all("audio_pitch" not in row.get("evidence", {}) for row in quiet)
