"""The Learner's core, the one data plane of LearnerService and the Open Inference Protocol, in
process: id parsing, input checks, the access check and the Prometheus counts, with learners
held in memory (no database, no Registry), and both servicers on top of it."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from mlmesh.learner.v1 import learner_service_pb2 as pb
from mlmesh.thirdparty.kserve import grpc_predict_v2_pb2 as v2
from prometheus_client import REGISTRY

from servers.common import errors
from servers.common.caller import ORG_HEADER
from servers.learner.api.oip import InferenceServicer
from servers.learner.api.servicer import LearnerServicer
from servers.learner.domain.live import Event
from servers.learner.domain.records import Page
from servers.learner.domain.service import CoreOptions, LearnerCore, LearnMessage, PredictMessage
from servers.learner.ml.base import Obs

FEATURES = 6  # the make_live fixture's tabular learner
OURS = "00000000-0000-4000-8000-0000000000a1"
THEIRS = "00000000-0000-4000-8000-0000000000b2"
ROW = [Obs(row=np.zeros(FEATURES))]


class Context:
    """What the servicers read of a grpc.aio.ServicerContext: the org header Envoy sets."""

    def __init__(self, org: str | None):
        self.org = org

    def invocation_metadata(self):
        return ((ORG_HEADER, self.org),) if self.org else ()


@pytest.fixture
def core(make_live, tmp_path) -> LearnerCore:
    core = LearnerCore(None, None, CoreOptions(work_dir=tmp_path, max_learners=10, max_reference_rows=100,
                                               running_loss_alpha=0.1))
    core.live[OURS] = make_live(OURS, "ours", name="ours")
    core.live[THEIRS] = make_live(THEIRS, "theirs", name="theirs")
    return core


def _reason(info) -> str:
    return getattr(info.value, "reason", "")


async def _items(*values):
    for value in values:
        yield value


@pytest.mark.parametrize(("learner_id", "reason"), [
    ("", "LEARNER_ID_MISSING"), ("not-a-uuid", "LEARNER_ID_MALFORMED"),
    ("00000000-0000-4000-8000-00000000dead", "LEARNER_NOT_FOUND"),
])
async def test_learner_ids_are_parsed_once_for_every_entry_point(core, learner_id, reason):
    with pytest.raises(errors.MeshError) as info:
        await core.predict(learner_id, ROW, "", None)
    assert _reason(info) == reason
    with pytest.raises(errors.MeshError) as info:
        core.get(learner_id, None)
    assert _reason(info) == reason
    if reason != "LEARNER_NOT_FOUND":
        with pytest.raises(errors.InvalidArgument) as info:
            await core.delete(learner_id, None)
        assert _reason(info) == reason


async def test_an_upper_case_id_is_the_same_learner(core):
    assert core.learner(OURS.upper(), "ours").learner_id == OURS


async def test_inputs_are_checked_before_the_model_is_called(core):
    with pytest.raises(errors.InvalidArgument) as info:
        await core.predict(OURS, [], "", None)
    assert _reason(info) == "NO_INPUTS"
    with pytest.raises(errors.InvalidArgument) as info:
        await core.predict(OURS, ROW, "meter-1", None)
    assert _reason(info) == "INPUTS_AMBIGUOUS"
    with pytest.raises(errors.InvalidArgument) as info:
        await core.explain(OURS, None, "", "", 0, None, None)
    assert _reason(info) == "NO_INPUTS"
    for steps in (1001, -1):
        with pytest.raises(errors.InvalidArgument) as info:
            await core.explain(OURS, ROW[0], "", "", steps, None, None)
        assert _reason(info) == "STEPS_INVALID"


def _is_unknown_learner(info, learner_id: str) -> None:
    """What a stranger is told is exactly what anyone is told of an id that was never issued."""
    assert isinstance(info.value, errors.NotFound)
    assert (_reason(info), info.value.message) == ("LEARNER_NOT_FOUND", f"learner {learner_id} does not exist")


async def test_another_organizations_learner_does_not_exist_for_the_caller(core):
    unknown = "00000000-0000-4000-8000-00000000dead"
    for learner_id in (THEIRS, unknown):
        calls = [
            lambda: core.predict(learner_id, ROW, "", "ours"),
            lambda: core.explain(learner_id, ROW[0], "", "", 0, None, "ours"),
            lambda: core.monitoring(learner_id, False, "ours"),
        ]
        for call in calls:
            with pytest.raises(errors.MeshError) as info:
                await call()
            _is_unknown_learner(info, learner_id)
        for call in (lambda: core.get(learner_id, "ours"), lambda: core.watch(learner_id, "ours")):
            with pytest.raises(errors.MeshError) as info:
                call()
            _is_unknown_learner(info, learner_id)
        with pytest.raises(errors.MeshError) as info:
            async for _ in core.learn(_items(LearnMessage(learner_id, ROW, False)), "ours"):
                pass
        _is_unknown_learner(info, learner_id)
        with pytest.raises(errors.MeshError) as info:
            async for _ in core.predict_stream(_items(PredictMessage(learner_id, ROW, "")), "ours"):
                pass
        _is_unknown_learner(info, learner_id)
    with pytest.raises(errors.MeshError) as info:
        await core.delete(THEIRS, "ours")
    _is_unknown_learner(info, THEIRS)
    assert THEIRS in core.live  # not deleted
    # The Open Inference Protocol: another organization's model is no model at all
    for name in ("theirs", THEIRS, "nobody"):
        with pytest.raises(errors.NotFound) as info:
            core.model(name, "", "ours")
        assert _reason(info) == "MODEL_NOT_FOUND"
        assert info.value.message == f"no learner is named {name!r} (model names are learner display names or ids)"
    # ModelReady answers false rather than an error; an unknown model or version too
    assert core.model_ready("ours", "", "ours") is True
    assert core.model_ready("theirs", "", "ours") is False
    assert core.model_ready(THEIRS, "", "ours") is False
    assert core.model_ready("nobody", "", "ours") is False
    assert core.model_ready("ours", "7", "ours") is False
    # its owner reaches it; so does a mesh server calling for itself (no organization)
    assert core.get(THEIRS, "theirs")[0].organization_id == "theirs"
    assert core.model("theirs", "", "theirs").learner_id == THEIRS
    assert core.get(THEIRS, None)[0].organization_id == "theirs"
    assert (await core.predict(THEIRS, ROW, "", None)).outputs


async def test_a_learner_that_failed_to_load_is_not_revealed_to_a_stranger(core, make_live):
    failed = core.live.pop(THEIRS).record
    core.failed[THEIRS] = failed
    with pytest.raises(errors.MeshError) as info:
        core.get(THEIRS, "ours")
    _is_unknown_learner(info, THEIRS)
    with pytest.raises(errors.MeshError) as info:
        await core.predict(THEIRS, ROW, "", "ours")
    _is_unknown_learner(info, THEIRS)
    with pytest.raises(errors.FailedPrecondition):  # its owner learns that it failed
        await core.predict(THEIRS, ROW, "", "theirs")
    assert core.get(THEIRS, "theirs")[0] == failed


class _Listing:
    """A learner store recording what the core asked it to list."""

    def __init__(self):
        self.asked: list[str] = []

    async def list(self, *, page_size: int, page_token: str, organization_id: str):
        self.asked.append(organization_id)
        return Page(items=[], next_page_token="")


async def test_a_list_holds_only_the_callers_organizations_learners(tmp_path):
    db = _Listing()
    core = LearnerCore(db, None, CoreOptions(work_dir=tmp_path, max_learners=10, max_reference_rows=100,
                                             running_loss_alpha=0.1))
    await core.list(page_size=0, page_token="", organization_id="", caller_org="ours")
    await core.list(page_size=0, page_token="", organization_id="ours", caller_org="ours")
    other = await core.list(page_size=0, page_token="", organization_id="theirs", caller_org="ours")
    await core.list(page_size=0, page_token="", organization_id="theirs", caller_org=None)
    assert db.asked == ["ours", "ours", "theirs"] and other.items == []  # another's filter: nothing, unasked
    with pytest.raises(errors.InvalidArgument) as info:
        await core.list(page_size=0, page_token="", organization_id="x" * 257, caller_org="ours")
    assert _reason(info) == "FIELD_TOO_LONG"


async def test_a_stream_serves_the_learner_its_first_message_names(core):
    with pytest.raises(errors.InvalidArgument) as info:
        async for _ in core.learn(_items(LearnMessage("", ROW, False)), None):
            pass
    assert _reason(info) == "LEARNER_ID_MISSING"
    answers = []
    with pytest.raises(errors.InvalidArgument) as info:
        async for prediction in core.predict_stream(
                _items(PredictMessage(OURS, ROW, ""), PredictMessage("", ROW, ""), PredictMessage(THEIRS, ROW, "")),
                None):
            answers.append(prediction)
    assert _reason(info) == "LEARNER_CHANGED" and len(answers) == 2


async def test_watch_ends_its_subscription_when_the_caller_stops(core):
    live = core.live[OURS]
    events = core.watch(OURS, "ours")
    first = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0)
    live.emit(Event(OURS, "drift_detected", dt.datetime.now(dt.UTC)))
    assert (await first).kind == "drift_detected"
    await events.aclose()
    assert not live._subscribers
    deleted = core.watch(OURS, "ours")
    waiting = asyncio.ensure_future(anext(deleted))
    await asyncio.sleep(0)
    live.close()
    with pytest.raises(errors.NotFound):
        await waiting


def _predictions(learner_id: str) -> float:
    return REGISTRY.get_sample_value("mlmesh_learner_predictions_total", {"learner_id": learner_id}) or 0.0


async def test_both_fronts_count_their_predictions(core):
    learner_service = LearnerServicer(core, max_observations=100)
    inference = InferenceServicer(core)
    before = _predictions(OURS)
    request = pb.PredictRequest(learner_id=OURS, inputs=[pb.Observation(row=pb.FeatureRow(values=[0.0] * 6))] * 2)
    response = await learner_service.Predict(request, Context("ours"))
    assert len(response.predictions) == 2
    assert _predictions(OURS) == before + 2

    tensor = v2.ModelInferRequest.InferInputTensor(name="input-0", datatype="FP64", shape=[3, FEATURES])
    tensor.contents.fp64_contents.extend([0.5] * 3 * FEATURES)
    infer = await inference.ModelInfer(v2.ModelInferRequest(model_name="ours", inputs=[tensor]), Context("ours"))
    assert list(infer.outputs[0].shape) == [3, 1]
    assert _predictions(OURS) == before + 5  # ModelInfer is counted too

    before_theirs = _predictions(THEIRS)
    with pytest.raises(errors.NotFound) as info:
        await inference.ModelInfer(v2.ModelInferRequest(model_name="theirs", inputs=[tensor]), Context("ours"))
    assert _reason(info) == "MODEL_NOT_FOUND"
    with pytest.raises(errors.NotFound):
        await inference.ModelMetadata(v2.ModelMetadataRequest(name="theirs"), Context("ours"))
    ready = await inference.ModelReady(v2.ModelReadyRequest(name="theirs"), Context("ours"))
    assert ready.ready is False
    assert _predictions(THEIRS) == before_theirs  # nothing served
    with pytest.raises(errors.NotFound) as info:
        await learner_service.GetLearner(pb.GetLearnerRequest(learner_id=THEIRS), Context("ours"))
    assert _reason(info) == "LEARNER_NOT_FOUND"


def test_the_domain_imports_no_grpc_generated_code_or_adapter():
    import ast

    domain = Path(__file__).resolve().parents[2] / "servers" / "learner" / "domain"
    for path in domain.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.startswith(("grpc", "mlmesh", "google", "kserve", "servers.learner.adapters",
                                            "servers.learner.api")), (path.name, name)
