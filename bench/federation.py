"""FedPATE on Flower (issue 11), each figure against a baseline measured in the same run:

(b) privacy vs accuracy: the FedPATE student's test accuracy on scikit-learn's digits for a total
    epsilon of at most 1, 2 and 5, and without noise (rows in PRIVACY_ROWS: GNMax on k-means
    representatives of the student's unlabelled public rows, labels spread over those rows), each
    with its data-independent epsilon (dp-accounting's RDP, known before the run) and its
    data-dependent epsilon (PATE 2018, from the run's vote histograms; itself data-dependent),
    beside non-private references trained in the same run on the same rows: a central model on
    all the teachers' rows, and the student on the true labels of the same queries;
(a) the same Flower job through the Federation server (REST via Envoy: create -> SUCCEEDED,
    which includes fetching the dataset and registering the student) against the Flower app run
    directly by its launcher, same configuration, alternating runs;
(c) seconds per round, from the app's own round events.

`--only privacy` runs (b) and (c) alone, `--only server` (a). The app runs from the repository
(servers/federation/apps) in .venv-flower; the accountant is the server's
(servers/federation/domain/privacy.py). Wall times on this loaded 2-core machine are noisy: read
them beside `uptime`, printed with the figures.
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

# The private configuration: 50 teachers on 5 SuperNodes (10 each, disjoint shards of about 20
# digits each); the server's public split is 45 % of the rows: 400 of them are the student's test
# set, the other 409 its unlabelled rows. Each teacher spreads its own labels over those 409
# public rows and trains on both (semi-supervised teachers); the teachers label `noise-data`
# k-means representatives of the 409 rows (public data: the choice costs nothing), and the
# answered labels spread over the 409 rows (post-processing) before the student trains on them.
TEST_ROWS = 400
PRIVATE = {"num-teachers": 50, "teachers-per-node": 10, "teacher-epochs": 100, "student-epochs": 100,
           "batch-size": 32, "learning-rate": 0.003, "noise": "gaussian", "server-fraction": 0.45, "seed": 0,
           "net-name": "mlp", "num-server-rounds": 1, "query-selection": "representative",
           "student-semi-supervised": "label-spreading", "teacher-semi-supervised": "label-spreading",
           "threshold": 0.0, "sigma-threshold": 0.0}
# The rows of (b): (target epsilon, which bound meets it, noisy queries, sigma or None for the
# accountant's). "data-independent": sigma from our accountant before the run, so the bound holds
# whatever the votes; "data-dependent": a fixed sigma whose data-dependent epsilon (PATE 2018,
# computed after the run from the vote histograms) came out below the target in trials on this
# data (the choice itself looked at the private votes, as the PATE papers' tuning does).
PRIVACY_ROWS = [(1.0, "data-independent", 10, None), (2.0, "data-independent", 20, None),
                (5.0, "data-independent", 40, None), (5.0, "data-dependent", 40, 5.0), (None, "none", 40, 0.0)]
# The job of (a): a small FedPATE job, 5 teachers (one per SuperNode), one round (the demo's before it moved to
# the private configuration above).
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
    votes_file = work / "output" / "votes.json"
    votes = json.loads(votes_file.read_text()) if votes_file.exists() else None
    return {"seconds": seconds, "events": events, "result": result, "votes": votes}


REFERENCE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np, torch
from fedpate import task
c = json.loads(sys.argv[3])
t = task.read_table(sys.argv[2], c["target-column"])
public, private = task.split(len(t.labels), c["server-fraction"], c["seed"])
nd, nq = c["noise-data"], c["num-queries"]
test = public[nd:nq]
pool = np.concatenate([public[:nd], public[nq:]])
queries = pool[task.representatives(t.features[pool], nd, c["seed"])]
classes = int(t.labels.max()) + 1
def trained(x, y, epochs):
    torch.manual_seed(c["seed"] + 1)
    model = task.make_net(c["net-name"], x, classes)
    task.fit(model, x, y, epochs=epochs, batch_size=c["batch-size"], lr=c["learning-rate"], seed=c["seed"] + 1)
    return task.evaluate(model, t.features[test], t.labels[test])[1]
where = {int(r): i for i, r in enumerate(pool)}
scores = task.label_spreading(t.features[pool], np.array([where[int(r)] for r in queries]), t.labels[queries], classes)
reached = scores.max(1) > 0
print(json.dumps({
    "central": trained(t.features[private], t.labels[private], 50),
    "true_labels": trained(t.features[queries], t.labels[queries], c["student-epochs"]),
    "true_labels_spread": trained(t.features[pool][reached], scores.argmax(1)[reached], c["student-epochs"]),
    "spread_label_accuracy": float((scores.argmax(1) == t.labels[pool]).mean()),
    "private_rows": len(private), "test_rows": len(test), "pool_rows": len(pool), "queries": len(queries)}))
"""


def references(csv: Path, config: dict) -> dict:
    """Non-private models on the same rows and test set, same architecture and optimiser: central
    (every teacher's row, true labels), and the student on the TRUE labels of its queries, alone
    and spread over its unlabelled rows like the private student's (the ceiling of any labelling
    of those queries)."""
    out = subprocess.run([str(FLOWER_PYTHON), "-c", REFERENCE, str(APPS / "fedpate"), str(csv), json.dumps(config)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def privacy_vs_accuracy(csv: Path, work: Path) -> dict:
    from servers.federation.domain import privacy

    base = {**PRIVATE, "data-path": str(csv), "target-column": "label", "partition": "iid", "dirichlet-alpha": 0.0,
            "epsilon": 0.0, "sigma": 0.0, "framework": "fedpate"}
    rows = []
    for target, bound, queries, fixed_sigma in PRIVACY_ROWS:
        config = {**base, "noise-data": queries, "num-queries": queries + TEST_ROWS}
        if target is None:
            config["noise"] = "none"
            sigma = 0.0
        else:
            sigma = sigma_for(target, queries) if fixed_sigma is None else fixed_sigma
            config["sigma"] = sigma
        run = run_direct(config, work / f"eps-{target}-{bound}")
        last = [e for e in run["events"] if e["type"] == "round"][-1]
        row = {"target": target, "bound": bound, "queries": queries, "sigma": sigma, "accuracy": last["accuracy"],
               "label_accuracy": last["label_accuracy"], "answered": last.get("answered", queries),
               "seconds": run["seconds"], "round_seconds": last["seconds"]}
        if target is None:
            row.update(epsilon_independent=float("inf"), epsilon_dependent=float("inf"))
        else:
            votes = run["votes"]
            report = privacy.fedpate_confident_gnmax(votes["counts"], votes["answered"], sigma=sigma,
                                                     threshold=None, sigma_threshold=None, delta=DELTA)
            row.update(epsilon_dependent=report.epsilon,
                       epsilon_independent=privacy.fedpate_gaussian(sigma, queries, delta=DELTA).epsilon)
        rows.append(row)
        print(f"  measured: {row_text(rows[-1])}   ({uptime()})", flush=True)
    reference_config = {**base, "noise-data": 40, "num-queries": 40 + TEST_ROWS}
    return {"rows": rows, "reference": references(csv, reference_config), "config": base}


def row_text(row: dict) -> str:
    target = "none" if row["target"] is None else f"<= {row['target']:g}"
    return (f"{target:>8} {row['bound']:>16} {row['queries']:7d} {row['sigma']:6.2f} {row['epsilon_independent']:8.3g} "
            f"{row['epsilon_dependent']:8.3g} {row['label_accuracy']:9.3f} {row['accuracy']:8.3f} {row['seconds']:7.1f} "
            f"{row['round_seconds']:8.1f}")


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
             f"({ref['private_rows']} private rows; semi-supervised teachers), GNMax on k-means representatives of the student's "
             f"{ref['pool_rows']} unlabelled public rows, labels spread over them; {TEST_ROWS} test rows; epsilon at "
             f"delta {DELTA:g}, record-level (docs/federation.md); 'dd' is the data-dependent bound (PATE 2018) "
             "computed from the run's vote histograms: itself data-dependent, not sanitised",
             f"{'target':>8} {'bound meeting it':>16} {'queries':>7} {'sigma':>6} {'eps di':>8} {'eps dd':>8} "
             f"{'labels ok':>9} {'student':>8} {'run s':>7} {'round s':>8}"]
    lines += [row_text(row) for row in r["rows"]]
    lines.append(f"references (non-private, same run; test rows of the 40-query rows): central model on all "
                 f"{ref['private_rows']} private rows {ref['central']:.3f}; the student on the true labels of its "
                 f"{ref['queries']} queries {ref['true_labels']:.3f}, those labels spread over the "
                 f"{ref['pool_rows']} rows ({ref['spread_label_accuracy']:.3f} right) {ref['true_labels_spread']:.3f}")
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
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["server", "privacy"], help="run only (a) or only (b)")
    only = parser.parse_args().only
    work = Path(tempfile.mkdtemp(prefix="mlmesh-bench-fed-"))
    try:
        csv = digits_csv(work / "digits.csv")
        print(f"load before: {uptime()}", flush=True)
        if only in (None, "server"):
            print("-- (a) the Federation server vs the Flower app run directly --", flush=True)
            print(report_server(server_vs_direct(csv, work)), flush=True)
            print(f"load: {uptime()}")
        if only in (None, "privacy"):
            print("-- (b) privacy vs accuracy, (c) seconds per round --", flush=True)
            print(report_privacy(privacy_vs_accuracy(csv, work)))
        print(f"load after: {uptime()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
