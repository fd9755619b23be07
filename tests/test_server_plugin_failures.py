"""Capability modules (plugins) that misbehave, in a real engine process: one that cannot be
imported is a warning and the rest is served; one that replaces a built-in handler is named; one
that calls ``sys.exit()`` or raises ``KeyboardInterrupt`` fails its request or job, never the
engine or a worker thread."""

from __future__ import annotations

import os
import textwrap

import pytest
from process_control import background_engine

from engine.errors import CapabilityModuleError, FileAccessError
from engine.processes import pid_alive
from engine.server.client import EngineClient

pytestmark = pytest.mark.skipif(os.name == "nt", reason="ipc://")

PLUGIN = textwrap.dedent(
    """
    import sys
    from engine.server.handlers import Handler


    def make_job(message):
        mode = message.content.get("mode")
        if mode == "exit_in_check":
            sys.exit("plugin validation called sys.exit")
        if mode == "interrupt_in_check":
            raise KeyboardInterrupt

        def work(context):
            if mode == "exit_in_job":
                raise SystemExit("job called sys.exit")
            if mode == "interrupt_in_job":
                raise KeyboardInterrupt
            if mode == "os_error":
                raise PermissionError(13, "Permission denied", "/somewhere/out.mov")
            return {"mode": mode}

        return work


    def register_handlers(registry):
        registry.register(Handler("detect_speed", job=make_job, description="a plugin's detect_speed"))
    """
)
BROKEN_MODULES = {
    "chrono_test_raises": 'raise RuntimeError("this plugin cannot start")\n',
    "chrono_test_syntax": "def register_handlers(registry:\n",
    "chrono_test_exits": "import sys\nsys.exit(3)\n",
}


@pytest.fixture(scope="module")
def engine_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("plugin-engine")
    modules = home / "modules"
    modules.mkdir()
    (modules / "chrono_test_plugin.py").write_text(PLUGIN)
    for name, source in BROKEN_MODULES.items():
        (modules / f"{name}.py").write_text(source)
    with background_engine(home, ["chrono_test_plugin", *BROKEN_MODULES], python_path=modules) as started:
        yield started


@pytest.fixture
def client(engine_home):
    with EngineClient(engine_home[0]) as client:
        yield client


def test_modules_that_cannot_be_installed_are_warnings_and_the_rest_is_served(client):
    """A module raising RuntimeError or SyntaxError at import stopped the engine from starting."""
    info = client.info()
    warnings = "\n".join(info["warnings"])
    assert (
        "capability module chrono_test_raises not installed: RuntimeError: this plugin cannot start"
        in warnings
    )
    assert "capability module chrono_test_syntax not installed: SyntaxError" in warnings
    assert "capability module chrono_test_exits not installed: SystemExit: 3" in warnings
    assert {"retime", "render_timeline", "detect_speed", "synthesize"} <= set(
        info["capabilities"]["available"]
    )


def test_a_module_replacing_a_built_in_handler_is_named(client, engine_home):
    """It replaced the built-in detect_speed without a word."""
    _, log_file = engine_home
    expected = (
        "capability module chrono_test_plugin replaced the detect_speed handler from engine.speed.capability"
    )
    assert expected in client.info()["warnings"]
    assert "WARNING: engine.server.handlers: detect_speed: the handler from chrono_test_plugin replaces" in (
        log_file.read_text()
    )


@pytest.mark.parametrize("mode", ["exit_in_check", "interrupt_in_check"])
def test_exiting_while_checking_a_request_fails_that_request_only(client, engine_home, mode):
    """sys.exit() in a job-check function shut the whole engine down."""
    with pytest.raises(CapabilityModuleError, match="in chrono_test_plugin; a capability module must raise"):
        client.submit("detect_speed", {"mode": mode})
    assert pid_alive(engine_home[0].pid)
    assert client.run_job("detect_speed", {"mode": "fine"}, timeout_s=30) == {"mode": "fine"}


def test_exiting_in_a_job_fails_the_job_and_the_workers_serve_on(client):
    """SystemExit or KeyboardInterrupt in a job ended its worker thread; the job stayed running."""
    for mode, raised in (("exit_in_job", "SystemExit"), ("interrupt_in_job", "KeyboardInterrupt")):
        for _ in range(2):  # as many as the engine has workers: each would lose its thread
            with pytest.raises(CapabilityModuleError, match=f"the detect_speed job raised {raised}"):
                client.run_job("detect_speed", {"mode": mode}, timeout_s=30)
    for _ in range(3):
        assert client.run_job("detect_speed", {"mode": "fine"}, timeout_s=30) == {"mode": "fine"}
    assert client.info()["jobs"]["counts"]["running"] == 0


def test_an_os_error_in_a_job_is_a_named_error_with_the_path(client):
    """It was reported as 'internal error' with the builtin's name."""
    with pytest.raises(FileAccessError, match="/somewhere/out.mov: Permission denied"):
        client.run_job("detect_speed", {"mode": "os_error"}, timeout_s=30)
