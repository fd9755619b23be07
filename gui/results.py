"""What the app sends the engine for analysis and renders, and how it reads the answers.

Kept in one module so that aligning with the engine's capabilities is a change here only.
``detect_speed`` answers in the shape of issue 4's JSON::

    {"speed", "capture_fps", "class", "confidence",
     "segments": [{"start", "end", "speed", "class", "confidence"}],
     "evidence": [...], "curve": [{"start", "end", "speed", "confidence"}]}

Times are seconds (numbers or exact fractions as text such as "1001/30000"), speeds are numbers
or fractions as text ("1/8"). Times stay ``Fraction`` here; they become floats only for drawing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio

from engine.errors import EngineRequestError
from engine.speed_report import analysis_note_lines, audio_summary_lines
from gui.sequences import run_range
from gui.style import number_text

SPEED_CLASSES = ("realtime", "slowmo", "synthetic_slowmo", "sped_up", "still")
CLASS_LABELS = {
    "realtime": "real time",
    "slowmo": "slow motion",
    "synthetic_slowmo": "fake slow motion",
    "sped_up": "sped up",
    "still": "still (cannot tell)",
    "unknown": "not analysed",
}


@dataclass(frozen=True)
class SpeedSpan:
    """A stretch of the clip with one speed: a segment (with a class) or one window of the curve."""

    start_s: Fraction
    end_s: Fraction
    speed: Fraction | None
    confidence: float
    speed_class: str = "unknown"


@dataclass
class SpeedAnalysis:
    """A clip's ``detect_speed`` answer, as the app shows it."""

    speed: Fraction | None
    capture_fps: Fraction | None
    speed_class: str
    confidence: float
    segments: list[SpeedSpan] = field(default_factory=list)
    curve: list[SpeedSpan] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    model: str = ""

    @property
    def label(self) -> str:
        return CLASS_LABELS.get(self.speed_class, self.speed_class)


def _bad(what: str, value: Any) -> EngineRequestError:
    return EngineRequestError(f"detect_speed answered {what} = {value!r}, which the app cannot read")


def _fraction(value: Any, what: str, *, optional: bool = False) -> Fraction | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _bad(what, value)
    try:
        return Fraction(value)
    except (ValueError, ZeroDivisionError, OverflowError):
        raise _bad(what, value) from None


def _confidence(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise _bad(what, value)
    return float(value)


def _class(value: Any, what: str) -> str:
    if value not in SPEED_CLASSES:
        raise EngineRequestError(
            f"detect_speed answered {what} = {value!r}; the app knows: {', '.join(SPEED_CLASSES)}"
        )
    return value


def _span(item: Any, what: str, *, with_class: bool) -> SpeedSpan:
    if not isinstance(item, dict):
        raise _bad(what, item)
    start_s = _fraction(item.get("start"), f"{what}.start")
    end_s = _fraction(item.get("end"), f"{what}.end")
    if end_s < start_s:
        raise _bad(f"{what} (end before start)", item)
    return SpeedSpan(
        start_s=start_s,
        end_s=end_s,
        speed=_fraction(item.get("speed"), f"{what}.speed", optional=True),
        confidence=_confidence(item.get("confidence", 0.0), f"{what}.confidence"),
        speed_class=_class(item.get("class"), f"{what}.class") if with_class else "unknown",
    )


def _evidence_line(item: Any) -> str:
    if isinstance(item, dict):
        stage, finding = item.get("stage", ""), item.get("finding", "")
        value = item.get("value")
        if isinstance(value, float):
            value = number_text(value)
        text = f"{stage}: {finding}" if stage else str(finding)
        return f"{text} ({value})" if value not in (None, "") else text
    return str(item)


def _unwrap(result: Any) -> Any:
    """The detect JSON inside the job's answer: ``{"path", "speed": {...}}`` for a media path, or
    ``{"clips": [{"name", "path", "speed": {...}}], "otio": ...}`` for OTIO input (first clip)."""
    if isinstance(result, dict) and isinstance(result.get("speed"), dict):
        return result["speed"]
    if isinstance(result, dict) and isinstance(result.get("clips"), list) and result["clips"]:
        first = result["clips"][0]
        if isinstance(first, dict) and isinstance(first.get("speed"), dict):
            return first["speed"]
    return result


def parse_speed_result(result: dict[str, Any]) -> SpeedAnalysis:
    """Read a ``detect_speed`` result; ``EngineRequestError`` names the first field it cannot read."""
    result = _unwrap(result)
    if not isinstance(result, dict):
        raise _bad("its result", result)
    segments = result.get("segments") or []
    curve = result.get("curve") or []
    evidence = result.get("evidence") or []
    model = str(result.get("model") or result.get("estimator") or "")
    audio = evidence.get("audio") if isinstance(evidence, dict) else None
    # the inspector shows a few lines: the sound gets them only when it said something
    quiet = isinstance(audio, dict) and audio.get("status") in ("off", "silent", "no audio track")
    audio_lines = [] if quiet else audio_summary_lines(audio)
    if isinstance(evidence, dict):
        named = [str(evidence[key]) for key in ("decided_by", "model_provider") if evidence.get(key)]
        model = model or " on ".join(_provider_name(name) for name in named)
        evidence = evidence.get("items") or []
    if not isinstance(segments, list) or not isinstance(curve, list) or not isinstance(evidence, list):
        raise _bad("segments/curve/evidence", (type(segments), type(curve), type(evidence)))
    note_lines = analysis_note_lines(result)
    speed_value = result.get("speed_exact") if result.get("speed_exact") is not None else result.get("speed")
    return SpeedAnalysis(
        speed=_fraction(speed_value, "speed", optional=True),
        capture_fps=_fraction(result.get("capture_fps"), "capture_fps", optional=True),
        speed_class=_class(result.get("class"), "class"),
        confidence=_confidence(result.get("confidence", 0.0), "confidence"),
        segments=[_span(item, f"segments[{i}]", with_class=True) for i, item in enumerate(segments)],
        curve=[_span(item, f"curve[{i}]", with_class=False) for i, item in enumerate(curve)],
        evidence=note_lines + audio_lines + [_evidence_line(item) for item in evidence],
        model=model,
    )


def clip_json(path: Path, rate: Fraction | None = None, frame_count: int | None = None) -> dict[str, Any]:
    """An OTIO clip for a media file, as the JSON object the engine reads work from."""
    path = Path(path).resolve()
    available = None
    if rate and frame_count:
        available = otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, float(rate)), otio.opentime.RationalTime(frame_count, float(rate))
        )
    reference = otio.schema.ExternalReference(target_url=path.as_uri(), available_range=available)
    clip = otio.schema.Clip(name=path.name, media_reference=reference)
    return json.loads(otio.adapters.write_to_string(clip, "otio_json"))


def detect_request(
    path: Path, rate: Fraction | None = None, frame_count: int | None = None
) -> dict[str, Any]:
    """Content of a ``detect_speed`` request for one clip."""
    return {"clip": clip_json(path, rate, frame_count)}


@dataclass(frozen=True)
class RenderOrder:
    """One retime to render: the clip, the range in source frames (out exclusive), the target speed
    (or a speed ramp) and the synthesis model. ``rate`` is the clip's frame rate, for showing the
    range as timecode. ``ramp`` holds the engine's ramp keyframes (``engine.retime.ramp``: output
    frame, frame 0 at ``in_frame``, and exact speed text) as pairs, so the order cannot change
    after it is queued; with a ramp, ``speed`` is not sent."""

    source: Path
    output: Path
    speed: Fraction
    backend: str
    in_frame: int
    out_frame: int
    rate: Fraction
    ramp: tuple[tuple[int, str], ...] | None = None
    codec: str | None = None  # engine.media.writer.CODECS name; None: what the output's suffix implies

    @staticmethod
    def ramp_keys(ramp_json: list[dict[str, Any]] | None) -> tuple[tuple[int, str], ...] | None:
        """The ramp JSON as the immutable (frame, "num/den") pairs a ``RenderOrder`` holds."""
        if ramp_json is None:
            return None
        return tuple((int(key["frame"]), str(key["speed"])) for key in ramp_json)

    def describe_speed(self) -> str:
        if self.ramp is not None:
            speeds = " → ".join(f"{float(Fraction(speed)) * 100:.4g}%" for _, speed in self.ramp)
            return f"ramp {speeds}"
        return f"speed {self.speed}"

    def request(self) -> dict[str, Any]:
        """Content of the engine's ``retime`` request (engine.render.capability documents it).

        Paths are absolute (the engine may run elsewhere), the speed is exact text ("1/4") or the
        ramp's keyframes, and ``in_frame``/``out_frame`` are 0-based source frames, out exclusive,
        as the app's marks (an image sequence with holes: the run of frames the range lies in, the
        range counted in it, ``gui.sequences.run_range``). A ramp changes speed, so its audio is
        dropped (stretching follows one constant speed).
        """
        source, in_frame, out_frame = run_range(Path(self.source), int(self.in_frame), int(self.out_frame))
        content: dict[str, Any] = {
            "source": str(Path(source).resolve()),
            "output": str(Path(self.output).resolve()),
            "model": self.backend,
            "in_frame": in_frame,
            "out_frame": out_frame,
            "overwrite": False,
        }
        if self.codec is not None:
            content["codec"] = self.codec
        if self.ramp is not None:
            content["ramp"] = [{"frame": frame, "speed": speed} for frame, speed in self.ramp]
            content["audio"] = "drop"
        else:
            speed = Fraction(self.speed)
            content["speed"] = f"{speed.numerator}/{speed.denominator}"
        return content


@dataclass(frozen=True)
class RenderResult:
    """What a finished ``retime`` job answered: the media, its sidecar report and the report's digest."""

    output: Path
    sidecar: Path | None
    report: dict[str, Any]

    @property
    def frames_written(self) -> int | None:
        value = self.report.get("frames_written")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_render_result(result: Any) -> RenderResult:
    """Read a ``retime`` result ``{"report", "output", "sidecar"}``; ``EngineRequestError`` names the
    field it cannot read."""
    if not isinstance(result, dict):
        raise EngineRequestError(f"retime answered {result!r}; the app expects an object with output")
    output = result.get("output")
    if not isinstance(output, str) or not output:
        raise EngineRequestError(f"retime answered output = {output!r}, which the app cannot read")
    sidecar = result.get("sidecar")
    if sidecar is not None and not isinstance(sidecar, str):
        raise EngineRequestError(f"retime answered sidecar = {sidecar!r}, which the app cannot read")
    report = result.get("report")
    report = {} if report is None else report
    if not isinstance(report, dict):
        raise EngineRequestError(f"retime answered report = {report!r}, which the app cannot read")
    return RenderResult(Path(output), Path(sidecar) if sidecar else None, report)


def output_paths(result: dict[str, Any]) -> list[Path]:
    """The files a finished ``retime`` job wrote: its media, then its sidecar report."""
    rendered = parse_render_result(result)
    return [rendered.output] + ([rendered.sidecar] if rendered.sidecar is not None else [])


def _provider_name(name: str) -> str:
    """``CPUExecutionProvider`` -> ``CPU``, ``CUDAExecutionProvider`` -> ``CUDA``: short enough for
    the inspector's column (the full name did not fit and was cut off after "learned,")."""
    return name.removesuffix("ExecutionProvider") or name
