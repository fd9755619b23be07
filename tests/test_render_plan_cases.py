"""`chronoscope render` on the cases an audit found mishandled: a speed change on a compound clip,
metadata lost when a clip is re-pointed at its render, a retimed generator, identical clips rendered
more than once, clip names cut short in file names, and unnamed tracks in messages."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import opentimelineio as otio
import pytest
from media_factory import render_clip

from engine.cli import main
from engine.render import render_timeline
from engine.timeline import results_of

RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange
RATE = 24
MEDIA_FRAMES = 48


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    """A 2-second 24 fps clip (64x48)."""
    path = tmp_path_factory.mktemp("plan-cases-media") / "m24.mp4"
    return render_clip(path, rate=RATE, frame_count=MEDIA_FRAMES)


def _reference(media: Path, **fields) -> otio.schema.ExternalReference:
    return otio.schema.ExternalReference(
        target_url=str(media), available_range=TR(RT(0, RATE), RT(MEDIA_FRAMES, RATE)), **fields
    )


def _clip(name: str, media: Path, start: int, frames: int, scalar: float | None = 0.5) -> otio.schema.Clip:
    clip = otio.schema.Clip(
        name=name, media_reference=_reference(media), source_range=TR(RT(start, RATE), RT(frames, RATE))
    )
    if scalar is not None:
        clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=scalar))
    return clip


def _write(tmp_path: Path, *tracks: otio.schema.Track) -> Path:
    timeline = otio.schema.Timeline(name="cases", global_start_time=RT(0, RATE))
    for track in tracks:
        timeline.tracks.append(track)
    path = tmp_path / "cases.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


def _render(cut: Path, outdir: Path, **options):
    return render_timeline(cut, outdir, model="blend", codec="h264", **options)


def test_a_speed_change_on_a_compound_clip_is_not_rendered_and_the_render_fails(tmp_path, media, capsys):
    compound = otio.schema.Stack(name="compound slowed", source_range=TR(RT(0, RATE), RT(12, RATE)))
    compound.append(otio.schema.Track(name="inner", children=[_clip("inner real", media, 4, 12, None)]))
    compound.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    cut = _write(tmp_path, otio.schema.Track(name="V1", children=[compound]))

    summary = _render(cut, tmp_path / "out")
    assert not summary.ok
    (clip,) = summary.clips
    assert (clip["clip_name"], clip["track"], clip["index_in_track"]) == ("compound slowed", "V1", 0)
    assert (clip["status"], clip["speed"]) == ("cannot_render", "1/2")
    assert "a speed change on a compound clip is not rendered" in clip["reason"]
    assert "flatten it" in clip["reason"]
    # the command says so too: exit status 1, ok false
    out = tmp_path / "cli"
    assert main(["render", str(cut), "-o", str(out), "--no-engine", "--json", "--model", "blend"]) == 1
    assert json.loads(capsys.readouterr().out)["ok"] is False


def test_a_repointed_clip_keeps_what_describes_the_shot_and_records_the_original(tmp_path, media):
    reference_metadata = {
        "Resolve_OTIO": {"Reel": "A001", "Clip Color": "Orange", "Start TC": "01:00:00:00", "Codec": "H.264"},
        "vendor": {"file_path": str(media), "Scene": "12"},
    }
    reference = _reference(media, metadata=reference_metadata)
    reference.name = "m24 ref"
    clip = otio.schema.Clip(
        name="whole", media_reference=reference, source_range=TR(RT(0, RATE), RT(8, RATE))
    )
    warp_metadata = {"Resolve_OTIO": {"Effect": "Retime", "Speed": 50}}
    clip.effects.append(otio.schema.Effect(name="blur", effect_name="Blur"))
    clip.effects.append(otio.schema.LinearTimeWarp(name="slow", time_scalar=0.5, metadata=warp_metadata))
    original_json = json.loads(otio.adapters.write_to_string(reference))
    cut = _write(tmp_path, otio.schema.Track(name="V1", children=[clip]))

    summary = _render(cut, tmp_path / "out")
    assert summary.ok and summary.count("rendered") == 1
    new = otio.adapters.read_from_file(summary.timeline_path).find_clips()[0]

    # the reel, colour and scene stay true of the render; a source timecode, codec or path do not
    assert json.loads(json.dumps(dict(new.media_reference.metadata), default=dict)) == {
        "Resolve_OTIO": {"Reel": "A001", "Clip Color": "Orange"},
        "vendor": {"Scene": "12"},
    }
    retimed_from = results_of(new)["retimed_from"]
    recorded = retimed_from["media_reference"]
    assert recorded["name"] == "m24 ref" and recorded["metadata"] == reference_metadata
    # the record rebuilds the original reference exactly
    start, duration = recorded["available_range"]["start_time"], recorded["available_range"]["duration"]
    rebuilt = otio.schema.ExternalReference(
        target_url=recorded["target_url"],
        available_range=TR(RT(start["value"], start["rate"]), RT(duration["value"], duration["rate"])),
        metadata=recorded["metadata"],
    )
    rebuilt.name = recorded["name"]
    assert recorded["schema"] == "ExternalReference.1"
    assert json.loads(otio.adapters.write_to_string(rebuilt)) == original_json
    (warp,) = retimed_from["time_warps"]
    assert warp["metadata"] == warp_metadata
    assert (warp["schema"], warp["name"], warp["time_scalar"], warp["effect_index"]) == (
        "LinearTimeWarp.1",
        "slow",
        0.5,
        1,
    )
    assert [effect.name for effect in new.effects] == ["blur"]


def test_a_retimed_generator_passes_through_and_the_render_succeeds(tmp_path, media):
    generator = otio.schema.Clip(
        name="colour",
        media_reference=otio.schema.GeneratorReference(
            generator_kind="SolidColor", available_range=TR(RT(0, RATE), RT(24, RATE))
        ),
        source_range=TR(RT(0, RATE), RT(12, RATE)),
    )
    generator.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    cut = _write(tmp_path, otio.schema.Track(name="V1", children=[generator, _clip("slow", media, 0, 6)]))

    summary = _render(cut, tmp_path / "out")
    assert summary.ok
    statuses = [(c["clip_name"], c["status"], c["speed"]) for c in summary.clips]
    assert statuses == [("colour", "pass_through", "1/2"), ("slow", "rendered", "1/2")]
    assert "SolidColor" in summary.clips[0]["reason"]
    kept = otio.adapters.read_from_file(summary.timeline_path).tracks[0][0]
    assert kept.media_reference.schema_name() == "GeneratorReference"
    assert [effect.time_scalar for effect in kept.effects] == [0.5]


def test_identical_clips_share_one_render_and_each_keeps_its_record(tmp_path, media):
    track = otio.schema.Track(
        name="V1",
        children=[_clip("first", media, 4, 6), _clip("same", media, 4, 6), _clip("same", media, 4, 6)],
    )
    cut = _write(tmp_path, track)
    outdir = tmp_path / "out"
    rendered: list[str] = []

    summary = _render(cut, outdir, on_segment_done=lambda spec, status: rendered.append(status))
    assert summary.ok and rendered == ["rendered"]
    (output,) = outdir.glob("*.mp4")
    assert output.name.startswith("V1_000_first_")
    assert [(c["index_in_track"], c["status"], c["output"]) for c in summary.clips] == [
        (0, "rendered", str(output)),
        (1, "rendered", str(output)),
        (2, "rendered", str(output)),
    ]
    assert "the same frames as V1 #0 'first'" in summary.clips[2]["reason"]
    new = otio.adapters.read_from_file(summary.timeline_path)
    assert {Path(clip.media_reference.target_url) for clip in new.find_clips()} == {output.resolve()}

    again: list[str] = []
    resumed = _render(cut, outdir, on_segment_done=lambda spec, status: again.append(status))
    assert again == ["resumed"]
    assert [c["status"] for c in resumed.clips] == ["resumed"] * 3


def test_render_names_keep_the_whole_clip_name_made_safe(tmp_path, media):
    names = ["A/B:c d é 🎬", "Interview 12.5 fps", "A002_C001.mov", "Cafe\u0301 shot.v2", "é" * 250]
    track = otio.schema.Track(name="V1", children=[_clip(name, media, i, 6) for i, name in enumerate(names)])
    summary = _render(_write(tmp_path, track), tmp_path / "out")
    assert summary.ok
    stems = [Path(c["output"]).name.rsplit("_", 1)[0] for c in summary.clips]
    assert stems[:4] == [
        "V1_000_A_B_c_d_é",
        "V1_001_Interview_12_5_fps",
        "V1_002_A002_C001",
        unicodedata.normalize("NFC", "V1_003_Cafe\u0301_shot_v2"),
    ]
    assert stems[4] == "V1_004_" + "é" * 60  # cut at 120 bytes of UTF-8, between characters
    for clip in summary.clips:
        assert Path(clip["output"]).exists()
        assert len(Path(clip["output"] + ".chronoscope.json").name.encode()) <= 255


def test_an_unnamed_track_is_named_by_kind_and_number(tmp_path, media):
    inner = otio.schema.Track(children=[_clip("in", media, 0, 6, None)])
    compound = otio.schema.Stack(name="inner", children=[inner])
    cut = _write(
        tmp_path,
        otio.schema.Track(name="V1", children=[_clip("plain", media, 0, 6, None)]),
        otio.schema.Track(children=[otio.schema.Gap(duration=RT(6, RATE)), compound]),
    )
    summary = _render(cut, tmp_path / "out")
    assert summary.kept_effects == ["V2 #1: nested Stack 'inner': not rendered"]


def _hfr_timeline(tmp_path: Path, media: Path, media_rate: int, timeline_rate: int, clips) -> Path:
    """A timeline at ``timeline_rate`` of clips of ``media`` (``media_rate`` fps, 48 frames):
    ``clips`` = [(name, first source frame, timeline frames, time scalar)]."""
    track = otio.schema.Track(name="V1")
    for name, start, frames, scalar in clips:
        clip = otio.schema.Clip(
            name=name,
            media_reference=otio.schema.ExternalReference(
                target_url=str(media), available_range=TR(RT(0, media_rate), RT(48, media_rate))
            ),
            source_range=TR(RT(start, media_rate), RT(frames, timeline_rate)),
        )
        clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=scalar))
        track.append(clip)
    timeline = otio.schema.Timeline(name="hfr", global_start_time=RT(0, timeline_rate))
    timeline.tracks.append(track)
    path = tmp_path / "hfr.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


@pytest.mark.parametrize(
    ("media_rate", "timeline_rate", "scalar", "start", "passes"),
    [
        (50, 25, 0.5, 4, True),  # 50p at 50 % on 25p: every timeline frame is a camera frame
        (120, 24, 0.2, 6, True),  # 120p at 20 % on 24p (genuine high-frame-rate slow motion)
        (120, 24, 0.4, 6, True),  # every other camera frame: still nothing to make
        (50, 25, 0.4, 4, False),  # 0.8 camera frames a timeline frame: frames to make
        (50, 24, 0.5, 4, False),  # 25/24 camera frames a timeline frame: frames to make
        (50, 25, 0.5, 4.5, False),  # starts between two camera frames
        (24, 24, 0.5, 4, False),  # ordinary slow motion
    ],
)
def test_a_slowed_clip_that_plays_its_own_frames_passes_through(
    tmp_path, media_rate, timeline_rate, scalar, start, passes
):
    """A clip is rendered when frames must be made, not because its speed is below 100 %: 50 fps
    media at 50 % on a 25 fps timeline shows the camera's own frames, so it keeps pointing at the
    camera original with its speed change, with a reason an editor understands (the plan that
    ``chronoscope render`` and the Resolve bridge share)."""
    from engine.render.plan import plan_render

    media = render_clip(tmp_path / f"m{media_rate}.mp4", rate=media_rate, frame_count=48)
    cut = _hfr_timeline(tmp_path, media, media_rate, timeline_rate, [("shot", start, 12, scalar)])
    (entry,) = plan_render(otio.adapters.read_from_file(str(cut)), tmp_path / "plan").entries
    if passes:
        reason = "plays its own frames at this speed: nothing to make"
        assert (entry.action, entry.reason, entry.spec) == ("pass_through", reason, None)
    else:
        assert entry.action == "render" and entry.spec is not None


def test_render_passes_high_frame_rate_slow_motion_through_untouched(tmp_path):
    """``chronoscope render`` on 50p footage at 50 % on a 25p timeline, beside a clip that needs
    frames made: the first is not re-encoded (no file is written for it, and the new timeline
    still points at the camera file, slowed as it was); the second is rendered."""
    media = render_clip(tmp_path / "m50.mp4", rate=50, frame_count=48)
    cut = _hfr_timeline(
        tmp_path, media, 50, 25, [("camera slow motion", 4, 12, 0.5), ("made slow motion", 4, 12, 0.4)]
    )
    outdir = tmp_path / "out"
    summary = _render(cut, outdir)
    assert summary.ok
    statuses = [(c["clip_name"], c["status"], c["reason"]) for c in summary.clips]
    assert statuses[0] == (
        "camera slow motion",
        "pass_through",
        "plays its own frames at this speed: nothing to make",
    )
    assert statuses[1][:2] == ("made slow motion", "rendered")
    assert [path.name.split("_")[2] for path in outdir.glob("*.mp4")] == ["made"]
    kept = otio.adapters.read_from_file(summary.timeline_path).tracks[0][0]
    assert Path(kept.media_reference.target_url) == media
    assert [effect.time_scalar for effect in kept.effects] == [0.5]


def _resolve_effect(name: str, enabled: bool) -> otio.schema.Effect:
    """A standard effect as Resolve writes it on every clip (switched on or not)."""
    return otio.schema.Effect(
        name="",
        effect_name="Resolve Effect",
        metadata={"Resolve_OTIO": {"Effect Name": name, "Name": name, "Enabled": enabled, "Parameters": []}},
    )


def test_kept_effects_name_what_a_rendered_clip_keeps_and_only_that(tmp_path, media):
    slowed = _clip("slowed", media, 0, 8)
    still_real_time = _clip("real time", media, 10, 8, scalar=None)
    for clip in (slowed, still_real_time):
        clip.effects.extend([_resolve_effect("Transform", True), _resolve_effect("Cropping", False)])
    cut = _write(tmp_path, otio.schema.Track(name="V1", children=[slowed, still_real_time]))
    summary = _render(cut, tmp_path / "out")
    assert [c["status"] for c in summary.clips] == ["rendered", "pass_through"]
    # the render replaces only the slowed clip's media: its Transform still applies on top of it;
    # the switched-off Cropping and the real-time clip's effects are nothing to say
    assert summary.kept_effects == [
        "clip 'slowed' (V1 #0): effect 'Transform' kept in the timeline, not applied by the render"
    ]
