"""Lineage converters (round trip), the attestation builder and the offline verifier
(mlmesh.client.provenance): signatures, tampering, ABI decoding, the anchor selectors. No sockets."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from eth_abi import encode
from eth_utils import keccak

from mlmesh.client import provenance
from servers.registry.adapters.signing_key import EcdsaSigner
from servers.registry.api.lineage_converters import lineage_from_proto, lineage_to_proto
from servers.registry.domain.attestations import envelope, statements
from servers.registry.domain.datasets import Check
from servers.registry.domain.lineage import (
    DATASET,
    HIDDEN,
    MODEL,
    NOT_ANCHORED,
    RECIPE,
    TRAINING_JOB,
    TRANSLATION,
    Lineage,
    LineageNode,
)

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def _lineage() -> Lineage:
    return Lineage(model_id="m1", check_time=NOW, chain_id=31337, nodes=[
        LineageNode(DATASET, None, resource_id="d1", display_name="digits.csv", organization_id="o", size_bytes=9,
                    md5="a" * 32, sha256="b" * 64, contract_address="0xD", tx_hash="0x1", create_time=NOW,
                    checks=[Check("database sha256 = chain sha256", True)]),
        LineageNode(RECIPE, 0, resource_id="m1", display_name="r.tar.gz", md5="c" * 32, sha256="d" * 64,
                    contract_address="0xM"),
        LineageNode(TRAINING_JOB, 1, resource_id="j1", status=NOT_ANCHORED,
                    attributes={"executor": "local", "state": "SUCCEEDED", "start_time": NOW.isoformat()}),
        LineageNode(MODEL, 2, resource_id="m1", display_name="logreg", md5="e" * 32, sha256="f" * 64,
                    contract_address="0xM", tx_hash="0x2", attributes={"framework": "sklearn"}),
        LineageNode(TRANSLATION, 3, resource_id="t1", md5="1" * 32, sha256="2" * 64, contract_address="0xT",
                    attributes={"opset": "17", "parity.max_abs_diff": "1e-06", "parity.passed": "True"}),
        LineageNode(DATASET, None, visible=False, status=HIDDEN),
    ])


def test_lineage_round_trip():
    lineage = _lineage()
    back = lineage_from_proto(lineage_to_proto(lineage))
    assert [(n.kind, n.parent, n.visible, n.resource_id, n.sha256, n.status) for n in back.nodes] == [
        (n.kind, n.parent, n.visible, n.resource_id, n.sha256, n.status) for n in lineage.nodes]
    assert back.nodes[0].checks == lineage.nodes[0].checks and back.chain_id == 31337


def test_hidden_node_carries_nothing_but_its_place():
    proto = lineage_to_proto(_lineage()).nodes[5]
    assert (proto.visible, proto.resource_id, proto.sha256, proto.display_name) == (False, "", "", "")


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    signer = EcdsaSigner.load(None, tmp_path_factory.mktemp("data"))
    lines = [envelope(s, signer) for s in statements(_lineage(), "0.1.0")]
    return signer, lines


def test_statements_name_the_artifacts_and_their_inputs(signed):
    _, lines = signed
    stmts = [json.loads(base64.b64decode(json.loads(line)["payload"])) for line in lines]
    assert [s["subject"][0]["digest"]["sha256"] for s in stmts] == ["f" * 64, "2" * 64]
    model = stmts[0]["predicate"]
    deps = model["buildDefinition"]["resolvedDependencies"]
    assert [d["uri"] for d in deps] == ["mlmesh://datasets/d1", "mlmesh://models/m1/recipe"]
    assert model["runDetails"]["metadata"]["invocationId"] == "j1"
    assert model["runDetails"]["byproducts"][0]["uri"] == "eip155:31337:0xM"


def test_offline_verifier_accepts_the_envelopes_and_refuses_tampering(signed, tmp_path):
    signer, lines = signed
    good = tmp_path / "a.intoto.jsonl"
    good.write_text("\n".join(lines) + "\n")
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"x")
    assert provenance.verify_file(good, public_key_pem=signer.public_key_pem).ok

    env = json.loads(lines[0])
    stmt = json.loads(base64.b64decode(env["payload"]))
    stmt["predicate"]["buildDefinition"]["externalParameters"]["framework"] = "pytorch"
    env["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()
    edited = tmp_path / "edited.intoto.jsonl"
    edited.write_text(json.dumps(env) + "\n")
    other = EcdsaSigner.load(None, tmp_path / "other")

    assert not provenance.verify_file(edited, public_key_pem=signer.public_key_pem).ok
    assert not provenance.verify_file(good, public_key_pem=other.public_key_pem).ok
    # The artifact's digest must be a subject: b"x" is not the model.
    report = provenance.verify_file(good, public_key_pem=signer.public_key_pem, artifact=artifact)
    assert [c.name.split(":")[0] for c in report.failed()] == ["model.bin"]


def test_selectors_are_the_contract_functions():
    for function, selector in provenance.SELECTORS.items():
        assert keccak(text=function)[:4].hex() == selector


def test_abi_decoder_reads_what_the_contracts_return():
    model = encode(["string"] * 8 + ["bool"], ["m", "o", "d", "ds", "h", "s", "res", "sha", True])
    assert provenance._decode(provenance.RETURNS["get_model_params()"], model) == [
        "m", "o", "d", "ds", "h", "s", "res", "sha", True]
    dataset = encode(["string", "string", "string", "int256", "string", "string"], ["d", "o", "(8,8)", 42, "m", "s"])
    assert provenance._decode(provenance.RETURNS["get_dataset_params()"], dataset)[3] == 42
    struct = "(string,string,address,string,string,string,string,uint256,string,string,string,string,bool)"
    values = ("t", "m", "0x" + "ab" * 20, "src", "md5", "sha", "conv", 17, "1e-6", "0", "1e-5", "1e-3", True)
    decoded = provenance._decode(provenance.RETURNS["get_translation_params()"], encode([struct], [values]))
    assert decoded[0][5] == "sha" and decoded[0][7] == 17 and decoded[0][2] == "0x" + "ab" * 20
    assert provenance.anchored_digests("get_translation_params()", decoded) == {"md5": "md5", "sha256": "sha"}
