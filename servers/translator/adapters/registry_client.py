"""The Translator's view of the Registry: a grpc.aio client of GetModel, GetDataset, DownloadModel
and DownloadDataset. A peer's status becomes a domain error through `error_from_rpc`, so its
reason (e.g. the Registry's NOT_FOUND or DATA_LOSS) survives the hop."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from mlmesh.registry.v1 import model_pb2
from mlmesh.registry.v1 import registry_service_pb2 as reg_pb
from mlmesh.registry.v1 import registry_service_pb2_grpc as reg_grpc

from servers.common.grpc_errors import error_from_rpc
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
        res_sha256=m.res_sha256, contract_address=m.contract_address,
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

    async def get_model(self, model_id: str) -> SourceModel:
        try:
            m = await self._stub.GetModel(reg_pb.GetModelRequest(model_id=model_id), timeout=self.timeout)
        except grpc.RpcError as err:
            raise error_from_rpc(err, self._peer) from None
        return source_model_from_proto(m)

    async def get_dataset(self, dataset_id: str) -> SourceDataset:
        try:
            d = await self._stub.GetDataset(reg_pb.GetDatasetRequest(dataset_id=dataset_id), timeout=self.timeout)
        except grpc.RpcError as err:
            raise error_from_rpc(err, self._peer) from None
        return SourceDataset(dataset_id=d.dataset_id, sha256=d.sha256, size_bytes=d.size_bytes,
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

    def download_model(self, model_id: str) -> AsyncIterator[bytes]:
        return self._download(self._stub.DownloadModel(reg_pb.DownloadModelRequest(model_id=model_id),
                                                       timeout=self.stream_timeout))

    def download_dataset(self, dataset_id: str) -> AsyncIterator[bytes]:
        return self._download(self._stub.DownloadDataset(reg_pb.DownloadDatasetRequest(dataset_id=dataset_id),
                                                         timeout=self.stream_timeout))

    async def close(self) -> None:
        await self._channel.close()
