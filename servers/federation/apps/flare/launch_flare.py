"""Runs one NVIDIA FLARE FedAvg job in FLARE's simulator (SimEnv) and reports to the Federation
server. Runs in .venv-flare; imports nothing of mlmesh.

    .venv-flare/bin/python launch_flare.py <job dir>/job.json

(A job.json naming a FLARE server's admin kit, `flare-admin-kit`, runs in real mode instead:
`real_flare.py`.)

1. splits the dataset the way FedPATE does (`fedpate.task`: a seeded permutation gives the server
   `server-fraction` of the rows as its held-out test split; the rest goes to the `num-clients`
   clients, IID or Dirichlet) and writes each client's shard as its own CSV file
   (`<job dir>/flare-data/site-<i>.csv`): a client reads only its own file;
2. builds FLARE's PyTorch `FedAvgRecipe`: the model (`mlmesh_flare.FlareNet`, the FedPATE MLP/CNN,
   normalised with the server split's statistics), `client.py` as the training script, the
   reporting persistor, and the privacy filter the job asks for on the clients' results
   (SVT or percentile; updates are then sent as differences, which these filters expect);
3. exports it and runs it with FLARE's simulator (`SimulatorRunner`, what `SimEnv` runs, here in
   this process so that it stays in the job's process group) in `<job dir>/flare` (FLARE's
   workspace; HOME and TMPDIR are the job's);
4. turns the persistor's events file into `MLMESH_EVENT` lines (the framework's version, each
   client's data commitment, each round), and writes the final global model as TorchScript
   (`output/model.pt`) with `output/result.json`.

Exit 0 once the model is written; otherwise 1 with the reason on stderr.
"""

from __future__ import annotations

import json
import multiprocessing.connection
import os
import sys
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
APPS = HERE.parent
FEDPATE = APPS / "fedpate"
sys.path[:0] = [str(HERE), str(FEDPATE), str(APPS)]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from fedpate import task  # noqa: E402
from launch_flower import Tail, emit  # noqa: E402
from mlmesh_flare import FlareNet, ReportingPersistor  # noqa: E402

JOB_NAME = "mlmesh-fedavg"
# FLARE's own defaults for its filters (nvflare.app_common.filters), except the SVT budget.
SVT = {"fraction": 0.1, "gamma": 1e-5, "tau": 1e-6}
PERCENTILE = {"percentile": 10, "gamma": 0.01}


def write_shards(config: dict, data_dir: Path) -> tuple[task.Table, np.ndarray, int]:
    """Each client's shard as `site-<i>.csv` and the server's test split as `server-test.csv`;
    returns the table, the server's rows and the number of classes."""
    table = task.read_table(config["data-path"], config["target-column"])
    seed = int(config["seed"])
    server_rows, client_rows = task.split(len(table.labels), float(config["server-fraction"]), seed)
    shards = task.partition(client_rows, table.labels, int(config["num-clients"]), config["partition"],
                            float(config["dirichlet-alpha"]), seed)
    data_dir.mkdir(parents=True, exist_ok=True)
    header = ",".join(table.header) + "\n"
    for name, rows in [("server-test", server_rows)] + [(f"site-{i + 1}", s) for i, s in enumerate(shards)]:
        # Byte for byte what task.commitment hashes: the header, then each row as in the data.
        (data_dir / f"{name}.csv").write_text(header + "".join(table.lines[int(r)] + "\n" for r in rows))
    return table, server_rows, int(table.labels.max()) + 1


def privacy_filter(config: dict):
    kind = config["privacy-filter"]
    if kind == "svt":
        from nvflare.app_common.filters.svt_privacy import SVTPrivacy

        # svt-epsilon is the whole budget of one client's release in one round: half for the
        # threshold and queries (SVT's own split), half for the noise on the released values.
        half = float(config["svt-epsilon"]) / 2
        return SVTPrivacy(epsilon=half, epsilon_release=half, **SVT)
    if kind == "percentile":
        from nvflare.app_common.filters.percentile_privacy import PercentilePrivacy

        return PercentilePrivacy(**PERCENTILE)
    if kind != "none":
        raise ValueError(f"unknown privacy-filter {kind!r} (none, svt, percentile)")
    return None


def save_model(model_args: dict, weights_file: Path, table: task.Table, classes: int, output: Path) -> None:
    model = FlareNet(**model_args)
    saved = torch.load(weights_file, map_location="cpu", weights_only=True)
    model.load_state_dict(saved.get("model", saved))
    model.eval()
    torch.jit.script(model).save(str(output / "model.pt"))
    columns = table.feature_columns
    span = [columns[0], columns[-1] + 1] if list(columns) == list(range(columns[0], columns[-1] + 1)) else None
    (output / "result.json").write_text(json.dumps({
        "model_framework": "pytorch", "num_classes": classes,
        "input_signature": {"shape": [-1, len(columns)], "dtype": "float32", "csv_feature_columns": span}}))


def model_arguments(config: dict, table: task.Table, test_rows: np.ndarray, classes: int) -> dict:
    """FlareNet's JSON arguments, normalised with the server's test rows."""
    test = table.features[test_rows]
    return {"kind": task.net_kind(str(config.get("net-name", "auto"))), "features": int(table.features.shape[1]),
            "classes": classes, "mean": test.mean(axis=0).tolist(), "std": test.std(axis=0).tolist()}


def fedavg_recipe(config: dict, model_args: dict, classes: int, *, events: Path, test_path: Path,
                  data_dir: Path | None):
    """FLARE's PyTorch FedAvgRecipe for the job: the model, client.py as the training script, the
    reporting persistor and the privacy filter. `data_dir` None: the clients read their local data
    (real mode: each client's MLMESH_FLARE_DATA)."""
    from nvflare.app_opt.pt.recipes.fedavg import FedAvgRecipe
    from nvflare.client.config import TransferType

    dp_filter = privacy_filter(config)
    train_args = " ".join(([f"--data-dir {data_dir}"] if data_dir is not None else []) + [
        f"--target-column {config['target-column']}", f"--net {model_args['kind']}",
        f"--features {model_args['features']}", f"--classes {classes}", f"--epochs {int(config['epochs'])}",
        f"--batch-size {int(config['batch-size'])}", f"--learning-rate {float(config['learning-rate'])}",
        f"--seed {int(config['seed'])}"])
    persistor = ReportingPersistor(model={"path": "mlmesh_flare.FlareNet", "args": model_args},
                                   events_path=str(events), test_path=str(test_path),
                                   target_column=str(config["target-column"]))
    recipe = FedAvgRecipe(
        name=JOB_NAME, min_clients=int(config["num-clients"]), num_rounds=int(config["num-rounds"]),
        train_script=str(HERE / "client.py"), train_args=train_args, model_persistor=persistor,
        params_transfer_type=TransferType.DIFF if dp_filter is not None else TransferType.FULL)
    if dp_filter is not None:
        recipe.add_client_output_filter(dp_filter, tasks=["train"])
    return recipe


def main(job_file: str) -> int:
    job_file_path = Path(job_file).resolve()
    job_dir = job_file_path.parent
    config = json.loads(job_file_path.read_text())
    if config.get("homomorphic-encryption"):
        print("homomorphic encryption (tenseal) is not built yet for FLARE jobs", file=sys.stderr)
        return 1
    if config.get("flare-admin-kit"):
        import real_flare  # real mode: a provisioned server and clients started from their kits

        return real_flare.run(config, job_dir)
    output = Path(config["output-dir"])
    output.mkdir(parents=True, exist_ok=True)
    events = output / "events.jsonl"
    events.write_text("")
    emit(type="framework", version=f"nvflare {metadata.version('nvflare')}")
    data_dir = job_dir / "flare-data"
    table, server_rows, classes = write_shards(config, data_dir)
    model_args = model_arguments(config, table, server_rows, classes)
    # FLARE's simulator starts its server and clients as processes of their own: they find the
    # FedPATE data/model code and our components through PYTHONPATH.
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), str(FEDPATE), os.environ.get("PYTHONPATH", "")])
    torch.manual_seed(int(config["seed"]))

    from nvflare.private.fed.app.simulator.simulator_runner import SimulatorRunner
    from nvflare.recipe.sim_env import SimEnv

    recipe = fedavg_recipe(config, model_args, classes, events=events, test_path=data_dir / "server-test.csv",
                           data_dir=data_dir)
    clients = int(config["num-clients"])
    workspace = job_dir / "flare"
    recipe.export(str(job_dir / "flare-job"))
    # What SimEnv does, minus its detaching: SimEnv starts the simulator with os.setsid, out of this
    # process group, so the server's cancel (SIGKILL to the group) would leave it running. Here the
    # simulator runs in this process; the client workers FLARE starts in sessions of their own
    # watch their parent and end themselves within a second of it.
    SimEnv._ensure_default_component_policy(str(workspace / JOB_NAME))
    # The simulator talks to its helper processes through a multiprocessing manager, by default
    # on a Unix socket in TMPDIR, whose path may not exceed 107 bytes (a deep job directory does):
    # on 127.0.0.1 instead, which also leaves nothing behind after a SIGKILL.
    multiprocessing.connection.default_family = "AF_INET"
    tail = Tail(events)
    tail.start()
    try:
        status = SimulatorRunner(job_folder=str(job_dir / "flare-job" / JOB_NAME), workspace=str(workspace / JOB_NAME),
                                 n_clients=clients, threads=clients, log_config="concise").run()
    finally:
        tail.done.set()
        tail.join(10)
    if status not in (None, 0):
        print(f"FLARE's simulator ended with status {status} (logs: {workspace / JOB_NAME})", file=sys.stderr)
        return 1
    found = sorted((workspace / JOB_NAME / "server").rglob("FL_global_model.pt"))
    if not found:
        print(f"the FLARE run ended without a global model (logs: {workspace / JOB_NAME})", file=sys.stderr)
        return 1
    save_model(model_args, found[0], table, classes, output)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: launch_flare.py <job dir>/job.json", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
