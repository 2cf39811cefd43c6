"""Artifacts over gRPC: the transport half of `servers.common.blobs`, for servicers only.

Every streamed upload in the mesh is a client stream whose first message carries the metadata
and whose messages each carry a `google.api.HttpBody` chunk (`split_upload`); every download is
a server stream of `HttpBody` messages preceded by the x-mlmesh-* headers (`send_download`), so a
REST client behind Envoy sees the same bytes and can check them without the gRPC trailer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from google.api import httpbody_pb2

from servers.common import errors


async def split_upload(request_iterator, has_metadata: Callable[[object], bool], what: str):
    """(first message, async iterator of the bytes of every message's chunk); metadata is allowed
    only in the first message (`has_metadata` tells), as METADATA_AFTER_FIRST_MESSAGE says otherwise."""
    messages = request_iterator.__aiter__()
    try:
        first = await messages.__anext__()
    except StopAsyncIteration:
        raise errors.InvalidArgument(f"empty {what} stream: the first message must carry the metadata",
                                     reason="METADATA_MISSING") from None

    async def chunks() -> AsyncIterator[bytes]:
        # Each read of a bytes field makes a new copy of it, so every chunk is read once.
        if data := first.chunk.data:
            yield data
        async for message in messages:
            if has_metadata(message):
                raise errors.InvalidArgument(f"metadata fields are allowed only in the first message of a {what}",
                                             reason="METADATA_AFTER_FIRST_MESSAGE")
            if data := message.chunk.data:
                yield data

    return first, chunks()


async def send_download(context, content_type: str, sha256: str, size_bytes: int, offset: int,
                        chunks: AsyncIterator[bytes]) -> AsyncIterator[httpbody_pb2.HttpBody]:
    """The `HttpBody` messages of a download of `chunks` (the bytes from `offset`)."""
    # Before the first byte: lets a REST client (for which Envoy turns these into response
    # headers) detect a stream that ends early, since it never sees the gRPC status trailer.
    await context.send_initial_metadata((
        ("x-mlmesh-sha256", sha256), ("x-mlmesh-size-bytes", str(size_bytes)), ("x-mlmesh-offset", str(offset)),
    ))
    first = True
    async for chunk in chunks:
        yield httpbody_pb2.HttpBody(content_type=content_type if first else "", data=chunk)
        first = False
    if first:  # nothing left to send: still say what the content is
        yield httpbody_pb2.HttpBody(content_type=content_type)
