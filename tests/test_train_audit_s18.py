"""``chronoscope train speed`` and ``train tsr`` after the s18 audit: an output that is a folder
is refused before training, checkpoints of ``train speed`` are kept per output path under a lock,
a resume is checked against its checkpoint (data, step count), an interrupted run saves its
checkpoint, and the messages name what was wrong."""

from __future__ import annotations

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
