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
