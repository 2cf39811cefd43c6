"""`make demo-federation`: federated learning through the front door (REST via Envoy), one function
per framework, each ending with its model registered with provenance.

- FedPATE on Flower: scikit-learn's digits, 50 teachers on 5 Flower SuperNodes, GNMax noise
  sized for epsilon <= 5 (the configuration of `make bench`'s privacy table, docs/federation.md);
  the job's (epsilon, delta) from our accountant beside PATE's data-dependent figure, the student
  registered with its provenance (job, framework version, parameters, privacy, each SuperNode's
  data commitment) and translated to ONNX with its parity report.

- NVIDIA FLARE FedAvg in FLARE's simulator: `clients/demo_federation_flare.py`.

- TFF DP-FedAvg: `clients/demo_federation_tff.py`.

Run `make up` first (the Makefile target does). MLMESH_DEMO_FEDERATION=fedpate,tff runs only the
frameworks named (fedpate, flare, tff).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console

from clients import session
from clients.demo_federation_flare import flare
from clients.demo_federation_tff import tff

REPO = Path(__file__).resolve().parents[1]
ML_PYTHON = REPO / ".venv-ml" / "bin" / "python"
FINAL = ("STATE_SUCCEEDED", "STATE_FAILED", "STATE_CANCELLED")


@dataclass
class Demo:
    http: httpx.Client
    org: str
    work: Path
    console: Console

    def say(self, text: str) -> None:
        self.console.rule(f"[bold]{text}")

    def digits(self) -> str:
        """scikit-learn's digits (shipped with it) as a Registry dataset; its id."""
        csv = self.work / "digits.csv"
        subprocess.run([str(ML_PYTHON), str(REPO / "examples/make_digits_csv.py"), "--out", str(csv)], check=True,
                       capture_output=True)
        r = self.http.post("/v1/datasets:upload", params={"organization_id": self.org, "display_name": "digits"},
                           content=csv.read_bytes(), headers={"content-type": "text/csv"})
        r.raise_for_status()
        return r.json()["dataset_id"]

    def follow(self, job_id: str) -> dict:
        """Polls the job, printing each state and round as it arrives; the final job."""
        seen_state, seen_rounds = "", 0
        while True:
            r = self.http.get(f"/v1/federatedJobs/{job_id}")
            r.raise_for_status()
            job = r.json()
            if job["state"] != seen_state:
                seen_state = job["state"]
                self.console.print(f"  {seen_state.removeprefix('STATE_').lower()}")
            for rnd in job.get("rounds", [])[seen_rounds:]:
                spent = rnd.get("privacy", {})
                self.console.print(f"  round {rnd['round']}: accuracy {rnd.get('accuracy', 0):.3f}, "
                                   f"loss {rnd.get('loss', 0):.3f}, {rnd.get('seconds', 0):.1f} s, "
                                   f"spent so far: {spend(spent)}")
            seen_rounds = len(job.get("rounds", []))
            if job["state"] in FINAL:
                return job
            time.sleep(1.0)

    def run_job(self, body: dict) -> dict:
        """Creates the federated job `body` (CreateFederatedJob's JSON), prints the privacy it will
        spend, follows it to its end; the SUCCEEDED job (RuntimeError otherwise)."""
        r = self.http.post("/v1/federatedJobs", json=body)
        r.raise_for_status()
        created = r.json()
        privacy = created["privacy"]
        self.console.print(f"job {created['job_id']}: {spend(privacy)} ({privacy['explanation']})")
        job = self.follow(created["job_id"])
        if job["state"] != "STATE_SUCCEEDED":
            raise RuntimeError(f"job {job['job_id']} ended {job['state']}: {job.get('failure_reason')}")
        return job

    def registered(self, job: dict) -> dict:
        """The job's model and its provenance record, printed."""
        model_id = job["result_model_id"]
        model = self.http.get(f"/v1/models/{model_id}").json()
        record = json.loads(self.http.get(f"/v1/models/{model_id}/recipe:download").content)
        privacy = json.loads(record["privacy"])
        self.console.print(f"  model {model_id} ({model.get('framework')}), contract {model.get('contract_address')}")
        self.console.print(f"  provenance: job {record['federated_job_id']}, {record['framework_version']}, "
                           f"{spend(privacy)} ({privacy.get('mechanism') or 'no mechanism'}, "
                           f"{privacy.get('accountant') or 'no accountant'})")
        for c in json.loads(record["client_commitments"]):
            self.console.print(f"    {c['client_id']}: {c['sample_count']} rows, sha256 {c['sha256'][:16]}...")
        return model

    def translate(self, model_id: str) -> dict:
        r = self.http.post(f"/v1/models/{model_id}:translate", json={})
        r.raise_for_status()
        t = r.json()
        p = t.get("parity", {})
        self.console.print(f"  ONNX translation {t.get('translation_id')}: parity "
                           f"{'passed' if p.get('passed') else 'FAILED'}, top-1 agreement "
                           f"{p.get('top1_agreement', 0):.4f}, max |diff| {p.get('max_abs_diff', 0):.2e}")
        return t


def fedpate(demo: Demo, dataset_id: str) -> dict:
    """FedPATE on Flower at epsilon <= 5 (data-independent): 50 teachers, 10 on each of 5
    SuperNodes; 40 GNMax queries (sigma 8.52, what our accountant needs for epsilon 5 at delta
    1e-5) on k-means representatives of the public rows; teachers and student semi-supervised by
    label spreading over the public rows (no privacy cost). 400 public rows are the test set."""
    demo.say("FedPATE on Flower: digits, 50 teachers on 5 SuperNodes, 40 GNMax queries (sigma 8.52: epsilon <= 5)")
    body = {"display_name": "demo fedpate digits",
            "data": {"dataset_id": dataset_id, "target_column": "label", "server_fraction": 0.45, "seed": 0},
            "fedpate": {"net_name": "mlp", "num_teachers": 50, "teachers_per_node": 10, "num_rounds": 1,
                        "teacher_epochs": 100, "student_epochs": 100, "batch_size": 32, "learning_rate": 0.003,
                        "noise": "NOISE_GAUSSIAN", "sigma": 8.52, "num_queries": 440, "noise_data": 40,
                        "query_selection": "QUERY_SELECTION_REPRESENTATIVE",
                        "teacher_semi_supervised": "SEMI_SUPERVISED_LABEL_SPREADING",
                        "student_semi_supervised": "SEMI_SUPERVISED_LABEL_SPREADING"}}
    job = demo.run_job(body)
    model = demo.registered(job)
    translation = demo.translate(model["model_id"])
    last = job["rounds"][-1]
    return {"framework": "FedPATE on Flower", "accuracy": last.get("accuracy"), "epsilon": job["privacy"]["epsilon"],
            "delta": job["privacy"]["delta"], "model_id": model["model_id"],
            "data_dependent_epsilon": (job["privacy"].get("parameters") or {}).get("data_dependent_epsilon"),
            "onnx_parity": translation.get("parity", {}).get("passed", False)}


# One function per framework; each gets the demo and the digits dataset and returns its figures.
FRAMEWORKS: list[Callable[[Demo, str], dict]] = [fedpate, flare, tff]


def spend(privacy: dict) -> str:
    """A privacy report (the job's JSON or the provenance record's) in words."""
    if not privacy.get("formal_guarantee", False):
        return "no formal privacy guarantee"
    # JSON carries a non-finite double as a string ("Infinity"); float() reads both forms.
    return f"epsilon {float(privacy.get('epsilon', 0)):.4g} at delta {float(privacy.get('delta', 0)):g}"


def chosen() -> list[Callable[[Demo, str], dict]]:
    """The frameworks named in MLMESH_DEMO_FEDERATION (comma-separated function names), else all."""
    names = [n.strip() for n in os.environ.get("MLMESH_DEMO_FEDERATION", "").split(",") if n.strip()]
    known = {f.__name__: f for f in FRAMEWORKS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"MLMESH_DEMO_FEDERATION: unknown {', '.join(unknown)} (known: {', '.join(known)})")
    return [known[n] for n in names] if names else list(FRAMEWORKS)


def main() -> int:
    console = Console()
    settings = session.load_settings()
    token = session.bearer_token(settings, settings.org)
    work = settings.data_dir.resolve() / "demo-federation"
    work.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=f"http://{settings.front_door}", timeout=120,
                      headers={"authorization": f"Bearer {token}"}) as http:
        demo = Demo(http, settings.org, work, console)
        demo.say("dataset: scikit-learn's digits (1797 8x8 images, 10 classes) into the Registry")
        dataset_id = demo.digits()
        console.print(f"dataset {dataset_id}")
        figures = [run(demo, dataset_id) for run in chosen()]
    demo.say("figures")
    for f in figures:
        privacy = spend({"formal_guarantee": f.get("formal_guarantee", True), "epsilon": f["epsilon"],
                         "delta": f["delta"]})
        if f.get("data_dependent_epsilon"):
            privacy += f" (PATE's data-dependent epsilon {float(f['data_dependent_epsilon']):.3g}, not sanitised)"
        console.print(f"{f['framework']}: test accuracy {f['accuracy']:.3f}, {privacy}, model {f['model_id']}, ONNX parity "
                      f"{'passed' if f['onnx_parity'] else 'FAILED'}")
    return 0 if all(f["onnx_parity"] for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
