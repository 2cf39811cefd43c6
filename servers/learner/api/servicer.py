"""LearnerService over gRPC. Domain errors raised here become statuses in the shared interceptor."""

from __future__ import annotations

import asyncio

from mlmesh.learner.v1 import learner_service_pb2 as pb
from mlmesh.learner.v1 import learner_service_pb2_grpc as pb_grpc

from servers.common import errors
from servers.common.caller import caller_org
from servers.learner.api import converters as conv
from servers.learner.domain.live import LearnStep, LiveLearner
from servers.learner.domain.service import LearnerCore, _canonical



def _check_org(live: LiveLearner, context) -> None:
    org = caller_org(context)
    if org and org != live.record.organization_id:
        raise errors.PermissionDenied(f"learner {live.learner_id} belongs to another organization",
                                      reason="ORGANIZATION_MISMATCH")


class LearnerServicer(pb_grpc.LearnerServiceServicer):
    def __init__(self, core: LearnerCore, *, max_observations: int):
        self.core = core
        self.max_observations = max_observations

    def _live(self, learner_id: str, context) -> LiveLearner:
        live = self.core.get_live(learner_id)
        _check_org(live, context)
        return live

    async def CreateLearner(self, request: pb.CreateLearnerRequest, context):  # noqa: N802
        learner = request.learner
        record = await self.core.create(
            display_name=learner.display_name, organization_id=learner.organization_id,
            developer_id=learner.developer_id, spec=conv.spec_from_proto(learner.spec),
            caller_org=caller_org(context))
        return conv.learner_to_proto(record, self.core.live_or_none(record.learner_id))

    async def GetLearner(self, request: pb.GetLearnerRequest, context):  # noqa: N802
        record, live = self.core.snapshot(request.learner_id)
        if live is not None:
            _check_org(live, context)
        return conv.learner_to_proto(record, live)

    async def ListLearners(self, request: pb.ListLearnersRequest, context):  # noqa: N802
        org = caller_org(context) or request.organization_id
        page = await self.core.list(page_size=request.page_size, page_token=request.page_token, organization_id=org)
        return pb.ListLearnersResponse(
            learners=[conv.learner_to_proto(r, self.core.live_or_none(r.learner_id)) for r in page.items],
            next_page_token=page.next_page_token)

    async def DeleteLearner(self, request: pb.DeleteLearnerRequest, context):  # noqa: N802
        learner_id = _canonical(request.learner_id)
        live = self.core.live_or_none(learner_id)
        if live is not None:
            _check_org(live, context)
        await self.core.delete(learner_id)
        return pb.DeleteLearnerResponse()

    async def Learn(self, request_iterator, context):  # noqa: N802
        live: LiveLearner | None = None
        received = 0
        step: LearnStep | None = None
        async for request in request_iterator:
            if live is None:
                if not request.learner_id:
                    raise errors.InvalidArgument("the first Learn message must name learner_id",
                                                 reason="LEARNER_ID_MISSING")
                live = self._live(request.learner_id, context)
            elif request.learner_id and _canonical(request.learner_id) != live.learner_id:
                raise errors.InvalidArgument("one Learn stream feeds one learner; open another stream for "
                                             f"{request.learner_id}", reason="LEARNER_CHANGED")
            observations = conv.observations_from_proto(request.observations, self.max_observations)
            received += len(observations)
            step = await self._learn(live, observations, request.flush)
            yield _ack(received, step)
        if live is not None and step is not None and live.buffered_pairs():
            # The client is done: learn what is still buffered in micro-batches.
            yield _ack(received, await self._learn(live, [], True))

    async def _learn(self, live: LiveLearner, observations, flush: bool) -> LearnStep:
        from servers.learner.monitoring import metrics

        before = live.counters.observations_learned
        step = await live.learn(observations, flush, lambda: self.core.save(live))
        if step.observations_learned > before:
            metrics.learned(live.learner_id, step.observations_learned - before, step.running_loss,
                            step.validation_loss)
        return step

    async def _predict(self, request: pb.PredictRequest, live: LiveLearner) -> pb.PredictResponse:
        from servers.learner.monitoring import metrics

        inputs = conv.observations_from_proto(request.inputs, self.max_observations)
        if not inputs and not request.sensor_id:
            raise errors.InvalidArgument("give inputs, or a sensor_id to forecast from its latest readings",
                                         reason="NO_INPUTS")
        if inputs and request.sensor_id:
            raise errors.InvalidArgument("give inputs or a sensor_id, not both", reason="INPUTS_AMBIGUOUS")
        prediction = await live.predict(inputs, request.sensor_id)
        metrics.predicted(live.learner_id, len(prediction.outputs))
        return pb.PredictResponse(predictions=[conv.output_to_proto(o) for o in prediction.outputs],
                                  model_id=prediction.model_id, observations_learned=prediction.observations_learned)

    async def Predict(self, request: pb.PredictRequest, context):  # noqa: N802
        return await self._predict(request, self._live(request.learner_id, context))

    async def PredictStream(self, request_iterator, context):  # noqa: N802
        live: LiveLearner | None = None
        async for request in request_iterator:
            if live is None:
                live = self._live(request.learner_id, context)
            elif request.learner_id and _canonical(request.learner_id) != live.learner_id:
                raise errors.InvalidArgument("one PredictStream serves one learner", reason="LEARNER_CHANGED")
            yield await self._predict(request, live)

    async def Explain(self, request: pb.ExplainRequest, context):  # noqa: N802
        live = self._live(request.learner_id, context)
        obs = conv.observation_from_proto(request.input, 0) if request.HasField("input") else None
        if obs is None and not request.sensor_id:
            raise errors.InvalidArgument("give an input, or a sensor_id to explain its latest forecast",
                                         reason="NO_INPUTS")
        if request.steps and not 1 <= request.steps <= 1000:
            raise errors.InvalidArgument(f"steps must be 1..1000, got {request.steps}", reason="STEPS_INVALID")
        target = request.target_class if request.HasField("target_class") else None
        result, x = await live.explain(obs, request.sensor_id, request.method, request.steps, target)
        return conv.explanation_to_proto(result, live.transformer.feature_names, x)

    async def GetMonitoring(self, request: pb.GetMonitoringRequest, context):  # noqa: N802
        live = self._live(request.learner_id, context)
        if request.refresh:
            await live.refresh_monitoring()
        message = conv.monitoring_to_proto(live.monitor.report())
        message.learner_id = live.learner_id
        return message

    async def WatchLearnerEvents(self, request: pb.WatchLearnerEventsRequest, context):  # noqa: N802
        live = self._live(request.learner_id, context)
        queue = live.subscribe()
        try:
            while True:
                event = await queue.get()
                if event is None:
                    raise errors.NotFound(f"learner {live.learner_id} was deleted", reason="LEARNER_NOT_FOUND")
                yield conv.event_to_proto(event)
        except asyncio.CancelledError:
            raise
        finally:
            live.subscribers.discard(queue)


def _ack(received: int, step: LearnStep) -> pb.LearnResponse:
    response = pb.LearnResponse(
        observations_received=received, observations_learned=step.observations_learned, pending=step.pending,
        batch_loss=step.batch_loss, running_loss=step.running_loss, validation_loss=step.validation_loss)
    if step.saved is not None:
        response.saved.CopyFrom(conv.saved_to_proto(step.saved))
    return response
