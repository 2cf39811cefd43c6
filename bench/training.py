"""Training-job overhead: the demo's CNN recipe through the Trainer (via Envoy: register the
model, pre-train, train, post-train, verified on the ledger) against running the same recipe
directly with the same interpreter, data and seed, in the same run."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.stack import REPO, bench_stack
from clients.recipes import pack_recipe

ML_PYTHON = REPO / ".venv-ml" / "bin" / "python"
RECIPE = REPO / "examples" / "recipes" / "digits-cnn"


def run_direct(csv: Path, out: Path) -> float:
    env = {"PATH": os.environ.get("PATH", ""), "MLMESH_DATASET_PATH": str(csv), "MLMESH_OUTPUT_PATH": str(out),
           "MLMESH_PARAMS": "{}", "MLMESH_SEED": "0", "MLMESH_WORK_DIR": str(RECIPE)}
    t0 = time.perf_counter()
    subprocess.run([str(ML_PYTHON), "train.py"], cwd=RECIPE, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def run(repeats: int = 3) -> dict:
    """Alternates a direct run and a run through the Trainer, `repeats` times, so machine noise
    hits both alike; reports medians."""
    work = Path(tempfile.mkdtemp(prefix="mlmesh-bench-train-"))
    csv = work / "digits.csv"
    subprocess.run([str(ML_PYTHON), str(REPO / "examples/make_digits_csv.py"), "--out", str(csv)], check=True,
                   capture_output=True)
    archive = pack_recipe(RECIPE, work / "digits-cnn.tar.gz").read_bytes()
    direct: list[float] = []
    through: list[float] = []
    with bench_stack(base_id=78) as stack, httpx.Client(base_url=f"http://{stack.front}", timeout=300,
                                                          headers={"authorization": f"Bearer {stack.token}"}) as http:
        ds = http.post("/v1/datasets:upload", params={"organization_id": "bench", "display_name": "digits"},
                       content=csv.read_bytes(), headers={"content-type": "text/csv"}).json()
        for i in range(repeats):
            direct.append(run_direct(csv, work / f"direct-{i}.pt"))
            t0 = time.perf_counter()
            model = http.post("/v1/models", params={"organization_id": "bench", "developer_id": "bench",
                                                    "dataset_id": ds["dataset_id"], "display_name": f"cnn {i}",
                                                    "recipe_filename": "digits-cnn.tar.gz"},
                              content=archive, headers={"content-type": "application/gzip"}).json()
            url = f"/v1/models/{model['model_id']}"
            while True:
                current = http.get(url).json()
                if current["state"] in ("STATE_TRAINED", "STATE_FAILED"):
                    break
                time.sleep(0.05)
            if current["state"] != "STATE_TRAINED":
                raise RuntimeError(f"the benchmark model failed: {current.get('failure_reason')}")
            through.append(time.perf_counter() - t0)
    d, t = statistics.median(direct), statistics.median(through)
    return {"direct_s": d, "trainer_s": t, "ratio": t / d, "overhead_s": t - d, "repeats": repeats}


def report(r: dict) -> str:
    return (f"medians of {r['repeats']} alternating runs\n"
            f"recipe run directly (baseline)           {r['direct_s']:6.2f} s   1.00x\n"
            f"through the Trainer (register → TRAINED) {r['trainer_s']:6.2f} s   {r['ratio']:.2f}x baseline "
            f"({r['overhead_s']:+.2f} s: upload, contract, pre-train fetch + hash checks, post-train, verify)")


if __name__ == "__main__":
    print(report(run()), file=sys.stdout)
