"""``chronoscope train tsr``: bad inputs are refused with a clear message and nothing is written."""

from __future__ import annotations

import pytest

from engine import cli
from engine.commands import train


def test_missing_torch_names_the_train_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train, "missing_train_modules", lambda: ["torch"])
    (tmp_path / "DATASET").mkdir()
    output = tmp_path / "models" / "rife-tuned.onnx"
    status = cli.main(["train", "tsr", "--dataset", str(tmp_path / "DATASET"), "-o", str(output)])
    assert status == cli.EXIT_USER_ERROR
    error = capsys.readouterr().err
    assert "needs torch" in error and "pip install 'chronoscope[train]'" in error
    assert not output.parent.exists()


def test_the_real_import_check_finds_what_is_installed():
    missing = train.missing_train_modules()
    assert set(missing) <= {"torch", "onnx"}
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    assert missing == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--dataset", "{tmp}/DATASET"], "holds no clips"),
        (["--dataset", "{tmp}/nowhere"], "is not a folder"),
        ([], "nothing to train on"),
        (["--dataset", "{tmp}/DATASET", "--init", "rife-9"], "use one of: rife-4.2x, rife-hdv3"),
        (["--dataset", "{tmp}/DATASET", "--device", "tpu"], "use one of: auto, cuda, cpu"),
        (["--dataset", "{tmp}/DATASET", "--steps", "0"], "--steps 0 must be at least 1"),
        (["--dataset", "{tmp}/DATASET", "-o", "{tmp}/models/rife-hdv3.onnx"], "taken by a built-in backend"),
        (["--dataset", "{tmp}/DATASET", "-o", "{tmp}/models/Tuned Model.onnx"], "must be 1-64 of"),
        (["--dataset", "{tmp}/DATASET", "-o", "{tmp}/models/tuned.pt"], "must end in .onnx"),
    ],
)
def test_bad_inputs_are_refused(tmp_path, capsys, arguments, message):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    (tmp_path / "DATASET").mkdir()
    (tmp_path / "DATASET" / "notes.txt").write_text("no clips here\n")
    default_output = ["-o", str(tmp_path / "models" / "rife-tuned.onnx")]
    argv = [part.format(tmp=tmp_path) for part in arguments]
    if "-o" not in argv:
        argv += default_output
    status = cli.main(["train", "tsr", *argv])
    assert status == cli.EXIT_USER_ERROR
    assert message in capsys.readouterr().err
    assert not (tmp_path / "models").exists()


def test_help_lists_the_task_and_ends_with_examples(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "tsr", "--help"])
    text = capsys.readouterr().out
    assert "--dataset" in text and "--resume" in text
    assert text.rstrip().splitlines()[-1].strip().startswith("chronoscope train tsr")


def test_excluding_every_source_is_refused_by_name(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from media_factory import render_clip

    dataset = tmp_path / "DATASET"
    dataset.mkdir()
    render_clip(dataset / "phantom-drop.mp4", rate=240, frame_count=24, size=(64, 48))
    status = cli.main(
        ["train", "tsr", "--dataset", str(dataset), "--exclude-source", "*phantom*"]
        + ["-o", str(tmp_path / "models" / "rife-tuned.onnx")]
    )
    assert status == cli.EXIT_USER_ERROR
    error = capsys.readouterr().err
    assert "matches the exclusions *phantom*" in error and "nothing is left to train on" in error
    assert not (tmp_path / "models").exists()
