"""Deinterlacing in the decoder: FFmpeg's bwdif filter, one progressive frame per interlaced frame.

An interlaced frame holds two fields captured 1/(2 x frame rate) apart; making frames between two
such frames mixes both fields' motion and shows combing. ``FieldMerger`` runs each decoded frame
through bwdif (``mode=send_frame``: the frame rate and the frame count stay as they are,
``deint=interlaced``: progressive frames of a mixed stream pass untouched, ``parity=auto``: the
field order comes from each frame's flags, so top and bottom field first both work).

bwdif looks one frame ahead, so output lags input by one frame and ``flush`` returns the last. The
filter moves frames to a finer time base; each output frame is given back its pts in the stream's
time base, so readers keep numbering frames by pts exactly.
"""

from __future__ import annotations

from fractions import Fraction

import av

BWDIF_OPTIONS = "mode=send_frame:parity=auto:deint=interlaced"


class FieldMerger:
    """Feed decoded frames in order; get progressive frames with their original pts."""

    def __init__(self, time_base: Fraction) -> None:
        self.time_base = Fraction(time_base)
        self._graph: av.filter.Graph | None = None

    def feed(self, frame: av.VideoFrame) -> list[av.VideoFrame]:
        """Push one decoded frame; return the frames the filter has ready (zero or one, usually)."""
        if self._graph is None:
            self._graph = self._build(frame)
        self._graph.vpush(frame)
        return self._drain()

    def flush(self) -> list[av.VideoFrame]:
        """The frames still held at the end of the stream."""
        if self._graph is None:
            return []
        self._graph.vpush(None)
        return self._drain()

    def _build(self, first: av.VideoFrame) -> av.filter.Graph:
        graph = av.filter.Graph()
        source = graph.add_buffer(
            width=first.width, height=first.height, format=first.format.name, time_base=self.time_base
        )
        merge = graph.add("bwdif", BWDIF_OPTIONS)
        sink = graph.add("buffersink")
        source.link_to(merge)
        merge.link_to(sink)
        graph.configure()
        return graph

    def _drain(self) -> list[av.VideoFrame]:
        assert self._graph is not None
        ready = []
        while True:
            try:
                frame = self._graph.vpull()
            except (av.BlockingIOError, av.EOFError):
                return ready
            if frame.pts is not None and frame.time_base is not None and frame.time_base != self.time_base:
                frame.pts = round(Fraction(frame.pts) * Fraction(frame.time_base) / self.time_base)
                frame.time_base = self.time_base
            ready.append(frame)
