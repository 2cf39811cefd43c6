"""Who is calling: the organization Envoy's jwt_authn filter copies from the token's `org` claim
into a request header, and the mesh component at the other end of the connection.

Servers believe `x-mlmesh-org` because only mesh components can connect to them: with mutual TLS
(servers.common.tls, the default of `make up`) a caller needs a certificate from the mesh CA, and
its common name says which component it is. A call from Envoy always carries a user's verified
token, so it always names an organization; a call from another mesh component without the header
is the server's own (internal). Without TLS (tests, development) the connection says nothing about
the caller, and a header is believed from whoever sends it: `MeshServer` warns about that at start.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from servers.common import errors

ORG_HEADER = "x-mlmesh-org"
# Envoy sets it (the verified token's payload) on every call that carried a token; a client copy
# is stripped at the edge (servers/devstack/envoy/render.py).
JWT_PAYLOAD_HEADER = "x-mlmesh-jwt-payload"
# The common name of Envoy's certificate (servers.common.tls.ENVOY).
ENVOY_COMPONENT = "envoy"
MAX_ORG_LENGTH = 256


def peer_component(context: grpc.aio.ServicerContext) -> str | None:
    """The component named by the caller's mesh certificate (its CN), or None without mutual TLS."""
    try:
        auth = context.auth_context() or {}
    except (AttributeError, NotImplementedError):
        return None
    names = auth.get("x509_common_name") or ()
    return names[0].decode("utf-8", "replace") if names else None


def caller_org(context: grpc.aio.ServicerContext) -> str | None:
    """The caller's organization, or None for a mesh server calling for itself (internal).

    A call that came through Envoy (its certificate says `envoy`, or it carries Envoy's verified
    token payload) must name an organization: a token without an `org` claim is refused with
    UNAUTHENTICATED, never taken as internal."""
    return org_from_headers(context.invocation_metadata() or (), peer_component(context))


def org_from_headers(headers: Iterable[tuple[str, str]], component: str | None) -> str | None:
    """`caller_org` over any transport: the request's headers (lower-case names, as gRPC metadata has
    them; HTTP names are matched case-insensitively) and the CN of the peer's mesh certificate."""
    org: str | None = None
    via_envoy = False
    for key, value in headers:
        key = key.lower()
        if key == ORG_HEADER and org is None:
            org = value
        elif key == JWT_PAYLOAD_HEADER:
            via_envoy = True
    if org is not None and len(org) > MAX_ORG_LENGTH:
        raise errors.Unauthenticated(f"the org claim of your token is longer than {MAX_ORG_LENGTH} characters",
                                     reason="ORG_CLAIM_INVALID")
    if org == "" or (org is None and (via_envoy or component == ENVOY_COMPONENT)):
        raise errors.Unauthenticated("your token has no org claim", reason="ORG_CLAIM_MISSING")
    return org


SUBJECT_HEADER = "x-mlmesh-subject"


def caller_subject(context: grpc.aio.ServicerContext) -> str | None:
    """The caller's subject (the token's `sub`, which Envoy copies into `x-mlmesh-subject`), or None
    when the call did not come through Envoy. Recorded in the Registry's sharing audit log."""
    for key, value in context.invocation_metadata() or ():
        if key == SUBJECT_HEADER:
            return value
    return None
