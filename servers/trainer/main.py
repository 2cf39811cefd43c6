"""Runs the Trainer: `python -m servers.trainer.main` (settings from MLMESH_TRAINER_*)."""

from __future__ import annotations

import logging

from mlmesh.trainer.v1 import trainer_service_pb2 as pb
from mlmesh.trainer.v1 import trainer_service_pb2_grpc as pb_grpc

from servers.common.server import MeshServer, serve
from servers.trainer.adapters.db import Database
from servers.trainer.adapters.local_executor import LocalProcessRunner, RecipeEnvironments
from servers.trainer.adapters.registry_client import RegistryClient
from servers.trainer.api.servicer import TrainerServicer
from servers.trainer.domain.jobs import Limits
from servers.trainer.domain.recipe import ArchiveLimits
from servers.trainer.domain.service import CoreOptions, TrainerCore
from servers.trainer.settings import TrainerSettings

log = logging.getLogger("mlmesh.trainer")


def core_options(settings: TrainerSettings) -> CoreOptions:
    assert settings.work_dir is not None
    return CoreOptions(
        work_root=settings.work_dir.resolve(),
        limits=Limits(settings.default_time_limit_seconds, settings.max_time_limit_seconds,
                      settings.default_memory_limit_bytes, settings.max_memory_limit_bytes),
        executor=settings.executor,
        max_concurrent_jobs=settings.max_concurrent_jobs,
        archive_limits=ArchiveLimits(settings.max_recipe_bytes, settings.max_recipe_members),
        model_grace_seconds=settings.model_grace_seconds,
        stderr_tail_lines=settings.stderr_tail_lines,
        max_log_lines=settings.max_log_lines,
        keep_job_dirs=settings.keep_job_dirs,
        report_retry_seconds=settings.report_retry_seconds,
        database_outage_seconds=settings.database_outage_seconds,
        inherited_env=tuple(sorted(settings.inherited_env.items())),
        seed=settings.seed,
    )


async def build(settings: TrainerSettings) -> tuple[MeshServer, TrainerCore]:
    """The Trainer server and its core, wired to their adapters; the core's recovery has run
    (jobs left running by a previous process are FAILED, QUEUED ones resume). Not started."""
    workflows = None
    db = await Database.connect(settings.require_database_url())
    registry = RegistryClient(settings.registry_target, timeout=settings.registry_timeout_seconds,
                              max_message_bytes=settings.max_message_bytes, tls=settings.tls)
    try:
        if settings.executor == "argo":
            from servers.trainer.adapters.argo import ArgoWorkflows

            workflows = ArgoWorkflows(settings.argo, seed=settings.seed)
        options = core_options(settings)
        runner = LocalProcessRunner(what="the recipe", poll_interval=settings.memory_poll_seconds,
                                    stderr_tail_lines=settings.stderr_tail_lines)
        envs = RecipeEnvironments(settings.ml_python.absolute(), options.work_root / "envs")
        core = TrainerCore(db, registry, runner, envs, options, workflows=workflows)
        await core.start()
    except BaseException:
        await registry.close()
        await db.close()
        raise
    server = MeshServer("trainer", settings)
    servicer = TrainerServicer(core)
    server.add_service(pb.DESCRIPTOR.services_by_name["TrainerService"],
                       lambda s: pb_grpc.add_TrainerServiceServicer_to_server(servicer, s))
    # Hooks run in reverse: the core stops its jobs first, then the clients and the pool close.
    server.on_shutdown(db.close)
    server.on_shutdown(registry.close)
    if workflows is not None:
        server.on_shutdown(workflows.close)
    server.on_shutdown(core.close)
    return server, core


if __name__ == "__main__":
    serve(build, TrainerSettings, "trainer")
