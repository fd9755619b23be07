"""``chronoscope interpolate`` after the s18 audit: a JPEG's EXIF orientation is applied as
viewers apply it, RGBA frames written as JPEG are refused (alpha would be lost), and a time that
would be named t=0.0 is refused."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from engine.cli import EXIT_USER_ERROR, main
from engine.interp.images import read_image


def jpeg_with_orientation(path: Path, bgr: np.ndarray, orientation: int) -> Path:
    """A JPEG with an EXIF APP1 segment holding only the orientation tag (0x0112), as a phone
    writes a picture taken held upright: stored sideways, turned by the viewer."""
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    body = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    data = encoded.tobytes()
    path.write_bytes(data[:2] + app1 + data[2:])
    return path


def test_exif_orientation_of_a_jpeg_is_applied(tmp_path, capsys):
    stored = np.zeros((40, 80, 3), np.uint8)  # 80 wide, 40 high as stored
    stored[:, :40] = (0, 0, 255)  # left half red (BGR)
    frames = [jpeg_with_orientation(tmp_path / f"f{i}.jpg", stored, 6) for i in (0, 1)]
    image = read_image(frames[0])
    assert image.pixels.shape == (80, 40, 3), "orientation 6: turned 90 degrees clockwise, upright"
    assert image.pixels[5, 20, 0] > 200 and image.pixels[75, 20, 0] < 50  # red on top now
    output = tmp_path / "mid.png"
    assert main(["interpolate", *map(str, frames), "--model", "blend", "-o", str(output)]) == 0
    assert cv2.imread(str(output), cv2.IMREAD_UNCHANGED).shape == (80, 40, 3)
    capsys.readouterr()


def test_alpha_is_kept_and_16_bit_too_where_nothing_turns_them(tmp_path):
    rgba = np.zeros((8, 12, 4), np.uint16)
    rgba[..., 3] = 40000
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    image = read_image(tmp_path / "a.png")
    assert image.pixels.dtype == np.uint16 and image.pixels.shape == (8, 12, 4)
    grey = np.arange(96, dtype=np.uint16).reshape(8, 12) * 600
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    image = read_image(tmp_path / "g.png")
    assert image.grey and image.pixels.dtype == np.uint16 and np.array_equal(image.pixels[..., 0], grey)


def test_rgba_frames_written_as_jpeg_are_refused(tmp_path, capsys):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 3] = 128
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), rgba)
    argv = ["interpolate", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--model", "blend"]
    assert main([*argv, "-o", str(tmp_path / "out.jpg")]) == EXIT_USER_ERROR
    assert "out.jpg: .jpg holds no alpha channel and the frames have one; use .png or .tif" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "out.jpg").exists()


def test_a_time_that_would_be_named_zero_is_refused(tmp_path, capsys):
    frame = np.zeros((16, 16, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), frame)
    argv = ["interpolate", str(tmp_path / "a.png"), str(tmp_path / "a.png"), "--model", "blend"]
    assert main([*argv, "--t", "1e-9", "-o", str(tmp_path / "t_{t}.png")]) == EXIT_USER_ERROR
    assert "t = 1e-9 is within 0.0000005 of 0" in capsys.readouterr().err
    assert main([*argv, "--t", "0.000001", "-o", str(tmp_path / "t_{t}.png")]) == 0
    assert (tmp_path / "t_0.000001.png").is_file()
