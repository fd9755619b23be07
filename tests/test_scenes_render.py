"""Procedural scenes: determinism, exact motion under subsampling, motion blur from the shutter,
occlusion, bounces, photo textures, validation and encoding."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from engine.errors import MediaNotFoundError, SceneSpecError
from engine.scenes import (
    ObjectSpec,
    SceneRenderer,
    SceneSpec,
    TextureSpec,
    h264_roundtrip,
    random_scene,
    render_frames,
    subsample,
    write_video,
)


def _one_disc(
    fps: int, velocity_px_s: float, shutter_angle_deg: float = 180.0, frames: int = 24, objects: bool = True
) -> SceneSpec:
    disc = ObjectSpec(
        shape="disc",
        size_px=10.0,
        position_px=(40.0, 60.0),
        velocity_px_s=(velocity_px_s, 0.0),
        gravity=False,
        texture=TextureSpec("checker", 4.0),
    )
    return SceneSpec(
        width=240,
        height=120,
        capture_fps=fps,
        duration_frames=frames,
        shutter_angle_deg=shutter_angle_deg,
        objects=[disc] if objects else [],
        noise_sigma=0.0,
        shot_noise_gain=0.0,
        seed=7,
        subframes=64,
    )


def _object_mask(spec: SceneSpec, frame_index: int) -> np.ndarray:
    """Where the object covers the picture: difference to the same scene without the object (alpha)."""
    with_object = SceneRenderer(spec).render_linear(frame_index)
    empty = SceneRenderer(SceneSpec(**{**spec.__dict__, "objects": []})).render_linear(frame_index)
    return np.abs(with_object - empty).max(axis=2) > 1.0


def _centroid_x(mask: np.ndarray) -> float:
    return float(np.nonzero(mask)[1].mean())


def test_same_seed_same_frames_other_seed_other_frames():
    spec = random_scene(11, width=96, height=64, capture_fps=240, duration_frames=6)
    first = list(render_frames(spec))
    again = list(render_frames(random_scene(11, width=96, height=64, capture_fps=240, duration_frames=6)))
    other = list(render_frames(random_scene(12, width=96, height=64, capture_fps=240, duration_frames=6)))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])
    assert first[0].shape == (64, 96, 3) and first[0].dtype == np.uint8


@pytest.mark.parametrize("k", [2, 4, 8])
def test_subsampling_by_k_multiplies_displacement_by_k(k):
    spec = _one_disc(fps=240, velocity_px_s=240.0, frames=4 * k + 1)  # 1 px per captured frame
    renderer = SceneRenderer(spec)
    indices = list(subsample(range(spec.duration_frames), k))
    positions = [_centroid_x(_object_mask(spec, index)) for index in indices[:4]]
    steps = np.diff(positions)
    assert steps == pytest.approx([k] * len(steps), abs=0.25)
    truth = [
        renderer.object_states(float(spec.frame_mid_exposure_time(index)))[0, 0] for index in indices[:4]
    ]
    assert positions == pytest.approx(truth, abs=0.5)


def test_motion_blur_length_grows_with_shutter_angle():
    # 1200 px/s at 60 fps: 20 px per frame; the smear is shutter/360 of that
    extents = {}
    for angle in (45.0, 180.0, 360.0):
        mask = _object_mask(_one_disc(fps=60, velocity_px_s=1200.0, shutter_angle_deg=angle, frames=3), 1)
        columns = np.nonzero(mask[60])[0]
        extents[angle] = columns.max() - columns.min() + 1
    blur = {angle: extent - 20 for angle, extent in extents.items()}
    assert blur[45.0] < blur[180.0] < blur[360.0]
    assert blur[180.0] == pytest.approx(10, abs=2.5)
    assert blur[360.0] == pytest.approx(20, abs=2.5)


def test_nearer_object_occludes_the_further_one():
    near = ObjectSpec(
        shape="box",
        size_px=20.0,
        position_px=(60.0, 40.0),
        velocity_px_s=(0.0, 0.0),
        gravity=False,
        depth=1.0,
        texture=TextureSpec("noise", 4.0),
    )
    far = ObjectSpec(
        shape="disc",
        size_px=12.0,
        position_px=(60.0, 40.0),
        velocity_px_s=(0.0, 0.0),
        gravity=False,
        depth=5.0,
        texture=TextureSpec("checker", 3.0),
    )
    both = SceneSpec(
        width=120, height=80, duration_frames=1, objects=[near, far], noise_sigma=0, shot_noise_gain=0
    )
    image = SceneRenderer(both).render_linear(0)
    far_hidden = SceneRenderer(SceneSpec(**{**both.__dict__, "objects": [far, near]})).render_linear(0)
    # drawing order comes from depth, not from the list order
    np.testing.assert_array_equal(image, far_hidden)
    # the far disc sits entirely behind the near box: moving it away changes nothing in the box
    moved_far = ObjectSpec(**{**far.__dict__, "position_px": (20.0, 20.0)})
    moved = SceneRenderer(SceneSpec(**{**both.__dict__, "objects": [near, moved_far]})).render_linear(0)
    np.testing.assert_array_equal(image[35:46, 55:66], moved[35:46, 55:66])
    assert not np.array_equal(image[14:27, 14:27], moved[14:27, 14:27])


def test_ball_under_gravity_bounces_and_stays_above_the_floor():
    ball = ObjectSpec(
        shape="disc",
        size_px=8.0,
        position_px=(50.0, 10.0),
        velocity_px_s=(0.0, 0.0),
        gravity=True,
        restitution=0.7,
    )
    renderer = SceneRenderer(
        SceneSpec(
            width=100, height=100, capture_fps=240, duration_frames=240, objects=[ball], gravity_px_s2=800.0
        )
    )
    heights = np.array([renderer.object_states(t)[0, 1] for t in np.linspace(0, 1.0, 400)])
    floor = 100 - 8.0
    assert heights.max() <= floor + 1e-9
    first_hit = int(np.argmax(heights[:240]))  # the lowest point of the first fall
    assert heights[first_hit] == pytest.approx(floor, abs=2.0)
    assert heights[first_hit + 10] < floor - 3.0  # went up again after the bounce
    # fall time to the floor matches free fall: t = sqrt(2 h / g)
    assert first_hit / 399 == pytest.approx(np.sqrt(2 * (floor - 10.0) / 800.0), abs=0.005)


def test_photograph_and_video_textures_from_shared_data(shared_data):
    image = next((shared_data / "triplets").rglob("*.png"))
    video = shared_data / "clips" / "sam2-dog.mp4"
    spec = random_scene(
        5, width=96, height=64, capture_fps=240, duration_frames=2, texture_paths=(image, video)
    )
    assert {obj.texture.kind for obj in spec.objects} | {spec.background.kind} & {"image", "video"}
    frames = list(render_frames(spec))
    assert len(frames) == 2 and frames[0].std() > 5


def test_missing_texture_file_is_named(tmp_path):
    spec = SceneSpec(
        width=64, height=48, duration_frames=1, background=TextureSpec("image", path=tmp_path / "no.png")
    )
    with pytest.raises(MediaNotFoundError, match="no.png"):
        list(render_frames(spec))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"shutter_angle_deg": 400.0}, "shutter_angle_deg"),
        ({"width": 321}, "even"),
        ({"flicker_hz": 50.0}, "valid: 0"),
        ({"capture_fps": 0}, "capture_fps"),
        ({"duration_frames": 0}, "duration_frames"),
    ],
)
def test_invalid_scene_values_are_refused(changes, message):
    with pytest.raises(SceneSpecError, match=message):
        SceneSpec(**changes)


def test_unknown_kinds_list_the_valid_ones():
    with pytest.raises(SceneSpecError, match="valid: disc, box"):
        ObjectSpec(shape="star")
    with pytest.raises(SceneSpecError, match="valid: noise, checker"):
        TextureSpec(kind="marble")
    with pytest.raises(SceneSpecError, match="k=0"):
        list(subsample([1, 2], 0))


def test_write_video_and_h264_roundtrip(tmp_path):
    spec = random_scene(3, width=96, height=64, capture_fps=240, duration_frames=12)
    frames = list(render_frames(spec))
    path = tmp_path / "scene.mp4"
    assert write_video(frames, path, Fraction(30), crf=18) == 12
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        assert stream.average_rate == 30
    assert len(decoded) == 12
    assert [p.name for p in tmp_path.iterdir()] == ["scene.mp4"]
    again = h264_roundtrip(frames, 30, crf=23)
    error = np.mean([(a.astype(float) - b) ** 2 for a, b in zip(frames, again, strict=True)])
    assert len(again) == 12 and 10 * np.log10(255**2 / error) > 22


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(SceneSpecError):
        write_video([], tmp_path / "empty.mp4", 30)
    assert list(tmp_path.iterdir()) == []


def test_a_quarter_second_at_240_fps_renders_every_frame_at_its_size():
    # how fast it renders is measured by bench/scenes_preview.py (timings in its JSON), not here
    spec = random_scene(1, width=320, height=240, capture_fps=240, duration_frames=60)
    frames = list(render_frames(spec))
    assert len(frames) == 60
    assert all(frame.shape == (240, 320, 3) and frame.dtype == np.uint8 for frame in frames)
