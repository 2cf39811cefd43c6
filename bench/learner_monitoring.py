"""What drift monitoring costs the predict path: the bench learner (bench/learner_serving.py) served
with the default monitoring policy (window 500, drift every 100 inputs) and with drift off, ModelInfer
at 1 and 16 in flight, in one run. The Learner computes drift in a child process
(MLMESH_LEARNER_DRIFT_IN_PROCESS, default true); `MLMESH_LEARNER_DRIFT_IN_PROCESS=false python -m
bench.learner_monitoring` measures the old way, in the learner's worker thread, where Evidently holds
the GIL against the event loop (the bench's mesh inherits the environment)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

from bench import learner_serving, oip_load

POLICIES = {"drift off": (100_000, 100_000), "drift every 100 (window 500)": (500, 100)}


def run(seconds: float = 6.0, concurrencies: tuple[int, ...] = (1, 16)) -> dict:
    results: dict = {}
    work = Path(tempfile.mkdtemp(prefix="mlmesh-bench-monitoring-"))
    try:
        for label, policy in POLICIES.items():
            learner_serving.MONITORING = policy
            with learner_serving.learner(work / label.replace(" ", "-")) as served:
                results[label] = {c: asyncio.run(oip_load.run_oip_load(
                    served.target, served.model_name, c, seconds, warmup=1.0, server_pid=served.pid,
                    credentials=served.credentials)) for c in concurrencies}
    finally:
        learner_serving.MONITORING = POLICIES["drift off"]
        shutil.rmtree(work, ignore_errors=True)
    return results


def report(results: dict) -> str:
    in_thread = os.environ.get("MLMESH_LEARNER_DRIFT_IN_PROCESS", "true").lower() in ("false", "0", "no")
    where = "in the learner's worker thread" if in_thread else "in a child process"
    lines = [f"drift computed {where}", f"{'case':<44}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}"]
    base = results["drift off"]
    for label, by_c in results.items():
        for c, r in by_c.items():
            lines.append(f"{label + f', C={c}':<44}{r['throughput']:>8.0f}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}"
                         f"{r['throughput'] / base[c]['throughput']:>7.2f}x")
    lines.append("ratio: req/s over the same learner's with drift off, same C")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run()))
