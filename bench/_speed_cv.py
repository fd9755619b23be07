"""Out-of-fold figures for bench/speed_gpu.py: each held-out variant read as detect reads a span
(the median over its windows), seeds averaged window by window, and the issue's figures from them.

A job's ``reads`` rows are ``[source, key, start, log2 read, log2 target, synthetic logit,
synthetic]`` (``engine.training.speed.validation.WindowRead``), for sources of one held-out fold.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

FOLDS = 3
SPEEDUP_TOLERANCE_LOG2 = 0.5
REAL_STRIDE_KEYS = ("real_1", "real_2", "real_4", "real_8")
MIN_CORRECTION_SCALE = 0.25
"""A fitted slope below this would blow the reads up more than 4 times; it is held at this."""


@dataclass(frozen=True)
class VariantRead:
    """One held-out variant, read as detect reads a span: the median over its windows."""

    source: str
    key: str
    fold: int
    log2_speed: float
    target: float
    synthetic_probability: float
    synthetic: bool


def variant_reads(jobs: list[dict]) -> list[VariantRead]:
    """The median read of each (source, variant) over its windows, the jobs' reads averaged window
    by window first (one job: that network; two seeds: their average, an ensemble)."""
    per_window: dict[tuple[str, str, int], list[tuple[float, float, float, bool]]] = {}
    fold_of_source: dict[str, int] = {}
    for job in jobs:
        for source, key, start, value, target, logit, synthetic in job["reads"]:
            per_window.setdefault((source, key, start), []).append((value, target, logit, synthetic))
            fold_of_source[source] = job["fold"]
    grouped: dict[tuple[str, str], list[tuple[float, float, float, bool]]] = {}
    for (source, key, _), values in per_window.items():
        mean_read = float(np.mean([v[0] for v in values]))
        mean_logit = float(np.mean([v[2] for v in values]))
        grouped.setdefault((source, key), []).append((mean_read, values[0][1], mean_logit, values[0][3]))
    return [
        VariantRead(
            source,
            key,
            fold_of_source[source],
            float(np.median([w[0] for w in windows])),
            windows[0][1],
            float(np.median([1.0 / (1.0 + math.exp(-w[2])) for w in windows])),
            windows[0][3],
        )
        for (source, key), windows in sorted(grouped.items())
    ]


def figures(reads: list[VariantRead], offset: float = 0.0, scale: float = 1.0) -> dict[str, Any]:
    """Out-of-fold figures, the reads corrected as (read - offset) / scale."""

    def value(read: VariantRead) -> float:
        return (read.log2_speed - offset) / scale

    real = [r for r in reads if r.key in REAL_STRIDE_KEYS]
    originals = [value(r) - r.target for r in real if r.key == "real_1"]
    faster = [r for r in real if r.key != "real_1"]
    renders = [r for r in reads if r.key.startswith("render_")]
    made = [r for r in reads if r.synthetic]
    captured = [r for r in reads if not r.synthetic]
    ape = [abs(2 ** (value(r) - r.target) - 1) for r in real]
    return {
        "clip_variants": len(real),
        "originals_bias_log2": _mean(originals),
        "originals_abs_log2": _mean([abs(e) for e in originals]),
        "real_abs_log2": _mean([abs(value(r) - r.target) for r in real]),
        "mape_real_time_and_faster": _mean(ape),
        "faster_within_half_octave": _share(
            [abs(value(r) - r.target) < SPEEDUP_TOLERANCE_LOG2 for r in faster]
        ),
        "renders_abs_log2": _mean([abs(value(r) - r.target) for r in renders]),
        "render_slowmo_read_slow": _share([value(r) < -0.5 for r in renders if r.target < -1.0]),
        "made_flagged": _share([r.synthetic_probability > 0.5 for r in made]),
        "captured_flagged": _share([r.synthetic_probability > 0.5 for r in captured]),
        "slope_real": _slope(real, value),
    }


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def _share(flags: list[bool]) -> float | None:
    return round(float(np.mean(flags)), 4) if flags else None


def _slope(reads: list[VariantRead], value: Callable[[VariantRead], float]) -> float | None:
    if len({r.target for r in reads}) < 2:
        return None
    return round(float(np.polyfit([r.target for r in reads], [value(r) for r in reads], 1)[0]), 4)


def fit_correction(reads: list[VariantRead]) -> dict[str, float]:
    """Least squares read = offset + scale * target over the captured variants (real clips at every
    stride and renders), so that (read - offset) / scale estimates the target."""
    captured = [r for r in reads if not r.synthetic]
    targets = np.array([r.target for r in captured])
    reads = np.array([r.log2_speed for r in captured])
    scale = max(float(np.polyfit(targets, reads, 1)[0]), MIN_CORRECTION_SCALE)
    offset = float(np.mean(reads - scale * targets))  # refitted for the scale kept
    return {"offset": round(offset, 4), "scale": round(scale, 4)}


def judged_correction(reads: list[VariantRead]) -> dict[str, Any]:
    """The correction fitted on all folds but one and measured on that one, for every fold."""
    corrected: list[VariantRead] = []
    fits = {}
    for fold in range(FOLDS):
        fit = fit_correction([r for r in reads if r.fold != fold])
        fits[fold] = fit
        corrected += [
            VariantRead(
                r.source,
                r.key,
                r.fold,
                (r.log2_speed - fit["offset"]) / fit["scale"],
                r.target,
                r.synthetic_probability,
                r.synthetic,
            )
            for r in reads
            if r.fold == fold
        ]
    return {"fits_by_fold": fits, "figures": figures(corrected)}


def common_variants(jobs: list[dict]) -> set[tuple[str, str]]:
    """The (source, variant) pairs every recipe read: longer windows cannot read the shortest
    variants (kivy-cityCC0 every 8th frame is 24 frames), and all recipes are judged on the same."""
    by_recipe: dict[str, set[tuple[str, str]]] = {}
    for job in jobs:
        by_recipe.setdefault(job["recipe"], set()).update((read[0], read[1]) for read in job["reads"])
    return set.intersection(*by_recipe.values()) if by_recipe else set()


def only(job: dict, variants: set[tuple[str, str]]) -> dict:
    return {**job, "reads": [read for read in job["reads"] if (read[0], read[1]) in variants]}


def ensemble_reads(jobs: list[dict]) -> list[VariantRead]:
    """Out-of-fold reads with the seeds of each fold averaged window by window."""
    reads: list[VariantRead] = []
    for fold in sorted({job["fold"] for job in jobs}):
        reads += variant_reads([job for job in jobs if job["fold"] == fold])
    return reads
