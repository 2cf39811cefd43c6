"""TensorFlow Federated through the front door: the seed's `POST /tff/` body (its MinIO fields
accepted and never echoed) creates a DP-FedAvg job that runs in .venv-tff to SUCCEEDED; GET
/tff/{id} and GET /tff/ show it with its privacy report, and its Keras model downloads from the
Registry checked against its hash. Bad seed bodies are 400 naming the field."""

from __future__ import annotations

import hashlib

import grpc
import httpx
import pytest
from mlmesh.federation.v1 import federation_service_pb2 as pb
from mlmesh.federation.v1 import federation_service_pb2_grpc as fed_grpc

from tests.fixtures.federation import blobs_csv

ORG, STRANGER = "smart-energy-ll", "tff-stranger"
SEED_TFF = {"imb_parameter": 1, "dp_parameter": 0.5, "n_clients": 2, "n_samples": 100, "target_label": "target",
            "minio_repo": "repo_url", "access_key": "AK", "secret_key": "SECRET-tff-never-stored"}


@pytest.fixture(scope="module")
def http(stack):
    with httpx.Client(base_url=stack.base_url, timeout=60) as client:
        yield client


def test_bad_seed_tff_bodies_are_400_naming_the_field(stack, http):
    r = http.post("/v1/datasets:upload", params={"organization_id": ORG, "display_name": "tff-bad"},
                  content=b"a,target\n1,0\n2,1\n", headers={**stack.auth(ORG), "content-type": "text/csv"})
    assert r.status_code == 200, r.text
    dataset = r.json()["dataset_id"]
    for change, field in (({"dp_parameter": -1}, "tff.dp_parameter"), ({"n_clients": 0}, "tff.n_clients"),
                          ({"imb_parameter": 0}, "tff.imb_parameter")):
        r = http.post("/tff/", params={"dataset_id": dataset}, json={**SEED_TFF, **change}, headers=stack.auth(ORG))
        assert r.status_code == 400 and field in r.text, (field, r.text)
        assert "SECRET-tff-never-stored" not in r.text


def test_a_tff_job_from_the_seed_route_runs_to_succeeded(stack, http):
    # Prepare: tiny seeded data of the organization
    r = http.post("/v1/datasets:upload", params={"organization_id": ORG, "display_name": "blobs-tff"},
                  content=blobs_csv(), headers={**stack.auth(ORG), "content-type": "text/csv"})
    assert r.status_code == 200, r.text
    dataset = r.json()["dataset_id"]
    # Execute: the seed's POST /tff/, then watch through the front door (native gRPC)
    r = http.post("/tff/", params={"dataset_id": dataset}, json=SEED_TFF, headers=stack.auth(ORG))
    assert r.status_code == 200, r.text
    assert "SECRET-tff-never-stored" not in r.text
    created = r.json()
    assert created["tff"]["dp_parameter"] == 0.5 and created["tff"]["n_clients"] == 2, created
    token = stack.auth(ORG)["authorization"]
    with grpc.insecure_channel(stack.envoy) as channel:
        events = list(fed_grpc.FederationServiceStub(channel).WatchFederatedJob(
            pb.WatchFederatedJobRequest(job_id=created["job_id"]), metadata=(("authorization", token),), timeout=600))
    # Assert: SUCCEEDED with one round of two clients and a formal (epsilon, delta)
    final = events[-1].job
    assert final.state == pb.FederatedJob.STATE_SUCCEEDED, final.failure_reason
    assert [e.round.round for e in events if e.HasField("round")] == [1]
    assert len(final.client_commitments) == 2 and final.result_model_id
    r = http.get(f"/tff/{created['job_id']}", headers=stack.auth(ORG))
    assert r.status_code == 200 and r.json()["state"] == "STATE_SUCCEEDED", r.text
    privacy = r.json()["privacy"]
    assert privacy["formal_guarantee"] and privacy["mechanism"] == "gaussian" and float(privacy["epsilon"]) > 0
    listed = http.get("/tff/", headers=stack.auth(ORG)).json()["federated_jobs"]
    assert created["job_id"] in [j["job_id"] for j in listed]
    assert http.get(f"/tff/{created['job_id']}", headers=stack.auth(STRANGER)).status_code == 404
    model = http.get(f"/v1/models/{final.result_model_id}", headers=stack.auth(ORG)).json()
    assert model["framework"] == "tensorflow" and model["organization_id"] == ORG
    download = http.get(f"/model/{final.result_model_id}", headers=stack.auth(ORG))
    assert download.status_code == 200 and hashlib.sha256(download.content).hexdigest() == model["res_sha256"]
    assert download.content[:4] == b"\x89HDF"
