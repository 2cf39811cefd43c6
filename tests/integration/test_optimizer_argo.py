"""The Optimizer's argo executor (MLMESH_OPTIMIZER_EXECUTOR=argo): an agent's training worker as a
Workflow of the mlmesh-optimizer-training WorkflowTemplate.

Offline, as the Trainer's (tests/integration/test_trainer_argo.py): the rendered Workflows validate
against Argo's typed models (hera) and the strict Kubernetes schemas, and set every parameter the
template declares.

Round trips through the real Optimizer (port 0, embedded PostgreSQL, our real Registry on the real
Ledger) against a stand-in for the Argo Server's REST API (tests/fixtures/argo.py): no Kubernetes
cluster can run here, so a real HTTP server on port 0 takes its place and runs the template's step
as a local process: the real training worker (.venv-rl), from the template's own command and
environment. An agent trains to SUCCEEDED with its episodes read back through the log API and its
policy in the Registry; the process the template starts is exactly the one WorkerRunner would start
locally; cancel terminates the workflow; without an Argo Server the agent fails saying what to set."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest
from mlmesh.optimizer.v1 import optimizer_service_pb2 as pb
from mlmesh.optimizer.v1 import optimizer_service_pb2_grpc as opt_grpc
from mlmesh.registry.v1 import registry_service_pb2 as reg_pb

from servers.common import errors
from servers.common.argo import ArgoJobRunner, create_request
from servers.common.processes import RunRequest
from servers.optimizer.adapters import argo
from servers.optimizer.adapters.worker_runner import INHERITED
from servers.optimizer.settings import OptimizerArgoSettings
from tests.fixtures.argo import REPO, TEMPLATES, StandInArgoServer, step_of
from tests.integration.test_optimizer import OWNER, RL_PYTHON, A, agent, agent_in, as_org, gone
from tests.integration.test_trainer_argo import argo_valid, hera_models, k8s_valid

TEMPLATE = TEMPLATES["mlmesh-optimizer-training"]
POD_WORK = "/var/lib/mlmesh/optimizer"  # where the template mounts the work claim
TOKEN = "optimizer-sa-token"
AGENT_ID = "5b8a0c57-3c64-4b6e-9d55-2d0e7d2c9a01"


def worker_request(work: Path) -> RunRequest:
    agent_dir = work / "agents" / AGENT_ID
    return RunRequest(argv=["/opt/rl/bin/python", "-m", "servers.optimizer.worker", "train", "--spec",
                            str(agent_dir / "spec.json"), "--out", str(agent_dir / "out")], cwd=Path("/app"),
                      env={}, time_limit_seconds=900, memory_limit_bytes=3 << 30, pid_file=agent_dir / "worker.pid")


def test_the_rendered_workflow_is_valid_and_sets_every_parameter():
    settings = OptimizerArgoSettings(namespace="ml-jobs", image="registry.example/mlmesh/rl:0.1.0")
    wf = argo.argo_runner(settings, Path(POD_WORK)).render(worker_request(Path(POD_WORK)))
    argo_valid(hera_models.Workflow, wf)
    argo_valid(hera_models.WorkflowCreateRequest, create_request(wf, "ml-jobs"))
    k8s_valid("objectmeta-meta-v1.json", wf["metadata"])
    assert wf["spec"]["workflowTemplateRef"] == {"name": TEMPLATE["metadata"]["name"]}
    given = {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}
    assert set(given) == {p["name"] for p in TEMPLATE["spec"]["arguments"]["parameters"]}
    assert given == {"job-id": AGENT_ID, "work-dir": f"{POD_WORK}/agents/{AGENT_ID}", "time-limit-seconds": "900",
                     "memory-limit-bytes": str(3 << 30), "rl-image": "registry.example/mlmesh/rl:0.1.0",
                     "work-claim": "mlmesh-optimizer-work"}
    step = step_of(wf)["step"]
    assert step["container"]["command"] == worker_request(Path(POD_WORK)).argv
    assert step["activeDeadlineSeconds"] == "900"
    assert step["container"]["resources"]["limits"]["memory"] == str(3 << 30)
    k8s_valid("container-v1.json", {"name": "main", **step["container"]})


def test_requests_the_template_cannot_run_are_refused():
    runner = argo.argo_runner(OptimizerArgoSettings(), Path(POD_WORK))
    with pytest.raises(errors.FailedPrecondition, match=f"MLMESH_OPTIMIZER_WORK_DIR to {POD_WORK}"):
        runner.render(worker_request(Path("/srv/elsewhere")))
    request = worker_request(Path(POD_WORK))
    planning = RunRequest(argv=[*request.argv[:3], "optimize", *request.argv[4:]], cwd=request.cwd, env={},
                          time_limit_seconds=1, memory_limit_bytes=1)
    with pytest.raises(errors.FailedPrecondition, match="runs the training worker only"):
        runner.render(planning)


# -- through the real server ---------------------------------------------------------------------


@pytest.fixture
async def argo_optimizer(registry, fresh_db_dsn, tmp_path):
    """(Optimizer stub, Registry stub, the stand-in Argo Server, the RunRequests WorkerRunner made)."""
    from servers.optimizer.main import build
    from servers.optimizer.settings import OptimizerSettings

    if not RL_PYTHON.exists():
        pytest.fail(f"{RL_PYTHON} is missing: run `make rl-venv` (it is part of `make test`)", pytrace=False)
    registry_stub, registry_server = registry
    work = tmp_path / "opt" / "optimizer"
    token = tmp_path / "token"
    token.write_text(TOKEN)
    made: list[RunRequest] = []
    real_run = ArgoJobRunner.run

    async def recording_run(self, request, on_line):  # records what WorkerRunner asked for, then runs it
        made.append(request)
        return await real_run(self, request, on_line)

    paths = {"/opt/rl/bin/python": str(RL_PYTHON), "/app": str(REPO), POD_WORK: str(work)}
    with StandInArgoServer(paths, token=TOKEN) as argo_server:
        ArgoJobRunner.run = recording_run
        try:
            # The grid cache where the cluster has it: on the claim (k8s/generate.py sets the same).
            server, _core = await build(OptimizerSettings(
                port=0, metrics_port=-1, database_url=fresh_db_dsn, data_dir=tmp_path / "opt",
                registry_target=f"127.0.0.1:{registry_server.port}", rl_python=RL_PYTHON,
                grid_cache_dir=work / "gridshift-cache", executor="argo",
                argo=OptimizerArgoSettings(server_url=argo_server.url, token_file=token, poll_seconds=0.2)))
            await server.start()
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                yield opt_grpc.OptimizerServiceStub(channel), registry_stub, argo_server, made
            await server.stop(0, drain=0)
        finally:
            ArgoJobRunner.run = real_run


async def test_an_agent_trains_as_a_workflow_and_its_policy_is_stored(argo_optimizer) -> None:
    stub, registry, argo_server, made = argo_optimizer
    created = await stub.CreateAgent(agent(), metadata=as_org(OWNER))
    events = [e async for e in stub.WatchAgent(pb.WatchAgentRequest(agent_id=created.agent_id),
                                               metadata=as_org(OWNER), timeout=300)]
    states = [e.agent.state for e in events if e.HasField("agent")]
    assert states[-1] == A.STATE_SUCCEEDED, events[-1]
    # The worker's event lines came back through the log API: every episode.
    episodes = [e.episode for e in events if e.HasField("episode")]
    assert [e.episode for e in episodes] == list(range(1, 48 // 4 + 1)) and episodes[-1].timesteps == 48
    done = await stub.GetAgent(pb.GetAgentRequest(agent_id=created.agent_id), metadata=as_org(OWNER))
    assert [p.policy for p in done.evaluation.policies] == ["agent", "no_shift", "random", "greedy"]
    model = await registry.GetModel(reg_pb.GetModelRequest(model_id=done.model_id), metadata=as_org(OWNER))
    assert model.organization_id == OWNER and model.verify_tx_hash
    # One workflow, with the server's token; its log followed; nothing terminated.
    (run,) = argo_server.runs.values()
    assert run.name.startswith("mlmesh-optimizer-training-")
    assert ("GET", f"/api/v1/workflows/mlmesh/{run.name}/log") in argo_server.calls
    assert not any(m == "PUT" for m, _ in argo_server.calls)
    # The template started exactly what WorkerRunner would start locally.
    (local,) = made
    assert run.argv == local.argv
    assert run.cwd == str(local.cwd)
    assert run.env == {k: v for k, v in local.env.items() if k not in INHERITED}
    # Planning a day stays a local worker process: no second workflow.
    plan = await stub.OptimizeDay(pb.OptimizeDayRequest(agent_id=created.agent_id, day=172), metadata=as_org(OWNER))
    assert plan.day == 172 and plan.HasField("after") and len(argo_server.runs) == 1


async def test_cancel_terminates_the_workflow(argo_optimizer) -> None:
    stub, _registry, argo_server, _made = argo_optimizer
    created = await stub.CreateAgent(agent(total_timesteps=10_000_000), metadata=as_org(OWNER))
    await agent_in(stub, created.agent_id, (A.STATE_TRAINING,))
    deadline = time.monotonic() + 60
    while not argo_server.runs:
        assert time.monotonic() < deadline, "no workflow was submitted"
        await asyncio.sleep(0.05)
    (run,) = argo_server.runs.values()
    cancelled = await stub.CancelAgent(pb.CancelAgentRequest(agent_id=created.agent_id), metadata=as_org(OWNER))
    assert cancelled.state == A.STATE_CANCELLED
    assert ("PUT", f"/api/v1/workflows/mlmesh/{run.name}/terminate") in argo_server.calls
    assert gone(run.proc.pid)


async def test_without_an_argo_server_the_agent_fails_saying_what_to_set(registry, fresh_db_dsn, tmp_path) -> None:
    from servers.optimizer.main import build
    from servers.optimizer.settings import OptimizerSettings

    _registry_stub, registry_server = registry
    server, _core = await build(OptimizerSettings(
        port=0, metrics_port=-1, database_url=fresh_db_dsn, data_dir=tmp_path / "opt",
        registry_target=f"127.0.0.1:{registry_server.port}", rl_python=RL_PYTHON, executor="argo"))
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = opt_grpc.OptimizerServiceStub(channel)
            created = await stub.CreateAgent(agent(), metadata=as_org(OWNER))
            failed = await agent_in(stub, created.agent_id, (A.STATE_FAILED,))
    finally:
        await server.stop(0, drain=0)
    assert "set MLMESH_OPTIMIZER_ARGO__SERVER_URL" in failed.failure_reason, failed.failure_reason
