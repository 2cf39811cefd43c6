"""Settings come from MLMESH_* variables: per-server prefixes, mesh-wide fallbacks, nested storage."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from servers.devstack.settings import DevstackSettings
from servers.ledger.settings import LedgerSettings
from servers.common.endpoints import PORTS
from servers.registry.settings import RegistrySettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for key in list(os.environ):
        if key.startswith("MLMESH_"):
            monkeypatch.delenv(key)


def test_registry_defaults():
    s = RegistrySettings()
    assert (s.port, s.metrics_port) == PORTS["registry"]
    assert s.data_dir == Path(".mlmesh")
    assert s.storage.backend == "filesystem" and s.storage.root == Path(".mlmesh") / "objects"
    assert s.database_url is None


def test_ledger_defaults_come_from_the_port_table():
    s = LedgerSettings()
    assert (s.port, s.metrics_port) == PORTS["ledger"]


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


def test_devstack_ports_default_to_the_port_table():
    from servers.common.endpoints import ANVIL_PORT, ENVOY_ADMIN_PORT, ENVOY_PORT, PORTS, POSTGRES_PORT
    from servers.devstack.mesh import SERVERS

    s = DevstackSettings()
    assert {server.name for server in SERVERS} == set(PORTS)
    for name, ports in PORTS.items():
        assert s.ports(name) == ports
    assert (s.envoy_port, s.envoy_admin_port, s.postgres_port, s.anvil_port) == (
        ENVOY_PORT, ENVOY_ADMIN_PORT, POSTGRES_PORT, ANVIL_PORT)
