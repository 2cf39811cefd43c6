"""Runs one NVIDIA FLARE FedAvg job on a provisioned FLARE server whose clients were started from
their startup kits (real mode), and reports to the Federation server. Runs in .venv-flare;
imports nothing of mlmesh. `launch_flare.py` hands a job over here when its job.json names the
server's admin kit (`flare-admin-kit`, the project admin's kit folder, named after the admin).

    .venv-flare/bin/python real_flare.py abort <job dir>/job.json

aborts the FLARE job a run submitted (the Federation server calls it on cancel and after a restart).

A run:
1. reads the job's Registry dataset as the server's held-out split only: the model's
   normalisation statistics and each round's global evaluation (the clients keep their data);
2. builds the same FedAvg recipe as the simulated path (`launch_flare.fedavg_recipe`), without a
   data directory: each client reads its local CSV from the path in its MLMESH_FLARE_DATA
   environment variable, set when its owner starts it from the kit, and sends its commitment
   (SHA-256 and sample count of that file) with its results;
3. exports it with `mlmesh_flare.py` and the `fedpate` package in every app's `custom/` folder
   (kit processes have only their own code and the job's), submits it through FLARE's admin API
   with the admin kit, records FLARE's job id in `<job dir>/flare_job_id`, and follows it: the
   reporting persistor (in the FLARE server's job process, on this machine) writes the events
   file this process turns into `MLMESH_EVENT` lines;
4. once FLARE says FINISHED:COMPLETED, downloads the job's result and writes the final global
   model as the simulated path does (`output/model.pt`, `output/result.json`).

With homomorphic encryption the recipe is the HE one (`launch_flare.he_recipe`) and the contexts
are the ones `nvflare provision` wrote into the kits (HEBuilder): the FLARE server loads its
server context (no secret key), each client its client context. This process decrypts each
round's and the final global model with a client context from the provisioned kits (`he_key`):
the Federation server provisioned them, so it holds the clients' key.

Exit 0 once the model is written; otherwise 1 with the reason on stderr.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from importlib import metadata
from pathlib import Path

from launch_flare import (  # sets sys.path
    FEDPATE,
    HERE,
    JOB_NAME,
    HeRelay,
    fedavg_recipe,
    model_arguments,
    save_model,
)

import numpy as np  # noqa: E402
from fedpate import task  # noqa: E402
from launch_flower import Tail, emit, say  # noqa: E402
from mlmesh_flare import CLIENT_CONTEXT  # noqa: E402

DATA_ENV = "MLMESH_FLARE_DATA"
POLL_SECONDS = 1.0
SESSION_TIMEOUT = 60.0


def session(config: dict):
    from nvflare.fuel.flare_api.flare_api import new_secure_session

    kit = Path(config["flare-admin-kit"])
    return new_secure_session(kit.name, str(kit), timeout=SESSION_TIMEOUT)


def he_key(config: dict) -> Path:
    """A client context (with the secret key) from the server's provisioned kits, beside its admin kit."""
    found = sorted(Path(config["flare-admin-kit"]).parent.glob(f"*/startup/{CLIENT_CONTEXT}"))
    if not found:
        raise RuntimeError("the FLARE server's kits carry no homomorphic-encryption context (provisioned without "
                           "HEBuilder): start a new FLARE server for jobs with homomorphic encryption")
    return found[0]


def ship_code(job_folder: Path) -> None:
    """Our components and the FedPATE data/model code into each app's custom/ folder."""
    customs = [p for p in job_folder.rglob("custom") if p.is_dir()]
    if not customs:
        raise RuntimeError(f"the exported FLARE job in {job_folder} has no custom/ folder")
    for custom in customs:
        shutil.copy2(HERE / "mlmesh_flare.py", custom / "mlmesh_flare.py")
        shutil.copytree(FEDPATE / "fedpate", custom / "fedpate", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))


def run(config: dict, job_dir: Path) -> int:
    output = Path(config["output-dir"])
    output.mkdir(parents=True, exist_ok=True)
    events = output / "events.jsonl"
    events.write_text("")
    try:
        client_context = he_key(config) if config.get("homomorphic-encryption") else None
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    emit(type="framework", version=f"nvflare {metadata.version('nvflare')}")
    table = task.read_table(config["data-path"], config["target-column"])
    classes = int(table.labels.max()) + 1
    model_args = model_arguments(config, table, np.arange(len(table.labels)), classes)
    recipe = fedavg_recipe(config, model_args, classes, events=events, test_path=Path(config["data-path"]),
                           data_dir=None)
    recipe.export(str(job_dir / "flare-job"))
    job_folder = job_dir / "flare-job" / JOB_NAME
    ship_code(job_folder)
    admin = session(config)
    tail = (HeRelay(events, client_context, model_args, Path(config["data-path"]), str(config["target-column"]))
            if client_context is not None else Tail(events))
    try:
        flare_job = admin.submit_job(str(job_folder))
        (job_dir / "flare_job_id").write_text(flare_job)
        say(f"submitted to the FLARE server as job {flare_job}")
        tail.start()
        status, shown = "", ""
        while not status.startswith("FINISHED"):
            time.sleep(POLL_SECONDS)
            status = str(admin.get_job_meta(flare_job).get("status", ""))
            if status != shown:
                say(f"FLARE job {flare_job}: {status}")
                shown = status
        if status != "FINISHED:COMPLETED":
            print(f"FLARE job {flare_job} ended {status} (see the FLARE server's log)", file=sys.stderr)
            return 1
        result = Path(admin.download_job_result(flare_job, str(job_dir / "flare-result")))
    finally:
        tail.done.set()
        if tail.is_alive():
            tail.join(10)
        admin.close()
    found = sorted(result.rglob("FL_global_model.pt"))
    if not found:
        print(f"FLARE job {flare_job} ended without a global model in its result ({result})", file=sys.stderr)
        return 1
    save_model(model_args, found[0], table, classes, output, client_context=client_context)
    return 0


def abort(job_file: Path) -> int:
    """Aborts the FLARE job recorded beside `job_file`, if any and still running."""
    id_file = job_file.parent / "flare_job_id"
    if not id_file.exists():
        return 0
    config = json.loads(job_file.read_text())
    admin = session(config)
    try:
        flare_job = id_file.read_text().strip()
        if not str(admin.get_job_meta(flare_job).get("status", "")).startswith("FINISHED"):
            admin.abort_job(flare_job)
            say(f"aborted FLARE job {flare_job}")
    finally:
        admin.close()
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "abort":
        print("usage: real_flare.py abort <job dir>/job.json", file=sys.stderr)
        sys.exit(2)
    sys.exit(abort(Path(sys.argv[2]).resolve()))
