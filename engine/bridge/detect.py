"""The ``detect`` operation: the speed of every video clip of an exported timeline (one engine
``detect_speed`` job per media file, or the results given) and the markers that show it."""

from __future__ import annotations

import copy
import json
import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.bridge.clip_entries import clip_entry, entry_order, nested_entry
from engine.bridge.connection import connect_engine, engine_stopped, in_editor_words, log_event
from engine.bridge.items import disabled_reason, media_problem, read_video_items
from engine.bridge.markers import MARKER_TAG, NOTE_TAG, Marker, markers_for_clip
from engine.bridge.protocol import DEFAULT_JOB_TIMEOUT_S
from engine.bridge.results import detect_result_of
from engine.bridge.stopping import check_stopping
from engine.bridge.summary import clip_summary
from engine.errors import (
    CapabilityNotAvailableError,
    ChronoscopeError,
    EngineNotRunningError,
    NothingToDoError,
    TimelineError,
    UnsupportedOptionError,
)

if TYPE_CHECKING:
    from engine.timeline.segments import Segment

log = logging.getLogger(__name__)


def detect(
    timeline_path: Path,
    *,
    results: dict[str, Any] | None = None,
    start_engine: bool = True,
    timeout_s: float = DEFAULT_JOB_TIMEOUT_S,
    disabled: dict[tuple[str, int], str] | None = None,
) -> dict[str, Any]:
    """Speed per clip of an exported timeline, and the markers that show it.

    Every video clip is listed: ``detected`` (with its markers), ``failed``, ``missing`` (media
    offline or not found), ``skipped`` (a disabled clip or track, a compound clip), or
    ``stopped`` (the bridge was stopped before it got there; the reply then says ``stopped``).
    ``disabled`` names clips the script found disabled in Resolve (``{(track, frame): "clip" |
    "track"}``), besides those the export marks so."""
    items = read_video_items(timeline_path)
    disabled = disabled or {}
    report: list[dict[str, Any]] = []
    work = []
    for segment in items.segments:
        if segment.media_kind == "generator":
            continue  # titles, solid colours: no footage to analyse
        entry = clip_entry(segment)
        report.append(entry)
        reason = disabled_reason(segment, items, disabled)
        if reason:
            entry.update(status="skipped", message=f"{reason}: not analysed", summary=f"skipped: {reason}")
            continue
        problem = media_problem(segment)
        if problem:
            entry.update(status="missing", message=problem, summary=problem)
            continue
        work.append((entry, segment))
    for item in items.nested:
        entry = nested_entry(item, "analysed")
        reason = entry.pop("reason")
        entry.pop("index_in_track")
        entry.update(status="skipped", message=reason, summary=f"skipped: {reason}")
        report.append(entry)
    report.sort(key=entry_order)
    if not report:
        raise NothingToDoError(
            f"timeline {items.timeline.name!r} has no enabled video clip with media to analyse "
            f"({len(items.segments)} video items: generators and titles are skipped); "
            "put footage on a video track and run again"
        )
    given = {str(Path(k)): v for k, v in (results or {}).items()}
    found: dict[str, dict[str, Any] | ChronoscopeError] = {}
    placed: dict[int, list[Marker]] = {}
    engine = _Engine(start_engine)
    stopped = ""
    try:
        for number, (entry, segment) in enumerate(work, start=1):
            key = str(segment.media_path)
            if key not in found:
                if key in given:
                    found[key] = given[key]
                else:
                    check_stopping()
                    log.info("detect %d/%d: %s", number, len(work), segment.describe())
                    found[key] = engine.detect(segment, timeout_s)
            _take_outcome(entry, segment, found[key], placed)
    except KeyboardInterrupt:
        # stopped (SIGTERM from the script, Ctrl-C): the clips done so far are kept and answered
        stopped = "stopped before it finished; its engine job was cancelled"
    finally:
        engine.close()
    for entry, _segment in work:
        if entry.get("status") != "detected":
            placed.pop(id(entry), None)
        if "status" not in entry:
            message = "not analysed: Chronoscope was stopped before it got to this clip"
            entry.update(status="stopped", message=message, summary=message)
    markers = [m for entry, _ in work for m in placed.get(id(entry), [])]
    detected = sum(1 for e in report if e["status"] == "detected")
    reply = {
        "timeline": items.timeline.name,
        "clips": report,
        "markers": [m.to_dict() for m in markers],
        "marker_tag": MARKER_TAG,
        "marker_note_tag": NOTE_TAG,
        "summary": f"{detected} of {len(report)} clips analysed, {len(markers)} markers",
    }
    if stopped:
        reply["stopped"] = stopped
    return reply


def _take_outcome(entry, segment: Segment, outcome, placed: dict[int, list[Marker]]) -> None:
    """Record one clip's detect result (or error) in its report entry and its markers in ``placed``."""
    if isinstance(outcome, ChronoscopeError):
        entry.update(status="failed", message=str(outcome), summary=f"not analysed: {outcome}")
        return
    try:
        clip_markers = markers_for_clip(segment, outcome)
        shown: dict[str, int] = {}
        for marker in clip_markers:
            shown[marker.speed_class] = shown.get(marker.speed_class, 0) + marker.duration
        summary = clip_summary(segment, outcome, shown)
    except (TimelineError, UnsupportedOptionError) as error:
        entry.update(status="failed", message=str(error), summary=f"not analysed: {error}")
        return
    placed[id(entry)] = clip_markers
    entry.update(status="detected", result=outcome, markers=len(clip_markers), summary=summary)


class _Engine:
    """The engine the analyses go to: reached at the first one (started when ``start_engine``),
    and started again, once, when it stops part way (crashed, killed, shut down), so the clips
    left are analysed; without ``start_engine``, or when it stops a second time, the detect stops
    with one error saying so (``EngineNotRunningError``)."""

    def __init__(self, start_engine: bool):
        self.start_engine = start_engine
        self.client = None
        self.restarted = False

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def detect(self, segment: Segment, timeout_s: float) -> dict[str, Any] | ChronoscopeError:
        """Issue 4's detect JSON for ``segment``'s media, or the error that kept it from being
        analysed (a failure of this clip alone, said in an editor's words)."""
        job_id = uuid.uuid4().hex  # the same on a second attempt, so the engine can resume it
        while True:
            if self.client is None:
                self.client = connect_engine(self.start_engine)
            try:
                answer = self.client.run_job(
                    "detect_speed",
                    {"clip": clip_json(segment)},
                    on_event=log_event,
                    timeout_s=timeout_s,
                    job_id=job_id,
                    cancel_on_timeout=True,  # the script moves on: an analysis nobody will read is stopped
                )
            except CapabilityNotAvailableError:
                raise
            except ChronoscopeError as error:
                if not engine_stopped(self.client):
                    plain = in_editor_words(error, "the analysis")
                    log.warning("%s: %s", segment.describe(), plain)
                    return plain
                self._engine_stopped(segment)
                continue
            return detect_result_of(answer)

    def _engine_stopped(self, segment: Segment) -> None:
        """The engine stopped while it analysed ``segment``: start it again once, or stop here."""
        from engine.server.process import engine_log_path

        self.close()
        what = (
            f"the Chronoscope engine stopped while it analysed {segment.describe()} "
            "(it crashed or was shut down)"
        )
        if not self.start_engine:
            raise EngineNotRunningError(
                f"{what}; start it with `chronoscope engine start` and run Detect Speed again, or let "
                'the script start it ("start_engine": true in resolve-bridge.json)'
            )
        if self.restarted:
            raise EngineNotRunningError(
                f"{what}, for the second time in this run; nothing more is analysed. See the engine's "
                f"log ({engine_log_path()}), then run Detect Speed again"
            )
        self.restarted = True
        log.warning("%s; starting it again and going on with the clips left", what)


def clip_json(segment: Segment) -> dict[str, Any]:
    """The segment's OTIO clip as JSON, its media as an absolute file URL, for the engine."""
    import opentimelineio as otio

    clip = copy.deepcopy(segment.clip)
    if isinstance(clip.media_reference, otio.schema.ExternalReference) and segment.media_path is not None:
        clip.media_reference.target_url = Path(segment.media_path).absolute().as_uri()
    return json.loads(otio.adapters.write_to_string(clip, "otio_json"))
