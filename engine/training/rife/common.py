"""Pieces both IFNet generations share: backward warping and checkpoint loading."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)


class FusionOutput(NamedTuple):
    """What an IFNet forward pass returns, all at the input resolution.

    frame: (N, 3, H, W) the synthesized image, ``mask * warped0 + (1 - mask) * warped1``.
    warped0, warped1: (N, 3, H, W) each input image backward-warped to time t.
    mask: (N, 1, H, W) fusion weight of ``warped0`` in [0, 1] (after the sigmoid).
    flow: (N, 4, H, W) flow from time t to image 0 (channels 0-1) and to image 1 (2-3), in pixels.
    """

    frame: torch.Tensor
    warped0: torch.Tensor
    warped1: torch.Tensor
    mask: torch.Tensor
    flow: torch.Tensor


def backward_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``image`` at ``pixel + flow`` (bilinear, edge pixels repeated outside the frame).

    ``flow`` is (N, 2, H, W) in pixels, x then y. Coordinates are normalised with
    ``align_corners=True``: pixel 0 maps to -1 and pixel W-1 to +1, which is what the RIFE
    checkpoints were trained with. The grid is built from ``arange`` so that it follows the
    input's size when exported with dynamic height and width.
    """
    height, width = image.shape[2], image.shape[3]
    xs = torch.arange(width, dtype=flow.dtype, device=flow.device).view(1, 1, width)
    ys = torch.arange(height, dtype=flow.dtype, device=flow.device).view(1, height, 1)
    grid_x = (xs + flow[:, 0]) * (2.0 / (width - 1)) - 1.0
    grid_y = (ys + flow[:, 1]) * (2.0 / (height - 1)) - 1.0
    grid = torch.stack((grid_x, grid_y), dim=3)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def resize_by(tensor: torch.Tensor, factor: float) -> torch.Tensor:
    """Bilinear resize by a fixed factor (no corner alignment), as the IFBlocks do."""
    if factor == 1:
        return tensor
    return F.interpolate(tensor, scale_factor=factor, mode="bilinear", align_corners=False)


def load_checkpoint(
    network: nn.Module, state_dict: Mapping[str, torch.Tensor], *, training_only: Iterable[str] = ()
) -> list[str]:
    """Load a published checkpoint into ``network`` strictly; return the keys that were dropped.

    A leading ``module.`` (DataParallel) is stripped. Keys under the ``training_only`` prefixes
    (teacher blocks, distillation helpers) are dropped because inference never runs them; any
    other missing, unexpected or differently shaped tensor raises ``ValueError``, so a checkpoint
    of another architecture cannot load silently.
    """
    prefixes = tuple(training_only)
    cleaned: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for key, value in state_dict.items():
        name = key[len("module."):] if key.startswith("module.") else key
        if prefixes and name.startswith(prefixes):
            dropped.append(name)
            continue
        cleaned[name] = value
    expected = network.state_dict()
    missing = sorted(set(expected) - set(cleaned))
    unexpected = sorted(set(cleaned) - set(expected))
    shared = set(expected) & set(cleaned)
    misshapen = sorted(key for key in shared if expected[key].shape != cleaned[key].shape)
    if missing or unexpected or misshapen:
        raise ValueError(
            f"checkpoint does not fit {type(network).__name__}: missing {missing[:4]}, "
            f"unexpected {unexpected[:4]}, wrong shape {misshapen[:4]}"
        )
    network.load_state_dict(cleaned, strict=True)
    log.debug("loaded %d tensors into %s, dropped %d training-only", len(cleaned), type(network).__name__,
              len(dropped))
    return dropped
