"""Trainer settings: defaults, MLMESH_TRAINER_* variables, the mesh-wide fallbacks."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from servers.common.endpoints import PORTS
from servers.trainer.settings import TrainerSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for key in list(os.environ):
        if key.startswith("MLMESH_"):
            monkeypatch.delenv(key)


def test_defaults():
    s = TrainerSettings()
    assert (s.port, s.metrics_port, s.registry_target) == (*PORTS["trainer"], "127.0.0.1:50051")
    assert s.work_dir == Path(".mlmesh") / "trainer" and s.executor == "local" and s.max_concurrent_jobs == 1
    assert (s.default_time_limit_seconds, s.max_time_limit_seconds) == (3600, 86400)
    assert (s.default_memory_limit_bytes, s.max_memory_limit_bytes) == (4 << 30, 16 << 30)
    assert s.ml_python.parts[-3:] == (".venv-ml", "bin", "python")
    assert set(s.inherited_env) <= {"PATH", "HOME", "LANG"}


def test_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MLMESH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MLMESH_DATABASE_URL", "postgresql://u@db/mlmesh")
    monkeypatch.setenv("MLMESH_TRAINER_EXECUTOR", "argo")
    monkeypatch.setenv("MLMESH_TRAINER_ARGO__SERVER_URL", "https://argo:2746")
    monkeypatch.setenv("MLMESH_TRAINER_ARGO__NAMESPACE", "ml")
    s = TrainerSettings()
    assert s.work_dir == tmp_path / "trainer" and s.database_url == "postgresql://u@db/mlmesh"
    assert s.executor == "argo" and s.argo.server_url == "https://argo:2746" and s.argo.namespace == "ml"


def test_refusals(monkeypatch):
    monkeypatch.setenv("MLMESH_TRAINER_EXECUTOR", "slurm")
    with pytest.raises(ValidationError):
        TrainerSettings()
    monkeypatch.delenv("MLMESH_TRAINER_EXECUTOR")
    with pytest.raises(ValidationError, match="above max_time_limit_seconds"):
        TrainerSettings(default_time_limit_seconds=100, max_time_limit_seconds=10)
