"""The filesystem object store: atomic commit, offset reads, abort, key rules, crash recovery."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import pytest

from servers.common import errors
from servers.common.storage import StorageSettings, make_object_store
from servers.common.storage import fs as fsmod
from servers.common.storage.fs import PARTIAL_DIR, FilesystemObjectStore

REPO = Path(__file__).resolve().parents[2]
KEY = "datasets/5d066d58-06de-47ab-a2f6-c8f413e21947"


def partials(store: FilesystemObjectStore) -> list[str]:
    return sorted(p.name for p in store.partial_dir.iterdir())


async def put(store, key: str, data: bytes, chunk: int = 1 << 20) -> int:
    writer = await store.open_writer(key)
    for i in range(0, len(data), chunk):
        await writer.write(data[i:i + chunk])
    return await writer.commit()


async def read_all(store, key: str, offset: int = 0, chunk_size: int = 1 << 20) -> bytes:
    return b"".join([c async for c in store.read(key, offset, chunk_size)])


def test_factory_makes_a_filesystem_store(tmp_path):
    store = make_object_store(StorageSettings(backend="filesystem", root=tmp_path / "o"))

    assert isinstance(store, FilesystemObjectStore)
    assert (tmp_path / "o" / PARTIAL_DIR).is_dir()


def test_factory_needs_a_root_for_the_filesystem_backend():
    with pytest.raises(errors.InvalidArgument):
        make_object_store(StorageSettings(backend="filesystem"))


async def test_round_trip_with_mixed_chunk_types(fs_store):
    payload = os.urandom(3 * (1 << 20) + 12345)
    writer = await fs_store.open_writer(KEY)
    await writer.write(payload[:3])  # tiny, buffered
    await writer.write(bytearray(payload[3:700_000]))
    await writer.write(memoryview(payload)[700_000:2_900_000])  # larger than a flush block
    await writer.write(b"")
    await writer.write(payload[2_900_000:])

    size = await writer.commit()

    assert size == len(payload)
    assert await fs_store.size(KEY) == len(payload)
    assert await fs_store.exists(KEY)
    assert await read_all(fs_store, KEY) == payload
    assert (fs_store.root / KEY).read_bytes() == payload
    assert partials(fs_store) == []


async def test_empty_object(fs_store):
    writer = await fs_store.open_writer(KEY)

    assert await writer.commit() == 0
    assert await fs_store.size(KEY) == 0
    assert await read_all(fs_store, KEY) == b""


@pytest.mark.parametrize("offset", [0, 1, 65_535, 65_536, 300_001, 999_999, 1_000_000])
async def test_read_from_offset(fs_store, offset):
    payload = os.urandom(1_000_000)
    await put(fs_store, KEY, payload)

    chunks = [c async for c in fs_store.read(KEY, offset, chunk_size=65_536)]

    assert b"".join(chunks) == payload[offset:]
    assert all(0 < len(c) <= 65_536 for c in chunks)


async def test_read_argument_errors(fs_store):
    await put(fs_store, KEY, b"0123456789")

    with pytest.raises(errors.InvalidArgument, match="past the end"):
        await read_all(fs_store, KEY, offset=11)
    with pytest.raises(errors.InvalidArgument):
        await read_all(fs_store, KEY, offset=-1)
    with pytest.raises(errors.InvalidArgument):
        await read_all(fs_store, KEY, chunk_size=0)


async def test_missing_object(fs_store):
    with pytest.raises(errors.NotFound):
        await read_all(fs_store, KEY)
    with pytest.raises(errors.NotFound):
        await fs_store.size(KEY)
    assert not await fs_store.exists(KEY)
    await fs_store.delete(KEY)  # not an error


async def test_a_directory_is_not_an_object(fs_store):
    await put(fs_store, KEY, b"x")

    assert not await fs_store.exists("datasets")
    with pytest.raises(errors.NotFound):
        await read_all(fs_store, "datasets")


async def test_nothing_visible_before_commit(fs_store):
    writer = await fs_store.open_writer(KEY)
    await writer.write(os.urandom(3 << 20))

    assert not await fs_store.exists(KEY)
    with pytest.raises(errors.NotFound):
        await read_all(fs_store, KEY)
    assert len(partials(fs_store)) == 1

    await writer.commit()
    assert await fs_store.exists(KEY)


async def test_abort_leaves_nothing_and_is_idempotent(fs_store):
    writer = await fs_store.open_writer(KEY)
    await writer.write(os.urandom(3 << 20))
    await writer.write(b"buffered tail")

    await writer.abort()
    await writer.abort()

    assert not await fs_store.exists(KEY)
    assert partials(fs_store) == []
    assert not (fs_store.root / "datasets").exists()
    with pytest.raises(errors.FailedPrecondition):
        await writer.write(b"more")
    with pytest.raises(errors.FailedPrecondition):
        await writer.commit()


async def test_abort_after_commit_keeps_the_object(fs_store):
    writer = await fs_store.open_writer(KEY)
    await writer.write(b"kept")
    await writer.commit()

    await writer.abort()

    assert await read_all(fs_store, KEY) == b"kept"


async def test_commit_replaces_an_existing_object(fs_store):
    await put(fs_store, KEY, b"old bytes")

    await put(fs_store, KEY, b"new")

    assert await read_all(fs_store, KEY) == b"new"


async def test_delete(fs_store):
    await put(fs_store, KEY, b"gone soon")

    await fs_store.delete(KEY)

    assert not await fs_store.exists(KEY)


@pytest.mark.parametrize(
    "key",
    ["", "/datasets/x", "../x", "datasets/../x", "datasets/..", "a//b", "datasets/", ".partial/x",
     "datasets/.hidden", "a\\b", "a b", "datasets/x\x00", "datasets/x\n", "é", "x" * 256, "a/" + "x" * 256, "x/" * 256 + "x"],
)
async def test_bad_keys_are_refused(fs_store, key):
    with pytest.raises(errors.InvalidArgument):
        await fs_store.open_writer(key)
    with pytest.raises(errors.InvalidArgument):
        await read_all(fs_store, key)
    with pytest.raises(errors.InvalidArgument):
        await fs_store.size(key)
    with pytest.raises(errors.InvalidArgument):
        await fs_store.delete(key)
    assert partials(fs_store) == []


@pytest.mark.parametrize("key", [KEY, "models/m1/v2.onnx", "a", "x" * 255 + "/" + "y" * 255, "Data_1.tar.gz"])
async def test_good_keys(fs_store, key):
    await put(fs_store, key, b"ok")

    assert await read_all(fs_store, key) == b"ok"


async def test_a_key_that_clashes_with_an_object_path(fs_store):
    await put(fs_store, "datasets/a", b"file")

    writer = await fs_store.open_writer("datasets/a/b")
    await writer.write(b"x")
    with pytest.raises(errors.InvalidArgument):
        await writer.commit()

    assert partials(fs_store) == []
    assert await read_all(fs_store, "datasets/a") == b"file"


async def test_disk_full_is_resource_exhausted_and_cleans_up(fs_store, monkeypatch):
    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fsmod, "_write_all", full)
    writer = await fs_store.open_writer(KEY)

    with pytest.raises(errors.ResourceExhausted):
        await writer.write(os.urandom(2 << 20))

    assert partials(fs_store) == []
    assert not await fs_store.exists(KEY)
    await writer.abort()  # safe after a failure


async def test_cancelled_write_then_abort_leaves_nothing(fs_store, monkeypatch):
    real = fsmod._write_all
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow(fd, data):
        loop.call_soon_threadsafe(started.set)
        import time

        time.sleep(0.2)
        real(fd, data)  # still runs after the caller was cancelled: must hit our fd, not a reused one

    monkeypatch.setattr(fsmod, "_write_all", slow)
    writer = await fs_store.open_writer(KEY)
    task = asyncio.create_task(writer.write(os.urandom(2 << 20)))
    await started.wait()

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await writer.abort()

    assert partials(fs_store) == []
    assert not await fs_store.exists(KEY)


async def test_memory_stays_flat_for_a_large_object(fs_store):
    block = os.urandom(1 << 20)
    writer = await fs_store.open_writer(KEY)
    tracemalloc.start()
    try:
        for _ in range(64):
            await writer.write(block)
        await writer.commit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert await fs_store.size(KEY) == 64 << 20
    assert peak < 4 << 20, f"peak {peak} bytes while writing 64 MiB"


def test_opening_sweeps_dead_partials_but_not_live_ones(tmp_path):
    store = FilesystemObjectStore(tmp_path)
    dead = store.partial_dir / "upload-dead"
    dead.write_bytes(b"left by a crashed process")
    (store.partial_dir / "a-directory").mkdir()  # not a partial: left alone, no crash
    live = store.partial_dir / "upload-live"
    live.write_bytes(b"someone is writing this")
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        reopened = FilesystemObjectStore(tmp_path)

        assert reopened.swept == 1
        assert partials(reopened) == ["a-directory", "upload-live"]
    finally:
        os.close(fd)
    assert FilesystemObjectStore(tmp_path).swept == 1
    assert partials(store) == ["a-directory"]


CHILD = textwrap.dedent(
    """
    import asyncio, os, sys
    from servers.common.storage.fs import FilesystemObjectStore

    async def main():
        store = FilesystemObjectStore(sys.argv[1])
        writer = await store.open_writer(sys.argv[2])
        block = os.urandom(1 << 20)
        written = 0
        while True:  # never commits: killed mid-write
            await writer.write(block)
            written += 1
            if written == 4:
                print("writing", flush=True)

    asyncio.run(main())
    """
)


async def test_sigkill_mid_write_leaves_nothing_visible_and_next_open_cleans(tmp_path):
    root = tmp_path / "objects"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), KEY],
        stdout=subprocess.PIPE, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 30)
        assert line == b"writing\n", line
        # A store opened while the writer lives must not take its partial file away.
        assert FilesystemObjectStore(root).swept == 0
        assert len(partials(FilesystemObjectStore(root))) == 1
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert not (root / KEY).exists()
    assert len(list((root / PARTIAL_DIR).glob("upload-*"))) == 1  # the dead upload's bytes

    store = FilesystemObjectStore(root)

    assert store.swept == 1
    assert partials(store) == []
    assert not await store.exists(KEY)
    with pytest.raises(errors.NotFound):
        await read_all(store, KEY)


async def test_concurrent_uploads_to_distinct_keys(fs_store):
    payloads = {f"datasets/{i}": os.urandom(1_500_000 + i) for i in range(4)}

    sizes = await asyncio.gather(*(put(fs_store, k, v, chunk=300_000) for k, v in payloads.items()))

    assert sizes == [len(v) for v in payloads.values()]
    for key, value in payloads.items():
        assert hashlib.sha256(await read_all(fs_store, key)).digest() == hashlib.sha256(value).digest()


async def test_open_writer_cancelled_midway_leaves_no_partial(fs_store, monkeypatch):
    real = FilesystemObjectStore._create_partial
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow(self):
        loop.call_soon_threadsafe(started.set)
        import time

        time.sleep(0.2)
        return real(self)

    monkeypatch.setattr(FilesystemObjectStore, "_create_partial", slow)
    task = asyncio.create_task(fs_store.open_writer(KEY))
    await started.wait()

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.4)  # the thread finishes creating the file; its callback removes it

    assert partials(fs_store) == []
