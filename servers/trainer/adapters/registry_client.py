"""The Trainer's view of the Registry: a grpc.aio client of the RPCs the three steps use
(GetModel, GetDataset, DownloadDataset, DownloadModelRecipe, and the internal
ReportTrainingStatus and SubmitTrainingResult). The dataset and the recipe are fetched on behalf
of the job's organization, so the Registry applies that organization's access to them. A peer's status becomes a domain error
through `error_from_rpc`, so its reason survives the hop."""

from __future__ import annotations

from collections.abc import AsyncIterator

from google.api import httpbody_pb2
from mlmesh.registry.v1 import model_pb2
from mlmesh.registry.v1 import registry_service_pb2 as reg_pb
from mlmesh.registry.v1 import registry_service_pb2_grpc as reg_grpc

from servers.common.peer import PeerClient
from servers.common.settings import TlsSettings
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
        organization_id=m.organization_id,
    )


class RegistryClient(PeerClient):
    """Implements `domain.ports.Registry` over gRPC."""

    def __init__(self, target: str, *, timeout: float = 30.0, stream_timeout: float | None = None,
                 max_message_bytes: int = 8 << 20, tls: TlsSettings | None = None):
        super().__init__(target, "registry", reg_grpc.RegistryServiceStub, timeout=timeout,
                         stream_timeout=stream_timeout, max_message_bytes=max_message_bytes, tls=tls)

    async def get_model(self, model_id: str, *, on_behalf_of: str | None = None) -> ModelInfo:
        m = await self.call(self._stub.GetModel, reg_pb.GetModelRequest(model_id=model_id), on_behalf_of=on_behalf_of)
        return model_info_from_proto(m)

    async def get_ledger_result(self, model_id: str, *, on_behalf_of: str | None = None) -> tuple[str, str]:
        p = await self.call(self._stub.GetModelProvenance, reg_pb.GetModelProvenanceRequest(model_id=model_id),
                            on_behalf_of=on_behalf_of)
        return p.on_chain.res_hash, p.on_chain.res_sha256

    def download_model(self, model_id: str, *, on_behalf_of: str | None = None) -> AsyncIterator[bytes]:
        return self.stream_bytes(self._stub.DownloadModel, reg_pb.DownloadModelRequest(model_id=model_id),
                                 on_behalf_of=on_behalf_of)

    async def get_dataset(self, dataset_id: str, *, on_behalf_of: str | None = None) -> DatasetInfo:
        d = await self.call(self._stub.GetDataset, reg_pb.GetDatasetRequest(dataset_id=dataset_id),
                            on_behalf_of=on_behalf_of)
        return DatasetInfo(dataset_id=d.dataset_id, sha256=d.sha256, size_bytes=d.size_bytes,
                           content_type=d.content_type, filename=d.filename)

    def download_dataset(self, dataset_id: str, *, on_behalf_of: str | None = None) -> AsyncIterator[bytes]:
        return self.stream_bytes(self._stub.DownloadDataset, reg_pb.DownloadDatasetRequest(dataset_id=dataset_id),
                                 on_behalf_of=on_behalf_of)

    def download_recipe(self, model_id: str, *, on_behalf_of: str | None = None) -> AsyncIterator[bytes]:
        return self.stream_bytes(self._stub.DownloadModelRecipe,
                                 reg_pb.DownloadModelRecipeRequest(model_id=model_id), on_behalf_of=on_behalf_of)

    async def report_status(self, model_id: str, job_id: str, state: str, failure_reason: str = "") -> None:
        request = reg_pb.ReportTrainingStatusRequest(model_id=model_id, training_job_id=job_id,
                                                     state=_REPORT_STATES[state], failure_reason=failure_reason)
        await self.call(self._stub.ReportTrainingStatus, request)

    async def submit_result(self, model_id: str, job_id: str, framework: str, input_signature: str,
                            chunks: AsyncIterator[bytes]) -> None:
        async def requests() -> AsyncIterator[reg_pb.SubmitTrainingResultRequest]:
            yield reg_pb.SubmitTrainingResultRequest(model_id=model_id, training_job_id=job_id, framework=framework,
                                                     input_signature=input_signature)
            async for chunk in chunks:
                yield reg_pb.SubmitTrainingResultRequest(chunk=httpbody_pb2.HttpBody(data=chunk))

        await self.call(self._stub.SubmitTrainingResult, requests(), timeout=self.stream_timeout)
