"""The engine capability ``detect_speed``: a job that runs ``detect_speed`` on a clip.

Request content (one of):

    {"path": "/media/clip.mov", "density": 0.08, "audio": true}
    {"clip": <OTIO Clip JSON, or a Timeline / Stack / Track JSON holding clips>}

``density`` (default 0.08) and ``audio`` (default true: read the sound for pitch shifts, as
``chronoscope detect`` does; false is ``--no-audio``) go with either form.

Result (JSON-ready): for a path, ``{"path": ..., "speed": <the detect JSON>}``; for OTIO input,
``{"clips": [{"name", "path", "speed"}], "otio": <the same OTIO JSON with each clip's result
under metadata["chronoscope"]["speed"]>}``. The detect JSON is ``DetectionResult.to_json``
(the shape of ``chronoscope detect --json``). Media named by a clip is analysed whole; the
clip's ``source_range`` is kept in the OTIO for the caller.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import opentimelineio as otio

from engine.errors import MediaNotFoundError, TimelineError, UnsupportedOptionError
from engine.media._open import check_media_path
from engine.speed.detect import DEFAULT_DENSITY, detect_speed
from engine.timeline.guard import check_json_depth
from engine.timeline.paths import decode_target_url

MSG_TYPE = "detect_speed"
METADATA_KEY = "chronoscope"


def _density(content: dict[str, Any]) -> float:
    value = content.get("density", DEFAULT_DENSITY)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < float(value) <= 1:
        raise UnsupportedOptionError(f"density {value!r} is not a number in (0, 1]; 0.08 is the default")
    return float(value)


def _audio(content: dict[str, Any]) -> bool:
    value = content.get("audio", True)
    if not isinstance(value, bool):
        raise UnsupportedOptionError(f"audio {value!r} is not true or false (true reads the sound)")
    return value


def _clip_path(clip: otio.schema.Clip) -> Path:
    reference = clip.media_reference
    target = getattr(reference, "target_url", None)
    if not target:
        raise MediaNotFoundError(f"clip {clip.name!r} has no external media reference to analyse")
    path = Path(decode_target_url(target))
    if not path.is_file():
        raise MediaNotFoundError(f"clip {clip.name!r}: media file not found: {path}")
    return path


def _absolute_path(value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise UnsupportedOptionError(f"path must name a media file (an absolute path), got {value!r}")
    if not Path(value).is_absolute():
        raise UnsupportedOptionError(
            f"path {value!r} is relative; the engine runs elsewhere, give an absolute path"
        )
    return Path(value)


def _parse_otio(value: Any) -> otio.core.SerializableObject:
    text = value if isinstance(value, str) else json.dumps(value)
    check_json_depth(text, "'clip'")
    try:
        return otio.adapters.read_from_string(text, "otio_json")
    except (otio.exceptions.OTIOError, ValueError, KeyError, TypeError) as error:
        raise TimelineError(f"'clip' is not OTIO JSON (a Clip or Timeline): {error}") from None


def _clips_of(obj: otio.core.SerializableObject) -> list[otio.schema.Clip]:
    if isinstance(obj, otio.schema.Clip):
        return [obj]
    if hasattr(obj, "find_clips"):
        return list(obj.find_clips())
    raise TimelineError(f"'clip' holds a {type(obj).__name__}; send a Clip, Track, Stack or Timeline")


def make_detect_job(message) -> Any:
    """Check the request now (a bad one is the reply, nothing is queued); return the job's work."""
    content = message.content
    density = _density(content)
    audio = _audio(content)
    if ("path" in content) == ("clip" in content):
        raise UnsupportedOptionError(
            "detect_speed needs exactly one of 'path' (a media file) and 'clip' (OTIO JSON)"
        )
    if "path" in content:
        path = check_media_path(_absolute_path(content["path"]))

        def work_path(context) -> dict[str, Any]:
            context.progress(0, 1, f"detecting speed of {path.name}")
            result = detect_speed(
                path, density=density, progress=lambda done: context.check_cancelled(), audio=audio
            )
            context.progress(1, 1, "done")
            return {"path": str(path), "speed": result.to_json()}

        return work_path

    otio_object = _parse_otio(content["clip"])
    clips = _clips_of(otio_object)
    if not clips:
        raise TimelineError("the OTIO sent holds no clips to analyse")
    paths = [_clip_path(clip) for clip in clips]

    def work_clips(context) -> dict[str, Any]:
        results = []
        for number, (clip, path) in enumerate(zip(clips, paths, strict=True)):
            context.check_cancelled()
            context.progress(number, len(clips), f"detecting speed of {clip.name or path.name}")
            speed = detect_speed(
                path, density=density, progress=lambda done: context.check_cancelled(), audio=audio
            ).to_json()
            metadata = dict(clip.metadata.get(METADATA_KEY, {}))
            metadata["speed"] = speed
            clip.metadata[METADATA_KEY] = metadata
            results.append({"name": clip.name, "path": str(path), "speed": speed})
        context.progress(len(clips), len(clips), "done")
        return {"clips": results, "otio": json.loads(otio.adapters.write_to_string(otio_object, "otio_json"))}

    return work_clips


def register_handlers(registry) -> None:
    """Install ``detect_speed`` in an engine's handler registry."""
    from engine.server.handlers import Handler

    registry.register(
        Handler(
            MSG_TYPE,
            job=make_detect_job,
            description="playback speed of a clip, per segment, with evidence",
            fields=("path", "clip", "density", "audio"),
        )
    )
