"""Writes the MLServer baseline's model directory: `model.joblib` + `model-settings.json`.

Runs inside `.venv-mlserver` (its scikit-learn loads the file), as a script by path, so it
imports nothing from the project:

    .venv-mlserver/bin/python bench/mlserver_model/make_model.py OUT_DIR [--name NAME]

The model is the power-forecast shape: a scikit-learn SGDRegressor (the online learner's
linear model, fitted with partial_fit as the Learner would) on a synthetic regression with
36 features, one per reading of the forecast window. Same seed, same coefficients, every run.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

N_FEATURES = 36
DEFAULT_NAME = "power-forecast-sgd"


def build_model(seed: int = 0):
    import numpy as np
    from sklearn.datasets import make_regression
    from sklearn.linear_model import SGDRegressor

    x, y = make_regression(n_samples=4000, n_features=N_FEATURES, n_informative=24, noise=0.5,
                           random_state=seed)
    x = x.astype(np.float32)
    model = SGDRegressor(random_state=seed, learning_rate="invscaling", eta0=0.01)
    for start in range(0, len(x), 100):
        model.partial_fit(x[start:start + 100], y[start:start + 100])
    return model


def write_model_dir(out: Path, name: str = DEFAULT_NAME, seed: int = 0, *, streaming: bool = False) -> Path:
    """Writes `out/model.joblib` and `out/model-settings.json`. `streaming=True` serves it with
    streaming_runtime.StreamingSKLearnModel (copied into `out`) instead of the stock runtime."""
    import joblib

    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(build_model(seed), out / "model.joblib")
    implementation = "mlserver_sklearn.SKLearnModel"
    if streaming:
        shutil.copyfile(Path(__file__).with_name("streaming_runtime.py"), out / "streaming_runtime.py")
        implementation = "streaming_runtime.StreamingSKLearnModel"
    settings = {
        "name": name,
        "implementation": implementation,
        "parameters": {"uri": "./model.joblib", "version": "v1"},
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, N_FEATURES]}],
    }
    (out / "model-settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--name", default=DEFAULT_NAME)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--streaming", action="store_true", help="serve with streaming_runtime.py")
    args = parser.parse_args()
    write_model_dir(args.out, args.name, args.seed, streaming=args.streaming)


if __name__ == "__main__":
    main()
