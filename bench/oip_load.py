"""A closed-loop load generator for the Open Inference Protocol (KServe V2) over gRPC.

Runs in the mesh venv (`.venv/`: grpcio, gen/ on the path), always in its own process,
never in the process of the server it measures. Two shapes of load:

* `run_oip_load`: unary `inference.GRPCInferenceService/ModelInfer`, `concurrency`
  requests in flight on one channel, each `rows` × 36 FP32 features; after `warmup`
  seconds, every request that starts and ends inside the next `seconds` is counted.
* `run_stream_load`: any bidirectional stream that answers once per request (the
  Learner's PredictStream); `concurrency` streams, each writing one request and reading
  its response before the next, so every response has a latency of its own.

Both return the same dict: requests, errors, throughput (req/s), p50/p99/mean latency (ms)
and the generator's own CPU use (`client_cpu`, in cores: near 1.0 means the generator,
not the server, set the pace). `serve_echo` is a trivial V2 server whose figures are the
generator's ceiling on this machine (`python -m bench.oip_load --ceiling`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from mlmesh.thirdparty.kserve import grpc_predict_v2_pb2 as pb

N_FEATURES = 36
INFER = "/inference.GRPCInferenceService/ModelInfer"
# Triton's and MLServer's name for the streaming variant (same messages); the echo server has it.
STREAM_INFER = "/inference.GRPCInferenceService/ModelStreamInfer"
DISTINCT_REQUESTS = 64


def infer_request(model_name: str, rows: int = 1, *, seed: int = 0, raw: bool = False,
                  features: int = N_FEATURES) -> pb.ModelInferRequest:
    """One V2 request: input "input", FP32, shape [rows, features], random values in [-1, 1).

    `raw=False` puts the values in `contents.fp32_contents`; `raw=True` in
    `raw_input_contents` (little-endian float32, as tritonclient sends them)."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    rng = random.Random(seed)
    values = [rng.uniform(-1.0, 1.0) for _ in range(rows * features)]
    request = pb.ModelInferRequest(model_name=model_name)
    tensor = request.inputs.add(name="input", datatype="FP32", shape=[rows, features])
    if raw:
        request.raw_input_contents.append(struct.pack(f"<{len(values)}f", *values))
    else:
        tensor.contents.fp32_contents.extend(values)
    return request


def check_infer_response(response: pb.ModelInferResponse, rows: int) -> None:
    """Raises unless the response holds exactly one output with `rows` values."""
    if len(response.outputs) != 1:
        raise RuntimeError(f"expected one output, got {[o.name for o in response.outputs]}")
    out = response.outputs[0]
    count = math.prod(out.shape) if out.shape else 0
    if count != rows:
        raise RuntimeError(f"output {out.name!r} has shape {list(out.shape)}, expected {rows} values")


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


class _Window:
    """Collects the latencies of requests that start after warm-up and end before the deadline."""

    def __init__(self, warmup: float, seconds: float, server_pid: int | None = None) -> None:
        self.server_pid = server_pid
        self._server0 = 0.0
        self.t0 = time.perf_counter()
        self.start = self.t0 + warmup
        self.end = self.start + seconds
        self.latencies: list[float] = []
        self.errors = 0
        self.first_error = ""
        self._cpu0 = 0.0
        self._cpu_marked = False

    def running(self) -> bool:
        now = time.perf_counter()
        if not self._cpu_marked and now >= self.start:
            self._cpu_marked = True
            self._cpu0 = _cpu_seconds()
            self._server0 = _proc_cpu_seconds(self.server_pid)
        return now < self.end

    def record(self, started: float, ended: float) -> None:
        if started >= self.start and ended <= self.end:
            self.latencies.append(ended - started)

    def error(self, exc: BaseException) -> None:
        """Counted whenever it happens, warm-up included: an error is never noise."""
        self.errors += 1
        if not self.first_error:
            self.first_error = _describe(exc)

    def result(self, **extra: Any) -> dict:
        seconds = self.end - self.start
        lat = sorted(self.latencies)
        cpu = server_cpu = float("nan")
        if self._cpu_marked:
            cpu = (_cpu_seconds() - self._cpu0) / seconds
            server_cpu = (_proc_cpu_seconds(self.server_pid) - self._server0) / seconds
        ms = 1000.0
        return {
            "requests": len(lat),
            "errors": self.errors,
            "first_error": self.first_error,
            "seconds": seconds,
            "throughput": len(lat) / seconds,
            "p50_ms": _percentile(lat, 50) * ms,
            "p99_ms": _percentile(lat, 99) * ms,
            "mean_ms": (sum(lat) / len(lat) * ms) if lat else float("nan"),
            "client_cpu": cpu,
            "server_cpu": server_cpu,
            **extra,
        }


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def _proc_cpu_seconds(pid: int | None) -> float:
    """CPU seconds (user + system, all threads) of another process, from /proc; NaN if unknown."""
    if pid is None:
        return float("nan")
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(") ", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"


async def _wait_ready(channel: grpc.aio.Channel, timeout: float = 10.0) -> None:
    try:
        await asyncio.wait_for(channel.channel_ready(), timeout)
    except TimeoutError as exc:
        raise RuntimeError(f"no gRPC server answered on {channel} within {timeout:.0f} s") from exc


def _channel(target: str, credentials: grpc.ChannelCredentials | None) -> grpc.aio.Channel:
    """Plaintext, or TLS with `credentials` (a mesh server dialed directly needs the "client" certificate)."""
    if credentials is None:
        return grpc.aio.insecure_channel(target)
    return grpc.aio.secure_channel(target, credentials)


async def run_oip_load(target: str, model_name: str, concurrency: int, seconds: float, rows: int = 1, *,
                       warmup: float = 1.0, raw: bool = False, server_pid: int | None = None,
                       credentials: grpc.ChannelCredentials | None = None,
                       metadata: tuple[tuple[str, str], ...] | None = None) -> dict:
    """Unary ModelInfer load against `target` (host:port): `concurrency` requests in flight.

    Requests are serialized once up front (a pool of distinct inputs, cycled) and responses
    are read as bytes (each checked non-empty; one per worker parsed and checked fully), so
    the generator spends its time on gRPC, not on protobuf. `metadata`: sent with every call (a bearer
    token, through Envoy)."""
    if concurrency < 1 or seconds <= 0:
        raise ValueError(f"concurrency must be >= 1 and seconds > 0, got {concurrency} and {seconds}")
    pool = [infer_request(model_name, rows, seed=i, raw=raw).SerializeToString() for i in range(DISTINCT_REQUESTS)]
    async with _channel(target, credentials) as channel:
        await _wait_ready(channel)
        infer = channel.unary_unary(INFER, request_serializer=None, response_deserializer=None)
        first = pb.ModelInferResponse.FromString(await infer(pool[0], timeout=30, metadata=metadata))
        check_infer_response(first, rows)
        window = _Window(warmup, seconds, server_pid)

        async def worker(index: int) -> None:
            i = index
            while window.running():
                started = time.perf_counter()
                try:
                    body = await infer(pool[i % DISTINCT_REQUESTS], timeout=30, metadata=metadata)
                    if not body:
                        raise RuntimeError("empty ModelInferResponse")
                except (grpc.aio.AioRpcError, RuntimeError) as exc:
                    window.error(exc)
                    continue
                window.record(started, time.perf_counter())
                i += concurrency

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return window.result(target=target, model_name=model_name, concurrency=concurrency, rows=rows,
                         raw=raw, api="ModelInfer")


StreamOpener = Callable[[grpc.aio.Channel], grpc.aio.StreamStreamCall]
RequestMaker = Callable[[int], Any]


async def run_stream_load(target: str, open_stream: StreamOpener, make_request: RequestMaker, concurrency: int,
                          seconds: float, *, warmup: float = 1.0,
                          check: Callable[[Any], None] | None = None, server_pid: int | None = None,
                          credentials: grpc.ChannelCredentials | None = None) -> dict:
    """Load on a bidirectional stream that answers once per request, in order.

    `open_stream(channel)` opens one stream call (e.g. `lambda ch: LearnerServiceStub(ch).PredictStream()`);
    `make_request(i)` gives the i-th message of a stream (i = 0 first: put once-per-stream
    fields there; return cached messages to keep the generator cheap). Each of the
    `concurrency` streams writes a request, reads its response, and repeats until the
    window ends; the latency of a request is from write to the matching read. `check`, if
    given, is called on each stream's first response and may raise."""
    if concurrency < 1 or seconds <= 0:
        raise ValueError(f"concurrency must be >= 1 and seconds > 0, got {concurrency} and {seconds}")
    async with _channel(target, credentials) as channel:
        await _wait_ready(channel)
        window = _Window(warmup, seconds, server_pid)

        async def one_stream() -> None:
            call = open_stream(channel)
            i = 0
            try:
                while window.running():
                    started = time.perf_counter()
                    try:
                        await call.write(make_request(i))
                        response = await call.read()
                        if response is grpc.aio.EOF:
                            raise RuntimeError(f"the server closed the stream after {i} responses")
                        if i == 0 and check is not None:
                            check(response)
                    except (grpc.aio.AioRpcError, RuntimeError) as exc:
                        window.error(exc)
                        return  # a broken stream stays broken; this worker stops
                    window.record(started, time.perf_counter())
                    i += 1
                await call.done_writing()
                while await call.read() is not grpc.aio.EOF:  # drain to the status
                    pass
            finally:
                call.cancel()

        await asyncio.gather(*(one_stream() for _ in range(concurrency)))
    return window.result(target=target, concurrency=concurrency, api="stream")


def oip_stream_opener(channel: grpc.aio.Channel) -> grpc.aio.StreamStreamCall:
    """Opens `ModelStreamInfer` (V2 messages both ways) on `channel`."""
    return channel.stream_stream(STREAM_INFER, request_serializer=pb.ModelInferRequest.SerializeToString,
                                 response_deserializer=pb.ModelInferResponse.FromString)()


# --- the echo server: the generator's ceiling --------------------------------------------------------------

ECHO_RESPONSE = pb.ModelInferResponse(
    model_name="echo", outputs=[pb.ModelInferResponse.InferOutputTensor(
        name="predict", datatype="FP64", shape=[1, 1], contents=pb.InferTensorContents(fp64_contents=[0.0]))],
).SerializeToString()


async def _echo_infer(request: bytes, context) -> bytes:
    return ECHO_RESPONSE


async def _echo_stream(requests, context):
    async for _ in requests:
        yield ECHO_RESPONSE


async def _live(request, context):
    return pb.ServerLiveResponse(live=True)


async def _ready(request, context):
    return pb.ServerReadyResponse(ready=True)


async def _model_ready(request, context):
    return pb.ModelReadyResponse(ready=True)


def _typed(fn, request_type, response_type) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=request_type.FromString,
                                               response_serializer=response_type.SerializeToString)


async def serve_echo(port: int, host: str = "127.0.0.1", tls_dir: str | None = None) -> grpc.aio.Server:
    """Starts a V2 server that does no work: every model is ready; ModelInfer and
    ModelStreamInfer answer a fixed one-value FP64 "predict" output without parsing the
    request (bytes in, prebuilt bytes out), so it costs less per request than any real
    server and what it measures is the generator's own ceiling. With `tls_dir` (a mesh CA made
    by `ensure_mesh_certs`) it serves mutual TLS with the Learner's certificate, as the Learner
    does: gRPC's ceiling on the Learner's own transport."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("inference.GRPCInferenceService", {
        "ServerLive": _typed(_live, pb.ServerLiveRequest, pb.ServerLiveResponse),
        "ServerReady": _typed(_ready, pb.ServerReadyRequest, pb.ServerReadyResponse),
        "ModelReady": _typed(_model_ready, pb.ModelReadyRequest, pb.ModelReadyResponse),
        "ModelInfer": grpc.unary_unary_rpc_method_handler(_echo_infer),
        "ModelStreamInfer": grpc.stream_stream_rpc_method_handler(_echo_stream),
    }),))
    if tls_dir:
        from servers.common.tls import MeshCerts, TlsFiles, server_credentials

        certs = MeshCerts(Path(tls_dir))
        credentials = server_credentials(TlsFiles.read(certs.ca_file, certs.cert_file("learner"),
                                                       certs.key_file("learner")))
        bound = server.add_secure_port(f"{host}:{port}", credentials)
    else:
        bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"could not bind the echo server to {host}:{port}")
    await server.start()
    return server


@contextlib.contextmanager
def bench_process(module: str, *args: str):
    """Runs `python -m <module> <args>` from the repository in a child process of its own session, so a
    server under load has its own core as a real one has; yields its pid and stops its process group."""
    proc = subprocess.Popen([sys.executable, "-m", module, *args], stdin=subprocess.DEVNULL, start_new_session=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        yield proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(5)


@contextlib.contextmanager
def echo_server_process(port: int, tls_dir: str | None = None):
    """Runs `serve_echo` in a child process (its own session) and yields its target; the
    generator then has its own core, as it has against a real server. Yields (target, pid)."""
    tls = ["--tls-dir", tls_dir] if tls_dir else []
    with bench_process("bench.oip_load", "--serve-echo", str(port), *tls) as pid:
        yield f"127.0.0.1:{port}", pid


def measure_ceiling(seconds: float = 5.0, concurrencies: tuple[int, ...] = (1, 16), warmup: float = 1.0, *,
                    mtls: bool = False) -> dict:
    """The generator against the echo server in another process: unary and streaming. With
    `mtls`, over mutual TLS with mesh certificates made for the run (the Learner's transport)."""
    from servers.devstack.procs import free_port

    port = free_port()
    out: dict = {"unary": {}, "stream": {}}
    with contextlib.ExitStack() as stack:
        tls_dir, credentials = None, None
        if mtls:
            from servers.common.tls import TlsFiles, channel_credentials, ensure_mesh_certs

            tls_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="mlmesh-echo-tls-"))
            certs = ensure_mesh_certs(Path(tls_dir), ("learner", "client"))
            credentials = channel_credentials(TlsFiles.read(certs.ca_file, certs.cert_file("client"),
                                                            certs.key_file("client")))
        target, pid = stack.enter_context(echo_server_process(port, tls_dir))
        for c in concurrencies:
            out["unary"][c] = asyncio.run(run_oip_load(target, "echo", c, seconds, warmup=warmup, server_pid=pid,
                                                       credentials=credentials))
        request = infer_request("echo")
        for c in concurrencies:
            out["stream"][c] = asyncio.run(run_stream_load(
                target, oip_stream_opener, lambda i: request, c, seconds, warmup=warmup,
                check=lambda r: check_infer_response(r, 1), server_pid=pid, credentials=credentials))
    return out


def format_row(label: str, r: dict, baseline: dict | None = None) -> str:
    ratio = ""
    if baseline is not None and baseline["throughput"] > 0:
        ratio = f"{r['throughput'] / baseline['throughput']:6.2f}x"
    errors = f"  {r['errors']} errors ({r['first_error']})" if r["errors"] else ""
    return (f"{label:44} {r['throughput']:9.0f} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} "
            f"{r['client_cpu']:7.2f} {r['server_cpu']:7.2f} {ratio:>7}{errors}")


HEADER = f"{'case':44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'gen cpu':>7} {'srv cpu':>7} {'ratio':>7}"


def main() -> None:
    parser = argparse.ArgumentParser(description="Open Inference Protocol gRPC load generator")
    parser.add_argument("--serve-echo", type=int, metavar="PORT", help="run the echo V2 server on PORT")
    parser.add_argument("--tls-dir", help="with --serve-echo: serve mutual TLS with the mesh certificates in DIR")
    parser.add_argument("--ceiling", action="store_true", help="measure the generator against the echo server")
    parser.add_argument("--target", help="host:port of a V2 gRPC server")
    parser.add_argument("--model", help="model_name to send")
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--raw", action="store_true", help="send raw_input_contents instead of fp32_contents")
    args = parser.parse_args()
    if args.serve_echo:
        async def serve() -> None:
            server = await serve_echo(args.serve_echo, tls_dir=args.tls_dir)
            await server.wait_for_termination()

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve())
        return
    print(HEADER)
    if args.ceiling:
        ceiling = measure_ceiling(args.seconds, tuple(args.concurrency), args.warmup)
        for kind, rows in ceiling.items():
            for c, r in rows.items():
                print(format_row(f"echo {kind}, C={c}", r))
        return
    if not args.target or not args.model:
        parser.error("--target and --model are required (or --ceiling / --serve-echo)")
    for c in args.concurrency:
        r = asyncio.run(run_oip_load(args.target, args.model, c, args.seconds, args.rows, warmup=args.warmup,
                                     raw=args.raw))
        print(format_row(f"{args.model} ModelInfer, C={c}", r))


if __name__ == "__main__":
    main()
