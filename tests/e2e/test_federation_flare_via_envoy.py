"""NVIDIA FLARE through the front door: the seed's `POST /nv/` body (epochs, batch_size,
num_clients, num_rounds, MinIO fields) creates a FedAvg job that FLARE's simulator runs in
.venv-flare (2 clients, 1 round, tiny seeded data); it is watched to SUCCEEDED over native gRPC,
`GET /nv/{id}` says the same with the privacy statement "no formal guarantee" (no DP filter in the
seed's body), and the global model downloads from the Registry matching its hash. The seed's
`/nvoverser` starts, serves kits of and shuts down a FLARE server for real clients."""

from __future__ import annotations

import hashlib
import io
import zipfile

import grpc
import httpx
import pytest
from mlmesh.federation.v1 import federation_service_pb2 as pb
from mlmesh.federation.v1 import federation_service_pb2_grpc as fed_grpc

from tests.fixtures.federation import blobs_csv

ORG, STRANGER = "smart-energy-ll", "fed-stranger"
SEED_NV = {"epochs": 5, "batch_size": 16, "num_clients": 2, "num_rounds": 1, "bucket_name": "b",
           "domain_name": "d", "access_key": "AK", "secret_key": "SECRET-never-stored"}


@pytest.fixture(scope="module")
def http(stack):
    with httpx.Client(base_url=stack.base_url, timeout=60) as client:
        yield client


def test_a_flare_job_from_the_seed_route_runs_in_the_simulator_to_succeeded(stack, http):
    # Prepare: tiny seeded data of the organization
    r = http.post("/v1/datasets:upload", params={"organization_id": ORG, "display_name": "blobs-nv"},
                  content=blobs_csv(), headers={**stack.auth(ORG), "content-type": "text/csv"})
    assert r.status_code == 200, r.text
    dataset = r.json()["dataset_id"]
    r = http.post("/nv/", params={"dataset_id": dataset}, json={**SEED_NV, "num_clients": 0}, headers=stack.auth(ORG))
    assert r.status_code == 400 and "flare.num_clients" in r.text, r.text
    # Execute: the seed's POST /nv/, then watch the job through the front door (native gRPC)
    r = http.post("/nv/", params={"dataset_id": dataset}, json=SEED_NV, headers=stack.auth(ORG))
    assert r.status_code == 200, r.text
    assert "SECRET-never-stored" not in r.text
    job_id = r.json()["job_id"]
    token = stack.auth(ORG)["authorization"]
    with grpc.insecure_channel(stack.envoy) as channel:
        events = list(fed_grpc.FederationServiceStub(channel).WatchFederatedJob(
            pb.WatchFederatedJobRequest(job_id=job_id), metadata=(("authorization", token),), timeout=300))
    # Assert: SUCCEEDED with its round and the clients' commitments; GET /nv/{id} says the same
    final = events[-1].job
    assert final.state == pb.FederatedJob.STATE_SUCCEEDED, final.failure_reason
    rounds = [e.round for e in events if e.HasField("round")]
    assert [r.round for r in rounds] == [1] and len(rounds[0].clients) == 2
    assert final.framework_version == "nvflare 2.9.0"
    assert len(final.client_commitments) == 2 and final.result_model_id
    r = http.get(f"/nv/{job_id}", headers=stack.auth(ORG))
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["state"] == "STATE_SUCCEEDED" and job["result_model_id"] == final.result_model_id
    assert not job["privacy"].get("formal_guarantee", False)
    assert "no formal differential-privacy guarantee" in job["privacy"]["explanation"]
    assert any(j["job_id"] == job_id for j in http.get("/nv", headers=stack.auth(ORG)).json()["federated_jobs"])
    model = http.get(f"/v1/models/{final.result_model_id}", headers=stack.auth(ORG)).json()
    download = http.get(f"/model/{final.result_model_id}", headers=stack.auth(ORG))
    assert download.status_code == 200 and hashlib.sha256(download.content).hexdigest() == model["res_sha256"]
    assert http.get(f"/nv/{job_id}", headers=stack.auth(STRANGER)).status_code == 404


def test_the_seed_nvoverser_route_starts_serves_kits_and_shuts_down_a_flare_server(stack, http):
    """`POST /nvoverser/ {"start": true}` provisions and starts a FLARE server (default clients
    site-1 and site-2), its kits download over REST as zip archives, `{"shutdown": true}` stops it."""
    # Execute
    r = http.post("/nvoverser/", json={"start": True}, headers=stack.auth(ORG))
    # Assert
    assert r.status_code == 200, r.text
    server = r.json()
    assert server["state"] == "STATE_RUNNING" and server["client_names"] == ["site-1", "site-2"], server
    assert server["address"].startswith("127.0.0.1:")
    sid = server["flare_server_id"]
    try:
        r = http.get(f"/nvoverser/{sid}", headers=stack.auth(ORG))
        assert r.status_code == 200 and r.json()["state"] == "STATE_RUNNING", r.text
        kit = http.get(f"/v1/flareServers/{sid}/clients/site-1:downloadStartupKit", headers=stack.auth(ORG))
        assert kit.status_code == 200 and kit.content[:2] == b"PK", kit.text[:300]
        assert "site-1/startup/client.crt" in zipfile.ZipFile(io.BytesIO(kit.content)).namelist()
        for path in (f"/nvoverser/{sid}", f"/v1/flareServers/{sid}/clients/site-1:downloadStartupKit"):
            assert http.get(path, headers=stack.auth(STRANGER)).status_code == 404, path
        r = http.post("/nvoverser", json={"shutdown": True}, headers=stack.auth(ORG))
        assert r.status_code == 200 and r.json()["state"] == "STATE_STOPPED" and r.json()["flare_server_id"] == sid
    finally:
        assert http.delete(f"/nvoverser/{sid}", headers=stack.auth(ORG)).status_code == 200
    assert http.get(f"/nvoverser/{sid}", headers=stack.auth(ORG)).status_code == 404
