"""Bytes in object storage, hashed on the way in and checked on the way out: the one artifact
pipeline of every server that keeps artifacts (datasets, recipe archives, trained models, ONNX
translations, learner versions).

In: `write_hashed` (a stream, e.g. an upload) and `write_file` (a local file, e.g. a converter's
output) give a `PendingObject` to `discard()` if a later step (ledger, database) fails.
Out: `check_offset`, then `open_verified` (the stored bytes are hashed against the recorded SHA-256
before the first byte is sent, and again on the way). From a peer: `download_to_file`.
The gRPC half (HttpBody streams in and out of a servicer) is `servers.common.httpbody`; this module
stays free of transport so domain code can use it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from servers.common import errors, hashing
from servers.common.storage import ObjectStore, ObjectWriter

log = logging.getLogger("mlmesh.blobs")

T = TypeVar("T")

# Failures a database write raises before anything is committed: the row certainly is not there.
_REFUSED = (errors.InvalidArgument, errors.AlreadyExists, errors.FailedPrecondition, errors.NotFound,
            errors.PermissionDenied)
# Registrations finishing after their caller went away (kept referenced until they end).
_FINISHING: set[asyncio.Task] = set()


@dataclass(frozen=True)
class Stored:
    key: str
    size_bytes: int
    md5: str
    sha256: str


class PendingObject:
    """An object written and committed but not yet referenced by a database row.

    `discard()` removes it; use it when a later step (ledger, database) fails, so nothing
    half-registered stays behind."""

    def __init__(self, store: ObjectStore, stored: Stored):
        self.store, self.stored = store, stored

    async def discard(self) -> None:
        try:
            await asyncio.shield(self.store.delete(self.stored.key))
        except Exception:  # noqa: BLE001 - an unreferenced object is invisible; log and go on
            log.exception("could not remove %s after a failed registration", self.stored.key)


async def finish(step: Coroutine[Any, Any, T]) -> T:
    """Runs the last steps of a registration (anchor, then record) to their end even if the caller
    is cancelled meanwhile. A client that hangs up after its last byte cancels its RPC's task; were
    the cancellation to land between a database commit and the cleanup of a failure, a visible row
    would lose its bytes. The caller still sees the cancellation; the registration completes (or
    fails and cleans up) on its own, and the next read finds it whole or not at all."""
    task = asyncio.ensure_future(step)
    _FINISHING.add(task)
    task.add_done_callback(_FINISHING.discard)
    return await asyncio.shield(task)


async def record(pending: Sequence[PendingObject], write: Callable[[], Awaitable[T]], *,
                 recorded: Callable[[], Awaitable[T | None]], what: str) -> T:
    """`write()` is the step that references `pending` in the database (the last of a registration).

    If it is refused (a constraint, a state check), nothing was committed: the objects are removed.
    If its outcome is unknown (the connection dropped after the commit was sent, a timeout), the
    database is asked through `recorded()` (what `write()` would have returned, or None if it is not
    there): a committed row keeps its objects and the write counts as done; a row that is not there
    loses them. If the database cannot answer either, the objects stay: an unreferenced object is
    invisible garbage, a row without its bytes is a lost write. (A cancellation, at shutdown, also
    leaves them.)"""
    try:
        return await write()
    except _REFUSED:
        await _discard_all(pending)
        raise
    except Exception as exc:
        try:
            done = await recorded()
        except Exception as check:  # noqa: BLE001 - the database is still away: keep the bytes
            log.warning("%s: the database write ended with %r and its outcome cannot be checked (%r); keeping "
                        "%s so that a committed row keeps its bytes", what, exc, check,
                        ", ".join(p.stored.key for p in pending))
            raise exc from None
        if done is not None:
            log.warning("%s: the database write ended with %r, but it was committed", what, exc)
            return done
        await _discard_all(pending)
        raise


async def _discard_all(pending: Sequence[PendingObject]) -> None:
    for p in pending:
        await p.discard()


async def write_hashed(
    store: ObjectStore,
    key: str,
    chunks: AsyncIterator[bytes],
    *,
    max_bytes: int,
    what: str,
    check: Callable[[hashing.DualHasher], None] | None = None,
    allow_empty: bool = False,
) -> PendingObject:
    """Streams `chunks` to `key`, hashing MD5 + SHA-256 on the way; commits only if the stream
    ends cleanly, is within `max_bytes` and passes `check`. Otherwise nothing stays under `key`."""
    hasher = hashing.DualHasher()
    writer: ObjectWriter = await store.open_writer(key)
    try:
        async for block in hashing.blocks(chunks):
            if hasher.size + len(block) > max_bytes:
                raise errors.ResourceExhausted(f"{what} exceeds the limit of {max_bytes} bytes",
                                               reason="UPLOAD_TOO_LARGE")
            await asyncio.gather(hasher.update(block), writer.write(block))
        if hasher.size == 0 and not allow_empty:
            raise errors.InvalidArgument(f"empty {what}: the stream carried metadata but no bytes",
                                         reason="EMPTY_UPLOAD")
        if check is not None:
            check(hasher)
        size = await writer.commit()
    except BaseException:
        await asyncio.shield(_abort(writer, key))
        raise
    pending = PendingObject(store, Stored(key, hasher.size, hasher.md5, hasher.sha256))
    if size != hasher.size:
        await pending.discard()
        raise errors.DataLoss(f"storage recorded {size} bytes of {key} but {hasher.size} were streamed",
                              reason="SIZE_MISMATCH")
    return pending


async def write_file(store: ObjectStore, key: str, path: Path, *, what: str,
                     chunk_bytes: int = 1 << 20) -> PendingObject:
    """`write_hashed` for the local file `path` (an empty file is allowed: its size is recorded)."""

    async def chunks() -> AsyncIterator[bytes]:
        f = await asyncio.to_thread(open, path, "rb")
        try:
            while block := await asyncio.to_thread(f.read, chunk_bytes):
                yield block
        finally:
            await asyncio.to_thread(f.close)

    return await write_hashed(store, key, chunks(), max_bytes=sys.maxsize, what=what, allow_empty=True)


async def _abort(writer: ObjectWriter, key: str) -> None:
    try:
        await writer.abort()
    except Exception:  # noqa: BLE001
        log.exception("could not abort the upload of %s", key)


async def verify_stored(store: ObjectStore, key: str, *, sha256: str, size_bytes: int, what: str,
                        chunk_bytes: int = 1 << 20) -> None:
    """DataLoss unless the object under `key` hashes to `sha256` with `size_bytes` bytes."""
    try:
        actual, size = await hashing.sha256_of(store.read(key, 0, chunk_bytes))
    except errors.NotFound:
        raise errors.DataLoss(f"{what}: its bytes are missing from object storage", reason="OBJECT_MISSING") from None
    if actual != sha256 or size != size_bytes:
        log.error("%s: stored sha256=%s size=%d, expected sha256=%s size=%d", what, actual, size, sha256, size_bytes)
        raise errors.DataLoss(
            f"{what}: the stored bytes (sha256 {actual}, {size} bytes) do not match the ledger (sha256 {sha256}, "
            f"{size_bytes} bytes); refusing to serve them",
            reason="HASH_MISMATCH",
        )


async def stream_checked(store: ObjectStore, key: str, *, offset: int, sha256: str, size_bytes: int, what: str,
                         chunk_bytes: int = 1 << 20) -> AsyncIterator[bytes]:
    """The bytes of `key` from `offset`; a full read is hashed again on the way and ends in
    DataLoss if the object changed while it was being sent."""
    sha = hashlib.sha256() if offset == 0 else None
    size = 0
    async for chunk in store.read(key, offset, chunk_bytes):
        if sha is not None:
            await asyncio.to_thread(sha.update, chunk)
        size += len(chunk)
        yield chunk
    if sha is not None and (sha.hexdigest() != sha256 or size != size_bytes):
        raise errors.DataLoss(f"{what} changed in storage while it was being sent; discard what you received",
                              reason="HASH_MISMATCH")


async def open_verified(store: ObjectStore, key: str, *, offset: int, sha256: str, size_bytes: int, what: str,
                        chunk_bytes: int = 1 << 20) -> AsyncIterator[bytes]:
    """A download: `verify_stored` (every error is raised before the first byte), then the bytes of
    `key` from `offset` as `stream_checked` sends them. Check the offset (`check_offset`) and the
    ledger's record first; `sha256` is the ledger's."""
    await verify_stored(store, key, sha256=sha256, size_bytes=size_bytes, what=what, chunk_bytes=chunk_bytes)
    return stream_checked(store, key, offset=offset, sha256=sha256, size_bytes=size_bytes, what=what,
                          chunk_bytes=chunk_bytes)


def check_offset(offset: int, size_bytes: int, what: str) -> None:
    if offset < 0:
        raise errors.InvalidArgument("offset must be >= 0", reason="OFFSET_NEGATIVE")
    if offset > size_bytes:
        raise errors.InvalidArgument(f"offset {offset} is past the end of {what} ({size_bytes} bytes)",
                                     reason="OFFSET_PAST_END")


async def download_to_file(chunks: AsyncIterator[bytes], path: Path, *, sha256: str, size_bytes: int,
                           max_bytes: int, what: str, limit_setting: str = "") -> None:
    """Streams `chunks` into `path`, hashing on the way; DataLoss unless the bytes hash to `sha256`
    (and, when `size_bytes` > 0, have that size). The bytes go to a sibling `.part` file renamed
    into place only once checked, so `path` exists only complete and verified."""
    h = hashlib.sha256()
    size = 0
    part = path.with_name(path.name + ".part")
    f = await asyncio.to_thread(open, part, "wb")
    try:
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise errors.ResourceExhausted(
                        f"{what} is larger than the limit of {max_bytes} bytes"
                        + (f" ({limit_setting})" if limit_setting else ""), reason="SOURCE_TOO_LARGE")
                await asyncio.to_thread(_write_and_hash, f, h, chunk)
        finally:
            await asyncio.to_thread(f.close)
        actual = h.hexdigest()
        if actual != sha256 or (size_bytes and size != size_bytes):
            raise errors.DataLoss(
                f"{what}: the downloaded bytes (sha256 {actual}, {size} bytes) do not match the Registry's record "
                f"(sha256 {sha256}, {size_bytes} bytes)", reason="SOURCE_HASH_MISMATCH")
        part.replace(path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def _write_and_hash(f, h, chunk: bytes) -> None:
    h.update(chunk)
    f.write(chunk)
