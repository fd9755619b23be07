"""Every error Chronoscope raises on purpose.

One flat family: catch ``ChronoscopeError`` for all of them, or a named subclass for one kind.
Each message says what was given and, where there is a choice, what would have worked, so that
an editor can act on it without a traceback.

Some classes also derive from the builtin they resemble (``FileNotFoundError``, ``ValueError``)
so that callers who know only the standard library still catch them.
"""

from __future__ import annotations


class ChronoscopeError(Exception):
    """Base of every error Chronoscope raises on purpose."""


class MediaNotFoundError(ChronoscopeError, FileNotFoundError):
    """A media file (or a file an OTIO clip points at) does not exist."""


class NotVideoError(ChronoscopeError, ValueError):
    """The file exists but holds no decodable video stream."""


class CorruptMediaError(ChronoscopeError, ValueError):
    """The video stream is truncated, corrupt, or cannot be decoded where it should."""


class EmptyMediaError(ChronoscopeError, ValueError):
    """The clip has no frames."""


class FrameOutOfRangeError(ChronoscopeError, IndexError):
    """A frame index or time lies outside the clip."""


class UnsupportedOptionError(ChronoscopeError, ValueError):
    """An option has a value we do not support; the message lists what would work."""


class MediaWriteError(ChronoscopeError, OSError):
    """Writing output media failed; nothing partial is left at the destination."""


class TimelineError(ChronoscopeError, ValueError):
    """An OTIO file (or EDL/XML) cannot be read, or is not a timeline."""


class InvalidTimeWarpError(TimelineError):
    """A time warp has a scalar of zero, below zero, NaN, or infinity."""


class AdapterNotAvailableError(TimelineError):
    """No installed OTIO adapter reads or writes the requested format."""
