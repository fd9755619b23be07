"""Fine-tune the speed network on a user's own footage, without labels (``chronoscope train speed``).

The shipped model's self-supervised recipe in its current form (``engine.training.speed.train``,
version 2): the user's ordinary footage anchors s = 1 on every frame (at log2(30 / P) for a clip
at P fps, what its frames show played at 30 fps) and supervises every other speed by
equivariance (every k-th frame reads k times faster); fake slow motion made from it teaches the
synthetic-frame output; clips stored at 100 fps or more are high-rate captures and anchor genuine
slow motion (every n-th frame played at 30 fps, s = 30 n / P); optional procedural 240 fps renders
textured by the user's clips add more genuine slow motion.

Steps:

1. find the clips under ``data`` (recursively) and cache their variants under the work folder
   (``<cache>/speed-train/NAME-HASH``, HASH from the output's full path, so that two outputs of
   one name never share a checkpoint; a clip already cached is not read again). One run at a
   time trains in a work folder (a lock file in it),
2. split by clip: ``validation_share`` of the clips (at least 3 clips needed) is never trained on,
3. measure the starting network on the validation clips, train from the shipped weights (or
   resume the work folder's checkpoint), measuring the held-out error (mean |log2 error|) at
   every checkpoint and keeping the best network, the start included: a run that only drifts
   exports the weights it started from (``exported_step`` says which). A resume is refused
   where its checkpoint was trained on other ``data`` or is already past ``steps``; a run without
   ``resume`` that replaces a checkpoint says so. Ctrl-C or SIGTERM saves the checkpoint of
   the last whole step before the run stops. Each network is judged,
   and exported, under the recipe version it came from (see
   ``engine.speed.estimator.RATE_RELATIVE_RECIPE_VERSION``): the shipped weights are version 1,
   so an unchanged start reads footage exactly as the shipped detector does,
4. export ONNX with its manifest to ``output`` (temporary name, then renamed). The engine loads
   it with ``chronoscope detect --model OUTPUT.onnx`` (in code: ``SpeedModel(OUTPUT)``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import FileAccessError, OutputExistsError, TrainingDataError, UnsupportedOptionError
from engine.fsutil import check_output_folder
from engine.places import places
from engine.processes import exclusive_lock
from engine.training.speed.data import (
    SLOWMO_SOURCE_FRAMES,
    Source,
    build_user_cache,
    find_clips,
    load_variants,
)
from engine.training.speed.recipe import Recipe
from engine.training.speed.train import (
    CHECKPOINT_EVERY_STEPS,
    INIT_WEIGHTS,
    RATE_RELATIVE_RECIPE_VERSION,
    export_checkpoint,
    kept_network,
    resolve_device,
    train,
    weights_recipe,
    weights_recipe_version,
)
from engine.training.speed.validation import validation_errors

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

MIN_CLIPS_FOR_VALIDATION = 3
RENDER_SEED_BASE = 5000
DEFAULT_STEPS = 600
DEFAULT_LEARNING_RATE = 2e-4
DEFAULT_RENDERS = 2
CHECKPOINT_NAME = "checkpoint.pt"
WORK_LOCK_NAME = ".chronoscope-train.lock"


@dataclass
class FineTuneConfig:
    """What ``chronoscope train speed`` was asked for; checked by ``validate``."""

    data: tuple[Path, ...]
    output: Path
    steps: int = DEFAULT_STEPS
    device: str = "auto"
    resume: bool = False
    renders: int = DEFAULT_RENDERS
    validation_share: float = 0.2
    learning_rate: float = DEFAULT_LEARNING_RATE
    seed: int = 0
    work_dir: Path | None = None
    init_weights: Path | None = INIT_WEIGHTS
    init_recipe_version: int | None = None
    slowmo_source_frames: int = SLOWMO_SOURCE_FRAMES
    checkpoint_every_steps: int = CHECKPOINT_EVERY_STEPS

    def starting_recipe_version(self) -> int:
        """The recipe the starting weights came from: given, else what ``weights_recipe_version``
        finds (the shipped network's for the shipped weights)."""
        if self.init_recipe_version is not None:
            return self.init_recipe_version
        return weights_recipe_version(self.init_weights)

    def starting_recipe(self) -> Recipe:
        """The network the starting weights fit (``weights_recipe``): the shipped network's recipe
        for the shipped weights; for other weights ``NAME.weights.pt``, the recipe of the manifest
        ``NAME.manifest.json`` beside them (``bench/speed_train.py`` writes both); else the
        default recipe."""
        return weights_recipe(self.init_weights)

    def validate(self) -> None:
        if not self.data:
            raise UnsupportedOptionError("no --data given; name one or more folders of clips")
        if self.steps < 1:
            raise UnsupportedOptionError(f"--steps {self.steps}: give at least 1 step")
        if self.renders < 0:
            raise UnsupportedOptionError(f"--renders {self.renders}: give 0 or more renders")
        if not 0 <= self.validation_share < 1:
            raise UnsupportedOptionError(f"validation share {self.validation_share} is outside [0, 1)")
        if self.slowmo_source_frames < 4:
            raise UnsupportedOptionError(
                f"{self.slowmo_source_frames} source frames for fake slow motion; give at least 4"
            )
        if self.checkpoint_every_steps < 1:
            raise UnsupportedOptionError(
                f"--checkpoint-every {self.checkpoint_every_steps}: give at least 1 step"
            )
        if self.learning_rate <= 0:
            raise UnsupportedOptionError(f"learning rate {self.learning_rate} is not positive")
        if self.output.suffix.lower() != ".onnx":
            raise UnsupportedOptionError(f"-o {self.output}: the model is an ONNX file; name it MODEL.onnx")
        check_writable_output(self.output)
        if self.init_weights is not None and not self.init_weights.is_file():
            raise TrainingDataError(f"starting weights {self.init_weights} are missing")


@dataclass
class FineTuneResult:
    model_path: Path
    steps: int
    exported_step: int
    resumed_from_step: int
    device: str
    train_sources: list[str]
    validation_sources: list[str]
    validation_note: str
    metrics_before: dict[str, float]
    metrics_after: dict[str, float]
    seconds: float
    recipe_version: int = RATE_RELATIVE_RECIPE_VERSION


def check_writable_output(output: Path) -> None:
    """Before any training: refuse an ``-o`` that the export at the end could not write (a
    folder, a file where its folder should be, a file system that refuses files), rather than
    lose the run to it. Folders still to be made are not made here (``check_output_folder``)."""
    if output.is_dir():
        example = output / "speed.onnx"
        raise UnsupportedOptionError(f"-o {output} is a folder; name the model file, e.g. {example}")
    check_output_folder(
        output, what="model", hint="choose an output (-o) in a folder you can write to", a_file=True
    )


def default_work_dir(output: Path) -> Path:
    """The work folder of an output: ``speed-train/NAME-HASH`` in the cache folder, HASH from the
    output's full path, so that outputs of one name in two folders never share a checkpoint."""
    output = Path(output)
    key = hashlib.sha256(str(output.absolute()).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return places().cache_dir / "speed-train" / f"{output.stem}-{key}"


def data_record(data: tuple[Path, ...]) -> list[str]:
    """The ``--data`` of a run as its checkpoint keeps it: full paths, in order of first mention."""
    return list(dict.fromkeys(str(Path(path).absolute()) for path in data))


def make_work_dir(work_dir: Path, *, given: bool) -> None:
    """Make the work folder; one that cannot be made (a file there, no permission) is named."""
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = "a file is there" if isinstance(error, FileExistsError) else error.strerror or error
        fix = "give another --work-dir (a folder)" if given else "pass --work-dir FOLDER"
        raise FileAccessError(f"cannot make the work folder {work_dir}: {reason}; {fix}") from None


def check_resume(config: FineTuneConfig, checkpoint: Path, state: dict) -> int:
    """The step a resume continues from; refused when the checkpoint was trained on other
    ``--data`` or is already past ``--steps`` (a run's steps count from its start)."""
    step = int(state["step"])
    if config.steps < step:
        raise UnsupportedOptionError(
            f"--resume --steps {config.steps}: the checkpoint at {checkpoint} is at step {step} already "
            f"(--steps counts the whole run's); give --steps {step} or more, or start again without --resume"
        )
    trained_on = (state.get("run") or {}).get("data")
    given = data_record(config.data)
    if trained_on is None:
        log.warning("--resume: the checkpoint at %s does not say what --data it was trained on", checkpoint)
    elif trained_on != given:
        raise UnsupportedOptionError(
            f"--resume: the checkpoint at {checkpoint} was trained on --data {', '.join(trained_on)}, not "
            f"{', '.join(given)}; resume with the same --data, or start again without --resume"
        )
    return step


def split_sources(sources: list[Source], share: float, seed: int) -> tuple[list[Source], list[Source], str]:
    """Clips split by source (renders always train); with fewer than 3 clips nothing is held out."""
    clips = [s for s in sources if not s.name.startswith("render-")]
    count = round(len(clips) * share)
    if len(clips) < MIN_CLIPS_FOR_VALIDATION or count == 0:
        note = (
            f"{len(clips)} clip(s): too few to hold any out (need {MIN_CLIPS_FOR_VALIDATION}); "
            "measured on the training clips"
        )
        return sources, clips, note
    ranked = sorted(clips, key=lambda s: hashlib.sha256(f"{seed}:{s.name}".encode()).hexdigest())
    held = {s.name for s in ranked[:count]}
    return (
        [s for s in sources if s.name not in held],
        [s for s in clips if s.name in held],
        f"{count} of {len(clips)} clips held out, never trained on",
    )


def fine_tune(config: FineTuneConfig, progress: Callable[[str], None] | None = None) -> FineTuneResult:
    """Cache, split, measure, train, measure, export; see the module doc."""
    config.validate()
    started = time.monotonic()
    device = resolve_device(config.device)
    work_dir = Path(config.work_dir) if config.work_dir else default_work_dir(config.output)
    checkpoint = work_dir / CHECKPOINT_NAME
    if config.resume and not checkpoint.exists():
        earlier = places().cache_dir / "speed-train" / config.output.stem / CHECKPOINT_NAME
        hint = (
            f" (a checkpoint of a model named {config.output.stem}, from before checkpoints were kept per "
            f"output path, is at {earlier}: pass --work-dir {earlier.parent} to continue it)"
            if config.work_dir is None and earlier.is_file()
            else ""
        )
        raise UnsupportedOptionError(
            f"--resume: there is no checkpoint at {checkpoint}; run without --resume{hint}"
        )
    make_work_dir(work_dir, given=config.work_dir is not None)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(exclusive_lock(work_dir / WORK_LOCK_NAME))
        except BlockingIOError:
            raise OutputExistsError(
                f"another `chronoscope train speed` is training in {work_dir} (the same output); wait for "
                "it, or train another output (-o) or into another --work-dir"
            ) from None
        return _fine_tune_in(config, work_dir, device, started, progress)


def _fine_tune_in(
    config: FineTuneConfig,
    work_dir: Path,
    device: torch.device,
    started: float,
    progress: Callable[[str], None] | None,
) -> FineTuneResult:
    import torch

    checkpoint = work_dir / CHECKPOINT_NAME
    resumed_from = 0
    if config.resume:
        state = torch.load(checkpoint, weights_only=False, map_location="cpu")
        resumed_from = check_resume(config, checkpoint, state)
        log.info("resuming %s at step %d of %d", checkpoint, resumed_from, config.steps)
    elif checkpoint.exists():
        log.warning("replacing the checkpoint at %s (pass --resume to continue it)", checkpoint)
    clips = find_clips(config.data)
    render_seeds = tuple(range(RENDER_SEED_BASE, RENDER_SEED_BASE + config.renders))
    paths = build_user_cache(
        clips,
        work_dir / "cache",
        render_seeds=render_seeds,
        slowmo_source_frames=config.slowmo_source_frames,
        progress=progress,
    )
    sources = [Source(path.stem, {v.key: v for v in load_variants(path)}) for path in paths]
    training, validation, note = split_sources(sources, config.validation_share, config.seed)

    recipe = config.starting_recipe()

    def measure(state_dict, version: int) -> dict[str, float]:
        network = recipe.network()
        if state_dict is not None:
            network.load_state_dict(state_dict)
        return validation_errors(network.to(device), validation, device, version)

    initial = (
        torch.load(config.init_weights, weights_only=True, map_location="cpu")
        if config.init_weights is not None
        else None
    )
    starting_version = config.starting_recipe_version()
    before = measure(initial, starting_version)
    if progress is not None:
        progress(f"training {config.steps} steps on {device.type}")
    train(
        work_dir,
        score=lambda network, version: validation_errors(network, validation, device, version)["log2_error"],
        minutes=None,
        steps=config.steps,
        seed=config.seed,
        learning_rate=config.learning_rate,
        device=config.device,
        checkpoint=checkpoint,
        init_weights=config.init_weights,
        sources=training,
        resume=config.resume,
        init_recipe_version=starting_version,
        recipe=recipe,
        checkpoint_every_steps=config.checkpoint_every_steps,
        run={"data": data_record(config.data), "output": str(config.output.absolute())},
    )
    state = torch.load(checkpoint, weights_only=False, map_location="cpu")
    kept = kept_network(state)
    after = measure(kept.network, kept.recipe_version)
    model_path = export_checkpoint(
        checkpoint,
        config.output,
        best=True,
        description="playback-speed estimator fine-tuned on user footage with chronoscope train speed",
        upstream=f"chronoscope train speed from {config.init_weights or 'scratch'}; {note}",
    )
    log.info("speed model written to %s", model_path)
    return FineTuneResult(
        model_path=model_path,
        steps=int(state["step"]),
        exported_step=kept.step,
        resumed_from_step=resumed_from,
        device=device.type,
        train_sources=[s.name for s in training],
        validation_sources=[s.name for s in validation],
        validation_note=note,
        metrics_before=before,
        metrics_after=after,
        seconds=time.monotonic() - started,
        recipe_version=kept.recipe_version,
    )
