"""Our real Registry on port 0 with embedded PostgreSQL, a filesystem store, the real
Ledger and Anvil: the domain rules seen from a native gRPC client."""

from __future__ import annotations

import asyncio
import hashlib
import os
import urllib.request

import grpc
import pytest
from google.api import httpbody_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from mlmesh.registry.v1 import registry_service_pb2 as svc

ORG = "smart-agri-ll"


def _messages(data: bytes, chunk: int = 100_000, **meta):
    meta = {"organization_id": ORG, "display_name": "field sensors", **meta}

    async def gen():
        yield svc.UploadDatasetRequest(**meta)
        for i in range(0, len(data), chunk):
            yield svc.UploadDatasetRequest(chunk=httpbody_pb2.HttpBody(data=data[i:i + chunk]))

    return gen()


async def _download(stub, dataset_id: str, offset: int = 0) -> bytes:
    parts = [m.data async for m in stub.DownloadDataset(svc.DownloadDatasetRequest(dataset_id=dataset_id,
                                                                                   offset=offset))]
    return b"".join(parts)


async def test_upload_download_provenance(registry_stub):
    data = os.urandom(1_234_567)
    ds = await registry_stub.UploadDataset(_messages(data, samples_dimension="(1,)"))
    assert ds.md5 == hashlib.md5(data).hexdigest() and ds.sha256 == hashlib.sha256(data).hexdigest()
    assert ds.size_bytes == len(data) and ds.contract_address.startswith("0x")
    assert await _download(registry_stub, ds.dataset_id) == data
    assert await _download(registry_stub, ds.dataset_id, offset=len(data) - 10) == data[-10:]
    assert await _download(registry_stub, ds.dataset_id, offset=len(data)) == b""
    prov = await registry_stub.GetDatasetProvenance(svc.GetDatasetProvenanceRequest(dataset_id=ds.dataset_id))
    assert prov.consistent and prov.on_chain.sha256 == ds.sha256 and prov.on_chain.size_bytes == len(data)


async def test_concurrent_uploads_each_get_their_own_contract(registry_stub):
    blobs = [os.urandom(50_000 + i) for i in range(8)]
    results = await asyncio.gather(*(registry_stub.UploadDataset(_messages(b)) for b in blobs))
    assert len({r.contract_address for r in results}) == 8
    for blob, ds in zip(blobs, results):
        assert await _download(registry_stub, ds.dataset_id) == blob


async def test_errors_carry_error_info_and_store_nothing(registry_stub, registry_server):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry_stub.UploadDataset(_messages(b"abc", expected_sha256="0" * 64))
    err = info.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(err)
    detail = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(detail)
    assert (detail.reason, detail.domain) == ("EXPECTED_HASH_MISMATCH", "registry.mlmesh")
    listed = await registry_stub.ListDatasets(svc.ListDatasetsRequest(organization_id=ORG))
    assert listed.datasets == []
    objects = registry_server.settings.storage.root
    assert not [p for p in objects.rglob("*") if p.is_file()]


async def test_metadata_after_first_message_is_rejected(registry_stub):
    async def gen():
        yield svc.UploadDatasetRequest(organization_id=ORG, display_name="x")
        yield svc.UploadDatasetRequest(display_name="again", chunk=httpbody_pb2.HttpBody(data=b"x"))

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry_stub.UploadDataset(gen())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_offset_past_end_and_unknown_ids(registry_stub):
    ds = await registry_stub.UploadDataset(_messages(b"0123456789"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _download(registry_stub, ds.dataset_id, offset=11)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry_stub.GetDataset(svc.GetDatasetRequest(dataset_id="5d066d58-06de-47ab-a2f6-c8f413e21947"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry_stub.GetDatasetProvenance(svc.GetDatasetProvenanceRequest(dataset_id=""))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_cancelled_upload_leaves_nothing(registry_stub, registry_server):
    started = asyncio.Event()

    async def endless():
        yield svc.UploadDatasetRequest(organization_id=ORG, display_name="cancelled")
        while True:
            yield svc.UploadDatasetRequest(chunk=httpbody_pb2.HttpBody(data=os.urandom(64 * 1024)))
            started.set()
            await asyncio.sleep(0.01)

    call = registry_stub.UploadDataset(endless())
    await started.wait()
    await asyncio.sleep(0.3)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.sleep(0.5)
    listed = await registry_stub.ListDatasets(svc.ListDatasetsRequest(organization_id=ORG))
    assert [d for d in listed.datasets if d.display_name == "cancelled"] == []
    assert not [p for p in registry_server.settings.storage.root.rglob("*") if p.is_file()]


async def test_request_id_metrics_and_health(registry_stub, registry_server):
    call = registry_stub.ListDatasets(svc.ListDatasetsRequest(), metadata=(("x-request-id", "rid-42"),))
    await call
    assert ("x-request-id", "rid-42") in tuple(await call.trailing_metadata())
    text = urllib.request.urlopen(f"http://127.0.0.1:{registry_server.metrics_port}/metrics").read().decode()
    assert any(line.startswith("mlmesh_rpc_handled_total{") and 'grpc_method="ListDatasets"' in line
               and 'grpc_code="OK"' in line for line in text.splitlines())
    assert "mlmesh_rpc_duration_seconds_bucket" in text
    async with grpc.aio.insecure_channel(f"127.0.0.1:{registry_server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service="mlmesh.registry.v1.RegistryService"))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_stream_bytes_are_counted(registry_stub, registry_server):
    data = os.urandom(300_000)
    await registry_stub.UploadDataset(_messages(data))
    text = urllib.request.urlopen(f"http://127.0.0.1:{registry_server.metrics_port}/metrics").read().decode()
    line = next(row for row in text.splitlines()
                if row.startswith("mlmesh_rpc_stream_bytes_total{") and 'direction="in"' in row
                and "UploadDataset" in row)
    assert float(line.rsplit(" ", 1)[1]) >= len(data)
