"""A dataset whose anchor or bytes are missing: the Registry says exactly what is missing, on
download, in provenance, and in its check at start (log line, Prometheus gauge).

Real Registry, real Ledger, real Anvil, real PostgreSQL. To lose an anchor for real, the Ledger
runs without its journal (MLMESH_LEDGER_DEV_CHAIN_JOURNAL=false) and the chain's state files are
deleted under a killed Anvil: what a chain restored from an old backup looks like."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import urllib.request

import grpc
import pytest
from google.api import httpbody_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from mlmesh.registry.v1 import registry_service_pb2 as svc
from mlmesh.registry.v1 import registry_service_pb2_grpc as svc_grpc

from tests.fixtures.chain import make_ledger_settings, start_anvil_node

ORG = "smart-agri-ll"


def _upload(data: bytes):
    async def gen():
        yield svc.UploadDatasetRequest(organization_id=ORG, display_name="recovery")
        yield svc.UploadDatasetRequest(chunk=httpbody_pb2.HttpBody(data=data))

    return gen()


async def _registry(dsn: str, data_dir, ledger_port: int):
    from servers.registry.main import build
    from servers.registry.settings import RegistrySettings

    settings = RegistrySettings(port=0, metrics_port=0, database_url=dsn, data_dir=data_dir,
                                ledger_target=f"127.0.0.1:{ledger_port}")
    server = await build(settings)
    await server.start()
    return server


def _reason(err: grpc.aio.AioRpcError) -> str:
    info = error_details_pb2.ErrorInfo()
    assert rpc_status.from_call(err).details[0].Unpack(info)
    return info.reason


async def test_missing_anchor_and_bytes_are_data_loss_reported_at_start(tmp_path, fresh_db_dsn, caplog):
    from servers.ledger.main import build as build_ledger

    node = start_anvil_node(tmp_path / "chain")
    ledger, _chain = build_ledger(make_ledger_settings(node.url, tmp_path / "ledger", dev_chain_journal=False))
    await ledger.start()
    registry = await _registry(fresh_db_dsn, tmp_path / "registry", ledger.port)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{registry.port}") as channel:
            stub = svc_grpc.RegistryServiceStub(channel)
            # Prepare: two acknowledged datasets; the bytes of one are deleted behind the Registry's back,
            # then the chain loses everything (kill -9 + state deleted). (No upload after that: the signer
            # would reuse nonce 0, so a new contract would land at the first one's address.)
            orphaned = await stub.UploadDataset(_upload(os.urandom(20_000)))
            unbacked = await stub.UploadDataset(_upload(os.urandom(30_000)))
            (tmp_path / "registry" / "objects" / "datasets" / unbacked.dataset_id).unlink()
            node.stop(signal.SIGKILL)
            for path in (tmp_path / "chain" / "anvil").glob("*.json"):
                path.unlink()
            node.start()

            # Execute + Assert: the download is DATA_LOSS saying the anchor is missing, never NOT_FOUND.
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for _ in stub.DownloadDataset(svc.DownloadDatasetRequest(dataset_id=orphaned.dataset_id)):
                    pass
            assert info.value.code() == grpc.StatusCode.DATA_LOSS
            assert _reason(info.value) == "ANCHOR_MISSING"
            assert "exists, but its anchor is missing" in info.value.details()
            assert orphaned.contract_address in info.value.details()
            # Provenance answers, and shows exactly what is missing.
            prov = await stub.GetDatasetProvenance(svc.GetDatasetProvenanceRequest(dataset_id=orphaned.dataset_id))
            failed = {c.name: c.detail for c in prov.checks if not c.ok}
            assert not prov.consistent and list(failed) == ["ledger contract present on chain"]
            assert "anchor is missing" in failed["ledger contract present on chain"]
            assert prov.stored_sha256 == orphaned.sha256 and not prov.HasField("on_chain")
            prov = await stub.GetDatasetProvenance(svc.GetDatasetProvenanceRequest(dataset_id=unbacked.dataset_id))
            assert not prov.consistent
            assert {c.name for c in prov.checks if not c.ok} >= {"stored bytes present",
                                                                 "ledger contract present on chain"}
    finally:
        await registry.stop(0, drain=0)

    # Execute: the Registry restarts; its check at start finds both.
    caplog.set_level(logging.INFO, logger="servers.common.recovery")
    registry = await _registry(fresh_db_dsn, tmp_path / "registry", ledger.port)
    try:
        await asyncio.wait_for(registry.recovery, 60)
        report = registry.recovery.result_holder["report"]
        with urllib.request.urlopen(f"http://127.0.0.1:{registry.metrics_port}/metrics") as r:
            metrics = r.read().decode()
    finally:
        await registry.stop(0, drain=0)
        await ledger.stop(0, drain=0)
        node.stop()
    found = {(i.resource_id, i.missing) for i in report.inconsistencies}
    assert found == {(orphaned.dataset_id, "anchor"), (unbacked.dataset_id, "anchor"), (unbacked.dataset_id, "bytes")}
    assert report.checked["dataset"] == 2
    assert 'mlmesh_recovery_inconsistencies{missing="anchor",resource="dataset"} 2.0' in metrics
    assert 'mlmesh_recovery_inconsistencies{missing="bytes",resource="dataset"} 1.0' in metrics
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(orphaned.dataset_id in line and "anchor missing" in line for line in logged), logged
