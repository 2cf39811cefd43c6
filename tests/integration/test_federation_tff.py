"""TensorFlow Federated DP-FedAvg through the real Federation server (port 0, embedded PostgreSQL,
our Registry on a real Ledger): TFF 0.87's own simulation (its C++ worker binary) in .venv-tff runs
2 clients for 1 round on tiny seeded data. The clients' data commitments, the round's figures and
our accountant's (epsilon, delta) reach the job; the final Keras model is registered with its
provenance, anchored, and translated to ONNX by the real Translator with a passing parity report.
A cancelled TFF job leaves no process behind, TFF's worker binary included (which listens in the
job's own network namespace, not the host's), nor does a server killed with -9 once it restarts;
bad TFF input is
INVALID_ARGUMENT naming the field."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import grpc
import psutil
import pytest
from mlmesh.federation.v1 import federation_service_pb2 as pb
from mlmesh.federation.v1 import federation_service_pb2_grpc as fed_grpc
from mlmesh.registry.v1 import registry_service_pb2 as reg_pb
from mlmesh.translator.v1 import translator_service_pb2 as tr_pb

from servers.federation.domain import privacy
from tests.fixtures.federation import blobs_csv, cifar_archive, federation_process
from tests.integration.test_federation import OWNER, job_after_restart, STRANGER, J, as_org, gone, job_in, processes_in, refused, upload
from tests.integration.test_federation_flare import registered_global_model

REPO = Path(__file__).resolve().parents[2]
TFF_PYTHON = REPO / ".venv-tff" / "bin" / "python"
TFF_APP = REPO / "servers" / "federation" / "apps" / "tff"


async def tff_server(registry_port: int, dsn: str, work: Path):
    from servers.federation.main import build
    from servers.federation.settings import FederationSettings

    if not TFF_PYTHON.exists():
        pytest.fail(f"{TFF_PYTHON} is missing: run `make tff-venv` (part of `make test`)", pytrace=False)
    server, _core = await build(FederationSettings(
        port=0, metrics_port=-1, database_url=dsn, data_dir=work, registry_target=f"127.0.0.1:{registry_port}",
        tff_python=TFF_PYTHON))
    await server.start()
    return server


@pytest.fixture
async def tff_federation(registry, fresh_db_dsn, tmp_path):
    """(Federation stub, Registry stub) with the real TFF app (.venv-tff)."""
    registry_stub, registry_server = registry
    server = await tff_server(registry_server.port, fresh_db_dsn, tmp_path / "fed")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield fed_grpc.FederationServiceStub(channel), registry_stub
    await server.stop(0, drain=0)


def tff_job(dataset: str, seed: int = 0, **spec) -> pb.CreateFederatedJobRequest:
    values = dict(imb_parameter=1.0, dp_parameter=0.1, n_clients=2, n_samples=1000, target_label="target",
                  num_rounds=1, epochs=5, batch_size=16)
    values.update(spec)
    return pb.CreateFederatedJobRequest(job=J(display_name="tff blobs", data=pb.FederatedData(
        dataset_id=dataset, seed=seed), tff=pb.TffSpec(**values)))


def expected_commitments(csv_path: Path, clients: int, alpha: float, cap: int, seed: int) -> list[tuple[str, int]]:
    """The clients' (SHA-256, samples) recomputed from the CSV by the app's own split, in .venv-tff."""
    script = ("import json, sys; sys.path.insert(0, sys.argv[1]); import data\n"
              "t = data.load(sys.argv[2], 'target')\n"
              "_test, train = data.holdout(len(t.labels), 0.3, int(sys.argv[6]))\n"
              "shards = data.dirichlet_split(train, t.labels, int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]),"
              " int(sys.argv[6]))\n"
              "print(json.dumps([data.commitment(t, s) for s in shards]))\n")
    out = subprocess.run([str(TFF_PYTHON), "-c", script, str(TFF_APP), str(csv_path), str(clients), str(alpha),
                          str(cap), str(seed)], check=True, capture_output=True, text=True).stdout
    return [tuple(c) for c in json.loads(out)]


async def test_bad_tff_input_is_invalid_argument_naming_the_field(tff_federation) -> None:
    stub, registry = tff_federation
    dataset = await upload(registry, OWNER)
    for request, field in [
        (tff_job(dataset, n_clients=0), "tff.n_clients"),
        (tff_job(dataset, dp_parameter=-0.5), "tff.dp_parameter"),
        (tff_job(dataset, imb_parameter=0.0), "tff.imb_parameter"),
        (tff_job(dataset, n_samples=0), "tff.n_samples"),
        (tff_job(dataset, clients_per_round=3), "tff.clients_per_round"),
        (tff_job("not-a-dataset-id"), "dataset_id"),
        (pb.CreateFederatedJobRequest(tff=pb.TffSeedBody(imb_parameter=1, dp_parameter=-1, n_clients=2, n_samples=5,
                                                         target_label="target"), dataset_id=dataset),
         "tff.dp_parameter"),
    ]:
        err = await refused(stub.CreateFederatedJob, request)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, err.details())
        assert field in err.details(), (field, err.details())
    # A well-formed id of no dataset: NOT_FOUND naming the field (the same answer as another
    # organization's dataset, docs/security.md).
    err = await refused(stub.CreateFederatedJob, tff_job("5d066d58-06de-47ab-a2f6-c8f413e21947"))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "data.dataset_id" in err.details(), err.details()
    assert not (await stub.ListFederatedJobs(pb.ListFederatedJobsRequest(), metadata=as_org(OWNER))).federated_jobs


async def test_tff_dp_fedavg_trains_registers_anchors_and_translates_to_onnx(
        translator_registry, translator_factory, fresh_db_dsn, tmp_path) -> None:
    """2 clients, 1 round, noise multiplier 0.1: SUCCEEDED with the round's figures, the clients'
    commitments, our accountant's epsilon; the Keras model in the Registry, anchored, and its ONNX
    translation passing parity on the dataset's rows."""
    registry, registry_server = translator_registry
    server = await tff_server(registry_server.port, fresh_db_dsn, tmp_path / "fed")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = fed_grpc.FederationServiceStub(channel)
            data = blobs_csv()
            (tmp_path / "data.csv").write_bytes(data)
            dataset = await upload(registry, OWNER, data)
            # Execute
            created = await stub.CreateFederatedJob(tff_job(dataset, seed=3), metadata=as_org(OWNER))
            events = [e async for e in stub.WatchFederatedJob(
                pb.WatchFederatedJobRequest(job_id=created.job_id), metadata=as_org(OWNER))]
    finally:
        await server.stop(0, drain=0)
    # Assert: the job's path and figures
    job = events[-1].job
    assert job.state == J.STATE_SUCCEEDED, job.failure_reason
    assert J.STATE_RUNNING in [e.job.state for e in events if e.HasField("job")]
    assert job.framework_version == "tensorflow-federated 0.87.0 (tensorflow 2.14.1)"
    rounds = [e.round for e in events if e.HasField("round")]
    assert [r.round for r in rounds] == [1]
    assert sorted(c.client_id for c in rounds[0].clients) == ["client-0", "client-1"]
    assert 0 <= rounds[0].accuracy <= 1 and rounds[0].loss > 0 and rounds[0].seconds > 0
    # Both clients took part: no subsampling, one Gaussian release of noise multiplier 0.1 under RDP.
    expected = privacy.dp_fedavg(0.1, 1.0, 1, delta=1e-5)
    assert rounds[0].privacy.epsilon == pytest.approx(expected.epsilon) and rounds[0].privacy.compositions == 1
    assert job.privacy.epsilon == pytest.approx(expected.epsilon) and job.privacy.delta == 1e-5
    assert job.privacy.formal_guarantee and job.privacy.mechanism == "gaussian"
    got = sorted((c.sha256, c.sample_count) for c in job.client_commitments)
    assert got == sorted(expected_commitments(tmp_path / "data.csv", 2, 1.0, 1000, 3))
    assert sum(n for _h, n in got) == 240 - 72
    # The model: owned by the job's organization, anchored, a Keras HDF5 file
    model, record = await registered_global_model(registry, job, dataset, model_framework="tensorflow",
                                                  magic=b"\x89HDF", framework="tff",
                                                  version="tensorflow-federated 0.87.0")
    spec = json.loads(record["request"])["spec"]
    assert (spec["dp_parameter"], spec["n_clients"], spec["imb_parameter"]) == (0.1, 2, 1.0)
    assert json.loads(record["privacy"])["epsilon"] == pytest.approx(expected.epsilon)
    assert sorted((c["sha256"], c["sample_count"]) for c in json.loads(record["client_commitments"])) == got
    err = await refused(registry.GetModel, reg_pb.GetModelRequest(model_id=model.model_id), STRANGER)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    # The Translator: Keras (TF 2.14's HDF5, read by Keras 3 in .venv-ml) to ONNX, parity on the rows
    translator, _server, _settings = await translator_factory()
    t = await translator.TranslateModel(tr_pb.TranslateModelRequest(model_id=model.model_id), metadata=as_org(OWNER))
    assert t.framework == "tensorflow" and t.source_sha256 == model.res_sha256
    assert t.parity.passed and t.parity.top1_agreement >= 0.99, t.parity


async def test_a_cifar10_archive_trains_the_seeds_cnn_registers_it_and_translates_to_onnx(
        translator_registry, translator_factory, fresh_db_dsn, tmp_path) -> None:
    """The seed's CIFAR-10 python archive (a 120-image one generated in that format): TFF reads it
    with FedPATE's archive reader, trains the seed's CNN (chosen for 3x32x32 inputs) with DP-FedAvg,
    and the Keras model converts to ONNX with parity (on synthetic inputs: the archive is no CSV)."""
    from google.api import httpbody_pb2

    registry, registry_server = translator_registry
    blob = cifar_archive(tmp_path / "cifar-10-python.tar.gz").read_bytes()

    async def chunks():
        yield reg_pb.UploadDatasetRequest(organization_id=OWNER, display_name="cifar", filename="cifar-10-python.tar.gz",
                                          content_type="application/gzip", chunk=httpbody_pb2.HttpBody(data=blob))
    dataset = (await registry.UploadDataset(chunks(), metadata=as_org(OWNER))).dataset_id
    server = await tff_server(registry_server.port, fresh_db_dsn, tmp_path / "fed")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = fed_grpc.FederationServiceStub(channel)
            created = await stub.CreateFederatedJob(tff_job(dataset, seed=3, num_rounds=3, epochs=5, dp_parameter=0.01),
                                                    metadata=as_org(OWNER))
            events = [e async for e in stub.WatchFederatedJob(
                pb.WatchFederatedJobRequest(job_id=created.job_id), metadata=as_org(OWNER))]
    finally:
        await server.stop(0, drain=0)
    job = events[-1].job
    assert job.state == J.STATE_SUCCEEDED, job.failure_reason
    rounds = [e.round for e in events if e.HasField("round")]
    assert [r.round for r in rounds] == [1, 2, 3]
    assert rounds[-1].accuracy > 0.6, rounds  # 3 classes: chance is 1/3
    assert sum(c.sample_count for c in job.client_commitments) == 120 - 36  # server_fraction 0.3 held out
    logs = "\n".join(e.log.text for e in events if e.HasField("log"))
    assert "DP-FedAvg of the seed CNN" in logs
    model, _record = await registered_global_model(registry, job, dataset, model_framework="tensorflow",
                                                   magic=b"\x89HDF", framework="tff",
                                                   version="tensorflow-federated 0.87.0")
    saved = b"".join([c.data async for c in registry.DownloadModel(
        reg_pb.DownloadModelRequest(model_id=model.model_id), metadata=as_org(OWNER))])
    assert b'"class_name": "Conv2D"' in saved and b'"class_name": "MaxPooling2D"' in saved
    translator, _server, _settings = await translator_factory()
    t = await translator.TranslateModel(tr_pb.TranslateModelRequest(model_id=model.model_id), metadata=as_org(OWNER))
    assert t.framework == "tensorflow" and t.parity.passed, t.parity


def worker_binaries(job_dir: Path) -> list[psutil.Process]:
    return [p for p in processes_in(job_dir) if "worker_binary" in " ".join(p.cmdline())]


async def running_with_its_worker(stub, job_id: str, job_dir: Path) -> list[psutil.Process]:
    """The job's processes, once TFF's C++ worker binary runs beside the app."""
    deadline = time.monotonic() + 300
    while not worker_binaries(job_dir):
        assert time.monotonic() < deadline, f"TFF's worker binary did not start: {processes_in(job_dir)}"
        await job_in(stub, job_id, (J.STATE_PREPARING, J.STATE_RUNNING), timeout=300)
        await asyncio.sleep(0.5)
    return processes_in(job_dir)


async def test_cancelling_a_tff_job_stops_the_worker_binary_too(tff_federation, tmp_path) -> None:
    stub, registry = tff_federation
    dataset = await upload(registry, OWNER, blobs_csv())
    job = await stub.CreateFederatedJob(tff_job(dataset, num_rounds=1000, epochs=50), metadata=as_org(OWNER))
    job_dir = tmp_path / "fed" / "federation" / "jobs" / job.job_id
    procs = await running_with_its_worker(stub, job.job_id, job_dir)
    # The worker listens on every interface (TFF's only flag is --port), but in the job's own
    # network namespace: not in ours, and its port is closed here.
    worker = worker_binaries(job_dir)[0]
    assert os.readlink(f"/proc/{worker.pid}/ns/net") != os.readlink("/proc/self/ns/net")
    port = int(next(a for a in worker.cmdline() if a.startswith("--port=")).split("=")[1])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    # Execute
    cancelled = await stub.CancelFederatedJob(pb.CancelFederatedJobRequest(job_id=job.job_id), metadata=as_org(OWNER))
    # Assert: CANCELLED, nothing registered, not one process left (the worker binary would outlive Python)
    assert cancelled.state == J.STATE_CANCELLED and cancelled.result_model_id == ""
    assert all(gone(p.pid) for p in procs)
    assert processes_in(job_dir) == []


async def test_a_server_killed_mid_tff_job_restarts_with_it_failed_and_no_worker_binary_left(
        registry, fresh_db_dsn, tmp_path) -> None:
    """kill -9 of the Federation server leaves the job's process group running (TFF's worker
    binary too); the restarted server kills that group and fails the job with the reason."""
    registry_stub, registry_server = registry
    dataset = await upload(registry_stub, OWNER, blobs_csv())
    async with federation_process(fresh_db_dsn, tmp_path / "fed", registry_server.port,
                                  tff_python=str(TFF_PYTHON)) as (server, port):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = fed_grpc.FederationServiceStub(channel)
            job = await stub.CreateFederatedJob(tff_job(dataset, num_rounds=1000, epochs=50), metadata=as_org(OWNER))
            procs = await running_with_its_worker(stub, job.job_id,
                                                  tmp_path / "fed" / "federation" / "jobs" / job.job_id)
        # Execute: kill -9 the server; the job's processes survive it
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        assert all(p.is_running() for p in procs)
    restarted = await tff_server(registry_server.port, fresh_db_dsn, tmp_path / "fed")
    got = await job_after_restart(restarted, job.job_id)
    # Assert: FAILED with the reason, and no process of the job (the worker binary included) is left
    assert got.state == J.STATE_FAILED and "restarted while the job was running" in got.failure_reason
    assert all(gone(p.pid) for p in procs)
