"""The quality gate: which confidence a genuine-slow-motion segment needs to enter the dataset.

The threshold is not picked by taste: it comes from the false-positive curve that
``bench/speed_eval.py`` measures on held-out cases with known truth (real-time originals, sped-up
copies, duplicated / blended / interpolated fake slow motion, genuine 240 fps renders and real
high-speed sequences). For each candidate threshold t the curve has

- ``fpr``: the share of cases that are *not* genuine slow motion which the detector calls
  ``slowmo`` with confidence >= t (what would poison the dataset),
- ``recall``: the share of genuine slow-motion cases called ``slowmo`` with confidence >= t.

The gate takes the smallest t whose fpr is at most ``max_fpr`` (5 % by default), so recall is as
high as that false-positive rate allows. The threshold and the curve go into the dataset card.
When no measurement is found the gate falls back to ``FALLBACK_MIN_CONFIDENCE`` with a WARNING,
and the card says so. ``--min-confidence`` overrides the measured value (also written down).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import UnsupportedOptionError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
EVAL_RESULT_PATHS = (
    REPO_ROOT / "bench" / "results" / "speed_eval.json",
    REPO_ROOT / "build" / "speed-eval.json",
    REPO_ROOT / "engine" / "speed" / "model" / "speed_eval.json",
)
DEFAULT_MAX_FPR = 0.05
FALLBACK_MIN_CONFIDENCE = 0.9
THRESHOLD_GRID = tuple(round(0.50 + 0.01 * step, 2) for step in range(50))
GENUINE_CLASS = "slowmo"


@dataclass
class CurvePoint:
    threshold: float
    fpr: float
    recall: float


@dataclass
class QualityGate:
    """The confidence threshold in force and where it came from."""

    min_confidence: float
    source: str
    max_fpr: float = DEFAULT_MAX_FPR
    curve: list[CurvePoint] = field(default_factory=list)
    negatives: int = 0
    positives: int = 0
    measured_fpr: float | None = None
    measured_recall: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_confidence(value: float, what: str = "--min-confidence") -> float:
    if not 0.0 <= value <= 1.0:
        raise UnsupportedOptionError(f"{what} {value} is outside [0, 1]; e.g. 0.9")
    return value


def curve_from_rows(rows: list[dict[str, Any]]) -> tuple[list[CurvePoint], int, int]:
    """The false-positive curve from ``speed_eval.json`` rows (``true_class``, ``class``, ``confidence``)."""
    positives = [row for row in rows if row.get("true_class") == GENUINE_CLASS]
    negatives = [row for row in rows if row.get("true_class") not in (GENUINE_CLASS, None)]
    if not positives or not negatives:
        raise UnsupportedOptionError(
            f"the evaluation has {len(positives)} genuine and {len(negatives)} other cases; "
            "the curve needs both"
        )

    def called(row: dict[str, Any], threshold: float) -> bool:
        return row.get("class") == GENUINE_CLASS and float(row.get("confidence") or 0.0) >= threshold

    curve = [
        CurvePoint(
            threshold,
            sum(called(row, threshold) for row in negatives) / len(negatives),
            sum(called(row, threshold) for row in positives) / len(positives),
        )
        for threshold in THRESHOLD_GRID
    ]
    return curve, len(negatives), len(positives)


def gate_from_evaluation(path: Path, max_fpr: float = DEFAULT_MAX_FPR) -> QualityGate:
    """The gate measured from one ``bench/speed_eval.py`` output file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UnsupportedOptionError(
            f"evaluation file {path} cannot be read as JSON ({error}); give the file bench/speed_eval.py "
            "--output wrote"
        ) from None
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise UnsupportedOptionError(
            f'evaluation file {path} holds no list of cases ("rows"); give the file bench/speed_eval.py '
            "--output wrote"
        )
    curve, negatives, positives = curve_from_rows(rows)
    passing = [point for point in curve if point.fpr <= max_fpr]
    if not passing:
        raise UnsupportedOptionError(
            f"{path}: no threshold up to {THRESHOLD_GRID[-1]} keeps the false-positive rate at {max_fpr}"
        )
    chosen = passing[0]
    return QualityGate(
        chosen.threshold,
        str(path),
        max_fpr,
        curve,
        negatives,
        positives,
        measured_fpr=chosen.fpr,
        measured_recall=chosen.recall,
    )


def find_gate(
    *,
    min_confidence: float | None = None,
    evaluation: Path | None = None,
    max_fpr: float = DEFAULT_MAX_FPR,
) -> QualityGate:
    """The gate for a run: an explicit threshold, else the measured curve, else the fallback."""
    candidates = [Path(evaluation)] if evaluation is not None else list(EVAL_RESULT_PATHS)
    if evaluation is not None and not Path(evaluation).is_file():
        raise UnsupportedOptionError(
            f"evaluation file {evaluation} not found; run bench/speed_eval.py --output FILE"
        )
    measured: QualityGate | None = None
    for path in candidates:
        if path.is_file():
            measured = gate_from_evaluation(path, max_fpr)
            break
    if min_confidence is not None:
        check_confidence(min_confidence)
        gate = QualityGate(min_confidence, "given with --min-confidence", max_fpr)
        if measured is not None:
            gate.curve, gate.negatives, gate.positives = (
                measured.curve,
                measured.negatives,
                measured.positives,
            )
            # below the measured grid the curve says nothing about this threshold
            at = [point for point in measured.curve if point.threshold >= min_confidence]
            if at and measured.curve[0].threshold <= min_confidence:
                gate.measured_fpr, gate.measured_recall = at[0].fpr, at[0].recall
        return gate
    if measured is not None:
        return measured
    log.warning(
        "no false-positive curve found (looked for %s); using the fallback gate %.2f: "
        "run bench/speed_eval.py",
        ", ".join(str(path) for path in candidates),
        FALLBACK_MIN_CONFIDENCE,
    )
    return QualityGate(FALLBACK_MIN_CONFIDENCE, "fallback: no measured false-positive curve found", max_fpr)
