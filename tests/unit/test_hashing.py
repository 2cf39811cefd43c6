"""Hashing while streaming."""

import hashlib
import os

from servers.common import hashing


async def _aiter(items):
    for item in items:
        yield item


async def test_dual_hasher_matches_hashlib_for_small_and_large_blocks():
    data = [os.urandom(10), os.urandom(200_000), b"", os.urandom(3)]
    h = hashing.DualHasher()
    for block in data:
        await h.update(block)
    whole = b"".join(data)
    assert (h.md5, h.sha256, h.size) == (hashlib.md5(whole).hexdigest(), hashlib.sha256(whole).hexdigest(), len(whole))


async def test_blocks_coalesce_small_chunks_and_keep_every_byte():
    chunks = [os.urandom(1000) for _ in range(50)] + [os.urandom(5000)]
    out = [b async for b in hashing.blocks(_aiter(chunks), block_bytes=4096)]
    assert b"".join(out) == b"".join(chunks)
    assert all(len(b) >= 4096 for b in out[:-1])
    assert all(len(b) < 4096 + 5000 for b in out)


async def test_blocks_pass_large_chunks_through():
    big = os.urandom(10_000)
    assert [b async for b in hashing.blocks(_aiter([big]), block_bytes=4096)] == [big]


def test_hex_checks():
    assert hashing.is_md5("0cc175b9c0f1b6a831c399e269772661")
    assert not hashing.is_md5("0CC175B9C0F1B6A831C399E269772661")
    assert not hashing.is_md5("0cc175b9")
    assert hashing.is_sha256("a" * 64) and not hashing.is_sha256("g" * 64)
