"""The teacher: a ClientApp that trains on its private shard (`train`) and votes on the server's
unlabeled queries (`query`). Its model stays on the node, in the run's context; only votes leave."""

from __future__ import annotations

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedpate import task

app = ClientApp()


def _shard(context: Context) -> tuple[task.Table, np.ndarray, str]:
    """This teacher's data: its own file (node config `data-path`), or its part of the shared file."""
    run, node = context.run_config, context.node_config
    if "data-path" in node:
        table = task.read_table(str(node["data-path"]), str(run["target-column"]))
        return table, np.arange(len(table.labels)), str(node.get("client-id", f"node-{context.node_id}"))
    table = task.read_table(str(run["data-path"]), str(run["target-column"]))
    seed = int(run["seed"])
    _public, private = task.split(len(table.labels), float(run["server-fraction"]), seed)
    parts = int(node.get("num-partitions", run["num-teachers"]))
    part = int(node["partition-id"])
    shards = task.partition(private, table.labels, parts, str(run["partition"]), float(run["dirichlet-alpha"]), seed)
    return table, shards[part], f"teacher-{part}"


def _teacher(context: Context, table: task.Table, rows: np.ndarray, classes: int) -> task.Net:
    x = table.features[rows]
    model = task.make_net(str(context.run_config["net-name"]), x, classes)
    if "teacher" in context.state:
        model.load_state_dict(context.state["teacher"].to_torch_state_dict())
    return model


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Trains the teacher for `teacher-epochs` more epochs; replies with its training figures and
    its data commitment (SHA-256 and sample count of the shard)."""
    config = msg.content["config"]
    table, rows, client_id = _shard(context)
    classes = max(int(config["num-classes"]), int(table.labels[rows].max()) + 1)
    model = _teacher(context, table, rows, classes)
    run = context.run_config
    seed = int(run["seed"]) * 1000 + int(config["server-round"]) * 100 + int(context.node_config.get("partition-id", 0))
    loss, accuracy = task.fit(model, table.features[rows], table.labels[rows], epochs=int(run["teacher-epochs"]),
                              batch_size=int(run["batch-size"]), lr=float(run["learning-rate"]), seed=seed)
    context.state["teacher"] = ArrayRecord(model.state_dict())
    sha256, samples = task.commitment(table, rows)
    return Message(RecordDict({
        "metrics": MetricRecord({"train-loss": loss, "train-accuracy": accuracy, "num-examples": samples}),
        "commitment": ConfigRecord({"client-id": client_id, "sha256": sha256, "sample-count": samples}),
    }), reply_to=msg)


@app.query()
def query(msg: Message, context: Context) -> Message:
    """The teacher's label for each query (features in the message); never its model or data."""
    queries = msg.content["queries"]["features"].numpy().astype(np.float32)
    config = msg.content["config"]
    table, rows, _client_id = _shard(context)
    classes = max(int(config["num-classes"]), int(table.labels[rows].max()) + 1)
    if "teacher" not in context.state:
        raise RuntimeError("query before train: this teacher has no model yet")
    model = _teacher(context, table, rows, classes)
    return Message(RecordDict({"votes": ArrayRecord([task.predict(model, queries)])}), reply_to=msg)
