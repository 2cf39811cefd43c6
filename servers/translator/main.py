"""Runs the Translator: `python -m servers.translator.main` (settings from MLMESH_TRANSLATOR_*)."""

from __future__ import annotations

import logging

from mlmesh.translator.v1 import translator_service_pb2 as pb
from mlmesh.translator.v1 import translator_service_pb2_grpc as pb_grpc

from servers.common.server import MeshServer, serve
from servers.common.recovery import start_reconciliation
from servers.common.storage import make_object_store
from servers.translator.adapters.db import Database
from servers.translator.adapters.ledger_client import LedgerClient
from servers.translator.adapters.registry_client import RegistryClient
from servers.translator.adapters.worker_runner import SubprocessWorker
from servers.translator.api.servicer import TranslatorServicer
from servers.translator.domain.service import CoreOptions, TranslatorCore
from servers.translator.settings import REPO, TranslatorSettings

log = logging.getLogger("mlmesh.translator")


def core_options(settings: TranslatorSettings) -> CoreOptions:
    assert settings.work_dir is not None
    return CoreOptions(
        work_root=settings.work_dir.resolve(), default_opset=settings.default_opset, max_opset=settings.max_opset,
        parity_rows=settings.parity_rows, max_concurrent=settings.max_concurrent_translations,
        max_model_bytes=settings.max_model_bytes, max_dataset_bytes=settings.max_dataset_bytes,
        read_chunk_bytes=settings.read_chunk_bytes, keep_work_dirs=settings.keep_work_dirs,
        worker_time_limit_seconds=settings.worker_time_limit_seconds)


async def build(settings: TranslatorSettings) -> tuple[MeshServer, TranslatorCore]:
    """The Translator server and its core, wired to their adapters (not started)."""
    db = await Database.connect(settings.require_database_url())
    try:
        store = make_object_store(settings.storage)
    except BaseException:
        await db.close()
        raise
    registry = RegistryClient(settings.registry_target, timeout=settings.registry_timeout_seconds,
                              max_message_bytes=settings.max_message_bytes, tls=settings.tls)
    ledger = LedgerClient(settings.ledger_target, deploy_timeout=settings.ledger_deploy_timeout_seconds,
                          read_timeout=settings.ledger_read_timeout_seconds, tls=settings.tls)
    worker = SubprocessWorker(settings.ml_python.absolute(), REPO,
                              time_limit_seconds=settings.worker_time_limit_seconds,
                              inherited_env=settings.inherited_env)
    core = TranslatorCore(registry, ledger, db, store, worker, core_options(settings))
    server = MeshServer("translator", settings)
    servicer = TranslatorServicer(core)
    server.add_service(pb.DESCRIPTOR.services_by_name["TranslatorService"],
                       lambda s: pb_grpc.add_TranslatorServiceServicer_to_server(servicer, s))
    # Hooks run in reverse: the clients close, then the store, then the pool.
    server.on_shutdown(db.close)
    server.on_shutdown(store.close)
    server.on_shutdown(ledger.close)
    server.on_shutdown(registry.close)
    if settings.reconcile_on_start:
        # Registered last, so it is cancelled first, before the clients it uses close.
        server.recovery = start_reconciliation(server, core.reconcile)
    return server, core


if __name__ == "__main__":
    serve(build, TranslatorSettings, "translator")
