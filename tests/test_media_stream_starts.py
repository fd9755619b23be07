"""Streams that do not start cleanly: a transport stream cut mid-GOP (a broadcast capture), an
open-GOP H.264 clip cut without re-encoding, and cover art beside the video.

The clips are rendered with the ffmpeg command (PyAV cannot make a mid-GOP cut or an open GOP);
these tests skip where it is missing. The expected frame counts are what ffmpeg itself decodes.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from engine.errors import CorruptMediaError, NotVideoError, UnsupportedOptionError
from engine.media import FrameReader, probe
from engine.repair import repair_clip
from engine.retime import retime_clip

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None, reason="needs the ffmpeg command to cut streams mid-GOP"
)

RATE = 30
FLASH_FRAME = 75  # all white, while a 1 kHz beep sounds (2.5 s to 2.55 s)
OPEN_GOP_X264 = "open-gop=1:bframes=3:keyint=25:min-keyint=25:scenecut=0"


def _ffmpeg(*arguments: str | Path) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, arguments)], check=True)


def _tail_from_a_third(source: Path, destination: Path) -> Path:
    """The last two thirds of a transport stream, cut on a 188-byte packet boundary: what a
    capture that starts mid-broadcast, or a TS cut anywhere, looks like."""
    data = source.read_bytes()
    destination.write_bytes(data[(len(data) // 3 // 188) * 188 :])
    return destination


def _decoded_by_ffmpeg(path: Path) -> list[int]:
    """The pts of every frame FFmpeg decodes, as ffmpeg does it (no strict error checks)."""
    with av.open(str(path)) as container:
        return [frame.pts for frame in container.decode(video=0)]


@pytest.fixture(scope="module")
def mid_gop_ts(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("midgop")
    flash = f"drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='between(n,{FLASH_FRAME},{FLASH_FRAME})'"
    beep = "volume=enable='not(between(t,2.5,2.55))':volume=0"
    full = folder / "full.ts"
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s=160x120:r={RATE}:d=4,{flash}",
        "-f", "lavfi", "-i", f"sine=f=1000:sample_rate=48000:d=4,{beep}",
        "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bsf:v", "dump_extra=freq=keyframe",
        "-c:a", "aac", "-f", "mpegts", full,
    )  # fmt: skip
    return _tail_from_a_third(full, folder / "mid.ts")


@pytest.fixture(scope="module")
def open_gop(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("opengop")
    source = folder / "source.mkv"
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s=160x120:r={RATE}:d=4", "-f", "lavfi", "-i", "sine=d=4",
        "-c:v", "libx264", "-x264-params", OPEN_GOP_X264, "-c:a", "aac", source,
    )  # fmt: skip
    clips = {"source": source}
    for suffix in ("mkv", "mp4"):
        clips[suffix] = folder / f"cut.{suffix}"
        _ffmpeg("-ss", "1.1", "-i", source, "-c", "copy", clips[suffix])
    full_ts = folder / "full.ts"
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s=160x120:r={RATE}:d=4", "-c:v", "libx264",
        "-x264-params", OPEN_GOP_X264, "-bsf:v", "dump_extra=freq=keyframe", "-f", "mpegts", full_ts,
    )  # fmt: skip
    clips["ts"] = _tail_from_a_third(full_ts, folder / "mid.ts")
    return clips


def _flash_s(path: Path) -> Fraction:
    """Time of the first all-white frame, in the container's timeline."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.to_ndarray(format="gray").mean() > 200:
                return frame.pts * stream.time_base
    raise AssertionError(f"no flash frame in {path}")


def _beep_s(path: Path) -> Fraction:
    """Time of the first loud audio sample, in the container's timeline."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            samples = np.abs(frame.to_ndarray()).max(axis=0)
            loud = np.flatnonzero(samples > 0.05)
            if loud.size:
                return frame.pts * stream.time_base + Fraction(int(loud[0]), frame.sample_rate)
    raise AssertionError(f"no beep in {path}")


# -- a transport stream cut mid-GOP ------------------------------------------------------------


def test_mid_gop_start_counts_only_the_frames_a_decoder_can_show(mid_gop_ts, caplog):
    decoded = _decoded_by_ffmpeg(mid_gop_ts)
    with caplog.at_level(logging.WARNING):
        video = probe(mid_gop_ts).video_stream
    assert video.frame_count == len(decoded)
    assert video.leading_frames_left_out > 0
    assert f"{video.leading_frames_left_out} frames before its first keyframe" in caplog.text
    assert video.start_pts == decoded[0]
    assert video.start_s == decoded[0] * video.time_base


def test_mid_gop_start_reads_and_seeks_by_the_same_numbers(mid_gop_ts, caplog):
    decoded = _decoded_by_ffmpeg(mid_gop_ts)
    with FrameReader(mid_gop_ts) as reader:
        frames = list(reader)
        assert [frame.index for frame in frames] == list(range(len(decoded)))
        assert [frame.pts for frame in frames] == decoded
        for index in (1, 5, len(decoded) // 2, len(decoded) - 1):
            again = reader.read_frame(index)
            assert again.pts == decoded[index]
            assert np.array_equal(again.image, frames[index].image)
    assert "landed past it" not in caplog.text


def test_mid_gop_start_repair_keeps_picture_and_sound_in_sync(mid_gop_ts, tmp_path):
    source_offset_s = _beep_s(mid_gop_ts) - _flash_s(mid_gop_ts)
    # jumps="report": testsrc2's moving parts can read as frame jumps; this test is about timing
    report = repair_clip(mid_gop_ts, tmp_path / "repaired.mov", model="flow", jumps="report")
    output = tmp_path / "repaired.mov"
    frames = probe(output).video_stream.frame_count
    assert frames == len(_decoded_by_ffmpeg(mid_gop_ts)), report
    offset_s = _beep_s(output) - _flash_s(output)
    assert abs(offset_s - source_offset_s) < Fraction(1, RATE), (float(offset_s), float(source_offset_s))


def test_mid_gop_start_retimes(mid_gop_ts, tmp_path):
    output = tmp_path / "slow.mov"
    retime_clip(mid_gop_ts, output, speed=Fraction(1, 2), model="flow")
    assert probe(output).video_stream.frame_count == 2 * len(_decoded_by_ffmpeg(mid_gop_ts))


# -- an open-GOP clip cut without re-encoding ---------------------------------------------------


@pytest.mark.parametrize("kind", ["mkv", "mp4", "ts"])
def test_open_gop_cut_reads_strictly_as_ffmpeg_decodes(open_gop, kind, caplog):
    path = open_gop[kind]
    decoded = _decoded_by_ffmpeg(path)
    assert probe(path).video_stream.frame_count == len(decoded)
    with FrameReader(path) as reader:
        frames = list(reader)
        assert [frame.pts for frame in frames] == decoded
        middle = len(decoded) // 2
        assert np.array_equal(reader.read_frame(middle).image, frames[middle].image)
    assert "open-GOP video" in caplog.text


def test_open_gop_cut_pictures_match_the_uncut_source(open_gop):
    with FrameReader(open_gop["source"]) as reader:
        source = [frame.image for frame in reader]
    with FrameReader(open_gop["mkv"]) as reader:
        cut = [frame.image for frame in reader]
    offset = next(k for k in range(len(source)) if np.array_equal(source[k], cut[0]))
    for index, image in enumerate(cut):
        assert np.array_equal(image, source[offset + index]), index


def test_open_gop_source_seeks_strictly(open_gop):
    with FrameReader(open_gop["source"]) as reader:
        frames = [frame.image for frame in reader]
    for index in (30, 55, 80):
        with FrameReader(open_gop["source"]) as reader:
            assert np.array_equal(reader.read_frame(index).image, frames[index])


def test_damage_in_an_open_gop_stream_still_stops_a_strict_reader(open_gop, tmp_path):
    """A seek to an open-GOP keyframe makes the decoder complain (ignored, the stream is sound
    there); damage further on must still stop a strict reader, and be named where it is."""
    clip = tmp_path / "open-gop.mp4"
    _ffmpeg("-i", open_gop["source"], "-map", "0:v", "-c", "copy", "-movflags", "+faststart", clip)
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4000] = np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    with FrameReader(damaged) as reader:
        with pytest.raises(CorruptMediaError, match="decoding failed near frame") as caught:
            for _ in reader.frames(30):  # keyframe 25 is an open-GOP I frame
                pass
    near = int(str(caught.value).split("near frame ")[1].split(":")[0])
    assert near >= 50, caught.value  # the damage, in the middle of the file, not the seek


# -- cover art ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cover_art(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cover")
    picture = folder / "cover.png"
    _ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x64", "-frames:v", "1", picture)
    clip = folder / "clip.mp4"
    _ffmpeg(
        "-i", picture, "-f", "lavfi", "-i", f"testsrc2=s=160x120:r={RATE}:d=1",
        "-f", "lavfi", "-i", "sine=d=1",
        "-map", "0", "-map", "1", "-map", "2", "-c:v:0", "png", "-disposition:v:0", "attached_pic",
        "-c:v:1", "libx264", "-c:a", "aac", clip,
    )  # fmt: skip
    song = folder / "song.m4a"
    _ffmpeg(
        "-f", "lavfi", "-i", "sine=d=1", "-i", picture, "-map", "0", "-map", "1",
        "-c:a", "aac", "-c:v", "png", "-disposition:v", "attached_pic", song,
    )  # fmt: skip
    return {"clip": clip, "song": song}


def test_cover_art_is_not_the_video(cover_art, caplog):
    clip = cover_art["clip"]
    with av.open(str(clip)) as container:
        assert sorted(s.codec_context.name for s in container.streams.video) == ["h264", "png"]
    info = probe(clip)
    assert [video.codec for video in info.video] == ["h264"]
    assert info.video_stream.frame_count == RATE
    assert "carry no timestamp" not in caplog.text
    with FrameReader(clip) as reader:
        assert reader.read_frame(0).image.shape == (120, 160, 3)
        assert reader.frame_count == RATE
    with pytest.raises(UnsupportedOptionError, match="has 1"):
        FrameReader(clip, stream=1)


def test_audio_with_cover_art_is_not_a_video(cover_art):
    with pytest.raises(NotVideoError, match=r"no video stream; it holds: .*cover art \(png\)"):
        probe(cover_art["song"])
