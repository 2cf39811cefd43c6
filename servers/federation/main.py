"""Runs the Federation server: `python -m servers.federation.main` (settings from MLMESH_FEDERATION_*)."""

from __future__ import annotations

import logging

from mlmesh.federation.v1 import federation_service_pb2 as pb
from mlmesh.federation.v1 import federation_service_pb2_grpc as pb_grpc

from servers.common.argo import ArgoJobRunner
from servers.common.processes import LocalProcessRunner
from servers.common.server import MeshServer, run
from servers.federation.adapters import argo
from servers.federation.adapters.db import Database
from servers.federation.adapters.flare import LocalFlareHosting
from servers.federation.adapters.flare_db import FlareServerStore
from servers.federation.adapters.frameworks import LocalFrameworks
from servers.federation.adapters.registry_client import RegistryClient
from servers.federation.api.servicer import FederationServicer
from servers.federation.domain.flare_servers import FlareServers
from servers.federation.domain.jobs import Limits
from servers.federation.domain.service import CoreOptions, FederationCore, FlowerReal, utcnow
from servers.federation.settings import FederationSettings

log = logging.getLogger("mlmesh.federation")


def core_options(settings: FederationSettings) -> CoreOptions:
    assert settings.work_dir is not None
    return CoreOptions(
        work_root=settings.work_dir.resolve(),
        limits=Limits(settings.default_time_limit_seconds, settings.max_time_limit_seconds,
                      settings.default_memory_limit_bytes, settings.max_memory_limit_bytes),
        executor=settings.executor, max_concurrent_jobs=settings.max_concurrent_jobs,
        max_log_lines=settings.max_log_lines, stderr_tail_lines=settings.stderr_tail_lines,
        keep_job_dirs=settings.keep_job_dirs, inherited_env=tuple(sorted(settings.inherited_env.items())),
        max_dataset_bytes=settings.max_dataset_bytes,
        flower_real=FlowerReal(host=settings.flower_real_host, public_host=settings.flower_real_public_host,
                               tls_names=tuple(settings.flower_real_tls_names), port_min=settings.flower_real_port_min,
                               port_max=settings.flower_real_port_max,
                               join_timeout_seconds=settings.flower_real_join_timeout_seconds,
                               gate_envoy=str(settings.flower_real_gate_envoy)))


async def build(settings: FederationSettings) -> tuple[MeshServer, FederationCore]:
    """The server and its core wired to their adapters; recovery has run (jobs a previous process
    was running are FAILED, their process groups killed; QUEUED ones start). Not started."""
    db = await Database.connect(settings.require_database_url())
    registry = RegistryClient(settings.registry_target, timeout=settings.registry_timeout_seconds,
                              max_message_bytes=settings.max_message_bytes, tls=settings.tls)
    try:
        runner: LocalProcessRunner | ArgoJobRunner
        frameworks: LocalFrameworks | argo.ArgoFrameworks
        runner = LocalProcessRunner(what="the federated job", poll_interval=settings.memory_poll_seconds,
                                    stderr_tail_lines=settings.stderr_tail_lines)
        frameworks = LocalFrameworks(flower_python=settings.flower_python.absolute(), commands=settings.commands,
                                     flare_python=settings.flare_python.absolute(),
                                     tff_python=settings.tff_python.absolute(), tff_isolation=settings.tff_isolation)
        if settings.executor == "argo":  # the launcher as an Argo Workflow (adapters/argo.py)
            runner = argo.argo_runner(settings.argo, settings.work_dir.resolve(),
                                      stderr_tail_lines=settings.stderr_tail_lines)
            frameworks = argo.ArgoFrameworks(frameworks, runner)
        flare_servers = FlareServers(FlareServerStore(db), LocalFlareHosting(settings.flare_python.absolute()),
                                     settings.work_dir.resolve(), utcnow)
        core = FederationCore(db, registry, runner, frameworks, core_options(settings), flare_servers=flare_servers)
        await core.start()  # before the FLARE servers' recovery: real-mode FLARE jobs are aborted on them first
        await flare_servers.start()
    except BaseException:
        await registry.close()
        await db.close()
        raise
    server = MeshServer("federation", settings)
    servicer = FederationServicer(core, flare_servers)
    server.add_service(pb.DESCRIPTOR.services_by_name["FederationService"],
                       lambda s: pb_grpc.add_FederationServiceServicer_to_server(servicer, s))
    # Hooks run in reverse: the core stops its jobs first, then the client and the pool close.
    server.on_shutdown(db.close)
    server.on_shutdown(registry.close)
    if isinstance(runner, ArgoJobRunner):
        server.on_shutdown(runner.close)  # after the core has terminated its jobs' workflows
    server.on_shutdown(core.close)
    server.on_shutdown(flare_servers.close)
    return server, core


async def main() -> None:
    settings = FederationSettings()
    from servers.common.observability import configure_logging

    configure_logging(settings.log_level, "federation")
    server, _core = await build(settings)
    await server.serve_forever()


if __name__ == "__main__":
    run(main)
