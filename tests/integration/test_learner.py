"""The real Learner (a subprocess in .venv-ml, as `make up` runs it) beside our real Registry,
Ledger on Anvil and embedded PostgreSQL: create, learn from streamed readings, save versions,
predict, explain, monitor, bad inputs, and kill -9 → resume from the last saved version."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal

import grpc
import psutil
import pytest
from mlmesh.learner.v1 import learner_service_pb2 as lpb
from mlmesh.registry.v1 import registry_service_pb2 as reg_pb
from mlmesh.thirdparty.kserve import grpc_predict_v2_pb2 as v2

from clients.sensors import observation, read_rows
from tests.fixtures.learner import ORG, power_csv, struct


def readings(path, sensor="meter-1", limit=None):
    return [observation(r, sensor) for r in read_rows(path, "timestamp", "power_kw", limit)]


async def learn(stub, learner_id, observations, per_message=48):
    async def gen():
        for i in range(0, len(observations), per_message):
            yield lpb.LearnRequest(learner_id=learner_id, observations=observations[i:i + per_message])
    return [ack async for ack in stub.Learn(gen())]


async def test_learner_learns_saves_predicts_explains_and_monitors(learner_server, tmp_path):
    h = learner_server
    reference = await h.upload_power_csv(days=3, seed=1)
    learner = await h.create_power_learner(
        "uc10-meter-1", reference, backend="pytorch",
        backend_params={"architecture": "gru", "hidden_size": 16, "lr": 0.005, "seed": 0},
        save_policy=lpb.SavePolicy(min_observations=128, validation_window=128, min_relative_improvement=0.05),
        monitoring=lpb.MonitoringPolicy(window=200, every=100))
    assert learner.state == lpb.Learner.STATE_READY
    assert list(learner.feature_names)[-1] == "lag_1"

    events = h.stub.WatchLearnerEvents(lpb.WatchLearnerEventsRequest(learner_id=learner.learner_id))
    data = await asyncio.to_thread(power_csv, tmp_path / "stream.csv", 5, 2)
    obs = readings(data)
    acks = await learn(h.stub, learner.learner_id, obs)
    assert acks[-1].observations_received == len(obs)
    pairs = len(obs) - 36 - 96 + 1
    assert acks[-1].observations_learned == pairs  # the stream's end flushes the partial micro-batch
    saves = [a.saved for a in acks if a.HasField("saved")]
    assert saves, "a fresh learner saves its first version after min_observations"
    assert [s.version for s in saves] == list(range(1, len(saves) + 1))
    assert all(math.isfinite(a.running_loss) for a in acks[10:])

    event = await asyncio.wait_for(events.read(), 10)
    assert event.kind == lpb.LearnerEvent.KIND_VERSION_SAVED and event.saved.model_id == saves[0].model_id
    events.cancel()

    last = saves[-1]
    model = await h.registry.GetModel(reg_pb.GetModelRequest(model_id=last.model_id))
    assert model.framework == "pytorch" and model.version == last.version
    assert model.parent_model_id == (saves[-2].model_id if len(saves) > 1 else "")
    assert model.training_source.online.learner_id == learner.learner_id
    prov = await h.registry.GetModelProvenance(reg_pb.GetModelProvenanceRequest(model_id=last.model_id))
    assert prov.consistent

    got = await h.stub.GetLearner(lpb.GetLearnerRequest(learner_id=learner.learner_id))
    assert got.current_model_id == last.model_id and got.version == last.version

    forecast = await h.stub.Predict(lpb.PredictRequest(learner_id=learner.learner_id, sensor_id="meter-1"))
    assert len(forecast.predictions) == 1 and 0 < forecast.predictions[0].values[0] < 120
    assert forecast.predictions[0].HasField("target_time")
    window = [o.reading.value for o in obs[-36:]]
    direct = await h.stub.Predict(lpb.PredictRequest(learner_id=learner.learner_id, inputs=[
        lpb.Observation(row=lpb.FeatureRow(values=window))]))
    assert direct.predictions[0].values[0] == pytest.approx(forecast.predictions[0].values[0], rel=1e-5)

    explanation = await h.stub.Explain(lpb.ExplainRequest(learner_id=learner.learner_id, sensor_id="meter-1"))
    assert explanation.method == "integrated_gradients"  # a GRU: DeepLift would degrade to input x gradient
    assert len(explanation.attributions) == 36 and explanation.attributions[-1].name == "lag_1"

    report = await h.stub.GetMonitoring(lpb.GetMonitoringRequest(learner_id=learner.learner_id, refresh=True))
    assert report.errors.count > 0 and report.errors.mae > 0
    assert report.drift.feature_count > 0


def multiprocessing_children(learner_pid: int, kind: str) -> list[psutil.Process]:
    """The Learner's `multiprocessing` children of `kind`: "spawn_main" (the drift process of
    monitoring/offload.py) or "resource_tracker" (multiprocessing's own helper)."""
    found = []
    for child in psutil.Process(learner_pid).children():
        with contextlib.suppress(psutil.Error):
            if kind in " ".join(child.cmdline()):
                found.append(child)
    return found


async def test_drift_is_computed_in_a_child_process_that_dies_with_the_learner(learner_server, tmp_path):
    """Drift runs outside the Learner's process (it would hold the GIL against serving), in one child
    that a kill -9 of the Learner alone -- not of its process group -- takes with it."""
    h = learner_server
    reference = await h.upload_power_csv(days=2, seed=1)
    learner = await h.create_power_learner("drift-child", reference,
                                           monitoring=lpb.MonitoringPolicy(window=100, every=100))
    data = await asyncio.to_thread(power_csv, tmp_path / "stream.csv", 3, 2)
    await learn(h.stub, learner.learner_id, readings(data))
    report = await h.stub.GetMonitoring(lpb.GetMonitoringRequest(learner_id=learner.learner_id, refresh=True))
    assert report.drift.feature_count == 36 and report.drift.window_size >= 100
    pid = h.process.proc.pid
    (child,) = multiprocessing_children(pid, "spawn_main")
    helpers = multiprocessing_children(pid, "resource_tracker")
    # Execute: kill -9 the Learner's process only
    os.kill(pid, signal.SIGKILL)
    h.process.proc.popen.wait(10)
    h.process.proc = None
    # Assert: the drift process went with it (its parent-death signal), leaving no orphan
    _gone, alive = await asyncio.to_thread(psutil.wait_procs, [child, *helpers], 10)
    assert not alive, f"outlived the Learner: {[p.cmdline() for p in alive]}"


@pytest.mark.parametrize(("observation", "code", "words"), [
    (lpb.Observation(row=lpb.FeatureRow(values=[1.0, 2.0])), grpc.StatusCode.INVALID_ARGUMENT, "36"),
    (lpb.Observation(row=lpb.FeatureRow(values=[float("nan")] * 36), target=3.0),
     grpc.StatusCode.INVALID_ARGUMENT, "finite"),
    (lpb.Observation(), grpc.StatusCode.INVALID_ARGUMENT, "empty"),
])
async def test_bad_observations_fail_clearly_and_keep_the_learner(learner_server, observation, code, words):
    h = learner_server
    reference = await h.upload_power_csv(days=2, seed=1)
    learner = await h.create_power_learner("bad-inputs", reference)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await learn(h.stub, learner.learner_id, [observation])
    assert info.value.code() == code, info.value.details()
    assert words in info.value.details().lower() or words in info.value.details()
    got = await h.stub.GetLearner(lpb.GetLearnerRequest(learner_id=learner.learner_id))
    assert got.observations_learned == 0 and got.state == lpb.Learner.STATE_READY


async def test_unknown_learner_and_bad_specs(learner_server):
    h = learner_server
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await h.stub.Predict(lpb.PredictRequest(learner_id="6f1c2d0e-1111-4a2b-9c3d-000000000000", sensor_id="x"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await h.stub.GetLearner(lpb.GetLearnerRequest(learner_id="not-a-uuid"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    reference = await h.upload_power_csv(days=2, seed=1)
    for spec, code in [({"backend": "caffe"}, grpc.StatusCode.INVALID_ARGUMENT),
                       ({"backend_params": {"no_such_param": 1}}, grpc.StatusCode.INVALID_ARGUMENT),
                       ({"reference_dataset_id": "6f1c2d0e-1111-4a2b-9c3d-000000000000"}, grpc.StatusCode.NOT_FOUND)]:
        kwargs = dict(spec)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            if "backend_params" in kwargs:
                await h.create_power_learner("x", reference, backend_params=kwargs["backend_params"])
            elif "reference_dataset_id" in kwargs:
                await h.create_power_learner("x", kwargs["reference_dataset_id"])
            else:
                await h.create_power_learner("x", reference, backend=kwargs["backend"])
        assert info.value.code() == code, (spec, info.value.details())
    listed = await h.stub.ListLearners(lpb.ListLearnersRequest())
    assert list(listed.learners) == []  # nothing half-created


async def test_kill_9_resumes_from_the_last_saved_version_plus_the_journal(learner_server, tmp_path):
    h = learner_server
    reference = await h.upload_power_csv(days=2, seed=1)
    learner = await h.create_power_learner(
        "restart-me", reference, save_policy=lpb.SavePolicy(min_observations=64, validation_window=64))
    data = await asyncio.to_thread(power_csv, tmp_path / "s.csv", 3, 4)
    acks = await learn(h.stub, learner.learner_id, readings(data))
    saved = [a.saved for a in acks if a.HasField("saved")]
    assert saved
    learned_at_save = [a.observations_learned for a in acks if a.HasField("saved")][-1]
    before = await h.stub.Predict(lpb.PredictRequest(learner_id=learner.learner_id, sensor_id="meter-1"))

    await asyncio.to_thread(h.process.kill)
    await asyncio.to_thread(h.process.start)

    got = await h.stub.GetLearner(lpb.GetLearnerRequest(learner_id=learner.learner_id))
    assert got.state == lpb.Learner.STATE_READY, got.failure_reason
    assert got.current_model_id == saved[-1].model_id and got.version == saved[-1].version
    # Every acknowledged observation is back: the last saved version, then the journal replayed on it.
    assert acks[-1].observations_learned > learned_at_save, "nothing was learned after the last save"
    assert got.observations_learned == acks[-1].observations_learned
    after = await h.stub.Predict(lpb.PredictRequest(learner_id=learner.learner_id, sensor_id="meter-1"))
    assert after.model_id == saved[-1].model_id
    assert after.observations_learned == before.observations_learned
    # The same batches learned again on the same version. SGDRegressor shuffles each batch with an
    # unseeded generator, so the weights are equivalent, not identical: the forecast is close.
    assert after.predictions[0].values[0] == pytest.approx(before.predictions[0].values[0], rel=0.1)
    log = (h.process.data_dir / "learner.log").read_text()
    assert f"learner_id={learner.learner_id} replayed" in log


# -- access: a learner is its organization's alone (docs/security.md) --------------------------

GRANTEE, STRANGER = "grid-partner", "other-utility"


def as_org(org: str) -> tuple[tuple[str, str], ...]:
    """The header Envoy sets from a verified token's `org` claim."""
    return (("x-mlmesh-org", org),)


async def refusal(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def drain(stream) -> None:
    async for _ in stream:
        pass


async def test_a_stranger_gets_not_found_on_every_rpc_and_the_inference_protocol(learner_server):
    # Prepare: ORG's learner, with a prediction's worth of readings learned
    h = learner_server
    reference = await h.upload_power_csv(days=2, seed=1)
    learner = await h.create_power_learner("owned", reference)
    lid, stranger = learner.learner_id, as_org(STRANGER)
    unknown = "6f1c2d0e-1111-4a2b-9c3d-000000000000"
    row = lpb.Observation(row=lpb.FeatureRow(values=[1.0] * 36))

    async def gen(request):
        yield request

    # Execute + Assert: every LearnerService RPC answers as for an id never issued, word for word
    for learner_id in (lid, unknown):
        expected = f"learner {learner_id} does not exist"
        calls = [
            h.stub.GetLearner(lpb.GetLearnerRequest(learner_id=learner_id), metadata=stranger),
            h.stub.DeleteLearner(lpb.DeleteLearnerRequest(learner_id=learner_id), metadata=stranger),
            h.stub.Predict(lpb.PredictRequest(learner_id=learner_id, inputs=[row]), metadata=stranger),
            h.stub.Explain(lpb.ExplainRequest(learner_id=learner_id, input=row), metadata=stranger),
            h.stub.GetMonitoring(lpb.GetMonitoringRequest(learner_id=learner_id), metadata=stranger),
            drain(h.stub.WatchLearnerEvents(lpb.WatchLearnerEventsRequest(learner_id=learner_id),
                                            metadata=stranger)),
            drain(h.stub.Learn(gen(lpb.LearnRequest(learner_id=learner_id, observations=[row])),
                               metadata=stranger)),
            drain(h.stub.PredictStream(gen(lpb.PredictRequest(learner_id=learner_id, inputs=[row])),
                                       metadata=stranger)),
        ]
        for call in calls:
            err = await refusal(call)
            assert (err.code(), err.details()) == (grpc.StatusCode.NOT_FOUND, expected)
    for request in (lpb.ListLearnersRequest(), lpb.ListLearnersRequest(organization_id=ORG)):
        listed = await h.stub.ListLearners(request, metadata=stranger)
        assert list(listed.learners) == []
    # The Open Inference Protocol: no such model, and not ready
    for name in ("owned", lid):
        assert (await h.oip.ModelReady(v2.ModelReadyRequest(name=name), metadata=stranger)).ready is False
        err = await refusal(h.oip.ModelMetadata(v2.ModelMetadataRequest(name=name), metadata=stranger))
        assert err.code() == grpc.StatusCode.NOT_FOUND
        tensor = v2.ModelInferRequest.InferInputTensor(name="input-0", datatype="FP64", shape=[1, 36])
        tensor.contents.fp64_contents.extend([1.0] * 36)
        err = await refusal(h.oip.ModelInfer(v2.ModelInferRequest(model_name=name, inputs=[tensor]),
                                             metadata=stranger))
        assert err.code() == grpc.StatusCode.NOT_FOUND
    # ... while its owner reaches all of it, and it was neither deleted nor fed
    mine = await h.stub.GetLearner(lpb.GetLearnerRequest(learner_id=lid), metadata=as_org(ORG))
    assert mine.state == lpb.Learner.STATE_READY and mine.observations_learned == 0
    listed = await h.stub.ListLearners(lpb.ListLearnersRequest(), metadata=as_org(ORG))
    assert [x.learner_id for x in listed.learners] == [lid]
    assert (await h.oip.ModelReady(v2.ModelReadyRequest(name="owned"), metadata=as_org(ORG))).ready is True


async def test_a_grantee_starts_a_learner_from_a_shared_model_and_owns_its_versions(learner_server, tmp_path):
    # Prepare: ORG's learner saves a version (a TRAINED model of ORG's) on ORG's reference dataset
    h = learner_server
    reference = await h.upload_power_csv(days=2, seed=1)
    source = await h.create_power_learner(
        "source", reference, save_policy=lpb.SavePolicy(min_observations=64, validation_window=64))
    data = await asyncio.to_thread(power_csv, tmp_path / "s.csv", 3, 4)
    stream = readings(data)
    saved = [a.saved for a in await learn(h.stub, source.learner_id, stream) if a.HasField("saved")]
    assert saved
    model_id = saved[-1].model_id

    async def create(name: str, org: str, reference_id: str, starting: str):
        learner = lpb.Learner(display_name=name, organization_id=org, developer_id="dev-2", spec=lpb.LearnerSpec(
            backend="sklearn", task="regression", transformer="power-forecast",
            transformer_params=struct({"window": 36, "horizon": 96, "interval_seconds": 900, "scale_min": 0.0,
                                       "scale_max": 80.0}),
            reference_dataset_id=reference_id, starting_model_id=starting,
            save_policy=lpb.SavePolicy(min_observations=64, validation_window=64)))
        return await h.stub.CreateLearner(lpb.CreateLearnerRequest(learner=learner), metadata=as_org(org))

    # Execute + Assert: before any grant, ORG's model and dataset do not exist for GRANTEE
    err = await refusal(create("borrowed", GRANTEE, reference, model_id))
    assert err.code() == grpc.StatusCode.NOT_FOUND and reference in err.details()
    await h.registry.ShareDataset(reg_pb.ShareDatasetRequest(dataset_id=reference, organization_ids=[GRANTEE]),
                                  metadata=as_org(ORG))
    err = await refusal(create("borrowed", GRANTEE, reference, model_id))
    assert err.code() == grpc.StatusCode.NOT_FOUND and model_id in err.details()
    # ORG shares the model with GRANTEE: GRANTEE starts a learner from it; a stranger still cannot
    await h.registry.ShareModel(reg_pb.ShareModelRequest(model_id=model_id, organization_ids=[GRANTEE]),
                                metadata=as_org(ORG))
    borrowed = await create("borrowed", GRANTEE, reference, model_id)
    assert borrowed.organization_id == GRANTEE and borrowed.state == lpb.Learner.STATE_READY
    err = await refusal(create("stolen", STRANGER, reference, model_id))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    # GRANTEE's learner learns and saves: the version is GRANTEE's, its parent ORG's shared model
    later = [a.saved for a in await learn(h.stub, borrowed.learner_id, stream) if a.HasField("saved")]
    assert later
    version = await h.registry.GetModel(reg_pb.GetModelRequest(model_id=later[0].model_id))
    assert version.organization_id == GRANTEE and version.parent_model_id == model_id
    assert version.version == later[0].version == saved[-1].version + 1  # it continues the shared model's line
    # The learners stay apart: each organization lists and reaches only its own
    for org, lid in ((ORG, source.learner_id), (GRANTEE, borrowed.learner_id)):
        listed = await h.stub.ListLearners(lpb.ListLearnersRequest(), metadata=as_org(org))
        assert [x.learner_id for x in listed.learners] == [lid]
    err = await refusal(h.stub.GetLearner(lpb.GetLearnerRequest(learner_id=source.learner_id),
                                          metadata=as_org(GRANTEE)))
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def test_learner_names_are_per_organization_and_each_oip_call_reaches_its_own(learner_server):
    # Prepare: ORG and STRANGER each create a learner named "meter" (told apart by their window width)
    h = learner_server
    reference = await h.upload_power_csv(days=2, seed=1)
    await h.registry.ShareDataset(reg_pb.ShareDatasetRequest(dataset_id=reference, organization_ids=[STRANGER]),
                                  metadata=as_org(ORG))

    async def create(org: str, window: int) -> lpb.Learner:
        learner = lpb.Learner(display_name="meter", organization_id=org, developer_id="dev-4", spec=lpb.LearnerSpec(
            backend="sklearn", task="regression", transformer="power-forecast", reference_dataset_id=reference,
            transformer_params=struct({"window": window, "horizon": 96, "interval_seconds": 900,
                                       "scale_min": 0.0, "scale_max": 80.0})))
        return await h.stub.CreateLearner(lpb.CreateLearnerRequest(learner=learner), metadata=as_org(org))

    # Execute: the second organization's "meter" is not refused (that would reveal the first's)
    mine = await create(ORG, 36)
    theirs = await create(STRANGER, 24)

    # Assert: each organization's OIP calls by name reach its own learner
    assert mine.learner_id != theirs.learner_id
    for org, learner, width in ((ORG, mine, 36), (STRANGER, theirs, 24)):
        meta = await h.oip.ModelMetadata(v2.ModelMetadataRequest(name="meter"), metadata=as_org(org))
        assert list(meta.inputs[0].shape) == [-1, width]
        tensor = v2.ModelInferRequest.InferInputTensor(name="input-0", datatype="FP64", shape=[1, width])
        tensor.contents.fp64_contents.extend([10.0] * width)
        reply = await h.oip.ModelInfer(v2.ModelInferRequest(model_name="meter", inputs=[tensor]),
                                       metadata=as_org(org))
        assert reply.model_name == "meter" and len(reply.outputs[0].contents.fp64_contents) == 1
        # the other organization's learner, named by its id, is no model of this one's
        other = theirs if learner is mine else mine
        err = await refusal(h.oip.ModelMetadata(v2.ModelMetadataRequest(name=other.learner_id), metadata=as_org(org)))
        assert err.code() == grpc.StatusCode.NOT_FOUND
    # A name is still unique within its organization
    err = await refusal(create(ORG, 36))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS and "your organization" in err.details()
    # A mesh server calling for itself (no organization) must name the learner by id: the name is ambiguous
    err = await refusal(h.oip.ModelMetadata(v2.ModelMetadataRequest(name="meter")))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "learner id" in err.details()
    meta = await h.oip.ModelMetadata(v2.ModelMetadataRequest(name=theirs.learner_id))
    assert list(meta.inputs[0].shape) == [-1, 24]
    # A deleted learner's name is free again, and the name reaches the new learner, not the old one
    await h.stub.DeleteLearner(lpb.DeleteLearnerRequest(learner_id=mine.learner_id), metadata=as_org(ORG))
    err = await refusal(h.oip.ModelMetadata(v2.ModelMetadataRequest(name="meter"), metadata=as_org(ORG)))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    again = await create(ORG, 12)
    meta = await h.oip.ModelMetadata(v2.ModelMetadataRequest(name="meter"), metadata=as_org(ORG))
    assert again.learner_id != mine.learner_id and list(meta.inputs[0].shape) == [-1, 12]
