"""The one way a mesh server calls another: a grpc.aio channel, deadlines, and the peer's
status turned back into a domain error (`error_from_rpc`), so its reason survives the hop.

A call made for a user passes `on_behalf_of=<organization>`: the peer then applies that
organization's access (docs/security.md), exactly as if the user had called it through Envoy.
Without it the call is the server's own (internal, trusted as the owner).

The channel is mutual TLS when the process has a mesh identity (`TlsSettings`: the mesh-wide
MLMESH_TLS_* unless the caller passes its server's `settings.tls`), plaintext otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from servers.common.caller import ORG_HEADER
from servers.common.grpc_errors import error_from_rpc
from servers.common.settings import TlsSettings
from servers.common.tls import channel_credentials


def mesh_channel(target: str, *, tls: TlsSettings | None = None,
                 options: list[tuple[str, Any]] | None = None) -> grpc.aio.Channel:
    """A grpc.aio channel to another mesh server: with this component's certificate when `tls`
    (default: the mesh-wide MLMESH_TLS_* settings) is set, plaintext otherwise. The server's
    certificate must be signed by the mesh CA and name the target's host (127.0.0.1, localhost
    or mlmesh-<component>)."""
    files = (tls if tls is not None else TlsSettings()).files()
    if files is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, channel_credentials(files), options=options)


def on_behalf_of_metadata(organization: str | None) -> tuple[tuple[str, str], ...] | None:
    """The call metadata that makes a peer apply `organization`'s access (None: the server's own call)."""
    return None if organization is None else ((ORG_HEADER, organization),)


class PeerClient:
    """Base of every client adapter of another mesh server. `stub_class` is the generated stub."""

    def __init__(self, target: str, peer: str, stub_class: Callable[[grpc.aio.Channel], Any], *,
                 timeout: float = 30.0, stream_timeout: float | None = None, max_message_bytes: int = 8 << 20,
                 tls: TlsSettings | None = None):
        self.target = target
        self.peer = f"{peer} at {target}"
        self.timeout, self.stream_timeout = timeout, stream_timeout
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes)]
        self._channel = mesh_channel(target, tls=tls, options=options)
        self._stub = stub_class(self._channel)

    async def call(self, method, request, *, timeout: float | None = None, on_behalf_of: str | None = None):
        """A unary call with a deadline (`timeout`, default the client's); peer errors → domain errors."""
        try:
            return await method(request, timeout=self.timeout if timeout is None else timeout,
                                metadata=on_behalf_of_metadata(on_behalf_of))
        except grpc.RpcError as err:
            raise error_from_rpc(err, self.peer) from None

    async def stream_bytes(self, method, request, *, on_behalf_of: str | None = None) -> AsyncIterator[bytes]:
        """The data of a server stream of google.api.HttpBody; peer errors → domain errors."""
        call = method(request, timeout=self.stream_timeout, metadata=on_behalf_of_metadata(on_behalf_of))
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
