"""Slow-motion retiming: a clip (or one clip of a timeline) rendered at a slower speed, with
generated in-between frames, exact frame timing and a per-frame risk report.

    report = retime_clip("clip.mp4", "slow.mov", speed=Fraction(1, 4), model="flow", audio="stretch")
    report.frames_written, report.frames_synthesized, report.risk_max     # sidecar: slow.mov.chronoscope.json

    ramp = parse_ramp([{"frame": 0, "speed": 1}, {"frame": 48, "speed": 0.25}])
    retime_clip("clip.mp4", "ramp.mov", ramp=ramp)
    retime_clip("clip.mp4", "part.mov", speed="1/2", source_range=(20, 26))   # frames 20..25 -> 12 frames

    render_mapped(source, output, time_map(segment), synthesizer=make_synthesizer("flow"),
                  media_start_frames=86400, include_transitions=True)        # the batch render's step

Plain Python (no ZeroMQ, no Qt): the server's capability module (engine.render.capability) and the
CLI call these functions. Memory stays flat with clip length (see ``engine.retime.core``).
"""

from engine.retime.audio import (
    AUDIO_DROP,
    AUDIO_KEEP,
    AUDIO_MODES,
    AUDIO_STRETCH,
    atempo_chain,
    stretch_audio,
)
from engine.retime.clip import check_source_range, constant_speed_map, resolve_audio_mode, retime_clip
from engine.retime.core import (
    CODEC_BY_SUFFIX,
    FrameMap,
    codec_for_output,
    make_synthesizer,
    pixel_plan,
    render_mapped,
)
from engine.retime.ramp import RampMap, SpeedKeyframe, SpeedRamp, load_ramp, parse_ramp, parse_speed
from engine.retime.report import FrameNote, FrameRisk, RetimeReport, read_sidecar, sidecar_path

__all__ = [
    "AUDIO_DROP",
    "AUDIO_KEEP",
    "AUDIO_MODES",
    "AUDIO_STRETCH",
    "CODEC_BY_SUFFIX",
    "FrameMap",
    "FrameNote",
    "FrameRisk",
    "RampMap",
    "RetimeReport",
    "SpeedKeyframe",
    "SpeedRamp",
    "atempo_chain",
    "check_source_range",
    "codec_for_output",
    "constant_speed_map",
    "load_ramp",
    "make_synthesizer",
    "parse_ramp",
    "parse_speed",
    "pixel_plan",
    "read_sidecar",
    "render_mapped",
    "resolve_audio_mode",
    "retime_clip",
    "sidecar_path",
    "stretch_audio",
]
