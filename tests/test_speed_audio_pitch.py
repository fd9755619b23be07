"""The audio cue: pitch shifts of resampled sound, read from rendered sounds and real files."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest

from engine.cli import main as cli_main
from engine.speed.audio_pitch import (
    SAMPLE_RATE,
    AudioSpectra,
    AudioTrack,
    audio_findings,
    read_audio,
    scan_speed_changes,
    shift_between,
)
from tests.media_factory import render_clip

HARMONICS = 14
FORMANTS_HZ = ((650.0, 120.0), (1700.0, 200.0), (2900.0, 300.0))


def voice(
    seconds: float, speed: float = 1.0, rate: int = SAMPLE_RATE, start_s: float = 0.0, seed: int = 0
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


def test_a_resampled_stretch_reads_its_speed_ratio():
    normal = voice(3.0)
    faster = voice(3.0, speed=1.5, start_s=3.0 / 1.5)
    spectra = AudioSpectra.of(AudioTrack(np.concatenate([normal, faster]), SAMPLE_RATE))
    shift = shift_between(spectra, (0.0, 3.0), (3.0, 6.0))
    assert shift is not None and shift.decisive
    assert shift.speed_ratio == pytest.approx(1.5, rel=0.05)


def test_scan_finds_a_speed_up_at_its_time_and_nothing_in_steady_sound():
    changed = np.concatenate([voice(4.0), voice(3.0, speed=2.0, start_s=2.0)])
    changes = scan_speed_changes(AudioSpectra.of(AudioTrack(changed, SAMPLE_RATE)))
    assert len(changes) == 1, [change.to_dict() for change in changes]
    assert changes[0].time_s == pytest.approx(4.0, abs=0.5)
    assert changes[0].shift.octaves == pytest.approx(1.0, abs=0.1)
    steady = scan_speed_changes(AudioSpectra.of(AudioTrack(voice(7.0), SAMPLE_RATE)))
    assert steady == []


def test_silence_and_flat_noise_give_no_reading():
    silent = AudioSpectra.of(AudioTrack(np.zeros(SAMPLE_RATE * 3, np.float32), SAMPLE_RATE))
    assert silent.stretch_spectrum(0.0, 3.0) is None
    white = np.random.default_rng(1).standard_normal(SAMPLE_RATE * 6).astype(np.float32) * 0.1
    spectra = AudioSpectra.of(AudioTrack(white, SAMPLE_RATE))
    assert shift_between(spectra, (0.0, 3.0), (3.0, 6.0)) is None
    assert scan_speed_changes(spectra) == []


def _clip_with_sound(tmp_path, sound: np.ndarray | None, seconds: int = 6):
    return render_clip(
        tmp_path / "clip.mp4",
        rate=Fraction(25),
        frame_count=25 * seconds,
        size=(96, 64),
        audio=sound is not None,
        sound=sound,
    )


def resample_to_48k(sound: np.ndarray) -> np.ndarray:
    positions = np.arange(int(len(sound) * 48000 / SAMPLE_RATE)) * SAMPLE_RATE / 48000
    return np.interp(positions, np.arange(len(sound)), sound).astype(np.float32)


def test_audio_is_read_from_a_clip_and_findings_name_what_was_there(tmp_path):
    sound = resample_to_48k(np.concatenate([voice(3.0), voice(3.0, speed=2.0, start_s=1.5)]))
    path = _clip_with_sound(tmp_path, sound)
    track = read_audio(path)
    assert track is not None and track.duration_s == pytest.approx(6.0, abs=0.1)
    findings = audio_findings(path, [(0.0, 3.0, 1.0), (3.0, 6.0, 2.0)])
    assert findings.status == "used"
    assert [check.verdict for check in findings.boundaries] == ["agrees"]
    assert findings.changes and findings.changes[0].time_s == pytest.approx(3.0, abs=0.5)
    wrong = audio_findings(path, [(0.0, 3.0, 1.0), (3.0, 6.0, 0.5)])
    assert [check.verdict for check in wrong.boundaries] == ["disagrees"]

    silent = render_clip(
        tmp_path / "silent.mp4", frame_count=100, size=(64, 48), audio=True, sound=np.zeros(4 * 48000)
    )
    assert audio_findings(silent, []).status == "silent"
    mute = render_clip(tmp_path / "mute.mp4", frame_count=100, size=(64, 48))
    assert audio_findings(mute, []).status == "no audio track"


def test_detect_reports_audio_and_can_skip_it(tmp_path, capsys):
    sound = resample_to_48k(np.concatenate([voice(3.0), voice(3.0, speed=2.0, start_s=1.5)]))
    path = _clip_with_sound(tmp_path, sound)
    assert cli_main(["detect", str(path), "--json"]) == 0
    audio = json.loads(capsys.readouterr().out)["evidence"]["audio"]
    assert audio["status"] == "used"
    assert [round(change["speed_ratio"]) for change in audio["changes"]] == [2]
    assert cli_main(["detect", str(path), "--json", "--no-audio"]) == 0
    assert json.loads(capsys.readouterr().out)["evidence"]["audio"]["status"] == "off"
    assert cli_main(["detect", str(path)]) == 0
    assert "pitch shift at 3.0" in capsys.readouterr().out
