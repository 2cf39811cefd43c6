"""How a call is made: credentials on every call, a deadline on every call, retries with backoff
on UNAVAILABLE for idempotent calls, statuses turned into `MlmeshError`s, and streamed files.

The service classes (`services.py`) are written once; they hand each call to a transport, which
returns results (`SyncTransport`, `mlmesh.Client`) or awaitables and async iterators
(`AsyncTransport`, `mlmesh.aio.Client`). The pure parts both share live here too: backoff delays,
upload chunking and the download sink.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Union

import grpc

from mlmesh.client.errors import IntegrityError, from_rpc_error

CHUNK_BYTES = 1 << 20
Progress = Callable[[int], None]
Source = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]
Destination = Union[str, os.PathLike, BinaryIO]
TokenSource = Union[str, Callable[[], Any], None]


@dataclass(frozen=True)
class Timeouts:
    """Deadlines in seconds. Every call has one; each method also takes `timeout=` for itself."""

    unary: float = 30.0  # Get, List, Share, Predict, Explain, ...
    slow: float = 900.0  # work the server does while you wait: TranslateModel, CreateLearner
    transfer: float = 3600.0  # uploads, downloads, Learn and PredictStream streams
    watch: float = 86400.0  # Watch... streams, which end when the job ends


@dataclass(frozen=True)
class Retry:
    """Retries of idempotent calls that failed with UNAVAILABLE: exponential backoff, full jitter."""

    attempts: int = 5  # calls in total, the first included
    initial_backoff: float = 0.2
    max_backoff: float = 5.0
    multiplier: float = 2.0

    def delays(self) -> Iterator[float]:
        """The sleep before each retry (attempts - 1 of them)."""
        ceiling = self.initial_backoff
        for _ in range(max(self.attempts - 1, 0)):
            yield random.uniform(0, ceiling)
            ceiling = min(ceiling * self.multiplier, self.max_backoff)


def retryable(exc: grpc.RpcError) -> bool:
    return hasattr(exc, "code") and exc.code() == grpc.StatusCode.UNAVAILABLE


def read_chunks(source: Source, progress: Progress | None = None) -> Iterator[bytes]:
    """The bytes of a path, a bytes-like object or a binary file object, in chunks."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        for start in range(0, len(view), CHUNK_BYTES):
            chunk = bytes(view[start:start + CHUNK_BYTES])
            yield chunk
            if progress:
                progress(len(chunk))
        return
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            yield from read_chunks(f, progress)
        return
    while chunk := source.read(CHUNK_BYTES):
        yield chunk
        if progress:
            progress(len(chunk))


def source_name(source: Source, default: str = "upload") -> str:
    """A file name for an upload: the path's, the file object's, or `default`."""
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    name = getattr(source, "name", None)
    return Path(name).name if isinstance(name, str) else default


class Sink:
    """Where a download goes. A path: into `<path>.part`, resuming what is there, renamed to `path`
    only once the whole file hashes to the recorded SHA-256. A binary file object: written as the
    bytes arrive, hashed, checked at the end (raising IntegrityError; the bytes are already written)."""

    def __init__(self, dest: Destination, *, resume: bool, progress: Progress | None):
        self.path = Path(dest) if isinstance(dest, (str, os.PathLike)) else None
        self.part = self.path.with_name(self.path.name + ".part") if self.path else None
        self._file: Any = None if self.path else dest
        self.resume = resume
        self.progress = progress
        self.sha = hashlib.sha256()
        self.offset = 0

    def open(self, size_bytes: int) -> int:
        """Prepares for writing; returns the offset to download from."""
        if self.part is None:
            return 0
        offset = self.part.stat().st_size if self.resume and self.part.exists() else 0
        if offset > size_bytes:
            offset = 0
        if offset:
            with open(self.part, "rb") as f:
                while block := f.read(CHUNK_BYTES):
                    self.sha.update(block)
            if self.progress:
                self.progress(offset)
        self.offset = offset
        self.part.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.part, "ab" if offset else "wb")
        return offset

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self.sha.update(data)
        self.offset += len(data)
        if self.progress:
            self.progress(len(data))

    def close(self) -> None:
        """Closes a `.part` file (kept for a later resume); leaves a caller's file object open."""
        if self.part is not None and self._file is not None and not self._file.closed:
            self._file.close()

    def finish(self, sha256: str | None, what: str) -> Path | None:
        """Checks the hash (unless `sha256` is None: nothing recorded to check against) and renames
        the `.part` file to the path."""
        if self.part is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        got = self.sha.hexdigest()
        if sha256 is not None and got != sha256:
            if self.part is not None:
                self.part.unlink(missing_ok=True)
            raise IntegrityError(
                f"{what}: the downloaded bytes have sha256 {got}, the mesh records {sha256}"
                + ("; the partial file was removed" if self.part is not None else ""), reason="SHA256_MISMATCH")
        if self.part is not None:
            self.part.replace(self.path)
        return self.path


@dataclass(frozen=True)
class Download:
    """A download: `head` (a unary method and request) answers the size and SHA-256 to expect
    (`expect(head_response) -> (size_bytes, sha256, what)`); `body(offset)` is the streaming
    method and request from that offset."""

    head: tuple[Any, Any]
    expect: Callable[[Any], tuple[int, str, str]]
    body: Callable[[int], tuple[Any, Any]]
    resumable: bool = True  # the body takes an offset (a recipe download does not)


class _Base:
    def __init__(self, channel, token: TokenSource, timeouts: Timeouts, retry: Retry):
        self.channel = channel
        self._token = token
        self.timeouts = timeouts
        self.retry = retry

    def stub(self, cls):
        return cls(self.channel)

    def deadline(self, timeout: float | None, kind: str) -> float:
        return timeout if timeout is not None else getattr(self.timeouts, kind)


class SyncTransport(_Base):
    """Blocking calls (`mlmesh.Client`)."""

    def metadata(self) -> tuple[tuple[str, str], ...]:
        token = self._token() if callable(self._token) else self._token
        return (("authorization", f"Bearer {token}"),) if token else ()

    def unary(self, method, request, *, timeout: float, idempotent: bool = False):
        delays = self.retry.delays() if idempotent else iter(())
        while True:
            try:
                return method(request, timeout=timeout, metadata=self.metadata())
            except grpc.RpcError as exc:
                delay = next(delays, None) if retryable(exc) else None
                if delay is None:
                    raise from_rpc_error(exc) from None
                time.sleep(delay)

    def client_stream(self, method, requests: Iterable, *, timeout: float):
        try:
            return method(iter(requests), timeout=timeout, metadata=self.metadata())
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    def server_stream(self, method, request, *, timeout: float, idempotent: bool = True) -> Iterator:
        """Yields the stream's messages; reconnects on UNAVAILABLE (idempotent streams) until the
        first message arrived."""
        delays = self.retry.delays() if idempotent else iter(())
        while True:
            started = False
            try:
                for message in method(request, timeout=timeout, metadata=self.metadata()):
                    started = True
                    yield message
                return
            except grpc.RpcError as exc:
                delay = next(delays, None) if retryable(exc) and not started else None
                if delay is None:
                    raise from_rpc_error(exc) from None
                time.sleep(delay)

    def bidi(self, method, requests: Iterable, *, timeout: float) -> Iterator:
        try:
            yield from method(iter(requests), timeout=timeout, metadata=self.metadata())
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    def pages(self, method, make_request: Callable[[str], Any], field: str, *, timeout: float) -> Iterator:
        token = ""
        while True:
            page = self.unary(method, make_request(token), timeout=timeout, idempotent=True)
            yield from getattr(page, field)
            token = page.next_page_token
            if not token:
                return

    def download(self, spec: Download, dest: Destination, *, timeout: float, resume: bool,
                 progress: Progress | None) -> Path | None:
        """Streams to `dest` (see Sink), resuming from where it stopped after UNAVAILABLE."""
        size, sha256, what = spec.expect(self.unary(*spec.head, timeout=self.timeouts.unary, idempotent=True))
        sink = Sink(dest, resume=resume and spec.resumable, progress=progress)
        sink.open(size)
        delays = self.retry.delays()
        try:
            while True:
                try:
                    method, request = spec.body(sink.offset)
                    for message in method(request, timeout=timeout, metadata=self.metadata()):
                        sink.write(message.data)
                    break
                except grpc.RpcError as exc:
                    resumable = spec.resumable or sink.offset == 0
                    delay = next(delays, None) if retryable(exc) and resumable else None
                    if delay is None:
                        raise from_rpc_error(exc) from None
                    time.sleep(delay)
        except BaseException:
            sink.close()
            raise
        return sink.finish(sha256, what)


    def save(self, method, request, dest: Destination, *, timeout: float, progress: Progress | None
             ) -> Path | None:
        """Streams HttpBody chunks to `dest` when nothing recorded says what to expect (no resume)."""
        sink = Sink(dest, resume=False, progress=progress)
        sink.open(0)
        try:
            for message in self.server_stream(method, request, timeout=timeout):
                sink.write(message.data)
        except BaseException:
            sink.close()
            raise
        return sink.finish(None, "")


class AsyncTransport(_Base):
    """asyncio calls (`mlmesh.aio.Client`): the same surface, returning awaitables and async iterators."""

    async def metadata(self) -> tuple[tuple[str, str], ...]:
        token = self._token() if callable(self._token) else self._token
        if inspect.isawaitable(token):
            token = await token
        return (("authorization", f"Bearer {token}"),) if token else ()

    async def unary(self, method, request, *, timeout: float, idempotent: bool = False):
        delays = self.retry.delays() if idempotent else iter(())
        while True:
            try:
                return await method(request, timeout=timeout, metadata=await self.metadata())
            except grpc.RpcError as exc:
                delay = next(delays, None) if retryable(exc) else None
                if delay is None:
                    raise from_rpc_error(exc) from None
                await asyncio.sleep(delay)

    async def client_stream(self, method, requests, *, timeout: float):
        try:
            return await method(requests, timeout=timeout, metadata=await self.metadata())
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    async def server_stream(self, method, request, *, timeout: float, idempotent: bool = True) -> AsyncIterator:
        delays = self.retry.delays() if idempotent else iter(())
        while True:
            started = False
            try:
                async for message in method(request, timeout=timeout, metadata=await self.metadata()):
                    started = True
                    yield message
                return
            except grpc.RpcError as exc:
                delay = next(delays, None) if retryable(exc) and not started else None
                if delay is None:
                    raise from_rpc_error(exc) from None
                await asyncio.sleep(delay)

    async def bidi(self, method, requests, *, timeout: float) -> AsyncIterator:
        try:
            async for message in method(requests, timeout=timeout, metadata=await self.metadata()):
                yield message
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    async def pages(self, method, make_request: Callable[[str], Any], field: str, *, timeout: float
                    ) -> AsyncIterator:
        token = ""
        while True:
            page = await self.unary(method, make_request(token), timeout=timeout, idempotent=True)
            for item in getattr(page, field):
                yield item
            token = page.next_page_token
            if not token:
                return

    async def download(self, spec: Download, dest: Destination, *, timeout: float, resume: bool,
                       progress: Progress | None) -> Path | None:
        head = await self.unary(*spec.head, timeout=self.timeouts.unary, idempotent=True)
        size, sha256, what = spec.expect(head)
        sink = Sink(dest, resume=resume and spec.resumable, progress=progress)
        sink.open(size)
        delays = self.retry.delays()
        try:
            while True:
                try:
                    method, request = spec.body(sink.offset)
                    async for message in method(request, timeout=timeout, metadata=await self.metadata()):
                        sink.write(message.data)
                    break
                except grpc.RpcError as exc:
                    resumable = spec.resumable or sink.offset == 0
                    delay = next(delays, None) if retryable(exc) and resumable else None
                    if delay is None:
                        raise from_rpc_error(exc) from None
                    await asyncio.sleep(delay)
        except BaseException:
            sink.close()
            raise
        return sink.finish(sha256, what)

    async def save(self, method, request, dest: Destination, *, timeout: float, progress: Progress | None
                   ) -> Path | None:
        sink = Sink(dest, resume=False, progress=progress)
        sink.open(0)
        try:
            async for message in self.server_stream(method, request, timeout=timeout):
                sink.write(message.data)
        except BaseException:
            sink.close()
            raise
        return sink.finish(None, "")
