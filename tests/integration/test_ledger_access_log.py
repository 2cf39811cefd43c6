"""The Ledger's AccessLog end to end: our real gRPC server, the real chain adapter, a real Anvil."""

from __future__ import annotations

import hashlib
import json
import signal
import uuid

import grpc
import pytest
from mlmesh.ledger.v1 import ledger_service_pb2 as pb
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import ContractLogicError

from servers.ledger.adapters.artifacts import ACCESS_LOG, load_artifact
from tests.fixtures.chain import make_ledger_settings, running_ledger, start_anvil_node


def _event(resource_id: str = "", **overrides) -> pb.RecordAccessEventRequest:
    values = dict(resource_kind="dataset", resource_id=resource_id, action="SHARE", grantee="org-b", public=False,
                  actor_organization_id="org-a", actor_subject_sha256=hashlib.sha256(b"alice").hexdigest(),
                  event_time_micros=1_780_000_000_123_456)
    values.update(overrides)
    return pb.RecordAccessEventRequest(**values)


async def test_entries_are_appended_and_read_back_per_resource(ledger_stub):
    dataset, other = str(uuid.uuid4()), str(uuid.uuid4())

    first = await ledger_stub.RecordAccessEvent(_event(dataset))
    second = await ledger_stub.RecordAccessEvent(_event(dataset, action="UNSHARE", grantee="*", public=True,
                                                        actor_subject_sha256=""))
    await ledger_stub.RecordAccessEvent(_event(other, resource_kind="model"))
    listed = await ledger_stub.ListAccessEntries(pb.ListAccessEntriesRequest(resource_kind="dataset",
                                                                             resource_id=dataset))

    assert [e.index for e in listed.entries] == [first.entry.index, second.entry.index]
    assert second.entry.index > first.entry.index
    assert list(listed.entries) == [first.entry, second.entry]
    read = listed.entries[0]
    assert (read.action, read.grantee, read.public, read.actor_organization_id, read.event_time_micros) == (
        "SHARE", "org-b", False, "org-a", 1_780_000_000_123_456)
    assert read.actor_subject_sha256 == hashlib.sha256(b"alice").hexdigest()
    assert listed.entries[1].actor_subject_sha256 == "" and listed.entries[1].public
    assert first.tx_hash != second.tx_hash and first.entry.contract_address == second.entry.contract_address
    assert not (await ledger_stub.ListAccessEntries(pb.ListAccessEntriesRequest(
        resource_kind="model", resource_id=dataset))).entries


@pytest.mark.parametrize(("field", "value"), [
    ("resource_kind", "translation"), ("resource_id", "not-a-uuid"), ("action", "DELETE"), ("grantee", ""),
    ("public", True), ("actor_subject_sha256", "alice"), ("event_time_micros", -1),
])
async def test_bad_event_is_invalid_argument(ledger_stub, field, value):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ledger_stub.RecordAccessEvent(_event(**{"resource_id": str(uuid.uuid4()), field: value}))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in caught.value.details()


async def test_only_the_ledger_signer_may_append_and_nothing_can_change_an_entry(ledger_stub, anvil_url):
    done = await ledger_stub.RecordAccessEvent(_event(str(uuid.uuid4())))
    abi = load_artifact(ACCESS_LOG).abi
    w3 = AsyncWeb3(AsyncHTTPProvider(anvil_url))
    try:
        contract = w3.eth.contract(address=done.entry.contract_address, abi=abi)
        stranger = (await w3.eth.accounts)[3]  # one of Anvil's funded, unlocked accounts
        before = await contract.functions.count().call()
        with pytest.raises(ContractLogicError, match="only the owner may append"):
            await contract.functions.record("dataset", str(uuid.uuid4()), "SHARE", "org-x", False, "org-x",
                                            bytes(32), 1).transact({"from": stranger})
        after = await contract.functions.count().call()
        stored = await contract.functions.entry(done.entry.index).call()
    finally:
        await w3.provider.disconnect()
    assert after == before
    assert stored[3] == "org-b"
    # Append-only by construction: `record` is the contract's only state-changing function.
    writers = {f["name"] for f in abi if f["type"] == "function" and f["stateMutability"] not in ("view", "pure")}
    assert writers == {"record"}


async def test_the_access_log_is_deployed_once_remembered_and_journaled(tmp_path):
    node = start_anvil_node(tmp_path / "chain")
    settings = make_ledger_settings(node.url, tmp_path / "ledger")
    resource = str(uuid.uuid4())
    try:
        async with running_ledger(settings) as (_server, stub):
            empty = await stub.ListAccessEntries(pb.ListAccessEntriesRequest(resource_kind="dataset",
                                                                             resource_id=resource))
            first = await stub.RecordAccessEvent(_event(resource))
            [journal] = (tmp_path / "ledger" / "ledger").glob("journal-*.jsonl")
            journaled = {json.loads(line)["tx_hash"] for line in journal.read_text().splitlines()}
        remembered = [json.loads(p.read_text()) for p in (tmp_path / "ledger" / "ledger").glob("access-log-*.json")]
        # A restarted Ledger on a chain that lost everything: the journal restores the log and its entry.
        node.stop(signal.SIGKILL)
        for path in (tmp_path / "chain" / "anvil").glob("*.json"):
            path.unlink()
        node.start()
        async with running_ledger(settings) as (_server, stub):
            second = await stub.RecordAccessEvent(_event(resource, action="UNSHARE"))
            listed = await stub.ListAccessEntries(pb.ListAccessEntriesRequest(resource_kind="dataset",
                                                                              resource_id=resource))
    finally:
        node.stop()
    assert not empty.entries
    assert first.tx_hash in journaled
    assert [r["address"] for r in remembered] == [first.entry.contract_address]
    assert second.entry.contract_address == first.entry.contract_address
    assert [e.action for e in listed.entries] == ["SHARE", "UNSHARE"]
    assert listed.entries[0] == first.entry
