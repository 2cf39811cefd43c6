"""The `mlmesh` CLI's learner commands through Envoy, as a user runs them (the installed console
script, a token minted from the stack's identity): create, list, show, learn a CSV, follow the
events, predict, explain, monitor, delete; --json everywhere, and the exit code and JSON error of a
stranger's call. Also `datasets list --owner` and `translations list`."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MLMESH = REPO / ".venv" / "bin" / "mlmesh"
ML_PYTHON = REPO / ".venv-ml" / "bin" / "python"
ORG, PARTNER, STRANGER = "cli-learners-org", "cli-learners-partner", "cli-learners-stranger"


@pytest.fixture(scope="module")
def env(stack) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k != "MLMESH_TOKEN"}
    return {**environ, **stack.env, "MLMESH_TARGET": stack.envoy, "MLMESH_ORG": ORG, "COLUMNS": "200"}


def mlmesh(env, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(MLMESH), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, f"mlmesh {' '.join(args)}: {result.returncode}\n{result.stderr}"
    return result


def as_json(env, *args: str):
    return json.loads(mlmesh(env, *args, "--json").stdout)


@pytest.fixture(scope="module")
def meter_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "meter-7.csv"
    subprocess.run([str(ML_PYTHON), str(REPO / "examples/make_power_csv.py"), "--out", str(path), "--days", "6",
                    "--seed", "3"], check=True, capture_output=True)
    return path


def test_learner_commands_end_to_end(env, meter_csv):
    # Prepare: the reference dataset, uploaded and shared with a partner
    ds = as_json(env, "datasets", "upload", str(meter_csv), "--content-type", "text/csv")
    assert ds["organization_id"] == ORG
    as_json(env, "datasets", "share", ds["dataset_id"], "--with", PARTNER)
    seen = as_json(env, "datasets", "list", "--owner", ORG, "--org", PARTNER)
    assert ds["dataset_id"] in [d["dataset_id"] for d in seen]

    # Execute: create a learner and stream the CSV into it while another process follows its events
    params = ["--transformer-param", "window=36", "--transformer-param", "horizon=96",
              "--transformer-param", "interval_seconds=900", "--transformer-param", "scale_min=0",
              "--transformer-param", "scale_max=80"]
    learner = as_json(env, "learners", "create", "--name", f"cli-{ds['dataset_id'][:8]}", "--backend", "pytorch",
                      "--transformer", "power-forecast", "--backend-param", "architecture=gru", "--backend-param",
                      "hidden_size=8", *params, "--reference-dataset", ds["dataset_id"], "--save-min-observations",
                      "96", "--save-window", "96")
    lid = learner["learner_id"]
    assert learner["state"] == "STATE_READY" and learner["spec"]["backend"] == "pytorch"
    events = subprocess.Popen([str(MLMESH), "learners", "events", lid, "--json", "--limit", "1", "--timeout", "240"],
                              env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # the follower subscribes; the learn stream below saves several versions, seconds apart
    learned = as_json(env, "learners", "learn", lid, str(meter_csv), "--sensor-id", "m-7")
    out, err = events.communicate(timeout=300)

    # Assert: what was learned, the event seen live, and every reading command
    assert learned["last"]["observations_received"] == "576"  # int64 in JSON is a string
    saved = {v["model_id"] for v in learned["saved"]}
    assert saved, "a learner past min_observations saves its first version"
    assert events.returncode == 0, err
    (event,) = [json.loads(line) for line in out.splitlines()]
    assert event["kind"] == "KIND_VERSION_SAVED" and event["saved"]["model_id"] in saved

    forecast = as_json(env, "learners", "predict", lid, "--sensor-id", "m-7")
    assert len(forecast["predictions"]) == 1 and forecast["model_id"] in saved
    rows = as_json(env, "learners", "predict", lid, "--values", ",".join(["0.3"] * 36), "--values",
                   ",".join(["0.5"] * 36))
    assert len(rows["predictions"]) == 2
    explanation = as_json(env, "learners", "explain", lid, "--sensor-id", "m-7")
    assert len(explanation["attributions"]) == 36 and explanation["method"]
    report = as_json(env, "learners", "monitor", lid, "--refresh")
    assert report["drift"]["feature_count"] == 36
    assert lid in [x["learner_id"] for x in as_json(env, "learners", "list")]
    assert as_json(env, "learners", "show", lid)["version"] >= 1
    assert as_json(env, "translations", "list") == []
    human = mlmesh(env, "learners", "show", lid)
    assert lid in human.stdout

    # a stranger: NOT_FOUND, exit 1, the error as JSON on stderr
    refused = mlmesh(env, "learners", "show", lid, "--org", STRANGER, "--json", check=False)
    assert refused.returncode == 1
    error = json.loads(refused.stderr)["error"]
    assert (error["code"], error["reason"]) == ("NOT_FOUND", "LEARNER_NOT_FOUND") and error["request_id"]

    assert as_json(env, "learners", "delete", lid) == {"deleted": lid}
    gone = mlmesh(env, "learners", "show", lid, check=False)
    assert gone.returncode == 1 and "NOT_FOUND" in gone.stderr


def test_an_unreachable_mesh_exits_3(env, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = mlmesh({**env, "MLMESH_TARGET": f"127.0.0.1:{port}"}, "learners", "list", check=False)
    assert result.returncode == 3 and "UNAVAILABLE" in result.stderr and "make up" in result.stderr
