"""The seed's model-sharing walk-through through Envoy with the real Trainer: register a
dataset, register a model with a recipe, watch it train, download it, prove it on the ledger;
and what happens to recipes that crash, run too long, or lose their Trainer."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import httpx
import pytest

from clients.recipes import pack_recipe

REPO = Path(__file__).resolve().parents[2]
ORG = "smart-energy-ll"


@pytest.fixture(scope="module")
def digits(stack, tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("digits") / "digits.csv"
    subprocess.run([str(REPO / ".venv-ml/bin/python"), str(REPO / "examples/make_digits_csv.py"), "--out", str(path)],
                   check=True, capture_output=True)
    r = httpx.post(f"{stack.base_url}/v1/datasets:upload",
                   params={"organization_id": ORG, "display_name": "digits", "samples_dimension": "(1797,65)"},
                   content=path.read_bytes(), headers={**stack.auth(), "content-type": "text/csv"}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def archive_of(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sklearn_recipe(train_py: str) -> bytes:
    toml = ('[recipe]\nname = "t"\nentrypoint = "train.py"\nframework = "sklearn"\n'
            '[recipe.input]\nshape = [-1, 64]\ndtype = "float32"\n')
    return archive_of({"recipe.toml": toml, "train.py": train_py})


def create(stack, dataset_id: str, archive: bytes, name: str, **params) -> httpx.Response:
    query = {"organization_id": ORG, "developer_id": "dev-7", "dataset_id": dataset_id, "display_name": name,
             "recipe_filename": f"{name}.tar.gz", **params}
    return httpx.post(f"{stack.base_url}/v1/models", params=query, content=archive,
                      headers={**stack.auth(), "content-type": "application/gzip"}, timeout=60)


def wait_for(stack, model_id: str, states=("STATE_TRAINED", "STATE_FAILED"), timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = httpx.get(f"{stack.base_url}/v1/models/{model_id}", headers=stack.auth(), timeout=30).json()
        if model["state"] in states:
            return model
        time.sleep(0.5)
    raise AssertionError(f"model {model_id} still {model['state']} after {timeout}s")


def test_walkthrough_cnn_recipe_trains_and_the_ledger_proves_it(stack, digits, tmp_path):
    archive = pack_recipe(REPO / "examples/recipes/digits-cnn", tmp_path / "digits-cnn.tar.gz").read_bytes()
    r = create(stack, digits["dataset_id"], archive, "digits-cnn")
    assert r.status_code == 200, r.text
    model = r.json()
    assert model["state"] == "STATE_PENDING" and model["training_job_id"]

    # Watch over REST: the server stream comes back as a JSON array that ends with the job.
    with httpx.stream("GET", f"{stack.base_url}/v1/trainingJobs/{model['training_job_id']}:watch",
                      headers=stack.auth(), timeout=180) as watch:
        assert watch.status_code == 200
        events = json.loads(watch.read())
    states = [e["job"]["state"] for e in events if "job" in e]
    logs = [e["log"]["text"] for e in events if "log" in e]
    assert states[-1] == "STATE_SUCCEEDED", (states, logs[-10:])
    assert "STATE_TRAINING" in states and any("test accuracy" in line for line in logs)

    trained = wait_for(stack, model["model_id"], ("STATE_TRAINED",))
    assert trained["framework"] == "pytorch" and json.loads(trained["input_signature"])["shape"] == [None, 1, 8, 8]
    blob = httpx.get(f"{stack.base_url}/model/{model['model_id']}", headers=stack.auth(), timeout=60)  # seed route
    assert blob.status_code == 200 and blob.headers["x-mlmesh-sha256"] == trained["res_sha256"]
    meta = httpx.get(f"{stack.base_url}/model/{model['model_id']}/metadata", headers=stack.auth(), timeout=60).json()
    assert meta["consistent"] is True
    chain = meta["on_chain"]
    assert hashlib.md5(blob.content).hexdigest() == chain["res_hash"] == trained["res_md5"]
    assert chain["train_image_hash"] == hashlib.md5(archive).hexdigest()
    assert chain["dataset_id"] == digits["dataset_id"] and chain["verified"] is True
    recipe = httpx.get(f"{stack.base_url}/v1/models/{model['model_id']}/recipe:download", headers=stack.auth(),
                       timeout=60)
    assert recipe.content == archive

    # Translate (the seed's POST /translate/{model_id}) and fetch the ONNX file.
    r = httpx.post(f"{stack.base_url}/translate/{model['model_id']}", json={}, headers=stack.auth(), timeout=600)
    assert r.status_code == 200, r.text
    translation = r.json()
    assert translation["model_id"] == model["model_id"] and translation["source_sha256"] == trained["res_sha256"]
    assert translation["parity"]["passed"] is True and translation["parity"]["max_abs_diff"] < 1e-4
    assert translation["contract_address"].startswith("0x")
    onnx = httpx.get(f"{stack.base_url}/v1/translations/{translation['translation_id']}:download",
                     headers=stack.auth(), timeout=60)
    assert onnx.status_code == 200 and hashlib.sha256(onnx.content).hexdigest() == translation["sha256"]
    listed = httpx.get(f"{stack.base_url}/v1/translations", params={"model_id": model["model_id"]},
                       headers=stack.auth(), timeout=30).json()["translations"]
    assert [t["translation_id"] for t in listed] == [translation["translation_id"]]


def test_download_before_training_is_failed_precondition_with_the_seed_message(stack, digits):
    slow = sklearn_recipe("import time\ntime.sleep(20)\n")
    model = create(stack, digits["dataset_id"], slow, "slow").json()
    r = httpx.get(f"{stack.base_url}/model/{model['model_id']}", headers=stack.auth(), timeout=30)
    assert r.status_code == 400 and r.json()["code"] == 9  # FAILED_PRECONDITION
    assert r.json()["message"] == f"Model {model['model_id']} has not been trained yet. Please, try again later."
    t = httpx.post(f"{stack.base_url}/v1/models/{model['model_id']}:translate", json={}, headers=stack.auth(),
                   timeout=60)
    assert t.status_code == 400 and t.json()["code"] == 9, t.text  # an untrained model cannot be translated
    job = model["training_job_id"]
    cancelled = httpx.post(f"{stack.base_url}/v1/trainingJobs/{job}:cancel", json={}, headers=stack.auth(),
                           timeout=30)
    assert cancelled.status_code == 200, cancelled.text
    assert wait_for(stack, model["model_id"])["state"] == "STATE_FAILED"


def test_crashing_recipe_fails_with_its_error_visible(stack, digits):
    crash = sklearn_recipe("raise RuntimeError('the sensor CSV has no label column')\n")
    model = create(stack, digits["dataset_id"], crash, "crash").json()
    failed = wait_for(stack, model["model_id"])
    assert failed["state"] == "STATE_FAILED"
    assert "the sensor CSV has no label column" in failed["failure_reason"]
    assert failed["res_md5"] == "" and failed["verify_tx_hash"] == ""


def test_recipe_over_its_time_limit_fails(stack, digits):
    model = create(stack, digits["dataset_id"], sklearn_recipe("import time\ntime.sleep(60)\n"), "sleepy",
                   time_limit_seconds=2).json()
    failed = wait_for(stack, model["model_id"])
    assert failed["state"] == "STATE_FAILED" and "time limit" in failed["failure_reason"]


def test_malformed_recipe_fails_with_a_clear_reason(stack, digits):
    model = create(stack, digits["dataset_id"], archive_of({"train.py": "print(1)\n"}), "no-toml").json()
    failed = wait_for(stack, model["model_id"])
    assert failed["state"] == "STATE_FAILED" and "recipe.toml" in failed["failure_reason"]


def test_unknown_dataset_is_404_and_registers_nothing(stack):
    before = httpx.get(f"{stack.base_url}/v1/models", headers=stack.auth(), timeout=30).json()["models"]
    r = create(stack, "5d066d58-06de-47ab-a2f6-c8f413e21947", sklearn_recipe("print(1)\n"), "orphan")
    assert r.status_code == 404, r.text
    after = httpx.get(f"{stack.base_url}/v1/models", headers=stack.auth(), timeout=30).json()["models"]
    assert len(after) == len(before)


@pytest.mark.controls_processes
def test_kill_9_of_the_trainer_mid_job_fails_the_job_and_never_trains_the_model(stack, digits):
    model = create(stack, digits["dataset_id"], sklearn_recipe("import time\ntime.sleep(60)\n"), "orphaned").json()
    deadline = time.monotonic() + 60
    while wait_for(stack, model["model_id"], ("STATE_TRAINING", "STATE_FAILED"))["state"] != "STATE_TRAINING":
        assert time.monotonic() < deadline
    os.killpg(stack.pid("trainer"), signal.SIGKILL)
    stack.devstack("up")  # restarts the Trainer, which settles what it was running
    failed = wait_for(stack, model["model_id"], timeout=60)
    assert failed["state"] == "STATE_FAILED" and "restarted" in failed["failure_reason"]
    job = httpx.get(f"{stack.base_url}/v1/trainingJobs/{model['training_job_id']}", headers=stack.auth(),
                    timeout=30).json()
    assert job["state"] == "STATE_FAILED"
