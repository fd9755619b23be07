"""Mining genuine slow motion from video libraries: the paper's data pipeline.

Plain functions (no ZeroMQ, no Qt): ``mine(MineOptions)`` runs the stages of
``engine.mining.stages`` on every file of the sources, in-process, in a local process pool or as
Ray tasks (``engine.mining.runners``), writes the manifest (``engine.mining.manifest``) and, on
request, conformed clips (``engine.mining.extract``). Sources may be local paths, image sequences
read at ``--sequence-rate`` or fsspec URLs (``engine.mining.sources``, ``engine.mining.storage``).
See README.md next to this file.
"""

from engine.mining.gate import QualityGate, find_gate
from engine.mining.manifest import read_manifest
from engine.mining.pipeline import MineOptions, MineSummary, mine
from engine.mining.sources import content_hash, expand_sources
from engine.mining.stages import MineSettings, assess_segment, mine_file
from engine.mining.storage import CachePolicy

__all__ = [
    "CachePolicy",
    "MineOptions",
    "MineSettings",
    "MineSummary",
    "QualityGate",
    "assess_segment",
    "content_hash",
    "expand_sources",
    "find_gate",
    "mine",
    "mine_file",
    "read_manifest",
]
