"""The Learner through the front door: native gRPC with a token for the streams, REST for the
unary calls, and the Open Inference Protocol with Triton's own client (tritonclient, in the ML
environment, as a separate process)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2
from mlmesh.learner.v1 import learner_service_pb2 as lpb
from mlmesh.learner.v1 import learner_service_pb2_grpc as lgrpc

from clients.sensors import observation, read_rows

REPO = Path(__file__).resolve().parents[2]
ML_PYTHON = REPO / ".venv-ml" / "bin" / "python"
ORG = "smart-energy-ll"

TRITON_CLIENT = r"""
import sys, json
import numpy as np
import tritonclient.grpc as tg
target, token, name = sys.argv[1:4]
rows = np.asarray(json.loads(sys.argv[4]), dtype=np.float64)
headers = {"authorization": "Bearer " + token}
client = tg.InferenceServerClient(url=target)
out = {"live": client.is_server_live(headers=headers), "ready": client.is_model_ready(name, headers=headers)}
meta = client.get_model_metadata(name, headers=headers, as_json=True)
out["inputs"] = meta["inputs"]
inp = tg.InferInput("input-0", list(rows.shape), "FP64")
inp.set_data_from_numpy(rows)
result = client.infer(name, [inp], headers=headers)
out["predict"] = result.as_numpy("predict").reshape(-1).tolist()
try:
    client.infer("no-such-model", [inp], headers=headers)
except tg.InferenceServerException as exc:
    out["unknown"] = exc.status()
other = {"authorization": "Bearer " + sys.argv[5]}
out["other_org_ready"] = client.is_model_ready(name, headers=other)
try:
    client.infer(name, [inp], headers=other)
except tg.InferenceServerException as exc:
    out["other_org"] = exc.status()
print(json.dumps(out))
"""


def _readings(path: Path, sensor: str) -> list[lpb.Observation]:
    return [observation(r, sensor) for r in read_rows(path, "timestamp", "power_kw")]


@pytest.fixture(scope="module")
def power_dataset(stack, tmp_path_factory) -> tuple[str, Path]:
    path = tmp_path_factory.mktemp("power") / "consumption.csv"
    subprocess.run([str(ML_PYTHON), str(REPO / "examples/make_power_csv.py"), "--out", str(path), "--days", "4",
                    "--seed", "5"], check=True, capture_output=True)
    r = httpx.post(f"{stack.base_url}/v1/datasets:upload", params={"organization_id": ORG,
                   "display_name": "uc10-reference"}, content=path.read_bytes(),
                   headers={**stack.auth(), "content-type": "text/csv"}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["dataset_id"], path


def test_learner_through_envoy_grpc_rest_and_tritonclient(stack, power_dataset, tmp_path):
    dataset_id, csv_path = power_dataset
    name = f"uc10-envoy-{tmp_path.name[-6:]}"
    params = struct_pb2.Struct()
    params.update({"window": 36, "horizon": 96, "interval_seconds": 900, "scale_min": 0, "scale_max": 80})
    token = stack.token()
    metadata = (("authorization", f"Bearer {token}"),)
    with grpc.insecure_channel(stack.envoy) as channel:
        stub = lgrpc.LearnerServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:  # no token: Envoy refuses
            stub.ListLearners(lpb.ListLearnersRequest())
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        learner = stub.CreateLearner(lpb.CreateLearnerRequest(learner=lpb.Learner(
            display_name=name, developer_id="dev-3", spec=lpb.LearnerSpec(
                backend="sklearn", task="regression", transformer="power-forecast", transformer_params=params,
                reference_dataset_id=dataset_id, save_policy=lpb.SavePolicy(min_observations=64)))),
            metadata=metadata)
        assert learner.organization_id == ORG  # from the token

        obs = _readings(csv_path, "meter-7")

        def requests():
            for i in range(0, len(obs), 96):
                yield lpb.LearnRequest(learner_id=learner.learner_id, observations=obs[i:i + 96])
        acks = list(stub.Learn(requests(), metadata=metadata))
        assert acks[-1].observations_learned == len(obs) - 36 - 96 + 1
        assert any(a.HasField("saved") for a in acks)

        stream = list(stub.PredictStream(iter([lpb.PredictRequest(learner_id=learner.learner_id,
                                                                  sensor_id="meter-7")] * 3), metadata=metadata))
        assert len(stream) == 3 and len({s.predictions[0].values[0] for s in stream}) == 1

    auth = stack.auth()
    got = httpx.get(f"{stack.base_url}/v1/learners/{learner.learner_id}", headers=auth, timeout=30)
    assert got.status_code == 200 and got.json()["observations_learned"] == str(len(obs) - 131)
    window = [o.reading.value for o in obs[-36:]]
    r = httpx.post(f"{stack.base_url}/v1/learners/{learner.learner_id}:predict", headers=auth, timeout=30,
                   json={"inputs": [{"row": {"values": window}}]})
    assert r.status_code == 200, r.text
    rest_value = r.json()["predictions"][0]["values"][0]
    bad = httpx.post(f"{stack.base_url}/v1/learners/{learner.learner_id}:predict", headers=auth, timeout=30,
                     json={"inputs": [{"row": {"values": [1, 2, 3]}}]})
    assert bad.status_code == 400 and "36" in bad.text
    monitoring = httpx.get(f"{stack.base_url}/v1/learners/{learner.learner_id}/monitoring", headers=auth,
                           params={"refresh": "true"}, timeout=60)
    assert monitoring.status_code == 200 and int(monitoring.json()["errors"]["count"]) > 0

    proc = subprocess.run([str(ML_PYTHON), "-c", TRITON_CLIENT, stack.envoy, token, name, json.dumps([window]),
                           stack.token("another-org")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    triton = json.loads(proc.stdout.strip().splitlines()[-1])
    assert triton["live"] and triton["ready"]
    assert triton["inputs"][0]["shape"] == ["-1", "36"]
    assert triton["predict"][0] == pytest.approx(rest_value, rel=1e-6)
    assert triton["unknown"] == "StatusCode.NOT_FOUND"
    # another organization's learner does not exist for a stranger (docs/security.md: NOT_FOUND, never a hint)
    assert not triton["other_org_ready"] and triton["other_org"] == "StatusCode.NOT_FOUND"
