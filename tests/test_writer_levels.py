"""Levels: what ``VideoWriter`` writes keeps the levels of the RGB it is given, and a frame read
from Y'CbCr video and written back keeps the source's levels.

Measured on the planes of lossless files (H.264 at CRF 0 for 8-bit, FFV1 for 10-bit), against the
exact BT.601/BT.709 arithmetic written out here, never through another RGB conversion (one that
rounds down would lend its own darkening to the output)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from engine.media import FrameReader, VideoWriter

KR_KB = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114)}
COLORSPACE_TAG = {"bt709": 1, "bt601": 6}
RANGE_TAG = {"limited": 1, "full": 2}


def _smooth_colours(height: int = 96, width: int = 192, seed: int = 1) -> np.ndarray:
    """An RGB picture of gently changing colours (a random walk along each row), every value used."""
    steps = np.random.default_rng(seed).integers(-2, 3, (height, width, 3))
    walk = np.cumsum(steps, axis=1) + np.arange(height)[:, None, None] * 2 + 30
    return np.clip(walk, 0, 255).astype(np.uint8)


def _exact_ycbcr(rgb: np.ndarray, matrix: str = "bt709", bits: int = 8) -> list[np.ndarray]:
    """Limited-range Y', Cb, Cr of ``rgb`` (0-255), unrounded, in ``bits``-bit code values."""
    kr, kb = KR_KB[matrix]
    x = rgb.astype(np.float64) / 255
    y = kr * x[..., 0] + (1 - kr - kb) * x[..., 1] + kb * x[..., 2]
    scale = 1 << (bits - 8)
    cb = (x[..., 2] - y) / (2 * (1 - kb))
    cr = (x[..., 0] - y) / (2 * (1 - kr))
    return [(16 + 219 * y) * scale, (128 + 224 * cb) * scale, (128 + 224 * cr) * scale]


def _exact_rgb(planes: list[np.ndarray], matrix: str, full_range: bool, bits: int = 8) -> np.ndarray:
    """RGB (0-255, unrounded, unclipped) of Y'CbCr ``planes``, chroma repeated to the luma's size."""
    y, cb, cr = (plane.astype(np.float64) / (1 << (bits - 8)) for plane in planes)
    rows, cols = y.shape[0] // cb.shape[0], y.shape[1] // cb.shape[1]
    cb, cr = (np.repeat(np.repeat(c, rows, 0), cols, 1) for c in (cb, cr))
    if full_range:
        y, cb, cr = y / 255, (cb - 128) / 255, (cr - 128) / 255
    else:
        y, cb, cr = (y - 16) / 219, (cb - 128) / 224, (cr - 128) / 224
    kr, kb = KR_KB[matrix]
    red = y + 2 * (1 - kr) * cr
    blue = y + 2 * (1 - kb) * cb
    green = (y - kr * red - kb * blue) / (1 - kr - kb)
    return np.stack([red, green, blue], axis=-1) * 255


def _planes(path: Path) -> list[list[np.ndarray]]:
    """The Y', Cb, Cr planes of every frame of ``path``, as decoded (no conversion)."""
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            wide = frame.format.components[0].bits > 8
            dtype = np.uint16 if wide else np.uint8
            planes = []
            for plane in frame.planes[:3]:
                row_items = plane.line_size // np.dtype(dtype).itemsize
                data = np.frombuffer(plane, dtype).reshape(plane.height, row_items)
                planes.append(data[:, : plane.width].astype(np.float64))
            frames.append(planes)
    return frames


def _box_average(plane: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows, cols = plane.shape[0] // shape[0], plane.shape[1] // shape[1]
    return plane.reshape(shape[0], rows, shape[1], cols).mean(axis=(1, 3))


def test_eight_bit_rgb_is_written_at_its_own_levels(tmp_path):
    """Luma and chroma are the exact values rounded (chroma was 0.04 of a level low on average with
    swscale's fast rounding)."""
    pictures = [_smooth_colours(seed=seed) for seed in range(3)]
    pictures.append(np.repeat(np.repeat(np.arange(256, dtype=np.uint8)[None, :192], 96, 0)[..., None], 3, 2))
    out = tmp_path / "levels.mkv"
    with VideoWriter(out, rate=25, codec="h264", quality=0) as writer:  # CRF 0: lossless
        for picture in pictures:
            writer.write(picture)
    luma_errors, chroma_errors = [], []
    for picture, (y, cb, cr) in zip(pictures, _planes(out), strict=True):
        exact_y, exact_cb, exact_cr = _exact_ycbcr(picture)
        luma_errors.append(y - exact_y)
        chroma_errors += [cb - _box_average(exact_cb, cb.shape), cr - _box_average(exact_cr, cr.shape)]
    luma = np.concatenate([e.ravel() for e in luma_errors])
    chroma = np.concatenate([e.ravel() for e in chroma_errors])
    assert np.abs(luma).max() <= 0.52 and abs(luma.mean()) < 0.03
    assert abs(chroma.mean()) < 0.01, f"chroma written {chroma.mean():+.3f} of a level off on average"


def _lossless_source(path: Path, matrix: str, level_range: str, bits: int = 8) -> None:
    """A lossless 4:2:0 clip, tagged ``matrix`` and ``level_range``: a grey ramp over the whole
    range above, gentle colours (chroma a slow wave along each row, the same down each column, so
    that any chroma filter finds the values at the chroma sites) below. Made here as Y'CbCr,
    never converted by FFmpeg."""
    height, width = 64, 256
    top = 255 if level_range == "full" else 235
    bottom = 0 if level_range == "full" else 16
    luma = np.repeat(np.linspace(bottom, top - 1, width)[None, :], height, 0)  # top in the last frame
    luma[32:, :] = luma[32:, :].clip(bottom + 50, top - 50)  # the colours stay inside the gamut
    wave = 2 * np.pi * np.arange(width // 2) / 64
    chroma = np.full((height // 2, width // 2, 2), 128.0)
    chroma[16:, :, 0] += 20 * np.sin(wave)
    chroma[16:, :, 1] += 20 * np.cos(wave)
    scale = 1 << (bits - 8)
    planar = np.concatenate([luma.reshape(-1), chroma[..., 0].reshape(-1), chroma[..., 1].reshape(-1)])
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p10le" if bits > 8 else "yuv420p"
        stream.options = {"qp": "0", "preset": "ultrafast"}
        stream.codec_context.colorspace = COLORSPACE_TAG[matrix]
        stream.codec_context.color_range = RANGE_TAG[level_range]
        stream.codec_context.color_primaries = COLORSPACE_TAG[matrix]
        stream.codec_context.color_trc = COLORSPACE_TAG[matrix]
        for index in range(3):  # each frame a little brighter, so every code value is met
            data = np.round((planar + index / 3) * scale).astype(np.uint16 if bits > 8 else np.uint8)
            frame = av.VideoFrame.from_ndarray(data.reshape(height * 3 // 2, width), format=stream.pix_fmt)
            frame.colorspace = COLORSPACE_TAG[matrix]
            frame.color_range = RANGE_TAG[level_range]
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


GREY_ROWS = slice(0, 24)
COLOUR_ROWS = slice(40, 64)
"""Rows of ``_lossless_source`` away from where grey meets colour (rows 32 and 33 there, where
chroma jumps and any chroma filter makes colours outside the gamut, clipped in RGB)."""


def test_ten_bit_video_read_and_written_again_keeps_its_levels(tmp_path):
    """16-bit RGB is on the scale the reader gives 10-bit video (white 940 read as 65283): the
    writer takes it back to the same codes."""
    source = tmp_path / "ten.mp4"
    _lossless_source(source, "bt709", "limited", bits=10)
    out = tmp_path / "ten.mkv"
    with (
        FrameReader(source, output="rgb48") as reader,
        VideoWriter(out, rate=25, codec="ffv1", bit_depth=10) as writer,
    ):
        for frame in reader.frames():
            writer.write(frame.image)
    for (y, _, _), (y_source, _, _) in zip(_planes(out), _planes(source), strict=True):
        for rows in (GREY_ROWS, COLOUR_ROWS):
            assert np.abs(y[rows] - y_source[rows]).max() <= 1


@pytest.mark.parametrize(
    ("matrix", "level_range"), [("bt709", "limited"), ("bt601", "limited"), ("bt709", "full")]
)
def test_eight_bit_video_read_and_written_again_keeps_its_levels(tmp_path, matrix, level_range):
    """Compared in RGB, exactly converted from each file's own planes at the chroma sites: grey
    within a level on average and nearly everywhere (a full-range source's levels fall between
    limited-range codes), colours within a third of a level on average (chroma is filtered once
    each way). Before the reader converted exactly (BT.709 limited): grey -0.82 on average, 10 % of
    grey pixels more than 1.2 levels off, colours -1.40; after that -0.003, 0.2 %, -0.25 (the
    writer's chroma rounding); with the writer rounding exactly too, +0.000, 0 %, +0.01."""
    source = tmp_path / f"{matrix}_{level_range}.mp4"
    _lossless_source(source, matrix, level_range)
    out = tmp_path / "again.mkv"
    with (
        FrameReader(source) as reader,
        VideoWriter(out, rate=Fraction(25), codec="h264", quality=0) as writer,
    ):
        for frame in reader.frames():
            writer.write(frame.image)
    grey, colour = [], []
    for planes, planes_source in zip(_planes(out), _planes(source), strict=True):
        written = _exact_rgb(planes, "bt709", full_range=False)
        wanted = _exact_rgb(planes_source, matrix, full_range=level_range == "full")
        error = written - wanted
        grey.append(error[GREY_ROWS][::2, ::2].ravel())
        colour.append(error[COLOUR_ROWS][::2, ::2].ravel())
    grey, colour = np.concatenate(grey), np.concatenate(colour)
    assert abs(grey.mean()) < 0.1, f"grey written {grey.mean():+.2f} of a level off on average"
    # (single pixels beside sharp colour edges stay up to 2 levels off: swscale's chroma filter)
    assert np.mean(np.abs(grey) > 1.2) < 0.01, "grey more than a level off after one conversion each way"
    # colours: +0.01 (BT.709), +0.025 (BT.601), +0.012 (full range); -0.25, -0.17, -0.18 when the
    # writer took swscale's fast rounding
    assert abs(colour.mean()) < 0.1, f"colours written {colour.mean():+.2f} of a level off on average"


def _ten_bit_plate(path: Path) -> np.ndarray:
    """A 10-bit RGB DPX frame (as scanners and VFX write plates): a grey ramp over every code
    above, gentle colours below; returned as the 16-bit RGB a reader gives (white 65535)."""
    codes = np.repeat(np.arange(1024)[None, :], 64, 0)
    picture = np.repeat(codes[..., None], 3, 2)
    colours = (_smooth_colours(32, 1024).astype(np.int64) * 4)  # 10-bit codes of gentle colours
    picture[32:] = colours
    wide = ((picture << 6) | (picture >> 4)).astype(np.uint16)  # 10 bits onto 16, white at 65535
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("dpx", rate=1)
        stream.width, stream.height = 1024, 64
        stream.pix_fmt = "gbrp10le"
        stream.options = {"update": "1"}
        frame = av.VideoFrame.from_ndarray(wide, format="rgb48le").reformat(format="gbrp10le")
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return wide


def test_a_ten_bit_rgb_plate_is_written_at_its_own_levels(tmp_path):
    """A 10-bit DPX plate written as 10-bit video: its white was written at Y' 943, above white,
    and every grey 1.7 codes bright on average, since swscale takes 16-bit RGB white at 65280. Now
    Y' is the exact BT.709 value (within 1.3 codes, on average 0) and white is 940."""
    plate = tmp_path / "plate.dpx"
    wide = _ten_bit_plate(plate)
    with FrameReader(plate, output="rgb48") as reader:
        image = reader.read_frame(0).image
    np.testing.assert_array_equal(image, wide)  # an RGB source is read as it is
    out = tmp_path / "plate.mkv"
    with VideoWriter(out, rate=Fraction(24), codec="h264", bit_depth=10, quality=0) as writer:
        writer.write(image)
    (y, cb, cr), = _planes(out)
    exact_y, _, _ = _exact_ycbcr(wide[:32].astype(np.float64) / 65535 * 255, bits=10)
    error = y[:32] - exact_y
    assert abs(error.mean()) < 0.05, f"grey written {error.mean():+.2f} codes off on average"
    assert np.abs(error).max() < 1.3
    assert y[:32, -1].max() == 940
    exact_colour = _exact_ycbcr(wide[32:].astype(np.float64) / 65535 * 255, bits=10)
    assert abs((y[32:] - exact_colour[0]).mean()) < 0.05
    for written, exact in ((cb, exact_colour[1]), (cr, exact_colour[2])):  # -0.19 and +0.08 codes
        assert abs((written[16:] - _box_average(exact, written[16:].shape)).mean()) < 0.25


def _ten_bit_grey_video(path: Path) -> np.ndarray:
    """One lossless 10-bit frame: Y' 64 (black) to 940 (white) along each row, neutral chroma;
    returns its Y' plane."""
    width, height = 880, 16
    luma = np.repeat(np.clip(np.arange(62, 62 + width), 64, 940)[None, :], height, 0).astype(np.uint16)
    chroma = np.full((height // 2, width // 2), 512, np.uint16)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p10le"
        stream.codec_context.colorspace = stream.codec_context.color_primaries = 1
        stream.codec_context.color_trc = 1
        stream.codec_context.color_range = 1
        frame = av.VideoFrame(width, height, "yuv420p10le")
        for plane, values in zip(frame.planes, (luma, chroma, chroma), strict=True):
            rows = np.zeros((plane.height, plane.line_size // 2), np.uint16)
            rows[:, : values.shape[1]] = values
            plane.update(rows.tobytes())
        frame.colorspace, frame.color_range = 1, 1
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return luma


def test_ten_bit_video_reads_with_white_at_full_scale(tmp_path):
    """16-bit RGB read from 10-bit video has white (Y' 940) at 65535 and black at 0, as an RGB
    source has: white read 65283 (0.4 % dark in a 16-bit PNG, and against a DPX plate)."""
    source = tmp_path / "grey.mkv"
    luma = _ten_bit_grey_video(source)
    with FrameReader(source, output="rgb48") as reader:
        image = reader.read_frame(0).image
    grey = image[..., 1].astype(np.float64)
    wanted = (luma.astype(np.float64) - 64) / 876 * 65535
    assert np.abs(grey - wanted).max() < 40  # within a sixteenth of a 10-bit code
    assert np.all(grey[luma == 940] >= 65533) and np.all(grey[luma == 64] <= 2)
    png = tmp_path / "frames"
    with VideoWriter(png, rate=Fraction(25), codec="png", bit_depth=16) as writer:
        writer.write(image)
    with av.open(str(next(png.iterdir()))) as container:
        written = next(container.decode(video=0)).to_ndarray()
    assert written[..., 1][luma == 940].min() >= 65533
    again = tmp_path / "again.mkv"
    with VideoWriter(again, rate=Fraction(25), codec="ffv1", bit_depth=10) as writer:
        writer.write(image)
    (y, _, _), = _planes(again)
    assert np.abs(y - luma).max() <= 1 and y[luma == 940].min() == 940
