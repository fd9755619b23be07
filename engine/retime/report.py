"""``RetimeReport``: what a retime wrote, how each frame was made, and how risky the made ones are.

The report is returned by ``retime_clip`` and ``render_mapped`` and written as a sidecar JSON
next to the output (``<output name>.chronoscope.json``), through a temporary name. The sidecar is
written after the media is complete, so a sidecar whose ``content_hash`` matches proves the media
beside it is finished (the batch render resumes on that).

A run leaves its media and its report together or neither (``write_report_beside``): when the
report cannot be written (the disk filled up with the media, a quota, a folder removed), the
media this run just put in place is removed again, and ``FileAccessError`` names the report and
the reason. A report that appeared at the sidecar's name meanwhile is the exception: it is
another program's, kept byte for byte, and the media stays (``OutputExistsError`` names it).
"""

from __future__ import annotations

import errno
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import FileAccessError, OutputExistsError
from engine.fsutil import remove_leftover_temporaries, remove_quietly, write_text_atomic
from engine.interp.base import SynthesisResult
from engine.interp.checks import frame_runs, needs_check

SIDECAR_SUFFIX = ".chronoscope.json"
REPORT_VERSION = 1
NUMBER_IN_NOTE = re.compile(r"(?<![\w./-])\d+(?:[./]\d+)?(?![\w./])")
"""A number standing alone in a note (``0.0769231``, ``1/16``, ``4``; not ``rife-4.2x`` or ``hdv3``)."""
FULL_DISK_REASONS = {
    errno.ENOSPC: ("the disk is full", "free some space or choose another output folder"),
    getattr(errno, "EDQUOT", errno.ENOSPC): (
        "your disk quota is full",
        "free some space or choose another output folder",
    ),
    errno.EFBIG: (
        "larger than this process may write a file",
        "lift that limit (ulimit -f) or choose another output folder",
    ),
}
"""What a full disk (or a limit like it) means, and what to do, by errno, for a report that could
not be written."""

log = logging.getLogger(__name__)


def sidecar_path(output: Path) -> Path:
    """``clip.mov`` -> ``clip.mov.chronoscope.json``; PNG folder ``frames`` -> ``frames.chronoscope.json``."""
    output = Path(output)
    return output.with_name(output.name + SIDECAR_SUFFIX)


def write_failure_text(error: OSError) -> tuple[str, str]:
    """Why a write failed and what to do, for a message that names the file itself:
    ``("No space left on device (the disk is full)", "free some space or ...")``."""
    reason = error.strerror or str(error)
    full = FULL_DISK_REASONS.get(error.errno)
    if full is None:
        return reason, "fix that"
    return f"{reason} ({full[0]})", full[1]


def write_report_beside(media: Path, text: str, *, replace: bool, what: str = "report") -> Path:
    """Write ``text`` as the report of ``media`` (``sidecar_path``), which this run has just put
    in place, through a temporary name; returns the report's path. ``replace`` as
    ``write_text_atomic``'s.

    All or nothing: when the write fails (disk full, quota, a folder removed meanwhile), ``media``
    is removed again, and so is a report an earlier run left there to be replaced (``replace``),
    so that no media stands without its report; ``FileAccessError`` names the report, the reason
    and what was removed. A report that appeared at that name while the media was written stays,
    with the media: ``OutputExistsError`` (see the module doc)."""
    media = Path(media)
    path = sidecar_path(media)
    try:
        write_text_atomic(path, text, replace=replace)
    except OutputExistsError:
        raise
    except OSError as error:
        reason, remedy = write_failure_text(error)
        log.info("removing %s: its %s %s could not be written", media, what, path)
        remove_quietly(media)
        if replace:
            remove_quietly(path)  # an earlier run's, describing media that is gone
        gone = (
            f"{media} was removed with it, so that no output stands without its {what}"
            if not media.exists()
            else f"{media} stands without its {what} (it could not be removed)"
        )
        raise FileAccessError(
            f"cannot write the {what} {path}: {reason}; {gone}: "
            f"{remedy}, then run again"
        ) from error
    return path


def remove_leftovers_of(output: Path) -> None:
    """Remove what a killed write of ``output`` left beside it: temporaries of the media, its
    sidecar and its stretched audio (SIGKILL, a power cut: nothing could clean up then).

    Temporaries that a live process is writing (another render of ``output``, which may be
    stretching its audio or writing its frames) are not leftovers: ``OutputExistsError`` naming
    that process, before this render begins (``engine.fsutil.remove_leftover_temporaries``)."""
    output = Path(output)
    audio = (output.name + ".audio.m4a", output.name + ".audio.mov")
    for name in (output.name, sidecar_path(output).name, *audio):
        remove_leftover_temporaries(output.with_name(name), output=output)


@dataclass
class FrameRisk:
    """The risk of one generated frame: ``risk``, the mean of its risk map
    (``engine.interp.base.SynthesisResult.risk_score``), about the share of the picture the
    model could not vouch for (0.1: a tenth of it); ``local``, the worst subject-sized patch of
    the map (``engine.interp.checks.local_risk``); ``check``, whether ``local`` reaches the
    model's measured level, so that the frame is listed for the editor to look at."""

    output_frame: int
    source_frame: int
    phase: str
    risk: float
    local: float | None = None
    check: bool = False

    @classmethod
    def of(cls, result: SynthesisResult, output_frame: int, source_frame: int, phase: str) -> FrameRisk:
        """The record of ``result``, made for ``output_frame`` after ``source_frame`` at ``phase``."""
        local = result.risk_local
        return cls(
            output_frame,
            source_frame,
            phase,
            round(result.risk_score, 5),
            round(local, 5),
            needs_check(result.backend, local, fallback=result.fallback),
        )


@dataclass
class FrameNote:
    """Something about a run of output frames that an editor should know (a fallback, a hold)."""

    first_output_frame: int
    last_output_frame: int
    note: str
    fallback: bool = True
    """The frames are not what was asked for (a repeated, nearest or held frame); False for an
    account of how they were made (the model's provider, a reduced flow scale)."""


def _frames_of(notes: Iterable[FrameNote]) -> set[int]:
    """The output frames ``notes`` cover."""
    return {frame for note in notes for frame in range(note.first_output_frame, note.last_output_frame + 1)}


@dataclass
class RetimeReport:
    """The account of one retime: counts, model, per-frame risk, notes, timings and the map used."""

    source: str
    output: str
    model: str
    codec: str
    output_rate: str
    output_frames: int
    frames_written: int = 0
    frames_exact: int = 0
    frames_synthesized: int = 0
    frames_held: int = 0
    head_frames: int = 0
    audio: str = "drop"
    audio_samples: int | None = None
    audio_sample_rate: int | None = None
    speed: str | None = None
    ramp: list[dict[str, Any]] | None = None
    source_range: list[int] | None = None
    source_grid: dict[str, Any] | None = None
    """For a variable-frame-rate source: the constant grid its frames were put on by their
    timestamps (rate, grid frames, empty slots made between frames, frames left out); None when
    the source's frames are its grid."""
    time_map: dict[str, Any] = field(default_factory=dict)
    start_timecode: str | None = None
    """The timecode of the output's first frame (the source's at ``--in``), written into the output
    too where it holds one (.mov, .mp4, .mkv; PNG frames cannot); None when the source has none."""
    risk: list[FrameRisk] = field(default_factory=list)
    notes: list[FrameNote] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    content_hash: str | None = None
    output_bytes: int | None = None
    """The size of the media file when the report was written (None for a PNG folder): a render
    cut short afterwards (an interrupted copy of the folder) no longer matches its report."""
    version: int = REPORT_VERSION
    rendered_meanwhile: bool = False
    """True when the job that returns this report did not write the output: it waited for another
    render of the same output, and this is that render's report (never so in a sidecar)."""

    @property
    def risk_max(self) -> float:
        return max((r.risk for r in self.risk), default=0.0)

    @property
    def risk_mean(self) -> float:
        return sum(r.risk for r in self.risk) / len(self.risk) if self.risk else 0.0

    @property
    def frames_to_check(self) -> list[int]:
        """Output frames whose local risk reaches their model's measured level, in order."""
        return sorted(r.output_frame for r in self.risk if r.check)

    @property
    def fallback_notes(self) -> list[FrameNote]:
        """The notes of frames that fell back (scene-cut or duplicate fallback, held frames)."""
        return [n for n in self.notes if n.fallback]

    @property
    def fallbacks(self) -> int:
        """Output frames that fell back: covered by a fallback note (each frame counted once)."""
        covered = (range(n.first_output_frame, n.last_output_frame + 1) for n in self.fallback_notes)
        return len({frame for frames in covered for frame in frames})

    def add_note(self, output_frame: int, note: str, *, fallback: bool = True) -> None:
        """Record ``note`` for a frame, merged with the previous note when it continues the run."""
        if self.notes:
            last = self.notes[-1]
            if last.note == note and last.fallback == fallback and last.last_output_frame + 1 == output_frame:
                last.last_output_frame = output_frame
                return
        self.notes.append(FrameNote(output_frame, output_frame, note, fallback))

    def note_lines(self) -> list[str]:
        """The notes, once each, for a summary line: notes that differ only in their numbers (one
        per made frame: ``rife: t = 0.0769231 rendered at 1/16 ...``) are said once, with how
        many more frames have one like it, in the order they first appear."""
        groups: dict[str, list[FrameNote]] = {}
        for note in self.notes:
            groups.setdefault(NUMBER_IN_NOTE.sub("#", note.note), []).append(note)
        lines = []
        for notes in groups.values():
            first = notes[0].note
            own = _frames_of(n for n in notes if n.note == first)
            more = len(_frames_of(n for n in notes if n.note != first) - own)
            like = f" (and {more} more frame{'s' if more != 1 else ''} like it)" if more else ""
            lines.append(first + like)
        return lines

    def summary(self) -> dict[str, Any]:
        """A short JSON-able digest (no per-frame lists), for tables and timeline metadata."""
        return {
            "output": self.output,
            "model": self.model,
            "codec": self.codec,
            "frames_written": self.frames_written,
            "frames_exact": self.frames_exact,
            "frames_synthesized": self.frames_synthesized,
            "frames_held": self.frames_held,
            "fallback_frames": self.fallbacks,
            "risk_max": round(self.risk_max, 4),
            "risk_mean": round(self.risk_mean, 4),
            "frames_to_check": frame_runs(self.frames_to_check),
            "seconds": round(self.timings_s.get("total", 0.0), 3),
            **({"start_timecode": self.start_timecode} if self.start_timecode else {}),
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["risk_max"] = round(self.risk_max, 4)
        data["risk_mean"] = round(self.risk_mean, 4)
        data["fallback_frames"] = self.fallbacks
        data["frames_to_check"] = frame_runs(self.frames_to_check)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetimeReport:
        known = {name for name in cls.__dataclass_fields__}
        values = {key: value for key, value in data.items() if key in known}
        values["risk"] = [FrameRisk(**item) for item in values.get("risk", [])]
        values["notes"] = [FrameNote(**item) for item in values.get("notes", [])]
        return cls(**values)

    def write_sidecar(self, output: Path | None = None, *, replace: bool = True) -> Path:
        """Write the report next to the output (atomically); returns the sidecar's path. With
        ``replace=False`` a sidecar that appeared meanwhile is never replaced: it stays and
        ``OutputExistsError`` names it (the media, in place already, then has no report). A
        sidecar that cannot be written takes the media with it (``write_report_beside``)."""
        media = Path(output or self.output)
        self.output_bytes = media.stat().st_size if media.is_file() else None
        return write_report_beside(media, json.dumps(self.to_dict(), indent=1) + "\n", replace=replace)


def read_sidecar(output: Path) -> RetimeReport | None:
    """The report beside ``output``, or None when there is none or it cannot be read."""
    path = sidecar_path(output)
    try:
        return RetimeReport.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
