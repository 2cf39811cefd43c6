"""proto <-> domain for a model's lineage (GetModelLineage) and the attestation signing key. Pure
functions in pairs; the round trips are unit-tested."""

from __future__ import annotations

from mlmesh.registry.v1 import dataset_pb2 as pb
from mlmesh.registry.v1 import lineage_pb2
from mlmesh.registry.v1 import registry_service_pb2 as svc

from servers.common.timestamps import timestamp_from_proto, timestamp_to_proto
from servers.registry.domain.attestations import SignedModel
from servers.registry.domain.datasets import Check
from servers.registry.domain.lineage import Lineage, LineageNode

Node = lineage_pb2.LineageNode


def _ts(value):
    return timestamp_to_proto(value) if value is not None else None


def lineage_node_to_proto(index: int, n: LineageNode) -> lineage_pb2.LineageNode:
    parent = "" if n.parent is None else str(n.parent + 1)
    kind = Node.Kind.Value(f"KIND_{n.kind}")
    status = Node.CheckStatus.Value(f"CHECK_STATUS_{n.status}")
    if not n.visible:  # nothing about a node the caller may not read, but its place in the tree
        return Node(node_id=str(index + 1), parent_node_id=parent, kind=kind, visible=False, check_status=status)
    return Node(
        node_id=str(index + 1), parent_node_id=parent, kind=kind, visible=True, resource_id=n.resource_id,
        display_name=n.display_name, organization_id=n.organization_id, size_bytes=n.size_bytes, md5=n.md5,
        sha256=n.sha256, contract_address=n.contract_address, tx_hash=n.tx_hash, create_time=_ts(n.create_time),
        attributes=n.attributes, dead_branch=n.dead_branch, version=n.version, check_status=status,
        checks=[pb.ProvenanceCheck(name=c.name, ok=c.ok, detail=c.detail) for c in n.checks],
    )


def lineage_node_from_proto(m: lineage_pb2.LineageNode) -> LineageNode:
    return LineageNode(
        kind=Node.Kind.Name(m.kind).removeprefix("KIND_"),
        parent=int(m.parent_node_id) - 1 if m.parent_node_id else None, visible=m.visible,
        resource_id=m.resource_id, display_name=m.display_name, organization_id=m.organization_id,
        size_bytes=m.size_bytes, md5=m.md5, sha256=m.sha256, contract_address=m.contract_address, tx_hash=m.tx_hash,
        create_time=timestamp_from_proto(m.create_time) if m.HasField("create_time") else None,
        attributes=dict(m.attributes), dead_branch=m.dead_branch, version=m.version,
        status=Node.CheckStatus.Name(m.check_status).removeprefix("CHECK_STATUS_"),
        checks=[Check(c.name, c.ok, c.detail) for c in m.checks],
    )


def lineage_to_proto(lineage: Lineage) -> lineage_pb2.ModelLineage:
    return lineage_pb2.ModelLineage(
        model_id=lineage.model_id, nodes=[lineage_node_to_proto(i, n) for i, n in enumerate(lineage.nodes)],
        consistent=lineage.consistent, check_time=timestamp_to_proto(lineage.check_time), chain_id=lineage.chain_id)


def lineage_from_proto(m: lineage_pb2.ModelLineage) -> Lineage:
    return Lineage(model_id=m.model_id, nodes=[lineage_node_from_proto(n) for n in m.nodes],
                   check_time=timestamp_from_proto(m.check_time), chain_id=m.chain_id)


def signing_key_to_proto(key_id: str, public_key_pem: str, scheme: str) -> svc.SigningKey:
    return svc.SigningKey(key_id=key_id, public_key_pem=public_key_pem, scheme=scheme)


def signing_key_from_proto(m: svc.SigningKey) -> tuple[str, str, str]:
    return m.key_id, m.public_key_pem, m.scheme


def model_signature_to_proto(m: SignedModel, key_id: str, public_key_pem: str, scheme: str) -> svc.ModelSignature:
    return svc.ModelSignature(model_id=m.model_id, sha256=m.sha256, bundle=m.bundle, media_type=m.media_type,
                              signing_key=signing_key_to_proto(key_id, public_key_pem, scheme))


def model_signature_from_proto(m: svc.ModelSignature) -> SignedModel:
    return SignedModel(m.model_id, m.sha256, m.bundle, m.media_type)
