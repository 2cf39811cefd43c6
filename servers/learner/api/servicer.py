"""LearnerService over gRPC: messages to the core's plain types and back, nothing else. The core
(domain/service.py) checks ids, inputs and the caller's organization and counts what it serves;
domain errors raised there become statuses in the shared interceptor."""

from __future__ import annotations

from mlmesh.learner.v1 import learner_service_pb2 as pb
from mlmesh.learner.v1 import learner_service_pb2_grpc as pb_grpc

from servers.common.caller import caller_org
from servers.learner.api import converters as conv
from servers.learner.domain.live import LearnStep
from servers.learner.domain.service import LearnerCore, LearnMessage, PredictMessage


class LearnerServicer(pb_grpc.LearnerServiceServicer):
    def __init__(self, core: LearnerCore, *, max_observations: int):
        self.core = core
        self.max_observations = max_observations  # per message: a decoding limit, checked before converting

    async def CreateLearner(self, request: pb.CreateLearnerRequest, context):  # noqa: N802
        learner = request.learner
        record, live = await self.core.create(
            display_name=learner.display_name, organization_id=learner.organization_id,
            developer_id=learner.developer_id, spec=conv.spec_from_proto(learner.spec),
            caller_org=caller_org(context))
        return conv.learner_to_proto(record, live)

    async def GetLearner(self, request: pb.GetLearnerRequest, context):  # noqa: N802
        return conv.learner_to_proto(*self.core.get(request.learner_id, caller_org(context)))

    async def ListLearners(self, request: pb.ListLearnersRequest, context):  # noqa: N802
        page = await self.core.list(page_size=request.page_size, page_token=request.page_token,
                                    organization_id=request.organization_id, caller_org=caller_org(context))
        return pb.ListLearnersResponse(learners=[conv.learner_to_proto(r, live) for r, live in page.items],
                                       next_page_token=page.next_page_token)

    async def DeleteLearner(self, request: pb.DeleteLearnerRequest, context):  # noqa: N802
        await self.core.delete(request.learner_id, caller_org(context))
        return pb.DeleteLearnerResponse()

    async def Learn(self, request_iterator, context):  # noqa: N802
        limit = self.max_observations
        messages = (LearnMessage(r.learner_id, conv.observations_from_proto(r.observations, limit), r.flush)
                    async for r in request_iterator)
        async for received, step in self.core.learn(messages, caller_org(context)):
            yield _ack(received, step)

    async def Predict(self, request: pb.PredictRequest, context):  # noqa: N802
        prediction = await self.core.predict(
            request.learner_id, conv.observations_from_proto(request.inputs, self.max_observations),
            request.sensor_id, caller_org(context))
        return conv.prediction_to_proto(prediction)

    async def PredictStream(self, request_iterator, context):  # noqa: N802
        limit = self.max_observations
        messages = (PredictMessage(r.learner_id, conv.observations_from_proto(r.inputs, limit), r.sensor_id)
                    async for r in request_iterator)
        async for prediction in self.core.predict_stream(messages, caller_org(context)):
            yield conv.prediction_to_proto(prediction)

    async def Explain(self, request: pb.ExplainRequest, context):  # noqa: N802
        obs = conv.observation_from_proto(request.input, 0) if request.HasField("input") else None
        target = request.target_class if request.HasField("target_class") else None
        explained = await self.core.explain(request.learner_id, obs, request.sensor_id, request.method,
                                            request.steps, target, caller_org(context))
        return conv.explanation_to_proto(explained.result, explained.feature_names, explained.inputs)

    async def GetMonitoring(self, request: pb.GetMonitoringRequest, context):  # noqa: N802
        report = await self.core.monitoring(request.learner_id, request.refresh, caller_org(context))
        return conv.monitoring_to_proto(report)

    async def WatchLearnerEvents(self, request: pb.WatchLearnerEventsRequest, context):  # noqa: N802
        async for event in self.core.watch(request.learner_id, caller_org(context)):
            yield conv.event_to_proto(event)


def _ack(received: int, step: LearnStep) -> pb.LearnResponse:
    response = pb.LearnResponse(
        observations_received=received, observations_learned=step.observations_learned, pending=step.pending,
        batch_loss=step.batch_loss, running_loss=step.running_loss, validation_loss=step.validation_loss)
    if step.saved is not None:
        response.saved.CopyFrom(conv.saved_to_proto(step.saved))
    return response
