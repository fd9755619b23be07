"""Image sequences (one file per frame) read as clips: found from a frame or a pattern, described,
read frame-exactly by the one frame reader, refused with names when frames are missing, and
rendered from an OTIO ImageSequenceReference on a timeline."""

from __future__ import annotations

import json
import os
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import opentimelineio as otio
import pytest
from media_factory import frame_pattern

from engine.cli import main
from engine.errors import CorruptMediaError, MediaNotFoundError, UnsupportedOptionError
from engine.media import FrameReader, probe
from engine.media.sequence import describe, find_sequence, read_description
from engine.render import render_timeline
from engine.timeline import list_segments

RATE = Fraction(24000, 1001)


def _write_images(folder: Path, names: list[str], *, codec: str = "png", bits: int = 8) -> list[np.ndarray]:
    """Write frame_pattern(i) to each name with PyAV's image encoder; return the pictures."""
    folder.mkdir(parents=True, exist_ok=True)
    pictures = []
    for index, name in enumerate(names):
        picture = frame_pattern(index, 64, 48, bits=bits)
        pictures.append(picture)
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24" if bits == 8 else "rgb48le")
        with av.open(str(folder / name), "w", format="image2") as container:
            stream = container.add_stream(codec, rate=1)
            stream.width, stream.height = 64, 48
            stream.pix_fmt = "rgb24" if bits == 8 else "rgb48le"
            stream.options = {"update": "1"}
            for packet in stream.encode(frame):
                container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return pictures


def _plate(folder: Path, first: int = 1001, count: int = 12, *, suffix: str = ".png", codec: str = "png",
           bits: int = 8) -> list[np.ndarray]:
    return _write_images(folder, [f"A001.{n:04d}{suffix}" for n in range(first, first + count)],
                         codec=codec, bits=bits)


def test_a_sequence_is_found_from_any_frame_or_pattern(tmp_path):
    _plate(tmp_path / "plate")
    for given in ("A001.1005.png", "A001.%04d.png", "A001.####.png", "A001.1001.png", "A001.1012.png"):
        sequence = find_sequence(tmp_path / "plate" / given, RATE)
        assert (sequence.first, sequence.count, sequence.padding) == (1001, 12, 4), given
        assert sequence.display_name == "A001.####.png"


def test_unpadded_numbers_are_one_sequence(tmp_path):
    _write_images(tmp_path / "shots", [f"shot_{n}.png" for n in range(8, 13)])
    sequence = find_sequence(tmp_path / "shots" / "shot_11.png", Fraction(25))
    assert (sequence.first, sequence.count, sequence.padding) == (8, 5, 0)
    assert sequence.frame_name(9) == "shot_9.png"


def test_missing_frames_and_bad_names_are_refused_by_name(tmp_path):
    _plate(tmp_path / "plate")
    (tmp_path / "plate" / "A001.1006.png").unlink()
    (tmp_path / "plate" / "A001.1007.png").unlink()
    with pytest.raises(CorruptMediaError, match=r"A001\.####\.png has a hole: frames 1006-1007 are missing"):
        find_sequence(tmp_path / "plate" / "A001.1001.png", RATE)
    with pytest.raises(MediaNotFoundError, match="no frame files match"):
        find_sequence(tmp_path / "plate" / "B001.%04d.png", RATE)
    with pytest.raises(MediaNotFoundError, match="folder not found"):
        find_sequence(tmp_path / "nowhere" / "A001.%04d.png", RATE)
    (tmp_path / "still.png").write_bytes(b"")
    with pytest.raises(UnsupportedOptionError, match="no frame number in its name"):
        find_sequence(tmp_path / "still.png", RATE)
    with pytest.raises(UnsupportedOptionError, match="rate"):
        find_sequence(tmp_path / "plate" / "A001.1001.png", Fraction(0))


def test_the_reader_reads_a_described_sequence_frame_exactly(tmp_path):
    pictures = _plate(tmp_path / "plate")
    description = describe(find_sequence(tmp_path / "plate" / "A001.1001.png", RATE), tmp_path / "described")
    again = describe(find_sequence(tmp_path / "plate" / "A001.1003.png", RATE), tmp_path / "described")
    assert again == description
    info = probe(description)
    assert info.video_stream.frame_count == 12
    assert Fraction(info.video_stream.rate) == RATE
    with FrameReader(description) as reader:
        assert reader.frame_count == 12
        assert [frame.index for frame in reader.frames(0, 12)] == list(range(12))
        for index in (7, 2, 11, 0):  # random access, backwards too
            frame = reader.read_frame(index)
            assert frame.time_s == index / RATE
            np.testing.assert_array_equal(frame.image, pictures[index])


def test_sixteen_bit_tiff_sequences_read_at_full_depth(tmp_path):
    """FFmpeg's TIFF decoder fails on unknown tags under err_detect=explode; sound files must read."""
    pictures = _plate(tmp_path / "plate", first=1, count=4, suffix=".tif", codec="tiff", bits=16)
    description = describe(find_sequence(tmp_path / "plate" / "A001.0001.tif", Fraction(24)), tmp_path / "d")
    with FrameReader(description, output="rgb48") as reader:
        np.testing.assert_array_equal(reader.read_frame(3).image, pictures[3])


def test_a_frame_changed_after_description_is_refused(tmp_path):
    _plate(tmp_path / "plate", count=4)
    description = describe(find_sequence(tmp_path / "plate" / "A001.1001.png", RATE), tmp_path / "d")
    changed = tmp_path / "plate" / "A001.1002.png"
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    with pytest.raises(CorruptMediaError, match="changed after it was described"):
        read_description(description)
    with pytest.raises(CorruptMediaError, match="changed after it was described"):
        FrameReader(description)
    renewed = describe(find_sequence(tmp_path / "plate" / "A001.1001.png", RATE), tmp_path / "d")
    assert renewed == description and read_description(renewed).count == 4


def test_a_damaged_description_is_refused_by_name(tmp_path):
    bad = tmp_path / "bad.chronoseq"
    bad.write_text('{"chronoscope_sequence": 1, "folder": 3}')
    with pytest.raises(CorruptMediaError, match="not a readable image sequence description"):
        FrameReader(bad)


def _sequence_timeline(
    path: Path, plate: Path, *, source_start: int, frames: int, scalar: float, listed: int | None = None
) -> Path:
    """One slowed clip of the A001 plate; ``listed``: an available_range of that many frames from 1001."""
    timeline = otio.schema.Timeline(name="plates", global_start_time=otio.opentime.RationalTime(0, 24))
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    reference = otio.schema.ImageSequenceReference(
        target_url_base=plate.as_uri() + "/", name_prefix="A001.", name_suffix=".png",
        start_frame=1001, frame_step=1, rate=24, frame_zero_padding=4,
    )
    if listed is not None:
        reference.available_range = otio.opentime.TimeRange(
            otio.opentime.RationalTime(1001, 24), otio.opentime.RationalTime(listed, 24)
        )
    clip = otio.schema.Clip(
        name="A001 plate", media_reference=reference,
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(source_start, 24), otio.opentime.RationalTime(frames, 24)
        ),
    )
    clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=scalar))
    track.append(clip)
    otio.adapters.write_to_file(timeline, str(path))
    return path


def test_a_timeline_image_sequence_is_rendered_from_its_own_frame_numbers(tmp_path, capsys):
    pictures = _plate(tmp_path / "plate", count=24)
    timeline = _sequence_timeline(tmp_path / "cut.otio", tmp_path / "plate", source_start=1005, frames=8,
                                  scalar=0.5)
    (segment,) = list_segments(otio.adapters.read_from_file(str(timeline)), check_time_warps=False)
    assert segment.media_kind == "image_sequence" and segment.media.exists
    assert segment.to_dict()["image_sequence"].endswith("A001.####.png")

    summary = render_timeline(timeline, tmp_path / "out", model="blend", codec="ffv1")
    (entry,) = summary.clips
    assert entry["status"] == "rendered", entry
    with FrameReader(Path(entry["output"])) as reader:
        assert reader.frame_count == 8
        # output frame 2k shows source frame 1005 + k exactly; the odd ones are made between
        for k in range(4):
            np.testing.assert_array_equal(reader.read_frame(2 * k).image, pictures[4 + k])

    assert main(["segments", str(timeline)]) == 0
    assert "A001.####.png" in capsys.readouterr().out


def test_a_timeline_sequence_with_a_missing_frame_is_not_rendered_and_says_which(tmp_path):
    _plate(tmp_path / "plate", count=24)
    (tmp_path / "plate" / "A001.1010.png").unlink()
    timeline = _sequence_timeline(tmp_path / "cut.otio", tmp_path / "plate", source_start=1005, frames=8,
                                  scalar=0.5)
    summary = render_timeline(timeline, tmp_path / "out", model="blend", codec="ffv1")
    (entry,) = summary.clips
    assert entry["status"] == "cannot_render"
    assert "frame 1010 is missing" in entry["reason"]


def test_clip_commands_read_a_sequence_given_its_rate(tmp_path, capsys):
    pictures = _plate(tmp_path / "plate", count=6)
    pattern = str(tmp_path / "plate" / "A001.####.png")
    assert main(["probe", pattern]) == 2
    assert "give its frame rate with --sequence-rate" in capsys.readouterr().err
    assert main(["probe", pattern, "--sequence-rate", "23.976"]) == 0
    shown = capsys.readouterr().out
    assert "A001.####.png, frames 1001-1006" in shown and "24000/1001" in shown
    # the clip as given, not the engine's description file in its cache, and the frames' size
    assert shown.splitlines()[0].split(None, 1)[1] == pattern and ".chronoseq" not in shown
    assert main(["probe", pattern, "--sequence-rate", "23.976", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["path"] == pattern and data["image_sequence"].endswith("frames 1001-1006")
    frames = sorted((tmp_path / "plate").glob("A001.*.png"))
    assert data["size_bytes"] == sum(path.stat().st_size for path in frames)

    out = tmp_path / "slow.mkv"
    first_frame = str(tmp_path / "plate" / "A001.1001.png")
    assert main(["retime", first_frame, "--sequence-rate", "24", "--speed", "1/2", "--model", "blend",
                 "--codec", "ffv1", "-o", str(out)]) == 0
    with FrameReader(out) as reader:
        assert reader.frame_count == 12
        np.testing.assert_array_equal(reader.read_frame(4).image, pictures[2])
    assert main(["retime", first_frame, "--sequence-rate", "0", "--speed", "1/2", "-o", str(out)]) == 2
    assert "must be above zero" in capsys.readouterr().err


def test_a_timeline_sequence_whose_name_holds_pattern_characters_is_found(tmp_path):
    folder = tmp_path / "100% take#2"
    _write_images(folder, [f"take#2_{n:03d}.png" for n in range(5, 9)])
    timeline = otio.schema.Timeline(name="odd names")
    reference = otio.schema.ImageSequenceReference(
        target_url_base=folder.as_uri() + "/", name_prefix="take#2_", name_suffix=".png",
        start_frame=5, rate=25, frame_zero_padding=3,
    )
    clip = otio.schema.Clip(name="take", media_reference=reference, source_range=otio.opentime.TimeRange(
        otio.opentime.RationalTime(5, 25), otio.opentime.RationalTime(4, 25)))
    timeline.tracks.append(otio.schema.Track(kind=otio.schema.TrackKind.Video, children=[clip]))
    (segment,) = list_segments(timeline, check_time_warps=False)
    assert segment.media_problem == "" and segment.media.exists
    with FrameReader(segment.media_path) as reader:
        assert reader.frame_count == 4


def test_frames_named_by_a_number_alone_are_a_sequence(tmp_path):
    """As high-speed cameras write them (000.png, 001.png): the folder's separator was lost."""
    pictures = _write_images(tmp_path / "camera", [f"{n:03d}.png" for n in range(4)])
    description = describe(find_sequence(tmp_path / "camera" / "000.png", Fraction(30)), tmp_path / "d")
    with FrameReader(description) as reader:
        np.testing.assert_array_equal(reader.read_frame(3).image, pictures[3])


def test_sequences_that_would_read_wrong_are_refused_by_name(tmp_path):
    _plate(tmp_path / "plate", count=8)
    (tmp_path / "plate" / "A001.1004.png").write_bytes(b"")
    with pytest.raises(CorruptMediaError, match=r"frame 1004 \(A001.1004.png\) is an empty file"):
        describe(find_sequence(tmp_path / "plate" / "A001.1001.png", RATE), tmp_path / "d")
    (tmp_path / "plate" / "A001.1004.png").unlink()
    with pytest.raises(CorruptMediaError, match=r"frame 1004 is missing \(frames from 1001 to 1003"):
        find_sequence(tmp_path / "plate" / "A001.1006.png", RATE)  # named after the hole
    with pytest.raises(UnsupportedOptionError, match="is a folder; name one of its frames"):
        find_sequence(tmp_path / "plate", RATE)
    with pytest.raises(UnsupportedOptionError, match="0.01 to 1,000,000"):
        find_sequence(tmp_path / "plate" / "A001.1001.png", Fraction(1, 10**9))
    (tmp_path / "clip.mp4").write_bytes(b"x")
    with pytest.raises(UnsupportedOptionError, match="no frame number in its name"):
        find_sequence(tmp_path / "clip.mp4", RATE)  # the 4 of .mp4 is no frame number
    _write_images(tmp_path / "big", [f"B.{n}.png" for n in range(2**31, 2**31 + 2)])
    with pytest.raises(UnsupportedOptionError, match="frame numbers from 0 to 2147483647"):
        find_sequence(tmp_path / "big" / f"B.{2**31}.png", RATE)


def test_a_frame_whose_name_holds_pattern_characters_is_taken_as_a_frame(tmp_path):
    _write_images(tmp_path / "odd", [f"take #2 100%.{n}.png" for n in (7, 8, 9)])
    sequence = find_sequence(tmp_path / "odd" / "take #2 100%.8.png", RATE)
    assert (sequence.first, sequence.count) == (7, 3)


def test_a_frame_added_after_the_description_is_a_change(tmp_path):
    _plate(tmp_path / "plate", count=4)
    description = describe(find_sequence(tmp_path / "plate" / "A001.1001.png", RATE), tmp_path / "d")
    _write_images(tmp_path / "plate", ["A001.1005.png"])
    with pytest.raises(CorruptMediaError, match="changed after it was described"):
        read_description(description)


def test_a_timeline_listing_more_frames_than_were_delivered_renders_the_clips_inside_them(tmp_path):
    """Only the frames a clip uses are needed: an available_range of 60 frames over 24 files
    refused every clip of the sequence."""
    pictures = _plate(tmp_path / "plate", count=24)
    path = _sequence_timeline(
        tmp_path / "cut.otio", tmp_path / "plate", source_start=1005, frames=8, scalar=0.5, listed=60
    )
    summary = render_timeline(path, tmp_path / "out", model="blend", codec="ffv1")
    (entry,) = summary.clips
    assert entry["status"] == "rendered", entry
    with FrameReader(Path(entry["output"])) as reader:
        np.testing.assert_array_equal(reader.read_frame(0).image, pictures[4])
    new = otio.adapters.read_from_file(summary.timeline_path)
    retimed_from = new.find_clips()[0].metadata["chronoscope"]["retimed_from"]
    assert retimed_from["image_sequence"]["name_prefix"] == "A001."
    assert retimed_from["image_sequence"]["start_frame"] == 1001


def test_a_frame_rewritten_with_its_size_and_time_kept_is_a_change(tmp_path):
    """Uncompressed DPX or TIFF frames all have one size: a frame re-rendered and copied in with its
    modification time set back left the description as it was, and renders resumed stale."""
    _plate(tmp_path / "plate", count=4)
    sequence = find_sequence(tmp_path / "plate" / "A001.1001.png", RATE)
    before = sequence.fingerprint()
    frame = tmp_path / "plate" / "A001.1002.png"
    stamp = frame.stat()
    time.sleep(0.01)
    frame.write_bytes(frame.read_bytes())
    os.utime(frame, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert (frame.stat().st_size, frame.stat().st_mtime_ns) == (stamp.st_size, stamp.st_mtime_ns)
    assert sequence.fingerprint() != before


def test_files_beyond_what_the_timeline_lists_are_none_of_its_business(tmp_path):
    """One stray file after a gap (A001.1100.png) refused a clip whose listed frames were all there."""
    pictures = _plate(tmp_path / "plate", count=24)
    _write_images(tmp_path / "stray", ["A001.1100.png"])
    (tmp_path / "stray" / "A001.1100.png").rename(tmp_path / "plate" / "A001.1100.png")
    path = _sequence_timeline(
        tmp_path / "cut.otio", tmp_path / "plate", source_start=1005, frames=8, scalar=0.5, listed=12
    )
    summary = render_timeline(path, tmp_path / "out", model="blend", codec="ffv1")
    (entry,) = summary.clips
    assert entry["status"] == "rendered", entry
    with FrameReader(Path(entry["output"])) as reader:
        np.testing.assert_array_equal(reader.read_frame(6).image, pictures[7])


def test_one_frame_of_a_sequence_named_without_a_rate_is_refused_naming_the_sequence(tmp_path, capsys):
    """Before, `retime A001.1001.png --speed 0.5` wrote a 2-frame clip at 25 fps (FFmpeg's rate
    for one image) and exited 0: the sequence beside it was silently ignored."""
    _plate(tmp_path / "plate", count=6)
    frame = tmp_path / "plate" / "A001.1003.png"
    out = tmp_path / "out"
    out.mkdir()
    commands = [
        ["retime", str(frame), "--speed", "0.5", "--model", "blend", "-o", str(out / "slow.mov")],
        ["repair", str(frame), "--model", "blend", "-o", str(out / "fixed.mov")],
        ["probe", str(frame)],
        ["detect", str(frame), "--no-audio"],
    ]
    for command in commands:
        assert main(command) == 2, command
        error = capsys.readouterr().err
        assert (
            f"A001.1003.png is one frame of the image sequence {tmp_path / 'plate' / 'A001.####.png'} "
            "(frames 1001-1006, 6 in all)"
        ) in error, error
        assert "add --sequence-rate FPS" in error and "--still to read only this image" in error
    assert list(out.iterdir()) == []

    # the image alone, on purpose; and an image that is no frame of a sequence, as before
    still = out / "still.mov"
    on_purpose = ["retime", str(frame), "--still", "--speed", "1/2", "--model", "blend"]
    assert main([*on_purpose, "-o", str(still)]) == 0
    assert probe(still).video_stream.frame_count == 2
    _write_images(tmp_path / "lone", ["poster.png", "A002.0001.png"])
    for lone in ("poster.png", "A002.0001.png"):
        assert main(["probe", str(tmp_path / "lone" / lone)]) == 0
    capsys.readouterr()
    assert main(["probe", str(frame), "--still", "--sequence-rate", "24"]) == 2
    assert "give one of them" in capsys.readouterr().err
