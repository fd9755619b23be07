"""EDL text made readable by the cmx_3600 adapter: speeds, dissolves and drop frame.

The adapter reads each event block (an event line; a second line with the same number for a
dissolve or wipe; the comment lines after them) as one clip. ``prepare_edl_text`` rewrites what
it would read wrongly, block by block:

- **Speed written as if at normal speed.** A CMX 3600 EDL says a clip plays at another speed in
  two ways, and the adapter reads only one. Either the source out is where the source really ends
  (12 source frames over 24 record frames at half speed): the adapter sees the durations differ
  and applies the ``M2`` line. Or the source out is written as if the clip played at normal speed
  (what DaVinci Resolve and OpenTimelineIO's own writer export: OpenTimelineIO issue #948):
  the durations match and the adapter ignores the ``M2`` line. Each event of the second kind gets
  its source out moved to where the source really ends (source in + record frames x M2 speed /
  the timecode's nominal rate). The speed itself always comes from the ``M2`` line.
- **Which clip an M2 line retimes.** ``M2 <name> <speed> <timecode>`` names the reel it retimes,
  or the clip name (OpenTimelineIO's writer); names may hold spaces, so the speed and timecode are
  read from the right. The adapter applies a block's last ``M2`` to the block's clip whatever it
  names. Here an ``M2`` applies to the side it names (reel, clip name or media file; ``_`` and
  spaces alike): in a dissolve, the first line is the outgoing clip, which is the previous
  event's clip, so its ``M2`` goes there (when that event has none of its own) and only the
  incoming side's ``M2`` stays. When both sides share the name, the timecode (the source in it
  starts at) decides, then the incoming side. A cut's ``M2`` that names nothing in its event is
  still applied to it (the event has one source), with a WARNING.
- **The incoming clip of a dissolve.** The adapter takes the clip's media from ``* FROM CLIP:`` /
  ``* FROM FILE:``, which in a dissolve is the outgoing clip's; the incoming one is in
  ``* TO CLIP:`` / ``* TO FILE:``. Without a ``TO`` line, a ``FROM`` file that the outgoing clip
  uses is not given to the incoming clip: it gets the file its reel has elsewhere in the EDL, or
  none (a WARNING; the clip's media is then reported missing, never taken from another reel).
- Drop-frame ``M2`` timecodes (``;``), which the adapter's pattern does not match, are written
  with ``:``.

``drop_frame_rate`` tells which drop-frame rate an EDL most likely runs at, for an error that names it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import PurePath, PureWindowsPath

import opentimelineio as otio

log = logging.getLogger(__name__)

_TIMECODE = r"\d{2}:\d{2}:\d{2}[:;.]\d{2}"
_EVENT = re.compile(
    rf"^(?P<number>\d+)\s+(?P<reel>\S+)\s+(?P<channel>\S+)\s+\S+(?:\s+\d+)?\s+(?P<src_in>{_TIMECODE})\s+"
    rf"(?P<src_out>{_TIMECODE})\s+(?P<rec_in>{_TIMECODE})\s+(?P<rec_out>{_TIMECODE})$"
)
_EVENT_NUMBER = re.compile(r"^(\d+)")
# a name (spaces allowed), then speed and timecode from the right: "M2   dog slow A001   -025.0   01:00:00:20"
_M2 = re.compile(
    rf"^M2\s+(?P<name>.*?)\s+(?P<speed>[-+]?(?:\d+(?:\.\d*)?|\.\d+))\s+(?P<tc>{_TIMECODE})$"
)
_CLIP_NAME = re.compile(r"^\*?\s*(?P<side>FROM|TO) CLIP NAME:?\s*(?P<value>.*)$")
_MEDIA = re.compile(
    r"^\*?\s*(?:\*\s*OTIO REFERENCE (?P<otio_side>FROM|TO)|(?P<side>FROM|TO) (?:CLIP|FILE))"
    r":?\s*(?P<value>.*)$"
)
_TRUNCATED_REEL = re.compile(r"^\*?\s*OTIO TRUNCATED REEL NAME FROM:?\s*(?P<value>.*)$")
_DROP_FRAME_HEADER = re.compile(r"^FCM:\s*DROP\b", re.IGNORECASE)
_FRAME_FIELD = re.compile(r"\d{2}:\d{2}:\d{2}[:;.](\d{2})")

SAME_SPEED_TOLERANCE_FPS = 0.05
UNNAMED_REELS = frozenset({"AX", "BL", "BLACK", "BARS"})
"""Reels that name no one source (auxiliary, black, bars): never used to find a clip's file."""

FROM, TO = "FROM", "TO"


@dataclass
class _EventLine:
    line_index: int
    match: re.Match

    def group(self, name: str) -> str:
        return self.match.group(name)


@dataclass
class _Motion:
    line_index: int
    name: str
    speed_fps: Fraction
    speed_text: str
    tc: str


@dataclass
class _Side:
    """One source of an event: the outgoing (first) or incoming (second) line of a dissolve, or a cut's
    only line; with the names an ``M2`` may call it by."""

    event: _EventLine
    names: set[str] = field(default_factory=set)
    start_tcs: set[str] = field(default_factory=set)
    motion: _Motion | None = None


@dataclass
class _Block:
    """One event as the adapter reads it: its event lines and the comment lines after them."""

    number: int
    events: list[_EventLine | None]
    comments: list[int] = field(default_factory=list)
    motions: list[_Motion] = field(default_factory=list)
    clip_names: dict[str, list[str]] = field(default_factory=dict)
    media: dict[str, list[str]] = field(default_factory=dict)
    truncated_reels: dict[str, list[str]] = field(default_factory=dict)
    media_lines: list[int] = field(default_factory=list)
    clip_media: str | None = None
    """The file the adapter is to give this block's clip, once decided."""
    sides: list[_Side] = field(default_factory=list)

    @property
    def parsed(self) -> bool:
        return all(event is not None for event in self.events)

    @property
    def is_transition(self) -> bool:
        return len(self.events) == 2

    @property
    def clip_side(self) -> _Side:
        """The side the adapter makes the block's clip of: the incoming one of a dissolve."""
        return self.sides[-1]


def _name_key(name: str) -> str:
    """A name as compared with an ``M2`` line's: case, ``_`` and runs of spaces do not matter."""
    return " ".join(name.replace("_", " ").split()).casefold()


def _file_names(path: str) -> set[str]:
    names = set()
    for pure in (PurePath(path), PureWindowsPath(path)):
        names.update({pure.name, pure.stem})
    return {name for name in names if name}


def _frames(timecode: str, rate: float) -> int:
    return round(otio.opentime.from_timecode(timecode.replace(".", ":"), rate).value)


def _timecode(frames: int, rate: float, drop_frame: bool) -> str:
    return otio.opentime.to_timecode(otio.opentime.RationalTime(frames, rate), rate, drop_frame)


def drop_frame_rate(text: str) -> Fraction | None:
    """The drop-frame rate an EDL most likely runs at: 30000/1001 (29.97), or 60000/1001 (59.94) when
    a timecode counts frames past 29. ``None`` when the EDL is not drop frame (no ``FCM: DROP FRAME``
    line, no ``;`` timecode). The EDL itself never says which of the two."""
    lines = [line.strip() for line in text.splitlines()]
    events = [line for line in lines if _EVENT.match(line)]
    drop = any(_DROP_FRAME_HEADER.match(line) for line in lines) or any(
        ";" in line for line in events
    )
    if not drop:
        return None
    frames = [int(found) for line in events for found in _FRAME_FIELD.findall(line)]
    return Fraction(60000, 1001) if frames and max(frames) >= 30 else Fraction(30000, 1001)


def _blocks(lines: list[str]) -> list[_Block]:
    """Group the lines as the adapter does: a numbered line starts an event, a second line with the
    same number is its transition line, and every other line up to the next event is a comment."""
    blocks: list[_Block] = []
    for index, line in enumerate(lines):
        body = line.strip()
        if not body:
            continue
        number = _EVENT_NUMBER.match(body)
        if number:
            found = _EVENT.match(body)
            event = _EventLine(index, found) if found else None
            current = blocks[-1] if blocks else None
            if current is not None and current.number == int(number.group(1)) and len(current.events) == 1:
                current.events.append(event)
            else:
                blocks.append(_Block(int(number.group(1)), [event]))
            continue
        if blocks:
            _read_comment(blocks[-1], index, body)
    return blocks


def _read_comment(block: _Block, index: int, body: str) -> None:
    block.comments.append(index)
    if motion := _M2.match(body):
        name, speed, tc = motion.group("name").strip(), motion.group("speed"), motion.group("tc")
        block.motions.append(_Motion(index, name, Fraction(speed), speed, tc))
    elif name := _CLIP_NAME.match(body):
        block.clip_names.setdefault(name.group("side"), []).append(name.group("value").strip())
    elif media := _MEDIA.match(body):
        side = media.group("side") or media.group("otio_side")
        block.media.setdefault(side, []).append(media.group("value").strip())
        block.media_lines.append(index)
    elif truncated := _TRUNCATED_REEL.match(body):
        # OTIO's writer puts it after the FROM or TO lines it belongs to
        side = TO if TO in block.media or TO in block.clip_names else FROM
        block.truncated_reels.setdefault(side, []).append(truncated.group("value").strip())


def _reel(event: _EventLine) -> str:
    return event.group("reel")


def _media_by_reel(blocks: list[_Block]) -> dict[str, str]:
    """The file each reel is given by the EDL's cuts and dissolves' TO lines, where it is one file."""
    found: dict[str, set[str]] = {}
    for block in blocks:
        if not block.parsed:
            continue
        side = TO if block.is_transition else FROM
        files = block.media.get(side, [])
        reel = _reel(block.events[-1])
        if files and reel.upper() not in UNNAMED_REELS:
            found.setdefault(reel, set()).add(files[-1])
    return {reel: next(iter(files)) for reel, files in found.items() if len(files) == 1}


def _previous_block(blocks: list[_Block], position: int) -> _Block | None:
    """The event whose clip a dissolve at ``blocks[position]`` dissolves from: the last one before
    it on the same channel that ends where the dissolve's first line starts."""
    outgoing = blocks[position].events[0]
    for block in reversed(blocks[:position]):
        if not block.parsed:
            continue
        last = block.events[-1]
        ends = last.group("rec_out").replace(";", ":") == outgoing.group("rec_in").replace(";", ":")
        if last.group("channel") == outgoing.group("channel") and ends:
            return block
    return None


def _decide_media(blocks: list[_Block], position: int, by_reel: dict[str, str]) -> None:
    """Set the block's ``clip_media`` (the incoming clip's file for a dissolve) and its sides' names."""
    block = blocks[position]
    from_files, to_files = block.media.get(FROM, []), block.media.get(TO, [])
    if not block.is_transition:
        block.sides = [_Side(block.events[0])]
        block.clip_media = (from_files or to_files or [None])[-1]
        names = [*block.clip_names.get(FROM, []), *block.clip_names.get(TO, []),
                 *block.truncated_reels.get(FROM, []), *block.truncated_reels.get(TO, [])]
        _name_side(block.sides[0], names, block.clip_media)
        return
    outgoing, incoming = _Side(block.events[0]), _Side(block.events[1])
    block.sides = [outgoing, incoming]
    previous = _previous_block(blocks, position)
    from_file = from_files[-1] if from_files else None
    same_reel = _reel(outgoing.event) == _reel(incoming.event)
    outgoing_file = None
    if to_files:
        block.clip_media, outgoing_file = to_files[-1], from_file
    elif from_file is None or same_reel:
        block.clip_media = from_file or by_reel.get(_reel(incoming.event))
        outgoing_file = from_file
    elif from_file in {previous.clip_media if previous else None, by_reel.get(_reel(outgoing.event))}:
        outgoing_file = from_file
        block.clip_media = by_reel.get(_reel(incoming.event))
        if block.clip_media is None and _reel(incoming.event).upper() not in UNNAMED_REELS:
            log.warning(
                "EDL event %03d: the dissolve to reel %s gives no file for it (its * FROM CLIP is the "
                "outgoing clip's %s); add a * TO CLIP: line naming the incoming clip's file",
                block.number, _reel(incoming.event), from_file,
            )
    else:
        block.clip_media = from_file
    outgoing_names = [*block.clip_names.get(FROM, []), *block.truncated_reels.get(FROM, [])]
    _name_side(outgoing, outgoing_names, outgoing_file)
    incoming_names = block.clip_names.get(TO, []) or ([] if not same_reel else block.clip_names.get(FROM, []))
    _name_side(incoming, [*incoming_names, *block.truncated_reels.get(TO, [])], block.clip_media)
    if previous is not None:
        outgoing.names |= previous.clip_side.names
        outgoing.start_tcs.add(previous.clip_side.event.group("src_in"))


def _name_side(side: _Side, names: list[str], media: str | None) -> None:
    side.names.add(_name_key(_reel(side.event)))
    side.names.update(_name_key(name) for name in names if name)
    if media:
        side.names.update(_name_key(name) for name in _file_names(media))
    side.start_tcs.add(side.event.group("src_in"))


def _assign_motions(block: _Block) -> list[tuple[_Side, _Motion]]:
    """Give each of the block's ``M2`` lines to the side it names; see the module doc."""
    assigned = []
    for motion in block.motions:
        key = _name_key(motion.name)
        named = [side for side in block.sides if key in side.names]
        if not named:
            if block.is_transition:
                log.warning(
                    "EDL event %03d: M2 %r names neither side of the dissolve (reels %s, %s); applied to the "
                    "incoming clip", block.number, motion.name, _reel(block.sides[0].event),
                    _reel(block.sides[1].event),
                )
            else:
                log.warning(
                    "EDL event %03d: M2 %r does not name the event's reel %s or clip; applied to it, as its "
                    "only source", block.number, motion.name, _reel(block.sides[0].event),
                )
            named = [block.clip_side]
        if len(named) > 1:
            tc = motion.tc.replace(";", ":")
            by_tc = [side for side in named if tc in {start.replace(";", ":") for start in side.start_tcs}]
            named = by_tc if len(by_tc) == 1 else [block.clip_side]
        side = named[0]
        if side.motion is not None and side.motion.speed_fps != motion.speed_fps:
            log.warning(
                "EDL event %03d: two M2 lines for reel %s (%s and %s fps); the last is used",
                block.number, _reel(side.event), side.motion.speed_fps, motion.speed_fps,
            )
        side.motion = motion
        assigned.append((side, motion))
    return assigned


def prepare_edl_text(text: str, rate: Fraction) -> str:
    """``text`` rewritten so that the cmx_3600 adapter reads each clip's media, name and speed as the
    EDL means them; see the module doc."""
    float_rate = float(rate)
    nominal = round(rate)
    lines = text.splitlines(keepends=True)
    blocks = _blocks(lines)
    by_reel = _media_by_reel(blocks)
    inserted: dict[int, list[str]] = {}
    for position, block in enumerate(blocks):
        if not block.parsed:
            continue  # frame numbers or a malformed line: the adapter reads it, or says what is wrong
        _decide_media(blocks, position, by_reel)
        for side, motion in _assign_motions(block):
            if side is not block.clip_side:
                _give_to_previous(blocks, position, motion, inserted)
        kept = block.clip_side.motion
        for motion in block.motions:
            if motion is not kept:
                lines[motion.line_index] = ""
        if block.is_transition:
            _rewrite_transition_media(lines, block, inserted)
    for block in blocks:
        if not block.parsed:
            continue
        motion = block.clip_side.motion
        if motion is not None:
            _write_motion(lines, motion)
            _restate_source_out(lines, block.clip_side.event, motion.speed_fps, float_rate, nominal)
    for index, extra in inserted.items():
        lines[index] = lines[index].rstrip("\r\n") + "\n" + "".join(extra)
    return "".join(lines)


def _give_to_previous(
    blocks: list[_Block], position: int, motion: _Motion, inserted: dict[int, list[str]]
) -> None:
    """Apply a dissolve's outgoing-side ``M2`` to the previous event's clip, which that side is."""
    block = blocks[position]
    previous = _previous_block(blocks, position)
    if previous is None or not previous.sides:
        log.debug("EDL event %03d: M2 %r is for the outgoing side, which has no event of its own",
                  block.number, motion.name)
        return
    own = previous.clip_side.motion
    if own is None:
        previous.clip_side.motion = _Motion(-1, motion.name, motion.speed_fps, motion.speed_text, motion.tc)
        line = f"M2   {motion.name}   {motion.speed_text}   {motion.tc.replace(';', ':')}\n"
        inserted.setdefault(previous.events[-1].line_index, []).append(line)
        log.debug("EDL event %03d: its outgoing side's M2 %s fps applies to event %03d",
                  block.number, motion.speed_fps, previous.number)
    elif own.speed_fps != motion.speed_fps:
        log.warning(
            "EDL event %03d: the outgoing side's M2 says %s fps, but event %03d (the same clip) says %s fps; "
            "%s fps is used", block.number, motion.speed_fps, previous.number, own.speed_fps, own.speed_fps,
        )


def _write_motion(lines: list[str], motion: _Motion) -> None:
    """An ``M2`` line the adapter reads: drop-frame timecode written with ``:``."""
    if motion.line_index < 0:
        return
    fixed_tc = motion.tc.replace(";", ":")
    if fixed_tc != motion.tc:
        line = lines[motion.line_index]
        lines[motion.line_index] = line.replace(motion.tc, fixed_tc)


def _rewrite_transition_media(lines: list[str], block: _Block, inserted: dict[int, list[str]]) -> None:
    """Leave one ``* FROM CLIP:`` line, the incoming clip's file (none when the EDL gives none), and no
    ``FROM CLIP NAME`` when it names the outgoing clip only: the adapter reads the block's clip from them."""
    for index in block.media_lines:
        lines[index] = ""
    if block.clip_media:
        inserted.setdefault(block.events[-1].line_index, []).append(f"* FROM CLIP: {block.clip_media}\n")
    same_reel = _reel(block.events[0]) == _reel(block.events[1])
    if TO not in block.clip_names and not same_reel:
        for index in block.comments:
            found = _CLIP_NAME.match(lines[index].strip())
            if found and found.group("side") == FROM:
                lines[index] = ""


def _restate_source_out(
    lines: list[str], event: _EventLine, speed_fps: Fraction, rate: float, nominal: int
) -> None:
    """Move ``event``'s source out where an ``M2`` of ``speed_fps`` ends it, when it is written
    as if at normal speed (source and record durations equal)."""
    try:
        src_in, src_out = _frames(event.group("src_in"), rate), _frames(event.group("src_out"), rate)
        rec_in, rec_out = _frames(event.group("rec_in"), rate), _frames(event.group("rec_out"), rate)
    except ValueError:
        return  # the adapter says what is wrong with the timecodes
    record = rec_out - rec_in
    if src_out - src_in != record or abs(speed_fps - nominal) <= SAME_SPEED_TOLERANCE_FPS:
        return
    used = round(record * abs(speed_fps) / nominal)
    if used == record:  # a speed this close to 1 still needs durations that differ to be read
        used = record + (1 if abs(speed_fps) > nominal else -1)
    drop_frame = ";" in event.group("src_out")
    new_out = _timecode(src_in + max(used, 0), rate, drop_frame)
    body = lines[event.line_index].strip()  # matched stripped; the adapter strips every line too
    start, end = event.match.start("src_out"), event.match.end("src_out")
    lines[event.line_index] = body[:start] + new_out + body[end:] + "\n"
    log.debug(
        "EDL event %s: source out %s written at normal speed; M2 %s fps ends it at %s",
        event.group("number"), event.group("src_out"), speed_fps, new_out,
    )
