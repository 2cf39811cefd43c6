"""DP-FedAvg on TensorFlow Federated 0.87 over simulated clients, reporting to whoever started it.
Runs in .venv-tff (TF 2.14, protobuf 4, numpy < 2); imports nothing of mlmesh.

    .venv-tff/bin/python dp_fedavg.py <job dir>/job.json

job.json is the flat key/value table the Federation server writes (appconfig.py): data-path,
output-dir, target-column, server-fraction, seed, imb-parameter (Dirichlet alpha of the client
split), dp-parameter (noise multiplier), n-clients, n-samples (rows per client, at most),
num-rounds, epochs (local epochs per round), batch-size, clients-per-round, clip-norm and,
optionally, client-learning-rate (default 0.1 for the MLP, 0.01 for the CNN: the CNN's SGD
diverges at 0.1).

The algorithm is TFF's own: `tff.learning.algorithms.build_unweighted_fed_avg` with
`tff.aggregators.DifferentiallyPrivateFactory.gaussian_fixed(noise_multiplier=dp-parameter,
clients_per_round, clip=clip-norm)` as the model aggregator. Each sampled client trains the
global Keras model for `epochs` local epochs (SGD), its model update (delta) is clipped to L2
norm clip-norm, the clipped updates are summed, Gaussian noise of standard deviation
dp-parameter x clip-norm is added to the sum, and the mean (divided by clients-per-round) is
applied by the server (SGD, learning rate 1). Every round `clients-per-round` distinct clients
are drawn uniformly at random (seeded); the privacy accounting is the Federation server's, not
this program's.

On stdout, lines `MLMESH_EVENT {json}`: the framework version, each client's data commitment,
and every round (global loss/accuracy on the server's held-out rows, each participating client's
loss/accuracy of the new global model on its own rows, seconds). On exit 0, output-dir holds
`model.h5` (Keras HDF5 on raw features: for tabular data an MLP with the input standardisation
folded into its first layer; for colour images, such as the seed's CIFAR-10 archive, the seed's
CNN with a scalar standardisation as its first layer) and `result.json`.
TFF's C++ worker binary is a child process of this one and outlives it unless its process group
is killed: the server runs this program as the leader of its own group and kills the group.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import signal
import socket
import struct
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data  # noqa: E402
from fedpate import archive  # noqa: E402  (on the path data.py set: apps/fedpate/fedpate/archive.py)

EVENT = "MLMESH_EVENT "
MODEL_FILE = "model.h5"


def stop_children() -> None:
    """Stops the processes this one started (TFF's worker binary, which would outlive it when the
    program runs alone; under the Federation server its process group is killed anyway)."""
    for task in Path("/proc/self/task").glob("*/children"):
        for pid in task.read_text().split():
            try:
                os.kill(int(pid), signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass


def loopback_up() -> None:
    """Brings the loopback interface up if it is down: the case in a fresh network namespace
    (`unshare --net`, how the Federation server isolates TFF's worker binary). Elsewhere it is
    up already and nothing changes."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, siocgifflags, request))[1]
        if not flags & iff_up:
            fcntl.ioctl(s, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))
            print("network: a namespace of its own; loopback brought up", flush=True)


def emit(**event) -> None:
    print(EVENT + json.dumps(event), flush=True)


def build_model(tf, features: int, classes: int, hidden: int = 64):
    """The MLP for tabular data: standardised features -> Dense(hidden, relu) -> Dense(classes) logits."""
    return tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(features,), name="features"),
        tf.keras.layers.Dense(hidden, activation="relu", name="hidden"),
        tf.keras.layers.Dense(classes, name="logits"),
    ])


def build_cnn(tf, features: int, classes: int, mean: float, std: float):
    """The seed's CNN for colour images (D3.4 Listing 1, as FedPATE's: 16 and 32 3x3 convolutions,
    each with ReLU and a 2x2 max-pool, then 1024 -> 512 -> classes), on raw pixels: one scalar
    standardisation (`mean` and `std` over all pixels of the server's held-out rows) as its first
    layer, then the channel-first planes (red, green, blue, as the archive stores them) turned
    channels-last, the only layout TensorFlow's CPU convolutions take."""
    channels, side = archive.image_shape(features)
    layers = tf.keras.layers
    return tf.keras.Sequential([
        layers.InputLayer(input_shape=(features,), name="features"),
        layers.Rescaling(scale=1.0 / std, offset=-mean / std, name="standardise"),
        layers.Reshape((channels, side, side), name="planes"),
        layers.Permute((2, 3, 1), name="channels_last"),
        layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
        layers.MaxPooling2D(2, name="pool1"),
        layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
        layers.MaxPooling2D(2, name="pool2"),
        layers.Flatten(name="flat"),
        layers.Dense(1024, activation="relu", name="dense1"),
        layers.Dense(512, activation="relu", name="dense2"),
        layers.Dense(classes, name="logits"),
    ])


def fold_standardisation(tf, trained, mean: np.ndarray, std: np.ndarray, classes: int):
    """A copy of `trained` that takes raw features: the first layer's x' = (x - mean) / std folded
    into its kernel and bias, so the saved model is plain Dense layers any Keras reads."""
    export = build_model(tf, len(mean), classes, trained.get_layer("hidden").units)
    kernel, bias = trained.get_layer("hidden").get_weights()
    export.get_layer("hidden").set_weights([kernel / std[:, None], bias - (mean / std) @ kernel])
    export.get_layer("logits").set_weights(trained.get_layer("logits").get_weights())
    return export


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    seed = int(config.get("seed", 0))
    clients = int(config["n-clients"])
    per_round = int(config.get("clients-per-round") or clients)
    rounds, epochs, batch = int(config["num-rounds"]), int(config["epochs"]), int(config["batch-size"])
    noise, clip = float(config["dp-parameter"]), float(config["clip-norm"])
    output = Path(config["output-dir"])
    output.mkdir(parents=True, exist_ok=True)

    try:
        table = data.load(config["data-path"], str(config["target-column"]))
        test, train = data.holdout(len(table.labels), float(config.get("server-fraction") or 0.3), seed)
        shards = data.dirichlet_split(train, table.labels, clients, float(config["imb-parameter"]),
                                      int(config["n-samples"]), seed)
    except ValueError as exc:
        print(f"ValueError: {exc}", file=sys.stderr, flush=True)
        return 2

    loopback_up()
    import tensorflow as tf
    import tensorflow_federated as tff

    atexit.register(stop_children)

    emit(type="framework", version=f"tensorflow-federated {tff.__version__} (tensorflow {tf.__version__})")
    for i, rows in enumerate(shards):
        sha256, count = data.commitment(table, rows)
        emit(type="commitment", client_id=f"client-{i}", sha256=sha256, sample_count=count)

    tf.keras.utils.set_random_seed(seed)
    classes = int(table.labels.max()) + 1
    features = table.features.shape[1]
    cnn = archive.is_colour_image(features)  # the seed's CNN for colour images, an MLP otherwise
    lr = float(config.get("client-learning-rate") or (0.01 if cnn else 0.1))
    # Standardisation statistics from the server's own held-out rows, never from the clients': they
    # end up in the released model, and only DP-FedAvg's noisy updates may reveal the clients' data.
    if cnn:  # the model standardises its raw input itself (its first layer)
        pixel_mean = float(table.features[test].mean())
        pixel_std = float(table.features[test].std()) or 1.0
        x_all = table.features.astype(np.float32)

        def new_model():
            return build_cnn(tf, features, classes, pixel_mean, pixel_std)
    else:  # the MLP trains on standardised features; the export folds the standardisation in
        mean = table.features[test].mean(axis=0).astype(np.float32)
        std = table.features[test].std(axis=0).astype(np.float32)
        std = np.where(std > 0, std, 1.0).astype(np.float32)
        x_all = ((table.features - mean) / std).astype(np.float32)

        def new_model():
            return build_model(tf, features, classes)

    def client_data(rows: np.ndarray):
        return (tf.data.Dataset.from_tensor_slices((x_all[rows], table.labels[rows]))
                .shuffle(len(rows), seed=seed, reshuffle_each_iteration=True).repeat(epochs).batch(batch))

    element_spec = client_data(shards[0]).element_spec

    def model_fn():
        return tff.learning.models.from_keras_model(
            new_model(), input_spec=element_spec,
            loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[tf.keras.metrics.SparseCategoricalAccuracy()])

    aggregator = tff.aggregators.DifferentiallyPrivateFactory.gaussian_fixed(
        noise_multiplier=noise, clients_per_round=float(per_round), clip=clip)
    process = tff.learning.algorithms.build_unweighted_fed_avg(
        model_fn, client_optimizer_fn=tff.learning.optimizers.build_sgdm(learning_rate=lr),
        server_optimizer_fn=tff.learning.optimizers.build_sgdm(learning_rate=1.0), model_aggregator=aggregator)
    print(f"DP-FedAvg of {'the seed CNN' if cnn else 'an MLP'}: {clients} clients ({per_round} a round), "
          f"{rounds} rounds, {epochs} local epochs, "
          f"batch {batch}, noise multiplier {noise:g}, clip norm {clip:g}, client learning rate {lr:g}; "
          f"{len(train)} training rows ({', '.join(str(len(s)) for s in shards)} used), {len(test)} held out",
          flush=True)

    scorer = new_model()
    scorer.compile(loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])

    def score(rows: np.ndarray) -> tuple[float, float]:
        loss, accuracy = scorer.evaluate(x_all[rows], table.labels[rows], verbose=0, batch_size=4096)
        return float(loss), float(accuracy)

    sampler = np.random.default_rng(seed + 11)
    state = process.initialize()
    loss = accuracy = float("nan")
    for round_number in range(1, rounds + 1):
        started = time.monotonic()
        chosen = sorted(int(c) for c in sampler.choice(clients, size=per_round, replace=False))
        result = process.next(state, [client_data(shards[c]) for c in chosen])
        state = result.state
        train_metrics = result.metrics["client_work"]["train"]
        seconds = time.monotonic() - started
        process.get_model_weights(state).assign_weights_to(scorer)
        loss, accuracy = score(test)
        per_client = []
        for c in chosen:
            c_loss, c_accuracy = score(shards[c])
            per_client.append({"client_id": f"client-{c}", "loss": c_loss, "accuracy": c_accuracy,
                               "num_examples": int(len(shards[c]))})
        print(f"round {round_number}: clients {chosen}, train loss {float(train_metrics['loss']):.4f}, "
              f"test loss {loss:.4f} accuracy {accuracy:.4f} ({seconds:.1f} s)", flush=True)
        emit(type="round", round=round_number, loss=loss, accuracy=accuracy, seconds=seconds, clients=per_client)

    exported = scorer if cnn else fold_standardisation(tf, scorer, mean, std, classes)
    check = exported.predict(table.features[test], verbose=0).argmax(axis=1)
    agreement = float((check == scorer.predict(x_all[test], verbose=0).argmax(axis=1)).mean())
    if agreement < 0.999:
        print(f"RuntimeError: the exported model disagrees with the trained one on {1 - agreement:.2%} of the "
              "held-out rows", file=sys.stderr, flush=True)
        return 1
    exported.save(str(output / MODEL_FILE), save_format="h5")
    columns = table.feature_columns
    # An archive is not a CSV: a translator cannot read feature columns from it.
    contiguous = table.source == "csv" and list(columns) == list(range(columns[0], columns[-1] + 1))
    signature = {"shape": [-1, features], "dtype": "float32",
                 "csv_feature_columns": [columns[0], columns[-1] + 1] if contiguous else None}
    (output / "result.json").write_text(json.dumps({
        "model_framework": "tensorflow", "model_file": MODEL_FILE, "input_signature": signature,
        "num_classes": classes, "model": "cnn" if cnn else "mlp", "test_accuracy": accuracy, "test_loss": loss,
        "keras_version": __import__("keras").__version__}))
    print(f"model written: {output / MODEL_FILE} (test accuracy {accuracy:.4f})", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: dp_fedavg.py <job.json>", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
