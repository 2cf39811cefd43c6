"""The Learner's side of the predict benchmark: a `bench_stack` mesh (the processes `make up`
starts), a tabular scikit-learn learner (SGDRegressor, 36 features, the same shape as MLServer's
model in bench/learner_predict.py) that first learns 4,000 rows over one Learn stream (its
throughput is measured), then serves ModelInfer and PredictStream straight from its port, as
MLServer does. Drift computation is switched off for the load (monitoring window 100,000,
`every` 100,000): the benchmark measures the predict path; docs/monitoring.md times the drift."""

from __future__ import annotations

import contextlib
import random
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
from google.protobuf import struct_pb2
from mlmesh.learner.v1 import learner_service_pb2 as lpb
from mlmesh.learner.v1 import learner_service_pb2_grpc as lgrpc

from bench.learner_predict import Served
from bench.stack import BenchStack, bench_stack

FEATURES = 36
LEARN_ROWS = 4000
# (window, every) of the learner's monitoring policy: drift off for the predict path's load.
MONITORING = (100_000, 100_000)
LEARNED: dict[str, float] = {}


def _rows(n: int, seed: int) -> tuple[list[list[float]], list[float]]:
    rng = random.Random(seed)
    weights = [rng.uniform(-1, 1) for _ in range(FEATURES)]
    xs = [[rng.uniform(-1, 1) for _ in range(FEATURES)] for _ in range(n)]
    ys = [sum(w * x for w, x in zip(weights, row)) + rng.gauss(0, 0.05) for row in xs]
    return xs, ys


@contextlib.contextmanager
def learner(workdir: Path) -> Iterator[Served]:
    with bench_stack(base_id=91) as stack:
        yield serve_learner(stack)


def client_ssl(stack: BenchStack) -> ssl.SSLContext:
    """TLS with the mesh's "client" certificate: the Learner's HTTP front requires one, as its gRPC port."""
    from servers.common.tls import MeshCerts

    certs = MeshCerts(stack.data_dir / "identity" / "mtls")
    context = ssl.create_default_context(cafile=str(certs.ca_file))
    context.load_cert_chain(str(certs.cert_file("client")), str(certs.key_file("client")))
    return context


def serve_learner(stack: BenchStack) -> Served:
    """On `stack`: the reference dataset, the bench-sgd learner, 4,000 rows learned; the learner as a
    V2 model served from the Learner's own port."""
    header = ",".join(f"x{i}" for i in range(FEATURES))
    xs, _ = _rows(300, 1)
    body = header + "\n" + "\n".join(",".join(f"{v:.5f}" for v in row) for row in xs) + "\n"
    r = httpx.post(f"http://{stack.front}/v1/datasets:upload", params={"organization_id": "bench",
                   "display_name": "bench-reference"}, content=body.encode(),
                   headers={"authorization": f"Bearer {stack.token}", "content-type": "text/csv"}, timeout=60)
    r.raise_for_status()
    target = f"127.0.0.1:{stack.env['MLMESH_LEARNER_PORT']}"
    params = struct_pb2.Struct()
    params.update({"feature_count": FEATURES})
    backend = struct_pb2.Struct()
    backend.update({"estimator": "SGDRegressor", "random_state": 0})
    credentials = stack.client_credentials()  # the Learner's port needs a mesh certificate
    with grpc.secure_channel(target, credentials) as channel:
        stub = lgrpc.LearnerServiceStub(channel)
        created = stub.CreateLearner(lpb.CreateLearnerRequest(learner=lpb.Learner(
            display_name="bench-sgd", organization_id="bench", developer_id="bench", spec=lpb.LearnerSpec(
                backend="sklearn", task="regression", transformer="tabular", backend_params=backend,
                transformer_params=params, reference_dataset_id=r.json()["dataset_id"],
                save_policy=lpb.SavePolicy(disabled=True),
                monitoring=lpb.MonitoringPolicy(window=MONITORING[0], every=MONITORING[1])))))
        xs, ys = _rows(LEARN_ROWS, 2)
        observations = [lpb.Observation(row=lpb.FeatureRow(values=x), target=y) for x, y in zip(xs, ys)]

        def requests():
            for i in range(0, len(observations), 100):
                yield lpb.LearnRequest(learner_id=created.learner_id, observations=observations[i:i + 100])
        t0 = time.perf_counter()
        acks = list(stub.Learn(requests()))
        LEARNED.update(samples_per_s=LEARN_ROWS / (time.perf_counter() - t0),
                       final_validation_mse=acks[-1].validation_loss)
    first = lpb.PredictRequest(learner_id=created.learner_id,
                               inputs=[lpb.Observation(row=lpb.FeatureRow(values=xs[0]))])
    nxt = lpb.PredictRequest(inputs=[lpb.Observation(row=lpb.FeatureRow(values=xs[1]))])
    return Served(target, "bench-sgd", stack.pid("learner"),
                 lambda ch: ch.stream_stream("/mlmesh.learner.v1.LearnerService/PredictStream",
                                             request_serializer=lpb.PredictRequest.SerializeToString,
                                             response_deserializer=lpb.PredictResponse.FromString)(),
                 lambda i: first if i == 0 else nxt, credentials,
                 rest_url=f"https://127.0.0.1:{stack.env['MLMESH_LEARNER_HTTP_PORT']}", rest_ssl=client_ssl(stack))
