"""``chronoscope doctor``: check every part of an installed Chronoscope and say how to fix what fails."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.doctor import FAIL, PASS, report, run_checks

NAME = "doctor"
HELP = "check the install: Python, ONNX Runtime and GPU, models, folders, engine, Resolve, OFX, disk"
DESCRIPTION = """\
Checks Python, ONNX Runtime's providers and the GPU (a machine without an NVIDIA GPU is reported,
not failed), the models and their SHA-256 hashes, whether you may write in the folders the engine
writes in (runtime, log, job journal), whether the engine answers and how fast, the
Resolve scripts and the bridge config, the OpenFX bundle (it is loaded as a host loads it), every
file the installer's manifest lists, the free disk space for the cache, and the versions of
everything. Each check prints pass, warn or fail, and the fix. Exit status 1 when a check failed;
a manifest named with --manifest that cannot be read fails the install check.

examples:
  chronoscope doctor
  chronoscope doctor --json
  chronoscope doctor --manifest ~/.local/share/Chronoscope/install-manifest.json
"""

EXIT_FAILED = 1
LABELS = {"pass": "PASS", "warn": "WARN", "fail": "FAIL"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object for machines")
    parser.add_argument(
        "--manifest",
        type=Path,
        help="the installer's manifest (default: the one beside this environment, else in the data folder)",
    )


def run(args: argparse.Namespace) -> int:
    results = run_checks(args.manifest)
    summary = report(results)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        width = max(len(result.name) for result in results)
        for result in results:
            print(f"{LABELS[result.status]}  {result.name:<{width}}  {result.summary}")
            if result.status != PASS and result.fix:
                print(f"      {'':<{width}}  fix: {result.fix}")
        failed = [result.name for result in results if result.status == FAIL]
        warned = sum(result.status == "warn" for result in results)
        warnings = f" ({warned} warning{'' if warned == 1 else 's'})" if warned else ""
        print(f"chronoscope doctor: {'failed: ' + ', '.join(failed) if failed else 'no failures'}{warnings}")
    return EXIT_FAILED if not summary["ok"] else 0
