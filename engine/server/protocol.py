"""The engine's wire protocol: message types, frame layout, signing and checking.

Every message on every socket (requests, replies, control, events) is one ZeroMQ multipart
message with this layout::

    [identity, ...]        zero or more routing frames (ROUTER identities; the topic on PUB)
    b"<CHRONO|MSG>"        the delimiter
    signature              HMAC-SHA256 hexdigest (ASCII) over the frames below, in order
    header                 JSON object: msg_id, msg_type, version, date, session, parent_id
    content                JSON object, depends on msg_type
    buffer, ...            zero or more raw binary buffers (images), described in the content

``serialize`` and ``deserialize`` are the only code that builds or reads these frames; ``send``
and ``recv`` are thin wrappers around them. Nothing on the wire is pickled.

A message is refused, with a reason, when it is: *oversized* (header + content over
``Limits.max_json_bytes``, one buffer over ``Limits.max_frame_bytes``, buffers together over
``Limits.max_buffer_bytes``, or too many buffers; checked before anything is hashed), *unsigned*
(empty signature), of *invalid signature* (checked with ``hmac.compare_digest``), a *duplicate*
(its signature was seen before: a replay), *malformed* (no delimiter, missing frames, JSON that
does not parse, holds a number that is not finite (``NaN``, ``Infinity``, ``1e999``) or lacks
header fields), of a *wrong protocol version* (another major version), or of an *unknown message
type* for the channel that received it.

Requests get a reply of type ``<request>_reply`` whose header's ``parent_id`` is the request's
``msg_id``; its content has ``status`` ``"ok"`` or ``"error"`` (then ``ename`` and ``evalue``).
A refused message whose sender is known gets a ``refused`` reply with the reason. The ``refused``
message is the one every protocol version reads alike: its header has the fields above, its
content ``status`` ("error"), ``ename``, ``evalue``, ``reason`` and ``protocol_version`` (what the
sender of the refusal speaks), and ``deserialize`` accepts it whatever version its header names,
so that a client of another major version hears why it was refused instead of timing out.

Events go out on the PUB socket with the job id as topic (the first frame): ``welcome`` (sent when
a subscription arrives, so a subscriber knows it is connected), ``status`` (job state changes),
``progress``, ``log``, ``result`` and ``error``.

Images travel as raw buffers: the content holds an array descriptor ``{"buffer": index,
"shape": [...], "dtype": "uint8" | "uint16" | "float32"}`` (little-endian, C order), and
``decode_array`` views the received frame without copying it. Large frames may instead travel
through the frame exchange (``engine.server.exchange``): a memory-mapped file in the engine's
private folder, named with its offsets, shapes and dtypes in the signed content.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import zmq

from engine.errors import MessageRefusedError, UnsupportedOptionError

log = logging.getLogger(__name__)

PROTOCOL_VERSION = "1.0"
DELIMITER = b"<CHRONO|MSG>"
SIGNATURE_SCHEME = "hmac-sha256"

REQUEST_TYPES = frozenset(
    {
        "ping",
        "info",
        "detect_speed",
        "synthesize",
        "retime",
        "render_timeline",
        "job_status",
        "cancel",
        "shutdown",
    }
)
CONTROL_TYPES = frozenset({"ping", "cancel", "shutdown"})
REPLY_TYPES = frozenset(f"{name}_reply" for name in REQUEST_TYPES)
REFUSED = "refused"
EVENT_TYPES = frozenset({"welcome", "status", "progress", "log", "result", "error"})
MESSAGE_TYPES = REQUEST_TYPES | REPLY_TYPES | EVENT_TYPES | {REFUSED}

# Reasons a message is refused; each appears in the log line and in the ``refused`` reply.
UNSIGNED = "unsigned"
INVALID_SIGNATURE = "invalid signature"
DUPLICATE = "duplicate"
WRONG_VERSION = "wrong protocol version"
MALFORMED = "malformed"
OVERSIZED = "oversized"
UNKNOWN_TYPE = "unknown message type"

ARRAY_DTYPES: dict[str, np.dtype] = {
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
    "float32": np.dtype("<f4"),
}

_HEADER_FIELDS = ("msg_id", "msg_type", "version", "date", "session")
_MAX_ID_CHARS = 128

Buffer = bytes | bytearray | memoryview | np.ndarray | zmq.Frame


@dataclass(frozen=True)
class Limits:
    """Size limits for one message; a message over any of them is refused as oversized."""

    max_json_bytes: int = 16 * 1024 * 1024
    max_buffer_bytes: int = 1024 * 1024 * 1024
    max_buffers: int = 1024
    """Buffers in one message: a synthesize reply holds two per time (256 times at most). The engine
    takes far fewer in a request (``server.MAX_REQUEST_BUFFERS``)."""
    digest_history: int = 65536
    max_frame_bytes: int = 512 * 1024 * 1024
    """The largest single buffer: an 8192 x 8192 RGBA 16-bit frame (the OFX bridge sends 8K DCI
    float frames, 283 MB, as one buffer each; 256 MiB dropped them); larger frames go through the
    frame exchange. An engine also gives it to ZeroMQ (``MAXMSGSIZE``), which drops a bigger frame as it
    arrives, before it is held in memory whole."""

    def __post_init__(self) -> None:
        names = ("max_json_bytes", "max_buffer_bytes", "max_buffers", "digest_history", "max_frame_bytes")
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UnsupportedOptionError(f"{name} = {value!r}; it must be a whole number of at least 1")

    @property
    def largest_frame_bytes(self) -> int:
        """The largest frame of any kind a message may hold: what ZeroMQ is told (``MAXMSGSIZE``)."""
        return max(self.max_json_bytes, min(self.max_frame_bytes, self.max_buffer_bytes))


@dataclass(frozen=True)
class Header:
    msg_id: str
    msg_type: str
    version: str
    date: str
    session: str
    parent_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "msg_id": self.msg_id,
            "msg_type": self.msg_type,
            "version": self.version,
            "date": self.date,
            "session": self.session,
            "parent_id": self.parent_id,
        }


@dataclass
class Message:
    """One message: routing identities, header, JSON content and raw buffers."""

    header: Header
    content: dict[str, Any]
    buffers: list[Buffer] = field(default_factory=list)
    identities: list[bytes] = field(default_factory=list)

    @property
    def msg_type(self) -> str:
        return self.header.msg_type

    @property
    def msg_id(self) -> str:
        return self.header.msg_id

    @property
    def parent_id(self) -> str | None:
        return self.header.parent_id


def _utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def _new_id() -> str:
    return uuid.uuid4().hex


def _json_bytes(value: dict[str, Any]) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise UnsupportedOptionError(f"message content cannot be sent as JSON: {error}") from None


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 40 else f"{text[:40]}... ({len(text)} characters)"
        raise ValueError(f"the number {shown} is too large to be finite")
    return value


def _loads(data: bytes) -> Any:
    return json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float)


def _view(frame: Buffer) -> memoryview:
    if isinstance(frame, zmq.Frame):
        return frame.buffer
    view = memoryview(frame)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return view


def _version_major(version: str) -> str:
    return version.split(".", 1)[0]


def _refuse(
    reason: str, detail: str, identities: Sequence[bytes], parent_id: str | None = None
) -> MessageRefusedError:
    return MessageRefusedError(
        f"message refused ({reason}): {detail}", reason=reason, identities=identities, parent_id=parent_id
    )


class Session:
    """Signs, serializes, checks and deserializes messages with one shared key.

    ``key`` is the connection file's key (hex text or bytes); an empty key is refused, since an
    unsigned engine would run whatever any local process sends it. One ``Session`` may be used
    from several threads; only the replay history is shared and it is locked.
    """

    def __init__(self, key: str | bytes, *, limits: Limits | None = None, session_id: str | None = None):
        key_bytes = key.encode("ascii") if isinstance(key, str) else bytes(key)
        if not key_bytes:
            raise UnsupportedOptionError("an empty signing key was given; the engine needs a random key")
        self._key = key_bytes
        self.limits = limits or Limits()
        self.session_id = session_id or _new_id()
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._seen_lock = threading.Lock()

    def new_header(self, msg_type: str, parent_id: str | None = None) -> Header:
        return Header(
            msg_id=_new_id(),
            msg_type=msg_type,
            version=PROTOCOL_VERSION,
            date=_utc_now_iso(),
            session=self.session_id,
            parent_id=parent_id,
        )

    def message(
        self,
        msg_type: str,
        content: dict[str, Any] | None = None,
        *,
        buffers: Iterable[Buffer] = (),
        parent: Message | None = None,
        identities: Iterable[bytes] | None = None,
    ) -> Message:
        """A new message; a reply (``parent`` given) goes back to the parent's identities."""
        if msg_type not in MESSAGE_TYPES:
            raise UnsupportedOptionError(
                f"message type {msg_type!r} is not part of protocol {PROTOCOL_VERSION}; "
                f"known: {', '.join(sorted(MESSAGE_TYPES))}"
            )
        routing = list(identities) if identities is not None else list(parent.identities) if parent else []
        return Message(
            header=self.new_header(msg_type, parent.msg_id if parent else None),
            content=dict(content or {}),
            buffers=list(buffers),
            identities=routing,
        )

    def sign(self, parts: Iterable[Buffer]) -> bytes:
        """HMAC-SHA256 hexdigest (ASCII bytes) over ``parts`` in order."""
        digest = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in parts:
            digest.update(_view(part))
        return digest.hexdigest().encode("ascii")

    def serialize(self, message: Message) -> list[Buffer]:
        """The frames of ``message``, signed. Buffers are passed through without copying."""
        header = _json_bytes(message.header.to_dict())
        content = _json_bytes(message.content)
        buffers = [np.ascontiguousarray(b) if isinstance(b, np.ndarray) else b for b in message.buffers]
        signature = self.sign([header, content, *buffers])
        return [*message.identities, DELIMITER, signature, header, content, *buffers]

    def deserialize(self, frames: Sequence[Buffer], *, accept: frozenset[str] = MESSAGE_TYPES) -> Message:
        """Check and decode received frames; raise ``MessageRefusedError`` naming the reason.

        Buffers come back as memoryviews of the received frames (no copy).
        """
        views = [_view(frame) for frame in frames]
        position = next((i for i, view in enumerate(views) if view == DELIMITER), None)
        if position is None:
            raise _refuse(MALFORMED, f"no {DELIMITER.decode()} delimiter among {len(views)} frames", [])
        identities = [view.tobytes() for view in views[:position]]
        body = views[position + 1 :]
        if len(body) < 3:
            raise _refuse(
                MALFORMED,
                f"{len(body)} frames after the delimiter; signature, header and content needed",
                identities,
            )
        signature, header_view, content_view, *buffers = body

        json_bytes = header_view.nbytes + content_view.nbytes
        if json_bytes > self.limits.max_json_bytes:
            raise _refuse(
                OVERSIZED,
                f"header and content hold {json_bytes} bytes; the limit is {self.limits.max_json_bytes}",
                identities,
            )
        if len(buffers) > self.limits.max_buffers:
            raise _refuse(
                OVERSIZED, f"{len(buffers)} buffers; the limit is {self.limits.max_buffers}", identities
            )
        largest = max((view.nbytes for view in buffers), default=0)
        if largest > self.limits.max_frame_bytes:
            raise _refuse(
                OVERSIZED,
                f"a buffer holds {largest} bytes; the limit for one is {self.limits.max_frame_bytes} "
                "(larger frames go through the frame exchange)",
                identities,
            )
        buffer_bytes = sum(view.nbytes for view in buffers)
        if buffer_bytes > self.limits.max_buffer_bytes:
            raise _refuse(
                OVERSIZED,
                f"buffers hold {buffer_bytes} bytes; the limit is {self.limits.max_buffer_bytes}",
                identities,
            )

        received = signature.tobytes()
        if not received:
            raise _refuse(UNSIGNED, "the signature frame is empty", identities)
        expected = self.sign([header_view, content_view, *buffers])
        if not hmac.compare_digest(received, expected):
            raise _refuse(INVALID_SIGNATURE, "the signature does not match this engine's key", identities)
        with self._seen_lock:
            if received in self._seen:
                replayed = True
            else:
                replayed = False
                self._seen[received] = None
                while len(self._seen) > self.limits.digest_history:
                    self._seen.popitem(last=False)

        try:
            header_dict = _loads(header_view.tobytes())
            content = _loads(content_view.tobytes())
        except (ValueError, UnicodeDecodeError) as error:
            raise _refuse(MALFORMED, f"header or content is not JSON: {error}", identities) from None
        except RecursionError:
            raise _refuse(MALFORMED, "header or content nests too deeply", identities) from None
        if not isinstance(header_dict, dict) or not isinstance(content, dict):
            raise _refuse(MALFORMED, "header and content must both be JSON objects", identities)
        missing = [name for name in _HEADER_FIELDS if not isinstance(header_dict.get(name), str)]
        parent_id = header_dict.get("parent_id")
        if missing or not (parent_id is None or isinstance(parent_id, str)):
            raise _refuse(
                MALFORMED, f"header lacks text fields: {', '.join(missing) or 'parent_id'}", identities
            )
        header = Header(**{name: header_dict[name] for name in _HEADER_FIELDS}, parent_id=parent_id)
        if len(header.msg_id) > _MAX_ID_CHARS:
            raise _refuse(
                MALFORMED, f"msg_id has {len(header.msg_id)} characters; at most {_MAX_ID_CHARS}", identities
            )
        if replayed:
            raise _refuse(DUPLICATE, f"message {header.msg_id} was received before (replay)", identities)
        # a refusal is read whatever version sent it: it says why, and which version its sender speaks
        if header.msg_type != REFUSED and _version_major(header.version) != _version_major(PROTOCOL_VERSION):
            raise _refuse(
                WRONG_VERSION,
                f"protocol version {header.version!r} was sent; this side speaks {PROTOCOL_VERSION} "
                f"(major version {_version_major(PROTOCOL_VERSION)}): update the client or the engine "
                "so that both come from the same Chronoscope",
                identities,
                header.msg_id,
            )
        if header.msg_type not in accept:
            raise _refuse(
                UNKNOWN_TYPE,
                f"{header.msg_type!r} is not accepted here; accepted: {', '.join(sorted(accept))}",
                identities,
                header.msg_id,
            )
        return Message(header=header, content=content, buffers=list(buffers), identities=identities)

    def send(self, socket: zmq.Socket, message: Message) -> None:
        """Serialize and send ``message``; large buffers go without a copy."""
        socket.send_multipart(self.serialize(message), copy=False)

    def recv(self, socket: zmq.Socket, *, accept: frozenset[str] = MESSAGE_TYPES, flags: int = 0) -> Message:
        """Receive and deserialize one message (raises ``MessageRefusedError`` when refused)."""
        return self.deserialize(socket.recv_multipart(flags=flags, copy=False), accept=accept)


def reply_type(request_type: str) -> str:
    """The message type that answers ``request_type``."""
    return f"{request_type}_reply"


MAX_MESSAGE_CHARS = 1000
"""An error message longer than this is shortened (its middle left out) in replies and logs: a
request's own value quoted back (10 MB of it) must not be copied into every answer and log line."""


def quote(value: Any, limit: int = 200) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters with an ellipsis and the
    full length when longer."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def shorten(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` itself when it has at most ``limit`` characters, else its start and end with the
    number of characters left out between them (the start names the field, the end what works)."""
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 3
    return f"{text[:head]} ... [{len(text) - head - tail} characters left out] ... {text[-tail:]}"


def error_content(error: BaseException) -> dict[str, Any]:
    """Reply content for a failed request: the error's class name and its message (shortened)."""
    return {"status": "error", "ename": type(error).__name__, "evalue": shorten(str(error))}


def encode_array(array: np.ndarray, buffers: list[Buffer]) -> dict[str, Any]:
    """Append ``array`` to ``buffers`` (as little-endian, C order) and return its descriptor."""
    array = np.asarray(array)
    name = next(
        (
            name
            for name, dtype in ARRAY_DTYPES.items()
            if (array.dtype.kind, array.dtype.itemsize) == (dtype.kind, dtype.itemsize)
        ),
        None,
    )
    if name is None:
        raise UnsupportedOptionError(
            f"array dtype {array.dtype} cannot be sent; allowed: {', '.join(ARRAY_DTYPES)}"
        )
    wire = np.ascontiguousarray(array, dtype=ARRAY_DTYPES[name])
    buffers.append(wire)
    return {"buffer": len(buffers) - 1, "shape": list(wire.shape), "dtype": name}


MAX_ARRAY_DIMENSIONS = 4


def check_shape(shape: Any) -> list[int]:
    """An array shape from the wire: a list of at most ``MAX_ARRAY_DIMENSIONS`` whole numbers whose
    product (computed exactly, never wrapping around) fits in 63 bits."""
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_ARRAY_DIMENSIONS
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    ):
        raise UnsupportedOptionError(
            f"array shape {quote(shape)} is not a list of whole numbers (at most "
            f"{MAX_ARRAY_DIMENSIONS} of them: height, width, channels)"
        )
    if math.prod(shape) >= 2**63:
        raise UnsupportedOptionError(f"array shape {quote(shape)} holds more elements than any array can")
    return shape


def decode_array(descriptor: Any, buffers: Sequence[Buffer]) -> np.ndarray:
    """A read-only array viewing the buffer that ``descriptor`` names; no copy is made."""
    if not isinstance(descriptor, dict):
        raise UnsupportedOptionError(
            f"array descriptor {quote(descriptor)} is not an object with buffer, shape, dtype"
        )
    index, shape, dtype_name = descriptor.get("buffer"), descriptor.get("shape"), descriptor.get("dtype")
    if not isinstance(dtype_name, str) or dtype_name not in ARRAY_DTYPES:
        raise UnsupportedOptionError(
            f"array dtype {quote(dtype_name)} is not allowed; allowed: {', '.join(ARRAY_DTYPES)}"
        )
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(buffers):
        raise UnsupportedOptionError(
            f"array buffer index {quote(index)} is not one of the {len(buffers)} buffers sent"
        )
    check_shape(shape)
    dtype = ARRAY_DTYPES[dtype_name]
    view = _view(buffers[index])
    expected_bytes = math.prod(shape) * dtype.itemsize
    if view.nbytes != expected_bytes:
        raise UnsupportedOptionError(
            f"buffer {index} holds {view.nbytes} bytes; shape {shape} of {dtype_name} needs {expected_bytes}"
        )
    array = np.frombuffer(view, dtype=dtype).reshape(shape)
    array.flags.writeable = False
    return array
