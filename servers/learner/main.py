"""Runs the Learner: `python -m servers.learner.main` in the ML environment (settings from
MLMESH_LEARNER_*). It serves LearnerService and the Open Inference Protocol on one port, and the
protocol's REST half on its HTTP front (`http_port`)."""

from __future__ import annotations

import asyncio
import logging

from mlmesh.learner.v1 import learner_service_pb2 as pb
from mlmesh.learner.v1 import learner_service_pb2_grpc as pb_grpc
from mlmesh.thirdparty.kserve import grpc_predict_v2_pb2 as v2
from mlmesh.thirdparty.kserve import grpc_predict_v2_pb2_grpc as v2_grpc

from servers.common.http import HttpFront
from servers.common.server import MeshServer, serve
from servers.learner.adapters.db import connect
from servers.learner.adapters.registry_client import RegistryClient
from servers.learner.api.oip import InferenceServicer
from servers.learner.api.oip_rest import OipRest
from servers.learner.api.servicer import LearnerServicer
from servers.learner.domain.live import PredictBatching
from servers.learner.domain.service import CoreOptions, LearnerCore
from servers.learner.monitoring.offload import DriftProcess
from servers.learner.settings import LearnerSettings

log = logging.getLogger("mlmesh.learner")
# Per-prediction calls: their successful calls are not access-logged at INFO (see LearnerSettings).
PREDICTION_METHODS = frozenset({
    "/mlmesh.learner.v1.LearnerService/Predict", "/inference.GRPCInferenceService/ModelInfer",
    "/inference.GRPCInferenceService/ModelReady", "/inference.GRPCInferenceService/ServerLive",
    "/inference.GRPCInferenceService/ServerReady",
})


async def build(settings: LearnerSettings) -> tuple[MeshServer, LearnerCore]:
    """The Learner server and its core, every stored learner loaded (not started)."""
    database_url = settings.require_database_url()
    assert settings.work_dir is not None
    db = await connect(database_url)
    registry = RegistryClient(settings.registry_target, timeout=settings.registry_timeout_seconds,
                              stream_timeout=settings.registry_stream_timeout_seconds,
                              chunk_bytes=settings.transfer_chunk_bytes, tls=settings.tls)
    drift_process = DriftProcess() if settings.drift_in_process else None
    core = LearnerCore(db, registry, CoreOptions(
        work_dir=settings.work_dir.resolve(), max_learners=settings.max_learners,
        max_reference_rows=settings.max_reference_rows, running_loss_alpha=settings.running_loss_alpha,
        max_download_bytes=settings.max_download_bytes,
        batching=PredictBatching(enabled=settings.predict_batching, max_size=settings.predict_batch_max_size,
                                 max_delay=settings.predict_batch_max_delay_us / 1e6),
        compute_drift=drift_process))
    try:
        await core.start()
    except BaseException:
        await registry.close()
        await db.close()
        if drift_process is not None:
            drift_process.close()
        raise
    server = MeshServer("learner", settings, quiet_methods=frozenset() if settings.access_log_predictions
                        else PREDICTION_METHODS)
    from servers.learner.monitoring import metrics

    metrics.expose_on(server.metrics.registry)
    servicer = LearnerServicer(core, max_observations=settings.max_observations_per_message)
    server.add_service(pb.DESCRIPTOR.services_by_name["LearnerService"],
                       lambda s: pb_grpc.add_LearnerServiceServicer_to_server(servicer, s))
    inference = InferenceServicer(core)
    server.add_service(v2.DESCRIPTOR.services_by_name["GRPCInferenceService"],
                       lambda s: v2_grpc.add_GRPCInferenceServiceServicer_to_server(inference, s))
    if settings.http_port >= 0:
        front = HttpFront("learner", settings.http_port, settings, client_max_size=settings.max_message_bytes,
                          quiet_paths=() if settings.access_log_predictions else ("/v2/",), error_key="error")
        front.add_routes(OipRest(core).routes())
        server.add_http(front)
    server.on_shutdown(db.close)
    server.on_shutdown(registry.close)
    if drift_process is not None:  # after the core has stopped its learners (hooks run in reverse)
        server.on_shutdown(lambda: asyncio.to_thread(drift_process.close))
    server.on_shutdown(core.close)
    return server, core


if __name__ == "__main__":
    serve(build, LearnerSettings, "learner")
