"""The Federation server's view of the Registry: GetDataset and DownloadDataset on behalf of the
job's organization, and the internal CreateModelVersion intake for the final model (version 1 of
a new line, its provenance as the stored record, anchored on the ledger by the Registry)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator

from google.api import httpbody_pb2
from mlmesh.registry.v1 import registry_service_pb2 as reg_pb
from mlmesh.registry.v1 import registry_service_pb2_grpc as reg_grpc

from servers.common.peer import PeerClient
from servers.common.settings import TlsSettings
from servers.federation.domain.ports import DatasetInfo, ModelIntake


class RegistryClient(PeerClient):
    """Implements `domain.ports.Registry` over gRPC."""

    def __init__(self, target: str, *, timeout: float = 30.0, stream_timeout: float | None = None,
                 max_message_bytes: int = 8 << 20, tls: TlsSettings | None = None):
        super().__init__(target, "registry", reg_grpc.RegistryServiceStub, timeout=timeout,
                         stream_timeout=stream_timeout, max_message_bytes=max_message_bytes, tls=tls)

    async def get_dataset(self, dataset_id: str, *, on_behalf_of: str) -> DatasetInfo:
        d = await self.call(self._stub.GetDataset, reg_pb.GetDatasetRequest(dataset_id=dataset_id),
                            on_behalf_of=on_behalf_of)
        return DatasetInfo(dataset_id=d.dataset_id, sha256=d.sha256, size_bytes=d.size_bytes,
                           content_type=d.content_type, filename=d.filename)

    def download_dataset(self, dataset_id: str, *, on_behalf_of: str) -> AsyncIterator[bytes]:
        return self.stream_bytes(self._stub.DownloadDataset, reg_pb.DownloadDatasetRequest(dataset_id=dataset_id),
                                 on_behalf_of=on_behalf_of)

    async def register_model(self, intake: ModelIntake, chunks: AsyncIterator[bytes]) -> str:
        commitments = json.loads(intake.provenance.get("client_commitments", "[]"))
        samples = sum(int(c["sample_count"]) for c in commitments)
        # One digest over the clients' commitments, in the "observations" the version records.
        digest = hashlib.sha256(intake.provenance.get("client_commitments", "[]").encode()).hexdigest()

        async def requests() -> AsyncIterator[reg_pb.CreateModelVersionRequest]:
            yield reg_pb.CreateModelVersionRequest(
                organization_id=intake.organization_id, developer_id=intake.developer_id,
                display_name=intake.display_name, dataset_id=intake.dataset_id, version=1,
                framework=intake.framework, input_signature=intake.input_signature,
                learner_id=f"federated-job:{intake.provenance['federated_job_id']}", observations=samples,
                observations_sha256=digest,
                learning_record=json.dumps(intake.provenance, sort_keys=True).encode())
            async for chunk in chunks:
                yield reg_pb.CreateModelVersionRequest(chunk=httpbody_pb2.HttpBody(data=chunk))

        model = await self.call(self._stub.CreateModelVersion, requests(), timeout=self.stream_timeout)
        return model.model_id
