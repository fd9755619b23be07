"""Export a fine-tuned RIFE network: ONNX, manifest and model card, each through a temporary name.

Written beside each other, in this order (the manifest last, so a model counts as installed only
when it is complete)::

    NAME.onnx            the graph, same inputs and outputs as the model it started from
    NAME.card.json       the model card: data, steps, metrics before and after, default rule
    NAME.card.md         the same card for people
    NAME.manifest.json   hash, provenance of the starting weights, and ``converter.training``

The manifest keeps the starting model's architecture, so the engine serves the file with that
architecture's behaviour (engine/interp/rife.py registers it as a backend named NAME).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import UnsupportedOptionError
from engine.fsutil import atomic_path, write_text_atomic
from engine.models import convert_rife
from engine.models.manifest import (
    MANIFEST_SUFFIX,
    MODEL_SUFFIX,
    manifest_path_for,
    write_manifest,
)

log = logging.getLogger(__name__)

EXPORTER_VERSION = 1
CARD_VERSION = 1
CARD_JSON_SUFFIX = ".card.json"
CARD_MD_SUFFIX = ".card.md"
MODEL_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
RESERVED_NAMES = frozenset({"rife"}) | frozenset(convert_rife.SOURCES)


@dataclass(frozen=True)
class ExportResult:
    name: str
    model_path: Path
    manifest_path: Path
    card_path: Path
    card_markdown_path: Path


def model_name_for(output: Path, *, shipped: bool = False) -> str:
    """The model name an output path gives (``.../rife-tuned.onnx`` -> ``rife-tuned``), checked.

    The names of the tuned models Chronoscope ships are reserved (``models prepare`` would replace
    such a model) unless ``shipped``: the shipped model itself is being built."""
    output = Path(output)
    if output.suffix != MODEL_SUFFIX:
        raise UnsupportedOptionError(f"output {output} must end in {MODEL_SUFFIX}, e.g. rife-tuned.onnx")
    name = output.name.removesuffix(MODEL_SUFFIX)
    if not MODEL_NAME_PATTERN.match(name):
        raise UnsupportedOptionError(
            f"model name {name!r} (from {output.name}) must be 1-64 of a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit, e.g. rife-tuned"
        )
    taken = RESERVED_NAMES | _other_backend_names()
    if name in taken:
        raise UnsupportedOptionError(
            f"model name {name!r} is taken by a built-in backend ({', '.join(sorted(taken))}); "
            "choose another, e.g. rife-tuned"
        )
    if not shipped:
        from engine.models.tuned import shipped_models

        if name in shipped_models():
            raise UnsupportedOptionError(
                f"model name {name!r} is the name of a model Chronoscope ships (`chronoscope models "
                "prepare` would replace yours); choose another, e.g. rife-tuned"
            )
    return name


def _other_backend_names() -> set[str]:
    from engine.interp import available_backends
    from engine.interp.rife import TUNED_BACKENDS

    return {name for name in available_backends() if name not in TUNED_BACKENDS}


def card_paths(model_path: Path) -> tuple[Path, Path]:
    stem = Path(model_path).name.removesuffix(MODEL_SUFFIX)
    return model_path.with_name(stem + CARD_JSON_SUFFIX), model_path.with_name(stem + CARD_MD_SUFFIX)


def export_tuned(
    network,
    init: str,
    model_path: Path,
    wheel: Path,
    card: dict[str, Any],
    *,
    converter_extra: dict[str, Any] | None = None,
    shipped: bool = False,
) -> ExportResult:
    """Write the ONNX file, the card and the manifest for ``network`` (fine-tuned from ``init``).

    ``converter_extra`` adds keys to the manifest's converter record (a shipped delta's hash);
    ``shipped`` allows the reserved name of a shipped model (``models prepare`` builds it)."""
    source = convert_rife.SOURCES[init]
    model_path = Path(model_path)
    name = model_name_for(model_path, shipped=shipped)
    network = network.float().cpu().eval()
    card_json, card_md = card_paths(model_path)
    manifest_path = manifest_path_for(model_path)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    if manifest_path.exists():
        manifest_path.unlink()
    with atomic_path(model_path) as temporary:
        convert_rife.export_onnx(network, source, temporary)
        self_check = convert_rife.self_check(network, source, temporary)
    training = card.get("training", {})
    manifest = convert_rife.build_manifest(
        source,
        network,
        name=name,
        model_file=model_path,
        stored_as=model_path.name,
        wheel=wheel,
        converter={
            "module": __name__,
            "version": EXPORTER_VERSION,
            "self_check_max_abs": self_check,
            "training": {
                "init": init,
                "steps": training.get("steps"),
                "model_card": card_json.name,
                "default_eligible": card.get("default_eligible"),
            },
            **(converter_extra or {}),
        },
        description=f"{source.description}; fine-tuned from {init} by chronoscope train tsr "
        f"({training.get('steps')} steps)",
    )
    card = {
        **card,
        "card_version": CARD_VERSION,
        "name": name,
        "model_file": model_path.name,
        "sha256": manifest.sha256,
    }
    write_text_atomic(card_json, json.dumps(card, indent=2) + "\n")
    write_text_atomic(card_md, card_markdown(card))
    write_manifest(manifest, manifest_path)
    log.info(
        "wrote %s, its card and manifest (ONNX Runtime vs torch max |diff| %.1e)", model_path, self_check
    )
    return ExportResult(name, model_path, manifest_path, card_json, card_md)


def _format(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def card_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown: what it was trained on, how long, the before/after table, any ``notes``."""
    data = card.get("data", {})
    training = card.get("training", {})
    metrics = card.get("metrics", {})
    before, after = metrics.get("before", {}), metrics.get("after", {})
    lines = [
        f"# Model card: {card.get('name')}",
        "",
        f"Fine-tuned from `{card.get('init')}` by `chronoscope train tsr`. {card.get('init_reason', '')}",
        "",
        "## Data",
        "",
        f"- dataset: `{data.get('dataset')}`: {data.get('train_clips', 0)} training clips from "
        f"{data.get('train_sources', 0)} sources, {data.get('held_out_clips', 0)} held-out clips "
        f"from {data.get('held_out_sources', 0)} sources (split by source)",
        f"- procedural renders (240 fps): {data.get('renders', 0)}, seeds {data.get('render_seeds', [])}",
        f"- gaps (frames): {data.get('gaps_frames')}; t = j / gap; crops {data.get('crop_px')} px, "
        f"batch {data.get('batch_size')}",
        "",
        "## Training",
        "",
        f"- steps: {training.get('steps')} on {training.get('device')} ({training.get('precision')}), "
        f"{_format(training.get('seconds'))} s",
        f"- loss: {training.get('loss')}; AdamW lr {training.get('learning_rate')}, "
        f"weight decay {training.get('weight_decay')}",
        f"- loss (mean of first / last {training.get('loss_window_steps')} steps): "
        f"{_format(training.get('loss_first'))} / {_format(training.get('loss_last'))}",
        "",
        "## Metrics (held out; same run, same code, before and after)",
        "",
        "| set | items | metric | before | after | change |",
        "|---|---|---|---|---|---|",
    ]
    for set_name in sorted(set(before) | set(after)):
        first, second = before.get(set_name, {}), after.get(set_name, {})
        for metric in sorted(key for key in (set(first) | set(second)) if key != "items"):
            a, b = first.get(metric), second.get(metric)
            change = f"{b - a:+.3f}" if isinstance(a, float) and isinstance(b, float) else "n/a"
            lines.append(
                f"| {set_name} | {second.get('items', first.get('items', ''))} | {metric} | "
                f"{_format(a)} | {_format(b)} | {change} |"
            )
    if card.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {note}" for note in card["notes"]]
    lines += [
        "",
        "## Default",
        "",
        f"default eligible: **{card.get('default_eligible')}**: {card.get('default_reason', '')}",
        "",
    ]
    return "\n".join(lines)


def installed_card(model_path: Path) -> dict[str, Any]:
    """Read the card beside a model file."""
    card_json, _ = card_paths(Path(model_path))
    return json.loads(card_json.read_text(encoding="utf-8"))


__all__ = ["CARD_JSON_SUFFIX", "MANIFEST_SUFFIX", "ExportResult", "export_tuned", "model_name_for"]
