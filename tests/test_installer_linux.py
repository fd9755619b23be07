"""installer/install.py and uninstall.py for real on Linux, into a temporary HOME.

The fast path runs the installer's own code end to end (environment, pip install of Chronoscope
from a staged copy of the checkout, models check, Resolve scripts, bridge config, OFX build and
install, systemd unit, desktop entry, manifest, doctor) with ``--reuse-packages``: the new
environment sees this test environment's packages and Chronoscope itself is installed with
``--no-deps``, so nothing is downloaded. The models are seeded from the test models folder when
it has them, so the installer finds them current and leaves them alone (and uninstall too).

``test_full_install_from_the_registries`` installs everything for real (dependencies, torch for
the conversion); it downloads gigabytes and runs only with CHRONOSCOPE_SLOW_TESTS=1.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "installer"))
sys.path.insert(0, str(REPO_ROOT / "plugins" / "davinci_resolve"))

import install_paths as resolve_install_paths  # noqa: E402

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the installer tests run on Linux"
)

INSTALL = REPO_ROOT / "installer" / "install.py"
UNINSTALL = REPO_ROOT / "installer" / "uninstall.py"
CLEARED = (
    "CHRONOSCOPE_HOME",
    "CHRONOSCOPE_MODELS_DIR",
    "XDG_DATA_HOME",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "OFX_PLUGIN_PATH",
    "CHRONOSCOPE_ORT_PROVIDERS",
    "PYTHONPATH",
)


def _models_source() -> Path | None:
    """A models folder holding every current RIFE model, the shipped tuned ones too (``make test``
    prepares build/models), so the installer converts nothing."""
    from engine.models.convert_rife import stale_models

    for candidate in (os.environ.get("CHRONOSCOPE_MODELS_DIR"), REPO_ROOT / "build" / "models"):
        if candidate and Path(candidate).is_dir() and not stale_models(Path(candidate)):
            return Path(candidate)
    return None


# ONNX Runtime writes a device id under ~/.cache/Microsoft the first time any process imports it
# (the installer's doctor run, like the engine's first start): not a file the installer makes.
ORT_DEVICE_ID = "home/.cache/Microsoft"


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root``: kind, mode and content hash (files) or target (links)."""
    entries = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if relative.startswith(ORT_DEVICE_ID) or relative == "home/.cache":
            continue
        if path.is_symlink():
            entries[relative] = f"link {os.readlink(path)}"
        elif path.is_dir():
            entries[relative] = f"dir {path.stat().st_mode:o}"
        else:
            entries[relative] = (
                f"file {path.stat().st_mode:o} {hashlib.sha256(path.read_bytes()).hexdigest()}"
            )
    return entries


class Sandbox:
    """A temporary HOME (and an OFX plugin folder beside it) with the environment the installer sees."""

    def __init__(self, root: Path):
        self.root = root
        self.home = root / "home"
        self.ofx = root / "ofx-plugins"
        self.outside = root.parent / f"{root.name}-outside"
        for folder in (self.home, self.outside / "runtime", self.outside / "state"):
            folder.mkdir(parents=True)
        (self.outside / "runtime").chmod(0o700)
        self.env = {name: value for name, value in os.environ.items() if name not in CLEARED}
        self.env.update(
            {
                "HOME": str(self.home),
                "OFX_PLUGIN_PATH": str(self.ofx),
                # the engine started for doctor keeps its sockets and log out of the snapshot
                "XDG_RUNTIME_DIR": str(self.outside / "runtime"),
                "XDG_STATE_HOME": str(self.outside / "state"),
            }
        )
        # rustup's proxies on PATH (run during the package build) keep using this machine's toolchain
        # settings instead of creating ~/.rustup in the temporary HOME
        for variable, folder in (("RUSTUP_HOME", ".rustup"), ("CARGO_HOME", ".cargo")):
            if variable not in self.env and (Path.home() / folder).is_dir():
                self.env[variable] = str(Path.home() / folder)
        self.data = self.home / ".local" / "share" / "Chronoscope"
        self.venv = self.data / "venv"
        self.manifest = self.data / "install-manifest.json"

    def run(
        self, *command, timeout_s: float = 300, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(part) for part in command],
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            cwd=self.root,
            timeout=timeout_s,
            check=False,
        )

    def install(self, *extra) -> subprocess.CompletedProcess:
        return self.run(
            sys.executable,
            INSTALL,
            "--source",
            REPO_ROOT,
            "--reuse-packages",
            sys.prefix,
            "--no-autostart",
            *extra,
        )


def _skip_without_zmq_header() -> None:
    if not _zmq_header_found():
        pytest.skip(
            "building the OFX bundle needs libzmq's header (libzmq3-dev), or CFLAGS=-I<folder of zmq.h>"
        )


def _zmq_header_found() -> bool:
    """Whether gcc finds libzmq's header, with the CFLAGS the OFX build is given (the Makefile
    takes CFLAGS from the environment)."""
    flags = os.environ.get("CFLAGS", "").split()
    found = subprocess.run(
        ["gcc", *flags, "-E", "-x", "c", "-", "-o", os.devnull],
        input="#include <zmq.h>\n",
        capture_output=True,
        text=True,
        check=False,
    )
    return found.returncode == 0


@pytest.fixture
def sandbox(tmp_path) -> Sandbox:
    if sys.prefix == sys.base_prefix:
        pytest.skip("the fast install reuses a virtual environment's packages; run the tests in .venv")
    if shutil.which("make") is None or shutil.which("gcc") is None:
        pytest.skip("building the OFX bundle needs make and gcc")
    return Sandbox(tmp_path)


def _check_unit(unit: Path, venv: Path) -> None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read_string(unit.read_text())
    assert parser["Service"]["ExecStart"] == f'"{venv / "bin" / "chronoscope"}" engine run'
    assert parser["Install"]["WantedBy"] == "default.target"
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return
    verified = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, check=False)
    output = verified.stdout + verified.stderr
    assert verified.returncode == 0, output
    assert "Unknown" not in output and "ignoring" not in output, output


def test_install_doctor_reinstall_uninstall(sandbox):
    _skip_without_zmq_header()
    models = _models_source()
    if models is None:
        pytest.skip("no prepared models (make test prepares build/models); the slow test converts them")
    models_dir = sandbox.data / "models"
    models_dir.mkdir(parents=True)
    for path in models.iterdir():
        if path.name.endswith((".onnx", ".manifest.json")):
            shutil.copy2(path, models_dir / path.name)
    before = snapshot(sandbox.root)

    first = sandbox.install()
    assert first.returncode == 0, first.stdout + first.stderr
    record = json.loads(sandbox.manifest.read_text())
    listed = {item["path"]: item for item in record["items"]}
    assert record["gpu"] in ("cpu", "cuda") and record["version"]

    utility = sandbox.home / ".local/share/DaVinciResolve/Fusion/Scripts/Utility"
    modules = sandbox.data / "resolve"
    assert sorted(path.name for path in utility.iterdir()) == sorted(resolve_install_paths.ENTRY_FILES)
    for name, text in resolve_install_paths.entry_texts(modules).items():
        assert (utility / name).read_text(encoding="utf-8") == text
        assert listed[str(utility / name)]["component"] == "resolve" and listed[str(utility / name)]["sha256"]
    for name in resolve_install_paths.SHARED_MODULES.values():
        installed = modules / name
        assert installed.read_bytes() == (REPO_ROOT / "plugins" / "davinci_resolve" / name).read_bytes()
        assert str(installed) in listed
    assert listed[str(modules)]["kind"] == "dir"
    detect = sandbox.run(sys.executable, utility / "Chronoscope - Detect Speed.py")
    assert detect.stdout.startswith("Chronoscope - Detect Speed: error: DaVinci Resolve's scripting module")
    config = json.loads((sandbox.home / ".config/Chronoscope/resolve-bridge.json").read_text())
    assert config["command"][0] == str(sandbox.venv / "bin" / "python")

    bundle = sandbox.ofx / "Chronoscope.ofx.bundle"
    assert listed[str(bundle)]["kind"] == "tree"
    from engine.doctor import load_ofx_bundle

    assert load_ofx_bundle(bundle)["plugins"][0]["identifier"] == "org.chronoscope.Retime"
    _check_unit(sandbox.home / ".config/systemd/user/chronoscope-engine.service", sandbox.venv)
    entry = configparser.ConfigParser(interpolation=None)
    entry.read(sandbox.home / ".local/share/applications/chronoscope.desktop")
    assert Path(entry["Desktop Entry"]["TryExec"]) == sandbox.venv / "bin" / "chronoscope-gui"
    assert Path(entry["Desktop Entry"]["TryExec"]).is_file()
    assert not any(str(models_dir) in path for path in listed if path.endswith(".onnx")), (
        "seeded models claimed"
    )
    launcher = sandbox.home / ".local" / "bin" / "chronoscope"
    assert listed[str(launcher)]["component"] == "commands"
    assert str(sandbox.venv / "bin" / "chronoscope") in launcher.read_text()

    chronoscope = sandbox.venv / "bin" / "chronoscope"
    engine_cache = {"XDG_CACHE_HOME": str(sandbox.outside / "cache")}  # the engine's job records
    started = sandbox.run(chronoscope, "engine", "start", timeout_s=120, env=engine_cache)
    assert started.returncode == 0, started.stderr
    try:
        doctor = sandbox.run(chronoscope, "doctor", "--json", timeout_s=120, env=engine_cache)
    finally:
        stopped = sandbox.run(chronoscope, "engine", "stop", timeout_s=60, env=engine_cache)
    assert stopped.returncode == 0, stopped.stderr
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    checks = {check["name"]: check for check in json.loads(doctor.stdout)["checks"]}
    for name in ("python", "onnxruntime", "models", "engine", "resolve", "ofx", "install", "disk"):
        assert checks[name]["status"] == "pass", checks[name]
    assert checks["engine"]["details"]["round_trip_ms"] > 0
    assert "speed_net" in checks["models"]["details"]["verified"]

    # an earlier install put the shared module beside the entries, where Resolve listed it as a script
    stale = utility / "chronoscope_resolve.py"
    shutil.copy2(REPO_ROOT / "plugins" / "davinci_resolve" / "chronoscope_resolve.py", stale)
    earlier = json.loads(sandbox.manifest.read_text())
    digest = hashlib.sha256(stale.read_bytes()).hexdigest()
    earlier["items"].append({"kind": "file", "path": str(stale), "component": "resolve", "sha256": digest})
    sandbox.manifest.write_text(json.dumps(earlier))

    second = sandbox.install()
    assert second.returncode == 0, second.stdout + second.stderr
    assert not stale.exists()
    again = json.loads(sandbox.manifest.read_text())
    assert {item["path"] for item in again["items"]} == set(listed)

    removed = sandbox.run(sys.executable, UNINSTALL)
    assert removed.returncode == 0, removed.stderr
    assert not any(os.path.lexists(path) for path in listed)
    assert snapshot(sandbox.root) == before


def test_dry_run_changes_nothing(sandbox):
    before = snapshot(sandbox.root)
    planned = sandbox.run(
        "sh",
        REPO_ROOT / "installer" / "install.sh",
        "--dry-run",
        "--no-autostart",
        env={"PYTHON": sys.executable},
    )
    assert planned.returncode == 0, planned.stderr
    assert "would run" in planned.stderr and "would copy" in planned.stderr
    assert snapshot(sandbox.root) == before


def test_source_that_is_not_a_checkout_is_refused(sandbox):
    refused = sandbox.run(sys.executable, INSTALL, "--source", sandbox.root, "--dry-run")
    assert refused.returncode == 1
    assert "is not a Chronoscope checkout (missing: pyproject.toml, engine, plugins)" in refused.stderr
    assert not refused.stdout


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("CHRONOSCOPE_SLOW_TESTS") != "1",
    reason="set CHRONOSCOPE_SLOW_TESTS=1: installs every dependency and torch from the package registries",
)
def test_full_install_from_the_registries(sandbox):
    _skip_without_zmq_header()
    before = snapshot(sandbox.root)
    wheels = REPO_ROOT / "build" / "wheels"
    extra = ["--wheel-cache", wheels] if wheels.is_dir() else []
    # where download.pytorch.org is out of reach, CHRONOSCOPE_TORCH_INDEX_URL=none takes torch from
    # the indexes pip is configured with
    if os.environ.get("CHRONOSCOPE_TORCH_INDEX_URL"):
        extra += ["--torch-index-url", os.environ["CHRONOSCOPE_TORCH_INDEX_URL"]]
    installed = sandbox.run(
        sys.executable,
        INSTALL,
        "--source",
        REPO_ROOT,
        "--no-autostart",
        "--gpu",
        "cpu",
        *extra,
        timeout_s=3600,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    freeze = sandbox.run(sandbox.venv / "bin" / "python", "-m", "pip", "list", "--format", "json")
    names = {package["name"].lower() for package in json.loads(freeze.stdout)}
    assert "onnxruntime" in names and "onnxruntime-gpu" not in names and "torch" not in names
    assert "pyqt6" in names
    doctor = sandbox.run(sandbox.venv / "bin" / "chronoscope", "doctor", "--json")
    checks = {check["name"]: check["status"] for check in json.loads(doctor.stdout)["checks"]}
    assert checks["models"] == "pass" and checks["ofx"] == "pass" and checks["resolve"] == "pass"
    removed = sandbox.run(sys.executable, UNINSTALL)
    assert removed.returncode == 0, removed.stderr
    assert snapshot(sandbox.root) == before
