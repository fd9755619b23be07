"""Fill frames for a damaged clip: dropped frames (timestamp gaps, frame jumps) and duplicated
frames found and replaced by synthesized ones, on a constant frame grid, with a report.

    plan = analyse_clip("capture.mp4")                    # what is missing, where (no output)
    report = repair_clip("capture.mp4", "fixed.mov", model="flow")
    report.fills, report.counts(), report.risk_max        # sidecar: fixed.mov.chronoscope.json

Plain Python (no ZeroMQ, no Qt); ``chronoscope repair`` (engine.commands.repair) calls these.
"""

from engine.repair.analysis import (
    JUMP_MODES,
    JUMPS_INSERT,
    JUMPS_REPORT,
    MAX_DUPLICATE_REPEATS,
    Fill,
    FrameGrid,
    RepairPlan,
    analyse_clip,
    frame_grid,
)
from engine.repair.run import FillRecord, RepairReport, repair_clip

__all__ = [
    "JUMPS_INSERT",
    "JUMPS_REPORT",
    "JUMP_MODES",
    "MAX_DUPLICATE_REPEATS",
    "Fill",
    "FillRecord",
    "FrameGrid",
    "RepairPlan",
    "RepairReport",
    "analyse_clip",
    "frame_grid",
    "repair_clip",
]
