"""Procedural high-frame-rate scenes with exact ground truth, for training and evaluating speed
estimation and frame synthesis. Plain numpy and OpenCV; no torch.

Rendering needs no PyAV, so a training machine without the media stack can render scenes; the
encoders (``h264_roundtrip``, ``write_video``) load PyAV when first asked for."""

from typing import TYPE_CHECKING, Any

from engine.scenes.render import SceneRenderer, render_frames, subsample
from engine.scenes.spec import ObjectSpec, SceneSpec, TextureSpec, random_scene

if TYPE_CHECKING:  # type checkers see the encoders' signatures; at run time they load on first use
    from engine.scenes.encode import h264_roundtrip, write_video

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


_ENCODERS = ("h264_roundtrip", "write_video")


def __getattr__(name: str) -> Any:
    if name in _ENCODERS:
        from engine.scenes import encode

        return getattr(encode, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_ENCODERS))
