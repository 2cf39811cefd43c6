"""The Open Inference Protocol's REST half through the front door: Triton's own HTTP client
(`tritonclient.http`, in the ML environment, as a separate process) and curl-style JSON against a
learner, with the same token and organization rules as the gRPC half (a stranger: 404)."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2
from mlmesh.learner.v1 import learner_service_pb2 as lpb
from mlmesh.learner.v1 import learner_service_pb2_grpc as lgrpc

REPO = Path(__file__).resolve().parents[2]
ML_PYTHON = REPO / ".venv-ml" / "bin" / "python"
FEATURES = 4

TRITON_HTTP = r"""
import sys, json
import numpy as np
import tritonclient.http as th
from tritonclient.utils import InferenceServerException
target, token, stranger, name = sys.argv[1:5]
rows = np.asarray(json.loads(sys.argv[5]), dtype=np.float64)
auth = {"authorization": "Bearer " + token}
headers = lambda: dict(auth)  # a fresh dict per call: tritonclient writes Inference-Header-Content-Length into it
client = th.InferenceServerClient(url=target)
out = {"live": client.is_server_live(headers=headers()), "server_ready": client.is_server_ready(headers=headers()),
       "ready": client.is_model_ready(name, headers=headers())}
out["metadata"] = client.get_model_metadata(name, headers=headers())
inp = th.InferInput("input-0", list(rows.shape), "FP64")
inp.set_data_from_numpy(rows)                      # binary tensor extension (tritonclient's default)
out["binary"] = client.infer(name, [inp], headers=headers()).as_numpy("predict").reshape(-1).tolist()
inp_json = th.InferInput("input-0", list(rows.shape), "FP64")
inp_json.set_data_from_numpy(rows, binary_data=False)  # the protocol's JSON
result = client.infer(name, [inp_json], headers=headers(), outputs=[th.InferRequestedOutput("predict", binary_data=False)])
out["json"] = result.as_numpy("predict").reshape(-1).tolist()
version = out["metadata"]["versions"][0]
out["versioned"] = client.infer(name, [inp], model_version=version, headers=headers()).as_numpy("predict").reshape(-1).tolist()
def status(call):
    try:
        call()
    except InferenceServerException as exc:
        return [exc.status(), exc.message()]
    return None
other = lambda: {"authorization": "Bearer " + stranger}
out["unknown"] = status(lambda: client.infer("no-such-model", [inp], headers=headers()))
out["stranger_infer"] = status(lambda: client.infer(name, [inp], headers=other()))
out["stranger_metadata"] = status(lambda: client.get_model_metadata(name, headers=other()))
out["stranger_ready"] = client.is_model_ready(name, headers=other())
out["no_token"] = status(lambda: client.infer(name, [inp]))
print(json.dumps(out))
"""


def _rows(n: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.uniform(-1, 1) for _ in range(FEATURES)] for _ in range(n)]


def test_oip_rest_with_tritonclient_http_through_envoy(stack, tmp_path):
    # Prepare: a tabular learner of this organization, learned a little.
    auth = stack.auth()
    header = ",".join(f"x{i}" for i in range(FEATURES))
    csv = header + "\n" + "\n".join(",".join(f"{v:.4f}" for v in row) for row in _rows(100, 1)) + "\n"
    r = httpx.post(f"{stack.base_url}/v1/datasets:upload", params={"display_name": "oip-rest-reference"},
                   content=csv.encode(), headers={**auth, "content-type": "text/csv"}, timeout=60)
    assert r.status_code == 200, r.text
    name = f"oip-rest-{tmp_path.name[-6:]}"
    params, backend = struct_pb2.Struct(), struct_pb2.Struct()
    params.update({"feature_count": FEATURES})
    backend.update({"estimator": "SGDRegressor", "random_state": 0})
    metadata = (("authorization", auth["authorization"]),)
    with grpc.insecure_channel(stack.envoy) as channel:
        stub = lgrpc.LearnerServiceStub(channel)
        learner = stub.CreateLearner(lpb.CreateLearnerRequest(learner=lpb.Learner(
            display_name=name, developer_id="dev", spec=lpb.LearnerSpec(
                backend="sklearn", task="regression", transformer="tabular", backend_params=backend,
                transformer_params=params, reference_dataset_id=r.json()["dataset_id"],
                save_policy=lpb.SavePolicy(disabled=True)))), metadata=metadata)
        xs = _rows(200, 2)
        stub.Learn(iter([lpb.LearnRequest(learner_id=learner.learner_id, observations=[
            lpb.Observation(row=lpb.FeatureRow(values=x), target=sum(x)) for x in xs])]), metadata=metadata)
        probe = _rows(3, 3)
        expected = [p.values[0] for p in stub.Predict(lpb.PredictRequest(
            learner_id=learner.learner_id, inputs=[lpb.Observation(row=lpb.FeatureRow(values=x)) for x in probe]),
            metadata=metadata).predictions]

    # Execute: Triton's HTTP client through Envoy.
    proc = subprocess.run([str(ML_PYTHON), "-c", TRITON_HTTP, stack.envoy, stack.token(), stack.token("another-org"),
                           name, json.dumps(probe)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    # Assert
    assert out["live"] and out["server_ready"] and out["ready"]
    assert out["metadata"]["name"] == name
    assert out["metadata"]["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, FEATURES]}]
    for key in ("binary", "json", "versioned"):
        assert out[key] == pytest.approx(expected, rel=1e-9), key
    assert out["unknown"][0] == "404"
    # another organization's learner does not exist for a stranger, worded as an unknown model
    assert out["stranger_infer"][0] == "404" and out["stranger_metadata"][0] == "404"
    assert out["stranger_infer"][1].replace(name, "X") == out["unknown"][1].replace("no-such-model", "X")
    assert out["stranger_ready"] is False
    assert out["no_token"][0] == "401"


def test_oip_rest_json_errors_are_clear(stack):
    auth = stack.auth()
    base = f"{stack.base_url}/v2/models/no-such-model"
    with httpx.Client(timeout=30, headers=auth) as http:
        assert http.get(f"{stack.base_url}/v2/health/ready").json() == {"ready": True}
        assert http.get(f"{base}/ready").status_code == 404
        r = http.post(f"{base}/infer", content=b"{not json")
        assert r.status_code == 404  # the model is looked up first: no hint about the body to a stranger
        r = http.post(f"{stack.base_url}/v2/models/x/versions/1/infer", json={"inputs": []})
        assert r.status_code == 404 and "error" in r.json()
