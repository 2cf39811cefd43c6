"""Internal RPCs: the ones only mesh servers call, each from the components that may call it.

Envoy never routes them (they have no google.api.http binding, or their service is INTERNAL in
the route table), and with mutual TLS only holders of a mesh certificate reach a server at all.
On top of that, `MeshServer`'s interceptor refuses an internal RPC with PERMISSION_DENIED
"internal RPC" when

* the call carries a user's organization (`x-mlmesh-org`) or Envoy's verified token payload: it
  came through the front door or on behalf of a user, and no user may report a training result,
  save a learner's version, schedule a job or deploy a contract;
* the server serves mutual TLS and the peer's certificate names a component other than the
  expected callers (the Trainer reports its jobs, the Learner saves versions, the Registry
  schedules training, the Registry and the Translator anchor on the Ledger). A plaintext server
  (tests, development) cannot see the peer and checks only the headers.

This table is the one place that says which RPCs are internal; tests/unit/test_internal_rpcs.py
checks that it names exactly the RPCs the contracts leave without a REST binding.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from servers.common import errors
from servers.common.caller import JWT_PAYLOAD_HEADER, ORG_HEADER


@dataclass(frozen=True)
class InternalRpcs:
    """RPCs of one service that only `callers` (mesh component names, the CN of their
    certificates: servers.common.tls.COMPONENTS) may call; `methods` empty: every RPC of it."""

    service: str
    methods: tuple[str, ...]
    callers: frozenset[str]

    def paths(self) -> tuple[str, ...]:
        return tuple(f"/{self.service}/{m}" for m in self.methods)


INTERNAL_RPCS: tuple[InternalRpcs, ...] = (
    # The Trainer reports its jobs (its Argo steps, calling from pods, need the trainer certificate).
    InternalRpcs("mlmesh.registry.v1.RegistryService", ("ReportTrainingStatus", "SubmitTrainingResult"),
                 frozenset({"trainer"})),
    # A learner's saved versions; the Optimizer's trained policies; the Federation's final models.
    InternalRpcs("mlmesh.registry.v1.RegistryService", ("CreateModelVersion",),
                 frozenset({"learner", "optimizer", "federation"})),
    # The Registry schedules the training of the models registered with it.
    InternalRpcs("mlmesh.trainer.v1.TrainerService", ("SubmitTrainingJob",), frozenset({"registry"})),
    # The AccessLog: only the Registry anchors and reads shares and unshares (first match wins).
    InternalRpcs("mlmesh.ledger.v1.LedgerService", ("RecordAccessEvent", "ListAccessEntries"),
                 frozenset({"registry"})),
    # Contracts: datasets and models (Registry), translations (Translator).
    InternalRpcs("mlmesh.ledger.v1.LedgerService", (), frozenset({"registry", "translator"})),
)


def internal_callers(method_path: str, table: Iterable[InternalRpcs] = INTERNAL_RPCS) -> frozenset[str] | None:
    """The components that may call `method_path` ("/pkg.Service/Method"), or None when it is
    not internal (anyone the server's transport lets in may call it)."""
    service, _, method = method_path.lstrip("/").partition("/")
    for row in table:
        if row.service == service and (not row.methods or method in row.methods):
            return row.callers
    return None


def check_internal_call(method_path: str, callers: frozenset[str], metadata: Iterable[tuple[str, object]],
                        peer_component: str | None) -> None:
    """PERMISSION_DENIED unless this call of an internal RPC is a mesh server's own, from one of
    `callers` (checked only when the peer is known, i.e. under mutual TLS)."""
    name = method_path.rsplit("/", 1)[-1]
    keys = {key for key, _ in metadata}
    if ORG_HEADER in keys or JWT_PAYLOAD_HEADER in keys:
        raise errors.PermissionDenied(
            f"{name} is an internal RPC: only mesh servers call it for themselves, never for a user",
            reason="INTERNAL_RPC", metadata={"method": name})
    if peer_component is not None and peer_component not in callers:
        raise errors.PermissionDenied(
            f"{name} is an internal RPC that only {', '.join(sorted(callers))} may call, not {peer_component}",
            reason="INTERNAL_RPC", metadata={"method": name})
