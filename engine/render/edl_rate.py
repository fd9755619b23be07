"""An EDL read at the rate of its media, when nobody said which.

An EDL does not say its frame rate, and its timecodes only count frames: 24 a second for a 24 fps
cut and for a 23.976 one alike (30 for 30 and 29.97 non-drop). Read at the default 24 against
23.976 camera files, source timecodes were taken as seconds at 24 fps and converted to the files'
clock: a clip 10 minutes into its file showed frames 14 frames early, and the renders ran at 24 fps
for a 23.976 cut. So when no rate is given, ``read_edl_at_media_rate`` looks at the media the EDL
names (their headers only): if they run at the NTSC rate that counts the frames the EDL's rate
counts (24000/1001 for 24, 30000/1001 for 30, 60000/1001 for 60), all of them that run near it,
the EDL is read at that rate, and says so. A rate given (``--rate``) is always taken as given;
one that counts the media's frames at another clock (24 given, 23.976 media) is warned about.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from engine.errors import ChronoscopeError
from engine.media import probe
from engine.timeline import PathMap, list_segments, media_base_dir, read_timeline, timeline_rate
from engine.timeline.io import EDL_DEFAULT_RATE, adapter_for

log = logging.getLogger(__name__)

_MEDIA_LOOKED_AT = 8
"""Media files whose headers are read to find an EDL's rate (an EDL of one camera's files agrees
after a few; a long EDL is not probed file by file)."""


def read_edl_at_media_rate(
    path: Path | str,
    rate: float | Fraction | None,
    path_map: PathMap | None = None,
    *,
    name: str | None = None,
) -> otio.schema.Timeline:
    """``read_timeline(path, rate=rate, name=name)``; for an EDL read without a rate, at its
    media's NTSC rate when they run at one (module doc)."""
    path = Path(path)
    timeline = read_timeline(path, rate=rate, name=name)
    if adapter_for(path) != "cmx_3600":
        return timeline
    counted = timeline_rate(timeline)
    media = _media_rates(timeline, path, path_map)
    ntsc = Fraction(round(counted) * 1000, 1001)
    near = {found for found in media if round(found) == round(counted)}
    if rate is not None:
        if near and counted not in near:
            log.warning(
                "%s is read at %s fps as given, but its media run at %s fps: its source timecodes are "
                "converted through the files' clock; if the cut ran at the media's rate, give --rate %s",
                path.name, _rate_text(counted), ", ".join(sorted(_rate_text(r) for r in near)),
                _rate_text(next(iter(near))) if len(near) == 1 else "with the cut's rate",
            )
        return timeline
    if counted != EDL_DEFAULT_RATE or near != {ntsc}:
        return timeline
    log.info(
        "%s: read at %s fps, the rate of its media (an EDL does not say its rate; give --rate to choose)",
        path.name, _rate_text(ntsc),
    )
    return read_timeline(path, rate=ntsc)


def _media_rates(timeline: otio.schema.Timeline, path: Path, path_map: PathMap | None) -> set[Fraction]:
    """The frame rates of the first media files the EDL names that are here (headers only)."""
    rates: set[Fraction] = set()
    seen: set[Path] = set()
    base = media_base_dir(path)
    listed = list_segments(
        timeline, base_dir=base, path_map=path_map, check_time_warps=False, warn_nested=False
    )
    for segment in listed:
        media = Path(segment.media_path) if segment.media_path else None
        if media is None or media in seen or segment.media is None or not segment.media.exists:
            continue
        seen.add(media)
        try:
            rates.add(Fraction(probe(media, scan_packets=False).video_stream.rate))
        except (ChronoscopeError, AttributeError):
            continue  # unreadable or no picture: its clip fails with the reader's own message
        if len(seen) >= _MEDIA_LOOKED_AT:
            break
    return rates


def _rate_text(rate: Fraction) -> str:
    """``23.976``, ``24``: as --rate takes it."""
    return f"{float(rate):.3f}".rstrip("0").rstrip(".")
