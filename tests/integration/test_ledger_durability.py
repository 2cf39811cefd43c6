"""A Ledger write is acknowledged only once durable: our real Ledger server on a real Anvil that
the tests kill with -9 (no final state dump), restart, or wipe."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
import uuid

import grpc
import pytest
from mlmesh.ledger.v1 import ledger_service_pb2 as pb
from mlmesh.ledger.v1 import ledger_service_pb2_grpc as pb_grpc
from web3 import AsyncHTTPProvider, AsyncWeb3

from servers.ledger.adapters.journal import JournalEntry, TxJournal
from tests.fixtures.chain import make_ledger_settings, start_anvil_node


def _dataset_request() -> pb.DeployDatasetContractRequest:
    blob = uuid.uuid4().bytes
    return pb.DeployDatasetContractRequest(
        dataset_id=str(uuid.uuid4()), organization_id=str(uuid.uuid4()), samples_dimension="(8,)",
        size_bytes=len(blob), md5=hashlib.md5(blob).hexdigest(), sha256=hashlib.sha256(blob).hexdigest(),
    )


@contextlib.asynccontextmanager
async def _ledger(settings):
    """(chain adapter, stub) of a real Ledger server on port 0."""
    from servers.ledger.main import build

    server, chain = build(settings)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield chain, pb_grpc.LedgerServiceStub(channel)
    finally:
        await server.stop(0, drain=0)


async def _code(url: str, address: str) -> bytes:
    w3 = AsyncWeb3(AsyncHTTPProvider(url))
    try:
        return bytes(await w3.eth.get_code(address))
    finally:
        await w3.provider.disconnect()


async def test_kill_9_of_anvil_right_after_the_acknowledgement_loses_nothing(tmp_path):
    # Prepare: a node of our own; contracts deployed and acknowledged well inside Anvil's 1 s dump window.
    node = start_anvil_node(tmp_path / "chain")
    try:
        async with _ledger(make_ledger_settings(node.url, tmp_path / "ledger")) as (chain, stub):
            acknowledged = await asyncio.gather(*[stub.DeployDatasetContract(_dataset_request()) for _ in range(6)])

            # Execute: kill -9 at once (no final dump), start on the same state file.
            node.stop(signal.SIGKILL)
            node.start()
            missing_after_restart = [a.contract.address for a in acknowledged
                                     if not await _code(node.url, a.contract.address)]

            # Assert: every acknowledged contract reads back, the same, through the same Ledger.
            for done in acknowledged:
                read = await stub.GetDatasetContract(pb.GetDatasetContractRequest(address=done.contract.address))
                assert read == done.contract
            # New writes keep working after the replay (nonces re-synced).
            assert (await stub.DeployDatasetContract(_dataset_request())).contract.address
    finally:
        node.stop()
    # The test is meaningful only if Anvil really lost something; with 6 deploys in ~50 ms it always does.
    assert missing_after_restart, "Anvil kept every contract: the kill did not exercise the journal"
    assert chain.replayed >= len(missing_after_restart)


async def test_a_restarted_ledger_restores_a_wiped_chain_from_its_journal(tmp_path):
    node = start_anvil_node(tmp_path / "chain")
    settings = make_ledger_settings(node.url, tmp_path / "ledger")
    try:
        async with _ledger(settings) as (_chain, stub):
            first = await stub.DeployDatasetContract(_dataset_request())
            second = await stub.DeployDatasetContract(_dataset_request())
        # Execute: the node's state is gone altogether (as if its files were lost), the Ledger restarts.
        node.stop(signal.SIGKILL)
        for path in (tmp_path / "chain" / "anvil").glob("*.json"):
            path.unlink()
        node.start()
        async with _ledger(settings) as (chain, stub):
            info = await stub.GetChainInfo(pb.GetChainInfoRequest())  # connects: replays at start
            assert chain.replayed >= 2
            for done in (first, second):
                assert await _code(node.url, done.contract.address)
                read = await stub.GetDatasetContract(pb.GetDatasetContractRequest(address=done.contract.address))
                assert read == done.contract
        assert info.block_number >= 2
    finally:
        node.stop()


async def test_concurrent_writes_are_all_journaled(tmp_path):
    node = start_anvil_node(tmp_path / "chain")
    try:
        async with _ledger(make_ledger_settings(node.url, tmp_path / "ledger")) as (chain, stub):
            done = await asyncio.gather(*[stub.DeployDatasetContract(_dataset_request()) for _ in range(16)])
            lines = [json.loads(line) for line in chain.journal.path.read_text().splitlines()]
    finally:
        node.stop()
    assert sorted(e["nonce"] for e in lines) == list(range(16))
    assert {e["contract"] for e in lines} == {d.contract.address for d in done}
    assert {e["tx_hash"] for e in lines} == {d.tx_hash for d in done}


def test_appends_waiting_together_share_one_fsync(tmp_path):
    journal = TxJournal(tmp_path / "j.jsonl")

    async def append_16():
        await asyncio.gather(*[journal.append(JournalEntry(nonce=n, tx_hash=f"0x{n:064x}", raw="0x01", block=n))
                               for n in range(16)])

    asyncio.run(append_16())

    assert journal.fsyncs == 1 and len(journal) == 16


async def test_confirmation_depth_holds_the_acknowledgement_until_blocks_follow(tmp_path):
    # Prepare: a Ledger that wants 2 blocks on top (a production setting); Anvil mines only on demand.
    node = start_anvil_node(tmp_path / "chain")
    try:
        settings = make_ledger_settings(node.url, tmp_path / "ledger", confirmation_blocks=2,
                                        dev_chain_journal=False)
        async with _ledger(settings) as (chain, stub):
            deploy = asyncio.ensure_future(stub.DeployDatasetContract(_dataset_request()))

            await asyncio.sleep(1.0)
            waiting = not deploy.done()
            w3 = AsyncWeb3(AsyncHTTPProvider(node.url))
            await w3.provider.make_request("anvil_mine", [2])
            await w3.provider.disconnect()
            done = await asyncio.wait_for(deploy, 10)
    finally:
        node.stop()
    assert waiting, "acknowledged before the confirmations"
    assert done.contract.address and chain.journal is None


def test_a_torn_journal_tail_is_cut_off(tmp_path):
    path = tmp_path / "journal.jsonl"
    good = JournalEntry(nonce=0, tx_hash="0x" + "11" * 32, raw="0x02", block=1, contract=None)
    path.write_text(json.dumps(good.__dict__) + "\n" + '{"nonce": 1, "tx_ha')

    journal = TxJournal(path)

    assert len(journal) == 1 and journal.next_nonce == 1
    assert path.read_text().endswith("\n") and path.read_text().count("\n") == 1


@pytest.mark.parametrize("lines", [0, 3])
def test_journal_remembers_its_contracts_across_opens(tmp_path, lines):
    path = tmp_path / "j.jsonl"

    async def write():
        j = TxJournal(path)
        for n in range(lines):
            await j.append(JournalEntry(nonce=n, tx_hash=f"0x{n:064x}", raw="0x01", block=n + 1,
                                        contract=f"0x{n:040X}"))

    asyncio.run(write())
    reopened = TxJournal(path)

    assert reopened.next_nonce == lines
    assert all(reopened.holds_contract(f"0x{n:040x}") for n in range(lines))


async def test_a_mined_transaction_the_journal_lacks_is_journaled_at_start_and_survives_a_wiped_chain(tmp_path):
    """A Ledger killed between a receipt and its journal append leaves a mined transaction the
    journal does not hold. Nothing acknowledged it then, but a later write may rest on it (a retried
    training result finds its model already verified), so the next Ledger journals it at start. The
    kill is played by a journal append that fails once (the write is then refused, as after a kill)
    and a new Ledger process state (a second server on the same journal)."""
    node = start_anvil_node(tmp_path / "chain")
    settings = make_ledger_settings(node.url, tmp_path / "ledger")
    try:
        async with _ledger(settings) as (chain, stub):
            journaled = await stub.DeployDatasetContract(_dataset_request())
            real_append = chain.journal.append

            async def fail_once(entry):
                chain.journal.append = real_append
                raise OSError("disk went away")

            chain.journal.append = fail_once
            unjournaled = _dataset_request()
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.DeployDatasetContract(unjournaled)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert len(TxJournal(chain.journal.path)) == 1  # only the first deploy is in the journal

        async with _ledger(settings) as (chain, stub):
            await stub.GetChainInfo(pb.GetChainInfoRequest())  # connects: adopts, then replays
            assert chain.adopted == 1
            lines = [json.loads(line) for line in chain.journal.path.read_text().splitlines()]
            assert sorted(e["nonce"] for e in lines) == [0, 1]
            mined = next(e["contract"] for e in lines if e["nonce"] == 1)
            assert await _code(node.url, mined)

        # Execute: the node's state is gone altogether; the next Ledger rebuilds it from the journal.
        node.stop(signal.SIGKILL)
        for path in (tmp_path / "chain" / "anvil").glob("*.json"):
            path.unlink()
        node.start()
        async with _ledger(settings) as (chain, stub):
            await stub.GetChainInfo(pb.GetChainInfoRequest())
            assert await _code(node.url, journaled.contract.address)
            assert await _code(node.url, mined), "the adopted transaction was not sent again"
    finally:
        node.stop()
