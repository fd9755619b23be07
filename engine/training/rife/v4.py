"""Practical-RIFE 4.2x: a shared feature head and five IFBlocks that take the time t as an input.

Unlike HDv3 the network is told t directly (a constant plane concatenated to its input), so one
pass gives any t in (0, 1). The first block sees both images and their head features; each later
block sees the images and features warped by the current flow, the previous mask logit and
eight channels of hidden state, and adds a flow residual. Blocks use LeakyReLU(0.2) and eight
residual convolutions with a learned per-channel gain ``beta``.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.training.rife.common import FusionOutput, backward_warp, resize_by

PAD_MULTIPLE = 64
"""Height and width must be multiples of this: the coarsest block works at 1/64 of the input."""

SCALES = (16, 8, 4, 2, 1)
"""Each block sees the images downscaled by this factor (coarse to fine)."""

TRAINING_ONLY_PREFIXES = ("teacher.", "caltime.")
"""The distillation teacher and its timing helper are used in training only."""

FEATURE_CHANNELS = 4
HIDDEN_CHANNELS = 8


def _conv_leaky(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=True),
        nn.LeakyReLU(0.2),
    )


class Head(nn.Module):
    """Per-image features: three convolutions at half resolution, one transposed back to full."""

    def __init__(self) -> None:
        super().__init__()
        self.cnn0 = nn.Conv2d(3, 16, 3, 2, 1)
        self.cnn1 = nn.Conv2d(16, 16, 3, 1, 1)
        self.cnn2 = nn.Conv2d(16, 16, 3, 1, 1)
        self.cnn3 = nn.ConvTranspose2d(16, FEATURE_CHANNELS, 4, 2, 1)
        self.relu = nn.LeakyReLU(0.2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        hidden = self.relu(self.cnn0(image))
        hidden = self.relu(self.cnn1(hidden))
        hidden = self.relu(self.cnn2(hidden))
        return self.cnn3(hidden)


class ResConv(nn.Module):
    """``leaky_relu(conv(x) * beta + x)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)
        self.beta = nn.Parameter(torch.ones((1, channels, 1, 1)))
        self.relu = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x) * self.beta + x)


class IFBlock(nn.Module):
    """Returns a flow (residual), a mask logit and hidden state, all at the input resolution."""

    OUT_CHANNELS = 4 + 1 + HIDDEN_CHANNELS

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(
            _conv_leaky(in_channels, channels // 2, stride=2),
            _conv_leaky(channels // 2, channels, stride=2),
        )
        self.convblock = nn.Sequential(*(ResConv(channels) for _ in range(8)))
        self.lastconv = nn.Sequential(
            nn.ConvTranspose2d(channels, 4 * self.OUT_CHANNELS, 4, 2, 1),
            nn.PixelShuffle(2),
        )

    def forward(
        self, x: torch.Tensor, flow: torch.Tensor | None, scale: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = resize_by(x, 1.0 / scale)
        if flow is not None:
            x = torch.cat((x, resize_by(flow, 1.0 / scale) * (1.0 / scale)), 1)
        out = resize_by(self.lastconv(self.convblock(self.conv0(x))), float(scale))
        return out[:, :4] * scale, out[:, 4:5], out[:, 5:]


class IFNet(nn.Module):
    """The 4.2x network; ``forward(img0, img1, timestep)`` with timestep shaped (N, 1, 1, 1)."""

    def __init__(self) -> None:
        super().__init__()
        image_pair = 3 + 3
        features = 2 * FEATURE_CHANNELS
        self.block0 = IFBlock(image_pair + features + 1, channels=192)
        later_inputs = image_pair + features + 1 + 1 + HIDDEN_CHANNELS + 4
        self.block1 = IFBlock(later_inputs, channels=128)
        self.block2 = IFBlock(later_inputs, channels=96)
        self.block3 = IFBlock(later_inputs, channels=64)
        self.block4 = IFBlock(later_inputs, channels=32)
        self.encode = Head()

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, timestep: torch.Tensor) -> FusionOutput:
        time_plane = timestep.expand(-1, 1, img0.shape[2], img0.shape[3])
        features0 = self.encode(img0)
        features1 = self.encode(img1)
        flow, logit, hidden = self.block0(torch.cat((img0, img1, features0, features1, time_plane), 1), None,
                                          SCALES[0])
        warped0 = backward_warp(img0, flow[:, 0:2])
        warped1 = backward_warp(img1, flow[:, 2:4])
        refinements = (self.block1, self.block2, self.block3, self.block4)
        for block, scale in zip(refinements, SCALES[1:], strict=True):
            warped_features0 = backward_warp(features0, flow[:, 0:2])
            warped_features1 = backward_warp(features1, flow[:, 2:4])
            inputs = torch.cat(
                (warped0, warped1, warped_features0, warped_features1, time_plane, logit, hidden), 1
            )
            flow_residual, logit, hidden = block(inputs, flow, scale)
            flow = flow + flow_residual
            warped0 = backward_warp(img0, flow[:, 0:2])
            warped1 = backward_warp(img1, flow[:, 2:4])
        mask = torch.sigmoid(logit)
        frame = warped0 * mask + warped1 * (1 - mask)
        return FusionOutput(frame, warped0, warped1, mask, flow)
