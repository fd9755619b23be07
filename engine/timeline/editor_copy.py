"""The new timeline once more in the format the editor exported: an EDL or FCP 7 XML.

A render or fill always writes its new timeline as OTIO. An editor who exported an EDL (Avid,
Premiere, Resolve) or an FCP 7 XML (Premiere, Resolve) needs it back in that format to import it,
so the same timeline is also written in the format it was read from (``editor_copy_path``),
through the same OTIO adapter, with what those writers get wrong put right first:

- **EDL** (cmx_3600): record times count from the timeline's start timecode (the writer counts
  from 00:00:00:00; ``records_from_start``), and a clip re-pointed at a render takes its reel name
  from the render's file, not the camera reel it came from: its source timecodes are the render's
  (which starts at its source's timecode at its first frame, or 00:00:00:00 where the source has
  none), so the camera reel with them would conform to the wrong frames.
  The header gets its ``FCM:`` line back (``frame_code_mode``), which the writer leaves out:
  ``FCM: DROP FRAME`` where the writer wrote drop-frame (``;``) timecodes, ``FCM: NON-DROP FRAME``
  otherwise, as CMX 3600 puts it after the title; tools that go by it read ``;`` timecodes of
  an EDL without one as non-drop.
- **FCP 7 XML**: media are named by ``file://`` URLs (what Premiere relinks).

The EDL writer writes the video track only (OTIO's cmx_3600 ``write_to_string`` writes the
first track, and names every audio track ``A``, so A2 would come back on A1): audio events are
not written. Where the timeline has audio clips, ``left_out_of_copy`` says so, and the render
or fill carries that note in its summary (``editor_timeline_note``) and prints it; the OTIO
timeline keeps the audio.

The XML writer drops speed changes, so a clip still retimed by the editor (a clip sped up and
passed through, or one whose render failed) gets its Time Remap filter back here
(``engine.timeline.fcp7xml_copy``): one forward speed, with ``in`` and ``out`` on the
retimed clip's clock, as Final Cut Pro 7 and Premiere write them; a clip whose Time Remap could
not be read (variable speed, reverse) is written back as it was read. A FreezeFrame, or an ``in``
that would fall between frames on that clock, is not written as XML: ``EditorCopyError`` says
which clip, and the OTIO timeline stands alone. The EDL writer keeps speed changes as M2 lines.

FCPX XML timelines get the OTIO timeline only: the adapter's FCPX writer drops the sequence's start
timecode and places clips of other tracks (connected clips) outside their parents, so what it wrote
could not be trusted to import where the clips were.
"""

from __future__ import annotations

import re
from pathlib import Path

import opentimelineio as otio

from engine.errors import TimelineError, UnsupportedOptionError
from engine.timeline.fcp7xml_copy import mark_time_remaps, time_remapped_xml
from engine.timeline.items import track_labels
from engine.timeline.paths import decode_target_url
from engine.timeline.writeback import METADATA_KEY

EDITOR_SUFFIXES = {"cmx_3600": ".edl", "fcp_xml": ".xml"}
FORMAT_NAMES = {"cmx_3600": "an EDL", "fcp_xml": "FCP 7 XML"}
REEL_CHARACTERS = 8


class EditorCopyError(TimelineError):
    """The new timeline cannot be written in the editor's format (the OTIO one still is)."""


def editor_copy_path(outdir: Path, timeline_path: Path, adapter: str, suffix: str) -> Path | None:
    """``OUTDIR/NAME<suffix minus .otio>.edl`` (or .xml) for a timeline read by ``adapter``; None
    for the formats that get no copy. ``suffix`` is the OTIO timeline's (``.chronoscope.otio``)."""
    extension = EDITOR_SUFFIXES.get(adapter)
    if extension is None:
        return None
    return Path(outdir) / (Path(timeline_path).stem + suffix.removesuffix(".otio") + extension)


def records_from_start(timeline: otio.schema.Timeline) -> otio.schema.Timeline:
    """A copy of ``timeline`` whose EDL record times count from its ``global_start_time``.

    The cmx_3600 writer counts record times from each track's own start, so a timeline starting at
    01:00:00:00 (every EDL that NLEs export) was written back from 00:00:00:00. A track whose range
    starts at minus the timeline's start is what the adapter's reader makes of such an EDL, and
    what its writer turns back into record times from there."""
    start = timeline.global_start_time
    if start is None or start.value == 0:
        return timeline
    copied = timeline.deepcopy()
    for track in copied.tracks:
        duration = track.duration()
        rate = duration.rate if duration.rate > 0 else start.rate
        track.source_range = otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, rate) - start.rescaled_to(rate), duration.rescaled_to(rate)
        )
    return copied


def left_out_of_copy(timeline: otio.schema.Timeline, adapter: str, copy_name: str, otio_name: str) -> str:
    """What the copy ``copy_name`` in ``adapter``'s format leaves out of ``timeline``, in words an
    editor understands ("" when nothing): an EDL holds no audio events (module doc), so the audio
    clips, and the tracks they are on, are named, with ``otio_name``, the timeline that keeps them."""
    if adapter != "cmx_3600":
        return ""
    counts = {
        label: len(list(track.find_clips()))
        for label, (_, track) in track_labels(timeline).items()
        if track.kind == otio.schema.TrackKind.Audio
    }
    counts = {label: count for label, count in counts.items() if count}
    if not counts:
        return ""
    clips = sum(counts.values())
    return (
        f"{copy_name} holds the video events only (OTIO's EDL writer leaves audio out): the {clips} "
        f"audio clip{'s' if clips != 1 else ''} on {', '.join(counts)} are in {otio_name}; keep the "
        "audio of the original timeline, or import the .otio"
    )


def editor_copy_text(timeline: otio.schema.Timeline, adapter: str) -> str:
    """``timeline`` written as ``adapter`` writes it, made right for the editor (module doc).

    Raises ``EditorCopyError`` naming why the format cannot hold this timeline."""
    name = FORMAT_NAMES.get(adapter)
    if name is None:
        raise EditorCopyError(f"{adapter} is not an editor's timeline format")
    copied = timeline.deepcopy()
    remaps = {}
    if adapter == "cmx_3600":
        _reels_of_renders(copied)
        copied = records_from_start(copied)
    else:
        remaps, problem = mark_time_remaps(copied)
        if problem:
            raise EditorCopyError(
                f"{problem}; the new timeline is written as OTIO only (render with --speedup to render every "
                "speed change)"
            )
        _file_urls(copied)
    try:
        text = otio.adapters.write_to_string(copied, adapter_name=adapter)
    except Exception as error:
        # the writers are third-party code: each failure means this format cannot hold the timeline
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise EditorCopyError(f"the new timeline cannot be written as {name}: {reason}") from error
    if remaps:
        text = time_remapped_xml(text, remaps)
    if adapter == "cmx_3600":
        text = frame_code_mode(text)
    return text


FCM_DROP = "FCM: DROP FRAME"
FCM_NON_DROP = "FCM: NON-DROP FRAME"
_DROP_TIMECODE = re.compile(r"\b\d{2}:\d{2}:\d{2};\d{2}\b")


def frame_code_mode(edl_text: str) -> str:
    """``edl_text`` with an ``FCM:`` line in its header (after ``TITLE:``, or first when there is no
    title), saying whether its timecodes are drop frame (any ``HH:MM:SS;FF``) or not; an FCM line
    already there is left as it is."""
    lines = edl_text.splitlines(keepends=True)
    if any(line.startswith("FCM:") for line in lines):
        return edl_text
    events = [line for line in lines if line[:3].isdigit()]
    fcm = FCM_DROP if any(_DROP_TIMECODE.search(line) for line in events) else FCM_NON_DROP
    at = 1 if lines and lines[0].startswith("TITLE:") else 0
    return "".join(lines[:at]) + fcm + "\n" + ("" if at else "\n") + "".join(lines[at:])


def _rendered(clip: otio.schema.Clip) -> bool:
    chronoscope = clip.metadata.get(METADATA_KEY)
    return hasattr(chronoscope, "get") and ("retimed_from" in chronoscope or "fill" in chronoscope)


def _reels_of_renders(timeline: otio.schema.Timeline) -> None:
    """A clip showing a file we made gets a reel named after that file (the render's name without
    its content hash: ``V1_003_bike_5f2a...mov`` -> ``V1003bik``), never its camera reel."""
    for clip in timeline.find_clips():
        url = getattr(clip.media_reference, "target_url", None)
        made = _rendered(clip) or "smooth cut" in (clip.name or "")
        if not made or not url:
            continue
        stem = Path(_path_of(url)).stem
        stem = re.sub(r"_[0-9a-f]{10}$", "", stem)
        reel = re.sub(r"[^A-Za-z0-9]", "", stem)[:REEL_CHARACTERS] or "AX"
        metadata = dict(clip.metadata.get("cmx_3600") or {})
        metadata["reel"] = reel
        clip.metadata["cmx_3600"] = metadata


def _path_of(url: str) -> str:
    try:
        return decode_target_url(url)
    except UnsupportedOptionError:
        return url


def _file_urls(timeline: otio.schema.Timeline) -> None:
    """Plain paths of media become ``file://`` URLs (what Premiere and Final Cut relink)."""
    for clip in timeline.find_clips():
        reference = clip.media_reference
        url = getattr(reference, "target_url", None)
        if url and "://" not in url and Path(url).is_absolute():
            reference.target_url = Path(url).as_uri()
