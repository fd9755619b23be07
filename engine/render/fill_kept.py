"""Fills that build up: what an earlier fill of the same timeline into the same folder filled.

A fill writes its new timeline (``NAME.chronoscope.otio``) from the timeline it reads, so a second
fill of that timeline into that folder would rebuild it without the gaps the first one filled.
Instead, as a render resumes what its summary and content hashes vouch for
(``engine.render.outputs``), a fill reads the summary the earlier fill wrote there
(``NAME.fill-summary.json``, which the folder's claim already checked was written by a fill of
this timeline file) and carries its filled gaps into the new timeline, when:

- the timeline reads as it did then: the summary records ``timeline_content_hash``, a SHA-256 of
  the timeline as read (``timeline_content_hash``: the file's content, the EDL rate and the path
  map all count). A timeline that changed since is not mixed with fills made for its old
  content: none is kept, and ``EarlierFills.note`` says so;
- each gap's fill media is still there and matches: its content hash, made again from the gap's
  neighbours now and the model, codec and quality the summary records, is the one its sidecar
  carries (``engine.render.fill``; a fill whose sources changed, or whose media is gone, is named
  in a note and not kept).

A gap named again is filled again, and that fill replaces the earlier one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import opentimelineio as otio

log = logging.getLogger(__name__)

FILLED_STATUSES = ("filled", "resumed", "kept")
"""A gap with one of these statuses in a fill summary has fill media in the new timeline."""
KEPT_REASON = "filled by an earlier fill of this timeline into this folder"


@dataclass(frozen=True)
class EarlierFills:
    """The gaps an earlier fill into the folder filled (its summary's records), or why none is kept."""

    records: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""


def timeline_content_hash(timeline: otio.schema.Timeline) -> str:
    """SHA-256 of ``timeline`` as read (its OTIO JSON): the same for the same file read the same way."""
    return hashlib.sha256(timeline.to_json_string().encode("utf-8")).hexdigest()


def gap_name(record: dict[str, Any]) -> str:
    """``V1:2`` for a gap's record in a fill summary."""
    return f"{record.get('track')}:{record.get('index_in_track')}"


def earlier_fills(summary_file: Path, timeline_path: Path, content_hash: str) -> EarlierFills:
    """The filled gaps that the fill summary ``summary_file`` lists, when it was written for the
    timeline as it reads now (``content_hash``); none, and a note saying why, when it was not.
    No summary (or one that cannot be read): none, no note."""
    try:
        data = json.loads(Path(summary_file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return EarlierFills()
    gaps = data.get("gaps") if isinstance(data, dict) else None
    if not isinstance(gaps, list):
        return EarlierFills()
    filled = [g for g in gaps if isinstance(g, dict) and g.get("status") in FILLED_STATUSES]
    if not filled:
        return EarlierFills()
    if data.get("timeline_content_hash") != content_hash:
        names = ", ".join(gap_name(record) for record in filled)
        what = (
            "differs from what the earlier fill into this folder read (the file changed, or its --rate "
            "or --map differ)"
            if data.get("timeline_content_hash")
            else "may differ from what the earlier fill into this folder read (its summary, from an "
            "older Chronoscope, does not record it)"
        )
        note = (
            f"{Path(timeline_path).name} {what}: the gaps that fill filled ({names}) are not in the new "
            "timeline; name them with --gap to fill them for this timeline"
        )
        log.warning("%s", note)
        return EarlierFills(note=note)
    return EarlierFills(records=filled)
