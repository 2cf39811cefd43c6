"""Settings shared by every server. Each server subclasses `ServerSettings` with
`model_config = settings_config("<NAME>")`, so its fields read `MLMESH_<NAME>_<FIELD>`;
the mesh-wide fields below read `MLMESH_<FIELD>` unless the server-specific variable
is set. This module and the per-server `settings.py` files are the only places that
read the environment.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class MeshSettings(BaseSettings):
    """Mesh-wide settings (env prefix `MLMESH_`)."""

    model_config = SettingsConfigDict(env_prefix="MLMESH_", extra="ignore")

    data_dir: Path = Field(
        Path(".mlmesh"),
        description="Where embedded state lives: PostgreSQL data, chain state, objects, keys, logs.",
    )
    database_url: str | None = Field(
        None,
        description="PostgreSQL DSN (postgresql://user:pass@host:port/db). Unset: the embedded PostgreSQL "
        "that `make up` starts, whose DSN it passes to the servers.",
    )
    log_level: str = Field("INFO", description="Python logging level of every server.")


def settings_config(name: str) -> SettingsConfigDict:
    """The pydantic-settings config of server `name`: env prefix `MLMESH_<NAME>_`; nested
    fields use `__` (e.g. `MLMESH_REGISTRY_STORAGE__BACKEND=s3`)."""
    return SettingsConfigDict(env_prefix=f"MLMESH_{name.upper()}_", env_nested_delimiter="__", extra="ignore")


def _mesh() -> MeshSettings:
    return MeshSettings()


def mesh_setting(name: str):
    """A default factory for a field that falls back to the mesh-wide `MLMESH_<NAME>`."""
    return lambda: getattr(_mesh(), name)


class TlsSettings(BaseSettings):
    """The component's mutual-TLS identity (servers.common.tls): env `MLMESH_TLS_CA_FILE`,
    `MLMESH_TLS_CERT_FILE`, `MLMESH_TLS_KEY_FILE` for the whole process, or per server
    `MLMESH_<NAME>_TLS__CA_FILE`, ... (a field set there wins over the mesh-wide one).
    All three or none: unset, the server serves plaintext (tests and development only)."""

    model_config = SettingsConfigDict(env_prefix="MLMESH_TLS_", extra="ignore")

    ca_file: Path | None = Field(
        None, description="PEM of the mesh CA: callers must present a certificate it signed, and peers are "
        "trusted only if it signed theirs.")
    cert_file: Path | None = Field(None, description="PEM certificate of this component (CN = the component).")
    key_file: Path | None = Field(None, description="PEM private key of `cert_file` (keep it 0600).")

    @model_validator(mode="after")
    def _all_or_none(self) -> TlsSettings:
        given = [name for name in ("ca_file", "cert_file", "key_file") if getattr(self, name) is not None]
        if given and len(given) != 3:
            missing = sorted({"ca_file", "cert_file", "key_file"} - set(given))
            raise ValueError(f"TLS needs ca_file, cert_file and key_file together; missing {', '.join(missing)} "
                             "(MLMESH_TLS_<FIELD>)")
        return self

    @property
    def enabled(self) -> bool:
        return self.ca_file is not None

    def files(self):
        """The PEM bytes (servers.common.tls.TlsFiles), or None when TLS is off."""
        if not self.enabled:
            return None
        from servers.common.tls import TlsFiles

        return TlsFiles.read(self.ca_file, self.cert_file, self.key_file)


class ServerSettings(BaseSettings):
    """What every gRPC server needs. Subclass it; do not instantiate it directly."""

    model_config = settings_config("SERVER")

    host: str = Field("127.0.0.1", description="Interface the gRPC server binds.")
    port: int = Field(0, ge=0, le=65535, description="gRPC port; 0 picks a free one (tests).")
    metrics_host: str = Field("127.0.0.1", description="Interface of the Prometheus /metrics endpoint.")
    metrics_port: int = Field(
        -1, ge=-1, le=65535, description="Prometheus port; 0 picks a free one, -1 turns metrics serving off."
    )
    data_dir: Path = Field(default_factory=lambda: _mesh().data_dir, description="See MeshSettings.data_dir.")
    log_level: str = Field(default_factory=lambda: _mesh().log_level, description="Python logging level.")
    grace_seconds: float = Field(
        10.0, ge=0, description="On SIGTERM: how long in-flight calls may finish before they are cancelled."
    )
    drain_seconds: float = Field(
        1.0, ge=0,
        description="On SIGTERM: how long health reports NOT_SERVING while the server still serves, so load "
        "balancers and Envoy stop sending new calls before the listener closes.",
    )
    io_threads: int = Field(
        32, ge=4, le=512,
        description="Threads for blocking work (file I/O, hashing, S3 calls). Each streaming upload holds "
        "up to three at once, so the default of min(32, cores + 4) would starve a few concurrent uploads.",
    )
    max_message_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Largest single gRPC message accepted or sent."
    )
    tls: TlsSettings = Field(
        default_factory=TlsSettings,
        description="Mutual TLS (MLMESH_TLS_* or MLMESH_<NAME>_TLS__*): set, callers need a certificate from "
        "the mesh CA; unset, anyone who reaches the port can claim any organization.",
    )


class DatabaseSettings(BaseSettings):
    """Mixin for a server that keeps state in PostgreSQL: `database_url` defaults to the mesh-wide
    `MLMESH_DATABASE_URL`; `MLMESH_<NAME>_DATABASE_URL` overrides it for one server."""

    database_url: str | None = Field(
        default_factory=mesh_setting("database_url"),
        description="PostgreSQL DSN of this server's tables (default: MLMESH_DATABASE_URL). Every server prefixes "
        "its tables, so all can share one database.",
    )

    def require_database_url(self) -> str:
        """The DSN, or FailedPrecondition naming the variables to set (a server's start-up check)."""
        if not self.database_url:
            from servers.common import errors

            prefix = self.model_config.get("env_prefix", "MLMESH_")
            raise errors.FailedPrecondition(
                f"no database: set MLMESH_DATABASE_URL (or {prefix}DATABASE_URL); `make up` does this for the "
                "embedded PostgreSQL")
        return self.database_url
