"""The S3 object store against moto in server mode (real HTTP; no MinIO server is installable here).

boto3 (installed with moto) looks at the bucket independently of the adapter under test.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tracemalloc

import boto3
import pytest
import urllib3

from servers.common import errors
from servers.common.storage import make_object_store
from servers.common.storage.s3 import S3ObjectStore
from servers.devstack import procs
from tests.fixtures.postgres import moto_settings

MIB = 1 << 20
KEY = "datasets/5d066d58-06de-47ab-a2f6-c8f413e21947"


def s3_client(settings):
    return boto3.client(
        "s3",
        endpoint_url=f"http://{settings.endpoint}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def open_multipart_uploads(settings) -> list[dict]:
    return s3_client(settings).list_multipart_uploads(Bucket=settings.bucket).get("Uploads", [])


def pattern(size: int) -> bytes:
    """Deterministic, non-repeating-per-MiB bytes (so a misplaced part shows)."""
    return b"".join(hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(size // 32 + 1))[:size]


async def put(store, key: str, data: bytes, chunk: int = MIB):
    writer = await store.open_writer(key)
    for i in range(0, len(data), chunk):
        await writer.write(data[i:i + chunk])
    size = await writer.commit()
    return writer, size


async def read_all(store, key: str, offset: int = 0, chunk_size: int = MIB) -> bytes:
    return b"".join([c async for c in store.read(key, offset, chunk_size)])


async def test_factory_makes_an_s3_store_and_creates_the_bucket(s3_store, s3_settings):
    assert isinstance(s3_store, S3ObjectStore)
    assert s3_settings.bucket not in [b["Name"] for b in s3_client(s3_settings).list_buckets()["Buckets"]]

    await s3_store.open_writer(KEY)

    s3_client(s3_settings).head_bucket(Bucket=s3_settings.bucket)  # raises if missing


async def test_multipart_round_trip_of_40_mib(s3_store, s3_settings):
    payload = pattern(40 * MIB)

    writer, size = await put(s3_store, KEY, payload, chunk=MIB + 7)  # chunks straddle part boundaries

    assert size == 40 * MIB
    assert writer.upload_id is not None
    assert len(writer._parts) == 8
    head = s3_client(s3_settings).head_object(Bucket=s3_settings.bucket, Key=KEY)
    assert head["ContentLength"] == 40 * MIB
    assert head["ETag"].strip('"').endswith("-8")  # S3's multipart ETag: <md5 of md5s>-<parts>
    assert await s3_store.size(KEY) == 40 * MIB
    assert hashlib.sha256(await read_all(s3_store, KEY)).hexdigest() == hashlib.sha256(payload).hexdigest()
    assert open_multipart_uploads(s3_settings) == []


async def test_small_and_exactly_one_part_objects_use_a_single_put(s3_store, s3_settings):
    one_part = pattern(5 * MIB)

    small_writer, small_size = await put(s3_store, "datasets/small", b"hello")
    part_writer, part_size = await put(s3_store, "datasets/one-part", one_part)

    assert (small_size, part_size) == (5, 5 * MIB)
    assert small_writer.upload_id is None and part_writer.upload_id is None
    assert await read_all(s3_store, "datasets/small") == b"hello"
    assert await read_all(s3_store, "datasets/one-part") == one_part


async def test_empty_object(s3_store):
    _, size = await put(s3_store, KEY, b"")

    assert size == 0
    assert await s3_store.size(KEY) == 0
    assert await read_all(s3_store, KEY) == b""
    assert await read_all(s3_store, KEY, offset=0) == b""


async def test_ranged_reads(s3_store):
    payload = pattern(11 * MIB + 3)
    await put(s3_store, KEY, payload)

    for offset in (0, 1, 5 * MIB - 1, 5 * MIB, 10 * MIB + 1, len(payload) - 1, len(payload)):
        chunks = [c async for c in s3_store.read(KEY, offset, chunk_size=256 * 1024)]
        assert b"".join(chunks) == payload[offset:], offset
        assert all(0 < len(c) <= 256 * 1024 for c in chunks)

    with pytest.raises(errors.InvalidArgument, match="past the end"):
        await read_all(s3_store, KEY, offset=len(payload) + 1)
    with pytest.raises(errors.InvalidArgument):
        await read_all(s3_store, KEY, offset=-1)


async def test_a_reader_may_stop_early(s3_store):
    await put(s3_store, KEY, pattern(3 * MIB))

    stream = s3_store.read(KEY, 0, chunk_size=64 * 1024)
    first = await anext(stream)
    await stream.aclose()

    assert len(first) == 64 * 1024
    assert await s3_store.size(KEY) == 3 * MIB  # the pool is still usable


async def test_missing_object(s3_store):
    await s3_store.open_writer(KEY)  # bucket exists, object does not

    with pytest.raises(errors.NotFound):
        await read_all(s3_store, KEY)
    with pytest.raises(errors.NotFound):
        await s3_store.size(KEY)
    assert not await s3_store.exists(KEY)
    await s3_store.delete(KEY)


async def test_missing_bucket_reads_as_missing_object(s3_store):
    with pytest.raises(errors.NotFound):
        await read_all(s3_store, KEY)
    assert not await s3_store.exists(KEY)
    await s3_store.delete(KEY)


async def test_nothing_visible_before_commit(s3_store, s3_settings):
    writer = await s3_store.open_writer(KEY)
    for _ in range(12):
        await writer.write(pattern(MIB))

    assert writer.upload_id is not None  # two parts are on the server already
    assert not await s3_store.exists(KEY)
    assert [u["UploadId"] for u in open_multipart_uploads(s3_settings)] == [writer.upload_id]

    await writer.commit()
    assert await s3_store.exists(KEY)
    assert open_multipart_uploads(s3_settings) == []


async def test_abort_aborts_the_multipart_upload(s3_store, s3_settings):
    writer = await s3_store.open_writer(KEY)
    for _ in range(12):
        await writer.write(pattern(MIB))
    assert len(open_multipart_uploads(s3_settings)) == 1

    await writer.abort()
    await writer.abort()

    assert open_multipart_uploads(s3_settings) == []
    assert not await s3_store.exists(KEY)
    with pytest.raises(errors.FailedPrecondition):
        await writer.write(b"more")
    with pytest.raises(errors.FailedPrecondition):
        await writer.commit()


async def test_abort_of_a_small_upload_stores_nothing(s3_store, s3_settings):
    writer = await s3_store.open_writer(KEY)
    await writer.write(b"never stored")

    await writer.abort()

    assert not await s3_store.exists(KEY)
    assert s3_client(s3_settings).list_objects_v2(Bucket=s3_settings.bucket).get("KeyCount") == 0


async def test_abort_after_commit_keeps_the_object(s3_store):
    writer, _ = await put(s3_store, KEY, b"kept")

    await writer.abort()

    assert await read_all(s3_store, KEY) == b"kept"


async def test_a_failed_part_aborts_the_multipart_upload(s3_store, s3_settings, monkeypatch):
    real = s3_store.client._upload_part

    def flaky(bucket, key, data, headers, upload_id, part_number):
        if part_number == 2:
            raise urllib3.exceptions.ProtocolError("connection reset by peer")
        return real(bucket, key, data, headers, upload_id, part_number)

    monkeypatch.setattr(s3_store.client, "_upload_part", flaky)
    writer = await s3_store.open_writer(KEY)

    with pytest.raises(errors.Unavailable):
        for _ in range(16):
            await writer.write(pattern(MIB))

    assert open_multipart_uploads(s3_settings) == []
    assert not await s3_store.exists(KEY)
    await writer.abort()  # safe after a failure


async def test_commit_replaces_and_delete_removes(s3_store):
    await put(s3_store, KEY, b"old")
    await put(s3_store, KEY, b"new")
    assert await read_all(s3_store, KEY) == b"new"

    await s3_store.delete(KEY)

    assert not await s3_store.exists(KEY)


@pytest.mark.parametrize("key", ["", "/abs", "../x", "datasets/../x", "a//b", ".partial/x", "a b"])
async def test_bad_keys_are_refused(s3_store, key):
    with pytest.raises(errors.InvalidArgument):
        await s3_store.open_writer(key)
    with pytest.raises(errors.InvalidArgument):
        await read_all(s3_store, key)
    with pytest.raises(errors.InvalidArgument):
        await s3_store.size(key)


async def test_unreachable_endpoint_is_unavailable():
    store = make_object_store(moto_settings(f"127.0.0.1:{procs.free_port()}"))
    try:
        with pytest.raises(errors.Unavailable, match="cannot be reached"):
            await store.open_writer(KEY)
        with pytest.raises(errors.Unavailable):
            await store.size(KEY)
    finally:
        await store.close()


@pytest.fixture(scope="module")
def moto_process_endpoint(tmp_path_factory):
    """moto in its own process: it keeps every uploaded byte in memory, which would swamp a
    measurement of this process's memory if it ran in a thread here."""
    port = procs.free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    proc = procs.start("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                       log_path=log)
    try:
        procs.wait_until(proc, lambda: procs.port_open("127.0.0.1", port), timeout=30, what="listening")
        yield f"127.0.0.1:{port}"
    finally:
        procs.stop(proc)


async def test_upload_memory_stays_below_three_parts(moto_process_endpoint):
    settings = moto_settings(moto_process_endpoint, part_size=5 * MIB)
    store = make_object_store(settings)
    block = os.urandom(MIB)  # reused, allocated before measuring
    try:
        writer = await store.open_writer(KEY)
        tracemalloc.start()
        try:
            for _ in range(40):
                await writer.write(block)
            size = await writer.commit()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

        assert size == 40 * MIB
        assert len(writer._parts) == 8
        assert peak < 3 * settings.part_size, f"peak {peak / MIB:.1f} MiB for a 40 MiB upload"
        assert await store.size(KEY) == 40 * MIB
    finally:
        await store.close()
