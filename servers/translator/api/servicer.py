"""TranslatorService over gRPC: converts and delegates to the core; nothing else."""

from __future__ import annotations

from mlmesh.translator.v1 import translator_service_pb2 as pb
from mlmesh.translator.v1 import translator_service_pb2_grpc as pb_grpc

from servers.common.caller import caller_org
from servers.common.httpbody import send_download
from servers.translator.api import converters as conv
from servers.translator.domain.service import TranslatorCore

ONNX_CONTENT_TYPE = "application/onnx"


class TranslatorServicer(pb_grpc.TranslatorServiceServicer):
    def __init__(self, core: TranslatorCore):
        self.core = core

    async def TranslateModel(self, request: pb.TranslateModelRequest, context) -> pb.Translation:  # noqa: N802
        return conv.translation_to_proto(await self.core.translate(request.model_id, request.opset,
                                                                   caller_org(context)))

    async def GetTranslation(self, request: pb.GetTranslationRequest, context) -> pb.Translation:  # noqa: N802
        return conv.translation_to_proto(await self.core.get(request.translation_id, caller_org(context)))

    async def ListTranslations(self, request: pb.ListTranslationsRequest, context):  # noqa: N802
        page = await self.core.list(page_size=request.page_size, page_token=request.page_token,
                                    model_id=request.model_id, caller_org=caller_org(context))
        return conv.page_to_proto(page)

    async def DownloadTranslation(self, request: pb.DownloadTranslationRequest, context):  # noqa: N802
        translation, chunks = await self.core.download(request.translation_id, request.offset,
                                                       caller_org(context))
        async for message in send_download(context, ONNX_CONTENT_TYPE, translation.sha256, translation.size_bytes,
                                           request.offset, chunks):
            yield message
