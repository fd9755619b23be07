"""What install.py and uninstall.py say when the file system refuses: one line per problem, naming
the path and the reason, never a traceback.

Permission cases need a user who may not write somewhere: as root (who may write anywhere) the
scripts run as ``nobody`` through ``runuser``, in a scratch folder under /tmp that ``nobody`` can
reach; as any other user they run as that user, with the folders made read-only."""

from __future__ import annotations

import errno
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "installer"))

import install  # noqa: E402
import locations  # noqa: E402
import manifest as install_manifest  # noqa: E402

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")

INSTALL = REPO_ROOT / "installer" / "install.py"
UNINSTALL = REPO_ROOT / "installer" / "uninstall.py"


def _python_for_nobody() -> str | None:
    """A Python 3.10+ that user ``nobody`` may run (the installer scripts need only the standard
    library); None when there is none (a pyenv Python under /root is not readable by others)."""
    if shutil.which("runuser") is None:
        return None
    for python in dict.fromkeys([sys.executable, "/usr/bin/python3", shutil.which("python3")]):
        if not python:
            continue
        probe = subprocess.run(
            [
                "runuser",
                "-u",
                "nobody",
                "--",
                python,
                "-c",
                "import sys; sys.exit(sys.version_info < (3, 10))",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if probe.returncode == 0:
            return python
    return None


@dataclass
class LockedScratch:
    """A scratch folder, a way to run a script as a user who owns what ``give`` gives and may not
    change folders that ``lock`` locks."""

    root: Path
    python: str
    as_nobody: bool

    def give(self, path: Path) -> None:
        if self.as_nobody:
            nobody = pwd.getpwnam("nobody")
            for entry in [path, *path.rglob("*")]:
                os.lchown(entry, nobody.pw_uid, nobody.pw_gid)

    def lock(self, folder: Path) -> None:
        if self.as_nobody:
            for entry in [folder, *folder.rglob("*")]:
                os.lchown(entry, 0, 0)
            folder.chmod(0o755)
        else:
            folder.chmod(0o555)

    def unlock(self, folder: Path) -> None:
        self.give(folder)
        folder.chmod(0o755)

    def run(self, *command, env: dict[str, str]) -> subprocess.CompletedProcess:
        variables = [f"{name}={value}" for name, value in env.items()]
        runner = ["runuser", "-u", "nobody", "--"] if self.as_nobody else []
        return subprocess.run(
            [*runner, "env", "-i", *variables, self.python, *map(str, command)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.root,
            check=False,
        )


@pytest.fixture
def locked_scratch() -> Iterator[LockedScratch]:
    as_nobody = os.geteuid() == 0
    python = _python_for_nobody() if as_nobody else sys.executable
    if python is None:
        pytest.skip("running as root, and no runuser or Python 3.10+ that user nobody may run")
    root = Path(tempfile.mkdtemp(prefix="chronoscope-perms-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield LockedScratch(root, python, as_nobody)
    finally:
        for folder in [root, *root.rglob("*")]:
            if folder.is_dir() and not folder.is_symlink():
                folder.chmod(0o755)
        shutil.rmtree(root)


def _plain_env(home: Path) -> dict[str, str]:
    return {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}


def test_prefix_that_cannot_be_written_is_one_line_naming_it(locked_scratch):
    home = locked_scratch.root / "home"
    locked = locked_scratch.root / "locked"
    home.mkdir()
    locked.mkdir()
    locked_scratch.give(home)
    locked_scratch.lock(locked)
    refused = locked_scratch.run(
        INSTALL, "--prefix", locked / "cs", "--no-autostart", "--no-ofx", "--no-resolve", env=_plain_env(home)
    )
    assert refused.returncode == 1, refused.stderr
    assert "Traceback" not in refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("install: error: "), refused.stderr
    assert f"{locked} is not writable by this user" in lines[0] and "--prefix" in lines[0]
    assert not (locked / "cs").exists()


def test_any_os_error_while_installing_is_one_line(tmp_path, monkeypatch, capsys):
    prefix = tmp_path / "cs"
    refused_path = prefix / "venv" / "lib" / "python3.11"

    def refuse(_installer):
        raise PermissionError(errno.EACCES, "Permission denied", str(refused_path))

    monkeypatch.setattr(install.Installer, "run", refuse)
    assert install.main(["--prefix", str(prefix), "--dry-run"]) == install.EXIT_FAILED
    error = capsys.readouterr().err
    assert error == (
        f"install: error: {refused_path}: Permission denied "
        "(fix its permissions, or install elsewhere with --prefix DIR)\n"
    )


def test_a_per_user_folder_refused_is_not_said_to_move_with_the_prefix(tmp_path):
    """~/.local/bin, ~/.config and Resolve's folders stay where they are whatever --prefix says."""
    prefix = tmp_path / "home" / ".local" / "share" / "Chronoscope"
    for path, moved in (
        (tmp_path / "home" / ".config", False),
        (tmp_path / "home" / ".local" / "bin", False),
        (tmp_path / "home" / ".local", True),  # the prefix is made below it
        (prefix / "venv", True),
    ):
        text = install.os_error_text(PermissionError(errno.EACCES, "Permission denied", str(path)), prefix)
        assert ("install elsewhere with --prefix DIR" in text) == moved, text
        assert text.startswith(f"{path}: Permission denied (fix its permissions")


def test_prefix_below_a_file_names_the_file(tmp_path):
    blocking = tmp_path / "passwd"
    blocking.write_text("root:x:0:0\n")
    refused = subprocess.run(
        [sys.executable, INSTALL, "--prefix", blocking / "x", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1
    assert refused.stderr == (
        f"install: error: cannot install into {blocking / 'x'}: {blocking} is a file, not a folder; "
        "choose another --prefix\n"
    )
    assert "move it aside" not in refused.stderr


def test_uninstall_reports_each_item_it_cannot_remove_and_goes_on(locked_scratch):
    prefix = locked_scratch.root / "prefix"
    locked = prefix / "locked"
    venv = prefix / "venv"
    stuck = venv / "lib" / "stuck"
    for folder in (locked, stuck):
        folder.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    kept, free, deep = locked / "a.py", prefix / "free.py", stuck / "x.py"
    for path in (kept, free, deep):
        path.write_text("print()\n")
    record = install_manifest.Manifest(platform="linux", prefix=str(prefix))
    record.add("dir", prefix, "environment")
    record.add("dir", locked, "resolve")
    record.add("file", kept, "resolve", sha256=install_manifest.sha256_file(kept))
    record.add("file", free, "resolve", sha256=install_manifest.sha256_file(free))
    record.add("venv", venv, "environment")
    manifest_file = prefix / locations.MANIFEST_NAME
    install_manifest.write_manifest(record, manifest_file)
    home = locked_scratch.root / "home"
    home.mkdir()
    locked_scratch.give(locked_scratch.root)
    for folder in (locked, stuck):
        locked_scratch.lock(folder)

    first = locked_scratch.run(UNINSTALL, "--prefix", prefix, env=_plain_env(home))
    assert first.returncode == 3, first.stderr
    assert "Traceback" not in first.stderr
    lines = first.stderr.strip().splitlines()
    assert f"uninstall: could not remove {kept}: Permission denied" in lines
    tree_line = next(
        line for line in lines if line.startswith(f"uninstall: could not remove {venv} completely:")
    )
    assert f"{deep}: Permission denied" in tree_line
    assert lines[-1].startswith(f"uninstall: the manifest {manifest_file} is kept")
    assert not free.exists() and kept.exists() and manifest_file.exists()
    assert json.loads(manifest_file.read_text())["items"], "the manifest still lists what is left"

    for folder in (locked, stuck):
        locked_scratch.unlock(folder)
    second = locked_scratch.run(UNINSTALL, "--prefix", prefix, env=_plain_env(home))
    assert second.returncode == 0, second.stderr
    assert not prefix.exists()
