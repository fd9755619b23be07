"""``chronoscope mine``: mine genuine slow-motion segments from a video library into a dataset."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from engine.errors import UnsupportedOptionError
from engine.mining.extract import DEFAULT_CODEC
from engine.mining.gate import DEFAULT_MAX_FPR
from engine.mining.pipeline import MINING_DENSITY, MineOptions, mine
from engine.mining.runners import DEFAULT_RETRIES

NAME = "mine"
HELP = "mine genuine slow-motion segments from folders of video into a manifest (and clips)"
DESCRIPTION = """\
Runs the speed stages on every file the sources name (folders recursively, linked folders and
files included; @list.txt files with one path, folder or URL per line; globs, files, and fsspec
URLs: s3://bucket/prefix/, gs://b/**/*.mp4, memory://, file://): container metadata, the
synthetic-retime check, the learned estimate per window, segments, and with --audio-cue the
sound's pitch shifts (a speed change heard where the sound was resampled with the picture).
Every segment gets a row in DATASET/manifest.jsonl (and manifest.parquet when pyarrow is
installed): source and content hash, start and end, playback rate, capture-rate estimate,
speed, class, confidence, evidence, resolution, audio. Unusable files (not video, corrupt, too
short) get a row with the reason and never stop the run. Files in folders that are neither video
(by suffix) nor frames of an image sequence are skipped, one INFO line per folder.

Image sequences (two or more numbered frames, DPX, EXR, TIFF, PNG, JPEG: a folder of them, one
frame's name, a pattern like A001.####.dpx, or a glob matching them) are mined as one clip each,
read at --sequence-rate FPS (a sequence has no rate of its own: give the rate its frames were shot
at, e.g. 1000 for a high-speed camera's export). Without it they are skipped, with a WARNING
naming them.

A segment is accepted when it is genuine high-rate capture with a confidence at or above the
quality gate, which comes from the false-positive curve measured by bench/speed_eval.py (or
--min-confidence). The gate and its curve are written to DATASET/README.md, the dataset card;
DATASET/report.md and its PNG plots say what was found and rejected, this run and overall.

--extract writes each accepted segment as a clip conformed to its capture rate (lossless FFV1
by default, or --codec), dropping near-duplicates found by perceptual hash, against the clips of
earlier runs too. Clip frame k is source frame start+k: a clip is cut before damage in its
source, or refused, and the manifest says why. FFV1 clips are Matroska (.mkv), which counts time
in milliseconds: clips above 1000 fps (a high-speed camera's frames) need --codec png (lossless
frames), prores or h264; FFV1 is refused for them.

The manifest is the checkpoint: run the same command again after an interruption and finished
files are skipped. Files that were away, unreadable or whose task failed are tried again; a
file changed in place is mined again and its old clips move to DATASET/retired/; a file moved or
renamed (the same content hash, its old path gone) keeps its rows and clips under its new path;
files that no longer exist are flagged (source_missing, orphaned clips) in manifest.parquet and
the card. A dataset keeps its gate (--min-confidence, --evaluation, --max-fpr), --density,
--audio-cue, --sequence-rate and --codec: leave them out (or repeat them); a different value is
refused (mine into a new --out instead). --out must be a new or empty folder or a dataset, and
not the library itself; it is made only once everything else has been checked (a Ray cluster
that cannot be joined, or an --evaluation file that cannot be used, leaves none behind).

--workers N runs N local processes; --ray ADDRESS (HOST:PORT, ray://HOST:PORT, auto, or local)
runs the stages as Ray tasks. Objects in storage are listed and hashed through fsspec (s3://
needs s3fs, gs:// gcsfs, az:// adlfs) and copied into --cache-dir for decoding, one at a time
per worker, removed after use unless --keep-cache (copies left by killed tasks are removed by
the next run on that machine). Progress is a bar on a terminal and an INFO line every 30 s
otherwise.

exit status: 0 when every file was handled; 1 when a file could not be read or mined, a clip
could not be written (or its source changed since it was mined), or an entry of an @list does not
exist (all tried again by the next run; see report.md); 2 for a refused option, or a source named
on the command line that does not exist; 130 when interrupted (Ctrl-C; 143 for SIGTERM): what
is in the manifest stays, clips not yet recorded are removed, and the same command goes on.

examples:
  chronoscope mine ~/footage --out slowmo-dataset
  chronoscope mine ~/footage @more.txt '/mnt/nas/**/*.mov' --out ds --extract --workers 4
  chronoscope mine /shared/library --out /shared/ds --ray auto --extract --codec h264
  chronoscope mine ~/footage --out ds --min-confidence 0.95 --json
  chronoscope mine /mnt/phantom-exports --out ds --extract --sequence-rate 1000
  chronoscope mine /mnt/photron --out ds-fast --extract --sequence-rate 30000 --codec png
  chronoscope mine 's3://footage/2024/**/*.mp4' --out /shared/ds --ray auto --keep-cache
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", metavar="SOURCE", help="folder, file, glob or @list.txt")
    parser.add_argument("--out", type=Path, required=True, metavar="DATASET", help="the dataset folder")
    parser.add_argument("--extract", action="store_true", help="write accepted segments as clips")
    parser.add_argument(
        "--codec",
        help=f"codec of extracted clips (default: the dataset's, {DEFAULT_CODEC} for a new one)",
    )
    parser.add_argument(
        "--min-confidence",
        type=float,
        metavar="X",
        help="gate threshold in [0, 1] instead of the measured one",
    )
    parser.add_argument(
        "--evaluation",
        type=Path,
        metavar="FILE",
        help="speed_eval JSON to take the gate from (default: search)",
    )
    parser.add_argument(
        "--max-fpr",
        type=float,
        help="false-positive rate the measured gate allows (default: the dataset's, "
        f"{DEFAULT_MAX_FPR} for a new one)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, metavar="N", help="local worker processes (default 1)"
    )
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run on Ray: HOST:PORT of a head node, ray://HOST:PORT, 'auto', or 'local'",
    )
    parser.add_argument(
        "--retries", type=int, default=DEFAULT_RETRIES, help=f"retries per task (default {DEFAULT_RETRIES})"
    )
    parser.add_argument(
        "--audio-cue",
        action="store_true",
        default=None,
        help="read the sound too: pitch shifts (resampled sound) per segment in the evidence "
        "(default: as the dataset was mined; off for a new one)",
    )
    parser.add_argument(
        "--density",
        type=float,
        help=f"about the share of frames analysed (default: the dataset's, {MINING_DENSITY} for a new one)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="where URL sources are copied for decoding (default: the user cache folder)",
    )
    parser.add_argument(
        "--keep-cache",
        action="store_true",
        help="keep the copies of URL sources (reused by extraction and later runs)",
    )
    parser.add_argument(
        "--sequence-rate",
        metavar="FPS",
        help="read image sequences at FPS (24, 1000, 24000/1001; default: the dataset's; without "
        "one, sequences are skipped)",
    )
    parser.add_argument("--json", action="store_true", help="print the run summary as JSON")


def run(args: argparse.Namespace) -> int:
    if args.ray is not None and args.workers > 1 and args.ray != "local":
        raise UnsupportedOptionError(
            "--workers sets local processes and --ray ADDRESS uses the cluster's CPUs; give one "
            "(with --ray local, --workers N sizes the local cluster)"
        )
    options = MineOptions(
        sources=list(args.sources),
        out=args.out,
        extract=args.extract,
        min_confidence=args.min_confidence,
        evaluation=args.evaluation,
        max_fpr=args.max_fpr,
        workers=args.workers,
        ray_address=args.ray,
        codec=args.codec,
        audio_cue=args.audio_cue,
        density=args.density,
        retries=args.retries,
        progress=not args.json,
        cache_dir=args.cache_dir,
        keep_cache=args.keep_cache,
        sequence_rate=args.sequence_rate,
    )
    summary = mine(options)
    dataset = summary.dataset
    data = {
        "out": str(summary.out.absolute()),
        "files_seen": summary.files_seen,
        "files_skipped": summary.files_skipped,
        "files_moved": summary.files_moved,
        "files_mined": summary.files_mined,
        "files_rejected": summary.files_rejected,
        "segments": summary.segments,
        "accepted": summary.accepted,
        "clips_written": summary.clips_written,
        "clips_cut": summary.clips_cut,
        "clips_refused": summary.clips_refused,
        "clips_retired": summary.clips_retired,
        "duplicates": summary.duplicates,
        "extract_failures": summary.extract_failures,
        "wall_s": round(summary.wall_s, 3),
        "runner": summary.runner,
        "gate_min_confidence": summary.gate.min_confidence if summary.gate else None,
        "failures": summary.failures,
        "missing_inputs": summary.missing_inputs,
        "gone_sources": summary.gone_sources,
        "dataset": asdict(dataset),
    }
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        missing = f", {len(summary.missing_inputs)} missing inputs" if summary.missing_inputs else ""
        failed = f", {len(summary.failures)} failures" if summary.failures else ""
        moved = f", {summary.files_moved} moved (rows and clips follow them)" if summary.files_moved else ""
        print(
            f"this run: {summary.files_mined} files mined, {summary.files_skipped} already done{moved}, "
            f"{summary.files_rejected} unusable{missing}{failed}; {summary.segments} segments, "
            f"{summary.accepted} accepted (gate {data['gate_min_confidence']:.2f}); "
            f"{summary.clips_written} clips written, {summary.duplicates} near-duplicates dropped, "
            f"{summary.clips_retired} clips retired; {summary.wall_s:.1f} s on {summary.runner}"
        )
        gone = f", {dataset.orphaned_clips} orphaned (source gone)" if dataset.gone_sources else ""
        print(
            f"dataset now: {dataset.files} files, {dataset.accepted} accepted segments, "
            f"{dataset.clips} clips{gone}"
        )
        print(f"manifest: {summary.out / 'manifest.jsonl'}   card: {summary.out / 'README.md'}")
    return 0 if summary.ok else 1
