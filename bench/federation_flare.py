"""NVIDIA FLARE FedAvg (issue 11), launched as the Federation server launches it
(servers/federation/apps/flare in .venv-flare, FLARE's simulator), against a baseline from the
same run: the same network trained centrally on the union of the clients' rows, one epoch per
federated round (each client trains one local epoch a round).

Prints, on scikit-learn's digits split IID over 2 clients, 3 rounds: seconds per round (median
over the rounds after the first; the first apart) and the global test accuracy on the server's
held-out split, without a DP filter, with FLARE's percentile filter and with its SVT filter
(svt_epsilon 1 per round), each with the privacy statement our accountant gives it; beside the
central model's seconds per epoch and accuracy. Wall times on this shared 2-core machine are
noisy: read them beside `uptime`, printed with the figures.

    .venv/bin/python -m bench.federation_flare
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.federation_tff import uptime
from servers.federation.adapters import flare
from servers.federation.domain import appconfig, specs
from servers.federation.domain.records import FederatedData, FlareSpec, JobRequest, PrivacyFilter
from servers.federation.domain.service import FederationCore

REPO = Path(__file__).resolve().parents[1]
FLARE_PYTHON = REPO / ".venv-flare" / "bin" / "python"
ML_PYTHON = REPO / ".venv-ml" / "bin" / "python"
APPS = REPO / "servers" / "federation" / "apps"
CLIENTS, ROUNDS = 2, 3
FILTERS = {"none": (PrivacyFilter.NONE, 0.0), "percentile": (PrivacyFilter.PERCENTILE, 0.0),
           "svt": (PrivacyFilter.SVT, 1.0)}

# The central baseline: the launcher's own split (FedPATE's), network and statistics, trained by the
# same fit() the clients use, on every client's rows at once.
CENTRAL = r"""
import json, sys, time
sys.path[:0] = [sys.argv[1] + "/flare", sys.argv[1] + "/fedpate"]
import numpy as np
from fedpate import task
from mlmesh_flare import FlareNet
config = json.load(open(sys.argv[2]))
table = task.read_table(config["data-path"], config["target-column"])
server_rows, client_rows = task.split(len(table.labels), config["server-fraction"], config["seed"])
public = table.features[server_rows]
model = FlareNet("mlp", table.features.shape[1], int(table.labels.max()) + 1, public.mean(0).tolist(),
                 public.std(0).tolist())
seconds = []
for epoch in range(config["num-rounds"]):
    started = time.monotonic()
    task.fit(model, table.features[client_rows], table.labels[client_rows], epochs=1,
             batch_size=config["batch-size"], lr=config["learning-rate"], seed=config["seed"] + epoch)
    seconds.append(time.monotonic() - started)
_loss, accuracy = task.evaluate(model, public, table.labels[server_rows])
print(json.dumps({"seconds": seconds, "accuracy": accuracy}))
"""


def request(kind: str) -> JobRequest:
    privacy_filter, svt_epsilon = FILTERS[kind]
    return specs.check_request(JobRequest(
        spec=FlareSpec(epochs=1, batch_size=32, num_clients=CLIENTS, num_rounds=ROUNDS, learning_rate=0.001,
                       privacy_filter=privacy_filter, svt_epsilon=svt_epsilon),
        data=FederatedData(dataset_id="00000000-0000-4000-8000-000000000000", target_column="label", seed=1)))


def job_dir(work: Path, csv: Path, kind: str, name: str = "") -> Path:
    """One run's job directory with its job.json, written by the server's own mapping."""
    directory = work / f"job-{name or kind}"
    for sub in ("home", "tmp"):
        (directory / sub).mkdir(parents=True)
    config = appconfig.app_config(request(kind), data_path=csv, output_dir=directory / "output")
    (directory / "job.json").write_text(json.dumps(config))
    return directory


def federated(directory: Path) -> dict:
    launch = flare.launch(FLARE_PYTHON, directory)
    started = time.monotonic()
    done = subprocess.run(launch.argv, capture_output=True, text=True, cwd=directory,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(directory / "home"),
                               "TMPDIR": str(directory / "tmp"), "PYTHONUNBUFFERED": "1"})
    if done.returncode != 0:
        raise RuntimeError(f"the FLARE launcher failed ({done.returncode}): {done.stderr[-3000:]}")
    out = done.stdout
    events = [json.loads(line.split(" ", 1)[1]) for line in out.splitlines() if line.startswith("MLMESH_EVENT ")]
    rounds = [e for e in events if e["type"] == "round"]
    return {"wall": time.monotonic() - started, "first": rounds[0]["seconds"],
            "per_round": statistics.median(r["seconds"] for r in rounds[1:]), "accuracy": rounds[-1]["accuracy"]}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mlmesh-bench-flare-") as tmp:
        work = Path(tmp)
        csv = work / "digits.csv"
        subprocess.run([str(ML_PYTHON), str(REPO / "examples/make_digits_csv.py"), "--out", str(csv)], check=True,
                       capture_output=True)
        print(f"load: {uptime()}")
        central = json.loads(subprocess.run(
            [str(FLARE_PYTHON), "-c", CENTRAL, str(APPS), str(job_dir(work, csv, "none", "central") / "job.json")],
            capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"}).stdout.splitlines()[-1])
        epoch = statistics.median(central["seconds"])
        runs = {kind: federated(job_dir(work, csv, kind)) for kind in FILTERS}
        print(f"load: {uptime()}")
    print(f"digits, {CLIENTS} clients (IID), {ROUNDS} rounds of 1 local epoch, FLARE's simulator")
    print(f"  central baseline (same network, same rows, same fit): {epoch * 1000:.0f} ms per epoch, "
          f"test accuracy {central['accuracy']:.3f}")
    for kind, run in runs.items():
        spent = FederationCore.final_privacy(request(kind))
        guarantee = (f"epsilon {spent.epsilon:g} (delta 0)" if spent.formal_guarantee else "no formal guarantee")
        print(f"  FLARE FedAvg, filter {kind}: {run['per_round']:.1f} s per round "
              f"({run['per_round'] / epoch:.0f}x a central epoch; first round {run['first']:.1f} s; whole process "
              f"{run['wall']:.0f} s), test accuracy {run['accuracy']:.3f} "
              f"({run['accuracy'] / central['accuracy']:.2f}x central); {guarantee}")


if __name__ == "__main__":
    main()
