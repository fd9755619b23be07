"""The Lua twins (for Resolve's free edition): syntax, their JSON and settings readers, and the
bridge calls, run by a real Lua interpreter against a stub ``resolve`` table
(plugins/davinci_resolve/fake_resolve/run_lua_stub.lua) whose Export copies a real OTIO export.
The scripts run are the entry scripts as the installer writes them, with the shared module copied
to a folder of its own."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugins" / "davinci_resolve"
sys.path.insert(0, str(PLUGIN_DIR))

import chronoscope_resolve  # noqa: E402
import install_paths  # noqa: E402
from fake_resolve import FakeResolve, demo_project  # noqa: E402

from engine.commands import bridge  # noqa: E402
from engine.server.process import stop_engine  # noqa: E402

LUA = next(
    (shutil.which(name) for name in ("lua5.4", "lua5.3", "lua5.1", "luajit", "lua") if shutil.which(name)),
    None,
)
LUAC = next(
    (shutil.which(name) for name in ("luac5.4", "luac5.3", "luac5.1", "luac") if shutil.which(name)), None
)
RUNNER = PLUGIN_DIR / "fake_resolve" / "run_lua_stub.lua"
SHARED = PLUGIN_DIR / "chronoscope_resolve.lua"

pytestmark = pytest.mark.skipif(
    LUA is None, reason="no Lua interpreter installed (Debian: apt-get install lua5.4)"
)


def lua(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LUA, *args], capture_output=True, text=True, timeout=120, env=env or os.environ.copy()
    )


def stub(mode: str, otio_path: Path, *extra: str) -> tuple[list[list[str]], list[list[str]], str]:
    done = lua(str(RUNNER), mode, str(otio_path), *extra)
    assert done.returncode == 0, done.stderr
    lines = [line.split("\t") for line in done.stdout.splitlines()]
    markers = [line[1:] for line in lines if line[0] == "MARKER"]
    calls = [line[1:] for line in lines if line[0] == "CALL"]
    return markers, calls, done.stdout


@pytest.fixture
def scripts(tmp_path) -> Path:
    """Resolve's Utility folder with the installed entry scripts (shared modules in their own folder)."""
    utility = tmp_path / "Fusion" / "Scripts" / "Utility"
    install_paths.install(utility, tmp_path / "Chronoscope" / "resolve")
    return utility


def entry(scripts: Path, action: str) -> Path:
    title = next(e.title for e in install_paths.ENTRIES if e.action == action)
    return scripts / f"{title}.lua"


@pytest.fixture
def exported(sample_clip, tmp_path) -> Path:
    resolve = FakeResolve(project_rate=Fraction(30))
    _, timeline = demo_project(resolve, sample_clip)
    path = tmp_path / "cut.otio"
    assert timeline.Export(str(path), resolve.EXPORT_OTIO)
    return path



def _lua_reply(request: dict, path: Path) -> Path:
    """What `chronoscope bridge --reply lua` answers ``request`` with, written to ``path``."""
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "bridge", "--reply", "lua"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    path.write_text(done.stdout)
    return path

def test_every_lua_file_is_valid_lua(scripts):
    files = [scripts / name for name in install_paths.LUA_SCRIPTS] + [SHARED, RUNNER]
    for path in files:
        if LUAC:
            done = subprocess.run([LUAC, "-p", str(path)], capture_output=True, text=True)
        else:
            done = lua("-e", f"assert(loadfile({json.dumps(str(path))}))")
        assert done.returncode == 0, f"{path.name}: {done.stderr}"


def test_json_writer_and_settings_reader(tmp_path, isolated_places):
    config = bridge.install_config()
    data = json.loads(config.read_text())
    data.update(
        command=["C:\\Program Files\\Chronoscope\\python.exe", "-m", 'engine "cli"'],
        render_flag="Cyan",
        start_engine=False,
        timeout_s=42.5,
    )
    config.write_text(json.dumps(data, indent=2))
    program = f"""
        local M = dofile({json.dumps(str(SHARED))})
        local s = M.parse_settings(io.open({json.dumps(str(config))}):read("*a"))
        print(M.json({{command = s.command, flag = s.render_flag, start = s.start_engine, t = s.timeout_s}}))
        print(M.json({{op = "detect", n = {{1, 2.5, -3}},
                       text = 'quote " back \\\\ tab \\t é', empty = {{}},
                       none = M.array(), two = M.array({{1, 2}})}}))
    """
    done = lua("-e", program)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert json.loads(first) == {"command": data["command"], "flag": "Cyan", "start": False, "t": 42.5}
    assert json.loads(second) == {
        "op": "detect",
        "n": [1, 2.5, -3],
        "text": 'quote " back \\ tab \t é',
        "empty": {},
        "none": [],
        "two": [1, 2],
    }


def test_markers_from_a_lua_bridge_reply_replace_only_our_own(exported, sample_clip, tmp_path):
    request = {
        "op": "detect",
        "timeline": str(exported),
        "start_engine": False,
        "results": {
            str(sample_clip.absolute()): {
                "speed": 1,
                "capture_fps": 30,
                "class": "realtime",
                "confidence": 0.7,
                "segments": [
                    {"start": 0, "end": 1, "speed": 1, "class": "realtime", "confidence": 0.7},
                    {"start": 1, "end": 6, "speed": 0.5, "class": "synthetic_slowmo", "confidence": 0.6},
                ],
                "evidence": {"synthetic_retime": "duplicate frames every 2nd frame"},
            }
        },
    }
    reply = _lua_reply(request, tmp_path / "reply.lua")
    markers, calls, _ = stub("apply", exported, str(reply))
    assert calls == [["apply", "1", "3", "0", "0"]]
    by_frame = {int(m[0]): m for m in markers}
    assert sorted(by_frame) == [0, 10, 30, 70]
    assert by_frame[10][1:4] == ["Blue", "user note", "1.0"]
    assert by_frame[30][1:4] == ["Red", "Fake slow motion 1/2", "30.0"]
    assert by_frame[70][1] == "Red" and json.loads(by_frame[70][4])["clip"] == "hug-lego-movie.mp4"


def test_lua_detect_script_end_to_end(exported, scripts, isolated_places):
    bridge.install_config()
    try:
        markers, _, out = stub(f"script:{entry(scripts, 'detect')}", exported)
    finally:
        stop_engine(timeout_s=10, force=True)
    assert "Chronoscope - Detect Speed: analysing timeline 'Cut 1'" in out
    assert "markers added" in out, out
    assert "5" not in [m[0] for m in markers]
    # the same words as the Python script's: class, rounded speed, confidence in percent
    lines = [line for line in out.splitlines() if line.startswith("Chronoscope - Detect Speed: V1 ")]
    assert len(lines) == 2 and all(re.search(r"confidence \d+%", line) for line in lines), out
    assert "at 50% on the timeline it plays at" in lines[1], out


def test_lua_render_sends_flagged_clips_and_reports_a_missing_engine(
    sample_clip, scripts, tmp_path, isolated_places
):
    resolve = FakeResolve(project_rate=Fraction(30))
    project = resolve.GetProjectManager().CreateProject("p")
    pool = project.GetMediaPool()
    media = pool.ImportMedia([str(sample_clip.absolute())])[0]
    timeline = pool.CreateEmptyTimeline("Real time")
    timeline.fake_append(media, source_start_frames=0, duration_frames=60)
    timeline.fake_append(
        media, source_start_frames=60, duration_frames=80, record_frame=108070, speed=Fraction(1, 2)
    )
    path = tmp_path / "rt.otio"
    timeline.Export(str(path), resolve.EXPORT_OTIO)
    config = bridge.install_config()
    config.write_text(json.dumps({**json.loads(config.read_text()), "start_engine": False}))
    _, calls, out = stub(f"script:{entry(scripts, 'render')}", path)
    # the stub flags its clip at frame 70 (at 50 %) Purple: that is work, so the next thing
    # missing is the engine
    assert "Chronoscope - Render Slow Motion: error: no Chronoscope engine is running" in out, out
    assert calls == []


def test_lua_missing_installation_and_no_project(exported, scripts, tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}
    done = lua(str(RUNNER), f"script:{entry(scripts, 'preview')}", str(exported), env=env)
    assert (
        "Chronoscope - Open in Preview: error: Chronoscope is not installed, or this script cannot find it"
        in done.stdout
    )
    bridge.install_config()
    _, _, out = stub("none", exported, str(entry(scripts, "detect")))
    assert "Chronoscope - Detect Speed: error: no project is open in Resolve" in out


def test_lua_entry_runs_its_module_from_any_folder_and_says_when_it_is_gone(
    exported, tmp_path, isolated_places
):
    modules = tmp_path / "odd 'name' \"quoted\" back\\slash é $HOME [[x]]"
    utility = tmp_path / "Utility"
    install_paths.install(utility, modules)
    bridge.install_config()
    _, _, out = stub("none", exported, str(entry(utility, "detect")))
    assert out.splitlines()[0] == (
        "Chronoscope - Detect Speed: error: no project is open in Resolve; open one and run the script again"
    )
    (modules / "chronoscope_resolve.lua").unlink()
    _, _, out = stub("none", exported, str(entry(utility, "render")))
    assert out.splitlines()[0] == (
        f"Chronoscope - Render Slow Motion: error: {modules / 'chronoscope_resolve.lua'}: "
        "No such file or directory; run the Chronoscope installer again"
    )


def test_lua_string_literals_read_back_exactly(tmp_path):
    texts = [
        r"C:\Users\ed\AppData\Roaming\x",
        "quote \" and ' and ]] and [[ and $HOME",
        "tab\tnewline\nbell\a nul\x00123 digits right after it",
        "é ü 日本 \x7f",
    ]
    for index, text in enumerate(texts):
        program = tmp_path / f"literal{index}.lua"
        program.write_text(f"io.write({install_paths.lua_string(text)})", encoding="utf-8")
        done = subprocess.run([LUA, str(program)], capture_output=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout == text.encode("utf-8")


def test_lua_and_python_scripts_agree_on_which_markers_are_their_own(tmp_path):
    cases = [
        '{"chronoscope": {"class": "slowmo"}}',
        '{"chronoscope": 1} ',
        '{"chronoscope": the editor typed this',
        "a note",
        "",
    ]
    program = tmp_path / "own.lua"
    module = install_paths.lua_string(str(SHARED))
    lines = [f"local M = dofile({module})"]
    lines += [f"print(M.is_own_marker({install_paths.lua_string(text)}))" for text in cases]
    program.write_text("\n".join(lines), encoding="utf-8")
    done = subprocess.run([LUA, str(program)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    python = [str(chronoscope_resolve.is_own_marker(text)).lower() for text in cases]
    assert done.stdout.split() == python == ["true", "true", "false", "false", "false"]


def test_lua_render_with_no_flagged_clip_renders(exported, scripts, isolated_places, monkeypatch):
    """Nothing flagged: the request's empty clip list goes out as ``[]`` (an empty Lua table is
    ``{}``, which the bridge also reads as an empty list) and the 50 % clip is rendered."""
    monkeypatch.setenv("STUB_FLAG", "")
    bridge.install_config()
    try:
        _, calls, out = stub(f"script:{entry(scripts, 'render')}", exported)
    finally:
        stop_engine(timeout_s=10, force=True)
    assert "clips must be a list" not in out
    assert "Chronoscope - Render Slow Motion: 1 of 1 clips rendered into " in out, out
    assert ["SetCurrentTimeline", "Cut 1 (Chronoscope)"] in calls, out


STAND_IN_BRIDGE = r"""
import json, os, sys
with open(os.environ["STAND_IN_REQUEST"], "w") as handle:
    handle.write(sys.stdin.read())
print('return {ok = false, error = {type = "StandIn", message = "request kept"}}')
"""


def test_lua_sends_the_job_timeout_the_disabled_clips_and_an_empty_clip_list(
    exported, scripts, tmp_path, isolated_places, monkeypatch
):
    stand_in = tmp_path / "stand_in.py"
    stand_in.write_text(STAND_IN_BRIDGE)
    request = tmp_path / "request.json"
    monkeypatch.setenv("STAND_IN_REQUEST", str(request))
    monkeypatch.setenv("STUB_FLAG", "")
    monkeypatch.setenv("STUB_DISABLED", "1")
    config = bridge.install_config()
    config.write_text(json.dumps({"command": [sys.executable, str(stand_in)], "timeout_s": 42.5}))
    _, _, out = stub(f"script:{entry(scripts, 'render')}", exported)
    assert "Chronoscope - Render Slow Motion: error: request kept" in out, out
    sent = json.loads(request.read_text())
    assert sent["clips"] == [] and sent["timeout_s"] == 42.5
    assert sent["disabled"] == [{"track": "V1", "record_start_frame": 0, "what": "clip"}]
    _, _, out = stub(f"script:{entry(scripts, 'detect')}", exported)
    sent = json.loads(request.read_text())
    assert sent["op"] == "detect" and sent["timeout_s"] == 42.5 and sent["disabled"][0]["what"] == "clip"


def test_lua_rerun_keeps_the_markers_of_a_clip_not_analysed_this_time(exported, sample_clip, tmp_path):
    """Run 1 marks the demo's two clips; run 2 cannot analyse their media (a result the bridge
    cannot use; in use a timeout or an engine error): their markers from run 1 stay."""
    media = str(sample_clip.absolute())
    good = {"speed": 1, "capture_fps": 30, "class": "realtime", "confidence": 0.7, "segments": []}
    replies = []
    for index, result in enumerate((good, {"class": "??"})):
        request = {
            "op": "detect",
            "timeline": str(exported),
            "start_engine": False,
            "results": {media: result},
        }
        replies.append(_lua_reply(request, tmp_path / f"reply{index}.lua"))
    markers, calls, _ = stub("apply", exported, *map(str, replies))
    # run 1: the stale marker at 5 (no clip of this timeline) goes, two come; run 2 keeps them
    assert calls == [["apply", "1", "2", "0", "0"], ["apply", "0", "0", "0", "2"]]
    assert sorted(int(m[0]) for m in markers) == [0, 10, 70]


def test_lua_second_render_resumes_in_the_same_folder_and_imports_nothing_again(
    exported, scripts, tmp_path, isolated_places, monkeypatch
):
    """The stub's project "demo", timeline "Cut 1", rendered twice with a render_dir: both runs
    go to <render_dir>/demo/Cut_1; the second takes the first's render and imports nothing."""
    monkeypatch.setenv("STUB_FLAG", "")
    monkeypatch.setenv("STUB_RUNS", "2")
    render_dir = tmp_path / "Rendus été"
    config = bridge.install_config()
    config.write_text(json.dumps({**json.loads(config.read_text()), "render_dir": str(render_dir)}))
    try:
        _, calls, out = stub(f"script:{entry(scripts, 'render')}", exported)
    finally:
        stop_engine(timeout_s=10, force=True)
    folder = render_dir / "demo" / "Cut_1"
    title = "Chronoscope - Render Slow Motion: "
    assert f"{title}1 of 1 clips rendered into {folder}\n" in out, out  # the first run
    again = f"{title}1 of 1 clips rendered into {folder} (1 of them rendered by an earlier run, "
    assert again + "taken as they were)" in out, out
    assert f"{title}1 rendered files were in the media pool already" in out
    imports = [call for call in calls if call[0] == "ImportMedia"]
    (render,) = folder.glob("*.mov")
    assert imports == [["ImportMedia", str(render)]], calls
    assert [call[1] for call in calls if call[0] == "SetCurrentTimeline"] == [
        "Cut 1 (Chronoscope)",
        "Cut 1 (Chronoscope 2)",
    ]


def test_python_lua_and_bridge_name_render_folders_alike(tmp_path):
    from engine.bridge.folders import folder_name

    names = [
        "Cut 1 / été",
        "Projet d'été: v2.1",
        "a.b..c",
        "   ",
        "",
        "CON",
        "lpt9",
        "con.txt",
        "___a___",
        "tab\there\nnewline",
        "é" * 60,
        "x" + "日本" * 20,
        "🎬" * 30,
        "Ω",
        "C:\\Users\\ed",
    ]
    program = tmp_path / "names.lua"
    lines = [f"local M = dofile({install_paths.lua_string(str(SHARED))})"]
    for name in names:
        lines.append(f'io.write(M.folder_name({install_paths.lua_string(name)}, "timeline"), "\\n")')
    program.write_text("\n".join(lines), encoding="utf-8")
    done = subprocess.run([LUA, str(program)], capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lua = done.stdout.decode("utf-8").split("\n")[:-1]
    python = [chronoscope_resolve.folder_name(name, "timeline") for name in names]
    assert lua == python == [folder_name(name, "timeline") for name in names]
    assert python[:10] == [
        "Cut_1_été",
        "Projet_d_été_v2_1",
        "a_b_c",
        "timeline",
        "timeline",
        "CON_",
        "lpt9_",
        "con_txt",
        "a",
        "tab_here_newline",
    ]
    assert python[10] == "é" * 40 and python[11] == "x" + "日本" * 13 and python[12] == "🎬" * 20


def test_lua_knows_its_markers_once_resolve_dropped_their_custom_data(
    exported, sample_clip, tmp_path, monkeypatch
):
    """After each reply the stub drops every marker's customData, as Render's new timeline (rebuilt
    from Resolve's OTIO) has them: run 2 replaces run 1's markers (told by their note's last line
    and colour) instead of adding new ones beside them; run 3 cannot analyse the media and keeps
    them; the editor's marker stays throughout."""
    monkeypatch.setenv("STUB_THROUGH_OTIO", "1")
    media = str(sample_clip.absolute())
    good = {"speed": 1, "capture_fps": 30, "class": "realtime", "confidence": 0.7, "segments": []}
    replies = []
    for index, result in enumerate((good, {**good, "class": "synthetic_slowmo"}, {"class": "??"})):
        request = {"op": "detect", "timeline": str(exported), "start_engine": False}
        replies.append(_lua_reply({**request, "results": {media: result}}, tmp_path / f"reply{index}.lua"))
    markers, calls, _ = stub("apply", exported, *map(str, replies))
    assert calls == [
        ["apply", "1", "2", "0", "0"],
        ["apply", "2", "2", "0", "0"],
        ["apply", "0", "0", "0", "2"],
    ]
    assert [(int(m[0]), m[1], m[4]) for m in markers] == [(0, "Red", ""), (10, "Blue", ""), (70, "Red", "")]


def test_lua_and_python_know_markers_without_custom_data_alike(tmp_path):
    tagged = "Slow motion 1/4.\n\nChronoscope marker: V1, clip at frame 0: a.mov"
    cases = [
        ("", tagged, "Green"),
        ("", tagged, "Purple"),  # not a colour Chronoscope gives a marker: the editor's
        ("", "Chronoscope marker: V1, clip at frame 0: a.mov\nthe editor added a line", "Blue"),
        ("", "a note of the editor's", "Blue"),
        ('{"chronoscope": 1}', "", "Pink"),
        ("", "", ""),
    ]
    program = tmp_path / "own.lua"
    lines = [f"local M = dofile({install_paths.lua_string(str(SHARED))})"]
    for custom, note, color in cases:
        arguments = ", ".join(install_paths.lua_string(text) for text in (custom, note, color))
        lines.append(f"print(M.is_own_marker({arguments}))")
    program.write_text("\n".join(lines), encoding="utf-8")
    done = subprocess.run([LUA, str(program)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    python = [str(chronoscope_resolve.is_own_marker(*case)).lower() for case in cases]
    assert done.stdout.split() == python == ["true", "false", "false", "false", "true", "false"]
