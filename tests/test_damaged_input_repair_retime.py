"""Damaged input: an H.264 transport stream with damaged packets in the middle, as a broadcast
capture or a copy off a failing disk has them. Before, `chronoscope repair` and `retime` stopped
at the first damaged frame ("decoding failed near frame 19: Invalid data found when processing
input") though FFmpeg decodes every frame. Now frames lost to the damage, or decoded garbled (the
decoder conceals what it lost: the frame it was in, and every frame decoded after it until the
next undamaged keyframe), are dropped frames: repair fills them, retime makes its frames across
them, and both name them (a WARNING, the report). A stream with no undamaged frame is refused.

The damage is written by the test: 146 bytes zeroed in every 7th 188-byte packet over 20 kB in
the middle of the file, packet headers and PES headers (timestamps) kept."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from media_factory import render_clip

from engine.cli import main
from engine.errors import CorruptMediaError
from engine.media import FrameReader, probe
from engine.retime import sidecar_path

TS_PACKET_BYTES = 188
KEPT_HEADER_BYTES = 42


def _damaged_copy(clean: Path, damaged: Path, *, span_bytes: int | None = 20_000, every: int = 7) -> Path:
    """``clean`` with the payload of every ``every``-th transport packet zeroed over ``span_bytes``
    in the middle (None: the whole file), the packets that start a PES packet (its timestamps) kept."""
    data = bytearray(clean.read_bytes())
    packets = len(data) // TS_PACKET_BYTES
    if span_bytes is None:
        first, last = 0, packets
    else:
        span = span_bytes // TS_PACKET_BYTES
        first, last = packets // 2 - span // 2, packets // 2 + span // 2
    for number in range(first, last, every):
        start = number * TS_PACKET_BYTES
        if data[start + 1] & 0x40:  # payload_unit_start_indicator: a PES header starts here
            continue
        data[start + KEPT_HEADER_BYTES : start + TS_PACKET_BYTES] = bytes(TS_PACKET_BYTES - KEPT_HEADER_BYTES)
    damaged.write_bytes(bytes(data))
    return damaged


@pytest.fixture(scope="module")
def streams(tmp_path_factory) -> tuple[Path, Path]:
    """(clean, damaged): 50 frames at 25 fps, keyframes every 10, two B-frames."""
    folder = tmp_path_factory.mktemp("damaged")
    clean = render_clip(folder / "clean.ts", size=(320, 176), frame_count=50, gop_frames=10, b_frames=2)
    return clean, _damaged_copy(clean, folder / "damaged.ts")


def _images(path: Path, **options) -> dict[int, tuple[np.ndarray, bool]]:
    with FrameReader(path, **options) as reader:
        return {frame.index: (frame.image, frame.concealed) for frame in reader.frames()}


def _garbled(streams) -> list[int]:
    """Frames of the damaged stream that differ from the clean one (or are missing)."""
    clean, damaged = (_images(path, strict=False) for path in streams)
    return sorted(i for i in clean if i not in damaged or not np.array_equal(clean[i][0], damaged[i][0]))


def test_lenient_reading_marks_every_frame_the_damage_garbled_and_no_other(streams):
    clean, damaged = streams
    with pytest.raises(CorruptMediaError, match="decoding failed near frame"):
        _images(damaged)  # strict, as before
    garbled = _garbled(streams)
    assert len(garbled) >= 3, "the damage must garble some frames for this test to mean anything"
    frames = _images(damaged, strict=False)
    flagged = sorted(i for i, (_, concealed) in frames.items() if concealed)
    lost = sorted(set(range(50)) - set(frames))
    assert sorted(flagged + lost) == garbled  # B-frames that came out before the damaged frame too
    assert not any(concealed for _, concealed in _images(clean, strict=False).values())


def test_repair_fills_the_damaged_frames_and_names_them(tmp_path, streams, capsys, caplog):
    _, damaged = streams
    garbled = _garbled(streams)
    out = tmp_path / "fixed.mov"
    with caplog.at_level(logging.WARNING):
        assert main(["repair", str(damaged), "-o", str(out), "--model", "blend"]) == 0
    printed = capsys.readouterr().out
    report = json.loads(sidecar_path(out).read_text())
    first, last = garbled[0], garbled[-1]
    assert report["damaged_frames"] == [[first, last]]
    assert report["counts"]["damaged"] == len(garbled) == last - first + 1
    (fill,) = report["fills"]
    assert fill["kind"] == "damaged"
    assert (fill["before_source_frame"], fill["after_source_frame"]) == (first - 1, last + 1)
    assert (fill["first_output_frame"], fill["last_output_frame"]) == (first, last)
    assert report["output_frames"] == report["frames_written"] == 50
    assert probe(out).video_stream.frame_count == 50
    assert f"damaged source frames (left out, filled): {first}-{last}" in printed
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"source frames {first}-{last} are damaged" in w for w in warnings), warnings
    # the frames either side are the source's own, the damaged ones are made between them
    made = _images(out)
    source = _images(damaged, strict=False)
    for index in (first - 1, last + 1):
        assert np.mean(np.abs(made[index][0].astype(int) - source[index][0].astype(int))) < 3
    middle = (first + last) // 2
    blend = (source[first - 1][0].astype(int) + source[last + 1][0].astype(int)) / 2
    assert np.mean(np.abs(made[middle][0] - blend)) < np.mean(np.abs(made[middle][0] - source[middle][0]))


def test_repair_holds_the_nearest_undamaged_frame_where_damage_reaches_the_end(tmp_path):
    clean = render_clip(tmp_path / "clean.ts", size=(320, 176), frame_count=30, gop_frames=10, b_frames=2)
    data = bytearray(clean.read_bytes())
    packets = len(data) // TS_PACKET_BYTES
    damaged = tmp_path / "end.ts"
    zeros = bytes(TS_PACKET_BYTES - KEPT_HEADER_BYTES)
    for number in range(packets - packets // 4, packets, 5):  # the last quarter of the file
        start = number * TS_PACKET_BYTES
        if not data[start + 1] & 0x40:
            data[start + KEPT_HEADER_BYTES : start + TS_PACKET_BYTES] = zeros
    damaged.write_bytes(bytes(data))
    garbled = _garbled((clean, damaged))
    assert garbled and garbled[-1] == 29, garbled
    out = tmp_path / "fixed.mkv"
    assert main(["repair", str(damaged), "-o", str(out), "--model", "blend"]) == 0
    report = json.loads(sidecar_path(out).read_text())
    held = [fill for fill in report["fills"] if fill["held"]]
    assert held and held[-1]["last_output_frame"] == 29 and report["frames_held"] >= 1
    assert report["frames_written"] == 30
    frames = _images(out)
    last_good = held[-1]["before_source_frame"]
    assert all(np.array_equal(frames[i][0], frames[last_good][0]) for i in range(last_good, 30))


def test_retime_goes_on_across_the_damaged_frames_and_notes_them(tmp_path, streams, caplog):
    _, damaged = streams
    garbled = _garbled(streams)
    first, last = garbled[0], garbled[-1]
    out = tmp_path / "slow.mov"
    with caplog.at_level(logging.WARNING):
        assert main(["retime", str(damaged), "--speed", "0.5", "--model", "blend", "-o", str(out)]) == 0
    report = json.loads(sidecar_path(out).read_text())
    assert report["frames_written"] == 100 == probe(out).video_stream.frame_count
    notes = [n for n in report["notes"] if "damaged source frames" in n["note"]]
    assert len(notes) == 1, report["notes"]
    assert f"between source frames {first - 1} and {last + 1}" in notes[0]["note"]
    assert f"damaged source frames {first}-{last}" in notes[0]["note"]
    # every output frame on or between the damaged frames is made between their neighbours
    made = (notes[0]["first_output_frame"], notes[0]["last_output_frame"])
    assert made == (2 * (first - 1) + 1, 2 * (last + 1) - 1)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"source frames {first}-{last} are damaged" in w for w in warnings), warnings


def test_a_stream_damaged_beyond_use_is_refused_with_a_clear_error(tmp_path, streams, capsys):
    clean, _ = streams
    ruined = _damaged_copy(clean, tmp_path / "ruined.ts", span_bytes=None, every=1)
    for command in (["repair", str(ruined), "-o", str(tmp_path / "r.mov")],
                    ["retime", str(ruined), "--speed", "0.5", "-o", str(tmp_path / "s.mov")]):
        assert main([*command, "--model", "blend"]) == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert "without damage" in error and "ruined.ts" in error, error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ruined.ts"]


def _broken_packet_headers(clean: Path, damaged: Path, *, byte_count: int = 400) -> Path:
    """``clean`` with ``byte_count`` bytes in the middle overwritten by 0xFF: transport packet
    headers (sync byte, continuity counter) destroyed, as a dropout in a broadcast capture leaves
    them; FFmpeg's demuxer marks the packet it was reading damaged."""
    data = bytearray(clean.read_bytes())
    middle = len(data) // 2
    data[middle : middle + byte_count] = b"\xff" * byte_count
    damaged.write_bytes(bytes(data))
    return damaged


def test_a_packet_the_demuxer_marks_damaged_keeps_its_place_and_the_work_goes_on(tmp_path, streams, caplog):
    """Damage to transport packet headers made the demuxer mark a packet in the middle damaged, and
    `probe` (and so every command) refused the file: "a damaged packet in the middle of the video
    stream". The frame keeps its place in the index; its loss is found when reading."""
    clean, _ = streams
    broken = _broken_packet_headers(clean, tmp_path / "dropout.ts")
    with caplog.at_level(logging.WARNING):
        info = probe(broken).video_stream
    assert info.frame_count == probe(clean).video_stream.frame_count == 50
    assert not info.is_vfr and not info.truncated
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("damaged in the middle of the stream" in w and "dropout.ts" in w for w in warnings), warnings
    out = tmp_path / "slow.mov"
    assert main(["retime", str(broken), "--speed", "0.5", "--model", "blend", "-o", str(out)]) == 0
    report = json.loads(sidecar_path(out).read_text())
    assert report["frames_written"] == 100 == probe(out).video_stream.frame_count
    assert any("damaged source frames" in n["note"] for n in report["notes"]), report["notes"]
    fixed = tmp_path / "fixed.mov"
    assert main(["repair", str(broken), "--model", "blend", "-o", str(fixed)]) == 0
    assert probe(fixed).video_stream.frame_count == 50
    assert json.loads(sidecar_path(fixed).read_text())["damaged_frames"]
