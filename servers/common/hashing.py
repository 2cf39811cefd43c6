"""Hashes computed while bytes stream.

MD5 (for parity with the seed's contracts) and SHA-256 are updated in two worker
threads at once: hashlib releases the GIL on large buffers, so on two cores the two
digests cost about as much wall time as the slower one (MD5), and the event loop keeps
serving while they run. Small chunks are coalesced into blocks first so the thread
hand-off is paid per block, not per network frame.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator

BLOCK_BYTES = 1 << 20
_MD5 = re.compile(r"^[0-9a-f]{32}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def is_md5(value: str) -> bool:
    return bool(_MD5.match(value))


def is_sha256(value: str) -> bool:
    return bool(_SHA256.match(value))


class DualHasher:
    """MD5 + SHA-256 of a byte stream, updated off the event loop."""

    def __init__(self) -> None:
        self._md5 = hashlib.md5()
        self._sha256 = hashlib.sha256()
        self.size = 0

    def update_now(self, block: bytes | memoryview) -> None:
        self._md5.update(block)
        self._sha256.update(block)
        self.size += len(block)

    async def update(self, block: bytes | memoryview) -> None:
        if len(block) < 64 * 1024:
            self.update_now(block)
            return
        await asyncio.gather(
            asyncio.to_thread(self._md5.update, block), asyncio.to_thread(self._sha256.update, block)
        )
        self.size += len(block)

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()


async def blocks(chunks: AsyncIterator[bytes], block_bytes: int = BLOCK_BYTES) -> AsyncIterator[bytes]:
    """Re-chunks a stream into blocks of about `block_bytes` (the last may be shorter).

    Holds at most one block plus one incoming chunk in memory.
    """
    pending = bytearray()
    async for chunk in chunks:
        if not chunk:
            continue
        if not pending and len(chunk) >= block_bytes:
            yield bytes(chunk)
            continue
        pending += chunk
        if len(pending) >= block_bytes:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)


async def sha256_of(chunks: AsyncIterator[bytes]) -> tuple[str, int]:
    """SHA-256 and size of a stream, hashed off the event loop."""
    h = hashlib.sha256()
    size = 0
    async for block in chunks:
        await asyncio.to_thread(h.update, block)
        size += len(block)
    return h.hexdigest(), size


async def md5_sha256_of(chunks: AsyncIterator[bytes]) -> DualHasher:
    hasher = DualHasher()
    async for block in chunks:
        await hasher.update(block)
    return hasher
