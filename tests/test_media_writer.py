"""VideoWriter round trips for every codec, exact rates, audio copy, and atomic writes."""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from media_factory import RATES, frame_pattern, render_clip

from engine.errors import MediaWriteError, UnsupportedOptionError
from engine.media import FrameReader, VideoWriter, codec_choices, probe, write_video

CASES = [
    ("h264", ".mp4", 8, False, "yuv420p"),
    ("h264", ".mp4", 10, False, "yuv420p10le"),
    ("h265", ".mp4", 8, False, "yuv420p"),
    ("h265", ".mov", 10, False, "yuv420p10le"),
    ("prores", ".mov", 10, False, "yuv422p10le"),
    ("prores", ".mov", 10, True, None),
    ("ffv1", ".mkv", 8, False, "bgr0"),
    ("ffv1", ".mkv", 10, True, "yuva444p10le"),
    ("ffv1", ".mkv", 16, False, "yuv444p16le"),
]


def _images(count: int, *, bits: int = 8, alpha: bool = False):
    return (frame_pattern(n, bits=16 if bits > 8 else 8, alpha=alpha) for n in range(count))


@pytest.mark.parametrize(("codec", "suffix", "bits", "alpha", "pixel_format"), CASES)
def test_round_trip(tmp_path, codec, suffix, bits, alpha, pixel_format):
    out = write_video(
        tmp_path / f"out{suffix}",
        _images(12, bits=bits, alpha=alpha),
        rate=RATES["29.97"],
        codec=codec,
        bit_depth=bits,
        alpha=alpha,
    )
    video = probe(out).video_stream
    assert video.frame_count == 12
    assert video.frame_rate == Fraction(30000, 1001)
    assert video.bit_depth >= bits
    assert video.has_alpha is alpha
    if pixel_format is not None:
        assert video.pixel_format == pixel_format
    output = ("rgba64" if alpha else "rgb48") if bits > 8 else ("rgba" if alpha else "rgb24")
    with FrameReader(out, output=output) as reader:
        image = reader.read_frame(5).image
    expected = frame_pattern(5, bits=16 if bits > 8 else 8, alpha=alpha).astype(float)
    top = 65535 if bits > 8 else 255
    assert np.abs(image[:, :, :2] - expected[:, :, :2]).mean() / top < 0.03
    if alpha:
        assert abs(image[0, 0, 3] / top - 1) < 0.01 and abs(image[-1, 0, 3] / top - 1 / 3) < 0.01


def test_lossless_ffv1_is_exact(tmp_path):
    out = write_video(tmp_path / "lossless.mkv", _images(4), rate=25, codec="ffv1")
    with FrameReader(out) as reader:
        for frame in reader:
            np.testing.assert_array_equal(frame.image, frame_pattern(frame.index))


@pytest.mark.parametrize("name", ["23.976", "29.97", "240"])
def test_frame_times_stay_exact_in_mp4_and_mov(tmp_path, name):
    rate = RATES[name]
    for suffix in (".mp4", ".mov"):
        out = write_video(tmp_path / f"r{suffix}", _images(8), rate=rate, codec="h264")
        with FrameReader(out) as reader:
            assert [f.time_s for f in reader] == [n / rate for n in range(8)]


@pytest.mark.parametrize(
    ("bits", "alpha", "dtype", "channels"), [(8, False, np.uint8, 3), (16, True, np.uint16, 4)]
)
def test_png_sequence(tmp_path, bits, alpha, dtype, channels):
    folder = write_video(
        tmp_path / "shot",
        _images(3, bits=bits, alpha=alpha),
        rate=24,
        codec="png",
        bit_depth=bits,
        alpha=alpha,
    )
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["shot_000000.png", "shot_000001.png", "shot_000002.png"]
    image = cv2.imread(str(folder / names[1]), cv2.IMREAD_UNCHANGED)
    assert image.dtype == dtype and image.shape == (48, 64, channels)
    rgb = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if alpha else cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(rgb, frame_pattern(1, bits=bits, alpha=alpha))


def test_audio_is_copied_and_cut_to_a_range(tmp_path):
    source = render_clip(tmp_path / "src.mp4", rate=Fraction(25), frame_count=50, audio=True)
    whole = probe(write_video(tmp_path / "whole.mp4", _images(50), rate=25, audio_from=source))
    assert [a.codec for a in whole.audio] == ["aac"]
    assert abs(whole.audio[0].duration_s - 2) < Fraction(1, 20)
    part = probe(
        write_video(
            tmp_path / "part.mov",
            _images(50),
            rate=25,
            codec="prores",
            audio_from=source,
            audio_range_s=(Fraction(1, 2), Fraction(3, 2)),
        )
    )
    assert abs(part.audio[0].duration_s - 1) < Fraction(1, 20)
    assert part.video_stream.frame_count == 50


@pytest.mark.parametrize("suffix", [".mov", ".mp4", ".mkv"])
def test_copied_aac_keeps_its_priming_marked_and_the_picture_at_zero(tmp_path, suffix):
    """An AAC track starts with a packet before 0 (the encoder's priming, which the file marks to
    be skipped). .mov and .mp4 copy it and mark it again: the copy decodes to the very samples of
    its source (without it, the first samples came out differently). Matroska cannot mark it, so
    there it is left out and the first frame stays at 0."""
    source = render_clip(tmp_path / "src.mp4", rate=Fraction(25), frame_count=25, audio=True)
    with av.open(str(source)) as container:
        assert next(p for p in container.demux(audio=0) if p.size).pts < 0, "AAC should start before 0"
    with av.open(str(source)) as container:
        original = np.concatenate([frame.to_ndarray()[0] for frame in container.decode(audio=0)])
    codec = "ffv1" if suffix == ".mkv" else "h264"
    out = write_video(tmp_path / f"copy{suffix}", _images(25), rate=25, codec=codec, audio_from=source)
    with av.open(str(out)) as container:
        first_video = next(p for p in container.demux(video=0) if p.size)
        assert first_video.pts == 0
    with av.open(str(out)) as container:
        copied = np.concatenate([frame.to_ndarray()[0] for frame in container.decode(audio=0)])
    if suffix != ".mkv":
        assert copied.size == original.size and np.array_equal(copied, original)


def test_exception_mid_write_leaves_nothing(tmp_path):
    target = tmp_path / "clip.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(target, rate=25) as writer:
            writer.write(frame_pattern(0))
            raise RuntimeError("the render was cancelled")
    assert list(tmp_path.iterdir()) == []


def test_existing_destination_is_kept_on_failure(tmp_path):
    target = tmp_path / "clip.mov"
    target.write_bytes(b"the editor's previous render")
    with pytest.raises(UnsupportedOptionError, match="64x48"):
        with VideoWriter(target, rate=25, codec="prores", bit_depth=10) as writer:
            writer.write(frame_pattern(0))
            writer.write(frame_pattern(1, width=32, height=24))
    assert target.read_bytes() == b"the editor's previous render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mov"]


def test_png_folder_failure_keeps_old_folder(tmp_path):
    folder = tmp_path / "shot"
    folder.mkdir()
    (folder / "old.png").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with VideoWriter(folder, rate=24, codec="png") as writer:
            writer.write(frame_pattern(0))
            raise RuntimeError("cancelled")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot"]
    assert [p.name for p in folder.iterdir()] == ["old.png"]


def test_writing_no_frames_is_an_error_and_leaves_nothing(tmp_path):
    with pytest.raises(MediaWriteError, match="no frames"):
        with VideoWriter(tmp_path / "empty.mp4", rate=25):
            pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(codec="vp9"), "use one of: h264, h265, prores, ffv1, png"),
        (dict(codec="h264", alpha=True), "codecs with alpha: prores, ffv1, png"),
        (dict(codec="prores", bit_depth=8), "bit depths: 10"),
        (dict(codec="h264", bit_depth=12), "bit depths: 8, 10"),
        (dict(codec="prores", quality=9), "codecs with one: h264, h265"),
        (dict(rate=29.97), "is a float"),
        (dict(rate=0), "above zero"),
    ],
)
def test_bad_choices_are_refused_before_writing(tmp_path, options, message):
    settings = dict(rate=25, codec="h264")
    settings.update(options)
    suffix = ".mov" if settings["codec"] == "prores" else ".mp4"
    with pytest.raises(UnsupportedOptionError, match=message):
        VideoWriter(tmp_path / f"x{suffix}", **settings)
    assert list(tmp_path.iterdir()) == []


def test_container_must_fit_the_codec(tmp_path):
    with pytest.raises(UnsupportedOptionError, match="use: .mov"):
        VideoWriter(tmp_path / "x.mp4", rate=25, codec="prores")
    with pytest.raises(UnsupportedOptionError, match="folder"):
        VideoWriter(tmp_path / "x.png", rate=25, codec="png")


def test_codec_choices_lists_this_build():
    assert set(codec_choices()) == {"h264", "h265", "prores", "ffv1", "png"}


@pytest.mark.parametrize(("suffix", "codec"), [(".mp4", "h264"), (".mov", "h264"), (".mov", "prores")])
def test_display_tags_carried_from_the_source(tmp_path, suffix, codec):
    from engine.media.timecode import start_timecode
    from engine.media.writer import CarriedTags

    carried = CarriedTags(
        rotation_deg=90,
        sample_aspect_ratio=Fraction(4, 3),
        color_primaries=9,
        color_transfer=18,
        timecode="01:00:10:00",
    )
    images = [frame_pattern(n, 64, 48) for n in range(3)]
    out = write_video(tmp_path / f"tagged{suffix}", images, rate=25, codec=codec, carried=carried)
    info = probe(out)
    video = info.video_stream
    assert video.rotation_deg == 90
    assert video.sample_aspect_ratio == Fraction(4, 3)
    assert (video.color_primaries, video.color_transfer) == (9, 18)  # BT.2020, HLG
    assert start_timecode(info) == "01:00:10:00"
    plain = probe(write_video(tmp_path / f"plain{suffix}", images, rate=25, codec=codec)).video_stream
    assert (plain.rotation_deg, plain.color_primaries, plain.color_transfer) == (0, 1, 1)


def test_ffv1_in_mkv_keeps_colour_tags_and_says_it_cannot_keep_the_pixel_aspect(tmp_path, caplog):
    """8-bit FFV1 stores RGB: the primaries and transfer were left out of it (read as unknown)."""
    from engine.media.writer import CarriedTags

    carried = CarriedTags(sample_aspect_ratio=Fraction(32, 27), color_primaries=9, color_transfer=18)
    images = [frame_pattern(n, 64, 48) for n in range(3)]
    out = write_video(tmp_path / "tagged.mkv", images, rate=25, codec="ffv1", carried=carried)
    video = probe(out).video_stream
    assert (video.color_primaries, video.color_transfer) == (9, 18)
    assert "cannot" in caplog.text and "32/27" in caplog.text
    with FrameReader(out) as reader:
        np.testing.assert_array_equal(reader.read_frame(2).image, images[2])
