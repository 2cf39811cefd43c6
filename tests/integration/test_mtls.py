"""Mutual TLS around Envoy: a forged `x-mlmesh-org` must not work.

On a real Registry serving with TLS settings: only a caller with a certificate from the mesh CA
gets a connection, and a call from Envoy's certificate must name an organization. On the devstack
(`stack`, what `make up` starts): a direct call to the Registry's port with a forged header and no
certificate is refused, while the same call through Envoy works.
"""

from __future__ import annotations

import time
import uuid

import grpc
import httpx
import jwt
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from mlmesh.registry.v1 import registry_service_pb2 as svc
from mlmesh.registry.v1 import registry_service_pb2_grpc as svc_grpc

from servers.common import tls
from servers.common.caller import ORG_HEADER
from servers.common.settings import TlsSettings

FORGED = ((ORG_HEADER, "victim-org"),)


@pytest.fixture(scope="module")
def mesh_certs(tmp_path_factory) -> tls.MeshCerts:
    return tls.ensure_mesh_certs(tmp_path_factory.mktemp("mesh") / "mtls", tls.COMPONENTS)


@pytest.fixture(scope="module")
def foreign_certs(tmp_path_factory) -> tls.MeshCerts:
    """Another CA with the same component names: its certificates must not get in."""
    return tls.ensure_mesh_certs(tmp_path_factory.mktemp("foreign") / "mtls", ["client", "envoy"])


def _credentials(certs: tls.MeshCerts, component: str, *, trust: tls.MeshCerts | None = None):
    files = tls.TlsFiles.read((trust or certs).ca_file, certs.cert_file(component), certs.key_file(component))
    return tls.channel_credentials(files)


@pytest_asyncio.fixture
async def tls_registry(ledger_server, fresh_db_dsn, tmp_path, mesh_certs):
    """Our Registry serving mutual TLS with its mesh certificate (its Ledger is the plaintext test one)."""
    from servers.registry.main import build
    from servers.registry.settings import RegistrySettings

    settings = RegistrySettings(
        port=0, metrics_port=-1, database_url=fresh_db_dsn, data_dir=tmp_path,
        ledger_target=f"127.0.0.1:{ledger_server.port}", trainer_target="127.0.0.1:1",
        tls=TlsSettings(ca_file=mesh_certs.ca_file, cert_file=mesh_certs.cert_file("registry"),
                        key_file=mesh_certs.key_file("registry")),
    )
    server = await build(settings)
    await server.start()
    yield server
    await server.stop(0, drain=0)


async def _list(channel: grpc.aio.Channel, metadata=()) -> svc.ListDatasetsResponse:
    stub = svc_grpc.RegistryServiceStub(channel)
    return await stub.ListDatasets(svc.ListDatasetsRequest(page_size=1), metadata=metadata, timeout=10)


async def test_a_plaintext_call_is_refused(tls_registry):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{tls_registry.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _list(channel, FORGED)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_tls_without_a_client_certificate_is_refused(tls_registry, mesh_certs):
    credentials = grpc.ssl_channel_credentials(root_certificates=mesh_certs.ca_file.read_bytes())
    async with grpc.aio.secure_channel(f"127.0.0.1:{tls_registry.port}", credentials) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _list(channel, FORGED)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_client_certificate_from_another_ca_is_refused(tls_registry, mesh_certs, foreign_certs):
    # The caller trusts the mesh CA (so it accepts the server), but its own certificate is foreign.
    credentials = _credentials(foreign_certs, "client", trust=mesh_certs)
    async with grpc.aio.secure_channel(f"127.0.0.1:{tls_registry.port}", credentials) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _list(channel, FORGED)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_server_with_a_foreign_certificate_is_not_trusted(tls_registry, foreign_certs):
    credentials = _credentials(foreign_certs, "client")  # trusts only the foreign CA
    async with grpc.aio.secure_channel(f"127.0.0.1:{tls_registry.port}", credentials) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _list(channel)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_the_mesh_client_certificate_works(tls_registry, mesh_certs, host):
    async with grpc.aio.secure_channel(f"{host}:{tls_registry.port}", _credentials(mesh_certs, "client")) as channel:
        reply = await _list(channel)
    assert list(reply.datasets) == []


async def test_a_call_from_envoy_without_an_organization_is_unauthenticated(tls_registry, mesh_certs):
    async with grpc.aio.secure_channel(f"127.0.0.1:{tls_registry.port}", _credentials(mesh_certs, "envoy")) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _list(channel)
        reply = await _list(channel, ((ORG_HEADER, "smart-energy-ll"),))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "your token has no org claim" in info.value.details()
    assert list(reply.datasets) == []


async def test_an_empty_organization_is_unauthenticated_from_any_peer(tls_registry, mesh_certs):
    async with grpc.aio.secure_channel(f"127.0.0.1:{tls_registry.port}", _credentials(mesh_certs, "client")) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _list(channel, ((ORG_HEADER, ""),))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_envoys_token_payload_without_an_organization_is_unauthenticated_even_in_plaintext(registry):
    # A plaintext (development) server cannot see the peer, but Envoy's verified-token header says a
    # token came with the call: without its org claim the call is not the server's own.
    stub, _server = registry
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ListDatasets(svc.ListDatasetsRequest(page_size=1),
                                metadata=(("x-mlmesh-jwt-payload", "eyJzdWIiOiJ4In0"),), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "your token has no org claim" in info.value.details()


# -- the devstack: what `make up` gives a user ------------------------------------------------

def test_the_devstack_servers_refuse_a_direct_call_with_a_forged_organization(stack):
    if stack.external:
        pytest.skip("needs the servers' own ports")
    with grpc.insecure_channel(stack.server_target("registry")) as channel, \
            pytest.raises(grpc.RpcError) as info:
        svc_grpc.RegistryServiceStub(channel).ListDatasets(svc.ListDatasetsRequest(page_size=1), metadata=FORGED,
                                                           timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_the_same_call_through_envoy_works_and_the_forged_header_is_ignored(stack):
    with grpc.insecure_channel(stack.envoy) as channel:
        reply = svc_grpc.RegistryServiceStub(channel).ListDatasets(
            svc.ListDatasetsRequest(page_size=1), metadata=(*FORGED, *stack.auth("mtls-org").items()), timeout=30)
    assert list(reply.datasets) == []


def test_every_devstack_server_answers_the_mesh_client_certificate_only(stack):
    if stack.external:
        pytest.skip("needs the servers' own ports")
    for name in ("ledger", "registry", "trainer", "translator", "learner"):
        target = stack.server_target(name)
        with grpc.secure_channel(target, stack.client_credentials()) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, name
        with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as info:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE, name


def test_a_token_without_an_org_claim_is_refused_through_envoy(stack):
    keys = stack.keys()
    now = int(time.time())
    token = jwt.encode({"sub": "no-org", "iss": "mlmesh-local", "aud": "mlmesh", "iat": now, "exp": now + 300,
                        "jti": uuid.uuid4().hex}, keys.private_key, algorithm="RS256", headers={"kid": keys.kid})
    with grpc.insecure_channel(stack.envoy) as channel, pytest.raises(grpc.RpcError) as info:
        svc_grpc.RegistryServiceStub(channel).ListDatasets(
            svc.ListDatasetsRequest(page_size=1), metadata=(("authorization", f"Bearer {token}"),), timeout=30)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "no org claim" in info.value.details()
    rest = httpx.get(f"{stack.base_url}/v1/datasets", headers={"authorization": f"Bearer {token}"}, timeout=30)
    assert rest.status_code == 401
    assert rest.json()["code"] == 16 and "no org claim" in rest.json()["message"]


async def _argo_step(registry_port: int, work, tls_env: dict[str, str]) -> tuple[int, str]:
    """`python -m servers.trainer.argo_steps pre-train` as the WorkflowTemplate runs it, with `tls_env`
    (the template's MLMESH_TLS_*) in place of any the test process has."""
    import asyncio
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLMESH_TLS_")} | tls_env
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "servers.trainer.argo_steps", "pre-train", "--model-id=no-such-model", "--job-id=j1",
        f"--registry=127.0.0.1:{registry_port}", f"--work={work}", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    return proc.returncode, err.decode()


async def test_argo_steps_dial_the_registry_with_the_mounted_mesh_certificate(tls_registry, mesh_certs, tmp_path):
    """The training workflow's steps reach a mutual-TLS Registry with the Trainer's certificate from
    MLMESH_TLS_* (a malformed model id, so the Registry's own INVALID_ARGUMENT proves the call got in), and
    are refused at the handshake without one (after pre-train's 10 s grace for an unavailable Registry)."""
    import asyncio

    trainer = {"MLMESH_TLS_CA_FILE": str(mesh_certs.ca_file), "MLMESH_TLS_CERT_FILE": str(mesh_certs.cert_file("trainer")),
               "MLMESH_TLS_KEY_FILE": str(mesh_certs.key_file("trainer"))}
    (with_cert, without, partial) = await asyncio.gather(
        _argo_step(tls_registry.port, tmp_path / "a", trainer),
        _argo_step(tls_registry.port, tmp_path / "b", {}),
        _argo_step(tls_registry.port, tmp_path / "c", {"MLMESH_TLS_CA_FILE": str(mesh_certs.ca_file)}))
    assert with_cert[0] == 1 and "model_id 'no-such-model' is not a UUID" in with_cert[1], with_cert
    assert without[0] == 1 and "no-such-model" not in without[1] and "unavailable" in without[1].lower(), without
    assert partial[0] == 1 and "MLMESH_TLS_" in partial[1] and "cert_file" in partial[1], partial
    assert "Traceback" not in with_cert[1] + without[1] + partial[1]
