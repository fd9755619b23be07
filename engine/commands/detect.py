"""``chronoscope detect``: how fast a clip plays relative to real time, per segment."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.commands.sequence_option import add_sequence_rate_option, clip_as_media
from engine.errors import MediaWriteError, ModelNotFoundError, UnsupportedOptionError
from engine.fsutil import atomic_path, check_plain_destination, write_text_atomic
from engine.speed.detect import DEFAULT_DENSITY, DetectionResult, detect_speed
from engine.speed.estimator import SpeedModel
from engine.speed_report import audio_summary_lines

NAME = "detect"
HELP = "detect playback speed: real time, genuine or fake slow motion, sped up, or too still to tell"
DESCRIPTION = """\
Runs the speed stages cheapest first: container metadata (capture-rate tags, high-rate streams),
the synthetic-retime check (duplicated, blended or interpolated frames), then the learned
estimator on short low-resolution windows spread over the clip. Speed s = playback rate /
capture rate: 1 is real time, 0.125 is 8x slow motion (240 fps played at 30), 4 is 4x sped up.

The table lists the clip's answer, its segments (where the speed changes: ramps, replays) and
the evidence. The capture rate is playback / speed; it is '-' (null in JSON "capture_fps") for a
still clip and for made slow motion, whose frames no camera captured at that rate. --json prints
the full result (times in seconds); --output FILE writes it to FILE.
--plot FILE.png draws the speed curve. The sound, when there is any, is read too: where the
picture changes speed between segments, a pitch shift of the sound by the same ratio confirms it
(sound resampled with the picture), and every pitch shift heard in the track is listed, so
changes the picture missed show too; --no-audio skips this. Speeds and classes always come from
the picture. --density sets how densely probes are spread: about that share of the frames is
analysed (default 0.08; 1 analyses every frame, slower but finer segments). Short clips are read
whole, and spans that read very slow are read further, so more may be decoded. --model
MODEL.onnx uses a speed model fine-tuned with `chronoscope train speed` instead of the shipped
one (its manifest beside it).

examples:
  chronoscope detect clip.mp4
  chronoscope detect clip.mp4 --json
  chronoscope detect clip.mp4 --json --output out/clip.speed.json --plot out/clip.speed.png
  chronoscope detect --density 1 replay.mov
  chronoscope detect --model my-speed.onnx clip.mp4
  chronoscope detect --no-audio rescored.mov
"""

PLOT_SIZE_PX = (900, 320)
PLOT_LOG2_RANGE = (-5.0, 4.0)
AUDIO_COLOUR_BGR = (160, 40, 150)
CLASS_COLOURS_BGR = {
    "realtime": (90, 160, 60),
    "slowmo": (200, 120, 30),
    "synthetic_slowmo": (40, 60, 220),
    "sped_up": (30, 170, 230),
    "still": (150, 150, 150),
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clip", type=Path, metavar="CLIP", help="the clip to analyse")
    add_sequence_rate_option(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--output", type=Path, metavar="FILE", help="write the JSON to FILE (needs --json)")
    parser.add_argument("--plot", type=Path, metavar="FILE.png", help="draw the speed curve into a PNG")
    parser.add_argument(
        "--density",
        type=float,
        default=DEFAULT_DENSITY,
        help=f"about the share of frames analysed, in (0, 1] (default {DEFAULT_DENSITY}; "
        "short clips are read whole)",
    )
    parser.add_argument(
        "--model", type=Path, metavar="MODEL.onnx", help="a speed model from `chronoscope train speed`"
    )
    parser.add_argument(
        "--no-audio", action="store_true", help="do not read the sound for pitch shifts (picture only)"
    )


def run(args: argparse.Namespace) -> int:
    if args.output is not None and not args.json:
        raise UnsupportedOptionError("--output writes JSON; add --json")
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise UnsupportedOptionError(f"--plot {args.plot}: the plot is a PNG; name it FILE.png")
    if not 0 < args.density <= 1:
        raise UnsupportedOptionError(f"--density {args.density} is outside (0, 1]; 0.08 is the default")
    model = None
    if args.model is not None:
        if args.model.is_dir():
            raise ModelNotFoundError(
                f"--model {args.model} is a folder; give a MODEL.onnx written by chronoscope train speed"
            )
        if not args.model.is_file():
            raise ModelNotFoundError(
                f"--model {args.model}: no such file; give a MODEL.onnx written by chronoscope train speed"
            )
        model = SpeedModel(args.model)
    for flag, destination in (("--output", args.output), ("--plot", args.plot)):
        if destination is not None:
            check_destination(flag, destination)
            try:
                check_plain_destination(destination, inputs=[args.clip])
            except UnsupportedOptionError as error:
                raise UnsupportedOptionError(f"{flag}: {error}") from None
    media = clip_as_media(args)
    result = detect_speed(media, density=args.density, model=model, audio=not args.no_audio)
    data = result.to_json()
    data["clip"] = str(args.clip)
    if args.json and args.output is not None:
        _write(
            "--output", args.output, lambda: write_text_atomic(args.output, json.dumps(data, indent=2) + "\n")
        )
    if args.plot is not None:
        _write("--plot", args.plot, lambda: write_plot(result, args.plot))
    if args.json:
        if args.output is None:
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return 0
    sys.stdout.write(format_table(data))
    return 0


def check_destination(flag: str, destination: Path) -> None:
    """Refuse, before the analysis, a destination that cannot be written: a folder, or a folder
    that cannot be made or written to (the analysis would be lost at the end). Nothing is made
    here: folders that do not exist yet are made when the file is written, so a run refused later
    (a clip too short) leaves none behind."""
    if destination.is_dir():
        raise UnsupportedOptionError(f"{flag} {destination} is a folder; name a file in it")
    existing = destination.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise MediaWriteError(
            f"{flag} {destination}: cannot make the folder {destination.parent} ({existing} is a file)"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise MediaWriteError(f"{flag} {destination}: the folder {existing} is not writable")


def _write(flag: str, destination: Path, write: Callable[[], None]) -> None:
    try:
        write()
    except OSError as error:
        raise MediaWriteError(
            f"{flag} {destination}: could not write it ({error.strerror or error})"
        ) from None


def _speed_text(speed: float | None, speed_class: str = "") -> str:
    """``0.25 (4x slow)``; a speed its class calls real time is not also called slow or fast."""
    if speed is None:
        return "-"
    if speed_class == "realtime":
        return f"{speed:.3g} (real time)"
    if speed < 1:
        return f"{speed:.3g} ({1 / speed:.3g}x slow)"
    if speed > 1:
        return f"{speed:.3g} ({speed:.3g}x fast)"
    return f"{speed:.3g}"


def _rate_text(rate: float) -> str:
    """A frame rate as editors write it: 29.97, 23.976, 240, 187.42."""
    return f"{rate:.3f}".rstrip("0").rstrip(".")


def _analysed_text(data: dict[str, Any]) -> str:
    """'64 of 151 frames in 2 probes': the frames the probes analysed (each probe is a curve point),
    and the frames decoded besides where damage left some unanalysed."""
    analysis = data["analysis"]
    decoded = analysis["frames_decoded"]
    curve = data.get("curve")
    analysed = decoded if curve is None else sum(item["end_frame"] - item["start_frame"] for item in curve)
    probes = analysis["probes_analysed"]
    extra = [] if analysed >= decoded else [f"{decoded} decoded"]
    if not analysis["complete"]:
        extra.append("incomplete")
    return f"{analysed} of {analysis['frame_count']} frames in {probes} probe{'' if probes == 1 else 's'}" + (
        f" ({'; '.join(extra)})" if extra else ""
    )


def format_table(data: dict[str, Any]) -> str:
    """The human-readable answer: the clip, its segments, the evidence."""
    capture = data["capture_fps"]
    lines = [
        f"clip        {data['clip']}",
        f"class       {data['class']}  (confidence {data['confidence']:.2f})",
        f"speed       {_speed_text(data['speed'], data['class'])}",
        f"playback    {_rate_text(data['playback_fps'])} fps",
        f"capture     {'-' if capture is None else f'{_rate_text(capture)} fps'}",
        f"decided by  {data['evidence']['decided_by']}",
        "",
        f"{'start s':>9} {'end s':>9}  {'speed':<22} {'class':<17} confidence",
    ]
    for segment in data["segments"]:
        lines.append(
            f"{segment['start']:>9.3f} {segment['end']:>9.3f}  "
            f"{_speed_text(segment['speed'], segment['class']):<22} "
            f"{segment['class']:<17} {segment['confidence']:.2f}"
        )
    analysis = data["analysis"]
    lines.append("")
    lines.append(f"analysed    {_analysed_text(data)}")
    lines.extend(f"note        {note}" for note in analysis["notes"])
    lines.extend(
        f"audio       {line.removeprefix('audio: ')}"
        for line in audio_summary_lines(data["evidence"]["audio"])
    )
    lines.append("evidence")
    for item in data["evidence"]["items"]:
        value = item["value"]
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append(f"  [{item['stage']}] {item['finding']}: {shown} (weight {item['weight']:.2f})")
    return "\n".join(lines) + "\n"


def time_step_s(span_s: float, most_ticks: int = 10) -> float:
    """A round step (1, 2 or 5 times a power of ten seconds) giving at most ``most_ticks`` ticks."""
    raw = max(span_s, 1e-6) / most_ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= raw)


def render_plot(result: DetectionResult) -> np.ndarray:
    """The speed curve as a BGR image: log2 speed over time, one box per probe (what its pixels
    read), coloured by class, the reported segments as black lines (what the clip says, after the
    metadata and the made-frame check), the clip's answer above, time ticks, a key to the colours,
    and a triangle where a speed lies off the scale."""
    width, height = PLOT_SIZE_PX
    left, right, top, bottom = 60, 20, 34, 62
    image = np.full((height, width, 3), 255, np.uint8)
    low, high = PLOT_LOG2_RANGE
    end_s = max(float(result.frame_times(result.analysis.frame_count)), 1e-6)
    floor_y = height - bottom
    font, text_colour = cv2.FONT_HERSHEY_SIMPLEX, (60, 60, 60)

    def x_of(seconds: float) -> int:
        return int(left + (width - left - right) * seconds / end_s)

    def y_of(log2_speed: float) -> int:
        clamped = min(max(log2_speed, low), high)
        return int(top + (floor_y - top) * (high - clamped) / (high - low))

    for level in range(int(low), int(high) + 1):
        y = y_of(level)
        cv2.line(image, (left, y), (width - right, y), (225, 225, 225) if level else (120, 120, 120), 1)
        cv2.putText(image, f"{2.0**level:g}", (4, y + 4), font, 0.4, text_colour, 1, cv2.LINE_AA)
    step = time_step_s(end_s)
    for index in range(int(end_s / step) + 1):
        x = x_of(index * step)
        cv2.line(image, (x, floor_y), (x, floor_y + 4), text_colour, 1)
        cv2.putText(
            image, f"{index * step:g}", (x - 6, floor_y + 16), font, 0.38, text_colour, 1, cv2.LINE_AA
        )
    for window in result.curve:
        estimate = window.estimate
        colour = CLASS_COLOURS_BGR[estimate.speed_class.value]
        x0 = x_of(float(result.frame_times(window.start_frame)))
        x1 = max(x_of(float(result.frame_times(window.end_frame))), x0 + 2)
        if estimate.speed is None:
            cv2.rectangle(image, (x0, top), (x1, floor_y), colour, -1)
            continue
        level = math.log2(estimate.speed)
        spread = estimate.speed_log2_sigma
        cv2.rectangle(image, (x0, y_of(level + spread)), (x1, y_of(level - spread)), colour, 1)
        cv2.line(image, (x0, y_of(level)), (x1, y_of(level)), colour, 2)
        if not low <= level <= high:
            # off the scale: a triangle at the edge pointing past it
            middle, tip = (x0 + x1) // 2, y_of(level)
            base = tip - 9 if level < low else tip + 9
            points = np.array([[middle - 6, base], [middle + 6, base], [middle, tip]], np.int32)
            cv2.fillPoly(image, [points], colour)
    for segment in result.segments:
        x = x_of(float(result.frame_times(segment.start_frame)))
        cv2.line(image, (x, top), (x, floor_y), (0, 0, 0), 1)
        if segment.estimate.speed is not None:
            y = y_of(math.log2(segment.estimate.speed))
            x_end = x_of(float(result.frame_times(segment.end_frame)))
            cv2.line(image, (x, y), (x_end, y), (0, 0, 0), 3)
    clip = result.estimate
    said = f"speed {float(clip.speed):.3g}" if clip.speed is not None else "no speed"
    cv2.putText(
        image,
        f"{clip.speed_class.value}, {said} (decided by {result.decided_by}); boxes: what each probe's "
        "pixels read; black: the segments reported",
        (left, 20),
        font,
        0.42,
        (40, 40, 40),
        1,
        cv2.LINE_AA,
    )
    heard = result.audio.changes if result.audio is not None else ()
    for change in heard:
        # a pitch shift of the sound: a dashed purple line, labelled with its speed ratio
        x = x_of(change.time_s)
        for y in range(top, floor_y, 8):
            cv2.line(image, (x, y), (x, min(y + 4, floor_y)), AUDIO_COLOUR_BGR, 2)
        label = f"sound x{change.shift.speed_ratio:.2g}"
        cv2.putText(image, label, (x + 4, top + 12), font, 0.4, AUDIO_COLOUR_BGR, 1, cv2.LINE_AA)
    legend = "; dashed: pitch shift of the sound" if heard else ""
    cv2.putText(
        image,
        f"seconds; speed on a log scale{legend}",
        (left, height - 10),
        font,
        0.42,
        (40, 40, 40),
        1,
        cv2.LINE_AA,
    )
    x = width - right
    for name, colour in reversed(CLASS_COLOURS_BGR.items()):
        (text_width, _), _ = cv2.getTextSize(name, font, 0.38, 1)
        x -= text_width + 4
        cv2.putText(image, name, (x, height - 10), font, 0.38, text_colour, 1, cv2.LINE_AA)
        x -= 14
        cv2.rectangle(image, (x, height - 20), (x + 10, height - 10), colour, -1)
        x -= 10
    return image


def write_plot(result: DetectionResult, destination: Path) -> None:
    """Draw the speed curve into ``destination`` (PNG), through a temporary name."""
    image = render_plot(result)
    with atomic_path(destination) as temporary:
        if not cv2.imwrite(str(temporary), image):
            raise MediaWriteError(f"could not write the plot {destination}")
