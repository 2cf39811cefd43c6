"""Runs the Registry: `python -m servers.registry.main` (settings from MLMESH_REGISTRY_*)."""

from __future__ import annotations

import logging

from mlmesh.registry.v1 import registry_service_pb2 as svc
from mlmesh.registry.v1 import registry_service_pb2_grpc as svc_grpc

from servers.common.http import HttpFront
from servers.common.recovery import start_reconciliation
from servers.common.server import MeshServer, serve
from servers.common.storage import make_object_store
from servers.registry.adapters.access_db import AccessRepository
from servers.registry.adapters.datasets_db import DatasetRepository
from servers.registry.adapters.db import Database
from servers.registry.adapters.ledger_client import LedgerClient
from servers.registry.adapters.models_db import ModelRepository
from servers.registry.adapters.model_signer import ProcessModelSigner
from servers.registry.adapters.signing_key import EcdsaSigner
from servers.registry.adapters.trainer_client import TrainerClient
from servers.registry.adapters.translator_client import TranslatorClient
from servers.registry.api.http import RegistryHttp
from servers.registry.api.servicer import RegistryServicer
from servers.registry.domain.attestations import AttestationCore
from servers.registry.domain.datasets import DatasetCore
from servers.registry.domain.lineage import LineageCore
from servers.registry.domain.models import ModelCore
from servers.registry.domain.recovery import Reconciler
from servers.registry.domain.sharing import Sharing
from servers.registry.settings import RegistrySettings

log = logging.getLogger("mlmesh.registry")


async def build(settings: RegistrySettings) -> MeshServer:
    """The Registry server, wired to its adapters (not started)."""
    server = MeshServer("registry", settings, configure_logs=False)
    db = await Database.connect(settings.require_database_url())
    store = make_object_store(settings.storage)
    ledger = LedgerClient(settings.ledger_target, tls=settings.tls)
    sharing = Sharing(AccessRepository(db), ledger=ledger)  # grants anchored on the ledger's AccessLog
    datasets = DatasetCore(
        store, DatasetRepository(db), ledger, sharing,
        max_upload_bytes=settings.max_upload_bytes, read_chunk_bytes=settings.read_chunk_bytes,
    )
    trainer = TrainerClient(settings.trainer_target, tls=settings.tls)
    models = ModelCore(
        store, ModelRepository(db), ledger, trainer, datasets, max_recipe_bytes=settings.max_recipe_bytes,
        max_model_bytes=settings.max_model_bytes, read_chunk_bytes=settings.read_chunk_bytes,
    )
    translator = TranslatorClient(settings.translator_target, tls=settings.tls)
    lineage = LineageCore(models, datasets, trainer, translator, ledger)
    signer = EcdsaSigner.load(settings.signing_key_file, settings.data_dir)
    attestations = AttestationCore(lineage, signer, mesh_version=_mesh_version(),
                                   model_signer=ProcessModelSigner(settings.model_signing_python, signer.key_file))
    servicer = RegistryServicer(datasets, models, lineage=lineage, attestations=attestations)
    if settings.http_port >= 0:
        front = HttpFront("registry", settings.http_port, settings)
        front.add_routes(RegistryHttp(datasets, models).routes())
        server.add_http(front)
    server.add_service(
        svc.DESCRIPTOR.services_by_name["RegistryService"],
        lambda s: svc_grpc.add_RegistryServiceServicer_to_server(servicer, s),
    )
    server.on_shutdown(ledger.close)
    server.on_shutdown(trainer.close)
    server.on_shutdown(translator.close)
    server.on_shutdown(store.close)
    server.on_shutdown(db.close)
    # Access events an earlier run could not anchor (the ledger was down); stopped before its clients close.
    sharing.start_anchoring()
    server.on_shutdown(sharing.close)
    if settings.reconcile_on_start:
        # Registered last, so it is cancelled first, before the clients it uses close.
        reconciler = Reconciler(store, DatasetRepository(db), ModelRepository(db), ledger)
        server.recovery = start_reconciliation(server, reconciler.run)
    return server


def _mesh_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlmesh")
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    serve(build, RegistrySettings, "registry")
