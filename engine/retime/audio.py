"""Audio for a retimed clip: drop it, keep it as is (speed 1 only), or stretch it keeping pitch.

``stretch`` decodes the source's first audio stream and runs it through FFmpeg's ``atempo``
filter (PyAV's filter graph; no ffmpeg binary), which changes tempo without changing pitch. One
``atempo`` takes tempos from 0.5 to 2, so slower speeds are a chain: 0.25 = 0.5 x 0.5,
0.1 = 0.5 x 0.5 x 0.5 x 0.8 (``atempo_chain``). ``atempo`` ends a few milliseconds short or long
of the exact length, so the chain ends in ``apad`` + ``atrim``: the stretched audio has exactly
round(source samples / speed) samples. It is encoded as AAC into a temporary .m4a (or, for PCM
sound going into .mov or .mkv, as 24-bit PCM in a temporary .mov) that the video writer then copies
into the output, interleaved with the video.

Times are the video's: ``range_s=(start_s, end_s)`` counts seconds from the first video frame
(``video_start_s``, its time in the file). Audio and video streams need not start together (a
recorder's sound starting half a second late, an edit list delaying the picture), so each sample's
time is taken from the audio stream's own start: the range stretches the samples that play with
those frames (``atrim``, sample-exact), with silence before the sound starts and after it ends, and
the result has exactly round((end - start) / speed) samples.

``atempo`` plays sound early (19 ms at speed 1/2 and 47 ms at 1/4 for a 60 ms beep at 48 kHz,
more the slower, the shorter the sound and the longer atempo's window: rate / 24 samples rounded
up to a power of two, 43 ms at 48 kHz, 46 ms at 44.1 and 22.05 kHz, 64 ms at 32 kHz):
``atempo_lead_samples`` measures that lead on beeps for the chain and sample rate (the median over
beeps at different places in atempo's fragments), and the input is delayed by it, so that a beep
at source time t is heard at t / speed, with its frame, at any rate. A shorter or noisier sound
still comes out earlier than a beep (a 20 ms noise burst about 45 ms at 1/4): WSOLA does not
move all sounds alike, and no one delay can put every kind of sound on its frame.
At speed 1 there is no ``atempo`` (``reencode_audio``: the sound re-encoded, its timing unchanged).

An AAC encoder puts 1024 samples of priming ahead of the sound. The stretched frames are stamped
with their sample counts, so the encoder's packets start at -1024 and the .m4a's edit list tells
players to skip them; the video writer copies that packet before 0 into .mov and .mp4, which mark
it the same way. (Encoded without stamps, the packets started at 0 and every sound came 1024
samples late: 21 ms at 48 kHz.)

A truncated file (its tail cut off, the index kept): the damaged last packet is left out and the
sound is stretched up to the cut, with a WARNING, as the picture ends there too.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from engine.errors import CorruptMediaError, UnsupportedOptionError
from engine.fsutil import atomic_path

log = logging.getLogger(__name__)

AUDIO_DROP = "drop"
AUDIO_KEEP = "keep"
AUDIO_STRETCH = "stretch"
AUDIO_MODES = (AUDIO_DROP, AUDIO_STRETCH, AUDIO_KEEP)

ATEMPO_MIN = Fraction(1, 2)
ATEMPO_MAX = Fraction(2)
STRETCH_CODEC = "aac"
STRETCH_BIT_RATE = 192_000
STRETCH_PCM_CODEC = "pcm_s24le"
"""What ``pcm=True`` writes instead of AAC: 24-bit PCM, for sources whose sound is PCM (camera and
recorder files) going into .mov or .mkv, so the slowed sound is not made lossy on the way."""


def atempo_chain(speed: Fraction) -> list[Fraction]:
    """Tempo factors, each within 0.5..2, whose product is ``speed`` exactly."""
    speed = Fraction(speed)
    if speed <= 0:
        raise UnsupportedOptionError(f"audio tempo {speed} is not above 0")
    factors = []
    while speed < ATEMPO_MIN:
        factors.append(ATEMPO_MIN)
        speed /= ATEMPO_MIN
    while speed > ATEMPO_MAX:
        factors.append(ATEMPO_MAX)
        speed /= ATEMPO_MAX
    factors.append(speed)
    return factors


_PROBE_BEEP_S = Fraction(60, 1000)
_PROBE_TONE_HZ = 1000
_PROBE_BEEPS = 9
_PROBE_FIRST_S = Fraction(1, 2)
_PROBE_GAP_S = Fraction(3, 10)
_PROBE_STEP_SAMPLES = 61
"""Probe beeps: 60 ms of 1 kHz, Hann-shaped, every 0.3 s from 0.5 s, each starting 61 samples
further off that grid than the one before, so that they fall at different places in ``atempo``'s
fragments (its hop is a few hundred samples)."""


def _run_chain(signal: np.ndarray, chain: tuple[Fraction, ...], rate: int) -> np.ndarray:
    """``signal`` (mono float32 samples at ``rate``) through an ``atempo`` chain, flushed."""
    graph = av.filter.Graph()
    node = graph.add_abuffer(sample_rate=rate, format="fltp", layout="mono", time_base=Fraction(1, rate))
    for factor in chain:
        step = graph.add("atempo", f"{float(factor):.12g}")
        node.link_to(step)
        node = step
    sink = graph.add("abuffersink")
    node.link_to(sink)
    graph.configure()
    pieces: list[np.ndarray] = []

    def drain() -> None:
        while True:
            try:
                pieces.append(graph.pull().to_ndarray()[0])
            except (av.error.BlockingIOError, av.error.EOFError):
                return

    for offset in range(0, signal.size, 1024):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(signal[None, offset : offset + 1024]),
                                           format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, offset, Fraction(1, rate)
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    return np.concatenate(pieces).astype(np.float64)


def _energy_centre(samples: np.ndarray, first: int, end: int) -> float:
    """Centre of the energy of ``samples[first:end]``, in samples from the start of ``samples``."""
    first, end = max(0, first), min(samples.size, end)
    energy = np.square(samples[first:end])
    return first + float((np.arange(energy.size) * energy).sum() / energy.sum())


@functools.lru_cache(maxsize=64)
def atempo_lead_samples(chain: tuple[Fraction, ...], rate: int) -> int:
    """How early (in output samples at ``rate``) an ``atempo`` chain plays a beep: a sound at
    input sample n comes out before n / speed. Measured, not modelled: nine Hann-shaped 60 ms
    1 kHz beeps, each at a different place in atempo's fragments, are pushed through the same
    chain at the same rate; the answer is the median over the beeps of where the centre of each
    one's energy belongs (its source centre / speed) minus where it came out.

    How early depends on the sound: the shorter and the noisier, the earlier (WSOLA lays copies
    of a short sound ahead of it, and on noise its alignment search runs ahead of the ideal
    position). At speed 1/4, 48 kHz: a 60 ms beep 47 ms, a 40 ms pop 63 ms, a 20 ms noise burst
    about 90 ms, give or take 5 to 10 ms from one burst to the next; at 32 kHz nearly twice that
    (atempo's window there is 64 ms, against 43 ms at 48 kHz and 46 ms at 44.1 and 22.05 kHz).
    The single noise burst this replaced measured 7 ms more than a beep's lead at 48 kHz and
    10 ms more at 44.1 kHz (speed 1/4; 30 ms more at 44.1 kHz and 1/8), and beeps came that late.
    """
    speed = math.prod(chain, start=Fraction(1))
    beep = round(_PROBE_BEEP_S * rate)
    gap = round(_PROBE_GAP_S * rate)
    tone = np.sin(2 * np.pi * _PROBE_TONE_HZ * np.arange(beep) / rate)
    shape = (tone * np.hanning(beep)).astype(np.float32)
    starts = [round(_PROBE_FIRST_S * rate) + k * (gap + _PROBE_STEP_SAMPLES) for k in range(_PROBE_BEEPS)]
    signal = np.zeros(starts[-1] + beep + round(_PROBE_FIRST_S * rate), np.float32)
    for start in starts:
        signal[start : start + beep] = 0.8 * shape
    heard = _run_chain(signal, chain, rate)
    energy = np.square(shape.astype(np.float64))
    centre_in_beep = float((np.arange(beep) * energy).sum() / energy.sum())
    half_gap = gap / 2 / float(speed)  # output samples either side of where a beep belongs
    leads = []
    for start in starts:
        belongs = (start + centre_in_beep) / float(speed)
        leads.append(belongs - _energy_centre(heard, round(belongs - half_gap), round(belongs + half_gap)))
    return max(0, round(float(np.median(leads))))


@dataclass(frozen=True)
class StretchedAudio:
    """What ``stretch_audio`` wrote: samples in and out, at ``sample_rate``."""

    path: Path
    sample_rate: int
    input_samples: int
    output_samples: int
    chain: tuple[Fraction, ...]

    @property
    def duration_s(self) -> Fraction:
        return Fraction(self.output_samples, self.sample_rate)


def has_audio(source: Path) -> bool:
    with av.open(str(source)) as container:
        return bool(container.streams.audio)


@dataclass
class _AudioDecoder:
    """The decoded frames of one audio stream. A damaged packet at the very end is a truncated
    tail (a file cut off while written or copied): it is left out and ``truncated`` says so, as
    the video reader stops after the last complete frame. Damage anywhere else raises."""

    container: av.container.InputContainer
    stream: av.audio.stream.AudioStream
    truncated: bool = False

    def frames(self) -> Iterator[av.AudioFrame]:
        damaged: av.Packet | None = None
        for packet in self.container.demux(self.stream):
            if packet.size and damaged is not None:
                yield from damaged.decode()  # not the tail: decoded, and an error raises
                damaged = None
            if packet.size and packet.is_corrupt:
                damaged = packet
                continue
            yield from packet.decode()  # an empty packet at the end flushes the decoder
        self.truncated = damaged is not None


def _declared_samples(stream: av.audio.stream.AudioStream) -> int | None:
    """How many samples the container says the stream plays (an .mp4's or .mov's edit list and
    track length), or None where it does not say."""
    if not stream.duration or stream.time_base is None or not stream.rate:
        return None
    return round(Fraction(stream.duration) * Fraction(stream.time_base) * stream.rate)


def _count_samples(source: Path) -> tuple[int, bool]:
    """Samples in the first audio stream of ``source``, and whether its tail is cut off.

    An AAC (or MP3, Opus) encoder fills its last frame with silence, and decoding gives that
    padding too: 384 more samples than the 144 000 of a 3 s sound at 48 kHz, 8 ms. The container
    says how long the sound plays (a .mov's or .mp4's track length); where it says less than was
    decoded, the sound ends there, so a stretched sound is not the padding / speed longer than
    its picture (16 ms at speed 1/2)."""
    with av.open(str(source)) as container:
        stream = container.streams.audio[0]
        decoder = _AudioDecoder(container, stream)
        samples = sum(frame.samples for frame in decoder.frames())
        declared = _declared_samples(stream)
        if declared is not None and 0 < declared < samples:
            log.debug("%s: %d samples decoded, %d played (the encoder's padding left out)",
                      source.name, samples, declared)
            samples = declared
        return samples, decoder.truncated


def _named_layout(stream: av.audio.stream.AudioStream) -> str:
    """The stream's channel layout, or the usual one for its channel count when the file leaves it
    unspecified (``1 channels``, as multi-track camera and recorder files do): the encoder needs
    a named layout."""
    name = stream.layout.name
    if "channels" not in name:
        return name
    channels = stream.codec_context.channels or len(stream.layout.channels)
    return {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}.get(
        channels, name
    )


def stretch_audio(
    source: Path,
    destination: Path,
    *,
    speed: Fraction,
    range_s: tuple[Fraction, Fraction] | None = None,
    video_start_s: Fraction = Fraction(0),
    pcm: bool = False,
) -> StretchedAudio:
    """Write the first audio stream of ``source`` slowed to ``speed`` (pitch kept) as AAC in an
    .m4a, or with ``pcm`` as 24-bit PCM in a .mov (name ``destination`` accordingly).

    ``range_s``: only that stretch of the source, in exact seconds (see the module doc).
    ``input_samples`` of the answer counts the source samples inside the range.
    Raises ``UnsupportedOptionError`` when ``source`` has no audio or the range is empty,
    ``CorruptMediaError`` when it cannot be decoded. ``destination`` is written through a temporary
    name.
    """
    speed = Fraction(speed)
    chain = atempo_chain(speed)
    if range_s is not None:
        start_s, end_s = (Fraction(value) for value in range_s)
        if not 0 <= start_s < end_s:
            raise UnsupportedOptionError(
                f"audio range {start_s} s to {end_s} s is empty or starts before 0; "
                "give (start_s, end_s) with 0 <= start_s < end_s"
            )
    try:
        input_samples, truncated = _count_samples(source)
    except IndexError:
        raise UnsupportedOptionError(
            f"{source} has no audio stream to stretch; use audio mode drop"
        ) from None
    except av.error.FFmpegError as error:
        raise CorruptMediaError(f"audio of {source} cannot be decoded: {error}") from None
    written = 0
    try:
        with av.open(str(source)) as container, atomic_path(destination) as temporary:
            stream = container.streams.audio[0]
            rate = stream.rate
            if truncated:
                log.warning(
                    "%s is truncated: its sound is stretched up to the cut, %.3f s of it "
                    "(the picture ends there too)",
                    source.name,
                    input_samples / rate,
                )
            sample_time_base = Fraction(1, rate)
            audio_start_s = (
                Fraction(stream.start_time) * Fraction(stream.time_base)
                if stream.start_time is not None and stream.time_base is not None
                else Fraction(0)
            )
            lead_in_s = Fraction(video_start_s) - audio_start_s  # sound before the first frame
            if range_s is None and lead_in_s == 0:
                first_sample, end_sample = 0, input_samples
                steps = []
            else:
                if range_s is None:
                    audio_end_s = audio_start_s + Fraction(input_samples, rate)
                    start_s, end_s = Fraction(0), audio_end_s - video_start_s
                first_sample = round((start_s + lead_in_s) * rate)
                end_sample = max(round((end_s + lead_in_s) * rate), first_sample + 1)
                silence_first = max(0, -first_sample)  # the sound starts after the range does
                steps = [
                    ("atrim", f"start_sample={max(0, first_sample)}:end_sample={max(1, end_sample)}"),
                    ("asetpts", "PTS-STARTPTS"),
                ]
                if silence_first:
                    steps.append(("adelay", f"delays={silence_first}S:all=1"))
                if end_sample > input_samples:
                    log.warning(
                        "the audio of %s ends at sample %d, before the end of the range (%d): "
                        "the rest is silence",
                        source.name,
                        input_samples,
                        end_sample,
                    )
            target_samples = round(Fraction(end_sample - first_sample) / speed)
            input_samples = max(0, min(input_samples, end_sample) - max(0, first_sample))
            graph = av.filter.Graph()
            node = graph.add_abuffer(template=stream, time_base=sample_time_base)
            # silence ahead of the sound, as long as the chain plays a beep early (at the input's
            # pace), so a beep lands at its source time / speed, in step with the frames
            # (at speed 1 there is no atempo: the sound is only re-encoded, sample for sample)
            tempos = tuple(factor for factor in chain if factor != 1)
            lead_samples = round(atempo_lead_samples(tempos, rate) * speed) if tempos else 0
            if lead_samples:
                steps.append(("adelay", f"delays={lead_samples}S:all=1"))
            steps += [("atempo", f"{float(factor):.12g}") for factor in tempos]
            steps += [
                ("aformat", "sample_fmts=s32" if pcm else "sample_fmts=fltp"),
                ("apad", f"whole_len={target_samples}"),
                ("atrim", f"end_sample={target_samples}"),
            ]
            for name, argument in steps:
                step = graph.add(name, argument)
                node.link_to(step)
                node = step
            sink = graph.add("abuffersink")
            node.link_to(sink)
            graph.configure()
            with av.open(str(temporary), mode="w", format="mov" if pcm else "mp4") as output:
                out_stream = output.add_stream(STRETCH_PCM_CODEC if pcm else STRETCH_CODEC, rate=rate)
                out_stream.layout = _named_layout(stream)
                if not pcm:
                    out_stream.bit_rate = STRETCH_BIT_RATE

                def drain() -> None:
                    nonlocal written
                    while True:
                        try:
                            frame = graph.pull()
                        except (av.error.BlockingIOError, av.error.EOFError):
                            return
                        # counted in samples from 0: the encoder then starts its packets
                        # before 0 by its priming (1024 samples of AAC), which the muxer marks
                        # to be skipped, so the first sample written is heard at 0
                        frame.pts, frame.time_base = written, sample_time_base
                        written += frame.samples
                        for packet in out_stream.encode(frame):
                            output.mux(packet)

                counted = 0
                for frame in _AudioDecoder(container, stream).frames():
                    if counted >= end_sample:
                        break
                    frame.pts = counted
                    frame.time_base = sample_time_base
                    counted += frame.samples
                    graph.push(frame)
                    drain()
                graph.push(None)
                drain()
                for packet in out_stream.encode(None):
                    output.mux(packet)
    except av.error.FFmpegError as error:
        raise CorruptMediaError(f"stretching the audio of {source} failed: {error}") from None
    codec = STRETCH_PCM_CODEC if pcm else STRETCH_CODEC
    if speed == 1:
        log.info("audio re-encoded as %s: %d -> %d samples", codec, input_samples, written)
    else:
        log.info(
            "audio stretched to speed %s (atempo %s) as %s: %d -> %d samples",
            speed,
            " x ".join(str(f) for f in chain),
            codec,
            input_samples,
            written,
        )
    return StretchedAudio(Path(destination), rate, input_samples, written, tuple(chain))


def reencode_audio(
    source: Path,
    destination: Path,
    *,
    range_s: tuple[Fraction, Fraction] | None = None,
    video_start_s: Fraction = Fraction(0),
) -> StretchedAudio:
    """The first audio stream of ``source`` re-encoded as AAC in an .m4a, its timing unchanged:
    for a container that cannot take a copy of the source's sound (PCM into .mp4). Arguments and
    errors as ``stretch_audio`` at speed 1."""
    return stretch_audio(source, destination, speed=Fraction(1), range_s=range_s, video_start_s=video_start_s)
