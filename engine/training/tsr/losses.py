"""The training loss: L1 on the frame plus L1 over the bands of a Laplacian pyramid.

The RIFE authors trained with L1 and a Laplacian-pyramid term (``LapLoss``): the pyramid weighs
errors at every scale, so edges and large-scale shading count alongside pixel noise. Each level
blurs with the 5x5 binomial kernel, halves the size, and keeps the difference between the image
and the blurred image upsampled back; the coarsest level keeps the low-pass remainder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

PYRAMID_LEVELS = 5


def _binomial_kernel(channels: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    row = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=device, dtype=dtype)
    kernel = torch.outer(row, row) / 256.0
    return kernel.expand(channels, 1, 5, 5).contiguous()


def _blur(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    return F.conv2d(F.pad(image, (2, 2, 2, 2), mode="reflect"), kernel, groups=image.shape[1])


def laplacian_pyramid(image: torch.Tensor, levels: int = PYRAMID_LEVELS) -> list[torch.Tensor]:
    """Band-pass levels, finest first, then the low-pass remainder; stops early at 4 px."""
    kernel = _binomial_kernel(image.shape[1], image.device, image.dtype)
    bands = []
    current = image
    for _ in range(levels - 1):
        if min(current.shape[2:]) < 8:
            break
        low = _blur(current, kernel)
        down = low[:, :, ::2, ::2]
        up = F.interpolate(down, size=current.shape[2:], mode="bilinear", align_corners=False)
        bands.append(current - up)
        current = down
    bands.append(current)
    return bands


def laplacian_l1(prediction: torch.Tensor, truth: torch.Tensor, levels: int = PYRAMID_LEVELS) -> torch.Tensor:
    """Sum over pyramid levels of the mean absolute difference, each coarser level weighted 2x."""
    total = prediction.new_zeros(())
    for level, (a, b) in enumerate(
        zip(laplacian_pyramid(prediction, levels), laplacian_pyramid(truth, levels), strict=True)
    ):
        total = total + (2.0**level) * (a - b).abs().mean()
    return total


@dataclass(frozen=True)
class LossWeights:
    l1: float = 1.0
    laplacian: float = 1.0


def synthesis_loss(
    prediction: torch.Tensor, truth: torch.Tensor, weights: LossWeights | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted loss and its parts (as floats, for the log), computed in float32."""
    weights = weights or LossWeights()
    prediction = prediction.float()
    truth = truth.float()
    l1 = (prediction - truth).abs().mean()
    lap = laplacian_l1(prediction, truth)
    total = weights.l1 * l1 + weights.laplacian * lap
    return total, {"l1": float(l1.detach()), "laplacian": float(lap.detach())}
