"""Reproducing models through Envoy on the whole devstack (real Registry, Ledger on Anvil, Trainer
running the recipes and the comparison worker in .venv-ml): POST /v1/models/{id}:reproduce over REST
for the seeded logistic regression (IDENTICAL), the seed's POST /train/{id}, `mlmesh models reproduce`
for a one-epoch CNN (DIFFERENT, with the measured max output difference), and a stranger's NOT_FOUND
over REST and native gRPC."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import mlmesh
from mlmesh.client import errors

REPO = Path(__file__).resolve().parents[2]
ORG = "smart-energy-ll"
STRANGER = "nobody-ll"


def _wait_trained(client, model_id: str) -> None:
    deadline = time.monotonic() + 300
    while (model := client.models.get(model_id)).state not in (model.STATE_TRAINED, model.STATE_FAILED):
        assert time.monotonic() < deadline, "the model is still training"
        time.sleep(0.5)
    assert model.state == model.STATE_TRAINED


@pytest.fixture(scope="module")
def models(stack, tmp_path_factory) -> dict:
    """The digits dataset with two trained models on it: digits-logreg and digits-cnn at one epoch."""
    work = tmp_path_factory.mktemp("reproduce")
    data = work / "digits.csv"
    subprocess.run([str(REPO / ".venv-ml/bin/python"), str(REPO / "examples/make_digits_csv.py"), "--out", str(data)],
                   check=True, capture_output=True)
    cnn = work / "digits-cnn-1"
    shutil.copytree(REPO / "examples/recipes/digits-cnn", cnn)
    toml = (cnn / "recipe.toml").read_text()
    assert "\nepochs = 10\n" in toml
    (cnn / "recipe.toml").write_text(toml.replace("\nepochs = 10\n", "\nepochs = 1\n"))
    with mlmesh.Client(stack.envoy, token=stack.token(ORG)) as client:
        dataset = client.datasets.upload(data, content_type="text/csv")
        ids = {name: client.models.create(dataset_id=dataset.dataset_id, display_name=name, recipe=recipe).model_id
               for name, recipe in (("logreg", REPO / "examples/recipes/digits-logreg"), ("cnn", cnn))}
        for model_id in ids.values():
            _wait_trained(client, model_id)
    return ids


def _job_end(stack, job_id: str) -> dict:
    deadline = time.monotonic() + 300
    while (job := httpx.get(f"{stack.base_url}/v1/trainingJobs/{job_id}", headers=stack.auth(),
                            timeout=30).json())["state"] not in ("STATE_SUCCEEDED", "STATE_FAILED", "STATE_CANCELLED"):
        assert time.monotonic() < deadline, f"job still {job['state']}"
        time.sleep(0.5)
    return job


def test_rest_reproduce_of_the_seeded_sklearn_recipe_is_identical(stack, models):
    model_id = models["logreg"]
    ledger = httpx.get(f"{stack.base_url}/v1/models/{model_id}/provenance", headers=stack.auth(), timeout=60).json()

    r = httpx.post(f"{stack.base_url}/v1/models/{model_id}:reproduce", json={}, headers=stack.auth(), timeout=60)
    assert r.status_code == 200, r.text
    job = _job_end(stack, r.json()["job_id"])

    assert r.json()["purpose"] == "PURPOSE_REPRODUCTION"
    assert job["state"] == "STATE_SUCCEEDED", job
    rep = job["reproduction"]
    assert rep["outcome"] == "OUTCOME_IDENTICAL"
    assert rep["reproduced_sha256"] == rep["ledger_res_sha256"] == ledger["on_chain"]["res_sha256"]


def test_the_seed_train_route_schedules_a_reproduction(stack, models):
    r = httpx.post(f"{stack.base_url}/train/{models['logreg']}", json={}, headers=stack.auth(), timeout=60)

    assert r.status_code == 200, r.text
    assert r.json()["purpose"] == "PURPOSE_REPRODUCTION" and r.json()["model_id"] == models["logreg"]
    assert _job_end(stack, r.json()["job_id"])["reproduction"]["outcome"] == "OUTCOME_IDENTICAL"


def test_cli_reproduces_the_cnn_and_reports_the_max_output_difference(stack, models):
    env = {**os.environ, "MLMESH_TARGET": stack.envoy, "MLMESH_TOKEN": stack.token(ORG)}

    result = subprocess.run([sys.executable, "-m", "clients.cli", "models", "reproduce", models["cnn"]], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=400)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "SUCCEEDED" in result.stdout
    assert "DIFFERENT: sha256" in result.stdout and "max |original - reproduced|" in result.stdout
    assert "over 1797 rows" in result.stdout


def test_a_stranger_is_told_the_model_does_not_exist(stack, models):
    unknown = "3f9a1c1e-2b7d-4a55-8d0e-6c1f9e2b4a10"
    rest = [httpx.post(f"{stack.base_url}/v1/models/{m}:reproduce", json={}, headers=stack.auth(STRANGER),
                       timeout=30) for m in (models["logreg"], unknown)]
    with mlmesh.Client(stack.envoy, token=stack.token(STRANGER)) as stranger:
        with pytest.raises(errors.NotFound) as info:
            stranger.jobs.reproduce(models["logreg"])

    assert [r.status_code for r in rest] == [404, 404]
    assert rest[0].json()["message"].replace(models["logreg"], "ID") == rest[1].json()["message"].replace(unknown, "ID")
    assert info.value.reason == "MODEL_NOT_FOUND"  # the SDK's NOT_FOUND, over native gRPC
