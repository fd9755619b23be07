"""A clip faster than Matroska's millisecond steps is refused as a .mkv output before any work
(retime and repair used to analyse the whole clip first, then fail as the writer opened), and is
written exactly as .mov."""

from __future__ import annotations

from fractions import Fraction

import pytest
from media_factory import render_clip

from engine import repair, retime
from engine.cli import EXIT_USER_ERROR, main
from engine.media import probe_video


@pytest.fixture
def fast_clip(tmp_path):
    return render_clip(tmp_path / "fast.mov", rate=Fraction(2000), frame_count=12, size=(32, 24))


def test_a_clip_too_fast_for_matroska_is_refused_before_any_work(fast_clip, tmp_path, capsys, monkeypatch):
    def analysed(*args, **kwargs):
        raise AssertionError("analysed before the output was checked")

    monkeypatch.setattr(repair.run, "analyse_clip", analysed)
    monkeypatch.setattr(retime.clip, "clip_grid", analysed)
    retiming = ["retime", str(fast_clip), "--speed", "1/2", "--model", "blend"]
    for command in (retiming, ["repair", str(fast_clip)]):
        assert main([*command, "-o", str(tmp_path / "out.mkv")]) == EXIT_USER_ERROR
        error = capsys.readouterr().err
        assert "out.mkv: Matroska (.mkv) counts time in milliseconds, so at 2000 fps" in error
        assert "write .mov or .mp4, or PNG frames" in error
    assert not (tmp_path / "out.mkv").exists()


def test_the_same_clip_is_written_exactly_as_mov(fast_clip, tmp_path):
    output = tmp_path / "slow.mov"
    assert main(["retime", str(fast_clip), "--speed", "1/2", "--model", "blend", "-o", str(output)]) == 0
    video = probe_video(output)
    assert video.frame_rate == 2000 and video.frame_count == 24
