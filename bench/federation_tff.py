"""TFF DP-FedAvg (issue 11), run as the Federation server runs it (servers/federation/apps/tff in
.venv-tff), against a baseline from the same run: the same MLP trained centrally on the union of
the clients' rows, one epoch per federated round (each client trains one local epoch a round).

Prints, on scikit-learn's digits split over 3 clients (Dirichlet alpha 1, the seed's
imb_parameter), 10 rounds: seconds per round (the first round, which traces TFF's computations,
apart), the global test accuracy without noise and with noise multiplier 1 (the seed's
dp_parameter; clip norm 1) and the (epsilon, delta) our accountant gives that run, beside the
central model's seconds per epoch and accuracy. Wall times on this shared 2-core machine are
noisy: read them beside `uptime`, printed with the figures.

    .venv/bin/python -m bench.federation_tff
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from servers.federation.adapters import tff
from servers.federation.domain import privacy

REPO = Path(__file__).resolve().parents[1]
TFF_PYTHON = REPO / ".venv-tff" / "bin" / "python"
ML_PYTHON = REPO / ".venv-ml" / "bin" / "python"
APP = REPO / "servers" / "federation" / "apps" / "tff"
CLIENTS, ROUNDS, CLIP, DELTA = 3, 10, 1.0, 1e-5

# The central baseline: the app's own split, model and standardisation, trained by Keras's fit.
CENTRAL = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, data, dp_fedavg
import tensorflow as tf
config = json.load(open(sys.argv[2]))
table = data.load(config["data-path"], config["target-column"])
seed = config["seed"]
test, train = data.holdout(len(table.labels), config["server-fraction"], seed)
rows = np.concatenate(data.dirichlet_split(train, table.labels, config["n-clients"], config["imb-parameter"],
                                           config["n-samples"], seed))
mean, std = table.features[rows].mean(0), table.features[rows].std(0)
std = np.where(std > 0, std, 1.0)
x = ((table.features - mean) / std).astype("float32")
tf.keras.utils.set_random_seed(seed)
model = dp_fedavg.build_model(tf, x.shape[1], int(table.labels.max()) + 1)
model.compile(optimizer=tf.keras.optimizers.SGD(0.1), metrics=["accuracy"],
              loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
seconds = []
for _ in range(config["num-rounds"]):
    started = time.monotonic()
    model.fit(x[rows], table.labels[rows], epochs=1, batch_size=config["batch-size"], verbose=0)
    seconds.append(time.monotonic() - started)
print(json.dumps({"seconds": seconds, "accuracy": float(model.evaluate(x[test], table.labels[test], verbose=0)[1])}))
"""


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def config(work: Path, csv: Path, noise: float) -> Path:
    """The job directory of one run, with its job.json (the table the server writes)."""
    job_dir = work / f"job-{noise:g}"
    job_dir.mkdir()
    (job_dir / "job.json").write_text(json.dumps({
        "framework": "tff", "data-path": str(csv), "output-dir": str(work / f"out-{noise:g}"),
        "target-column": "label", "server-fraction": 0.3, "seed": 1, "imb-parameter": 1.0, "dp-parameter": noise,
        "n-clients": CLIENTS, "n-samples": 100_000, "num-rounds": ROUNDS, "epochs": 1, "batch-size": 32,
        "clients-per-round": CLIENTS, "clip-norm": CLIP}))
    return job_dir


def federated(job_dir: Path) -> dict:
    """One run launched as the server launches it (its own network namespace where permitted)."""
    isolation = "none" if tff.unavailable(TFF_PYTHON, "netns") else "netns"
    launch = tff.launch(TFF_PYTHON, job_dir, isolation)
    started = time.monotonic()
    out = subprocess.run(launch.argv, capture_output=True, text=True, check=True, cwd=job_dir,
                         env={**launch.env, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}).stdout
    rounds = [json.loads(line.split(" ", 1)[1]) for line in out.splitlines() if line.startswith("MLMESH_EVENT ")]
    rounds = [r for r in rounds if r["type"] == "round"]
    return {"wall": time.monotonic() - started, "first": rounds[0]["seconds"],
            "per_round": statistics.median(r["seconds"] for r in rounds[1:]), "accuracy": rounds[-1]["accuracy"]}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mlmesh-bench-tff-") as tmp:
        work = Path(tmp)
        csv = work / "digits.csv"
        subprocess.run([str(ML_PYTHON), str(REPO / "examples/make_digits_csv.py"), "--out", str(csv)], check=True,
                       capture_output=True)
        print(f"load: {uptime()}")
        (work / "central").mkdir()
        central = json.loads(subprocess.run(
            [str(TFF_PYTHON), "-c", CENTRAL, str(APP), str(config(work / "central", csv, 0.0) / "job.json")],
            capture_output=True, text=True,
            check=True, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}).stdout.splitlines()[-1])
        epoch = statistics.median(central["seconds"][1:])
        runs = {noise: federated(config(work, csv, noise)) for noise in (0.0, 1.0)}
        print(f"load: {uptime()}")
    spent = privacy.dp_fedavg(1.0, 1.0, ROUNDS, delta=DELTA)
    print(f"digits, {CLIENTS} clients (Dirichlet alpha 1), {ROUNDS} rounds of 1 local epoch, clip norm {CLIP:g}")
    print(f"  central baseline (same MLP, same rows, Keras fit): {epoch * 1000:.0f} ms per epoch, "
          f"test accuracy {central['accuracy']:.3f}")
    for noise, run in runs.items():
        guarantee = (f"epsilon {spent.epsilon:.1f} at delta {DELTA:g}" if noise else "no noise: no formal guarantee")
        print(f"  TFF DP-FedAvg, noise multiplier {noise:g}: {run['per_round'] * 1000:.0f} ms per round "
              f"({run['per_round'] / epoch:.1f}x a central epoch; first round {run['first']:.1f} s with tracing; "
              f"whole process {run['wall']:.0f} s), test accuracy {run['accuracy']:.3f} "
              f"({run['accuracy'] / central['accuracy']:.2f}x central); {guarantee}")


if __name__ == "__main__":
    main()
