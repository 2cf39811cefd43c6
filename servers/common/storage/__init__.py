"""Object storage: the port every server uses for artifacts, and the factory that picks an adapter.

Two adapters implement the port:

- `fs.FilesystemObjectStore`: a directory on local disk (the embedded default). Uploads go to a
  temporary file under `<root>/.partial/`, are fsynced, and are renamed into place atomically.
- `s3.S3ObjectStore`: any S3-compatible service (MinIO in production) through the `minio` SDK,
  with multipart uploads that hold at most one part in memory.

Semantics shared by both adapters:

- An object becomes visible only when `ObjectWriter.commit()` returns; before that, and after
  `abort()` or a crash, nothing is visible under the key. Committing over an existing key
  replaces it atomically (readers see the old or the new bytes, never a mix).
- `read()` is an async generator: a missing key raises `NotFound` (and an offset past the end
  `InvalidArgument`) when iteration starts, not when `read()` is called.
- `delete()` of a missing key is not an error.
- Adapters raise `servers.common.errors` exceptions, never transport errors: `NotFound`,
  `InvalidArgument` (bad key, offset or chunk size), `ResourceExhausted` (disk full, too many
  parts), `Unavailable` (the backend cannot be reached or refuses us), `FailedPrecondition`
  (a writer used after commit/abort).

Keys are relative, slash-separated names such as `datasets/5d066d58-06de-47ab-a2f6-c8f413e21947`:
each segment starts with a letter or digit, holds only letters, digits, `.`, `_` and `-` and is
at most 255 characters long (the whole key at most 512),
so `..`, a leading `/`, empty segments and hidden names (which the filesystem store uses for
itself) are refused with `InvalidArgument`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Literal, Protocol, TypeVar

from pydantic import BaseModel, Field, SecretStr, model_validator

from servers.common import errors

T = TypeVar("T")

__all__ = [
    "MAX_KEY_LENGTH",
    "ObjectStore",
    "ObjectWriter",
    "StorageSettings",
    "make_object_store",
    "validate_key",
]

MIB = 1 << 20
# S3's own limits on multipart uploads.
S3_MIN_PART_SIZE = 5 * MIB
S3_MAX_PART_SIZE = 5 * 1024 * MIB
S3_MAX_PARTS = 10_000

MAX_KEY_LENGTH = 512
MAX_SEGMENT_LENGTH = 255  # a file name on every filesystem we run on
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,%d}" % (MAX_SEGMENT_LENGTH - 1)
_KEY = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")


def validate_key(key: str) -> str:
    """Returns `key` if it is a valid object key, else raises `InvalidArgument`."""
    if not isinstance(key, str) or not key:
        raise errors.InvalidArgument("object key is empty", reason="OBJECT_KEY_INVALID")
    if len(key) > MAX_KEY_LENGTH:
        raise errors.InvalidArgument(
            f"object key is longer than {MAX_KEY_LENGTH} characters", reason="OBJECT_KEY_INVALID"
        )
    if not _KEY.fullmatch(key) or ".." in key.split("/"):
        raise errors.InvalidArgument(
            f"object key {key[:80]!r} is not a relative name like 'datasets/<uuid>' "
            "(no leading '/', no '..', no empty or hidden segments; letters, digits, '.', '_', '-'; "
            f"at most {MAX_SEGMENT_LENGTH} characters between slashes)",
            reason="OBJECT_KEY_INVALID",
        )
    return key


def check_read_args(offset: int, chunk_size: int) -> None:
    """Arguments of `ObjectStore.read` that are wrong whatever the object."""
    if offset < 0:
        raise errors.InvalidArgument(f"read offset {offset} is negative", reason="OFFSET_NEGATIVE")
    if chunk_size <= 0:
        raise errors.InvalidArgument(f"read chunk size {chunk_size} must be positive", reason="CHUNK_SIZE_INVALID")


def offset_past_end(key: str, offset: int, size: int) -> errors.InvalidArgument:
    return errors.InvalidArgument(
        f"offset {offset} is past the end of object {key} ({size} bytes)", reason="OFFSET_PAST_END"
    )


class ObjectWriter(Protocol):
    """One upload in progress. Not safe for concurrent calls on the same writer."""

    async def write(self, data: bytes) -> None:
        """Appends `data` (any bytes-like object; it is not kept after the call returns)."""
        ...

    async def commit(self) -> int:
        """Makes the object visible atomically; returns its size in bytes."""
        ...

    async def abort(self) -> None:
        """Leaves nothing visible; safe to call after a failure, after commit (no-op) or twice."""
        ...


class ObjectStore(Protocol):
    async def open_writer(self, key: str) -> ObjectWriter: ...

    def read(self, key: str, offset: int = 0, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """The object's bytes from `offset` in chunks of at most `chunk_size`.

        NotFound if the key is missing; InvalidArgument if `offset` > size (offset == size
        yields nothing)."""
        ...

    async def size(self, key: str) -> int:
        """Size in bytes; NotFound if missing."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Removes the object; a missing key is not an error."""
        ...

    async def close(self) -> None: ...


class StorageSettings(BaseModel):
    """Where artifacts live. Embedded in each server's settings (e.g. `MLMESH_REGISTRY_STORAGE__BACKEND`)."""

    backend: Literal["filesystem", "s3"] = Field(
        "filesystem", description="'filesystem' (embedded default: a local directory) or 's3' (MinIO, any S3)."
    )
    root: Path | None = Field(
        None,
        description="Filesystem backend: the directory that holds the objects (created if missing). "
        "Required for that backend; servers default it to <data_dir>/objects.",
    )
    endpoint: str = Field(
        "127.0.0.1:9000", description="S3 backend: host[:port] of the S3 API, without scheme (see `secure`)."
    )
    access_key: str = Field("", description="S3 backend: access key id; empty for anonymous access.")
    secret_key: SecretStr = Field(SecretStr(""), description="S3 backend: secret access key.")
    bucket: str = Field(
        "mlmesh", min_length=3, max_length=63, description="S3 backend: the bucket (created if missing)."
    )
    secure: bool = Field(True, description="S3 backend: use HTTPS.")
    region: str | None = Field(
        None, description="S3 backend: region; unset asks the server (one extra request per bucket)."
    )
    part_size: int = Field(
        16 * MIB,
        ge=S3_MIN_PART_SIZE,
        le=S3_MAX_PART_SIZE,
        description="S3 backend: multipart part size in bytes; an upload holds at most one part in memory, "
        f"and objects up to {S3_MAX_PARTS} parts can be stored. Smaller objects go up in a single PUT.",
    )

    @model_validator(mode="after")
    def _check(self) -> StorageSettings:
        if self.backend == "s3" and self.access_key and not self.secret_key.get_secret_value():
            raise ValueError("storage.secret_key is required when storage.access_key is set")
        return self


def make_object_store(settings: StorageSettings) -> ObjectStore:
    """The adapter `settings.backend` names. The filesystem store cleans stale partial uploads
    as it opens; the S3 store makes no request until it is used."""
    if settings.backend == "filesystem":
        from servers.common.storage.fs import FilesystemObjectStore

        if settings.root is None:
            raise errors.InvalidArgument(
                "storage.root must name a directory for the filesystem backend", reason="STORAGE_ROOT_MISSING"
            )
        return FilesystemObjectStore(settings.root)
    if settings.backend == "s3":
        from servers.common.storage.s3 import S3ObjectStore

        return S3ObjectStore.from_settings(settings)
    raise errors.InvalidArgument(f"unknown storage backend {settings.backend!r}")  # pragma: no cover


class InFlight:
    """Runs blocking calls in worker threads and remembers the latest one.

    A task awaiting `asyncio.to_thread` can be cancelled, but the thread cannot: it goes on
    using the file descriptor or upload it was given. Cleanup that must not overlap it
    (closing the descriptor, aborting the upload) first waits for it with `settle()` or
    runs once it is done with `after()`. Calls on one `InFlight` are made one at a time.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: asyncio.Future | None = None

    async def run(self, fn: Callable[..., T], /, *args: object) -> T:
        fut = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        self._last = fut
        # shield: a cancelled caller stops waiting, the thread's result is still collected.
        return await asyncio.shield(fut)

    async def settle(self) -> None:
        """Waits until the latest call has finished (its outcome is ignored here)."""
        fut = self._last
        if fut is not None and not fut.done():
            await asyncio.wait([fut])

    def after_result(self, fn: Callable[[T], object]) -> None:
        """Calls `fn(result)` once the latest call has succeeded (now, if it has); nothing if it failed."""
        fut = self._last

        def done(f: asyncio.Future) -> None:
            if not f.cancelled() and f.exception() is None:
                fn(f.result())

        if fut is not None:
            if fut.done():
                done(fut)
            else:
                fut.add_done_callback(done)

    def after(self, fn: Callable[[], object]) -> None:
        """Calls `fn` now, or as soon as the latest call has finished."""
        fut = self._last
        if fut is None or fut.done():
            fn()
        else:
            fut.add_done_callback(lambda _f: fn())


async def run_to_end(coro: Awaitable[object]) -> None:
    """Runs cleanup to the end even if the calling task is cancelled meanwhile (the cancel is re-raised
    once the cleanup is done)."""
    task = asyncio.ensure_future(coro)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise
