"""FederationService over gRPC: converts and delegates to the core; nothing else."""

from __future__ import annotations

import grpc
from google.api import httpbody_pb2
from mlmesh.federation.v1 import federation_service_pb2 as pb
from mlmesh.federation.v1 import federation_service_pb2_grpc as pb_grpc

from servers.common.caller import caller_org
from servers.federation.api import converters as conv
from servers.federation.api import flare_converters as flare_conv
from servers.federation.domain.flare_servers import FlareServers
from servers.federation.domain.service import FederationCore

CHUNK_BYTES = 64 * 1024
FLARE_SERVERS_NOT_BUILT = ("NVIDIA FLARE servers for real clients are not built yet on this Federation server "
                           "(docs/federation.md)")


class FederationServicer(pb_grpc.FederationServiceServicer):
    def __init__(self, core: FederationCore, flare_servers: FlareServers | None = None):
        self.core = core
        self.flare_servers = flare_servers

    async def CreateFederatedJob(self, request: pb.CreateFederatedJobRequest, context) -> pb.FederatedJob:  # noqa: N802
        job = await self.core.create(conv.request_from_proto(request), caller_org=caller_org(context),
                                     organization_id=request.job.organization_id)
        return conv.job_to_proto(job)

    async def GetFederatedJob(self, request: pb.GetFederatedJobRequest, context) -> pb.FederatedJob:  # noqa: N802
        return conv.job_to_proto(await self.core.get(request.job_id, caller_org(context)))

    async def ListFederatedJobs(self, request: pb.ListFederatedJobsRequest, context):  # noqa: N802
        page = await self.core.list(request.page_size, request.page_token, request.framework, caller_org(context))
        return pb.ListFederatedJobsResponse(federated_jobs=[conv.job_to_proto(j) for j in page.items],
                                            next_page_token=page.next_page_token)

    async def CancelFederatedJob(self, request: pb.CancelFederatedJobRequest, context) -> pb.FederatedJob:  # noqa: N802
        return conv.job_to_proto(await self.core.cancel(request.job_id, caller_org(context)))

    async def DeleteFederatedJob(self, request: pb.DeleteFederatedJobRequest, context):  # noqa: N802
        await self.core.delete(request.job_id, caller_org(context))
        return pb.DeleteFederatedJobResponse()

    async def WatchFederatedJob(self, request: pb.WatchFederatedJobRequest, context):  # noqa: N802
        async for event in self.core.watch(request.job_id, request.after_log_sequence, caller_org(context)):
            yield conv.event_to_proto(event)

    async def DownloadFlowerRootCertificates(self, request: pb.DownloadFlowerRootCertificatesRequest, context):  # noqa: N802
        pem = await self.core.root_certificates(request.job_id, caller_org(context))
        for start in range(0, len(pem), CHUNK_BYTES):
            yield httpbody_pb2.HttpBody(content_type="application/x-pem-file", data=pem[start:start + CHUNK_BYTES])

    async def _not_built(self, context) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, FLARE_SERVERS_NOT_BUILT)

    async def CreateFlareServer(self, request: pb.CreateFlareServerRequest, context):  # noqa: N802
        if self.flare_servers is None:
            return await self._not_built(context)
        if request.HasField("nvoverser"):
            server = await self.flare_servers.seed(request.nvoverser.start, request.nvoverser.shutdown,
                                                   caller_org(context))
        else:
            wanted = request.flare_server
            server = await self.flare_servers.create(wanted.project_name, tuple(wanted.client_names),
                                                     caller_org=caller_org(context),
                                                     organization_id=wanted.organization_id)
        return flare_conv.flare_server_to_proto(server)

    async def GetFlareServer(self, request: pb.GetFlareServerRequest, context):  # noqa: N802
        if self.flare_servers is None:
            return await self._not_built(context)
        return flare_conv.flare_server_to_proto(await self.flare_servers.get(request.flare_server_id,
                                                                             caller_org(context)))

    async def ListFlareServers(self, request: pb.ListFlareServersRequest, context):  # noqa: N802
        if self.flare_servers is None:
            return await self._not_built(context)
        page = await self.flare_servers.list(request.page_size, request.page_token, caller_org(context))
        return pb.ListFlareServersResponse(flare_servers=[flare_conv.flare_server_to_proto(s) for s in page.items],
                                           next_page_token=page.next_page_token)

    async def DeleteFlareServer(self, request: pb.DeleteFlareServerRequest, context):  # noqa: N802
        if self.flare_servers is None:
            return await self._not_built(context)
        await self.flare_servers.delete(request.flare_server_id, caller_org(context))
        return pb.DeleteFlareServerResponse()

    async def DownloadFlareStartupKit(self, request: pb.DownloadFlareStartupKitRequest, context):  # noqa: N802
        if self.flare_servers is None:
            await self._not_built(context)
            return
        async for chunk in self.flare_servers.kit_chunks(request.flare_server_id, request.client_name,
                                                         caller_org(context)):
            yield httpbody_pb2.HttpBody(content_type="application/zip", data=chunk)
