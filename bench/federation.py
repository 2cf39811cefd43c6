"""FedPATE on Flower (issue 11), each figure against a baseline measured in the same run:

(b) privacy vs accuracy: the FedPATE student's test accuracy on scikit-learn's digits for a total
    epsilon of 1, 2 and 5 (GNMax, sigma chosen by our accountant for the number of noisy queries)
    and without noise, beside two non-private references trained in the same run on the same
    rows: a central model on all the teachers' rows, and the student trained on the true labels
    of the same queries (the most any labelling of those queries can give it);
(a) the same Flower job through the Federation server (REST via Envoy: create -> SUCCEEDED,
    which includes fetching the dataset and registering the student) against the Flower app run
    directly by its launcher, same configuration, alternating runs;
(c) seconds per round, from the app's own round events.

The app runs from the repository (servers/federation/apps) in .venv-flower; the accountant is the
server's (servers/federation/domain/privacy.py). Wall times on this loaded 2-core machine are
noisy: read them beside `uptime`, printed with the figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLOWER_PYTHON = REPO / ".venv-flower" / "bin" / "python"
ML_PYTHON = REPO / ".venv-ml" / "bin" / "python"
APPS = REPO / "servers" / "federation" / "apps"
LAUNCHER = APPS / "launch_flower.py"
DELTA = 1e-5
RUN_TIMEOUT = 1800  # seconds for one Flower run (a loaded machine can starve Flower's heartbeats)

# The private configuration: 200 teachers on 5 SuperNodes (40 each, disjoint shards of about 6
# digits each), 100 noisy queries, the rest of the public split as the student's test set.
PRIVATE = {"num-teachers": 200, "teachers-per-node": 40, "teacher-epochs": 100, "student-epochs": 100,
           "batch-size": 32, "learning-rate": 0.003, "num-queries": 539, "noise-data": 100, "noise": "gaussian",
           "server-fraction": 0.3, "seed": 0, "net-name": "mlp", "num-server-rounds": 1}
# The job of (a): the demo's FedPATE, 5 teachers (one per SuperNode), one round.
SMALL = {"num-teachers": 5, "teacher-epochs": 20, "student-epochs": 50, "batch-size": 32, "learning-rate": 0.003,
         "num-queries": 539, "noise-data": 100, "noise": "gaussian", "sigma": 2.0, "server-fraction": 0.3,
         "seed": 0, "net-name": "mlp", "num-server-rounds": 1}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def digits_csv(path: Path) -> Path:
    subprocess.run([str(ML_PYTHON), str(REPO / "examples/make_digits_csv.py"), "--out", str(path)], check=True,
                   capture_output=True)
    return path


def sigma_for(epsilon: float, queries: int, delta: float = DELTA) -> float:
    """The smallest GNMax sigma whose `queries` answers cost at most `epsilon` at `delta` (our
    accountant, dp-accounting's RDP), by bisection: epsilon falls as sigma grows."""
    from servers.federation.domain import privacy

    low, high = 0.01, 1e4
    for _ in range(60):
        mid = (low * high) ** 0.5
        if privacy.fedpate_gaussian(mid, queries, delta=delta).epsilon > epsilon:
            low = mid
        else:
            high = mid
    return high


def run_direct(config: dict, work: Path) -> dict:
    """The launcher in .venv-flower on `config` (the job.json the server would write), in `work`,
    with the environment the server gives a job. Returns seconds, events and result."""
    if work.exists():
        shutil.rmtree(work)
    (work / "home").mkdir(parents=True)
    (work / "tmp").mkdir()
    config = {**config, "output-dir": str(work / "output")}
    (work / "job.json").write_text(json.dumps(config, indent=1, sort_keys=True))
    env = {"PATH": os.environ.get("PATH", ""), "LANG": os.environ.get("LANG", "C.UTF-8"), "HOME": str(work / "home"),
           "TMPDIR": str(work / "tmp"), "PYTHONUNBUFFERED": "1", "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
           "FLWR_DISABLE_UPDATE_CHECK": "1", "FLWR_TELEMETRY_ENABLED": "0"}
    started = time.perf_counter()
    proc = subprocess.Popen([str(FLOWER_PYTHON), str(LAUNCHER), str(work / "job.json")], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the launcher's whole group: SuperLink, SuperNodes, apps
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"the FedPATE run failed ({proc.returncode}): {stderr[-2000:]}")
    events = [json.loads(line) for line in (work / "output" / "events.jsonl").read_text().splitlines() if line]
    result = json.loads((work / "output" / "result.json").read_text())
    return {"seconds": seconds, "events": events, "result": result}


REFERENCE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np, torch
from fedpate import task
c = json.loads(sys.argv[3])
t = task.read_table(sys.argv[2], c["target-column"])
public, private = task.split(len(t.labels), c["server-fraction"], c["seed"])
queries, test = public[:c["noise-data"]], public[c["noise-data"]:c["num-queries"]]
def trained(rows, epochs):
    torch.manual_seed(c["seed"] + 1)
    model = task.make_net(c["net-name"], t.features[rows], int(t.labels.max()) + 1)
    task.fit(model, t.features[rows], t.labels[rows], epochs=epochs, batch_size=c["batch-size"],
             lr=c["learning-rate"], seed=c["seed"] + 1)
    return task.evaluate(model, t.features[test], t.labels[test])[1]
print(json.dumps({"central": trained(private, 50), "true_labels": trained(queries, c["student-epochs"]),
                  "private_rows": len(private), "test_rows": len(test)}))
"""


def references(csv: Path, config: dict) -> dict:
    """Non-private models on the same rows and test set, same architecture and optimiser: central
    (every teacher's row, true labels) and the student on the true labels of its queries."""
    out = subprocess.run([str(FLOWER_PYTHON), "-c", REFERENCE, str(APPS / "fedpate"), str(csv), json.dumps(config)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def privacy_vs_accuracy(csv: Path, work: Path) -> dict:
    from servers.federation.domain import privacy

    base = {**PRIVATE, "data-path": str(csv), "target-column": "label", "partition": "iid", "dirichlet-alpha": 0.0,
            "epsilon": 0.0, "sigma": 0.0, "framework": "fedpate"}
    queries = base["noise-data"]
    rows = []
    for target in (1.0, 2.0, 5.0, None):
        config = dict(base)
        if target is None:
            config["noise"] = "none"
            spent, sigma = float("inf"), 0.0
        else:
            sigma = sigma_for(target, queries)
            config["sigma"] = sigma
            spent = privacy.fedpate_gaussian(sigma, queries, delta=DELTA).epsilon
        run = run_direct(config, work / f"eps-{target}")
        last = [e for e in run["events"] if e["type"] == "round"][-1]
        rows.append({"target": target, "sigma": sigma, "epsilon": spent, "accuracy": last["accuracy"],
                     "label_accuracy": last["label_accuracy"], "seconds": run["seconds"],
                     "round_seconds": last["seconds"]})
        print(f"  measured: {row_text(rows[-1])}   ({uptime()})", flush=True)
    return {"rows": rows, "reference": references(csv, base), "queries": queries, "config": base}


def row_text(row: dict) -> str:
    target = "none" if row["target"] is None else f"{row['target']:g}"
    return (f"{target:>8} {row['sigma']:7.2f} {row['epsilon']:8.3g} {row['label_accuracy']:9.3f} "
            f"{row['accuracy']:8.3f} {row['seconds']:7.1f} {row['round_seconds']:8.1f}")


def server_vs_direct(csv: Path, work: Path, repeats: int = 2) -> dict:
    """The SMALL job through the Federation server (REST via Envoy; create -> SUCCEEDED) and by its
    launcher directly, alternating, `repeats` times each; medians."""
    import httpx

    from bench.stack import bench_stack
    from servers.federation.domain import appconfig
    from servers.federation.domain.records import FederatedData, FedPateSpec, JobRequest, Noise

    spec = {"num_teachers": SMALL["num-teachers"], "num_rounds": SMALL["num-server-rounds"],
            "teacher_epochs": SMALL["teacher-epochs"], "student_epochs": SMALL["student-epochs"],
            "batch_size": SMALL["batch-size"], "learning_rate": SMALL["learning-rate"], "noise": "NOISE_GAUSSIAN",
            "sigma": SMALL["sigma"], "num_queries": SMALL["num-queries"], "noise_data": SMALL["noise-data"],
            "net_name": SMALL["net-name"]}
    # The launcher's configuration is what the server's one mapping makes of the same request.
    request = JobRequest(spec=FedPateSpec(**{**{k: v for k, v in spec.items() if k != "noise"},
                                             "noise": Noise.GAUSSIAN, "delta": DELTA}),
                         data=FederatedData(dataset_id="-", target_column="label",
                                            server_fraction=SMALL["server-fraction"], seed=SMALL["seed"]))
    direct_config = appconfig.app_config(request, data_path=csv, output_dir=work / "unused")
    direct: list[float] = []
    through: list[float] = []
    rounds: list[float] = []
    accuracy = {}
    with bench_stack(base_id=79) as stack, httpx.Client(base_url=f"http://{stack.front}", timeout=600,
                                                          headers={"authorization": f"Bearer {stack.token}"}) as http:
        ds = http.post("/v1/datasets:upload", params={"organization_id": "bench", "display_name": "digits"},
                       content=csv.read_bytes(), headers={"content-type": "text/csv"}).json()
        body = {"display_name": "bench fedpate", "data": {"dataset_id": ds["dataset_id"], "target_column": "label",
                                                          "server_fraction": SMALL["server-fraction"],
                                                          "seed": SMALL["seed"]},
                "fedpate": spec}
        for i in range(repeats):
            run = run_direct(direct_config, work / f"direct-{i}")
            direct.append(run["seconds"])
            accuracy["direct"] = [e for e in run["events"] if e["type"] == "round"][-1]["accuracy"]
            started = time.perf_counter()
            job = http.post("/v1/federatedJobs", json=body)
            if job.status_code != 200:
                raise RuntimeError(f"CreateFederatedJob refused: {job.status_code} {job.text}")
            url = f"/v1/federatedJobs/{job.json()['job_id']}"
            while True:
                current = http.get(url).json()
                if current["state"] in ("STATE_SUCCEEDED", "STATE_FAILED", "STATE_CANCELLED"):
                    break
                time.sleep(0.1)
            through.append(time.perf_counter() - started)
            if current["state"] != "STATE_SUCCEEDED":
                raise RuntimeError(f"the benchmark job ended {current['state']}: {current.get('failure_reason')}")
            rounds.extend(float(r["seconds"]) for r in current.get("rounds", []))
            accuracy["server"] = current["rounds"][-1]["accuracy"]
    d, t = statistics.median(direct), statistics.median(through)
    return {"direct_s": d, "server_s": t, "ratio": t / d, "repeats": repeats, "round_s": statistics.median(rounds),
            "accuracy": accuracy, "epsilon": sigma_epsilon(SMALL["sigma"], SMALL["noise-data"])}


def sigma_epsilon(sigma: float, queries: int) -> float:
    from servers.federation.domain import privacy

    return privacy.fedpate_gaussian(sigma, queries, delta=DELTA).epsilon


def report_privacy(r: dict) -> str:
    c = r["config"]
    ref = r["reference"]
    lines = [f"digits: {c['num-teachers']} teachers on {c['num-teachers'] // c['teachers-per-node']} SuperNodes "
             f"({ref['private_rows']} private rows), {r['queries']} GNMax queries, {ref['test_rows']} test rows; "
             f"epsilon at delta {DELTA:g}, data-independent RDP, record-level (docs/federation.md)",
             f"{'target':>8} {'sigma':>7} {'epsilon':>8} {'labels ok':>9} {'student':>8} {'run s':>7} {'round s':>8}"]
    lines += [row_text(row) for row in r["rows"]]
    lines.append(f"references (non-private, same run, same test rows): central model on all {ref['private_rows']} "
                 f"private rows {ref['central']:.3f}; the student on the true labels of its {r['queries']} queries "
                 f"{ref['true_labels']:.3f}")
    return "\n".join(lines)


def report_server(r: dict) -> str:
    return (f"medians of {r['repeats']} alternating runs; 5 teachers, 1 round, sigma {SMALL['sigma']} "
            f"(epsilon {r['epsilon']:.3g} at delta {DELTA:g})\n"
            f"Flower app by its launcher (baseline)      {r['direct_s']:7.2f} s   1.00x\n"
            f"through the Federation server (REST, Envoy) {r['server_s']:7.2f} s   {r['ratio']:.2f}x baseline "
            f"(create -> SUCCEEDED: dataset fetch + hash check, Flower run, student registered and anchored)\n"
            f"seconds per round (app's events, through the server): {r['round_s']:.1f} s; student accuracy "
            f"direct {r['accuracy'].get('direct', float('nan')):.3f}, server {r['accuracy'].get('server', float('nan')):.3f}")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="mlmesh-bench-fed-"))
    try:
        csv = digits_csv(work / "digits.csv")
        print(f"load before: {uptime()}", flush=True)
        print("-- (a) the Federation server vs the Flower app run directly --", flush=True)
        print(report_server(server_vs_direct(csv, work)), flush=True)
        print(f"load: {uptime()}")
        print("-- (b) privacy vs accuracy, (c) seconds per round --", flush=True)
        print(report_privacy(privacy_vs_accuracy(csv, work)))
        print(f"load after: {uptime()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
