"""Media in and out: probe a file, read its frames, write new media. Plain Python on PyAV.

Stable API (other parts of Chronoscope import only these names):

    probe(path, *, scan_packets=True) -> MediaInfo
        MediaInfo: container_format, duration_s, video: [VideoStreamInfo], audio: [AudioStreamInfo],
        .video_stream (the first video stream), .to_dict() (JSON-friendly, fractions as "num/den").
        VideoStreamInfo: width, height, frame_rate (exact Fraction; alias .rate), time_base,
        frame_count (exact, from a packet scan), duration_s, start_pts, is_vfr,
        min/max_frame_interval_s, pixel_format, bit_depth, has_alpha, rotation_deg, capture
        (CaptureInfo: capture_fps, high_frame_rate_stream, hints), truncated, sources,
        leading_frames_left_out (a stream cut mid-GOP starts at its first keyframe; start_s is
        the first frame shown). Attached pictures (cover art) are not listed as video.
    probe_video(path) -> VideoStreamInfo

    FrameReader(path, *, output="rgb24"|"rgb48"|"rgba"|"rgba64", size=(w, h) | None,
                apply_rotation=False, strict=True, stream=0, threads=0)
        context manager; .info, .frame_count, .time_base, .pts_index, .frames(start, stop),
        .read_frame(index), iteration; yields Frame(index, pts, time_base, image, is_keyframe)
        with .time_s = pts * time_base exactly.
    read_frame(path, index, **options) -> Frame;  iter_frames(path, start, stop, **options)

    VideoWriter(path, *, rate, codec="h264"|"h265"|"prores"|"ffv1"|"png", bit_depth=None,
                alpha=False, quality=None, audio_from=None, audio_range_s=None)
        context manager; .write(image) for (h, w, 3|4) uint8/uint16 arrays. Written to a temporary
        name and renamed when complete; on error nothing is left and an old file stays.
    write_video(path, images, *, rate, **options) -> Path
    CODECS (the codec table), codec_choices() (what this PyAV build can write)

    parse_frame_rate("29.97") -> Fraction(30000, 1001), frames_to_seconds, pts_to_seconds, ...

Errors are engine.errors classes: MediaNotFoundError, NotVideoError, CorruptMediaError,
EmptyMediaError, FrameOutOfRangeError, UnsupportedOptionError, MediaWriteError.

Frames are raw as stored (rotation metadata is reported, applied only with apply_rotation=True).
"""

from engine.filetypes import VIDEO_FILE_SUFFIXES
from engine.media.probe import AudioStreamInfo, CaptureInfo, MediaInfo, VideoStreamInfo, probe, probe_video
from engine.media.rates import (
    frame_duration_s,
    frames_to_seconds,
    parse_frame_rate,
    pts_to_seconds,
    seconds_to_pts,
)
from engine.media.reader import OUTPUT_FORMATS, Frame, FrameReader, iter_frames, read_frame
from engine.media.writer import CODECS, VideoWriter, codec_choices, write_video

__all__ = [
    "AudioStreamInfo",
    "CODECS",
    "CaptureInfo",
    "Frame",
    "FrameReader",
    "MediaInfo",
    "OUTPUT_FORMATS",
    "VideoStreamInfo",
    "VIDEO_FILE_SUFFIXES",
    "VideoWriter",
    "codec_choices",
    "frame_duration_s",
    "frames_to_seconds",
    "iter_frames",
    "parse_frame_rate",
    "probe",
    "probe_video",
    "pts_to_seconds",
    "read_frame",
    "seconds_to_pts",
    "write_video",
]
