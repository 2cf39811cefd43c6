"""Model versions learned online (CreateModelVersion, the Learner's internal RPC) in our real
Registry: embedded PostgreSQL, filesystem store, the real Ledger on Anvil. The Trainer is the
recording stand-in of tests/integration/conftest.py (versions never reach it)."""

from __future__ import annotations

import hashlib
import json
import os

import grpc
import pytest
from google.api import httpbody_pb2
from mlmesh.ledger.v1 import ledger_service_pb2 as ledger_pb
from mlmesh.registry.v1 import model_pb2
from mlmesh.registry.v1 import registry_service_pb2 as svc

from tests.fixtures.registry_models import ORG, download_model, upload_dataset

RECORD = json.dumps({"learner_id": "L1", "spec": {"backend": "sklearn"}}).encode()


def _version(dataset_id: str, data: bytes, *, parent: str = "", version: int = 1, **meta):
    fields = {"organization_id": ORG, "developer_id": "learner:L1", "display_name": "uc10-online",
              "dataset_id": dataset_id, "parent_model_id": parent, "version": version, "framework": "sklearn",
              "input_signature": '{"shape": [null, 36], "dtype": "float32"}', "learner_id": "L1",
              "observations": 512, "observations_sha256": "ab" * 32, "validation_loss": 0.25,
              "learning_record": RECORD, **meta}

    async def gen():
        yield svc.CreateModelVersionRequest(**fields)
        for i in range(0, len(data), 50_000):
            yield svc.CreateModelVersionRequest(chunk=httpbody_pb2.HttpBody(data=data[i:i + 50_000]))
    return gen()


async def test_versions_are_stored_anchored_and_linked(registry, trainer, ledger_stub):
    stub, _ = registry
    dataset_id = await upload_dataset(stub)
    first_bytes = os.urandom(120_000)
    v1 = await stub.CreateModelVersion(_version(dataset_id, first_bytes))
    assert v1.state == model_pb2.Model.STATE_TRAINED and v1.version == 1 and not v1.parent_model_id
    assert v1.res_sha256 == hashlib.sha256(first_bytes).hexdigest()
    online = v1.training_source.online
    assert (online.learner_id, online.observations, online.validation_loss) == ("L1", 512, 0.25)
    assert online.record.sha256 == hashlib.sha256(RECORD).hexdigest()
    assert trainer.submitted == []  # nothing to train

    chain = await ledger_stub.GetModelContract(ledger_pb.GetModelContractRequest(address=v1.contract_address))
    assert chain.verified and chain.res_sha256 == v1.res_sha256
    assert chain.train_image_sha256 == online.record.sha256 and chain.dataset_id == dataset_id
    assert await download_model(stub, v1.model_id) == first_bytes
    record = b"".join([m.data async for m in stub.DownloadModelRecipe(
        svc.DownloadModelRecipeRequest(model_id=v1.model_id))])
    assert record == RECORD
    prov = await stub.GetModelProvenance(svc.GetModelProvenanceRequest(model_id=v1.model_id))
    assert prov.consistent, [c for c in prov.checks if not c.ok]

    v2 = await stub.CreateModelVersion(_version(dataset_id, b"second", parent=v1.model_id, version=2))
    assert (v2.parent_model_id, v2.version) == (v1.model_id, 2)
    got = await stub.GetModel(svc.GetModelRequest(model_id=v2.model_id))
    assert got.parent_model_id == v1.model_id and got.training_source.WhichOneof("source") == "online"

    # A Learner that crashed after storing a version resumes from the parent: a second child with
    # the same number is a new branch; the first stays intact.
    rival = await stub.CreateModelVersion(_version(dataset_id, b"rival", parent=v1.model_id, version=2))
    assert rival.model_id != v2.model_id
    assert await download_model(stub, v2.model_id) == b"second"

@pytest.mark.parametrize(("meta", "code", "words"), [
    ({"framework": "caffe"}, grpc.StatusCode.INVALID_ARGUMENT, "framework"),
    ({"learning_record": b"not json"}, grpc.StatusCode.INVALID_ARGUMENT, "learning_record"),
    ({"learning_record": b""}, grpc.StatusCode.INVALID_ARGUMENT, "learning_record"),
    ({"version": 2}, grpc.StatusCode.FAILED_PRECONDITION, "version 1"),
    ({"parent_model_id": "0b0e7c8e-5f3c-4c55-9c53-000000000000"}, grpc.StatusCode.NOT_FOUND, "does not exist"),
    ({"observations_sha256": "xyz"}, grpc.StatusCode.INVALID_ARGUMENT, "observations_sha256"),
])
async def test_bad_versions_store_nothing(registry, meta, code, words):
    stub, _ = registry
    dataset_id = await upload_dataset(stub)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateModelVersion(_version(dataset_id, b"bytes", **meta))
    assert info.value.code() == code and words in info.value.details()
    listed = await stub.ListModels(svc.ListModelsRequest(dataset_id=dataset_id))
    assert list(listed.models) == []
