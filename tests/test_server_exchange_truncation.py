"""A client that shortens its frame-exchange file while the engine works on it gets an error for
that request; the engine (a real process, over ipc://) lives on. It used to read the frames
through a memory mapping during the synthesis: the shortened file raised SIGBUS, which ended it."""

from __future__ import annotations

import os
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from process_control import background_engine

from engine.errors import UnsupportedOptionError
from engine.processes import pid_alive
from engine.server.client import EngineClient

pytestmark = pytest.mark.skipif(os.name == "nt", reason="ipc://; Windows cannot shorten a mapped file")


@pytest.fixture(scope="module")
def connection(tmp_path_factory):
    with background_engine(tmp_path_factory.mktemp("exchange-engine")) as (connection, _):
        yield connection


def _exchange_file(connection) -> Path:
    (path,) = Path(connection.exchange_dir).glob(f"c{os.getpid()}-*.frames")
    return path


def test_a_shortened_exchange_file_is_an_error_reply_not_a_dead_engine(connection):
    times = [Fraction(n, 9) for n in range(1, 9)]
    with EngineClient(connection) as client:
        frame0, frame1 = client.input_frames((1080, 1920, 3), np.uint8, times=len(times))
        rng = np.random.default_rng(7)
        frame0[:] = rng.integers(0, 255, frame0.shape, np.uint8)
        frame1[:] = np.roll(frame0, 9, axis=1)
        shorten = threading.Timer(0.3, os.truncate, (_exchange_file(connection), 0))
        shorten.start()
        try:
            with pytest.raises(UnsupportedOptionError, match="exchange file .*(shortened|runs past the end)"):
                client.synthesize(frame0, frame1, times, backend="flow", shared=True, timeout_s=120)
        finally:
            shorten.join()
        del frame0, frame1  # views of this side's own mapping of the shortened file: never touched again
        assert pid_alive(connection.pid)
        assert client.ping()["pid"] == connection.pid
        small = np.full((32, 32, 3), 9, np.uint8)
        (result,) = client.synthesize(small, small, [0.5], backend="blend", shared=True)
        assert int(result.frame[0, 0, 0]) == 9
