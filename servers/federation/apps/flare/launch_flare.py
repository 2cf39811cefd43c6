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
   (SVT or percentile; updates are then sent as differences, which these filters expect); with
   homomorphic encryption, the components of FLARE's `FedAvgRecipeWithHE` instead (`he_recipe`):
   each client encrypts its weights with the clients' CKKS context (HEModelEncryptor) and decrypts
   the global model it receives (HEModelDecryptor); the server aggregates ciphertexts
   (HEInTimeAccumulateWeightedAggregator, HEModelShareableGenerator) with a context that has no
   secret key. The contexts are made by FLARE's own `HEBuilder` (`he_contexts`), as provisioning
   does, and the simulator gives the server only the server context (`Simulator`);
3. exports it and runs it with FLARE's simulator (`SimulatorRunner`, what `SimEnv` runs, here in
   this process so that it stays in the job's process group) in `<job dir>/flare` (FLARE's
   workspace; HOME and TMPDIR are the job's);
4. turns the persistor's events file into `MLMESH_EVENT` lines (the framework's version, each
   client's data commitment, each round), and writes the final global model as TorchScript
   (`output/model.pt`) with `output/result.json`. With HE the server's global model is a set of
   ciphertexts: this process, holding the clients' key, decrypts each round's to evaluate it
   (`HeRelay`) and the last one to write it (`decrypt_model`).

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
from launch_flower import Tail, emit, say  # noqa: E402
from mlmesh_flare import CLIENT_CONTEXT, SERVER_CONTEXT, FlareNet, ReportingPersistor  # noqa: E402

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


def he_contexts(startup: Path) -> None:
    """The server's and the clients' CKKS contexts, made by FLARE's own HEBuilder with its defaults
    (what `nvflare provision` writes into the kits), as `server_context.tenseal` (public and
    relinearisation keys only) and `client_context.tenseal` (with the secret key) in `startup`."""
    from nvflare.lighter.impl.he import HEBuilder

    builder = HEBuilder()
    builder.initialize(None, None)  # makes the context; neither argument is used
    startup.mkdir(parents=True, exist_ok=True)
    (startup / SERVER_CONTEXT).write_bytes(builder.get_serialized_context())
    (startup / CLIENT_CONTEXT).write_bytes(builder.get_serialized_context(is_client=True))


def decrypt_model(encrypted_file: Path, client_context: Path, model_args: dict) -> dict:
    """The plaintext state dict of a global model the HE server persisted (ciphertexts, serialized)."""
    import tenseal as ts

    context = ts.context_from(client_context.read_bytes())
    shapes = {k: v.shape for k, v in FlareNet(**model_args).state_dict().items()}
    saved = torch.load(encrypted_file, map_location="cpu", weights_only=True)
    weights = saved.get("model", saved)
    plain = {}
    for name, value in weights.items():
        if isinstance(value, bytes):
            value = ts.ckks_vector_from(context, value).decrypt()
        plain[name] = torch.as_tensor(np.asarray(value, dtype=np.float32)).reshape(shapes[name])
    return plain


class HeRelay(Tail):
    """Tail for HE jobs: a round event naming the encrypted global model gets that model's loss
    and accuracy on the server's test split, computed here after decrypting it with the clients'
    key (the FLARE server cannot); the persistor's `log` events become lines of the job's log."""

    def __init__(self, path: Path, client_context: Path, model_args: dict, test_path: Path, target_column: str):
        super().__init__(path)
        self.client_context, self.model_args = client_context, model_args
        self.test_path, self.target_column = test_path, target_column

    def poll(self) -> None:
        if not self.path.exists():
            return
        for line in self.path.read_text().splitlines()[self.seen:]:
            if not line.endswith("}"):
                break  # still being written
            self.seen += 1
            event = json.loads(line)
            encrypted = event.pop("encrypted_model", None)
            if not encrypted:
                self.relay(line)  # only the persistor's HE rounds name an encrypted model
            else:
                model = FlareNet(**self.model_args)
                model.load_state_dict(decrypt_model(Path(encrypted), self.client_context, self.model_args))
                test = task.read_table(self.test_path, self.target_column)
                event["loss"], event["accuracy"] = task.evaluate(model, test.features, test.labels)
                say(f"round {event['round']}: the global model decrypted with the clients' key: accuracy "
                    f"{event['accuracy']:.4f} on the server's test split")
                emit(**event)


def save_model(model_args: dict, weights_file: Path, table: task.Table, classes: int, output: Path, *,
               client_context: Path | None = None) -> None:
    model = FlareNet(**model_args)
    if client_context is not None:  # HE: the server's file holds ciphertexts
        model.load_state_dict(decrypt_model(weights_file, client_context, model_args))
    else:
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
    if config.get("homomorphic-encryption") and dp_filter is not None:
        raise ValueError("homomorphic encryption cannot be combined with a privacy filter (FLARE's HE recipe has none)")
    train_args = " ".join(([f"--data-dir {data_dir}"] if data_dir is not None else []) + [
        f"--target-column {config['target-column']}", f"--net {model_args['kind']}",
        f"--features {model_args['features']}", f"--classes {classes}", f"--epochs {int(config['epochs'])}",
        f"--batch-size {int(config['batch-size'])}", f"--learning-rate {float(config['learning-rate'])}",
        f"--seed {int(config['seed'])}"])
    encrypted = bool(config.get("homomorphic-encryption"))
    persistor = ReportingPersistor(model={"path": "mlmesh_flare.FlareNet", "args": model_args},
                                   events_path=str(events), test_path=str(test_path),
                                   target_column=str(config["target-column"]), encrypted=encrypted,
                                   **({"filter_id": HE_SERIALIZE_FILTER} if encrypted else {}))
    if encrypted:
        return he_recipe(config, persistor, train_args)
    recipe = FedAvgRecipe(
        name=JOB_NAME, min_clients=int(config["num-clients"]), num_rounds=int(config["num-rounds"]),
        train_script=str(HERE / "client.py"), train_args=train_args, model_persistor=persistor,
        params_transfer_type=TransferType.DIFF if dp_filter is not None else TransferType.FULL)
    if dp_filter is not None:
        recipe.add_client_output_filter(dp_filter, tasks=["train"])
    return recipe


HE_SERIALIZE_FILTER = "model_serialize_filter"


def he_recipe(config: dict, persistor: ReportingPersistor, train_args: str):
    """What FLARE's FedAvgRecipeWithHE builds (scatter-and-gather over ciphertexts: HE shareable
    generator and aggregator on the server, HE serialize filter for the persistor, HE decryptor on
    the task data and encryptor on the results of the clients), with the reporting persistor in
    place of the recipe's plain one (the recipe takes no persistor). Clients send full weights,
    which the encryptor multiplies by their local steps before encrypting; the aggregator divides
    the encrypted sum by the total."""
    from nvflare.apis.dxo import DataKind
    from nvflare.app_common.workflows.scatter_and_gather import ScatterAndGather
    from nvflare.app_opt.he.intime_accumulate_model_aggregator import HEInTimeAccumulateWeightedAggregator
    from nvflare.app_opt.he.model_decryptor import HEModelDecryptor
    from nvflare.app_opt.he.model_encryptor import HEModelEncryptor
    from nvflare.app_opt.he.model_serialize_filter import HEModelSerializeFilter
    from nvflare.app_opt.he.model_shareable_generator import HEModelShareableGenerator
    from nvflare.app_opt.pt.job_config.base_fed_job import BaseFedJob
    from nvflare.app_opt.pt.job_config.model import PTModel
    from nvflare.fuel.utils.constants import FrameworkType
    from nvflare.job_config.defs import FilterType
    from nvflare.job_config.script_runner import ScriptRunner
    from nvflare.recipe.spec import Recipe

    clients = int(config["num-clients"])
    job = BaseFedJob(name=JOB_NAME, min_clients=clients)
    job.to_server(HEModelSerializeFilter(), id=HE_SERIALIZE_FILTER)
    job.comp_ids.update(job.to_server(PTModel(model=persistor.model, persistor=persistor)))
    aggregator = job.to_server(HEInTimeAccumulateWeightedAggregator(expected_data_kind=DataKind.WEIGHTS,
                                                                    weigh_by_local_iter=False), id="aggregator")
    generator = job.to_server(HEModelShareableGenerator(), id="shareable_generator")
    job.to_server(ScatterAndGather(min_clients=clients, num_rounds=int(config["num-rounds"]),
                                   wait_time_after_min_received=0, aggregator_id=aggregator,
                                   persistor_id=job.comp_ids["persistor_id"], shareable_generator_id=generator))
    job.to_clients(ScriptRunner(script=str(HERE / "client.py"), script_args=train_args,
                                framework=FrameworkType.PYTORCH))
    job.to_clients(HEModelDecryptor(), tasks=["train", "validate"], filter_type=FilterType.TASK_DATA)
    job.to_clients(HEModelEncryptor(weigh_by_local_iter=True), tasks=["train"], filter_type=FilterType.TASK_RESULT)
    return Recipe(job)


class Simulator:
    """FLARE's SimulatorRunner, which copies `<workspace>/startup` into every participant's startup
    folder, made to leave the server only the server's HE context and each client only the
    clients' (a provisioned kit has exactly that)."""

    @staticmethod
    def make(**kwargs):
        from nvflare.private.fed.app.simulator.simulator_runner import SimulatorRunner

        class _Runner(SimulatorRunner):
            def _setup_local_startup(self, log_config_file_path, workspace):
                super()._setup_local_startup(log_config_file_path, workspace)
                startup = Path(workspace) / "startup"
                (startup / (CLIENT_CONTEXT if Path(workspace).name == "server" else SERVER_CONTEXT)).unlink(
                    missing_ok=True)

        return _Runner(**kwargs)


def main(job_file: str) -> int:
    job_file_path = Path(job_file).resolve()
    job_dir = job_file_path.parent
    config = json.loads(job_file_path.read_text())
    encrypted = bool(config.get("homomorphic-encryption"))
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
    client_context = None
    if encrypted:
        # The simulator's workspace/startup is copied into each participant's (Simulator).
        he_contexts(workspace / JOB_NAME / "startup")
        client_context = job_dir / CLIENT_CONTEXT
        client_context.write_bytes((workspace / JOB_NAME / "startup" / CLIENT_CONTEXT).read_bytes())
    # The simulator talks to its helper processes through a multiprocessing manager, by default
    # on a Unix socket in TMPDIR, whose path may not exceed 107 bytes (a deep job directory does):
    # on 127.0.0.1 instead, which also leaves nothing behind after a SIGKILL.
    multiprocessing.connection.default_family = "AF_INET"
    tail = (HeRelay(events, client_context, model_args, data_dir / "server-test.csv", str(config["target-column"]))
            if client_context is not None else Tail(events))
    tail.start()
    try:
        status = Simulator.make(job_folder=str(job_dir / "flare-job" / JOB_NAME), workspace=str(workspace / JOB_NAME),
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
    save_model(model_args, found[0], table, classes, output, client_context=client_context)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: launch_flare.py <job dir>/job.json", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
