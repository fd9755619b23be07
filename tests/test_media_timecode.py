"""Timecode labels and frame numbers, drop frame included: the start timecode a retimed range gets."""

from __future__ import annotations

from fractions import Fraction

import pytest

from engine.media.timecode import timecode_after, timecode_frames, timecode_text

NTSC30 = Fraction(30000, 1001)
NTSC60 = Fraction(60000, 1001)


@pytest.mark.parametrize(
    ("label", "rate", "frames"),
    [
        ("00:00:59;29", NTSC30, 1799),
        ("00:01:00;02", NTSC30, 1800),  # ;00 and ;01 do not exist at minute 1
        ("00:10:00;00", NTSC30, 17982),  # every tenth minute keeps them
        ("01:00:00;00", NTSC30, 107892),
        ("00:01:00;04", NTSC60, 3600),
        ("01:00:10:05", Fraction(25), 90255),
    ],
)
def test_labels_and_frame_numbers_agree(label, rate, frames):
    assert timecode_frames(label, rate) == frames
    assert timecode_text(frames, rate, drop_frame=";" in label) == label


def test_every_drop_frame_number_comes_back_from_its_label():
    for rate, day in ((NTSC30, 2_589_408), (NTSC60, 5_178_816)):  # frames labelled in 24 hours
        assert timecode_text(day, rate, drop_frame=True) == "00:00:00;00"
        for frames in range(0, day, 997):
            assert timecode_frames(timecode_text(frames, rate, drop_frame=True), rate) == frames


def test_a_range_starts_at_the_timecode_of_its_first_frame():
    assert timecode_after("00:00:59;29", 1, NTSC30) == "00:01:00;02"
    assert timecode_after("01:00:00:00", 25, Fraction(25)) == "01:00:01:00"
    assert timecode_after("23:59:59:24", 1, Fraction(25)) == "00:00:00:00"  # a camera clock wraps
    assert timecode_after("not a timecode", 3, Fraction(25)) is None


# ------------------------------------------- the first frame's timecode, not the track's start


def _late_picture(path, *, timecode: str = "01:00:00;00", late_frames: int = 2, frames: int = 24):
    """A 29.97 ProRes .mov whose picture starts ``late_frames`` frames after its timecode track
    (the first frames cut away, timestamps kept): the tmcd track at 0 says ``timecode``."""
    from media_factory import render_clip

    stamps = list(range(late_frames, late_frames + frames))
    return render_clip(
        path, rate=NTSC30, pts=stamps, metadata={"timecode": timecode}, codec="prores_ks",
        pixel_format="yuv422p10le", size=(64, 48),
    )


def test_the_start_timecode_names_the_first_frame_when_the_picture_starts_late(tmp_path):
    """The audit's clip: timecode 01:00:00;00 on a track at 0, the picture from 0.066 s, so its
    first frame is 01:00:00;02. Before, every reader took the tag as the first frame's label."""
    from engine.media import probe
    from engine.media.timecode import start_timecode, timecode_tag

    clip = _late_picture(tmp_path / "late.mov")
    info = probe(clip)
    assert info.video_stream.start_s > 0
    assert timecode_tag(info) == "01:00:00;00"
    assert start_timecode(info) == "01:00:00;02"
    # as the preview app and a render's EDL ranges read it (headers only, no packet scan)
    assert start_timecode(probe(clip, scan_packets=False)) == "01:00:00;02"
    on_time = _late_picture(tmp_path / "on_time.mov", late_frames=0)
    assert start_timecode(probe(on_time)) == "01:00:00;00"


def test_retime_and_repair_outputs_start_at_the_timecode_of_their_first_frame(tmp_path):
    from engine.cli import main
    from engine.media import probe
    from engine.media.timecode import start_timecode

    clip = _late_picture(tmp_path / "late.mov")
    conformed = tmp_path / "conformed.mov"
    assert main(["retime", str(clip), "--speed", "1", "--model", "blend", "-o", str(conformed)]) == 0
    assert start_timecode(probe(conformed)) == "01:00:00;02"
    ranged = tmp_path / "ranged.mov"
    command = ["retime", str(clip), "--speed", "1/2", "--in", "3", "--model", "blend", "-o", str(ranged)]
    assert main(command) == 0
    assert start_timecode(probe(ranged)) == "01:00:00;05"
    repaired = tmp_path / "repaired.mov"
    assert main(["repair", str(clip), "--model", "blend", "-o", str(repaired)]) == 0
    assert start_timecode(probe(repaired)) == "01:00:00;02"
