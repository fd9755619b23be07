"""Small test clips rendered with PyAV, each with its expected answer (the ffmpeg binary only for
``render_multitrack_clip``, which PyAV cannot write: tests using it skip where ffmpeg is missing).

Other tests import it: ``from media_factory import render_clip``. Everything is tiny (64x48 by
default, a few dozen frames) so a whole test file renders its media in well under a second.

    render_clip(path, rate=Fraction(30000, 1001), frame_count=30)      CFR H.264 mp4
    render_clip(path, pts=[0, 1, 3, 4, 8], time_base=Fraction(1, 100)) VFR: these exact pts
    render_images(path, images, pts, rate)                               given pictures, given pts
    render_with_sound(path, pictures, rate, sound, sample_rate, "aac")   given pictures and sound
    render_clip(path, audio=True) / pixel_format="yuv420p10le" / codec="ffv1", pixel_format="yuva444p"
    render_clip(path, metadata={"com.android.capture.fps": "240.000000"}, rotation_deg=90)
    render_audio_only(path), render_zero_frame_clip(path), write_text_file(path)
    truncated_copy(src, dst), corrupt_copy(src, dst)
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

RATES = {
    "23.976": Fraction(24000, 1001),
    "29.97": Fraction(30000, 1001),
    "25": Fraction(25),
    "240": Fraction(240),
}


def frame_pattern(
    index: int, width: int = 64, height: int = 48, *, bits: int = 8, alpha: bool = False
) -> np.ndarray:
    """A deterministic RGB(A) picture for frame ``index``: a moving bar over a gradient plus texture.

    uint8 for ``bits=8``, otherwise uint16 scaled to the full 16-bit range.
    """
    y, x = np.mgrid[0:height, 0:width]
    top = 65535 if bits > 8 else 255
    red = x * top // max(width - 1, 1)
    green = y * top // max(height - 1, 1)
    blue = ((x * 7 + y * 13 + index * 29) % 64) * (top // 64)
    bar = (x >= (index * 3) % width) & (x < (index * 3) % width + max(width // 8, 2))
    red = np.where(bar, top, red)
    green = np.where(bar, top, green)
    channels = [red, green, blue]
    if alpha:
        channels.append(np.where(y < height // 2, top, top // 3))
    image = np.stack(channels, axis=2)
    return image.astype(np.uint16 if bits > 8 else np.uint8)


def render_clip(
    path: Path,
    *,
    rate: Fraction = Fraction(25),
    frame_count: int = 24,
    size: tuple[int, int] = (64, 48),
    codec: str = "libx264",
    pixel_format: str = "yuv420p",
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    gop_frames: int = 12,
    b_frames: int = 2,
    audio: bool = False,
    sound: np.ndarray | None = None,
    audio_start_s: Fraction = Fraction(0),
    metadata: dict[str, str] | None = None,
    rotation_deg: int | None = None,
    faststart: bool = False,
) -> Path:
    """Render a clip; with ``pts`` the frames get exactly those timestamps in ``time_base`` (VFR).

    Without ``pts``, frame n has pts n in a time base of 1/rate, so its time is n / rate exactly.
    ``audio`` adds a mono AAC track: a 440 Hz tone as long as the video, or ``sound`` (float
    samples at 48 kHz) when given, starting ``audio_start_s`` after the video (a recorder's late
    sound).
    """
    path = Path(path)
    width, height = size
    components = av.VideoFormat(pixel_format).components
    bits = 16 if max(c.bits for c in components) > 8 else 8
    alpha = any(c.is_alpha for c in components)
    options: dict[str, str] = {}
    if metadata and path.suffix.lower() in (".mp4", ".mov"):
        options["movflags"] = "use_metadata_tags"
    if faststart:
        options["movflags"] = (options.get("movflags", "") + "+faststart").lstrip("+")
    stamps = list(pts) if pts is not None else list(range(frame_count))
    stream_time_base = Fraction(time_base) if time_base is not None else 1 / Fraction(rate)
    with av.open(str(path), mode="w", options=options) as container:
        for key, value in (metadata or {}).items():
            container.metadata[key] = value
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = pixel_format
        stream.time_base = stream_time_base
        stream.codec_context.time_base = stream_time_base
        if codec in ("libx264", "libx265"):
            stream.options = {"g": str(gop_frames), "bf": str(b_frames), "crf": "20", "preset": "ultrafast"}
            if codec == "libx265":
                stream.options["x265-params"] = "log-level=error"
        if rotation_deg is not None:
            stream.set_display_rotation(rotation_deg)
        audio_stream = None
        if audio:
            audio_stream = container.add_stream("aac", rate=48000)
            audio_stream.layout = "mono"
        for number, stamp in enumerate(stamps):
            image = frame_pattern(number, width, height, bits=bits, alpha=alpha)
            fmt = ("rgba64le" if alpha else "rgb48le") if bits > 8 else ("rgba" if alpha else "rgb24")
            frame = av.VideoFrame.from_ndarray(image, format=fmt)
            frame.pts = stamp
            frame.time_base = stream_time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
        if audio_stream is not None:
            _encode_tone(
                container,
                audio_stream,
                seconds=Fraction(stamps[-1] + 1) * stream_time_base if stamps else Fraction(1),
                sound=sound,
                first_sample=round(Fraction(audio_start_s) * 48000),
            )
    return path


def render_images(
    path: Path, images: Sequence[np.ndarray], pts: Sequence[int], rate: Fraction, *, crf: int = 12
) -> Path:
    """H.264 of RGB ``images`` with frame k at pts ``pts[k]`` in a time base of 1 / rate (gaps in
    ``pts`` are frames a recording lost)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = images[0].shape[1], images[0].shape[0], "yuv420p"
        stream.time_base = stream.codec_context.time_base = 1 / Fraction(rate)
        stream.options = {"crf": str(crf), "preset": "ultrafast", "bf": "2", "g": "48"}
        for image, stamp in zip(images, pts, strict=True):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = stamp, 1 / Fraction(rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return Path(path)


def render_with_sound(
    path: Path,
    pictures: Sequence[np.ndarray],
    *,
    rate: Fraction | int,
    sound: np.ndarray,
    sample_rate: int,
    audio_codec: str,
) -> Path:
    """H.264 ``pictures`` (RGB uint8) at ``rate`` with mono ``sound`` (float samples in -1..1) at
    ``sample_rate`` in ``audio_codec`` (``aac`` or a ``pcm_`` codec); the sound is stamped from 0,
    so an AAC track's priming is marked to be skipped."""
    pcm = audio_codec.startswith("pcm_")
    height, width = pictures[0].shape[:2]
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream(audio_codec, rate=sample_rate)
        audio.layout = "mono"
        for picture in pictures:
            for packet in video.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        for start in range(0, sound.size, 1024):
            chunk = sound[None, start : start + 1024]
            if pcm:
                chunk = (chunk * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(chunk), format="s16" if pcm else "fltp", layout="mono"
            )
            frame.sample_rate, frame.pts, frame.time_base = sample_rate, start, Fraction(1, sample_rate)
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode(None):
            container.mux(packet)
    return path


def _encode_tone(
    container, stream, *, seconds: Fraction, sound: np.ndarray | None = None, first_sample: int = 0
) -> None:
    if sound is not None:
        tone = np.asarray(sound, np.float32)
        samples = len(tone)
    else:
        samples = int(seconds * 48000)
        t = np.arange(samples) / 48000.0
        tone = (0.2 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    for start in range(0, samples, 1024):
        chunk = tone[start : start + 1024]
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = 48000
        frame.pts = first_sample + start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def render_audio_only(path: Path, seconds: Fraction = Fraction(1)) -> Path:
    """An AAC file (.m4a) with no video stream."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=48000)
        stream.layout = "mono"
        _encode_tone(container, stream, seconds=seconds)
    return Path(path)


def render_zero_frame_clip(path: Path) -> Path:
    """A container with a video stream that holds no frames."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height = 64, 48
        stream.pix_fmt = "yuv420p"
        container.start_encoding()
    return Path(path)


def write_text_file(path: Path) -> Path:
    """A file that is not media at all."""
    Path(path).write_text("this is a shopping list, not a video\n" * 20, encoding="utf-8")
    return Path(path)


def truncated_copy(source: Path, destination: Path, keep_fraction: float = 0.5) -> Path:
    """The first ``keep_fraction`` of ``source``'s bytes (render the source with ``faststart=True``)."""
    data = Path(source).read_bytes()
    Path(destination).write_bytes(data[: int(len(data) * keep_fraction)])
    return Path(destination)


def corrupt_copy(source: Path, destination: Path, *, length: int = 4000, seed: int = 1) -> Path:
    """``source`` with ``length`` random bytes written over the middle of the file."""
    data = bytearray(Path(source).read_bytes())
    middle = len(data) // 2
    noise = np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
    data[middle : middle + length] = noise[: max(0, min(length, len(data) - middle))]
    Path(destination).write_bytes(bytes(data))
    return Path(destination)


HARMONICS = 14
FORMANTS_HZ = ((650.0, 120.0), (1700.0, 200.0), (2900.0, 300.0))


def voice(
    seconds: float, speed: float = 1.0, rate: int = 16000, start_s: float = 0.0, seed: int = 0
) -> np.ndarray:
    """A voiced sound (harmonics of a gliding 150-190 Hz pitch under three formants, plus breath
    noise) as heard when played ``speed`` times as fast by resampling: sound(speed * t), so every
    frequency, formants included, is multiplied by ``speed``."""
    rng = np.random.default_rng(seed)
    t = start_s + np.arange(int(seconds * rate)) / rate
    source_t = speed * t
    pitch_hz = 170.0 + 20.0 * np.sin(2 * np.pi * 0.7 * source_t)
    phase = 2 * np.pi * np.cumsum(pitch_hz) * speed / rate
    signal = np.zeros_like(t)
    for harmonic in range(1, HARMONICS + 1):
        frequency = harmonic * 170.0
        gain = (
            sum(math.exp(-0.5 * ((frequency - centre) / width) ** 2) for centre, width in FORMANTS_HZ) + 0.05
        )
        signal += gain * np.sin(harmonic * phase + rng.uniform(0, 2 * np.pi))
    signal += 0.02 * rng.standard_normal(len(t))
    return (0.1 * signal / np.max(np.abs(signal))).astype(np.float32)


def resample_to_48k(sound: np.ndarray) -> np.ndarray:
    positions = np.arange(int(len(sound) * 48000 / 16000)) * 16000 / 48000
    return np.interp(positions, np.arange(len(sound)), sound).astype(np.float32)


def render_multitrack_clip(path: Path, *, seconds: int = 1, timecode: str = "01:00:10:00") -> Path:
    """A camera-style .mov made with the ffmpeg command: H.264 picture, two mono PCM tracks with
    no named channel layout, and a start timecode (tmcd track)."""
    command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi"]
    command += ["-i", f"testsrc2=size=64x48:rate=25:duration={seconds}"]
    command += ["-f", "lavfi", "-i", f"sine=f=440:duration={seconds}"]
    command += ["-f", "lavfi", "-i", f"sine=f=880:duration={seconds}"]
    command += ["-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "libx264", "-pix_fmt", "yuv420p"]
    command += ["-c:a", "pcm_s16le", "-timecode", timecode, str(path)]
    subprocess.run(command, check=True)
    return Path(path)


def render_interlaced_clip(path: Path, *, frame_count: int = 24, gop_frames: int = 6) -> Path:
    """An interlaced 25i H.264 clip made with the ffmpeg command: testsrc2 at 50 progressive frames
    a second, woven two by two into top-field-first frames, so its moving bar combs."""
    command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=50"]
    command += ["-vf", "tinterlace=interleave_top,setfield=tff", "-frames:v", str(frame_count)]
    command += ["-c:v", "libx264", "-flags", "+ilme+ildct", "-g", str(gop_frames), "-bf", "2"]
    command += ["-pix_fmt", "yuv420p", str(path)]
    subprocess.run(command, check=True)
    return Path(path)


def combing(image: np.ndarray) -> float:
    """Mean distance of each line from the mean of the lines above and below: the stripes where an
    interlaced frame's two fields disagree on motion."""
    grey = image.astype(np.float64).mean(axis=2) if image.ndim == 3 else image.astype(np.float64)
    return float(np.abs(grey[1:-1] - (grey[:-2] + grey[2:]) / 2).mean())
