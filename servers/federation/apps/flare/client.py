"""A FLARE FedAvg client: a plain PyTorch training script on FLARE's Client API. Runs in
.venv-flare inside the client FLARE starts; imports nothing of mlmesh.

    client.py --data-dir DIR --target-column C --net mlp --features F --classes K
              --epochs E --batch-size B --learning-rate LR --seed S

The site trains on `<data-dir>/<site name>.csv` (simulation) or, without --data-dir, on the CSV
file its MLMESH_FLARE_DATA environment variable names (real mode: set by the client's owner when
starting it from its kit) only (its local data, a CSV whose rows are
`fedpate.task`'s format), starting each round from the global model it receives, and sends back
its new weights (FLARE turns them into a difference when the job says so), its training loss and
accuracy, its sample count, and its data commitment: the SHA-256 of that file's bytes and its
number of samples.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

import nvflare.client as flare
from fedpate.task import fit, read_table
from mlmesh_flare import FlareNet
from nvflare.app_common.abstract.fl_model import FLModel, ParamsType
from nvflare.apis.dxo import MetaKey

DATA_ENV = "MLMESH_FLARE_DATA"


def main() -> None:
    parser = argparse.ArgumentParser()
    # No --data-dir in real mode: the client's local CSV is the file MLMESH_FLARE_DATA names.
    parser.add_argument("--data-dir", default="")
    for name, kind in (("target-column", str), ("net", str), ("features", int),
                       ("classes", int), ("epochs", int), ("batch-size", int), ("learning-rate", float),
                       ("seed", int)):
        parser.add_argument(f"--{name}", type=kind, required=True)
    args = parser.parse_args()
    flare.init()
    site = flare.get_site_name()
    if args.data_dir:
        path = Path(args.data_dir) / f"{site}.csv"
    elif os.environ.get(DATA_ENV):
        path = Path(os.environ[DATA_ENV])
    else:
        raise RuntimeError(f"{site}: set {DATA_ENV} to this client's local CSV before starting it from its kit")
    table = read_table(path, args.target_column)
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    if table.features.shape[1] != args.features:
        raise ValueError(f"{path} has {table.features.shape[1]} features; the job's model takes {args.features}")
    if table.labels.max() >= args.classes:
        raise ValueError(f"{path} has class {table.labels.max()}; the job's model knows {args.classes} classes")
    # The normalisation buffers come with the global model; these placeholders are overwritten.
    model = FlareNet(args.net, args.features, args.classes, [0.0] * args.features, [1.0] * args.features)
    steps_per_epoch = -(-len(table.labels) // args.batch_size)
    while flare.is_running():
        received = flare.receive()
        if received is None:
            break
        # Shaped as the model's: a global model decrypted by FLARE's HE decryptor arrives as flat vectors.
        shapes = {k: v.shape for k, v in model.state_dict().items()}
        model.load_state_dict({k: torch.as_tensor(np.asarray(v, dtype=np.float32)).reshape(shapes[k])
                               for k, v in received.params.items()})
        current = int(received.current_round or 0)
        loss, accuracy = fit(model, table.features, table.labels, epochs=args.epochs, batch_size=args.batch_size,
                             lr=args.learning_rate, seed=args.seed + 1000 * current + sum(site.encode()))
        flare.send(FLModel(
            params={k: v.detach().cpu() for k, v in model.state_dict().items()}, params_type=ParamsType.FULL,
            metrics={"train_loss": loss, "train_accuracy": accuracy, "num_examples": len(table.labels)},
            meta={MetaKey.NUM_STEPS_CURRENT_ROUND: steps_per_epoch * args.epochs, "data_sha256": sha256,
                  "sample_count": len(table.labels)}))


if __name__ == "__main__":
    main()
