"""CPU per request of the Learner's own serving path, without the transport: load-independent figures.

Runs in the ML environment (`.venv-ml/bin/python -m bench.learner_path`). The Learner's real
servicers (`InferenceServicer`, `LearnerServicer`) over a real `LearnerCore` holding one tabular
scikit-learn learner (SGDRegressor, 36 features, as in bench/learner_serving.py), behind the real
layers `MeshServer` wraps every handler in at registration (request id, metrics, access log, error
mapping; request validation), are driven the way grpc.aio's server drives them for each call: the
registered generic handlers are asked for the method's handler,
the request bytes go through the handler's deserializer, the handler runs, the response goes through
its serializer. What is left out is gRPC itself (HTTP/2, TLS, the completion queue), which the echo
server of bench/oip_load.py measures. The learner is put into the core directly: no PostgreSQL and
no Registry, which the predict path does not touch (a stand-in for them would raise if it were).

Measured with `time.process_time` (CPU seconds of this process, every thread), so the figures hold on
a loaded machine, where wall-clock rates do not. Rows:

* model call alone: `backend.predict` on one row (what the model costs);
* validation alone: `servers.common.validation.check_message` on one request;
* ModelInfer (contents / raw_input_contents) and PredictStream: the whole path per request, with 1
  and 16 requests in flight (the micro-batcher answers concurrent requests with one model call).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import grpc  # noqa: E402
import numpy as np  # noqa: E402

FEATURES = 36
LEARNER_ID = "00000000-0000-4000-8000-00000000be4c"
ORG = "bench"


class _NoStore:
    """The database and the Registry of a core that only predicts: any use is a bug in the bench."""

    def __getattr__(self, name: str):
        raise AssertionError(f"the predict path touched the store ({name})")


class _Context:
    """What the Learner's handlers use of a grpc.aio ServicerContext, for a call from Envoy's mesh
    certificate carrying the bench organization (the common case through the front door)."""

    def __init__(self) -> None:
        self._metadata = (("x-mlmesh-org", ORG), ("x-mlmesh-jwt-payload", "e30"), ("x-request-id", "bench"))

    def invocation_metadata(self):
        return self._metadata

    def auth_context(self):
        return {"x509_common_name": [b"envoy"]}

    def set_trailing_metadata(self, metadata) -> None:
        pass

    async def abort(self, code, details="", trailing_metadata=()):
        raise AssertionError(f"aborted: {code} {details}")


class _Details(grpc.HandlerCallDetails):
    def __init__(self, method: str, metadata) -> None:
        self.method = method
        self.invocation_metadata = metadata


class _Capture:
    """Collects the generic handlers a generated `add_*Servicer_to_server` registers (through
    `MeshServer`'s `WrappingServer`, so they come out wrapped as on the real server)."""

    def __init__(self) -> None:
        self.generic: list[grpc.GenericRpcHandler] = []

    def add_generic_rpc_handlers(self, handlers) -> None:
        self.generic.extend(handlers)


def build_live(work: Path, *, rows: int = 4000, seed: int = 2):
    """A learned tabular SGDRegressor learner (36 features), as bench/learner_serving.py makes it."""
    from servers.learner.domain.live import LiveLearner
    from servers.learner.domain.records import LearnerRecord, Spec, validate_spec
    from servers.learner.ml.backends import make_backend
    from servers.learner.ml.transformers import make_transformer
    from servers.learner.monitoring import metrics
    from servers.learner.monitoring.drift import Monitor, MonitoringPolicy

    spec = validate_spec(Spec(backend="sklearn", task="regression", transformer="tabular",
                              transformer_params={"feature_count": FEATURES},
                              backend_params={"estimator": "SGDRegressor", "random_state": 0},
                              reference_dataset_id="00000000-0000-4000-8000-000000000000"))
    transformer = make_transformer("tabular", "regression", {"feature_count": FEATURES})
    backend = make_backend("sklearn", "regression", spec.backend_params, transformer.input_shape, None)
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(rows, FEATURES)).astype(np.float32)
    y = (X @ rng.uniform(-1, 1, FEATURES)).astype(np.float32)
    for i in range(0, rows, 32):
        backend.learn(X[i:i + 32], y[i:i + 32])
    # The bench stack's policy: drift computation effectively off, monitoring windows still filled.
    monitor = Monitor(LEARNER_ID, transformer.monitor_columns, X[:300].astype(np.float64),
                      MonitoringPolicy(window=100_000, every=100_000), sink=metrics.SINK)
    record = LearnerRecord(LEARNER_ID, "bench-sgd", ORG, "bench", spec, "READY", "", "", 0, rows, None, {},
                           dt.datetime.now(dt.UTC), None)
    work.mkdir(parents=True, exist_ok=True)
    return LiveLearner(record, backend, transformer, monitor, ThreadPoolExecutor(1, thread_name_prefix="bench"),
                       work_dir=work, running_loss_alpha=0.1)


class Path_:
    """The Learner's handler chain for one server: `call(method, raw)` and `stream(method, raws)`."""

    def __init__(self, live, *, validate: bool = True) -> None:
        from mlmesh.learner.v1 import learner_service_pb2_grpc as pb_grpc
        from mlmesh.thirdparty.kserve import grpc_predict_v2_pb2_grpc as v2_grpc

        from servers.common.observability import MeshInterceptor, Metrics
        from servers.common.server import WrappingServer, mesh_layers
        from servers.learner.api.oip import InferenceServicer
        from servers.learner.api.servicer import LearnerServicer
        from servers.learner.domain.service import CoreOptions, LearnerCore
        from servers.learner.main import PREDICTION_METHODS

        self.core = LearnerCore(_NoStore(), _NoStore(), CoreOptions(  # type: ignore[arg-type]
            work_dir=live.work_dir, max_learners=10, max_reference_rows=1000, running_loss_alpha=0.1))
        self.core.live[live.learner_id] = live
        if validate:
            wrap = mesh_layers("learner", Metrics("learner"), PREDICTION_METHODS)
        else:
            wrap = MeshInterceptor("learner", Metrics("learner"), PREDICTION_METHODS).wrap
        capture = _Capture()
        registrar = WrappingServer(capture, wrap)  # type: ignore[arg-type]
        v2_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(self.core), registrar)
        pb_grpc.add_LearnerServiceServicer_to_server(LearnerServicer(self.core, max_observations=10_000), registrar)
        self.generic = capture.generic
        self.context = _Context()

    async def _handler(self, method: str) -> grpc.RpcMethodHandler:
        # grpc.aio's server: each generic handler in turn until one serves the method.
        details = _Details(method, self.context.invocation_metadata())
        for generic in self.generic:
            handler = generic.service(details)
            if handler is not None:
                return handler
        raise KeyError(method)

    async def call(self, method: str, raw: bytes) -> bytes:
        handler = await self._handler(method)
        response = await handler.unary_unary(handler.request_deserializer(raw), self.context)
        return handler.response_serializer(response)

    async def stream(self, method: str, raws: list[bytes]) -> list[bytes]:
        handler = await self._handler(method)

        async def requests():
            for raw in raws:
                yield handler.request_deserializer(raw)

        return [handler.response_serializer(r) async for r in handler.stream_stream(requests(), self.context)]


def infer_bytes(rows: int, *, raw: bool, seed: int = 0) -> bytes:
    from mlmesh.thirdparty.kserve import grpc_predict_v2_pb2 as v2

    rng = random.Random(seed)
    values = [rng.uniform(-1, 1) for _ in range(rows * FEATURES)]
    request = v2.ModelInferRequest(model_name="bench-sgd", id="r")
    tensor = request.inputs.add(name="input-0", datatype="FP32", shape=[rows, FEATURES])
    if raw:
        request.raw_input_contents.append(struct.pack(f"<{len(values)}f", *values))
    else:
        tensor.contents.fp32_contents.extend(values)
    return request.SerializeToString()


def predict_bytes(first: bool, seed: int = 0) -> bytes:
    from mlmesh.learner.v1 import learner_service_pb2 as pb

    rng = random.Random(seed)
    request = pb.PredictRequest(learner_id=LEARNER_ID if first else "", inputs=[
        pb.Observation(row=pb.FeatureRow(values=[rng.uniform(-1, 1) for _ in range(FEATURES)]))])
    return request.SerializeToString()


def _cpu_per_call(fn: Callable[[], Any], n: int) -> float:
    """CPU microseconds per call of `fn` (after a warm-up tenth)."""
    for _ in range(max(1, n // 10)):
        fn()
    t0 = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t0) / n * 1e6


async def _cpu_per_request(one: Callable[[int], Any], n: int, concurrency: int) -> float:
    """CPU microseconds per request with `concurrency` requests in flight; `one(i)` serves request i."""
    async def worker(k: int, count: int) -> None:
        for i in range(k, count, concurrency):
            await one(i)

    await asyncio.gather(*(worker(k, max(concurrency, n // 10)) for k in range(concurrency)))  # warm-up
    t0 = time.process_time()
    await asyncio.gather(*(worker(k, n) for k in range(concurrency)))
    return (time.process_time() - t0) / n * 1e6


async def measure(n: int = 20_000, concurrencies: tuple[int, ...] = (1, 16)) -> dict[str, float]:
    from mlmesh.thirdparty.kserve import grpc_predict_v2_pb2 as v2

    from servers.common.validation import check_message

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="mlmesh-bench-path-") as tmp:
        live = build_live(Path(tmp) / LEARNER_ID)
        try:
            path = Path_(live)
            row = np.random.default_rng(0).uniform(-1, 1, size=(1, FEATURES)).astype(np.float32)
            out["model call alone (backend.predict, 1 row)"] = _cpu_per_call(lambda: live.backend.predict(row), n)
            request = v2.ModelInferRequest.FromString(infer_bytes(1, raw=False))
            out["validation alone (check_message, ModelInferRequest)"] = _cpu_per_call(
                lambda: check_message(request), n)
            pool = {raw: [infer_bytes(1, raw=raw, seed=i) for i in range(64)] for raw in (False, True)}
            infer = "/inference.GRPCInferenceService/ModelInfer"
            for raw in (False, True):
                for c in concurrencies:
                    label = f"ModelInfer ({'raw_input_contents' if raw else 'contents'}), {c} in flight"
                    out[label] = await _cpu_per_request(lambda i, raw=raw: path.call(infer, pool[raw][i % 64]), n, c)
            stream = "/mlmesh.learner.v1.LearnerService/PredictStream"
            per_stream = 500
            messages = [predict_bytes(True)] + [predict_bytes(False, seed=i) for i in range(1, per_stream)]
            for c in concurrencies:
                streams = max(1, n // per_stream)
                cpu = await _cpu_per_request(lambda i: path.stream(stream, messages), streams, c)
                out[f"PredictStream, {c} in flight"] = cpu / per_stream
            out["Learn, per observation (100 a message; no journal, no save)"] = await _learn_cpu(live)
        finally:
            live.close()
    return out


async def _learn_cpu(live, messages: int = 200, per_message: int = 100) -> float:
    """CPU microseconds per observation learned through `LiveLearner.learn` (transformer, prequential
    step, monitoring windows, model update), without the journal's database commit or a save: what
    the Learn stream costs besides them."""
    from servers.learner.ml.base import Obs

    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, size=(messages * per_message, FEATURES))
    y = X.sum(axis=1)
    batches = [[Obs(row=X[i], target=float(y[i])) for i in range(k, k + per_message)]
               for k in range(0, len(X), per_message)]

    async def no_save():
        return None

    t0 = time.process_time()
    for batch in batches:
        await live.learn(batch, False, no_save)
    return (time.process_time() - t0) / len(X) * 1e6


def report(figures: dict[str, float], baseline: dict[str, float] | None = None) -> str:
    lines = [f"{'case (CPU per request, no transport)':58} {'us':>8}" + (f" {'before':>8} {'ratio':>6}" if baseline
                                                                             else "")]
    for label, us in figures.items():
        line = f"{label:58} {us:8.1f}"
        if baseline and label in baseline:
            line += f" {baseline[label]:8.1f} {us / baseline[label]:6.2f}"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20_000, help="requests per case")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of one ModelInfer case to FILE")
    args = parser.parse_args()
    if args.profile:
        import cProfile

        async def profiled() -> None:
            with tempfile.TemporaryDirectory() as tmp:
                live = build_live(Path(tmp) / LEARNER_ID)
                path = Path_(live)
                pool = [infer_bytes(1, raw=False, seed=i) for i in range(64)]
                profile = cProfile.Profile()
                profile.enable()
                await _cpu_per_request(lambda i: path.call("/inference.GRPCInferenceService/ModelInfer",
                                                           pool[i % 64]), args.n, 16)
                profile.disable()
                profile.dump_stats(args.profile)
                live.close()

        asyncio.run(profiled())
        return
    print(report(asyncio.run(measure(args.n))))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
