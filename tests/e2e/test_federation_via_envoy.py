"""The Federation server through the front door: the seed's routes (`/fp`, `/tff`, `/nv`,
`/nvoverser`, with or without their trailing slash) and the AIP ones, with a token; bad input
is 400 naming the field, another organization's job or dataset 404; a FedPATE job created with
the seed's body runs on Flower (.venv-flower) to SUCCEEDED and its student is in the Registry."""

from __future__ import annotations

import hashlib
import uuid

import grpc
import httpx
import pytest
from mlmesh.federation.v1 import federation_service_pb2 as pb
from mlmesh.federation.v1 import federation_service_pb2_grpc as fed_grpc

from tests.fixtures.federation import blobs_csv

ORG, STRANGER = "smart-energy-ll", "fed-stranger"
SEED_FP = {"net_name": "mlp", "num_rounds": 1, "num_teachers": 2, "teacher_epochs": 1, "student_epochs": 1,
           "batch_size": 16, "learning_rate": 0.01, "noise": "laplacian", "epsilon": 0.5, "sigma": 0,
           "num_queries": 40, "noise_data": 20, "bucket_name": "b", "domain_name": "d", "access_key": "AK",
           "secret_key": "SECRET-never-stored"}


@pytest.fixture(scope="module")
def http(stack):
    with httpx.Client(base_url=stack.base_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def dataset(stack, http) -> str:
    r = http.post("/v1/datasets:upload", params={"organization_id": ORG, "display_name": "fed"},
                  content=b"a,b,target\n1,2,0\n3,4,1\n", headers={**stack.auth(ORG), "content-type": "text/csv"})
    assert r.status_code == 200, r.text
    return r.json()["dataset_id"]


def test_seed_list_routes_answer_with_and_without_the_trailing_slash(stack, http):
    for path in ("/fp", "/fp/", "/tff", "/tff/", "/nv/", "/v1/federatedJobs"):
        r = http.get(path, headers=stack.auth(ORG))
        assert r.status_code == 200, (path, r.text)
        assert r.json().get("federated_jobs", []) == [] or all(
            j["organization_id"] == ORG for j in r.json()["federated_jobs"])
    assert http.get("/fp").status_code == 401  # no token


def test_seed_bodies_are_checked_naming_the_field(stack, http, dataset):
    r = http.post("/fp/", params={"dataset_id": dataset}, json={**SEED_FP, "num_teachers": 0},
                  headers=stack.auth(ORG))
    assert r.status_code == 400 and "fedpate.num_teachers" in r.text, r.text
    r = http.post("/fp", params={"dataset_id": dataset}, json={**SEED_FP, "noise_data": 40}, headers=stack.auth(ORG))
    assert r.status_code == 400 and "fedpate.noise_data" in r.text, r.text
    r = http.post("/tff", params={"dataset_id": dataset},
                  json={"imb_parameter": 0.5, "dp_parameter": 1.0, "n_clients": 0, "n_samples": 10},
                  headers=stack.auth(ORG))
    assert r.status_code == 400 and "tff.n_clients" in r.text, r.text
    r = http.post("/v1/federatedJobs", json={"data": {"dataset_id": dataset}}, headers=stack.auth(ORG))
    assert r.status_code == 400 and "spec" in r.text, r.text
    assert "SECRET-never-stored" not in r.text


def test_another_organizations_dataset_and_unknown_jobs_are_not_found(stack, http, dataset):
    r = http.post("/fp", params={"dataset_id": dataset}, json=SEED_FP, headers=stack.auth(STRANGER))
    assert r.status_code == 404 and "data.dataset_id" in r.text, r.text
    unknown = str(uuid.uuid4())
    for method, path in (("GET", f"/fp/{unknown}"), ("DELETE", f"/fp/{unknown}"), ("GET", f"/nv/{unknown}"),
                         ("GET", f"/v1/federatedJobs/{unknown}")):
        r = http.request(method, path, headers=stack.auth(ORG))
        assert r.status_code == 404 and unknown in r.text, (method, path, r.text)


def test_a_fedpate_job_from_the_seed_route_runs_on_flower_to_succeeded(stack, http):
    # Prepare: tiny seeded data of the organization
    r = http.post("/v1/datasets:upload", params={"organization_id": ORG, "display_name": "blobs"},
                  content=blobs_csv(), headers={**stack.auth(ORG), "content-type": "text/csv"})
    assert r.status_code == 200, r.text
    dataset = r.json()["dataset_id"]
    body = {**SEED_FP, "teacher_epochs": 15, "student_epochs": 30, "epsilon": 2.0, "num_queries": 60,
            "noise_data": 40}
    # Execute: the seed's POST /fp/, then watch the job through the front door (native gRPC)
    r = http.post("/fp/", params={"dataset_id": dataset}, json=body, headers=stack.auth(ORG))
    assert r.status_code == 200, r.text
    job_id = r.json()["job_id"]
    assert "SECRET-never-stored" not in r.text
    token = stack.auth(ORG)["authorization"]
    with grpc.insecure_channel(stack.envoy) as channel:
        events = list(fed_grpc.FederationServiceStub(channel).WatchFederatedJob(
            pb.WatchFederatedJobRequest(job_id=job_id), metadata=(("authorization", token),), timeout=300))
    # Assert: SUCCEEDED with its round and commitments; GET /fp/{id} says the same; the model is the org's
    final = events[-1].job
    assert final.state == pb.FederatedJob.STATE_SUCCEEDED, final.failure_reason
    assert [e.round.round for e in events if e.HasField("round")] == [1]
    assert len(final.client_commitments) == 2 and final.result_model_id
    r = http.get(f"/fp/{job_id}", headers=stack.auth(ORG))
    assert r.status_code == 200 and r.json()["state"] == "STATE_SUCCEEDED", r.text
    assert r.json()["result_model_id"] == final.result_model_id
    r = http.get(f"/v1/models/{final.result_model_id}", headers=stack.auth(ORG))
    assert r.status_code == 200 and r.json()["organization_id"] == ORG, r.text
    model = r.json()
    download = http.get(f"/model/{final.result_model_id}", headers=stack.auth(ORG))
    assert download.status_code == 200 and hashlib.sha256(download.content).hexdigest() == model["res_sha256"]
    assert http.get(f"/v1/models/{final.result_model_id}", headers=stack.auth(STRANGER)).status_code == 404
