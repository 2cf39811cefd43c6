"""`mlmesh.Client` and the construction both clients share."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from typing import Any

import grpc

from mlmesh.client._transport import Retry, SyncTransport, Timeouts, TokenSource
from mlmesh.client.services import SERVICES, Identity

DEFAULT_TARGET = "127.0.0.1:8080"
CHANNEL_OPTIONS = (("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20))


def token_claims(token: TokenSource) -> dict[str, Any]:
    """The claims of a JWT, read without checking it (the front door checks it): only to default
    the organization and developer fields. {} for anything else."""
    if not isinstance(token, str) or token.count(".") != 2:
        return {}
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


class _ClientBase:
    """What both clients share: where to connect, the credentials, and one object per service."""

    _transport_class: type
    _grpc: Any  # the grpc module (`grpc` or `grpc.aio`) that makes channels

    def __init__(self, target: str | None = None, *, token: TokenSource = None, organization_id: str | None = None,
                 developer_id: str | None = None, credentials: grpc.ChannelCredentials | None = None,
                 tls: bool = False, channel=None, timeouts: Timeouts = Timeouts(), retry: Retry = Retry(),
                 options: Sequence[tuple[str, Any]] = ()):
        self.target = target or os.environ.get("MLMESH_TARGET") or DEFAULT_TARGET
        if token is None:
            token = os.environ.get("MLMESH_TOKEN") or None
        if channel is None:
            opts = [*CHANNEL_OPTIONS, *options]
            if credentials is not None or tls:
                channel = self._grpc.secure_channel(self.target, credentials or grpc.ssl_channel_credentials(), opts)
            else:
                channel = self._grpc.insecure_channel(self.target, opts)
        self._channel = channel
        self._transport = self._transport_class(channel, token, timeouts, retry)
        identity = Identity(organization_id, developer_id, token_claims(token))
        self.organization_id = identity.claims.get("org") if organization_id is None else organization_id
        for name, cls in SERVICES.items():
            setattr(self, name, cls(self._transport, identity))

    def __repr__(self) -> str:
        return f"{type(self).__module__}.{type(self).__name__}({self.target!r})"


class Client(_ClientBase):
    """The mesh through its front door (Envoy), blocking calls.

        client = mlmesh.Client("127.0.0.1:8080", token="eyJ...")

    `target`: host:port (default MLMESH_TARGET, else 127.0.0.1:8080). `token`: a bearer token, or a
    callable returning one, called before every call (refresh it there, e.g. from an OIDC
    provider); default MLMESH_TOKEN. `tls=True` or `credentials=` for a TLS front door.
    `timeouts` and `retry` set the deadlines and the retries of idempotent calls on UNAVAILABLE.

    Services: `datasets`, `models`, `jobs`, `translations`, `learners`, `inference`.
    """

    _transport_class = SyncTransport
    _grpc = grpc

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
