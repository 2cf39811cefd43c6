"""NVIDIA FLARE FedAvg through the real Federation server (port 0, embedded PostgreSQL, our
Registry on a real Ledger): FLARE 2.9's own simulator (SimEnv) in .venv-flare runs 2 clients for
1 round on tiny seeded data; the clients' data commitments, the round's figures and the privacy
report reach the job, and the final global model is registered with its provenance and anchored.
A cancelled FLARE job leaves none of FLARE's processes behind."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path

import grpc
import pytest
from mlmesh.federation.v1 import federation_service_pb2 as pb
from mlmesh.federation.v1 import federation_service_pb2_grpc as fed_grpc
from mlmesh.registry.v1 import registry_service_pb2 as reg_pb

from tests.fixtures.federation import blobs_csv
from tests.integration.test_federation import (
    FLOWER_PYTHON,
    OWNER,
    STRANGER,
    J,
    as_org,
    expected_commitments,
    gone,
    job_in,
    processes_in,
    refused,
    upload,
)

REPO = Path(__file__).resolve().parents[2]
FLARE_PYTHON = REPO / ".venv-flare" / "bin" / "python"


@pytest.fixture
async def flare_federation(registry, fresh_db_dsn, tmp_path):
    """(Federation stub, Registry stub) with the real FLARE launcher (.venv-flare)."""
    from servers.federation.main import build
    from servers.federation.settings import FederationSettings

    for python, target in ((FLARE_PYTHON, "flare-venv"), (FLOWER_PYTHON, "flower-venv")):
        if not python.exists():
            pytest.fail(f"{python} is missing: run `make {target}` (part of `make test`)", pytrace=False)
    registry_stub, registry_server = registry
    server, _core = await build(FederationSettings(
        port=0, metrics_port=-1, database_url=fresh_db_dsn, data_dir=tmp_path / "fed",
        registry_target=f"127.0.0.1:{registry_server.port}", flare_python=FLARE_PYTHON))
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield fed_grpc.FederationServiceStub(channel), registry_stub
    await server.stop(0, drain=0)


def flare_job(dataset: str, **spec) -> pb.CreateFederatedJobRequest:
    values = dict(epochs=5, batch_size=16, num_clients=2, num_rounds=1, learning_rate=0.01)
    values.update(spec)
    return pb.CreateFederatedJobRequest(job=J(display_name="flare blobs", data=pb.FederatedData(dataset_id=dataset,
                                                                                              seed=3),
                                              flare=pb.FlareSpec(**values)))


async def registered_global_model(registry, job: pb.FederatedJob, dataset: str, *, model_framework: str = "pytorch",
                                  magic: bytes = b"PK", framework: str = "flare",
                                  version: str = "nvflare 2.9.0") -> tuple[reg_pb.Model, dict]:
    """A federated job's final model as the Registry holds it (the owner's, of `model_framework`,
    anchored, consistent with the ledger, downloadable, its file starting with `magic`: TorchScript
    by default) and its provenance record (the job, `framework`, a version starting with `version`)."""
    model = await registry.GetModel(reg_pb.GetModelRequest(model_id=job.result_model_id), metadata=as_org(OWNER))
    assert model.organization_id == OWNER and model.framework == model_framework and model.dataset_id == dataset
    assert model.contract_address and model.verify_tx_hash
    proof = await registry.GetModelProvenance(reg_pb.GetModelProvenanceRequest(model_id=model.model_id),
                                              metadata=as_org(OWNER))
    assert proof.consistent, [c for c in proof.checks if not c.ok]
    blob = b"".join([c.data async for c in registry.DownloadModel(
        reg_pb.DownloadModelRequest(model_id=model.model_id), metadata=as_org(OWNER))])
    assert hashlib.sha256(blob).hexdigest() == model.res_sha256 and blob.startswith(magic)
    record = json.loads(b"".join([c.data async for c in registry.DownloadModelRecipe(
        reg_pb.DownloadModelRecipeRequest(model_id=model.model_id), metadata=as_org(OWNER))]))
    assert record["framework"] == framework and record["framework_version"].startswith(version)
    assert record["federated_job_id"] == job.job_id
    return model, record


async def test_flare_fedavg_with_svt_runs_in_the_simulator_and_registers_the_global_model(
        flare_federation, tmp_path) -> None:
    """SVT filter on the clients' results: the round and the job report a formal epsilon (one round
    of svt_epsilon 1.5), as FLARE's own accountant does in the job's log; the commitments are the
    shards FedPATE's partitioning gives 2 clients."""
    stub, registry = flare_federation
    data = blobs_csv()
    (tmp_path / "data.csv").write_bytes(data)
    dataset = await upload(registry, OWNER, data)
    request = flare_job(dataset, privacy_filter=pb.FlareSpec.PRIVACY_FILTER_SVT, svt_epsilon=1.5)
    # Execute
    created = await stub.CreateFederatedJob(request, metadata=as_org(OWNER))
    events = [e async for e in stub.WatchFederatedJob(pb.WatchFederatedJobRequest(job_id=created.job_id),
                                                      metadata=as_org(OWNER))]
    # Assert: the job's path, its round and privacy
    job = events[-1].job
    assert job.state == J.STATE_SUCCEEDED, job.failure_reason
    states = [e.job.state for e in events if e.HasField("job")]
    assert J.STATE_RUNNING in states and J.STATE_REGISTERING in states
    assert job.framework_version == "nvflare 2.9.0"
    rounds = [e.round for e in events if e.HasField("round")]
    assert [r.round for r in rounds] == [1]
    assert sorted(c.client_id for c in rounds[0].clients) == ["site-1", "site-2"]
    assert all(c.num_examples == 84 and 0 <= c.accuracy <= 1 for c in rounds[0].clients), rounds[0].clients
    assert 0 <= rounds[0].accuracy <= 1 and rounds[0].loss > 0
    assert rounds[0].privacy.formal_guarantee and rounds[0].privacy.epsilon == pytest.approx(1.5)
    assert job.privacy.formal_guarantee and job.privacy.epsilon == pytest.approx(1.5) and job.privacy.delta == 0
    assert "SVT" in job.privacy.mechanism
    # FLARE's filter really ran on both clients' results, and its own accountant agrees with ours
    logs = [e.log.text for e in events if e.HasField("log")]
    for site in ("site-1", "site-2"):
        assert f"{site}: FLARE's SVT filter reports epsilon 1.5, delta 0.0 (pure_dp_sum) for this round's result" in logs
    got = sorted((c.sha256, c.sample_count) for c in job.client_commitments)
    assert got == sorted(expected_commitments(tmp_path / "data.csv", 2, 0.3, 3))
    # The global model: the organization's, anchored, consistent with the ledger, with its provenance
    model, record = await registered_global_model(registry, job, dataset)
    assert json.loads(model.input_signature)["csv_feature_columns"] == [0, 8]
    assert json.loads(record["request"])["spec"]["svt_epsilon"] == 1.5
    assert json.loads(record["privacy"])["epsilon"] == pytest.approx(1.5)
    assert sorted((c["sha256"], c["sample_count"]) for c in json.loads(record["client_commitments"])) == got
    err = await refused(registry.GetModel, reg_pb.GetModelRequest(model_id=model.model_id), STRANGER)
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_flare_options_are_refused_before_anything_runs(flare_federation) -> None:
    stub, registry = flare_federation
    dataset = await upload(registry, OWNER, blobs_csv())
    err = await refused(stub.CreateFederatedJob, flare_job(dataset, num_clients=0))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "flare.num_clients" in err.details()
    err = await refused(stub.CreateFederatedJob, flare_job(dataset, svt_epsilon=1.0))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "flare.svt_epsilon" in err.details()


async def test_cancelling_a_flare_job_stops_every_flare_process(flare_federation, tmp_path) -> None:
    stub, registry = flare_federation
    dataset = await upload(registry, OWNER, blobs_csv())
    job = await stub.CreateFederatedJob(flare_job(dataset, epochs=1000, num_rounds=50), metadata=as_org(OWNER))
    job_dir = tmp_path / "fed" / "federation" / "jobs" / job.job_id
    # Wait until FLARE's simulator has started its client processes beside the launcher
    deadline = time.monotonic() + 120
    while len(procs := processes_in(job_dir)) < 3:
        assert time.monotonic() < deadline, f"the FLARE processes did not start: {procs}"
        await job_in(stub, job.job_id, (J.STATE_PREPARING, J.STATE_RUNNING))
        await asyncio.sleep(0.5)
    # Execute
    cancelled = await stub.CancelFederatedJob(pb.CancelFederatedJobRequest(job_id=job.job_id), metadata=as_org(OWNER))
    # Assert: CANCELLED, nothing registered, and not one of its processes left
    assert cancelled.state == J.STATE_CANCELLED and cancelled.result_model_id == ""
    assert all(gone(p.pid) for p in procs)
    assert processes_in(job_dir) == []
