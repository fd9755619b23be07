"""A ``retime`` request with a ``segment`` writes only where a plain retime may: never over its
source (by name, symbolic or hard link), never over a file this render did not make unless told
to. Against a real engine process over ipc://, with the shipped render capability."""

from __future__ import annotations

import hashlib
import os
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
from media_factory import render_clip
from process_control import background_engine

from engine.errors import OutputExistsError, UnsupportedOptionError
from engine.render.plan import plan_render
from engine.retime import sidecar_path
from engine.server.client import EngineClient

pytestmark = pytest.mark.skipif(os.name == "nt", reason="ipc:// and symbolic links")


@pytest.fixture(scope="module")
def engine_home(tmp_path_factory):
    """A background engine process with its own home (journal, log, runtime folder)."""
    home = tmp_path_factory.mktemp("segment-engine")
    with background_engine(home, ["engine.render.capability"]) as (connection, _):
        yield connection


@pytest.fixture
def client(engine_home):
    with EngineClient(engine_home) as client:
        yield client


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return render_clip(
        tmp_path_factory.mktemp("segment-media") / "shot.mp4", rate=Fraction(25), frame_count=8
    )


def _segment(clip: Path, outdir: Path) -> dict:
    """The segment a timeline render sends for a 4-frame piece of ``clip`` at half speed."""
    piece = otio.schema.Clip(
        name="piece",
        media_reference=otio.schema.ExternalReference(target_url=str(clip)),
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, 25), otio.opentime.RationalTime(4, 25)
        ),
    )
    piece.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    track.append(piece)
    plan = plan_render(otio.schema.Timeline(name="cut", tracks=[track]), outdir, model="blend", codec="h264")
    (entry,) = plan.to_render
    return entry.spec.to_dict()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_segment_never_writes_over_a_file_it_did_not_make(client, clip, tmp_path):
    spec = _segment(clip, tmp_path)
    precious = tmp_path / "users-edit.mp4"
    precious.write_bytes(b"the user's own edit, not made by chronoscope")
    with pytest.raises(OutputExistsError, match="was not rendered from this segment"):
        client.submit("retime", {"segment": {**spec, "output": str(precious)}})
    # a sidecar of this very segment beside it, left from before the file was replaced by the user's
    sidecar_path(precious).write_text(
        '{"source": "x", "output": "x", "content_hash": "%s", "output_bytes": 999999}' % spec["content_hash"]
    )
    with pytest.raises(OutputExistsError, match="was not rendered from this segment"):
        client.submit("retime", {"segment": {**spec, "output": str(precious)}})
    assert precious.read_bytes() == b"the user's own edit, not made by chronoscope"


def test_a_segment_never_writes_over_its_source(client, clip, tmp_path):
    source_digest = _digest(clip)
    spec = _segment(clip, tmp_path)
    link = tmp_path / "link.mp4"
    link.symlink_to(clip)
    hard = tmp_path / "hard.mp4"
    os.link(clip, hard)
    for output in (clip, link, hard):
        for overwrite in (False, True):
            with pytest.raises(UnsupportedOptionError, match="is its source"):
                client.submit("retime", {"segment": {**spec, "output": str(output)}, "overwrite": overwrite})
    assert _digest(clip) == source_digest


def test_a_segment_renders_to_a_new_file_and_again_over_its_own_render(client, clip, tmp_path):
    spec = _segment(clip, tmp_path)
    output = Path(spec["output"])
    first = client.run_job("retime", {"segment": spec}, timeout_s=120)
    assert output.is_file() and first["output"] == str(output)
    # the same segment again (a resumed render): its own finished file is taken, not refused
    again = client.run_job("retime", {"segment": spec}, timeout_s=120)
    assert again["report"]["frames_written"] == first["report"]["frames_written"]
    # a file the user asked to replace may be replaced
    other = tmp_path / "replace-me.mp4"
    other.write_bytes(b"old")
    client.run_job("retime", {"segment": {**spec, "output": str(other)}, "overwrite": True}, timeout_s=120)
    assert other.read_bytes()[:4] != b"old"


def test_a_segment_request_with_unknown_fields_or_bad_values_is_refused(client, clip, tmp_path):
    spec = _segment(clip, tmp_path)
    with pytest.raises(UnsupportedOptionError, match="unknown field 'overwrit'; valid: job_id, overwrite"):
        client.submit("retime", {"segment": spec, "overwrit": True})
    with pytest.raises(UnsupportedOptionError, match="segment output_frames = -1"):
        client.submit("retime", {"segment": {**spec, "output_frames": -1}})
    with pytest.raises(UnsupportedOptionError, match="segment codec 'nope' is not supported"):
        client.submit("retime", {"segment": {**spec, "codec": "nope"}})
    assert not Path(spec["output"]).exists()
