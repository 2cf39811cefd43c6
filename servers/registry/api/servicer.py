"""RegistryService over gRPC: converts and delegates to the domain; nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.api import httpbody_pb2
from mlmesh.registry.v1 import dataset_pb2 as pb
from mlmesh.registry.v1 import registry_service_pb2 as svc
from mlmesh.registry.v1 import registry_service_pb2_grpc as svc_grpc

from servers.common import errors
from servers.registry.api import converters as conv
from servers.registry.domain.datasets import DatasetService

# Envoy's jwt_authn filter puts the verified token's organization claim here.
ORG_HEADER = "x-mlmesh-org"


def caller_org(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == ORG_HEADER:
            return value
    return None


class RegistryServicer(svc_grpc.RegistryServiceServicer):
    def __init__(self, datasets: DatasetService):
        self.datasets = datasets

    async def UploadDataset(self, request_iterator, context) -> pb.Dataset:  # noqa: N802
        messages = request_iterator.__aiter__()
        try:
            first = await messages.__anext__()
        except StopAsyncIteration:
            raise errors.InvalidArgument(
                "empty upload stream: the first message must carry the metadata", reason="METADATA_MISSING"
            ) from None
        meta = conv.upload_metadata_from_proto(first)

        async def chunks() -> AsyncIterator[bytes]:
            if first.chunk.data:
                yield first.chunk.data
            async for message in messages:
                if conv.has_metadata(message):
                    raise errors.InvalidArgument(
                        "metadata fields are allowed only in the first message of an upload",
                        reason="METADATA_AFTER_FIRST_MESSAGE",
                    )
                if message.chunk.data:
                    yield message.chunk.data

        record = await self.datasets.upload(meta, chunks(), caller_org=caller_org(context))
        return conv.dataset_to_proto(record)

    async def GetDataset(self, request: svc.GetDatasetRequest, context) -> pb.Dataset:  # noqa: N802
        return conv.dataset_to_proto(await self.datasets.get(request.dataset_id))

    async def ListDatasets(self, request: svc.ListDatasetsRequest, context) -> svc.ListDatasetsResponse:  # noqa: N802
        page = await self.datasets.list(request.page_size, request.page_token, request.organization_id)
        return svc.ListDatasetsResponse(
            datasets=[conv.dataset_to_proto(r) for r in page.items], next_page_token=page.next_page_token
        )

    async def DownloadDataset(self, request: svc.DownloadDatasetRequest, context):  # noqa: N802
        record, chunks = await self.datasets.download(request.dataset_id, request.offset)
        # Before the first byte: lets a REST client (for which Envoy turns these into response
        # headers) detect a stream that ends early, since it never sees the gRPC status trailer.
        await context.send_initial_metadata((
            ("x-mlmesh-sha256", record.sha256),
            ("x-mlmesh-size-bytes", str(record.size_bytes)),
            ("x-mlmesh-offset", str(request.offset)),
        ))
        first = True
        async for chunk in chunks:
            yield httpbody_pb2.HttpBody(content_type=record.content_type if first else "", data=chunk)
            first = False
        if first:  # resumed at the very end: still say what the content is
            yield httpbody_pb2.HttpBody(content_type=record.content_type)

    async def GetDatasetProvenance(self, request: svc.GetDatasetProvenanceRequest, context):  # noqa: N802
        return conv.provenance_to_proto(await self.datasets.provenance(request.dataset_id))
