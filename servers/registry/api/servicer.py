"""RegistryService over gRPC: converts and delegates to the domain; nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator

from google.api import httpbody_pb2
from mlmesh.registry.v1 import dataset_pb2 as pb
from mlmesh.registry.v1 import registry_service_pb2 as svc
from mlmesh.registry.v1 import registry_service_pb2_grpc as svc_grpc

from servers.common import errors
from servers.common.caller import caller_org
from servers.registry.api import converters as conv
from servers.registry.domain.datasets import DatasetService
from servers.registry.domain.models_service import ModelService

# Envoy's jwt_authn filter puts the verified token's organization claim here.


async def _split_stream(request_iterator, has_metadata, what: str):
    """(first message, async iterator of the bytes of every message's chunk); metadata is
    allowed only in the first message."""
    messages = request_iterator.__aiter__()
    try:
        first = await messages.__anext__()
    except StopAsyncIteration:
        raise errors.InvalidArgument(f"empty {what} stream: the first message must carry the metadata",
                                     reason="METADATA_MISSING") from None

    async def chunks() -> AsyncIterator[bytes]:
        # Each read of a bytes field makes a new copy of it, so every chunk is read once.
        if data := first.chunk.data:
            yield data
        async for message in messages:
            if has_metadata(message):
                raise errors.InvalidArgument(f"metadata fields are allowed only in the first message of a {what}",
                                             reason="METADATA_AFTER_FIRST_MESSAGE")
            if data := message.chunk.data:
                yield data

    return first, chunks()


async def _send_stream(context, content_type: str, sha256: str, size_bytes: int, offset: int, chunks):
    # Before the first byte: lets a REST client (for which Envoy turns these into response
    # headers) detect a stream that ends early, since it never sees the gRPC status trailer.
    await context.send_initial_metadata((
        ("x-mlmesh-sha256", sha256), ("x-mlmesh-size-bytes", str(size_bytes)), ("x-mlmesh-offset", str(offset)),
    ))
    first = True
    async for chunk in chunks:
        yield httpbody_pb2.HttpBody(content_type=content_type if first else "", data=chunk)
        first = False
    if first:  # nothing left to send: still say what the content is
        yield httpbody_pb2.HttpBody(content_type=content_type)


class RegistryServicer(svc_grpc.RegistryServiceServicer):
    def __init__(self, datasets: DatasetService, models: ModelService):
        self.datasets = datasets
        self.models = models

    async def UploadDataset(self, request_iterator, context) -> pb.Dataset:  # noqa: N802
        first, chunks = await _split_stream(request_iterator, conv.has_metadata, "upload")
        record = await self.datasets.upload(conv.upload_metadata_from_proto(first), chunks,
                                            caller_org=caller_org(context))
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
        async for message in _send_stream(context, record.content_type, record.sha256, record.size_bytes,
                                          request.offset, chunks):
            yield message

    async def GetDatasetProvenance(self, request: svc.GetDatasetProvenanceRequest, context):  # noqa: N802
        return conv.provenance_to_proto(await self.datasets.provenance(request.dataset_id))

    # -- models -------------------------------------------------------------------------------

    async def CreateModel(self, request_iterator, context):  # noqa: N802
        first, chunks = await _split_stream(request_iterator, conv.has_model_metadata, "model registration")
        record = await self.models.create(conv.create_model_from_proto(first), chunks, caller_org=caller_org(context))
        return conv.model_to_proto(record)

    async def GetModel(self, request: svc.GetModelRequest, context):  # noqa: N802
        return conv.model_to_proto(await self.models.get(request.model_id))

    async def ListModels(self, request: svc.ListModelsRequest, context):  # noqa: N802
        page = await self.models.list(request.page_size, request.page_token, request.organization_id,
                                      request.dataset_id)
        return svc.ListModelsResponse(models=[conv.model_to_proto(r) for r in page.items],
                                      next_page_token=page.next_page_token)

    async def DownloadModel(self, request: svc.DownloadModelRequest, context):  # noqa: N802
        record, chunks = await self.models.download(request.model_id, request.offset)
        async for message in _send_stream(context, "application/octet-stream", record.res_sha256,
                                          record.size_bytes, request.offset, chunks):
            yield message

    async def DownloadModelRecipe(self, request: svc.DownloadModelRecipeRequest, context):  # noqa: N802
        record, chunks = await self.models.download_recipe(request.model_id)
        name = record.recipe_filename.lower()
        content_type = ("application/zip" if name.endswith(".zip") else
                        "application/json" if name.endswith(".json") else "application/gzip")
        async for message in _send_stream(context, content_type, record.recipe_sha256, record.recipe_size_bytes, 0,
                                          chunks):
            yield message

    async def GetModelProvenance(self, request: svc.GetModelProvenanceRequest, context):  # noqa: N802
        return conv.model_provenance_to_proto(await self.models.provenance(request.model_id))

    async def ReportTrainingStatus(self, request: svc.ReportTrainingStatusRequest, context):  # noqa: N802
        state = conv.model_state_from_proto(request.state)
        record = await self.models.report_status(request.model_id, request.training_job_id, state,
                                                 request.failure_reason)
        return conv.model_to_proto(record)

    async def SubmitTrainingResult(self, request_iterator, context):  # noqa: N802
        first, chunks = await _split_stream(request_iterator, _has_result_metadata, "training result")
        record = await self.models.submit_result(conv.training_result_from_proto(first), chunks)
        return conv.model_to_proto(record)

    async def CreateModelVersion(self, request_iterator, context):  # noqa: N802
        first, chunks = await _split_stream(request_iterator, _has_version_metadata, "model version")
        record = await self.models.create_version(conv.model_version_from_proto(first), chunks,
                                                  caller_org=caller_org(context))
        return conv.model_to_proto(record)


def _has_version_metadata(message: svc.CreateModelVersionRequest) -> bool:
    return any((message.organization_id, message.learner_id, message.learning_record, message.framework))


def _has_result_metadata(message: svc.SubmitTrainingResultRequest) -> bool:
    return any((message.model_id, message.training_job_id, message.framework, message.input_signature))
