"""The FedPATE aggregator: a ServerApp that labels its public, unlabeled queries by the teachers'
noisy votes and trains the student on them (Papernot et al., PATE; the seed's D3.4 section 5.3.3).

Per round: every node trains its teachers (`train`, reporting its data commitment once; a node
hosts one teacher, or `teachers-per-node` of them), then they vote on this round's share of the
`noise-data` queries (`query`); each query's label is the noisy argmax of the vote counts (Laplace
of scale 1/epsilon or Gaussian of standard deviation sigma); the student is trained again on
every query labelled so far and evaluated on the held-out rest of the `num-queries` public
samples, which no teacher ever sees.

Options of the run config beside the seed's parameters (defaults: today's plain PATE):
`threshold` / `sigma-threshold` (Confident-GNMax, Papernot et al. 2018: only the queries whose
noisy top count reaches the threshold are answered), `query-selection` (`representative`: the
queries are k-means representatives of the public rows outside the test set), and
`student-semi-supervised` (`label-spreading`: the answered labels spread over those public rows
before the student trains) and `teacher-semi-supervised` (`label-spreading`: the server sends
those public rows' features with `train`, and each teacher spreads its own labels over them
and trains on both). The last three use public rows and released labels only.

Outputs in `output-dir`: `events.jsonl` (one JSON object a line: each teacher's commitment, each
round's figures), `votes.json` (each asked query's vote histogram and whether it was answered:
the input of the data-dependent privacy analysis, private to the server), `model.pt` (the
student as TorchScript) and `result.json` (its framework and input signature).
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
MAX_POOL = 4000  # the most public rows label spreading works on (a rows x rows matrix)


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


def _write_votes(output: Path, run, counts: np.ndarray, answered: np.ndarray) -> None:
    """`votes.json` in the output directory: each asked query's vote histogram and whether it was
    answered, for the data-dependent privacy analysis (the mesh's accountant reads it). The
    histograms are derived from the teachers' private data: this file stays with the server's job
    and never goes into an event or the model's record."""
    (output / "votes.json").write_text(json.dumps({
        "noise": str(run["noise"]), "sigma": float(run["sigma"]), "epsilon": float(run["epsilon"]),
        "threshold": float(run.get("threshold", 0.0)), "sigma_threshold": float(run.get("sigma-threshold", 0.0)),
        "counts": counts.astype(int).tolist(), "answered": answered.astype(bool).tolist()}))


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
    test = public[noise_data:num_queries]
    # The student's unlabelled public rows: every public row outside its test set (capped: label
    # spreading holds a rows x rows matrix).
    pool = np.concatenate([public[:noise_data], public[num_queries:]])[:MAX_POOL]
    selection = str(run.get("query-selection", "first"))
    semi = str(run.get("student-semi-supervised", "none"))
    threshold, sigma_threshold = float(run.get("threshold", 0.0)), float(run.get("sigma-threshold", 0.0))
    if selection == "first":
        queries = public[:noise_data]
    elif selection == "representative":
        queries = pool[task.representatives(table.features[pool], noise_data, seed)]
    else:
        raise ValueError(f"unknown query-selection {selection!r} (first, representative)")
    if semi not in ("none", "label-spreading"):
        raise ValueError(f"unknown student-semi-supervised {semi!r} (none, label-spreading)")
    teacher_semi = str(run.get("teacher-semi-supervised", "none"))
    if teacher_semi not in ("none", "label-spreading"):
        raise ValueError(f"unknown teacher-semi-supervised {teacher_semi!r} (none, label-spreading)")
    if semi == "label-spreading" and noise_data > MAX_POOL:
        raise ValueError(f"student-semi-supervised label-spreading works on at most {MAX_POOL} public rows; "
                         f"noise-data is {noise_data}")
    if threshold > 0 and str(run["noise"]) != "gaussian":
        raise ValueError("a threshold (Confident-GNMax) needs gaussian noise")
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
    histograms: list[np.ndarray] = []
    answered_flags: list[np.ndarray] = []
    asked = 0
    committed: set[str] = set()
    student = None
    for server_round, chunk in enumerate(np.array_split(queries, rounds), start=1):
        started = time.monotonic()
        config = ConfigRecord({"server-round": server_round, "num-classes": classes})
        content = RecordDict({"config": config})
        if teacher_semi == "label-spreading":
            # Public rows only (the student's unlabelled rows, never its test rows).
            content["public"] = ArrayRecord({"features": Array(table.features[pool])})
        trained = _ask(grid, nodes, "train", content, server_round)
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
            counts = task.vote_counts(votes, classes)
            answered = (task.noisy_threshold(counts, threshold, sigma_threshold, rng) if threshold > 0
                        else np.ones(len(chunk), dtype=bool))
            labels = task.noisy_argmax_counts(counts, str(run["noise"]), float(run["epsilon"]), float(run["sigma"]),
                                              rng)
            asked += len(chunk)
            histograms.append(counts)
            answered_flags.append(answered)
            labelled_rows.append(chunk[answered])
            labelled.append(labels[answered])
            _write_votes(output, run, np.concatenate(histograms), np.concatenate(answered_flags))
        rows, y = np.concatenate(labelled_rows), np.concatenate(labelled)
        if not len(y):
            raise RuntimeError(f"no query was answered ({asked} asked): the teachers never reached the threshold "
                               f"{threshold:g}; lower threshold or ask more queries")
        label_accuracy = float((y == table.labels[rows]).mean())
        x_train, y_train = table.features[rows], y
        if semi == "label-spreading":
            # The released labels spread over the public rows' neighbourhood graph (post-processing).
            where = {int(r): i for i, r in enumerate(pool)}
            scores = task.label_spreading(table.features[pool], np.array([where[int(r)] for r in rows]), y, classes)
            reached = scores.max(1) > 0
            x_train, y_train = table.features[pool][reached], scores.argmax(1)[reached].astype(np.int64)
        torch.manual_seed(seed + server_round)
        student = task.make_net(str(run["net-name"]), x_train, classes)
        task.fit(student, x_train, y_train, epochs=int(run["student-epochs"]), batch_size=int(run["batch-size"]),
                 lr=float(run["learning-rate"]), seed=seed + server_round)
        loss, accuracy = task.evaluate(student, table.features[test], table.labels[test])
        print(f"round {server_round}: student test loss {loss:.4f} accuracy {accuracy:.4f} "
              f"(noisy labels {label_accuracy:.3f} correct, {len(y)} of {asked} queries answered, "
              f"student trained on {len(y_train)} rows)")
        events.emit(type="round", round=server_round, loss=loss, accuracy=accuracy, queries=asked,
                    answered=int(len(y)), student_rows=int(len(y_train)), seconds=time.monotonic() - started,
                    label_accuracy=label_accuracy, clients=clients)
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
