"""Near-duplicate segments by perceptual hash, in about linear time.

A segment's dHash (``engine.mining.stages.segment_dhash``) is a few 64-bit frame hashes. Two
segments are near-duplicates when ``dhash_distance`` (for each frame of one, the Hamming distance
to the nearest frame of the other, averaged; the smaller of the two directions) is at most
``max_bits``. Comparing every new segment with every kept one is quadratic (2000 segments took
minutes), so ``DHashIndex`` finds candidates first, without missing any:

- An average of at most T over integer distances means some frame pair is at most floor(T)
  apart. Cut the 64 bits into B bands and look, in each band, at the values within r bits of
  the query's (r = 1 from T = 3 up, else 0): two words at most B(r + 1) - 1 bits apart are within
  r bits of each other on at least one band (pigeonhole), so no pair that can pass is missed.
  This is multi-index hashing, the standard locality-sensitive hashing for Hamming distance;
  wide bands with a radius keep chance collisions rare (for T = 6: 4 bands of 16 bits, radius 1).
- A candidate must also be hit by enough frames: in the direction that passes, the frames not
  covered cost at least B(r + 1) bits each, so at least m * (1 - T / (B(r + 1))) of its m
  frames have a hit. This drops candidates that share only one frame hash (a black frame at a
  fade), which would otherwise pile up in one bucket.

The survivors are checked with the exact distance in the order they were kept, so the answer is
the same as the full scan's: the first kept segment within ``max_bits``.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import defaultdict
from dataclasses import dataclass

WORD_BITS = 64
WORD_SLOTS = 64
"""A bucket entry is ``segment << 6 | frame``: segments with more frame hashes than this are
compared with every query instead of being filed."""


def dhash_words(dhash: str | None) -> list[int]:
    """The frame hashes of a segment's dHash text (hex words joined by '-')."""
    return [int(word, 16) for word in (dhash or "").split("-") if word]


def words_distance(left: list[int], right: list[int]) -> float:
    """``engine.mining.stages.dhash_distance`` on parsed words."""
    if not left or not right:
        return float(WORD_BITS)
    return min(_one_way(left, right), _one_way(right, left))


def _one_way(ours: list[int], theirs: list[int]) -> float:
    return sum(min((a ^ b).bit_count() for b in theirs) for a in ours) / len(ours)


def within(left: list[int], right: list[int], max_bits: float) -> bool:
    """``words_distance(left, right) <= max_bits``, stopping each direction as soon as it fails."""
    if not left or not right:
        return WORD_BITS <= max_bits
    return _one_way_within(left, right, max_bits) or _one_way_within(right, left, max_bits)


def _one_way_within(ours: list[int], theirs: list[int], max_bits: float) -> bool:
    budget = max_bits * len(ours)
    total = 0
    for a in ours:
        total += min((a ^ b).bit_count() for b in theirs)
        if total > budget:
            return False
    return total / len(ours) <= max_bits


MIN_BAND_BITS = 6
"""Narrower bands than this narrow nothing down: the index then checks every kept segment."""


@dataclass(frozen=True)
class _Bands:
    """B bands of the 64 bits, and the radius searched in each."""

    edges: tuple[int, ...]
    radius: int

    @property
    def covered_bits(self) -> int:
        """Two words at most this many bits apart are within ``radius`` on some band."""
        return (len(self.edges) - 1) * (self.radius + 1) - 1


def _bands(max_bits: float) -> _Bands | None:
    """Bands for a threshold, or None when a threshold that large leaves bands too narrow."""
    floor = math.floor(max_bits)
    radius = 1 if floor >= 3 else 0
    count = math.ceil((floor + 1) / (radius + 1))
    if WORD_BITS // count < MIN_BAND_BITS:
        return None
    return _Bands(tuple(round(WORD_BITS * index / count) for index in range(count + 1)), radius)


@functools.cache
def _flips(width: int, radius: int) -> tuple[int, ...]:
    """Every mask of at most ``radius`` set bits within ``width`` bits (0 first)."""
    return tuple(
        sum(1 << bit for bit in bits)
        for count in range(radius + 1)
        for bits in itertools.combinations(range(width), count)
    )


def _hits_needed(frames: int, max_bits: float, covered_bits: int) -> int:
    """How many of a segment's ``frames`` must have a hit for its average to pass."""
    return max(1, math.ceil(frames * (1 - max_bits / (covered_bits + 1)) - 1e-9))


class DHashIndex:
    """Kept segments' dHashes; ``find`` gives the first kept one within ``max_bits`` of a query."""

    def __init__(self, max_bits: float) -> None:
        self.max_bits = max_bits
        self._bands = _bands(max_bits)
        edges = self._bands.edges if self._bands else ()
        self._slices = [(edges[i], (1 << (edges[i + 1] - edges[i])) - 1) for i in range(len(edges) - 1)]
        self._entries: list[tuple[list[int], str]] = []
        self._buckets: list[defaultdict[int, list[int]]] = [defaultdict(list) for _ in self._slices]
        self._need: list[int] = []
        self._unbanded: list[int] = []
        self.comparisons = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, dhash: str | None, clip: str) -> None:
        """Keep a segment (by the clip it is or will be); one without a hash never matches."""
        words = dhash_words(dhash)
        if not words:
            return
        number = len(self._entries)
        self._entries.append((words, clip))
        if self._bands is None:
            return
        self._need.append(_hits_needed(len(words), self.max_bits, self._bands.covered_bits))
        if len(words) > WORD_SLOTS:
            self._unbanded.append(number)  # too many frames to file: always a candidate
            return
        for position, word in enumerate(words):
            for buckets, (shift, mask) in zip(self._buckets, self._slices, strict=True):
                buckets[(word >> shift) & mask].append(number << 6 | position)

    def find(self, dhash: str | None) -> str | None:
        """The clip of the first kept segment within ``max_bits`` of ``dhash``, or None."""
        words = dhash_words(dhash)
        if not words or self.max_bits < 0:
            return None
        for number in self._candidates(words):
            other, clip = self._entries[number]
            self.comparisons += 1
            if within(words, other, self.max_bits):
                return clip
        return None

    def _candidates(self, words: list[int]) -> list[int]:
        if self._bands is None or len(words) > WORD_SLOTS:
            return list(range(len(self._entries)))
        # per kept segment: bit i (i < 64) when our frame i has a hit, bit 64 + j when their frame j was hit
        hits: defaultdict[int, int] = defaultdict(int)
        flips = [_flips(mask.bit_length(), self._bands.radius) for _, mask in self._slices]
        for position, word in enumerate(words):
            mine = 1 << position
            for buckets, (shift, mask), band_flips in zip(self._buckets, self._slices, flips, strict=True):
                value = (word >> shift) & mask
                get = buckets.get
                for flip in band_flips:
                    for slot in get(value ^ flip, ()):
                        hits[slot >> 6] |= mine | (1 << (WORD_SLOTS + (slot & 63)))
        need_ours = _hits_needed(len(words), self.max_bits, self._bands.covered_bits)
        need = self._need
        low = (1 << WORD_SLOTS) - 1
        found = [
            number
            for number, bits in hits.items()
            if (bits & low).bit_count() >= need_ours or (bits >> WORD_SLOTS).bit_count() >= need[number]
        ]
        return sorted(found + self._unbanded)
