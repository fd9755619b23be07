"""A media file's start timecode: where its first frame sits on the camera's clock.

Camera files carry it as a ``timecode`` tag (QuickTime ``tmcd`` track, MXF, MP4), which FFmpeg
reports on the video stream or the container. EDLs and FCP XML name source frames by that clock:
source 01:00:00:12 in a file that starts at 01:00:00:00 is the file's 13th frame.
"""

from __future__ import annotations

import re
from fractions import Fraction

from engine.media.probe import MediaInfo

_TIMECODE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})$")
DROP_FRAME_RATES = (Fraction(30000, 1001), Fraction(60000, 1001))


def start_timecode(info: MediaInfo) -> str | None:
    """The ``timecode`` tag of the first video stream, else of the container, else None."""
    for tags in (info.video_stream.metadata, info.metadata):
        value = tags.get("timecode")
        if value:
            return value.strip()
    return None


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
