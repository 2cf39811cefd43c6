"""Grants on the ledger: our real Registry (port 0, embedded PostgreSQL) and the real Ledger on
Anvil. Every share and unshare is appended to the chain's AccessLog after its transaction commits;
the access policy's history shows each event's anchor and whether the chain still agrees with the
audit row. The Trainer is the recording stand-in of conftest.py."""

from __future__ import annotations

import asyncio
import hashlib

import asyncpg
import grpc
import pytest_asyncio
from mlmesh.ledger.v1 import ledger_service_pb2 as ledger_pb
from mlmesh.registry.v1 import access_pb2
from mlmesh.registry.v1 import registry_service_pb2 as svc
from mlmesh.registry.v1 import registry_service_pb2_grpc as svc_grpc

from servers.devstack.procs import free_port
from tests.fixtures.registry_models import as_org, create_model_as, upload_dataset_of

A, B = "org-owner", "org-partner"
ALICE = "alice@org-owner"
CONSISTENT = access_pb2.AccessAnchor.CHECK_CONSISTENT
INCONSISTENT = access_pb2.AccessAnchor.CHECK_INCONSISTENT
_ACTION = {access_pb2.AccessEvent.ACTION_SHARE: "SHARE", access_pb2.AccessEvent.ACTION_UNSHARE: "UNSHARE"}


@pytest_asyncio.fixture
async def start_registry(ledger_server, fresh_db_dsn, tmp_path, trainer):
    """Starts more Registries on the same database: with the real Ledger, or one that is down."""
    from servers.registry.main import build
    from servers.registry.settings import RegistrySettings

    started = []

    async def start(ledger_up: bool = True):
        ledger_port = ledger_server.port if ledger_up else free_port()  # nobody listens there
        settings = RegistrySettings(port=0, metrics_port=-1, database_url=fresh_db_dsn, data_dir=tmp_path,
                                    ledger_target=f"127.0.0.1:{ledger_port}",
                                    trainer_target=f"127.0.0.1:{trainer.port}", reconcile_on_start=False)
        server = await build(settings)
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        started.append((server, channel))
        return svc_grpc.RegistryServiceStub(channel)

    yield start
    for server, channel in reversed(started):
        await channel.close()
        await server.stop(0, drain=0)


async def _policy(stub, dataset_id: str) -> access_pb2.AccessPolicy:
    return await stub.GetDatasetAccessPolicy(svc.GetDatasetAccessPolicyRequest(dataset_id=dataset_id),
                                             metadata=as_org(A, ALICE))


async def _share(stub, dataset_id: str, orgs=(B,), public=False) -> access_pb2.AccessPolicy:
    return await stub.ShareDataset(svc.ShareDatasetRequest(dataset_id=dataset_id, organization_ids=list(orgs),
                                                           public=public), metadata=as_org(A, ALICE))


async def test_share_and_unshare_produce_chain_entries_matching_the_audit_rows(registry, ledger_stub):
    stub, _ = registry
    dataset_id = await upload_dataset_of(stub, A)
    model = await create_model_as(stub, A, dataset_id)

    await _share(stub, dataset_id, public=True)
    final = await stub.UnshareDataset(svc.UnshareDatasetRequest(dataset_id=dataset_id, organization_ids=[B]),
                                      metadata=as_org(A, ALICE))
    model_policy = await stub.ShareModel(svc.ShareModelRequest(model_id=model.model_id, organization_ids=[B]),
                                         metadata=as_org(A, ALICE))
    policy = await _policy(stub, dataset_id)
    chain = await ledger_stub.ListAccessEntries(ledger_pb.ListAccessEntriesRequest(resource_kind="dataset",
                                                                                   resource_id=dataset_id))

    # Every event of the answer to the share itself is anchored already, and consistent.
    assert all(e.anchor.tx_hash and e.anchor.check == CONSISTENT for e in final.history)
    assert len(policy.history) == 3 and all(e.anchor.check == CONSISTENT for e in policy.history)
    assert [e.anchor.index for e in policy.history] == [c.index for c in chain.entries]
    # The chain's entries, read independently of the Registry, hold what the audit rows say.
    subject_hash = hashlib.sha256(ALICE.encode()).hexdigest()
    for event, entry in zip(policy.history, chain.entries, strict=True):
        assert entry.action == _ACTION[event.action]
        assert entry.grantee == ("*" if event.public else event.organization_id)
        assert (entry.public, entry.actor_organization_id, entry.actor_subject_sha256) == (
            event.public, A, subject_hash)
        assert entry.event_time_micros == event.event_time.ToMicroseconds()
    assert [(e.action, e.grantee) for e in chain.entries] == [("SHARE", B), ("SHARE", "*"), ("UNSHARE", B)]
    [model_event] = model_policy.history
    assert model_event.anchor.tx_hash and model_event.anchor.check == CONSISTENT


async def test_an_edited_audit_row_shows_as_inconsistent(registry, fresh_db_dsn):
    stub, _ = registry
    dataset_id = await upload_dataset_of(stub, A)
    await _share(stub, dataset_id, orgs=(B, "org-third"))

    # Execute: someone with the table owner's rights bypasses the append-only trigger and rewrites a row.
    conn = await asyncpg.connect(fresh_db_dsn)
    try:
        await conn.execute("ALTER TABLE access_events DISABLE TRIGGER access_events_no_update_or_delete")
        await conn.execute("UPDATE access_events SET grantee = 'org-mallory' WHERE grantee = 'org-third' "
                           "AND resource_id = $1", dataset_id)
        await conn.execute("ALTER TABLE access_events ENABLE TRIGGER access_events_no_update_or_delete")
    finally:
        await conn.close()
    policy = await _policy(stub, dataset_id)

    checks = [(e.organization_id, e.anchor.check) for e in policy.history]
    assert checks == [(B, CONSISTENT), ("org-mallory", INCONSISTENT)]
    detail = policy.history[1].anchor.detail
    assert "grantee" in detail and "org-mallory" in detail and "org-third" in detail


async def test_an_event_the_chain_missed_stays_unanchored_and_is_retried(registry, start_registry, fresh_db_dsn):
    stub, _ = registry
    dataset_id = await upload_dataset_of(stub, A)
    ledger_down = await start_registry(ledger_up=False)

    # The share is accepted (it committed) while the ledger is down: its event has no anchor, not a fake one.
    during = await _share(ledger_down, dataset_id)
    assert during.grants[0].organization_id == B
    assert not during.history[0].HasField("anchor")

    # The next share, through a Registry that reaches the ledger, anchors the missed event first.
    after = await _share(stub, dataset_id, orgs=("org-next",))
    assert [(e.organization_id, e.anchor.check) for e in after.history] == [(B, CONSISTENT),
                                                                            ("org-next", CONSISTENT)]
    assert after.history[0].anchor.index < after.history[1].anchor.index

    # Missed again; this time a Registry's start anchors it (in the background).
    await _share(ledger_down, dataset_id, orgs=("org-late",))
    restarted = await start_registry()
    for _ in range(100):
        policy = await _policy(restarted, dataset_id)
        if all(e.HasField("anchor") for e in policy.history):
            break
        await asyncio.sleep(0.1)
    assert [(e.organization_id, e.anchor.check) for e in policy.history] == [
        (B, CONSISTENT), ("org-next", CONSISTENT), ("org-late", CONSISTENT)]
    conn = await asyncpg.connect(fresh_db_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM access_events WHERE anchor_tx_hash = ''") == 0
    finally:
        await conn.close()
