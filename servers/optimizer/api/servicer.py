"""OptimizerService over gRPC: converts and delegates to the core; nothing else."""

from __future__ import annotations

from mlmesh.optimizer.v1 import optimizer_service_pb2 as pb
from mlmesh.optimizer.v1 import optimizer_service_pb2_grpc as pb_grpc

from servers.common.caller import caller_org
from servers.optimizer.api import converters as conv
from servers.optimizer.domain.service import OptimizerCore


class OptimizerServicer(pb_grpc.OptimizerServiceServicer):
    def __init__(self, core: OptimizerCore):
        self.core = core

    async def CreateAgent(self, request: pb.CreateAgentRequest, context) -> pb.Agent:  # noqa: N802
        agent = await self.core.create(conv.spec_from_proto(request.agent),
                                       organization_id=request.agent.organization_id, caller_org=caller_org(context))
        return conv.agent_to_proto(agent)

    async def GetAgent(self, request: pb.GetAgentRequest, context) -> pb.Agent:  # noqa: N802
        return conv.agent_to_proto(await self.core.get(request.agent_id, caller_org(context)))

    async def ListAgents(self, request: pb.ListAgentsRequest, context) -> pb.ListAgentsResponse:  # noqa: N802
        page = await self.core.list(request.page_size, request.page_token, caller_org=caller_org(context))
        return pb.ListAgentsResponse(agents=[conv.agent_to_proto(a) for a in page.items],
                                     next_page_token=page.next_page_token)

    async def DeleteAgent(self, request: pb.DeleteAgentRequest, context) -> pb.DeleteAgentResponse:  # noqa: N802
        await self.core.delete(request.agent_id, caller_org(context))
        return pb.DeleteAgentResponse()

    async def CancelAgent(self, request: pb.CancelAgentRequest, context) -> pb.Agent:  # noqa: N802
        return conv.agent_to_proto(await self.core.cancel(request.agent_id, caller_org(context)))

    async def WatchAgent(self, request: pb.WatchAgentRequest, context):  # noqa: N802
        async for event in self.core.watch(request.agent_id, caller_org(context)):
            yield conv.event_to_proto(event)

    async def OptimizeDay(self, request: pb.OptimizeDayRequest, context) -> pb.OptimizeDayResponse:  # noqa: N802
        return conv.plan_to_proto(await self.core.optimize(request.agent_id, request.day, caller_org(context),
                                                           forecast=conv.forecast_from_proto(request)))

    async def EvaluateAgent(self, request: pb.EvaluateAgentRequest, context) -> pb.EvaluateAgentResponse:  # noqa: N802
        days = (request.days.first, request.days.last) if request.HasField("days") else None
        evaluation, model_id = await self.core.evaluate(request.agent_id, days, caller_org(context))
        return pb.EvaluateAgentResponse(evaluation=conv.evaluation_to_proto(evaluation), model_id=model_id)
