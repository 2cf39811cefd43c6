"""ONNX vs PyTorch eager inference and translation time, for the demo's CNN.

Runs inside .venv-ml (torch, onnxruntime): `make bench` calls it as a subprocess. Trains the
digits CNN recipe directly, translates it with the Translator's worker (timed), then compares
single-sample latency and batch throughput of onnxruntime against PyTorch eager on the same
inputs in the same run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "examples" / "recipes" / "digits-cnn"


def _timeit(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    import numpy as np
    import onnxruntime as ort
    import torch

    torch.set_num_threads(2)
    work = Path(tempfile.mkdtemp(prefix="mlmesh-bench-onnx-"))
    csv, model_pt, onnx_path = work / "digits.csv", work / "model.pt", work / "model.onnx"
    subprocess.run([sys.executable, str(REPO / "examples/make_digits_csv.py"), "--out", str(csv)], check=True,
                   capture_output=True)
    env = {**os.environ, "MLMESH_DATASET_PATH": str(csv), "MLMESH_OUTPUT_PATH": str(model_pt), "MLMESH_PARAMS": "{}",
           "MLMESH_SEED": "0"}
    subprocess.run([sys.executable, "train.py"], cwd=RECIPE, env=env, check=True, capture_output=True)
    signature = json.dumps({"shape": [None, 1, 8, 8], "dtype": "float32", "csv_feature_columns": [0, 64],
                            "scale": 0.0625})
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "servers.translator.worker", "--framework", "pytorch", "--model",
                    str(model_pt), "--signature", signature, "--dataset", str(csv), "--out", str(onnx_path),
                    "--report", str(work / "report.json"), "--rows=-360:"], cwd=REPO, check=True, capture_output=True,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    translate_s = time.perf_counter() - t0
    report = json.loads((work / "report.json").read_text())

    spec = importlib.util.spec_from_file_location("digits_cnn_recipe", RECIPE / "train.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    eager = recipe.DigitsNetwork()
    eager.load_state_dict(torch.jit.load(str(model_pt)).state_dict())
    eager.eval()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    x = np.random.default_rng(0).random((256, 1, 8, 8), dtype=np.float32)
    one, batch = x[:1], x
    tone, tbatch = torch.from_numpy(one), torch.from_numpy(batch)
    with torch.inference_mode():
        for _ in range(50):
            eager(tone)
            session.run(None, {name: one})
        torch_single = _timeit(lambda: eager(tone), 2000)
        onnx_single = _timeit(lambda: session.run(None, {name: one}), 2000)
        torch_batch = _timeit(lambda: eager(tbatch), 200)
        onnx_batch = _timeit(lambda: session.run(None, {name: batch}), 200)

    def p50(ts):
        return statistics.median(ts) * 1e6

    rows = [
        ("single sample, p50 latency (µs)", p50(torch_single), p50(onnx_single)),
        ("batch of 256, samples/s", 256 / statistics.median(torch_batch), 256 / statistics.median(onnx_batch)),
    ]
    print(f"{'case':34} {'PyTorch eager':>14} {'onnxruntime':>12} {'ratio':>8}")
    print(f"{rows[0][0]:34} {rows[0][1]:14.1f} {rows[0][2]:12.1f} {rows[0][1] / rows[0][2]:7.2f}x faster")
    print(f"{rows[1][0]:34} {rows[1][1]:14.0f} {rows[1][2]:12.0f} {rows[1][2] / rows[1][1]:7.2f}x")
    parity = report["parity"]
    print(f"translation (worker, incl. parity check): {translate_s:.2f} s; parity max abs diff "
          f"{parity['max_abs_diff']:.2e}, passed {parity['passed']}")


if __name__ == "__main__":
    main()
