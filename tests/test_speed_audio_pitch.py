"""The audio cue: pitch shifts of resampled sound, read from rendered sounds and real files."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from engine.cli import main as cli_main
from engine.commands.detect import AUDIO_COLOUR_BGR
from engine.speed.audio_pitch import (
    SAMPLE_RATE,
    AudioSpectra,
    AudioTrack,
    audio_findings,
    pitch_shift,
    read_audio,
    scan_speed_changes,
    shift_between,
)
from engine.speed.detect import detect_speed
from engine.speed_report import audio_summary_lines
from tests.media_factory import render_clip, resample_to_48k, voice


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
    plot = tmp_path / "speed.png"
    assert cli_main(["detect", str(path), "--plot", str(plot)]) == 0
    image = cv2.imread(str(plot))
    marked = np.all(image == np.array(AUDIO_COLOUR_BGR, np.uint8), axis=2)
    assert marked.sum() > 50  # the dashed line where the sound shifts


def test_times_count_from_the_first_video_frame(tmp_path):
    """Video that starts 1.5 s into the file's clock while the sound starts at 0: the sound's
    change at 3.0 s of the file is at 1.5 s of the clip, where the detector's segments count."""
    sound = resample_to_48k(np.concatenate([voice(3.0), voice(3.0, speed=2.0, start_s=1.5)]))
    offset = 36  # frames at 24 fps: 1.5 s
    path = render_clip(
        tmp_path / "late.mkv",
        rate=Fraction(24),
        pts=range(offset, offset + 24 * 5),
        size=(96, 64),
        audio=True,
        sound=sound,
    )
    findings = detect_speed(path).audio
    assert [round(change.time_s, 1) for change in findings.changes] == [1.5]


def test_short_or_empty_sound_gives_no_reading():
    track = AudioTrack(voice(0.16), SAMPLE_RATE)
    assert AudioSpectra.of(track).stretch_spectrum(0.0, 5.0) is None
    flat = np.zeros(153)
    assert pitch_shift(flat, flat) is None


def test_summary_lines_for_people():
    audio = {
        "status": "used",
        "boundaries": [{"time": 2, "video_speed_ratio": 2, "verdict": "agrees"}],
        "changes": [{"time": 2.5, "speed_ratio": "bad"}],
    }
    assert audio_summary_lines(audio) == [
        "audio: at 2.00 s the picture changes speed x2; the sound agrees",
        "audio: pitch shift at 2.50 s (speed xnan)",
    ]
    assert audio_summary_lines({"status": "off"}) == []
    assert audio_summary_lines({"status": "unreadable: broken"}) == ["audio: unreadable: broken"]
    assert audio_summary_lines(None) == []


def test_a_sound_track_cut_short_is_said_so(tmp_path):
    """A faststart MP4 with its second half missing: the sound is read up to where it stops, and
    the findings say it ends before its header's length (the summary line shows it)."""
    path = _clip_with_sound(tmp_path, resample_to_48k(voice(6.0)))
    faststart = tmp_path / "faststart.mp4"
    with av.open(str(path)) as source, av.open(str(faststart), "w", options={"movflags": "faststart"}) as out:
        streams = {stream.index: out.add_stream_from_template(stream) for stream in source.streams}
        for packet in source.demux():
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(faststart.read_bytes()[: faststart.stat().st_size * 55 // 100])
    findings = audio_findings(cut, [])
    assert findings.note.startswith("the sound ends at") and "6.0 s its header lists" in findings.note
    assert audio_summary_lines(findings.to_dict())[-1] == f"audio: {findings.note}"
    assert audio_findings(faststart, []).note == ""


def test_damaged_audio_packets_leave_silence_in_place_and_the_rest_is_read(tmp_path):
    """A run of AAC packets at about 2 s overwritten (a damaged recording): reading stopped there
    ('decoded only to 2.0 s ... Operation not permitted'), losing the four seconds after. Now those
    packets are left out, their time kept as silence, and the voice after them is where it was."""
    import av

    sound = resample_to_48k(voice(6.0))
    path = _clip_with_sound(tmp_path, sound)
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        places = [
            (packet.pos, packet.size)
            for packet in container.demux(stream)
            if packet.pts is not None and 1.9 <= float(packet.pts * packet.time_base) <= 2.1 and packet.pos
        ]
    assert places
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(5)
    for position, size in places:
        data[position : position + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))

    track = read_audio(damaged)

    assert track is not None and track.duration_s == pytest.approx(6.0, abs=0.1)
    assert "damaged audio packet" in track.note and "silence put there" in track.note
    whole = read_audio(path)
    assert whole is not None
    rate = track.rate
    after = slice(int(3.0 * rate), int(5.5 * rate))  # well after the damage: the same sound, in place
    assert np.corrcoef(track.samples[after], whole.samples[after])[0, 1] > 0.99
