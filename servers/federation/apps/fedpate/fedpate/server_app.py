"""The FedPATE aggregator: a ServerApp that labels its public, unlabeled queries by the teachers'
noisy votes and trains the student on them (Papernot et al., PATE; the seed's D3.4 section 5.3.3).

Per round: every node trains its teachers (`train`, reporting its data commitment once; a node
hosts one teacher, or `teachers-per-node` of them), then they vote on this round's share of the `noise-data` queries (`query`); each query's label is the noisy argmax of the
vote counts (Laplace of scale 1/epsilon or Gaussian of standard deviation sigma); the student is
trained again on every query labelled so far and evaluated on the held-out rest of the
`num-queries` public samples, which no teacher ever sees.

Outputs in `output-dir`: `events.jsonl` (one JSON object a line: each teacher's commitment, each
round's figures), `model.pt` (the student as TorchScript) and `result.json` (its framework and
input signature).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

from fedpate import task

app = ServerApp()


class Events:
    def __init__(self, output_dir: Path):
        output_dir.mkdir(parents=True, exist_ok=True)
        self.path = output_dir / "events.jsonl"
        self.path.write_text("")

    def emit(self, **event) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(event) + "\n")


def _nodes(grid: Grid, wanted: int, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= wanted:
            return nodes[:wanted]
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(nodes)} of {wanted} teachers connected within {timeout:.0f} s")
        time.sleep(0.2)


def _ask(grid: Grid, nodes: list[int], kind: str, content: RecordDict, server_round: int) -> list[Message]:
    messages = [Message(content=content, dst_node_id=node, message_type=kind, group_id=str(server_round))
                for node in nodes]
    replies = list(grid.send_and_receive(messages))
    errors = [r.error.reason for r in replies if r.has_error()]
    if errors:
        raise RuntimeError(f"{kind}: {len(errors)} teacher(s) failed: {errors[0][:2000]}")
    if len(replies) != len(nodes):
        raise RuntimeError(f"{kind}: {len(replies)} of {len(nodes)} teachers replied")
    return sorted(replies, key=lambda r: r.metadata.src_node_id)


@app.main()
def main(grid: Grid, context: Context) -> None:
    run = context.run_config
    output = Path(str(run["output-dir"]))
    events = Events(output)
    seed = int(run["seed"])
    table = task.read_table(str(run["data-path"]), str(run["target-column"]))
    public, _private = task.split(len(table.labels), float(run["server-fraction"]), seed)
    num_queries, noise_data = int(run["num-queries"]), int(run["noise-data"])
    if len(public) < num_queries:
        raise ValueError(f"num-queries is {num_queries} but the server's public split has {len(public)} rows "
                         f"(server-fraction {run['server-fraction']}); lower num-queries or raise server-fraction")
    queries, test = public[:noise_data], public[noise_data:num_queries]
    # The number of classes: the labels of the server's own held-out samples (the teachers may know more).
    classes = int(table.labels[public[:num_queries]].max()) + 1
    rounds = int(run["num-server-rounds"])
    teachers = int(run["num-teachers"])
    wanted = task.node_count(teachers, int(run.get("teachers-per-node", 1)))
    nodes = _nodes(grid, wanted, float(run.get("connect-timeout", 120.0)))
    print(f"FedPATE: {teachers} teachers on {len(nodes)} node(s), {rounds} round(s), {noise_data} noisy queries, "
          f"{len(test)} test samples")
    rng = np.random.default_rng(seed + 7)
    labelled_rows: list[np.ndarray] = []
    labelled: list[np.ndarray] = []
    committed: set[str] = set()
    student = None
    for server_round, chunk in enumerate(np.array_split(queries, rounds), start=1):
        started = time.monotonic()
        config = ConfigRecord({"server-round": server_round, "num-classes": classes})
        trained = _ask(grid, nodes, "train", RecordDict({"config": config}), server_round)
        clients = []
        for reply in trained:
            c, m = reply.content["commitment"], reply.content["metrics"]
            if c["client-id"] not in committed:
                committed.add(str(c["client-id"]))
                events.emit(type="commitment", client_id=c["client-id"], sha256=c["sha256"],
                            sample_count=int(c["sample-count"]))
            clients.append({"client_id": c["client-id"], "loss": m["train-loss"], "accuracy": m["train-accuracy"],
                            "num_examples": int(m["num-examples"])})
        if len(chunk):
            ask = RecordDict({"config": config,
                              "queries": ArrayRecord({"features": Array(table.features[chunk])})})
            # Each node answers teachers x queries; all the teachers' votes are counted alike.
            votes = np.concatenate([r.content["votes"].to_numpy_ndarrays()[0].reshape(-1, len(chunk)) for r in
                                    _ask(grid, nodes, "query", ask, server_round)])
            if len(votes) != teachers:
                raise RuntimeError(f"{len(votes)} teachers voted; the run has {teachers}")
            labelled_rows.append(chunk)
            labelled.append(task.noisy_argmax(votes, classes, str(run["noise"]), float(run["epsilon"]),
                                              float(run["sigma"]), rng))
        x, y = table.features[np.concatenate(labelled_rows)], np.concatenate(labelled)
        torch.manual_seed(seed + server_round)
        student = task.make_net(str(run["net-name"]), x, classes)
        task.fit(student, x, y, epochs=int(run["student-epochs"]), batch_size=int(run["batch-size"]),
                 lr=float(run["learning-rate"]), seed=seed + server_round)
        loss, accuracy = task.evaluate(student, table.features[test], table.labels[test])
        label_accuracy = float((y == table.labels[np.concatenate(labelled_rows)]).mean())
        print(f"round {server_round}: student test loss {loss:.4f} accuracy {accuracy:.4f} "
              f"(noisy labels {label_accuracy:.3f} correct, {len(y)} queries answered)")
        events.emit(type="round", round=server_round, loss=loss, accuracy=accuracy, queries=int(len(y)),
                    seconds=time.monotonic() - started, label_accuracy=label_accuracy, clients=clients)
    assert student is not None
    student.eval()
    scripted = torch.jit.script(student)
    scripted.save(str(output / "model.pt"))
    columns = table.feature_columns
    contiguous = table.source == "csv" and list(columns) == list(range(columns[0], columns[-1] + 1))
    signature = {"shape": [-1, len(columns)], "dtype": "float32",
                 "csv_feature_columns": [columns[0], columns[-1] + 1] if contiguous else None}
    (output / "result.json").write_text(json.dumps({"model_framework": "pytorch", "input_signature": signature,
                                                    "num_classes": classes, "test_accuracy": accuracy}))
