"""Lineage converters (round trip), the attestation builder and the offline verifier
(mlmesh.client.provenance): signatures, tampering, ABI decoding, the anchor selectors. No sockets."""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from eth_abi import encode
from rich.console import Console
from eth_utils import keccak

from mlmesh.client import provenance
from servers.registry.adapters.signing_key import EcdsaSigner
from servers.registry.api.lineage_converters import lineage_from_proto, lineage_to_proto
from servers.registry.domain.attestations import REPRODUCTION_PREDICATE, envelope, statements
from servers.registry.domain.datasets import Check
from servers.registry.domain.lineage import (
    DATA_COMMITMENT,
    DATASET,
    FEDERATED_JOB,
    HIDDEN,
    MISMATCH,
    MODEL,
    NOT_ANCHORED,
    OPTIMIZER_AGENT,
    RECIPE,
    REPRODUCTION,
    TRAINING_JOB,
    TRANSLATION,
    VERSION,
    Lineage,
    LineageCore,
    LineageNode,
    reproduction_node,
)
from servers.registry.domain.ports import ReproductionInfo, TrainingJobInfo

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


def _reproduced(verdict: str = "IDENTICAL") -> Lineage:
    """_lineage() with one reproduction of the model m1 under it (node 3)."""
    lineage = _lineage()
    same = verdict == "IDENTICAL"
    lineage.nodes.insert(5, LineageNode(
        REPRODUCTION, 3, resource_id="j2", display_name=f"reproduction ({verdict.lower()})", organization_id="o",
        sha256="f" * 64 if same else "9" * 64, status=NOT_ANCHORED,
        attributes={"verdict": verdict, "max_abs_diff": "0.0" if same else "0.0125",
                    "compared_samples": "0" if same else "1797", "method": "m", "original_sha256": "f" * 64,
                    "original_md5": "e" * 32, "executor": "local", "end_time": NOW.isoformat()}))
    return lineage


@pytest.mark.parametrize("verdict", ["IDENTICAL", "DIFFERENT"])
def test_a_reproduction_is_its_own_signed_statement(verdict, tmp_path):
    signer = EcdsaSigner.load(None, tmp_path / "data")
    stmts = statements(_reproduced(verdict), "0.1.0")
    [repro] = [s for s in stmts if s["predicateType"] == REPRODUCTION_PREDICATE]
    path = tmp_path / "r.intoto.jsonl"
    path.write_text("".join(envelope(s, signer) + "\n" for s in stmts))
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"x")

    report = provenance.verify_file(path, public_key_pem=signer.public_key_pem)

    assert report.ok, report.failed()
    p = repro["predicate"]
    assert repro["subject"][0]["digest"] == {"sha256": "f" * 64, "md5": "e" * 32}  # the original model
    assert p["verdict"] == verdict and p["original"]["ledger"]["uri"] == "eip155:31337:0xM"
    assert p["reproduced"]["digest"]["sha256"] == ("f" * 64 if verdict == "IDENTICAL" else "9" * 64)
    assert p["recipe"]["digest"]["sha256"] == "d" * 64 and p["datasets"][0]["uri"] == "mlmesh://datasets/d1"
    assert p["comparison"]["comparedSamples"] == (0 if verdict == "IDENTICAL" else 1797)
    assert provenance.anchor_of(repro)["contractAddress"] == "0xM"


def test_a_tampered_or_self_contradicting_reproduction_fails(tmp_path):
    signer = EcdsaSigner.load(None, tmp_path / "data")
    [repro] = [s for s in statements(_reproduced("DIFFERENT"), "0.1.0")
               if s["predicateType"] == REPRODUCTION_PREDICATE]
    env = json.loads(envelope(repro, signer))
    edited = json.loads(base64.b64decode(env["payload"]))
    edited["predicate"]["verdict"] = "IDENTICAL"
    env["payload"] = base64.b64encode(json.dumps(edited).encode()).decode()
    (tmp_path / "edited.jsonl").write_text(json.dumps(env) + "\n")
    # Signed by the right key but contradicting itself: IDENTICAL with other bytes.
    (tmp_path / "lying.jsonl").write_text(envelope(edited, signer) + "\n")

    tampered = provenance.verify_file(tmp_path / "edited.jsonl", public_key_pem=signer.public_key_pem)
    lying = provenance.verify_file(tmp_path / "lying.jsonl", public_key_pem=signer.public_key_pem)

    assert [c.name for c in tampered.failed()] == ["envelope 1: DSSE signature verifies with the given key"]
    assert [c.name for c in lying.failed()] == ["envelope 1: reproduction verdict agrees with its digests"]


def test_a_federated_students_statement_names_its_job_dataset_and_commitments():
    lineage = Lineage(model_id="s1", check_time=NOW, chain_id=31337, nodes=[
        LineageNode(DATASET, None, resource_id="d1", display_name="blobs.csv", sha256="b" * 64, contract_address="0xD"),
        LineageNode(FEDERATED_JOB, 0, resource_id="f1", display_name="federated job (flower)", sha256="c" * 64,
                    contract_address="0xS", attributes={"framework": "fedpate", "privacy.epsilon": "160.0",
                                                        "parameters": '{"num_teachers": 2}'}),
        LineageNode(DATA_COMMITMENT, 1, resource_id="teacher-0", sha256="1" * 64,
                    attributes={"sample_count": "84", "commitment": "not a Registry dataset"}),
        LineageNode(DATA_COMMITMENT, 1, resource_id="teacher-1", sha256="2" * 64, attributes={"sample_count": "84"}),
        LineageNode(VERSION, 1, resource_id="s1", display_name="student", sha256="f" * 64, contract_address="0xS",
                    version=1, attributes={"framework": "pytorch"}),
    ])

    [statement] = statements(lineage, "0.1.0")

    definition = statement["predicate"]["buildDefinition"]
    assert definition["buildType"] == "https://mlmesh.dev/buildtypes/federated-learning/v1"
    assert [(d["uri"], d["annotations"]["role"]) for d in definition["resolvedDependencies"]] == [
        ("mlmesh://datasets/d1", "dataset"), ("mlmesh://federatedJobs/f1", "federated job record"),
        ("mlmesh://federatedJobs/f1/commitments/teacher-0", "data commitment"),
        ("mlmesh://federatedJobs/f1/commitments/teacher-1", "data commitment")]
    assert definition["resolvedDependencies"][2]["annotations"]["sampleCount"] == "84"
    assert definition["externalParameters"]["privacy"] == {"epsilon": "160.0"}
    assert statement["predicate"]["runDetails"]["builder"]["id"] == "https://mlmesh.dev/builders/federation"
    assert statement["predicate"]["runDetails"]["byproducts"][0]["uri"] == "eip155:31337:0xS"


def _job(**changes) -> TrainingJobInfo:
    r = ReproductionInfo(outcome="IDENTICAL", ledger_res_sha256="f" * 64, ledger_res_hash="e" * 32,
                         reproduced_sha256="f" * 64, max_abs_diff=0.0, compared_samples=0, top1_agreement=-1.0,
                         method="bytes")
    values = dict(job_id="j2", model_id="m1", dataset_id="d1", state="SUCCEEDED", executor="local",
                  framework="sklearn", failure_reason="", create_time=NOW, start_time=NOW, end_time=NOW,
                  purpose="REPRODUCTION", reproduction=r)
    values.update(changes)
    return TrainingJobInfo(**values)


def test_a_reproduction_node_is_checked_against_the_model_it_names():
    model = _lineage().nodes[3]
    record = SimpleNamespace(model_id="m1", dataset_id="d1", res_sha256=model.sha256, res_md5=model.md5,
                             organization_id="o")
    good = reproduction_node(_job(), record, 3, "o")
    stale = reproduction_node(_job(reproduction=replace(_job().reproduction, ledger_res_sha256="0" * 64,
                                                        reproduced_sha256="0" * 64)), record, 3, "o")
    claims = reproduction_node(_job(reproduction=replace(_job().reproduction, reproduced_sha256="9" * 64)),
                               record, 3, "o")

    assert good.status == NOT_ANCHORED and all(c.ok for c in good.checks) and good.attributes["verdict"] == "IDENTICAL"
    assert stale.status == MISMATCH
    assert [c.name for c in stale.checks if not c.ok] == ["compared with res_sha256 = model res_sha256"]
    assert [c.name for c in claims.checks if not c.ok] == ["IDENTICAL: reproduced sha256 = res_sha256"]


def test_the_cli_tree_says_what_a_commitment_and_a_reproduction_are():
    from clients.provenance import draw

    lineage = lineage_to_proto(Lineage(model_id="s1", check_time=NOW, chain_id=31337, nodes=[
        LineageNode(FEDERATED_JOB, None, resource_id="f1", display_name="federated job (fedpate)", sha256="c" * 64),
        LineageNode(DATA_COMMITMENT, 0, resource_id="teacher-0", display_name="data commitment of teacher-0",
                    sha256="1" * 64, attributes={"sample_count": "84"}),
        LineageNode(MODEL, 0, resource_id="m1", display_name="cnn", sha256="f" * 64),
        LineageNode(REPRODUCTION, 2, resource_id="j2", display_name="reproduction (different)", sha256="9" * 64,
                    status=NOT_ANCHORED, attributes={"verdict": "DIFFERENT", "max_abs_diff": "0.0125",
                                                     "compared_samples": "1797"}),
    ]))
    console = Console(width=200, record=True)

    console.print(draw(lineage))

    text = console.export_text()
    assert "data commitment" in text and "84 samples (a commitment, not a Registry dataset)" in text
    assert "federated job" in text and "DIFFERENT max|Δ| 0.0125 over 1797 rows" in text


async def test_model_signing_without_its_environment_or_with_a_failing_worker_says_so(tmp_path):
    from servers.common import errors
    from servers.registry.adapters.model_signer import ProcessModelSigner

    missing = ProcessModelSigner(tmp_path / "no-venv" / "python", tmp_path / "key.pem")
    failing = ProcessModelSigner(Path("/bin/false"), tmp_path / "key.pem")  # exits 1 at once, writes nothing

    with pytest.raises(errors.FailedPrecondition) as unavailable:
        await missing.sign("model.pkl", "a" * 64)
    with pytest.raises(errors.Unavailable) as failed:
        await failing.sign("model.pkl", "a" * 64)

    assert unavailable.value.reason == "MODEL_SIGNING_UNAVAILABLE" and "make provenance-venv" in unavailable.value.message
    assert failed.value.reason == "MODEL_SIGNING_FAILED"


class _Records:
    """Stands in for ModelCore.download_recipe (the record stored with a model) in _producer tests."""

    def __init__(self, record: bytes):
        self.record = record

    async def download_recipe(self, model_id, *, caller_org):
        async def chunks():
            yield self.record
        return None, chunks()


def _produced(learner_id: str, record: dict | bytes) -> tuple[Lineage, SimpleNamespace, LineageCore]:
    raw = record if isinstance(record, bytes) else json.dumps(record).encode()
    root = SimpleNamespace(model_id="p1", learner_id=learner_id, organization_id="o", dataset_id="d1",
                           recipe_size_bytes=len(raw), recipe_md5="c" * 32, recipe_sha256="d" * 64,
                           contract_address="0xP", contract_tx_hash="0x1", create_time=NOW, observations=84,
                           observations_sha256="")
    core = LineageCore(_Records(raw), None, None, None, None)
    return Lineage(model_id="p1", nodes=[LineageNode(DATASET, None, resource_id="d1")], check_time=NOW), root, core


async def test_a_simbench_policy_names_its_agent_and_a_malformed_federated_record_is_a_mismatch():
    lineage, root, core = _produced("optimizer-agent:a1", {
        "agent_id": "a1", "algorithm": "PPO", "grid": {"simbench_code": "1-LV-rural1--0-sw"},
        "hyperparameters": {"n_steps": 16}, "seed": 3})
    index = await core._producer(lineage, root, 0, "o")
    agent = lineage.nodes[index]
    assert (agent.kind, agent.resource_id, agent.parent, agent.status) == (OPTIMIZER_AGENT, "a1", 0, "VERIFIED")
    assert agent.attributes["simbench_code"] == "1-LV-rural1--0-sw" and agent.sha256 == "d" * 64

    lineage, root, core = _produced("federated-job:f1", {
        "federated_job_id": "f1", "client_commitments": json.dumps([{"client_id": "t0", "sha256": "1" * 64,
                                                                     "sample_count": "many"}])})
    index = await core._producer(lineage, root, 0, "o")
    job = lineage.nodes[index]
    assert (job.kind, job.status, len(lineage.nodes)) == (FEDERATED_JOB, MISMATCH, 2)  # no commitment nodes
    assert [c.name for c in job.checks if not c.ok] == ["record readable"]

    lineage, root, core = _produced("federated-job:f1", b"[not json")
    job = lineage.nodes[await core._producer(lineage, root, 0, "o")]
    assert job.status == MISMATCH and [c.name for c in job.checks] == ["record readable (a JSON object)"]
