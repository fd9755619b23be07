"""An image sequence with a missing frame file: a dropped frame. `chronoscope repair` fills it as a
timestamp gap; `chronoscope retime` takes a range on either side of the hole and refuses one across
it, saying what to do. Before, both refused the whole sequence ("has a hole: frame 1010 is missing
... cut the clip before the hole"), even for `retime --out 8`, which ends before the hole, because
the hole was looked for before --in/--out were applied."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from engine.cli import main
from engine.media import FrameReader, probe
from engine.retime import sidecar_path

SIZE = (96, 64)
MISSING = 1010


def _pan(index: int) -> np.ndarray:
    """Frame ``index`` of a slow pan over a blurred texture: 1.5 px right per frame."""
    rng = np.random.default_rng(5)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (SIZE[1] * 2, SIZE[0] * 3, 3), dtype=np.uint8), (0, 0), 2)
    move = np.float32([[1, 0, -20 - 1.5 * index], [0, 1, -10]])
    return cv2.warpAffine(texture, move, SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _write_png(path: Path, picture: np.ndarray) -> None:
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "rgb24"
        stream.options = {"update": "1"}
        for packet in [*stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")), *stream.encode()]:
            container.mux(packet)


@pytest.fixture
def plate(tmp_path) -> tuple[Path, list[np.ndarray]]:
    """A001.1001.png .. A001.1020.png without A001.1010.png (frame 9, counted from 0); the pictures
    of all 20, the missing one included."""
    folder = tmp_path / "plate"
    folder.mkdir()
    pictures = [_pan(k) for k in range(20)]
    for k, picture in enumerate(pictures):
        if 1001 + k != MISSING:
            _write_png(folder / f"A001.{1001 + k}.png", picture)
    return folder, pictures


def _frames(path: Path) -> list[np.ndarray]:
    with FrameReader(path) as reader:
        return [frame.image for frame in reader.frames()]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-9)))


def test_repair_fills_a_missing_frame_as_a_timestamp_gap(tmp_path, plate, capsys):
    folder, pictures = plate
    out = tmp_path / "filled.mkv"
    command = ["repair", str(folder / "A001.1001.png"), "--sequence-rate", "24", "--model", "flow"]
    assert main([*command, "--codec", "ffv1", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(sidecar_path(out).read_text())
    assert (report["source_frames"], report["output_frames"], report["frames_written"]) == (19, 20, 20)
    (fill,) = report["fills"]
    assert (fill["kind"], fill["first_output_frame"], fill["last_output_frame"]) == ("timestamp_gap", 9, 9)
    assert "A001.1010.png" in " ".join(report["grid_notes"]) and "A001.1010.png" in printed
    frames = _frames(out)
    assert len(frames) == 20 and probe(out).video_stream.frame_rate == 24
    for k in (0, 8, 10, 19):
        np.testing.assert_array_equal(frames[k], pictures[k])  # the frames there, unchanged
    nearest = max(_psnr(pictures[8], pictures[9]), _psnr(pictures[10], pictures[9]))
    assert _psnr(frames[9], pictures[9]) > nearest + 3  # made, not a neighbour repeated

    # named from a frame after the hole, and analysed only
    after_the_hole = str(folder / "A001.1015.png")
    assert main(["repair", after_the_hole, "--sequence-rate", "24", "--dry-run", "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert (planned["output_frames"], planned["frames_to_synthesize"]) == (20, 1)


def test_retime_takes_a_range_on_either_side_of_the_hole(tmp_path, plate, capsys):
    folder, pictures = plate
    frame = str(folder / "A001.1001.png")
    before = tmp_path / "before.mkv"
    common = ["--sequence-rate", "24", "--model", "blend", "--codec", "ffv1"]
    assert main(["retime", frame, "--speed", "1/2", "--out", "8", *common, "-o", str(before)]) == 0
    frames = _frames(before)
    assert len(frames) == 16
    np.testing.assert_array_equal(frames[14], pictures[7])
    after = tmp_path / "after.mkv"
    ranged = ["--in", "12", "--out", "16"]
    assert main(["retime", frame, "--speed", "1/2", *ranged, *common, "-o", str(after)]) == 0
    frames = _frames(after)
    assert len(frames) == 8
    np.testing.assert_array_equal(frames[0], pictures[12])
    np.testing.assert_array_equal(frames[6], pictures[15])
    assert json.loads(sidecar_path(after).read_text())["source_range"] == [12, 16]
    tail = tmp_path / "tail.mkv"
    assert main(["retime", frame, "--speed", "1", "--in", "10", *common, "-o", str(tail)]) == 0
    frames = _frames(tail)
    assert len(frames) == 10
    np.testing.assert_array_equal(frames[0], pictures[10])


def test_retime_across_the_hole_is_refused_saying_what_to_do(tmp_path, plate, capsys):
    folder, _ = plate
    frame = str(folder / "A001.1001.png")
    out = tmp_path / "slow.mov"
    for extra in ([], ["--in", "5", "--out", "15"]):
        assert main(["retime", frame, "--sequence-rate", "24", "--speed", "1/2", *extra, "-o", str(out)]) == 2
        error = capsys.readouterr().err
        assert "lacks A001.1010.png: frame 9 (counted from its first, 1001, as 0)" in error, error
        assert "--out 9" in error and "--in 10" in error and "chronoscope repair" in error
    assert not out.exists()
