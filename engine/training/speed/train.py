"""Self-supervised training of the speed network, and its export to ONNX with a manifest.

The recipe (the paper's equivariance, made small enough for two CPU cores):

- real clips: ordinary footage anchors s = 1 (an L1 loss on log2 s of windows of every frame),
  and equivariance supervises everything else without labels: a window of every k-th frame and a
  window of every j-th frame from the same place must differ by log2(k / j),
- procedural 240 fps renders subsampled to known speeds (1/8 to 2) are extra anchors at genuine
  slow motion, where real footage has none,
- fake slow motion (duplicated, blended, interpolated by 2 and 4) is anchored at its nominal
  speed and labelled synthetic for the second output,
- against shortcuts: every variant went through the same H.264 encode (``data``), and here each
  window gets a random square crop (rescale up to 1.33x), per-frame gain and offset jitter, random
  horizontal flip and random time reversal (speed does not depend on the arrow of time).

``train`` checkpoints to ``<cache>/checkpoint.pt`` every few hundred steps and resumes from it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.models.manifest import (
    ModelManifest,
    Provenance,
    TensorSpec,
    manifest_path_for,
    sha256_file,
    write_manifest,
)
from engine.speed.windows import INPUT_PX, READ_PX, WINDOW_FRAMES
from engine.training.speed.data import Variant, load_variants
from engine.training.speed.net import EXAMPLE_SHAPE, SpeedNet

log = logging.getLogger(__name__)

MODEL_DIR = Path(__file__).resolve().parents[2] / "speed" / "model"
MODEL_NAME = "speed_net"
ONNX_OPSET = 17
BATCH_PAIRS = 16
CHECKPOINT_EVERY_STEPS = 100
LEARNING_RATE = 2e-3
MIN_CROP_PX = 72


@dataclass
class Source:
    name: str
    variants: dict[str, Variant]


def load_sources(cache_dir: Path) -> list[Source]:
    sources = []
    for path in sorted(cache_dir.glob("*.npz")):
        sources.append(Source(path.stem, {v.key: v for v in load_variants(path)}))
    if not sources:
        raise FileNotFoundError(f"no cached sources in {cache_dir}; run `bench/speed_train.py cache` first")
    return sources


def augment(window: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(T, READ_PX, READ_PX) uint8 -> (T, INPUT_PX, INPUT_PX) float32 with crop, jitter, flip, reversal."""
    crop = int(rng.integers(MIN_CROP_PX, READ_PX + 1))
    y, x = (int(rng.integers(0, READ_PX - crop + 1)) for _ in range(2))
    frames = [
        cv2.resize(frame[y : y + crop, x : x + crop], (INPUT_PX, INPUT_PX), interpolation=cv2.INTER_AREA)
        for frame in window
    ]
    out = np.stack(frames).astype(np.float32) / 255.0
    contrast = rng.uniform(0.7, 1.3)
    out = (out - 0.5) * contrast + 0.5 + rng.uniform(-0.1, 0.1)
    gains = rng.uniform(0.97, 1.03, size=(len(out), 1, 1))
    offsets = rng.uniform(-0.015, 0.015, size=(len(out), 1, 1))
    out = np.clip(out * gains + offsets, 0.0, 1.0)
    if rng.random() < 0.5:
        out = out[:, :, ::-1]
    if rng.random() < 0.5:
        out = out[::-1]
    return np.ascontiguousarray(out, dtype=np.float32)


class Sampler:
    """Draws batches: pairs of windows at two strides from the same place, plus synthetic ones."""

    def __init__(self, sources: list[Source], seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.clips = [s for s in sources if s.name.startswith("clip-")]
        self.renders = [s for s in sources if s.name.startswith("render-")]

    def _window(self, variant: Variant, start: int) -> np.ndarray:
        return augment(variant.frames[start : start + WINDOW_FRAMES], self.rng)

    def _pair(self, source: Source, prefix: str, strides: tuple[int, ...]) -> tuple | None:
        first, second = self.rng.choice(strides, size=2, replace=False)
        low, high = sorted((int(first), int(second)))
        frames = len(source.variants[f"{prefix}_{low}"].frames) * low
        span = WINDOW_FRAMES * high
        if frames <= span:
            return None
        start = int(self.rng.integers(0, (frames - span) // high + 1)) * high
        window_low = self._window(source.variants[f"{prefix}_{low}"], start // low)
        window_high = self._window(source.variants[f"{prefix}_{high}"], start // high)
        return window_low, window_high, low, high

    def batch(self) -> dict[str, torch.Tensor]:
        inputs, speeds, anchored, synthetic, pairs = [], [], [], [], []

        def add(window: np.ndarray, log2_speed: float, is_anchor: bool, is_synthetic: bool) -> int:
            inputs.append(window)
            speeds.append(log2_speed)
            anchored.append(is_anchor)
            synthetic.append(is_synthetic)
            return len(inputs) - 1

        while len(pairs) < BATCH_PAIRS:
            from_render = self.rng.random() < 0.35
            pool = self.renders if from_render and self.renders else self.clips
            source = pool[int(self.rng.integers(len(pool)))]
            prefix, strides = (
                ("render", (1, 2, 4, 8, 16)) if source.name.startswith("render-") else ("real", (1, 2, 4, 8))
            )
            drawn = self._pair(source, prefix, strides)
            if drawn is None:
                continue
            window_low, window_high, low, high = drawn
            if prefix == "render":
                speed_low, speed_high = math.log2(low / 8), math.log2(high / 8)
                a = add(window_low, speed_low, True, False)
                b = add(window_high, speed_high, True, False)
            else:
                a = add(window_low, math.log2(low), low == 1, False)
                b = add(window_high, math.log2(high), False, False)
            pairs.append((a, b, math.log2(high / low)))
            if self.rng.random() < 0.5:
                synthetic_keys = [
                    key for key in source.variants if key.split("_")[0] in ("dup", "blend", "interp")
                ]
                if synthetic_keys:
                    variant = source.variants[synthetic_keys[int(self.rng.integers(len(synthetic_keys)))]]
                    start = int(self.rng.integers(0, len(variant.frames) - WINDOW_FRAMES + 1))
                    add(self._window(variant, start), math.log2(variant.speed), True, True)
        return {
            "frames": torch.from_numpy(np.stack(inputs)),
            "log2_speed": torch.tensor(speeds, dtype=torch.float32),
            "anchored": torch.tensor(anchored, dtype=torch.bool),
            "synthetic": torch.tensor(synthetic, dtype=torch.float32),
            "pairs": torch.tensor([(a, b) for a, b, _ in pairs], dtype=torch.long),
            "pair_delta": torch.tensor([d for _, _, d in pairs], dtype=torch.float32),
        }


def losses(network: SpeedNet, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    predicted, synthetic_logit = network(batch["frames"])
    anchored = batch["anchored"]
    anchor = F.smooth_l1_loss(predicted[anchored], batch["log2_speed"][anchored], beta=0.25)
    first, second = batch["pairs"][:, 0], batch["pairs"][:, 1]
    equivariance = F.smooth_l1_loss(predicted[second] - predicted[first], batch["pair_delta"], beta=0.25)
    synthetic = F.binary_cross_entropy_with_logits(synthetic_logit, batch["synthetic"])
    return {"anchor": anchor, "equivariance": equivariance, "synthetic": synthetic}


def train(
    cache_dir: Path, *, minutes: float = 10.0, seed: int = 0, learning_rate: float = LEARNING_RATE
) -> Path:
    """Train for about ``minutes`` of wall time (resuming any checkpoint); return the checkpoint.

    The learning rate falls along a cosine from ``learning_rate`` to 5 % of it over the run.
    One torch thread: on a shared two-core machine two threads spin against each other and
    run four times slower.
    """
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    sampler = Sampler(load_sources(cache_dir), seed)
    network = SpeedNet()
    optimiser = torch.optim.AdamW(network.parameters(), lr=LEARNING_RATE, weight_decay=1e-4)
    checkpoint = cache_dir / "checkpoint.pt"
    step = 0
    history: list[dict] = []
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        network.load_state_dict(state["network"])
        optimiser.load_state_dict(state["optimiser"])
        step, history = state["step"], state["history"]
        log.info("resuming at step %d", step)
    network.train()
    started = time.monotonic()
    deadline = started + minutes * 60
    running: dict[str, float] = {}
    while time.monotonic() < deadline:
        progress = (time.monotonic() - started) / (deadline - started)
        for group in optimiser.param_groups:
            group["lr"] = learning_rate * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))
        parts = losses(network, sampler.batch())
        total = parts["anchor"] + parts["equivariance"] + 0.5 * parts["synthetic"]
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        step += 1
        for key, value in parts.items():
            scalar = float(value.detach())
            running[key] = 0.95 * running.get(key, scalar) + 0.05 * scalar
        if step % 25 == 0:
            log.info("step %d %s", step, " ".join(f"{k}={v:.3f}" for k, v in running.items()))
        if step % CHECKPOINT_EVERY_STEPS == 0:
            history.append({"step": step, **running})
            _save(checkpoint, network, optimiser, step, history)
    _save(checkpoint, network, optimiser, step, history)
    return checkpoint


def _save(path: Path, network: SpeedNet, optimiser, step: int, history: list[dict]) -> None:
    temporary = path.with_name(path.name + ".partial")
    torch.save(
        {
            "network": network.state_dict(),
            "optimiser": optimiser.state_dict(),
            "step": step,
            "history": history,
        },
        temporary,
    )
    temporary.replace(path)


def export_model(cache_dir: Path, destination_dir: Path = MODEL_DIR) -> Path:
    """Export the checkpoint to ``speed_net.onnx`` and write its manifest beside it."""
    state = torch.load(cache_dir / "checkpoint.pt", weights_only=False)
    network = SpeedNet()
    network.load_state_dict(state["network"])
    network.eval()
    destination_dir.mkdir(parents=True, exist_ok=True)
    model_path = destination_dir / f"{MODEL_NAME}.onnx"
    temporary = model_path.with_name(model_path.name + ".partial")
    inputs = (
        TensorSpec(
            "frames",
            "float32",
            ("batch", WINDOW_FRAMES, INPUT_PX, INPUT_PX),
            "consecutive grey frames in [0, 1], see engine.speed.windows",
        ),
    )
    outputs = (
        TensorSpec("log2_speed", "float32", ("batch",), "log2 of the playback speed s = P / C"),
        TensorSpec("synthetic_logit", "float32", ("batch",), "logit: frames are made, not captured"),
    )
    with torch.no_grad():
        torch.onnx.export(
            network,
            torch.rand(EXAMPLE_SHAPE),
            str(temporary),
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["frames"],
            output_names=["log2_speed", "synthetic_logit"],
            dynamic_axes={
                "frames": {0: "batch"},
                "log2_speed": {0: "batch"},
                "synthetic_logit": {0: "batch"},
            },
            do_constant_folding=True,
        )
    temporary.replace(model_path)
    manifest = ModelManifest(
        name=MODEL_NAME,
        architecture="chronoscope-speednet-v1",
        file=model_path.name,
        sha256=sha256_file(model_path),
        size_bytes=model_path.stat().st_size,
        onnx_opset=ONNX_OPSET,
        pad_multiple=1,
        supports_timestep=False,
        parameter_count=sum(p.numel() for p in network.parameters()),
        inputs=inputs,
        outputs=outputs,
        provenance=Provenance(
            package="chronoscope",
            package_version="trained in-house",
            wheel_filename="",
            wheel_sha256="",
            weights_path="build/speed-cache/checkpoint.pt",
            weights_sha256=sha256_file(cache_dir / "checkpoint.pt"),
            licence="same as Chronoscope",
            copyright="Chronoscope authors; training footage per shared/data/SOURCES.md",
            upstream="engine/training/speed (see engine/speed/model/MODEL_CARD.md)",
        ),
        converter={
            "module": "engine.training.speed.train",
            "version": 1,
            "torch": torch.__version__,
            "steps": state["step"],
            "last_losses": json.loads(json.dumps(state["history"][-1] if state["history"] else {})),
        },
        description="playback-speed estimator: log2 speed and synthetic-frame logit per 8-frame window",
    )
    write_manifest(manifest, manifest_path_for(model_path))
    return model_path
