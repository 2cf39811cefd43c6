"""Registry settings: env prefix MLMESH_REGISTRY_ (nested with `__`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from servers.common.endpoints import HTTP_PORTS, PORTS, local_target
from servers.common.settings import DatabaseSettings, ServerSettings, settings_config
from servers.common.storage import StorageSettings

REPO = Path(__file__).resolve().parents[2]


class RegistrySettings(DatabaseSettings, ServerSettings):
    model_config = settings_config("REGISTRY")

    port: int = Field(PORTS["registry"].grpc, ge=0, le=65535, description="gRPC port of the Registry.")
    metrics_port: int = Field(PORTS["registry"].metrics, ge=-1, le=65535, description="Prometheus port; -1 off.")
    http_port: int | None = Field(None, ge=-1, le=65535, description="HTTP front (the seed's multipart POST "
                                  "/dataset and /model, GET /contract/{address}; behind Envoy); 0 a free one, -1 "
                                  f"off. Default: {HTTP_PORTS['registry']}, or a free one when `port` is 0 (tests).")
    ledger_target: str = Field(local_target("ledger"), description="host:port of the Ledger's gRPC server.")
    trainer_target: str = Field(local_target("trainer"), description="host:port of the Trainer's gRPC server.")
    translator_target: str = Field(local_target("translator"), description="host:port of the Translator's gRPC "
                                   "server (asked for a model's translations in its lineage).")
    signing_key_file: Path | None = Field(
        None, description="PEM ECDSA P-256 private key that signs provenance attestations. Default: "
        "<data_dir>/provenance/signing-key.pem, made on first start; the public key is written beside it.")
    model_signing_python: Path = Field(
        REPO / ".venv-provenance" / "bin" / "python", description="Python of the environment with OpenSSF "
        "model_signing (`make provenance-venv`) that makes GetModelSignature's signatures, as a separate process.")
    storage: StorageSettings = Field(
        default_factory=StorageSettings,
        description="Object storage: filesystem under <data_dir>/objects (default) or S3/MinIO.",
    )
    max_upload_bytes: int = Field(64 << 30, ge=1, description="Largest dataset accepted, in bytes.")
    max_recipe_bytes: int = Field(256 << 20, ge=1, description="Largest training recipe archive accepted.")
    max_model_bytes: int = Field(32 << 30, ge=1, description="Largest trained model accepted from the Trainer.")
    reconcile_on_start: bool = Field(
        True, description="At start, check every dataset and model against the chain and the object store in "
        "the background; log and export (mlmesh_recovery_inconsistencies) whatever is missing.")
    read_chunk_bytes: int = Field(1 << 20, ge=4096, le=4 << 20, description="Bytes per download message.")

    @model_validator(mode="after")
    def _defaults_under_data_dir(self) -> RegistrySettings:
        if self.http_port is None:
            self.http_port = 0 if self.port == 0 else HTTP_PORTS["registry"]
        if self.storage.backend == "filesystem" and self.storage.root is None:
            self.storage = self.storage.model_copy(update={"root": self.data_dir / "objects"})
        return self
