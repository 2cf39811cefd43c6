"""A model's lineage and its signed attestations through Envoy, on the whole devstack (real Registry,
Ledger on Anvil, Trainer running the recipe in .venv-ml, Translator): the demo's flow — a dataset,
the logistic-regression recipe trained, translated to ONNX — then GET /v1/models/{id}/lineage (REST
and native gRPC through the SDK), `mlmesh models lineage`, `mlmesh provenance export` and the offline
`mlmesh provenance verify` against Anvil's JSON-RPC, and the same file checked by third-party tools
(securesystemslib's DSSE and in-toto-attestation) in their own virtualenv, .venv-provenance. Then the
model is reproduced (POST :reproduce): the reproduction is a lineage node and a signed statement of the
export, and the export's model_signing signature (--model-signature) verifies with OpenSSF
model_signing's own verifier there too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import mlmesh
from clients.recipes import pack_recipe

REPO = Path(__file__).resolve().parents[2]
ORG = "smart-energy-ll"
GRANTEE = "grid-analytics-ll"
STRANGER = "nobody-ll"
PROVENANCE_PYTHON = REPO / ".venv-provenance" / "bin" / "python"


@pytest.fixture(scope="module")
def translated(stack, tmp_path_factory) -> dict:
    """The digits dataset, the digits-logreg recipe trained on it by the Trainer, and its translation."""
    work = tmp_path_factory.mktemp("provenance")
    data = work / "digits.csv"
    subprocess.run([str(REPO / ".venv-ml/bin/python"), str(REPO / "examples/make_digits_csv.py"), "--out", str(data)],
                   check=True, capture_output=True)
    r = httpx.post(f"{stack.base_url}/v1/datasets:upload", params={"organization_id": ORG, "display_name": "digits"},
                   content=data.read_bytes(), headers={**stack.auth(), "content-type": "text/csv"}, timeout=60)
    assert r.status_code == 200, r.text
    dataset = r.json()
    archive = pack_recipe(REPO / "examples/recipes/digits-logreg", work / "digits-logreg.tar.gz").read_bytes()
    r = httpx.post(f"{stack.base_url}/v1/models", content=archive, timeout=60,
                   params={"organization_id": ORG, "developer_id": "dev-7", "dataset_id": dataset["dataset_id"],
                           "display_name": "digits-logreg", "recipe_filename": "digits-logreg.tar.gz"},
                   headers={**stack.auth(), "content-type": "application/gzip"})
    assert r.status_code == 200, r.text
    model_id = r.json()["model_id"]
    deadline = time.monotonic() + 240
    while (model := httpx.get(f"{stack.base_url}/v1/models/{model_id}", headers=stack.auth(),
                              timeout=30).json())["state"] not in ("STATE_TRAINED", "STATE_FAILED"):
        assert time.monotonic() < deadline, f"model still {model['state']}"
        time.sleep(0.5)
    assert model["state"] == "STATE_TRAINED", model
    r = httpx.post(f"{stack.base_url}/v1/models/{model_id}:translate", json={}, headers=stack.auth(), timeout=300)
    assert r.status_code == 200, r.text
    artifact = work / "model.pkl"
    artifact.write_bytes(httpx.get(f"{stack.base_url}/v1/models/{model_id}:download", headers=stack.auth(),
                                   timeout=60).content)
    return {"dataset": dataset, "model": model, "translation": r.json(), "artifact": artifact, "work": work}


def _cli(stack, org: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLMESH_TARGET": stack.envoy, "MLMESH_TOKEN": stack.token(org)}
    return subprocess.run([sys.executable, "-m", "clients.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


def test_lineage_over_rest_shows_every_node_checked(stack, translated):
    model_id = translated["model"]["model_id"]

    r = httpx.get(f"{stack.base_url}/v1/models/{model_id}/lineage", headers=stack.auth(), timeout=60)

    assert r.status_code == 200, r.text
    lineage = r.json()
    kinds = [(n["kind"], n["check_status"]) for n in lineage["nodes"]]
    assert kinds == [("KIND_DATASET", "CHECK_STATUS_VERIFIED"), ("KIND_RECIPE", "CHECK_STATUS_VERIFIED"),
                     ("KIND_TRAINING_JOB", "CHECK_STATUS_NOT_ANCHORED"), ("KIND_MODEL", "CHECK_STATUS_VERIFIED"),
                     ("KIND_TRANSLATION", "CHECK_STATUS_VERIFIED")]
    assert lineage["consistent"] is True and lineage["chain_id"] == "31337"
    dataset, recipe, job, model, translation = lineage["nodes"]
    assert dataset["sha256"] == translated["dataset"]["sha256"]
    assert model["sha256"] == translated["model"]["res_sha256"]
    assert job["resource_id"] == translated["model"]["training_job_id"] and job["attributes"]["state"] == "SUCCEEDED"
    assert all(c["ok"] for c in job["checks"]) and job["checks"]
    assert translation["sha256"] == translated["translation"]["sha256"]
    assert translation["attributes"]["parity.passed"] == "True"
    assert float(translation["attributes"]["parity.max_abs_diff"]) == pytest.approx(
        translated["translation"]["parity"]["max_abs_diff"])
    assert [n.get("parent_node_id", "") for n in lineage["nodes"]] == ["", "1", "2", "3", "4"]


def test_lineage_over_native_grpc_and_access(stack, translated):
    model_id = translated["model"]["model_id"]
    httpx.post(f"{stack.base_url}/v1/models/{model_id}:share", json={"organization_ids": [GRANTEE]},
               headers=stack.auth(), timeout=30).raise_for_status()

    with mlmesh.Client(stack.envoy, token=stack.token(ORG)) as owner:
        ours = owner.models.lineage(model_id)
    with mlmesh.Client(stack.envoy, token=stack.token(GRANTEE)) as grantee:
        theirs = grantee.models.lineage(model_id)
    stranger = httpx.get(f"{stack.base_url}/v1/models/{model_id}/lineage", headers=stack.auth(STRANGER), timeout=30)

    assert len(ours.nodes) == 5 and ours.consistent
    # The grantee reads the model (and so its recipe and translations) but not the owner's dataset or job.
    visible = [(n.visible, n.check_status) for n in theirs.nodes]
    assert [v for v, _ in visible] == [False, True, False, True, True]
    assert not theirs.nodes[0].resource_id and not theirs.nodes[2].resource_id
    assert translated["dataset"]["dataset_id"] not in str(theirs)
    assert stranger.status_code == 404


def test_cli_draws_the_tree(stack, translated):
    result = _cli(stack, ORG, "models", "lineage", translated["model"]["model_id"])

    assert result.returncode == 0, result.stderr
    for word in ("dataset", "recipe", "training job", "model", "translation", "verified", "consistent"):
        assert word in result.stdout


def test_export_verifies_offline_and_fails_on_tampering(stack, translated):
    work = translated["work"]
    out, key = work / "model.intoto.jsonl", work / "mesh.pub.pem"
    exported = _cli(stack, ORG, "provenance", "export", translated["model"]["model_id"], "-o", str(out),
                    "--key-out", str(key))
    assert exported.returncode == 0, exported.stderr
    assert (stack.data_dir / "provenance" / "signing-key.pub.pem").read_text() == key.read_text()
    rpc = f"http://127.0.0.1:{stack.env['MLMESH_ANVIL_PORT']}" if not stack.external else None
    flipped = work / "flipped.pkl"
    data = bytearray(translated["artifact"].read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped.write_bytes(bytes(data))
    other_key = work / "other.pub.pem"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    other_key.write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    args = ["provenance", "verify", str(out), "--key", str(key), "--json"] + (["--rpc", rpc] if rpc else [])
    good = _cli(stack, ORG, *args, "--artifact", str(translated["artifact"]))
    bad_artifact = _cli(stack, ORG, *args, "--artifact", str(flipped))
    bad_key = _cli(stack, ORG, "provenance", "verify", str(out), "--key", str(other_key),
                   "--artifact", str(translated["artifact"]))

    assert good.returncode == 0, good.stdout
    checks = json.loads(good.stdout)["checks"]
    assert len(json.loads(out.read_text().splitlines()[0])["signatures"]) == 1
    assert any("chain sha256" in c["name"] and c["ok"] for c in checks) or not rpc
    assert bad_artifact.returncode == 1 and bad_key.returncode == 1


def test_model_signature_over_rest_and_access(stack, translated):
    model_id = translated["model"]["model_id"]

    ours = httpx.get(f"{stack.base_url}/v1/models/{model_id}/modelSignature", headers=stack.auth(), timeout=120)
    stranger = httpx.get(f"{stack.base_url}/v1/models/{model_id}/modelSignature", headers=stack.auth(STRANGER),
                         timeout=60)

    assert ours.status_code == 200, ours.text
    signed = ours.json()
    assert signed["sha256"] == translated["model"]["res_sha256"]
    assert json.loads(signed["bundle"])["mediaType"] == signed["media_type"]
    assert signed["signing_key"]["public_key_pem"] == (stack.data_dir / "provenance" / "signing-key.pub.pem"
                                                       ).read_text()
    assert stranger.status_code == 404


@pytest.fixture(scope="module")
def reproduced(stack, translated) -> dict:
    """The logistic regression reproduced by the Trainer (POST :reproduce), followed to its end."""
    model_id = translated["model"]["model_id"]
    r = httpx.post(f"{stack.base_url}/v1/models/{model_id}:reproduce", json={}, headers=stack.auth(), timeout=60)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 300
    while (job := httpx.get(f"{stack.base_url}/v1/trainingJobs/{r.json()['job_id']}", headers=stack.auth(),
                            timeout=30).json())["state"] not in ("STATE_SUCCEEDED", "STATE_FAILED", "STATE_CANCELLED"):
        assert time.monotonic() < deadline, f"reproduction still {job['state']}"
        time.sleep(0.5)
    assert job["state"] == "STATE_SUCCEEDED", job
    return job


def test_the_reproduction_is_in_the_lineage_and_signed_in_the_export(stack, translated, reproduced):
    model_id = translated["model"]["model_id"]
    work = translated["work"]
    out, key = work / "reproduced.intoto.jsonl", work / "reproduced.pub.pem"

    lineage = httpx.get(f"{stack.base_url}/v1/models/{model_id}/lineage", headers=stack.auth(), timeout=60).json()
    exported = _cli(stack, ORG, "provenance", "export", model_id, "-o", str(out), "--key-out", str(key))
    verified = _cli(stack, ORG, "provenance", "verify", str(out), "--key", str(key), "--json",
                    "--artifact", str(translated["artifact"]))

    [node] = [n for n in lineage["nodes"] if n["kind"] == "KIND_REPRODUCTION"]
    assert node["resource_id"] == reproduced["job_id"] and node["attributes"]["verdict"] == "IDENTICAL"
    assert node["check_status"] == "CHECK_STATUS_NOT_ANCHORED" and lineage["consistent"] is True
    assert exported.returncode == 0, exported.stderr
    assert verified.returncode == 0, verified.stdout
    assert any("reproduction verdict agrees" in c["name"] and c["ok"] for c in json.loads(verified.stdout)["checks"])


def test_third_party_tools_verify_the_export(stack, translated, reproduced):
    """securesystemslib (DSSE) and in-toto-attestation, in their own virtualenv, on the exported file
    (with the reproduction's statement), and OpenSSF model_signing on the model's signature."""
    if not PROVENANCE_PYTHON.exists():
        pytest.fail(f"{PROVENANCE_PYTHON} is missing: run `make provenance-venv`", pytrace=False)
    work = translated["work"]
    out, key, signature = work / "third.intoto.jsonl", work / "third.pub.pem", work / "model.sig"
    exported = _cli(stack, ORG, "provenance", "export", translated["model"]["model_id"], "-o", str(out),
                    "--key-out", str(key), "--model-signature", str(signature))
    assert exported.returncode == 0, exported.stdout + exported.stderr

    suite = REPO / "tests" / "provenance_venv"
    # Its own --basetemp: a pytest without one resets /tmp/pytest-of-<user> to mode 0700, and the
    # session stack's PostgreSQL (another user) can then no longer reach its data directory under it.
    result = subprocess.run([str(PROVENANCE_PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "--basetemp", str(work / "provenance-venv-pytest"),
                             "--confcutdir", str(suite), str(suite)], cwd=REPO, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "MLMESH_ATTESTATIONS": str(out),
                                              "MLMESH_PUBLIC_KEY": str(key),
                                              "MLMESH_ARTIFACT": str(translated["artifact"]),
                                              "MLMESH_MODEL_SIGNATURE": str(signature),
                                              "PYTHONPATH": ""})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout
