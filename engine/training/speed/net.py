"""The speed network: a small 2-D CNN over a window of grey frames and their differences.

Input ``frames`` (batch, T, 64, 64) float32 in [0, 1] (``engine.speed.windows``). Inside the graph
the window is normalised (its own mean and contrast, so brightness and exposure give nothing away),
its T - 1 frame differences are stacked with the frames (or used alone: ``frames_input=False``,
which cross-validation found to generalise better, see the model card's Session 7), and a strided
CNN pools to two numbers:

- ``log2_speed``: log2 of the speed s = P / C the window shows when its frames play at P = 30 fps,
- ``synthetic_logit``: logit that the window's frames are made (duplicated, blended or
  interpolated) rather than captured.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.speed.windows import WINDOW_FRAMES


def _block(channels_in: int, channels_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(channels_out),
        nn.ReLU(inplace=True),
    )


class SpeedNet(nn.Module):
    def __init__(
        self, window_frames: int = WINDOW_FRAMES, width: int = 24, frames_input: bool = True
    ) -> None:
        super().__init__()
        self.window_frames = window_frames
        self.width = width
        self.frames_input = frames_input
        channels = 2 * window_frames - 1 if frames_input else window_frames - 1
        self.features = nn.Sequential(
            _block(channels, width, 2),
            _block(width, 3 * width // 2, 2),
            _block(3 * width // 2, 2 * width, 2),
            _block(2 * width, 3 * width, 1),
            _block(3 * width, 4 * width, 2),
        )
        self.head = nn.Sequential(nn.Linear(8 * width, 64), nn.ReLU(inplace=True), nn.Linear(64, 2))

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = frames.mean(dim=(1, 2, 3), keepdim=True)
        spread = frames.std(dim=(1, 2, 3), keepdim=True) + 0.02
        normalised = (frames - mean) / spread
        differences = (normalised[:, 1:] - normalised[:, :-1]) * 4.0
        stacked = torch.cat([normalised, differences], dim=1) if self.frames_input else differences
        features = self.features(stacked)
        pooled = torch.cat([features.mean(dim=(2, 3)), features.amax(dim=(2, 3))], dim=1)
        out = self.head(pooled)
        return out[:, 0], out[:, 1]


class CalibratedSpeedNet(nn.Module):
    """A trained ``SpeedNet`` whose log2 speed is mapped by (read - offset) / scale, the correction
    fitted on reads of footage the network was not trained on (``bench/speed_gpu.py``)."""

    def __init__(self, network: SpeedNet, offset: float, scale: float) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"calibration scale must be positive, got {scale}")
        self.network = network
        self.window_frames = network.window_frames
        self.offset = float(offset)
        self.scale = float(scale)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log2_speed, synthetic_logit = self.network(frames)
        return (log2_speed - self.offset) / self.scale, synthetic_logit
