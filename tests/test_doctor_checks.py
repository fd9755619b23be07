"""``chronoscope doctor`` and its checks, against real models, a real OFX bundle, real files and the
real command line. The end-to-end run on an installed environment is in test_installer_linux.py."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine import doctor
from engine.cli import main as chronoscope

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILT_BUNDLE = REPO_ROOT / "build" / "ofx" / "Chronoscope.ofx.bundle"


def _prepared_models() -> Path:
    from engine.models.convert_rife import SOURCES, current_model_problem

    for candidate in (os.environ.get("CHRONOSCOPE_MODELS_DIR"), REPO_ROOT / "build" / "models"):
        if candidate and all(
            not current_model_problem(source, Path(candidate)) for source in SOURCES.values()
        ):
            return Path(candidate)
    pytest.skip("no prepared models (make test prepares build/models)")


def _record(
    tmp_path: Path, items: list[dict], notes: tuple[str, ...] = (), **fields: object
) -> doctor.InstallRecord:
    path = tmp_path / "install-manifest.json"
    path.write_text(json.dumps({"format": 1, "items": items, "notes": list(notes), **fields}))
    record, problem = doctor.read_install_record(path)
    assert problem == ""
    return record


def test_python_and_versions_pass_here():
    assert doctor.check_python().status == "pass"
    versions = doctor.check_versions()
    assert versions.details["packages"]["chronoscope"]
    assert versions.details["libzmq"] and versions.details["ffmpeg"]["libavcodec"]


def test_missing_gpu_is_reported_not_failed():
    result = doctor.check_onnxruntime()
    assert result.status != "fail"
    gpu_here = Path("/proc/driver/nvidia/version").is_file() or shutil.which("nvidia-smi") is not None
    assert result.details["gpu"] == gpu_here
    if not gpu_here:
        assert result.status == "pass" and "no NVIDIA GPU" in result.summary
        assert result.details["chosen"] == ["CPUExecutionProvider"]


def test_models_verified_then_missing_then_damaged(tmp_path):
    source = _prepared_models()
    assert doctor.check_models(source).status == "pass"
    empty = doctor.check_models(tmp_path / "none")
    assert empty.status == "fail" and set(empty.details["missing"]) == {
        "rife-hdv3",
        "rife-4.2x",
        "rife-mined",
    }
    assert "chronoscope models prepare" in empty.fix
    for path in source.iterdir():
        if path.name.startswith("rife-hdv3"):
            shutil.copy2(path, tmp_path / path.name)
    model = tmp_path / "rife-hdv3.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    damaged = doctor.check_models(tmp_path)
    assert damaged.status == "fail"
    assert damaged.details["missing"] == ["rife-4.2x", "rife-mined"]
    assert damaged.details["damaged"][0].startswith("rife-hdv3")


def test_a_missing_tuned_model_fails_the_models_check(tmp_path):
    """rife-mined ships as a weight delta that `models prepare` turns into a model: doctor must miss
    it like the pinned ones."""
    source = _prepared_models()
    for path in source.iterdir():
        if path.name.startswith(("rife-hdv3", "rife-4.2x")):
            shutil.copy2(path, tmp_path / path.name)
    result = doctor.check_models(tmp_path)
    assert result.status == "fail", result.summary
    assert result.details["missing"] == ["rife-mined"] and "missing: rife-mined" in result.summary


def test_the_models_fix_is_the_installer_where_installed_and_make_models_in_a_checkout(tmp_path, monkeypatch):
    """The fix said `pip install 'chronoscope[train]'` everywhere: in an installed environment that
    puts torch into the engine's environment (and PyPI's chronoscope is another project)."""
    options = {"gpu": "auto", "resolve": True, "ofx": False, "autostart": True, "environment": {}}
    record = _record(tmp_path, [], source="/src/chronoscope", prefix="/opt/cs", options=options)
    installed = doctor.check_models(tmp_path / "none", record=record)
    assert installed.status == "fail"
    assert installed.fix == (
        "run the installer again: python3 /src/chronoscope/installer/install.py --prefix /opt/cs --no-ofx "
        "(it converts the models in a temporary environment with torch)"
    )
    checkout = doctor.check_models(tmp_path / "none")  # these tests run from the checkout
    assert checkout.fix.startswith(f"in the checkout {REPO_ROOT}: make models")
    assert "pip install -e '.[train]' there" in checkout.fix
    assert "'chronoscope[train]'" not in installed.fix + checkout.fix
    site_packages = tmp_path / "site-packages"  # an installed package, and no manifest found
    site_packages.mkdir()
    monkeypatch.setattr(doctor, "SOURCE_ROOT", site_packages)
    assert doctor.check_models(tmp_path / "none").fix.startswith(
        "run the installer again: python3 installer/install.py"
    )


def test_no_engine_is_a_warning_with_the_fix():
    result = doctor.check_engine()
    assert result.status == "warn"
    assert "chronoscope engine start" in result.fix


def test_an_engine_killed_outright_is_a_warning_as_engine_status_says(capsys):
    """kill -9 leaves the connection file behind: `engine status` says none runs (exit 3), and so
    must doctor, as a warning (it used to fail: "engine pid N does not answer")."""
    import signal

    from engine.commands import engine_cmd
    from engine.server import process
    from engine.server.connection import connection_file_path

    connection, started = process.start_engine(timeout_s=60)
    assert started
    os.kill(connection.pid, signal.SIGKILL)
    process._spawned.pop(connection.pid).wait(timeout=10)
    assert connection_file_path().is_file()
    assert chronoscope(["engine", "status"]) == engine_cmd.EXIT_NOT_RUNNING
    assert capsys.readouterr().out.strip() == "no engine is running"
    result = doctor.check_engine()
    assert result.status == "warn", result
    assert f"names pid {connection.pid}" in result.summary and "stale" in result.summary
    assert "engine start" in result.fix


@contextlib.contextmanager
def _unwritable(folder: Path):
    """``folder`` made unwritable for this user, for real: read-only by its mode, or, for root (whom
    modes do not stop), marked immutable."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    marked = chattr and subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode == 0
    if not marked:
        pytest.skip("running as root, and chattr +i is not available here")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def test_a_home_the_engine_cannot_write_in_fails_with_the_folder_and_the_fix(isolated_places, capsys):
    """doctor said nothing when the engine could not start for a read-only CHRONOSCOPE_HOME, and
    `engine start` said only "Permission denied: .../log"."""
    with _unwritable(isolated_places):
        result = doctor.check_folders()
        assert chronoscope(["engine", "start"]) == 2
        said = capsys.readouterr().err
    assert result.status == "fail", result
    assert f"{isolated_places / 'runtime'} (its connection file, lock and sockets)" in result.summary
    assert f"{isolated_places / 'log'} (its log)" in result.summary
    assert f"cannot be made: {isolated_places} is not writable" in result.summary
    assert result.fix.startswith(f"make {isolated_places} writable")
    assert "point CHRONOSCOPE_HOME at a folder of yours" in result.fix
    assert "XDG_" not in result.fix
    assert said.startswith("chronoscope engine: error: the engine cannot start: "), said
    assert f"cannot be made: {isolated_places} is not writable" in said and "CHRONOSCOPE_HOME" in said
    assert not any(isolated_places.iterdir()), "the check left something behind"
    assert doctor.check_folders().status == "pass"


def test_a_log_folder_of_another_user_is_named_as_the_log_with_the_variable_that_moves_it(tmp_path):
    """engine start blamed the log folder for not keeping "its key and sockets" private and said to
    set XDG_RUNTIME_DIR, which does not move the log."""
    home = tmp_path / "h"
    log_dir = home / "state" / "Chronoscope" / "log"
    log_dir.parent.mkdir(parents=True)
    if os.geteuid() == 0:
        log_dir.mkdir()
        os.chown(log_dir, 65534, 65534)
    else:
        log_dir.symlink_to("/")
    (home / "run").mkdir(mode=0o700)
    (home / "tmp").mkdir()
    env = {
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_RUNTIME_DIR": str(home / "run"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "TMPDIR": str(home / "tmp"),
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }

    def chronoscope_here(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "engine.cli", *argv],
            capture_output=True, text=True, timeout=120, env=env, check=False,
        )

    started = chronoscope_here("engine", "start")
    assert started.returncode == 2, started.stdout + started.stderr
    assert f"{log_dir} (its log) belongs to another user" in started.stderr, started.stderr
    assert "set XDG_STATE_HOME (or CHRONOSCOPE_HOME) to a folder of yours" in started.stderr
    assert "sockets" not in started.stderr.split("(its log)")[1] and "XDG_RUNTIME_DIR" not in started.stderr
    checked = json.loads(chronoscope_here("doctor", "--json").stdout)
    folders = next(check for check in checked["checks"] if check["name"] == "folders")
    assert folders["status"] == "fail" and f"{log_dir} (its log)" in folders["summary"]
    assert "XDG_STATE_HOME" in folders["fix"]


def test_ofx_bundle_loads_and_a_broken_one_fails(tmp_path):
    if not BUILT_BUNDLE.is_dir():
        pytest.skip("the OFX bundle is not built (make ofx)")
    loaded = doctor.load_ofx_bundle(BUILT_BUNDLE)
    assert loaded["plugins"][0]["identifier"] == "org.chronoscope.Retime"
    assert loaded["plugins"][0]["api"] == "OfxImageEffectPluginAPI"
    installed = tmp_path / "plugins" / "Chronoscope.ofx.bundle"
    shutil.copytree(BUILT_BUNDLE, installed)
    record = _record(tmp_path, [{"kind": "tree", "path": str(installed), "component": "ofx"}])
    assert doctor.check_ofx(record, environ={}).status == "pass"
    note = f"OpenFX bundle installed in {installed.parent}, which hosts do not search (OFX_PLUGIN_PATH ...)"
    needs_path = _record(tmp_path, [{"kind": "tree", "path": str(installed), "component": "ofx"}], (note,))
    assert doctor.check_ofx(needs_path, environ={}).status == "warn"
    assert doctor.check_ofx(needs_path, environ={"OFX_PLUGIN_PATH": str(installed.parent)}).status == "pass"
    damaged = tmp_path / "damaged" / "Chronoscope.ofx.bundle"  # never loaded: a loaded one must not change
    doctor.ofx_binary(damaged).parent.mkdir(parents=True)
    doctor.ofx_binary(damaged).write_bytes(b"not a shared object")
    broken = doctor.check_ofx(
        _record(tmp_path, [{"kind": "tree", "path": str(damaged), "component": "ofx"}]), environ={}
    )
    assert broken.status == "fail" and "does not load" in broken.summary


def test_resolve_scripts_missing_or_edited(tmp_path, isolated_places):
    from engine.bridge.config import install_config

    scripts = tmp_path / "Utility"
    scripts.mkdir()
    script = scripts / "Chronoscope - Detect Speed.py"
    script.write_text("print('detect')\n")
    digest = doctor._sha256(script)
    items = [{"kind": "file", "path": str(script), "component": "resolve", "sha256": digest}]
    record = _record(tmp_path, items)
    no_config = doctor.check_resolve(record)
    assert no_config.status == "fail" and "bridge config" in no_config.summary
    install_config()
    passed = doctor.check_resolve(record)
    assert passed.status == "pass" and passed.summary.startswith(f"1 menu scripts in {scripts};")
    module = tmp_path / "resolve" / "chronoscope_resolve.py"
    module.parent.mkdir()
    module.write_text("def run(action, env): pass\n")
    with_module = _record(
        tmp_path,
        items
        + [{"kind": "file", "path": str(module), "component": "resolve", "sha256": doctor._sha256(module)}],
    )
    summary = doctor.check_resolve(with_module).summary
    assert summary.startswith(f"1 menu scripts in {scripts}, their 1 shared modules in {module.parent};")
    script.write_text("print('edited')\n")
    assert doctor.check_resolve(record).status == "warn"
    script.unlink()
    missing = doctor.check_resolve(record)
    assert missing.status == "fail" and missing.fix.startswith("run the installer again")
    assert doctor.check_resolve(None, "no install manifest").status == "warn"


def test_ofx_not_installed_says_why_as_the_manifest_records_it(tmp_path):
    build_failed = (
        "OpenFX bundle not built: building the OpenFX bundle failed (status 2): make -C plugins/ofx_bridge\n"
        "src/engine_link.c:24:10: fatal error: zmq.h: No such file or directory\n"
        "the build needs gcc, make and libzmq's header"
    )
    failed = doctor.check_ofx(
        _record(tmp_path, [], options={"ofx": True}, problems=[build_failed]), environ={}
    )
    assert failed.status == "warn"
    assert failed.summary.startswith("the OpenFX bundle was not built: building the OpenFX bundle failed")
    assert "fatal error: zmq.h: No such file or directory" in failed.summary
    assert "--no-ofx" not in failed.fix and "libzmq3-dev" in failed.fix

    skipped = doctor.check_ofx(_record(tmp_path, [], options={"ofx": False}), environ={})
    assert skipped.summary == "the OpenFX bundle was not installed (--no-ofx)"
    assert skipped.fix.startswith("run the installer again without --no-ofx")

    other_os = "the OpenFX bundle is built for Linux x86-64 only so far; skipped"
    elsewhere = doctor.check_ofx(_record(tmp_path, [], (other_os,), options={"ofx": True}), environ={})
    assert elsewhere.summary.endswith(other_os) and "--no-ofx" not in elsewhere.fix


def test_steps_the_install_did_not_finish_are_reported_by_the_install_check(tmp_path):
    placed = tmp_path / "prefix" / "venv"
    placed.mkdir(parents=True)
    items = [{"kind": "venv", "path": str(placed), "component": "environment"}]
    launcher = "preview app launcher: /home/ed/.local/share/applications: Permission denied (fix ...)"
    ofx = "OpenFX bundle not built: gcc missing; the build needs gcc, make and libzmq's header"
    options = {"gpu": "cpu", "resolve": True, "ofx": True, "autostart": False, "environment": {}}
    fields = {"source": "/src/chronoscope", "prefix": str(tmp_path / "prefix"), "options": options}
    minor = doctor.check_install(_record(tmp_path, items, problems=[launcher, ofx], **fields))
    assert minor.status == "warn", minor  # the app still runs from the command line
    assert minor.summary == f"the install did not finish 1 step: {launcher}"  # the ofx check has the build
    assert minor.fix == (
        "fix what it names, then run the installer again: python3 /src/chronoscope/installer/install.py "
        f"--prefix {tmp_path / 'prefix'} --gpu cpu --no-autostart (it upgrades in place)"
    )
    commands = "commands: /home/ed/.local: Permission denied (fix ...)"
    resolve = "Resolve scripts: /home/ed/.local: Permission denied (fix ...)"
    failed = doctor.check_install(_record(tmp_path, items, problems=[commands, resolve, launcher], **fields))
    assert failed.status == "fail" and failed.details["problems"] == [commands, resolve, launcher]
    assert failed.fix.startswith("fix what each names, then run the installer again: ")


def test_fix_lines_name_this_environments_chronoscope(monkeypatch, tmp_path):
    scripts = Path(sys.prefix) / "bin" / "chronoscope"
    if os.name == "nt" or not scripts.is_file():
        pytest.skip("runs in a POSIX virtual environment with the chronoscope script")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert doctor.chronoscope_command() == str(scripts)
    assert f"{scripts} engine start" in doctor.check_engine().fix
    launcher = tmp_path / "chronoscope"
    launcher.write_text(f'#!/bin/sh\nexec {scripts} "$@"\n')
    launcher.chmod(0o755)
    assert doctor.chronoscope_command() == "chronoscope"
    launcher.write_text('#!/bin/sh\nexec /elsewhere/.venv/bin/chronoscope "$@"\n')
    assert doctor.chronoscope_command() == str(scripts)


def test_disk_space_is_reported_for_a_folder_not_yet_made(tmp_path):
    result = doctor.check_disk(tmp_path / "cache" / "not-yet")
    assert result.status in ("pass", "warn", "fail")
    assert (
        result.details["free_bytes"] == shutil.disk_usage(tmp_path).free or result.details["free_bytes"] > 0
    )


def test_command_line_json_and_exit_status(tmp_path, monkeypatch, capsys):
    prepared = _prepared_models()  # found before the variable that names it is changed
    monkeypatch.setenv("CHRONOSCOPE_MODELS_DIR", str(tmp_path / "no-models"))
    status = chronoscope(["doctor", "--json", "--manifest", str(tmp_path / "absent.json")])
    summary = json.loads(capsys.readouterr().out)
    names = [check["name"] for check in summary["checks"]]
    assert names == [
        "python",
        "versions",
        "onnxruntime",
        "models",
        "folders",
        "engine",
        "resolve",
        "ofx",
        "install",
        "disk",
    ]
    assert status == 1 and summary["ok"] is False
    models = next(check for check in summary["checks"] if check["name"] == "models")
    assert models["status"] == "fail"
    install = next(check for check in summary["checks"] if check["name"] == "install")
    assert install["status"] == "fail" and "absent.json does not exist" in install["summary"]
    monkeypatch.setenv("CHRONOSCOPE_MODELS_DIR", str(prepared))
    assert chronoscope(["doctor"]) == 0
    text = capsys.readouterr().out
    assert "PASS  models" in text and "fix: " in text and text.rstrip().endswith("warnings)")


def test_a_manifest_named_but_missing_fails(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CHRONOSCOPE_MODELS_DIR", str(_prepared_models()))
    assert chronoscope(["doctor", "--manifest", str(tmp_path / "absent.json")]) == 1
    text = capsys.readouterr().out
    assert f"FAIL  install      install manifest {tmp_path / 'absent.json'} does not exist" in text
    assert text.rstrip().splitlines()[-1].startswith("chronoscope doctor: failed: install")


def test_one_warning_is_singular(monkeypatch, capsys):
    from engine.commands import doctor as doctor_command

    results = [
        doctor.CheckResult("python", "pass", "ok"),
        doctor.CheckResult("engine", "warn", "not running", "start"),
    ]
    monkeypatch.setattr(doctor_command, "run_checks", lambda manifest: results)
    assert chronoscope(["doctor"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("chronoscope doctor: no failures (1 warning)")
    monkeypatch.setattr(doctor_command, "run_checks", lambda manifest: results + results[1:])
    assert chronoscope(["doctor"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("chronoscope doctor: no failures (2 warnings)")


def test_models_list_refuses_a_folder_that_is_not_there(tmp_path, capsys):
    assert chronoscope(["models", "list", "--models-dir", str(tmp_path / "absent")]) == 2
    assert f"models folder {tmp_path / 'absent'} does not exist" in capsys.readouterr().err
    a_file = tmp_path / "models.txt"
    a_file.write_text("not a folder\n")
    assert chronoscope(["models", "list", "--models-dir", str(a_file)]) == 2
    assert f"models folder {a_file} is not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert chronoscope(["models", "list", "--models-dir", str(tmp_path / "empty")]) == 0
    assert "no models installed" in capsys.readouterr().out
