"""Learner settings: env prefix MLMESH_LEARNER_ (nested with `__`). MLMESH_DATA_DIR and
MLMESH_DATABASE_URL are mesh-wide. The Learner runs in the ML environment (`.venv-ml/`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from servers.common.endpoints import HTTP_PORTS, PORTS, local_target
from servers.common.settings import DatabaseSettings, ServerSettings, settings_config


class LearnerSettings(DatabaseSettings, ServerSettings):
    model_config = settings_config("LEARNER")

    port: int = Field(PORTS["learner"].grpc, ge=0, le=65535, description="gRPC port of the Learner "
                      "(LearnerService and the Open Inference Protocol's inference.GRPCInferenceService).")
    metrics_port: int = Field(PORTS["learner"].metrics, ge=-1, le=65535,
                              description="Prometheus port; -1 off.")
    http_port: int | None = Field(None, ge=-1, le=65535, description="HTTP front: the Open Inference Protocol's "
                                  "REST half (behind Envoy); 0 a free one, -1 off. Default: "
                                  f"{HTTP_PORTS['learner']}, or a free one when `port` is 0 (tests).")
    registry_target: str = Field(local_target("registry"),
                                 description="host:port of the Registry's gRPC server.")
    registry_timeout_seconds: float = Field(30.0, gt=0, description="Timeout of a unary Registry call.")
    registry_stream_timeout_seconds: float = Field(
        600.0, gt=0, description="Timeout of a model or dataset transfer to or from the Registry.")
    work_dir: Path | None = Field(None, description="Model files and reference datasets, per learner. Default: "
                                  "<data_dir>/learner.")
    max_observations_per_message: int = Field(
        10_000, ge=1, description="Observations one Learn or Predict message may carry (RESOURCE_EXHAUSTED above).")
    max_reference_rows: int = Field(5_000, ge=30, description="Most recent reference rows the drift monitor keeps.")
    max_download_bytes: int = Field(8 << 30, ge=1, description="Largest starting model or reference dataset the "
                                    "Learner downloads from the Registry.")
    max_learners: int = Field(100, ge=1, description="Learners one server holds (each keeps its model in memory).")
    running_loss_alpha: float = Field(0.1, gt=0, le=1, description="Weight of the newest micro-batch in the "
                                      "exponentially weighted running loss.")
    access_log_predictions: bool = Field(
        False, description="Access-log every successful prediction call (Predict, ModelInfer, ...) at INFO. "
        "Off: they are logged at DEBUG; errors are always logged, and every call is counted in the metrics.")
    drift_in_process: bool = Field(True, description="Compute data drift (Evidently) in a child process of its "
                                   "own, so that it never contends with serving for the GIL; false: in the learner's "
                                   "worker thread (docs/performance.md measures both).")
    predict_batching: bool = Field(True, description="Adaptive micro-batching: concurrent prediction requests "
                                   "(ModelInfer, Predict, PredictStream, REST infer) to one learner are answered "
                                   "with one model call (docs/performance.md).")
    predict_batch_max_size: int = Field(256, ge=1, le=65_536, description="Requests per batched model call at most.")
    predict_batch_max_delay_us: int = Field(0, ge=0, le=1_000_000, description="Microseconds a prediction may "
                                            "wait for others to batch with; 0 batches only what is already "
                                            "waiting (no latency added).")
    transfer_chunk_bytes: int = Field(1 << 20, ge=4096, le=4 << 20, description="Bytes per upload message.")

    @model_validator(mode="after")
    def _defaults_under_data_dir(self) -> LearnerSettings:
        if self.http_port is None:
            self.http_port = 0 if self.port == 0 else HTTP_PORTS["learner"]
        if self.work_dir is None:
            self.work_dir = self.data_dir / "learner"
        return self
