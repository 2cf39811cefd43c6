"""Who may translate a model and read its translations (docs/security.md): a translation belongs
to its model's owner and is visible to whoever may read the model, which the Translator asks our
real Registry at every call, on behalf of the caller. The caller's organization is the header
Envoy sets from a verified token (x-mlmesh-org); real Registry, Ledger, PostgreSQL and worker
(tests/fixtures/translator.py)."""

from __future__ import annotations

import uuid

import grpc
import pytest
from mlmesh.registry.v1 import registry_service_pb2 as reg_pb
from mlmesh.translator.v1 import translator_service_pb2 as pb

from servers.common.grpc_errors import error_info
from tests.fixtures.translator import ORG, create_model, submit_result, upload_dataset

GRANTEE, STRANGER = "grid-partner", "other-utility"


def as_org(org: str) -> tuple[tuple[str, str], ...]:
    return (("x-mlmesh-org", org),)


async def _download(stub, translation_id: str, org: str) -> bytes:
    request = pb.DownloadTranslationRequest(translation_id=translation_id)
    return b"".join([m.data async for m in stub.DownloadTranslation(request, metadata=as_org(org))])


async def _refusal(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def _trained(registry_stub, csv_path, trained):
    dataset_id = await upload_dataset(registry_stub, csv_path.read_bytes())
    model = await create_model(registry_stub, dataset_id)
    return await submit_result(registry_stub, model, trained.artifact, trained.framework, trained.signature)


async def _not_found_as_unknown(stub, translation_id: str, org: str) -> None:
    """`org` gets for `translation_id` exactly what anyone gets for an id that was never issued."""
    unknown = str(uuid.uuid4())
    for tid in (translation_id, unknown):
        got = await _refusal(stub.GetTranslation(pb.GetTranslationRequest(translation_id=tid), metadata=as_org(org)))
        assert (got.code(), error_info(got).reason) == (grpc.StatusCode.NOT_FOUND, "TRANSLATION_NOT_FOUND")
        assert got.details() == f"translation {tid} does not exist"
        down = await _refusal(_download(stub, tid, org))
        assert down.code() == grpc.StatusCode.NOT_FOUND and down.details() == got.details()


async def test_a_stranger_cannot_translate_get_list_or_download_the_owner_can(
        translator_server, translator_registry, trained_logreg, translator_digits_csv):
    # Prepare
    stub, _, _ = translator_server
    registry_stub, _ = translator_registry
    model = await _trained(registry_stub, translator_digits_csv, trained_logreg)
    # Execute + Assert: the stranger cannot translate the model: for it, the model does not exist
    refused = await _refusal(stub.TranslateModel(pb.TranslateModelRequest(model_id=model.model_id),
                                                 metadata=as_org(STRANGER)))
    assert (refused.code(), error_info(refused).reason) == (grpc.StatusCode.NOT_FOUND, "MODEL_NOT_FOUND")
    assert list((await stub.ListTranslations(pb.ListTranslationsRequest())).translations) == []
    # The owner translates it (through Envoy: its organization in the header)
    t = await stub.TranslateModel(pb.TranslateModelRequest(model_id=model.model_id), metadata=as_org(ORG))
    assert t.model_id == model.model_id and t.parity.passed
    # The stranger can neither get, download, nor list it, with or without the model's id
    await _not_found_as_unknown(stub, t.translation_id, STRANGER)
    mine = await stub.ListTranslations(pb.ListTranslationsRequest(), metadata=as_org(STRANGER))
    assert list(mine.translations) == []
    by_model = await _refusal(stub.ListTranslations(pb.ListTranslationsRequest(model_id=model.model_id),
                                                    metadata=as_org(STRANGER)))
    assert (by_model.code(), error_info(by_model).reason) == (grpc.StatusCode.NOT_FOUND, "MODEL_NOT_FOUND")
    # The owner gets, downloads and lists it both ways
    got = await stub.GetTranslation(pb.GetTranslationRequest(translation_id=t.translation_id), metadata=as_org(ORG))
    assert got == t
    assert len(await _download(stub, t.translation_id, ORG)) == t.size_bytes
    for request in (pb.ListTranslationsRequest(), pb.ListTranslationsRequest(model_id=model.model_id)):
        listed = await stub.ListTranslations(request, metadata=as_org(ORG))
        assert [x.translation_id for x in listed.translations] == [t.translation_id]


async def test_a_grantee_translates_a_shared_model_until_the_grant_is_revoked(
        translator_server, translator_registry, trained_logreg, translator_digits_csv):
    # Prepare: the owner shares its trained model with GRANTEE
    stub, _, _ = translator_server
    registry_stub, _ = translator_registry
    model = await _trained(registry_stub, translator_digits_csv, trained_logreg)
    await registry_stub.ShareModel(reg_pb.ShareModelRequest(model_id=model.model_id, organization_ids=[GRANTEE]),
                                   metadata=as_org(ORG))
    # Execute: the grantee translates it
    t = await stub.TranslateModel(pb.TranslateModelRequest(model_id=model.model_id), metadata=as_org(GRANTEE))
    # Assert: the translation (the owner's, as its model) is readable by owner and grantee, not the stranger
    assert t.model_id == model.model_id and t.parity.passed
    for org in (GRANTEE, ORG):
        got = await stub.GetTranslation(pb.GetTranslationRequest(translation_id=t.translation_id),
                                        metadata=as_org(org))
        assert got == t
        assert len(await _download(stub, t.translation_id, org)) == t.size_bytes
        listed = await stub.ListTranslations(pb.ListTranslationsRequest(model_id=model.model_id),
                                             metadata=as_org(org))
        assert [x.translation_id for x in listed.translations] == [t.translation_id]
    await _not_found_as_unknown(stub, t.translation_id, STRANGER)
    # Without a model_id a list holds what the caller's organization owns: the owner's, not the grantee's
    owners = await stub.ListTranslations(pb.ListTranslationsRequest(), metadata=as_org(ORG))
    assert [x.translation_id for x in owners.translations] == [t.translation_id]
    assert list((await stub.ListTranslations(pb.ListTranslationsRequest(),
                                             metadata=as_org(GRANTEE))).translations) == []
    # Execute: the owner revokes; the grantee's next calls are refused at once
    await registry_stub.UnshareModel(reg_pb.UnshareModelRequest(model_id=model.model_id,
                                                                organization_ids=[GRANTEE]), metadata=as_org(ORG))
    await _not_found_as_unknown(stub, t.translation_id, GRANTEE)
    again = await _refusal(stub.TranslateModel(pb.TranslateModelRequest(model_id=model.model_id),
                                               metadata=as_org(GRANTEE)))
    assert again.code() == grpc.StatusCode.NOT_FOUND
    # ... and the owner still reads it
    assert len(await _download(stub, t.translation_id, ORG)) == t.size_bytes
