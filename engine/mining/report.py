"""The dataset card (README.md) and the run report (report.md plus PNG plots drawn with OpenCV)."""

from __future__ import annotations

import collections
import math
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from engine.fsutil import atomic_path, write_text_atomic
from engine.mining.gate import QualityGate
from engine.mining.manifest import MANIFEST_NAME, PARQUET_NAME, joined_segments
from engine.mining.sources import HASH_EDGE_BYTES

if TYPE_CHECKING:
    from engine.mining.pipeline import DatasetCounts, MineSummary

CARD_NAME = "README.md"
REPORT_NAME = "report.md"
PLOT_CAPTURE = "capture_rates.png"
PLOT_CLASSES = "classes.png"
PLOT_REJECTED = "rejected.png"
CAPTURE_BIN_EDGES_FPS = (0, 48, 72, 108, 156, 216, 300, 420, 600, 840, 1200, 100000)
PLOT_SIZE_PX = (720, 460)


def _bar_chart(labels: Sequence[str], values: Sequence[float], title: str, destination: Path) -> None:
    """A labelled bar chart on white, written through a temporary name."""
    width, height = PLOT_SIZE_PX
    image = np.full((height, width, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(image, title, (16, 30), font, 0.65, (20, 20, 20), 1, cv2.LINE_AA)
    left, right, top, bottom = 56, width - 16, 56, height - 130
    cv2.line(image, (left, bottom), (right, bottom), (60, 60, 60), 1)
    cv2.line(image, (left, top), (left, bottom), (60, 60, 60), 1)
    peak = max([float(v) for v in values] + [1.0])
    for tick in range(5):
        value = peak * tick / 4
        y = int(bottom - (bottom - top) * tick / 4)
        cv2.line(image, (left - 4, y), (left, y), (60, 60, 60), 1)
        cv2.putText(image, f"{value:.3g}", (8, y + 4), font, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    count = max(len(values), 1)
    slot = (right - left) / count
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        x0 = int(left + slot * index + slot * 0.15)
        x1 = int(left + slot * (index + 1) - slot * 0.15)
        y = int(bottom - (bottom - top) * float(value) / peak)
        cv2.rectangle(image, (x0, y), (x1, bottom), (180, 120, 40), -1)
        cv2.putText(image, f"{value:g}", (x0, max(top - 4, y - 6)), font, 0.45, (20, 20, 20), 1, cv2.LINE_AA)
        text = label[:22]
        (text_w, _), _ = cv2.getTextSize(text, font, 0.4, 1)
        canvas = np.full((20, text_w + 4, 3), 255, np.uint8)
        cv2.putText(canvas, text, (2, 14), font, 0.4, (20, 20, 20), 1, cv2.LINE_AA)
        rotated = cv2.rotate(canvas, cv2.ROTATE_90_COUNTERCLOCKWISE)
        h, w = rotated.shape[:2]
        cx = (x0 + x1) // 2 - w // 2
        y0 = bottom + 6
        h = min(h, height - y0)
        if cx >= 0 and cx + w <= width:
            image[y0 : y0 + h, cx : cx + w] = np.minimum(image[y0 : y0 + h, cx : cx + w], rotated[:h])
    with atomic_path(destination) as temporary:
        ok, encoded = cv2.imencode(".png", image)
        temporary.write_bytes(encoded.tobytes())


def _capture_bins(rates: Sequence[float]) -> tuple[list[str], list[int]]:
    edges = CAPTURE_BIN_EDGES_FPS
    labels = (
        [f"<{edges[1]}"]
        + [f"{edges[i]}-{edges[i + 1]}" for i in range(1, len(edges) - 2)]
        + [f">={edges[-2]}"]
    )
    counts = [0] * (len(edges) - 1)
    for rate in rates:
        for index in range(len(edges) - 1):
            if edges[index] <= rate < edges[index + 1]:
                counts[index] += 1
                break
    return labels, counts


def _reason_kind(row: dict[str, Any]) -> str:
    if row["row"] == "file":
        return f"file: {row.get('status', 'unreadable')}"
    reason = str(row.get("reason", ""))
    if reason.startswith("confidence"):
        return "below the gate"
    return reason.split(":")[0]


def write_report(out: Path, rows: Sequence[dict[str, Any]], summary: MineSummary) -> None:
    """report.md with this run's counts and the dataset's, timing, rejected files and why, sources
    gone and clips retired; and the three plots."""
    gone = set(summary.gone_sources)
    records = joined_segments(rows, gone)
    segments = [row for row in records if row["row"] == "segment"]
    files = [row for row in records if row["row"] == "file"]
    accepted = [row for row in segments if row["accepted"]]
    rates = [float(row["conform_fps"]) for row in accepted if row.get("conform_fps")]
    labels, counts = _capture_bins(rates)
    _bar_chart(labels, counts, "accepted segments by capture rate (fps)", out / PLOT_CAPTURE)
    classes = collections.Counter(row["class"] for row in segments)
    classes.update(f"file: {row.get('status')}" for row in files)
    class_names = sorted(classes)
    _bar_chart(
        class_names,
        [classes[name] for name in class_names],
        "segments per class, and unusable files",
        out / PLOT_CLASSES,
    )
    reasons = collections.Counter(_reason_kind(row) for row in records if not row.get("accepted"))
    reason_names = sorted(reasons)
    _bar_chart(
        reason_names,
        [reasons[name] for name in reason_names],
        "rejected segments and files, by reason",
        out / PLOT_REJECTED,
    )
    video_s = sum(float(row.get("end_s", 0)) - float(row.get("start_s", 0)) for row in segments)
    accepted_s = sum(float(row["end_s"]) - float(row["start_s"]) for row in accepted)
    gate = summary.gate
    dataset = summary.dataset
    rate = (
        f" ({summary.files_mined / summary.wall_s * 3600:.0f} files per hour)" if summary.wall_s > 0 else ""
    )
    lines = [
        "# Mining report",
        "",
        "## This run",
        "",
        f"- files named by the sources: {summary.files_seen}; mined: {summary.files_mined}; skipped as "
        f"already done: {summary.files_skipped}; moved or renamed (rows and clips follow them): "
        f"{summary.files_moved}; unusable: {summary.files_rejected}; missing inputs: "
        f"{len(summary.missing_inputs)}; failures: {len(summary.failures)}",
        f"- segments found: {summary.segments}, accepted: {summary.accepted}",
        f"- clips written: {summary.clips_written} ({summary.clips_cut} cut short by damage in the source), "
        f"refused for damage: {summary.clips_refused}, near-duplicates marked: {summary.duplicates}, "
        f"clips retired: {summary.clips_retired}",
        f"- runner: {summary.runner}; {summary.wall_s:.1f} s{rate}",
        "",
        "## The dataset (all runs)",
        "",
        f"- files: {dataset.files} ({dataset.unusable_files} unusable); sources that no longer exist: "
        f"{dataset.gone_sources}",
        f"- video analysed: {video_s / 3600:.4f} h in {dataset.segments} segments",
        f"- accepted (genuine high-rate capture, confidence >= {gate.min_confidence:.2f}): "
        f"{dataset.accepted} segments, {accepted_s:.1f} s of playback; {dataset.duplicates} of them "
        "near-duplicates of another",
        f"- clips in clips/: {dataset.clips} ({dataset.orphaned_clips} orphaned: their source no longer "
        f"exists); retired clips in retired/: {dataset.retired_clips}",
        "",
        f"![capture rates]({PLOT_CAPTURE}) ![classes]({PLOT_CLASSES}) ![rejected]({PLOT_REJECTED})",
        "",
        "## Counts per class",
        "",
        "| class | count |",
        "|---|---|",
        *[f"| {name} | {classes[name]} |" for name in class_names],
        "",
        "## Rejected, by reason",
        "",
        "| reason | count |",
        "|---|---|",
        *[f"| {name} | {reasons[name]} |" for name in reason_names],
        "",
        "## Unusable files",
        "",
        "| file | status | reason |",
        "|---|---|---|",
        *[f"| {row['source']} | {row.get('status')} | {_cell(row.get('reason', ''))} |" for row in files],
        "",
    ]
    damaged = [row for row in segments if row.get("clip_cut") or row.get("clip_refused")]
    if damaged:
        lines += [
            "## Clips cut or refused for damage in the source",
            "",
            "| source | segment | clip | why |",
            "|---|---|---|---|",
            *[
                f"| {row['source']} | {row['segment_index']} | {row.get('clip') or '(none)'} | "
                f"{_cell(row.get('clip_cut') or row.get('clip_refused'))} |"
                for row in damaged
            ],
            "",
        ]
    if gone:
        lines += [
            "## Sources that no longer exist",
            "",
            "Their rows stay, flagged `source_missing` (their clips `orphaned`) in manifest.parquet; "
            "a source that comes back is mined again when its content changed, else taken as it was.",
            "",
            *[f"- {_cell(source)}" for source in sorted(gone)],
            "",
        ]
    if summary.missing_inputs:
        lines += ["## Missing inputs", "", *[f"- {_cell(item)}" for item in summary.missing_inputs], ""]
    if summary.failures:
        lines += ["## Failures", "", *[f"- {_cell(item)}" for item in summary.failures], ""]
    write_text_atomic(out / REPORT_NAME, "\n".join(lines))


def _cell(text: str) -> str:
    return str(text).replace("|", "/").replace("\n", " ")[:200]


def write_card(
    out: Path,
    rows: Sequence[dict[str, Any]],
    gate: QualityGate,
    counts: DatasetCounts,
    missing_sources: Collection[str] = frozenset(),
) -> None:
    """The dataset card: what is in it, how it was selected, the gate and its curve."""
    records = joined_segments(rows, missing_sources)
    accepted = [row for row in records if row["row"] == "segment" and row["accepted"]]
    curve_lines = ["| threshold | false-positive rate | recall |", "|---|---|---|"]
    for point in gate.curve:
        if math.isclose(point.threshold * 100 % 5, 0, abs_tol=1e-6) or point.threshold == gate.min_confidence:
            mark = " **(gate)**" if point.threshold == gate.min_confidence else ""
            curve_lines.append(f"| {point.threshold:.2f}{mark} | {point.fpr:.3f} | {point.recall:.3f} |")
    if not gate.curve:
        curve_lines = ["No measured curve was available for this run (see the gate's source above)."]
    measured = (
        f"At the gate the evaluation measured a false-positive rate of {gate.measured_fpr:.3f} "
        f"and a recall of {gate.measured_recall:.3f} "
        f"({gate.negatives} negative and {gate.positives} genuine cases)."
        if gate.measured_fpr is not None
        else "No false-positive rate was measured for this threshold."
    )
    text = f"""# Dataset card: genuine slow-motion segments

Mined with `chronoscope mine`. Each accepted segment is footage captured at a high frame rate:
played slower than it was shot (class `slowmo`, capture rate C > playback rate P), or a
high-rate stream (P >= 100 fps) stored at its capture rate. Fake slow motion (duplicated,
blended or interpolated frames), real-time, sped-up and still segments are recorded in the
manifest and rejected.

## Quality gate

- confidence threshold: **{gate.min_confidence:.2f}**
- source: {gate.source}
- target false-positive rate: {gate.max_fpr:.3f}
- {measured}

The false-positive rate is the share of cases that are not genuine slow motion (real time, sped
up, fake slow motion) which the detector calls `slowmo` at or above the threshold; recall is the
share of genuine slow-motion cases it keeps. Measured by `bench/speed_eval.py` on held-out cases.

{chr(10).join(curve_lines)}

## Contents

- accepted segments: {len(accepted)} ({counts.duplicates} near-duplicates, marked `duplicate_of` in
  the manifest and not extracted); clips: {counts.clips}
- sources that no longer exist: {counts.gone_sources}; their rows are flagged `source_missing`
  and their clips `orphaned` (orphaned clips: {counts.orphaned_clips}) in `{PARQUET_NAME}`; see
  report.md
- retired clips: {counts.retired_clips}, in `retired/` (their source changed or a better copy of
  the same footage was extracted; `retired/README.md` says which and why). Nothing reads that
  folder; it may be deleted.
- `{MANIFEST_NAME}`: JSON Lines, one row per segment (`row: segment`), per unusable file
  (`row: file`) and per extracted clip (`row: clip`); `{PARQUET_NAME}` joins them when pyarrow is
  installed.
- `clips/`: with `--extract`, each accepted, non-duplicate segment conformed to its capture rate
  (same frames, rate = capture rate; a 240 fps capture played at 30 becomes a 240 fps file).
  Clip frame k is always source frame `start_frame + k`: where the source cannot be decoded the
  clip stops before the damage (`clip_cut`, `clip_frames`), or none is made when fewer than 16
  good frames come first (`clip_refused`).

## Fields

Every row: `row` (`segment`, `file` or `clip`), `source` (a local path, an image sequence's
`folder/NAME.####.EXT`, or a storage URL), `content_hash` (`sha256(size, mtime_ns, first
{HASH_EDGE_BYTES // (1 << 20)} MiB, last {HASH_EDGE_BYTES // (1 << 20)} MiB)`, with the store's ETag,
generation or modification time in place of mtime_ns for a URL, and every frame's name, size and
mtime_ns for an image sequence: fast, changes when a file is replaced or touched, and stays when
it is moved), `schema` (the manifest's version).

Segment and file rows: `run_group` and `file_rows` (the rows of one file are one group, written
at once; a group with fewer rows than `file_rows` was cut short by a crash and is ignored),
`gate_min_confidence`, `gate_source` and `gate_max_fpr` (the gate the file was judged by),
`settings` (the `--density` and `--audio-cue` the file was analysed with, and `sequence_rate` for
an image sequence), `task` (wall and CPU seconds of the file's task, the time spent fetching a URL
source, and the worker that ran it), `moved_from` (the path the file had when it was mined, when
it was moved or renamed since), and what probing found: `container`, `codec`, `width`, `height`,
`frame_count`, `playback_rate` (exact, as a fraction), `duration_s`, `has_audio`,
`variable_frame_rate`.

Segment rows: `segment_index` and `segment_count`, `start_s`/`end_s` and `start_frame`/`end_frame`,
`playback_fps`, `capture_fps` (estimate), `conform_fps`/`conform_rate` (the rate clips are
written at: a capture-rate tag or the stream rate when known exactly, else the estimate snapped
to the nearest standard camera rate), `speed` (P / C), `class`, `confidence`, `accepted`,
`reason`, `basis`, `detector` (the speed detector's own reading), `evidence` (per stage:
metadata, synthetic_retime, learned, audio_pitch; entries with `probe_frames` are per probe),
`analysis` (what the detector looked at: frames decoded, probes planned and analysed, and
notes on frames that could not be decoded), `dhash` (perceptual hash of frames spread over
the segment).

File rows (a file that gave no segment): `status` (`not_video`, `empty`, `corrupt`,
`undecodable`, `too_short`; `missing`, `unreadable` and `error` are tried again by the next run;
`moved`, with `moved_to`, marks a path whose file now lives under another) and `reason`.

Clip rows: `clip`, `duplicate_of`, `frames`, `rate`, `codec`, `cut`, `end_frame` and `refused`
(extraction), `retired` and `retired_reason` (a clip moved to `retired/`).

In `{PARQUET_NAME}` each segment row carries its clip row's `clip`, `duplicate_of`,
`clip_frames`, `clip_cut` and `clip_refused`, and `source_missing` and `orphaned` (checked by the
run that wrote this card).
"""
    write_text_atomic(out / CARD_NAME, text)
