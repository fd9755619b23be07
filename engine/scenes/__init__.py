"""Procedural high-frame-rate scenes with exact ground truth, for training and evaluating speed
estimation and frame synthesis. Plain numpy and OpenCV; no torch."""

from engine.scenes.encode import h264_roundtrip, write_video
from engine.scenes.render import SceneRenderer, render_frames, subsample
from engine.scenes.spec import ObjectSpec, SceneSpec, TextureSpec, random_scene

__all__ = [
    "ObjectSpec",
    "SceneRenderer",
    "SceneSpec",
    "TextureSpec",
    "h264_roundtrip",
    "random_scene",
    "render_frames",
    "subsample",
    "write_video",
]
