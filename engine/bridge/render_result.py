"""Reading the engine's ``render_timeline`` answer: each clip's status, the new timeline file and
the rendered media."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.bridge.clip_entries import entry_order
from engine.errors import TimelineNotFoundError


def merge_render_result(
    result: dict[str, Any],
    clips: list[dict[str, Any]],
    not_rendered: list[dict[str, Any]],
    starts: dict[tuple[str, int], int],
) -> int:
    """Give each clip sent its status from the engine's summary; add to ``not_rendered`` the ones
    the engine did not render, and the video clips it could not render that are not listed yet
    (``starts``: each clip's first frame, by track and place on it). Returns how many of the clips
    sent were rendered (all, when the engine's answer lists no clips). Audio is never rendered:
    its speed changes stay in the timeline for the editor, so it is not listed."""
    records = {
        (c.get("track"), c.get("index_in_track")): c for c in result.get("clips") or [] if isinstance(c, dict)
    }
    listed = {(n["track"], n["index_in_track"]) for n in not_rendered}
    rendered = 0
    for clip in clips:
        record = records.get((clip["track"], clip["index_in_track"]))
        status = str(record.get("status", "")) if record else "rendered"
        clip["status"] = status
        if status in ("rendered", "resumed"):
            rendered += 1
            continue
        reason = str(record.get("reason") or status)
        if status == "pass_through":
            reason = f"the engine passed it through ({reason})"
        where = {key: clip[key] for key in ("track", "index_in_track", "record_start_frame")}
        not_rendered.append({**where, "clip": clip["name"], "reason": reason})
        listed.add((clip["track"], clip["index_in_track"]))
    for (track, index), record in records.items():
        if record.get("status") not in ("failed", "cannot_render") or (track, index) in listed:
            continue
        if not str(track).startswith("V"):
            continue
        not_rendered.append(
            {
                "clip": str(record.get("clip_name", "")),
                "track": str(track),
                "index_in_track": index,
                "record_start_frame": starts.get((track, index), -1),
                "reason": str(record.get("reason") or record.get("status")),
            }
        )
    not_rendered.sort(key=entry_order)
    return rendered


def rendered_timeline(result: dict[str, Any], output_dir: Path, name: str) -> Path:
    value = result.get("new_timeline") or result.get("timeline_path")
    candidates = [Path(value)] if isinstance(value, str) else []
    candidates += sorted(output_dir.glob("*.chronoscope.otio"))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise TimelineNotFoundError(
        f"the engine rendered {name!r} but named no new timeline file (looked for {value!r} and "
        f"{output_dir}/*.chronoscope.otio)"
    )


def rendered_media(result: dict[str, Any]) -> list[str]:
    """Rendered files named in a ``render_timeline`` summary (top level or per clip)."""
    paths: list[str] = []
    records = [result] + [c for c in result.get("clips") or [] if isinstance(c, dict)]
    for record in records:
        for key in ("media", "output", "outputs", "files"):
            value = record.get(key)
            if isinstance(value, str):
                paths.append(value)
            elif isinstance(value, list):
                paths.extend(v for v in value if isinstance(v, str))
    return list(dict.fromkeys(paths))
