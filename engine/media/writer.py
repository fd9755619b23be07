"""Writing media: ``VideoWriter`` (a context manager) and ``write_video`` for a whole iterable.

    with VideoWriter(out_path, rate=Fraction(30000, 1001), codec="prores", bit_depth=10,
                     audio_from=source_clip, audio_range_s=(Fraction(2), Fraction(6))) as writer:
        for image in images:            # (h, w, 3 or 4) uint8 or uint16 RGB(A) arrays
            writer.write(image)

Codecs (``CODECS``): "h264" and "h265" in .mp4/.mov/.mkv (8-bit yuv420p, 10-bit yuv420p10le),
"prores" in .mov (prores_ks 422 HQ 10-bit; 4444 10-bit with alpha), "ffv1" in .mkv (lossless;
8-bit RGB, 10/16-bit 4:4:4, each with or without alpha) and "png" (a folder of numbered PNG
files, 8 or 16 bits, RGB or RGBA). Choices are checked before anything is written; a wrong one
raises ``UnsupportedOptionError`` listing what works.

Frame ``n`` gets pts ``n`` in a time base of ``1 / rate``, so 30000/1001 stays 30000/1001 in the
file. RGB is converted to Y'CbCr with BT.709 coefficients, tagged so; ``carried`` (``CarriedTags``)
keeps the source's colour primaries and transfer (the RGB values pass through in them), its
rotation, pixel aspect and start timecode (FFV1 carries the pixel aspect in its frames only: PyAV
cannot set it in the .mkv header, so a WARNING says so). PNG frames have no display matrix and no
timecode: their pixels are turned as the source displays, the pixel aspect goes into each frame's
pHYs chunk (x per unit the numerator, y the denominator, as FFmpeg writes and reads it) and a
WARNING names it and the first frame's timecode.

Levels (``tests/test_writer_levels.py``): from 8-bit RGB, luma and chroma are the exact BT.709
values rounded (swscale's exact rounding, ``EXACT_ROUNDING``): 8-bit video read and written again
keeps its colours within 0.03 of a level on average (its fast rounding left them 0.17 to 0.25 low).
16-bit RGB is taken with white at 65535, as ``FrameReader`` gives it from any source
(``engine.media.wide_levels``): 65535 is written as Y' 940 in 10-bit video (swscale alone wrote 943),
so a 10-bit RGB plate keeps its levels (within 1.2 codes, on average 0) and 10-bit video read and
written again stays within a code; its chroma comes out about 0.2 of a code low on average
(swscale's 16-bit path, which takes no exact-rounding flag here).

Audio: ``audio_from`` copies (remuxes, no re-encoding) every audio track of another file (a track
the container cannot hold is left out with a warning), optionally only
``audio_range_s=(start_s, end_s)`` of it in that file's clock, shifted to start at 0, and never
past the end of the video. Copying cuts at packet boundaries (an AAC packet is 1024 samples, about
21 ms at 48 kHz). A whole track's packets before 0 (an AAC encoder's priming, which the source
marks to be skipped) are copied into .mov and .mp4, whose edit list marks them again, and left out
of .mkv. Audio is interleaved with the video as it is written, so memory stays flat.

Matroska stores timestamps in milliseconds: the rate stays exact in .mkv, single frame times are
rounded to 1 ms there. Use .mov or .mp4 where exact per-frame times matter. Above
``MATROSKA_MAX_FPS`` frames would share a timestamp, so .mkv is refused there (.mov, .mp4 and PNG
frames keep any rate).

Atomic: everything goes to a temporary name beside the destination (a temporary folder for PNG
sequences) and is renamed into place by ``close``/the end of the ``with`` block. If anything raises,
the temporary is removed and a file that already stood at the destination is untouched.
"""

from __future__ import annotations

import contextlib
import logging
import re
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.reformatter import Interpolation

from engine.errors import MediaWriteError, OutputExistsError, UnsupportedOptionError
from engine.fsutil import MAX_NAME_BYTES, atomic_path
from engine.media._open import open_input
from engine.media.probe import VideoStreamInfo
from engine.media.rates import parse_frame_rate
from engine.media.wide_levels import apply_gains, write_gain

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CodecSpec:
    """One output codec: encoder, containers, and pixel formats by bit depth, opaque and with alpha."""

    name: str
    encoder: str | None
    suffixes: tuple[str, ...]
    formats: dict[int, str]
    alpha_formats: dict[int, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    alpha_options: dict[str, str] = field(default_factory=dict)
    quality_option: str | None = None
    quality_range: tuple[int, int] | None = None
    """The values ``quality_option`` takes (lower is better for CRF)."""
    description: str = ""


CODECS: dict[str, CodecSpec] = {
    spec.name: spec
    for spec in (
        CodecSpec(
            "h264",
            "libx264",
            (".mp4", ".mov", ".mkv"),
            {8: "yuv420p", 10: "yuv420p10le"},
            options={"preset": "medium", "crf": "18"},
            quality_option="crf",
            quality_range=(0, 51),
            description="H.264 (libx264), CRF 18 by default",
        ),
        CodecSpec(
            "h265",
            "libx265",
            (".mp4", ".mov", ".mkv"),
            {8: "yuv420p", 10: "yuv420p10le"},
            options={"preset": "medium", "crf": "20", "x265-params": "log-level=error"},
            quality_option="crf",
            quality_range=(0, 51),
            description="H.265/HEVC (libx265), CRF 20 by default",
        ),
        CodecSpec(
            "prores",
            "prores_ks",
            (".mov",),
            {10: "yuv422p10le"},
            {10: "yuva444p10le"},
            options={"profile": "3", "vendor": "apl0"},
            alpha_options={"profile": "4", "vendor": "apl0", "alpha_bits": "16"},
            description="ProRes 422 HQ, or 4444 with alpha (prores_ks)",
        ),
        CodecSpec(
            "ffv1",
            "ffv1",
            (".mkv",),
            {8: "bgr0", 10: "yuv444p10le", 16: "yuv444p16le"},
            {8: "bgra", 10: "yuva444p10le", 16: "yuva444p16le"},
            options={"level": "3", "slicecrc": "1", "g": "1"},
            description="FFV1 lossless",
        ),
        CodecSpec(
            "png",
            None,
            ("",),
            {8: "rgb24", 16: "rgb48"},
            {8: "rgba", 16: "rgba64"},
            description="folder of numbered PNG files",
        ),
    )
}

# Audio codecs each container takes as a copy.
_AUDIO_COPY_OK: dict[str, frozenset[str] | None] = {
    ".mp4": frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}),
    ".mov": frozenset(
        {
            "aac",
            "mp3",
            "alac",
            "ac3",
            "eac3",
            "pcm_s16le",
            "pcm_s16be",
            "pcm_s24le",
            "pcm_s24be",
            "pcm_s32le",
            "pcm_f32le",
            "pcm_u8",
        }
    ),
    ".mkv": None,
}
_MARKS_PRIMING = frozenset({".mp4", ".mov"})
"""Containers whose muxer turns audio packets before time 0 (an encoder's priming: the 1024 samples
an AAC encoder puts ahead of the sound) into an edit list, so that players skip them. Matroska
would shift every stream later instead, so there they are left out."""
_TAG_BT709 = 1
EXACT_ROUNDING = int(Interpolation.BILINEAR) | int(Interpolation.ACCURATE_RND)
"""swscale flags of the writer's 8-bit RGB to Y'CbCr conversion: exact rounding (the frame is not
resized, so the filter only shapes chroma downsampling)."""
MATROSKA_MAX_FPS = 1000
"""Matroska counts time in milliseconds: above this rate several frames would share a timestamp."""
_SAR_FROM_FRAMES = frozenset({"ffv1"})
"""Encoders that write each frame's pixel aspect ratio, not the codec's, into the stream."""


def audio_copy_fits(codec: str, suffix: str) -> bool:
    """Whether a container (``suffix``: ".mp4", ".mov", ".mkv") takes a copy of sound in ``codec``
    (FFmpeg's decoder name: "aac", "pcm_s24le")."""
    accepted = _AUDIO_COPY_OK.get(suffix.lower())
    return accepted is None or codec in accepted


def codec_choices() -> dict[str, str]:
    """Codecs this PyAV build can write, with a line each: {"h264": "H.264 (libx264) ...", ...}."""
    choices = {}
    for spec in CODECS.values():
        if spec.encoder is None or _encoder_pixel_formats(spec.encoder):
            choices[spec.name] = spec.description
    return choices


def _encoder_pixel_formats(encoder: str) -> set[str]:
    try:
        codec = av.codec.Codec(encoder, "w")
    except (av.error.FFmpegError, ValueError):
        return set()
    return {fmt.name for fmt in (codec.video_formats or ())}


@dataclass(frozen=True)
class _Plan:
    spec: CodecSpec
    pixel_format: str
    options: dict[str, str]
    bit_depth: int


def check_quality(codec: str, quality: int | None) -> None:
    """Refuse a quality ``codec`` does not take, before any work is done."""
    spec = CODECS.get(codec)
    if quality is None or spec is None:
        return
    if spec.quality_option is None:
        with_quality = [name for name, item in CODECS.items() if item.quality_option]
        raise UnsupportedOptionError(
            f"codec {codec} takes no quality setting; codecs with one: {', '.join(with_quality)}"
        )
    low, high = spec.quality_range or (quality, quality)
    if not low <= quality <= high:
        raise UnsupportedOptionError(
            f"quality {quality} is outside {low} to {high}, the {spec.quality_option.upper()} range of "
            f"{codec} (lower is better; {spec.options.get(spec.quality_option, '')} by default)"
        )


def plan_output(path: Path, codec: str, bit_depth: int | None, alpha: bool, quality: int | None) -> _Plan:
    """Check codec, container, bit depth and alpha together; raise ``UnsupportedOptionError``.

    ``bit_depth=None`` picks the codec's lowest depth (8, or 10 for ProRes).
    """
    if codec not in CODECS:
        raise UnsupportedOptionError(f"codec {codec!r} not supported; use one of: {', '.join(CODECS)}")
    spec = CODECS[codec]
    suffix = Path(path).suffix.lower()
    if codec == "png":
        if suffix:
            raise UnsupportedOptionError(
                f"a PNG sequence is written into a folder; give a folder path without a suffix, not {path}"
            )
    elif suffix not in spec.suffixes:
        raise UnsupportedOptionError(
            f"codec {codec} cannot be written to a {suffix or 'suffix-less'} file; "
            f"use: {', '.join(spec.suffixes)}"
        )
    table = spec.alpha_formats if alpha else spec.formats
    if not table:
        with_alpha = [name for name, item in CODECS.items() if item.alpha_formats]
        raise UnsupportedOptionError(
            f"codec {codec} has no alpha channel; codecs with alpha: {', '.join(with_alpha)}"
        )
    if bit_depth is None:
        bit_depth = min(table)
    if bit_depth not in table:
        depths = ", ".join(str(depth) for depth in table)
        raise UnsupportedOptionError(
            f"codec {codec}{' with alpha' if alpha else ''} cannot write {bit_depth}-bit; "
            f"bit depths: {depths}"
        )
    pixel_format = table[bit_depth]
    if spec.encoder is not None and pixel_format not in _encoder_pixel_formats(spec.encoder):
        raise UnsupportedOptionError(
            f"this PyAV/FFmpeg build has no {spec.encoder} encoder for {pixel_format}; "
            f"codecs available: {', '.join(codec_choices())}"
        )
    options = dict(spec.alpha_options if alpha and spec.alpha_options else spec.options)
    if quality is not None:
        check_quality(codec, quality)
        options[spec.quality_option] = str(int(quality))
    return _Plan(spec, pixel_format, options, bit_depth)


@dataclass(frozen=True)
class CarriedTags:
    """What an output takes over from its source, beside the pixels: how to display them.

    ``rotation_deg`` (a phone's portrait clip is stored sideways with a display matrix),
    ``sample_aspect_ratio`` (anamorphic footage), the colour primaries and transfer (the RGB values
    that pass through keep the source's: BT.2020 HLG stays BT.2020 HLG; the matrix is the one the
    writer encodes with), and ``timecode`` (the start timecode: the source's, or for a retimed
    range the source's at its first frame). PNG frames, which hold no display matrix, are written
    turned as the source displays."""

    rotation_deg: int = 0
    sample_aspect_ratio: Fraction | None = None
    color_primaries: int | None = None
    color_transfer: int | None = None
    timecode: str | None = None

    @classmethod
    def of(cls, info: VideoStreamInfo, *, timecode: str | None = None) -> CarriedTags:
        sar = info.sample_aspect_ratio
        return cls(
            rotation_deg=info.rotation_deg,
            sample_aspect_ratio=sar if sar and sar != 1 else None,
            color_primaries=info.color_primaries,
            color_transfer=info.color_transfer,
            timecode=timecode,
        )


class VideoWriter:
    """Write frames to a video file or PNG folder, atomically. See the module doc."""

    def __init__(
        self,
        path: Path,
        *,
        rate: Fraction | int | str,
        codec: str = "h264",
        bit_depth: int | None = None,
        alpha: bool = False,
        quality: int | None = None,
        audio_from: Path | None = None,
        audio_range_s: tuple[Fraction, Fraction] | None = None,
        png_start_number: int = 0,
        carried: CarriedTags | None = None,
        replace: bool = True,
    ) -> None:
        self.path = Path(path)
        self.replace = replace
        self.carried = carried or CarriedTags()
        self.rate = parse_frame_rate(rate)
        check_output_rate(self.path, self.rate)
        self.codec = codec
        self.alpha = alpha
        self._plan = plan_output(self.path, codec, bit_depth, alpha, quality)
        self.bit_depth = self._plan.bit_depth
        if audio_from is not None and codec == "png":
            raise UnsupportedOptionError(
                "a PNG sequence cannot hold audio; write .mov, .mp4 or .mkv for audio"
            )
        if audio_range_s is not None:
            if audio_from is None:
                raise UnsupportedOptionError("audio_range_s needs audio_from (the file to take audio from)")
            start_s, end_s = (Fraction(value) for value in audio_range_s)
            if start_s < 0 or end_s <= start_s:
                raise UnsupportedOptionError(f"audio range {start_s}..{end_s} s is empty or negative")
            audio_range_s = (start_s, end_s)
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.audio_range_s = audio_range_s
        self.png_start_number = png_start_number
        self.frame_count = 0
        self._exits = contextlib.ExitStack()
        self._temporary: Path | None = None
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._sar_graph: av.filter.Graph | None = None
        self._audio: _AudioCopy | None = None
        self._size: tuple[int, int] | None = None
        self._png_turns = 0
        self._png_phys: bytes | None = None
        self._finished = False
        self._open()

    # -- setup ---------------------------------------------------------------------------------

    def _open(self) -> None:
        try:
            self._temporary = self._exits.enter_context(
                atomic_path(self.path, directory=self.codec == "png", replace=self.replace)
            )
            if self.audio_from is not None:
                self._audio = self._exits.enter_context(
                    _AudioCopy.open(self.audio_from, self.audio_range_s, self.path.suffix.lower())
                )
        except BaseException:
            self._abort()
            raise

    def _start_video(self, width: int, height: int) -> None:
        assert self._temporary is not None
        if self.codec == "png":
            self._start_png()
            self._size = (width, height)
            return
        fmt = self._plan.pixel_format
        needs_even_height = fmt.startswith("yuv420") or fmt.startswith("yuva420")
        if fmt.startswith("yuv") and not fmt.startswith(("yuv444", "yuva444")) and (
            width % 2 or (height % 2 and needs_even_height)
        ):
            even = "width and height" if needs_even_height else "width"
            sar = self.carried.sample_aspect_ratio
            kept = (
                f" (FFV1 keeps the pixel aspect {_ratio(sar)} in its frames, not in the .mkv header; "
                "PNG frames say it in their pHYs chunk)"
                if sar and sar != 1
                else ""
            )
            raise UnsupportedOptionError(
                f"{self.codec} {fmt} needs an even {even}, got {width}x{height}; "
                f"write .mkv (FFV1, lossless) or PNG frames, which take any size{kept}, or crop or "
                f"pad the source to {_even_size(width, height, both=needs_even_height)} first"
            )
        options = {"movflags": "+write_colr"} if self.path.suffix.lower() in (".mp4", ".mov") else {}
        try:
            self._container = av.open(str(self._temporary), mode="w", options=options)
            stream = self._container.add_stream(self._plan.spec.encoder, rate=self.rate)
            stream.width, stream.height = width, height
            stream.pix_fmt = self._plan.pixel_format
            stream.time_base = 1 / self.rate
            stream.codec_context.time_base = 1 / self.rate
            stream.options = dict(self._plan.options)
            if self._plan.pixel_format.startswith("yuv"):
                stream.codec_context.colorspace = _TAG_BT709
            # primaries and transfer hold for RGB storage too (FFV1 keeps 8-bit pictures as RGB):
            # without them the output read as of unknown primaries and transfer
            stream.codec_context.color_primaries = self.carried.color_primaries or _TAG_BT709
            stream.codec_context.color_trc = self.carried.color_transfer or _TAG_BT709
            if self.carried.sample_aspect_ratio:
                stream.codec_context.sample_aspect_ratio = self.carried.sample_aspect_ratio
                if self._plan.spec.encoder in _SAR_FROM_FRAMES and self.carried.sample_aspect_ratio != 1:
                    log.warning(
                        "%s: the source's pixels are %s wide; FFV1 frames carry that, but the .mkv "
                        "header written here cannot, so players that read only the header show the "
                        "picture squeezed: %s",
                        self.path.name, self.carried.sample_aspect_ratio, _header_advice(width, height),
                    )
            if self.carried.rotation_deg:
                stream.set_display_rotation(self.carried.rotation_deg)
            if self.carried.timecode:
                self._container.metadata["timecode"] = self.carried.timecode
            if self.codec == "h265" and self.path.suffix.lower() in (".mp4", ".mov"):
                stream.codec_tag = "hvc1"
            self._stream = stream
            if self._audio is not None:
                self._audio.add_output_stream(self._container)
        except av.error.FFmpegError as error:
            raise MediaWriteError(f"cannot start writing {self.path} with {self.codec}: {error}") from None
        self._size = (width, height)

    # -- writing -------------------------------------------------------------------------------

    def write(self, image: np.ndarray) -> None:
        """Append one frame: an (h, w, 3) RGB or (h, w, 4) RGBA array, uint8 or uint16."""
        if self._finished:
            raise ValueError(f"writer for {self.path} is closed")
        image = self._check_image(image)
        height, width = image.shape[:2]
        try:
            if self._size is None:
                self._start_video(width, height)
            elif self._size != (width, height):
                raise UnsupportedOptionError(
                    f"frame {self.frame_count} is {width}x{height}; "
                    f"this file is {self._size[0]}x{self._size[1]}"
                )
            if self.codec == "png":
                self._write_png(image)
            else:
                self._encode(image)
        except BaseException:
            self._abort()
            raise
        self.frame_count += 1

    def _check_image(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype not in (np.uint8, np.uint16):
            raise UnsupportedOptionError(
                f"frame {self.frame_count} has shape {image.shape} and dtype {image.dtype}; "
                "expected (height, width, 3 or 4) uint8 or uint16"
            )
        if self.alpha and image.shape[2] == 3:
            opaque = np.iinfo(image.dtype).max
            image = np.concatenate([image, np.full(image.shape[:2] + (1,), opaque, image.dtype)], axis=2)
        elif not self.alpha and image.shape[2] == 4:
            image = image[:, :, :3]
        return np.ascontiguousarray(image)

    def _to_av_frame(self, image: np.ndarray) -> av.VideoFrame:
        wide = image.dtype == np.uint16
        fmt = {(False, 3): "rgb24", (False, 4): "rgba", (True, 3): "rgb48le", (True, 4): "rgba64le"}[
            (wide, image.shape[2])
        ]
        return av.VideoFrame.from_ndarray(image, format=fmt)

    def _encode(self, image: np.ndarray) -> None:
        assert self._stream is not None and self._container is not None
        to_yuv = self._plan.pixel_format.startswith("yuv")
        if to_yuv and image.dtype == np.uint16:
            gain = write_gain(self._plan.pixel_format)  # 16-bit white (65535) onto the target's white
            if gain is not None:
                image = apply_gains(image, gain)
        source = self._to_av_frame(image)
        # 8-bit to 8-bit Y'CbCr rounded exactly (swscale's fast path leaves colours a quarter of a
        # level low); 16-bit sources never take the flag (it garbles 10-bit colour in this build)
        exact = to_yuv and image.dtype == np.uint8 and self._plan.bit_depth == 8
        frame = source.reformat(
            format=self._plan.pixel_format,
            dst_colorspace="ITU709" if to_yuv else None,
            interpolation=EXACT_ROUNDING if exact else None,
        )
        frame.pts = self.frame_count
        frame.time_base = self._stream.codec_context.time_base
        # on each frame too: some encoders (prores_ks) take the colour tags from the frames,
        # and the codec's alone left ProRes .mov files with unknown primaries and transfer
        context = self._stream.codec_context
        if self._plan.pixel_format.startswith("yuv"):
            frame.colorspace = context.colorspace
        frame.color_primaries = context.color_primaries
        frame.color_trc = context.color_trc
        if self.carried.sample_aspect_ratio and self._plan.spec.encoder in _SAR_FROM_FRAMES:
            frame = self._with_sample_aspect_ratio(frame)
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
            if self._audio is not None:
                self._audio.mux_until(self._container, Fraction(self.frame_count + 1) / self.rate)
        except av.error.FFmpegError as error:
            raise MediaWriteError(
                f"encoding frame {self.frame_count} of {self.path} failed: {error}"
            ) from None

    def _with_sample_aspect_ratio(self, frame: av.VideoFrame) -> av.VideoFrame:
        """``frame`` carrying the source's pixel aspect ratio, for encoders that take it from each
        frame (FFV1), through FFmpeg's ``setsar`` (PyAV has no frame property for it)."""
        if self._sar_graph is None:
            ratio = self.carried.sample_aspect_ratio
            graph = av.filter.Graph()
            source = graph.add_buffer(
                width=frame.width, height=frame.height, format=frame.format.name,
                time_base=self._stream.codec_context.time_base,
            )
            setsar = graph.add("setsar", f"{ratio.numerator}/{ratio.denominator}")
            sink = graph.add("buffersink")
            source.link_to(setsar)
            setsar.link_to(sink)
            graph.configure()
            self._sar_graph = graph
        self._sar_graph.push(frame)
        out = self._sar_graph.pull()
        out.pts, out.time_base = frame.pts, frame.time_base
        return out

    def _start_png(self) -> None:
        """Settle what PNG frames take of ``carried``: they have no display matrix, so the pixels
        are turned as the source displays; the pixel aspect goes into each frame's pHYs chunk;
        the start timecode has no place in them, so a WARNING names it."""
        carried = self.carried
        turns = 0
        if carried.rotation_deg % 360:
            if carried.rotation_deg % 90:
                log.warning(
                    "%s: the source is shown turned by %d degrees, not a multiple of 90; the PNG "
                    "frames are written as stored, unturned",
                    self.path.name, carried.rotation_deg,
                )
            else:
                turns = (carried.rotation_deg % 360) // 90
                log.info(
                    "%s: frames turned %d degrees counter-clockwise, as the source displays "
                    "(PNG frames hold no display rotation)",
                    self.path.name, carried.rotation_deg % 360,
                )
        self._png_turns = turns
        sar = carried.sample_aspect_ratio
        self._png_phys = None
        if sar and sar != 1:
            if turns % 2:
                sar = 1 / sar  # turned a quarter, a pixel's width is its height
            self._png_phys = _phys_chunk(sar)
            log.warning(
                "%s: the pixel aspect is %s; each PNG frame's pHYs chunk says so as FFmpeg reads "
                "it (x %d : y %d; the PNG standard reads that chunk the other way round), but most "
                "image applications ignore it: set the pixel aspect to %s when you bring the "
                "frames in",
                self.path.name, _ratio(sar), sar.numerator, sar.denominator, _ratio(sar),
            )
        if carried.timecode:
            log.warning(
                "%s: PNG frames hold no timecode; the first frame's is %s (the report says it "
                "too): set it when you bring the frames in",
                self.path.name, carried.timecode,
            )

    def _write_png(self, image: np.ndarray) -> None:
        assert self._temporary is not None
        depth = 16 if self.bit_depth == 16 else 8
        if depth == 16 and image.dtype == np.uint8:
            image = image.astype(np.uint16) * 257
        elif depth == 8 and image.dtype == np.uint16:
            image = (image >> 8).astype(np.uint8)
        if self._png_turns:
            # counter-clockwise, as the display matrix asks and as FFmpeg's autorotation shows it
            image = np.ascontiguousarray(np.rot90(image, k=self._png_turns))
        code = cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
        target = self._temporary / png_frame_name(self.path, self.png_start_number + self.frame_count)
        encoded, data = cv2.imencode(".png", cv2.cvtColor(image, code))
        if not encoded:
            raise MediaWriteError(f"could not encode {target.name} for {self.path}")
        data = data.tobytes()
        if self._png_phys is not None:
            data = data[:_PNG_IHDR_END] + self._png_phys + data[_PNG_IHDR_END:]
        try:
            target.write_bytes(data)
        except OSError as error:
            raise MediaWriteError(f"could not write {target.name} into {self.path}: {error}") from None

    # -- finishing -----------------------------------------------------------------------------

    def close(self) -> Path:
        """Flush, finish the file and move it into place; returns the destination path."""
        if self._finished:
            return self.path
        try:
            if self.frame_count == 0:
                raise MediaWriteError(f"no frames were written to {self.path}; nothing to save")
            if self._container is not None and self._stream is not None:
                try:
                    for packet in self._stream.encode(None):
                        self._container.mux(packet)
                    if self._audio is not None:
                        self._audio.mux_until(self._container, Fraction(self.frame_count) / self.rate)
                    self._container.close()
                except av.error.FFmpegError as error:
                    raise MediaWriteError(f"finishing {self.path} failed: {error}") from None
                self._container = None
        except BaseException:
            self._abort()
            raise
        self._finished = True
        try:
            self._exits.close()
        except OutputExistsError:
            raise
        except OSError as error:
            raise MediaWriteError(f"could not move {self.path.name} into place: {error}") from None
        log.info("wrote %s: %d frames at %s fps (%s)", self.path, self.frame_count, self.rate, self.codec)
        return self.path

    def _abort(self) -> None:
        """Drop everything written so far; the destination is left as it was."""
        if self._finished:
            return
        self._finished = True
        if self._container is not None:
            with contextlib.suppress(av.error.FFmpegError, OSError):
                self._container.close()
            self._container = None
        failure = MediaWriteError(f"writing {self.path} was abandoned")
        self._exits.__exit__(MediaWriteError, failure, None)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()


def check_output_rate(output: Path, rate: Fraction) -> None:
    """Refuse a rate ``output``'s container cannot time: Matroska (.mkv) counts time in
    milliseconds, so above ``MATROSKA_MAX_FPS`` several frames would share a timestamp. Commands
    call it before their work, ``VideoWriter`` again when it opens."""
    if Path(output).suffix.lower() == ".mkv" and rate > MATROSKA_MAX_FPS:
        raise UnsupportedOptionError(
            f"{Path(output).name}: Matroska (.mkv) counts time in milliseconds, so at {float(rate):g} "
            "fps several frames would share a timestamp; write .mov or .mp4, or PNG frames, which keep "
            "any rate"
        )


def check_output_path(
    output: Path, source: Path, *, overwrite: bool, what: str, companions: tuple[str, ...] = ()
) -> None:
    """Refuse an ``output`` that would destroy something: an existing one without ``overwrite``,
    the ``source`` itself, or a folder (a PNG sequence replaces a whole folder) that holds
    anything but PNG frames written for it, such as the source or the user's other files.
    Refuse a name too long for the file system, itself or with one of the ``companions`` suffixes
    (a report written beside it). ``what`` names the result in the message ("retimed clip")."""
    output, source = Path(output), Path(source)
    for suffix in ("", *companions):
        length = len((output.name + suffix).encode("utf-8", "surrogateescape"))
        if length > MAX_NAME_BYTES:
            beside = f" with its {suffix} beside it" if suffix else ""
            raise UnsupportedOptionError(
                f"output name {output.name!r} is too long{beside}: file names take at most {MAX_NAME_BYTES} "
                f"bytes, so shorten it to {MAX_NAME_BYTES - len(suffix.encode())} bytes or fewer"
            )
    if output.exists() and not overwrite:
        raise OutputExistsError(f"{output} exists; choose another name or allow overwriting (--overwrite)")
    if output.resolve() == source.resolve():
        raise UnsupportedOptionError(f"output {output} is the source itself; write the {what} elsewhere")
    if output.is_dir():
        frames = re.compile(rf"^{re.escape(output.resolve().name)}_\d{{6}}\.png$")
        others = sorted(entry.name for entry in output.resolve().iterdir() if not frames.match(entry.name))
        if others:
            shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
            raise OutputExistsError(
                f"{output} is a folder holding other files ({shown}); writing PNG frames there would "
                "replace the whole folder: name a new or empty folder"
            )


def _ratio(value: Fraction) -> str:
    return f"{value.numerator}:{value.denominator}"


def _even_size(width: int, height: int, *, both: bool) -> str:
    """The size one pixel smaller where odd (the width, and the height too when ``both``), and
    how FFmpeg crops to it."""
    even_width, even_height = width - width % 2, (height - height % 2) if both else height
    return f"{even_width}x{even_height} (ffmpeg -vf crop={even_width}:{even_height})"


def _header_advice(width: int, height: int) -> str:
    """Which other output keeps a pixel aspect in its header, for a picture of this size."""
    if width % 2 == 0 and height % 2 == 0:
        return "write ProRes (.mov) or H.264/H.265 to keep it there too"
    if width % 2 == 0:
        return (
            "write ProRes (.mov), which takes this size, to keep it there too (H.264/H.265 need an "
            f"even height: crop or pad the source to {_even_size(width, height, both=True)} first)"
        )
    return (
        "ProRes (.mov) and H.264/H.265, which keep it there too, need an even width (H.264/H.265 "
        f"an even height too): crop or pad the source to {_even_size(width, height, both=True)} "
        "first to write them; PNG frames say it in their pHYs chunk"
    )


_PNG_IHDR_END = 8 + 4 + 4 + 13 + 4
"""Bytes of a PNG's signature and IHDR chunk: the pHYs chunk goes after them, before the pixels."""


def _phys_chunk(sample_aspect_ratio: Fraction) -> bytes:
    """A PNG pHYs chunk for a pixel aspect (unit unknown: a ratio only), written as FFmpeg writes
    and reads it: x per unit the numerator, y the denominator."""
    body = b"pHYs" + struct.pack(
        ">IIB", sample_aspect_ratio.numerator, sample_aspect_ratio.denominator, 0
    )
    return struct.pack(">I", 9) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def png_frame_name(folder: Path, number: int) -> str:
    """File name of PNG frame ``number`` in ``folder``: "<folder name>_000042.png"."""
    return f"{Path(folder).name}_{number:06d}.png"


def write_video(path: Path, images: Iterable[np.ndarray], *, rate: Fraction | int | str, **options) -> Path:
    """Write every array of ``images`` with a ``VideoWriter``; returns the destination."""
    with VideoWriter(path, rate=rate, **options) as writer:
        for image in images:
            writer.write(image)
    return Path(path)


class _AudioCopy:
    """Every audio track of a source file, copied packet by packet into the output as the video
    advances (a camera's or recorder's second and later tracks included)."""

    def __init__(
        self,
        source: Path,
        container: av.container.InputContainer,
        streams: list[av.audio.stream.AudioStream],
        range_s: tuple[Fraction, Fraction] | None,
        suffix: str,
    ) -> None:
        self.source = source
        self._keeps_priming = suffix in _MARKS_PRIMING
        self._input_streams = streams
        self._range = range_s
        self._offsets = {
            stream.index: round(range_s[0] / Fraction(stream.time_base)) if range_s is not None else 0
            for stream in streams
        }
        if range_s is not None:
            first = streams[0]
            container.seek(self._offsets[first.index], stream=first, backward=True)
        self._packets = self._selected(container.demux(*streams))
        self._pending: av.Packet | None = None
        self._output_streams: dict[int, av.stream.Stream] = {}

    @classmethod
    @contextlib.contextmanager
    def open(
        cls, source: Path, range_s: tuple[Fraction, Fraction] | None, suffix: str
    ) -> Iterator[_AudioCopy]:
        with open_input(source) as container:
            streams = list(container.streams.audio)
            if not streams:
                raise UnsupportedOptionError(f"{source} has no audio stream to copy")
            accepted = _AUDIO_COPY_OK.get(suffix)
            fitting = [s for s in streams if audio_copy_fits(s.codec_context.name, suffix)]
            if not fitting:
                codecs = ", ".join(sorted({s.codec_context.name for s in streams}))
                raise UnsupportedOptionError(
                    f"audio codec {codecs} of {source} cannot be copied into {suffix}; {suffix} takes: "
                    f"{', '.join(sorted(accepted))}: write .mkv, which takes any, or re-encode the sound "
                    "(retime --audio stretch) or leave it out (--audio drop)"
                )
            for left in (s for s in streams if s not in fitting):
                log.warning(
                    "%s: audio track %d (%s) cannot be copied into %s and is left out; .mkv takes any",
                    source.name,
                    left.index,
                    left.codec_context.name,
                    suffix,
                )
            yield cls(source, container, fitting, range_s, suffix)

    @property
    def tracks(self) -> int:
        return len(self._input_streams)

    def add_output_stream(self, output: av.container.OutputContainer) -> None:
        for stream in self._input_streams:
            self._output_streams[stream.index] = output.add_stream_from_template(stream)

    def _selected(self, packets: Iterator[av.Packet]) -> Iterator[av.Packet]:
        past_the_end: set[int] = set()
        for packet in packets:
            if packet.size == 0 or packet.pts is None:
                continue
            offset = self._offsets[packet.stream.index]
            if packet.pts < offset and not (offset == 0 and self._keeps_priming):
                continue
            if self._range is not None and packet.pts * Fraction(packet.stream.time_base) >= self._range[1]:
                past_the_end.add(packet.stream.index)
                if len(past_the_end) == len(self._input_streams):
                    return  # every track is past the range: read no further
                continue
            yield packet

    def mux_until(self, output: av.container.OutputContainer, time_s: Fraction | None) -> None:
        """Mux source packets that start before ``time_s`` of output time (None: all that remain)."""
        while True:
            packet = self._pending if self._pending is not None else next(self._packets, None)
            self._pending = None
            if packet is None:
                return
            offset = self._offsets[packet.stream.index]
            out_pts = packet.pts - offset
            if time_s is not None and out_pts * Fraction(packet.stream.time_base) >= time_s:
                self._pending = packet
                return
            packet.pts = out_pts
            if packet.dts is not None:
                packet.dts = packet.dts - offset
            packet.stream = self._output_streams[packet.stream.index]
            output.mux(packet)
