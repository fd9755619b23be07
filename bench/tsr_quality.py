"""Temporal super-resolution quality against ground truth, and whether the risk score tracks the error.

Sets (each frame made is compared with the true frame):

- ``middlebury``: the 12 Middlebury "other" triplets at t = 1/2 (640x480);
- ``scenes``: procedural engine.scenes renders at 240 fps (320x240, 33 frames, Middlebury
  photographs as textures, motion blur, sensor noise), subsampled by 2, 4 and 8: between kept
  frames s and s + k, every dropped frame s + j is made at t = j / k;
- ``highspeed``: real high-speed camera sequences (shared/data/highspeed, 30 000 to 90 000 fps,
  grey, scaled to 8 bits per sequence, first 33 frames), subsampled the same way;
- ``clips``: real clips (shared/data/clips, first 33 frames, scaled to 320 wide), subsampled the
  same way; motion per kept frame is then large (8x subsampling of a 24-30 fps clip).

Methods, all in this one process: every requested backend (default: those that can be created),
``naive-dis`` (DIS both ways, warped and averaged) and ``ffmpeg-minterpolate`` (defaults, mi_mode
mci; ffmpeg from --ffmpeg). Backends run bare, without the scene-cut and duplicate guards.

Per method and set: mean PSNR (RGB) and SSIM (bench/_common.py), also per subsampling factor.
Risk: for every backend, the Spearman rank correlation over frames between
``SynthesisResult.risk_score`` and the real error (1 - SSIM, and MSE), per set and over all frames
of all sets. Which frames are visibly wrong (1 % of the picture off by a local mean of 24 levels)
and how well each per-frame measure (mean, area above 0.5, local risk) picks them out (ROC AUC);
``check_levels``: the local-risk level per backend that lists 90 % of the wrong frames of the
renders, triplets and high-speed captures, and what it does on the real clips held out of that
choice (the levels of engine/interp/checks.py). Writes JSON (``--output``) with the per-frame
records too.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    CLIPS,
    MIDDLEBURY,
    REPO_ROOT,
    SHARED_DATA,
    clip_frames,
    load_triplets,
    machine_facts,
    minterpolate_frames,
    mse_levels,
    naive_dis,
    procedural_sets,
    psnr_db,
    spearman,
    ssim,
)

from engine.errors import ChronoscopeError  # noqa: E402
from engine.fsutil import write_text_atomic  # noqa: E402
from engine.interp import available_backends, create_backend  # noqa: E402

log = logging.getLogger("bench.tsr_quality")

DEFAULT_BACKENDS = ("blend", "flow", "rife-hdv3", "rife-4.2x", "ensemble")
DEFAULT_FACTORS = (2, 4, 8)
DEFAULT_CLIPS = ("sam2-juggle.mp4", "hug-lego-movie.mp4")
HIGHSPEED = SHARED_DATA / "highspeed"
SEQUENCE_FRAMES = 33
SETS = ("middlebury", "scenes", "highspeed", "clips")

EPILOG = """\
examples:
  CHRONOSCOPE_MODELS_DIR=build/models python bench/tsr_quality.py --output bench/results/tsr_quality.json
  python bench/tsr_quality.py --output /tmp/q.json --sets middlebury --backends flow blend
  python bench/tsr_quality.py --output /tmp/q.json --sets scenes highspeed --scenes 2 --no-ffmpeg
"""


@dataclass
class FrameRecord:
    """One made frame of one method, against its truth."""

    set: str
    item: str
    factor: int
    t: str
    method: str
    psnr_db: float
    ssim: float
    mse: float
    risk_score: float | None
    seconds: float
    risk_area: float | None = None
    """Share of the risk map above RISK_AREA_LEVEL."""
    risk_local: float | None = None
    """``SynthesisResult.risk_local``: the worst patch 1/16 of the width (engine/interp/checks.py)."""
    error_area: float = 0.0
    """Share of the picture visibly wrong: local mean error (9x9) above VISIBLE_ERROR_LEVELS."""


RISK_AREA_LEVEL = 0.5
VISIBLE_ERROR_LEVELS = 24.0
"""A local mean difference of 24 of 255 levels (about 10 %) over 9x9 pixels: a smear, a ghost or a
broken edge that a viewer sees, well above compression noise and sensor noise."""
WRONG_AREAS = (0.005, 0.01, 0.02)
"""A frame counts as wrong when this share of its picture is visibly wrong (0.5 %, 1 %, 2 %)."""


def visible_error_area(frame: np.ndarray, truth: np.ndarray) -> float:
    """Share of pixels whose 9x9 mean of the largest channel difference exceeds the visible level."""
    difference = np.abs(frame.astype(np.int16) - truth.astype(np.int16)).max(axis=2).astype(np.float32)
    local = cv2.blur(difference, (9, 9))
    return float(np.mean(local > VISIBLE_ERROR_LEVELS))




def highspeed_sequences() -> list[tuple[str, np.ndarray]]:
    """The real high-speed PNG sequences as RGB uint8, each scaled to 8 bits by its own peak."""
    sequences = []
    for folder in sorted(path for path in HIGHSPEED.iterdir() if path.is_dir()):
        paths = sorted(folder.glob("*.png"))[:SEQUENCE_FRAMES]
        raw = [cv2.imread(str(path), cv2.IMREAD_UNCHANGED) for path in paths]
        stack = np.stack(raw).astype(np.float32)
        stack *= 255.0 / max(1.0, float(stack.max()))
        grey = np.clip(np.rint(stack), 0, 255).astype(np.uint8)
        sequences.append((folder.name, np.repeat(grey[..., None], 3, axis=3)))
    return sequences


def subsampled_pairs(frames: np.ndarray, factor: int):
    """(start, frame s, frame s + k, [(t, truth)]) for every gap of k frames."""
    for start in range(0, len(frames) - factor, factor):
        truths = [(Fraction(j, factor), frames[start + j]) for j in range(1, factor)]
        yield start, frames[start], frames[start + factor], truths


class Runner:
    """Runs every method on a pair and records each frame."""

    def __init__(self, backends: dict, ffmpeg: str | None) -> None:
        self.backends = backends
        self.ffmpeg = ffmpeg
        self.records: list[FrameRecord] = []

    def pair(self, set_name: str, item: str, factor: int, frame0, frame1, truths) -> None:
        times = [t for t, _ in truths]
        for name, backend in self.backends.items():
            started = time.perf_counter()
            results = backend.synthesize_many(frame0, frame1, times)
            seconds = (time.perf_counter() - started) / len(times)
            for (t, truth), result in zip(truths, results, strict=True):
                self._record(
                    set_name, item, factor, t, name, result.frame, truth, result.risk_score, seconds,
                    (float(np.mean(result.risk > RISK_AREA_LEVEL)), result.risk_local),
                )
        for t, truth in truths:
            started = time.perf_counter()
            frame = naive_dis(frame0, frame1, float(t))
            self._record(
                set_name, item, factor, t, "naive-dis", frame, truth, None, time.perf_counter() - started
            )
        if self.ffmpeg:
            started = time.perf_counter()
            frames = minterpolate_frames(self.ffmpeg, frame0, frame1, factor)
            seconds = (time.perf_counter() - started) / len(times)
            for (t, truth), frame in zip(truths, frames, strict=True):
                self._record(set_name, item, factor, t, "ffmpeg-minterpolate", frame, truth, None, seconds)

    def _record(
        self, set_name, item, factor, t, method, frame, truth, risk_score, seconds, aggregates=None
    ) -> None:
        risk_area, risk_local = aggregates if aggregates else (None, None)
        self.records.append(
            FrameRecord(
                set=set_name,
                item=item,
                factor=factor,
                t=f"{t.numerator}/{t.denominator}",
                method=method,
                psnr_db=psnr_db(frame, truth),
                ssim=ssim(frame, truth),
                mse=mse_levels(frame, truth),
                risk_score=risk_score,
                seconds=seconds,
                risk_area=risk_area,
                risk_local=risk_local,
                error_area=visible_error_area(frame, truth),
            )
        )


RISK_MEASURES = ("risk_score", "risk_area", "risk_local")
CHOOSE_SETS = ("middlebury", "scenes", "highspeed")
"""The sets a check level is chosen on; it is then checked on the rest (real clips)."""
CHECK_WRONG_AREA = 0.01
CHECK_RECALL = 0.9


def roc_auc(scores: list[float], positives: list[bool]) -> float | None:
    """Probability that a wrong frame scores above a right one (ties count half); None without both."""
    wrong = np.array([s for s, p in zip(scores, positives, strict=True) if p], np.float64)
    right = np.array([s for s, p in zip(scores, positives, strict=True) if not p], np.float64)
    if not len(wrong) or not len(right):
        return None
    above = (wrong[:, None] > right[None, :]).sum() + 0.5 * (wrong[:, None] == right[None, :]).sum()
    return float(above / (len(wrong) * len(right)))


def threshold_for_recall(scores: list[float], positives: list[bool], recall: float) -> dict | None:
    """The highest threshold that flags ``recall`` of the wrong frames, with what it costs."""
    wrong = sorted((s for s, p in zip(scores, positives, strict=True) if p), reverse=True)
    if not wrong:
        return None
    threshold = wrong[max(0, int(np.ceil(recall * len(wrong))) - 1)]
    flagged = [p for s, p in zip(scores, positives, strict=True) if s >= threshold]
    return {
        "threshold": round(float(threshold), 4),
        "recall": round(sum(flagged) / len(wrong), 3),
        "precision": round(sum(flagged) / len(flagged), 3),
        "flagged_share": round(len(flagged) / len(scores), 3),
        "right_frames_flagged": round((len(flagged) - sum(flagged)) / max(1, len(scores) - len(wrong)), 3),
    }


def flag_analysis(records: list[FrameRecord]) -> dict:
    """Per backend: how well each risk measure picks out visibly wrong frames (AUC, and the
    threshold that finds 90 % of them), for each definition of a wrong frame."""
    result: dict = {}
    for method in sorted({r.method for r in records if r.risk_area is not None}):
        rows = [r for r in records if r.method == method and r.risk_area is not None]
        per_method: dict = {}
        for wrong_area in WRONG_AREAS:
            positives = [r.error_area >= wrong_area for r in rows]
            row: dict = {"wrong_frames": sum(positives), "frames": len(rows)}
            for measure in RISK_MEASURES:
                scores = [getattr(r, measure) for r in rows]
                auc = roc_auc(scores, positives)
                row[measure] = {
                    "auc": None if auc is None else round(auc, 3),
                    "at_90_recall": threshold_for_recall(scores, positives, 0.9),
                }
            per_method[f"wrong_at_{wrong_area}"] = row
        result[method] = per_method
    return result


def check_levels(records: list[FrameRecord]) -> dict:
    """Per backend: the local-risk level that lists 90 % of the wrong frames (1 % of the picture
    visibly wrong) of the CHOOSE_SETS, and what that level does on the other sets (held out of
    the choice): recall of their wrong frames, and the share of their right frames listed."""
    levels: dict = {}
    for method in sorted({r.method for r in records if r.risk_local is not None}):
        rows = [r for r in records if r.method == method and r.risk_local is not None]
        chosen = [r for r in rows if r.set in CHOOSE_SETS]
        held_out = [r for r in rows if r.set not in CHOOSE_SETS]
        pick = threshold_for_recall(
            [r.risk_local for r in chosen], [r.error_area >= CHECK_WRONG_AREA for r in chosen], CHECK_RECALL
        )
        if pick is None:
            continue
        level = pick["threshold"]
        wrong = [r for r in held_out if r.error_area >= CHECK_WRONG_AREA]
        right = [r for r in held_out if r.error_area < CHECK_WRONG_AREA]
        levels[method] = {
            "level": level,
            "chosen_on": {"sets": list(CHOOSE_SETS), **pick},
            "held_out": {
                "sets": sorted({r.set for r in held_out}),
                "wrong_frames": len(wrong),
                "right_frames": len(right),
                "recall": round(sum(r.risk_local >= level for r in wrong) / max(1, len(wrong)), 3),
                "right_frames_listed": round(
                    sum(r.risk_local >= level for r in right) / max(1, len(right)), 3
                ),
            },
        }
    return levels


def summarise(records: list[FrameRecord]) -> dict:
    """Mean PSNR/SSIM per set, method and factor; risk correlations per backend and set, and pooled."""
    quality: dict = {}
    for record in records:
        per_set = quality.setdefault(record.set, {}).setdefault(record.method, {"all": [], "by_factor": {}})
        per_set["all"].append(record)
        per_set["by_factor"].setdefault(str(record.factor), []).append(record)

    def means(rows: list[FrameRecord]) -> dict:
        finite = [row.psnr_db for row in rows if np.isfinite(row.psnr_db)]
        return {
            "frames": len(rows),
            "mean_psnr_db": round(float(np.mean(finite)), 3) if finite else None,
            "mean_ssim": round(float(np.mean([row.ssim for row in rows])), 4),
            "seconds_per_frame": round(float(np.mean([row.seconds for row in rows])), 4),
        }

    summary = {
        set_name: {
            method: {
                **means(groups["all"]),
                "by_factor": {factor: means(rows) for factor, rows in groups["by_factor"].items()},
            }
            for method, groups in methods.items()
        }
        for set_name, methods in quality.items()
    }
    risk: dict = {}
    for method in sorted({record.method for record in records if record.risk_score is not None}):
        rows = [record for record in records if record.method == method]
        groups = {"all_frames": rows}
        for set_name in SETS:
            chosen = [row for row in rows if row.set == set_name]
            if chosen:
                groups[set_name] = chosen
        risk[method] = {
            name: {
                "frames": len(chosen),
                "spearman_vs_1_minus_ssim": round(
                    spearman([r.risk_score for r in chosen], [1 - r.ssim for r in chosen]), 3
                ),
                "spearman_vs_mse": round(
                    spearman([r.risk_score for r in chosen], [r.mse for r in chosen]), 3
                ),
            }
            for name, chosen in groups.items()
        }
    return {
        "quality": summary,
        "risk_rank_correlation": risk,
        "risk_flags": flag_analysis(records),
        "check_levels": check_levels(records),
    }


def _parsed_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write")
    parser.add_argument(
        "--sets", nargs="+", choices=SETS, default=list(SETS), help="which sets (default all)"
    )
    parser.add_argument("--backends", nargs="+", help=f"backends (default: {', '.join(DEFAULT_BACKENDS)})")
    parser.add_argument("--factors", nargs="+", type=int, default=list(DEFAULT_FACTORS), help="subsampling")
    parser.add_argument("--scenes", type=int, default=4, help="procedural scenes to render (default 4)")
    parser.add_argument("--clips", nargs="+", default=list(DEFAULT_CLIPS), help="clip names under clips/")
    parser.add_argument("--no-ffmpeg", action="store_true", help="leave out ffmpeg minterpolate")
    parser.add_argument("--ffmpeg", default="ffmpeg", help="ffmpeg executable (default: on PATH)")
    args = parser.parse_args(argv)
    if any(factor < 2 for factor in args.factors):
        parser.error("--factors must all be 2 or more")
    if args.backends:
        unknown = sorted(set(args.backends) - set(available_backends()))
        if unknown:
            parser.error(f"backends not available: {unknown}; available: {', '.join(available_backends())}")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = _parsed_args(argv)
    backends = {}
    for name in args.backends or DEFAULT_BACKENDS:
        try:
            backends[name] = create_backend(name)
        except ChronoscopeError as error:
            log.warning("backend %s left out: %s", name, error)
    ffmpeg = None if args.no_ffmpeg else shutil.which(args.ffmpeg)
    if not args.no_ffmpeg and not ffmpeg:
        log.warning("ffmpeg not found as %r: the minterpolate baseline is left out", args.ffmpeg)
    runner = Runner(backends, ffmpeg)
    started = time.perf_counter()
    if "middlebury" in args.sets:
        for sequence, (frame0, frame1, truth) in load_triplets(MIDDLEBURY, None).items():
            runner.pair("middlebury", sequence, 2, frame0, frame1, [(Fraction(1, 2), truth)])
        log.info("middlebury done (%.0f s)", time.perf_counter() - started)
    sources = []
    if "scenes" in args.sets:
        sources += [("scenes", name, frames) for name, frames in procedural_sets(args.scenes)]
    if "highspeed" in args.sets:
        sources += [("highspeed", name, frames) for name, frames in highspeed_sequences()]
    if "clips" in args.sets:
        for name in args.clips:
            sources.append(("clips", name, clip_frames(CLIPS / name, frames=SEQUENCE_FRAMES, width=320)))
    for set_name, name, frames in sources:
        for factor in args.factors:
            for start, frame0, frame1, truths in subsampled_pairs(frames, factor):
                runner.pair(set_name, f"{name}#{start}", factor, frame0, frame1, truths)
        log.info("%s %s done (%.0f s)", set_name, name, time.perf_counter() - started)

    summary = summarise(runner.records)
    report = {
        "benchmark": "tsr_quality",
        "data": str(SHARED_DATA),
        "repository": str(REPO_ROOT),
        "psnr": "over RGB, uint8 peak 255",
        "ssim": "Gaussian 11x11 sigma 1.5, per RGB channel, averaged; valid windows",
        "risk_score": "SynthesisResult.risk_score per frame (engine/interp/base.py)",
        "seconds": "per frame, this process, wall clock (ffmpeg: process start and PNG I/O included)",
        "factors": args.factors,
        "machine": machine_facts(),
        "wall_seconds": round(time.perf_counter() - started, 1),
        **summary,
        "frames": [asdict(record) for record in runner.records],
    }
    write_text_atomic(args.output, json.dumps(report, indent=1) + "\n")
    for set_name, methods in summary["quality"].items():
        print(f"{set_name}:")
        for method, values in sorted(methods.items(), key=lambda item: item[1]["mean_psnr_db"] or 0.0):
            factors = "  ".join(
                f"x{factor} {row['mean_psnr_db']:.2f}" for factor, row in values["by_factor"].items()
            )
            print(
                f"  {method:20s} {values['mean_psnr_db']:7.2f} dB {values['mean_ssim']:.4f}  "
                f"{values['seconds_per_frame']:.3f} s/frame  {factors}"
            )
    print("risk rank correlation (vs 1-SSIM / vs MSE):")
    for method, groups in summary["risk_rank_correlation"].items():
        cells = "  ".join(
            f"{name} {row['spearman_vs_1_minus_ssim']:.2f}/{row['spearman_vs_mse']:.2f}"
            for name, row in groups.items()
        )
        print(f"  {method:20s} {cells}")
    print("risk measures against visibly wrong frames (AUC; threshold at 90 % recall, share flagged):")
    for method, definitions in summary["risk_flags"].items():
        for definition, row in definitions.items():
            cells = "  ".join(
                f"{measure} {row[measure]['auc']} / {row[measure]['at_90_recall']['threshold']}"
                f" {row[measure]['at_90_recall']['flagged_share']}"
                for measure in RISK_MEASURES
                if row[measure]["auc"] is not None
            )
            print(f"  {method:12s} {definition} ({row['wrong_frames']}/{row['frames']}): {cells}")
    print("check levels (local risk; chosen at 90 % recall on " + ", ".join(CHOOSE_SETS) + "):")
    for method, row in summary["check_levels"].items():
        held = row["held_out"]
        print(
            f"  {method:12s} level {row['level']:.3f}  held out ({', '.join(held['sets'])}): recall "
            f"{held['recall']:.2f} of {held['wrong_frames']} wrong, {held['right_frames_listed']:.2f} of "
            f"{held['right_frames']} right frames listed"
        )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
