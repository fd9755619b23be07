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
