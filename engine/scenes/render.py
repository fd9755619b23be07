"""Render procedural scenes: ground-truth footage at any capture rate (240 to 960 fps and beyond).

Each frame integrates ``subframes`` instants over the open shutter, so motion blur and the flicker
of mains-powered light come out of the same integral as in a camera. Layers are drawn far to
near (occlusion), then sensor noise is added and the frame is quantised to uint8 RGB.

``subsample(frames, k)`` keeps every k-th frame: played at the same rate, motion per frame grows
k times (the speed multiplies by k) while each frame keeps the exposure of the original capture.
To imitate a camera that really shot at the lower rate (longer exposure), render at that rate.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from engine.errors import SceneSpecError
from engine.scenes.spec import ObjectSpec, SceneSpec
from engine.scenes.textures import make_texture

log = logging.getLogger(__name__)

REST_SPEED_PX_S = 4.0
MAX_BOUNCES = 10_000
SUBFRAME_STEP_PX = 0.75
FLICKER_SAMPLES_PER_CYCLE = 12


def reflect_into(value: float, low: float, high: float) -> float:
    """Fold a free coordinate into [low, high] as elastic bounces between two walls would."""
    span = high - low
    if span <= 0:
        return (low + high) / 2
    folded = (value - low) % (2 * span)
    return low + (folded if folded <= span else 2 * span - folded)


@dataclass
class _Ballistic:
    """Vertical motion under gravity with bounces on the floor, solved exactly between bounces."""

    starts_s: np.ndarray
    positions_px: np.ndarray
    velocities_px_s: np.ndarray
    gravity_px_s2: float
    floor_px: float
    rest_from_s: float

    @classmethod
    def build(
        cls,
        y_px: float,
        vy_px_s: float,
        gravity_px_s2: float,
        floor_px: float,
        restitution: float,
        horizon_s: float,
    ) -> _Ballistic:
        starts, positions, velocities = [0.0], [min(y_px, floor_px)], [vy_px_s]
        rest_from = math.inf
        time_s, y, vy = 0.0, positions[0], vy_px_s
        for _ in range(MAX_BOUNCES):
            if gravity_px_s2 <= 0:
                break
            drop = floor_px - y
            hit_s = (-vy + math.sqrt(max(vy * vy + 2 * gravity_px_s2 * drop, 0.0))) / gravity_px_s2
            time_s += hit_s
            if time_s > horizon_s:
                break
            vy = -restitution * (vy + gravity_px_s2 * hit_s)
            y = floor_px
            if abs(vy) < REST_SPEED_PX_S:
                rest_from = time_s
                break
            starts.append(time_s)
            positions.append(y)
            velocities.append(vy)
        return cls(
            np.array(starts), np.array(positions), np.array(velocities), gravity_px_s2, floor_px, rest_from
        )

    def position(self, time_s: float) -> float:
        if time_s >= self.rest_from_s:
            return self.floor_px
        index = max(int(np.searchsorted(self.starts_s, time_s, side="right")) - 1, 0)
        elapsed = time_s - self.starts_s[index]
        y = self.positions_px[index] + self.velocities_px_s[index] * elapsed
        return float(min(y + 0.5 * self.gravity_px_s2 * elapsed * elapsed, self.floor_px))


@dataclass
class _Sprite:
    spec: ObjectSpec
    rgba: np.ndarray
    centre_px: float
    vertical: _Ballistic | None


def _sprite_rgba(obj: ObjectSpec, texture: np.ndarray) -> np.ndarray:
    side = texture.shape[0]
    centre = (side - 1) / 2
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32)
    if obj.shape == "disc":
        distance = np.hypot(xs - centre, ys - centre)
        alpha = np.clip(obj.size_px + 0.5 - distance, 0.0, 1.0)
    else:
        edge = np.maximum(np.abs(xs - centre), np.abs(ys - centre))
        alpha = np.clip(obj.size_px + 0.5 - edge, 0.0, 1.0)
    return np.dstack([texture * alpha[..., None], alpha]).astype(np.float32)


class SceneRenderer:
    """Holds a scene's textures and trajectories; renders any frame on demand, deterministically."""

    def __init__(self, spec: SceneSpec) -> None:
        self.spec = spec
        rng = np.random.default_rng([spec.seed, 0])
        horizon_s = float(spec.frame_start_time(spec.duration_frames)) + 1.0
        pan_x, pan_y = spec.camera_velocity_px_s
        self._margin_x = int(math.ceil(abs(pan_x) * horizon_s)) + 2
        self._margin_y = int(math.ceil(abs(pan_y) * horizon_s)) + 2
        self._background = make_texture(
            spec.background, spec.width + 2 * self._margin_x, spec.height + 2 * self._margin_y, rng
        )
        sprites = []
        for obj in sorted(spec.objects, key=lambda item: -item.depth):
            side = int(math.ceil(2 * obj.size_px * math.sqrt(2))) + 4
            texture = make_texture(obj.texture, side, side, rng)
            vertical = None
            if obj.gravity and spec.gravity_px_s2 > 0:
                vertical = _Ballistic.build(
                    obj.position_px[1],
                    obj.velocity_px_s[1],
                    spec.gravity_px_s2,
                    spec.height - obj.size_px,
                    obj.restitution,
                    horizon_s,
                )
            sprites.append(_Sprite(obj, _sprite_rgba(obj, texture), (side - 1) / 2, vertical))
        self._sprites = sprites

    def object_states(self, time_s: float) -> np.ndarray:
        """Ground truth at ``time_s``: one row (x_px, y_px, angle_deg) per object, in spec order."""
        states = {}
        for sprite in self._sprites:
            states[id(sprite.spec)] = self._state(sprite, time_s)
        return np.array([states[id(obj)] for obj in self.spec.objects], dtype=np.float64).reshape(-1, 3)

    def _state(self, sprite: _Sprite, time_s: float) -> tuple[float, float, float]:
        obj, spec = sprite.spec, self.spec
        x = reflect_into(
            obj.position_px[0] + obj.velocity_px_s[0] * time_s, obj.size_px, spec.width - obj.size_px
        )
        if sprite.vertical is not None:
            y = sprite.vertical.position(time_s)
        else:
            y = reflect_into(
                obj.position_px[1] + obj.velocity_px_s[1] * time_s, obj.size_px, spec.height - obj.size_px
            )
        return x, y, obj.angle_deg + obj.angular_velocity_deg_s * time_s

    def _light(self, time_s: float) -> float:
        spec = self.spec
        if not spec.flicker_hz or not spec.flicker_depth:
            return 1.0
        return 1.0 - spec.flicker_depth * 0.5 * (1.0 - math.cos(2 * math.pi * spec.flicker_hz * time_s))

    def _instant(self, time_s: float) -> np.ndarray:
        spec = self.spec
        pan_x, pan_y = spec.camera_velocity_px_s
        shift = np.float32(
            [[1, 0, -(self._margin_x + pan_x * time_s)], [0, 1, -(self._margin_y + pan_y * time_s)]]
        )
        canvas = cv2.warpAffine(
            self._background,
            shift,
            (spec.width, spec.height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
        for sprite in self._sprites:
            self._draw(canvas, sprite, *self._state(sprite, time_s))
        return canvas

    def _draw(self, canvas: np.ndarray, sprite: _Sprite, x: float, y: float, angle_deg: float) -> None:
        side = sprite.rgba.shape[0]
        x0, y0 = int(math.floor(x)) - side // 2, int(math.floor(y)) - side // 2
        left, top = max(x0, 0), max(y0, 0)
        right, bottom = min(x0 + side, canvas.shape[1]), min(y0 + side, canvas.shape[0])
        if right <= left or bottom <= top:
            return
        matrix = cv2.getRotationMatrix2D((sprite.centre_px, sprite.centre_px), angle_deg, 1.0)
        matrix[0, 2] += (x - x0) - sprite.centre_px
        matrix[1, 2] += (y - y0) - sprite.centre_px
        layer = cv2.warpAffine(
            sprite.rgba,
            matrix,
            (side, side),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0, 0),
        )
        layer = layer[top - y0 : bottom - y0, left - x0 : right - x0]
        region = canvas[top:bottom, left:right]
        alpha = layer[..., 3:4]
        region *= 1.0 - alpha
        region += layer[..., :3]

    def subframe_count(self, start_s: float, exposure_s: float) -> int:
        """Instants to integrate over one exposure: enough that no edge jumps more than about
        ``SUBFRAME_STEP_PX`` between them and the flicker is sampled finely, at most ``spec.subframes``."""
        spec = self.spec
        if exposure_s <= 0:
            return 1
        travel_px = math.hypot(*spec.camera_velocity_px_s) * exposure_s
        end_s = start_s + exposure_s
        middle_s = start_s + exposure_s / 2
        for sprite in self._sprites:
            first, middle, last = (
                np.array(self._state(sprite, time_s)) for time_s in (start_s, middle_s, end_s)
            )
            path_px = np.hypot(*(middle[:2] - first[:2])) + np.hypot(*(last[:2] - middle[:2]))
            spin_px = abs(math.radians(last[2] - first[2])) * sprite.spec.size_px * math.sqrt(2)
            travel_px = max(travel_px, path_px + spin_px)
        count = math.ceil(travel_px / SUBFRAME_STEP_PX)
        if spec.flicker_hz and spec.flicker_depth:
            count = max(count, math.ceil(spec.flicker_hz * exposure_s * FLICKER_SAMPLES_PER_CYCLE))
        return int(min(max(count, 1), spec.subframes))

    def render_linear(self, frame_index: int) -> np.ndarray:
        """Frame ``frame_index`` integrated over its exposure, float32 levels, before noise."""
        spec = self.spec
        if not 0 <= frame_index < spec.duration_frames:
            raise SceneSpecError(f"frame {frame_index} is outside the scene's 0..{spec.duration_frames - 1}")
        start_s = float(spec.frame_start_time(frame_index))
        exposure_s = float(spec.exposure_duration())
        count = self.subframe_count(start_s, exposure_s)
        accumulated = np.zeros((spec.height, spec.width, 3), np.float32)
        for step in range(count):
            time_s = start_s + (step + 0.5) / count * exposure_s
            accumulated += self._instant(time_s) * np.float32(self._light(time_s))
        accumulated /= np.float32(count)
        return accumulated

    def render_frame(self, frame_index: int) -> np.ndarray:
        """Frame ``frame_index`` as uint8 RGB (height, width, 3), with sensor noise."""
        spec = self.spec
        image = self.render_linear(frame_index)
        if spec.noise_sigma > 0 or spec.shot_noise_gain > 0:
            rng = np.random.default_rng([spec.seed, 1, frame_index])
            sigma = np.sqrt(spec.noise_sigma**2 + spec.shot_noise_gain * np.maximum(image, 0.0))
            image += rng.standard_normal(image.shape, dtype=np.float32) * sigma
        return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def render_frames(spec: SceneSpec) -> Iterator[np.ndarray]:
    """Yield the scene's frames in order, uint8 RGB (height, width, 3)."""
    renderer = SceneRenderer(spec)
    for frame_index in range(spec.duration_frames):
        yield renderer.render_frame(frame_index)


def subsample(frames: Iterable[np.ndarray], k: int, phase: int = 0) -> Iterator[np.ndarray]:
    """Keep frames phase, phase + k, phase + 2k, ...: played at the same rate, speed multiplies by k."""
    if k < 1 or not 0 <= phase < k:
        raise SceneSpecError(f"subsample k={k}, phase={phase}: need k >= 1 and 0 <= phase < k")
    for index, frame in enumerate(frames):
        if index % k == phase:
            yield frame
