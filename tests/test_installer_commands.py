"""``chronoscope`` by name after installing: the launchers in ~/.local/bin, the note when that folder
is not on PATH, files there the installer did not make, and the messages that name the command
(the installer's notes, doctor's fixes). Also what the manifest tells doctor about an OpenFX build
that failed, and the Windows wrapper's Python probe."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "installer"))

import install  # noqa: E402
import locations  # noqa: E402
import uninstall  # noqa: E402
from test_installer_linux import UNINSTALL, Sandbox, _models_source, snapshot  # noqa: E402

INSTALL_SCRIPT = REPO_ROOT / "installer" / "install.py"


def _installer(tmp_path: Path, path: str, platform: str = "linux") -> install.Installer:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    options = install.Options(source=REPO_ROOT, prefix=tmp_path / "prefix")
    env = {"HOME": str(home), "PATH": path, "CHRONOSCOPE_MODELS_DIR": str(tmp_path / "models dir")}
    return install.Installer(options, platform=platform, env=env, home=home)


def _fake_command(installer: install.Installer) -> Path:
    """The environment's ``chronoscope``: prints its arguments and the models folder it was given."""
    executable = Path(installer.venv.chronoscope)
    executable.parent.mkdir(parents=True)
    executable.write_text('#!/bin/sh\necho "$CHRONOSCOPE_MODELS_DIR" "$@"\n')
    executable.chmod(0o755)
    return executable


def test_command_folder_per_os():
    assert locations.command_folder("linux", PurePosixPath("/home/ed")) == PurePosixPath(
        "/home/ed/.local/bin"
    )
    assert locations.command_folder("macos", PurePosixPath("/Users/ed")) == PurePosixPath(
        "/Users/ed/.local/bin"
    )
    assert locations.command_folder("windows", PureWindowsPath(r"C:\Users\ed")) is None


@pytest.mark.skipif(os.name == "nt", reason="POSIX launchers")
def test_launchers_run_the_environment_and_say_when_their_folder_is_not_on_path(tmp_path):
    installer = _installer(tmp_path, "/usr/bin:/bin")
    executable = _fake_command(installer)
    bin_folder = tmp_path / "home" / ".local" / "bin"
    installer.install_commands()

    assert installer.command == str(executable)
    note = next(note for note in installer.manifest.notes if "not on your PATH" in note)
    assert str(bin_folder) in note and f"until then run {executable}" in note
    listed = {item.path: item for item in installer.manifest.items}
    for name in ("chronoscope", "chronoscope-gui"):
        launcher = bin_folder / name
        assert listed[str(launcher)].component == "commands" and listed[str(launcher)].sha256
        assert os.access(launcher, os.X_OK)
    assert listed[str(bin_folder)].kind == "dir"
    ran = subprocess.run(
        [bin_folder / "chronoscope", "engine", "start", "a b"], capture_output=True, text=True, check=True
    )
    assert ran.stdout == f"{tmp_path / 'models dir'} engine start a b\n"


@pytest.mark.skipif(os.name == "nt", reason="POSIX launchers")
def test_a_file_the_installer_did_not_make_is_never_overwritten(tmp_path):
    bin_folder = tmp_path / "home" / ".local" / "bin"
    bin_folder.mkdir(parents=True)
    theirs = bin_folder / "chronoscope"
    theirs.write_text("#!/bin/sh\necho another chronoscope\n")
    installer = _installer(tmp_path, f"{bin_folder}:/usr/bin")
    executable = _fake_command(installer)
    installer.install_commands()

    assert theirs.read_text() == "#!/bin/sh\necho another chronoscope\n"
    assert installer.command == str(executable)
    assert any(
        f"{theirs} exists and was not made by the installer; left as it is" in n
        for n in installer.manifest.notes
    )
    assert installer.manifest.has(bin_folder / "chronoscope-gui", "file")
    assert not installer.manifest.has(theirs) and not installer.manifest.has(bin_folder)

    problems = uninstall.uninstall(installer.manifest, installer.manifest_path)
    assert problems == [] and theirs.is_file() and not (bin_folder / "chronoscope-gui").exists()


def test_on_windows_the_command_is_named_by_its_full_path(tmp_path):
    installer = _installer(tmp_path, r"C:\Windows", platform="windows")
    installer.install_commands()
    assert installer.command == str(installer.venv.chronoscope) and installer.command.endswith(
        "chronoscope.exe"
    )
    assert not installer.manifest.items


@pytest.fixture
def sandbox(tmp_path) -> Sandbox:
    if sys.prefix == sys.base_prefix:
        pytest.skip("the fast install reuses a virtual environment's packages; run the tests in .venv")
    return Sandbox(tmp_path)


def test_install_puts_chronoscope_on_path_and_records_a_failed_ofx_build(sandbox):
    models = _models_source()
    if models is None:
        pytest.skip("no prepared models (make test prepares build/models)")
    bin_folder = sandbox.home / ".local" / "bin"
    sandbox.env["PATH"] = f"{bin_folder}{os.pathsep}{os.environ['PATH']}"
    sandbox.env["CHRONOSCOPE_MODELS_DIR"] = str(models)
    sandbox.env["CC"] = "false"  # the OpenFX build fails, as it does without zmq.h
    before = snapshot(sandbox.root)

    installed = sandbox.install("--no-resolve")
    output = installed.stdout + installed.stderr
    assert installed.returncode == install.EXIT_INCOMPLETE, output
    assert "  command: chronoscope (on your PATH)" in installed.stdout
    record = json.loads(sandbox.manifest.read_text())
    assert [p for p in record["problems"] if p.startswith(install.OFX_PROBLEM_PREFIX)], record["problems"]
    ofx = re.search(r"^WARN  ofx +(.*)\n +fix: (.*)$", installed.stdout, re.MULTILINE)
    assert ofx is not None, installed.stdout
    assert ofx.group(1).startswith("the OpenFX bundle was not built: ")
    assert "--no-ofx" not in ofx.group(2) and "libzmq" in ofx.group(2)
    # doctor names the command by name: the launcher on PATH runs this install's
    assert re.search(r"fix: .* or chronoscope engine start$", installed.stdout, re.MULTILINE), (
        installed.stdout
    )

    version = sandbox.run("chronoscope", "--version")
    assert version.returncode == 0 and version.stdout.startswith("chronoscope "), version.stderr
    assert (bin_folder / "chronoscope").read_text().count(str(sandbox.venv / "bin" / "chronoscope")) == 1

    removed = sandbox.run(sys.executable, UNINSTALL)
    assert removed.returncode == 0, removed.stderr
    assert not bin_folder.exists()
    assert snapshot(sandbox.root) == before


def test_install_ps1_tries_the_next_python_when_a_candidate_writes_to_stderr():
    """PowerShell is not here to run it: the script's structure is checked instead. Windows
    PowerShell 5.1 turns a native command's redirected stderr into a terminating error under
    ``$ErrorActionPreference = "Stop"`` (PowerShell issue #4002), so the probe must run under a
    tolerant preference of its own, inside try/catch, while the script stays strict elsewhere."""
    text = (REPO_ROOT / "installer" / "install.ps1").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines()]
    assert '$ErrorActionPreference = "Stop"' in lines[:5]
    function = text[
        text.index("function Test-Python") : text.index("\n}\n", text.index("function Test-Python"))
    ]
    probe = function.index('-c "import sys, venv; sys.exit(sys.version_info < (3, 10))" 2>$null')
    assert function.index('$ErrorActionPreference = "SilentlyContinue"') < function.index("try {") < probe
    assert "catch {" in function[probe:] and "return $false" in function[probe:]
    loop = text[text.index("foreach ($candidate in $candidates)") :]
    assert "if (-not (Test-Python $exe $prefix)) { continue }" in loop
    assert "2>$null" not in loop, "a probe outside Test-Python would abort under Stop"


def test_install_sh_reads_python_as_the_readme_says():
    script = (REPO_ROOT / "installer" / "install.sh").read_text(encoding="utf-8")
    readme = (REPO_ROOT / "installer" / "README.md").read_text(encoding="utf-8")
    assert '"${PYTHON:-}"' in script and "`$PYTHON`" in readme
    assert "Until then, run\n   `chronoscope engine start`" not in readme
    assert "~/.local/bin" in readme


@pytest.mark.skipif(os.name == "nt", reason="POSIX launchers and engine")
def test_uninstall_as_printed_after_a_chronoscope_home_install_removes_it_and_stops_its_engine(sandbox):
    """The closing `uninstall:` line lacked --prefix (so it found no manifest), and with --prefix the
    environment was removed under the engine the launcher had started with CHRONOSCOPE_HOME."""
    import shlex
    import signal

    from engine.processes import pid_alive, process_command_line

    models = _models_source()
    if models is None:
        pytest.skip("no prepared models (make test prepares build/models)")
    chronoscope_home = sandbox.root / "ch"
    installed = sandbox.run(
        sys.executable, install.__file__, "--source", REPO_ROOT, "--reuse-packages", sys.prefix,
        "--no-autostart", "--no-resolve", "--no-ofx",
        env={"CHRONOSCOPE_HOME": str(chronoscope_home), "CHRONOSCOPE_MODELS_DIR": str(models)},
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    prefix = chronoscope_home / "data"
    assert (prefix / "venv").is_dir()
    printed = re.search(r"^uninstall: (.*)$", installed.stdout, re.MULTILINE)
    assert printed is not None, installed.stdout
    command = shlex.split(printed.group(1))
    assert command[-2:] == ["--prefix", str(prefix)], printed.group(0)

    launcher = sandbox.home / ".local" / "bin" / "chronoscope"  # it exports CHRONOSCOPE_HOME
    started = sandbox.run(launcher, "engine", "start", "--json", timeout_s=120)
    assert started.returncode == 0, started.stderr
    pid = json.loads(started.stdout)["pid"]
    try:
        assert any(str(prefix / "venv") in part for part in process_command_line(pid) or [])
        command[0] = sys.executable  # "python3" as printed; any Python 3 runs it
        removed = sandbox.run(*command, "--verbose", timeout_s=180)  # CHRONOSCOPE_HOME not set here
        assert removed.returncode == 0, removed.stderr
        assert f"stopped the engine pid {pid}, which ran from {prefix / 'venv'}" in removed.stderr
        assert not pid_alive(pid)
        assert not prefix.exists()
    finally:
        if pid_alive(pid) and "engine.server" in (process_command_line(pid) or []):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def _unwritable(*folders: Path):
    """``folders`` made unwritable for this user, for real: read-only by their mode, or, for root
    (whom modes do not stop), marked immutable."""
    chattr = shutil.which("chattr")
    if os.geteuid() == 0 and (
        chattr is None or subprocess.run([chattr, "+i", str(folders[0])], capture_output=True).returncode
    ):
        pytest.skip("running as root, and chattr +i is not available here")
    for folder in folders:
        if os.geteuid() == 0:
            subprocess.run([chattr, "+i", str(folder)], check=True)
        else:
            folder.chmod(0o555)
    try:
        yield
    finally:
        for folder in folders:
            if os.geteuid() == 0:
                subprocess.run([chattr, "-i", str(folder)], check=True)
            else:
                folder.chmod(0o755)


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_steps_that_failed_are_reported_by_doctor_with_advice_that_is_true(sandbox):
    """After an install that exited 3 with PROBLEM lines, doctor said PASS install; and the
    problems said to install elsewhere with --prefix, which does not move ~/.local or ~/.config."""
    models = _models_source()
    if models is None:
        pytest.skip("no prepared models (make test prepares build/models)")
    local, config = sandbox.home / ".local", sandbox.home / ".config"
    local.mkdir()
    config.mkdir()
    prefix = sandbox.root / "prefix"
    with _unwritable(local, config):
        installed = sandbox.run(
            sys.executable, INSTALL_SCRIPT, "--source", REPO_ROOT, "--reuse-packages", sys.prefix,
            "--no-autostart", "--no-ofx", "--prefix", prefix,
            env={"CHRONOSCOPE_MODELS_DIR": str(models)},
        )
        output = installed.stdout + installed.stderr
        assert installed.returncode == install.EXIT_INCOMPLETE, output
        problems = re.findall(r"^  PROBLEM: (.*)$", installed.stdout, re.MULTILINE)
        steps = [problem.split(":", 1)[0] for problem in problems]
        assert {"commands", "Resolve scripts", "engine autostart", "preview app launcher"} <= set(steps)
        for problem in problems[:-1]:
            assert "--prefix" not in problem or "which --prefix does not move" in problem, problem
        resolve = next(problem for problem in problems if problem.startswith("Resolve scripts: "))
        assert resolve.endswith("or leave them out with --no-resolve"), resolve

        doctor = sandbox.run(prefix / "venv" / "bin" / "chronoscope", "doctor", "--json", timeout_s=120)
    checks = {check["name"]: check for check in json.loads(doctor.stdout)["checks"]}
    assert checks["install"]["status"] == "fail", checks["install"]
    assert "the install did not finish 4 steps: commands: " in checks["install"]["summary"]
    assert f"python3 {REPO_ROOT / 'installer' / 'install.py'} --prefix {prefix}" in checks["install"]["fix"]
    assert "--no-autostart --no-ofx" not in checks["install"]["fix"]  # recorded order: ofx, autostart
    assert "--no-ofx --no-autostart" in checks["install"]["fix"]
    assert checks["resolve"]["status"] == "fail", checks["resolve"]
    assert checks["resolve"]["summary"].startswith("the install did not finish the Resolve scripts: ")
    assert doctor.returncode == 1


@pytest.mark.skipif(os.name == "nt", reason="POSIX launcher for the environment's python")
def test_a_reinstall_keeps_an_edited_resolve_script_aside_with_a_note(tmp_path):
    """Reinstalling overwrote a Resolve script the user had edited, without a word (uninstall
    keeps edited files; the installer keeps edited stale scripts)."""
    import datetime as dt

    home = tmp_path / "home"
    home.mkdir()
    prefix = tmp_path / "prefix"
    python = Path(locations.venv_layout(prefix, "linux").python)
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')  # the environment's python
    python.chmod(0o755)
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join(sys.path)}

    def install_scripts() -> install.Installer:
        installer = install.Installer(
            install.Options(source=REPO_ROOT, prefix=prefix), platform="linux", env=env, home=home
        )
        installer.install_resolve()
        return installer

    first = install_scripts()
    entry = next(
        Path(item.path) for item in first.manifest.items if item.path.endswith("- Detect Speed.py")
    )
    module = prefix / "resolve" / "chronoscope_resolve.py"
    installed_entry, installed_module = entry.read_text(), module.read_text()
    entry.write_text(installed_entry + "# my change\n")
    module.write_text(installed_module + "# my module change\n")

    second = install_scripts()
    stamp = dt.date.today().strftime("%Y%m%d")
    for path, installed, change in ((entry, installed_entry, "# my change\n"),
                                    (module, installed_module, "# my module change\n")):
        aside = path.with_name(f"{path.name}.edited-{stamp}")
        assert aside.read_text() == installed + change, "the user's edit was not kept"
        assert path.read_text() == installed
        assert any(f"{path} was edited after it was installed" in note and aside.name in note
                   for note in second.manifest.notes), second.manifest.notes
    third = install_scripts()  # nothing edited since: nothing set aside
    assert len(list(entry.parent.glob("*.edited-*"))) == 1 and not third.manifest.notes

    problems = uninstall.uninstall(third.manifest, third.manifest_path)
    assert problems == [] and not entry.exists()
    assert entry.with_name(f"{entry.name}.edited-{stamp}").exists(), "uninstall removed the user's file"
