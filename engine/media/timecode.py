"""A media file's start timecode: where its first frame sits on the camera's clock.

Camera files carry it as a ``timecode`` tag (QuickTime ``tmcd`` track, MXF, MP4), which FFmpeg
reports on the video stream or the container. EDLs and FCP XML name source frames by that clock:
source 01:00:00:12 in a file that starts at 01:00:00:00 is the file's 13th frame.

The tag labels the start of the timecode track, not necessarily the first frame: a QuickTime or
MP4 file whose picture starts later than its ``tmcd`` track (frames dropped at the start, a video
track that begins 0.066 s in) shows 01:00:00;02 on its first frame when the tag says 01:00:00;00.
``start_timecode`` gives the first frame's label, counted on by that offset, so that everything
that labels a file's frames (probe, the preview app, EDL source times in a render, the timecode a
retime or repair writes) names the same frame alike.
"""

from __future__ import annotations

import logging
import math
import re
from fractions import Fraction

from engine.errors import ChronoscopeError
from engine.media._open import open_input
from engine.media.probe import MediaInfo

log = logging.getLogger(__name__)

_TIMECODE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})$")
DROP_FRAME_RATES = (Fraction(30000, 1001), Fraction(60000, 1001))


def timecode_tag(info: MediaInfo) -> str | None:
    """The ``timecode`` tag of the first video stream, else of the container, else None: the
    label of the timecode track's start (``start_timecode`` labels the first frame)."""
    for tags in (info.video_stream.metadata, info.metadata):
        value = tags.get("timecode")
        if value:
            return value.strip()
    return None


def start_timecode(info: MediaInfo) -> str | None:
    """The timecode of the file's first video frame, or None when it has none: the ``timecode``
    tag, counted on by the frames the picture starts after its timecode track (see the module
    doc). A tag that is not a timecode is given as it is."""
    tag = timecode_tag(info)
    if tag is None:
        return None
    video = info.video_stream
    # the rate the stream is stamped at (a clip with dropped frames averages less)
    rate = video.r_frame_rate or video.guessed_rate or video.frame_rate
    offset_s = video.start_s - _timecode_track_start_s(info)
    frames = round(offset_s * rate) if rate else 0
    if frames == 0:
        return tag
    shifted = timecode_after(tag, frames, rate)
    if shifted is None:
        return tag
    log.debug(
        "%s: the picture starts %s s after the timecode track (%d frames): its first frame is %s, "
        "not %s",
        info.path,
        offset_s,
        frames,
        shifted,
        tag,
    )
    return shifted


def _timecode_track_start_s(info: MediaInfo) -> Fraction:
    """Where the file's timecode track starts (a data stream with a ``timecode`` tag: QuickTime's
    and MP4's ``tmcd``); the video's own start where there is none (MXF, a tag in the header), so
    that the tag labels the first frame."""
    try:
        with open_input(info.path) as container:
            for stream in container.streams.data:
                if stream.metadata.get("timecode") and stream.start_time is not None and stream.time_base:
                    return stream.start_time * Fraction(stream.time_base)
    except ChronoscopeError as error:
        log.debug("%s: no timecode track read (%s)", info.path, error)
    return info.video_stream.start_s


def is_drop_frame_rate(rate: Fraction) -> bool:
    """29.97 or 59.94 fps, however the file states it (30000/1001, or 2997/100 from a QuickTime
    timescale of 2997)."""
    return any(abs(float(rate) - float(ntsc)) < 0.01 for ntsc in DROP_FRAME_RATES)


def timecode_frames(timecode: str, rate: Fraction) -> int | None:
    """The frame number ``timecode`` labels, counted from 00:00:00:00 at ``rate``'s nominal
    (whole) rate, or None when it is not a timecode. ``;`` (or ``,``) marks drop frame at 29.97
    and 59.94: frame numbers 0 and 1 (0 to 3 at 59.94) are skipped at every minute but each tenth."""
    found = _TIMECODE.match(timecode.strip())
    if not found or rate <= 0:
        return None
    hours, minutes, seconds, separator, frames = found.groups()
    hours, minutes, seconds, frames = int(hours), int(minutes), int(seconds), int(frames)
    nominal = round(rate)
    if minutes > 59 or seconds > 59 or frames >= nominal:
        return None
    count = ((hours * 60 + minutes) * 60 + seconds) * nominal + frames
    if separator in ";," and is_drop_frame_rate(rate):
        dropped_per_minute = 2 * nominal // 30
        total_minutes = hours * 60 + minutes
        count -= dropped_per_minute * (total_minutes - total_minutes // 10)
    return count


def timecode_seconds(timecode: str, rate: Fraction) -> Fraction | None:
    """Seconds from 00:00:00:00 to ``timecode`` for a file running at ``rate``, or None."""
    frames = timecode_frames(timecode, rate)
    return None if frames is None else Fraction(frames) / rate


def timecode_text(frames: int, rate: Fraction, *, drop_frame: bool = False) -> str:
    """The timecode labelling frame number ``frames`` (from 00:00:00:00) at ``rate``'s nominal
    rate; with ``drop_frame`` at 29.97 or 59.94 the labels skipped each minute but every tenth
    are skipped, and ``;`` marks it. Wraps at 24 hours, as camera clocks do."""
    nominal = round(rate)
    drop_frame = drop_frame and is_drop_frame_rate(rate)
    count = frames % (24 * 3600 * nominal) if not drop_frame else frames
    if drop_frame:
        dropped = 2 * nominal // 30
        per_ten_minutes = nominal * 600 - 9 * dropped
        per_minute = nominal * 60 - dropped
        count %= 24 * 6 * per_ten_minutes
        tens, rest = divmod(count, per_ten_minutes)
        count += 9 * dropped * tens + (dropped * ((rest - dropped) // per_minute) if rest > dropped else 0)
    seconds, frame = divmod(count, nominal)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{hour:02d}:{minute:02d}:{second:02d}{';' if drop_frame else ':'}{frame:02d}"


def timecode_after(timecode: str, frames: int, rate: Fraction) -> str | None:
    """The timecode ``frames`` frames after ``timecode`` (drop frame kept), or None when
    ``timecode`` is not one: the start timecode of a part of a clip from its In frame."""
    start = timecode_frames(timecode, rate)
    if start is None:
        return None
    drop_frame = _TIMECODE.match(timecode.strip()).group(4) in ";,"
    return timecode_text(start + frames, rate, drop_frame=drop_frame)


def timecode_at_rate(timecode: str, rate: Fraction, output_rate: Fraction) -> str | None:
    """``timecode`` (a label at ``rate``) as the label of the frame of a file at ``output_rate``
    that starts at the same instant or just before it, or None when it is not a timecode. Where
    both count the same frames a second (24 and 23.976 alike) the label stays (drop frame only
    where ``output_rate`` has it); otherwise it goes through the clock: 01:00:00:49 at 50 fps is
    01:00:00:24 at 25."""
    count = timecode_frames(timecode, rate)
    if count is None:
        return None
    drop_frame = _TIMECODE.match(timecode.strip()).group(4) in ";,"
    if round(rate) != round(output_rate):
        count = math.floor(count * Fraction(output_rate) / Fraction(rate))
    return timecode_text(count, output_rate, drop_frame=drop_frame)
