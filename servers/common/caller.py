"""Who is calling: the organization Envoy's jwt_authn filter copies from the token's `org` claim
into a request header. Servers trust it because only Envoy reaches them (README: network policy)."""

from __future__ import annotations

import grpc

ORG_HEADER = "x-mlmesh-org"


def caller_org(context: grpc.aio.ServicerContext) -> str | None:
    """The caller's organization, or None when the call did not come through Envoy (tests, peers)."""
    for key, value in context.invocation_metadata() or ():
        if key == ORG_HEADER:
            return value
    return None
