"""A small Keras CNN on 8x8 digits, trained as an mlmesh recipe; saves a `.keras` file.

Run by the Trainer, or by hand from this directory:
    MLMESH_DATASET_PATH=/tmp/digits.csv MLMESH_OUTPUT_PATH=/tmp/m.keras MLMESH_PARAMS='{}' MLMESH_SEED=1 \
        ../../../.venv-ml/bin/python train.py

Parameters (recipe.toml [recipe.parameters], overridden by MLMESH_PARAMS): epochs, batch_size,
learning_rate, test_fraction (the last rows of the dataset are the test set).
"""

import json
import math
import os
import shutil
import tempfile
import time
import tomllib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402


def load_config() -> tuple[dict, dict]:
    with open("recipe.toml", "rb") as f:
        recipe = tomllib.load(f)["recipe"]
    params = dict(recipe.get("parameters", {}))
    params.update(json.loads(os.environ.get("MLMESH_PARAMS") or "{}"))
    return recipe["input"], params


def build_model(shape: tuple[int, ...], learning_rate: float) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input(shape=shape),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def main() -> None:
    spec, params = load_config()
    seed = int(os.environ.get("MLMESH_SEED", "0"))
    keras.utils.set_random_seed(seed)
    start, stop = spec["csv_feature_columns"]
    table = np.loadtxt(os.environ["MLMESH_DATASET_PATH"], delimiter=",", skiprows=1, ndmin=2)
    x = (table[:, start:stop] * spec.get("scale", 1.0)).astype(spec.get("dtype", "float32"))
    x = x.reshape(-1, *spec["shape"][1:])
    y = table[:, stop].astype(np.int64)  # the label is the column right after the features
    n_test = math.ceil(len(y) * float(params["test_fraction"]))
    n_train = len(y) - n_test
    print(f"dataset: {len(y)} rows; train rows 0..{n_train - 1}, test rows {n_train}..{len(y) - 1}; seed {seed}")

    model = build_model(x.shape[1:], float(params["learning_rate"]))
    started = time.monotonic()
    history = model.fit(
        x[:n_train], y[:n_train], epochs=int(params["epochs"]), batch_size=int(params["batch_size"]),
        shuffle=True, verbose=0,
    )
    for epoch, loss in enumerate(history.history["loss"], start=1):
        print(f"epoch {epoch}: loss {loss:.4f}")
    probabilities = model.predict(x[n_train:], verbose=0)
    accuracy = float(np.mean(probabilities.argmax(axis=1) == y[n_train:]))
    print(f"test accuracy: {accuracy:.4f} ({n_test} rows, {time.monotonic() - started:.1f} s training)")
    print("metrics: " + json.dumps({"test_accuracy": accuracy, "test_rows": [n_train, len(y)]}))

    # Keras 3 insists on a .keras file name; the Trainer's output path may have another.
    out = os.environ["MLMESH_OUTPUT_PATH"]
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "model.keras")
        model.save(local)
        shutil.move(local, out)
    print(f"saved Keras model to {out}")


if __name__ == "__main__":
    main()
