"""The Optimizer on port 0 with embedded PostgreSQL, our real Registry (real Ledger on Anvil) and
the real training worker in .venv-rl (Stable-Baselines3 on mlmesh/GridShift-v0, a few dozen
steps): an agent trains, is evaluated beside the baselines and its policy lands in the Registry
anchored on the ledger; a user's grid and profiles are fetched on the caller's behalf and
hash-checked; access (a stranger gets NOT_FOUND, worded as for an unknown id); bad input names the
field; cancel and kill -9 leave no worker process behind."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
import psutil
import pytest
from google.api import httpbody_pb2
from mlmesh.optimizer.v1 import optimizer_service_pb2 as pb
from mlmesh.optimizer.v1 import optimizer_service_pb2_grpc as opt_grpc
from mlmesh.registry.v1 import registry_service_pb2 as reg_pb

from servers.devstack.procs import free_port, port_open

OWNER, STRANGER = "smart-energy-ll", "grid-partner"
A = pb.Agent
FINAL = (A.STATE_SUCCEEDED, A.STATE_FAILED, A.STATE_CANCELLED)
REPO = Path(__file__).resolve().parents[2]
RL_PYTHON = REPO / ".venv-rl" / "bin" / "python"
TINY = dict(total_timesteps=48, seed=3, train_days=pb.DayRange(first=160, last=170),
            eval_days=pb.DayRange(first=171, last=173), actions_per_day=4)


def as_org(org: str) -> tuple[tuple[str, str], ...]:
    return (("x-mlmesh-org", org),)


def agent(algorithm=A.ALGORITHM_PPO, **changes) -> pb.CreateAgentRequest:
    fields = dict(display_name="ppo", algorithm=algorithm, hyperparameters={"n_steps": 16, "batch_size": 16}, **TINY)
    fields.update(changes)
    return pb.CreateAgentRequest(agent=A(**fields))


def settings(dsn: str, work: Path, registry_port: int, **extra):
    from servers.optimizer.settings import OptimizerSettings

    return OptimizerSettings(port=extra.pop("port", 0), metrics_port=-1, database_url=dsn, data_dir=work,
                             registry_target=f"127.0.0.1:{registry_port}", **extra)


@pytest.fixture(scope="module", autouse=True)
def rl_venv() -> None:
    if not RL_PYTHON.exists():
        pytest.fail(f"{RL_PYTHON} is missing: run `make rl-venv` (it is part of `make test`)", pytrace=False)


@pytest.fixture
async def optimizer(registry, fresh_db_dsn, tmp_path):
    """(Optimizer stub, Registry stub, the Optimizer's work dir)."""
    from servers.optimizer.main import build

    registry_stub, registry_server = registry
    server, _core = await build(settings(fresh_db_dsn, tmp_path / "opt", registry_server.port, max_concurrent_jobs=2))
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield opt_grpc.OptimizerServiceStub(channel), registry_stub, tmp_path / "opt" / "optimizer"
    await server.stop(0, drain=0)


async def upload(registry, org: str, data: bytes, filename: str, content_type: str) -> str:
    async def gen():
        yield reg_pb.UploadDatasetRequest(organization_id=org, display_name=filename, filename=filename,
                                          content_type=content_type)
        yield reg_pb.UploadDatasetRequest(chunk=httpbody_pb2.HttpBody(data=data))
    return (await registry.UploadDataset(gen(), metadata=as_org(org))).dataset_id


async def agent_in(stub, agent_id: str, states, org: str = OWNER, timeout: float = 240.0) -> pb.Agent:
    deadline = time.monotonic() + timeout
    while True:
        got = await stub.GetAgent(pb.GetAgentRequest(agent_id=agent_id), metadata=as_org(org))
        if got.state in states:
            return got
        assert got.state not in FINAL, f"agent ended {A.State.Name(got.state)}: {got.failure_reason}"
        assert time.monotonic() < deadline, f"agent stayed {A.State.Name(got.state)}"
        await asyncio.sleep(0.2)


async def refused(call, request, org: str = OWNER) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(request, metadata=as_org(org))
    return info.value


async def download(registry, call, request, org: str = OWNER) -> bytes:
    return b"".join([c.data async for c in call(request, metadata=as_org(org))])


def worker_pid(work: Path, agent_id: str) -> int:
    return int((work / "agents" / agent_id / "worker.pid").read_text().split()[0])


async def wait_for_worker(work: Path, agent_id: str, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    pid_file = work / "agents" / agent_id / "worker.pid"
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "the worker never started"
        await asyncio.sleep(0.1)
    return worker_pid(work, agent_id)


def gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


async def test_bad_input_is_invalid_argument_naming_the_field(optimizer) -> None:
    stub, registry, _work = optimizer
    cases = [
        (agent(algorithm=A.ALGORITHM_UNSPECIFIED), "agent.algorithm"),
        (agent(hyperparameters={"warp_speed": 9.0}), "agent.hyperparameters.warp_speed"),
        (agent(hyperparameters={"n_steps": 16.5}), "agent.hyperparameters.n_steps"),
        (agent(eval_days=pb.DayRange(first=165, last=175)), "agent.eval_days"),
        (agent(train_days=pb.DayRange(first=10, last=10)), "agent.train_days"),
        (agent(total_timesteps=0), "agent.total_timesteps"),
        (agent(actions_per_day=5000), "agent.actions_per_day"),
        (agent(reward="joy"), "agent.reward"),
        (agent(display_name=" "), "agent.display_name"),
        (agent(time_limit_seconds=10**9), "agent.time_limit_seconds"),
        (agent(grid=pb.GridSource(simbench_code="1-LV rural; drop")), "agent.grid.simbench_code"),
        (agent(hyperparameters={"gamma": float("nan")}), "hyperparameters"),
        (agent(hyperparameters={"n_steps": 1e300}), "agent.hyperparameters.n_steps"),
        (agent(display_name="a\x00b"), "display_name"),
        (agent(seed=-(2**63)), "agent.seed"),
    ]
    for request, field in cases:
        err = await refused(stub.CreateAgent, request)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, err.details())
        assert field in err.details(), (field, err.details())
    err = await refused(stub.CreateAgent, agent(grid=pb.GridSource(registered=pb.RegisteredGrid(
        grid_dataset_id="nope", profiles_dataset_id=str(uuid.uuid4())))))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "grid_dataset_id" in err.details()
    assert (await stub.ListAgents(pb.ListAgentsRequest(), metadata=as_org(OWNER))).agents == []


async def test_an_agent_trains_is_evaluated_and_its_policy_is_anchored_in_the_registry(optimizer) -> None:
    stub, registry, _work = optimizer
    created = await stub.CreateAgent(agent(), metadata=as_org(OWNER))
    assert created.state == A.STATE_QUEUED and created.organization_id == OWNER
    assert created.shiftable_loads == 7 and created.reward == "level"

    events = [e async for e in stub.WatchAgent(pb.WatchAgentRequest(agent_id=created.agent_id),
                                               metadata=as_org(OWNER), timeout=300)]
    states = [e.agent.state for e in events if e.HasField("agent")]
    episodes = [e.episode for e in events if e.HasField("episode")]
    assert states[-1] == A.STATE_SUCCEEDED, events[-1]
    assert A.STATE_STORING in states and A.STATE_EVALUATING in states
    assert [e.episode for e in episodes] == list(range(1, 48 // 4 + 1))
    assert episodes[-1].timesteps == 48 and all(0 <= e.scr <= 1 and 0 <= e.ssr <= 1 for e in episodes)

    done = await stub.GetAgent(pb.GetAgentRequest(agent_id=created.agent_id), metadata=as_org(OWNER))
    assert done.timesteps_done == 48 and done.episodes_done == 12 and done.end_time.seconds > 0
    assert done.evaluation.days.first == 171 and done.evaluation.days.last == 173
    assert [p.policy for p in done.evaluation.policies] == ["agent", "no_shift", "random", "greedy"]
    assert all(p.episodes == 2 and 0 < p.reward.mean <= 1 for p in done.evaluation.policies)

    # The policy: a TRAINED model of the owner, its bytes verified on the ledger, the record its recipe.
    model = await registry.GetModel(reg_pb.GetModelRequest(model_id=done.model_id), metadata=as_org(OWNER))
    assert model.organization_id == OWNER and model.framework == "pytorch" and model.verify_tx_hash
    policy = await download(registry, registry.DownloadModel, reg_pb.DownloadModelRequest(model_id=model.model_id))
    assert policy[:2] == b"PK" and hashlib.sha256(policy).hexdigest() == model.res_sha256
    provenance = await registry.GetModelProvenance(reg_pb.GetModelProvenanceRequest(model_id=model.model_id),
                                                   metadata=as_org(OWNER))
    assert provenance.consistent, provenance
    record = json.loads(await download(registry, registry.DownloadModelRecipe,
                                       reg_pb.DownloadModelRecipeRequest(model_id=model.model_id)))
    assert record["agent_id"] == created.agent_id and record["algorithm"] == "PPO" and record["seed"] == 3
    assert record["hyperparameters"] == {"n_steps": 16, "batch_size": 16}
    assert record["library"].startswith("stable-baselines3 ")
    assert record["grid"] == {"simbench_code": "1-LV-rural1--0-sw"}
    assert record["evaluation"]["greedy"]["reward"]["mean"] == pytest.approx(done.evaluation.policies[3].reward.mean)
    # The environment's description is the dataset the model's contract names, owned by the organization.
    environment = await registry.GetDataset(reg_pb.GetDatasetRequest(dataset_id=model.dataset_id),
                                            metadata=as_org(OWNER))
    assert environment.organization_id == OWNER

    # :optimize plans a day with the stored policy within the seed's constraints.
    plan = await stub.OptimizeDay(pb.OptimizeDayRequest(agent_id=created.agent_id, day=172), metadata=as_org(OWNER))
    assert plan.day == 172 and plan.model_id == model.model_id and len(plan.loads) == 7
    assert plan.source == "profiles day 172" and not plan.forecast_sha256
    assert plan.before.power_flow_status == plan.after.power_flow_status == "converged"
    assert 0 < plan.before.reward <= 1 and 0 < plan.after.reward <= 1 and 0 < plan.greedy.reward <= 1
    for shift in plan.shifts:
        assert abs(shift.to_hour - shift.from_hour) == 1 and shift.fraction in (0.01, 0.05, 0.10)
    shifted = {(s.load_index, h) for s in plan.shifts for h in (s.from_hour, s.to_hour)}
    for load in plan.loads:
        assert len(load.hourly_mwh_before) == len(load.hourly_mwh_after) == 24
        assert sum(load.hourly_mwh_after) == pytest.approx(sum(load.hourly_mwh_before), abs=1e-9)
        for hour, (b, a) in enumerate(zip(load.hourly_mwh_before, load.hourly_mwh_after, strict=True)):
            assert (load.load_index, hour) in shifted or a == pytest.approx(b, abs=1e-12)
    err = await refused(stub.OptimizeDay, pb.OptimizeDayRequest(agent_id=created.agent_id, day=400))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "day" in err.details(), err.details()

    # A stranger: the agent, its policy and its watch do not exist; worded as for an unknown id.
    unknown = str(uuid.uuid4())
    for call, request in ((stub.GetAgent, pb.GetAgentRequest), (stub.CancelAgent, pb.CancelAgentRequest),
                          (stub.DeleteAgent, pb.DeleteAgentRequest),
                          (stub.OptimizeDay, lambda agent_id: pb.OptimizeDayRequest(agent_id=agent_id, day=172))):
        theirs = await refused(call, request(agent_id=created.agent_id), org=STRANGER)
        nobody = await refused(call, request(agent_id=unknown), org=STRANGER)
        assert theirs.code() == nobody.code() == grpc.StatusCode.NOT_FOUND
        assert theirs.details().replace(created.agent_id, "X") == nobody.details().replace(unknown, "X")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in stub.WatchAgent(pb.WatchAgentRequest(agent_id=created.agent_id), metadata=as_org(STRANGER)):
            pass
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await refused(registry.GetModel, reg_pb.GetModelRequest(model_id=model.model_id),
                          org=STRANGER)).code() == grpc.StatusCode.NOT_FOUND
    assert (await stub.ListAgents(pb.ListAgentsRequest(), metadata=as_org(STRANGER))).agents == []

    # The owner: listed; an ended agent cannot be cancelled; delete keeps the policy.
    listed = await stub.ListAgents(pb.ListAgentsRequest(), metadata=as_org(OWNER))
    assert [a.agent_id for a in listed.agents] == [created.agent_id]
    err = await refused(stub.CancelAgent, pb.CancelAgentRequest(agent_id=created.agent_id))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    await stub.DeleteAgent(pb.DeleteAgentRequest(agent_id=created.agent_id), metadata=as_org(OWNER))
    assert (await refused(stub.GetAgent, pb.GetAgentRequest(agent_id=created.agent_id))).code() == \
        grpc.StatusCode.NOT_FOUND
    assert (await registry.GetModel(reg_pb.GetModelRequest(model_id=model.model_id),
                                    metadata=as_org(OWNER))).model_id == model.model_id


EXPORT = r'''
import dataclasses, sys
from servers.optimizer.gridshift.data import simbench_grid, write_files
data = simbench_grid()
cut = slice(160 * 96, 172 * 96)
data = dataclasses.replace(data, load_p=data.load_p[cut], load_q=data.load_q[cut], sgen_p=data.sgen_p[cut])
write_files(data, sys.argv[1], sys.argv[2])
'''


async def test_a_registered_grid_is_read_on_the_callers_behalf_and_hash_checked(optimizer, tmp_path) -> None:
    stub, registry, _work = optimizer
    grid_json, profiles_csv = tmp_path / "grid.json", tmp_path / "profiles.csv"
    subprocess.run([str(RL_PYTHON), "-c", EXPORT, str(grid_json), str(profiles_csv)], cwd=REPO, check=True,
                   timeout=180)
    grid_id = await upload(registry, OWNER, grid_json.read_bytes(), "grid.json", "application/json")
    profiles_id = await upload(registry, OWNER, profiles_csv.read_bytes(), "profiles.csv", "text/csv")
    source = pb.GridSource(registered=pb.RegisteredGrid(grid_dataset_id=grid_id, profiles_dataset_id=profiles_id))
    twelve_days = dict(train_days=pb.DayRange(first=0, last=9), eval_days=pb.DayRange(first=9, last=11))

    # A stranger cannot train on the owner's grid: the dataset does not exist for it.
    err = await refused(stub.CreateAgent, agent(grid=source, **twelve_days), org=STRANGER)
    assert err.code() == grpc.StatusCode.NOT_FOUND and grid_id in err.details()

    created = await stub.CreateAgent(agent(A.ALGORITHM_DQN, grid=source, hyperparameters={"learning_starts": 8},
                                           **twelve_days), metadata=as_org(OWNER))
    done = await agent_in(stub, created.agent_id, (A.STATE_SUCCEEDED,))
    assert done.grid_sha256 == hashlib.sha256(grid_json.read_bytes()).hexdigest()
    assert done.profiles_sha256 == hashlib.sha256(profiles_csv.read_bytes()).hexdigest()
    model = await registry.GetModel(reg_pb.GetModelRequest(model_id=done.model_id), metadata=as_org(OWNER))
    assert model.dataset_id == grid_id
    record = json.loads(await download(registry, registry.DownloadModelRecipe,
                                       reg_pb.DownloadModelRecipeRequest(model_id=model.model_id)))
    assert record["grid"] == {"grid_dataset_id": grid_id, "grid_sha256": done.grid_sha256,
                              "profiles_dataset_id": profiles_id, "profiles_sha256": done.profiles_sha256}
    plan = await stub.OptimizeDay(pb.OptimizeDayRequest(agent_id=created.agent_id, day=10), metadata=as_org(OWNER))
    assert plan.day == 10 and plan.after.power_flow_status == "converged"
    err = await refused(stub.OptimizeDay, pb.OptimizeDayRequest(agent_id=created.agent_id, day=12))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "12 days" in err.details(), err.details()

    # Days beyond the registered profiles: the job fails and says why.
    beyond = await stub.CreateAgent(agent(grid=source, train_days=pb.DayRange(first=0, last=9),
                                          eval_days=pb.DayRange(first=9, last=20)), metadata=as_org(OWNER))
    failed = await agent_in(stub, beyond.agent_id, (A.STATE_FAILED,))
    assert "eval_days" in failed.failure_reason and "12 days" in failed.failure_reason


async def test_cancel_kills_the_worker(optimizer) -> None:
    stub, _registry, work = optimizer
    created = await stub.CreateAgent(agent(total_timesteps=10_000_000), metadata=as_org(OWNER))
    await agent_in(stub, created.agent_id, (A.STATE_TRAINING,))
    pid = await wait_for_worker(work, created.agent_id)
    cancelled = await stub.CancelAgent(pb.CancelAgentRequest(agent_id=created.agent_id), metadata=as_org(OWNER))
    assert cancelled.state == A.STATE_CANCELLED and cancelled.failure_reason == "the agent was cancelled"
    err = await refused(stub.OptimizeDay, pb.OptimizeDayRequest(agent_id=created.agent_id, day=172))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "SUCCEEDED" in err.details()
    assert gone(pid)
    assert not (work / "agents" / created.agent_id).exists()


async def test_a_server_killed_mid_training_restarts_with_the_agent_failed_and_no_orphan(
        registry, fresh_db_dsn, tmp_path) -> None:
    from servers.optimizer.main import build

    _registry_stub, registry_server = registry
    port = free_port()
    env = {**os.environ, "MLMESH_DATABASE_URL": fresh_db_dsn, "MLMESH_DATA_DIR": str(tmp_path / "opt"),
           "MLMESH_OPTIMIZER_PORT": str(port), "MLMESH_OPTIMIZER_METRICS_PORT": "-1",
           "MLMESH_OPTIMIZER_REGISTRY_TARGET": f"127.0.0.1:{registry_server.port}"}
    server = subprocess.Popen([sys.executable, "-m", "servers.optimizer.main"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    work = tmp_path / "opt" / "optimizer"
    pid = 0
    try:
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", port):
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the Optimizer did not start"
            await asyncio.sleep(0.1)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = opt_grpc.OptimizerServiceStub(channel)
            created = await stub.CreateAgent(agent(total_timesteps=10_000_000), metadata=as_org(OWNER))
            await agent_in(stub, created.agent_id, (A.STATE_TRAINING,))
        pid = await wait_for_worker(work, created.agent_id)
        # Execute: kill -9 the server; its worker (its own session) survives it
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        assert psutil.Process(pid).is_running()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        if server.stderr is not None:
            server.stderr.close()
    try:
        restarted, _core = await build(settings(fresh_db_dsn, tmp_path / "opt", registry_server.port))
        await restarted.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{restarted.port}") as channel:
                got = await opt_grpc.OptimizerServiceStub(channel).GetAgent(
                    pb.GetAgentRequest(agent_id=created.agent_id), metadata=as_org(OWNER))
        finally:
            await restarted.stop(0, drain=0)
        # Assert: FAILED with the reason, and the orphan is gone
        assert got.state == A.STATE_FAILED and "restarted while the agent was training" in got.failure_reason
        assert gone(pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


FORECAST = r'''
import sys
import pandas as pd
from servers.optimizer.gridshift.data import simbench_grid
data, rows = simbench_grid(), slice(172 * 96, 173 * 96)
cols = {f"load_p_mw:{i}": data.load_p[rows, pos] for pos, i in enumerate(data.load_index)}
cols.update({f"sgen_p_mw:{i}": 0.9 * data.sgen_p[rows, pos] for pos, i in enumerate(data.sgen_index)})
pd.DataFrame(cols).to_csv(sys.argv[1], index=False)
'''


def check_plan(plan: pb.OptimizeDayResponse) -> None:
    """The seed's constraints: adjacent hours, 1/5/10 %, each load's daily energy kept, only shifted
    hours changed; and the power flow converged before and after."""
    assert plan.before.power_flow_status == plan.after.power_flow_status == "converged"
    for shift in plan.shifts:
        assert abs(shift.to_hour - shift.from_hour) == 1 and shift.fraction in (0.01, 0.05, 0.10)
    shifted = {(s.load_index, h) for s in plan.shifts for h in (s.from_hour, s.to_hour)}
    for load in plan.loads:
        assert sum(load.hourly_mwh_after) == pytest.approx(sum(load.hourly_mwh_before), abs=1e-9)
        for hour, (b, a) in enumerate(zip(load.hourly_mwh_before, load.hourly_mwh_after, strict=True)):
            assert (load.load_index, hour) in shifted or a == pytest.approx(b, abs=1e-12)


TORCHRL = {A.ALGORITHM_DOUBLE_DQN: ("DOUBLE_DQN", {"learning_starts": 16, "batch_size": 8}),
           A.ALGORITHM_DUELING_DQN: ("DUELING_DQN", {"learning_starts": 16, "batch_size": 8}),
           A.ALGORITHM_REINFORCE: ("REINFORCE", {"episodes_per_batch": 2})}


async def test_torchrl_agents_train_evaluate_and_plan_forecasts(optimizer, tmp_path) -> None:
    """TorchRL's Double DQN, Dueling DQN and REINFORCE through the same job path as SB3's: trained,
    stored anchored, then :evaluate on other held-out days and :optimize on a forecast CSV (inline
    and as a dataset)."""
    stub, registry, _work = optimizer
    created = {}
    for algorithm, (name, hyper) in TORCHRL.items():
        created[name] = await stub.CreateAgent(agent(algorithm=algorithm, display_name=name.lower(),
                                                     hyperparameters=hyper), metadata=as_org(OWNER))
    forecast = tmp_path / "forecast.csv"
    subprocess.run([str(RL_PYTHON), "-c", FORECAST, str(forecast)], cwd=REPO, check=True, timeout=180)
    forecast_id = await upload(registry, OWNER, forecast.read_bytes(), "forecast.csv", "text/csv")
    trained_evaluation, model_ids = {}, {}
    for name, made in created.items():
        done = await agent_in(stub, made.agent_id, (A.STATE_SUCCEEDED,), timeout=400)
        trained_evaluation[name], model_ids[name] = done.evaluation, done.model_id
        assert done.timesteps_done == 48 and done.episodes_done == 12, name
        assert [p.policy for p in done.evaluation.policies] == ["agent", "no_shift", "random", "greedy"]
        record = json.loads(await download(registry, registry.DownloadModelRecipe,
                                           reg_pb.DownloadModelRecipeRequest(model_id=done.model_id)))
        assert record["algorithm"] == name and record["library"] == "torchrl 0.14.0", record
        assert record["hyperparameters"] == TORCHRL[done.algorithm][1]
        model = await registry.GetModel(reg_pb.GetModelRequest(model_id=done.model_id), metadata=as_org(OWNER))
        assert model.verify_tx_hash and json.loads(model.input_signature)["action"] == "discrete"

    # :evaluate on other held-out days, beside the baselines.
    ddqn = created["DOUBLE_DQN"].agent_id
    evaluated = await stub.EvaluateAgent(pb.EvaluateAgentRequest(agent_id=ddqn, days=pb.DayRange(first=180, last=182)),
                                         metadata=as_org(OWNER))
    assert evaluated.evaluation.days.first == 180 and evaluated.evaluation.days.last == 182
    assert [p.policy for p in evaluated.evaluation.policies] == ["agent", "no_shift", "random", "greedy"]
    assert all(p.episodes == 2 and 0 < p.reward.mean <= 1 and p.reward.std >= 0
               for p in evaluated.evaluation.policies)
    default = await stub.EvaluateAgent(pb.EvaluateAgentRequest(agent_id=ddqn), metadata=as_org(OWNER))
    assert (default.evaluation.days.first, default.evaluation.days.last) == (171, 173)
    assert default.model_id == evaluated.model_id == model_ids["DOUBLE_DQN"]
    # other days, other figures; the default days give what training's evaluation gave
    assert default.evaluation.policies[1].reward.mean != evaluated.evaluation.policies[1].reward.mean
    assert default.evaluation.policies == trained_evaluation["DOUBLE_DQN"].policies
    for days in (pb.DayRange(first=165, last=172), pb.DayRange(first=180, last=180),
                 pb.DayRange(first=180, last=400)):
        err = await refused(stub.EvaluateAgent, pb.EvaluateAgentRequest(agent_id=ddqn, days=days))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "days" in err.details(), err.details()

    # :optimize on a forecast: inline and as a dataset give the same plan, within the seed's constraints.
    reinforce = created["REINFORCE"].agent_id
    inline = await stub.OptimizeDay(pb.OptimizeDayRequest(agent_id=reinforce, forecast_csv=forecast.read_text()),
                                    metadata=as_org(OWNER))
    stored = await stub.OptimizeDay(pb.OptimizeDayRequest(agent_id=reinforce, forecast_dataset_id=forecast_id),
                                    metadata=as_org(OWNER))
    digest = hashlib.sha256(forecast.read_bytes()).hexdigest()
    assert inline.source == "forecast (inline CSV)" and stored.source == f"forecast dataset {forecast_id}"
    assert inline.forecast_sha256 == stored.forecast_sha256 == digest
    assert inline.shifts == stored.shifts and inline.after.reward == stored.after.reward
    check_plan(inline)
    short = "\n".join(forecast.read_text().splitlines()[:51])
    err = await refused(stub.OptimizeDay, pb.OptimizeDayRequest(agent_id=reinforce, forecast_csv=short))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "forecast_csv" in err.details(), err.details()
    assert "96" in err.details()
    header, *rows = forecast.read_text().splitlines()
    missing = "\n".join([",".join(header.split(",")[1:])] + [",".join(r.split(",")[1:]) for r in rows])
    err = await refused(stub.OptimizeDay, pb.OptimizeDayRequest(agent_id=reinforce, forecast_csv=missing))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "load_p_mw" in err.details(), err.details()

    # A stranger's :evaluate is told the agent does not exist, worded as for an unknown id; another
    # organization's forecast dataset does not exist for the owner either.
    unknown = str(uuid.uuid4())
    theirs = await refused(stub.EvaluateAgent, pb.EvaluateAgentRequest(agent_id=ddqn), org=STRANGER)
    nobody = await refused(stub.EvaluateAgent, pb.EvaluateAgentRequest(agent_id=unknown), org=STRANGER)
    assert theirs.code() == nobody.code() == grpc.StatusCode.NOT_FOUND
    assert theirs.details().replace(ddqn, "X") == nobody.details().replace(unknown, "X")
    strangers = await upload(registry, STRANGER, forecast.read_bytes(), "forecast.csv", "text/csv")
    err = await refused(stub.OptimizeDay, pb.OptimizeDayRequest(agent_id=reinforce, forecast_dataset_id=strangers))
    assert err.code() == grpc.StatusCode.NOT_FOUND, err.details()
