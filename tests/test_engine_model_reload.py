"""A running engine serves the model files that are there now: a model trained again under its
name, one removed, and ``rife`` once a preferred model is prepared, without a restart. Against a
real engine process over ipc://, with a models folder of the test's own."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from process_control import background_engine

from engine.errors import UnsupportedOptionError
from engine.models.registry import models_dir
from engine.server.client import EngineClient

pytestmark = pytest.mark.skipif(os.name == "nt", reason="ipc://")

PREPARED = Path(os.environ.get("CHRONOSCOPE_MODELS_DIR") or models_dir())


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A models folder holding rife-4.2x only (linked to the prepared one), for the engine."""
    for name in ("rife-4.2x", "rife-hdv3"):
        if not (PREPARED / f"{name}.onnx").is_file():
            pytest.skip(f"{name} is not prepared in {PREPARED} (make test prepares it)")
    folder = tmp_path / "models"
    folder.mkdir()
    link_prepared(folder, "rife-4.2x")
    monkeypatch.setenv("CHRONOSCOPE_MODELS_DIR", str(folder))
    return folder


def link_prepared(folder: Path, name: str) -> None:
    for suffix in (".onnx", ".manifest.json"):
        (folder / f"{name}{suffix}").symlink_to(PREPARED / f"{name}{suffix}")


def write_own_model(folder: Path, name: str, network: str) -> None:
    """``name`` as ``chronoscope train tsr`` leaves it: the prepared ``network`` under that name,
    each file written to a temporary name and renamed over the one before."""
    manifest = json.loads((PREPARED / f"{network}.manifest.json").read_text())
    manifest.update(name=name, file=f"{name}.onnx")
    manifest["converter"] = {"module": "engine.training.tsr.export", "version": 1, "training": {"steps": 3}}
    shutil.copyfile(PREPARED / f"{network}.onnx", folder / f".{name}.onnx.tmp")
    os.replace(folder / f".{name}.onnx.tmp", folder / f"{name}.onnx")
    (folder / f".{name}.manifest.tmp").write_text(json.dumps(manifest))
    os.replace(folder / f".{name}.manifest.tmp", folder / f"{name}.manifest.json")


def moving_pair() -> tuple[np.ndarray, np.ndarray]:
    """A textured square that moves 6 px: the two networks make different in-between frames."""
    generator = np.random.default_rng(7)
    frame0 = np.full((64, 64, 3), 40, np.uint8)
    frame1 = frame0.copy()
    texture = generator.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    frame0[20:40, 14:34] = texture
    frame1[20:40, 20:40] = texture
    return frame0, frame1


def test_the_engine_serves_the_model_files_there_now(folder, tmp_path):
    frame0, frame1 = moving_pair()
    with background_engine(tmp_path / "home") as (connection, _), EngineClient(connection) as client:

        def made(backend: str) -> np.ndarray:
            (result,) = client.synthesize(frame0, frame1, [0.5], backend=backend)
            return result.frame

        write_own_model(folder, "rife-own", "rife-4.2x")
        by_v4 = made("rife")
        assert np.array_equal(made("rife-own"), by_v4)

        link_prepared(folder, "rife-hdv3")  # `models prepare` while the engine runs
        by_hdv3 = made("rife")
        assert not np.array_equal(by_hdv3, by_v4), "rife kept 4.2x after rife-hdv3 was prepared"

        write_own_model(folder, "rife-own", "rife-hdv3")  # trained again, on the other architecture
        assert np.array_equal(made("rife-own"), by_hdv3), "the engine served the replaced rife-own"

        for suffix in (".onnx", ".manifest.json"):
            (folder / f"rife-own{suffix}").unlink()
        with pytest.raises(UnsupportedOptionError, match="synthesis model not available: 'rife-own'"):
            made("rife-own")
