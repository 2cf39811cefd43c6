"""Trainer settings: env prefix MLMESH_TRAINER_ (nested with `__`, e.g.
MLMESH_TRAINER_ARGO__SERVER_URL). MLMESH_DATA_DIR and MLMESH_DATABASE_URL are mesh-wide."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from servers.common.endpoints import PORTS, local_target
from servers.common.settings import DatabaseSettings, ServerSettings, settings_config

REPO = Path(__file__).resolve().parents[2]
GIB = 1 << 30
# What a recipe inherits from the Trainer's own environment; everything else it gets is set
# by the Trainer (docs/recipes.md).
INHERITED_VARIABLES = ("PATH", "HOME", "LANG")


def _inherited_env() -> dict[str, str]:
    return {k: os.environ[k] for k in INHERITED_VARIABLES if k in os.environ}


class ArgoSettings(BaseModel):
    """Where the argo executor submits workflows (MLMESH_TRAINER_ARGO__*)."""

    server_url: str | None = Field(
        None, description="Base URL of the Argo Server's REST API, e.g. https://argo.example:2746. Unset: workflows "
        "are rendered but not submitted (the argo executor then refuses to run jobs).")
    namespace: str = Field("mlmesh", description="Kubernetes namespace of the workflows and the WorkflowTemplate.")
    token_file: Path | None = Field(
        None, description="File holding the bearer token for the Argo Server (a service account token); read at "
        "each request so a rotated token is picked up.")
    verify_tls: bool = Field(True, description="Check the Argo Server's TLS certificate.")
    ca_file: Path | None = Field(None, description="CA bundle for the Argo Server's certificate.")
    template_name: str = Field("mlmesh-training", description="Name of the WorkflowTemplate to submit "
                               "(k8s/argo/training-workflowtemplate.yaml).")
    registry_target: str = Field(f"mlmesh-registry:{PORTS['registry'].grpc}", description="host:port of the Registry as the "
                                 "workflow's pods reach it inside the cluster.")
    trainer_image: str = Field("ghcr.io/mlmesh/trainer:0.1.0", description="Image with this repository's code; "
                               "runs the pre-train and post-train steps (python -m servers.trainer.argo_steps).")
    ml_image: str = Field("ghcr.io/mlmesh/ml:0.1.0", description="Image with the ML base environment "
                          "(requirements/ml.txt); runs recipes.")
    poll_seconds: float = Field(5.0, gt=0, description="How often a submitted workflow's phase is read.")
    request_timeout_seconds: float = Field(30.0, gt=0, description="Timeout of one Argo Server request.")


class TrainerSettings(DatabaseSettings, ServerSettings):
    model_config = settings_config("TRAINER")

    port: int = Field(PORTS["trainer"].grpc, ge=0, le=65535, description="gRPC port of the Trainer.")
    metrics_port: int = Field(PORTS["trainer"].metrics, ge=-1, le=65535, description="Prometheus port; -1 off.")
    registry_target: str = Field(local_target("registry"), description="host:port of the Registry's gRPC server.")
    work_dir: Path | None = Field(
        None, description="Where jobs run (jobs/<job_id>/) and recipe virtualenvs live (envs/<hash>/). "
        "Default: <data_dir>/trainer.")
    executor: Literal["local", "argo"] = Field(
        "local", description="Where jobs run: local processes (embedded default) or Argo Workflows (production).")
    max_concurrent_jobs: int = Field(1, ge=1, le=64, description="Jobs this Trainer runs at once; others queue.")
    default_time_limit_seconds: int = Field(3600, ge=1, description="Wall-clock limit of a job's train step "
                                            "when the submit does not set one.")
    max_time_limit_seconds: int = Field(24 * 3600, ge=1, description="Largest time limit a submit may ask for.")
    default_memory_limit_bytes: int = Field(4 * GIB, ge=1 << 20, description="Memory limit (resident bytes of the "
                                            "recipe's process tree) when the submit does not set one.")
    max_memory_limit_bytes: int = Field(16 * GIB, ge=1 << 20, description="Largest memory limit a submit may ask for.")
    ml_python: Path = Field(REPO / ".venv-ml" / "bin" / "python",
                            description="Python of the ML base environment recipes run with (`make ml-venv`).")
    memory_poll_seconds: float = Field(0.2, gt=0, le=5, description="How often a recipe's memory is measured.")
    max_recipe_bytes: int = Field(GIB, ge=1024, description="Largest unpacked size of a recipe archive.")
    max_recipe_members: int = Field(10_000, ge=1, description="Most files and directories in a recipe archive.")
    max_log_lines: int = Field(200_000, ge=100, description="Log lines stored per job; later lines are dropped.")
    stderr_tail_lines: int = Field(20, ge=1, le=200, description="Last stderr lines that become a failed "
                                   "recipe's failure_reason.")
    model_grace_seconds: float = Field(10.0, ge=0, description="How long pre-train retries GetModel while the "
                                       "Registry does not know the model yet (it submits while registering).")
    report_retry_seconds: float = Field(5.0, gt=0, description="How often failures the Registry has not "
                                        "acknowledged are reported again.")
    database_outage_seconds: float = Field(
        120.0, ge=0, description="How long a running job waits for PostgreSQL to come back (a restart, a failover): "
        "its state changes and log lines are retried meanwhile; after that the job fails.")
    keep_job_dirs: bool = Field(False, description="Keep jobs/<job_id>/ after a job ends (debugging); by default "
                                "it is removed with its dataset copy.")
    seed: int = Field(0, description="MLMESH_SEED handed to every recipe, for reproducible training.")
    registry_timeout_seconds: float = Field(30.0, gt=0, description="Timeout of a unary Registry call.")
    inherited_env: dict[str, str] = Field(
        default_factory=_inherited_env,
        description="Variables a recipe inherits from the Trainer's environment (PATH, HOME, LANG).")
    argo: ArgoSettings = Field(default_factory=ArgoSettings, description="The argo executor.")

    @model_validator(mode="after")
    def _check(self) -> TrainerSettings:
        if self.work_dir is None:
            self.work_dir = self.data_dir / "trainer"
        if self.default_time_limit_seconds > self.max_time_limit_seconds:
            raise ValueError("default_time_limit_seconds is above max_time_limit_seconds")
        if self.default_memory_limit_bytes > self.max_memory_limit_bytes:
            raise ValueError("default_memory_limit_bytes is above max_memory_limit_bytes")
        return self
