"""The Registry when its dependencies fail, and its graceful shutdown."""

from __future__ import annotations

import asyncio
import os

import grpc
import pytest
from google.api import httpbody_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from mlmesh.registry.v1 import registry_service_pb2 as svc
from mlmesh.registry.v1 import registry_service_pb2_grpc as svc_grpc

from servers.devstack import procs
from servers.registry.main import build
from servers.registry.settings import RegistrySettings


def _upload(data: bytes, *, pause: float = 0.0, name: str = "x"):
    async def gen():
        yield svc.UploadDatasetRequest(organization_id="org", display_name=name)
        for i in range(0, len(data), 64 * 1024):
            yield svc.UploadDatasetRequest(chunk=httpbody_pb2.HttpBody(data=data[i:i + 64 * 1024]))
            if pause:
                await asyncio.sleep(pause)

    return gen()


async def test_ledger_down_means_unavailable_and_nothing_stored(fresh_db_dsn, tmp_path):
    dead = f"127.0.0.1:{procs.free_port()}"  # nothing listens here
    settings = RegistrySettings(port=0, metrics_port=-1, database_url=fresh_db_dsn, data_dir=tmp_path,
                                ledger_target=dead)
    server = await build(settings)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = svc_grpc.RegistryServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.UploadDataset(_upload(os.urandom(200_000)))
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "ledger" in info.value.details()
            assert (await stub.ListDatasets(svc.ListDatasetsRequest())).datasets == []
        assert not [p for p in (tmp_path / "objects").rglob("*") if p.is_file() and p.name != ".lock"]
    finally:
        await server.stop(0, drain=0)


async def test_database_down_at_start_is_a_clear_error(tmp_path):
    from servers.common import errors

    dsn = f"postgresql://postgres@127.0.0.1:{procs.free_port()}/mlmesh"
    settings = RegistrySettings(port=0, metrics_port=-1, database_url=dsn, data_dir=tmp_path)
    with pytest.raises(errors.Unavailable) as info:
        await build(settings)
    assert "127.0.0.1" in info.value.message


async def test_graceful_stop_drains_in_flight_uploads(ledger_server, fresh_db_dsn, tmp_path):
    settings = RegistrySettings(port=0, metrics_port=-1, database_url=fresh_db_dsn, data_dir=tmp_path,
                                ledger_target=f"127.0.0.1:{ledger_server.port}")
    server = await build(settings)
    await server.start()
    target = f"127.0.0.1:{server.port}"
    async with grpc.aio.insecure_channel(target) as channel:
        stub = svc_grpc.RegistryServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        data = os.urandom(20 * 64 * 1024)
        in_flight = asyncio.ensure_future(stub.UploadDataset(_upload(data, pause=0.05, name="in flight")))
        await asyncio.sleep(0.3)
        stopping = asyncio.ensure_future(server.stop(grace=10, drain=0.5))
        await asyncio.sleep(0.1)
        reply = await health.Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
        dataset = await in_flight  # finishes within drain + grace
        assert dataset.size_bytes == len(data)
        await stopping
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await svc_grpc.RegistryServiceStub(channel).ListDatasets(svc.ListDatasetsRequest(), timeout=2)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
