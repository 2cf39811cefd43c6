"""The teachers of one node: a ClientApp that trains them on its private data (`train`) and lets
them vote on the server's unlabeled queries (`query`). The models stay on the node, in the run's
context; only votes leave.

A node hosts one teacher (the seed's one teacher per client) or, with `teachers-per-node` k > 1 in
the run config, k teachers, each on its own disjoint shard: every training row still reaches
exactly one teacher, which is what PATE's record-level guarantee rests on (docs/federation.md)."""

from __future__ import annotations

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedpate import task

app = ClientApp()


def _shards(context: Context) -> tuple[task.Table, list[np.ndarray], str]:
    """This node's data and its teachers' shards: its own file (node config `data-path`, split over
    `num-teachers` in its node config, default 1), or its teachers' parts of the shared file."""
    run, node = context.run_config, context.node_config
    seed = int(run["seed"])
    if "data-path" in node:
        table = task.read_table(str(node["data-path"]), str(run["target-column"]))
        rows = np.arange(len(table.labels))
        hosted = int(node.get("num-teachers", 1))
        shards = task.partition(rows, table.labels, hosted, "iid", 0.0, seed) if hosted > 1 else [rows]
        return table, shards, str(node.get("client-id", f"node-{context.node_id}"))
    table = task.read_table(str(run["data-path"]), str(run["target-column"]))
    _public, private = task.split(len(table.labels), float(run["server-fraction"]), seed)
    teachers = int(run["num-teachers"])
    parts = int(node.get("num-partitions", teachers))
    part = int(node["partition-id"])
    shards = task.partition(private, table.labels, teachers, str(run["partition"]), float(run["dirichlet-alpha"]),
                            seed)
    mine = task.teachers_of(part, parts, teachers)
    name = f"teacher-{part}" if parts == teachers else f"client-{part}"
    return table, [shards[t] for t in mine], name


def _classes(config: ConfigRecord, table: task.Table, shards: list[np.ndarray]) -> int:
    return max(int(config["num-classes"]), int(max(table.labels[s].max() for s in shards)) + 1)


def _teacher(context: Context, index: int, x: np.ndarray, classes: int) -> task.Net:
    model = task.make_net(str(context.run_config["net-name"]), x, classes)
    key = f"teacher-{index}"
    if key in context.state:
        model.load_state_dict(context.state[key].to_torch_state_dict())
    return model


def _teacher_data(x: np.ndarray, y: np.ndarray, public: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A teacher's training set: its own rows, plus (semi-supervised) the public rows its own
    labels reach by label spreading over its rows and the public ones. Still a function of this
    teacher's shard and public data only: one private row moves one teacher, as PATE needs."""
    if not len(public):
        return x, y
    features = np.concatenate([x, public])
    scores = task.label_spreading(features, np.arange(len(x)), y, classes)
    reached = scores[len(x):].max(1) > 0
    return (np.concatenate([x, public[reached]]),
            np.concatenate([y, scores[len(x):][reached].argmax(1).astype(np.int64)]))


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Trains each teacher for `teacher-epochs` more epochs; replies with their mean training
    figures and the node's data commitment (SHA-256 and sample count of all its teachers' rows)."""
    config = msg.content["config"]
    table, shards, client_id = _shards(context)
    classes = _classes(config, table, shards)
    run = context.run_config
    # The server's public, unlabelled rows, sent when the teachers learn semi-supervised.
    public = (msg.content["public"]["features"].numpy().astype(np.float32) if "public" in msg.content
              else np.zeros((0, table.features.shape[1]), dtype=np.float32))
    losses, accuracies = [], []
    for index, rows in enumerate(shards):
        x, y = _teacher_data(table.features[rows], table.labels[rows], public, classes)
        model = _teacher(context, index, x, classes)
        seed = (int(run["seed"]) * 1000 + int(config["server-round"]) * 100
                + int(context.node_config.get("partition-id", 0))) * 1000 + index
        loss, accuracy = task.fit(model, x, y, epochs=int(run["teacher-epochs"]), batch_size=int(run["batch-size"]),
                                  lr=float(run["learning-rate"]), seed=seed)
        context.state[f"teacher-{index}"] = ArrayRecord(model.state_dict())
        losses.append(loss * len(rows))
        accuracies.append(accuracy * len(rows))
    everything = np.sort(np.concatenate(shards))
    sha256, samples = task.commitment(table, everything)
    return Message(RecordDict({
        "metrics": MetricRecord({"train-loss": sum(losses) / samples, "train-accuracy": sum(accuracies) / samples,
                                 "num-examples": samples, "num-teachers": len(shards)}),
        "commitment": ConfigRecord({"client-id": client_id, "sha256": sha256, "sample-count": samples}),
    }), reply_to=msg)


@app.query()
def query(msg: Message, context: Context) -> Message:
    """Each hosted teacher's label for each query (features in the message), teachers x queries;
    never a model or data."""
    queries = msg.content["queries"]["features"].numpy().astype(np.float32)
    config = msg.content["config"]
    table, shards, _client_id = _shards(context)
    classes = _classes(config, table, shards)
    votes = []
    for index, rows in enumerate(shards):
        if f"teacher-{index}" not in context.state:
            raise RuntimeError("query before train: this node's teachers have no model yet")
        votes.append(task.predict(_teacher(context, index, table.features[rows], classes), queries))
    return Message(RecordDict({"votes": ArrayRecord([np.stack(votes)])}), reply_to=msg)
