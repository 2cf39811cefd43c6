"""The Learner's view of the Registry: starting models and reference datasets in (downloads the
Registry checks against the ledger before the first byte), fetched on behalf of the learner's
organization so the Registry applies its access; saved versions out (CreateModelVersion, internal,
streamed from the file the backend wrote). Peer errors become domain errors with their reason;
Registry messages become the plain records of `domain/ports.py`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from google.api import httpbody_pb2
from mlmesh.registry.v1 import dataset_pb2, model_pb2
from mlmesh.registry.v1 import registry_service_pb2 as reg_pb
from mlmesh.registry.v1 import registry_service_pb2_grpc as reg_grpc

from servers.common import blobs
from servers.common.grpc_errors import error_from_rpc
from servers.common.peer import PeerClient
from servers.common.settings import TlsSettings
from servers.learner.domain.ports import DatasetInfo, ModelInfo, SavedModel, VersionToSave

LIMIT_SETTING = "MLMESH_LEARNER_MAX_DOWNLOAD_BYTES"


def model_info(m: model_pb2.Model) -> ModelInfo:
    return ModelInfo(model_id=m.model_id, state=model_pb2.Model.State.Name(m.state).removeprefix("STATE_"),
                     framework=m.framework, res_sha256=m.res_sha256, size_bytes=m.size_bytes, version=m.version)


def dataset_info(d: dataset_pb2.Dataset) -> DatasetInfo:
    return DatasetInfo(dataset_id=d.dataset_id, sha256=d.sha256, size_bytes=d.size_bytes)


class RegistryClient(PeerClient):
    """The `domain.ports.Registry` over the Registry's gRPC API."""

    def __init__(self, target: str, *, timeout: float = 30.0, stream_timeout: float | None = None,
                 chunk_bytes: int = 1 << 20, tls: TlsSettings | None = None):
        super().__init__(target, "registry", reg_grpc.RegistryServiceStub, timeout=timeout,
                         stream_timeout=stream_timeout, max_message_bytes=max(8 << 20, 2 * chunk_bytes), tls=tls)
        self.chunk_bytes = chunk_bytes

    async def get_model(self, model_id: str, *, on_behalf_of: str | None = None) -> ModelInfo:
        return model_info(await self.call(self._stub.GetModel, reg_pb.GetModelRequest(model_id=model_id),
                                          on_behalf_of=on_behalf_of))

    async def get_dataset(self, dataset_id: str, *, on_behalf_of: str | None = None) -> DatasetInfo:
        return dataset_info(await self.call(self._stub.GetDataset, reg_pb.GetDatasetRequest(dataset_id=dataset_id),
                                            on_behalf_of=on_behalf_of))

    async def download_model(self, model: ModelInfo, path: Path, *, max_bytes: int,
                             on_behalf_of: str | None = None) -> None:
        """Writes the model to `path`, checked against the hash the Registry recorded (which the
        Registry itself checked against the ledger before the first byte)."""
        request = reg_pb.DownloadModelRequest(model_id=model.model_id)
        await blobs.download_to_file(
            self.stream_bytes(self._stub.DownloadModel, request, on_behalf_of=on_behalf_of), path,
            sha256=model.res_sha256, size_bytes=model.size_bytes, max_bytes=max_bytes, what=f"model {model.model_id}",
            limit_setting=LIMIT_SETTING)

    async def download_dataset(self, dataset: DatasetInfo, path: Path, *, max_bytes: int,
                               on_behalf_of: str | None = None) -> None:
        request = reg_pb.DownloadDatasetRequest(dataset_id=dataset.dataset_id)
        await blobs.download_to_file(
            self.stream_bytes(self._stub.DownloadDataset, request, on_behalf_of=on_behalf_of),
            path, sha256=dataset.sha256, size_bytes=dataset.size_bytes, max_bytes=max_bytes,
            what=f"dataset {dataset.dataset_id}", limit_setting=LIMIT_SETTING)

    async def create_version(self, v: VersionToSave, artifact: Path) -> SavedModel:
        chunk_bytes = self.chunk_bytes

        async def messages():
            yield reg_pb.CreateModelVersionRequest(
                organization_id=v.organization_id, developer_id=v.developer_id, display_name=v.display_name,
                dataset_id=v.dataset_id, parent_model_id=v.parent_model_id, version=v.version,
                framework=v.framework, input_signature=v.input_signature, learner_id=v.learner_id,
                observations=v.observations, observations_sha256=v.observations_sha256,
                validation_loss=v.validation_loss, learning_record=v.learning_record)
            with artifact.open("rb") as f:
                while data := await asyncio.to_thread(f.read, chunk_bytes):
                    yield reg_pb.CreateModelVersionRequest(chunk=httpbody_pb2.HttpBody(data=data))

        try:
            model = await self._stub.CreateModelVersion(messages(), timeout=self.stream_timeout)
        except grpc.RpcError as err:
            raise error_from_rpc(err, self.peer) from None
        return SavedModel(model_id=model.model_id, res_sha256=model.res_sha256)

