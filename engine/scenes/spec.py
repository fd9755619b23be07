"""What a procedural scene is: a validated description, deterministic given its seed.

Coordinates are pixels with x to the right and y down; velocities are pixels per second and
gravity pulls towards +y. Objects bounce off the floor (the bottom edge) and the side walls with
their restitution; without gravity they also bounce off the top edge. Objects move in screen space;
the camera pan moves the background only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from engine.errors import SceneSpecError

TEXTURE_KINDS = ("noise", "checker", "gradient", "image", "video")
SHAPES = ("disc", "box")
MAINS_FLICKER_HZ = (0.0, 100.0, 120.0)
MIN_SIZE_PX = 16
MAX_SIZE_PX = 4096


@dataclass(frozen=True)
class TextureSpec:
    """A texture: built-in procedural (noise, checker, gradient) or from a photograph / video frame.

    ``scale_px`` is the feature size of procedural textures. ``path`` names the image (any format
    OpenCV reads) or the video (any format PyAV reads; ``frame_index`` picks the frame).
    """

    kind: str = "noise"
    scale_px: float = 12.0
    path: Path | None = None
    frame_index: int = 0

    def __post_init__(self) -> None:
        if self.kind not in TEXTURE_KINDS:
            raise SceneSpecError(
                f"texture kind {self.kind!r} is not known; valid: {', '.join(TEXTURE_KINDS)}"
            )
        if self.kind in ("image", "video") and self.path is None:
            raise SceneSpecError(f"texture kind {self.kind!r} needs a path")
        if not 1.0 <= self.scale_px <= 512.0:
            raise SceneSpecError(f"texture scale_px {self.scale_px} is outside [1, 512]")
        if self.frame_index < 0:
            raise SceneSpecError(f"texture frame_index {self.frame_index} is negative")


@dataclass(frozen=True)
class ObjectSpec:
    """One moving object. ``size_px`` is the radius of a disc or half the side of a box.

    ``depth`` orders the layers: larger is further away and is drawn first (occluded by nearer
    objects). ``angle_deg`` and ``angular_velocity_deg_s`` rotate the object's texture.
    """

    shape: str = "disc"
    size_px: float = 20.0
    position_px: tuple[float, float] = (60.0, 60.0)
    velocity_px_s: tuple[float, float] = (120.0, 0.0)
    angle_deg: float = 0.0
    angular_velocity_deg_s: float = 0.0
    gravity: bool = True
    restitution: float = 0.85
    depth: float = 1.0
    texture: TextureSpec = field(default_factory=TextureSpec)

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise SceneSpecError(f"object shape {self.shape!r} is not known; valid: {', '.join(SHAPES)}")
        if not 2.0 <= self.size_px <= 1024.0:
            raise SceneSpecError(f"object size_px {self.size_px} is outside [2, 1024]")
        if not 0.0 <= self.restitution <= 1.0:
            raise SceneSpecError(f"object restitution {self.restitution} is outside [0, 1]")
        values = (
            *self.position_px,
            *self.velocity_px_s,
            self.angle_deg,
            self.angular_velocity_deg_s,
            self.depth,
        )
        if not all(math.isfinite(value) for value in values):
            raise SceneSpecError(f"object has a non-finite position, velocity, angle or depth: {values}")


@dataclass
class SceneSpec:
    """A scene to render at ``capture_fps`` for ``duration_frames`` frames.

    Exposure per frame lasts ``shutter_angle_deg / 360 / capture_fps`` seconds and is integrated
    from instants spread over it (motion blur and flicker both come from that integral): as many
    as keep every edge within about 0.75 px between instants and sample the flicker 12 times a
    cycle, at most ``subframes``. ``flicker_hz`` is the light's flicker frequency (twice the
    mains: 100 for 50 Hz mains, 120 for 60 Hz; 0 for none) and ``flicker_depth`` the fraction of
    light it modulates.
    Noise is read noise ``noise_sigma`` plus shot noise of variance ``shot_noise_gain`` x level,
    in 8-bit levels. The same spec and seed always give the same frames.
    """

    width: int = 320
    height: int = 240
    capture_fps: Fraction = Fraction(240)
    duration_frames: int = 240
    shutter_angle_deg: float = 180.0
    subframes: int = 16
    objects: list[ObjectSpec] = field(default_factory=list)
    background: TextureSpec = field(default_factory=lambda: TextureSpec(kind="noise", scale_px=24.0))
    camera_velocity_px_s: tuple[float, float] = (0.0, 0.0)
    gravity_px_s2: float = 600.0
    noise_sigma: float = 1.5
    shot_noise_gain: float = 0.05
    flicker_hz: float = 0.0
    flicker_depth: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        self.capture_fps = Fraction(self.capture_fps).limit_denominator(1001)
        for name in ("width", "height"):
            value = getattr(self, name)
            if not MIN_SIZE_PX <= value <= MAX_SIZE_PX:
                raise SceneSpecError(f"scene {name} {value} is outside [{MIN_SIZE_PX}, {MAX_SIZE_PX}]")
        if self.width % 2 or self.height % 2:
            raise SceneSpecError(f"scene size {self.width}x{self.height} must be even (H.264 4:2:0 needs it)")
        if self.capture_fps <= 0:
            raise SceneSpecError(f"capture_fps {self.capture_fps} is not positive")
        if self.duration_frames < 1:
            raise SceneSpecError(f"duration_frames {self.duration_frames} must be at least 1")
        if not 0.0 <= self.shutter_angle_deg <= 360.0:
            raise SceneSpecError(f"shutter_angle_deg {self.shutter_angle_deg} is outside [0, 360]")
        if not 1 <= self.subframes <= 256:
            raise SceneSpecError(f"subframes {self.subframes} is outside [1, 256]")
        if self.flicker_hz not in MAINS_FLICKER_HZ:
            raise SceneSpecError(
                f"flicker_hz {self.flicker_hz} is not a mains flicker; valid: 0 (none), 100 (50 Hz mains), "
                "120 (60 Hz mains)"
            )
        if not 0.0 <= self.flicker_depth <= 1.0:
            raise SceneSpecError(f"flicker_depth {self.flicker_depth} is outside [0, 1]")
        if self.noise_sigma < 0 or self.shot_noise_gain < 0:
            raise SceneSpecError(
                f"noise_sigma {self.noise_sigma} and shot_noise_gain {self.shot_noise_gain} must be >= 0"
            )
        if self.gravity_px_s2 < 0:
            raise SceneSpecError(
                f"gravity_px_s2 {self.gravity_px_s2} must be >= 0 (gravity pulls towards +y)"
            )

    def frame_start_time(self, frame_index: int) -> Fraction:
        """When frame ``frame_index``'s exposure opens, in seconds (exact)."""
        return Fraction(frame_index) / self.capture_fps

    def exposure_duration(self) -> Fraction:
        """How long the shutter is open per frame, in seconds (exact up to the angle's float)."""
        return Fraction(self.shutter_angle_deg / 360.0).limit_denominator(100000) / self.capture_fps

    def frame_mid_exposure_time(self, frame_index: int) -> Fraction:
        """The centre of frame ``frame_index``'s exposure: where a blurred object's centroid sits."""
        return self.frame_start_time(frame_index) + self.exposure_duration() / 2


def random_scene(
    seed: int,
    *,
    width: int = 320,
    height: int = 240,
    capture_fps: Fraction | int = 240,
    duration_frames: int = 240,
    object_count: int = 4,
    texture_paths: tuple[Path, ...] = (),
    shutter_angle_deg: float = 180.0,
    camera_pan: bool = True,
    flicker_hz: float = 0.0,
) -> SceneSpec:
    """A varied scene drawn from ``seed``: objects thrown under gravity, spinning, overlapping.

    ``texture_paths`` (images or videos) are used as textures for the background and some objects
    when given; otherwise built-in procedural textures are used.
    """
    rng = np.random.default_rng(seed)
    sources = [Path(path) for path in texture_paths]

    def texture(scale_px: float) -> TextureSpec:
        if sources and rng.random() < 0.7:
            path = sources[int(rng.integers(len(sources)))]
            kind = (
                "image"
                if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
                else "video"
            )
            return TextureSpec(
                kind=kind, path=path, frame_index=int(rng.integers(0, 30)) if kind == "video" else 0
            )
        kind = str(rng.choice(["noise", "checker", "gradient"]))
        return TextureSpec(kind=kind, scale_px=scale_px)

    scale = min(width, height)
    objects = []
    for index in range(object_count):
        size = float(rng.uniform(0.06, 0.16) * scale)
        objects.append(
            ObjectSpec(
                shape=str(rng.choice(SHAPES)),
                size_px=size,
                position_px=(float(rng.uniform(size, width - size)), float(rng.uniform(size, height * 0.6))),
                velocity_px_s=(float(rng.uniform(-1.5, 1.5) * width), float(rng.uniform(-1.2, 0.3) * height)),
                angle_deg=float(rng.uniform(0, 360)),
                angular_velocity_deg_s=float(rng.uniform(-720, 720)),
                gravity=bool(rng.random() < 0.8),
                restitution=float(rng.uniform(0.6, 0.95)),
                depth=float(index + rng.uniform(0, 0.5)),
                texture=texture(float(rng.uniform(3, 10))),
            )
        )
    pan = (
        (float(rng.uniform(-0.3, 0.3) * width), float(rng.uniform(-0.1, 0.1) * height))
        if camera_pan
        else (0, 0)
    )
    return SceneSpec(
        width=width,
        height=height,
        capture_fps=Fraction(capture_fps),
        duration_frames=duration_frames,
        shutter_angle_deg=shutter_angle_deg,
        objects=objects,
        background=texture(float(rng.uniform(8, 32))),
        camera_velocity_px_s=pan,
        gravity_px_s2=float(rng.uniform(1.5, 3.0) * height),
        flicker_hz=flicker_hz,
        flicker_depth=0.3 if flicker_hz else 0.0,
        seed=seed,
    )
