"""FederationService over gRPC: converts and delegates to the core; nothing else."""

from __future__ import annotations

import grpc
from mlmesh.federation.v1 import federation_service_pb2 as pb
from mlmesh.federation.v1 import federation_service_pb2_grpc as pb_grpc

from servers.common.caller import caller_org
from servers.federation.api import converters as conv
from servers.federation.domain.service import FederationCore

FLARE_SERVERS_NOT_BUILT = ("NVIDIA FLARE servers for real clients are not built yet on this Federation server "
                           "(docs/federation.md)")


class FederationServicer(pb_grpc.FederationServiceServicer):
    def __init__(self, core: FederationCore):
        self.core = core

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

    async def _not_built(self, context) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, FLARE_SERVERS_NOT_BUILT)

    async def CreateFlareServer(self, request, context):  # noqa: N802
        await self._not_built(context)

    async def GetFlareServer(self, request, context):  # noqa: N802
        await self._not_built(context)

    async def ListFlareServers(self, request, context):  # noqa: N802
        await self._not_built(context)

    async def DeleteFlareServer(self, request, context):  # noqa: N802
        await self._not_built(context)

    async def DownloadFlareStartupKit(self, request, context):  # noqa: N802
        await self._not_built(context)
        yield pb.FederatedJobEvent()  # never reached: makes this a server-streaming handler
