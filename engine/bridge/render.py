"""The ``render`` operation: the clips slower than 100 % through the engine's ``render_timeline``
(only the flagged ones when the editor flagged any), and every clip left as it was, with the reason."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.bridge.clip_entries import entry_order, nested_entry
from engine.bridge.connection import connect_engine, editor_words, log_event
from engine.bridge.folders import folder_name, render_folder
from engine.bridge.items import clip_at, disabled_reason, media_problem, read_video_items, speed_ramp_of
from engine.bridge.protocol import DEFAULT_JOB_TIMEOUT_S
from engine.bridge.render_result import merge_render_result, rendered_media, rendered_timeline
from engine.errors import (
    ChronoscopeError,
    InvalidTimeWarpError,
    MediaNotFoundError,
    NothingToDoError,
    OutputExistsError,
)

if TYPE_CHECKING:
    from engine.timeline.segments import Segment

log = logging.getLogger(__name__)


def timeline_in_folder(timeline_path: Path, timeline, output_dir: Path) -> Path:
    """The exported timeline as the render reads it: a copy in ``output_dir`` named after the
    timeline (``<timeline>.otio``), so that every run of one timeline renders the same file and
    the engine takes its earlier results there (resume; the summary and the new timeline are
    replaced only by a render of the same timeline file). An earlier export of the same timeline
    is replaced; one of another timeline whose name makes the same file name is refused
    (``OutputExistsError``) rather than replaced. Relative media paths are made absolute first."""
    from engine.render.outputs import prepare_folder
    from engine.timeline import read_timeline, write_timeline
    from engine.timeline.paths import rebase_relative_media

    copy = output_dir / f"{folder_name(timeline.name, 'timeline')}.otio"
    if copy.absolute() == Path(timeline_path).absolute():
        return copy
    if copy.is_file():
        try:
            earlier = read_timeline(copy).name
        except ChronoscopeError:
            earlier = None
        if earlier != timeline.name:
            raise OutputExistsError(
                f"{copy} holds the export of another timeline ({earlier!r}, not {timeline.name!r}); "
                "rename one of the timelines, or set another render_dir in resolve-bridge.json"
            )
    prepare_folder(output_dir)
    exported = read_timeline(timeline_path)
    rebase_relative_media(exported, Path(timeline_path).absolute().parent)
    write_timeline(exported, copy)
    return copy


def _not_rendered(segment: Segment, reason: str) -> dict[str, Any]:
    return {
        "clip": segment.clip_name,
        "track": segment.track_label,
        "index_in_track": segment.index_in_track,
        "record_start_frame": int(segment.record_start_frames),
        "reason": reason,
    }


def render(
    timeline_path: Path,
    *,
    output_dir: Path | None = None,
    marked: set[tuple[str, int]] | None = None,
    flag: str = "",
    start_engine: bool = True,
    timeout_s: float = DEFAULT_JOB_TIMEOUT_S,
    disabled: dict[tuple[str, int], str] | None = None,
) -> dict[str, Any]:
    """Render the slowed-down clips through the engine's ``render_timeline``: all of them, or, when
    any clip is flagged (``marked``), only the flagged ones; the engine is sent exactly those. A
    slowed clip that shows only its media's own frames (high-frame-rate media at its own rate,
    ``engine.render.plan.plays_own_frames``) has nothing to make and is left as it is.

    The reply lists every clip that is not rendered and why (``not_rendered``): a speed ramp, a
    compound clip, a disabled clip, media offline or missing, or what the engine said."""
    # here, not at the top: the render package loads the synthesis models' runtime, which ping
    # and detect do not need
    from engine.render.plan import PLAYS_OWN_FRAMES, plays_own_frames

    items = read_video_items(timeline_path)
    marked = set(marked or ())
    disabled = disabled or {}
    targets, missing, not_rendered = [], [], []
    slowed_count = 0
    matched: set[tuple[str, int]] = set()
    for segment in items.segments:
        key = clip_at(marked, segment.track_label, segment.record_start_frames)
        if key is not None:
            matched.add(key)
        try:
            slowed = 0 < segment.time_scalar < 1
        except InvalidTimeWarpError as error:
            ramp = speed_ramp_of(segment.clip)
            reason = (
                f"its {ramp} is not rendered: Chronoscope renders constant speeds; give the clip one "
                "speed (Change Clip Speed) and run again, or let Resolve render the ramp "
                "(Retime Process: Optical Flow)"
                if ramp
                else str(error)
            )
            not_rendered.append(_not_rendered(segment, reason))
            continue
        slowed_count += slowed
        if not slowed:
            if key is not None:
                not_rendered.append(_not_rendered(
                    segment, "flagged, but it plays at 100 % or faster: there are no frames to make"
                ))
            continue
        if marked and key is None:
            not_rendered.append(_not_rendered(
                segment, f"not flagged{' ' + flag if flag else ''}: only the flagged clips are rendered "
                "(clear every flag to render all clips slower than 100 %)"
            ))
            continue
        off = disabled_reason(segment, items, disabled)
        if off:
            not_rendered.append(_not_rendered(segment, f"{off}: not rendered"))
            continue
        if segment.media_kind == "generator":
            not_rendered.append(
                _not_rendered(segment, "a generated picture (a title, a colour): nothing to render")
            )
            continue
        problem = media_problem(segment)
        if problem:
            not_rendered.append(_not_rendered(segment, problem))
            missing.append((segment, problem))
            continue
        if plays_own_frames(segment):  # the same test as the engine's render plan
            not_rendered.append(_not_rendered(segment, PLAYS_OWN_FRAMES))
            continue
        targets.append(segment)
    for item in items.nested:
        key = clip_at(marked, item.track_label, item.record_start_frames)
        if key is not None:
            matched.add(key)
        if key is not None or item.speed_changes:
            entry = nested_entry(item, "rendered")
            entry.pop("marker_key")
            entry.pop("note_key")
            entry.pop("media")
            not_rendered.append(entry)
    for track, frame in sorted(marked - matched):
        reason = "flagged, but no clip starts there in the exported timeline"
        not_rendered.append(
            {
                "clip": f"at frame {frame}",
                "track": track,
                "index_in_track": -1,
                "record_start_frame": frame,
                "reason": reason,
            }
        )
    not_rendered.sort(key=entry_order)
    if not targets:
        if missing:
            segment, problem = missing[0]
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            others = [n for n in not_rendered if n["reason"] not in {reason for _, reason in missing}]
            also = "".join(f"; {n['track']} {n['clip']!r}: {n['reason']}" for n in others)
            raise MediaNotFoundError(f"{segment.describe()}: {problem}{more}{also}")
        also = "".join(f"; {n['track']} {n['clip']!r}: {n['reason']}" for n in not_rendered)
        if marked and not marked & matched:
            places = ", ".join(f"{track} at frame {frame}" for track, frame in sorted(marked))
            raise NothingToDoError(
                f"timeline {items.timeline.name!r}: no clip starts where the {len(marked)} flagged "
                f"clip{'s' if len(marked) != 1 else ''} {'are' if len(marked) != 1 else 'is'} ({places}) "
                "in the exported timeline; flag the clips again, or clear the flags to render every "
                "clip slower than 100 %"
            )
        if marked:
            raise NothingToDoError(
                f"timeline {items.timeline.name!r}: none of the {len(marked)} flagged clips is slower than "
                f"100 % and can be rendered; slow it down (Change Clip Speed), or clear the flags to "
                f"render every clip slower than 100 %{also}"
            )
        if slowed_count:
            raise NothingToDoError(
                f"timeline {items.timeline.name!r}: none of its {slowed_count} clips slower than 100 % "
                f"needs rendering or can be rendered{also}"
            )
        raise NothingToDoError(
            f"timeline {items.timeline.name!r} has no clip slower than 100 % "
            f"({len(items.segments)} video clip{'s' if len(items.segments) != 1 else ''}); slow a clip "
            "down (Change Clip Speed) and run "
            f"again{also}"
        )
    output_dir = render_folder(output_dir, items.timeline.name)
    source = timeline_in_folder(timeline_path, items.timeline, output_dir)
    clips = [
        {
            "track": s.track_label,
            "index_in_track": s.index_in_track,
            "record_start_frame": int(s.record_start_frames),
            "name": s.clip_name,
        }
        for s in targets
    ]
    log.info("rendering %d clips of %r into %s", len(clips), items.timeline.name, output_dir)
    with editor_words("the render"), connect_engine(start_engine) as client:
        result = client.run_job(
            "render_timeline",
            {
                "timeline": str(source.absolute()),
                "outdir": str(output_dir.absolute()),
                "speedup": False,
                "clips": clips,
            },
            on_event=log_event,
            # one engine job renders them all: each clip gets the time one job may take
            timeout_s=timeout_s * len(clips),
            cancel_on_timeout=True,  # the script reports a failure, so nothing may appear later
        )
    starts = {(s.track_label, s.index_in_track): int(s.record_start_frames) for s in items.segments}
    starts.update({(n.track_label, n.index_in_track): int(n.record_start_frames) for n in items.nested})
    rendered = merge_render_result(result, clips, not_rendered, starts)
    new_timeline = rendered_timeline(result, output_dir, items.timeline.name)
    media = [str(p) for p in rendered_media(result) if Path(p).is_file()]
    summary = f"{rendered} of {len(clips)} clips rendered into {output_dir}"
    earlier = sum(1 for clip in clips if clip.get("status") == "resumed")
    if earlier:
        summary += f" ({earlier} of them rendered by an earlier run, taken as they were)"
    if not_rendered:
        summary += f"; {len(not_rendered)} not rendered"
    return {
        "timeline": str(new_timeline),
        "timeline_name": items.timeline.name,
        "media": media,
        "clips": clips,
        "rendered": rendered,
        "not_rendered": not_rendered,
        "output_dir": str(output_dir),
        "summary": summary,
    }
