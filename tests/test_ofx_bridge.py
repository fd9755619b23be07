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
from ofx_host import OfxTestHost

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


@pytest.fixture
def engine():
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
) -> OfxTestHost:
    host = OfxTestHost(
        bundle / "Contents" / "Linux-x86-64" / "Chronoscope.ofx", negative_row_bytes=negative_row_bytes
    )
    host.load_and_describe(context)
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


def test_float_hdr_and_16bit_frames_equal_the_engine_result(bundle, clip_frames, engine):
    floats = [frame.astype(np.float32) / 255.0 * 1.5 for frame in clip_frames]  # values up to 1.5
    host = _host(bundle, floats, model="blend")
    try:
        host.set_param("speed", 25.0)
        rendered = host.render(6, (HEIGHT, WIDTH, 4), np.float32)  # source 1.5
        scale = max(1.0, float(max(floats[1].max(), floats[2].max())))
        wire = [np.floor(np.clip(f / scale, 0, 1) * 65535 + 0.5).astype(np.uint16) for f in floats[1:3]]
        result = engine.synthesize(wire[0], wire[1], [0.5], backend="blend", shared=False)[0]
        expected = result.frame.astype(np.float64) / 65535 * scale
        np.testing.assert_allclose(rendered, expected, atol=1e-6)
        assert rendered.max() > 1.0
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
