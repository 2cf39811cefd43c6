"""Federation settings: env prefix MLMESH_FEDERATION_. MLMESH_DATA_DIR and MLMESH_DATABASE_URL are
mesh-wide."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from servers.common.argo import ArgoJobSettings
from servers.common.endpoints import PORTS, local_target
from servers.common.settings import DatabaseSettings, ServerSettings, settings_config

REPO = Path(__file__).resolve().parents[2]
GIB = 1 << 30
# What a job's processes inherit from the server's environment; the rest is set by the server
# (HOME and TMPDIR point into the job's directory).
INHERITED_VARIABLES = ("PATH", "LANG")


def _inherited_env() -> dict[str, str]:
    return {k: os.environ[k] for k in INHERITED_VARIABLES if k in os.environ}


class FederationArgoSettings(ArgoJobSettings):
    """The Federation's argo executor (MLMESH_FEDERATION_ARGO__*): the mlmesh-federated-<framework>
    templates (adapters/argo.py)."""

    image: str = Field("mlmesh/flower:0.1.0", description="The flower image FedPATE's launcher runs in.")
    flare_image: str = Field("mlmesh/flare:0.1.0", description="The flare image FLARE's launcher runs in.")
    tff_image: str = Field("mlmesh/tff:0.1.0", description="The tff image TFF's DP-FedAvg runs in.")
    work_claim: str = Field("mlmesh-federation-work", description="The ReadWriteMany claim holding the work "
                            "directory (jobs/<job_id>/), mounted by the server and the workflow's pod alike.")


class FederationSettings(DatabaseSettings, ServerSettings):
    model_config = settings_config("FEDERATION")

    port: int = Field(PORTS["federation"].grpc, ge=0, le=65535, description="gRPC port of the Federation server.")
    metrics_port: int = Field(PORTS["federation"].metrics, ge=-1, le=65535, description="Prometheus port; -1 off.")
    registry_target: str = Field(local_target("registry"), description="host:port of the Registry's gRPC server.")
    work_dir: Path | None = Field(None, description="Where jobs run (jobs/<job_id>/). Default: <data_dir>/federation.")
    executor: Literal["local", "argo"] = Field(
        "local", description="Where jobs' launchers run: local processes (the embedded default) or Argo Workflows "
        "(simulation jobs of every framework: the mlmesh-federated-<framework> templates; MLMESH_FEDERATION_ARGO__*).")
    max_concurrent_jobs: int = Field(1, ge=1, le=64, description="Jobs run at once; others wait QUEUED.")
    default_time_limit_seconds: int = Field(3600, ge=1, description="Wall-clock limit of a job that sets none.")
    max_time_limit_seconds: int = Field(24 * 3600, ge=1, description="Largest time limit a job may ask for.")
    default_memory_limit_bytes: int = Field(8 * GIB, ge=1 << 20, description="Memory limit (resident bytes of all "
                                            "the job's processes together) of a job that sets none.")
    max_memory_limit_bytes: int = Field(16 * GIB, ge=1 << 20, description="Largest memory limit a job may ask for.")
    max_dataset_bytes: int = Field(GIB, ge=1024, description="Largest dataset a job may train on.")
    flower_python: Path = Field(REPO / ".venv-flower" / "bin" / "python",
                                description="Python of the Flower environment (`make flower-venv`).")
    flare_python: Path = Field(REPO / ".venv-flare" / "bin" / "python",
                               description="Python of the NVIDIA FLARE environment (`make flare-venv`).")
    tff_python: Path = Field(REPO / ".venv-tff" / "bin" / "python",
                             description="Python of the TensorFlow Federated environment (`make tff-venv`).")
    tff_isolation: Literal["netns", "none"] = Field(
        "netns", description="netns: each TFF job in a network namespace of its own (`unshare --net`; TFF's worker "
        "binary listens on every interface); none: in the server's network.")
    commands: dict[str, list[str]] = Field(
        default_factory=dict, description="Launcher command per framework (fedpate, tff, flare) replacing the "
        "built-in one; it reads the job's configuration from MLMESH_FEDERATION_JOB.")
    memory_poll_seconds: float = Field(0.2, gt=0, le=5, description="How often a job's memory is measured.")
    max_log_lines: int = Field(100_000, ge=100, description="Log lines stored per job; later lines are dropped.")
    stderr_tail_lines: int = Field(20, ge=1, le=200, description="Last stderr lines in a failed job's reason.")
    keep_job_dirs: bool = Field(False, description="Keep jobs/<job_id>/ after a job ends (debugging).")
    registry_timeout_seconds: float = Field(30.0, gt=0, description="Timeout of a unary Registry call.")
    inherited_env: dict[str, str] = Field(default_factory=_inherited_env,
                                          description="Variables a job inherits from the server (PATH, LANG).")
    flower_real_host: str = Field("127.0.0.1", min_length=1, description="Address real-mode FedPATE jobs' "
                                  "SuperLinks bind: an interface the client owners' SuperNodes reach.")
    flower_real_public_host: str = Field("", description="Host name or address client owners dial (the jobs' "
                                         "flower_join and the SuperLinks' TLS certificates); default flower_real_host.")
    flower_real_tls_names: list[str] = Field(default_factory=list, description="More DNS names or addresses in the "
                                             "SuperLinks' TLS certificates.")
    flower_real_port_min: int = Field(9200, ge=0, le=65535, description="First port of the SuperLinks' range (0 and "
                                      "flower_real_port_max 0: any free port).")
    flower_real_port_max: int = Field(9263, ge=0, le=65535, description="Last port of the SuperLinks' range.")
    flower_real_gate_envoy: Path = Field(
        Path(sys.executable).with_name("envoy"), description="Envoy binary of real-mode jobs' site gates: the "
        "SuperLink listens on loopback and an Envoy on flower_real_host forwards only Flower's Fleet API to it, "
        "so the sites cannot reach its unauthenticated Control API.")
    flower_real_join_timeout_seconds: float = Field(600.0, gt=0, le=7 * 24 * 3600, description="How long a real-mode "
                                                    "FedPATE job waits for its SuperNodes before it fails.")
    argo: FederationArgoSettings = Field(default_factory=FederationArgoSettings, description="The argo executor.")

    @model_validator(mode="after")
    def _check(self) -> FederationSettings:
        if self.work_dir is None:
            self.work_dir = self.data_dir / "federation"
        if self.default_time_limit_seconds > self.max_time_limit_seconds:
            raise ValueError("default_time_limit_seconds is above max_time_limit_seconds")
        if self.default_memory_limit_bytes > self.max_memory_limit_bytes:
            raise ValueError("default_memory_limit_bytes is above max_memory_limit_bytes")
        if self.flower_real_port_min > self.flower_real_port_max or (self.flower_real_port_min == 0) != (
                self.flower_real_port_max == 0):
            raise ValueError("flower_real_port_min must be <= flower_real_port_max (both 0: any free port)")
        return self
