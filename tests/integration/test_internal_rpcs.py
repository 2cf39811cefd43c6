"""Internal RPCs (servers/common/internal.py) on our real servers: never for a user, and under
mutual TLS only from their expected mesh callers.

* Plaintext servers (how the other integration tests run them): a call that carries a user's
  organization (`x-mlmesh-org`) or Envoy's verified token payload is PERMISSION_DENIED "internal
  RPC"; the same call without them reaches the handler.
* Mutual TLS (the default of `make up`): the Registry, the Ledger and the Trainer serving with their
  mesh certificates, called with each component's certificate: only the Trainer reports training,
  only the Learner, the Optimizer and the Federation server save versions, only the Registry schedules training, only the Registry and the
  Translator reach the Ledger.
* The devstack: the mesh's "client" certificate (tests and tools) does not reach the Ledger.
"""

from __future__ import annotations

import grpc
import pytest
import pytest_asyncio
from google.api import httpbody_pb2
from grpc_status import rpc_status
from mlmesh.ledger.v1 import ledger_service_pb2 as lpb
from mlmesh.ledger.v1 import ledger_service_pb2_grpc as lgrpc
from mlmesh.registry.v1 import model_pb2
from mlmesh.registry.v1 import registry_service_pb2 as svc
from mlmesh.registry.v1 import registry_service_pb2_grpc as svc_grpc
from mlmesh.trainer.v1 import trainer_service_pb2 as tpb
from mlmesh.trainer.v1 import trainer_service_pb2_grpc as tgrpc

from servers.common import tls
from servers.common.caller import JWT_PAYLOAD_HEADER, ORG_HEADER
from servers.common.settings import TlsSettings
from tests.fixtures.chain import make_ledger_settings, running_ledger
from tests.fixtures.trainer import TrainerHandle, trainer_settings

UNKNOWN_MODEL = "5d066d58-06de-47ab-a2f6-c8f413e21947"
AS_USER = ((ORG_HEADER, "smart-energy-ll"),)
VIA_ENVOY = ((JWT_PAYLOAD_HEADER, "eyJzdWIiOiJ4In0"),)


def _reason(err: grpc.aio.AioRpcError | grpc.RpcError) -> str:
    status = rpc_status.from_call(err)
    from google.rpc import error_details_pb2

    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return ""


async def _refusal(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def _assert_internal_refusal(err: grpc.aio.AioRpcError) -> None:
    assert (err.code(), _reason(err)) == (grpc.StatusCode.PERMISSION_DENIED, "INTERNAL_RPC"), err.details()
    assert "internal RPC" in err.details()


def _report(model_id: str = UNKNOWN_MODEL) -> svc.ReportTrainingStatusRequest:
    return svc.ReportTrainingStatusRequest(model_id=model_id, training_job_id="job-1",
                                           state=model_pb2.Model.STATE_TRAINING)


def _version():
    async def gen():
        yield svc.CreateModelVersionRequest(
            organization_id="smart-energy-ll", developer_id="learner:L1", display_name="v", dataset_id=UNKNOWN_MODEL,
            version=1, framework="sklearn", input_signature="{}", learner_id="L1", learning_record=b"{}",
            chunk=httpbody_pb2.HttpBody(data=b"learned"))
    return gen()


def _result():
    async def gen():
        yield svc.SubmitTrainingResultRequest(model_id=UNKNOWN_MODEL, training_job_id="job-1", framework="sklearn",
                                              chunk=httpbody_pb2.HttpBody(data=b"trained"))
    return gen()


# -- plaintext: the headers --------------------------------------------------------------------------

@pytest.mark.parametrize("metadata", [AS_USER, VIA_ENVOY], ids=["org-header", "envoy-payload"])
async def test_a_call_for_a_user_is_refused_on_every_internal_registry_rpc(registry, metadata):
    stub, _server = registry
    for call in (stub.ReportTrainingStatus(_report(), metadata=metadata),
                 stub.SubmitTrainingResult(_result(), metadata=metadata),
                 stub.CreateModelVersion(_version(), metadata=metadata)):
        _assert_internal_refusal(await _refusal(call))
    # ... while the Registry's own call reaches the handler (an unknown model: NOT_FOUND)
    err = await _refusal(stub.ReportTrainingStatus(_report()))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    # and a public RPC for a user is not affected
    assert list((await stub.ListDatasets(svc.ListDatasetsRequest(), metadata=AS_USER)).datasets) == []


async def test_a_call_for_a_user_is_refused_by_the_ledger(ledger_stub):
    _assert_internal_refusal(await _refusal(ledger_stub.GetChainInfo(lpb.GetChainInfoRequest(), metadata=AS_USER)))
    assert (await ledger_stub.GetChainInfo(lpb.GetChainInfoRequest())).chain_id > 0


# -- mutual TLS: the peer's certificate ----------------------------------------------------------------

@pytest.fixture(scope="module")
def mesh_certs(tmp_path_factory) -> tls.MeshCerts:
    return tls.ensure_mesh_certs(tmp_path_factory.mktemp("mesh") / "mtls", tls.COMPONENTS)


def _tls(certs: tls.MeshCerts, component: str) -> TlsSettings:
    return TlsSettings(ca_file=certs.ca_file, cert_file=certs.cert_file(component),
                       key_file=certs.key_file(component))


def _channel(certs: tls.MeshCerts, port: int, component: str) -> grpc.aio.Channel:
    files = _tls(certs, component).files()
    return grpc.aio.secure_channel(f"127.0.0.1:{port}", tls.channel_credentials(files))


@pytest_asyncio.fixture
async def tls_registry(ledger_server, fresh_db_dsn, tmp_path, mesh_certs):
    from servers.registry.main import build
    from servers.registry.settings import RegistrySettings

    settings = RegistrySettings(port=0, metrics_port=-1, database_url=fresh_db_dsn, data_dir=tmp_path,
                                ledger_target=f"127.0.0.1:{ledger_server.port}", trainer_target="127.0.0.1:1",
                                tls=_tls(mesh_certs, "registry"))
    server = await build(settings)
    await server.start()
    yield server
    await server.stop(0, drain=0)


OTHERS = ("client", "envoy", "ledger", "translator", "mqtt-bridge")


@pytest.mark.parametrize("component", ["trainer", "learner", "optimizer", "federation", *OTHERS])
async def test_only_the_trainer_reports_training_and_only_the_learner_saves_versions(tls_registry, mesh_certs,
                                                                                    component):
    # (and the Optimizer, which stores its trained policies as versions, and the Federation server, its
    # final global models)
    async with _channel(mesh_certs, tls_registry.port, component) as channel:
        stub = svc_grpc.RegistryServiceStub(channel)
        metadata = AS_USER if component == "envoy" else None  # Envoy always names the token's organization
        report = await _refusal(stub.ReportTrainingStatus(_report(), metadata=metadata))
        result = await _refusal(stub.SubmitTrainingResult(_result(), metadata=metadata))
        version = await _refusal(stub.CreateModelVersion(_version(), metadata=metadata))
        if component in ("trainer", "learner", "optimizer", "federation"):  # its own calls, but for a user: refused all the same
            _assert_internal_refusal(await _refusal(stub.ReportTrainingStatus(_report(), metadata=AS_USER)))
    for err, allowed in ((report, "trainer"), (result, "trainer"), (version, "federation, learner, optimizer")):
        if component in allowed.split(", "):
            # past the check: the handler answers (the model and dataset do not exist)
            assert err.code() == grpc.StatusCode.NOT_FOUND and _reason(err) != "INTERNAL_RPC", err.details()
        else:
            _assert_internal_refusal(err)
            if component != "envoy":
                assert f"only {allowed} may call, not {component}" in err.details()


async def test_only_the_registry_and_the_translator_reach_the_ledger(anvil_url, tmp_path, mesh_certs):
    settings = make_ledger_settings(anvil_url, tmp_path, tls=_tls(mesh_certs, "ledger"))
    async with running_ledger(settings) as (server, _plaintext_stub):
        for component in ("registry", "translator", "trainer", "learner", *OTHERS):
            async with _channel(mesh_certs, server.port, component) as channel:
                stub = lgrpc.LedgerServiceStub(channel)
                if component in ("registry", "translator"):
                    assert (await stub.GetChainInfo(lpb.GetChainInfoRequest())).chain_id > 0
                    _assert_internal_refusal(await _refusal(stub.GetChainInfo(lpb.GetChainInfoRequest(),
                                                                              metadata=AS_USER)))
                else:
                    err = await _refusal(stub.GetChainInfo(lpb.GetChainInfoRequest(), metadata=None))
                    _assert_internal_refusal(err)
                    assert "only registry, translator may call" in err.details()


async def test_only_the_registry_schedules_training(tls_registry, fresh_db_dsn, tmp_path, mesh_certs, monkeypatch):
    # The Trainer's Registry client dials with the process's mesh identity (MLMESH_TLS_*), as `make up` sets it.
    identity = _tls(mesh_certs, "trainer")
    for name in ("ca_file", "cert_file", "key_file"):
        monkeypatch.setenv(f"MLMESH_TLS_{name.upper()}", str(getattr(identity, name)))
    settings = trainer_settings(fresh_db_dsn, tmp_path / "trainer", tls_registry.port, tls=identity)
    handle = await TrainerHandle(settings).start()
    try:
        for component in ("registry", "trainer", "learner", *OTHERS):
            async with _channel(mesh_certs, handle.server.port, component) as channel:
                stub = tgrpc.TrainerServiceStub(channel)
                err = await _refusal(stub.SubmitTrainingJob(tpb.SubmitTrainingJobRequest(model_id=UNKNOWN_MODEL)))
                if component == "registry":
                    # past the check: the Trainer asks the (mutual TLS) Registry, which has no such model
                    assert err.code() == grpc.StatusCode.NOT_FOUND and _reason(err) != "INTERNAL_RPC"
                    _assert_internal_refusal(await _refusal(stub.SubmitTrainingJob(
                        tpb.SubmitTrainingJobRequest(model_id=UNKNOWN_MODEL), metadata=AS_USER)))
                else:
                    _assert_internal_refusal(err)
                # the public RPCs stay open to any mesh certificate (Envoy's calls name a user)
                jobs = await stub.ListTrainingJobs(tpb.ListTrainingJobsRequest(), metadata=AS_USER)
                assert list(jobs.training_jobs) == []
    finally:
        await handle.stop()


# -- the devstack ------------------------------------------------------------------------------------

def test_the_devstack_ledger_refuses_the_client_certificate_and_serves_the_registrys(stack):
    if stack.external:
        pytest.skip("needs the servers' own ports")
    target = stack.server_target("ledger")
    with grpc.secure_channel(target, stack.client_credentials()) as channel, pytest.raises(grpc.RpcError) as info:
        lgrpc.LedgerServiceStub(channel).GetChainInfo(lpb.GetChainInfoRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED and "internal RPC" in info.value.details()
    with grpc.secure_channel(target, stack.client_credentials("registry")) as channel:
        assert lgrpc.LedgerServiceStub(channel).GetChainInfo(lpb.GetChainInfoRequest(), timeout=10).chain_id > 0
