"""A server whose only mutual-TLS identity is its own `MLMESH_<NAME>_TLS__*` dials its peers with
it, not with the mesh-wide `MLMESH_TLS_*` (docs/security.md, Configuration).

Real servers on port 0, every one serving mutual TLS with its mesh certificate: a Ledger, a
Registry configured through MLMESH_REGISTRY_TLS__* only, a Trainer through MLMESH_TRAINER_TLS__*
only, with no MLMESH_TLS_* in the environment. Uploading a dataset makes the Registry deploy its
contract on the Ledger; submitting a training job for an unknown model makes the Trainer ask the
Registry. A peer client dialing in plaintext would fail both at the handshake (UNAVAILABLE).
"""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.api import httpbody_pb2
from mlmesh.registry.v1 import registry_service_pb2 as svc
from mlmesh.registry.v1 import registry_service_pb2_grpc as svc_grpc
from mlmesh.trainer.v1 import trainer_service_pb2 as trainer_pb
from mlmesh.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc

from servers.common import tls
from servers.common.caller import ORG_HEADER
from servers.common.settings import TlsSettings
from tests.fixtures.chain import make_ledger_settings
from tests.fixtures.trainer import trainer_settings

ORG = "per-server-tls-org"


def _own_tls_env(monkeypatch, certs: tls.MeshCerts, name: str) -> None:
    prefix = f"MLMESH_{name.upper()}_TLS__"
    monkeypatch.setenv(f"{prefix}CA_FILE", str(certs.ca_file))
    monkeypatch.setenv(f"{prefix}CERT_FILE", str(certs.cert_file(name)))
    monkeypatch.setenv(f"{prefix}KEY_FILE", str(certs.key_file(name)))


def _channel(certs: tls.MeshCerts, port: int, component: str) -> grpc.aio.Channel:
    files = tls.TlsFiles.read(certs.ca_file, certs.cert_file(component), certs.key_file(component))
    return grpc.aio.secure_channel(f"127.0.0.1:{port}", tls.channel_credentials(files))


async def test_servers_configured_only_by_their_own_tls_settings_reach_their_peers(
        monkeypatch, anvil_url, fresh_db_dsn, tmp_path):
    # Prepare: the mesh certificates; only per-server TLS settings in the environment.
    from servers.ledger.main import build as build_ledger
    from servers.registry.main import build as build_registry
    from servers.registry.settings import RegistrySettings
    from servers.trainer.main import build as build_trainer

    certs = tls.ensure_mesh_certs(tmp_path / "mtls", ["ledger", "registry", "trainer", "client"])
    for field in ("CA_FILE", "CERT_FILE", "KEY_FILE"):
        monkeypatch.delenv(f"MLMESH_TLS_{field}", raising=False)
    _own_tls_env(monkeypatch, certs, "registry")
    _own_tls_env(monkeypatch, certs, "trainer")
    assert not TlsSettings().enabled  # the mesh-wide identity is unset

    ledger, _chain = build_ledger(make_ledger_settings(
        anvil_url, tmp_path / "ledger",
        tls=TlsSettings(ca_file=certs.ca_file, cert_file=certs.cert_file("ledger"),
                        key_file=certs.key_file("ledger"))))
    await ledger.start()
    registry_settings = RegistrySettings(port=0, metrics_port=-1, database_url=fresh_db_dsn,
                                         data_dir=tmp_path / "registry", drain_seconds=0,
                                         ledger_target=f"127.0.0.1:{ledger.port}", trainer_target="127.0.0.1:1")
    assert registry_settings.tls.cert_file == certs.cert_file("registry")
    registry = await build_registry(registry_settings)
    await registry.start()
    trainer_config = trainer_settings(fresh_db_dsn, tmp_path / "trainer", registry.port)
    assert trainer_config.tls.cert_file == certs.cert_file("trainer")
    trainer, _core = await build_trainer(trainer_config)
    await trainer.start()
    try:
        # SubmitTrainingJob is internal, the Registry's: dial the Trainer with its certificate.
        async with _channel(certs, registry.port, "client") as reg_channel, \
                _channel(certs, trainer.port, "registry") as trainer_channel:
            # Execute: Registry -> Ledger (the dataset's contract) and Trainer -> Registry (the model).
            async def upload():
                yield svc.UploadDatasetRequest(organization_id=ORG, display_name="meters",
                                               chunk=httpbody_pb2.HttpBody(data=b"p0,label\n1,2\n"))
            dataset = await svc_grpc.RegistryServiceStub(reg_channel).UploadDataset(
                upload(), metadata=((ORG_HEADER, ORG),), timeout=60)
            stored = await svc_grpc.RegistryServiceStub(reg_channel).GetDataset(
                svc.GetDatasetRequest(dataset_id=dataset.dataset_id), metadata=((ORG_HEADER, ORG),), timeout=30)
            unknown = str(uuid.uuid4())
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await trainer_grpc.TrainerServiceStub(trainer_channel).SubmitTrainingJob(
                    trainer_pb.SubmitTrainingJobRequest(model_id=unknown), timeout=60)
    finally:
        await trainer.stop(0, drain=0)
        await registry.stop(0, drain=0)
        await ledger.stop(0, drain=0)

    # Assert: the contract is on the mTLS Ledger; the Registry itself answered the Trainer.
    assert stored.contract_address.startswith("0x") and len(stored.contract_address) == 42
    assert info.value.code() == grpc.StatusCode.NOT_FOUND, info.value.details()
    assert unknown in info.value.details()
