"""Translator settings: env prefix MLMESH_TRANSLATOR_ (nested with `__`, e.g.
MLMESH_TRANSLATOR_STORAGE__BACKEND=s3). MLMESH_DATA_DIR and MLMESH_DATABASE_URL are mesh-wide."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, model_validator

from servers.common.endpoints import PORTS, local_target
from servers.common.settings import DatabaseSettings, ServerSettings, settings_config
from servers.common.storage import StorageSettings

REPO = Path(__file__).resolve().parents[2]
# What the conversion worker inherits from the Translator's environment; it also gets
# TF_CPP_MIN_LOG_LEVEL=3 (TensorFlow's start-up chatter would bury the worker's error line).
INHERITED_VARIABLES = ("PATH", "HOME", "LANG", "TMPDIR")


def _inherited_env() -> dict[str, str]:
    return {k: os.environ[k] for k in INHERITED_VARIABLES if k in os.environ}


class TranslatorSettings(DatabaseSettings, ServerSettings):
    model_config = settings_config("TRANSLATOR")

    port: int = Field(PORTS["translator"].grpc, ge=0, le=65535, description="gRPC port of the Translator.")
    metrics_port: int = Field(PORTS["translator"].metrics, ge=-1, le=65535, description="Prometheus port; -1 off.")
    registry_target: str = Field(local_target("registry"), description="host:port of the Registry's gRPC server.")
    ledger_target: str = Field(local_target("ledger"), description="host:port of the Ledger's gRPC server.")
    storage: StorageSettings = Field(
        default_factory=StorageSettings,
        description="Object storage for ONNX files (key translations/<translation_id>): filesystem under "
        "<data_dir>/translator/objects (default) or S3/MinIO.")
    work_dir: Path | None = Field(
        None, description="Where translations run (<work_dir>/<translation_id>/: the model, its dataset, the "
        "ONNX file and the worker's report); removed when the call ends. Default: <data_dir>/translator/work.")
    ml_python: Path = Field(REPO / ".venv-ml" / "bin" / "python",
                            description="Python of the ML environment the conversion worker runs in "
                            "(`make ml-venv`).")
    worker_time_limit_seconds: float = Field(
        600.0, gt=0, description="Wall-clock limit of one conversion (load, convert, parity check); the worker "
        "is killed when it is hit.")
    default_opset: int = Field(18, ge=7, le=23, description="ONNX opset when TranslateModel leaves it at 0.")
    max_opset: int = Field(23, ge=7, le=30, description="Largest opset a request may ask for.")
    parity_rows: str = Field(
        "-256:", pattern=r"^-?\d*:-?\d*$",
        description="Dataset rows the parity batch is drawn from, START:STOP (half-open; negatives count from "
        "the end). The default, the last 256 rows, lies inside the held-out rows of the demo recipes (they test "
        "on the last 20%).")
    max_concurrent_translations: int = Field(
        1, ge=1, le=64, description="Conversions run at once; further TranslateModel calls wait their turn.")
    max_model_bytes: int = Field(32 << 30, ge=1, description="Largest source model the Translator downloads.")
    max_dataset_bytes: int = Field(64 << 30, ge=1, description="Largest dataset the Translator downloads.")
    read_chunk_bytes: int = Field(1 << 20, ge=4096, le=4 << 20, description="Bytes per download message.")
    reconcile_on_start: bool = Field(
        True, description="At start, check every translation against the chain and the object store in the "
        "background; log and export (mlmesh_recovery_inconsistencies) whatever is missing.")
    keep_work_dirs: bool = Field(False, description="Keep <work_dir>/<translation_id>/ after the call (debugging).")
    registry_timeout_seconds: float = Field(30.0, gt=0, description="Timeout of a unary Registry call.")
    ledger_deploy_timeout_seconds: float = Field(120.0, gt=0, description="Timeout of a contract deployment.")
    ledger_read_timeout_seconds: float = Field(30.0, gt=0, description="Timeout of a contract read.")
    inherited_env: dict[str, str] = Field(
        default_factory=_inherited_env,
        description="Variables the conversion worker inherits from the Translator's environment.")

    @model_validator(mode="after")
    def _defaults_under_data_dir(self) -> TranslatorSettings:
        if self.storage.backend == "filesystem" and self.storage.root is None:
            self.storage = self.storage.model_copy(update={"root": self.data_dir / "translator" / "objects"})
        if self.work_dir is None:
            self.work_dir = self.data_dir / "translator" / "work"
        if self.default_opset > self.max_opset:
            raise ValueError("default_opset is above max_opset")
        return self
