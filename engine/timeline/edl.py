"""EDL text made readable by the cmx_3600 adapter without losing a speed change.

Two ways a CMX 3600 EDL can say a clip plays at another speed, and the adapter reads only one:

- the source out is where the source really ends (12 source frames over 24 record frames at
  half speed): the adapter sees the durations differ and applies the ``M2`` line;
- the source out is written as if the clip played at normal speed (what DaVinci Resolve
  exports: OpenTimelineIO issue #948). Source and record durations match, and the adapter
  ignores the ``M2`` line: a half-speed clip reads as real time.

``prepare_edl_text`` rewrites each event of the second kind so that its source out is where the
source really ends (source in + record frames x M2 speed / the timecode's nominal rate), which is
what the adapter then reads as the first kind. The speed itself always comes from the ``M2`` line.
It also accepts an ``M2`` line whose timecode is drop frame (``;``), which the adapter's pattern
does not match.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from fractions import Fraction

import opentimelineio as otio

log = logging.getLogger(__name__)

_TIMECODE = r"\d{2}:\d{2}:\d{2}[:;.]\d{2}"
_EVENT = re.compile(
    rf"^(?P<head>\d+\s+\S+\s+\S+\s+\S+(?:\s+\d+)?\s+)(?P<src_in>{_TIMECODE})(?P<gap1>\s+)"
    rf"(?P<src_out>{_TIMECODE})(?P<gap2>\s+)(?P<rec_in>{_TIMECODE})\s+(?P<rec_out>{_TIMECODE})\s*$"
)
_M2 = re.compile(rf"^M2\s+(?P<reel>\S+)\s+(?P<speed>-?[0-9.]+)\s+(?P<tc>{_TIMECODE})\s*$")
SAME_SPEED_TOLERANCE_FPS = 0.05


@dataclass
class _Event:
    line_index: int
    match: re.Match


def _frames(timecode: str, rate: float) -> int:
    return round(otio.opentime.from_timecode(timecode.replace(".", ":"), rate).value)


def _timecode(frames: int, rate: float, drop_frame: bool) -> str:
    return otio.opentime.to_timecode(otio.opentime.RationalTime(frames, rate), rate, drop_frame)


def prepare_edl_text(text: str, rate: Fraction) -> str:
    """``text`` with every normal-speed source out of an ``M2`` event moved to where the source
    really ends, and drop-frame ``M2`` timecodes written with ``:``; see the module doc."""
    float_rate = float(rate)
    nominal = round(rate)
    lines = text.splitlines(keepends=True)
    event: _Event | None = None
    for index, line in enumerate(lines):
        body = line.rstrip("\r\n")
        found = _EVENT.match(body)
        if found:
            event = _Event(index, found)
            continue
        motion = _M2.match(body)
        if not motion:
            continue
        fixed_tc = motion.group("tc").replace(";", ":")
        if fixed_tc != motion.group("tc"):
            lines[index] = (
                body[: motion.start("tc")] + fixed_tc + body[motion.end("tc") :] + line[len(body) :]
            )
        if event is None:
            continue
        _restate_source_out(lines, event, Fraction(motion.group("speed")), float_rate, nominal)
        event = None
    return "".join(lines)


def _restate_source_out(
    lines: list[str], event: _Event, speed_fps: Fraction, rate: float, nominal: int
) -> None:
    """Move ``event``'s source out where an ``M2`` of ``speed_fps`` ends it, when it is written
    as if at normal speed (source and record durations equal)."""
    found = event.match
    try:
        src_in, src_out = _frames(found.group("src_in"), rate), _frames(found.group("src_out"), rate)
        rec_in, rec_out = _frames(found.group("rec_in"), rate), _frames(found.group("rec_out"), rate)
    except ValueError:
        return  # the adapter says what is wrong with the timecodes
    record = rec_out - rec_in
    if src_out - src_in != record or abs(speed_fps - nominal) <= SAME_SPEED_TOLERANCE_FPS:
        return
    used = round(record * abs(speed_fps) / nominal)
    if used == record:  # a speed this close to 1 still needs durations that differ to be read
        used = record + (1 if abs(speed_fps) > nominal else -1)
    drop_frame = ";" in found.group("src_out")
    new_out = _timecode(src_in + max(used, 0), rate, drop_frame)
    line = lines[event.line_index]
    start, end = found.start("src_out"), found.end("src_out")
    lines[event.line_index] = line[:start] + new_out + line[end:]
    log.debug(
        "EDL event %s: source out %s written at normal speed; M2 %s fps ends it at %s",
        found.group("head").split()[0],
        found.group("src_out"),
        speed_fps,
        new_out,
    )
