"""Checks of an installed Chronoscope, one plain function each: ``chronoscope doctor`` runs them all.

Each check returns a ``CheckResult``: ``pass``, ``warn`` (works, but something is missing or
slower than it could be: no GPU, no engine running yet) or ``fail`` (a part editors need does not
work), with a one-line summary, the fix, and details for ``--json``.

What an installed user has is the environment and the install manifest that
``installer/install.py`` wrote (``<prefix>/install-manifest.json``, beside the environment): the
Resolve scripts, the OFX bundle and the autostart file are checked as the manifest lists them.
In a source checkout without an install, the OFX check looks at the bundle ``make ofx`` built.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine import __version__
from engine.places import places

PASS, WARN, FAIL = "pass", "warn", "fail"
STATUSES = (PASS, WARN, FAIL)
MIN_PYTHON = (3, 10)
MANIFEST_NAME = "install-manifest.json"
MANIFEST_FORMAT = 1
REINSTALL_FIX = "run the installer again: python3 installer/install.py (it upgrades in place)"
DISK_WARN_BYTES = 5 * 1024**3
DISK_FAIL_BYTES = 1 * 1024**3
PING_COUNT = 5
PING_TIMEOUT_S = 2.0
OFX_PLUGIN_API = b"OfxImageEffectPluginAPI"
OFX_BINARY_NAME = "Chronoscope.ofx"
OFX_ARCHITECTURES = {"linux": "Linux-x86-64", "darwin": "MacOS", "win32": "Win64"}
SOURCE_ROOT = Path(__file__).resolve().parent.parent
VERSIONED_PACKAGES = (
    "chronoscope",
    "numpy",
    "av",
    "opentimelineio",
    "pyzmq",
    "platformdirs",
    "opencv-python-headless",
    "onnxruntime",
    "onnxruntime-gpu",
    "tqdm",
    "PyQt6",
    "torch",
    "onnx",
)


@dataclass
class CheckResult:
    """The outcome of one check: what it looked at, what it found, and how to fix a problem."""

    name: str
    status: str
    summary: str
    fix: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"check status {self.status!r} is not one of: {', '.join(STATUSES)}")


@dataclass
class InstallRecord:
    """The parts of the install manifest the checks read."""

    path: Path
    items: list[dict[str, Any]]
    notes: list[str]
    onnxruntime: str = ""
    gpu: str = ""
    problems: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    prefix: str = ""

    def component(self, name: str, kind: str | None = None) -> list[dict[str, Any]]:
        return [
            item
            for item in self.items
            if item.get("component") == name and (kind is None or item.get("kind") == kind)
        ]


def find_manifest(explicit: Path | None = None) -> Path | None:
    """The install manifest: ``explicit``, else the one beside this environment, else in the data folder."""
    if explicit is not None:
        return Path(explicit)
    candidates = []
    if sys.prefix != sys.base_prefix:
        candidates.append(Path(sys.prefix).parent / MANIFEST_NAME)
    candidates.append(places().data_dir / MANIFEST_NAME)
    return next((path for path in candidates if path.is_file()), None)


def read_install_record(path: Path | None) -> tuple[InstallRecord | None, str]:
    """The manifest's record, or None and why not."""
    if path is None:
        return None, "no install manifest (Chronoscope was not installed with installer/install.py)"
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"install manifest {path} does not exist"
    except (OSError, json.JSONDecodeError) as error:
        return None, f"install manifest {path} cannot be read: {error}"
    if not isinstance(record, dict) or record.get("format") != MANIFEST_FORMAT:
        return None, f"install manifest {path} is not of format {MANIFEST_FORMAT}"
    options = record.get("options")
    return InstallRecord(
        Path(path),
        list(record.get("items", [])),
        list(record.get("notes", [])),
        str(record.get("onnxruntime", "")),
        str(record.get("gpu", "")),
        list(record.get("problems", [])),
        dict(options) if isinstance(options, dict) else {},
        str(record.get("source", "")),
        str(record.get("prefix", "")),
    ), ""


def _shell_word(text: str) -> str:
    if sys.platform == "win32":
        return f'"{text}"' if " " in text else text
    return shlex.quote(text)


FLAGS_OFF = {"resolve": "--no-resolve", "ofx": "--no-ofx", "autostart": "--no-autostart"}
"""The installer's options recorded as False in the manifest, and the flags that give them."""


def reinstall_command(record: InstallRecord | None) -> str:
    """The installer's command line as the install ``record`` was made (the checkout it was run
    from, its prefix, its options and the folder variables it was given); the generic one
    without a record."""
    if record is None or not record.source:
        return "python3 installer/install.py"
    environment = record.options.get("environment")
    words = [
        f"{name}={_shell_word(str(value))}"
        for name, value in (environment.items() if isinstance(environment, dict) else ())
    ]
    words += ["python3", _shell_word(str(Path(record.source) / "installer" / "install.py"))]
    if record.prefix:
        words += ["--prefix", _shell_word(record.prefix)]
    if record.options.get("gpu") in ("cuda", "cpu"):
        words += ["--gpu", str(record.options["gpu"])]
    words += [flag for key, flag in FLAGS_OFF.items() if record.options.get(key) is False]
    if record.options.get("reuse_packages"):
        words += ["--reuse-packages", _shell_word(str(record.options["reuse_packages"]))]
    return " ".join(words)


def reinstall_fix(record: InstallRecord | None) -> str:
    return f"run the installer again: {reinstall_command(record)} (it upgrades in place)"


def source_checkout() -> Path | None:
    """The source checkout this engine runs from (``pip install -e``, or PYTHONPATH), or None for an
    installed package."""
    marks = (SOURCE_ROOT / "pyproject.toml", SOURCE_ROOT / "Makefile")
    return SOURCE_ROOT if all(mark.is_file() for mark in marks) else None


def models_fix(record: InstallRecord | None) -> str:
    """How to make the models again: the installer where Chronoscope was installed with it (it
    converts them in a temporary environment with torch, which never enters the engine's); in a
    source checkout, its ``make models`` (or the train extra there)."""
    checkout = source_checkout()
    if record is None and checkout is not None:
        return (
            f"in the checkout {checkout}: make models (it installs the train extra, with torch, into "
            "its .venv and converts the models); or, in an environment of your own, pip install -e "
            f"'.[train]' there, then {chronoscope_command()} models prepare"
        )
    return reinstall_fix(record).replace(
        "(it upgrades in place)", "(it converts the models in a temporary environment with torch)"
    )


def chronoscope_command() -> str:
    """How to run this environment's ``chronoscope`` in a fix line: by name when PATH finds it (or the
    installer's launcher of it), else by its full path (the installer puts the environment's commands
    on PATH only through a launcher in ~/.local/bin, and not on Windows)."""
    windows = sys.platform == "win32"
    own = (
        Path(sys.prefix)
        / ("Scripts" if windows else "bin")
        / ("chronoscope.exe" if windows else "chronoscope")
    )
    if not own.is_file():
        return "chronoscope"
    found = shutil.which("chronoscope")
    if found is not None:
        found_path = Path(found)
        if found_path.resolve() == own.resolve() or _launches(found_path, own):
            return "chronoscope"
    text = str(own)
    return f'"{text}"' if " " in text else text


def _launches(launcher: Path, executable: Path) -> bool:
    """Whether ``launcher`` is a small script that runs ``executable`` (the installer's launchers are)."""
    try:
        if launcher.stat().st_size > 4096:
            return False
        text = launcher.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(f"exec {quoted} " in text for quoted in (str(executable), f"'{executable}'"))


def _sha256(path: Path) -> str:
    from engine.models.manifest import sha256_file

    return sha256_file(path)


# ------------------------------------------------------------------------------------ checks


def check_python() -> CheckResult:
    version = platform.python_version()
    details = {"version": version, "executable": sys.executable, "prefix": sys.prefix}
    if sys.version_info < MIN_PYTHON:
        return CheckResult(
            "python",
            FAIL,
            f"Python {version} is older than {'.'.join(map(str, MIN_PYTHON))}",
            "install Python 3.10 or newer and run the installer again",
            details,
        )
    return CheckResult("python", PASS, f"Python {version} ({sys.executable})", details=details)


def package_versions() -> dict[str, str]:
    """Installed versions of Chronoscope and what it uses (absent packages are left out)."""
    versions: dict[str, str] = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def check_versions() -> CheckResult:
    versions = package_versions()
    details: dict[str, Any] = {"packages": versions, "platform": platform.platform()}
    try:
        import zmq

        details["libzmq"] = zmq.zmq_version()
    except ImportError:
        details["libzmq"] = ""
    try:
        import av

        details["ffmpeg"] = {
            name: ".".join(map(str, version)) for name, version in sorted(av.library_versions.items())
        }
    except ImportError:
        details["ffmpeg"] = {}
    summary = ", ".join(f"{name} {version}" for name, version in versions.items())
    if "PyQt6" not in versions:
        return CheckResult(
            "versions",
            WARN,
            summary + "; PyQt6 missing: no preview app",
            "pip install 'chronoscope[gui]' in this environment, or run the installer again",
            details,
        )
    return CheckResult("versions", PASS, summary, details=details)


def nvidia_gpu_present(proc_root: Path = Path("/proc")) -> tuple[bool, str]:
    """Whether an NVIDIA GPU and driver are present here, and the evidence."""
    version_file = proc_root / "driver" / "nvidia" / "version"
    if sys.platform.startswith("linux") and version_file.is_file():
        return True, str(version_file)
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False, "no NVIDIA driver found (no /proc/driver/nvidia, no nvidia-smi)"
    import subprocess

    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"nvidia-smi did not run: {error}"
    gpus = [line for line in listing.stdout.splitlines() if line.startswith("GPU ")]
    return (True, gpus[0]) if listing.returncode == 0 and gpus else (False, "nvidia-smi lists no GPU")


def check_onnxruntime() -> CheckResult:
    """ONNX Runtime's providers and the GPU: a missing GPU is reported, not failed."""
    try:
        import onnxruntime as ort
    except ImportError as error:
        return CheckResult("onnxruntime", FAIL, f"ONNX Runtime does not import: {error}", REINSTALL_FIX)
    from engine.models.runtime import GPU_PROVIDERS, choose_providers

    available = ort.get_available_providers()
    chosen, reason = choose_providers()
    gpu, evidence = nvidia_gpu_present()
    details = {
        "version": ort.__version__,
        "available": available,
        "chosen": chosen,
        "gpu": gpu,
        "gpu_evidence": evidence,
        "gpu_unusable_reason": reason,
    }
    on_gpu = [name for name in chosen if name in GPU_PROVIDERS]
    if on_gpu:
        return CheckResult(
            "onnxruntime", PASS, f"onnxruntime {ort.__version__}: models run on {on_gpu[0]}", details=details
        )
    if not gpu:
        return CheckResult(
            "onnxruntime",
            PASS,
            f"onnxruntime {ort.__version__}: no NVIDIA GPU here ({evidence}); models run on the CPU",
            details=details,
        )
    if not any(name in available for name in GPU_PROVIDERS):
        return CheckResult(
            "onnxruntime",
            WARN,
            f"an NVIDIA GPU is present but this onnxruntime is CPU-only ({', '.join(available)})",
            "run the installer again with --gpu cuda",
            details,
        )
    return CheckResult(
        "onnxruntime",
        WARN,
        f"an NVIDIA GPU is present but models run on the CPU: {reason}",
        "update the NVIDIA driver (CUDA 12), or run the installer again with --gpu cuda",
        details,
    )


def check_models(models_dir: Path | None = None, record: InstallRecord | None = None) -> CheckResult:
    """Every model ``chronoscope models prepare`` makes (the pinned RIFE models and the tuned ones
    shipped as weight deltas) and the speed network present, each file matching its manifest's hash."""
    from engine.errors import ModelIntegrityError
    from engine.models.convert_rife import SOURCES
    from engine.models.manifest import manifest_path_for, read_manifest
    from engine.models.registry import InstalledModel, scan_models, verify_model
    from engine.models.registry import models_dir as default_models_dir
    from engine.models.tuned import shipped_models
    from engine.speed.estimator import MODEL_PATH as SPEED_MODEL_PATH

    folder = Path(models_dir) if models_dir is not None else default_models_dir()
    installed, broken = scan_models(folder)
    verified, damaged = [], []
    for model in installed:
        try:
            verify_model(model)
            verified.append(model.name)
        except ModelIntegrityError as error:
            damaged.append(f"{model.name}: {error}")
    damaged += [f"{item.manifest_path.name}: {item.problem}" for item in broken]
    expected = [*SOURCES, *shipped_models()]
    missing = [
        name
        for name in expected
        if name not in verified and not any(d.startswith((f"{name}:", f"{name}.")) for d in damaged)
    ]
    try:
        speed_manifest = manifest_path_for(SPEED_MODEL_PATH)
        verify_model(InstalledModel(read_manifest(speed_manifest), speed_manifest, SPEED_MODEL_PATH))
        verified.append("speed_net")
    except ModelIntegrityError as error:
        damaged.append(f"speed_net: {error}")
    details = {"models_dir": str(folder), "verified": verified, "damaged": damaged, "missing": missing}
    if damaged or missing:
        problems = [f"missing: {', '.join(missing)}"] if missing else []
        problems += damaged
        own = [d.split(":")[0].removesuffix(".manifest.json") for d in damaged]
        own = [name for name in own if name not in expected and name != "speed_net"]
        fixes = [models_fix(record)] if missing or len(own) < len(damaged) else []
        if own:
            fixes.append(
                f"{', '.join(own)}: not made by `chronoscope models prepare`; train again (`chronoscope "
                "train`) or restore from a backup"
            )
        return CheckResult(
            "models",
            FAIL,
            f"models in {folder}: " + "; ".join(problems),
            "; ".join(fixes),
            details,
        )
    return CheckResult(
        "models", PASS, f"{', '.join(verified)} verified (SHA-256) in {folder}", details=details
    )


def check_folders(connection_file: Path | None = None) -> CheckResult:
    """The folders the engine writes in (runtime, log, job journal) can be made and written in by
    this user (tried, with a probe file removed at once): the engine cannot start otherwise."""
    from engine.server.process import engine_folder_problems, engine_folders

    folders = engine_folders(connection_file)
    details = {folder.keeps: str(folder.path) for folder in folders}
    problems = engine_folder_problems(folders)
    if problems:
        return CheckResult(
            "folders",
            FAIL,
            "the engine cannot start: " + "; ".join(problem for problem, _ in problems),
            "; ".join(fix for _, fix in problems),
            details,
        )
    return CheckResult(
        "folders",
        PASS,
        "the engine can write in " + ", ".join(f"{folder.path} ({folder.keeps})" for folder in folders),
        details=details,
    )


def check_engine(connection_file: Path | None = None) -> CheckResult:
    """The engine answers ping; the round-trip time is the median of a few pings. No engine running
    is a warning (a connection file left by one that ended is stale: the next start replaces it); an
    engine that holds the runtime folder's lock but cannot be reached, or does not answer, fails."""
    from engine.errors import ChronoscopeError, EngineNotRunningError
    from engine.processes import pid_alive
    from engine.server.client import EngineClient
    from engine.server.connection import check_private_file, connection_file_path, read_connection_file
    from engine.server.process import engine_lock_held, engine_lock_holder

    command = chronoscope_command()
    start_fix = (
        "start it: systemctl --user start chronoscope-engine (when installed with autostart) "
        f"or {command} engine start"
    )
    restart_fix = f"{command} engine stop --force, then {command} engine start"
    path = Path(connection_file) if connection_file is not None else connection_file_path()
    held = engine_lock_held(path.parent)
    if held and not path.exists():  # an engine starting writes its file once it listens
        deadline_ns = time.monotonic_ns() + int(PING_TIMEOUT_S * 1e9)
        while not path.exists() and time.monotonic_ns() < deadline_ns:
            time.sleep(0.05)
    try:
        connection = read_connection_file(path, private=False)
    except EngineNotRunningError as error:
        if held:
            return _unreachable_engine(path, "is gone", command)
        return CheckResult("engine", WARN, str(error), start_fix)
    except ChronoscopeError as error:
        if held:
            return _unreachable_engine(path, f"cannot be used ({error})", command)
        return CheckResult(
            "engine",
            WARN,
            f"no engine is running; its stale connection file cannot be used: {error}",
            f"{start_fix} (it replaces the stale file)",
            {"connection_file": str(path)},
        )
    if held is False or (held is None and not pid_alive(connection.pid)):
        return CheckResult(
            "engine",
            WARN,
            f"no engine is running: the connection file {path} names pid {connection.pid}, which "
            "ended without removing it (stale)",
            f"{start_fix} (it replaces the stale file)",
            {"pid": connection.pid, "connection_file": str(path)},
        )
    holder = engine_lock_holder(path.parent)
    if holder is not None and holder != connection.pid:
        return _unreachable_engine(path, f"names pid {connection.pid}", command)
    try:
        check_private_file(path)
    except ChronoscopeError as error:  # its message says how to make it private
        return CheckResult("engine", FAIL, str(error), f"chmod 600 {path}", {"pid": connection.pid})
    round_trips_ms: list[float] = []
    try:
        with EngineClient(connection) as client:
            reply = client.ping(timeout_s=PING_TIMEOUT_S)
            for _ in range(PING_COUNT):
                started_ns = time.perf_counter_ns()
                client.ping(timeout_s=PING_TIMEOUT_S)
                round_trips_ms.append((time.perf_counter_ns() - started_ns) / 1e6)
    except ChronoscopeError as error:
        return CheckResult(
            "engine",
            FAIL,
            f"engine pid {connection.pid} does not answer: {error}",
            restart_fix,
            {"pid": connection.pid, "endpoint": connection.control},
        )
    round_trip_ms = statistics.median(round_trips_ms)
    details = {
        "pid": connection.pid,
        "endpoint": connection.control,
        "round_trip_ms": round(round_trip_ms, 3),
        "ping": reply,
    }
    return CheckResult(
        "engine",
        PASS,
        f"engine pid {connection.pid} answers in {round_trip_ms:.2f} ms ({connection.control})",
        details=details,
    )


def _unreachable_engine(path: Path, why: str, command: str) -> CheckResult:
    """An engine holds the runtime folder's lock, but its connection file ``path`` ``why``: no
    client can reach it, and ``engine start`` refuses to start another."""
    from engine.server.process import engine_lock_holder

    pid = engine_lock_holder(path.parent)
    who = f"engine pid {pid}" if pid is not None else "an engine"
    return CheckResult(
        "engine",
        FAIL,
        f"{who} holds {path.parent} but its connection file {path} {why}: no client can reach it",
        f"{command} engine stop (it finds the engine by its lock), then {command} engine start",
        {"pid": pid, "connection_file": str(path)},
    )


def _check_files(items: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Manifest file items that are missing, and those whose content changed."""
    missing, changed = [], []
    for item in items:
        path = Path(item["path"])
        if not path.exists():
            missing.append(str(path))
        elif item.get("kind") == "file" and item.get("sha256") and _sha256(path) != item["sha256"]:
            changed.append(str(path))
    return missing, changed


ENTRY_SCRIPT_PREFIX = "Chronoscope - "
"""The Resolve menu entries' file names start so; the shared modules they load do not."""


def check_resolve(record: InstallRecord | None, record_problem: str = "") -> CheckResult:
    """The Resolve scripts in Resolve's script folders, and the bridge config they read."""
    from engine.bridge.config import config_path

    if record is None:
        return CheckResult(
            "resolve",
            WARN,
            f"Resolve scripts: {record_problem}",
            "python3 installer/install.py installs them (doctor checks what the installer recorded; "
            "scripts installed by hand with plugins/davinci_resolve/install_paths.py are not checked)",
        )
    items = record.component("resolve", "file")
    failed = next((text for text in record.problems if text.startswith("Resolve scripts: ")), "")
    if failed:
        return CheckResult(
            "resolve",
            FAIL,
            f"the install did not finish the Resolve scripts: {failed.removeprefix('Resolve scripts: ')}",
            f"fix what it names, then {reinstall_fix(record)}",
            {"problem": failed, "files": [item["path"] for item in items]},
        )
    if not items:
        if record.options.get("resolve") is False:
            return CheckResult(
                "resolve",
                WARN,
                "the Resolve scripts were not installed (--no-resolve)",
                "run the installer again without --no-resolve",
            )
        return CheckResult(
            "resolve", WARN, "the Resolve scripts were not installed", reinstall_fix(record)
        )
    scripts = [item for item in items if item["path"].endswith((".py", ".lua"))]
    entries = [item for item in scripts if Path(item["path"]).name.startswith(ENTRY_SCRIPT_PREFIX)]
    modules = [item for item in scripts if item not in entries]
    folders = sorted({str(Path(item["path"]).parent) for item in entries})
    module_folders = sorted({str(Path(item["path"]).parent) for item in modules})
    missing, changed = _check_files(items)
    details = {
        "folders": folders,
        "files": [item["path"] for item in items],
        "missing": missing,
        "changed": changed,
    }
    if missing:
        return CheckResult(
            "resolve",
            FAIL,
            f"{len(missing)} Resolve script files are missing: {missing[0]} ...",
            reinstall_fix(record),
            details,
        )
    config = config_path()
    problem = _bridge_config_problem(config)
    details["bridge_config"] = str(config)
    if problem:
        return CheckResult(
            "resolve", FAIL, problem, f"{chronoscope_command()} bridge --install-config", details
        )
    summary = f"{len(entries)} menu scripts in {', '.join(folders)}"
    if modules:
        summary += f", their {len(modules)} shared modules in {', '.join(module_folders)}"
    summary += f"; bridge config {config}"
    if changed:
        return CheckResult(
            "resolve",
            WARN,
            summary + f"; {len(changed)} changed since install",
            reinstall_fix(record) + " to restore them",
            details,
        )
    return CheckResult("resolve", PASS, summary, details=details)


def _bridge_config_problem(config: Path) -> str:
    if not config.is_file():
        return f"the bridge config {config} is missing: the scripts cannot find Chronoscope"
    try:
        command = json.loads(config.read_text(encoding="utf-8")).get("command") or []
    except (OSError, json.JSONDecodeError, AttributeError) as error:
        return f"the bridge config {config} cannot be read: {error}"
    if not command or not Path(command[0]).exists():
        return f"the bridge config {config} names a command that does not exist: {command[:1]}"
    return ""


class _OfxPlugin(ctypes.Structure):
    _fields_ = [
        ("pluginApi", ctypes.c_char_p),
        ("apiVersion", ctypes.c_int),
        ("pluginIdentifier", ctypes.c_char_p),
        ("pluginVersionMajor", ctypes.c_uint),
        ("pluginVersionMinor", ctypes.c_uint),
    ]


def ofx_binary(bundle: Path) -> Path:
    return Path(bundle) / "Contents" / OFX_ARCHITECTURES.get(sys.platform, "Linux-x86-64") / OFX_BINARY_NAME


def load_ofx_bundle(bundle: Path) -> dict[str, Any]:
    """Open the bundle's binary as an OFX host does and read its plugins; ``OSError`` when it does not load.

    Only the two entry points every host calls first (``OfxGetNumberOfPlugins``, ``OfxGetPlugin``):
    the plugin is not described or instantiated, so no host suites are needed.
    """
    binary = ofx_binary(bundle)
    if not binary.is_file():
        raise OSError(f"{binary} does not exist")
    library = ctypes.CDLL(str(binary), mode=getattr(ctypes, "RTLD_LOCAL", 0))
    count_plugins = library.OfxGetNumberOfPlugins
    count_plugins.restype = ctypes.c_int
    get_plugin = library.OfxGetPlugin
    get_plugin.restype = ctypes.POINTER(_OfxPlugin)
    get_plugin.argtypes = [ctypes.c_int]
    plugins = []
    for index in range(count_plugins()):
        plugin = get_plugin(index)
        if not plugin:
            raise OSError(f"{binary}: OfxGetPlugin({index}) returned NULL")
        plugins.append(
            {
                "api": (plugin.contents.pluginApi or b"").decode(),
                "api_version": plugin.contents.apiVersion,
                "identifier": (plugin.contents.pluginIdentifier or b"").decode(),
                "version": f"{plugin.contents.pluginVersionMajor}.{plugin.contents.pluginVersionMinor}",
            }
        )
    if not plugins:
        raise OSError(f"{binary}: OfxGetNumberOfPlugins() is 0")
    if any(plugin["api"] != OFX_PLUGIN_API.decode() for plugin in plugins):
        raise OSError(f"{binary}: a plugin is not an image effect: {plugins}")
    return {"binary": str(binary), "plugins": plugins}


def check_ofx(
    record: InstallRecord | None, record_problem: str = "", environ: dict[str, str] | None = None
) -> CheckResult:
    """The OFX bundle is in place, loads, and is in a folder hosts search."""
    environ = dict(os.environ if environ is None else environ)
    if record is not None:
        trees = record.component("ofx", "tree")
        if not trees:
            return _ofx_not_installed(record)
        bundle = Path(trees[0]["path"])
    else:
        bundle = SOURCE_ROOT / "build" / "ofx" / "Chronoscope.ofx.bundle"
        if not bundle.is_dir():
            return CheckResult(
                "ofx",
                WARN,
                f"OpenFX bundle: {record_problem}",
                "python3 installer/install.py builds and installs it",
            )
    try:
        loaded = load_ofx_bundle(bundle)
    except (OSError, AttributeError) as error:
        return CheckResult(
            "ofx",
            FAIL,
            f"the OpenFX bundle {bundle} does not load: {error}",
            reinstall_fix(record),
            {"bundle": str(bundle)},
        )
    identifiers = ", ".join(f"{plugin['identifier']} {plugin['version']}" for plugin in loaded["plugins"])
    details = {"bundle": str(bundle), **loaded}
    if record is None:
        return CheckResult(
            "ofx",
            WARN,
            f"{bundle} loads ({identifiers}) but is not installed for hosts",
            "python3 installer/install.py installs it",
            details,
        )
    folder = bundle.parent
    separator = ";" if sys.platform == "win32" else ":"
    searched = [Path(entry) for entry in environ.get("OFX_PLUGIN_PATH", "").split(separator) if entry]
    needs_path = any("OFX_PLUGIN_PATH" in note and str(folder) in note for note in record.notes)
    details["plugin_path_needed"] = needs_path
    if needs_path and folder not in searched:
        return CheckResult(
            "ofx",
            WARN,
            f"{bundle} loads ({identifiers}), but OFX_PLUGIN_PATH does not name {folder} in this session",
            f"log in again (environment.d), or start the host with OFX_PLUGIN_PATH={folder}",
            details,
        )
    return CheckResult(
        "ofx", PASS, f"{bundle} loads ({identifiers}); restart hosts to pick up changes", details=details
    )


OFX_BUILD_FIX = (
    "install gcc, make and libzmq's header (Debian/Ubuntu: sudo apt-get install build-essential "
    "libzmq3-dev), then run the installer again"
)


def _ofx_not_installed(record: InstallRecord) -> CheckResult:
    """Why the installer put no OpenFX bundle in place, as its manifest records it, and the fix."""
    problem = next((text for text in record.problems if text.startswith("OpenFX")), "")
    note = next((text for text in record.notes if "OpenFX" in text), "")
    details = {"problem": problem, "note": note, "options": record.options}
    if problem:
        lines = [line.strip() for line in problem.splitlines() if line.strip()]
        cause = next((line for line in lines[1:] if "error" in line.lower()), "")
        summary = "the OpenFX bundle was not built: " + lines[0].removeprefix("OpenFX bundle not built: ")
        return CheckResult("ofx", WARN, summary + (f" ({cause})" if cause else ""), OFX_BUILD_FIX, details)
    if record.options.get("ofx") is False:
        return CheckResult(
            "ofx",
            WARN,
            "the OpenFX bundle was not installed (--no-ofx)",
            "run the installer again without --no-ofx (it needs gcc, make and libzmq's header)",
            details,
        )
    if note:
        return CheckResult("ofx", WARN, f"the OpenFX bundle was not installed: {note}", "", details)
    return CheckResult(
        "ofx",
        WARN,
        "the OpenFX bundle was not installed",
        "run the installer again (without --no-ofx, if it was given); it needs gcc, make and libzmq's header",
        details,
    )


def check_install(
    record: InstallRecord | None, record_problem: str = "", *, required: bool = False
) -> CheckResult:
    """Every file and folder the install manifest lists is still in place. ``required``: the manifest
    was named (``doctor --manifest``), so one that cannot be read is a failure, not a warning."""
    if record is None:
        if required:
            return CheckResult(
                "install",
                FAIL,
                record_problem,
                "name the install-manifest.json in the install's prefix, or leave --manifest out",
            )
        return CheckResult("install", WARN, record_problem, "python3 installer/install.py")
    items = [item for item in record.items if item.get("kind") in ("file", "tree", "venv")]
    missing, changed = _check_files(items)
    autostart = [item["path"] for item in record.component("autostart", "file")]
    enabled = [item["detail"] for item in record.items if item.get("kind") == "service"]
    details = {
        "manifest": str(record.path),
        "items": len(record.items),
        "missing": missing,
        "changed": changed,
        "autostart_files": autostart,
        "registrations": enabled,
        "notes": record.notes,
    }
    state = (
        f"autostart {'enabled' if enabled else 'file written, not enabled' if autostart else 'not installed'}"
    )
    if missing:
        return CheckResult(
            "install",
            FAIL,
            f"{len(missing)} installed items are missing, e.g. {missing[0]}",
            reinstall_fix(record),
            details,
        )
    summary = f"{len(record.items)} items of {record.path} in place; {state}"
    unfinished = install_problems(record)
    details["problems"] = unfinished
    if unfinished:
        failing = [problem for problem in unfinished if not problem.startswith(MINOR_STEPS)]
        return CheckResult(
            "install",
            FAIL if failing else WARN,
            f"the install did not finish {len(unfinished)} step{'s' if len(unfinished) > 1 else ''}: "
            + "; ".join(problem.splitlines()[0] for problem in unfinished),
            f"fix what {'each names' if len(unfinished) > 1 else 'it names'}, then {reinstall_fix(record)}",
            details,
        )
    if changed:
        return CheckResult(
            "install",
            WARN,
            summary + f"; changed since install: {', '.join(changed)}",
            reinstall_fix(record) + " to restore them",
            details,
        )
    return CheckResult("install", PASS, summary, details=details)


MINOR_STEPS = ("commands: ", "engine autostart: ", "preview app launcher: ")
"""Steps of the installer whose failure leaves Chronoscope working (run by its full path, the
engine started by hand or by the Resolve scripts, the app from the command line): a warning."""


def install_problems(record: InstallRecord) -> list[str]:
    """The steps the install recorded as not finished, but the OpenFX build (the ofx check reports
    it, with what to install) and doctor's own failures at the end of the install."""
    return [
        problem
        for problem in record.problems
        if not problem.startswith(("OpenFX", "`chronoscope doctor`"))
    ]


def check_disk(folder: Path | None = None) -> CheckResult:
    """Free space where renders are cached."""
    folder = Path(folder) if folder is not None else places().cache_dir
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    free_gib = usage.free / 1024**3
    details = {"cache_dir": str(folder), "free_bytes": usage.free, "total_bytes": usage.total}
    summary = f"{free_gib:.1f} GiB free of {usage.total / 1024**3:.1f} GiB for the cache {folder}"
    fix = f"free disk space, or clear old renders in {folder}"
    if usage.free < DISK_FAIL_BYTES:
        return CheckResult("disk", FAIL, summary, fix, details)
    if usage.free < DISK_WARN_BYTES:
        return CheckResult("disk", WARN, summary, fix, details)
    return CheckResult("disk", PASS, summary, details=details)


# ------------------------------------------------------------------------------------ running


def run_checks(manifest: Path | None = None) -> list[CheckResult]:
    """Every check, in the order ``chronoscope doctor`` shows them; a check that crashes is a fail."""
    record, problem = read_install_record(find_manifest(manifest))
    required = manifest is not None
    checks: list[tuple[str, Callable[[], CheckResult]]] = [
        ("python", check_python),
        ("versions", check_versions),
        ("onnxruntime", check_onnxruntime),
        ("models", lambda: check_models(record=record)),
        ("folders", check_folders),
        ("engine", check_engine),
        ("resolve", lambda: check_resolve(record, problem)),
        ("ofx", lambda: check_ofx(record, problem)),
        ("install", lambda: check_install(record, problem, required=required)),
        ("disk", check_disk),
    ]
    results = []
    for name, check in checks:
        try:
            results.append(check())
        except Exception as error:  # a broken part must not hide the other checks' answers
            results.append(
                CheckResult(
                    name, FAIL, f"the check itself failed: {type(error).__name__}: {error}", REINSTALL_FIX
                )
            )
    return results


def report(results: list[CheckResult]) -> dict[str, Any]:
    return {
        "version": __version__,
        "ok": all(result.status != FAIL for result in results),
        "checks": [asdict(result) for result in results],
    }
