"""The Registry's view of the Trainer: schedules training jobs over gRPC."""

from __future__ import annotations

import grpc
from mlmesh.trainer.v1 import trainer_service_pb2 as trainer_pb
from mlmesh.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc

from servers.common.grpc_errors import error_from_rpc


class TrainerClient:
    """Implements the domain's Trainer port."""

    def __init__(self, target: str, *, timeout: float = 30.0):
        self.target = target
        self._channel = grpc.aio.insecure_channel(target)
        self._stub = trainer_grpc.TrainerServiceStub(self._channel)
        self.timeout = timeout

    async def submit_training_job(self, *, model_id: str, time_limit_seconds: int, memory_limit_bytes: int) -> str:
        request = trainer_pb.SubmitTrainingJobRequest(
            model_id=model_id, time_limit_seconds=time_limit_seconds, memory_limit_bytes=memory_limit_bytes
        )
        try:
            job = await self._stub.SubmitTrainingJob(request, timeout=self.timeout)
        except grpc.RpcError as err:
            raise error_from_rpc(err, f"trainer at {self.target}") from None
        return job.job_id

    async def close(self) -> None:
        await self._channel.close()
