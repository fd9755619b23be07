"""Model manifests and the registry: round trips, refusals, hash checks, the CLI listing."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

import pytest

from engine.commands import COMMAND_MODULES
from engine.commands import models as models_command
from engine.errors import ModelIntegrityError, ModelNotFoundError, UnsupportedOptionError
from engine.models.manifest import (
    MANIFEST_VERSION,
    ModelManifest,
    Provenance,
    TensorSpec,
    manifest_path_for,
    read_manifest,
    sha256_bytes,
    write_manifest,
)
from engine.models.registry import (
    ENV_MODELS_DIR,
    list_models,
    locate_model,
    models_dir,
    read_verified_bytes,
    scan_models,
)


def _manifest(name: str, payload: bytes) -> ModelManifest:
    return ModelManifest(
        name=name,
        architecture="test-arch",
        file=f"{name}.onnx",
        sha256=sha256_bytes(payload),
        size_bytes=len(payload),
        onnx_opset=17,
        pad_multiple=32,
        supports_timestep=False,
        parameter_count=3,
        inputs=(TensorSpec("img0", "float32", ("batch", 3, "height", "width")),),
        outputs=(TensorSpec("frame", "float32", ("batch", 3, "height", "width")),),
        provenance=Provenance("pkg", "1.0", "pkg-1.0-py3-none-any.whl", "a" * 64, "w.pkl", "b" * 64, "MIT",
                              "Copyright (c) someone", "https://example.invalid/pkg"),
        converter={"version": 1},
    )


def _install(folder, name: str, payload: bytes) -> ModelManifest:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.onnx").write_bytes(payload)
    manifest = _manifest(name, payload)
    write_manifest(manifest, manifest_path_for(folder / f"{name}.onnx"))
    return manifest


def test_manifest_round_trips_through_json(tmp_path):
    manifest = _manifest("m", b"model bytes")
    path = tmp_path / "m.manifest.json"
    write_manifest(manifest, path)
    assert read_manifest(path) == manifest
    assert json.loads(path.read_text())["manifest_version"] == MANIFEST_VERSION
    assert manifest_path_for(tmp_path / "m.onnx") == path


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"manifest_version": MANIFEST_VERSION + 1}, "manifest_version"),
        ({"sha256": "XYZ"}, "sha256"),
        ({"file": "../elsewhere/m.onnx"}, r"bare \*\.onnx name"),
        ({"pad_multiple": 0}, "pad_multiple"),
    ],
)
def test_manifest_refuses_bad_fields(change, expected):
    raw = json.loads(_manifest("m", b"x").to_json())
    raw.update(change)
    with pytest.raises(ModelIntegrityError, match=expected):
        ModelManifest.from_json(json.dumps(raw), source="m.manifest.json")


def test_manifest_refuses_missing_field_and_bad_json():
    raw = json.loads(_manifest("m", b"x").to_json())
    del raw["provenance"]
    with pytest.raises(ModelIntegrityError, match="missing or malformed"):
        ModelManifest.from_json(json.dumps(raw))
    with pytest.raises(ModelIntegrityError, match="not valid JSON"):
        ModelManifest.from_json("{not json")


def test_models_dir_follows_environment_then_places(tmp_path, monkeypatch, isolated_places):
    monkeypatch.delenv(ENV_MODELS_DIR, raising=False)
    assert models_dir() == isolated_places / "data" / "models"
    monkeypatch.setenv(ENV_MODELS_DIR, str(tmp_path / "custom"))
    assert models_dir() == tmp_path / "custom"


def test_locate_missing_model_says_how_to_prepare(tmp_path):
    _install(tmp_path, "other", b"123")
    with pytest.raises(ModelNotFoundError) as caught:
        locate_model("rife-hdv3", tmp_path)
    message = str(caught.value)
    assert "chronoscope models prepare" in message and "installed: other" in message
    assert isinstance(caught.value, FileNotFoundError)


def test_registry_lists_good_models_and_reports_broken_ones(tmp_path, caplog):
    _install(tmp_path, "good", b"good model")
    _install(tmp_path, "orphan", b"file will vanish")
    (tmp_path / "orphan.onnx").unlink()
    (tmp_path / "garbled.manifest.json").write_text("{")
    installed, broken = scan_models(tmp_path)
    assert [model.name for model in installed] == ["good"]
    broken_names = sorted(item.manifest_path.name for item in broken)
    assert broken_names == ["garbled.manifest.json", "orphan.manifest.json"]
    assert [model.name for model in list_models(tmp_path)] == ["good"]
    assert "ignoring model manifest" in caplog.text
    with pytest.raises(ModelIntegrityError, match="is missing"):
        locate_model("orphan", tmp_path)


def test_verified_read_refuses_tampered_and_resized_files(tmp_path):
    payload = bytes(range(256)) * 64
    _install(tmp_path, "m", payload)
    model = locate_model("m", tmp_path)
    assert read_verified_bytes(model) == payload
    tampered = bytearray(payload)
    tampered[1000] ^= 0xFF
    (tmp_path / "m.onnx").write_bytes(bytes(tampered))
    with pytest.raises(ModelIntegrityError, match="does not match the manifest"):
        read_verified_bytes(model)
    (tmp_path / "m.onnx").write_bytes(payload + b"!")
    with pytest.raises(ModelIntegrityError, match="bytes, the manifest says"):
        read_verified_bytes(model)


def test_manifest_name_must_match_its_file_name(tmp_path):
    manifest = _install(tmp_path, "m", b"abc")
    renamed = dataclasses.replace(manifest, name="n")
    write_manifest(renamed, tmp_path / "m.manifest.json")
    installed, broken = scan_models(tmp_path)
    assert not installed and "expected 'm'" in broken[0].problem


def _models_command(argv: list[str]) -> int:
    """Parse and run ``chronoscope models ...`` through the command module, as engine.cli does."""
    parser = argparse.ArgumentParser(prog="chronoscope models")
    models_command.configure(parser)
    return models_command.run(parser.parse_args(argv))


def test_cli_lists_models_and_flags_damage(tmp_path, capsys):
    (tmp_path / "none").mkdir()
    assert _models_command(["list", "--models-dir", str(tmp_path / "none")]) == 0
    assert "no models installed" in capsys.readouterr().out
    _install(tmp_path, "m", b"abc")
    assert _models_command(["list", "--models-dir", str(tmp_path), "--verify", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["models"][0]["state"] == "verified"
    (tmp_path / "m.onnx").write_bytes(b"abd")
    assert _models_command(["list", "--models-dir", str(tmp_path), "--verify"]) == 1
    assert "damaged" in capsys.readouterr().out


def test_cli_lists_a_damaged_model_as_damaged_without_being_asked_to_verify(tmp_path, capsys):
    """`models list` said "present" of a model whose bytes no longer match its manifest, where doctor
    reported the SHA-256 mismatch."""
    _install(tmp_path, "m", b"abc")
    assert _models_command(["list", "--models-dir", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"][0]["state"] == "verified"
    (tmp_path / "m.onnx").write_bytes(b"abd")  # same size, other bytes
    assert _models_command(["list", "--models-dir", str(tmp_path)]) == 1
    listed = capsys.readouterr().out
    assert listed.splitlines()[1].endswith("damaged (checksum mismatch)"), listed
    # m is no model `models prepare` makes: it says so, and not that doctor's fix rebuilds it
    assert "m: not made by `chronoscope models prepare`; train again" in listed
    (tmp_path / "m.onnx").write_bytes(b"abcd")
    assert _models_command(["list", "--models-dir", str(tmp_path), "--json"]) == 1
    state = json.loads(capsys.readouterr().out)["models"][0]["state"]
    assert state == "damaged (size 4 bytes, the manifest says 3)"


def test_cli_prepare_refuses_unknown_model_name(tmp_path):
    with pytest.raises(UnsupportedOptionError, match="known: rife-hdv3, rife-4.2x, rife-mined"):
        _models_command(["prepare", "--models-dir", str(tmp_path), "--model", "rife-9", "--offline"])
    assert not os.listdir(tmp_path)


def test_models_command_is_registered():
    assert "engine.commands.models" in COMMAND_MODULES
    assert models_command.NAME == "models" and "examples:" in models_command.DESCRIPTION
