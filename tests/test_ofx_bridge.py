"""The Chronoscope Retime OpenFX bundle, built with gcc and driven by the ctypes test host
(tests/ofx_host.py) against a real engine process: its frames must equal the engine's own
``synthesize`` result for the same pair; with no engine it blends, marks and logs."""

from __future__ import annotations

import ctypes
import itertools
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import ofx_host
import pytest
import zmq
from ofx_host import OfxTestHost, PropertySet

from engine.server.client import EngineClient
from engine.server.connection import ConnectionInfo, new_key, write_connection_file
from engine.server.process import start_engine, stop_engine

REPO_ROOT = Path(__file__).resolve().parent.parent
FILTER = "OfxImageEffectContextFilter"
GENERAL = "OfxImageEffectContextGeneral"
WIDTH, HEIGHT = 64, 48
SOURCE_FRAMES = 6
SAMPLE_CLIP = REPO_ROOT / "samples" / "hug-lego-movie.mp4"
TEXTURE_FRAME = 80
PAN_PIXELS = 4
PAN_WIDTH = WIDTH + PAN_PIXELS * (SOURCE_FRAMES - 1)
MARK_PIXELS = 4  # min(64, 48) // 16 = 3, raised to the 4-pixel minimum

# Every property name the plugin sets (on its descriptor, its clip and parameter descriptors and
# the out-arguments of its actions), spelt as the OpenFX headers define them (ofxCore.h,
# ofxImageEffect.h, ofxParam.h). Mind kOfxImageEffectPropSupportsMultipleClipDepths, whose string
# is "OfxImageEffectPropMultipleClipDepths": a host ignores a name it does not know, so a
# misspelt one goes unnoticed anywhere but here.
OFX_PROPERTY_NAMES = frozenset(
    {
        # ofxCore.h
        "OfxPropLabel",
        "OfxPropName",
        "OfxPropTime",
        "OfxPropPluginDescription",
        # ofxImageEffect.h: plugin descriptor
        "OfxImageEffectPluginPropGrouping",
        "OfxImageEffectPluginPropSingleInstance",
        "OfxImageEffectPluginPropHostFrameThreading",
        "OfxImageEffectPluginRenderThreadSafety",
        "OfxImageEffectPropSupportedContexts",
        "OfxImageEffectPropSupportedPixelDepths",
        "OfxImageEffectPropSupportsTiles",
        "OfxImageEffectPropSupportsMultiResolution",
        "OfxImageEffectPropMultipleClipDepths",
        "OfxImageEffectPropTemporalClipAccess",
        # ofxImageEffect.h: clip descriptor
        "OfxImageEffectPropSupportedComponents",
        # ofxParam.h: parameter descriptor
        "OfxParamPropHint",
        "OfxParamPropDefault",
        "OfxParamPropAnimates",
        "OfxParamPropMin",
        "OfxParamPropMax",
        "OfxParamPropDisplayMin",
        "OfxParamPropDisplayMax",
        "OfxParamPropChoiceOption",
    }
)
# kOfxImageEffectActionGetFramesNeeded: "OfxImageClipPropFrameRange_" followed by an input clip's name
FRAMES_NEEDED_PREFIX = "OfxImageClipPropFrameRange_"


class StrictOfxTestHost(OfxTestHost):
    """The test host, refusing (kOfxStatErrUnknown) and recording every property the plugin sets
    under a name outside OFX_PROPERTY_NAMES; ``unload`` fails when there was one."""

    def __init__(self, *args, **kwargs):
        self.unknown_properties: list[str] = []
        super().__init__(*args, **kwargs)

    def _known_property(self, name: str) -> bool:
        if name in OFX_PROPERTY_NAMES:
            return True
        clip_names = {clip for context in self.contexts.values() for clip in context.clips}
        return name.startswith(FRAMES_NEEDED_PREFIX) and name[len(FRAMES_NEEDED_PREFIX) :] in clip_names

    def _set(self, handle, name, index, value) -> int:
        if not self._known_property(name.decode()):
            self.unknown_properties.append(name.decode())
            return ofx_host.ERR_UNKNOWN
        return super()._set(handle, name, index, value)

    def _set_n(self, handle, name, count, values, convert) -> int:
        if not self._known_property(name.decode()):
            self.unknown_properties.append(name.decode())
            return ofx_host.ERR_UNKNOWN
        return super()._set_n(handle, name, count, values, convert)

    def unload(self) -> None:
        super().unload()
        assert not self.unknown_properties, (
            f"properties outside the OFX specification: {self.unknown_properties}"
        )


def _missing_toolchain() -> str | None:
    if not ofx_host.supported_platform():
        return "the OFX bundle is built for Linux x86-64 only"
    if shutil.which("gcc") is None or shutil.which("make") is None:
        return "gcc or make is missing (apt-get install build-essential)"
    if not Path("/usr/include/zmq.h").exists():
        return "libzmq headers are missing (apt-get install libzmq3-dev)"
    try:
        ctypes.CDLL("libzmq.so.5")
    except OSError:
        return "libzmq.so.5 is missing (apt-get install libzmq5)"
    return None


pytestmark = pytest.mark.skipif(_missing_toolchain() is not None, reason=str(_missing_toolchain()))


@pytest.fixture(scope="session")
def bundle() -> Path:
    """Build the bundle exactly as `make ofx` does (incremental)."""
    result = subprocess.run(
        ["make", "-C", str(REPO_ROOT / "plugins" / "ofx_bridge")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert ofx_host.BINARY.is_file()
    return ofx_host.BUNDLE


@pytest.fixture(scope="session")
def clip_frames() -> list[np.ndarray]:
    """A real frame of the repository's sample clip, panned 4 pixels per frame: real texture with
    known motion (the clip itself barely moves in its first frames)."""
    with av.open(str(SAMPLE_CLIP)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index == TEXTURE_FRAME:
                texture = frame.reformat(width=PAN_WIDTH, height=HEIGHT, format="rgba").to_ndarray()
                break
    frames = [
        np.ascontiguousarray(texture[:, PAN_PIXELS * i : PAN_PIXELS * i + WIDTH])
        for i in range(SOURCE_FRAMES)
    ]
    assert all(np.abs(a.astype(int) - b).mean() > 5 for a, b in itertools.pairwise(frames))
    return frames


class WireEncoding(ctypes.Structure):
    """src/pixels.h's wire_encoding."""

    _fields_ = [
        (name, ctypes.c_double) for name in ("low", "high", "zero_code", "slope", "lower_knee", "upper_knee")
    ]


class WireCodec:
    """The bridge's float wire encoding (src/pixels.c), called directly."""

    def __init__(self, library: ctypes.CDLL):
        self._library = library
        library.wire_encoding_between.argtypes = [ctypes.c_double, ctypes.c_double]
        library.wire_encoding_between.restype = WireEncoding
        library.float_to_wire.argtypes = [ctypes.c_float, ctypes.POINTER(WireEncoding)]
        library.float_to_wire.restype = ctypes.c_uint16
        library.wire_to_float.argtypes = [ctypes.c_uint16, ctypes.POINTER(WireEncoding)]
        library.wire_to_float.restype = ctypes.c_float

    def encoding_between(self, low: float, high: float) -> WireEncoding:
        return self._library.wire_encoding_between(low, high)

    def to_wire(self, value: float, encoding: WireEncoding) -> int:
        return self._library.float_to_wire(value, ctypes.byref(encoding))

    def from_wire(self, code: int, encoding: WireEncoding) -> float:
        return self._library.wire_to_float(code, ctypes.byref(encoding))

    def encode(self, values: np.ndarray, encoding: WireEncoding) -> np.ndarray:
        codes = [self.to_wire(float(v), encoding) for v in values.ravel()]
        return np.array(codes, np.uint16).reshape(values.shape)

    def decode(self, codes: np.ndarray, encoding: WireEncoding) -> np.ndarray:
        values = [self.from_wire(int(c), encoding) for c in codes.ravel()]
        return np.array(values, np.float32).reshape(codes.shape)

    def round_trip(self, values: np.ndarray, encoding: WireEncoding) -> np.ndarray:
        return self.decode(self.encode(values, encoding), encoding).astype(np.float64)


@pytest.fixture(scope="session")
def wire_codec(tmp_path_factory) -> WireCodec:
    """src/pixels.c alone, built as a library (the bundle exports only the OFX entry points)."""
    library = tmp_path_factory.mktemp("wire-codec") / "libpixels.so"
    source = REPO_ROOT / "plugins" / "ofx_bridge" / "src" / "pixels.c"
    command = ["gcc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared"]
    result = subprocess.run(
        [*command, str(source), "-o", str(library), "-lm"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return WireCodec(ctypes.CDLL(str(library)))


@pytest.fixture
def engine(isolated_places):
    """An engine of this test's own (isolated places): never one that another session started."""
    connection, _ = start_engine(timeout_s=60)
    client = EngineClient(connection)
    try:
        yield client
    finally:
        client.close()
        stop_engine(timeout_s=10, force=True)


def _host(
    bundle: Path,
    frames: list[np.ndarray],
    *,
    context: str = FILTER,
    negative_row_bytes: bool = False,
    model: str = "flow",
    timeout_s: float = 20.0,
) -> StrictOfxTestHost:
    host = StrictOfxTestHost(
        bundle / "Contents" / "Linux-x86-64" / "Chronoscope.ofx", negative_row_bytes=negative_row_bytes
    )
    host.load_and_describe(context)
    assert not host.unknown_properties, f"properties outside the OFX specification: {host.unknown_properties}"
    host.create_instance(context, {float(i): frame for i, frame in enumerate(frames)})
    host.set_param("model", host.choice_index("model", model))
    host.set_param("engineTimeout", timeout_s)
    return host


def _pair(speed_percent: float, output_frame: int) -> tuple[int, Fraction]:
    source = Fraction(speed_percent) / 100 * output_frame
    return int(source), source - int(source)


def _expected(
    engine: EngineClient, frames: list[np.ndarray], frame0: int, t: Fraction, backend: str = "flow"
):
    if t == 0:
        return frames[frame0]
    return engine.synthesize(frames[frame0], frames[frame0 + 1], [float(t)], backend=backend, shared=False)[0]


def test_describe_declares_a_temporal_filter_with_its_parameters(bundle, clip_frames):
    host = _host(bundle, clip_frames)
    try:
        assert host.plugin_count == 1
        assert host.plugin.pluginApi == b"OfxImageEffectPluginAPI" and host.plugin.apiVersion == 1
        assert host.plugin.pluginIdentifier == b"org.chronoscope.Retime"
        described = host.descriptor.props.values
        assert described["OfxPropLabel"] == ["Chronoscope Retime"]
        assert described["OfxImageEffectPropSupportedContexts"] == [FILTER, GENERAL]
        assert described["OfxImageEffectPropSupportedPixelDepths"] == [
            "OfxBitDepthByte",
            "OfxBitDepthShort",
            "OfxBitDepthFloat",
        ]
        assert described["OfxImageEffectPropTemporalClipAccess"] == [1]
        assert described["OfxImageEffectPluginRenderThreadSafety"] == ["OfxImageEffectRenderFullySafe"]
        # whole frames only: each render sends the whole frame pair to the engine, so host slicing
        # would synthesize one frame once per slice
        assert described["OfxImageEffectPluginPropHostFrameThreading"] == [0]
        # the specification's string for kOfxImageEffectPropSupportsMultipleClipDepths
        assert described["OfxImageEffectPropMultipleClipDepths"] == [0]
        assert "OfxImageEffectPropSupportsMultipleClipDepths" not in described
        assert not host.unknown_properties
        context = host.contexts[FILTER]
        assert set(context.clips) == {"Source", "Output"}
        assert context.clips["Source"].props.values["OfxImageEffectPropTemporalClipAccess"] == [1]
        assert set(context.params) == {
            "mode",
            "speed",
            "sourceFrame",
            "model",
            "riskOverlay",
            "engineTimeout",
        }
        assert context.params["model"].props.values["OfxParamPropChoiceOption"] == ["rife", "flow", "blend"]
        assert context.params["speed"].props.values["OfxParamPropAnimates"] == [1]
        assert ("OfxPropertySuite", 1) in host.fetched_suites and (
            "OfxParameterSuite",
            1,
        ) in host.fetched_suites
    finally:
        host.unload()


def test_the_test_host_refuses_property_names_outside_the_specification(bundle):
    """The check the describe test leans on: the misspelt name this plugin once set is refused."""
    host = StrictOfxTestHost(bundle / "Contents" / "Linux-x86-64" / "Chronoscope.ofx")
    props = PropertySet()
    handle = host._handle(props)
    suite = host._suites[("OfxPropertySuite", 1)]  # the functions the plugin calls
    misspelt = b"OfxImageEffectPropSupportsMultipleClipDepths"
    assert suite.propSetInt(handle, misspelt, 0, 0) == ofx_host.ERR_UNKNOWN
    assert suite.propSetString(handle, b"OfxImageEffectPropSupportedContext", 0, FILTER.encode()) == (
        ofx_host.ERR_UNKNOWN
    )
    assert suite.propSetInt(handle, b"OfxImageEffectPropMultipleClipDepths", 0, 0) == ofx_host.OK
    assert props.values == {"OfxImageEffectPropMultipleClipDepths": [0]}
    assert host.unknown_properties == [misspelt.decode(), "OfxImageEffectPropSupportedContext"]


def test_general_context_and_speed_curves_pick_the_source_frames(bundle, clip_frames):
    host = _host(bundle, clip_frames, context=GENERAL)
    try:
        host.set_param("speed", 50.0)
        assert host.frames_needed(3.0) == [1.0, 2.0]
        assert host.is_identity(4.0) == (0, 2.0)
        assert host.is_identity(3.0)[0] == ofx_host.REPLY_DEFAULT
        # A ramp from 100 % at frame 0 to 50 % at frame 10: the source time is the curve's integral.
        host.set_param("speed", keys=[(0.0, 100.0), (10.0, 50.0)])
        assert host.frames_needed(5.0) == [4.0, 5.0]  # (100 + 75) / 2 * 5 / 100 = 4.375
        host.set_param("mode", host.choice_index("mode", "Source frame"))
        host.set_param("sourceFrame", keys=[(0.0, 0.0), (8.0, 2.0)])
        assert host.frames_needed(3.0) == [0.0, 1.0]
        assert host.is_identity(4.0) == (0, 1.0)
        host.set_param("sourceFrame", 99.0)
        assert host.is_identity(0.0) == (0, float(SOURCE_FRAMES - 1))  # clamped to the clip
    finally:
        host.unload()


@pytest.mark.parametrize("speed_percent", [50, 25, 10])
def test_8bit_frames_equal_the_engine_synthesize_result(bundle, clip_frames, engine, speed_percent):
    host = _host(bundle, clip_frames)
    try:
        host.set_param("speed", float(speed_percent))
        for output_frame in (0, 1, 3, 7, 9):
            frame0, t = _pair(speed_percent, output_frame)
            rendered = host.render(output_frame, (HEIGHT, WIDTH, 4), np.uint8)
            expected = _expected(engine, clip_frames, frame0, t)
            expected = expected if t == 0 else expected.frame
            difference = np.abs(rendered.astype(int) - expected.astype(int)).max()
            assert difference <= 1, f"speed {speed_percent} %, frame {output_frame}: differs by {difference}"
            if t != 0:
                assert not np.array_equal(rendered, clip_frames[frame0])
        assert not host.messages, host.messages
    finally:
        host.unload()


def test_float_hdr_and_16bit_frames_equal_the_engine_result(bundle, clip_frames, engine, wire_codec):
    floats = [frame.astype(np.float32) / 255.0 * 1.5 for frame in clip_frames]  # values up to 1.5
    host = _host(bundle, floats, model="blend")
    try:
        host.set_param("speed", 25.0)
        rendered = host.render(6, (HEIGHT, WIDTH, 4), np.float32)  # source 1.5
        pair = floats[1:3]
        encoding = wire_codec.encoding_between(
            min(0.0, *(float(f.min()) for f in pair)), max(1.0, *(float(f.max()) for f in pair))
        )
        wire = [wire_codec.encode(frame, encoding) for frame in pair]
        result = engine.synthesize(wire[0], wire[1], [0.5], backend="blend", shared=False)[0]
        np.testing.assert_array_equal(rendered, wire_codec.decode(result.frame, encoding))
        assert rendered.max() > 1.0
        # 0..1 stays linear (two values in 0..1 are blended as floats would be, to the wire's step)
        both_ordinary = (pair[0] <= 1.0) & (pair[1] <= 1.0)
        linear = 0.5 * pair[0].astype(np.float64) + 0.5 * pair[1]
        assert np.abs(rendered - linear)[both_ordinary].max() < 2.5e-5
    finally:
        host.unload()

    shorts = [frame.astype(np.uint16) * 257 for frame in clip_frames]
    host = _host(bundle, shorts, negative_row_bytes=True)
    try:
        host.set_param("speed", 10.0)
        rendered = host.render(13, (HEIGHT, WIDTH, 4), np.uint16)  # source 1.3
        expected = _expected(engine, shorts, 1, Fraction(3, 10)).frame
        assert np.abs(rendered.astype(int) - expected.astype(int)).max() <= 1
    finally:
        host.unload()


# (low, high) of a frame pair: in 0..1; slight and strong highlights; noise below black; both;
# the float extremes
WIRE_LAYOUTS = [
    (0.0, 1.0),
    (0.0, 1.1),
    (0.0, 1000.0),
    (0.0, 1e6),
    (-0.05, 1.0),
    (-0.05, 1000.0),
    (-1000.0, 1000.0),
    (-3.0e38, 3.0e38),
]
FULL_STEP = 1 / 65535
WORST_STEP = 1 / 53247  # 0..1 keeps at least 65535 - 8192 - 4096 codes


@pytest.mark.parametrize(("low", "high"), WIRE_LAYOUTS)
def test_wire_encoding_keeps_0_to_1_at_nearly_full_precision(wire_codec, low, high):
    encoding = wire_codec.encoding_between(low, high)
    values = np.linspace(0.0, 1.0, 20001, dtype=np.float32)
    error = np.abs(wire_codec.round_trip(values, encoding) - values).max()
    step = FULL_STEP if (low, high) == (0.0, 1.0) else WORST_STEP
    assert error <= 0.5 * step + 1e-7, f"{low}..{high}: 0..1 comes back within {error}"
    assert wire_codec.from_wire(wire_codec.to_wire(0.0, encoding), encoding) == 0.0  # black stays black


@pytest.mark.parametrize(("low", "high"), WIRE_LAYOUTS)
def test_wire_codes_are_in_order_and_come_back_exactly(wire_codec, low, high):
    encoding = wire_codec.encoding_between(low, high)
    codes = np.arange(65536, dtype=np.uint16)
    values = wire_codec.decode(codes, encoding)
    assert np.all(np.diff(values.astype(np.float64)) >= 0)
    first, last = wire_codec.to_wire(low, encoding), wire_codec.to_wire(high, encoding)
    used = codes[first : last + 1]
    np.testing.assert_array_equal(wire_codec.encode(values[first : last + 1], encoding), used)


def test_wire_encoding_carries_highlights_and_negatives(wire_codec):
    # highlights come back within a relative 8e-4 up to 1000 (1.3e-3 up to 1e6), whatever else is in the pair
    for low, high, tolerance in ((0.0, 1000.0, 8e-4), (-1000.0, 1000.0, 8e-4), (0.0, 1e6, 1.3e-3)):
        encoding = wire_codec.encoding_between(low, high)
        values = np.geomspace(1.0, high, 5001).astype(np.float32)
        relative = np.abs(wire_codec.round_trip(values, encoding) - values) / values
        assert relative.max() <= tolerance, f"{low}..{high}: above 1, {relative.max()}"
        assert wire_codec.from_wire(wire_codec.to_wire(high, encoding), encoding) == np.float32(high)
    # negatives near black travel linearly (no longer clipped to 0), far ones logarithmically
    encoding = wire_codec.encoding_between(-0.05, 1000.0)
    values = np.linspace(-0.05, 0.0, 2001, dtype=np.float32)
    assert np.abs(wire_codec.round_trip(values, encoding) - values).max() <= 0.5 * WORST_STEP + 1e-7
    encoding = wire_codec.encoding_between(-1000.0, 1000.0)
    values = -np.geomspace(1.0, 1000.0, 2001).astype(np.float32)
    assert (np.abs(wire_codec.round_trip(values, encoding) - values) / -values).max() <= 2e-3


def test_wire_encoding_of_nan_and_infinities(wire_codec):
    encoding = wire_codec.encoding_between(-3.0, 1000.0)
    assert wire_codec.to_wire(float("nan"), encoding) == wire_codec.to_wire(0.0, encoding)
    assert wire_codec.to_wire(float("inf"), encoding) == wire_codec.to_wire(1000.0, encoding) == 65535
    assert wire_codec.to_wire(float("-inf"), encoding) == wire_codec.to_wire(-3.0, encoding) == 0
    assert wire_codec.to_wire(5000.0, encoding) == 65535  # beyond the pair's range: clamped


def _engine_mix(wire_codec, encoding, a: float, b: float) -> float:
    """What the engine's `blend` at t = 0.5 makes of a and b: the rounded mean of their codes."""
    code = (wire_codec.to_wire(a, encoding) + wire_codec.to_wire(b, encoding) + 1) // 2
    return wire_codec.from_wire(code, encoding)


def test_wire_encoding_interpolates_linearly_in_its_core_and_logarithmically_beyond(wire_codec):
    encoding = wire_codec.encoding_between(-0.05, 1000.0)
    for a, b in ((-0.01, 0.5), (0.2, 0.9), (-0.05, 1.0), (0.0, 1.0)):
        assert abs(_engine_mix(wire_codec, encoding, a, b) - (a + b) / 2) <= WORST_STEP, (a, b)
    # the trade-off the README states: above the core, values mix in the logarithmic domain
    assert 90.0 < _engine_mix(wire_codec, encoding, 1000.0, 10.0) < 101.0  # linear: 505
    assert _engine_mix(wire_codec, encoding, 1000.0, 0.5) < 1.0  # linear: 500.25


def test_float_frames_keep_0_to_1_precision_beside_a_highlight(bundle, engine):
    """One pixel at 1000.0 used to leave 0..1 with 63 steps (errors of 0.015, banding) and a
    negative value was clipped to 0."""
    rng = np.random.default_rng(7)
    frames = [rng.random((HEIGHT, WIDTH, 4), dtype=np.float32) for _ in range(SOURCE_FRAMES)]
    frames[1][0, 0, 0] = 1000.0
    frames[1][5, 5, 1] = -0.05
    host = _host(bundle, frames, model="blend")
    try:
        host.set_param("speed", 50.0)
        rendered = host.render(3, (HEIGHT, WIDTH, 4), np.float32)  # source 1.5
    finally:
        host.unload()
    linear = 0.5 * frames[1].astype(np.float64) + 0.5 * frames[2]
    error = np.abs(rendered - linear)
    error[0, 0, 0] = 0.0  # the highlight mixes in the logarithmic domain (README)
    assert error.max() < 2.5e-5
    assert abs(rendered[5, 5, 1] - linear[5, 5, 1]) < 2.5e-5
    assert len(np.unique(rendered[..., 1])) > 2500
    assert frames[2][0, 0, 0] <= rendered[0, 0, 0] <= 1000.0


# 64x48 decodes value by value; 160x120 (more values than codes) through a table of all codes
@pytest.mark.parametrize(("height", "width"), [(HEIGHT, WIDTH), (120, 160)])
def test_float_frames_come_back_from_the_engine_as_they_went(bundle, engine, height, width):
    """The same frame twice: the engine's `blend` returns the codes it got, so the frame comes
    back within the wire's precision everywhere, with NaN and the infinities made finite."""
    rng = np.random.default_rng(11)
    frame = rng.random((height, width, 4), dtype=np.float32)
    frame[0, :5, 0] = [1000.0, 37.5, 1.25, 1.0, 0.0]
    frame[1, :5, 1] = [-3.0, -0.05, -0.001, np.nan, np.inf]
    frame[2, 0, 2] = -np.inf
    frames = [frame * 0.5, frame, frame.copy(), frame * 0.25]
    host = _host(bundle, frames, model="blend")
    try:
        host.set_param("speed", 50.0)
        rendered = host.render(3, (height, width, 4), np.float32).astype(np.float64)  # source 1.5
    finally:
        host.unload()
    expected = np.nan_to_num(frame, nan=0.0, posinf=1000.0, neginf=-3.0).astype(np.float64)
    # within half a step of the linear core, or a relative 1e-3 in the logarithmic tails
    tolerance = np.maximum(0.5 * WORST_STEP + 1e-7, 1e-3 * np.abs(expected))
    assert np.all(np.abs(rendered - expected) <= tolerance)
    ordinary = (expected >= 0.0) & (expected <= 1.0)
    assert np.abs(rendered - expected)[ordinary].max() <= 0.5 * WORST_STEP + 1e-7
    assert rendered[0, 0, 0] == 1000.0 and rendered[1, 0, 1] == -3.0
    assert rendered[1, 3, 1] == 0.0 and rendered[1, 4, 1] == 1000.0 and rendered[2, 0, 2] == -3.0


def test_four_render_threads_at_once(bundle, clip_frames, engine):
    host = _host(bundle, clip_frames)
    try:
        host.set_param("speed", 25.0)
        output_frames = [1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15]
        with ThreadPoolExecutor(max_workers=4) as pool:
            rendered = list(pool.map(lambda n: host.render(n, (HEIGHT, WIDTH, 4), np.uint8), output_frames))
        for output_frame, frame in zip(output_frames, rendered, strict=True):
            frame0, t = _pair(25, output_frame)
            expected = _expected(engine, clip_frames, frame0, t)
            expected = expected if t == 0 else expected.frame
            assert np.abs(frame.astype(int) - expected.astype(int)).max() <= 1, f"frame {output_frame}"
        assert not host.messages, host.messages
    finally:
        host.unload()


def test_risk_overlay_tints_by_the_engine_risk_map(bundle, clip_frames, engine):
    host = _host(bundle, clip_frames)
    try:
        host.set_param("speed", 50.0)
        host.set_param("riskOverlay", 1)
        rendered = host.render(3, (HEIGHT, WIDTH, 4), np.uint8)  # source 1.5
        result = _expected(engine, clip_frames, 1, Fraction(1, 2))
        weight = 0.6 * np.clip(result.risk.astype(np.float64), 0, 1)[..., None]
        target = np.zeros(3)
        target[0] = 255.0
        tinted = np.floor(result.frame[..., :3] * (1 - weight) + target * weight + 0.5)
        assert result.risk.max() > 0.1
        assert np.abs(rendered[..., :3].astype(int) - tinted.astype(int)).max() <= 1
        assert np.array_equal(rendered[..., 3], result.frame[..., 3])
    finally:
        host.unload()


def _local_blend(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return np.floor(a.astype(np.float64) * (1 - t) + b.astype(np.float64) * t + 0.5).astype(a.dtype)


def _assert_marked_blend(rendered: np.ndarray, expected: np.ndarray) -> None:
    mark = rendered[:MARK_PIXELS, :MARK_PIXELS]
    assert mark[0, 0].tolist() == [0, 0, 0, 255]
    assert mark[1, 1].tolist() == [255, 0, 255, 255]
    assert np.array_equal(rendered[MARK_PIXELS:], expected[MARK_PIXELS:])
    assert np.array_equal(rendered[:, MARK_PIXELS:], expected[:, MARK_PIXELS:])


def test_no_engine_blends_marks_and_logs_at_once(bundle, clip_frames, isolated_places):
    host = _host(bundle, clip_frames)
    try:
        host.set_param("speed", 50.0)
        started = time.monotonic()
        rendered = host.render(3, (HEIGHT, WIDTH, 4), np.uint8)
        assert time.monotonic() - started < 10.0  # at once: not after the 20 s engine timeout
        _assert_marked_blend(rendered, _local_blend(clip_frames[1], clip_frames[2], 0.5))
        assert any("no engine is running" in line and "blended locally" in line for line in host.messages)
        log_text = (isolated_places / "log" / "ofx-bridge.log").read_text()
        assert "WARNING" in log_text and "no connection file" in log_text

        damaged = isolated_places / "runtime" / "engine.json"
        damaged.parent.mkdir(parents=True, exist_ok=True)
        damaged.write_text('{"request": "ipc:///nowhere", "key": ')
        rendered = host.render(5, (HEIGHT, WIDTH, 4), np.uint8)  # source 2.5
        _assert_marked_blend(rendered, _local_blend(clip_frames[2], clip_frames[3], 0.5))
        assert any("is not JSON" in line for line in host.messages)
    finally:
        host.unload()


def test_silent_engine_falls_back_within_the_timeout(bundle, clip_frames, isolated_places):
    """An engine that accepts the request but never answers: the frame waits only the timeout."""
    socket_dir = isolated_places / "runtime"
    socket_dir.mkdir(parents=True, exist_ok=True)
    endpoint = f"ipc://{socket_dir}/silent-req"
    context = zmq.Context()
    silent = context.socket(zmq.ROUTER)
    silent.bind(endpoint)
    write_connection_file(
        ConnectionInfo(
            transport="ipc",
            request=endpoint,
            control=endpoint,
            events=endpoint,
            key=new_key(),
            pid=os.getpid(),
        )
    )
    host = _host(bundle, clip_frames, timeout_s=0.5)
    try:
        host.set_param("speed", 25.0)
        started = time.monotonic()
        rendered = host.render(6, (HEIGHT, WIDTH, 4), np.uint8)  # source 1.5
        elapsed_s = time.monotonic() - started
        assert 0.45 <= elapsed_s < 10.0  # its 0.5 s, not the default 20 s
        assert silent.poll(1000), "the request never reached the silent engine"
        frames = silent.recv_multipart()
        assert frames[1] == b"<CHRONO|MSG>" and len(frames) == 7
        _assert_marked_blend(rendered, _local_blend(clip_frames[1], clip_frames[2], 0.5))
        assert any("did not answer within 0.5 s" in line for line in host.messages)
    finally:
        host.unload()
        silent.close(linger=0)
        context.term()


def test_engine_restarted_mid_sequence_reconnects(bundle, clip_frames, isolated_places):
    host = _host(bundle, clip_frames)
    try:
        host.set_param("speed", 50.0)
        connection, _ = start_engine(timeout_s=60)
        with EngineClient(connection) as client:
            expected = _expected(client, clip_frames, 1, Fraction(1, 2)).frame
        assert np.array_equal(host.render(3, (HEIGHT, WIDTH, 4), np.uint8), expected)
        first_pid = connection.pid
        assert stop_engine(timeout_s=10, force=True) in ("stopped", "killed")

        rendered = host.render(3, (HEIGHT, WIDTH, 4), np.uint8)
        _assert_marked_blend(rendered, _local_blend(clip_frames[1], clip_frames[2], 0.5))

        connection, started = start_engine(timeout_s=60)
        assert started and connection.pid != first_pid
        assert np.array_equal(host.render(3, (HEIGHT, WIDTH, 4), np.uint8), expected)
        assert any("answers again" in line for line in host.messages)
    finally:
        host.unload()
        stop_engine(timeout_s=10, force=True)
