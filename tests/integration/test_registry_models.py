"""Models in our real Registry (embedded PostgreSQL, filesystem store, real Ledger on Anvil).

The Trainer here is a stand-in: a real gRPC TrainerService on port 0 that only records
SubmitTrainingJob calls, so each test plays the Trainer's part itself through the Registry's
internal RPCs (ReportTrainingStatus, SubmitTrainingResult). The real Trainer is tested in
tests/integration/test_trainer.py and end to end in tests/e2e."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import uuid

import grpc
import pytest
from google.api import httpbody_pb2
from mlmesh.ledger.v1 import ledger_service_pb2 as ledger_pb
from mlmesh.registry.v1 import model_pb2
from mlmesh.registry.v1 import registry_service_pb2 as svc

from servers.registry.domain.models import not_trained_message
from tests.fixtures.registry_models import ORG
from tests.fixtures.registry_models import download_model as _download
from tests.fixtures.registry_models import upload_dataset as _dataset


def recipe_archive() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in {"recipe.toml": '[recipe]\nname="t"\nentrypoint="train.py"\nframework="sklearn"\n',
                           "train.py": "print('hi')\n"}.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _create(dataset_id: str, archive: bytes | None = b"", **meta):
    fields = {"organization_id": ORG, "developer_id": "dev-1", "dataset_id": dataset_id, "display_name": "cnn",
              "recipe_filename": "recipe.tar.gz", **meta}

    async def gen():
        yield svc.CreateModelRequest(**fields)
        data = archive or b""
        for i in range(0, len(data), 1000):
            yield svc.CreateModelRequest(chunk=httpbody_pb2.HttpBody(data=data[i:i + 1000]))
    return gen()


def _result(model_id: str, job_id: str, data: bytes, framework: str = "sklearn"):
    async def gen():
        yield svc.SubmitTrainingResultRequest(model_id=model_id, training_job_id=job_id, framework=framework,
                                              input_signature='{"shape": [null, 64], "dtype": "float32"}')
        for i in range(0, len(data), 100_000):
            yield svc.SubmitTrainingResultRequest(chunk=httpbody_pb2.HttpBody(data=data[i:i + 100_000]))
    return gen()


async def test_model_lifecycle_from_recipe_to_verified_result(registry, trainer, ledger_stub):
    stub, _ = registry
    dataset_id = await _dataset(stub)
    archive = recipe_archive()
    model = await stub.CreateModel(_create(dataset_id, archive))
    assert model.state == model_pb2.Model.STATE_PENDING and model.training_job_id == "job-1"
    assert model.training_source.recipe.sha256 == hashlib.sha256(archive).hexdigest()
    assert [r.model_id for r in trainer.submitted] == [model.model_id]

    chain = await ledger_stub.GetModelContract(ledger_pb.GetModelContractRequest(address=model.contract_address))
    assert (chain.model_id, chain.dataset_id, chain.developer_id) == (model.model_id, dataset_id, "dev-1")
    assert chain.train_image_hash == hashlib.md5(archive).hexdigest() and not chain.verified

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _download(stub, model.model_id)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.details() == not_trained_message(model.model_id)

    recipe = b"".join([m.data async for m in stub.DownloadModelRecipe(
        svc.DownloadModelRecipeRequest(model_id=model.model_id))])
    assert recipe == archive

    training = await stub.ReportTrainingStatus(svc.ReportTrainingStatusRequest(
        model_id=model.model_id, training_job_id="job-1", state=model_pb2.Model.STATE_TRAINING))
    assert training.state == model_pb2.Model.STATE_TRAINING

    artifact = os.urandom(700_000)
    trained = await stub.SubmitTrainingResult(_result(model.model_id, "job-1", artifact))
    assert trained.state == model_pb2.Model.STATE_TRAINED
    assert trained.res_md5 == hashlib.md5(artifact).hexdigest() and trained.framework == "sklearn"
    assert await _download(stub, model.model_id) == artifact

    chain = await ledger_stub.GetModelContract(ledger_pb.GetModelContractRequest(address=model.contract_address))
    assert chain.verified and chain.res_hash == trained.res_md5 and chain.res_sha256 == trained.res_sha256
    prov = await stub.GetModelProvenance(svc.GetModelProvenanceRequest(model_id=model.model_id))
    assert prov.consistent, [c for c in prov.checks if not c.ok]
    assert prov.on_chain.res_hash == hashlib.md5(artifact).hexdigest()

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SubmitTrainingResult(_result(model.model_id, "job-1", os.urandom(10)))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "write-once" in info.value.details()
    assert await _download(stub, model.model_id) == artifact  # the first result is intact


async def test_tampered_model_fails_download_with_data_loss(registry):
    stub, server = registry
    dataset_id = await _dataset(stub)
    model = await stub.CreateModel(_create(dataset_id, recipe_archive()))
    artifact = os.urandom(50_000)
    await stub.SubmitTrainingResult(_result(model.model_id, model.training_job_id, artifact))
    root = server.settings.storage.root / "models" / model.model_id
    (path,) = [p for p in root.iterdir() if p.is_file()]
    path.write_bytes(b"x" + artifact[1:])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _download(stub, model.model_id)
    assert info.value.code() == grpc.StatusCode.DATA_LOSS
    prov = await stub.GetModelProvenance(svc.GetModelProvenanceRequest(model_id=model.model_id))
    assert not prov.consistent


async def test_failed_training_is_visible_and_refuses_results(registry):
    stub, _ = registry
    dataset_id = await _dataset(stub)
    model = await stub.CreateModel(_create(dataset_id, recipe_archive()))
    failed = await stub.ReportTrainingStatus(svc.ReportTrainingStatusRequest(
        model_id=model.model_id, training_job_id=model.training_job_id, state=model_pb2.Model.STATE_FAILED,
        failure_reason="ZeroDivisionError: division by zero"))
    assert failed.state == model_pb2.Model.STATE_FAILED and "ZeroDivisionError" in failed.failure_reason
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SubmitTrainingResult(_result(model.model_id, model.training_job_id, b"late"))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SubmitTrainingResult(_result(model.model_id, "someone-elses-job", b"x"))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_container_image_models(registry, ledger_stub):
    stub, _ = registry
    dataset_id = await _dataset(stub)
    digest = "sha256:" + "ab" * 32
    model = await stub.CreateModel(_create(dataset_id, None, recipe_filename="",
                                           image_reference="registry.example/cnn:1", image_digest=digest))
    assert model.training_source.image.digest == digest
    chain = await ledger_stub.GetModelContract(ledger_pb.GetModelContractRequest(address=model.contract_address))
    assert chain.train_image_hash == digest
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.DownloadModelRecipe(svc.DownloadModelRecipeRequest(model_id=model.model_id)):
            pass
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize(
    "meta, code",
    [
        ({"dataset_id": "5d066d58-06de-47ab-a2f6-c8f413e21947"}, grpc.StatusCode.NOT_FOUND),
        ({"dataset_id": "nope"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"developer_id": ""}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"recipe_filename": "recipe.exe"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"image_reference": "x", "image_digest": "latest", "recipe_filename": ""}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"expected_recipe_sha256": "0" * 64}, grpc.StatusCode.INVALID_ARGUMENT),
    ],
    ids=["unknown-dataset", "malformed-dataset", "no-developer", "bad-archive-name", "bad-digest",
         "recipe-hash-mismatch"],
)
async def test_bad_registrations_store_nothing(registry, trainer, meta, code):
    stub, server = registry
    dataset_id = await _dataset(stub)
    meta = {"dataset_id": dataset_id, **meta}
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateModel(_create(archive=recipe_archive(), **meta))
    assert info.value.code() == code, info.value.details()
    assert (await stub.ListModels(svc.ListModelsRequest())).models == []
    assert not (server.settings.storage.root / "recipes").exists() or \
        not any((server.settings.storage.root / "recipes").iterdir())
    assert trainer.submitted == []


async def test_trainer_down_takes_the_registration_back(registry, trainer):
    stub, server = registry
    dataset_id = await _dataset(stub)
    trainer.fail_with = grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateModel(_create(dataset_id, recipe_archive()))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE and "trainer" in info.value.details()
    assert (await stub.ListModels(svc.ListModelsRequest())).models == []
    assert not any((server.settings.storage.root / "recipes").iterdir())


async def test_list_models_filters_and_pages(registry):
    stub, _ = registry
    first, second = await _dataset(stub), await _dataset(stub)
    for dataset_id in (first, first, second):
        await stub.CreateModel(_create(dataset_id, recipe_archive()))
    page = await stub.ListModels(svc.ListModelsRequest(dataset_id=first, page_size=1))
    assert len(page.models) == 1 and page.next_page_token
    rest = await stub.ListModels(svc.ListModelsRequest(dataset_id=first, page_size=5,
                                                       page_token=page.next_page_token))
    assert len(rest.models) == 1 and not rest.next_page_token
    assert {m.dataset_id for m in [*page.models, *rest.models]} == {first}
    unknown = str(uuid.uuid4())
    assert (await stub.ListModels(svc.ListModelsRequest(dataset_id=unknown))).models == []
