"""``chronoscope train speed`` and ``train tsr`` after the s18 audit: an output that is a folder
is refused before training, checkpoints of ``train speed`` are kept per output path under a lock,
a resume is checked against its checkpoint (data, step count), an interrupted run (either
command) saves its checkpoint, and the messages name what was wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

import test_tsr_train  # noqa: E402

from engine import cli  # noqa: E402

wheels = test_tsr_train.wheels  # the RIFE wheel, one torch thread
one_torch_thread = test_tsr_train.one_torch_thread


def test_tsr_output_that_is_a_folder_is_refused_before_training(tmp_path, capsys):
    output = tmp_path / "d.onnx"
    output.mkdir()
    work = tmp_path / "work"
    status = cli.main(
        ["train", "tsr", "--renders", "1", "--steps", "1", "--no-eval", "--threads", "1"]
        + ["--work-dir", str(work), "-o", str(output)]
    )
    error = capsys.readouterr().err
    assert status == cli.EXIT_USER_ERROR and f"{output} is a folder; name a file in it" in error
    assert not work.exists(), "nothing was trained"


def _stopped_at_step(argv: list[str], until: str, number: int, status: int) -> int:
    """Run ``chronoscope ARGV`` in a child, send it signal ``number`` once a line of its log holds
    ``until``, check its exit ``status`` and return the step it says it stopped at."""
    import re
    import signal
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "engine.cli", *argv]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent)
    deadline = time.monotonic() + 240
    lines = []
    for line in process.stderr:
        lines.append(line)
        if until in line or time.monotonic() > deadline:
            break
    process.send_signal(number)
    _, rest = process.communicate(timeout=120)
    text = "".join(lines) + rest
    assert process.returncode == status, text
    stopped = re.search(rf"stopped by {signal.Signals(number).name} at step (\d+)", text)
    assert stopped, text
    return int(stopped.group(1))


@pytest.mark.parametrize(("number", "status"), [(2, 130), (15, 143)])  # SIGINT, SIGTERM
def test_an_interrupted_tsr_run_saves_its_checkpoint(wheels, tmp_path, number, status):
    from engine.training.tsr.train import CHECKPOINT_NAME

    work, output = tmp_path / "work", tmp_path / "rife-stopped.onnx"
    argv = ["train", "tsr", "--renders", "1", "--steps", "100000", "--checkpoint-every", "100000"]
    argv += ["--batch-size", "1", "--crop", "64", "--no-eval", "--threads", "1"]
    argv += ["--work-dir", str(work), "--wheel-cache", str(wheels), "-o", str(output)]
    step = _stopped_at_step(argv, "step 25/100000 ", number, status)
    state = torch.load(work / CHECKPOINT_NAME, weights_only=False, map_location="cpu")
    assert state["step"] == step >= 25
    assert not output.exists()


# --- train speed: checkpoints per output path, one run at a time, resume checks, interrupts ---

import test_speed_train  # noqa: E402

from engine.processes import exclusive_lock  # noqa: E402
from engine.training.speed import finetune  # noqa: E402

footage = test_speed_train.footage  # the three short clips


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A Chronoscope home of the module's own, so the default work folders are looked at here."""
    folder = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHRONOSCOPE_HOME", str(folder))
        yield folder


@pytest.fixture
def at_home(home, monkeypatch):
    """Each test gets a home of its own (conftest): these go back to the module's."""
    monkeypatch.setenv("CHRONOSCOPE_HOME", str(home))


def _speed(data, output, *extra) -> list[str]:
    options = ["--renders", "0", "--device", "cpu", *extra]
    return ["train", "speed", "--data", str(data), "-o", str(output), *options]


@pytest.fixture(scope="module")
def first_speed(home, footage, tmp_path_factory):
    """Two steps of ``train speed`` into the default work folder of ``a/sig.onnx``."""
    output = tmp_path_factory.mktemp("out") / "a" / "sig.onnx"
    assert cli.main(_speed(footage, output, "--steps", "2")) == 0
    return output


def test_speed_outputs_of_one_name_keep_their_own_checkpoints(at_home, first_speed, footage, capsys):
    other = first_speed.parent.parent / "b" / "sig.onnx"
    work = finetune.default_work_dir(first_speed)
    assert work != finetune.default_work_dir(other) and work.name.startswith("sig-")
    assert (work / finetune.CHECKPOINT_NAME).is_file()
    capsys.readouterr()
    assert cli.main(_speed(footage, other, "--steps", "3", "--resume")) == cli.EXIT_USER_ERROR
    assert "--resume: there is no checkpoint at" in capsys.readouterr().err
    assert not other.exists()


def test_speed_resume_on_other_data_is_refused(at_home, first_speed, footage, capsys):
    argv = _speed(footage / "nested", first_speed, "--steps", "3", "--resume")
    assert cli.main(argv) == cli.EXIT_USER_ERROR
    error = capsys.readouterr().err
    assert f"was trained on --data {footage}, not {footage / 'nested'}" in error


def test_speed_resume_below_the_checkpoints_step_is_refused(at_home, first_speed, footage, capsys):
    assert cli.main(_speed(footage, first_speed, "--steps", "1", "--resume")) == cli.EXIT_USER_ERROR
    assert "is at step 2 already" in capsys.readouterr().err


def test_a_second_speed_run_on_the_same_output_is_refused_at_once(at_home, first_speed, footage, capsys):
    work = finetune.default_work_dir(first_speed)
    with exclusive_lock(work / finetune.WORK_LOCK_NAME):
        assert cli.main(_speed(footage, first_speed, "--steps", "3", "--resume")) == cli.EXIT_USER_ERROR
    assert "another `chronoscope train speed` is training in" in capsys.readouterr().err


def test_a_speed_run_without_resume_says_it_replaces_the_checkpoint(at_home, first_speed, footage, caplog):
    assert cli.main(_speed(footage, first_speed, "--steps", "1")) == 0
    assert "replacing the checkpoint at" in caplog.text


@pytest.mark.parametrize(("number", "status"), [(2, 130), (15, 143)])  # SIGINT, SIGTERM
def test_an_interrupted_speed_run_saves_its_checkpoint(footage, tmp_path_factory, number, status):
    work = tmp_path_factory.getbasetemp() / "interrupted-work"  # shared: the clips are cached once
    output = tmp_path_factory.mktemp("out") / "x.onnx"
    argv = _speed(footage, output, "--steps", "100000", "--checkpoint-every", "100000")
    argv += ["--work-dir", str(work)]
    step = _stopped_at_step(argv, " step 25 ", number, status)
    state = torch.load(work / finetune.CHECKPOINT_NAME, weights_only=False, map_location="cpu")
    assert state["step"] == step >= 25
    assert not output.exists()


def test_speed_output_and_work_folder_messages_name_the_problem(footage, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("notes")
    assert cli.main(_speed(footage, notes / "x.onnx")) == cli.EXIT_USER_ERROR
    assert f"cannot write the model into {notes}: Not a directory" in capsys.readouterr().err
    output = tmp_path / "m.onnx"
    assert cli.main(_speed(footage, output, "--work-dir", str(notes))) == cli.EXIT_USER_ERROR
    assert f"cannot make the work folder {notes}: a file is there; give another --work-dir" in (
        capsys.readouterr().err
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    deep = tmp_path / "newdir" / "a" / "b" / "x.onnx"
    assert cli.main(_speed(empty, deep, "--work-dir", str(tmp_path / "w"))) == cli.EXIT_USER_ERROR
    assert "no video files" in capsys.readouterr().err
    assert not (tmp_path / "newdir").exists()


def test_tsr_work_folder_that_is_a_file_names_the_option(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("notes")
    status = cli.main(
        ["train", "tsr", "--renders", "1", "--steps", "1", "--no-eval", "--threads", "1"]
        + ["--work-dir", str(notes), "-o", str(tmp_path / "m.onnx")]
    )
    error = capsys.readouterr().err
    assert status == cli.EXIT_USER_ERROR
    assert f"cannot make the checkpoint folder {notes}: a file is there; give another --work-dir" in error


def test_tsr_resume_below_the_checkpoints_step_is_refused(tmp_path, wheels):
    from test_tsr_audit_fixes import _config

    from engine.errors import UnsupportedOptionError
    from engine.training.tsr.train import fine_tune

    work = tmp_path / "work"
    fine_tune(_config(tmp_path, wheels, work_dir=work, steps=2))
    with pytest.raises(UnsupportedOptionError, match="is at step 2 already"):
        fine_tune(_config(tmp_path, wheels, work_dir=work, steps=1, resume=True))
    resumed = fine_tune(_config(tmp_path, wheels, work_dir=work, steps=3, resume=True))
    assert resumed.start_step == 2
