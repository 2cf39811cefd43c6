"""The Translator's view of the Registry: a grpc.aio client of GetModel, GetDataset, DownloadModel
and DownloadDataset. A peer's status becomes a domain error through `error_from_rpc`, so its
reason (e.g. the Registry's NOT_FOUND or DATA_LOSS) survives the hop. A call made for a user
passes `on_behalf_of`, so the Registry applies that organization's access (docs/security.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from mlmesh.registry.v1 import model_pb2
from mlmesh.registry.v1 import registry_service_pb2 as reg_pb
from mlmesh.registry.v1 import registry_service_pb2_grpc as reg_grpc

from servers.common.peer import PeerClient
from servers.common.settings import TlsSettings
from servers.translator.domain.ports import SourceDataset, SourceModel

_MODEL_STATES = {
    model_pb2.Model.STATE_PENDING: "PENDING",
    model_pb2.Model.STATE_TRAINING: "TRAINING",
    model_pb2.Model.STATE_TRAINED: "TRAINED",
    model_pb2.Model.STATE_FAILED: "FAILED",
}


def source_model_from_proto(m: model_pb2.Model) -> SourceModel:
    return SourceModel(
        model_id=m.model_id, state=_MODEL_STATES.get(m.state, "UNSPECIFIED"), framework=m.framework,
        input_signature=m.input_signature, dataset_id=m.dataset_id, size_bytes=m.size_bytes,
        res_sha256=m.res_sha256, contract_address=m.contract_address, organization_id=m.organization_id,
    )


class RegistryClient(PeerClient):
    """Implements `domain.ports.Registry` over gRPC."""

    def __init__(self, target: str, *, timeout: float = 30.0, stream_timeout: float | None = None,
                 max_message_bytes: int = 8 << 20, tls: TlsSettings | None = None):
        super().__init__(target, "registry", reg_grpc.RegistryServiceStub, timeout=timeout,
                         stream_timeout=stream_timeout, max_message_bytes=max_message_bytes, tls=tls)

    async def get_model(self, model_id: str, *, on_behalf_of: str | None = None) -> SourceModel:
        m = await self.call(self._stub.GetModel, reg_pb.GetModelRequest(model_id=model_id), on_behalf_of=on_behalf_of)
        return source_model_from_proto(m)

    async def get_dataset(self, dataset_id: str, *, on_behalf_of: str | None = None) -> SourceDataset:
        d = await self.call(self._stub.GetDataset, reg_pb.GetDatasetRequest(dataset_id=dataset_id),
                            on_behalf_of=on_behalf_of)
        return SourceDataset(dataset_id=d.dataset_id, sha256=d.sha256, size_bytes=d.size_bytes,
                             content_type=d.content_type, filename=d.filename)

    def download_model(self, model_id: str, *, on_behalf_of: str | None = None) -> AsyncIterator[bytes]:
        return self.stream_bytes(self._stub.DownloadModel, reg_pb.DownloadModelRequest(model_id=model_id),
                                 on_behalf_of=on_behalf_of)

    def download_dataset(self, dataset_id: str, *, on_behalf_of: str | None = None) -> AsyncIterator[bytes]:
        return self.stream_bytes(self._stub.DownloadDataset, reg_pb.DownloadDatasetRequest(dataset_id=dataset_id),
                                 on_behalf_of=on_behalf_of)
