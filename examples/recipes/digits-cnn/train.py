"""The seed's demo CNN (D3.4 Listing 1), adapted to 8x8 digits, trained as an mlmesh recipe.

Listing 1 is built for 28x28 MNIST: two unpadded 3x3 convolutions, each followed by a 2x2 max-pool,
leave 32x5x5 = 800 features. An 8x8 image would shrink to nothing (8 -> 6 -> 3 -> 1 -> 0), so the
convolutions here pad by 1 (8 -> 8 -> 4 -> 4 -> 2) and the classifier takes 32x2x2 = 128 features.
Everything else is Listing 1: 16 and 32 channels, ReLU, Linear 1024 -> 512 -> 10, and a Softmax
output, so the saved model returns class probabilities. Training uses the logits before that Softmax
(cross-entropy on probabilities would apply softmax twice).

Run by the Trainer, or by hand from this directory:
    MLMESH_DATASET_PATH=/tmp/digits.csv MLMESH_OUTPUT_PATH=/tmp/m.pt MLMESH_PARAMS='{}' MLMESH_SEED=1 \
        ../../../.venv-ml/bin/python train.py

Parameters (recipe.toml [recipe.parameters], overridden by MLMESH_PARAMS): epochs, batch_size,
learning_rate, test_fraction (the last rows of the dataset are the test set: the digits CSV is
shuffled with a fixed seed when it is written, so the split is fixed too). Output: TorchScript
(torch.jit.save) at MLMESH_OUTPUT_PATH.
"""

import json
import math
import os
import time
import tomllib

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class DigitsNetwork(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 2 * 2, 1024),
            nn.ReLU(),
            nn.Linear(1024, 512),
            nn.ReLU(),
            nn.Linear(512, classes),
            nn.Softmax(dim=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier[:-1](self.features(x))


def load_config() -> tuple[dict, dict]:
    with open("recipe.toml", "rb") as f:
        recipe = tomllib.load(f)["recipe"]
    params = dict(recipe.get("parameters", {}))
    params.update(json.loads(os.environ.get("MLMESH_PARAMS") or "{}"))
    return recipe["input"], params


def load_dataset(path: str, spec: dict) -> tuple[np.ndarray, np.ndarray]:
    start, stop = spec["csv_feature_columns"]
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    x = (table[:, start:stop] * spec.get("scale", 1.0)).astype(spec.get("dtype", "float32"))
    x = x.reshape(-1, *spec["shape"][1:])
    y = table[:, stop].astype(np.int64)  # the label is the column right after the features
    return x, y


def main() -> None:
    spec, params = load_config()
    seed = int(os.environ.get("MLMESH_SEED", "0"))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    x, y = load_dataset(os.environ["MLMESH_DATASET_PATH"], spec)
    n_test = math.ceil(len(y) * float(params["test_fraction"]))
    n_train = len(y) - n_test
    x_train, y_train = torch.from_numpy(x[:n_train]), torch.from_numpy(y[:n_train])
    x_test, y_test = torch.from_numpy(x[n_train:]), torch.from_numpy(y[n_train:])
    print(f"dataset: {len(y)} rows; train rows 0..{n_train - 1}, test rows {n_train}..{len(y) - 1}; seed {seed}")

    model = DigitsNetwork()
    optimizer = torch.optim.Adam(model.parameters(), lr=float(params["learning_rate"]))
    batch_size = int(params["batch_size"])
    started = time.monotonic()
    for epoch in range(1, int(params["epochs"]) + 1):
        model.train()
        order = torch.from_numpy(rng.permutation(n_train))
        total = 0.0
        for i in range(0, n_train, batch_size):
            idx = order[i : i + batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(model.logits(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch}: loss {total / n_train:.4f}", flush=True)

    model.eval()
    with torch.inference_mode():
        accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    print(f"test accuracy: {accuracy:.4f} ({n_test} rows, {time.monotonic() - started:.1f} s training)")
    print("metrics: " + json.dumps({"test_accuracy": accuracy, "test_rows": [n_train, len(y)]}))

    torch.jit.save(torch.jit.script(model), os.environ["MLMESH_OUTPUT_PATH"])
    print(f"saved TorchScript to {os.environ['MLMESH_OUTPUT_PATH']}")


if __name__ == "__main__":
    main()
