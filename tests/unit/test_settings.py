"""Settings come from MLMESH_* variables: per-server prefixes, mesh-wide fallbacks, nested storage."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from servers.devstack.settings import DevstackSettings
from servers.ledger.settings import LedgerSettings
from servers.registry.settings import REGISTRY_PORT, RegistrySettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for key in list(os.environ):
        if key.startswith("MLMESH_"):
            monkeypatch.delenv(key)


def test_registry_defaults():
    s = RegistrySettings()
    assert s.port == REGISTRY_PORT and s.metrics_port == 9101
    assert s.data_dir == Path(".mlmesh")
    assert s.storage.backend == "filesystem" and s.storage.root == Path(".mlmesh") / "objects"
    assert s.database_url is None


def test_mesh_wide_variables_apply_to_every_server(monkeypatch):
    monkeypatch.setenv("MLMESH_DATA_DIR", "/srv/mesh")
    monkeypatch.setenv("MLMESH_DATABASE_URL", "postgresql://u@db:5432/mlmesh")
    s = RegistrySettings()
    assert s.data_dir == Path("/srv/mesh") and s.storage.root == Path("/srv/mesh/objects")
    assert s.database_url == "postgresql://u@db:5432/mlmesh"
    assert LedgerSettings().data_dir == Path("/srv/mesh")


def test_server_variables_win_over_mesh_wide_ones(monkeypatch):
    monkeypatch.setenv("MLMESH_DATA_DIR", "/srv/mesh")
    monkeypatch.setenv("MLMESH_REGISTRY_DATA_DIR", "/srv/registry")
    monkeypatch.setenv("MLMESH_REGISTRY_PORT", "6000")
    s = RegistrySettings()
    assert s.data_dir == Path("/srv/registry") and s.port == 6000
    assert LedgerSettings().data_dir == Path("/srv/mesh")


def test_nested_storage_settings(monkeypatch):
    monkeypatch.setenv("MLMESH_REGISTRY_STORAGE__BACKEND", "s3")
    monkeypatch.setenv("MLMESH_REGISTRY_STORAGE__ENDPOINT", "minio:9000")
    monkeypatch.setenv("MLMESH_REGISTRY_STORAGE__ACCESS_KEY", "ak")
    monkeypatch.setenv("MLMESH_REGISTRY_STORAGE__SECRET_KEY", "sk")
    s = RegistrySettings()
    assert (s.storage.backend, s.storage.endpoint, s.storage.root) == ("s3", "minio:9000", None)
    assert s.storage.secret_key.get_secret_value() == "sk"
    assert "sk" not in repr(s)


@pytest.mark.parametrize("var, value", [("MLMESH_REGISTRY_PORT", "70000"), ("MLMESH_REGISTRY_PORT", "http"),
                                        ("MLMESH_REGISTRY_STORAGE__BACKEND", "ftp")])
def test_bad_values_are_refused_with_the_field_named(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError) as info:
        RegistrySettings()
    assert var.removeprefix("MLMESH_REGISTRY_").lower().split("__")[0] in str(info.value)


def test_devstack_ports(monkeypatch):
    monkeypatch.setenv("MLMESH_ENVOY_PORT", "18080")
    s = DevstackSettings()
    assert s.envoy_port == 18080 and s.registry_port == 50051 and s.ledger_port == 50052
    assert s.run_dir == Path(".mlmesh").resolve() / "run"
