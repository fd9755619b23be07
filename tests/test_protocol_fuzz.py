"""Fuzzing the message decoder: whatever arrives, ``deserialize`` returns a message or raises
``MessageRefusedError`` naming a known reason; it never raises anything else.

Hypothesis draws 500 seed inputs of four kinds, and each is decoded as drawn and after 19
mutations (a flipped byte, a cut, a dropped, doubled or swapped frame, random bytes), half of them
signed again with the right key so that the JSON and header checks are reached rather than only
the signature check: 10,000 inputs in all, the same on every run (derandomized, no database).
Seed kinds:
- arbitrary frame lists, with and without the delimiter;
- well-signed messages whose header and content bytes are arbitrary;
- well-signed messages whose header is JSON with fields usually valid, sometimes of any type, and whose
  content holds array descriptors (decoded too: only ``UnsupportedOptionError`` may come out).
"""

from __future__ import annotations

import collections
import json
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import MessageRefusedError, UnsupportedOptionError
from engine.server import protocol
from engine.server.protocol import DELIMITER, Limits, Session, decode_array

KEY = "5a" * 32
LIMITS = Limits(max_json_bytes=4096, max_buffer_bytes=4096, max_buffers=4, digest_history=64)
REASONS = {
    protocol.UNSIGNED,
    protocol.INVALID_SIGNATURE,
    protocol.DUPLICATE,
    protocol.WRONG_VERSION,
    protocol.MALFORMED,
    protocol.OVERSIZED,
    protocol.UNKNOWN_TYPE,
}
SEEDS = 500
MUTATIONS = 19
FUZZ = settings(
    max_examples=SEEDS,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SAMPLE_VALUES = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2,
    7,
    2**63,
    -(2**70),
    0.5,
    -1e308,
    "",
    "1.0",
    "ping",
    "x" * 200,
    "\udcff",
    [],
    [1, 2],
    [[]],
    [-1],
    {},
    {"a": None},
    {"buffer": 0},
]
json_values = st.sampled_from(SAMPLE_VALUES) | st.text(max_size=12) | st.integers()


HEADER_FIELDS = ["msg_id", "msg_type", "version", "date", "session", "parent_id", "extra"]
valid_headers = st.fixed_dictionaries(
    {
        "msg_id": st.text(max_size=20),
        "msg_type": st.sampled_from(sorted(protocol.MESSAGE_TYPES | {"make_coffee"})),
        "version": st.sampled_from(["1.0", "1.7", "2.0", "1", "0.9"]),
        "date": st.text(max_size=8),
        "session": st.text(max_size=8),
    },
    optional={"parent_id": st.none() | st.text(max_size=8)},
)
# a valid header with none, one or a few fields replaced by any JSON value (or removed)
header_fields = st.tuples(
    valid_headers,
    st.lists(st.tuples(st.sampled_from(HEADER_FIELDS), json_values | st.just(KeyError)), max_size=3),
).map(lambda pair: _corrupt(*pair))


def _corrupt(header: dict, changes: list) -> dict:
    header = dict(header)
    for name, value in changes:
        if value is KeyError:
            header.pop(name, None)
        else:
            header[name] = value
    return header


descriptor = st.fixed_dictionaries(
    {},
    optional={
        "buffer": json_values | st.integers(-2, 5),
        "shape": json_values | st.lists(st.integers(-3, 70), max_size=4),
        "dtype": json_values | st.sampled_from(["uint8", "uint16", "float32", "int64"]),
    },
)
frames = st.lists(st.binary(max_size=64), max_size=8)


def _check(session: Session, raw: list[bytes]) -> str:
    """Decode ``raw``; return the refusal reason, or "accepted"."""
    try:
        message = session.deserialize(raw)
    except MessageRefusedError as refusal:
        assert refusal.reason in REASONS, refusal.reason
        return refusal.reason
    assert isinstance(message.content, dict)
    for value in message.content.values():
        try:
            array = decode_array(value, message.buffers)
        except UnsupportedOptionError:
            continue
        assert isinstance(array, np.ndarray)
    return "accepted"


def _signed(session: Session, header: bytes, content: bytes, buffers: list[bytes]) -> list[bytes]:
    return [b"peer", DELIMITER, session.sign([header, content, *buffers]), header, content, *buffers]


def _mutate(session: Session, raw: list[bytes], rng: random.Random) -> list[bytes]:
    mutated = [bytearray(frame) for frame in raw]
    kind = rng.randrange(6)
    if mutated and kind == 0:
        frame = mutated[rng.randrange(len(mutated))]
        if frame:
            frame[rng.randrange(len(frame))] ^= 1 << rng.randrange(8)
    elif mutated and kind == 1:
        index = rng.randrange(len(mutated))
        mutated[index] = mutated[index][: rng.randrange(len(mutated[index]) + 1)]
    elif mutated and kind == 2:
        del mutated[rng.randrange(len(mutated))]
    elif mutated and kind == 3:
        index = rng.randrange(len(mutated))
        mutated.insert(index, bytearray(mutated[index]))
    elif len(mutated) > 1 and kind == 4:
        i, j = rng.sample(range(len(mutated)), 2)
        mutated[i], mutated[j] = mutated[j], mutated[i]
    else:
        mutated.insert(rng.randrange(len(mutated) + 1), bytearray(rng.randbytes(rng.randrange(40))))
    frames = [bytes(frame) for frame in mutated]
    if rng.random() < 0.5 and DELIMITER in frames:
        at = frames.index(DELIMITER)
        if len(frames) >= at + 4:
            frames[at + 1] = session.sign(frames[at + 2 :])
    return frames


def test_the_decoder_never_crashes_in_10000_inputs():
    outcomes: collections.Counter[str] = collections.Counter()

    @FUZZ
    @given(
        case=st.one_of(
            frames,
            st.tuples(frames, frames).map(lambda pair: [*pair[0], DELIMITER, *pair[1]]),
            st.tuples(
                st.binary(max_size=300), st.binary(max_size=300), st.lists(st.binary(max_size=64), max_size=3)
            ),
            st.tuples(
                header_fields,
                st.dictionaries(
                    st.sampled_from(["frame0", "frame1", "t", ""]), descriptor | json_values, max_size=3
                ),
                st.lists(st.binary(max_size=80), max_size=5),
            ),
        ),
        mutation_seed=st.integers(0, 2**32 - 1),
    )
    def run(case, mutation_seed):
        rng = random.Random(mutation_seed)
        session = Session(KEY, limits=LIMITS)
        if isinstance(case, list):
            raw = case
        else:
            header, content, buffers = case
            if isinstance(header, dict):
                header = json.dumps(header).encode("utf-8", "surrogatepass")
                content = json.dumps(content).encode("utf-8", "surrogatepass")
            raw = _signed(session, header, content, buffers)
        outcomes[_check(session, raw)] += 1
        for _ in range(MUTATIONS):
            outcomes[_check(session, _mutate(session, raw, rng))] += 1

    run()
    assert sum(outcomes.values()) >= 10_000
    # the inputs reach the later checks, not only the first ones
    core = {
        "accepted",
        protocol.MALFORMED,
        protocol.INVALID_SIGNATURE,
        protocol.OVERSIZED,
        protocol.WRONG_VERSION,
    }
    assert all(outcomes[name] >= 10 for name in core), outcomes


@pytest.mark.parametrize("depth", [10_000, 100_000])
def test_deeply_nested_json_is_malformed_not_a_crash(depth):
    session = Session(KEY)
    header = json.dumps(session.new_header("ping").to_dict()).encode()
    content = b'{"a":' + b"[" * depth + b"]" * depth + b"}"
    with pytest.raises(MessageRefusedError) as refused:
        session.deserialize(_signed(session, header, content, []))
    assert refused.value.reason == protocol.MALFORMED
