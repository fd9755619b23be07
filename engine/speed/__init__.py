"""Playback-speed detection: records, and the cheap stages that run before the learned estimator.

Stages in order: ``metadata_stage`` (container tags and rates), ``detect_synthetic_retime``
(duplicated, blended or interpolated frames), then the learned estimator (``estimate_span`` on
ONNX Runtime). ``detect_speed`` runs them all on a clip and builds the curve and the segments.
Plain functions; no ZeroMQ, no Qt, no torch.
"""

from engine.speed.detect import DetectionResult, detect_speed, detect_speed_frames
from engine.speed.estimator import SpanEstimate, SpeedModel, estimate_span
from engine.speed.metadata_stage import MetadataFinding, RateMetadata, metadata_stage, read_rate_metadata
from engine.speed.motion_stats import MotionStats, window_motion_stats
from engine.speed.result import Evidence, SpeedClass, SpeedEstimate, SpeedSegment, WindowEstimate
from engine.speed.synthetic_retime import RetimeFinding, detect_synthetic_retime

__all__ = [
    "DetectionResult",
    "SpanEstimate",
    "SpeedModel",
    "detect_speed",
    "detect_speed_frames",
    "estimate_span",
    "Evidence",
    "MetadataFinding",
    "MotionStats",
    "RateMetadata",
    "RetimeFinding",
    "SpeedClass",
    "SpeedEstimate",
    "SpeedSegment",
    "WindowEstimate",
    "detect_synthetic_retime",
    "metadata_stage",
    "read_rate_metadata",
    "window_motion_stats",
]
