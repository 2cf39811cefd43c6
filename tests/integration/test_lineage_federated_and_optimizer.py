"""A FedPATE student (the real Federation server running FedPATE on Flower's deployment engine in
.venv-flower, 2 teachers, 1 round) and an optimizer policy (the real Optimizer training PPO for 48 steps
in .venv-rl on a registered grid and profiles) in their models' lineage and exported attestations, on our
real Registry and Ledger (Anvil): the job or agent is a node checked against the chain (its record is
re-hashed against the contract's train_image_sha256), its inputs are nodes (the datasets it used; each
federated teacher's data commitment, said to be a commitment and not a Registry dataset), and the
exported in-toto statement lists them all as resolvedDependencies. The smallest configurations of
tests/integration/test_federation.py and test_optimizer.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from google.api import httpbody_pb2
from mlmesh.federation.v1 import federation_service_pb2 as fpb
from mlmesh.federation.v1 import federation_service_pb2_grpc as fed_grpc
from mlmesh.optimizer.v1 import optimizer_service_pb2 as opb
from mlmesh.optimizer.v1 import optimizer_service_pb2_grpc as opt_grpc
from mlmesh.registry.v1 import lineage_pb2
from mlmesh.registry.v1 import registry_service_pb2 as reg_pb

from tests.fixtures.federation import blobs_csv
from tests.fixtures.provenance import verified_export

REPO = Path(__file__).resolve().parents[2]
FLOWER_PYTHON = REPO / ".venv-flower" / "bin" / "python"
RL_PYTHON = REPO / ".venv-rl" / "bin" / "python"
OWNER, STRANGER = "smart-energy-ll", "grid-partner"
Node = lineage_pb2.LineageNode
# A registered grid and twelve days of its profiles, written by the Optimizer's own data module.
GRID_FILES = r'''
import dataclasses, sys
from servers.optimizer.gridshift.data import simbench_grid, write_files
data = simbench_grid()
days = slice(160 * 96, 172 * 96)
write_files(dataclasses.replace(data, load_p=data.load_p[days], load_q=data.load_q[days], sgen_p=data.sgen_p[days]),
            sys.argv[1], sys.argv[2])
'''


def as_org(org: str) -> tuple[tuple[str, str], ...]:
    return (("x-mlmesh-org", org),)


async def upload(registry, data: bytes, filename: str, content_type: str) -> reg_pb.UploadDatasetRequest:
    async def gen():
        yield reg_pb.UploadDatasetRequest(organization_id=OWNER, display_name=filename, filename=filename,
                                          content_type=content_type)
        yield reg_pb.UploadDatasetRequest(chunk=httpbody_pb2.HttpBody(data=data))
    return await registry.UploadDataset(gen(), metadata=as_org(OWNER))


async def lineage_and_statement(registry, model_id: str, tmp_path: Path, anvil_url: str):
    """The owner's lineage of the model without its translation nodes (no Translator runs here: a node
    says it is UNAVAILABLE; the last in the tree, so the others keep their ids), and the model's own statement from an export that the offline verifier accepted
    in full (signatures, shapes, every anchor read back from Anvil)."""
    lineage = await registry.GetModelLineage(reg_pb.GetModelLineageRequest(model_id=model_id), metadata=as_org(OWNER))
    _, report = await verified_export(registry, model_id, OWNER, tmp_path, anvil_url)
    [statement] = report.statements
    others = [n for n in lineage.nodes if n.kind != Node.KIND_TRANSLATION]
    del lineage.nodes[:]
    lineage.nodes.extend(others)
    return lineage, statement


@contextlib.asynccontextmanager
async def serving(server, stub_class):
    """A built server started, and a stub on it; stopped on exit."""
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield stub_class(channel)
    finally:
        await server.stop(0, drain=0)


def _require(python: Path, target: str) -> None:
    if not python.exists():
        pytest.fail(f"{python} is missing: run `make {target}` (part of `make test`)", pytrace=False)


@pytest.fixture
async def federation(registry, fresh_db_dsn, tmp_path):
    """(Federation stub with FedPATE on Flower, Registry stub)."""
    from servers.federation.main import build
    from servers.federation.settings import FederationSettings

    _require(FLOWER_PYTHON, "flower-venv")
    server, _core = await build(FederationSettings(
        port=0, metrics_port=-1, database_url=fresh_db_dsn, data_dir=tmp_path / "fed", flower_python=FLOWER_PYTHON,
        registry_target=f"127.0.0.1:{registry[1].port}"))
    async with serving(server, fed_grpc.FederationServiceStub) as stub:
        yield stub, registry[0]


@pytest.fixture
async def optimizer(registry, fresh_db_dsn, tmp_path):
    """(Optimizer stub with its worker in .venv-rl, Registry stub)."""
    from servers.optimizer.main import build
    from servers.optimizer.settings import OptimizerSettings

    _require(RL_PYTHON, "rl-venv")
    server, _core = await build(OptimizerSettings(
        port=0, metrics_port=-1, database_url=fresh_db_dsn, data_dir=tmp_path / "opt",
        registry_target=f"127.0.0.1:{registry[1].port}"))
    async with serving(server, opt_grpc.OptimizerServiceStub) as stub:
        yield stub, registry[0]


async def test_a_fedpate_student_shows_its_job_and_each_teachers_commitment(federation, tmp_path, anvil_url):
    stub, registry = federation
    dataset = await upload(registry, blobs_csv(), "blobs.csv", "text/csv")
    request = fpb.CreateFederatedJobRequest(job=fpb.FederatedJob(
        display_name="fedpate blobs", data=fpb.FederatedData(dataset_id=dataset.dataset_id, seed=3),
        fedpate=fpb.FedPateSpec(num_teachers=2, num_rounds=1, teacher_epochs=1, student_epochs=1, batch_size=16,
                                epsilon=0.5, num_queries=40, noise_data=20)))
    created = await stub.CreateFederatedJob(request, metadata=as_org(OWNER))
    events = [e async for e in stub.WatchFederatedJob(fpb.WatchFederatedJobRequest(job_id=created.job_id),
                                                      metadata=as_org(OWNER))]
    job = events[-1].job
    assert job.state == fpb.FederatedJob.STATE_SUCCEEDED, job.failure_reason

    lineage, statement = await lineage_and_statement(registry, job.result_model_id, tmp_path, anvil_url)

    assert lineage.consistent
    kinds = [(n.kind, n.parent_node_id) for n in lineage.nodes]
    assert len(job.client_commitments) == 2  # one SuperNode per teacher: each commits to its shard
    assert kinds == [(Node.KIND_DATASET, ""), (Node.KIND_FEDERATED_JOB, "1"), (Node.KIND_DATA_COMMITMENT, "2"),
                     (Node.KIND_DATA_COMMITMENT, "2"), (Node.KIND_VERSION, "2")]
    ds, fed, c0, c1, student = lineage.nodes
    assert ds.resource_id == dataset.dataset_id and ds.check_status == Node.CHECK_STATUS_VERIFIED
    assert fed.resource_id == job.job_id and fed.check_status == Node.CHECK_STATUS_VERIFIED, fed.checks
    assert fed.attributes["framework_version"] == "flwr 1.42.0" and float(fed.attributes["privacy.epsilon"]) > 0
    assert json.loads(fed.attributes["parameters"])["num_teachers"] == 2
    assert {"sha256 of the commitments = the model's observations_sha256",
            "record sha256 = chain train_image_sha256 (the stored record re-hashed)"} <= {c.name for c in fed.checks}
    committed = sorted((c.sha256, c.sample_count) for c in job.client_commitments)
    assert sorted((n.sha256, int(n.attributes["sample_count"])) for n in (c0, c1)) == committed
    assert all("not a Registry dataset" in n.attributes["commitment"] for n in (c0, c1))
    assert student.resource_id == job.result_model_id and student.check_status == Node.CHECK_STATUS_VERIFIED
    # The statement: built by the Federation, from the dataset, the job's record and both commitments.
    definition = statement["predicate"]["buildDefinition"]
    assert definition["buildType"] == "https://mlmesh.dev/buildtypes/federated-learning/v1"
    assert statement["predicate"]["runDetails"]["builder"]["id"] == "https://mlmesh.dev/builders/federation"
    roles = [(d["annotations"]["role"], d["digest"]["sha256"]) for d in definition["resolvedDependencies"]]
    assert roles == [("dataset", dataset.sha256), ("federated job record", fed.sha256),
                     ("data commitment", c0.sha256), ("data commitment", c1.sha256)]
    assert definition["externalParameters"]["federatedJobId"] == job.job_id
    assert float(definition["externalParameters"]["privacy"]["epsilon"]) == pytest.approx(job.privacy.epsilon)
    # A stranger learns nothing.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry.GetModelLineage(reg_pb.GetModelLineageRequest(model_id=job.result_model_id),
                                       metadata=as_org(STRANGER))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def agent_done(stub, agent_id: str, timeout: float = 300.0) -> opb.Agent:
    deadline = time.monotonic() + timeout
    while (got := await stub.GetAgent(opb.GetAgentRequest(agent_id=agent_id), metadata=as_org(OWNER))).state not in (
            opb.Agent.STATE_SUCCEEDED, opb.Agent.STATE_FAILED, opb.Agent.STATE_CANCELLED):
        assert time.monotonic() < deadline, f"agent stayed {opb.Agent.State.Name(got.state)}"
        await asyncio.sleep(0.2)
    return got


async def test_an_optimizer_policy_shows_its_agent_grid_and_profiles(optimizer, tmp_path, anvil_url):
    stub, registry = optimizer
    grid_json, profiles_csv = tmp_path / "grid.json", tmp_path / "profiles.csv"
    subprocess.run([str(RL_PYTHON), "-c", GRID_FILES, str(grid_json), str(profiles_csv)], cwd=REPO, check=True,
                   timeout=180)
    grid = await upload(registry, grid_json.read_bytes(), "grid.json", "application/json")
    profiles = await upload(registry, profiles_csv.read_bytes(), "profiles.csv", "text/csv")
    created = await stub.CreateAgent(opb.CreateAgentRequest(agent=opb.Agent(
        display_name="ppo", algorithm=opb.Agent.ALGORITHM_PPO, hyperparameters={"n_steps": 16, "batch_size": 16},
        total_timesteps=48, seed=3, actions_per_day=4, train_days=opb.DayRange(first=0, last=9),
        eval_days=opb.DayRange(first=9, last=11),
        grid=opb.GridSource(registered=opb.RegisteredGrid(grid_dataset_id=grid.dataset_id,
                                                          profiles_dataset_id=profiles.dataset_id)))),
        metadata=as_org(OWNER))
    done = await agent_done(stub, created.agent_id)
    assert done.state == opb.Agent.STATE_SUCCEEDED, done.failure_reason

    lineage, statement = await lineage_and_statement(registry, done.model_id, tmp_path, anvil_url)

    assert lineage.consistent
    kinds = [(n.kind, n.parent_node_id) for n in lineage.nodes]
    assert kinds == [(Node.KIND_DATASET, ""), (Node.KIND_OPTIMIZER_AGENT, "1"), (Node.KIND_DATASET, "2"),
                     (Node.KIND_VERSION, "2")]
    grid_node, agent, profiles_node, policy = lineage.nodes
    assert (grid_node.resource_id, grid_node.sha256) == (grid.dataset_id, grid.sha256)
    assert (profiles_node.resource_id, profiles_node.sha256) == (profiles.dataset_id, profiles.sha256)
    assert profiles_node.check_status == Node.CHECK_STATUS_VERIFIED
    assert agent.resource_id == created.agent_id and agent.check_status == Node.CHECK_STATUS_VERIFIED, agent.checks
    assert agent.attributes["algorithm"] == "PPO" and json.loads(agent.attributes["hyperparameters"])["n_steps"] == 16
    assert {"record grid_sha256 = the grid dataset's sha256",
            "record profiles_sha256 = the profiles dataset's sha256"} <= {c.name for c in agent.checks if c.ok}
    assert policy.resource_id == done.model_id and policy.check_status == Node.CHECK_STATUS_VERIFIED
    definition = statement["predicate"]["buildDefinition"]
    assert definition["buildType"] == "https://mlmesh.dev/buildtypes/reinforcement-learning/v1"
    uris = [d["uri"] for d in definition["resolvedDependencies"]]
    assert uris == [f"mlmesh://datasets/{grid.dataset_id}", f"mlmesh://agents/{created.agent_id}",
                    f"mlmesh://datasets/{profiles.dataset_id}"]
    assert definition["externalParameters"]["algorithm"] == "PPO"
