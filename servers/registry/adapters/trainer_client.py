"""The Registry's view of the Trainer: schedules training jobs over gRPC."""

from __future__ import annotations

from mlmesh.trainer.v1 import trainer_service_pb2 as trainer_pb
from mlmesh.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc

from servers.common.peer import PeerClient


class TrainerClient(PeerClient):
    """Implements the domain's Trainer port."""

    def __init__(self, target: str, *, timeout: float = 30.0):
        super().__init__(target, "trainer", trainer_grpc.TrainerServiceStub, timeout=timeout)

    async def submit_training_job(self, *, model_id: str, time_limit_seconds: int, memory_limit_bytes: int) -> str:
        request = trainer_pb.SubmitTrainingJobRequest(
            model_id=model_id, time_limit_seconds=time_limit_seconds, memory_limit_bytes=memory_limit_bytes
        )
        return (await self.call(self._stub.SubmitTrainingJob, request)).job_id
