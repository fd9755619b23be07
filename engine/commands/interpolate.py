"""``chronoscope interpolate``: in-between frames of two still images, with their risk maps."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from fractions import Fraction
from pathlib import Path

from engine.errors import OutputExistsError, UnsupportedOptionError
from engine.interp import (
    DEFAULT_MODEL,
    GuardedSynthesizer,
    available_backends,
    check_frame_pair,
    create_backend,
    create_default_backend,
)
from engine.interp.images import (
    check_writable,
    expand_pattern,
    has_pattern,
    parse_time,
    read_image,
    time_label,
    write_image,
    write_risk_map,
)

log = logging.getLogger(__name__)

NAME = "interpolate"
HELP = "make in-between frames of two images (PNG, TIFF, JPEG), with risk maps"
DESCRIPTION = f"""\
Makes the frame at time t between FRAME0 (t = 0) and FRAME1 (t = 1) and writes it as an image.
8-bit and 16-bit PNG and TIFF, JPEG and other formats OpenCV reads; alpha and bit depth pass
through (an output format that cannot hold them, such as JPEG, is refused), and a JPEG's EXIF
orientation is applied as viewers apply it. Several times may be given (--t 0.25 0.5 0.75, or
fractions such as 1/3; 6 decimals at most tell them apart): the output name must then hold {{t}}
(the time as a decimal), {{index}} or a printf %d / %04d (1, 2, ... in the order given). Each
file is written under a temporary name and renamed when complete.

--risk writes the risk map of each frame as a grey image (16-bit for PNG/TIFF): white where the
frame is probably wrong (occlusion, flows that disagree, a cut). A scene cut between the frames
gives the nearer frame instead (and full risk); identical frames give the nearer frame.

Models: {DEFAULT_MODEL} (the default: best measured quality; needs the RIFE models, falls back to
flow with a warning when they are not prepared), flow (no weights), rife / rife-hdv3 / rife-4.2x
and rife-mined (RIFE 4.2x fine-tuned on mined high-rate renders; all need `chronoscope models
prepare`), blend, nearest.

examples:
  chronoscope interpolate frame10.png frame11.png --t 0.5 -o middle.png
  chronoscope interpolate a.tif b.tif --t 0.25 0.5 0.75 -o 'between_{{t}}.tif' --risk 'risk_{{t}}.png'
  chronoscope interpolate a.png b.png --t 1/3 2/3 -o out_%02d.png --model flow --json
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("frame0", type=Path, help="the frame at t = 0")
    parser.add_argument("frame1", type=Path, help="the frame at t = 1")
    parser.add_argument(
        "--t",
        dest="times",
        nargs="+",
        default=None,
        metavar="T",
        help="time(s) strictly between 0 and 1, decimal or fraction (default 0.5)",
    )
    parser.add_argument(
        "--model",
        default=None,
        metavar="M",
        help=f"synthesis model (default {DEFAULT_MODEL}); one of: {', '.join(available_backends())}",
    )
    parser.add_argument(
        "-o", "--output", required=True, help="output image; with several --t it needs {t}, {index} or %%d"
    )
    parser.add_argument("--risk", default=None, help="also write each risk map here (same patterns)")
    parser.add_argument("--json", action="store_true", help="print one JSON record per frame")
    parser.add_argument("--overwrite", action="store_true", help="replace output images that exist")


def _output_paths(template: str, times: list[Fraction], what: str) -> list[Path]:
    if len(times) > 1 and not has_pattern(template):
        raise UnsupportedOptionError(
            f"{len(times)} times given but {what} {template!r} names one file; "
            "put {t}, {index} or %d in the name, e.g. 'out_{t}.png'"
        )
    if not has_pattern(template):
        return [Path(template)]
    paths = [expand_pattern(template, t, index) for index, t in enumerate(times, start=1)]
    if len(set(paths)) != len(paths):
        raise UnsupportedOptionError(
            f"{what} {template!r} gives the same name to different times; use {{index}} or %d"
        )
    return paths


def run(args: argparse.Namespace) -> int:
    times = [parse_time(text) for text in (args.times or ["0.5"])]
    if len(set(times)) != len(times):
        raise UnsupportedOptionError(f"--t lists a time twice: {', '.join(args.times)}")
    outputs = _output_paths(args.output, times, "--output")
    risks = _output_paths(args.risk, times, "--risk") if args.risk else []
    first = read_image(args.frame0)
    second = read_image(args.frame1)
    if first.pixels.shape != second.pixels.shape or first.pixels.dtype != second.pixels.dtype:
        raise UnsupportedOptionError(
            f"the frames differ: {args.frame0} is {first.size_text}, {args.frame1} is {second.size_text}; "
            "both must have the same size, channels and bit depth"
        )
    check_frame_pair(first.pixels, second.pixels, times[0])
    alpha = first.pixels.shape[2] == 4
    for path in outputs + risks:
        check_writable(path, first.pixels.dtype, alpha=alpha and path in outputs)
        if path.exists() and not args.overwrite:
            raise OutputExistsError(f"{path} exists; choose another name or allow overwriting (--overwrite)")
        if path.resolve() in (args.frame0.resolve(), args.frame1.resolve()):
            raise UnsupportedOptionError(f"output {path} is one of the input frames; write elsewhere")

    backend = create_backend(args.model) if args.model else create_default_backend()
    guarded = GuardedSynthesizer(backend)
    try:
        results = guarded.synthesize_many(first.pixels, second.pixels, times)
    finally:
        guarded.close()
    grey = first.grey and second.grey
    for index, (t, result) in enumerate(zip(times, results, strict=True)):
        write_image(outputs[index], result.frame, grey=grey, replace=args.overwrite)
        if risks:
            write_risk_map(risks[index], result.risk, replace=args.overwrite)
        record = {
            "t": time_label(t),
            "t_exact": f"{t.numerator}/{t.denominator}",
            "output": str(outputs[index]),
            "risk_map": str(risks[index]) if risks else None,
            "model": result.backend,
            "risk_score": round(result.risk_score, 4),
            "notes": result.notes,
        }
        if args.json:
            sys.stdout.write(json.dumps(record) + "\n")
        else:
            notes = f" ({'; '.join(result.notes)})" if result.notes else ""
            sys.stdout.write(
                f"t={record['t']}  {record['output']}  model {result.backend}  "
                f"risk {result.risk_score:.2f}{notes}\n"
            )
    return 0
