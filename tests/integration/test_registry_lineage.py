"""GetModelLineage and ExportModelAttestations in our real Registry (embedded PostgreSQL, filesystem
store, the real Ledger on Anvil), on a version tree saved through CreateModelVersion (the Learner's
internal RPC, called directly as the Learner would), and GetModelSignature's OpenSSF model_signing
signature checked by model_signing's own CLI in .venv-provenance. The Translator is deliberately unreachable here:
its node must say UNAVAILABLE rather than fail the call. Trained models with a real Trainer and
Translator are covered through Envoy in tests/e2e/test_provenance_via_envoy.py."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
from pathlib import Path

import asyncpg
import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.api import httpbody_pb2
from mlmesh.registry.v1 import lineage_pb2
from mlmesh.registry.v1 import registry_service_pb2 as svc
from mlmesh.registry.v1 import registry_service_pb2_grpc as svc_grpc

from tests.fixtures.registry_models import ORG, as_org, upload_dataset

REPO = Path(__file__).resolve().parents[2]
Node = lineage_pb2.LineageNode
OTHER = "grid-analytics-ll"
STRANGER = "nobody-ll"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def lineage_registry(ledger_server, fresh_db_dsn, tmp_path, trainer):
    """Our Registry, with the Translator's target a port nobody listens on."""
    from servers.registry.main import build
    from servers.registry.settings import RegistrySettings

    settings = RegistrySettings(port=0, metrics_port=-1, database_url=fresh_db_dsn, data_dir=tmp_path,
                                ledger_target=f"127.0.0.1:{ledger_server.port}",
                                trainer_target=f"127.0.0.1:{trainer.port}",
                                translator_target=f"127.0.0.1:{_free_port()}")
    server = await build(settings)
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield svc_grpc.RegistryServiceStub(channel), settings
    await server.stop(0, drain=0)


def _version(dataset_id: str, learner: str, *, parent: str = "", version: int = 1, org: str = ORG,
             data: bytes | None = None):
    record = json.dumps({"learner_id": learner, "parent": parent}).encode()
    data = os.urandom(2048) if data is None else data

    async def gen():
        yield svc.CreateModelVersionRequest(
            organization_id=org, developer_id=f"learner:{learner}", display_name=f"{learner}-v{version}",
            dataset_id=dataset_id, parent_model_id=parent, version=version, framework="sklearn",
            input_signature='{"shape": [null, 1], "dtype": "float32"}', learner_id=learner, observations=10,
            observations_sha256="ab" * 32, validation_loss=0.5, learning_record=record)
        yield svc.CreateModelVersionRequest(chunk=httpbody_pb2.HttpBody(data=data))
    return gen()


async def _tree(stub):
    """v1 → v2a (abandoned) and v1 → v2b → v3, all of learner L1 of ORG."""
    dataset_id = await upload_dataset(stub)
    v1 = await stub.CreateModelVersion(_version(dataset_id, "L1"))
    v2a = await stub.CreateModelVersion(_version(dataset_id, "L1", parent=v1.model_id, version=2))
    v2b = await stub.CreateModelVersion(_version(dataset_id, "L1", parent=v1.model_id, version=2))
    v3 = await stub.CreateModelVersion(_version(dataset_id, "L1", parent=v2b.model_id, version=3))
    return dataset_id, v1, v2a, v2b, v3


def _by_id(lineage):
    return {n.resource_id: n for n in lineage.nodes if n.visible and n.kind != Node.KIND_TRANSLATION}


async def test_version_tree_with_dead_branch_every_node_checked(lineage_registry):
    stub, _ = lineage_registry
    dataset_id, v1, v2a, v2b, v3 = await _tree(stub)

    lineage = await stub.GetModelLineage(svc.GetModelLineageRequest(model_id=v2b.model_id),
                                         metadata=as_org(ORG))

    nodes = _by_id(lineage)
    assert lineage.model_id == v2b.model_id and lineage.chain_id == 31337 and lineage.consistent
    assert nodes[dataset_id].kind == Node.KIND_DATASET and nodes[dataset_id].parent_node_id == ""
    ident = {n.node_id: n.resource_id for n in lineage.nodes}
    assert ident[nodes[v1.model_id].parent_node_id] == dataset_id
    assert ident[nodes[v2a.model_id].parent_node_id] == v1.model_id
    assert ident[nodes[v3.model_id].parent_node_id] == v2b.model_id
    assert [nodes[m.model_id].dead_branch for m in (v1, v2a, v2b, v3)] == [False, True, False, False]
    for m in (v1, v2a, v2b, v3):
        node = nodes[m.model_id]
        assert node.kind == Node.KIND_VERSION and node.sha256 == m.res_sha256 and node.md5 == m.res_md5
        assert node.check_status == Node.CHECK_STATUS_VERIFIED, node.checks
        names = {c.name for c in node.checks}
        assert {"database res_sha256 = chain res_sha256", "learning record sha256 = chain train_image_sha256"} <= names
    assert nodes[dataset_id].check_status == Node.CHECK_STATUS_VERIFIED
    # The Translator cannot be reached: one UNAVAILABLE node per model, and the call still answers.
    translations = [n for n in lineage.nodes if n.kind == Node.KIND_TRANSLATION]
    assert len(translations) == 4
    assert all(n.check_status == Node.CHECK_STATUS_UNAVAILABLE and not n.resource_id for n in translations)


async def test_a_tampered_row_is_a_mismatch_on_its_node(lineage_registry, fresh_db_dsn):
    stub, _ = lineage_registry
    _, v1, v2a, _, v3 = await _tree(stub)
    conn = await asyncpg.connect(fresh_db_dsn)
    try:
        await conn.execute("UPDATE models SET res_sha256 = $1 WHERE model_id = $2", "0" * 64, v2a.model_id)
    finally:
        await conn.close()

    lineage = await stub.GetModelLineage(svc.GetModelLineageRequest(model_id=v3.model_id))

    nodes = _by_id(lineage)
    assert not lineage.consistent
    assert nodes[v2a.model_id].check_status == Node.CHECK_STATUS_MISMATCH
    failed = [c for c in nodes[v2a.model_id].checks if not c.ok]
    assert [c.name for c in failed] == ["database res_sha256 = chain res_sha256"]
    assert nodes[v1.model_id].check_status == Node.CHECK_STATUS_VERIFIED


async def test_hidden_upstream_is_a_placeholder_and_hidden_downstream_is_left_out(lineage_registry):
    stub, _ = lineage_registry
    dataset_id, v1, _, v2b, v3 = await _tree(stub)
    await stub.ShareModel(svc.ShareModelRequest(model_id=v3.model_id, organization_ids=[OTHER]),
                          metadata=as_org(ORG))
    await stub.ShareDataset(svc.ShareDatasetRequest(dataset_id=dataset_id, organization_ids=[OTHER]),
                            metadata=as_org(ORG))
    # OTHER's learner continues ORG's v3.
    w4 = await stub.CreateModelVersion(_version(dataset_id, "L2", parent=v3.model_id, version=4, org=OTHER))

    theirs = await stub.GetModelLineage(svc.GetModelLineageRequest(model_id=w4.model_id), metadata=as_org(OTHER))
    ours = await stub.GetModelLineage(svc.GetModelLineageRequest(model_id=v1.model_id), metadata=as_org(ORG))

    # OTHER may read v3 (shared) but not v2b: the tree starts with a hidden node, without ids or hashes.
    top = theirs.nodes[0]
    assert not top.visible and top.check_status == Node.CHECK_STATUS_HIDDEN
    assert (top.resource_id, top.sha256, top.display_name, list(top.checks)) == ("", "", "", [])
    assert [n.resource_id for n in theirs.nodes if n.visible and n.kind == Node.KIND_VERSION] == [
        v3.model_id, w4.model_id]
    assert v2b.model_id not in str(theirs) and v1.model_id not in str(theirs)
    # ORG does not see OTHER's version at all.
    assert w4.model_id not in str(ours) and OTHER not in str(ours)
    assert v3.model_id in {n.resource_id for n in ours.nodes}


async def test_lineage_refuses_strangers_and_bad_ids(lineage_registry):
    stub, _ = lineage_registry
    _, v1, *_ = await _tree(stub)
    with pytest.raises(grpc.aio.AioRpcError) as stranger:
        await stub.GetModelLineage(svc.GetModelLineageRequest(model_id=v1.model_id), metadata=as_org(STRANGER))
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.GetModelLineage(svc.GetModelLineageRequest(model_id="0" * 8 + "-0000-4000-8000-" + "0" * 12),
                                   metadata=as_org(STRANGER))
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await stub.GetModelLineage(svc.GetModelLineageRequest(model_id="not-a-uuid"))
    assert stranger.value.code() == unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert stranger.value.details().replace(v1.model_id, "X") == unknown.value.details().replace(
        "00000000-0000-4000-8000-000000000000", "X")
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_exported_envelopes_carry_signed_statements_of_every_version(lineage_registry):
    stub, settings = lineage_registry
    dataset_id, v1, v2a, v2b, v3 = await _tree(stub)

    exported = await stub.ExportModelAttestations(svc.ExportModelAttestationsRequest(model_id=v3.model_id),
                                                  metadata=as_org(ORG))
    key = await stub.GetSigningKey(svc.GetSigningKeyRequest())

    assert key == exported.signing_key and key.scheme == "ecdsa-sha2-nistp256"
    assert (settings.data_dir / "provenance" / "signing-key.pub.pem").read_text() == key.public_key_pem
    statements = [json.loads(base64.b64decode(json.loads(e)["payload"])) for e in exported.envelopes]
    subjects = {s["subject"][0]["digest"]["sha256"]: s for s in statements}
    assert set(subjects) == {m.res_sha256 for m in (v1, v2a, v2b, v3)}
    v3_statement = subjects[v3.res_sha256]
    assert v3_statement["predicateType"] == "https://slsa.dev/provenance/v1"
    deps = v3_statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert deps[0]["uri"] == f"mlmesh://models/{v2b.model_id}" and deps[0]["digest"]["sha256"] == v2b.res_sha256
    anchor = v3_statement["predicate"]["runDetails"]["byproducts"][0]["annotations"]
    assert anchor["chainId"] == 31337 and anchor["contractAddress"] == v3.contract_address
    assert subjects[v2a.res_sha256]["subject"][0]["annotations"]["mlmesh.deadBranch"] is True


MODEL_SIGNING = REPO / ".venv-provenance" / "bin" / "model_signing"


def _model_signing_verify(model: Path, signature: Path, public_key: Path) -> subprocess.CompletedProcess:
    """model_signing's own verifier (OpenSSF), as a user runs it: no mlmesh code involved."""
    return subprocess.run([str(MODEL_SIGNING), "verify", "key", "--signature", str(signature), "--public_key",
                           str(public_key), str(model)], capture_output=True, text=True, timeout=120)


async def test_model_signing_signature_verifies_with_model_signing_and_fails_on_tampering(lineage_registry, tmp_path):
    if not MODEL_SIGNING.exists():
        pytest.fail(f"{MODEL_SIGNING} is missing: run `make provenance-venv`", pytrace=False)
    stub, _ = lineage_registry
    dataset_id = await upload_dataset(stub)
    data = os.urandom(300_000)
    v1 = await stub.CreateModelVersion(_version(dataset_id, "L1", data=data))
    model, flipped, other_key = tmp_path / "model.pkl", tmp_path / "flipped.pkl", tmp_path / "other.pub.pem"
    model.write_bytes(data)
    flipped.write_bytes(data[:1000] + bytes([data[1000] ^ 1]) + data[1001:])
    other_key.write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    signed = await stub.GetModelSignature(svc.GetModelSignatureRequest(model_id=v1.model_id), metadata=as_org(ORG))
    (tmp_path / "model.sig").write_text(signed.bundle)
    (tmp_path / "mesh.pub.pem").write_text(signed.signing_key.public_key_pem)

    assert signed.sha256 == v1.res_sha256 == hashlib.sha256(data).hexdigest()
    assert signed.media_type == json.loads(signed.bundle)["mediaType"]
    good = _model_signing_verify(model, tmp_path / "model.sig", tmp_path / "mesh.pub.pem")
    assert good.returncode == 0 and "Verification succeeded" in good.stdout, good.stdout + good.stderr
    bad_file = _model_signing_verify(flipped, tmp_path / "model.sig", tmp_path / "mesh.pub.pem")
    assert bad_file.returncode != 0 and "Hash mismatch" in bad_file.stdout + bad_file.stderr
    bad_key = _model_signing_verify(model, tmp_path / "model.sig", other_key)
    assert bad_key.returncode != 0


async def test_model_signature_refuses_strangers_and_a_row_that_disagrees_with_the_chain(lineage_registry,
                                                                                       fresh_db_dsn):
    stub, _ = lineage_registry
    dataset_id = await upload_dataset(stub)
    v1 = await stub.CreateModelVersion(_version(dataset_id, "L1"))
    conn = await asyncpg.connect(fresh_db_dsn)
    try:
        await conn.execute("UPDATE models SET res_sha256 = $1 WHERE model_id = $2", "0" * 64, v1.model_id)
    finally:
        await conn.close()

    with pytest.raises(grpc.aio.AioRpcError) as stranger:
        await stub.GetModelSignature(svc.GetModelSignatureRequest(model_id=v1.model_id), metadata=as_org(STRANGER))
    with pytest.raises(grpc.aio.AioRpcError) as tampered:
        await stub.GetModelSignature(svc.GetModelSignatureRequest(model_id=v1.model_id), metadata=as_org(ORG))

    assert stranger.value.code() == grpc.StatusCode.NOT_FOUND
    assert tampered.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "does not match its ledger contract" in tampered.value.details()
