"""CLI settings (env prefix MLMESH_). The only place the CLI reads the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ClientSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MLMESH_", extra="ignore")

    data_dir: Path = Field(Path(".mlmesh"), description="Local mesh state; its identity keys mint dev tokens.")
    envoy_port: int = Field(8080, description="Port of the local Envoy front door.")
    target: str | None = Field(None, description="host:port of the front door (default 127.0.0.1:<envoy_port>).")
    token: str | None = Field(None, description="Bearer token; unset: minted from the local identity keys.")
    org: str = Field("smart-energy-ll", description="Organization for minted tokens and uploads.")
    jwt_issuer: str = Field("mlmesh-local", description="Issuer of minted tokens.")
    jwt_audience: str = Field("mlmesh", description="Audience of minted tokens.")

    @property
    def front_door(self) -> str:
        return self.target or f"127.0.0.1:{self.envoy_port}"
