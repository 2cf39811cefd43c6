"""Logistic regression on 8x8 digits, trained as an mlmesh recipe; pickles the fitted model.

Run by the Trainer, or by hand from this directory:
    MLMESH_DATASET_PATH=/tmp/digits.csv MLMESH_OUTPUT_PATH=/tmp/m.pkl MLMESH_PARAMS='{}' MLMESH_SEED=1 \
        ../../../.venv-ml/bin/python train.py

Parameters (recipe.toml [recipe.parameters], overridden by MLMESH_PARAMS): C, max_iter, test_fraction
(the last rows of the dataset are the test set; the digits CSV is shuffled with a fixed seed when written).
"""

import json
import math
import os
import pickle
import time
import tomllib

import numpy as np
from sklearn.linear_model import LogisticRegression


def load_config() -> tuple[dict, dict]:
    with open("recipe.toml", "rb") as f:
        recipe = tomllib.load(f)["recipe"]
    params = dict(recipe.get("parameters", {}))
    params.update(json.loads(os.environ.get("MLMESH_PARAMS") or "{}"))
    return recipe["input"], params


def main() -> None:
    spec, params = load_config()
    seed = int(os.environ.get("MLMESH_SEED", "0"))
    start, stop = spec["csv_feature_columns"]
    table = np.loadtxt(os.environ["MLMESH_DATASET_PATH"], delimiter=",", skiprows=1, ndmin=2)
    # The model sees exactly what the Translator feeds it: float32 features times the declared scale.
    x = (table[:, start:stop] * spec.get("scale", 1.0)).astype(spec.get("dtype", "float32"))
    y = table[:, stop].astype(np.int64)  # the label is the column right after the features
    n_test = math.ceil(len(y) * float(params["test_fraction"]))
    n_train = len(y) - n_test
    print(f"dataset: {len(y)} rows; train rows 0..{n_train - 1}, test rows {n_train}..{len(y) - 1}; seed {seed}")

    started = time.monotonic()
    model = LogisticRegression(C=float(params["C"]), max_iter=int(params["max_iter"]), random_state=seed)
    model.fit(x[:n_train], y[:n_train])
    print(f"fitted in {time.monotonic() - started:.1f} s ({model.n_iter_.max()} iterations)")
    print(f"train accuracy: {model.score(x[:n_train], y[:n_train]):.4f}")
    accuracy = float(model.score(x[n_train:], y[n_train:]))
    print(f"test accuracy: {accuracy:.4f} ({n_test} rows)")
    print("metrics: " + json.dumps({"test_accuracy": accuracy, "test_rows": [n_train, len(y)]}))

    with open(os.environ["MLMESH_OUTPUT_PATH"], "wb") as f:
        pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
    print(f"saved pickle to {os.environ['MLMESH_OUTPUT_PATH']}")


if __name__ == "__main__":
    main()
