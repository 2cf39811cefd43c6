"""Runs inside .venv-provenance (securesystemslib, in-toto-attestation; no mlmesh code, no mlmesh
dependency): `.venv-provenance/bin/python -m pytest --confcutdir=tests/provenance_venv tests/provenance_venv`.
tests/e2e/test_provenance_via_envoy.py exports a real model's attestations from a running mesh
and runs this suite on them, naming the files in MLMESH_ATTESTATIONS (the .intoto.jsonl),
MLMESH_PUBLIC_KEY (the mesh's public key, PEM), MLMESH_ARTIFACT (the downloaded model) and
MLMESH_MODEL_SIGNATURE (GetModelSignature's model_signing signature of it, model.sig)."""

import os
from pathlib import Path

import pytest


def _file(name: str) -> Path:
    value = os.environ.get(name)
    if not value or not Path(value).is_file():
        pytest.fail(f"{name} must name a file (tests/e2e/test_provenance_via_envoy.py sets it)", pytrace=False)
    return Path(value)


@pytest.fixture(scope="session")
def attestations() -> Path:
    return _file("MLMESH_ATTESTATIONS")


@pytest.fixture(scope="session")
def public_key_pem() -> bytes:
    return _file("MLMESH_PUBLIC_KEY").read_bytes()


@pytest.fixture(scope="session")
def artifact() -> Path:
    return _file("MLMESH_ARTIFACT")


@pytest.fixture(scope="session")
def model_signature() -> Path:
    return _file("MLMESH_MODEL_SIGNATURE")
