"""What every service class shares: the `@rpc` mark the coverage test reads, the caller's
identity for the fields a request must name, and the transport the calls go through."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def rpc(*methods: str):
    """Marks an SDK method as the one that covers these RPCs (full names, "pkg.Service/Method")."""

    def mark(fn):
        fn.__mlmesh_rpcs__ = methods
        return fn

    return mark


def covered_rpcs(service_classes: Iterable[type]) -> dict[str, str]:
    """{"pkg.Service/Method": "ServiceClass.method"} for every `@rpc`-marked method."""
    covered: dict[str, str] = {}
    for cls in service_classes:
        for name in dir(cls):
            for full in getattr(getattr(cls, name), "__mlmesh_rpcs__", ()):
                covered[full] = f"{cls.__name__}.{name}"
    return covered


class Identity:
    """Who is calling, for the fields a request must name (the organization an upload belongs to,
    the developer registering a model): given, or read from the token's `org` and `sub` claims."""

    def __init__(self, organization_id: str | None, developer_id: str | None, claims: Mapping[str, Any]):
        self._organization_id = organization_id
        self._developer_id = developer_id
        self.claims = dict(claims)

    def organization(self, given: str | None) -> str:
        org = given or self._organization_id or self.claims.get("org")
        if not org:
            raise ValueError("name the organization: organization_id=... (on the call or the Client); the token "
                             "carries no readable `org` claim")
        return str(org)

    def developer(self, given: str | None) -> str:
        return given or self._developer_id or str(self.claims.get("sub") or "mlmesh-sdk")


class _Service:
    _stub_class: type

    def __init__(self, transport, identity: Identity):
        self._t = transport
        self._id = identity
        self._stub = transport.stub(self._stub_class)

    def _deadline(self, timeout: float | None, kind: str = "unary") -> float:
        return self._t.deadline(timeout, kind)
