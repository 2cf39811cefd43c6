"""The Federation's argo executor (MLMESH_FEDERATION_EXECUTOR=argo).

Offline, as the Trainer's (tests/integration/test_trainer_argo.py): the Workflows the server renders
validate against Argo's typed models (hera) and the strict Kubernetes schemas (kubernetes-validate),
and set every parameter their framework's WorkflowTemplate (mlmesh-federated-<framework>) declares.

Round trips through the real Federation server (port 0, embedded PostgreSQL, our real Registry on
the real Ledger) against a stand-in for the Argo Server's REST API (tests/fixtures/argo.py): no
Kubernetes cluster can run here, so a real HTTP server on port 0 takes its place and runs the
template's step as a local process. The step is each framework's real launcher (FedPATE on Flower in
.venv-flower, FLARE's simulator in .venv-flare, TFF's DP-FedAvg in .venv-tff), started from the
template's own command and environment: a job of each succeeds with its figures read back through the
log API and its model registered; the process the template starts is exactly the one the server would
start locally; cancel terminates the workflow; a server killed with -9 terminates its predecessor's
workflow on restart; real-mode jobs are not submitted, and no job is when no Argo Server is
configured."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import grpc
import pytest
from mlmesh.federation.v1 import federation_service_pb2 as pb
from mlmesh.federation.v1 import federation_service_pb2_grpc as fed_grpc

from servers.common import errors
from servers.common.argo import ArgoJobRunner, create_request, log_line, outcome
from servers.common.processes import RunRequest
from servers.federation.adapters import argo
from servers.federation.settings import FederationArgoSettings
from tests.fixtures.argo import REPO, TEMPLATES, StandInArgoServer, step_of
from tests.fixtures.federation import blobs_csv, federation_process
from tests.integration.test_federation import (
    job_after_restart,
    FLOWER_PYTHON,
    OWNER,
    J,
    as_org,
    fedpate,
    gone,
    job_in,
    refused,
    upload,
)
from tests.integration.test_federation_flare import FLARE_PYTHON, flare_job
from tests.integration.test_federation_tff import TFF_PYTHON, tff_job
from tests.integration.test_trainer_argo import argo_valid, hera_models, k8s_valid

TEMPLATE = TEMPLATES["mlmesh-federated-fedpate"]
APPS = "/app/servers/federation/apps"
# framework: (the image's Python, its launcher, the image parameter, the settings field naming the image)
LAUNCHERS = {"fedpate": ("/opt/flower/bin/python", f"{APPS}/launch_flower.py", "flower-image", "image"),
             "flare": ("/opt/flare/bin/python", f"{APPS}/flare/launch_flare.py", "flare-image", "flare_image"),
             "tff": ("/opt/tff/bin/python", f"{APPS}/tff/dp_fedavg.py", "tff-image", "tff_image")}
POD_WORK = "/var/lib/mlmesh/federation"  # where the template mounts the work claim
TOKEN = "federation-sa-token"
INHERITED = ("PATH", "LANG")  # what the server passes on from its own environment; a pod has its image's


def core_request(work: Path, job_id: str = "0b5e9a8e-5d1e-4a57-9a53-0f7d7e3f5d11",
                 framework: str = "fedpate") -> RunRequest:
    job_dir = work / "jobs" / job_id
    python, launcher, _param, _field = LAUNCHERS[framework]
    return RunRequest(argv=[python, launcher, str(job_dir / "job.json")], cwd=job_dir, env={}, time_limit_seconds=600,
                      memory_limit_bytes=2 << 30, pid_file=job_dir / "job.pid")


@pytest.mark.parametrize("framework", sorted(LAUNCHERS))
def test_the_rendered_workflow_is_valid_and_sets_every_parameter(framework):
    _python, launcher, image_param, field = LAUNCHERS[framework]
    image = f"registry.example/mlmesh/{image_param.removesuffix('-image')}:0.1.0"
    settings = FederationArgoSettings(namespace="ml-jobs", **{field: image})
    runner = argo.argo_runner(settings, Path(POD_WORK))
    wf = runner.render(core_request(Path(POD_WORK), framework=framework))
    argo_valid(hera_models.Workflow, wf)
    argo_valid(hera_models.WorkflowCreateRequest, create_request(wf, "ml-jobs"))
    k8s_valid("objectmeta-meta-v1.json", wf["metadata"])
    assert wf["metadata"]["namespace"] == "ml-jobs"
    template = TEMPLATES[f"mlmesh-federated-{framework}"]
    assert wf["spec"]["workflowTemplateRef"] == {"name": template["metadata"]["name"]}
    assert wf["metadata"]["generateName"] == f"mlmesh-federated-{framework}-"
    given = {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}
    assert set(given) == {p["name"] for p in template["spec"]["arguments"]["parameters"]}
    assert given == {"job-id": "0b5e9a8e-5d1e-4a57-9a53-0f7d7e3f5d11",
                     "job-dir": f"{POD_WORK}/jobs/0b5e9a8e-5d1e-4a57-9a53-0f7d7e3f5d11",
                     "time-limit-seconds": "600", "memory-limit-bytes": str(2 << 30),
                     image_param: image, "work-claim": "mlmesh-federation-work"}
    # Resolved, the template's step runs the launcher on the job's directory, bounded by the job's limits.
    step = step_of(wf)["step"]
    assert step["container"]["image"] == image
    assert step["container"]["command"][1:] == [launcher, f"{given['job-dir']}/job.json"]
    assert step["activeDeadlineSeconds"] == "600"
    assert step["container"]["resources"]["limits"]["memory"] == str(2 << 30)
    k8s_valid("container-v1.json", {"name": "main", **step["container"]})


def test_requests_the_template_cannot_run_are_refused():
    runner = argo.argo_runner(FederationArgoSettings(), Path(POD_WORK))
    with pytest.raises(errors.FailedPrecondition, match=f"MLMESH_FEDERATION_WORK_DIR to {POD_WORK}"):
        runner.render(core_request(Path("/srv/elsewhere")))
    other = core_request(Path(POD_WORK))
    for argv in (["/opt/flare/bin/python", f"{APPS}/flare/launch.py", other.argv[2]],
                 [*other.argv[:2], "/elsewhere/job.json"], ["unshare", "--net", "--", *other.argv]):
        with pytest.raises(errors.FailedPrecondition, match=r"launchers \(dp_fedavg.py, launch_flare.py, "
                                                            r"launch_flower.py\) only"):
            runner.render(RunRequest(argv=argv, cwd=other.cwd, env={}, time_limit_seconds=1, memory_limit_bytes=1))


@pytest.mark.parametrize(("framework", "real"), [("fedpate", {"mode": "real", "listen-port": 9200}),
                                               ("flare", {"flare-admin-kit": "/w/flare-servers/s/admin"})])
def test_a_real_mode_job_is_not_submitted(tmp_path, framework, real):
    """A FedPATE SuperLink or a provisioned FLARE server's job would listen inside the workflow's pod:
    refused once job.json says real mode."""
    runner = argo.argo_runner(FederationArgoSettings(), tmp_path)
    request = core_request(tmp_path, framework=framework)
    request.cwd.mkdir(parents=True)
    (request.cwd / "job.json").write_text(json.dumps({"mode": "simulation"}))
    assert runner.render(request)["spec"]["workflowTemplateRef"]["name"] == f"mlmesh-federated-{framework}"
    (request.cwd / "job.json").write_text(json.dumps(real))
    with pytest.raises(errors.FailedPrecondition, match=f"real-mode {framework} job cannot run on the argo executor"):
        runner.render(request)


def test_argo_answers_map_to_the_jobs_outcome():
    request = core_request(Path(POD_WORK))

    def wf(phase, message="", code=None, status_message=""):
        node = {"displayName": "run", "type": "Pod", "phase": phase, "message": message}
        if code is not None:
            node["outputs"] = {"exitCode": str(code)}
        return {"status": {"phase": phase, "message": status_message, "nodes": {"n": node}}}

    assert outcome(wf("Succeeded", code=0), "the federated job", request) == (0, "", "")
    assert outcome(wf("Failed", "Error (exit code 3)", 3), "the federated job", request) == \
        (3, "", "run: Error (exit code 3)")
    code, failure, _ = outcome(wf("Failed", "OOMKilled (exit code 137)", 137), "the federated job", request)
    assert code == 137 and failure.startswith(f"the federated job exceeded its memory limit of {2 << 30} bytes")
    _, failure, _ = outcome(wf("Failed", "Pod was active on the node longer than the specified deadline"),
                            "the federated job", request)
    assert failure.startswith("the federated job exceeded its time limit of 600 s")
    assert outcome({"status": {"phase": "Error", "message": "pods \"x\" is forbidden"}}, "j", request) == \
        (1, "", 'pods "x" is forbidden')
    # The log API's lines: server-sent events or one JSON object per line; anything else is skipped.
    assert log_line('data: {"result": {"content": "MLMESH_EVENT {}", "podName": "p"}}') == "MLMESH_EVENT {}"
    assert log_line('{"result": {"content": "hello\\n"}}') == "hello"
    assert log_line("") is None and log_line(": keep-alive") is None and log_line("data: [oops") is None


# -- through the real server ---------------------------------------------------------------------


def argo_settings(server_url: str | None, token_file: Path) -> FederationArgoSettings:
    return FederationArgoSettings(server_url=server_url, token_file=token_file, poll_seconds=0.2)


def paths(work: Path) -> dict[str, str]:
    """The flower, flare and tff images' paths as this machine has them."""
    return {"/opt/flower/bin/python": str(FLOWER_PYTHON), "/opt/flare/bin/python": str(FLARE_PYTHON),
            "/opt/tff/bin/python": str(TFF_PYTHON), "/app": str(REPO), POD_WORK: str(work)}


@pytest.fixture
def token(tmp_path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


@pytest.fixture
async def argo_federation(registry, fresh_db_dsn, tmp_path, token):
    """(Federation stub, Registry stub, the stand-in Argo Server, the RunRequests the core made)."""
    from servers.federation.main import build
    from servers.federation.settings import FederationSettings

    for python, target in ((FLOWER_PYTHON, "flower-venv"), (FLARE_PYTHON, "flare-venv"), (TFF_PYTHON, "tff-venv")):
        if not python.exists():
            pytest.fail(f"{python} is missing: run `make {target}` (part of `make test`)", pytrace=False)
    registry_stub, registry_server = registry
    work = tmp_path / "fed" / "federation"
    made: list[RunRequest] = []
    real_run = ArgoJobRunner.run

    async def recording_run(self, request, on_line):  # records what the core asked for, then runs it
        made.append(request)
        return await real_run(self, request, on_line)

    with StandInArgoServer(paths(work), token=TOKEN) as argo_server:
        ArgoJobRunner.run = recording_run
        try:
            server, _core = await build(FederationSettings(
                port=0, metrics_port=-1, database_url=fresh_db_dsn, data_dir=tmp_path / "fed",
                registry_target=f"127.0.0.1:{registry_server.port}", flower_python=FLOWER_PYTHON,
                flare_python=FLARE_PYTHON, tff_python=TFF_PYTHON, executor="argo",
                argo=argo_settings(argo_server.url, token)))
            await server.start()
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                yield fed_grpc.FederationServiceStub(channel), registry_stub, argo_server, made
            await server.stop(0, drain=0)
        finally:
            ArgoJobRunner.run = real_run


async def test_a_fedpate_job_runs_as_a_workflow_and_registers_its_student(argo_federation) -> None:
    stub, registry, argo_server, made = argo_federation
    argo_server.unavailable_reads = 3  # a restarting Argo Server is waited for
    dataset = await upload(registry, OWNER, blobs_csv())
    request = pb.CreateFederatedJobRequest(job=J(display_name="fedpate on argo", data=pb.FederatedData(
        dataset_id=dataset, seed=3), fedpate=pb.FedPateSpec(num_teachers=2, num_rounds=1, teacher_epochs=15,
                                                            student_epochs=30, batch_size=16, learning_rate=0.01,
                                                            epsilon=2.0, num_queries=60, noise_data=40)))
    created = await stub.CreateFederatedJob(request, metadata=as_org(OWNER))
    assert created.executor == "argo"
    events = [e async for e in stub.WatchFederatedJob(pb.WatchFederatedJobRequest(job_id=created.job_id),
                                                      metadata=as_org(OWNER))]
    job = events[-1].job
    assert job.state == J.STATE_SUCCEEDED, job.failure_reason
    # The launcher's event lines came back through the log API: version, rounds, each teacher's commitment.
    assert job.framework_version == "flwr 1.42.0"
    rounds = [e.round for e in events if e.HasField("round")]
    assert [r.round for r in rounds] == [1] and rounds[0].accuracy >= 0.8
    assert len(job.client_commitments) == 2 and job.privacy.epsilon == pytest.approx(160.0)
    assert job.result_model_id
    # The workflow: submitted once with the server's token, followed, its log read.
    (run,) = argo_server.runs.values()
    assert run.name.startswith("mlmesh-federated-fedpate-")
    assert ("POST", "/api/v1/workflows/mlmesh") in argo_server.calls
    assert ("GET", f"/api/v1/workflows/mlmesh/{run.name}/log") in argo_server.calls
    assert not any(m == "PUT" for m, _ in argo_server.calls) and argo_server.unavailable_reads == 0
    # The template started exactly what the server would start locally: command, directory, environment.
    (core,) = made
    assert run.argv == core.argv
    assert run.cwd == str(core.cwd)
    assert run.env == {k: v for k, v in core.env.items() if k not in INHERITED}


async def test_cancel_terminates_the_workflow(argo_federation) -> None:
    stub, registry, argo_server, _made = argo_federation
    dataset = await upload(registry, OWNER, blobs_csv())
    job = await stub.CreateFederatedJob(fedpate(dataset, teacher_epochs=1000, batch_size=8),
                                        metadata=as_org(OWNER))
    await job_in(stub, job.job_id, (J.STATE_RUNNING,))
    run = await started(argo_server)
    cancelled = await stub.CancelFederatedJob(pb.CancelFederatedJobRequest(job_id=job.job_id),
                                              metadata=as_org(OWNER))
    assert cancelled.state == J.STATE_CANCELLED
    assert ("PUT", f"/api/v1/workflows/mlmesh/{run.name}/terminate") in argo_server.calls
    assert gone(run.proc.pid)


async def test_a_job_cancelled_while_its_submit_is_on_its_way_terminates_the_workflow(argo_federation) -> None:
    stub, registry, argo_server, _made = argo_federation
    argo_server.submit_delay = 3.0  # the workflow exists; the server has not answered yet
    dataset = await upload(registry, OWNER, blobs_csv())
    job = await stub.CreateFederatedJob(fedpate(dataset, teacher_epochs=1000, batch_size=8), metadata=as_org(OWNER))
    await job_in(stub, job.job_id, (J.STATE_RUNNING,))
    run = await started(argo_server)
    cancelled = await stub.CancelFederatedJob(pb.CancelFederatedJobRequest(job_id=job.job_id),
                                              metadata=as_org(OWNER))
    assert cancelled.state == J.STATE_CANCELLED
    assert ("PUT", f"/api/v1/workflows/mlmesh/{run.name}/terminate") in argo_server.calls
    assert gone(run.proc.pid)


async def started(argo_server: StandInArgoServer, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not argo_server.runs:
        assert time.monotonic() < deadline, "no workflow was submitted"
        await asyncio.sleep(0.05)
    (run,) = argo_server.runs.values()
    return run


async def test_a_flare_job_runs_as_a_workflow_and_registers_its_model(argo_federation) -> None:
    """FLARE's simulator (server and client processes) inside the step, from the flare image's command."""
    stub, registry, argo_server, made = argo_federation
    dataset = await upload(registry, OWNER, blobs_csv())
    created = await stub.CreateFederatedJob(flare_job(dataset), metadata=as_org(OWNER))
    job = await finished(stub, created.job_id)
    assert job.framework_version == "nvflare 2.9.0" and len(job.client_commitments) == 2
    assert job.result_model_id and not job.privacy.formal_guarantee
    (run,) = argo_server.runs.values()
    assert run.name.startswith("mlmesh-federated-flare-")
    assert run.argv[:2] == [str(FLARE_PYTHON), str(REPO / "servers/federation/apps/flare/launch_flare.py")]
    (core,) = made
    assert (run.argv, run.cwd) == (core.argv, str(core.cwd))
    assert run.env == {k: v for k, v in core.env.items() if k not in INHERITED}


async def test_a_tff_job_runs_as_a_workflow_in_the_pods_network_and_registers_its_model(argo_federation) -> None:
    """TFF's simulation in the step without `unshare` (a pod cannot make a network namespace); its worker
    listens on every interface of the pod, whose network nothing reaches -- here a network namespace
    of the stand-in's stands in for that closed pod network."""
    from servers.federation.adapters import tff

    stub, registry, argo_server, made = argo_federation
    unshare, why_not = tff._unshare()
    assert not why_not, why_not
    argo_server.pod_network = [unshare, "--net", "--"]
    dataset = await upload(registry, OWNER, blobs_csv())
    created = await stub.CreateFederatedJob(tff_job(dataset, seed=3), metadata=as_org(OWNER))
    job = await finished(stub, created.job_id)
    assert job.framework_version == "tensorflow-federated 0.87.0 (tensorflow 2.14.1)"
    assert len(job.client_commitments) == 2 and job.result_model_id and job.privacy.formal_guarantee
    (run,) = argo_server.runs.values()
    assert run.name.startswith("mlmesh-federated-tff-")
    # The server asked for TFF's app itself, not wrapped in `unshare` as a local job is.
    (core,) = made
    assert core.argv == [str(TFF_PYTHON), str(REPO / "servers/federation/apps/tff/dp_fedavg.py"),
                         str(core.cwd / "job.json")]
    assert (run.argv, run.cwd) == (core.argv, str(core.cwd))
    assert run.env == {k: v for k, v in core.env.items() if k not in INHERITED}
    assert any("network: a namespace of its own" in line for line in run.lines), run.lines[-20:]


async def finished(stub, job_id: str) -> pb.FederatedJob:
    events = [e async for e in stub.WatchFederatedJob(pb.WatchFederatedJobRequest(job_id=job_id),
                                                      metadata=as_org(OWNER))]
    job = events[-1].job
    assert job.state == J.STATE_SUCCEEDED, job.failure_reason
    rounds = [e.round for e in events if e.HasField("round")]
    assert [r.round for r in rounds] == [1], "the round's figures came back through the log API"
    return job


async def test_without_an_argo_server_jobs_are_refused_saying_what_to_set(registry, fresh_db_dsn, tmp_path) -> None:
    from servers.federation.main import build
    from servers.federation.settings import FederationSettings

    registry_stub, registry_server = registry
    server, _core = await build(FederationSettings(
        port=0, metrics_port=-1, database_url=fresh_db_dsn, data_dir=tmp_path / "fed",
        registry_target=f"127.0.0.1:{registry_server.port}", flower_python=FLOWER_PYTHON, executor="argo"))
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = fed_grpc.FederationServiceStub(channel)
            dataset = await upload(registry_stub, OWNER, blobs_csv())
            err = await refused(stub.CreateFederatedJob, fedpate(dataset))
    finally:
        await server.stop(0, drain=0)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "set MLMESH_FEDERATION_ARGO__SERVER_URL" in err.details(), err.details()


@pytest.mark.parametrize("when", ["running", "submitting"])
async def test_a_server_killed_mid_job_terminates_its_workflow_on_restart(
        registry, fresh_db_dsn, tmp_path, token, when) -> None:
    """Killed while the workflow runs (its name recorded in job.pid), or while its submit is on its way
    (nothing recorded: the restarted server finds it by its job-id label)."""
    from servers.federation.main import build
    from servers.federation.settings import FederationSettings

    registry_stub, registry_server = registry
    dataset = await upload(registry_stub, OWNER, blobs_csv())
    work = tmp_path / "fed" / "federation"
    with StandInArgoServer(paths(work), token=TOKEN) as argo_server:
        argo_server.submit_delay = 30.0 if when == "submitting" else 0.0
        async with federation_process(fresh_db_dsn, tmp_path / "fed", registry_server.port,
                                      executor="argo", flower_python=str(FLOWER_PYTHON),
                                      argo__server_url=argo_server.url, argo__token_file=str(token),
                                      argo__poll_seconds="0.2") as (process, port):
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = fed_grpc.FederationServiceStub(channel)
                job = await stub.CreateFederatedJob(fedpate(dataset, teacher_epochs=1000, batch_size=8),
                                                    metadata=as_org(OWNER))
                await job_in(stub, job.job_id, (J.STATE_RUNNING,))
            run = await started(argo_server)
            if when == "running":
                while not (work / "jobs" / job.job_id / "job.pid").exists():
                    await asyncio.sleep(0.05)
            else:
                assert not (work / "jobs" / job.job_id / "job.pid").exists()
            # Execute: kill -9 the server; its workflow runs on (as in a cluster)
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            assert run.proc.poll() is None
        restarted, _core = await build(FederationSettings(
            port=0, metrics_port=-1, database_url=fresh_db_dsn, data_dir=tmp_path / "fed",
            registry_target=f"127.0.0.1:{registry_server.port}", flower_python=FLOWER_PYTHON,
            executor="argo", argo=argo_settings(argo_server.url, token)))
        await restarted.start()
        got = await job_after_restart(restarted, job.job_id)
        # Assert: FAILED with the reason, and the workflow terminated through the API
        assert got.state == J.STATE_FAILED and "restarted while the job was running" in got.failure_reason
        assert ("PUT", f"/api/v1/workflows/mlmesh/{run.name}/terminate") in argo_server.calls
        assert gone(run.proc.pid)

