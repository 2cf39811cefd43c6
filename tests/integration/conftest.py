"""Fixtures shared by the integration tests of models in our real Registry
(test_registry_models.py, test_registry_versions.py): the Registry itself and a recording stand-in
for the Trainer. Their helpers (the organization, a tiny dataset, a model download) are in
tests/fixtures/registry_models.py."""

from __future__ import annotations

import grpc
import pytest_asyncio
from mlmesh.registry.v1 import registry_service_pb2_grpc as svc_grpc
from mlmesh.trainer.v1 import trainer_service_pb2 as trainer_pb
from mlmesh.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc


class RecordingTrainer(trainer_grpc.TrainerServiceServicer):
    """A real TrainerService on port 0 that only records SubmitTrainingJob calls (or refuses them
    with `fail_with`): each test plays the Trainer's part itself through the Registry's internal RPCs."""

    def __init__(self):
        self.submitted: list[trainer_pb.SubmitTrainingJobRequest] = []
        self.fail_with: grpc.StatusCode | None = None

    async def SubmitTrainingJob(self, request, context):  # noqa: N802
        if self.fail_with is not None:
            await context.abort(self.fail_with, "the stand-in trainer refuses")
        self.submitted.append(request)
        return trainer_pb.TrainingJob(job_id=f"job-{len(self.submitted)}", model_id=request.model_id,
                                      state=trainer_pb.TrainingJob.STATE_QUEUED)


@pytest_asyncio.fixture
async def trainer():
    servicer = RecordingTrainer()
    server = grpc.aio.server()
    trainer_grpc.add_TrainerServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    servicer.port = port
    yield servicer
    await server.stop(0)


@pytest_asyncio.fixture
async def registry(ledger_server, fresh_db_dsn, tmp_path, trainer):
    """(stub, server): our Registry with a fresh database, a filesystem store in tmp_path, the real
    Ledger and the recording Trainer."""
    from servers.registry.main import build
    from servers.registry.settings import RegistrySettings

    settings = RegistrySettings(port=0, metrics_port=-1, database_url=fresh_db_dsn, data_dir=tmp_path,
                                ledger_target=f"127.0.0.1:{ledger_server.port}",
                                trainer_target=f"127.0.0.1:{trainer.port}")
    server = await build(settings)
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield svc_grpc.RegistryServiceStub(channel), server
    await server.stop(0, drain=0)
