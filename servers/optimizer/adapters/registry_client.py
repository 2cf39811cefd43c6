"""The Optimizer's view of the Registry: a user's grid and profiles read on behalf of the agent's
organization (GetDataset, DownloadDataset), the environment record of a SimBench agent uploaded
for that organization (UploadDataset), and the trained policy stored through the internal
CreateModelVersion intake (version 1 of a new line; the record is its recipe; the Registry
anchors it and verifies the bytes' hash on the ledger)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from google.api import httpbody_pb2
from mlmesh.registry.v1 import model_pb2
from mlmesh.registry.v1 import registry_service_pb2 as reg_pb
from mlmesh.registry.v1 import registry_service_pb2_grpc as reg_grpc

from servers.common import errors
from servers.common.peer import PeerClient
from servers.common.settings import TlsSettings
from servers.optimizer.domain.ports import DatasetInfo, PolicyIntake


def _info(d) -> DatasetInfo:
    return DatasetInfo(dataset_id=d.dataset_id, sha256=d.sha256, size_bytes=d.size_bytes,
                       content_type=d.content_type, filename=d.filename)


class RegistryClient(PeerClient):
    """Implements `domain.ports.Registry` over gRPC."""

    def __init__(self, target: str, *, timeout: float = 30.0, stream_timeout: float | None = None,
                 max_message_bytes: int = 8 << 20, tls: TlsSettings | None = None):
        super().__init__(target, "registry", reg_grpc.RegistryServiceStub, timeout=timeout,
                         stream_timeout=stream_timeout, max_message_bytes=max_message_bytes, tls=tls)

    async def get_dataset(self, dataset_id: str, *, on_behalf_of: str) -> DatasetInfo:
        return _info(await self.call(self._stub.GetDataset, reg_pb.GetDatasetRequest(dataset_id=dataset_id),
                                     on_behalf_of=on_behalf_of))

    def download_dataset(self, dataset_id: str, *, on_behalf_of: str) -> AsyncIterator[bytes]:
        return self.stream_bytes(self._stub.DownloadDataset, reg_pb.DownloadDatasetRequest(dataset_id=dataset_id),
                                 on_behalf_of=on_behalf_of)

    async def upload_dataset(self, organization_id: str, display_name: str, filename: str, content_type: str,
                             data: bytes) -> DatasetInfo:
        async def requests() -> AsyncIterator[reg_pb.UploadDatasetRequest]:
            yield reg_pb.UploadDatasetRequest(organization_id=organization_id, display_name=display_name,
                                              filename=filename, content_type=content_type)
            yield reg_pb.UploadDatasetRequest(chunk=httpbody_pb2.HttpBody(data=data))

        return _info(await self.call(self._stub.UploadDataset, requests(), timeout=self.stream_timeout,
                                     on_behalf_of=organization_id))

    async def model_artifact(self, model_id: str, *, on_behalf_of: str) -> tuple[str, int]:
        model = await self.call(self._stub.GetModel, reg_pb.GetModelRequest(model_id=model_id),
                                on_behalf_of=on_behalf_of)
        if model.state != model_pb2.Model.STATE_TRAINED:
            raise errors.FailedPrecondition(f"model {model_id} is not TRAINED", reason="MODEL_NOT_TRAINED")
        return model.res_sha256, model.size_bytes

    def download_model(self, model_id: str, *, on_behalf_of: str) -> AsyncIterator[bytes]:
        return self.stream_bytes(self._stub.DownloadModel, reg_pb.DownloadModelRequest(model_id=model_id),
                                 on_behalf_of=on_behalf_of)

    async def store_policy(self, intake: PolicyIntake, chunks: AsyncIterator[bytes]) -> str:
        async def requests() -> AsyncIterator[reg_pb.CreateModelVersionRequest]:
            yield reg_pb.CreateModelVersionRequest(
                organization_id=intake.organization_id, developer_id=intake.developer_id,
                display_name=intake.display_name, dataset_id=intake.dataset_id, version=1,
                framework=intake.framework, input_signature=intake.input_signature,
                learner_id=f"optimizer-agent:{intake.agent_id}", observations=intake.timesteps,
                learning_record=json.dumps(intake.record, sort_keys=True, default=float).encode())
            async for chunk in chunks:
                yield reg_pb.CreateModelVersionRequest(chunk=httpbody_pb2.HttpBody(data=chunk))

        model = await self.call(self._stub.CreateModelVersion, requests(), timeout=self.stream_timeout)
        return model.model_id
