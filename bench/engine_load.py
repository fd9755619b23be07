"""The engine under load: ping latency, synthesize overhead at 1080p, many clients at once.

Starts a real engine process (``python -m engine.server``) in a throw-away ``CHRONOSCOPE_HOME``
(so a running engine of yours is never touched) and measures, over its real sockets:

- ``ping``: round trips on the control channel, p50 / p99 / max in ms. Baselines, side by side:
  a bare ZeroMQ DEALER -> ROUTER echo over ipc (no JSON, no signing) on a thread of this process,
  and the same echo in another process (the same scheduler hops as a ping to the engine).
- ``synthesize`` at 1920x1080 RGB uint8, one in-between frame: the engine's overhead beyond the
  model, that is the client's wall time minus the time the backend itself took and the time
  spent on the results' risk scores (the reply's ``timings_ns``; the risk score is part of the
  synthesis result, defined in engine/interp, and is reported on its own). Four ways:
  ``buffers`` (frames as signed message buffers), ``exchange`` (through the frame exchange, a
  memory-mapped file in the private runtime folder, see engine/server/exchange.py; results copied
  out), ``exchange_views`` (results as views of the exchange, ``copy=False``) and
  ``exchange_in_place_views`` (inputs written straight into ``client.input_frames()``, results as
  views: what a host that decodes into the exchange and displays each result at once pays).
  Baselines: the same bytes through a bare ZeroMQ echo (two frames out, frame and risk map back),
  HMAC-SHA256 over those bytes on its own, and the memory copies the ``exchange`` way makes.
- load: ``--clients`` clients on their own threads, ``--requests`` mixed requests each (ping on
  control, info, a small synthesize whose exact answer names the client and request, job_status
  of an unknown job whose error names it). Every reply is checked against what was asked: lost
  (timed out) and mixed-up replies are counted, latency percentiles per kind.

Writes JSON to ``--output`` (default: stdout only).

    .venv/bin/python bench/engine_load.py --output bench/results/engine_load.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import zmq

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

log = logging.getLogger("engine_load")

HD_SHAPE = (1080, 1920, 3)


def percentiles_ms(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def at(fraction: float) -> float:
        index = min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))
        return round(ordered[index] / 1e6, 3)

    return {
        "n": len(ordered),
        "p50_ms": at(0.50),
        "p90_ms": at(0.90),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1] / 1e6, 3),
        "mean_ms": round(statistics.fmean(ordered) / 1e6, 3),
    }


class EchoServer:
    """The baseline: a bare ROUTER that sends back what it gets (or a given reply size)."""

    def __init__(self, context: zmq.Context, endpoint: str):
        self.socket = context.socket(zmq.ROUTER)
        self.socket.bind(endpoint)
        self.endpoint = endpoint
        self.reply: list | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self.socket.poll(100):
                continue
            frames = self.socket.recv_multipart(copy=False)
            answer = frames if self.reply is None else [frames[0], *self.reply]
            self.socket.send_multipart(answer, copy=False)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close(linger=0)


ECHO_PROCESS = """
import sys, zmq
context = zmq.Context()
socket = context.socket(zmq.ROUTER)
socket.bind(sys.argv[1])
print("ready", flush=True)
while True:
    frames = socket.recv_multipart(copy=False)
    if frames[1].bytes == b"stop":
        break
    socket.send_multipart(frames, copy=False)
"""


def process_baseline(folder: Path, pings: int) -> dict:
    """A bare ZeroMQ echo in another process: the same scheduler hops as a ping to the engine."""
    endpoint = f"ipc://{folder}/echo-process"
    child = subprocess.Popen(
        [sys.executable, "-c", ECHO_PROCESS, endpoint], stdout=subprocess.PIPE, text=True
    )
    context = zmq.Context()
    dealer = context.socket(zmq.DEALER)
    try:
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("the echo process did not start")
        dealer.connect(endpoint)
        round_trips(dealer, [b"ping"], 100)
        samples = round_trips(dealer, [b"x" * 200, b"{}", b"{}"], pings)
        dealer.send_multipart([b"stop"])
        child.wait(timeout=10)
    finally:
        dealer.close(linger=0)
        context.term()
        if child.poll() is None:
            child.kill()
            child.wait()
    return percentiles_ms(samples)


def round_trips(socket: zmq.Socket, frames: list, count: int) -> list[int]:
    samples = []
    for _ in range(count):
        started = time.perf_counter_ns()
        socket.send_multipart(frames, copy=False)
        socket.recv_multipart(copy=False)
        samples.append(time.perf_counter_ns() - started)
    return samples


def baselines(folder: Path, pings: int, synth_iterations: int) -> dict:
    context = zmq.Context()
    echo = EchoServer(context, f"ipc://{folder}/echo")
    dealer = context.socket(zmq.DEALER)
    dealer.connect(echo.endpoint)
    try:
        round_trips(dealer, [b"ping"], 100)
        small = round_trips(dealer, [b"x" * 200, b"{}", b"{}"], pings)
        frame0 = np.random.default_rng(1).integers(0, 256, HD_SHAPE, np.uint8)
        frame1 = np.random.default_rng(2).integers(0, 256, HD_SHAPE, np.uint8)
        risk = np.zeros(HD_SHAPE[:2], np.float32)
        echo.reply = [frame0.copy(), risk]
        round_trips(dealer, [b"{}", frame0, frame1], 3)
        large = round_trips(dealer, [b"{}", frame0, frame1], synth_iterations)
    finally:
        dealer.close(linger=0)
        echo.close()
        context.term()
    return {"zmq_echo_small_ipc": percentiles_ms(small), "zmq_echo_1080p_pair_ipc": percentiles_ms(large)}


def copy_cost(iterations: int) -> dict:
    """The copies the exchange path makes, alone: two frames in, frame and risk map out, both copied out."""
    frame = np.ones(HD_SHAPE, np.uint8).reshape(-1)
    risk = np.ones(HD_SHAPE[:2], np.float32).view(np.uint8).reshape(-1)
    shared = np.empty(3 * frame.nbytes + risk.nbytes, np.uint8)
    samples = []
    for _ in range(iterations):
        started = time.perf_counter_ns()
        for index in range(3):
            shared[index * frame.nbytes : (index + 1) * frame.nbytes] = frame
        shared[3 * frame.nbytes :] = risk
        np.array(shared[: frame.nbytes])
        np.array(shared[3 * frame.nbytes :])
        samples.append(time.perf_counter_ns() - started)
    return {"bytes_copied": 4 * frame.nbytes + 2 * risk.nbytes, **percentiles_ms(samples)}


def hmac_cost(iterations: int) -> dict:
    from engine.server.protocol import Session

    session = Session("ab" * 32)
    frame = np.zeros(HD_SHAPE, np.uint8)
    risk = np.zeros(HD_SHAPE[:2], np.float32)
    samples = []
    for _ in range(iterations):
        started = time.perf_counter_ns()
        session.sign([b"{}", b"{}", frame, frame])
        session.sign([b"{}", b"{}", frame, risk])
        samples.append(time.perf_counter_ns() - started)
    return {"bytes": 3 * frame.nbytes + risk.nbytes, **percentiles_ms(samples)}


def measure_ping(client, count: int) -> dict:
    for _ in range(100):
        client.ping()
    samples = []
    for _ in range(count):
        started = time.perf_counter_ns()
        client.ping()
        samples.append(time.perf_counter_ns() - started)
    return percentiles_ms(samples)


def measure_synthesize(
    client, iterations: int, *, shared: bool, backend: str, copy: bool = True, in_place: bool = False
) -> dict:
    rng = np.random.default_rng(7)
    frame0 = rng.integers(0, 256, HD_SHAPE, np.uint8)
    frame1 = rng.integers(0, 256, HD_SHAPE, np.uint8)
    if in_place:
        slot0, slot1 = client.input_frames(HD_SHAPE, np.uint8)
        slot0[...], slot1[...] = frame0, frame1
        frame0, frame1 = slot0, slot1
    for _ in range(3):
        client.synthesize(frame0, frame1, ["1/2"], backend=backend, shared=shared, copy=copy)
    walls, models, risk_scores, overheads = [], [], [], []
    for _ in range(iterations):
        started = time.perf_counter_ns()
        (result,) = client.synthesize(frame0, frame1, ["1/2"], backend=backend, shared=shared, copy=copy)
        wall = time.perf_counter_ns() - started
        model = int(client.last_timings_ns.get("model", 0))
        risk_score = int(client.last_timings_ns.get("risk_score", 0))
        walls.append(wall)
        models.append(model)
        risk_scores.append(risk_score)
        overheads.append(wall - model - risk_score)
    if not np.array_equal(result.frame, frame1):  # nearest at t = 1/2 takes the later frame
        raise AssertionError("synthesize with 'nearest' at t = 1/2 did not return frame1")
    return {
        "shared": shared,
        "copy_results": copy,
        "inputs_in_place": in_place,
        "backend": backend,
        "wall": percentiles_ms(walls),
        "model": percentiles_ms(models),
        "risk_score": percentiles_ms(risk_scores),
        "overhead": percentiles_ms(overheads),
    }


def load_test(connection, clients: int, requests: int, timeout_s: float) -> dict:
    from engine.errors import EngineTimeoutError, JobNotFoundError
    from engine.server.client import EngineClient

    kinds = ("ping", "info", "synthesize", "job_status")
    latencies: dict[str, list[int]] = {kind: [] for kind in kinds}
    problems = {"lost": 0, "mixed_up": 0, "other_errors": 0}
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def one_client(number: int) -> None:
        local = {kind: [] for kind in kinds}
        lost = mixed = other = 0
        with EngineClient(connection) as client:
            barrier.wait()
            for index in range(requests):
                kind = kinds[(index + number) % len(kinds)]
                started = time.perf_counter_ns()
                try:
                    if kind == "ping":
                        ok = client.ping(timeout_s=timeout_s)["pid"] == connection.pid
                    elif kind == "info":
                        ok = client.info(timeout_s=timeout_s)["pid"] == connection.pid
                    elif kind == "synthesize":
                        value0, value1 = number * 20, number * 20 + 2 * (index % 2 + 1)
                        frame0 = np.full((48, 64, 3), value0, np.uint8)
                        frame1 = np.full((48, 64, 3), value1, np.uint8)
                        (result,) = client.synthesize(
                            frame0, frame1, ["1/2"], backend="blend", timeout_s=timeout_s
                        )
                        ok = bool(np.all(result.frame == (value0 + value1) // 2))
                    else:
                        job_id = f"missing-{number:02d}-{index:04d}"
                        try:
                            client.job_status(job_id, timeout_s=timeout_s)
                            ok = False
                        except JobNotFoundError as error:
                            ok = job_id in str(error)
                except EngineTimeoutError:
                    lost += 1
                    continue
                except Exception as error:  # noqa: BLE001 - counted and reported, not hidden
                    log.warning("client %d request %d (%s) failed: %s", number, index, kind, error)
                    other += 1
                    continue
                local[kind].append(time.perf_counter_ns() - started)
                mixed += 0 if ok else 1
        with lock:
            for kind in kinds:
                latencies[kind].extend(local[kind])
            problems["lost"] += lost
            problems["mixed_up"] += mixed
            problems["other_errors"] += other

    threads = [threading.Thread(target=one_client, args=(n,)) for n in range(clients)]
    started = time.perf_counter_ns()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed_ns = time.perf_counter_ns() - started
    every = [sample for samples in latencies.values() for sample in samples]
    return {
        "clients": clients,
        "requests_per_client": requests,
        "answered": len(every),
        **problems,
        "wall_s": round(elapsed_ns / 1e9, 3),
        "requests_per_s": round(len(every) / (elapsed_ns / 1e9), 1),
        "all": percentiles_ms(every),
        "per_kind": {kind: percentiles_ms(samples) for kind, samples in latencies.items() if samples},
    }


def _parsed_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure the engine: ping, synthesize overhead at 1080p, concurrent clients.",
        epilog="example:\n  .venv/bin/python bench/engine_load.py --output bench/results/engine_load.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output", type=Path, default=None, help="write the JSON here as well")
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--synth-iterations", type=int, default=30)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--timeout-s", type=float, default=10.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parsed_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="chrono-bench-", dir="/tmp" if os.name != "nt" else None) as home:
        os.environ["CHRONOSCOPE_HOME"] = home
        from engine.server.client import EngineClient
        from engine.server.process import start_engine, stop_engine
        from engine.server.protocol import PROTOCOL_VERSION

        report: dict = {
            "machine": {
                "platform": platform.platform(),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            },
            "protocol_version": PROTOCOL_VERSION,
            "baseline": {
                **baselines(Path(home), args.pings, args.synth_iterations),
                "zmq_echo_small_ipc_other_process": process_baseline(Path(home), args.pings),
            },
            "hmac_sha256_1080p_synthesize_bytes": hmac_cost(args.synth_iterations),
            "memcpy_1080p_exchange_copies": copy_cost(args.synth_iterations),
        }
        connection, _ = start_engine(timeout_s=60)
        try:
            report["transport"] = connection.transport
            with EngineClient(connection) as client:
                report["ping"] = measure_ping(client, args.pings)
                report["synthesize_1080p"] = {
                    "buffers": measure_synthesize(
                        client, args.synth_iterations, shared=False, backend="nearest"
                    ),
                    "exchange": measure_synthesize(
                        client, args.synth_iterations, shared=True, backend="nearest"
                    ),
                    "exchange_views": measure_synthesize(
                        client, args.synth_iterations, shared=True, backend="nearest", copy=False
                    ),
                    "exchange_in_place_views": measure_synthesize(
                        client,
                        args.synth_iterations,
                        shared=True,
                        backend="nearest",
                        copy=False,
                        in_place=True,
                    ),
                }
            report["load"] = load_test(connection, args.clients, args.requests, args.timeout_s)
        finally:
            stop_engine(timeout_s=10, force=True)
    report["targets"] = {
        "ping_p99_under_5_ms": report["ping"]["p99_ms"] < 5.0,
        "synthesize_overhead_p50_under_10_ms": {
            name: report["synthesize_1080p"][name]["overhead"]["p50_ms"] < 10.0
            for name in ("exchange", "exchange_in_place_views")
        },
        "load_loses_nothing": report["load"]["lost"] == 0
        and report["load"]["mixed_up"] == 0
        and report["load"]["other_errors"] == 0,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
