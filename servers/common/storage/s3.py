"""S3 object store (MinIO or any S3-compatible service) through the `minio` SDK.

Uploads: bytes collect in one buffer of `part_size`. An object that fits in one part goes up
in a single PUT at commit; a larger one becomes a multipart upload whose parts are sent as the
buffer fills (the writer's `write` waits for the part to be stored, which is the upload's
back-pressure), so an upload holds at most one part in memory whatever the object size.
`commit` completes the multipart upload (only then is the object visible); `abort` and any
failure abort it, so the service frees the parts. An upload the process never got to abort
(killed mid-upload) stays invisible but keeps its parts until a bucket lifecycle rule
(`AbortIncompleteMultipartUpload`) removes them; set one in production.

The SDK's public `put_object` wants a readable stream it can pull from, while our writers are
pushed to; so the writer drives the multipart API through the SDK's `_create_multipart_upload`,
`_upload_part`, `_complete_multipart_upload` and `_abort_multipart_upload` (private, but stable
through minio 7.x; the integration tests exercise each one).

Reads: `GET` with `Range: bytes=<offset>-`, streamed in chunks.

The SDK is blocking: every call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import certifi
import urllib3
from minio import Minio
from minio.datatypes import Part
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

from servers.common import errors
from servers.common.storage import (
    S3_MAX_PARTS,
    S3_MIN_PART_SIZE,
    InFlight,
    StorageSettings,
    check_read_args,
    offset_past_end,
    run_to_end,
    validate_key,
)

log = logging.getLogger("mlmesh.storage.s3")

T = TypeVar("T")

CONTENT_TYPE = "application/octet-stream"
# Below this many buffered bytes the buffer grows with the data; past it, one part-size buffer
# is allocated and reused for every part (so small objects never cost a whole part of memory).
SMALL_BUFFER = 1 << 20

_NOT_FOUND = {"NoSuchKey", "NoSuchBucket", "NoSuchObject", "ResourceNotFound", "NoSuchUpload"}
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
_TOO_LARGE = {"EntityTooLarge", "QuotaExceeded", "XMinioStorageFull", "XMinioAdminBucketQuotaExceeded"}


def _mesh_error(exc: BaseException, what: str, endpoint: str) -> BaseException:
    """Translates an SDK or network failure into a domain error; anything else is returned as is."""
    if isinstance(exc, S3Error):
        if exc.code in _NOT_FOUND:
            return errors.NotFound(f"{what}: {exc.message or exc.code}", reason="OBJECT_NOT_FOUND")
        if exc.code in _DENIED:
            return errors.Unavailable(
                f"{what}: object storage at {endpoint} refused our credentials ({exc.code})",
                reason="STORAGE_ACCESS_DENIED",
            )
        if exc.code in _TOO_LARGE:
            return errors.ResourceExhausted(f"{what}: {exc.code}: {exc.message}", reason="STORAGE_FULL")
        return errors.Unavailable(f"{what}: object storage at {endpoint} answered {exc.code}: {exc.message}",
                                  reason="STORAGE_ERROR")
    if isinstance(exc, (ServerError, InvalidResponseError, MinioException)):
        return errors.Unavailable(f"{what}: object storage at {endpoint} failed: {exc}", reason="STORAGE_ERROR")
    if isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
        return errors.Unavailable(
            f"{what}: object storage at {endpoint} cannot be reached: {exc}", reason="STORAGE_UNREACHABLE"
        )
    return exc


def make_http_client(*, connect_timeout: float = 10.0, read_timeout: float = 120.0) -> urllib3.PoolManager:
    """The connection pool the SDK uses: shorter timeouts and fewer retries than its default."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
        maxsize=16,
        cert_reqs="CERT_REQUIRED",
        ca_certs=certifi.where(),
        retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )


def _release(response) -> None:
    """Closes a streamed GET and returns its connection to the pool."""
    if response is not None:
        response.close()
        response.release_conn()


class S3ObjectStore:
    """An `ObjectStore` over one bucket (created on first upload if missing)."""

    def __init__(
        self,
        client: Minio,
        bucket: str,
        *,
        part_size: int = 16 << 20,
        endpoint: str = "",
        region: str | None = None,
        http: urllib3.PoolManager | None = None,
    ):
        if part_size < S3_MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {S3_MIN_PART_SIZE} bytes (S3's minimum)")
        self.client = client
        self.bucket = bucket
        self.part_size = part_size
        self.endpoint = endpoint or "s3"
        self.region = region
        self._http = http
        self._bucket_ready = False
        self._bucket_lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> S3ObjectStore:
        http = make_http_client()
        client = Minio(
            settings.endpoint,
            access_key=settings.access_key or None,
            secret_key=settings.secret_key.get_secret_value() if settings.access_key else None,
            secure=settings.secure,
            region=settings.region,
            http_client=http,
        )
        return cls(client, settings.bucket, part_size=settings.part_size, endpoint=settings.endpoint,
                   region=settings.region, http=http)

    def __repr__(self) -> str:
        return f"S3ObjectStore({self.endpoint!r}, bucket={self.bucket!r})"

    async def call(self, what: str, fn: Callable[..., T], /, *args, io: InFlight | None = None, **kwargs) -> T:
        """Runs an SDK call in a thread, translating its failures."""
        try:
            return await (io or InFlight()).run(lambda: fn(*args, **kwargs))
        except Exception as exc:
            mapped = _mesh_error(exc, what, self.endpoint)
            if mapped is exc:
                raise
            raise mapped from exc

    async def ensure_bucket(self) -> None:
        """Creates the bucket unless it exists (once per store)."""
        if self._bucket_ready:
            return
        async with self._bucket_lock:
            if self._bucket_ready:
                return

            def ensure() -> None:
                if self.client.bucket_exists(self.bucket):
                    return
                try:
                    self.client.make_bucket(self.bucket, location=self.region)
                    log.info("created bucket %s at %s", self.bucket, self.endpoint)
                except S3Error as exc:
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise

            await self.call(f"creating bucket {self.bucket}", ensure)
            self._bucket_ready = True

    # -- the port -----------------------------------------------------------------------------

    async def open_writer(self, key: str) -> S3ObjectWriter:
        validate_key(key)
        await self.ensure_bucket()
        return S3ObjectWriter(self, key)

    async def read(self, key: str, offset: int = 0, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        validate_key(key)
        check_read_args(offset, chunk_size)
        io = InFlight()

        def open_range():
            try:
                return self.client.get_object(self.bucket, key, offset=offset)
            except S3Error as exc:
                if exc.code == "InvalidRange":
                    return None
                raise

        try:
            response = await self.call(f"reading {key}", open_range, io=io)
        except asyncio.CancelledError:
            io.after_result(_release)  # the request may still complete: give its connection back then
            raise
        if response is None:
            # S3 refuses a range that starts at or past the end; only past the end is our error.
            size = await self.size(key)
            if offset > size:
                raise offset_past_end(key, offset, size)
            return
        try:
            while True:
                chunk = await self.call(f"reading {key}", response.read, chunk_size, io=io)
                if not chunk:
                    return
                yield chunk
        finally:
            io.after(lambda: _release(response))

    async def size(self, key: str) -> int:
        validate_key(key)
        stat = await self.call(f"object {key}", self.client.stat_object, self.bucket, key)
        return int(stat.size)

    async def exists(self, key: str) -> bool:
        try:
            await self.size(key)
        except errors.NotFound:
            return False
        return True

    async def delete(self, key: str) -> None:
        validate_key(key)
        try:
            await self.call(f"deleting {key}", self.client.remove_object, self.bucket, key)
        except errors.NotFound:
            pass

    async def close(self) -> None:
        if self._http is not None:
            self._http.clear()


class S3ObjectWriter:
    """One upload: a single PUT if it fits in a part, else a multipart upload. Made by `open_writer`."""

    def __init__(self, store: S3ObjectStore, key: str):
        self.store = store
        self.key = key
        self.part_size = store.part_size
        self._io = InFlight()
        self._buf = bytearray()
        self._fill = 0  # bytes of _buf in use
        self._size = 0
        self._upload_id: str | None = None
        self._parts: list[Part] = []
        self._state = "open"  # open -> committed | aborted | failed
        self._stored = False  # the object became visible (set by the thread that made it so)

    def __repr__(self) -> str:
        return f"S3ObjectWriter({self.key!r}, {self._state}, {self._size} bytes, {len(self._parts)} parts)"

    @property
    def upload_id(self) -> str | None:
        """The multipart upload's id once the first part is sent."""
        return self._upload_id

    def _check_open(self) -> None:
        if self._state != "open":
            raise errors.FailedPrecondition(
                f"the upload to {self.key} is {self._state}; it takes no more calls", reason="WRITER_CLOSED"
            )

    async def write(self, data: bytes) -> None:
        self._check_open()
        view = memoryview(data).cast("B")
        while view:
            if self._fill == self.part_size:
                # Only now that more bytes follow: an object of exactly one part stays a single PUT.
                await self._guarded(self._send_part())
            k = min(len(view), self.part_size - self._fill)
            if len(self._buf) == self.part_size:
                self._buf[self._fill:self._fill + k] = view[:k]
            elif self._fill + k <= SMALL_BUFFER:
                self._buf += view[:k]
            else:
                full = bytearray(self.part_size)
                full[:self._fill] = self._buf
                full[self._fill:self._fill + k] = view[:k]
                self._buf = full
            self._fill += k
            self._size += k
            view = view[k:]

    async def _send_part(self) -> None:
        s = self.store
        if self._upload_id is None:
            self._upload_id = await s.call(
                f"starting the upload of {self.key}", s.client._create_multipart_upload, s.bucket, self.key,
                {"Content-Type": CONTENT_TYPE}, io=self._io,
            )
        number = len(self._parts) + 1
        if number > S3_MAX_PARTS:
            raise errors.ResourceExhausted(
                f"{self.key}: an object may have at most {S3_MAX_PARTS} parts of {self.part_size} bytes",
                reason="OBJECT_TOO_LARGE",
            )
        body = memoryview(self._buf)[:self._fill]
        etag = await s.call(
            f"uploading part {number} of {self.key}", s.client._upload_part, s.bucket, self.key, body, None,
            self._upload_id, number, io=self._io,
        )
        self._parts.append(Part(number, etag))
        self._fill = 0

    async def _guarded(self, call) -> None:
        try:
            await call
        except BaseException:
            self._state = "failed"
            await run_to_end(self._discard())
            raise

    async def commit(self) -> int:
        self._check_open()
        s = self.store
        self._state = "committing"

        def put_single(body) -> None:
            s.client._put_object(s.bucket, self.key, body, {"Content-Type": CONTENT_TYPE})
            self._stored = True

        def complete() -> None:
            s.client._complete_multipart_upload(s.bucket, self.key, self._upload_id, self._parts)
            self._stored = True

        try:
            if self._upload_id is None:
                body = memoryview(self._buf)[:self._fill] if self._fill else b""
                await s.call(f"storing {self.key}", put_single, body, io=self._io)
            else:
                if self._fill:
                    await self._send_part()
                await s.call(f"completing the upload of {self.key}", complete, io=self._io)
        except BaseException:
            self._state = "failed"
            await run_to_end(self._discard())
            raise
        self._state = "committed"
        self._buf = bytearray()
        return self._size

    async def abort(self) -> None:
        if self._state in ("committed", "aborted"):
            return
        self._state = "aborted"
        await run_to_end(self._discard())

    async def _discard(self) -> None:
        """Frees the buffer and the service's parts; removes the object if a failed commit stored it."""
        await self._io.settle()
        self._fill = 0
        self._buf = bytearray()
        s = self.store
        try:
            if self._stored:
                self._stored = False
                await s.call(f"removing {self.key}", s.client.remove_object, s.bucket, self.key)
            elif self._upload_id is not None:
                upload_id, self._upload_id = self._upload_id, None
                await s.call(
                    f"aborting the upload of {self.key}", s.client._abort_multipart_upload, s.bucket, self.key,
                    upload_id,
                )
        except errors.NotFound:
            pass
        except errors.MeshError:
            log.warning("could not clean up the failed upload of %s; a bucket lifecycle rule must", self.key,
                        exc_info=True)

