"""Training on a shared dataset through our real Registry and the real Trainer (embedded
PostgreSQL, the real Ledger on Anvil, recipes in .venv-ml): organization B registers a model on
A's dataset that A shared with it; the Trainer fetches the dataset on B's behalf, so when A
revokes the grant before the job's pre-train, the job fails naming the dataset and B, and so does
B's model. The caller's organization is the header Envoy sets from a verified token."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from google.api import httpbody_pb2
from mlmesh.registry.v1 import model_pb2
from mlmesh.registry.v1 import registry_service_pb2 as reg_pb
from mlmesh.trainer.v1 import trainer_service_pb2 as pb

from tests.fixtures.trainer import ML_PYTHON, tar_gz

pytestmark = pytest.mark.skipif(not ML_PYTHON.exists(), reason="the ML environment .venv-ml is missing (make ml-venv)")

OWNER, USER = "smart-energy-ll", "grid-partner"
S = pb.TrainingJob
FINAL = (S.STATE_SUCCEEDED, S.STATE_FAILED, S.STATE_CANCELLED)
RECIPE_TOML = ('[recipe]\nname = "r"\nentrypoint = "train.py"\nframework = "sklearn"\n[recipe.input]\n'
               'shape = [-1, 1]\ndtype = "float32"\n')
SLEEPER = "import time\nprint('holding the slot', flush=True)\ntime.sleep(120)\n"


def as_org(org: str) -> tuple[tuple[str, str], ...]:
    return (("x-mlmesh-org", org),)


async def upload(registry, org: str, data: bytes) -> str:
    async def gen():
        yield reg_pb.UploadDatasetRequest(organization_id=org, display_name="meter", filename="m.csv",
                                          content_type="text/csv", chunk=httpbody_pb2.HttpBody(data=data))
    return (await registry.UploadDataset(gen(), metadata=as_org(org))).dataset_id


async def create_model(registry, org: str, dataset_id: str, train_py: str) -> model_pb2.Model:
    archive = tar_gz({"recipe.toml": RECIPE_TOML, "train.py": train_py})

    async def gen():
        yield reg_pb.CreateModelRequest(organization_id=org, developer_id="dev", dataset_id=dataset_id,
                                        display_name="m", recipe_filename="r.tar.gz")
        yield reg_pb.CreateModelRequest(chunk=httpbody_pb2.HttpBody(data=archive))
    return await registry.CreateModel(gen(), metadata=as_org(org))


async def job_in(trainer, job_id: str, org: str, states, timeout: float = 60.0) -> pb.TrainingJob:
    deadline = time.monotonic() + timeout
    while True:
        job = await trainer.GetTrainingJob(pb.GetTrainingJobRequest(job_id=job_id), metadata=as_org(org))
        if job.state in states:
            return job
        assert job.state not in FINAL, f"job {job_id} ended {S.State.Name(job.state)}: {job.failure_reason}"
        assert time.monotonic() < deadline, f"job {job_id} stayed {S.State.Name(job.state)}: {job.failure_reason}"
        await asyncio.sleep(0.1)


@pytest.fixture
def mesh(registry_and_trainer):
    """(Registry stub, Trainer stub): tests/fixtures/trainer.py's real pair, one job at a time."""
    return registry_and_trainer


async def test_a_grant_revoked_before_pre_train_fails_the_job_naming_the_dataset(mesh):
    registry, trainer = mesh
    # Prepare: A's dataset shared with B; B's first job holds the Trainer's only slot
    shared = await upload(registry, OWNER, b"x\n1\n2\n")
    own = await upload(registry, USER, b"x\n1\n")
    await registry.ShareDataset(reg_pb.ShareDatasetRequest(dataset_id=shared, organization_ids=[USER]),
                                metadata=as_org(OWNER))
    blocker = await create_model(registry, USER, own, SLEEPER)
    await job_in(trainer, blocker.training_job_id, USER, (S.STATE_TRAINING,))
    # B's model on A's dataset: accepted while shared, its job queued behind the blocker
    model = await create_model(registry, USER, shared, "raise SystemExit('never runs')\n")
    queued = await trainer.GetTrainingJob(pb.GetTrainingJobRequest(job_id=model.training_job_id),
                                          metadata=as_org(USER))
    assert queued.state == S.STATE_QUEUED
    # A sees neither of B's jobs
    for job_id in (blocker.training_job_id, model.training_job_id):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await trainer.GetTrainingJob(pb.GetTrainingJobRequest(job_id=job_id), metadata=as_org(OWNER))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert list((await trainer.ListTrainingJobs(pb.ListTrainingJobsRequest(),
                                                metadata=as_org(OWNER))).training_jobs) == []
    # Execute: A revokes; B frees the slot
    await registry.UnshareDataset(reg_pb.UnshareDatasetRequest(dataset_id=shared, organization_ids=[USER]),
                                  metadata=as_org(OWNER))
    await trainer.CancelTrainingJob(pb.CancelTrainingJobRequest(job_id=blocker.training_job_id),
                                    metadata=as_org(USER))
    # Assert: pre-train, fetching for B, is refused; the job and B's model fail with that reason
    failed = await job_in(trainer, model.training_job_id, USER, (S.STATE_FAILED, S.STATE_SUCCEEDED))
    assert failed.state == S.STATE_FAILED
    assert failed.failure_reason.startswith(
        f"dataset {shared} does not exist or is not shared with organization {USER}"), failed.failure_reason
    for _ in range(50):
        got = await registry.GetModel(reg_pb.GetModelRequest(model_id=model.model_id), metadata=as_org(USER))
        if got.state == model_pb2.Model.STATE_FAILED:
            break
        await asyncio.sleep(0.1)
    assert got.state == model_pb2.Model.STATE_FAILED and got.failure_reason == failed.failure_reason
