"""Overlapping tiles over a large frame, and feathered blending of per-tile results.

A network pass whose memory grows with the frame (RIFE on ONNX Runtime) can run on a large frame
tile by tile: ``plan_tiles`` covers the frame with tiles of at most ``tile_px`` pixels a side
that overlap their neighbours by at least ``overlap_px``, each side a multiple of the network's
``multiple`` (so a tile inside the frame needs no padding: only tiles of a frame smaller than one
tile are padded, as a whole frame would be). ``FeatherAccumulator`` adds up per-tile fields
weighted by a ramp that falls towards the tile's edges inside the frame (where a tile sees least
context), and divides by the sum of the weights. Edges that are the frame's own edges keep full
weight. A tile's weight along one axis is min(1, (d + 1/2) / overlap) at distance d pixels from
such an inner edge; the 2-D weight is the product of the two axes.

Positions and sizes are in pixels of the frame the tiles cover.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.errors import UnsupportedOptionError


@dataclass(frozen=True)
class Tile:
    """One tile: rows ``top:bottom`` and columns ``left:right`` of the frame."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def rows(self) -> slice:
        return slice(self.top, self.bottom)

    @property
    def columns(self) -> slice:
        return slice(self.left, self.right)


def _spans(length_px: int, tile_px: int, overlap_px: int) -> list[tuple[int, int]]:
    """Start and end of tiles of ``tile_px`` along one axis, overlapping by >= ``overlap_px``, evenly."""
    if length_px <= tile_px:
        return [(0, length_px)]
    count = math.ceil((length_px - overlap_px) / (tile_px - overlap_px))
    count = max(count, 2)
    travel = length_px - tile_px
    starts = [round(index * travel / (count - 1)) for index in range(count)]
    return [(start, start + tile_px) for start in starts]


def plan_tiles(height: int, width: int, *, tile_px: int, overlap_px: int, multiple: int) -> list[Tile]:
    """Tiles covering a ``height`` x ``width`` frame, row by row.

    ``tile_px`` is rounded down to a multiple of ``multiple``; it must leave a stride of at least
    ``multiple`` after the overlap. Raises ``UnsupportedOptionError`` otherwise.
    """
    if multiple < 1 or overlap_px < 0:
        raise UnsupportedOptionError(f"tile multiple {multiple} or overlap {overlap_px} px is not usable")
    side_px = tile_px // multiple * multiple
    if side_px - overlap_px < multiple:
        raise UnsupportedOptionError(
            f"tiles of {tile_px} px with {overlap_px} px overlap leave no stride "
            f"(network multiple {multiple}); use tiles of at least {overlap_px + 2 * multiple} px"
        )
    rows = _spans(height, side_px, overlap_px)
    columns = _spans(width, side_px, overlap_px)
    return [Tile(top, bottom, left, right) for top, bottom in rows for left, right in columns]


def _ramp(start: int, end: int, length_px: int, overlap_px: int) -> np.ndarray:
    """Weights along one axis of a tile spanning ``start:end`` of ``length_px``."""
    size = end - start
    weight = np.ones(size, dtype=np.float32)
    if overlap_px <= 0:
        return weight
    distance = np.arange(size, dtype=np.float32) + 0.5
    if start > 0:
        weight = np.minimum(weight, distance / overlap_px)
    if end < length_px:
        weight = np.minimum(weight, distance[::-1] / overlap_px)
    return weight


def feather_weights(tile: Tile, height: int, width: int, overlap_px: int) -> np.ndarray:
    """(tile.height, tile.width) float32 weights of ``tile`` in a ``height`` x ``width`` frame."""
    rows = _ramp(tile.top, tile.bottom, height, overlap_px)
    columns = _ramp(tile.left, tile.right, width, overlap_px)
    return rows[:, None] * columns[None, :]


class FeatherAccumulator:
    """Weighted sum of per-tile (channels, h, w) fields over a (channels, height, width) frame."""

    def __init__(self, channels: int, height: int, width: int, overlap_px: int) -> None:
        self.height = height
        self.width = width
        self.overlap_px = overlap_px
        self._sum = np.zeros((channels, height, width), dtype=np.float32)
        self._weight = np.zeros((height, width), dtype=np.float32)

    def add(self, tile: Tile, field: np.ndarray) -> None:
        """Add ``field`` (channels, tile.height, tile.width), the result for ``tile``."""
        weight = feather_weights(tile, self.height, self.width, self.overlap_px)
        self._sum[:, tile.rows, tile.columns] += field * weight[None]
        self._weight[tile.rows, tile.columns] += weight

    def result(self) -> np.ndarray:
        """The blended field; raises ``ValueError`` when some pixel was covered by no tile."""
        if not np.all(self._weight > 0):
            raise ValueError("tiles do not cover the frame")
        return self._sum / self._weight[None]
