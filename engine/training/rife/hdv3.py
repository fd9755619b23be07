"""RIFE HDv3 (ECCV2022-RIFE ``train_log``): three coarse-to-fine IFBlocks with PReLU activations.

Each block estimates a residual of the two flows (t -> image 0, t -> image 1) and of the fusion
mask's logit from both images warped by the current estimate. Inference runs every block twice,
once with the images swapped and the mask negated, and averages the two answers; this makes the
network symmetric in time, which is why it only produces the midpoint t = 0.5. Other times are
reached by bisection in the runtime.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.training.rife.common import FusionOutput, backward_warp, resize_by

PAD_MULTIPLE = 32
"""Height and width must be multiples of this: the coarsest block works at 1/16 of the input."""

SCALES = (4, 2, 1)
"""Each block sees the images downscaled by this factor (coarse to fine)."""

TRAINING_ONLY_PREFIXES = ("block_tea.",)
"""The distillation teacher sees the true middle frame; inference never uses it."""


def _conv_prelu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=True),
        nn.PReLU(out_channels),
    )


def _residual_pair(channels: int) -> nn.Sequential:
    return nn.Sequential(_conv_prelu(channels, channels), _conv_prelu(channels, channels))


def _upsampling_head(channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(channels, channels // 2, kernel_size=4, stride=2, padding=1),
        nn.PReLU(channels // 2),
        nn.ConvTranspose2d(channels // 2, out_channels, kernel_size=4, stride=2, padding=1),
    )


class IFBlock(nn.Module):
    """One refinement step: 11 input channels (two images, mask logit, four flow channels)."""

    def __init__(self, in_channels: int, channels: int = 90) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(
            _conv_prelu(in_channels, channels // 2, stride=2),
            _conv_prelu(channels // 2, channels, stride=2),
        )
        self.convblock0 = _residual_pair(channels)
        self.convblock1 = _residual_pair(channels)
        self.convblock2 = _residual_pair(channels)
        self.convblock3 = _residual_pair(channels)
        self.conv1 = _upsampling_head(channels, 4)
        self.conv2 = _upsampling_head(channels, 1)

    def forward(
        self, images: torch.Tensor, flow: torch.Tensor, scale: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (flow residual, mask-logit residual) at the input resolution."""
        small = resize_by(images, 1.0 / scale)
        small_flow = resize_by(flow, 1.0 / scale) * (1.0 / scale)
        features = self.conv0(torch.cat((small, small_flow), 1))
        for stage in (self.convblock0, self.convblock1, self.convblock2, self.convblock3):
            features = stage(features) + features
        flow_residual = resize_by(self.conv1(features), float(scale)) * scale
        mask_residual = resize_by(self.conv2(features), float(scale))
        return flow_residual, mask_residual


def _swap_flow(flow: torch.Tensor) -> torch.Tensor:
    """Exchange the (t -> 0) and (t -> 1) halves of a four-channel flow."""
    return torch.cat((flow[:, 2:4], flow[:, 0:2]), 1)


class IFNet(nn.Module):
    """The HDv3 network; ``forward(img0, img1)`` gives the frame at t = 0.5."""

    def __init__(self) -> None:
        super().__init__()
        self.block0 = IFBlock(7 + 4, channels=90)
        self.block1 = IFBlock(7 + 4, channels=90)
        self.block2 = IFBlock(7 + 4, channels=90)

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> FusionOutput:
        batch = img0.shape[0]
        flow = torch.zeros_like(img0[:, :1]).expand(-1, 4, -1, -1)
        logit = torch.zeros_like(img0[:, :1])
        warped0, warped1 = img0, img1
        for block, scale in zip((self.block0, self.block1, self.block2), SCALES, strict=True):
            # Both directions in one batch: (w0, w1, m) with flow, and (w1, w0, -m) with swapped flow.
            images = torch.cat(
                (torch.cat((warped0, warped1, logit), 1), torch.cat((warped1, warped0, -logit), 1)), 0
            )
            flows = torch.cat((flow, _swap_flow(flow)), 0)
            flow_residual, mask_residual = block(images, flows, scale)
            forward_flow, backward_flow = flow_residual[:batch], flow_residual[batch:]
            flow = flow + (forward_flow + _swap_flow(backward_flow)) / 2
            logit = logit + (mask_residual[:batch] - mask_residual[batch:]) / 2
            warped0 = backward_warp(img0, flow[:, 0:2])
            warped1 = backward_warp(img1, flow[:, 2:4])
        mask = torch.sigmoid(logit)
        frame = warped0 * mask + warped1 * (1 - mask)
        return FusionOutput(frame, warped0, warped1, mask, flow)
