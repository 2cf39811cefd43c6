"""The Federation server on port 0 with embedded PostgreSQL and our real Registry (real Ledger on
Anvil): validation naming the field, access (a stranger's job or dataset does not exist for
the caller), pagination, watch, cancel by process group, and kill -9 recovery.

The framework here is a stand-in launcher (STAND_IN below, plain Python run through the
server's `commands` setting): these tests are about the server's orchestration, which is the
same for every framework. The real FedPATE on Flower (.venv-flower) runs at the end of this file."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import psutil
import pytest
from google.api import httpbody_pb2
from mlmesh.federation.v1 import federation_service_pb2 as pb
from mlmesh.federation.v1 import federation_service_pb2_grpc as fed_grpc
from mlmesh.registry.v1 import registry_service_pb2 as reg_pb
from mlmesh.translator.v1 import translator_service_pb2 as tr_pb

from servers.devstack.procs import free_port, port_open
from tests.fixtures.federation import blobs_csv

OWNER, STRANGER = "smart-energy-ll", "grid-partner"
J = pb.FederatedJob
FINAL = (J.STATE_SUCCEEDED, J.STATE_FAILED, J.STATE_CANCELLED)
REPO = Path(__file__).resolve().parents[2]

# Reports as a launcher does, then holds (a running federated job) until killed; with
# STAND_IN_FINISH set in the job's configuration directory it ends at once with exit 3.
STAND_IN = r'''
import json, os, sys, time
config = json.load(open(os.environ["MLMESH_FEDERATION_JOB"]))
job_dir = os.path.dirname(os.environ["MLMESH_FEDERATION_JOB"])
open(os.path.join(job_dir, "..", "..", "stand-in-" + os.path.basename(job_dir) + ".pid"), "w").write(str(os.getpid()))
def event(**e):
    print("MLMESH_EVENT " + json.dumps(e), flush=True)
event(type="framework", version="stand-in 0.0")
for i in range(config["num-teachers"]):
    event(type="commitment", client_id=f"client-{i}", sha256="ab" * 32, sample_count=10 + i)
print("teachers trained", flush=True)
event(type="round", round=1, loss=0.5, accuracy=0.75, seconds=0.1, queries=config["noise-data"],
      clients=[{"client_id": "client-0", "loss": 0.4, "accuracy": 0.8, "num_examples": 10}])
print("a warning", file=sys.stderr, flush=True)
if config["batch-size"] == 13:
    sys.exit(3)
time.sleep(600)
'''


def as_org(org: str) -> tuple[tuple[str, str], ...]:
    return (("x-mlmesh-org", org),)


def fedpate(dataset_id: str, **changes) -> pb.CreateFederatedJobRequest:
    spec = dict(num_teachers=2, teacher_epochs=1, student_epochs=1, batch_size=16, epsilon=0.5, num_queries=40,
                noise_data=20)
    spec.update(changes)
    return pb.CreateFederatedJobRequest(job=J(display_name="fp", data=pb.FederatedData(dataset_id=dataset_id),
                                              fedpate=pb.FedPateSpec(**spec)))


async def upload(registry, org: str, data: bytes = b"a,b,target\n1,2,0\n3,4,1\n") -> str:
    async def gen():
        yield reg_pb.UploadDatasetRequest(organization_id=org, display_name="d", filename="d.csv",
                                          content_type="text/csv", chunk=httpbody_pb2.HttpBody(data=data))
    return (await registry.UploadDataset(gen(), metadata=as_org(org))).dataset_id


def settings(dsn: str, work: Path, registry_port: int, stand_in: Path, **extra):
    from servers.federation.settings import FederationSettings

    return FederationSettings(port=extra.pop("port", 0), metrics_port=-1, database_url=dsn, data_dir=work,
                              registry_target=f"127.0.0.1:{registry_port}",
                              commands={"fedpate": [sys.executable, str(stand_in)]}, **extra)


@pytest.fixture
def stand_in(tmp_path) -> Path:
    path = tmp_path / "stand_in.py"
    path.write_text(STAND_IN)
    return path


@pytest.fixture
async def federation(registry, fresh_db_dsn, tmp_path, stand_in):
    """(Federation stub, Registry stub, work dir)."""
    from servers.federation.main import build

    registry_stub, registry_server = registry
    server, _core = await build(settings(fresh_db_dsn, tmp_path / "fed", registry_server.port, stand_in,
                                         max_concurrent_jobs=4))
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield fed_grpc.FederationServiceStub(channel), registry_stub, tmp_path / "fed" / "federation"
    await server.stop(0, drain=0)


async def job_in(stub, job_id: str, states, org: str = OWNER, timeout: float = 60.0) -> pb.FederatedJob:
    deadline = time.monotonic() + timeout
    while True:
        job = await stub.GetFederatedJob(pb.GetFederatedJobRequest(job_id=job_id), metadata=as_org(org))
        if job.state in states:
            return job
        assert job.state not in FINAL, f"job ended {J.State.Name(job.state)}: {job.failure_reason}"
        assert time.monotonic() < deadline, f"job stayed {J.State.Name(job.state)}"
        await asyncio.sleep(0.1)


async def stand_in_pid(work: Path, job_id: str, timeout: float = 30.0) -> int:
    path = work / f"stand-in-{job_id}.pid"
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, "the stand-in launcher never started"
        await asyncio.sleep(0.05)
    return int(path.read_text())


async def job_after_restart(restarted, job_id: str) -> pb.FederatedJob:
    """The job as a Federation server restarted after a kill -9 reports it (as the owner); stops that server."""
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{restarted.port}") as channel:
            return await fed_grpc.FederationServiceStub(channel).GetFederatedJob(
                pb.GetFederatedJobRequest(job_id=job_id), metadata=as_org(OWNER))
    finally:
        await restarted.stop(0, drain=0)


def gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


async def refused(call, request, org: str = OWNER) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(request, metadata=as_org(org))
    return info.value


async def test_bad_input_is_invalid_argument_naming_the_field(federation) -> None:
    stub, registry, _work = federation
    dataset = await upload(registry, OWNER)
    for request, field in [
        (fedpate(dataset, num_teachers=0), "fedpate.num_teachers"),
        (fedpate(dataset, epsilon=0.0), "fedpate.epsilon"),
        (fedpate(dataset, noise=pb.FedPateSpec.NOISE_GAUSSIAN, sigma=-1.0), "fedpate.sigma"),
        (fedpate(dataset, noise_data=40), "fedpate.noise_data"),
        (fedpate("not-a-uuid"), "dataset_id"),
        (pb.CreateFederatedJobRequest(job=J(data=pb.FederatedData(dataset_id=dataset))), "spec"),
        (pb.CreateFederatedJobRequest(fp=pb.FedPateSeedBody(num_teachers=2, teacher_epochs=1, student_epochs=1,
                                                            batch_size=8, noise="uniform", epsilon=1,
                                                            num_queries=10, noise_data=5), dataset_id=dataset),
         "fp.noise"),
    ]:
        err = await refused(stub.CreateFederatedJob, request)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, err.details())
        assert field in err.details(), (field, err.details())
    # An unknown dataset and another organization's are the same answer, naming the field.
    strangers = await upload(registry, STRANGER)
    answers = []
    for dataset_id in (strangers, "5d066d58-06de-47ab-a2f6-c8f413e21947"):
        err = await refused(stub.CreateFederatedJob, fedpate(dataset_id))
        assert err.code() == grpc.StatusCode.NOT_FOUND and "data.dataset_id" in err.details(), err.details()
        answers.append(err.details().replace(dataset_id, "<id>"))
    assert answers[0] == answers[1]
    # Nothing was stored for any of them.
    assert not (await stub.ListFederatedJobs(pb.ListFederatedJobsRequest(), metadata=as_org(OWNER))).federated_jobs


async def test_a_job_runs_reports_and_is_seen_by_its_organization_only(federation) -> None:
    stub, registry, work = federation
    dataset = await upload(registry, OWNER)
    # Execute: a job that reports, then fails (exit 3), and one that keeps running
    failing = await stub.CreateFederatedJob(fedpate(dataset, batch_size=13), metadata=as_org(OWNER))
    running = await stub.CreateFederatedJob(fedpate(dataset), metadata=as_org(OWNER))
    assert failing.organization_id == OWNER and failing.state == J.STATE_QUEUED
    assert failing.privacy.formal_guarantee and failing.privacy.epsilon == pytest.approx(2 * 0.5 * 20)
    events = [e async for e in stub.WatchFederatedJob(pb.WatchFederatedJobRequest(job_id=failing.job_id),
                                                      metadata=as_org(OWNER))]
    # Assert: the watch carried state changes, the round with the privacy spent, and the log
    states = [e.job.state for e in events if e.HasField("job")]
    assert states[0] in (J.STATE_QUEUED, J.STATE_PREPARING, J.STATE_RUNNING) and states[-1] == J.STATE_FAILED
    rounds = [e.round for e in events if e.HasField("round")]
    assert [r.round for r in rounds] == [1] and rounds[0].clients[0].client_id == "client-0"
    assert rounds[0].privacy.epsilon == pytest.approx(20.0) and rounds[0].privacy.compositions == 20
    texts = [(e.log.stream, e.log.text) for e in events if e.HasField("log")]
    assert ("stdout", "teachers trained") in texts and ("stderr", "a warning") in texts
    assert not any("MLMESH_EVENT" in t for _s, t in texts)
    failed = events[-1].job
    assert "exited with status 3" in failed.failure_reason and "a warning" in failed.failure_reason
    assert failed.framework_version == "stand-in 0.0"
    assert [(c.client_id, c.sample_count) for c in failed.client_commitments] == [("client-0", 10), ("client-1", 11)]
    # A replay from a sequence number sends only the later lines.
    last = [e.log.sequence for e in events if e.HasField("log")]
    replay = [e async for e in stub.WatchFederatedJob(
        pb.WatchFederatedJobRequest(job_id=failing.job_id, after_log_sequence=last[-2]), metadata=as_org(OWNER))]
    assert [e.log.sequence for e in replay if e.HasField("log")] == [last[-1]]
    # Access: the stranger gets NOT_FOUND for every verb and lists nothing; the owner pages.
    await job_in(stub, running.job_id, (J.STATE_RUNNING,))
    for call, request in [(stub.GetFederatedJob, pb.GetFederatedJobRequest(job_id=running.job_id)),
                          (stub.CancelFederatedJob, pb.CancelFederatedJobRequest(job_id=running.job_id)),
                          (stub.DeleteFederatedJob, pb.DeleteFederatedJobRequest(job_id=running.job_id))]:
        err = await refused(call, request, STRANGER)
        assert err.code() == grpc.StatusCode.NOT_FOUND and running.job_id in err.details()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.WatchFederatedJob(pb.WatchFederatedJobRequest(job_id=running.job_id),
                                              metadata=as_org(STRANGER)):
            pass
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert not (await stub.ListFederatedJobs(pb.ListFederatedJobsRequest(), metadata=as_org(STRANGER))).federated_jobs
    first = await stub.ListFederatedJobs(pb.ListFederatedJobsRequest(page_size=1), metadata=as_org(OWNER))
    second = await stub.ListFederatedJobs(pb.ListFederatedJobsRequest(page_size=1, page_token=first.next_page_token),
                                          metadata=as_org(OWNER))
    assert [j.job_id for j in (*first.federated_jobs, *second.federated_jobs)] == [running.job_id, failing.job_id]
    assert second.next_page_token == ""
    seed_names = await stub.ListFederatedJobs(pb.ListFederatedJobsRequest(framework="fp"), metadata=as_org(OWNER))
    assert len(seed_names.federated_jobs) == 2
    assert not (await stub.ListFederatedJobs(pb.ListFederatedJobsRequest(framework="tff"),
                                             metadata=as_org(OWNER))).federated_jobs
    err = await refused(stub.ListFederatedJobs, pb.ListFederatedJobsRequest(framework="keras"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "framework" in err.details()
    err = await refused(stub.ListFederatedJobs, pb.ListFederatedJobsRequest(page_size=1, page_token="x"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Delete: a running job is cancelled (its process group killed), then its record is gone.
    pid = await stand_in_pid(work, running.job_id)
    await stub.DeleteFederatedJob(pb.DeleteFederatedJobRequest(job_id=running.job_id), metadata=as_org(OWNER))
    assert gone(pid)
    err = await refused(stub.GetFederatedJob, pb.GetFederatedJobRequest(job_id=running.job_id))
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def test_cancel_stops_the_whole_process_group(federation) -> None:
    stub, registry, work = federation
    dataset = await upload(registry, OWNER)
    job = await stub.CreateFederatedJob(fedpate(dataset), metadata=as_org(OWNER))
    await job_in(stub, job.job_id, (J.STATE_RUNNING,))
    pid = await stand_in_pid(work, job.job_id)
    # Execute
    cancelled = await stub.CancelFederatedJob(pb.CancelFederatedJobRequest(job_id=job.job_id), metadata=as_org(OWNER))
    # Assert: CANCELLED with the reason, the process gone, nothing registered; a second cancel is refused
    assert cancelled.state == J.STATE_CANCELLED and cancelled.failure_reason == "the federated job was cancelled"
    assert cancelled.result_model_id == "" and cancelled.end_time.seconds > 0
    assert gone(pid)
    err = await refused(stub.CancelFederatedJob, pb.CancelFederatedJobRequest(job_id=job.job_id))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "CANCELLED" in err.details()


async def test_a_server_killed_mid_job_restarts_with_the_job_failed_and_no_orphan(
        registry, fresh_db_dsn, tmp_path, stand_in) -> None:
    from servers.federation.main import build

    registry_stub, registry_server = registry
    dataset = await upload(registry_stub, OWNER)
    port = free_port()
    env = {**os.environ, "MLMESH_DATABASE_URL": fresh_db_dsn, "MLMESH_DATA_DIR": str(tmp_path / "fed"),
           "MLMESH_FEDERATION_PORT": str(port), "MLMESH_FEDERATION_METRICS_PORT": "-1",
           "MLMESH_FEDERATION_REGISTRY_TARGET": f"127.0.0.1:{registry_server.port}",
           "MLMESH_FEDERATION_COMMANDS": f'{{"fedpate": ["{sys.executable}", "{stand_in}"]}}'}
    server = subprocess.Popen([sys.executable, "-m", "servers.federation.main"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", port):
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the Federation server did not start"
            await asyncio.sleep(0.1)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = fed_grpc.FederationServiceStub(channel)
            job = await stub.CreateFederatedJob(fedpate(dataset), metadata=as_org(OWNER))
            await job_in(stub, job.job_id, (J.STATE_RUNNING,))
        pid = await stand_in_pid(tmp_path / "fed" / "federation", job.job_id)
        # Execute: kill -9 the server; its job's process group survives it
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        assert psutil.Process(pid).is_running()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        if server.stderr is not None:
            server.stderr.close()
    restarted, _core = await build(settings(fresh_db_dsn, tmp_path / "fed", registry_server.port, stand_in))
    await restarted.start()
    got = await job_after_restart(restarted, job.job_id)
    # Assert: FAILED with the reason, and the orphan is gone
    assert got.state == J.STATE_FAILED and "restarted while the job was running" in got.failure_reason
    assert gone(pid)


# -- FedPATE on Flower, for real -----------------------------------------------------------------

FLOWER_PYTHON = REPO / ".venv-flower" / "bin" / "python"


def expected_commitments(csv_path: Path, teachers: int, server_fraction: float, seed: int) -> list[tuple[str, int]]:
    """The shards' (SHA-256, samples) recomputed from the CSV by the app's own partitioning code,
    run in .venv-flower: what each teacher should have committed to."""
    script = ("import json, sys; sys.path.insert(0, sys.argv[1]); from fedpate import task\n"
              "t = task.read_table(sys.argv[2], 'target')\n"
              "_p, private = task.split(len(t.labels), float(sys.argv[4]), int(sys.argv[5]))\n"
              "shards = task.partition(private, t.labels, int(sys.argv[3]), 'iid', 0.0, int(sys.argv[5]))\n"
              "print(json.dumps([task.commitment(t, s) for s in shards]))\n")
    out = subprocess.run([str(FLOWER_PYTHON), "-c", script, str(REPO / "servers/federation/apps/fedpate"),
                          str(csv_path), str(teachers), str(server_fraction), str(seed)],
                         check=True, capture_output=True, text=True).stdout
    return [tuple(c) for c in __import__("json").loads(out)]


@pytest.fixture
async def flower_federation(translator_registry, fresh_db_dsn, tmp_path):
    """(Federation stub, Registry stub) with the real FedPATE launcher on Flower (.venv-flower), beside
    the real Registry the Translator fixtures use (tests/fixtures/translator.py)."""
    from servers.federation.main import build
    from servers.federation.settings import FederationSettings

    if not FLOWER_PYTHON.exists():
        pytest.fail(f"{FLOWER_PYTHON} is missing: run `make flower-venv` (part of `make test`)", pytrace=False)
    registry_stub, registry_server = translator_registry
    server, _core = await build(FederationSettings(
        port=0, metrics_port=-1, database_url=fresh_db_dsn, data_dir=tmp_path / "fed",
        registry_target=f"127.0.0.1:{registry_server.port}", flower_python=FLOWER_PYTHON))
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield fed_grpc.FederationServiceStub(channel), registry_stub
    await server.stop(0, drain=0)


async def test_fedpate_on_flower_trains_registers_anchors_and_translates_the_student(
        flower_federation, translator_factory, tmp_path) -> None:
    """2 teachers (Flower SuperNodes), 1 round, Laplace noise: SUCCEEDED with the round's figures,
    the teachers' data commitments, and the student in the Registry with its provenance, anchored,
    then translated to ONNX by the real Translator with a passing parity report."""
    import hashlib
    import json

    stub, registry = flower_federation
    data = blobs_csv()
    (tmp_path / "data.csv").write_bytes(data)
    dataset = await upload(registry, OWNER, data)
    request = pb.CreateFederatedJobRequest(job=J(
        display_name="fedpate blobs", data=pb.FederatedData(dataset_id=dataset, seed=3),
        fedpate=pb.FedPateSpec(num_teachers=2, num_rounds=1, teacher_epochs=15, student_epochs=30, batch_size=16,
                               learning_rate=0.01, epsilon=2.0, num_queries=60, noise_data=40)))
    # Execute
    created = await stub.CreateFederatedJob(request, metadata=as_org(OWNER))
    events = [e async for e in stub.WatchFederatedJob(pb.WatchFederatedJobRequest(job_id=created.job_id),
                                                      metadata=as_org(OWNER))]
    # Assert: the job's path and its figures
    job = events[-1].job
    assert job.state == J.STATE_SUCCEEDED, job.failure_reason
    states = [e.job.state for e in events if e.HasField("job")]
    assert J.STATE_RUNNING in states and J.STATE_REGISTERING in states
    assert job.framework_version == "flwr 1.42.0"
    rounds = [e.round for e in events if e.HasField("round")]
    assert [r.round for r in rounds] == [1]
    assert sorted(c.client_id for c in rounds[0].clients) == ["teacher-0", "teacher-1"]
    assert rounds[0].accuracy >= 0.8, rounds[0]  # separable blobs, 2 teachers with epsilon 2
    # 40 noisy queries, each (2 * epsilon)-DP by our accountant: 160, spent in full in the one round.
    assert rounds[0].privacy.epsilon == pytest.approx(2 * 2.0 * 40) and rounds[0].privacy.compositions == 40
    assert job.privacy.epsilon == pytest.approx(160.0) and job.privacy.formal_guarantee
    got = sorted((c.sha256, c.sample_count) for c in job.client_commitments)
    assert got == sorted(expected_commitments(tmp_path / "data.csv", 2, 0.3, 3))
    assert sum(n for _h, n in got) == 240 - 72
    # The student: owned by the job's organization, TRAINED, anchored and consistent with the ledger
    assert job.result_model_id
    model = await registry.GetModel(reg_pb.GetModelRequest(model_id=job.result_model_id), metadata=as_org(OWNER))
    assert model.organization_id == OWNER and model.framework == "pytorch" and model.dataset_id == dataset
    assert model.contract_address and model.verify_tx_hash and model.version == 1
    assert json.loads(model.input_signature)["csv_feature_columns"] == [0, 8]
    proof = await registry.GetModelProvenance(reg_pb.GetModelProvenanceRequest(model_id=model.model_id),
                                              metadata=as_org(OWNER))
    assert proof.consistent, [c for c in proof.checks if not c.ok]
    blob = b"".join([c.data async for c in registry.DownloadModel(
        reg_pb.DownloadModelRequest(model_id=model.model_id), metadata=as_org(OWNER))])
    assert hashlib.sha256(blob).hexdigest() == model.res_sha256 == proof.stored_sha256
    assert blob[:2] == b"PK"  # a TorchScript archive (zip)
    record = json.loads(b"".join([c.data async for c in registry.DownloadModelRecipe(
        reg_pb.DownloadModelRecipeRequest(model_id=model.model_id), metadata=as_org(OWNER))]))
    assert record["federated_job_id"] == job.job_id and record["framework_version"] == "flwr 1.42.0"
    assert json.loads(record["request"])["spec"]["epsilon"] == 2.0
    assert json.loads(record["privacy"])["epsilon"] == pytest.approx(160.0)
    assert sorted((c["sha256"], c["sample_count"]) for c in json.loads(record["client_commitments"])) == got
    # Nobody else sees it
    err = await refused(registry.GetModel, reg_pb.GetModelRequest(model_id=model.model_id), STRANGER)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    # The Translator: the TorchScript student to ONNX, parity against onnxruntime on the dataset's rows
    translator, _server, _settings = await translator_factory()
    t = await translator.TranslateModel(tr_pb.TranslateModelRequest(model_id=model.model_id), metadata=as_org(OWNER))
    assert t.framework == "pytorch" and t.source_sha256 == model.res_sha256
    assert t.parity.passed and t.parity.top1_agreement >= 0.99, t.parity


def processes_in(job_dir: Path) -> list[psutil.Process]:
    """Live processes working in `job_dir` (the launcher and every Flower process it started)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and Path(proc.cwd()).is_relative_to(job_dir):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


async def test_cancelling_a_fedpate_job_stops_every_flower_process(flower_federation, tmp_path) -> None:
    stub, registry = flower_federation
    dataset = await upload(registry, OWNER, blobs_csv())
    request = pb.CreateFederatedJobRequest(job=J(data=pb.FederatedData(dataset_id=dataset), fedpate=pb.FedPateSpec(
        num_teachers=2, teacher_epochs=1000, student_epochs=1, batch_size=8, epsilon=1.0, num_queries=60,
        noise_data=40)))
    job = await stub.CreateFederatedJob(request, metadata=as_org(OWNER))
    job_dir = tmp_path / "fed" / "federation" / "jobs" / job.job_id
    # Wait until the SuperLink, its SuperExec and both SuperNodes run beside the launcher
    deadline = time.monotonic() + 120
    while len(procs := processes_in(job_dir)) < 5:
        assert time.monotonic() < deadline, f"the Flower processes did not start: {procs}"
        await job_in(stub, job.job_id, (J.STATE_PREPARING, J.STATE_RUNNING))
        await asyncio.sleep(0.5)
    # Execute
    cancelled = await stub.CancelFederatedJob(pb.CancelFederatedJobRequest(job_id=job.job_id), metadata=as_org(OWNER))
    # Assert: CANCELLED, nothing registered, and not one of its processes left
    assert cancelled.state == J.STATE_CANCELLED and cancelled.result_model_id == ""
    assert all(gone(p.pid) for p in procs)
    assert processes_in(job_dir) == []
