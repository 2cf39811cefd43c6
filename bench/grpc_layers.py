"""What each layer of a unary ModelInfer costs a grpc.aio server, one layer added at a time.

The Learner's predict path spends ~590 µs of server CPU per unary ModelInfer where the echo server of
`bench/oip_load.py` spends ~184 µs (docs/performance.md). This bench finds where the difference goes by
serving the same call from servers that differ by one layer each, in a child process, under the same
closed-loop load, and dividing each server's CPU seconds by the requests it answered:

  raw            bytes in, prebuilt bytes out (the echo server: gRPC's own cost)
  typed          + the generated stubs: the request parsed, a response built and serialized as the Learner's
  typed+noop-ic  + two pass-through aio interceptors (what grpc.aio's interceptor chain costs per call)
  typed+mesh     + MeshServer's two interceptors (request id, trailers, metrics, access log, field rules)
  typed+wrapped  the same two layers applied to the handler once at registration, no aio interceptor

Plaintext, one row of 36 FP32 in `contents`. Run: `.venv/bin/python -m bench.grpc_layers` (in `make bench`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import grpc
import numpy as np
from mlmesh.thirdparty.kserve import grpc_predict_v2_pb2 as pb

from bench.oip_load import ECHO_RESPONSE, bench_process, run_oip_load

VARIANTS = ("raw", "typed", "typed+noop-ic", "typed+mesh", "typed+wrapped")
SERVICE = "inference.GRPCInferenceService"


async def _raw_infer(request: bytes, context) -> bytes:
    return ECHO_RESPONSE


async def _typed_infer(request: pb.ModelInferRequest, context) -> pb.ModelInferResponse:
    """What the Learner's servicer does around the model: read the tensor, build the response."""
    tensor = request.inputs[0]
    rows = np.asarray(tensor.contents.fp32_contents, dtype=np.float64).reshape(list(tensor.shape))
    values = rows[:, :1]
    out = pb.ModelInferResponse.InferOutputTensor(name="predict", datatype="FP64", shape=list(values.shape))
    response = pb.ModelInferResponse(model_name=request.model_name, model_version="1", id=request.id, outputs=[out])
    response.outputs[0].contents.fp64_contents.extend(values.reshape(-1).tolist())
    return response


class _PassThrough(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation, details):
        return await continuation(details)


def _handler(variant: str) -> grpc.RpcMethodHandler:
    if variant == "raw":
        return grpc.unary_unary_rpc_method_handler(_raw_infer)
    return grpc.unary_unary_rpc_method_handler(_typed_infer, pb.ModelInferRequest.FromString,
                                               pb.ModelInferResponse.SerializeToString)


async def serve(variant: str, port: int) -> grpc.aio.Server:
    from servers.common.observability import Metrics, MeshInterceptor
    from servers.common.server import WrappingServer, mesh_layers
    from servers.common.validation import ValidationInterceptor

    quiet = frozenset({f"/{SERVICE}/ModelInfer"})
    interceptors: list = []
    if variant == "typed+noop-ic":
        interceptors = [_PassThrough(), _PassThrough()]
    elif variant == "typed+mesh":
        interceptors = [MeshInterceptor("bench", Metrics("bench"), quiet), ValidationInterceptor()]
    server = grpc.aio.server(interceptors=interceptors or None)
    registrar = WrappingServer(server, mesh_layers("bench", Metrics("bench"), quiet)) \
        if variant == "typed+wrapped" else server
    registrar.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"ModelInfer": _handler(variant)}),))
    if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
        raise RuntimeError(f"cannot bind 127.0.0.1:{port}")
    await server.start()
    return server


def measure(seconds: float = 4.0, concurrencies: tuple[int, ...] = (1, 16), variants=VARIANTS,
            rounds: int = 2) -> dict:
    """{variant: {concurrency: [result dicts, one per round]}}; rounds alternate the variants so a
    change of the machine's load falls on all of them alike."""
    from servers.devstack.procs import free_port

    out: dict = {v: {c: [] for c in concurrencies} for v in variants}
    for _ in range(rounds):
        for variant in variants:
            port = free_port()
            with bench_process("bench.grpc_layers", "--serve", variant, "--port", str(port)) as pid:
                target = f"127.0.0.1:{port}"
                for c in concurrencies:
                    out[variant][c].append(asyncio.run(run_oip_load(target, "bench", c, seconds, warmup=1.0,
                                                                    server_pid=pid)))
    return out


def report(results: dict) -> None:
    print(f"{'server':16} {'in flight':>9} {'req/s':>9} {'srv µs CPU/req':>15} {'vs raw':>7}")
    for variant, by_c in results.items():
        for c, runs in by_c.items():
            best = max(runs, key=lambda r: r["throughput"])
            us = min(r["server_cpu"] / r["throughput"] * 1e6 for r in runs if r["throughput"] > 0)
            raw_best = max(results["raw"][c], key=lambda r: r["throughput"])["throughput"] if "raw" in results else 0
            ratio = f"{best['throughput'] / raw_best:6.2f}x" if raw_best else ""
            print(f"{variant:16} {c:9} {best['throughput']:9.0f} {us:15.0f} {ratio:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", choices=VARIANTS)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    args = parser.parse_args()
    if args.serve:
        async def run() -> None:
            server = await serve(args.serve, args.port)
            await server.wait_for_termination()

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())
        return
    report(measure(args.seconds, variants=tuple(args.variants), rounds=args.rounds))


if __name__ == "__main__":
    main()
