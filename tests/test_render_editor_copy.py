"""A render or fill of an EDL or FCP 7 XML writes its new timeline in that format too, so the editor
can import it back: the renders are where the clips were, record times keep the timeline's start
timecode, and a format that cannot hold the new timeline is named, never written wrong."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from xml.etree import ElementTree

import opentimelineio as otio
import pytest
from media_factory import render_clip

from engine.cli import main
from engine.errors import OutputExistsError
from engine.render import fill_gaps, render_timeline
from engine.timeline import list_segments, read_timeline
from engine.timeline.editor_copy import EditorCopyError, editor_copy_text

HALF_SPEED = "M2   SRC       012.5                00:00:01:00\n"


def _edl(folder: Path, media: Path, second: str = HALF_SPEED) -> Path:
    """Two events of ``media`` from 01:00:00:00: one at 1x, one at half speed (its M2 line)."""
    path = folder / "cut.edl"
    path.write_text(
        "TITLE: cut\nFCM: NON-DROP FRAME\n\n"
        "001  SRC      V     C        00:00:00:00 00:00:01:00 01:00:00:00 01:00:01:00\n"
        f"* FROM CLIP NAME: src.mp4\n* FROM CLIP: {media}\n"
        "002  SRC      V     C        00:00:01:00 00:00:01:12 01:00:01:00 01:00:02:00\n"
        f"{second}* FROM CLIP NAME: src.mp4\n* FROM CLIP: {media}\n"
    )
    return path


def _placed(timeline: otio.schema.Timeline) -> list[tuple[str, int, int, str]]:
    return [
        (s.clip_name, s.record_start_frames, s.record_frames, Path(s.media_path).name)
        for s in list_segments(timeline, check_time_warps=False)
    ]


@pytest.fixture()
def media(tmp_path) -> Path:
    return render_clip(tmp_path / "src.mp4", rate=Fraction(25), frame_count=100, size=(64, 48))


def test_an_edl_render_writes_an_edl_pointing_at_the_renders(tmp_path, media, capsys):
    edl = _edl(tmp_path, media)
    assert main(["render", str(edl), "-o", str(tmp_path / "out"), "--rate", "25", "--model", "blend",
                 "--codec", "ffv1", "--no-engine"]) == 0
    copy = tmp_path / "out" / "cut.chronoscope.edl"
    assert f"the same for the editor: {copy}" in capsys.readouterr().out
    written = read_timeline(copy, rate=25)
    otio_copy = read_timeline(tmp_path / "out" / "cut.chronoscope.otio")
    (render,) = (tmp_path / "out").glob("V1_001_*.mkv")
    assert _placed(written) == _placed(otio_copy) == [
        ("src.mp4", 0, 25, "src.mp4"), ("src.mp4", 25, 25, render.name)
    ]
    assert written.global_start_time == otio.opentime.RationalTime(90000, 25)
    text = copy.read_text()
    # the render's own reel and timecodes (it starts at 00:00:00:00), not the camera reel's
    assert "002  V1001src V     C        00:00:00:00 00:00:01:00 01:00:01:00 01:00:02:00" in text
    assert "M2" not in text
    # a second run replaces the copy it wrote; a file of that name it did not write is refused
    assert main(["render", str(edl), "-o", str(tmp_path / "out"), "--rate", "25", "--model", "blend",
                 "--codec", "ffv1", "--no-engine"]) == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "cut.chronoscope.edl").write_text("the editor's own")
    with pytest.raises(OutputExistsError, match="cut.chronoscope.edl already exists"):
        render_timeline(edl, other, model="blend", codec="ffv1", rate=25)
    assert (other / "cut.chronoscope.edl").read_text() == "the editor's own"


def test_a_speed_change_passed_through_stays_an_m2_line_in_the_edl(tmp_path, media):
    edl = _edl(tmp_path, media, second="M2   SRC       050.0                00:00:01:00\n")
    summary = render_timeline(edl, tmp_path / "out", model="blend", codec="ffv1", rate=25)
    assert [clip["status"] for clip in summary.clips] == ["pass_through", "pass_through"]
    written = read_timeline(Path(summary.editor_timeline_path), rate=25)
    speeds = [s.time_scalar for s in list_segments(written, check_time_warps=False)]
    assert speeds == [1, 2]


def _xml(folder: Path, media: Path, speed_percent: float | None = None) -> Path:
    """An FCP 7 XML of ``media`` (via the adapter), its second clip at half speed."""
    rate = 25
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for start, scalar in ((0, 1.0), (25, 0.5 if speed_percent is None else speed_percent / 100)):
        clip = otio.schema.Clip(
            name=f"shot{start}",
            media_reference=otio.schema.ExternalReference(
                target_url=media.as_uri(),
                available_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(100, rate)
                ),
            ),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(start, rate), otio.opentime.RationalTime(25, rate)
            ),
        )
        if scalar != 1:
            clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=scalar))
        track.append(clip)
    timeline = otio.schema.Timeline(name="cut", tracks=[track])
    timeline.global_start_time = otio.opentime.RationalTime(90000, rate)
    path = folder / "cut.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


def test_an_fcp_xml_render_writes_fcp_xml_with_file_urls(tmp_path, media):
    # FCP 7 XML cannot carry the speed change this test starts from (its writer drops it), so the
    # input is written as OTIO, rendered, and the result converted to XML the way a Premiere user's
    # export would come in: rendered clips at 1x, which the XML holds
    rendered = render_timeline(_xml(tmp_path, media), tmp_path / "first", model="blend", codec="ffv1")
    assert rendered.editor_timeline_path is None  # an OTIO timeline needs no copy
    xml = tmp_path / "cut.xml"
    otio.adapters.write_to_file(read_timeline(Path(rendered.timeline_path)), str(xml), adapter_name="fcp_xml")
    summary = render_timeline(xml, tmp_path / "out", model="blend", codec="ffv1")
    copy = Path(summary.editor_timeline_path)
    assert copy.name == "cut.chronoscope.xml" and not summary.editor_timeline_note
    assert _placed(read_timeline(copy)) == _placed(read_timeline(xml))
    assert read_timeline(copy).global_start_time == otio.opentime.RationalTime(90000, 25)
    assert "<pathurl>file:///" in copy.read_text()


def test_a_speed_change_left_in_an_fcp_xml_copy_is_written_as_a_time_remap(tmp_path, media):
    """The FCP 7 XML writer drops speed changes (a clip still at 50 % came back at 100 %): the copy
    gives the clip a Time Remap with in and out on the slowed clip's clock, as FCP 7 writes them,
    and reads back as the same clip."""
    timeline = read_timeline(_xml(tmp_path, media, speed_percent=50))
    text = editor_copy_text(timeline, "fcp_xml")
    copy = tmp_path / "copy.xml"
    copy.write_text(text)
    assert text.count("<effectid>timeremap</effectid>") == 1 and "<value>50</value>" in text
    assert "<in>50</in>" in text and "<out>75</out>" in text  # source frame 25 at 50 %: 50 on its clock
    written = list_segments(read_timeline(copy))
    original = list_segments(timeline)
    assert [(s.source_start_frames, s.record_start_frames, s.record_frames) for s in written] == [
        (s.source_start_frames, s.record_start_frames, s.record_frames) for s in original
    ]
    assert [s.time_scalar for s in written] == [1, Fraction(1, 2)]


def test_an_fcp_xml_copy_that_cannot_hold_a_speed_change_is_not_written(tmp_path, media):
    """A hold, or a start that falls between two frames of the retimed clip (source frame 25 at
    200 % is 12.5 on its clock), cannot be written as a Time Remap: named, OTIO only."""
    timeline = read_timeline(_xml(tmp_path, media, speed_percent=200))
    between = (
        r"clip 'shot25' .* keeps its speed change: 200 % from source frame 25, whose in point would fall "
        r"between two frames of the retimed clip \(12.5\).*--speedup"
    )
    with pytest.raises(EditorCopyError, match=between):
        editor_copy_text(timeline, "fcp_xml")
    assert "M2   shot25" in editor_copy_text(timeline, "cmx_3600")  # an EDL holds it as an M2 line
    clip = timeline.tracks[0][1]
    del clip.effects[:]
    clip.effects.append(otio.schema.FreezeFrame())
    with pytest.raises(EditorCopyError, match=r"speed change: FreezeFrame, which FCP 7 XML cannot hold"):
        editor_copy_text(timeline, "fcp_xml")


PREMIERE_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE xmeml>
<xmeml version="4"><sequence id="sequence-1"><name>cut</name><duration>50</duration>
<rate><timebase>25</timebase><ntsc>FALSE</ntsc></rate>
<media><video><track>{items}</track></video></media></sequence></xmeml>
"""
PREMIERE_ITEM = """<clipitem id="clipitem-{n}"><name>shot{n}</name><duration>{duration}</duration>
  <rate><timebase>25</timebase><ntsc>FALSE</ntsc></rate>
  <start>{start}</start><end>{end}</end><in>{first}</in><out>{last}</out>
  <file id="file-1"><name>src.mp4</name><pathurl>{url}</pathurl>
    <rate><timebase>25</timebase><ntsc>FALSE</ntsc></rate><duration>100</duration></file>
  <filter><effect><name>Time Remap</name><effectid>timeremap</effectid><effecttype>motion</effecttype>
    <parameter><parameterid>variablespeed</parameterid><value>{variable}</value></parameter>
    <parameter><parameterid>speed</parameterid><value>{speed}</value></parameter>
    <parameter><parameterid>reverse</parameterid><value>FALSE</value></parameter>
  </effect></filter>
</clipitem>"""


def _premiere_item(n: int, start: int, first: int, speed: int, url: str, variable: int = 0) -> str:
    """Clip n, 25 frames from ``start`` on the timeline, ``in`` at ``first`` on the retimed clock
    of a 100-frame file at ``speed`` percent (Premiere's clipitem duration: the file's on that clock)."""
    return PREMIERE_ITEM.format(
        n=n, start=start, end=start + 25, first=first, last=first + 25, speed=speed, url=url,
        variable=variable, duration=100 * 100 // speed,
    )


def test_a_premiere_xml_with_a_slow_and_a_fast_clip_comes_back_as_xml(tmp_path, media):
    """Premiere's export: a clip at 50 % (rendered) and one at 200 % (passed through, Premiere
    plays it). The copy points the first at its render at 100 % and keeps the second's Time Remap
    and source frames."""
    items = _premiere_item(1, 0, 20, 50, media.as_uri()) + _premiere_item(2, 25, 30, 200, media.as_uri())
    xml = tmp_path / "cut.xml"
    xml.write_text(PREMIERE_XML.format(items=items))
    before = list_segments(read_timeline(xml))
    assert [(s.source_start_frames, s.time_scalar) for s in before] == [(10, Fraction(1, 2)), (60, 2)]
    summary = render_timeline(xml, tmp_path / "out", model="blend", codec="ffv1")
    assert [clip["status"] for clip in summary.clips] == ["rendered", "pass_through"]
    copy = Path(summary.editor_timeline_path)
    assert copy.name == "cut.chronoscope.xml" and not summary.editor_timeline_note
    after = list_segments(read_timeline(copy))
    assert not after[0].is_retimed and after[0].media_path == Path(summary.clips[0]["output"])
    assert (after[1].source_start_frames, after[1].time_scalar, after[1].record_frames) == (60, 2, 25)
    assert copy.read_text().count("<effectid>timeremap</effectid>") == 1
    assert "<duration>50</duration>" in copy.read_text()  # the 100-frame file at 200 %


def test_a_clip_whose_time_remap_is_not_read_comes_back_as_it_was(tmp_path, media):
    """A speed ramp (variable speed) cannot be rendered: the clip is listed as not rendered and
    written back into the XML copy as it was read, its Time Remap and in/out untouched."""
    url = media.as_uri()
    items = _premiere_item(1, 0, 20, 50, url) + _premiere_item(2, 25, 30, 200, url, variable=1)
    xml = tmp_path / "cut.xml"
    xml.write_text(PREMIERE_XML.format(items=items))
    summary = render_timeline(xml, tmp_path / "out", model="blend", codec="ffv1")
    assert [clip["status"] for clip in summary.clips] == ["rendered", "cannot_render"]
    copy = Path(summary.editor_timeline_path)
    assert not summary.editor_timeline_note
    (ramp,) = [item for item in ElementTree.parse(copy).iter("clipitem") if item.findtext("name") == "shot2"]
    assert (ramp.findtext("in"), ramp.findtext("out")) == ("30", "55")
    parameters = {p.findtext("parameterid"): p.findtext("value") for p in ramp.iter("parameter")}
    assert parameters == {"variablespeed": "1", "speed": "200", "reverse": "FALSE"}
    assert copy.read_text().count("<effectid>timeremap</effectid>") == 1


def test_a_fill_of_an_edl_writes_an_edl_with_the_fill(tmp_path, media):
    path = tmp_path / "gap.edl"
    path.write_text(
        "TITLE: gap\nFCM: NON-DROP FRAME\n\n"
        "001  SRC      V     C        00:00:00:00 00:00:01:00 01:00:00:00 01:00:01:00\n"
        f"* FROM CLIP NAME: src.mp4\n* FROM CLIP: {media}\n"
        "002  SRC      V     C        00:00:01:08 00:00:02:00 01:00:01:08 01:00:02:00\n"
        f"* FROM CLIP NAME: src.mp4\n* FROM CLIP: {media}\n"
    )
    summary = fill_gaps(path, tmp_path / "out", gaps=["V1:1"], model="blend", codec="ffv1", rate=25)
    written = read_timeline(Path(summary.editor_timeline_path), rate=25)
    placed = _placed(written)
    assert [(name, start, frames) for name, start, frames, _ in placed] == [
        ("src.mp4", 0, 25), (placed[1][0], 25, 8), ("src.mp4", 33, 17)
    ]
    assert placed[1][3].endswith(".mkv")
    assert not summary.editor_timeline_note  # no audio: nothing left out
    assert written.global_start_time == otio.opentime.RationalTime(90000, 25)


AUDIO_EVENT = "003  SRC      AA    C        00:00:00:00 00:00:02:00 01:00:00:00 01:00:02:00\n"


@pytest.mark.parametrize("job", ["render", "fill"])
def test_an_edl_copy_of_a_timeline_with_audio_says_it_holds_the_video_only(
    tmp_path, media, capsys, caplog, job
):
    """OTIO's EDL writer writes the video track alone: the AA event of the timeline is not in the
    copy, and the render and fill say so (a WARNING, the summary, the line naming the copy)."""
    path = tmp_path / "cut.edl"
    path.write_text(
        "TITLE: cut\nFCM: NON-DROP FRAME\n\n"
        "001  SRC      V     C        00:00:00:00 00:00:01:00 01:00:00:00 01:00:01:00\n"
        f"* FROM CLIP NAME: src.mp4\n* FROM CLIP: {media}\n"
        "002  SRC      V     C        00:00:01:08 00:00:02:00 01:00:01:08 01:00:02:00\n"
        f"{HALF_SPEED if job == 'render' else ''}* FROM CLIP NAME: src.mp4\n* FROM CLIP: {media}\n"
        f"{AUDIO_EVENT}* FROM CLIP NAME: sound\n* FROM CLIP: {media}\n"
    )
    outdir = tmp_path / "out"
    options = ["--rate", "25", "--model", "blend", "--codec", "ffv1"]
    arguments = [job, str(path), "-o", str(outdir), *options]
    arguments += ["--no-engine"] if job == "render" else ["--gap", "V1:1"]
    assert main(arguments) == 0
    copy = outdir / "cut.chronoscope.edl"
    assert copy.is_file()
    # the copy has no audio event: what the note is about
    written = read_timeline(copy, rate=25)
    assert [t.kind for t in written.tracks] == [otio.schema.TrackKind.Video]
    kept = read_timeline(outdir / "cut.chronoscope.otio")
    assert [t.name for t in kept.tracks if t.kind == otio.schema.TrackKind.Audio] == ["A1", "A2"]
    summary = json.loads((outdir / f"cut.{job}-summary.json").read_text())
    note = summary["editor_timeline_note"]
    assert summary["editor_timeline"] == str(copy)
    assert "video events only" in note and "2 audio clips on A1, A2" in note
    assert "cut.chronoscope.otio" in note
    assert f"the same for the editor: {copy}; {note}" in capsys.readouterr().out
    assert any(r.levelname == "WARNING" and "video events only" in r.getMessage() for r in caplog.records)

