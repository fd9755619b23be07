"""The clock the app labels source positions with: the file's own timecode.

Camera files carry a start timecode (``engine.media.timecode.start_timecode``: the first frame's
label on the camera's clock, ``15:44:35:10``); editors match shots by it, so the transport, the
ruler and the In/Out marks show start timecode + position, as ``chronoscope probe`` reports it and
as a retime's output carries it. A file without one is counted from ``00:00:00:00`` in non-drop
frame, as before (nothing says otherwise; a retime of it carries no timecode either). Drop frame
follows the file's tag: ``01:00:00;00`` at 29.97 or 59.94 is labelled with ``;``. A position
between frames keeps its exact sub-frame part: ``15:44:36:10+1/4``.

    clock = SourceClock.of(Fraction(30000, 1001), "15:44:35:10")
    clock.text(Fraction(121, 4))      # '15:44:36:10+1/4'
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction

from engine.media.timecode import is_drop_frame_rate, timecode_frames, timecode_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceClock:
    """Labels for a clip's source positions: ``start_frames`` is the timecode frame number of
    the clip's frame 0 (counted from 00:00:00:00 at the rate's nominal whole rate)."""

    rate: Fraction
    start_frames: int = 0
    drop_frame: bool = False
    start_timecode: str | None = None
    """The file's start timecode as the file gives it; None when it has none (counted from 0)."""

    @classmethod
    def of(cls, rate: Fraction, start_timecode: str | None = None) -> SourceClock:
        """The clock of a clip at ``rate`` whose first frame is labelled ``start_timecode`` (a
        tag that is not a timecode is logged and ignored: counted from 0)."""
        rate = Fraction(rate)
        if start_timecode:
            start = timecode_frames(start_timecode, rate)
            if start is not None:
                drop = any(mark in start_timecode for mark in ";,") and is_drop_frame_rate(rate)
                return cls(rate, start, drop, start_timecode.strip())
            log.warning("start timecode %r is not one at %s fps; counting from 0", start_timecode, rate)
        return cls(rate, 0, False, None)

    def frame_text(self, frame: int) -> str:
        """The timecode of the clip's whole frame ``frame``."""
        return timecode_text(self.start_frames + int(frame), self.rate, drop_frame=self.drop_frame)

    def text(self, position_frames: Fraction | int) -> str:
        """``HH:MM:SS:FF`` (``;FF`` in drop frame) for a source position, the sub-frame part as
        ``+1/4``."""
        position_frames = Fraction(position_frames)
        whole = int(position_frames)
        phase = position_frames - whole
        text = self.frame_text(whole)
        return f"{text}+{phase.numerator}/{phase.denominator}" if phase else text

    def timecode_number(self, frame: int) -> int:
        """The timecode frame number of the clip's frame ``frame`` (for round ruler ticks)."""
        return self.start_frames + int(frame)

    def describe(self) -> str:
        """What the clock is, for the inspector."""
        kind = "drop frame" if self.drop_frame else "non-drop frame"
        if self.start_timecode is None:
            zero = self.frame_text(0)
            return f"counted from {zero} (the file has no start timecode), {kind}"
        return f"source timecode: the file's, from {self.start_timecode} at frame 0, {kind}"
