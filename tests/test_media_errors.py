"""Bad input: each case gives one named ChronoscopeError with a clear one-line message, also via the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from media_factory import (
    corrupt_copy,
    render_audio_only,
    render_clip,
    render_zero_frame_clip,
    truncated_copy,
    write_text_file,
)

from engine.cli import main
from engine.errors import (
    ChronoscopeError,
    CorruptMediaError,
    EmptyMediaError,
    MediaNotFoundError,
    NotVideoError,
)
from engine.media import FrameReader, probe


@pytest.fixture(scope="module")
def bad_media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    good = render_clip(folder / "good.mp4", frame_count=60, size=(160, 120), faststart=True)
    empty_file = folder / "zero-bytes.mp4"
    empty_file.write_bytes(b"")
    return {
        "missing": (folder / "missing.mp4", MediaNotFoundError, "not found"),
        "text": (write_text_file(folder / "list.mp4"), NotVideoError, "not a video file"),
        "audio": (
            render_audio_only(folder / "song.m4a"),
            NotVideoError,
            "no video stream; it holds: audio (aac)",
        ),
        "folder": (folder, NotVideoError, "is a folder"),
        "zero-bytes": (empty_file, EmptyMediaError, "empty"),
        "zero-frames": (render_zero_frame_clip(folder / "nothing.mp4"), EmptyMediaError, "no streams"),
        "corrupt": (corrupt_copy(good, folder / "corrupt.mp4"), CorruptMediaError, "decoding failed"),
        "moov-cut": (
            truncated_copy(render_clip(folder / "moov-last.mp4", frame_count=30), folder / "cut.mp4"),
            CorruptMediaError,
            "looks like MP4/QuickTime but cannot be opened: its index (the moov atom) is missing",
        ),
        "good": (good, None, None),
    }


@pytest.mark.parametrize(
    "case", ["missing", "text", "audio", "folder", "zero-bytes", "zero-frames", "moov-cut"]
)
def test_probe_refuses_bad_input(bad_media, case):
    path, error, message = bad_media[case]
    with pytest.raises(error, match=re.escape(message)) as caught:
        probe(path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("case", ["missing", "text", "audio", "zero-frames", "moov-cut"])
def test_reader_refuses_bad_input(bad_media, case):
    path, error, message = bad_media[case]
    with pytest.raises(error, match=re.escape(message)):
        FrameReader(path)


def test_corrupt_middle_raises_while_decoding(bad_media):
    path, error, message = bad_media["corrupt"]
    with FrameReader(path) as reader:
        with pytest.raises(error, match=re.escape(message)):
            for _ in reader:
                pass


def test_corrupt_middle_can_be_read_leniently(bad_media, caplog):
    path, _, _ = bad_media["corrupt"]
    with FrameReader(path, strict=False) as reader:
        indices = [frame.index for frame in reader]
    assert 50 <= len(indices) < 60
    assert indices == sorted(set(indices)) and indices[0] == 0 and indices[-1] == 59
    assert "skipped (strict=False)" in caplog.text


def test_an_undecodable_frame_leaves_the_others_readable(bad_media):
    """The preview app seeks into damage, then back: the frames before it must still come."""
    path, _, _ = bad_media["corrupt"]
    with FrameReader(path, strict=False) as reader:
        readable = {frame.index for frame in reader}
        lost = sorted(set(range(reader.frame_count)) - readable)
        assert lost, "the corrupt copy should lose a frame"
        with pytest.raises(CorruptMediaError, match=f"frame {lost[0]} "):
            reader.read_frame(lost[0])
        for index in (3, lost[0] - 1, reader.frame_count - 1):
            assert reader.read_frame(index).index == index


def test_truncated_tail_reports_and_reads_the_complete_frames(bad_media, tmp_path, caplog):
    good, _, _ = bad_media["good"]
    cut = truncated_copy(good, tmp_path / "cut.mp4")
    video = probe(cut).video_stream
    assert video.truncated and video.container_frame_count == 60
    assert 10 < video.frame_count < 60
    with FrameReader(cut) as reader:
        assert sum(1 for _ in reader) == video.frame_count
        last = reader.read_frame(video.frame_count - 1)
        assert last.index == video.frame_count - 1
    assert "truncated" in caplog.text


def test_errors_are_one_family(bad_media):
    for case in ("missing", "text", "audio", "zero-frames"):
        with pytest.raises(ChronoscopeError):
            probe(bad_media[case][0])


@pytest.mark.parametrize("case", ["missing", "text", "audio", "zero-bytes", "moov-cut"])
def test_cli_prints_one_line_and_returns_2(bad_media, case, capsys):
    path, _, message = bad_media[case]
    assert main(["probe", str(path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chronoscope probe: error: ")
    assert message in lines[0]
    assert captured.out == ""


def test_cli_table_and_json(bad_media, tmp_path, capsys):
    good = bad_media["good"][0]
    assert main(["probe", str(good)]) == 0
    table = capsys.readouterr().out
    assert "frames" in table and "60  [packet scan]" in table and "25 fps" in table
    assert main(["probe", str(good), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["video"][0]["frame_count"] == 60 and data["video"][0]["frame_rate"] == "25/1"
    target = tmp_path / "out" / "probe.json"
    assert main(["probe", str(good), "--json", "--output", str(target)]) == 0
    assert capsys.readouterr().out == ""
    assert json.loads(target.read_text())["video"][0]["frame_count"] == 60
    assert sorted(p.name for p in target.parent.iterdir()) == ["probe.json"]


def test_cli_output_needs_json(bad_media, tmp_path, capsys):
    assert main(["probe", str(bad_media["good"][0]), "--output", str(tmp_path / "x.json")]) == 2
    assert "--json" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_cli_on_the_demo_sample(sample_clip, capsys):
    assert main(["probe", str(sample_clip)]) == 0
    out = capsys.readouterr().out
    assert "166  [packet scan]" in out and "aac, 48000 Hz" in out


def test_reports_are_never_written_over_their_input_or_a_device(sample_clip, tmp_path, capsys):
    """The JSON goes through a temporary name and a rename, which would replace the clip itself
    (or, as root, the /dev/null node) with a small text file."""
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(sample_clip.read_bytes())
    before = clip.read_bytes()
    assert main(["probe", str(clip), "--json", "--output", str(clip)]) == 2
    assert "is the input" in capsys.readouterr().err
    assert main(["detect", str(clip), "--json", "--output", str(clip)]) == 2
    (tmp_path / "clip-link.png").symlink_to(clip)
    assert main(["detect", str(clip), "--plot", str(tmp_path / "clip-link.png")]) == 2
    assert "is the input" in capsys.readouterr().err
    assert clip.read_bytes() == before
    if Path("/dev/null").exists():
        assert main(["probe", str(clip), "--json", "--output", "/dev/null"]) == 2
        assert "not a regular file" in capsys.readouterr().err
