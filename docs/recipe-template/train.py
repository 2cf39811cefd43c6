"""Trains a scikit-learn logistic regression on the registered CSV dataset.

The Trainer runs it as `python train.py` in the ML base environment, with:
  MLMESH_DATASET_PATH  the dataset (its bytes already checked against their SHA-256)
  MLMESH_OUTPUT_PATH   where to write the trained model (model.pkl for sklearn)
  MLMESH_PARAMS        [recipe.parameters] as JSON
  MLMESH_SEED          an integer seed, for reproducible training
Anything printed is the job's log; a non-zero exit fails the job with the last stderr lines.
"""

import json
import os
import pickle

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

FIRST, END = 0, 64   # [recipe.input] csv_feature_columns
SCALE = 0.0625       # [recipe.input] scale

params = json.loads(os.environ.get("MLMESH_PARAMS", "{}"))
seed = int(os.environ.get("MLMESH_SEED", "0"))

def load_csv(path):
    """The CSV as a float array; a header row is allowed."""
    try:
        return np.loadtxt(path, delimiter=",", dtype=np.float64)
    except ValueError:
        return np.loadtxt(path, delimiter=",", dtype=np.float64, skiprows=1)


data = load_csv(os.environ["MLMESH_DATASET_PATH"])
x = data[:, FIRST:END].astype(np.float32) * SCALE
y = data[:, params.get("label_column", -1)].astype(np.int64)
print(f"dataset: {x.shape[0]} rows, {x.shape[1]} features, {len(np.unique(y))} classes")

x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
model = LogisticRegression(max_iter=params.get("max_iter", 500), C=params.get("C", 1.0), random_state=seed)
model.fit(x_train, y_train)
print(f"test accuracy: {model.score(x_test, y_test):.4f}")

with open(os.environ["MLMESH_OUTPUT_PATH"], "wb") as f:
    pickle.dump(model, f)
print(f"wrote {os.environ['MLMESH_OUTPUT_PATH']}")
