"""Stretched sound is heard with its frame at any sample rate: `chronoscope retime --audio stretch`
on clips whose picture flashes on known frames and whose sound beeps exactly then, measured on the
decoded output as a player would play it (each frame and each sound at its presentation time)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media_factory import render_with_sound

from engine.cli import main

FPS = 30
FRAMES = 45
FLASH_FRAMES = (12, 33)
"""0.4 s and 1.1 s: multiples of 3, so that at speed 0.3 too an output frame shows each flash."""
BEEP_S = Fraction(60, 1000)
BOX = (slice(8, 32), slice(8, 32))


def _flashing_clip(path: Path, *, sample_rate: int, audio_codec: str) -> Path:
    """1.5 s at 30 fps, 160x90: grey, with a white corner box on ``FLASH_FRAMES`` only, and mono
    sound at ``sample_rate``: silence but for a Hann-shaped 60 ms 1 kHz beep centred on each
    flash's time. AAC is stamped from 0, so that its priming is marked to be skipped."""
    length = round(BEEP_S * sample_rate)
    sound = np.zeros(round(Fraction(FRAMES, FPS) * sample_rate), np.float32)
    for frame in FLASH_FRAMES:
        start = round(Fraction(frame, FPS) * sample_rate) - length // 2
        tone = np.sin(2 * np.pi * 1000 * np.arange(length) / sample_rate) * np.hanning(length)
        sound[start : start + length] = 0.8 * tone
    pictures = []
    for n in range(FRAMES):
        picture = np.full((90, 160, 3), 128, np.uint8)
        if n in FLASH_FRAMES:
            picture[BOX] = 255
        pictures.append(picture)
    return render_with_sound(
        path, pictures, rate=FPS, sound=sound, sample_rate=sample_rate, audio_codec=audio_codec
    )


def _flash_times_s(path: Path) -> list[Fraction]:
    """Presentation time of the brightest frame of each run of lit frames (the flash itself; the
    blended frames either side are dimmer)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        shown = [(Fraction(frame.pts) * Fraction(stream.time_base),
                  float(frame.to_ndarray(format="gray")[BOX].mean())) for frame in container.decode(stream)]
    background = float(np.median([level for _, level in shown]))
    flashes: list[tuple[Fraction, float]] = []
    previous_lit = False
    for time_s, level in shown:
        lit = level > background + 40
        if lit and previous_lit and level > flashes[-1][1]:
            flashes[-1] = (time_s, level)
        elif lit and not previous_lit:
            flashes.append((time_s, level))
        previous_lit = lit
    return [time_s for time_s, _ in flashes]


def _beep_offsets_ms(path: Path, speed: Fraction) -> list[float]:
    """Centre of the sound's energy near each flash minus the flash's presentation time."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        frames = list(container.decode(stream))
    first_s = Fraction(frames[0].pts) * Fraction(frames[0].time_base)  # after the edit list
    heard = np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames]).astype(np.float64)
    offsets = []
    for flash_s in _flash_times_s(path):
        middle = float(flash_s - first_s) * rate
        half = 0.15 / float(speed) * rate
        low, high = int(middle - half), int(middle + half)
        energy = np.square(heard[low:high])
        centre = low + float((np.arange(energy.size) * energy).sum() / energy.sum())
        offsets.append(1000 * (centre - middle) / rate)
    return offsets


@pytest.mark.parametrize(
    ("sample_rate", "speed", "audio_codec", "suffix"),
    [
        (44100, "1/4", "aac", ".mp4"),
        (48000, "1/8", "pcm_s16le", ".mov"),
        (22050, "0.3", "aac", ".mp4"),
    ],
)
def test_a_beep_is_heard_with_its_frame_at_any_sample_rate(tmp_path, sample_rate, speed, audio_codec, suffix):
    """atempo plays sound early by an amount that depends on the rate (its window is 43 ms at
    48 kHz, 46 ms at 44.1 and 22.05 kHz) and on the sound. Compensated by a lead measured on one
    noise burst, beeps came 10 ms late at 44.1 kHz and 1/4, 16 ms at 48 kHz and 1/8, 17 ms at
    22.05 kHz and 0.3 (a noise burst's lead is not a beep's, and scatters by 10 ms and more with
    where it falls). Now each beep's energy centre is on its flash: on average within 2 ms, each
    within 4 ms (a beep's lead varies by up to 3 ms with where it falls in atempo's fragments);
    lip sync is noticed from about 20 ms."""
    clip = _flashing_clip(tmp_path / f"beeps{suffix}", sample_rate=sample_rate, audio_codec=audio_codec)
    assert max(abs(offset) for offset in _beep_offsets_ms(clip, Fraction(1))) < 0.1, "the clip itself is off"
    out = tmp_path / f"slow{suffix}"
    assert main(["retime", str(clip), "--speed", speed, "--audio", "stretch", "--model", "blend",
                 "-o", str(out)]) == 0
    with av.open(str(out)) as container:
        assert container.streams.audio[0].rate == sample_rate
    offsets = _beep_offsets_ms(out, Fraction(speed))
    assert len(offsets) == len(FLASH_FRAMES), offsets
    assert abs(float(np.mean(offsets))) <= 2.0, offsets
    assert max(abs(offset) for offset in offsets) <= 4.0, offsets
