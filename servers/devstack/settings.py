"""Ports and places of the local mesh that `make up` starts (env prefix MLMESH_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DevstackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MLMESH_", extra="ignore")

    data_dir: Path = Field(Path(".mlmesh"), description="All embedded state: database, chain, objects, keys, logs.")
    envoy_port: int = Field(8080, description="The front door: REST and native gRPC.")
    envoy_admin_port: int = Field(9901, description="Envoy's admin interface (127.0.0.1 only).")
    envoy_base_id: int = Field(0, description="Envoy --base-id (distinct per Envoy on one machine).")
    postgres_port: int = Field(5433, description="Embedded PostgreSQL.")
    anvil_port: int = Field(8545, description="Embedded EVM node (Anvil) JSON-RPC.")
    registry_port: int = Field(50051, description="Registry gRPC (internal; clients go through Envoy).")
    registry_metrics_port: int = Field(9101, description="Registry Prometheus /metrics.")
    ledger_port: int = Field(50052, description="Ledger gRPC (internal only; never routed by Envoy).")
    ledger_metrics_port: int = Field(9102, description="Ledger Prometheus /metrics.")
    trainer_port: int = Field(50053, description="Trainer gRPC (public RPCs through Envoy).")
    trainer_metrics_port: int = Field(9103, description="Trainer Prometheus /metrics.")
    translator_port: int = Field(50054, description="Translator gRPC (public RPCs through Envoy).")
    translator_metrics_port: int = Field(9104, description="Translator Prometheus /metrics.")
    learner_port: int = Field(50055, description="Learner gRPC (LearnerService and the Open Inference Protocol).")
    learner_metrics_port: int = Field(9105, description="Learner Prometheus /metrics.")
    database_url: str | None = Field(None, description="Use this PostgreSQL instead of the embedded one.")
    chain_rpc_url: str | None = Field(None, description="Use this EVM JSON-RPC endpoint instead of Anvil.")
    jwt_issuer: str = Field("mlmesh-local", description="Issuer of tokens Envoy accepts (embedded identity).")
    jwt_audience: str = Field("mlmesh", description="Audience of tokens Envoy accepts.")

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
