"""The Trainer's view of the Registry: a grpc.aio client of the RPCs the three steps use
(GetModel, GetDataset, DownloadDataset, DownloadModelRecipe, and the internal
ReportTrainingStatus and SubmitTrainingResult). A peer's status becomes a domain error
through `error_from_rpc`, so its reason survives the hop."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.api import httpbody_pb2
from mlmesh.registry.v1 import model_pb2
from mlmesh.registry.v1 import registry_service_pb2 as reg_pb
from mlmesh.registry.v1 import registry_service_pb2_grpc as reg_grpc

from servers.common.grpc_errors import error_from_rpc
from servers.trainer.domain.ports import DatasetInfo, ModelInfo

_MODEL_STATES = {
    model_pb2.Model.STATE_PENDING: "PENDING",
    model_pb2.Model.STATE_TRAINING: "TRAINING",
    model_pb2.Model.STATE_TRAINED: "TRAINED",
    model_pb2.Model.STATE_FAILED: "FAILED",
}
_REPORT_STATES = {"TRAINING": model_pb2.Model.STATE_TRAINING, "FAILED": model_pb2.Model.STATE_FAILED}


def model_info_from_proto(m: model_pb2.Model) -> ModelInfo:
    recipe = m.training_source.recipe if m.training_source.HasField("recipe") else None
    image = m.training_source.image if m.training_source.HasField("image") else None
    return ModelInfo(
        model_id=m.model_id, dataset_id=m.dataset_id, state=_MODEL_STATES.get(m.state, "UNSPECIFIED"),
        training_job_id=m.training_job_id,
        recipe_filename=recipe.filename if recipe else "", recipe_sha256=recipe.sha256 if recipe else "",
        image_reference=image.reference if image else "", image_digest=image.digest if image else "",
    )


class RegistryClient:
    """Implements `domain.ports.Registry` over gRPC."""

    def __init__(self, target: str, *, timeout: float = 30.0, stream_timeout: float | None = None,
                 max_message_bytes: int = 8 << 20):
        self.target = target
        self.timeout, self.stream_timeout = timeout, stream_timeout
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes)]
        self._channel = grpc.aio.insecure_channel(target, options=options)
        self._stub = reg_grpc.RegistryServiceStub(self._channel)

    @property
    def _peer(self) -> str:
        return f"registry at {self.target}"

    async def get_model(self, model_id: str) -> ModelInfo:
        try:
            m = await self._stub.GetModel(reg_pb.GetModelRequest(model_id=model_id), timeout=self.timeout)
        except grpc.RpcError as err:
            raise error_from_rpc(err, self._peer) from None
        return model_info_from_proto(m)

    async def get_dataset(self, dataset_id: str) -> DatasetInfo:
        try:
            d = await self._stub.GetDataset(reg_pb.GetDatasetRequest(dataset_id=dataset_id), timeout=self.timeout)
        except grpc.RpcError as err:
            raise error_from_rpc(err, self._peer) from None
        return DatasetInfo(dataset_id=d.dataset_id, sha256=d.sha256, size_bytes=d.size_bytes,
                           content_type=d.content_type, filename=d.filename)

    async def _download(self, call) -> AsyncIterator[bytes]:
        try:
            async for body in call:
                if body.data:
                    yield body.data
        except grpc.RpcError as err:
            raise error_from_rpc(err, self._peer) from None
        finally:
            call.cancel()

    def download_dataset(self, dataset_id: str) -> AsyncIterator[bytes]:
        return self._download(self._stub.DownloadDataset(reg_pb.DownloadDatasetRequest(dataset_id=dataset_id),
                                                         timeout=self.stream_timeout))

    def download_recipe(self, model_id: str) -> AsyncIterator[bytes]:
        return self._download(self._stub.DownloadModelRecipe(reg_pb.DownloadModelRecipeRequest(model_id=model_id),
                                                             timeout=self.stream_timeout))

    async def report_status(self, model_id: str, job_id: str, state: str, failure_reason: str = "") -> None:
        request = reg_pb.ReportTrainingStatusRequest(model_id=model_id, training_job_id=job_id,
                                                     state=_REPORT_STATES[state], failure_reason=failure_reason)
        try:
            await self._stub.ReportTrainingStatus(request, timeout=self.timeout)
        except grpc.RpcError as err:
            raise error_from_rpc(err, self._peer) from None

    async def submit_result(self, model_id: str, job_id: str, framework: str, input_signature: str,
                            chunks: AsyncIterator[bytes]) -> None:
        async def requests() -> AsyncIterator[reg_pb.SubmitTrainingResultRequest]:
            yield reg_pb.SubmitTrainingResultRequest(model_id=model_id, training_job_id=job_id, framework=framework,
                                                     input_signature=input_signature)
            async for chunk in chunks:
                yield reg_pb.SubmitTrainingResultRequest(chunk=httpbody_pb2.HttpBody(data=chunk))

        try:
            await self._stub.SubmitTrainingResult(requests(), timeout=self.stream_timeout)
        except grpc.RpcError as err:
            raise error_from_rpc(err, self._peer) from None

    async def close(self) -> None:
        await self._channel.close()
