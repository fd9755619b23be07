"""The wire protocol on its own: frame layout, signing, each refusal reason, arrays without copies."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.errors import MessageRefusedError, UnsupportedOptionError
from engine.server import protocol
from engine.server.protocol import DELIMITER, Limits, Session, decode_array, encode_array

KEY = "ab" * 32


def _signed(session: Session, header: dict, content: bytes | dict) -> list[bytes]:
    header_bytes = json.dumps(header).encode()
    content_bytes = content if isinstance(content, bytes) else json.dumps(content).encode()
    return [b"client-id", DELIMITER, session.sign([header_bytes, content_bytes]), header_bytes, content_bytes]


def _header(session: Session, **changes) -> dict:
    return {**session.new_header("ping").to_dict(), **changes}


def test_round_trip_keeps_identities_header_content_and_buffers():
    sender, receiver = Session(KEY), Session(KEY)
    pixels = np.arange(24, dtype=np.uint16).reshape(2, 4, 3)
    buffers: list = []
    descriptor = encode_array(pixels, buffers)
    message = sender.message(
        "synthesize", {"frame0": descriptor, "t": "1/3"}, buffers=buffers, identities=[b"peer"]
    )

    frames = sender.serialize(message)
    assert frames[0] == b"peer" and frames[1] == DELIMITER
    assert len(frames[2]) == 64  # hex SHA-256
    received = receiver.deserialize([bytes(memoryview(f).cast("B")) for f in frames])

    assert received.identities == [b"peer"]
    assert received.msg_type == "synthesize" and received.msg_id == message.msg_id
    assert received.header.version == protocol.PROTOCOL_VERSION
    assert received.header.session == sender.session_id
    assert received.content["t"] == "1/3"
    np.testing.assert_array_equal(decode_array(received.content["frame0"], received.buffers), pixels)


def test_reply_carries_parent_id_and_routes_back():
    session = Session(KEY)
    request = session.message("ping", identities=[b"a", b"b"])
    reply = session.message(protocol.reply_type("ping"), {"status": "ok"}, parent=request)
    assert reply.parent_id == request.msg_id
    assert reply.identities == [b"a", b"b"]
    assert reply.msg_type == "ping_reply"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda s, f: f[:2] + [b""] + f[3:], protocol.UNSIGNED),
        (lambda s, f: f[:2] + [b"0" * 64] + f[3:], protocol.INVALID_SIGNATURE),
        (lambda s, f: [f[0], *f[2:]], protocol.MALFORMED),  # no delimiter
        (lambda s, f: f[:4], protocol.MALFORMED),  # content frame missing
        (lambda s, f: _signed(s, _header(s), b"{not json"), protocol.MALFORMED),
        (lambda s, f: _signed(s, _header(s), b"[1, 2]"), protocol.MALFORMED),
        (lambda s, f: _signed(s, _header(s), b'{"x": NaN}'), protocol.MALFORMED),
        (lambda s, f: _signed(s, {"msg_type": "ping"}, {}), protocol.MALFORMED),
        (lambda s, f: _signed(s, _header(s, version="2.0"), {}), protocol.WRONG_VERSION),
        (lambda s, f: _signed(s, _header(s, msg_type="make_coffee"), {}), protocol.UNKNOWN_TYPE),
        (lambda s, f: _signed(s, _header(s), {"pad": "x" * 5000}), protocol.OVERSIZED),
        (lambda s, f: [*f, b"\0" * 9000], protocol.OVERSIZED),
    ],
)
def test_each_refusal_names_its_reason(mutate, reason):
    session = Session(KEY, limits=Limits(max_json_bytes=4096, max_buffer_bytes=8192))
    frames = session.serialize(session.message("ping", identities=[b"client-id"]))
    with pytest.raises(MessageRefusedError) as refused:
        session.deserialize(mutate(session, frames))
    assert refused.value.reason == reason
    assert reason in str(refused.value)


def test_identities_known_even_when_the_signature_is_wrong():
    frames = Session("cd" * 32).serialize(Session("cd" * 32).message("ping", identities=[b"who"]))
    with pytest.raises(MessageRefusedError) as refused:
        Session(KEY).deserialize(frames)
    assert refused.value.reason == protocol.INVALID_SIGNATURE
    assert refused.value.identities == [b"who"]


def test_replayed_message_is_refused_as_duplicate():
    session = Session(KEY)
    frames = session.serialize(session.message("ping"))
    session.deserialize(frames)
    with pytest.raises(MessageRefusedError) as refused:
        session.deserialize(frames)
    assert refused.value.reason == protocol.DUPLICATE


def test_digest_history_is_bounded():
    session = Session(KEY, limits=Limits(digest_history=2))
    first = session.serialize(session.message("ping"))
    session.deserialize(first)
    for _ in range(2):
        session.deserialize(session.serialize(session.message("ping")))
    session.deserialize(first)  # forgotten after two newer messages


def test_too_many_buffers_is_oversized():
    session = Session(KEY, limits=Limits(max_buffers=2))
    frames = session.serialize(session.message("ping", buffers=[b"a", b"b", b"c"]))
    with pytest.raises(MessageRefusedError, match="3 buffers"):
        session.deserialize(frames)


def test_tampered_buffer_fails_the_signature():
    session = Session(KEY)
    frames = session.serialize(session.message("ping", buffers=[b"original"]))
    frames[-1] = b"tampered"
    with pytest.raises(MessageRefusedError) as refused:
        session.deserialize(frames)
    assert refused.value.reason == protocol.INVALID_SIGNATURE


def test_accept_limits_the_message_types():
    session = Session(KEY)
    frames = session.serialize(session.message("synthesize"))
    with pytest.raises(MessageRefusedError) as refused:
        session.deserialize(frames, accept=protocol.CONTROL_TYPES)
    assert refused.value.reason == protocol.UNKNOWN_TYPE
    assert "cancel, ping, shutdown" in str(refused.value)


def test_empty_key_is_refused():
    with pytest.raises(UnsupportedOptionError, match="empty signing key"):
        Session("")


def test_content_that_is_not_json_cannot_be_sent():
    session = Session(KEY)
    with pytest.raises(UnsupportedOptionError, match="cannot be sent as JSON"):
        session.serialize(session.message("ping", {"t": float("nan")}))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_arrays_decode_as_views_without_copies(dtype):
    original = (np.arange(2 * 3 * 4) * 7).astype(dtype).reshape(2, 3, 4)
    buffers: list = []
    descriptor = encode_array(original, buffers)
    assert descriptor == {"buffer": 0, "shape": [2, 3, 4], "dtype": dtype}
    received = bytearray(memoryview(buffers[0]).cast("B"))
    decoded = decode_array(descriptor, [received])
    np.testing.assert_array_equal(decoded, original)
    assert not decoded.flags.writeable
    received[0] = 255  # the decoded array views the received bytes
    assert decoded.reshape(-1).view(np.uint8)[0] == 255


def test_big_endian_and_strided_arrays_are_sent_little_endian_and_contiguous():
    original = np.arange(1, 13, dtype=">u2").reshape(3, 4)[:, ::2]
    buffers: list = []
    descriptor = encode_array(original, buffers)
    assert bytes(memoryview(buffers[0]).cast("B"))[:4] == b"\x01\x00\x03\x00"
    np.testing.assert_array_equal(
        decode_array(descriptor, [bytes(memoryview(buffers[0]).cast("B"))]), original
    )


@pytest.mark.parametrize(
    ("descriptor", "message"),
    [
        ({"buffer": 0, "shape": [2, 2], "dtype": "int64"}, "dtype 'int64' is not allowed; allowed: uint8"),
        ({"buffer": 3, "shape": [2, 2], "dtype": "uint8"}, "index 3"),
        ({"buffer": 0, "shape": [2, -2], "dtype": "uint8"}, "not a list of whole numbers"),
        ({"buffer": 0, "shape": [3, 3], "dtype": "uint8"}, "holds 4 bytes"),
        ("frame", "not an object"),
    ],
)
def test_bad_array_descriptors_are_refused(descriptor, message):
    with pytest.raises(UnsupportedOptionError, match=message):
        decode_array(descriptor, [b"\0" * 4])


def test_arrays_of_other_dtypes_cannot_be_sent():
    with pytest.raises(UnsupportedOptionError, match="allowed: uint8, uint16, float32"):
        encode_array(np.zeros(3, dtype=np.int32), [])
