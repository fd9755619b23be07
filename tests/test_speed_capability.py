"""The ``detect_speed`` engine capability: registration, request checks, and the job's result
(for a path, and for an OTIO clip whose metadata["chronoscope"] receives the result)."""

from __future__ import annotations

import json

import opentimelineio as otio
import pytest

from engine.errors import JobCancelledError, MediaNotFoundError, TimelineError, UnsupportedOptionError
from engine.scenes import random_scene, render_frames, write_video
from engine.server.handlers import HandlerRegistry
from engine.server.jobs import CancelToken, JobContext
from engine.server.protocol import Session
from engine.speed.capability import register_handlers

SESSION = Session("0123456789abcdef")


def request(content: dict):
    return SESSION.message("detect_speed", content)


def run_job(work) -> tuple[dict, list]:
    events: list = []
    context = JobContext("job-1", CancelToken(), lambda *event: events.append(event))
    return work(context), events


@pytest.fixture
def clip_path(tmp_path):
    spec = random_scene(3, width=160, height=96, capture_fps=30, duration_frames=40)
    path = tmp_path / "scene clip.mp4"
    write_video(render_frames(spec), path, 30, crf=20)
    return path


@pytest.fixture
def registry():
    registry = HandlerRegistry()
    register_handlers(registry)
    return registry


def test_registers_a_job_handler(registry):
    assert "detect_speed" in registry.available()
    assert registry.get("detect_speed").job is not None


def test_path_request_returns_the_detect_json(registry, clip_path):
    work = registry.get("detect_speed").job(request({"path": str(clip_path)}))
    result, events = run_job(work)
    assert result["path"] == str(clip_path)
    assert result["speed"]["class"] in ("realtime", "slowmo", "synthetic_slowmo", "sped_up", "still")
    assert result["speed"]["segments"]
    assert result["speed"]["evidence"]["audio"]["status"] != "off"
    assert events
    quiet, _ = run_job(registry.get("detect_speed").job(request({"path": str(clip_path), "audio": False})))
    assert quiet["speed"]["evidence"]["audio"]["status"] == "off"


def _otio_clip(path) -> otio.schema.Clip:
    return otio.schema.Clip(
        name="shot 1",
        media_reference=otio.schema.ExternalReference(target_url=path.as_uri()),
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, 30), otio.opentime.RationalTime(40, 30)
        ),
    )


@pytest.mark.parametrize("form", ["path", "clip"])
def test_a_running_analysis_stops_when_cancelled(registry, clip_path, form):
    """Cancelled once it has started (its first progress event), the job stops at the next probe
    instead of running to the end: for a media path and for an OTIO clip alike."""
    if form == "path":
        content = {"path": str(clip_path)}
    else:
        content = {"clip": otio.adapters.write_to_string(_otio_clip(clip_path), "otio_json")}
    token = CancelToken()

    def publish(job_id, event_type, event):
        if event_type == "progress":
            token.cancel()

    context = JobContext("job-1", token, publish)
    with pytest.raises(JobCancelledError):
        registry.get("detect_speed").job(request(content))(context)


def test_otio_clip_gets_the_result_in_its_metadata(registry, clip_path):
    clip = otio.schema.Clip(
        name="shot 1",
        media_reference=otio.schema.ExternalReference(target_url=clip_path.as_uri()),
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, 30), otio.opentime.RationalTime(40, 30)
        ),
    )
    content = {"clip": otio.adapters.write_to_string(clip, "otio_json")}
    result, _ = run_job(registry.get("detect_speed").job(request(content)))
    returned = otio.adapters.read_from_string(json.dumps(result["otio"]), "otio_json")
    assert isinstance(returned, otio.schema.Clip)
    assert returned.source_range == clip.source_range
    speed = returned.metadata["chronoscope"]["speed"]
    assert speed["class"] == result["clips"][0]["speed"]["class"]
    assert result["clips"][0]["path"] == str(clip_path)


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        ({}, UnsupportedOptionError, "exactly one of 'path'"),
        ({"path": "/no/such/clip.mov"}, MediaNotFoundError, "/no/such/clip.mov"),
        ({"path": "x", "density": 2}, UnsupportedOptionError, "density"),
        ({"path": "x", "audio": "yes"}, UnsupportedOptionError, "audio 'yes' is not true or false"),
        ({"clip": "{not json"}, TimelineError, "not OTIO JSON"),
        ({"clip": {"OTIO_SCHEMA": "Marker.2", "name": "m"}}, TimelineError, "not OTIO JSON"),
        (
            {"clip": json.loads(otio.adapters.write_to_string(otio.schema.Marker(name="m")))},
            TimelineError,
            "send a Clip",
        ),
    ],
)
def test_bad_requests_are_refused_before_queueing(registry, content, error, message):
    with pytest.raises(error, match=message):
        registry.get("detect_speed").job(request(content))
