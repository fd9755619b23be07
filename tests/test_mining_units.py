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


def test_audio_pitch_cue_reads_a_lowered_pitch_in_slowed_audio(tmp_path):
    """A 440 Hz tone then the same tone slowed 2x (220 Hz): the slowed span reads about half."""
    import av

    from engine.mining.stages import audio_pitch_stage

    rate_hz = 16000
    times = np.arange(rate_hz * 2) / rate_hz
    tone = np.concatenate(
        [np.sin(2 * np.pi * 440 * times[:rate_hz]), np.sin(2 * np.pi * 220 * times[:rate_hz])]
    )
    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate_hz, layout="mono")
        samples = (tone * 0.5).astype(np.float32).reshape(1, -1)
        for start in range(0, samples.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(samples[:, start : start + 1024], format="flt", layout="mono")
            frame.sample_rate = rate_hz
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    spans = [(Fraction(1, 10), Fraction(9, 10)), (Fraction(11, 10), Fraction(19, 10))]
    first, second = audio_pitch_stage(path, spans)
    assert second["centroid_hz"] / first["centroid_hz"] == pytest.approx(0.5, abs=0.1)
