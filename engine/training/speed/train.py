"""Self-supervised training of the speed network, and its export to ONNX with a manifest.

The recipe (the paper's equivariance, made small enough for two CPU cores), version
``RATE_RELATIVE_RECIPE_VERSION``: the network reads speed as if the frames played at 30 fps, so a
P fps clip is anchored at log2(30 / P) (``data``; version 1 anchored every clip at 0):

- real clips: ordinary footage anchors s = 1 (an L1 loss on log2 s of windows of every frame),
  and equivariance supervises everything else without labels: a window of every k-th frame and a
  window of every j-th frame from the same place must differ by log2(k / j),
- procedural 240 fps renders subsampled to known speeds (1/8 to 2) are extra anchors at genuine
  slow motion, where real footage has none,
- fake slow motion (duplicated, blended, interpolated by f = 2 and 4) is anchored at 1 / f (as
  played at 30 fps: 30 / (P f)) and labelled synthetic for the second output,
- against shortcuts: every variant went through the same H.264 encode (``data``), and here each
  window gets a random square crop (rescale up to 1.33x), per-frame gain and offset jitter, random
  horizontal flip and random time reversal (speed does not depend on the arrow of time).

What a run may vary (window, width, crops, inputs, share of renders) is its ``Recipe``
(``engine.training.speed.recipe``); how a network is judged on held-out sources is in
``engine.training.speed.validation``. ``train`` checkpoints to ``<cache>/checkpoint.pt`` every
hundred steps (``checkpoint_every_steps``), and when Ctrl-C or SIGTERM stops it, and resumes from it.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.errors import TrainingDataError, UnsupportedOptionError
from engine.fsutil import atomic_path
from engine.models.manifest import (
    ModelManifest,
    Provenance,
    TensorSpec,
    manifest_path_for,
    read_manifest,
    sha256_file,
    write_manifest,
)
from engine.speed.estimator import (
    LEGACY_RECIPE_VERSION,
    RATE_RELATIVE_RECIPE_VERSION,
    TRAINING_MODULE,
    recipe_version,
)
from engine.speed.windows import INPUT_PX
from engine.training.speed.data import Source, Variant, cache_is_current, load_variants
from engine.training.speed.net import CalibratedSpeedNet, SpeedNet
from engine.training.speed.recipe import (
    Recipe,
    crop_window,
    jitter,
    recipe_differences,
    recipe_in_manifest,
    recipe_of,
)
from engine.training.stopping import resend, stop_at_a_step_boundary

log = logging.getLogger(__name__)

MODEL_DIR = Path(__file__).resolve().parents[2] / "speed" / "model"
MODEL_NAME = "speed_net"
ONNX_OPSET = 17
CHECKPOINT_EVERY_STEPS = 100
LEARNING_RATE = 2e-3
DEVICES = ("auto", "cuda", "cpu")
INIT_WEIGHTS = MODEL_DIR / f"{MODEL_NAME}.weights.pt"
SHIPPED_MANIFEST = manifest_path_for(MODEL_DIR / f"{MODEL_NAME}.onnx")


def load_sources(cache_dir: Path) -> list[Source]:
    """Every cached source in ``cache_dir``; a cache from an older format is refused, not trained on."""
    paths = sorted(cache_dir.glob("*.npz"))
    if not paths:
        raise FileNotFoundError(f"no cached sources in {cache_dir}; run `bench/speed_train.py cache` first")
    stale = [path.name for path in paths if not cache_is_current(path)]
    if stale:
        raise TrainingDataError(
            f"{len(stale)} cached sources in {cache_dir} are from an older cache format or damaged "
            f"({', '.join(stale[:3])}{', ...' if len(stale) > 3 else ''}); "
            "rebuild them with `bench/speed_train.py cache`"
        )
    return [Source(path.stem, {v.key: v for v in load_variants(path)}) for path in paths]


def shipped_recipe() -> Recipe:
    """The recipe (window, width, input) of the shipped network, whose weights ``INIT_WEIGHTS`` are."""
    return recipe_in_manifest(SHIPPED_MANIFEST)


def shipped_recipe_version() -> int:
    """The recipe version of the shipped network, whose weights ``INIT_WEIGHTS`` are."""
    return recipe_version(read_manifest(SHIPPED_MANIFEST).converter)


def _manifest_beside(weights: Path) -> Path:
    """``NAME.manifest.json`` beside ``NAME.weights.pt`` (what ``export_checkpoint`` writes)."""
    stem = weights.name.removesuffix(".pt").removesuffix(".weights")
    return weights.with_name(f"{stem}.manifest.json")


def weights_recipe(weights: Path | None) -> Recipe:
    """The network starting weights fit: the shipped network's recipe for the shipped weights; for
    other weights the recipe of the manifest beside them; else (no weights, or no manifest) the
    default recipe."""
    if weights is None:
        return Recipe()
    if weights.resolve() == INIT_WEIGHTS.resolve():
        return shipped_recipe()
    manifest = _manifest_beside(weights)
    return recipe_in_manifest(manifest) if manifest.is_file() else Recipe()


def weights_recipe_version(weights: Path | None) -> int:
    """The recipe version starting weights were trained by: the shipped network's for the shipped
    weights, the manifest's beside other weights, else this code's."""
    if weights is not None and weights.resolve() == INIT_WEIGHTS.resolve():
        return shipped_recipe_version()
    if weights is not None and _manifest_beside(weights).is_file():
        return recipe_version(read_manifest(_manifest_beside(weights)).converter)
    return RATE_RELATIVE_RECIPE_VERSION


class Sampler:
    """Draws batches: pairs of windows at two strides from the same place, plus synthetic ones.

    A source with ``real_k`` variants is ordinary footage: only ``real_1`` is anchored (real time,
    at its speed as played at 30 fps),
    the rest is supervised by equivariance. A source with ``render_n`` variants (procedural
    renders, or a user's high-rate clip) is anchored at every stride, at each variant's speed.
    """

    def __init__(self, sources: list[Source], seed: int = 0, recipe: Recipe | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self.recipe = recipe or Recipe()
        self.window_frames = self.recipe.window_frames
        self.clips = [s for s in sources if "real_1" in s.variants]
        self.renders = [s for s in sources if "render_1" in s.variants]
        if not self.clips and not self.renders:
            raise TrainingDataError("no training source has real_1 or render_1 windows")

    @staticmethod
    def _strides(source: Source, prefix: str) -> tuple[int, ...]:
        return tuple(
            sorted(int(key.split("_")[1]) for key in source.variants if key.startswith(prefix + "_"))
        )

    def _window(self, variant: Variant, start: int) -> np.ndarray:
        return crop_window(
            variant.frames[start : start + self.window_frames], self.rng, self.recipe.min_crop_px
        )

    def _pair(self, source: Source, prefix: str, strides: tuple[int, ...]) -> tuple | None:
        if len(strides) < 2:
            return None
        first, second = self.rng.choice(strides, size=2, replace=False)
        low, high = sorted((int(first), int(second)))
        frames = len(source.variants[f"{prefix}_{low}"].frames) * low
        span = self.window_frames * high
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

        attempts = 0
        while len(pairs) < self.recipe.batch_pairs:
            attempts += 1
            if attempts > 100 * self.recipe.batch_pairs:
                raise TrainingDataError("the training sources are too short for windows at two strides")
            from_render = self.rng.random() < self.recipe.render_share
            pool = self.renders if (from_render and self.renders) or not self.clips else self.clips
            source = pool[int(self.rng.integers(len(pool)))]
            prefix = "render" if "render_1" in source.variants else "real"
            drawn = self._pair(source, prefix, self._strides(source, prefix))
            if drawn is None:
                continue
            window_low, window_high, low, high = drawn
            speed_low = math.log2(source.variants[f"{prefix}_{low}"].speed)
            speed_high = math.log2(source.variants[f"{prefix}_{high}"].speed)
            if prefix == "render":
                a = add(window_low, speed_low, True, False)
                b = add(window_high, speed_high, True, False)
            else:
                a = add(window_low, speed_low, low == 1, False)
                b = add(window_high, speed_high, False, False)
            pairs.append((a, b, math.log2(high / low)))
            if self.rng.random() < 0.5:
                synthetic_keys = [
                    key for key in source.variants if key.split("_")[0] in ("dup", "blend", "interp")
                ]
                if synthetic_keys:
                    variant = source.variants[synthetic_keys[int(self.rng.integers(len(synthetic_keys)))]]
                    if len(variant.frames) >= self.window_frames:
                        start = int(self.rng.integers(0, len(variant.frames) - self.window_frames + 1))
                        add(self._window(variant, start), math.log2(variant.speed), True, True)
        return {
            "frames": torch.from_numpy(jitter(np.stack(inputs), self.rng)),
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


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cuda`` or ``cpu``; CUDA asked for but absent is refused."""
    if name not in DEVICES:
        raise UnsupportedOptionError(f"device {name!r} is not supported; available: {', '.join(DEVICES)}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UnsupportedOptionError(
            "device 'cuda' asked for, but torch sees no CUDA GPU; use --device cpu or --device auto"
        )
    return torch.device("cuda")


def train(
    cache_dir: Path,
    *,
    minutes: float | None = 10.0,
    steps: int | None = None,
    seed: int = 0,
    learning_rate: float = LEARNING_RATE,
    device: str = "cpu",
    checkpoint: Path | None = None,
    init_weights: Path | None = None,
    sources: list[Source] | None = None,
    resume: bool = True,
    score: Callable[[SpeedNet, int], float] | None = None,
    init_recipe_version: int = RATE_RELATIVE_RECIPE_VERSION,
    recipe: Recipe | None = None,
    checkpoint_every_steps: int = CHECKPOINT_EVERY_STEPS,
    run: dict | None = None,
) -> Path:
    """Train until ``steps`` optimiser steps in all or ``minutes`` of wall time; return the checkpoint.

    The learning rate falls along a cosine from ``learning_rate`` to 5 % of it over the run (over
    the steps when ``steps`` is given). ``resume`` continues ``checkpoint`` when it exists;
    otherwise the network starts from ``init_weights`` (a state dict) or from scratch. On CPU one
    torch thread: on a shared two-core machine two threads spin against each other.

    ``score`` (lower is better, e.g. the error on held-out clips) is taken of the starting network
    and at every checkpoint; the checkpoint keeps the best network so far under ``best``, which
    ``export_checkpoint(..., best=True)`` exports. So a run that only drifts keeps its start.

    Training is recipe ``RATE_RELATIVE_RECIPE_VERSION``; ``init_recipe_version`` is the recipe the
    ``init_weights`` came from (the shipped weights: 1). ``score`` gets the network and the version
    to judge it by, the checkpoint and ``best`` record theirs, and the export says it in the
    manifest: an unchanged start keeps its own version. A checkpoint of another version is not
    resumed. ``recipe`` sets the window length, the network's width and input, the crops, the batch
    and the share of renders (the defaults are the shipped network's); the checkpoint records it,
    and one of another recipe is not resumed either.

    The checkpoint is written every ``checkpoint_every_steps`` steps (``score`` is taken there too),
    at the end, and when SIGINT or SIGTERM stops the run (``stop_at_a_step_boundary``: after the step
    under way; the signal then goes on to the command, which exits as it would have). ``run``
    (what the caller trained on) is kept in the checkpoint as it is, under ``run``.
    """
    if checkpoint_every_steps < 1:
        raise UnsupportedOptionError(f"checkpoint every {checkpoint_every_steps} steps: give at least 1")
    if steps is None and minutes is None:
        raise UnsupportedOptionError("give a number of steps or of minutes to train for")
    torch.manual_seed(seed)
    target = resolve_device(device)
    if target.type == "cpu":
        torch.set_num_threads(1)
    recipe = recipe or Recipe()
    recipe.validate()
    sampler = Sampler(sources if sources is not None else load_sources(cache_dir), seed, recipe)
    network = recipe.network()
    optimiser = torch.optim.AdamW(network.parameters(), lr=learning_rate, weight_decay=1e-4)
    checkpoint = checkpoint or cache_dir / "checkpoint.pt"
    step = 0
    history: list[dict] = []
    best: dict | None = None
    network_version = RATE_RELATIVE_RECIPE_VERSION
    if resume and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False, map_location="cpu")
        found = state.get("recipe_version", LEGACY_RECIPE_VERSION)
        if found != RATE_RELATIVE_RECIPE_VERSION:
            raise TrainingDataError(
                f"checkpoint {checkpoint} was trained by recipe version {found}, this is version "
                f"{RATE_RELATIVE_RECIPE_VERSION} (real clips anchored by their frame rate); "
                "start a new run instead of resuming (another work folder, or delete the checkpoint)"
            )
        trained_with = recipe_of(state, f"checkpoint {checkpoint}")
        if trained_with != recipe:
            raise TrainingDataError(
                f"checkpoint {checkpoint} was trained with another recipe "
                f"({'; '.join(recipe_differences(trained_with, recipe))}); "
                "start a new run instead of resuming (another work folder, or delete the checkpoint)"
            )
        network.load_state_dict(state["network"])
        optimiser.load_state_dict(state["optimiser"])
        step, history, best = state["step"], state["history"], state.get("best")
        log.info("resuming at step %d", step)
    elif init_weights is not None:
        network.load_state_dict(torch.load(init_weights, weights_only=True, map_location="cpu"))
        network_version = init_recipe_version
        log.info("starting from %s (recipe version %d)", init_weights, init_recipe_version)
    network.to(target)

    def keep_if_best() -> None:
        nonlocal best
        if score is None:
            return
        value = float(score(network, network_version))
        network.train()
        if best is None or value < best["score"]:
            snapshot = {key: tensor.detach().cpu().clone() for key, tensor in network.state_dict().items()}
            best = {"score": value, "step": step, "network": snapshot, "recipe_version": network_version}
        log.info(
            "step %d: held-out score %.4f (best %.4f, step %d)", step, value, best["score"], best["step"]
        )

    if best is None:
        keep_if_best()
    for state_value in optimiser.state.values():
        for key, value in state_value.items():
            if isinstance(value, torch.Tensor):
                state_value[key] = value.to(target)
    network.train()
    started = time.monotonic()
    deadline = None if minutes is None else started + minutes * 60

    def progress_now() -> float:
        # by steps: the schedule is the whole run's, so a resumed run goes on where it stopped
        if steps is not None:
            return step / max(steps, 1)
        return (time.monotonic() - started) / (deadline - started)

    running: dict[str, float] = {}

    def save() -> None:
        _save(checkpoint, network, optimiser, step, history, best, network_version, recipe, run)

    with stop_at_a_step_boundary() as stop:
        while (steps is None or step < steps) and (deadline is None or time.monotonic() < deadline):
            progress = min(progress_now(), 1.0)
            for group in optimiser.param_groups:
                group["lr"] = learning_rate * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))
            batch = {key: value.to(target) for key, value in sampler.batch().items()}
            parts = losses(network, batch)
            total = parts["anchor"] + parts["equivariance"] + 0.5 * parts["synthetic"]
            optimiser.zero_grad()
            total.backward()
            optimiser.step()
            step += 1
            network_version = RATE_RELATIVE_RECIPE_VERSION
            for key, value in parts.items():
                scalar = float(value.detach())
                running[key] = 0.95 * running.get(key, scalar) + 0.05 * scalar
            if step % 25 == 0:
                log.info("step %d %s", step, " ".join(f"{k}={v:.3f}" for k, v in running.items()))
            if step % checkpoint_every_steps == 0:
                history.append({"step": step, **running})
                keep_if_best()
                save()
            if stop.signal_number is not None:
                if step % checkpoint_every_steps:
                    history.append({"step": step, **running})
                    save()
                log.warning(
                    "stopped by %s at step %d: checkpoint saved at %s; --resume continues it",
                    signal.Signals(stop.signal_number).name,
                    step,
                    checkpoint,
                )
                break
    if stop.signal_number is not None:
        resend(stop)
    if running:
        history.append({"step": step, **running})
    if step % checkpoint_every_steps:
        keep_if_best()
    save()
    return checkpoint


@dataclass
class KeptNetwork:
    """The network a checkpoint hands on: its weights, its step and its recipe version."""

    network: dict
    step: int
    recipe_version: int


def kept_network(state: dict, best: bool = True) -> KeptNetwork:
    """The checkpoint's best network by held-out score when ``best`` and it has one, else its last;
    a checkpoint that records no version is version 1."""
    version = state.get("recipe_version", LEGACY_RECIPE_VERSION)
    chosen = state.get("best") if best else None
    if chosen:
        return KeptNetwork(chosen["network"], int(chosen["step"]), chosen.get("recipe_version", version))
    return KeptNetwork(state["network"], int(state["step"]), version)


def _save(
    path: Path,
    network: SpeedNet,
    optimiser,
    step: int,
    history: list[dict],
    best: dict | None,
    version: int,
    recipe: Recipe,
    run: dict | None = None,
) -> None:
    """Write the checkpoint through a temporary name (a run killed meanwhile leaves the previous one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    torch.save(
        {
            "network": network.state_dict(),
            "optimiser": optimiser.state_dict(),
            "step": step,
            "history": history,
            "best": best,
            "recipe_version": version,
            "recipe": asdict(recipe),
            **({"run": run} if run is not None else {}),
        },
        temporary,
    )
    temporary.replace(path)


def export_model(checkpoint: Path, destination_dir: Path = MODEL_DIR) -> Path:
    """Export ``checkpoint`` to ``speed_net.onnx`` with its manifest in ``destination_dir``, and its
    network's state dict as ``speed_net.weights.pt`` (what ``chronoscope train speed`` starts from)."""
    weights = destination_dir / f"{MODEL_NAME}.weights.pt"
    destination_dir.mkdir(parents=True, exist_ok=True)
    temporary = weights.with_name(weights.name + ".partial")
    torch.save(torch.load(checkpoint, weights_only=False, map_location="cpu")["network"], temporary)
    temporary.replace(weights)
    # the weights first: the manifest (its recipe) written last describes weights already there
    return export_checkpoint(checkpoint, destination_dir / f"{MODEL_NAME}.onnx")


def export_checkpoint(
    checkpoint: Path,
    model_path: Path,
    *,
    description: str = "",
    upstream: str = "",
    best: bool = False,
    calibration: dict | None = None,
) -> Path:
    """Export a training checkpoint to ONNX at ``model_path`` (temporary name, then renamed) with its
    manifest beside it; the model's name is the file's stem. ``best`` exports the checkpoint's best
    network by held-out score (see ``train``) when it has one, else the last. ``calibration``
    (``offset``, ``scale`` and a note of what it was fitted on) maps the log2 speed inside the graph
    to (read - offset) / scale; the manifest records it."""
    state = torch.load(checkpoint, weights_only=False, map_location="cpu")
    kept = kept_network(state, best)
    recipe = recipe_of(state, f"checkpoint {checkpoint}")
    trained = recipe.network()
    trained.load_state_dict(kept.network)
    trained.eval()
    network: torch.nn.Module = trained
    if calibration is not None:
        network = CalibratedSpeedNet(trained, calibration["offset"], calibration["scale"]).eval()
    model_path.parent.mkdir(parents=True, exist_ok=True)
    inputs = (
        TensorSpec(
            "frames",
            "float32",
            ("batch", recipe.window_frames, INPUT_PX, INPUT_PX),
            "consecutive grey frames in [0, 1], see engine.speed.windows",
        ),
    )
    outputs = (
        TensorSpec(
            "log2_speed",
            "float32",
            ("batch",),
            "log2 of the speed s = P / C the frames show played at P = 30 fps (detect adds the rate offset)",
        ),
        TensorSpec("synthetic_logit", "float32", ("batch",), "logit: frames are made, not captured"),
    )
    # a unique temporary beside the model (two runs may export to one name), removed on failure;
    # the manifest describes its bytes and is written as soon as the model is in place
    with atomic_path(model_path) as temporary:
        with torch.no_grad():
            torch.onnx.export(
                network,
                torch.rand((1, recipe.window_frames, INPUT_PX, INPUT_PX)),
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
        manifest = ModelManifest(
            name=model_path.stem,
            architecture="chronoscope-speednet-v1",
            file=model_path.name,
            sha256=sha256_file(temporary),
            size_bytes=temporary.stat().st_size,
            onnx_opset=ONNX_OPSET,
            pad_multiple=1,
            supports_timestep=False,
            parameter_count=sum(p.numel() for p in trained.parameters()),
            inputs=inputs,
            outputs=outputs,
            provenance=Provenance(
                package="chronoscope",
                package_version="trained in-house",
                wheel_filename="",
                wheel_sha256="",
                weights_path=str(checkpoint) if upstream else "build/speed-cache/checkpoint.pt",
                weights_sha256=sha256_file(checkpoint),
                licence="same as Chronoscope",
                copyright="Chronoscope authors; training footage per shared/data/SOURCES.md",
                upstream=upstream or "engine/training/speed (see engine/speed/model/MODEL_CARD.md)",
            ),
            converter={
                "module": TRAINING_MODULE,
                "version": kept.recipe_version,
                "torch": torch.__version__,
                "steps": state["step"],
                "exported_step": kept.step,
                "last_losses": json.loads(json.dumps(state["history"][-1] if state["history"] else {})),
                "recipe": asdict(recipe),
                **({"calibration": dict(calibration)} if calibration is not None else {}),
            },
            description=description
            or "playback-speed estimator: log2 speed and synthetic-frame logit per "
            f"{recipe.window_frames}-frame window",
        )
    write_manifest(manifest, manifest_path_for(model_path))
    return model_path
