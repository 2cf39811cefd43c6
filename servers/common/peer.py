"""The one way a mesh server calls another: a grpc.aio channel, deadlines, and the peer's
status turned back into a domain error (`error_from_rpc`), so its reason survives the hop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from servers.common.grpc_errors import error_from_rpc


class PeerClient:
    """Base of every client adapter of another mesh server. `stub_class` is the generated stub."""

    def __init__(self, target: str, peer: str, stub_class: Callable[[grpc.aio.Channel], Any], *,
                 timeout: float = 30.0, stream_timeout: float | None = None, max_message_bytes: int = 8 << 20):
        self.target = target
        self.peer = f"{peer} at {target}"
        self.timeout, self.stream_timeout = timeout, stream_timeout
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes)]
        self._channel = grpc.aio.insecure_channel(target, options=options)
        self._stub = stub_class(self._channel)

    async def call(self, method, request, *, timeout: float | None = None):
        """A unary call with a deadline (`timeout`, default the client's); peer errors → domain errors."""
        try:
            return await method(request, timeout=self.timeout if timeout is None else timeout)
        except grpc.RpcError as err:
            raise error_from_rpc(err, self.peer) from None

    async def stream_bytes(self, method, request) -> AsyncIterator[bytes]:
        """The data of a server stream of google.api.HttpBody; peer errors → domain errors."""
        call = method(request, timeout=self.stream_timeout)
        try:
            async for body in call:
                if data := body.data:  # one read: each read of a bytes field copies it
                    yield data
        except grpc.RpcError as err:
            raise error_from_rpc(err, self.peer) from None
        finally:
            call.cancel()

    async def close(self) -> None:
        await self._channel.close()
