"""Sources on object storage through fsspec: real ``memory://`` and ``file://`` file systems, no mocks.

``memory://`` is fsspec's in-process store: it behaves like a bucket (prefixes, globs, streams
without a local path), so mining from it exercises listing, the stream hash and the local cache.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import fsspec
import pytest

from engine.cli import main
from engine.errors import MediaNotFoundError, StorageNotAvailableError, UnsupportedOptionError
from engine.mining import MineOptions, content_hash, expand_sources, mine, read_manifest
from engine.mining.manifest import joined_segments
from engine.mining.mixed import build_mixed_folder
from engine.mining.storage import CachePolicy, cache_key, cache_name, host_tag, local_copy, object_suffix

REPO = Path(__file__).resolve().parent.parent
GATE = 0.9


@pytest.fixture
def bucket():
    """A fresh memory:// prefix, removed afterwards (the store is global to the process)."""
    fs = fsspec.filesystem("memory")
    prefix = f"/bucket-{uuid.uuid4().hex[:8]}"
    yield fs, prefix
    if fs.exists(prefix):
        fs.rm(prefix, recursive=True)


def test_urls_expand_by_prefix_glob_object_and_list(bucket, tmp_path):
    fs, prefix = bucket
    for name in ("a/one.mp4", "a/deep/two.MOV", "a/notes.txt", "b/three.bin"):
        fs.pipe(f"{prefix}/{name}", name.encode())
    base = f"memory://{prefix}"
    assert expand_sources([f"{base}/a"]) == [
        f"memory://{prefix}/a/deep/two.MOV",
        f"memory://{prefix}/a/one.mp4",
    ]
    assert expand_sources([f"{base}/**/*.bin"]) == [f"memory://{prefix}/b/three.bin"]
    assert expand_sources([f"{base}/a/notes.txt"]) == [f"memory://{prefix}/a/notes.txt"]
    listing = tmp_path / "list.txt"
    listing.write_text(f"# objects\n{base}/a/one.mp4\n{base}/b/*.bin\n{base}/a/one.mp4\n")
    assert expand_sources([f"@{listing}"]) == [
        f"memory://{prefix}/a/one.mp4",
        f"memory://{prefix}/b/three.bin",
    ]
    fs.pipe(f"{prefix}/lists/new.txt", f"{base}/a/one.mp4\n".encode())
    assert expand_sources([f"@{base}/lists/new.txt"]) == [f"memory://{prefix}/a/one.mp4"]


def test_file_urls_are_listed_through_fsspec_and_become_local_paths(tmp_path):
    (tmp_path / "x").mkdir()
    clip = tmp_path / "x" / "one.mp4"
    clip.write_bytes(b"data")
    assert expand_sources([f"file://{tmp_path}/x/*.mp4"]) == [str(clip.resolve())]
    assert expand_sources([f"file://{tmp_path}"]) == [str(clip.resolve())]
    assert content_hash(expand_sources([f"file://{clip}"])[0]) == content_hash(clip)


def test_urls_that_name_nothing_or_cannot_be_read_are_clear_errors(bucket):
    fs, prefix = bucket
    fs.pipe(f"{prefix}/a.mp4", b"x")
    with pytest.raises(MediaNotFoundError, match="matches no object"):
        expand_sources([f"memory://{prefix}/*.mov"])
    with pytest.raises(MediaNotFoundError, match="names no object"):
        expand_sources([f"memory://{prefix}/missing.mp4"])
    with pytest.raises(StorageNotAvailableError, match="known protocols: .*memory"):
        expand_sources(["nosuchstore://bucket/a.mp4"])
    try:
        import s3fs  # noqa: F401
    except ImportError:
        with pytest.raises(StorageNotAvailableError, match="pip install s3fs"):
            expand_sources(["s3://bucket/prefix/*.mp4"])


def test_stream_hash_sees_both_ends_of_an_object_and_is_stable(bucket):
    fs, prefix = bucket
    data = bytearray(3 << 20)
    fs.pipe(f"{prefix}/big.mp4", bytes(data))
    url = f"memory://{prefix}/big.mp4"
    first = content_hash(url)
    assert first.startswith("fast-sha256:") and content_hash(url) == first
    data[-1] = 1
    fs.pipe(f"{prefix}/big.mp4", bytes(data))
    assert content_hash(url) != first


def test_local_copy_is_complete_renamed_and_removed_unless_kept(bucket, tmp_path):
    fs, prefix = bucket
    payload = os.urandom(5 << 20)
    fs.pipe(f"{prefix}/clip.mp4", payload)
    url = f"memory://{prefix}/clip.mp4"
    digest = content_hash(url)
    cache = tmp_path / "cache"
    with local_copy(url, digest, CachePolicy(str(cache))) as path:
        assert path.suffix == ".mp4" and path.read_bytes() == payload
        assert list(cache.iterdir()) == [path], "only the finished copy, no temporary, is left"
    assert list(cache.iterdir()) == []
    with local_copy(url, digest, CachePolicy(str(cache), keep=True)) as kept:
        pass
    assert kept.read_bytes() == payload
    stamp = kept.stat().st_mtime_ns
    with local_copy(url, digest, CachePolicy(str(cache), keep=True)) as again:
        assert again == kept and again.stat().st_mtime_ns == stamp, "a kept copy is reused"
    with (
        pytest.raises(FileNotFoundError),
        local_copy(f"memory://{prefix}/gone.mp4", "h", CachePolicy(str(cache))),
    ):
        pass
    assert list(cache.iterdir()) == [kept], "a failed download leaves nothing behind"


# A task killed inside local_copy: the first while it decodes its copy (not kept), the second half
# way through the download of a copy to keep (its store dies with it after the first chunk).
KILLED_WHILE_DECODING = r"""
import os, signal, sys
import fsspec
from engine.mining.storage import CachePolicy, local_copy
fsspec.filesystem("memory").pipe("/killed/clip.mp4", b"x" * (3 << 20))
with local_copy("memory://killed/clip.mp4", "h1", CachePolicy(sys.argv[1], keep=False)) as path:
    assert path.stat().st_size == 3 << 20
    os.kill(os.getpid(), signal.SIGKILL)
"""
KILLED_WHILE_DOWNLOADING = r"""
import io, os, signal, sys
import fsspec
from fsspec.implementations.memory import MemoryFileSystem
from engine.mining import storage
from engine.mining.storage import CachePolicy, local_copy

class DyingStream(io.BytesIO):
    def read(self, size=-1):
        if self.tell() > 0:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().read(size)

class DyingStore(MemoryFileSystem):
    protocol = "dying"

    @classmethod
    def _strip_protocol(cls, path):
        return super()._strip_protocol(path.removeprefix("dying://"))

    def _open(self, path, mode="rb", **kwargs):
        if mode != "rb":
            return super()._open(path, mode, **kwargs)
        return DyingStream(self.cat_file(path))

fsspec.register_implementation("dying", DyingStore, clobber=True)
storage.COPY_CHUNK_BYTES = 1 << 20
fsspec.filesystem("dying").pipe("/killed/big.mov", b"y" * (3 << 20))
with local_copy("dying://killed/big.mov", "h2", CachePolicy(sys.argv[1], keep=True)):
    raise AssertionError("the download was meant to die half way")
"""


def _run_killed_task(code: str, cache: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-c", code, str(cache)], cwd=REPO, capture_output=True, timeout=120
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()


def test_copies_and_partial_downloads_of_killed_tasks_are_removed_by_the_next_local_copy(
    bucket, tmp_path, caplog
):
    cache = tmp_path / "cache"
    cache.mkdir()
    host = re.escape(host_tag())
    _run_killed_task(KILLED_WHILE_DECODING, cache)
    (copy,) = cache.iterdir()
    assert re.fullmatch(rf"[0-9a-f]{{24}}-{host}-[0-9]+-[0-9a-f]{{8}}\.mp4", copy.name), copy.name
    assert copy.stat().st_size == 3 << 20, "the killed task's full copy is left behind"
    _run_killed_task(KILLED_WHILE_DOWNLOADING, cache)
    (partial,) = cache.iterdir()
    assert re.fullmatch(rf"\.[0-9a-f]{{24}}\.partial-{host}-[0-9]+-[0-9a-f]{{8}}\.mov", partial.name), (
        "the next task removed the copy; its own partial download is left"
    )

    # What a sweep must leave alone: a running process's copy, another host's, a kept copy, and a
    # file that is not ours.
    running = cache / f"{'a' * 24}-{host_tag()}-{os.getppid()}-0123abcd.mp4"
    other_host = cache / copy.name.replace(f"-{host_tag()}-", "-another.node-")
    kept_elsewhere = cache / f"{'b' * 24}.mp4"
    unrelated = cache / "notes.txt"
    for path in (running, other_host, kept_elsewhere, unrelated):
        path.write_bytes(b"stays")

    fs, prefix = bucket
    payload = os.urandom(1 << 20)
    fs.pipe(f"{prefix}/next.mov", payload)
    caplog.set_level(logging.INFO, logger="engine.mining.storage")
    with local_copy(f"memory://{prefix}/next.mov", "h3", CachePolicy(str(cache), keep=True)) as kept:
        assert kept.read_bytes() == payload
    removed = [record.getMessage() for record in caplog.records if record.getMessage().startswith("removed ")]
    assert len(removed) == 1 and partial.name in removed[0] and "which is gone" in removed[0], removed
    assert sorted(path.name for path in cache.iterdir()) == sorted(
        [kept.name, running.name, other_host.name, kept_elsewhere.name, unrelated.name]
    )


def test_a_retried_download_reuses_nothing_half_written(bucket, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    _run_killed_task(KILLED_WHILE_DOWNLOADING, cache)
    (partial,) = cache.iterdir()
    assert partial.name.startswith(".") and 0 < partial.stat().st_size < 3 << 20
    fs, prefix = bucket
    fs.pipe(f"{prefix}/killed/big.mov", b"y" * (3 << 20))
    # The same object and content hash the killed task was fetching, now from a store that works.
    url = f"memory://{prefix}/killed/big.mov"
    kept = cache / f"{cache_key(url, 'h2')}.mov"
    with local_copy(url, "h2", CachePolicy(str(cache), keep=True)) as path:
        assert path == kept and path.stat().st_size == 3 << 20
    assert list(cache.iterdir()) == [kept]


def test_cache_names_take_the_suffix_from_the_path_of_the_object_only():
    assert object_suffix("https://host/v.MP4?sig=abc&X-Amz-Expires=3600#t=3") == ".mp4"
    assert object_suffix("s3://bucket/a.b/clip.mov?versionId=3") == ".mov"
    assert object_suffix("zip://inner/a.mp4::s3://bucket/x.zip") == ".mp4", "the outer URL names the object"
    assert object_suffix("simplecache::s3://bucket/x.mkv") == ".mkv"
    assert object_suffix("gs://bucket/no-suffix") == ""
    assert object_suffix("gs://bucket/odd.mp4;v=1") == ""
    assert object_suffix("https://host/folder.d/?download=1") == ""
    assert object_suffix("https://host.com") == "" and object_suffix("https://host.com?x=1.mp4") == ""


def test_leftovers_of_objects_without_suffix_on_a_dotted_host_are_swept(tmp_path, monkeypatch):
    """A host name with dots and an object with no extension: the partial download's name must
    still be recognised as this host's, so a killed task's leftovers go."""
    from engine.mining import storage

    monkeypatch.setattr(storage, "host_tag", lambda: "node1.example.org")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    key = "b" * 24
    leftovers = [
        tmp_path / f".{key}.partial-node1.example.org-{gone.pid}-0123abcd",
        tmp_path / f"{key}-node1.example.org-{gone.pid}-0123abcd",
    ]
    for path in leftovers:
        path.write_bytes(b"x" * 10)
    other_host = tmp_path / f"{key}-node2.example.org-{gone.pid}-0123abcd"
    other_host.write_bytes(b"x")
    assert storage.sweep_stale_copies(tmp_path) == 2
    assert not any(path.exists() for path in leftovers) and other_host.exists()
    # The partial download _download writes for such an object carries a name the sweep knows.
    fs = fsspec.filesystem("memory")
    source = f"memory://bucket-{uuid.uuid4().hex[:6]}/obj"
    fs.pipe(source, b"payload")
    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(
        storage.os, "replace", lambda src, dst: (renamed.append(Path(src).name), real_replace(src, dst))
    )
    destination = tmp_path / f"{key}-{storage._owner_tag()}"
    storage._download(source, destination, key)
    assert destination.read_bytes() == b"payload"
    assert len(renamed) == 1 and storage.OWNED_NAME.match(renamed[0]), renamed
    name = cache_name("https://host/v.mp4?sig=abc", "fast-sha256:00")
    assert re.fullmatch(r"[0-9a-f]{24}\.mp4", name), name
    chained = f"simplecache::memory://bucket-{uuid.uuid4().hex[:6]}/x.mov"
    assert object_suffix(chained) == Path(fsspec.core.url_to_fs(chained)[1]).suffix


@pytest.fixture(scope="module")
def small_library(tmp_path_factory, shared_clips):
    """A real-time clip, a genuine 240 fps render played at 30, and a truncated MP4."""
    folder = tmp_path_factory.mktemp("library")
    truth = build_mixed_folder(shared_clips, folder, real_clips=("sam2-juggle.mp4",), render_seeds=(11,))
    keep = {"realtime", "genuine_played_slow", "corrupt"}
    for item in truth:
        if item.kind not in keep:
            (folder / item.name).unlink()
    return folder


def _summary_of(rows: list[dict]) -> set[tuple]:
    return {
        (
            Path(row["source"]).name,
            row["row"],
            row.get("start_frame"),
            row.get("end_frame"),
            row.get("class"),
            row.get("accepted"),
            row.get("status"),
        )
        for row in rows
        if row["row"] in ("segment", "file")
    }


def test_mining_from_memory_storage_matches_mining_the_same_files_by_file_url(
    small_library, bucket, tmp_path
):
    fs, prefix = bucket
    for path in sorted(small_library.rglob("*.mp4")):
        fs.pipe(f"{prefix}/{path.relative_to(small_library).as_posix()}", path.read_bytes())
    cache = tmp_path / "cache"
    remote_out = tmp_path / "remote"
    summary = mine(
        MineOptions(
            [f"memory://{prefix}"],
            remote_out,
            extract=True,
            min_confidence=GATE,
            progress=False,
            cache_dir=cache,
        )
    )
    local_out = tmp_path / "local"
    mine(MineOptions([f"file://{small_library}"], local_out, min_confidence=GATE, progress=False))
    remote_rows = read_manifest(remote_out / "manifest.jsonl")
    local_rows = read_manifest(local_out / "manifest.jsonl")
    assert all(row["source"].startswith(f"memory://{prefix}/") for row in remote_rows)
    assert all(row["source"].startswith(str(small_library.resolve())) for row in local_rows)
    assert _summary_of(remote_rows) == _summary_of(local_rows)
    accepted = [row for row in joined_segments(remote_rows) if row["row"] == "segment" and row["accepted"]]
    assert {Path(row["source"]).name for row in accepted} == {"render11-240fps-played30.mp4"}
    assert summary.clips_written == len(accepted) and all(
        (remote_out / row["clip"]).is_file() for row in accepted
    )
    broken = next(row for row in remote_rows if row["row"] == "file")
    assert broken["status"] == "corrupt" and broken["reason"].startswith(
        f"memory://{prefix}/broken/truncated.mp4"
    )
    assert all(row["task"]["fetch_s"] >= 0 for row in remote_rows if row["row"] == "segment")
    assert list(cache.iterdir()) == [], "copies are removed after use without --keep-cache"

    again = mine(MineOptions([f"memory://{prefix}"], remote_out, min_confidence=GATE, progress=False))
    assert again.files_skipped == 3 and again.files_mined == 0, "the stream hash lets a run resume"


def test_keep_cache_keeps_one_copy_per_object(small_library, bucket, tmp_path):
    fs, prefix = bucket
    source = small_library / "realtime" / "sam2-juggle.mp4"
    fs.pipe(f"{prefix}/clip.mp4", source.read_bytes())
    cache = tmp_path / "cache"
    status = main(
        [
            "mine",
            f"memory://{prefix}/*.mp4",
            "--out",
            str(tmp_path / "ds"),
            "--min-confidence",
            "0.9",
            "--cache-dir",
            str(cache),
            "--keep-cache",
            "--json",
        ]
    )
    assert status == 0
    kept = list(cache.iterdir())
    assert len(kept) == 1 and kept[0].read_bytes() == source.read_bytes()


def test_memory_urls_are_refused_for_worker_processes_and_empty_globs_by_the_cli(bucket, tmp_path, capsys):
    fs, prefix = bucket
    fs.pipe(f"{prefix}/a.mp4", b"x")
    with pytest.raises(UnsupportedOptionError, match="worker processes cannot see"):
        mine(MineOptions([f"memory://{prefix}"], tmp_path / "ds", workers=2, progress=False))
    assert main(["mine", f"memory://{prefix}/*.mov", "--out", str(tmp_path / "ds2")]) == 2
    assert "matches no object" in capsys.readouterr().err
