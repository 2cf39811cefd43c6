"""The SDK covers every public RPC: walk the descriptors of every service in gen/ and fail on an RPC
a user can reach through the front door that no method of `mlmesh.Client` names.

Public = a method with a google.api.http binding whose service the front door does not keep
internal, or any method of a service the route table routes natively (the Open Inference Protocol),
except the front door's own health and reflection. A new server's RPCs count as soon as their
protos carry http bindings, before anyone adds its route row.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import mlmesh.aio
from google.api import annotations_pb2

import mlmesh
from mlmesh.client.services import SERVICES, covered_rpcs
from servers.devstack.envoy.routes import FRONT_DOOR, MESH_ROUTES, Exposure

GEN = Path(__file__).resolve().parents[2] / "gen" / "mlmesh"


def _generated_services():
    """Every service descriptor of every *_pb2 module generated into gen/mlmesh."""
    services = {}
    for path in sorted(GEN.rglob("*_pb2.py")):
        name = ".".join(("mlmesh", *path.relative_to(GEN).with_suffix("").parts))
        descriptor = importlib.import_module(name).DESCRIPTOR
        services.update({s.full_name: s for s in descriptor.services_by_name.values()})
    return services


def public_rpcs() -> set[str]:
    routes = {row.service: row for row in MESH_ROUTES}
    front_door = {row.service for row in FRONT_DOOR}
    public = set()
    for name, service in _generated_services().items():
        row = routes.get(name)
        if name in front_door or (row is not None and row.exposure is Exposure.INTERNAL):
            continue
        for method in service.methods:
            native = row is not None and row.exposure is Exposure.NATIVE
            if native or method.GetOptions().HasExtension(annotations_pb2.http):
                public.add(f"{name}/{method.name}")
    return public


def test_every_public_rpc_has_an_sdk_method():
    public = public_rpcs()
    covered = covered_rpcs(SERVICES.values())
    missing = sorted(public - set(covered))
    assert not missing, (f"public RPCs without an SDK method: {missing}; add a method marked @rpc(...) to "
                         "packages/mlmesh-client/src/mlmesh/client/services.py (and its service to SERVICES)")


def test_the_walk_sees_the_services_we_know():
    # the walk itself can fail: these must be among what it finds
    public = public_rpcs()
    for rpc in ("mlmesh.registry.v1.RegistryService/UploadDataset", "mlmesh.learner.v1.LearnerService/Learn",
                "mlmesh.translator.v1.TranslatorService/DownloadTranslation", "inference.GRPCInferenceService/ModelInfer",
                "mlmesh.trainer.v1.TrainerService/WatchTrainingJob"):
        assert rpc in public
    for internal in ("mlmesh.ledger.v1.LedgerService/VerifyModel", "mlmesh.registry.v1.RegistryService/CreateModelVersion",
                     "mlmesh.trainer.v1.TrainerService/SubmitTrainingJob", "grpc.health.v1.Health/Check"):
        assert internal not in public


def test_sdk_methods_name_only_rpcs_that_exist():
    known = {f"{name}/{m.name}" for name, s in _generated_services().items() for m in s.methods}
    covered = covered_rpcs(SERVICES.values())
    assert set(covered) <= known, sorted(set(covered) - known)


async def test_both_clients_have_the_same_services_and_signatures():
    # The asyncio client makes a grpc.aio channel, which belongs to the running event loop.
    sync, aio = mlmesh.Client(token="t"), mlmesh.aio.Client(token="t")
    for name, cls in SERVICES.items():
        assert type(getattr(sync, name)) is cls and type(getattr(aio, name)) is cls
        for attr, fn in inspect.getmembers(cls, inspect.isfunction):
            if not attr.startswith("_"):
                assert getattr(fn, "__doc__", None) or hasattr(fn, "__mlmesh_rpcs__"), f"{name}.{attr}"
    sync.close()
    await aio.close()
