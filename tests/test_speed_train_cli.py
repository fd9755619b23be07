"""``chronoscope train speed`` without the train extra: a clear error naming the install command.

Runs with or without torch: where torch is installed, its absence is simulated at the one place
the command looks for it (``importlib.util.find_spec``).
"""

from __future__ import annotations

import importlib.util

from engine.cli import main


def test_missing_torch_names_the_train_extra(tmp_path, monkeypatch, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real_find_spec(name, *a)
    )
    status = main(["train", "speed", "--data", str(tmp_path), "-o", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert status == 2 and "needs torch" in err and "pip install 'chronoscope[train]'" in err
    assert not (tmp_path / "m.onnx").exists()
