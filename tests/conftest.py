"""Shared fixtures: real media from ../shared/data when present, isolated places on disk, and a
guard that fails any test which logged an ERROR it did not expect."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# A suite started in the background of a non-interactive shell (`make test &`) inherits SIGINT
# ignored, and so would every command a test starts: Python installs no KeyboardInterrupt
# handler where SIGINT is ignored at start, so the Ctrl-C tests' children would run on through
# it. A terminal's Ctrl-C reaches the commands these tests stand in for, so give them that.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _shared_data_dir() -> Path:
    configured = os.environ.get("CHRONOSCOPE_SHARED_DATA")
    if configured:
        return Path(configured)
    return REPO_ROOT.parent / "shared" / "data"


SHARED_DATA = _shared_data_dir()


@pytest.fixture(scope="session")
def shared_clips() -> Path:
    """The shared real clips folder, for module-scoped fixtures; skips in clones without it."""
    if not (SHARED_DATA / "clips").is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set CHRONOSCOPE_SHARED_DATA)")
    return SHARED_DATA / "clips"


@pytest.fixture
def shared_data() -> Path:
    """The project's shared real footage; tests that need it skip in clones without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set CHRONOSCOPE_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def sample_clip() -> Path:
    """The small real clip bundled in the repository for the demo."""
    return REPO_ROOT / "samples" / "hug-lego-movie.mp4"


@pytest.fixture(autouse=True)
def isolated_places(tmp_path_factory, monkeypatch):
    """Point every Chronoscope folder (config, models, cache, logs, runtime) at a fresh temp dir."""
    home = tmp_path_factory.mktemp("chronoscope-home")
    monkeypatch.setenv("CHRONOSCOPE_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def fail_on_logged_error(caplog, request):
    """Fail a test that logged at ERROR or above, unless it is marked ``allow_error_log``."""
    yield
    if request.node.get_closest_marker("allow_error_log"):
        return
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    if errors:
        pytest.fail("test logged errors: " + "; ".join(r.getMessage() for r in errors))
