"""Sharing and access control in our real Registry (port 0, embedded PostgreSQL, filesystem store,
the real Ledger on Anvil; the Trainer is the recording stand-in of conftest.py). Callers carry
the identity headers Envoy sets from a verified token (`x-mlmesh-org`, `x-mlmesh-subject`).

The matrix: owner, grantee, public, stranger, for datasets and models and every verb. A stranger
gets NOT_FOUND — the very answer for an id that does not exist — everywhere, lists included; a
reader that tries an owner's action gets PERMISSION_DENIED; a revoke holds from the next call; the
audit log records who, when and what and PostgreSQL itself refuses to change it."""

from __future__ import annotations

import uuid

import asyncpg
import grpc
import pytest
import pytest_asyncio
from google.api import httpbody_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from mlmesh.registry.v1 import access_pb2
from mlmesh.registry.v1 import registry_service_pb2 as svc

from tests.fixtures.registry_models import as_org, create_model_as, train, upload_dataset_of

A, B, C = "org-owner", "org-partner", "org-stranger"  # owner, grantee, stranger
ALICE = "alice@org-owner"
SHARE, UNSHARE = access_pb2.AccessEvent.ACTION_SHARE, access_pb2.AccessEvent.ACTION_UNSHARE


async def _bytes(call) -> bytes:
    return b"".join([m.data async for m in call])


# Every read of a dataset or a model (the seed's routes map onto these RPCs: /dataset/{id} is
# DownloadDataset, /model/{id} DownloadModel, /model/{id}/metadata GetModelProvenance).
DATASET_READS = {
    "GetDataset": lambda s, md, d: s.GetDataset(svc.GetDatasetRequest(dataset_id=d), metadata=md),
    "DownloadDataset": lambda s, md, d: _bytes(s.DownloadDataset(svc.DownloadDatasetRequest(dataset_id=d),
                                                                   metadata=md)),
    "GetDatasetProvenance": lambda s, md, d: s.GetDatasetProvenance(svc.GetDatasetProvenanceRequest(dataset_id=d),
                                                                    metadata=md),
}
DATASET_OWNER_ONLY = {
    "ShareDataset": lambda s, md, d: s.ShareDataset(svc.ShareDatasetRequest(dataset_id=d, organization_ids=["x"]),
                                                    metadata=md),
    "UnshareDataset": lambda s, md, d: s.UnshareDataset(
        svc.UnshareDatasetRequest(dataset_id=d, organization_ids=["x"]), metadata=md),
    "GetDatasetAccessPolicy": lambda s, md, d: s.GetDatasetAccessPolicy(
        svc.GetDatasetAccessPolicyRequest(dataset_id=d), metadata=md),
    "ListDatasetUsages": lambda s, md, d: s.ListDatasetUsages(svc.ListDatasetUsagesRequest(dataset_id=d),
                                                              metadata=md),
}
MODEL_READS = {
    "GetModel": lambda s, md, m: s.GetModel(svc.GetModelRequest(model_id=m), metadata=md),
    "DownloadModel": lambda s, md, m: _bytes(s.DownloadModel(svc.DownloadModelRequest(model_id=m), metadata=md)),
    "DownloadModelRecipe": lambda s, md, m: _bytes(s.DownloadModelRecipe(svc.DownloadModelRecipeRequest(model_id=m),
                                                                         metadata=md)),
    "GetModelProvenance": lambda s, md, m: s.GetModelProvenance(svc.GetModelProvenanceRequest(model_id=m),
                                                                metadata=md),
}
MODEL_OWNER_ONLY = {
    "ShareModel": lambda s, md, m: s.ShareModel(svc.ShareModelRequest(model_id=m, organization_ids=["x"]),
                                                metadata=md),
    "UnshareModel": lambda s, md, m: s.UnshareModel(svc.UnshareModelRequest(model_id=m, organization_ids=["x"]),
                                                    metadata=md),
    "GetModelAccessPolicy": lambda s, md, m: s.GetModelAccessPolicy(svc.GetModelAccessPolicyRequest(model_id=m),
                                                                    metadata=md),
}


async def _fails(awaitable) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await awaitable
    return info.value


def _reason(err: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(err)
    detail = error_details_pb2.ErrorInfo()
    assert status is not None and status.details[0].Unpack(detail)
    return detail.reason


async def _dataset_ids(stub, org: str, **filters) -> list[str]:
    return [d.dataset_id for d in (await stub.ListDatasets(svc.ListDatasetsRequest(page_size=1000, **filters),
                                                           metadata=as_org(org))).datasets]


async def _model_ids(stub, org: str, **filters) -> list[str]:
    return [m.model_id for m in (await stub.ListModels(svc.ListModelsRequest(page_size=1000, **filters),
                                                       metadata=as_org(org))).models]


@pytest_asyncio.fixture
async def world(registry):
    """A's dataset and A's trained model on it, shared with nobody."""
    stub, _ = registry
    dataset_id = await upload_dataset_of(stub, A)
    model = await create_model_as(stub, A, dataset_id)
    await train(stub, model)
    return stub, dataset_id, model.model_id


async def _same_as_missing(stub, call, org: str, real_id: str, kind: str) -> None:
    """`call` as `org` on `real_id` fails exactly as on an id that does not exist."""
    missing = str(uuid.uuid4())
    err = await _fails(call(stub, as_org(org), real_id))
    ref = await _fails(call(stub, as_org(org), missing))
    assert err.code() == ref.code() == grpc.StatusCode.NOT_FOUND
    assert _reason(err) == _reason(ref) == f"{kind.upper()}_NOT_FOUND"
    assert err.details().replace(real_id, "ID") == ref.details().replace(missing, "ID")


# -- stranger --------------------------------------------------------------------------------------

@pytest.mark.parametrize("verb", [*DATASET_READS, *DATASET_OWNER_ONLY])
async def test_stranger_gets_not_found_for_every_dataset_verb(world, verb):
    stub, dataset_id, _ = world
    await _same_as_missing(stub, {**DATASET_READS, **DATASET_OWNER_ONLY}[verb], C, dataset_id, "dataset")


@pytest.mark.parametrize("verb", [*MODEL_READS, *MODEL_OWNER_ONLY])
async def test_stranger_gets_not_found_for_every_model_verb(world, verb):
    stub, _, model_id = world
    await _same_as_missing(stub, {**MODEL_READS, **MODEL_OWNER_ONLY}[verb], C, model_id, "model")


async def test_stranger_lists_nothing_and_cannot_train_on_it(world):
    stub, dataset_id, model_id = world
    assert await _dataset_ids(stub, C) == []
    assert await _dataset_ids(stub, C, organization_id=A) == []
    assert await _model_ids(stub, C) == []
    assert await _model_ids(stub, C, organization_id=A) == []
    assert await _model_ids(stub, C, dataset_id=dataset_id) == []
    err = await _fails(create_model_as(stub, C, dataset_id))
    assert err.code() == grpc.StatusCode.NOT_FOUND and _reason(err) == "DATASET_NOT_FOUND"
    assert await _model_ids(stub, A) == [model_id]  # nothing was registered


# -- owner -----------------------------------------------------------------------------------------

async def test_owner_reads_everything_and_sees_an_empty_policy(world):
    stub, dataset_id, model_id = world
    for call in DATASET_READS.values():
        await call(stub, as_org(A), dataset_id)
    for call in MODEL_READS.values():
        await call(stub, as_org(A), model_id)
    assert await _dataset_ids(stub, A) == [dataset_id] == await _dataset_ids(stub, A, organization_id=A)
    policy = await stub.GetDatasetAccessPolicy(svc.GetDatasetAccessPolicyRequest(dataset_id=dataset_id),
                                               metadata=as_org(A))
    assert (policy.resource, policy.owner_organization_id) == (f"datasets/{dataset_id}", A)
    assert not policy.public and list(policy.grants) == [] and list(policy.history) == []
    mpolicy = await stub.GetModelAccessPolicy(svc.GetModelAccessPolicyRequest(model_id=model_id), metadata=as_org(A))
    assert mpolicy.resource == f"models/{model_id}" and list(mpolicy.grants) == []


async def test_internal_callers_keep_full_access(world):
    stub, dataset_id, model_id = world
    for call in DATASET_READS.values():
        await call(stub, (), dataset_id)
    for call in MODEL_READS.values():
        await call(stub, (), model_id)
    assert dataset_id in [d.dataset_id for d in (await stub.ListDatasets(svc.ListDatasetsRequest())).datasets]


# -- grantee ---------------------------------------------------------------------------------------

async def test_grantee_reads_and_lists_but_may_not_administer(world):
    stub, dataset_id, model_id = world
    await stub.ShareDataset(svc.ShareDatasetRequest(dataset_id=dataset_id, organization_ids=[B]),
                            metadata=as_org(A, ALICE))
    await stub.ShareModel(svc.ShareModelRequest(model_id=model_id, organization_ids=[B]), metadata=as_org(A, ALICE))

    assert await DATASET_READS["DownloadDataset"](stub, as_org(B), dataset_id) == b"p0,label\n1,2\n"
    assert await MODEL_READS["DownloadModel"](stub, as_org(B), model_id) == b"trained-bytes"
    for call in DATASET_READS.values():
        await call(stub, as_org(B), dataset_id)
    for call in MODEL_READS.values():
        await call(stub, as_org(B), model_id)
    assert await _dataset_ids(stub, B) == [dataset_id] == await _dataset_ids(stub, B, organization_id=A)
    assert await _dataset_ids(stub, B, organization_id=B) == []
    assert await _model_ids(stub, B, organization_id=A) == [model_id]

    for verb, call in DATASET_OWNER_ONLY.items():
        err = await _fails(call(stub, as_org(B), dataset_id))
        assert (err.code(), _reason(err)) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_OWNER"), verb
    for verb, call in MODEL_OWNER_ONLY.items():
        err = await _fails(call(stub, as_org(B), model_id))
        assert (err.code(), _reason(err)) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_OWNER"), verb
    # A grant is for B only: C still sees nothing, and B could not pass it on.
    await _same_as_missing(stub, DATASET_READS["GetDataset"], C, dataset_id, "dataset")
    await _same_as_missing(stub, MODEL_READS["GetModel"], C, model_id, "model")
    assert await _dataset_ids(stub, C, organization_id=A) == []


async def test_grantee_trains_on_a_shared_dataset_and_the_owner_sees_the_usage(world):
    stub, dataset_id, own_model = world
    await stub.ShareDataset(svc.ShareDatasetRequest(dataset_id=dataset_id, organization_ids=[B]),
                            metadata=as_org(A, ALICE))
    theirs = await create_model_as(stub, B, dataset_id, name="b's logreg")
    assert theirs.organization_id == B and theirs.dataset_id == dataset_id

    usages = await stub.ListDatasetUsages(svc.ListDatasetUsagesRequest(dataset_id=dataset_id), metadata=as_org(A))
    assert [(u.model_id, u.organization_id) for u in usages.usages] == [(theirs.model_id, B), (own_model, A)]
    assert usages.usages[0].create_time.seconds > 0
    # ... but not B's model itself, which B has not shared.
    await _same_as_missing(stub, MODEL_READS["GetModel"], A, theirs.model_id, "model")
    assert await _model_ids(stub, A, dataset_id=dataset_id) == [own_model]
    assert await _model_ids(stub, B, dataset_id=dataset_id) == [theirs.model_id]
    # Once B shares it, A sees it.
    await stub.ShareModel(svc.ShareModelRequest(model_id=theirs.model_id, organization_ids=[A]), metadata=as_org(B))
    assert await _model_ids(stub, A, dataset_id=dataset_id) == [theirs.model_id, own_model]


async def test_usages_page_and_stay_owner_only(world):
    stub, dataset_id, first = world
    await stub.ShareDataset(svc.ShareDatasetRequest(dataset_id=dataset_id, public=True), metadata=as_org(A))
    made = [first] + [(await create_model_as(stub, org, dataset_id)).model_id for org in (B, C, B)]
    seen, token = [], ""
    while True:
        page = await stub.ListDatasetUsages(svc.ListDatasetUsagesRequest(dataset_id=dataset_id, page_size=3,
                                                                        page_token=token), metadata=as_org(A))
        seen += [u.model_id for u in page.usages]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(made))
    err = await _fails(stub.ListDatasetUsages(svc.ListDatasetUsagesRequest(dataset_id=dataset_id), metadata=as_org(C)))
    assert (err.code(), _reason(err)) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_OWNER")


def _version(org: str, dataset_id: str, parent: str):
    async def gen():
        yield svc.CreateModelVersionRequest(
            organization_id=org, developer_id="learner:L1", display_name="online", dataset_id=dataset_id,
            parent_model_id=parent, version=1, framework="sklearn", input_signature="{}", learner_id="L1",
            learning_record=b'{"learner_id": "L1"}', chunk=httpbody_pb2.HttpBody(data=b"learned"))
    return gen()


async def test_a_learner_of_the_grantee_continues_a_shared_model(world):
    stub, dataset_id, model_id = world
    # The Learner calls for itself (no identity); the version belongs to the learner's organization B.
    err = await _fails(stub.CreateModelVersion(_version(B, dataset_id, model_id)))
    assert err.code() == grpc.StatusCode.NOT_FOUND  # B may read neither the dataset nor the model
    await stub.ShareDataset(svc.ShareDatasetRequest(dataset_id=dataset_id, organization_ids=[B]), metadata=as_org(A))
    err = await _fails(stub.CreateModelVersion(_version(B, dataset_id, model_id)))
    assert (err.code(), _reason(err)) == (grpc.StatusCode.NOT_FOUND, "MODEL_NOT_FOUND")
    await stub.ShareModel(svc.ShareModelRequest(model_id=model_id, organization_ids=[B]), metadata=as_org(A))
    version = await stub.CreateModelVersion(_version(B, dataset_id, model_id))
    assert (version.organization_id, version.parent_model_id) == (B, model_id)
    await _same_as_missing(stub, MODEL_READS["GetModel"], A, version.model_id, "model")
    assert await MODEL_READS["DownloadModel"](stub, as_org(B), version.model_id) == b"learned"


# -- public ----------------------------------------------------------------------------------------

async def test_public_resources_are_readable_and_listed_for_everyone_until_unshared(world):
    stub, dataset_id, model_id = world
    await stub.ShareDataset(svc.ShareDatasetRequest(dataset_id=dataset_id, public=True), metadata=as_org(A))
    policy = await stub.ShareModel(svc.ShareModelRequest(model_id=model_id, public=True), metadata=as_org(A))
    assert policy.public and list(policy.grants) == []
    for call in DATASET_READS.values():
        await call(stub, as_org(C), dataset_id)
    for call in MODEL_READS.values():
        await call(stub, as_org(C), model_id)
    assert await _dataset_ids(stub, C) == [dataset_id] == await _dataset_ids(stub, C, organization_id=A)
    assert await _model_ids(stub, C) == [model_id]
    err = await _fails(DATASET_OWNER_ONLY["ShareDataset"](stub, as_org(C), dataset_id))
    assert (err.code(), _reason(err)) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_OWNER")

    await stub.UnshareDataset(svc.UnshareDatasetRequest(dataset_id=dataset_id, public=True), metadata=as_org(A))
    await stub.UnshareModel(svc.UnshareModelRequest(model_id=model_id, public=True), metadata=as_org(A))
    await _same_as_missing(stub, DATASET_READS["DownloadDataset"], C, dataset_id, "dataset")
    await _same_as_missing(stub, MODEL_READS["DownloadModel"], C, model_id, "model")
    assert await _dataset_ids(stub, C) == [] and await _model_ids(stub, C) == []


# -- revoke ----------------------------------------------------------------------------------------

async def test_revoke_takes_effect_on_the_next_call(world):
    stub, dataset_id, model_id = world
    await stub.ShareDataset(svc.ShareDatasetRequest(dataset_id=dataset_id, organization_ids=[B, C]),
                            metadata=as_org(A))
    await stub.ShareModel(svc.ShareModelRequest(model_id=model_id, organization_ids=[B]), metadata=as_org(A))
    await DATASET_READS["DownloadDataset"](stub, as_org(B), dataset_id)
    await MODEL_READS["DownloadModel"](stub, as_org(B), model_id)

    policy = await stub.UnshareDataset(svc.UnshareDatasetRequest(dataset_id=dataset_id, organization_ids=[B]),
                                       metadata=as_org(A))
    assert [g.organization_id for g in policy.grants] == [C]
    await stub.UnshareModel(svc.UnshareModelRequest(model_id=model_id, organization_ids=[B]), metadata=as_org(A))
    for call in DATASET_READS.values():
        await _same_as_missing(stub, call, B, dataset_id, "dataset")
    for call in MODEL_READS.values():
        await _same_as_missing(stub, call, B, model_id, "model")
    assert await _dataset_ids(stub, B) == [] and await _model_ids(stub, B) == []
    err = await _fails(create_model_as(stub, B, dataset_id))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    await DATASET_READS["GetDataset"](stub, as_org(C), dataset_id)  # C's grant stays


# -- lists -----------------------------------------------------------------------------------------

async def test_lists_page_over_visible_rows_only(registry):
    stub, _ = registry
    mine = [await upload_dataset_of(stub, A, name=f"a{i}") for i in range(5)]
    others = [await upload_dataset_of(stub, C, name=f"c{i}") for i in range(3)]
    shared = [mine[0], mine[2], mine[4]]
    for dataset_id in shared:
        await stub.ShareDataset(svc.ShareDatasetRequest(dataset_id=dataset_id, organization_ids=[B]),
                                metadata=as_org(A))
    await stub.ShareDataset(svc.ShareDatasetRequest(dataset_id=others[1], public=True), metadata=as_org(C))

    async def pages(org: str, **filters) -> list[list[str]]:
        out, token = [], ""
        while True:
            page = await stub.ListDatasets(svc.ListDatasetsRequest(page_size=2, page_token=token, **filters),
                                           metadata=as_org(org))
            out.append([d.dataset_id for d in page.datasets])
            token = page.next_page_token
            if not token:
                return out

    assert await pages(B) == [[others[1], shared[2]], [shared[1], shared[0]]]
    assert await pages(B, organization_id=A) == [[shared[2], shared[1]], [shared[0]]]
    assert await pages(B, organization_id=C) == [[others[1]]]
    assert sum(await pages(A), []) == [others[1], *reversed(mine)]
    # A page token is bound to whom it was issued for.
    token = (await stub.ListDatasets(svc.ListDatasetsRequest(page_size=1), metadata=as_org(B))).next_page_token
    err = await _fails(stub.ListDatasets(svc.ListDatasetsRequest(page_size=1, page_token=token), metadata=as_org(C)))
    assert (err.code(), _reason(err)) == (grpc.StatusCode.INVALID_ARGUMENT, "PAGE_TOKEN_MISMATCH")


# -- audit -----------------------------------------------------------------------------------------

async def test_history_records_who_when_what_and_the_database_refuses_to_change_it(world, fresh_db_dsn):
    stub, dataset_id, _ = world
    first = await stub.ShareDataset(svc.ShareDatasetRequest(dataset_id=dataset_id, organization_ids=[B]),
                                    metadata=as_org(A, ALICE))
    again = await stub.ShareDataset(svc.ShareDatasetRequest(dataset_id=dataset_id, organization_ids=[B], public=True),
                                    metadata=as_org(A, "bob@org-owner"))
    # Sharing again is idempotent: one grant, its first time and author kept.
    assert [(g.organization_id, g.granted_by) for g in again.grants] == [(B, ALICE)]
    assert again.grants[0].grant_time == first.grants[0].grant_time and again.public
    final = await stub.UnshareDataset(svc.UnshareDatasetRequest(dataset_id=dataset_id, organization_ids=[B, C]),
                                      metadata=as_org(A, ALICE))
    assert list(final.grants) == [] and final.public

    history = [(e.action, e.organization_id, e.public, e.actor, e.actor_organization_id, e.changed)
               for e in final.history]
    assert history == [
        (SHARE, B, False, ALICE, A, True),
        (SHARE, B, False, "bob@org-owner", A, False),
        (SHARE, "", True, "bob@org-owner", A, True),
        (UNSHARE, B, False, ALICE, A, True),
        (UNSHARE, C, False, ALICE, A, False),
    ]
    times = [e.event_time.ToDatetime() for e in final.history]
    assert times == sorted(times) and times[0].year >= 2025

    conn = await asyncpg.connect(fresh_db_dsn)
    try:
        for sql in ("UPDATE access_events SET actor_subject = 'mallory'", "DELETE FROM access_events",
                    "TRUNCATE access_events"):
            with pytest.raises(asyncpg.PostgresError, match="append-only"):
                await conn.execute(sql)
        assert await conn.fetchval("SELECT count(*) FROM access_events WHERE actor_subject = 'mallory'") == 0
        assert await conn.fetchval("SELECT count(*) FROM access_events") == 5
    finally:
        await conn.close()


# -- hostile grantees ------------------------------------------------------------------------------

@pytest.mark.parametrize("organization_ids, public, reason", [
    ([], False, "GRANTEES_MISSING"),
    ([""], False, "GRANTEE_INVALID"),
    (["x" * 129], False, "GRANTEE_INVALID"),
    # control characters: refused by the contract's field rules before the servicer
    (["acme\x00evil"], False, "FIELD_CONTROL_CHARACTER"),
    (["acme\nSHARE org-x"], False, "FIELD_CONTROL_CHARACTER"),
    (["\u202eevil"], False, "GRANTEE_INVALID"),
    (["zero\u200bwidth"], False, "GRANTEE_INVALID"),
    (["*"], False, "GRANTEE_INVALID"),
    ([" acme"], False, "GRANTEE_INVALID"),
    ([f"org-{i}" for i in range(101)], False, "TOO_MANY_GRANTEES"),
    ([A], False, "GRANTEE_IS_OWNER"),
])
async def test_hostile_grantees_are_invalid_and_change_nothing(world, organization_ids, public, reason):
    stub, dataset_id, model_id = world
    for call in (
        stub.ShareDataset(svc.ShareDatasetRequest(dataset_id=dataset_id, organization_ids=organization_ids,
                                                  public=public), metadata=as_org(A)),
        stub.UnshareDataset(svc.UnshareDatasetRequest(dataset_id=dataset_id, organization_ids=organization_ids),
                            metadata=as_org(A)),
        stub.ShareModel(svc.ShareModelRequest(model_id=model_id, organization_ids=organization_ids),
                        metadata=as_org(A)),
    ):
        err = await _fails(call)
        assert (err.code(), _reason(err)) == (grpc.StatusCode.INVALID_ARGUMENT, reason)
    policy = await stub.GetDatasetAccessPolicy(svc.GetDatasetAccessPolicyRequest(dataset_id=dataset_id),
                                               metadata=as_org(A))
    assert list(policy.history) == [] and list(policy.grants) == []


async def test_malformed_ids_are_invalid_for_everyone(world):
    stub, _, _ = world
    for org in (A, C):
        err = await _fails(stub.ShareDataset(svc.ShareDatasetRequest(dataset_id="nope", organization_ids=[B]),
                                             metadata=as_org(org)))
        assert (err.code(), _reason(err)) == (grpc.StatusCode.INVALID_ARGUMENT, "DATASET_ID_MALFORMED")
