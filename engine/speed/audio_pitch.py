"""The audio cue: resampled audio shifts pitch, so a speed change shows as a shift in frequency.

When a clip is sped up or slowed down by resampling (the picture and the sound together), every
frequency of the sound is multiplied by the speed factor: a 2x speed-up moves the whole spectrum
up one octave. Two stretches of the same clip played at different speeds therefore have
long-term spectra that match after a shift along a log-frequency axis, and the shift is log2 of
their speed ratio. This is a relative cue only: it says by how much the speed changes from one
stretch to the next, never what the speed is (a voice an octave high may be a child's). The
detector is visual and works without it; the cue adds evidence where video segments change
speed, and finds speed changes that the picture alone may miss (a mining aid).

Method, per stretch of audio (mono, ``SAMPLE_RATE`` Hz): the long-term average spectrum on a
log-frequency axis (``BINS_PER_OCTAVE`` bins per octave from ``LOW_HZ`` to ``HIGH_HZ``), in
decibels, with its straight-line trend removed (a power-law tilt looks the same at every shift,
so it carries no information). Two stretches are compared by correlating these curves at shifts
of up to ``MAX_SHIFT_OCTAVES``; the shift with the best correlation is the pitch shift, and it
counts only when that correlation is high and clearly better than without a shift. Stretches
that are silent, or whose spectrum is flat, give no reading.

Only the first ``MAX_AUDIO_S`` seconds of sound are read. Plain Python (numpy and PyAV): no
model, nothing learned.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from engine.errors import ChronoscopeError, CorruptMediaError
from engine.media._open import av_errors, open_input

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
FFT_SIZE = 2048
HOP = 512
LOW_HZ = 80.0
HIGH_HZ = 6400.0
BINS_PER_OCTAVE = 24
MAX_SHIFT_OCTAVES = 2.0
SILENCE_DBFS = -60.0
MIN_STRETCH_S = 1.0
MIN_SPECTRAL_RANGE_DB = 6.0
SHORT_TRACK_SLACK_S = 0.5  # a track this much shorter than its header says was cut short
MIN_CORRELATION = 0.6
MIN_GAIN = 0.3
MIN_SHIFT_OCTAVES = 0.2
SCAN_WINDOW_S = 2.0
SCAN_STEP_S = 0.5
MAX_AUDIO_S = 600.0
AGREEMENT_OCTAVES = 0.3
BOUNDARY_STRETCH_S = 4.0
READ_FAILURES = (ChronoscopeError, ValueError, OSError, av.error.FFmpegError)


@dataclass(frozen=True)
class AudioTrack:
    """Mono samples in [-1, 1] at ``rate`` Hz; ``start_s`` is where they sit on the clip's clock."""

    samples: np.ndarray
    rate: int
    start_s: float = 0.0
    note: str = ""  # what went wrong while reading, when only part of the track could be decoded

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate


@dataclass(frozen=True)
class PitchShift:
    """How far the second stretch's spectrum sits above the first's, in octaves.

    ``speed_ratio`` = 2 ** octaves is the second stretch's speed over the first's (sound resampled
    with the picture). ``correlation`` is the match at that shift, ``gain`` how much better it is
    than the match without a shift; ``decisive`` says whether both clear their bars.
    """

    octaves: float
    correlation: float
    gain: float

    @property
    def speed_ratio(self) -> float:
        return float(2.0**self.octaves)

    @property
    def decisive(self) -> bool:
        return (
            self.correlation >= MIN_CORRELATION
            and self.gain >= MIN_GAIN
            and abs(self.octaves) >= MIN_SHIFT_OCTAVES
        )

    def to_dict(self) -> dict:
        return {
            "octaves": round(self.octaves, 4),
            "speed_ratio": round(self.speed_ratio, 4),
            "correlation": round(self.correlation, 4),
            "gain": round(self.gain, 4),
            "decisive": self.decisive,
        }


@dataclass(frozen=True)
class AudioSpeedChange:
    """A point where the sound's pitch shifts: the speed after it over the speed before it."""

    time_s: float
    shift: PitchShift

    def to_dict(self) -> dict:
        return {"time": round(self.time_s, 3), **self.shift.to_dict()}


def read_audio(path: Path, max_seconds: float = MAX_AUDIO_S) -> AudioTrack | None:
    """The first audio stream of ``path`` as mono at ``SAMPLE_RATE``, or None when there is none.

    ``start_s`` is the first decoded frame's time on the file's clock. A change of sample rate or
    layout partway (broadcast streams) starts a new resampler. A packet that cannot be decoded
    (damage partway) is left out and its time kept as silence, so what follows stays in place; the
    track's ``note`` names where. Sound whose container cannot be read on is cut where it breaks
    (logged); a track that gives nothing at all raises ``CorruptMediaError``.
    """
    with open_input(path) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        chunks: list[np.ndarray] = []
        start_s: float | None = None
        total = 0
        limit = int(max_seconds * SAMPLE_RATE)
        resampler, setup = None, None
        note = ""
        lost: list[float] = []  # where packets that could not be decoded were, in seconds
        lost_since_frame = False
        first_failure: Exception | None = None

        def convert(frames) -> None:
            nonlocal total
            for converted in frames:
                # planar (channels, samples): the channels are averaged here, every one of them,
                # rather than downmixed by layout rules that drop some (an LFE guessed for a
                # third channel of unknown order)
                planes = converted.to_ndarray().astype(np.float32)
                chunk = np.nan_to_num(planes.reshape(planes.shape[0], -1).mean(axis=0))
                chunks.append(chunk)
                total += len(chunk)

        def add(frame) -> None:
            nonlocal start_s, resampler, setup, total, lost_since_frame
            time_s = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else None
            if start_s is None and time_s is not None:
                start_s = time_s
            shape = (frame.format.name, frame.layout.name, frame.sample_rate)
            if lost_since_frame and time_s is not None and start_s is not None and resampler is not None:
                convert(resampler.resample(None))  # everything before the loss, out
                resampler, setup = None, None
                gap = int(round((time_s - start_s) * SAMPLE_RATE)) - total
                if gap > 0:
                    chunks.append(np.zeros(min(gap, max(0, limit - total)), np.float32))
                    total += len(chunks[-1])
            lost_since_frame = False
            if shape != setup:
                if resampler is not None:
                    convert(resampler.resample(None))
                # one-second output frames: far fewer conversions to numpy than per packet
                resampler = av.AudioResampler(
                    format="fltp", layout=frame.layout, rate=SAMPLE_RATE, frame_size=SAMPLE_RATE
                )
                setup = shape
            convert(resampler.resample(frame))

        try:
            with av_errors(path, "reading audio"):
                for packet in container.demux(stream):
                    try:
                        with av_errors(path, "decoding audio"):
                            frames = packet.decode()
                    except READ_FAILURES as error:
                        first_failure = first_failure or error
                        lost_since_frame = True
                        if packet.pts is not None and packet.time_base is not None:
                            lost.append(float(packet.pts * packet.time_base))
                        continue
                    for frame in frames:
                        add(frame)
                    if total >= limit:
                        break
                if resampler is not None:
                    convert(resampler.resample(None))
        except READ_FAILURES as error:
            if not chunks:
                reason = str(error).replace(f"{path}: ", "").replace(str(path), "the file")
                raise CorruptMediaError(f"its audio cannot be decoded: {reason}") from None
            log.warning("audio of %s read only to %.1f s: %s", path, total / SAMPLE_RATE, error)
            note = f"the sound could be read only to {total / SAMPLE_RATE:.1f} s; read up to there"
        if not chunks and first_failure is not None:
            reason = str(first_failure).replace(f"{path}: ", "").replace(str(path), "the file")
            raise CorruptMediaError(f"its audio cannot be decoded: {reason}") from None
        if lost or first_failure is not None:
            where = f" from {min(lost):.1f} s to {max(lost):.1f} s" if lost else ""
            count = len(lost) if lost else "some"
            plural = "s" if len(lost) != 1 else ""
            damage = f"{count} damaged audio packet{plural}{where} could not be decoded: silence put there"
            log.warning("audio of %s: %s", path, damage)
            note = f"{note}; {damage}" if note else damage
    if not chunks:
        return None
    listed_s = float(stream.duration * stream.time_base) if stream.duration else None
    decoded_s = total / SAMPLE_RATE
    if not note and total < limit and listed_s is not None and decoded_s < listed_s - SHORT_TRACK_SLACK_S:
        note = (
            f"the sound ends at {decoded_s:.1f} s of the {listed_s:.1f} s its header lists; read up to there"
        )
    if start_s is None:
        start_s = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    samples = np.concatenate(chunks)[:limit]
    return AudioTrack(samples, SAMPLE_RATE, start_s, note)


def _log_frequency_axis() -> np.ndarray:
    octaves = math.log2(HIGH_HZ / LOW_HZ)
    count = int(round(octaves * BINS_PER_OCTAVE)) + 1
    return LOW_HZ * 2.0 ** (np.arange(count) / BINS_PER_OCTAVE)


def _banding(rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FFT bin ranges per log-frequency point (first, last, and the fractional bin for narrow bands)."""
    bin_hz = rate / FFT_SIZE
    axis = _log_frequency_axis()
    half_band = 2 ** (0.5 / BINS_PER_OCTAVE)
    first = np.ceil(axis / half_band / bin_hz).astype(int)
    last = np.minimum(np.floor(axis * half_band / bin_hz).astype(int), FFT_SIZE // 2)
    return first, last, axis / bin_hz


@dataclass(frozen=True)
class AudioSpectra:
    """Short-time power spectra of a track on the log-frequency axis, computed once.

    ``power`` is (hops, bins): each hop of ``HOP`` samples, each FFT bin band averaged (or, where
    a band is narrower than an FFT bin, interpolated); ``loudness`` is each hop's mean square.
    """

    power: np.ndarray
    loudness: np.ndarray
    hop_s: float
    start_s: float
    frame_s: float = FFT_SIZE / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        """Where the sound ends (the end of the last analysed frame)."""
        return self.start_s + max(0, len(self.power) - 1) * self.hop_s + self.frame_s

    @classmethod
    def of(cls, track: AudioTrack, origin_s: float = 0.0) -> AudioSpectra:
        """Spectra of ``track``, with times counted from ``origin_s`` on the file's clock (the
        first video frame's time, so that they match the detector's segment times)."""
        samples = track.samples
        count = max(0, (len(samples) - FFT_SIZE) // HOP + 1)
        first, last, fractional = _banding(track.rate)
        window = np.hanning(FFT_SIZE).astype(np.float32)
        bands = np.zeros((count, len(first)), np.float32)
        loudness = np.zeros(count, np.float32)
        chunk = 256
        for begin in range(0, count, chunk):
            starts = np.arange(begin, min(count, begin + chunk)) * HOP
            frames = samples[starts[:, None] + np.arange(FFT_SIZE)[None, :]]
            loudness[begin : begin + len(starts)] = np.mean(np.square(frames), axis=1)
            power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
            cumulative = np.concatenate([np.zeros((len(starts), 1)), np.cumsum(power, axis=1)], axis=1)
            widths = last - first + 1
            averaged = (cumulative[:, last + 1] - cumulative[:, first]) / np.maximum(widths, 1)
            below = np.floor(fractional).astype(int)
            weight = fractional - below
            above = np.minimum(below + 1, power.shape[1] - 1)
            interpolated = power[:, below] * (1 - weight) + power[:, above] * weight
            bands[begin : begin + len(starts)] = np.where(widths >= 1, averaged, interpolated)
        return cls(bands, loudness, HOP / track.rate, track.start_s - origin_s, FFT_SIZE / track.rate)

    def stretch_spectrum(self, start_s: float, end_s: float) -> np.ndarray | None:
        """The stretch's long-term spectrum in dB, straight-line trend removed.

        None when the sound there covers less than ``MIN_STRETCH_S`` (the stretch asked for may
        run past the sound), is silent (below ``SILENCE_DBFS``) or flat (less than
        ``MIN_SPECTRAL_RANGE_DB`` of structure once the trend is gone).
        """
        first = max(0, int(math.ceil((start_s - self.start_s) / self.hop_s)))
        last = min(len(self.power), int((end_s - self.start_s - self.frame_s) / self.hop_s) + 1)
        if last - first < 2 or (last - 1 - first) * self.hop_s + self.frame_s < MIN_STRETCH_S:
            return None
        mean_square = float(np.mean(self.loudness[first:last]))
        if mean_square <= 0 or 10 * math.log10(mean_square) < SILENCE_DBFS:
            return None
        decibels = 10 * np.log10(self.power[first:last].mean(axis=0).astype(np.float64) + 1e-12)
        index = np.arange(len(decibels))
        detrended = decibels - np.polyval(np.polyfit(index, decibels, 1), index)
        if float(np.percentile(detrended, 95) - np.percentile(detrended, 5)) < MIN_SPECTRAL_RANGE_DB:
            return None
        return detrended


def shift_correlations(before: np.ndarray, after: np.ndarray, max_shift: int) -> dict[int, float]:
    """Pearson correlation of ``before`` and ``after`` over their overlap, for every shift in bins
    from -``max_shift`` to ``max_shift`` that leaves at least two octaves of overlap.

    Shift d compares ``after[i + d]`` with ``before[i]`` (``after`` higher by d bins). All shifts
    at once from running sums: products by ``np.correlate``, sums and squares by cumulative sums.
    """
    count = len(before)
    shifts = np.arange(-max_shift, max_shift + 1)
    overlap = count - np.abs(shifts)
    # sum over the overlap of before[i] * after[i + d], for d = -(count-1) .. count-1
    products = np.correlate(after, before, mode="full")[shifts + count - 1]
    running_b = np.concatenate([[0.0], np.cumsum(before)])
    running_b2 = np.concatenate([[0.0], np.cumsum(before * before)])
    running_a = np.concatenate([[0.0], np.cumsum(after)])
    running_a2 = np.concatenate([[0.0], np.cumsum(after * after)])
    # overlap in before: [max(0, -d), count - max(0, d)); in after: [max(0, d), count - max(0, -d))
    b_start, b_end = np.maximum(0, -shifts), count - np.maximum(0, shifts)
    a_start, a_end = np.maximum(0, shifts), count - np.maximum(0, -shifts)
    sum_b, sum_b2 = running_b[b_end] - running_b[b_start], running_b2[b_end] - running_b2[b_start]
    sum_a, sum_a2 = running_a[a_end] - running_a[a_start], running_a2[a_end] - running_a2[a_start]
    with np.errstate(invalid="ignore", divide="ignore"):
        covariance = products - sum_a * sum_b / overlap
        spread = np.sqrt((sum_a2 - sum_a**2 / overlap) * (sum_b2 - sum_b**2 / overlap))
        values = np.where(spread > 0, covariance / spread, 0.0)
    keep = overlap >= BINS_PER_OCTAVE * 2
    return {int(shift): float(value) for shift, value, kept in zip(shifts, values, keep, strict=True) if kept}


def pitch_shift(before: np.ndarray, after: np.ndarray) -> PitchShift | None:
    """The shift of ``after``'s long-term spectrum over ``before``'s (``stretch_spectrum``
    curves), found by correlation over shifts of up to ``MAX_SHIFT_OCTAVES``; sub-bin by a
    parabola through the peak. None when the curves overlap too little to compare."""
    scores = shift_correlations(before, after, int(MAX_SHIFT_OCTAVES * BINS_PER_OCTAVE))
    if 0 not in scores:
        return None
    best = max(scores, key=scores.get)
    if not scores[best] > 0:
        return None
    peak = float(best)
    if best - 1 in scores and best + 1 in scores:
        left, centre, right = scores[best - 1], scores[best], scores[best + 1]
        curvature = left - 2 * centre + right
        if curvature < 0:
            peak = best + 0.5 * (left - right) / curvature
    return PitchShift(octaves=peak / BINS_PER_OCTAVE, correlation=scores[best], gain=scores[best] - scores[0])


def shift_between(
    spectra: AudioSpectra, first: tuple[float, float], second: tuple[float, float]
) -> PitchShift | None:
    """The pitch shift from the stretch ``first`` (start, end seconds) to ``second``, or None."""
    before = spectra.stretch_spectrum(*first)
    after = spectra.stretch_spectrum(*second)
    if before is None or after is None:
        return None
    return pitch_shift(before, after)


def scan_speed_changes(
    spectra: AudioSpectra, window_s: float = SCAN_WINDOW_S, step_s: float = SCAN_STEP_S
) -> list[AudioSpeedChange]:
    """Points where the sound's pitch shifts decisively between the ``window_s`` before and after.

    Neighbouring points that see the same change (the same shift within a quarter octave) are
    merged into the one with the best correlation.
    """
    found: list[AudioSpeedChange] = []
    start, end = spectra.start_s, spectra.end_s
    cache: dict[tuple[float, float], np.ndarray | None] = {}

    def spectrum(first: float, last: float) -> np.ndarray | None:
        key = (round(first, 6), round(last, 6))
        if key not in cache:
            cache[key] = spectra.stretch_spectrum(first, last)
        return cache[key]

    time = start + window_s
    while time <= end - window_s + 1e-9:
        before, after = spectrum(time - window_s, time), spectrum(time, time + window_s)
        shift = None if before is None or after is None else pitch_shift(before, after)
        if shift is not None and shift.decisive:
            change = AudioSpeedChange(time, shift)
            last = found[-1] if found else None
            if (
                last is not None
                and time - last.time_s <= window_s
                and abs(last.shift.octaves - shift.octaves) < 0.25
            ):
                if shift.correlation > last.shift.correlation:
                    found[-1] = change
            else:
                found.append(change)
        time += step_s
    return found


@dataclass(frozen=True)
class BoundaryCheck:
    """The sound either side of a boundary between two video segments of different speeds.

    The sound may have been kept at real time, re-scored or replaced, so a verdict other than
    ``agrees`` is a reason to look again, not proof that the picture is wrong."""

    time_s: float
    video_ratio: float
    shift: PitchShift | None

    @property
    def verdict(self) -> str:
        """``agrees`` (a decisive shift by the video's ratio), ``disagrees`` (by another ratio),
        ``unchanged`` (the sound matches itself without a shift: if it was resampled with the
        picture, the speed did not change here) or ``no reading``."""
        if self.shift is None:
            return "no reading"
        if not self.shift.decisive:
            steady = self.shift.correlation >= MIN_CORRELATION and abs(self.shift.octaves) < MIN_SHIFT_OCTAVES
            return "unchanged" if steady else "no reading"
        close = abs(self.shift.octaves - math.log2(self.video_ratio)) <= AGREEMENT_OCTAVES
        return "agrees" if close else "disagrees"

    def to_dict(self) -> dict:
        return {
            "time": round(self.time_s, 3),
            "video_speed_ratio": round(self.video_ratio, 4),
            "audio": None if self.shift is None else self.shift.to_dict(),
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class AudioFindings:
    """What the audio said about a clip: ``status`` is ``used``, ``off``, ``no audio track``,
    ``silent`` (too quiet, or too flat a spectrum, to read anywhere) or ``unreadable: REASON``; ``boundaries``
    checks each change of speed between video segments; ``changes`` are pitch shifts found by
    scanning the whole track; ``note`` says when only part of the track could be decoded."""

    status: str
    boundaries: tuple[BoundaryCheck, ...] = ()
    changes: tuple[AudioSpeedChange, ...] = ()
    note: str = ""

    def to_dict(self) -> dict:
        found = {
            "status": self.status,
            "boundaries": [item.to_dict() for item in self.boundaries],
            "changes": [item.to_dict() for item in self.changes],
        }
        if self.note:
            found["note"] = self.note
        return found


def audio_findings(
    path: Path, segments: list[tuple[float, float, float | None]], origin_s: float = 0.0
) -> AudioFindings:
    """Read ``path``'s audio, check each boundary between consecutive ``segments`` (start s, end s,
    speed or None; seconds from ``origin_s`` on the file's clock, the first video frame) whose
    speeds differ, and scan the track for pitch shifts. A track that cannot be read gives status
    ``unreadable: REASON``; it never stops the detector."""
    try:
        track = read_audio(path)
        if track is None:
            return AudioFindings("no audio track")
        spectra = AudioSpectra.of(track, origin_s)
    except READ_FAILURES as error:
        log.warning("audio of %s not used: %s", path, error)
        return AudioFindings(f"unreadable: {error}")
    checks = []
    for before, after in zip(segments, segments[1:], strict=False):
        if before[2] is None or after[2] is None or before[2] == after[2]:
            continue
        time = after[0]
        shift = shift_between(
            spectra,
            (max(before[0], time - BOUNDARY_STRETCH_S), time),
            (time, min(after[1], time + BOUNDARY_STRETCH_S)),
        )
        checks.append(BoundaryCheck(time, after[2] / before[2], shift))
    changes = scan_speed_changes(spectra)
    if not changes and all(check.shift is None for check in checks):
        if spectra.stretch_spectrum(spectra.start_s, spectra.end_s) is None:
            return AudioFindings("silent", tuple(checks), note=track.note)
    return AudioFindings("used", tuple(checks), tuple(changes), note=track.note)
