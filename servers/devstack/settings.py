"""Ports and places of the local mesh that `make up` starts (env prefix MLMESH_).

The default ports are the mesh's well-known ones (`servers.common.endpoints`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from servers.common.endpoints import ANVIL_PORT, ENVOY_ADMIN_PORT, ENVOY_PORT, HTTP_PORTS, PORTS, POSTGRES_PORT, Ports


class DevstackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MLMESH_", extra="ignore")

    data_dir: Path = Field(Path(".mlmesh"), description="All embedded state: database, chain, objects, keys, logs.")
    envoy_port: int = Field(ENVOY_PORT, description="The front door: REST and native gRPC.")
    envoy_admin_port: int = Field(ENVOY_ADMIN_PORT, description="Envoy's admin interface (127.0.0.1 only).")
    envoy_base_id: int = Field(0, description="Envoy --base-id (distinct per Envoy on one machine).")
    envoy_concurrency: int | None = Field(
        None, ge=1, description="Envoy --concurrency (worker threads). Unset: Envoy's default, one per core.")
    postgres_port: int = Field(POSTGRES_PORT, description="Embedded PostgreSQL.")
    anvil_port: int = Field(ANVIL_PORT, description="Embedded EVM node (Anvil) JSON-RPC.")
    registry_port: int = Field(PORTS["registry"].grpc, description="Registry gRPC (internal; clients go through Envoy).")
    registry_metrics_port: int = Field(PORTS["registry"].metrics, description="Registry Prometheus /metrics.")
    ledger_port: int = Field(PORTS["ledger"].grpc, description="Ledger gRPC (internal only; never routed by Envoy).")
    ledger_metrics_port: int = Field(PORTS["ledger"].metrics, description="Ledger Prometheus /metrics.")
    trainer_port: int = Field(PORTS["trainer"].grpc, description="Trainer gRPC (public RPCs through Envoy).")
    trainer_metrics_port: int = Field(PORTS["trainer"].metrics, description="Trainer Prometheus /metrics.")
    translator_port: int = Field(PORTS["translator"].grpc, description="Translator gRPC (public RPCs through Envoy).")
    translator_metrics_port: int = Field(PORTS["translator"].metrics, description="Translator Prometheus /metrics.")
    learner_port: int = Field(
        PORTS["learner"].grpc, description="Learner gRPC (LearnerService and the Open Inference Protocol)."
    )
    learner_metrics_port: int = Field(PORTS["learner"].metrics, description="Learner Prometheus /metrics.")
    federation_port: int = Field(PORTS["federation"].grpc, description="Federation gRPC (public RPCs through Envoy).")
    federation_metrics_port: int = Field(PORTS["federation"].metrics, description="Federation Prometheus /metrics.")
    optimizer_port: int = Field(PORTS["optimizer"].grpc, description="Optimizer gRPC (public RPCs through Envoy).")
    optimizer_metrics_port: int = Field(PORTS["optimizer"].metrics, description="Optimizer Prometheus /metrics.")
    registry_http_port: int = Field(HTTP_PORTS["registry"], description="Registry HTTP front (the seed's multipart "
                                    "forms and /contract/{address}; behind Envoy).")
    learner_http_port: int = Field(HTTP_PORTS["learner"], description="Learner HTTP front (the Open Inference "
                                   "Protocol's REST half; behind Envoy).")
    database_url: str | None = Field(None, description="Use this PostgreSQL instead of the embedded one.")
    chain_rpc_url: str | None = Field(None, description="Use this EVM JSON-RPC endpoint instead of Anvil.")
    jwt_issuer: str = Field("mlmesh-local", description="Issuer of tokens Envoy accepts (embedded identity).")
    jwt_audience: str = Field("mlmesh", description="Audience of tokens Envoy accepts.")
    mtls: bool = Field(
        True, description="Mutual TLS between Envoy and the servers and between servers, with a mesh CA and "
        "certificates made under <data_dir>/identity/mtls/. false: plaintext (anyone reaching a server's port "
        "can claim any organization).")

    def ports(self, server: str) -> Ports:
        """`server`'s gRPC and metrics ports as configured (MLMESH_<SERVER>_PORT, ..._METRICS_PORT)."""
        return Ports(getattr(self, f"{server}_port"), getattr(self, f"{server}_metrics_port"))

    def http_port(self, server: str) -> int:
        """`server`'s HTTP front port as configured (MLMESH_<SERVER>_HTTP_PORT)."""
        return getattr(self, f"{server}_http_port")

    @property
    def root(self) -> Path:
        return self.data_dir.resolve()

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def identity_dir(self) -> Path:
        return self.root / "identity"

    @property
    def mtls_dir(self) -> Path:
        return self.identity_dir / "mtls"
