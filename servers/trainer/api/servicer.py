"""TrainerService over gRPC: converts and delegates to the core; nothing else."""

from __future__ import annotations

from mlmesh.trainer.v1 import trainer_service_pb2 as pb
from mlmesh.trainer.v1 import trainer_service_pb2_grpc as pb_grpc

from servers.common.caller import caller_org
from servers.trainer.api import converters as conv
from servers.trainer.domain.service import TrainerCore


class TrainerServicer(pb_grpc.TrainerServiceServicer):
    def __init__(self, core: TrainerCore):
        self.core = core

    async def SubmitTrainingJob(self, request: pb.SubmitTrainingJobRequest, context) -> pb.TrainingJob:  # noqa: N802
        return conv.job_to_proto(await self.core.submit(*conv.submit_request_from_proto(request),
                                                        caller_org=caller_org(context)))

    async def GetTrainingJob(self, request: pb.GetTrainingJobRequest, context) -> pb.TrainingJob:  # noqa: N802
        return conv.job_to_proto(await self.core.get(request.job_id, caller_org(context)))

    async def ListTrainingJobs(self, request: pb.ListTrainingJobsRequest, context):  # noqa: N802
        page = await self.core.list(request.page_size, request.page_token, request.model_id,
                                    caller_org=caller_org(context))
        return pb.ListTrainingJobsResponse(training_jobs=[conv.job_to_proto(j) for j in page.items],
                                           next_page_token=page.next_page_token)

    async def CancelTrainingJob(self, request: pb.CancelTrainingJobRequest, context) -> pb.TrainingJob:  # noqa: N802
        return conv.job_to_proto(await self.core.cancel(request.job_id, caller_org(context)))

    async def WatchTrainingJob(self, request: pb.WatchTrainingJobRequest, context):  # noqa: N802
        async for event in self.core.watch(request.job_id, request.after_log_sequence, caller_org(context)):
            yield conv.event_to_proto(event)

    async def ReproduceModel(self, request: pb.ReproduceModelRequest, context) -> pb.TrainingJob:  # noqa: N802
        return conv.job_to_proto(await self.core.reproduce(*conv.reproduce_request_from_proto(request),
                                                           caller_org=caller_org(context)))
