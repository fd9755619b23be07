"""``chronoscope train tsr`` after the audit: the default rule names the real flag, an output that
cannot be written is refused before training, checkpoints are kept per output path, a killed
run's partial checkpoint is removed, one run at a time trains an output, and real-time clips
are warned about."""

from __future__ import annotations

import logging
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

import test_tsr_train  # noqa: E402
from media_factory import render_clip  # noqa: E402

from engine import cli  # noqa: E402
from engine.errors import OutputExistsError  # noqa: E402
from engine.processes import exclusive_lock  # noqa: E402
from engine.training.tsr import train  # noqa: E402
from engine.training.tsr.train import CHECKPOINT_NAME, TrainConfig, fine_tune, prepare_data  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
wheels = test_tsr_train.wheels  # the same fixtures: the RIFE wheel, one torch thread
one_torch_thread = test_tsr_train.one_torch_thread


def _config(tmp_path: Path, wheels: Path, **changes) -> TrainConfig:
    settings = dict(
        output=tmp_path / "models" / "rife-tiny.onnx",
        renders=1,
        render_size=(64, 64),
        steps=1,
        batch_size=1,
        checkpoint_every_steps=1,
        cache_dir=tmp_path / "render-cache",
        wheel_cache=wheels,
        evaluate=False,
        eval_renders=0,
        cpu_threads=1,
    )
    settings.update(changes)
    return TrainConfig(**settings)


def test_the_default_rule_names_the_flag_that_measures_middlebury():
    eligible, reason = train.default_decision({}, {})
    assert not eligible and "--eval-data" in reason and "--eval-middlebury" not in reason


def test_an_output_folder_that_cannot_be_written_is_refused_before_training(tmp_path, capsys):
    work = tmp_path / "work"
    status = cli.main(
        ["train", "tsr", "--renders", "1", "--steps", "1", "--no-eval", "--threads", "1"]
        + ["--work-dir", str(work), "-o", "/proc/chronoscope-tuned.onnx"]
    )
    error = capsys.readouterr().err
    assert status == cli.EXIT_USER_ERROR
    assert "cannot write the model into /proc" in error and ".partial-" not in error
    assert not (work / CHECKPOINT_NAME).exists(), "nothing was trained"


def test_checkpoints_are_kept_per_output_path_not_per_name(tmp_path, wheels, caplog):
    first = _config(tmp_path, wheels, output=tmp_path / "a" / "rife-tiny.onnx")
    second = _config(tmp_path, wheels, output=tmp_path / "b" / "rife-tiny.onnx", resume=True)
    assert train.default_work_dir(first.output) != train.default_work_dir(second.output)
    fine_tune(first)
    assert (train.default_work_dir(first.output) / CHECKPOINT_NAME).is_file()
    caplog.set_level(logging.INFO, logger="engine.training.tsr.train")
    resumed = fine_tune(second)
    assert resumed.start_step == 0, "another output's checkpoint was continued"
    assert "no checkpoint at" in caplog.text


def test_a_killed_checkpoint_write_leaves_nothing_behind_once_training_starts_again(tmp_path, wheels, caplog):
    work = tmp_path / "work"
    work.mkdir()
    killed = (
        "import os, signal\n"
        "from pathlib import Path\n"
        "from engine.fsutil import temporary_sibling\n"
        f"temporary = temporary_sibling(Path({str(work / CHECKPOINT_NAME)!r}))\n"
        "temporary.write_bytes(b'half a checkpoint' * 1000)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", killed], cwd=REPO, check=False)
    leftovers = sorted(path.name for path in work.iterdir() if path.name.startswith("."))
    assert any(".partial-" in name for name in leftovers) and any(".writer-" in name for name in leftovers)
    caplog.set_level(logging.INFO, logger="engine.fsutil")
    fine_tune(_config(tmp_path, wheels, work_dir=work, resume=True))
    assert sorted(path.name for path in work.iterdir()) == sorted([CHECKPOINT_NAME, train.WORK_LOCK_NAME])
    assert "left by an interrupted write" in caplog.text


def test_a_second_run_on_the_same_output_is_refused_at_once(tmp_path, wheels):
    work = tmp_path / "work"
    work.mkdir()
    with exclusive_lock(work / train.WORK_LOCK_NAME):
        with pytest.raises(OutputExistsError, match="another `chronoscope train tsr` is training in"):
            fine_tune(_config(tmp_path, wheels, work_dir=work))
    assert not (work / CHECKPOINT_NAME).exists()


def test_clips_that_are_not_high_rate_footage_are_warned_about_by_count(tmp_path, caplog):
    dataset = tmp_path / "DATASET"
    dataset.mkdir()
    for name in ("street.mp4", "dog.mp4"):
        render_clip(dataset / name, rate=Fraction(30), frame_count=12, size=(96, 64))
    render_clip(dataset / "fast.mp4", rate=Fraction(240), frame_count=12, size=(96, 64))
    config = TrainConfig(output=tmp_path / "rife-x.onnx", dataset=dataset, renders=0, crop_px=64)
    prepared = prepare_data(config, tmp_path / "cache")
    (warning,) = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warning.startswith(f"2 of the 3 clips of {dataset} are not known to be high-rate footage")
    assert "dog.mp4 (30 fps)" in warning and "street.mp4 (30 fps)" in warning and "fast.mp4" not in warning
    assert sorted(clip.name for clip in prepared.low_rate) == ["dog.mp4", "street.mp4"]
