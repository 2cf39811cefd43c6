"""Runs the Optimizer: `python -m servers.optimizer.main` (settings from MLMESH_OPTIMIZER_*)."""

from __future__ import annotations

from mlmesh.optimizer.v1 import optimizer_service_pb2 as pb
from mlmesh.optimizer.v1 import optimizer_service_pb2_grpc as pb_grpc

from servers.common.processes import LocalProcessRunner
from servers.common.server import MeshServer, serve
from servers.optimizer.adapters import argo
from servers.optimizer.adapters.db import Database
from servers.optimizer.adapters.registry_client import RegistryClient
from servers.optimizer.adapters.worker_runner import WorkerRunner
from servers.optimizer.api.servicer import OptimizerServicer
from servers.optimizer.domain.agents import Limits
from servers.optimizer.domain.service import CoreOptions, OptimizerCore
from servers.optimizer.settings import REPO, OptimizerSettings


def core_options(settings: OptimizerSettings) -> CoreOptions:
    assert settings.work_dir is not None
    return CoreOptions(
        work_root=settings.work_dir.resolve(),
        limits=Limits(settings.default_time_limit_seconds, settings.max_time_limit_seconds,
                      settings.default_memory_limit_bytes, settings.max_memory_limit_bytes),
        max_concurrent_jobs=settings.max_concurrent_jobs, keep_work_dirs=settings.keep_work_dirs,
        optimize_time_limit_seconds=settings.optimize_time_limit_seconds,
        evaluate_time_limit_seconds=settings.evaluate_time_limit_seconds,
        max_download_bytes=settings.max_download_bytes)


async def build(settings: OptimizerSettings) -> tuple[MeshServer, OptimizerCore]:
    """The server and its core wired to their adapters; recovery has run (agents a previous process
    was training are FAILED, their workers killed; QUEUED ones start). Not started."""
    db = await Database.connect(settings.require_database_url())
    registry = RegistryClient(settings.registry_target, timeout=settings.registry_timeout_seconds,
                              max_message_bytes=settings.max_message_bytes, tls=settings.tls)
    try:
        options = core_options(settings)
        runner = LocalProcessRunner(what="the training job", poll_interval=settings.memory_poll_seconds)
        worker: WorkerRunner | argo.ArgoWorker
        worker = WorkerRunner(settings.rl_python.absolute(), REPO, runner=runner,
                              grid_cache=settings.grid_cache_dir)
        if settings.executor == "argo":  # training as an Argo Workflow (adapters/argo.py)
            worker = argo.ArgoWorker(worker, argo.argo_runner(settings.argo, options.work_root))
        core = OptimizerCore(db, registry, worker, options)
        await core.start()
    except BaseException:
        await registry.close()
        await db.close()
        raise
    server = MeshServer("optimizer", settings)
    servicer = OptimizerServicer(core)
    server.add_service(pb.DESCRIPTOR.services_by_name["OptimizerService"],
                       lambda s: pb_grpc.add_OptimizerServiceServicer_to_server(servicer, s))
    # Hooks run in reverse: the core stops its agents first, then the client and the pool close.
    server.on_shutdown(db.close)
    server.on_shutdown(registry.close)
    if isinstance(worker, argo.ArgoWorker):
        server.on_shutdown(worker.close)  # after the core has terminated its agents' workflows
    server.on_shutdown(core.close)
    return server, core


if __name__ == "__main__":
    serve(build, OptimizerSettings, "optimizer")
