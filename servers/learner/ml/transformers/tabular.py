"""The ``tabular`` transformer: rows of features as given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from servers.common.errors import FailedPrecondition, InvalidArgument
from servers.learner.ml.base import CLASSIFICATION, Obs, Output, PredictContext, Transformer
from servers.learner.ml.transformers._common import (
    check_keys,
    check_task,
    checked_row,
    checked_target,
    classification_outputs,
    finite_recent,
    int_param,
    names_param,
    no_sensor,
    numeric_columns,
    read_csv,
)


class TabularTransformer(Transformer):
    """Rows of features as given. Params: ``feature_count`` (required), ``feature_names`` (default
    x0, x1, ...), ``classes`` (classification: the labels, index = class) or ``n_classes``
    (classification without labels). The reference CSV has a column per feature name; without
    `feature_names`, its first `feature_count` numeric columns are used."""

    name = "tabular"

    def __init__(self, task: str, params: dict[str, Any]):
        super().__init__(task, params)
        check_task(self.name, task)
        check_keys(self.name, params, ("feature_count", "feature_names", "classes", "n_classes"))
        self._count = int_param(params, "feature_count", None, 1, 100_000)
        names = names_param(params, "feature_names", 1)
        if names is not None and len(names) != self._count:
            raise InvalidArgument(f"transformer_params.feature_names has {len(names)} names but feature_count "
                                  f"is {self._count}")
        self._named = names is not None
        self._names = names or [f"x{i}" for i in range(self._count)]
        self._labels: list[str] = []
        self._n_classes: int | None = None
        if task == CLASSIFICATION:
            labels = names_param(params, "classes", 2)
            if labels is not None:
                self._labels = labels
                self._n_classes = len(labels)
                if "n_classes" in params and int_param(params, "n_classes", None, 2, 100_000) != len(labels):
                    raise InvalidArgument(f"transformer_params.n_classes disagrees with the {len(labels)} classes")
            elif "n_classes" in params:
                self._n_classes = int_param(params, "n_classes", None, 2, 100_000)
            else:
                raise InvalidArgument("transformer_params.classes (the class labels) or n_classes is required "
                                      "for classification")
        elif "classes" in params or "n_classes" in params:
            raise InvalidArgument("transformer_params.classes / n_classes apply to classification only")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self._count,)

    @property
    def feature_names(self) -> list[str]:
        return list(self._names)

    @property
    def n_classes(self) -> int | None:
        return self._n_classes

    @property
    def class_labels(self) -> list[str]:
        return list(self._labels)

    def learn_pairs(self, observations: list[Obs]) -> tuple[np.ndarray, np.ndarray]:
        X = np.empty((len(observations), self._count), dtype=np.float32)
        y = np.empty(len(observations), dtype=np.float32)
        for i, obs in enumerate(observations):
            X[i] = checked_row(obs, i, self._names, "rows of features")
            y[i] = checked_target(obs, i, self.task, self._n_classes)
        return X, y

    def model_inputs(self, inputs: list[Obs], sensor_id: str = "") -> tuple[np.ndarray, PredictContext]:
        no_sensor(self.name, sensor_id)
        if not inputs:
            raise InvalidArgument("inputs is empty; send at least one row")
        X = np.stack([checked_row(obs, i, self._names, "rows of features") for i, obs in enumerate(inputs)])
        return X.astype(np.float32), PredictContext(n=len(inputs))

    def outputs(self, predictions: np.ndarray, ctx: PredictContext) -> list[Output]:
        if self.task == CLASSIFICATION:
            return classification_outputs(predictions, self._labels)
        return [Output(values=[float(v)]) for v in np.asarray(predictions, dtype=np.float64).reshape(-1)]

    def reference_rows(self, csv_path: Path, max_rows: int) -> np.ndarray:
        df = read_csv(csv_path)
        header = list(df.columns)
        if self._named:
            missing = [n for n in self._names if n not in header]
            if missing:
                raise FailedPrecondition(f"the reference dataset has no column {missing[0]!r} (feature_names "
                                         f"needs {', '.join(self._names)}; it has {', '.join(header)})")
            columns = self._names
        else:  # the first feature_count columns whose cells are (mostly) numbers
            numeric = [c for c in header if len(df) and np.isfinite(numeric_columns(df, [c])).mean() >= 0.5]
            if len(numeric) < self._count:
                raise FailedPrecondition(f"the reference dataset has {len(numeric)} numeric columns "
                                         f"({', '.join(numeric) or 'none'}); feature_count is {self._count}")
            columns = numeric[: self._count]
        return finite_recent(numeric_columns(df, columns), max_rows)
