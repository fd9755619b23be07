"""The learned speed estimator: small grey windows in, log2 speed and a synthetic-frame score out.

The network (``engine/speed/model/speed_net.onnx``, trained by ``engine.training.speed``) runs on
ONNX Runtime through ``engine.models.runtime``; torch is not needed here. It sees
``WINDOW_FRAMES`` consecutive frames at ``INPUT_PX`` (``engine.speed.windows``).

``estimate_span`` turns one contiguous span of frames into one estimate:

1. the median of the network's log2 speed over windows of consecutive frames (hop of half a window),
2. iterative re-speeding: very slow footage moves so little per frame that estimates drift
   towards 1; when the estimate says log2 s < -1.5 and the span is long enough, keep every n-th
   frame (n = the nearest power of two to 1 / s), estimate again and divide by n; repeat while
   it still says slow (the paper's recipe). The threshold is not -1: on held-out real clips the
   model reads some real-time footage as s = 1/2, and re-speeding would compound that error,
3. ``still`` when the frames barely change (mean squared grey difference below a noise floor, from
   ``engine.speed.motion_stats``): too little motion to tell, and we say so.

The uncertainty (``log2_sigma``) combines the spread of the window estimates with the model's
error measured on held-out clips (see MODEL_CARD.md).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from engine.errors import InsufficientFramesError, ModelIntegrityError
from engine.models.manifest import MODEL_SUFFIX, manifest_path_for, read_manifest, rebuild_hint
from engine.models.registry import InstalledModel
from engine.models.runtime import ModelSession, create_session
from engine.speed.motion_stats import frame_difference_energy
from engine.speed.windows import INPUT_PX, READ_PX, WINDOW_FRAMES, to_small_grey

log = logging.getLogger(__name__)

MODEL_PATH = Path(__file__).resolve().parent / "model" / ("speed_net" + MODEL_SUFFIX)
WINDOW_HOP_FRAMES = WINDOW_FRAMES // 2
RESPEED_BELOW_LOG2 = -1.5
MAX_RESPEED_ROUNDS = 3
MAX_RESPEED_STRIDE = 32
STILL_ENERGY = 0.6
MODEL_LOG2_SIGMA = 0.35


@dataclass
class SpanEstimate:
    """One span's answer. ``log2_speed`` is None when the span is still."""

    log2_speed: float | None
    log2_sigma: float
    synthetic_probability: float
    motion_energy: float
    window_count: int
    respeed_strides: list[int] = field(default_factory=list)
    window_log2_speeds: list[float] = field(default_factory=list)

    @property
    def still(self) -> bool:
        return self.log2_speed is None


TRAINING_MODULE = "engine.training.speed.train"
LEGACY_RECIPE_VERSION = 1
RATE_RELATIVE_RECIPE_VERSION = 2
"""From this version of ``engine.training.speed.train`` (its manifest's ``converter.version``), real
clips at P fps are anchored at log2(30 / P): the network reads the speed its frames show played at
30 fps, and the playback rate's offset log2(P / 30) applies at every rate. Version-1 networks (the
shipped one, and fine-tunes made before version 2) anchored all ordinary footage at 0 whatever its
rate, so the offset applies above 30 fps only."""


def recipe_version(converter: dict) -> int:
    """The speed-training recipe version a manifest's ``converter`` records; 1 when it says none."""
    version = converter.get("version")
    if converter.get("module") != TRAINING_MODULE or type(version) is not int:
        return LEGACY_RECIPE_VERSION
    return version


SPEED_INPUTS = ["frames"]
SPEED_OUTPUTS = ["log2_speed", "synthetic_logit"]


class SpeedModel:
    """The speed network on ONNX Runtime. ``predict`` takes (N, T, 64, 64) float32 windows."""

    def __init__(self, model_path: Path = MODEL_PATH, *, threads: int = 0) -> None:
        model_path = Path(model_path)
        manifest_path = manifest_path_for(model_path)
        shipped = model_path.resolve() == MODEL_PATH.resolve()
        if not shipped and not manifest_path.is_file():
            raise ModelIntegrityError(
                f"speed model {model_path.name} has no manifest beside it ({manifest_path.name}); "
                "`chronoscope train speed` writes a model with its manifest: give a MODEL.onnx it wrote"
            )
        installed = InstalledModel(read_manifest(manifest_path), manifest_path, model_path)
        names = (installed.manifest.input_names(), installed.manifest.output_names())
        if names != (SPEED_INPUTS, SPEED_OUTPUTS):
            raise ModelIntegrityError(
                f"{model_path.name} is not a speed model: it takes {', '.join(names[0]) or 'nothing'} "
                f"and gives {', '.join(names[1]) or 'nothing'} (a speed model takes "
                f"{', '.join(SPEED_INPUTS)} and gives {', '.join(SPEED_OUTPUTS)}); give a MODEL.onnx "
                "written by `chronoscope train speed`"
            )
        shape = tuple(installed.manifest.inputs[0].shape) if installed.manifest.inputs else ()
        if shape[1:] != (WINDOW_FRAMES, INPUT_PX, INPUT_PX):
            raise ModelIntegrityError(
                f"speed model {model_path.name} takes windows of shape {shape[1:]}; this engine reads "
                f"windows of {WINDOW_FRAMES} frames at {INPUT_PX} x {INPUT_PX} px. Models trained with "
                "other windows (bench/speed_gpu.py compares them) are for measuring, not for detect"
            )
        try:
            self.session: ModelSession = create_session(installed, threads=threads)
        except ModelIntegrityError as error:
            if not shipped:
                raise
            # the shipped network comes with Chronoscope: nothing to train or prepare, only to put back
            text = str(error).replace(
                rebuild_hint(installed.manifest),
                "It ships with Chronoscope: put it back (`git checkout engine/speed/model` in a source "
                "checkout) or reinstall Chronoscope",
            )
            raise ModelIntegrityError(text) from None
        self.manifest = installed.manifest

    @property
    def provider(self) -> str:
        return self.session.provider

    @property
    def reads_at_play_rate(self) -> bool:
        """Whether the playback-rate offset applies at every rate (``RATE_RELATIVE_RECIPE_VERSION``)."""
        return recipe_version(self.manifest.converter) >= RATE_RELATIVE_RECIPE_VERSION

    def predict(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per window: log2 speed and the probability that its frames are made, not captured."""
        if windows.ndim != 4 or windows.shape[1:] != (WINDOW_FRAMES, INPUT_PX, INPUT_PX):
            raise InsufficientFramesError(
                f"windows of shape {windows.shape} given; need (N, {WINDOW_FRAMES}, {INPUT_PX}, {INPUT_PX})"
            )
        outputs = self.session.run({"frames": np.ascontiguousarray(windows, dtype=np.float32)})
        logits = outputs["synthetic_logit"].astype(np.float64)
        return outputs["log2_speed"].astype(np.float64), 1.0 / (1.0 + np.exp(-logits))


@functools.lru_cache(maxsize=2)
def shared_model(model_path: Path = MODEL_PATH) -> SpeedModel:
    """One loaded model per process (loading takes a moment; the session is safe to share)."""
    return SpeedModel(model_path)


def _input_frames(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Small grey frames resized to the network's input, as float32 (N, 64, 64)."""
    return (
        np.stack(
            [
                cv2.resize(to_small_grey(frame), (INPUT_PX, INPUT_PX), interpolation=cv2.INTER_AREA)
                for frame in frames
            ]
        ).astype(np.float32)
        / 255.0
    )


def _windows(inputs: np.ndarray, stride: int) -> np.ndarray:
    """All windows of every ``stride``-th frame, hopping half a window, as (N, T, 64, 64)."""
    picked = inputs[::stride]
    starts = range(0, len(picked) - WINDOW_FRAMES + 1, WINDOW_HOP_FRAMES)
    return np.stack([picked[start : start + WINDOW_FRAMES] for start in starts])


def motion_energy(frames: Sequence[np.ndarray]) -> float:
    """Median mean-squared grey difference between consecutive frames at ``READ_PX``."""
    small = [to_small_grey(frame) for frame in frames]
    return float(np.median(frame_difference_energy(small, width_px=READ_PX)))


def estimate_span(frames: Sequence[np.ndarray], model: SpeedModel | None = None) -> SpanEstimate:
    """Estimate the speed of one contiguous span of at least ``WINDOW_FRAMES`` frames."""
    if len(frames) < WINDOW_FRAMES:
        raise InsufficientFramesError(
            f"{len(frames)} frames given; "
            f"the speed estimator needs at least {WINDOW_FRAMES} consecutive frames"
        )
    model = model or shared_model()
    energy = motion_energy(frames)
    if energy < STILL_ENERGY:
        return SpanEstimate(None, 0.0, 0.0, energy, 0)
    inputs = _input_frames(frames)
    windows = _windows(inputs, 1)
    log2_speeds, synthetic = model.predict(windows)
    log2_speed = float(np.median(log2_speeds))
    spread = float(np.std(log2_speeds)) / math.sqrt(len(log2_speeds))
    strides: list[int] = []
    stride = 1
    for _ in range(MAX_RESPEED_ROUNDS):
        if log2_speed >= RESPEED_BELOW_LOG2:
            break
        step = 2 ** int(round(-log2_speed))
        wanted = min(stride * step, MAX_RESPEED_STRIDE)
        while wanted > stride and len(inputs) < wanted * WINDOW_FRAMES:
            wanted //= 2
        if wanted <= stride:
            break
        stride = wanted
        strides.append(stride)
        again, _ = model.predict(_windows(inputs, stride))
        log2_speed = float(np.median(again)) - math.log2(stride)
        spread = float(np.std(again)) / math.sqrt(len(again))
    return SpanEstimate(
        log2_speed=log2_speed,
        log2_sigma=math.hypot(spread, MODEL_LOG2_SIGMA),
        synthetic_probability=float(np.mean(synthetic)),
        motion_energy=energy,
        window_count=len(windows),
        respeed_strides=strides,
        window_log2_speeds=[float(value) for value in log2_speeds],
    )
