"""A render is resumed only when what it would make is what is there: a source replaced in place
(same size, time set back) or a render cut short afterwards is rendered again."""

from __future__ import annotations

import os
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from media_factory import render_clip

from engine.errors import JobCancelledError
from engine.media import FrameReader
from engine.processes import waiting_lock
from engine.render import render_timeline
from engine.render.run import InProcessRunner
from engine.timeline import read_timeline


def _timeline(path: Path, media: Path, frames: int = 6) -> Path:
    clip = otio.schema.Clip(
        name="shot",
        media_reference=otio.schema.ExternalReference(target_url=media.as_uri()),
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, 25), otio.opentime.RationalTime(frames, 25)
        ),
    )
    clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    timeline = otio.schema.Timeline(name="cut")
    timeline.tracks.append(otio.schema.Track(kind=otio.schema.TrackKind.Video, children=[clip]))
    otio.adapters.write_to_file(timeline, str(path))
    return path


def _statuses(summary) -> list[str]:
    return [clip["status"] for clip in summary.clips]


def _y4m(path: Path, seed: int, frames: int = 12) -> Path:
    """An uncompressed YUV4MPEG clip: its size depends only on its dimensions and length."""
    rng = np.random.default_rng(seed)
    parts = [b"YUV4MPEG2 W64 H48 F25:1 Ip A1:1 C444\n"]
    for _ in range(frames):
        parts.append(b"FRAME\n" + rng.integers(16, 235, 64 * 48 * 3, dtype=np.uint8).tobytes())
    path.write_bytes(b"".join(parts))
    return path


def test_a_source_replaced_with_the_same_size_and_time_is_rendered_again(tmp_path):
    media = _y4m(tmp_path / "shot.y4m", seed=1)
    timeline = _timeline(tmp_path / "cut.otio", media)
    summary = render_timeline(timeline, tmp_path / "out", model="blend", codec="ffv1")
    assert _statuses(summary) == ["rendered"]
    stamp = media.stat()
    _y4m(tmp_path / "shot.y4m", seed=2)  # another take written over it, its time set back
    os.utime(media, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert media.stat().st_size == stamp.st_size and media.stat().st_mtime_ns == stamp.st_mtime_ns
    again = render_timeline(timeline, tmp_path / "out", model="blend", codec="ffv1")
    assert _statuses(again) == ["rendered"]
    with FrameReader(Path(again.clips[0]["output"])) as rendered, FrameReader(media) as source:
        np.testing.assert_array_equal(rendered.read_frame(0).image, source.read_frame(0).image)


def test_a_render_cut_short_after_it_was_made_is_rendered_again(tmp_path):
    media = render_clip(tmp_path / "shot.mp4", rate=Fraction(25), frame_count=12)
    timeline = _timeline(tmp_path / "cut.otio", media)
    summary = render_timeline(timeline, tmp_path / "out", model="blend", codec="ffv1")
    output = Path(summary.clips[0]["output"])
    whole = output.stat().st_size
    with open(output, "r+b") as handle:
        handle.truncate(whole // 3)
    again = render_timeline(timeline, tmp_path / "out", model="blend", codec="ffv1")
    assert _statuses(again) == ["rendered"]
    assert output.stat().st_size == whole
    with FrameReader(output) as reader:
        assert reader.frame_count == 6
    assert _statuses(render_timeline(timeline, tmp_path / "out", model="blend", codec="ffv1")) == ["resumed"]


def test_one_timeline_rendered_twice_at_once_into_one_folder_ends_well_for_both(tmp_path):
    """The second render used to delete the first one's temporaries before rendering the same
    segment itself: the first failed at its rename, after all its work."""
    media = render_clip(tmp_path / "shot.mp4", rate=Fraction(25), frame_count=60, size=(160, 120))
    timeline = _timeline(tmp_path / "cut.otio", media, frames=100)
    outdir = tmp_path / "out"
    results = {}

    def render(name: str) -> None:
        results[name] = render_timeline(timeline, outdir, model="flow", codec="ffv1")

    first = threading.Thread(target=render, args=("first",))
    first.start()
    deadline = time.monotonic() + 30
    while not list(outdir.glob(".*.lock")) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert list(outdir.glob(".*.lock")), "the first render never started writing"
    render("second")
    first.join()
    for name in ("first", "second"):
        assert results[name].ok, (name, results[name].clips)
    output = Path(results["first"].clips[0]["output"])
    assert results["second"].clips[0]["output"] == str(output)
    # the second took the first one's render (waiting for it, or after it): it says so, not "rendered"
    assert results["first"].clips[0]["status"] == "rendered"
    assert results["second"].clips[0]["status"] == "resumed"
    assert results["second"].clips[0]["reason"].startswith("skipped (")
    with FrameReader(output) as reader:
        assert reader.frame_count == 100
    assert not list(outdir.glob(".*"))  # no lock or temporary left behind


def test_a_waiting_lock_waits_for_its_holder_and_can_be_cancelled(tmp_path):
    lock = tmp_path / ".out.mov.lock"
    order = []
    with waiting_lock(lock):
        def second() -> None:
            with waiting_lock(lock, poll_s=0.01):
                order.append("second")

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.2)
        order.append("first done")
        cancelled = []

        def stop() -> None:
            cancelled.append(True)
            raise JobCancelledError("cancelled")

        with pytest.raises(JobCancelledError), waiting_lock(lock, check=stop, poll_s=0.01):
            pass
        assert cancelled
    thread.join()
    assert order == ["first done", "second"]
    assert not lock.exists()


def test_a_render_whose_output_vanished_before_the_end_is_failed_not_listed_as_rendered(tmp_path):
    """The output folder deleted while a later clip renders: the summary said the first clip was
    rendered and the new timeline pointed at a file that was gone."""
    media = render_clip(tmp_path / "shot.mp4", rate=Fraction(25), frame_count=12)
    timeline = _timeline(tmp_path / "cut.otio", media)
    outdir = tmp_path / "out"

    class DeletingRunner(InProcessRunner):
        def run(self, specs, on_progress, on_done):
            def done(spec, report, error):
                on_done(spec, report, error)
                Path(spec.output).unlink()  # someone removes the render as it finishes

            super().run(specs, on_progress, done)

    summary = render_timeline(timeline, outdir, model="blend", codec="ffv1", runner=DeletingRunner())
    (clip,) = summary.clips
    assert clip["status"] == "failed" and "disappeared after it was rendered" in clip["reason"]
    assert not summary.ok
    new = read_timeline(Path(summary.timeline_path))
    assert new.find_clips()[0].media_reference.target_url == media.as_uri() or str(media) in str(
        new.find_clips()[0].media_reference.target_url
    )
