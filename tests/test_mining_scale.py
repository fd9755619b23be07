"""The mining machinery at library scale: near-duplicate search, the process pool, worker
lifetime, Ray addresses, folder scanning with links, and reading a large manifest."""

from __future__ import annotations

import json
import logging
import operator
import os
import random
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from engine.errors import ClusterNotReachableError, UnsupportedOptionError
from engine.mining.dedupe import DHashIndex
from engine.mining.manifest import ManifestWriter, read_manifest, scan_manifest, write_parquet
from engine.mining.runners import InProcessRunner, PoolRunner, check_ray_address, check_ray_reachable
from engine.mining.sources import expand_sources
from engine.mining.stages import dhash_distance
from engine.processes import pid_alive

REPO = Path(__file__).resolve().parent.parent


# -- 3. near-duplicates in about linear time, same answers as the full scan ----------------------


def _library_hashes(count: int, seed: int) -> list[str]:
    """Segments' dHashes: unrelated footage, exact and near copies (bits flipped per frame), parts of
    a longer segment, and fades sharing a black frame (one segment in ten)."""
    rng = random.Random(seed)
    hashes: list[str] = []
    for number in range(count):
        kind = number % 5
        if kind == 1 and hashes:
            words = [int(word, 16) for word in rng.choice(hashes).split("-")]
            words = [word ^ (1 << rng.randrange(64)) ^ (1 << rng.randrange(64)) for word in words]
        elif kind == 2 and hashes:  # a part of a longer segment: frames near a few of its frames
            longer = [int(word, 16) for word in rng.choice(hashes).split("-")][: rng.randrange(2, 5)]
            words = [rng.choice(longer) ^ (1 << rng.randrange(64)) for _ in range(8)]
        elif kind == 4 and hashes:  # the same file copied
            words = [int(word, 16) for word in rng.choice(hashes).split("-")]
        else:
            words = [rng.getrandbits(64) for _ in range(8)]
            if kind == 3 and number % 10 == 3:
                words[-1] = 0  # a fade to black
        hashes.append("-".join(f"{word:016x}" for word in words))
    return hashes


def _full_scan(hashes: list[str], max_bits: float) -> list[str | None]:
    """The quadratic reference: each segment against every one kept before it."""
    kept: list[tuple[str, str]] = []
    answers: list[str | None] = []
    for number, dhash in enumerate(hashes):
        match = next((clip for other, clip in kept if dhash_distance(dhash, other) <= max_bits), None)
        answers.append(match)
        if match is None:
            kept.append((dhash, f"clip-{number}"))
    return answers


def _indexed(hashes: list[str], max_bits: float) -> tuple[list[str | None], DHashIndex]:
    index = DHashIndex(max_bits)
    answers: list[str | None] = []
    for number, dhash in enumerate(hashes):
        match = index.find(dhash)
        answers.append(match)
        if match is None:
            index.add(dhash, f"clip-{number}")
    return answers, index


@pytest.mark.parametrize("max_bits", [0, 3, 6.0, 6.5, 12, 40])
def test_the_index_finds_exactly_what_the_full_scan_finds(max_bits):
    hashes = _library_hashes(400, seed=int(max_bits * 10))
    answers, _ = _indexed(hashes, max_bits)
    assert answers == _full_scan(hashes, max_bits)
    assert sum(answer is not None for answer in answers) > 50


def test_the_index_compares_each_segment_with_few_others():
    hashes = _library_hashes(4000, seed=7)
    started = time.process_time()
    answers, index = _indexed(hashes, 6.0)
    assert index.comparisons < 8 * len(hashes), "near-linear: a handful of exact checks per segment"
    assert time.process_time() - started < 20
    assert sum(answer is not None for answer in answers) >= 2000


# -- 4. the process pool: bounded in-flight window, retries after a worker dies -------------------


def test_the_pool_keeps_a_bounded_window_in_flight_and_returns_every_result():
    runner = PoolRunner(2, retries=0)
    try:
        for number in range(500):
            runner.submit(number, operator.add, number, 1)
        assert runner.pending() == 500
        assert len(runner._pool._pending_work_items) <= runner.window == 8, "tasks wait here, not in the pool"
        values = {}
        while runner.pending():
            done = runner.next_done()
            values[done.token] = done.value
            assert len(runner._pool._pending_work_items) <= runner.window
        assert values == {number: number + 1 for number in range(500)}
    finally:
        runner.close()


def crash_once(marker: str) -> int:
    """A task whose first attempt kills its worker process (a decoder crash)."""
    if not os.path.exists(marker):
        Path(marker).write_text("crashed")
        os._exit(1)
    return 7


def test_a_dead_worker_costs_a_retry_and_the_other_tasks_still_finish(tmp_path, caplog):
    runner = PoolRunner(2, retries=1)
    try:
        runner.submit("crash", crash_once, str(tmp_path / "marker"))
        for number in range(20):
            runner.submit(number, operator.mul, number, 2)
        results = {}
        while runner.pending():
            done = runner.next_done()
            assert done.error is None, done.error
            results[done.token] = done.value
    finally:
        runner.close()
    assert results == {"crash": 7, **{number: number * 2 for number in range(20)}}
    assert "a pool worker process died" in caplog.text


# -- 9. pool workers end with their parent ---------------------------------------------------------

POOL_THEN_WAIT = r"""
import sys, time
from engine.mining.runners import PoolRunner
runner = PoolRunner(2, retries=0)
for _ in range(4):
    runner.submit("sleep", time.sleep, 60)
while len(runner._pool._processes) < 2:
    time.sleep(0.05)
print(" ".join(str(pid) for pid in runner._pool._processes), flush=True)
time.sleep(600)
"""


def test_pool_workers_exit_when_the_run_is_killed():
    parent = subprocess.Popen(
        [sys.executable, "-c", POOL_THEN_WAIT], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(workers) == 2 and all(pid_alive(pid) for pid in workers)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(pid_alive(pid) for pid in workers):
        time.sleep(0.1)
    left = [pid for pid in workers if pid_alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "pool workers outlived the run that started them"


# -- 10. Ray addresses are checked before Ray is started -------------------------------------------


def test_ray_addresses_are_checked_up_front_with_a_bounded_wait():
    for address in ("local", "auto", "10.0.0.5:6379", "ray://head.example:10001", "[::1]:6379"):
        check_ray_address(address)
    for address in ("bogus-address", "host:99999", "http://head:6379", "head:"):
        with pytest.raises(UnsupportedOptionError, match="is not a Ray address; give HOST:PORT"):
            check_ray_address(address)
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        started = time.monotonic()
        with pytest.raises(ClusterNotReachableError, match=f"127.0.0.1:{port}: no Ray cluster answers there"):
            check_ray_reachable(f"127.0.0.1:{port}", timeout_s=5)
    assert time.monotonic() - started < 5


def test_cli_refuses_a_bad_ray_address_before_making_the_dataset(tmp_path, capsys):
    from engine.cli import main

    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.mp4").write_bytes(b"x")
    status = main(["mine", str(tmp_path / "lib"), "--out", str(tmp_path / "ds"), "--ray", "bogus-address"])
    assert status == 2 and "is not a Ray address" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


# -- 11. retry warnings name the task, never its whole record --------------------------------------


class _BigToken:
    def __init__(self) -> None:
        self.row = {"source": "/lib/clip.mp4", "evidence": ["x" * 4000]}

    def __str__(self) -> str:
        return str(self.row)


def _fails(_: int) -> None:
    raise OSError("disk gone\n" + "detail " * 500)


def test_retry_warnings_are_one_short_line(caplog):
    runner = InProcessRunner(retries=2)
    runner.submit(_BigToken(), _fails, 1)
    done = runner.next_done()
    assert done.error is not None
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 2 and all(len(line) < 400 and "\n" not in line for line in warnings), warnings


# -- 12. linked folders are scanned like linked files, loops end, dangling links are logged ---------


def test_folders_follow_links_once_and_log_what_they_skip(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="engine.mining.sources")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "far.mp4").write_bytes(b"x")
    library = tmp_path / "library"
    (library / "sub").mkdir(parents=True)
    (library / "sub" / "near.mp4").write_bytes(b"y")
    (library / "linked-folder").symlink_to(outside)
    (library / "sub" / "loop").symlink_to(library)
    (library / "linked-file.mp4").symlink_to(library / "sub" / "near.mp4")
    (library / "dangling.mp4").symlink_to(tmp_path / "nowhere.mp4")
    found = expand_sources([str(library)])
    assert found == sorted(
        [str((outside / "far.mp4").resolve()), str((library / "sub" / "near.mp4").resolve())]
    )
    assert "dangling.mp4: skipped, a link to" in caplog.text and "which does not exist" in caplog.text
    assert "which is scanned already" in caplog.text
    assert "linked-folder is a link to the folder" in caplog.text


# -- 13. the manifest is read once, keeping only what a run decides with ---------------------------


def test_a_large_manifest_is_scanned_small_and_exported_the_same(tmp_path):
    path = tmp_path / "manifest.jsonl"
    evidence = {"learned": [{"finding": "probe", "value": index / 7, "probe_frames": [index, index + 8]}
                            for index in range(40)]}  # fmt: skip
    with ManifestWriter(path) as writer:
        for number in range(1500):
            writer.append([{
                "row": "segment", "source": f"/lib/{number:05d}.mp4", "content_hash": f"h{number}",
                "run_group": f"g{number}", "file_rows": 1, "segment_index": 0, "accepted": number % 3 == 0,
                "start_frame": 0, "end_frame": 96, "confidence": 0.95, "evidence": evidence,
                "analysis": {"windows": list(range(100))}, "dhash": "0" * 16,
            }])  # fmt: skip
    tracemalloc.start()
    rows = scan_manifest(path)
    scanned_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(rows) == 1500 and "evidence" not in rows[0] and "analysis" not in rows[0]
    assert scanned_bytes < 1500 * 3000, f"{scanned_bytes / 1500:.0f} bytes per row"
    write_parquet(rows, tmp_path / "scanned.parquet", manifest=path)
    write_parquet(read_manifest(path), tmp_path / "whole.parquet")
    scanned = pq.read_table(tmp_path / "scanned.parquet")
    assert scanned.equals(pq.read_table(tmp_path / "whole.parquet"))
    assert json.loads(scanned.column("evidence")[0].as_py()) == evidence
