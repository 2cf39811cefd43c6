"""Optimizer settings: env prefix MLMESH_OPTIMIZER_. MLMESH_DATA_DIR and MLMESH_DATABASE_URL are
mesh-wide."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from servers.common.argo import ArgoJobSettings
from servers.common.endpoints import PORTS, local_target
from servers.common.settings import DatabaseSettings, ServerSettings, settings_config

REPO = Path(__file__).resolve().parents[2]
GIB = 1 << 30


class OptimizerArgoSettings(ArgoJobSettings):
    """The Optimizer's argo executor (MLMESH_OPTIMIZER_ARGO__*): the mlmesh-optimizer-training template."""

    image: str = Field("mlmesh/rl:0.1.0", description="The rl image the training worker runs in.")
    work_claim: str = Field("mlmesh-optimizer-work", description="The ReadWriteMany claim holding the work "
                            "directory (agents/<agent_id>/), mounted by the server and the workflow's pod alike.")


class OptimizerSettings(DatabaseSettings, ServerSettings):
    model_config = settings_config("OPTIMIZER")

    port: int = Field(PORTS["optimizer"].grpc, ge=0, le=65535, description="gRPC port of the Optimizer.")
    metrics_port: int = Field(PORTS["optimizer"].metrics, ge=-1, le=65535, description="Prometheus port; -1 off.")
    registry_target: str = Field(local_target("registry"), description="host:port of the Registry's gRPC server.")
    work_dir: Path | None = Field(None, description="Where agents train (agents/<agent_id>/) and converted SimBench "
                                  "grids are cached (gridshift-cache/). Default: <data_dir>/optimizer.")
    rl_python: Path = Field(REPO / ".venv-rl" / "bin" / "python",
                            description="Python of the RL environment the worker runs in (`make rl-venv`).")
    grid_cache_dir: Path | None = Field(None, description="Where the worker caches converted SimBench grids, shared "
                                        "by every job. Default: MLMESH_GRIDSHIFT_CACHE or ~/.cache/mlmesh-gridshift.")
    executor: Literal["local", "argo"] = Field(
        "local", description="Where agents train: local worker processes (the embedded default) or Argo Workflows "
        "(the mlmesh-optimizer-training template; MLMESH_OPTIMIZER_ARGO__*). Planning and evaluation stay local.")
    argo: OptimizerArgoSettings = Field(default_factory=OptimizerArgoSettings, description="The argo executor.")
    max_concurrent_jobs: int = Field(1, ge=1, le=64, description="Agents trained at once; others wait QUEUED.")
    default_time_limit_seconds: int = Field(3600, ge=1, description="Wall-clock limit of an agent's job that "
                                            "sets none.")
    max_time_limit_seconds: int = Field(24 * 3600, ge=1, description="Largest time limit an agent may ask for.")
    default_memory_limit_bytes: int = Field(4 * GIB, ge=1 << 20, description="Memory limit (resident bytes of the "
                                            "worker's process tree) of an agent that sets none.")
    max_memory_limit_bytes: int = Field(16 * GIB, ge=1 << 20, description="Largest memory limit an agent may ask for.")
    optimize_time_limit_seconds: int = Field(300, ge=1, description="Wall-clock limit of the worker that plans "
                                             "one day (OptimizeDay).")
    evaluate_time_limit_seconds: int = Field(1800, ge=1, description="Wall-clock limit of the worker that evaluates "
                                             "a stored policy beside the baselines (EvaluateAgent, at most 100 "
                                             "days; a few seconds per day).")
    max_download_bytes: int = Field(GIB, ge=1024, description="Largest grid, profile CSV or policy the Optimizer "
                                    "downloads from the Registry.")
    memory_poll_seconds: float = Field(0.2, gt=0, le=5, description="How often the worker's memory is measured.")
    keep_work_dirs: bool = Field(False, description="Keep agents/<agent_id>/ after the job ends (debugging).")
    registry_timeout_seconds: float = Field(30.0, gt=0, description="Timeout of a unary Registry call.")

    @model_validator(mode="after")
    def _check(self) -> OptimizerSettings:
        if self.work_dir is None:
            self.work_dir = self.data_dir / "optimizer"
        if self.default_time_limit_seconds > self.max_time_limit_seconds:
            raise ValueError("default_time_limit_seconds is above max_time_limit_seconds")
        if self.default_memory_limit_bytes > self.max_memory_limit_bytes:
            raise ValueError("default_memory_limit_bytes is above max_memory_limit_bytes")
        return self
