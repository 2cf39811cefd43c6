"""RegistryService over gRPC: converts and delegates to the domain; nothing else."""

from __future__ import annotations

from mlmesh.registry.v1 import dataset_pb2 as pb
from mlmesh.registry.v1 import registry_service_pb2 as svc
from mlmesh.registry.v1 import registry_service_pb2_grpc as svc_grpc

from servers.common.caller import caller_org, caller_subject
from servers.common.httpbody import send_download, split_upload
from servers.registry.api import converters as conv
from servers.registry.api import lineage_converters as lconv
from servers.registry.domain.attestations import AttestationCore
from servers.registry.domain.datasets import DatasetCore
from servers.registry.domain.lineage import LineageCore
from servers.registry.domain.models import ModelCore
from servers.registry.domain.sharing import Caller


class RegistryServicer(svc_grpc.RegistryServiceServicer):
    def __init__(self, datasets: DatasetCore, models: ModelCore, *, lineage: LineageCore,
                 attestations: AttestationCore):
        self.datasets = datasets
        self.models = models
        self.lineage = lineage
        self.attestations = attestations

    async def UploadDataset(self, request_iterator, context) -> pb.Dataset:  # noqa: N802
        first, chunks = await split_upload(request_iterator, conv.has_metadata, "upload")
        record = await self.datasets.upload(conv.upload_metadata_from_proto(first), chunks,
                                            caller_org=caller_org(context))
        return conv.dataset_to_proto(record)

    async def GetDataset(self, request: svc.GetDatasetRequest, context) -> pb.Dataset:  # noqa: N802
        return conv.dataset_to_proto(await self.datasets.get(request.dataset_id, caller_org=caller_org(context)))

    async def ListDatasets(self, request: svc.ListDatasetsRequest, context) -> svc.ListDatasetsResponse:  # noqa: N802
        page = await self.datasets.list(request.page_size, request.page_token, request.organization_id,
                                        caller_org=caller_org(context))
        return svc.ListDatasetsResponse(
            datasets=[conv.dataset_to_proto(r) for r in page.items], next_page_token=page.next_page_token
        )

    async def DownloadDataset(self, request: svc.DownloadDatasetRequest, context):  # noqa: N802
        record, chunks = await self.datasets.download(request.dataset_id, request.offset,
                                                      caller_org=caller_org(context))
        async for message in send_download(context, record.content_type, record.sha256, record.size_bytes,
                                          request.offset, chunks):
            yield message

    async def GetDatasetProvenance(self, request: svc.GetDatasetProvenanceRequest, context):  # noqa: N802
        return conv.provenance_to_proto(await self.datasets.provenance(request.dataset_id,
                                                                        caller_org=caller_org(context)))

    async def ShareDataset(self, request: svc.ShareDatasetRequest, context):  # noqa: N802
        policy = await self.datasets.share(request.dataset_id, list(request.organization_ids), request.public,
                                           caller=_caller(context))
        return conv.access_policy_to_proto(policy)

    async def UnshareDataset(self, request: svc.UnshareDatasetRequest, context):  # noqa: N802
        policy = await self.datasets.unshare(request.dataset_id, list(request.organization_ids), request.public,
                                             caller=_caller(context))
        return conv.access_policy_to_proto(policy)

    async def GetDatasetAccessPolicy(self, request: svc.GetDatasetAccessPolicyRequest, context):  # noqa: N802
        policy = await self.datasets.access_policy(request.dataset_id, caller_org=caller_org(context))
        return conv.access_policy_to_proto(policy)

    async def ListDatasetUsages(self, request: svc.ListDatasetUsagesRequest, context):  # noqa: N802
        page = await self.datasets.usages(request.dataset_id, request.page_size, request.page_token,
                                          caller_org=caller_org(context))
        return svc.ListDatasetUsagesResponse(usages=[conv.usage_to_proto(u) for u in page.items],
                                             next_page_token=page.next_page_token)

    # -- models -------------------------------------------------------------------------------

    async def CreateModel(self, request_iterator, context):  # noqa: N802
        first, chunks = await split_upload(request_iterator, conv.has_model_metadata, "model registration")
        record = await self.models.create(conv.create_model_from_proto(first), chunks, caller_org=caller_org(context))
        return conv.model_to_proto(record)

    async def GetModel(self, request: svc.GetModelRequest, context):  # noqa: N802
        return conv.model_to_proto(await self.models.get(request.model_id, caller_org=caller_org(context)))

    async def ListModels(self, request: svc.ListModelsRequest, context):  # noqa: N802
        page = await self.models.list(request.page_size, request.page_token, request.organization_id,
                                      request.dataset_id, caller_org=caller_org(context))
        return svc.ListModelsResponse(models=[conv.model_to_proto(r) for r in page.items],
                                      next_page_token=page.next_page_token)

    async def DownloadModel(self, request: svc.DownloadModelRequest, context):  # noqa: N802
        record, chunks = await self.models.download(request.model_id, request.offset, caller_org=caller_org(context))
        async for message in send_download(context, "application/octet-stream", record.res_sha256,
                                          record.size_bytes, request.offset, chunks):
            yield message

    async def DownloadModelRecipe(self, request: svc.DownloadModelRecipeRequest, context):  # noqa: N802
        record, chunks = await self.models.download_recipe(request.model_id, caller_org=caller_org(context))
        name = record.recipe_filename.lower()
        content_type = ("application/zip" if name.endswith(".zip") else
                        "application/json" if name.endswith(".json") else "application/gzip")
        async for message in send_download(context, content_type, record.recipe_sha256, record.recipe_size_bytes, 0,
                                          chunks):
            yield message

    async def GetModelProvenance(self, request: svc.GetModelProvenanceRequest, context):  # noqa: N802
        return conv.model_provenance_to_proto(await self.models.provenance(request.model_id,
                                                                           caller_org=caller_org(context)))

    async def ReportTrainingStatus(self, request: svc.ReportTrainingStatusRequest, context):  # noqa: N802
        state = conv.model_state_from_proto(request.state)
        record = await self.models.report_status(request.model_id, request.training_job_id, state,
                                                 request.failure_reason)
        return conv.model_to_proto(record)

    async def SubmitTrainingResult(self, request_iterator, context):  # noqa: N802
        first, chunks = await split_upload(request_iterator, _has_result_metadata, "training result")
        record = await self.models.submit_result(conv.training_result_from_proto(first), chunks)
        return conv.model_to_proto(record)

    async def CreateModelVersion(self, request_iterator, context):  # noqa: N802
        first, chunks = await split_upload(request_iterator, _has_version_metadata, "model version")
        record = await self.models.create_version(conv.model_version_from_proto(first), chunks,
                                                  caller_org=caller_org(context))
        return conv.model_to_proto(record)


    async def ShareModel(self, request: svc.ShareModelRequest, context):  # noqa: N802
        policy = await self.models.share(request.model_id, list(request.organization_ids), request.public,
                                         caller=_caller(context))
        return conv.access_policy_to_proto(policy)

    async def UnshareModel(self, request: svc.UnshareModelRequest, context):  # noqa: N802
        policy = await self.models.unshare(request.model_id, list(request.organization_ids), request.public,
                                           caller=_caller(context))
        return conv.access_policy_to_proto(policy)

    async def GetModelAccessPolicy(self, request: svc.GetModelAccessPolicyRequest, context):  # noqa: N802
        return conv.access_policy_to_proto(await self.models.access_policy(request.model_id,
                                                                           caller_org=caller_org(context)))

    async def GetModelLineage(self, request: svc.GetModelLineageRequest, context):  # noqa: N802
        return lconv.lineage_to_proto(await self.lineage.lineage(request.model_id, caller_org=caller_org(context)))

    async def ExportModelAttestations(self, request: svc.ExportModelAttestationsRequest, context):  # noqa: N802
        exported = await self.attestations.export(request.model_id, caller_org=caller_org(context))
        return svc.ExportModelAttestationsResponse(
            envelopes=exported.envelopes,
            signing_key=lconv.signing_key_to_proto(exported.key_id, exported.public_key_pem, exported.scheme))

    async def GetSigningKey(self, request: svc.GetSigningKeyRequest, context):  # noqa: N802
        return lconv.signing_key_to_proto(*self.attestations.signing_key())

    async def GetModelSignature(self, request: svc.GetModelSignatureRequest, context):  # noqa: N802
        signed = await self.attestations.model_signature(request.model_id, caller_org=caller_org(context))
        return lconv.model_signature_to_proto(signed, *self.attestations.signing_key())


def _caller(context) -> Caller:
    return Caller(caller_org(context), caller_subject(context))


def _has_version_metadata(message: svc.CreateModelVersionRequest) -> bool:
    return any((message.organization_id, message.learner_id, message.learning_record, message.framework))


def _has_result_metadata(message: svc.SubmitTrainingResultRequest) -> bool:
    return any((message.model_id, message.training_job_id, message.framework, message.input_signature))
