"""The front door under concurrency: the same V2 model (bench-sgd, a tabular SGDRegressor on 36 features,
bench/learner_serving.py) called straight on the Learner's ports and through Envoy with a JWT, in one
run, at 1 and 16 requests in flight; over the Open Inference Protocol's gRPC half (ModelInfer, the
generator of bench/oip_load.py) and its REST half (POST /v2/models/bench-sgd/infer, JSON, a closed loop
of aiohttp requests on keep-alive connections). The baseline of each Envoy row is the direct row of
the same API and concurrency; the targets: through Envoy >= 0.8x the direct throughput and p99 <= 1.5x.

The generator runs in this process (the mesh venv) on the same 2 cores as Envoy and the Learner, so
the Envoy rows share the machine with one more process than the direct rows: `gen cpu` and `srv cpu`
say who was busy.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import ssl
import time

import aiohttp

from bench import oip_load
from bench.learner_serving import FEATURES, serve_learner
from bench.learner_serving import client_ssl as learner_client_ssl
from bench.stack import bench_stack

TARGET_THROUGHPUT = 0.8
TARGET_P99 = 1.5


def _rest_bodies(model: str, n: int = oip_load.DISTINCT_REQUESTS) -> list[bytes]:
    out = []
    for seed in range(n):
        rng = random.Random(seed)
        out.append(json.dumps({"inputs": [{"name": "input-0", "shape": [1, FEATURES], "datatype": "FP32",
                                           "data": [rng.uniform(-1, 1) for _ in range(FEATURES)]}]}).encode())
    return out


async def run_rest_load(url: str, model: str, concurrency: int, seconds: float, *, warmup: float = 1.0,
                        headers: dict[str, str] | None = None, ssl_context: ssl.SSLContext | None = None,
                        server_pid: int | None = None) -> dict:
    """Closed-loop POST {url}/v2/models/{model}/infer: `concurrency` requests in flight, each on its own
    keep-alive connection; every answer is checked for status 200."""
    bodies = _rest_bodies(model)
    infer = f"{url}/v2/models/{model}/infer"
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=ssl_context if ssl_context is not None else False)
    send_headers = {"content-type": "application/json", **(headers or {})}
    async with aiohttp.ClientSession(connector=connector, headers=send_headers) as session:
        async with session.post(infer, data=bodies[0]) as r:
            first = await r.json()
            if r.status != 200 or math.prod(first["outputs"][0]["shape"]) != 1:
                raise RuntimeError(f"REST infer answered {r.status}: {str(first)[:300]}")
        window = oip_load._Window(warmup, seconds, server_pid)

        async def worker(index: int) -> None:
            i = index
            while window.running():
                started = time.perf_counter()
                try:
                    async with session.post(infer, data=bodies[i % len(bodies)]) as r:
                        await r.read()
                        if r.status != 200:
                            raise RuntimeError(f"status {r.status}")
                except (aiohttp.ClientError, RuntimeError) as exc:
                    window.error(exc)
                    continue
                window.record(started, time.perf_counter())
                i += concurrency

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return window.result(target=url, concurrency=concurrency, api="REST infer")


def run(seconds: float = 5.0, concurrencies: tuple[int, ...] = (1, 16), warmup: float = 1.0) -> dict:
    """{api: {concurrency: {"direct": result, "envoy": result}}}, plus the pids measured."""
    out: dict = {"gRPC ModelInfer": {}, "REST infer": {}}
    with bench_stack(base_id=93) as stack:
        served = serve_learner(stack)
        pid = served.pid
        auth = (("authorization", f"Bearer {stack.token}"),)
        http_direct = f"https://127.0.0.1:{stack.env['MLMESH_LEARNER_HTTP_PORT']}"
        client_ssl = learner_client_ssl(stack)
        for c in concurrencies:
            # direct and through Envoy back to back, so both see the same machine
            out["gRPC ModelInfer"][c] = {
                "direct": asyncio.run(oip_load.run_oip_load(served.target, served.model_name, c, seconds,
                                                            warmup=warmup, server_pid=pid,
                                                            credentials=served.credentials)),
                "envoy": asyncio.run(oip_load.run_oip_load(stack.front, served.model_name, c, seconds,
                                                           warmup=warmup, server_pid=pid, metadata=auth)),
            }
            out["REST infer"][c] = {
                "direct": asyncio.run(run_rest_load(http_direct, served.model_name, c, seconds, warmup=warmup,
                                                    ssl_context=client_ssl, server_pid=pid)),
                "envoy": asyncio.run(run_rest_load(f"http://{stack.front}", served.model_name, c, seconds,
                                                   warmup=warmup, headers={"authorization": f"Bearer {stack.token}"},
                                                   server_pid=pid)),
            }
    return out


def report(r: dict) -> str:
    lines = [oip_load.HEADER + f" {'p99 x':>7}  target"]
    for api, by_c in r.items():
        for c, pair in by_c.items():
            direct, envoy = pair["direct"], pair["envoy"]
            lines.append(oip_load.format_row(f"{api}, C={c}, direct (baseline)", direct))
            ratio = envoy["throughput"] / direct["throughput"] if direct["throughput"] else float("nan")
            p99 = envoy["p99_ms"] / direct["p99_ms"] if direct["p99_ms"] else float("nan")
            met = "met" if ratio >= TARGET_THROUGHPUT and p99 <= TARGET_P99 else "NOT met"
            lines.append(oip_load.format_row(f"{api}, C={c}, via Envoy + JWT", envoy, direct) + f" {p99:6.2f}x  {met}")
    lines.append(f"(targets through Envoy: >= {TARGET_THROUGHPUT}x the direct req/s and p99 <= {TARGET_P99}x "
                 "the direct p99, at each concurrency)")
    return "\n".join(lines)


def main() -> None:
    print(report(run()))


if __name__ == "__main__":
    main()
