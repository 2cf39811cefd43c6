"""The last step of a registration, whose outcome a client or the Registry may never hear.

The 52-kill chaos run (seed 16) found a dataset that no client had been told about, visible but
with its bytes gone. Two ways lead there, and both are forced here against the real Registry, its
real PostgreSQL, filesystem store, Ledger and Anvil:

* the client hangs up after its last byte, while the row is being committed: the RPC's task is
  cancelled between the commit and the cleanup of the "failure";
* PostgreSQL commits the INSERT but the connection drops before the Registry hears it: the write
  looks failed although the row is there.

The second cannot be produced on demand with a real database (a kill lands at a random moment), so
the repository's insert is wrapped: it runs the real INSERT, then raises the connection error asyncpg
raises when the server goes away. Everything else is real.
"""

from __future__ import annotations

import asyncio
import hashlib
import os

import asyncpg
import grpc
import pytest
from google.api import httpbody_pb2
from mlmesh.registry.v1 import registry_service_pb2 as svc

from servers.registry.adapters.datasets_db import DatasetRepository

ORG = "smart-energy-lc"
METADATA = (("x-mlmesh-org", ORG),)


def _upload(name: str, data: bytes):
    async def gen():
        yield svc.UploadDatasetRequest(organization_id=ORG, display_name=name)
        yield svc.UploadDatasetRequest(chunk=httpbody_pb2.HttpBody(data=data))

    return gen()


async def _find(stub, name: str):
    page = await stub.ListDatasets(svc.ListDatasetsRequest(organization_id=ORG, page_size=100), metadata=METADATA)
    return [d for d in page.datasets if d.display_name == name]


async def _downloaded(stub, dataset_id: str) -> bytes:
    out = bytearray()
    async for chunk in stub.DownloadDataset(svc.DownloadDatasetRequest(dataset_id=dataset_id), metadata=METADATA):
        out += chunk.data
    return bytes(out)


async def test_a_client_hanging_up_during_the_commit_leaves_the_dataset_whole(registry, monkeypatch):
    stub, _server = registry
    real_insert = DatasetRepository.insert
    committed = asyncio.Event()

    async def slow_after_commit(self, record):
        await real_insert(self, record)
        committed.set()
        await asyncio.sleep(0.5)  # the window in which the client's cancellation arrives

    monkeypatch.setattr(DatasetRepository, "insert", slow_after_commit)
    data = os.urandom(50_000)
    call = stub.UploadDataset(_upload("hung-up", data), metadata=METADATA)
    await asyncio.wait_for(committed.wait(), 30)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.sleep(1.0)  # the registration finishes on its own

    found = await _find(stub, "hung-up")
    assert len(found) == 1
    assert hashlib.sha256(await _downloaded(stub, found[0].dataset_id)).hexdigest() == hashlib.sha256(data).hexdigest()
    provenance = await stub.GetDatasetProvenance(svc.GetDatasetProvenanceRequest(dataset_id=found[0].dataset_id),
                                                 metadata=METADATA)
    assert provenance.consistent, provenance


async def test_a_commit_whose_acknowledgement_is_lost_counts_as_done(registry, monkeypatch):
    stub, _server = registry
    real_insert = DatasetRepository.insert

    async def commit_then_lose_the_answer(self, record):
        await real_insert(self, record)
        async with self.db.connection("storing the dataset"):  # as the real repository wraps it
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")

    monkeypatch.setattr(DatasetRepository, "insert", commit_then_lose_the_answer)
    data = os.urandom(40_000)
    answer = await stub.UploadDataset(_upload("lost-ack", data), metadata=METADATA)

    assert answer.sha256 == hashlib.sha256(data).hexdigest()
    assert await _downloaded(stub, answer.dataset_id) == data


async def test_an_insert_that_did_not_commit_leaves_nothing(registry, monkeypatch, tmp_path):
    stub, _server = registry

    async def refuse(self, record):
        async with self.db.connection("storing the dataset"):
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")

    monkeypatch.setattr(DatasetRepository, "insert", refuse)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.UploadDataset(_upload("never-stored", os.urandom(10_000)), metadata=METADATA)

    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert await _find(stub, "never-stored") == []
    assert list((tmp_path / "objects" / "datasets").glob("*")) == []  # the bytes were removed too
