"""The Learner's predict path against MLServer 1.7 serving the same kind of model.

The baseline: MLServer 1.7.1 with its scikit-learn runtime (`mlserver_sklearn.SKLearnModel`)
serving an SGDRegressor on 36 features (bench/mlserver_model/make_model.py) over its gRPC
Open Inference Protocol API, measured by bench/oip_load.py from this process (the mesh
venv) while MLServer runs in its own venv and process. Also measured in the same run: the
generator's ceiling against a do-nothing V2 server, so a figure near it says nothing about
the server. A Learner (or any other V2 server) joins the table through `run(others=...)`;
its throughput is printed as a ratio of MLServer's at the same concurrency and API.

Streams: MLServer's stock sklearn runtime answers only the first request of a
ModelStreamInfer stream, so the same model is also served (same process) by
bench/mlserver_model/streaming_runtime.py, which answers each request: the baseline for
the Learner's PredictStream.

MLServer runs with `parallel_workers: 0`: inference in the server's own process, as the
Learner does it. MLServer's default (1) hands every request to one worker process over a
queue, which costs latency and, with a single worker, adds no parallelism.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import oip_load
from servers.devstack import procs

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv-mlserver"
REQUIREMENTS = REPO / "requirements" / "mlserver.txt"
STAMP = VENV / ".stamp"
MAKE_MODEL = REPO / "bench" / "mlserver_model" / "make_model.py"
MODEL_NAME = "power-forecast-sgd"
# The same model under bench/mlserver_model/streaming_runtime.py, for ModelStreamInfer.
STREAM_MODEL_NAME = "power-forecast-sgd-stream"
PARALLEL_WORKERS = 0


def ensure_mlserver_venv(venv: Path = VENV, requirements: Path = REQUIREMENTS, python: str = "python3") -> Path:
    """Creates `.venv-mlserver` from requirements/mlserver.txt when it is missing or older than
    that file (a stamp records the last install); returns its `mlserver` executable."""
    stamp = venv / ".stamp"
    py = venv / "bin" / "python"
    if py.exists() and stamp.exists() and stamp.stat().st_mtime >= requirements.stat().st_mtime:
        return venv / "bin" / "mlserver"
    print(f"bench: installing MLServer into {venv.relative_to(REPO) if venv.is_relative_to(REPO) else venv} "
          f"from {requirements.name} (once; about 30 s)", file=sys.stderr)
    if not py.exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(requirements)],
                   check=True)
    stamp.touch()
    return venv / "bin" / "mlserver"


def _grpc_model_ready(target: str, model_name: str) -> bool:
    import grpc
    from mlmesh.thirdparty.kserve import grpc_predict_v2_pb2 as pb

    with grpc.insecure_channel(target) as channel:
        ready = channel.unary_unary("/inference.GRPCInferenceService/ModelReady",
                                    request_serializer=pb.ModelReadyRequest.SerializeToString,
                                    response_deserializer=pb.ModelReadyResponse.FromString)
        try:
            return ready(pb.ModelReadyRequest(name=model_name), timeout=1.0).ready
        except grpc.RpcError:
            return False


def start_mlserver(workdir: Path | str, *, parallel_workers: int = PARALLEL_WORKERS,
                   timeout: float = 120.0) -> tuple[procs.Proc, str, str]:
    """Writes the model and MLServer's settings under `workdir`, starts `mlserver start` in its
    own session on free ports (HTTP, gRPC, metrics) and returns once the model is ready over
    gRPC: (process, "127.0.0.1:<grpc port>", model name). Stop it with `stop_mlserver`."""
    mlserver = ensure_mlserver_venv()
    root = Path(workdir) / "mlserver"
    for name, extra in ((MODEL_NAME, []), (STREAM_MODEL_NAME, ["--streaming"])):
        subprocess.run([str(VENV / "bin" / "python"), str(MAKE_MODEL), str(root / name), "--name", name, *extra],
                       check=True, capture_output=True)
    grpc_port = procs.free_port()
    settings = {
        "debug": False,
        "host": "127.0.0.1",
        "http_port": procs.free_port(),
        "grpc_port": grpc_port,
        "metrics_port": procs.free_port(),
        "parallel_workers": parallel_workers,
    }
    (root / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    # MLServer reads MLSERVER_* variables too; drop any from the caller so settings.json rules.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSERVER")}
    proc = procs.Proc("mlserver", 0, root / "mlserver.log")
    with open(proc.log_path, "ab") as log:
        popen = subprocess.Popen([str(mlserver), "start", str(root)], cwd=root, env=env, stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    proc.pid, proc.popen = popen.pid, popen
    proc.http_url = f"http://127.0.0.1:{settings['http_port']}"  # type: ignore[attr-defined]
    target = f"127.0.0.1:{grpc_port}"
    try:
        procs.wait_until(proc, lambda: all(_grpc_model_ready(target, n) for n in (MODEL_NAME, STREAM_MODEL_NAME)),
                         timeout=timeout, what=f"serving {MODEL_NAME} and {STREAM_MODEL_NAME} on {target}")
    except BaseException:
        stop_mlserver(proc)
        raise
    return proc, target, MODEL_NAME


def stop_mlserver(proc: procs.Proc) -> None:
    """SIGTERM to MLServer's process group (it and any workers), SIGKILL after 15 s."""
    procs.stop(proc, timeout=15.0)


@dataclass
class Served:
    """A V2 server under test: where it listens, the model to ask for, its pid (for its CPU
    use; None if unknown) and, optionally, how to open its one-response-per-request stream."""

    target: str
    model_name: str
    pid: int | None = None
    open_stream: oip_load.StreamOpener | None = None
    make_request: oip_load.RequestMaker | None = None
    credentials: Any = None  # grpc.ChannelCredentials of a mesh server dialed directly (mutual TLS)
    rest_url: str | None = None  # base URL of the REST half of the protocol (POST /v2/models/<name>/infer)
    rest_ssl: Any = None  # ssl.SSLContext for it (the Learner's HTTP front wants a mesh client certificate)


# label -> factory(workdir) returning a context manager that yields a Served.
ServerFactory = Callable[[Path], contextlib.AbstractContextManager[Served]]


@contextlib.contextmanager
def mlserver(workdir: Path | str, **kwargs) -> Iterator[Served]:
    """`start_mlserver` as a context manager; its stream is ModelStreamInfer on the streaming model."""
    proc, target, name = start_mlserver(workdir, **kwargs)
    request = oip_load.infer_request(STREAM_MODEL_NAME)
    try:
        yield Served(target, name, proc.pid, oip_load.oip_stream_opener, lambda i: request,
                     rest_url=proc.http_url)  # type: ignore[attr-defined]
    finally:
        stop_mlserver(proc)


def run(seconds: float = 5.0, concurrencies: tuple[int, ...] = (1, 16), warmup: float = 1.0,
        others: dict[str, ServerFactory] | None = None) -> dict:
    """Measures, in one run: the generator's ceiling (echo server), MLServer, then each of
    `others` (label -> factory), all with the same load (unary ModelInfer, then the stream
    when the server has one). Returns {"ceiling": {"unary"|"stream": {C: result}},
    "servers": {label: {"unary"|"stream": {C: result}}}, "baseline": "mlserver", ...}."""
    work = Path(tempfile.mkdtemp(prefix="mlmesh-bench-predict-"))
    ensure_mlserver_venv()
    # Two ceilings: plaintext (MLServer's transport) and mutual TLS (the Learner's, docs/security.md).
    results: dict = {"ceiling": oip_load.measure_ceiling(seconds, concurrencies, warmup),
                     "ceiling_mtls": oip_load.measure_ceiling(seconds, concurrencies, warmup, mtls=True),
                     "servers": {}, "tls": {}, "baseline": "mlserver", "parallel_workers": PARALLEL_WORKERS,
                     "startup_s": {}}
    factories: dict[str, ServerFactory] = {"mlserver": mlserver, **(others or {})}
    try:
        for label, factory in factories.items():
            t0 = time.perf_counter()
            with factory(work / label) as served:
                results["startup_s"][label] = time.perf_counter() - t0
                results["tls"][label] = served.credentials is not None
                by_kind: dict = {"unary": {}, "stream": {}, "rest": {}}
                for c in concurrencies:
                    by_kind["unary"][c] = asyncio.run(oip_load.run_oip_load(
                        served.target, served.model_name, c, seconds, warmup=warmup, server_pid=served.pid,
                        credentials=served.credentials))
                if served.open_stream is not None and served.make_request is not None:
                    for c in concurrencies:
                        by_kind["stream"][c] = asyncio.run(oip_load.run_stream_load(
                            served.target, served.open_stream, served.make_request, c, seconds, warmup=warmup,
                            server_pid=served.pid, credentials=served.credentials))
                if served.rest_url is not None:
                    from bench.front_door import run_rest_load

                    for c in concurrencies:
                        by_kind["rest"][c] = asyncio.run(run_rest_load(
                            served.rest_url, served.model_name, c, seconds, warmup=warmup,
                            ssl_context=served.rest_ssl, server_pid=served.pid))
                results["servers"][label] = by_kind
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def report(r: dict) -> str:
    base = r["servers"][r["baseline"]]
    lines = [f"1 row x 36 FP32 per request, closed loop; baseline MLServer 1.7.1 sklearn runtime, "
             f"parallel_workers={r['parallel_workers']}", oip_load.HEADER + f" {'x echo':>7}"]
    for kind, api in (("unary", "ModelInfer"), ("stream", "stream"), ("rest", "REST infer")):
        for label, by_kind in r["servers"].items():
            name = "MLServer" if label == r["baseline"] else label
            ceiling = r["ceiling_mtls" if r["tls"].get(label) else "ceiling"].get(kind, {})
            for c, res in by_kind[kind].items():
                echo = ceiling.get(c, {}).get("throughput", 0)
                of_echo = f" {res['throughput'] / echo:6.2f}x" if echo else ""
                lines.append(oip_load.format_row(f"{name} {api}, C={c}", res, base[kind].get(c)) + of_echo)
        for key, transport in (("ceiling", "plaintext"), ("ceiling_mtls", "mTLS")):
            for c, res in r[key].get(kind, {}).items():
                lines.append(oip_load.format_row(f"echo ({transport}) {api}, C={c}", res, base[kind].get(c)))
    lines.append("ratio: req/s over MLServer's at the same C and API; x echo: req/s over the echo server's on the "
                 "same transport (the Learner: mTLS; MLServer: plaintext); gen/srv cpu: cores used by "
                 "generator/server; REST infer: JSON over HTTP/1.1 keep-alive, the Learner's over mutual TLS, MLServer's plaintext "
                 "(no echo for REST)")
    return "\n".join(lines)


def main() -> None:
    seconds = float(os.environ.get("MLMESH_BENCH_PREDICT_SECONDS", "5"))
    print(report(run(seconds=seconds)))


if __name__ == "__main__":
    main()
