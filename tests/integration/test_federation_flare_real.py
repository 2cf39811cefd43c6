"""NVIDIA FLARE jobs in real mode through the real Federation server (port 0, embedded
PostgreSQL, our Registry on a real Ledger, .venv-flare): a FLARE server provisioned and started
through the API on 127.0.0.1, both clients' startup kits downloaded through the RPC and started as
separate processes, each with its own local CSV (MLMESH_FLARE_DATA) that never reaches the
Federation server. A MODE_REAL job is submitted to that server through FLARE's admin API, watched
to SUCCEEDED, and its global model is registered, anchored and downloadable with both clients'
data commitments (recomputed here from their CSVs) in its provenance. A cancelled real-mode job is
aborted on the FLARE server; so is one whose Federation server was killed with -9, when it
restarts and fails the job."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import grpc
import pytest
from mlmesh.federation.v1 import federation_service_pb2 as pb
from mlmesh.federation.v1 import federation_service_pb2_grpc as fed_grpc

from tests.fixtures.federation import blobs_csv, federation_process
from tests.integration.test_federation import (
    OWNER,
    STRANGER,
    J,
    as_org,
    gone,
    job_in,
    processes_in,
    refused,
    upload,
)
from tests.integration.test_federation_flare import (  # noqa: F401 (fixture)
    FLARE_PYTHON,
    flare_federation,
    registered_global_model,
)
from tests.integration.test_federation_flare_server import clients_seen, start_client

S = pb.FlareServer
JOB_STATUS = """
import sys
from nvflare.fuel.flare_api.flare_api import new_secure_session
session = new_secure_session("admin@mlmesh.local", sys.argv[1], timeout=60)
print(session.get_job_meta(sys.argv[2])["status"])
session.close()
"""


def real_job(dataset: str, server_id: str, **spec) -> pb.CreateFederatedJobRequest:
    values = dict(epochs=5, batch_size=16, num_clients=2, num_rounds=1, learning_rate=0.01,
                  flare_server_id=server_id)
    values.update(spec)
    return pb.CreateFederatedJobRequest(job=J(display_name="flare real", mode=J.MODE_REAL,
                                              data=pb.FederatedData(dataset_id=dataset, seed=3),
                                              flare=pb.FlareSpec(**values)))


def flare_status(admin_kit: Path, flare_job: str, home: Path) -> str:
    out = subprocess.run([str(FLARE_PYTHON), "-c", JOB_STATUS, str(admin_kit), flare_job], capture_output=True,
                         text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(home)}, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


async def download_kit(stub, server_id: str, name: str, into: Path) -> Path:
    chunks = [c.data async for c in stub.DownloadFlareStartupKit(pb.DownloadFlareStartupKitRequest(
        flare_server_id=server_id, client_name=name), metadata=as_org(OWNER))]
    zipfile.ZipFile(io.BytesIO(b"".join(chunks))).extractall(into)
    return into / name


async def test_a_real_flare_job_trains_on_kit_started_clients_local_data_and_registers_the_model(
        flare_federation, tmp_path) -> None:  # noqa: F811
    stub, registry = flare_federation
    # The server's held-out data (a Registry dataset) and each client's own CSV (only on "its machine")
    dataset = await upload(registry, OWNER, blobs_csv(rows=90, seed=5))
    local = {"site-1": tmp_path / "site-1-data.csv", "site-2": tmp_path / "site-2-data.csv"}
    local["site-1"].write_bytes(blobs_csv(rows=70, seed=5))
    local["site-2"].write_bytes(blobs_csv(rows=50, seed=5))
    server = await stub.CreateFlareServer(pb.CreateFlareServerRequest(
        flare_server=S(project_name="real", client_names=["site-1", "site-2"])), metadata=as_org(OWNER))
    assert server.state == S.STATE_RUNNING, server.failure_reason
    server_dir = tmp_path / "fed" / "federation" / "flare-servers" / server.flare_server_id
    admin_kit = next(server_dir.rglob("admin@mlmesh.local"))
    clients = []
    try:
        for name in server.client_names:
            kit = await download_kit(stub, server.flare_server_id, name, tmp_path / "kits")
            clients.append(start_client(kit, name, tmp_path, data=local[name]))
        deadline = time.monotonic() + 120
        while clients_seen(admin_kit, tmp_path) != ["site-1", "site-2"]:
            assert time.monotonic() < deadline, "the clients did not join"
            await asyncio.sleep(2)
        # A stranger cannot run a job on the organization's server
        theirs = await upload(registry, STRANGER, blobs_csv(rows=90, seed=5))
        err = await refused(stub.CreateFederatedJob, real_job(theirs, server.flare_server_id), STRANGER)
        assert err.code() == grpc.StatusCode.NOT_FOUND and "flare.flare_server_id" in err.details()
        err = await refused(stub.CreateFederatedJob, real_job(dataset, server.flare_server_id, num_clients=3))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "flare.num_clients" in err.details()
        # Execute
        created = await stub.CreateFederatedJob(real_job(dataset, server.flare_server_id), metadata=as_org(OWNER))
        events = [e async for e in stub.WatchFederatedJob(pb.WatchFederatedJobRequest(job_id=created.job_id),
                                                          metadata=as_org(OWNER))]
        # Assert: it ran on the FLARE server, one round with both clients on their own data
        job = events[-1].job
        assert job.state == J.STATE_SUCCEEDED, job.failure_reason
        assert job.mode == J.MODE_REAL and job.framework_version == "nvflare 2.9.0"
        logs = [e.log.text for e in events if e.HasField("log")]
        assert any(line.startswith("submitted to the FLARE server as job ") for line in logs), logs[-20:]
        assert any(line.endswith(": FINISHED:COMPLETED") for line in logs), logs[-20:]
        rounds = [e.round for e in events if e.HasField("round")]
        assert [r.round for r in rounds] == [1]
        assert sorted((c.client_id, c.num_examples) for c in rounds[0].clients) == [("site-1", 70), ("site-2", 50)]
        assert 0 <= rounds[0].accuracy <= 1 and rounds[0].loss > 0
        assert not job.privacy.formal_guarantee  # FedAvg without a DP filter says so
        # Each client's commitment, recomputed from its CSV
        expected = sorted((hashlib.sha256(p.read_bytes()).hexdigest(), len(p.read_text().splitlines()) - 1)
                          for p in local.values())
        assert sorted((c.sha256, c.sample_count) for c in job.client_commitments) == expected
        # The global model: registered, anchored, consistent with the ledger, downloadable, with provenance
        _model, record = await registered_global_model(registry, job, dataset)
        assert json.loads(record["request"])["mode"] == "real"
        assert sorted((c["sha256"], c["sample_count"]) for c in json.loads(record["client_commitments"])) == expected

        # Cancel: a long job is aborted on the FLARE server, nothing registered
        long_job = await stub.CreateFederatedJob(real_job(dataset, server.flare_server_id, epochs=1000, num_rounds=50),
                                                 metadata=as_org(OWNER))
        id_file = tmp_path / "fed" / "federation" / "jobs" / long_job.job_id / "flare_job_id"
        deadline = time.monotonic() + 120
        while not id_file.exists():
            assert time.monotonic() < deadline, "the job was not submitted to the FLARE server"
            await job_in(stub, long_job.job_id, (J.STATE_PREPARING, J.STATE_RUNNING))
            await asyncio.sleep(0.5)
        flare_job = id_file.read_text().strip()
        cancelled = await stub.CancelFederatedJob(pb.CancelFederatedJobRequest(job_id=long_job.job_id),
                                                  metadata=as_org(OWNER))
        assert cancelled.state == J.STATE_CANCELLED and cancelled.result_model_id == ""
        # FLARE moves an aborted job from RUNNING to FINISHED:ABORTED on its own time (a CI run saw RUNNING
        # right after the cancel returned): wait for it, but never past a deadline
        deadline = time.monotonic() + 90
        while (status := flare_status(admin_kit, flare_job, tmp_path)) != "FINISHED:ABORTED":
            assert status == "RUNNING" and time.monotonic() < deadline, status
            await asyncio.sleep(2)
    finally:
        for proc in clients:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def test_a_real_flare_job_needs_a_running_server_of_the_organization(flare_federation) -> None:  # noqa: F811
    stub, registry = flare_federation
    dataset = await upload(registry, OWNER, blobs_csv())
    err = await refused(stub.CreateFederatedJob, real_job(dataset, ""))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "flare.flare_server_id" in err.details()
    err = await refused(stub.CreateFederatedJob, real_job(dataset, "6f1b7a52-3c1e-4d2a-9a9e-0c2f4b1d8e7a"))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "flare.flare_server_id" in err.details()
    simulated = real_job(dataset, "6f1b7a52-3c1e-4d2a-9a9e-0c2f4b1d8e7a")
    simulated.job.mode = J.MODE_SIMULATION
    err = await refused(stub.CreateFederatedJob, simulated)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "only for MODE_REAL" in err.details()


async def test_a_server_killed_mid_real_flare_job_restarts_with_it_failed_and_the_flare_job_aborted(
        registry, fresh_db_dsn, tmp_path, caplog) -> None:
    """kill -9 of the Federation server (a process of its own here) while a real-mode job waits on
    its FLARE server (no client has joined, so FLARE holds the job): the job's launcher survives the
    kill; the restarted server kills it, aborts the FLARE job through the admin API and fails the
    job with the reason (then, as for any FLARE server it finds running, stops and fails that)."""
    from servers.federation.main import build
    from servers.federation.settings import FederationSettings

    registry_stub, registry_server = registry
    dataset = await upload(registry_stub, OWNER, blobs_csv(rows=90, seed=5))
    async with federation_process(fresh_db_dsn, tmp_path / "fed", registry_server.port,
                                  flare_python=str(FLARE_PYTHON)) as (server, port):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = fed_grpc.FederationServiceStub(channel)
            flare_server = await stub.CreateFlareServer(pb.CreateFlareServerRequest(
                nvoverser=pb.FlareServerSeedBody(start=True)), metadata=as_org(OWNER))
            assert flare_server.state == S.STATE_RUNNING, flare_server.failure_reason
            job = await stub.CreateFederatedJob(real_job(dataset, flare_server.flare_server_id, num_rounds=50),
                                                metadata=as_org(OWNER))
            job_dir = tmp_path / "fed" / "federation" / "jobs" / job.job_id
            deadline = time.monotonic() + 120
            while not (job_dir / "flare_job_id").exists():
                assert time.monotonic() < deadline, "the job was not submitted to the FLARE server"
                await job_in(stub, job.job_id, (J.STATE_PREPARING, J.STATE_RUNNING))
                await asyncio.sleep(0.5)
        flare_job = (job_dir / "flare_job_id").read_text().strip()
        procs = processes_in(job_dir)
        assert procs
        # Execute: kill -9 the Federation server; the job's launcher survives it
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        assert all(p.is_running() for p in procs)
    caplog.set_level(logging.INFO, logger="mlmesh.federation.flare")
    restarted, _core = await build(FederationSettings(
        port=0, metrics_port=-1, database_url=fresh_db_dsn, data_dir=tmp_path / "fed",
        registry_target=f"127.0.0.1:{registry_server.port}", flare_python=FLARE_PYTHON))
    await restarted.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{restarted.port}") as channel:
            stub = fed_grpc.FederationServiceStub(channel)
            got = await stub.GetFederatedJob(pb.GetFederatedJobRequest(job_id=job.job_id), metadata=as_org(OWNER))
            got_server = await stub.GetFlareServer(pb.GetFlareServerRequest(
                flare_server_id=flare_server.flare_server_id), metadata=as_org(OWNER))
    finally:
        await restarted.stop(0, drain=0)
    # Assert: FAILED with the reason, the launcher gone, the FLARE job aborted on its server
    assert got.state == J.STATE_FAILED and "restarted while the job was running" in got.failure_reason
    assert all(gone(p.pid) for p in procs)
    assert f"aborted FLARE job {flare_job}" in caplog.text
    assert got_server.state == S.STATE_FAILED


@pytest.fixture(autouse=True)
def _flare_venv() -> None:
    if not FLARE_PYTHON.exists():
        pytest.fail(f"{FLARE_PYTHON} is missing: run `make flare-venv` (part of `make test`)", pytrace=False)
