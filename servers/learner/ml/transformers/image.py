"""The ``image`` transformer (seed 2.1.3.2, smart agriculture): a PNG/JPEG in, class probabilities
and the image with the prediction drawn onto it out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from servers.common.errors import FailedPrecondition, InvalidArgument
from servers.learner.ml import images
from servers.learner.ml.base import CLASSIFICATION, Obs, Output, PredictContext, Transformer
from servers.learner.ml.transformers._common import (
    check_keys,
    check_task,
    checked_target,
    classification_outputs,
    finite_recent,
    int_param,
    names_param,
    no_sensor,
    numeric_columns,
    read_csv,
)


class ImageTransformer(Transformer):
    """Smart agriculture (seed 2.1.3.2): an encoded PNG/JPEG image in, resized to `size` x `size` RGB
    (model input (3, size, size), float 0..1); out: the class probabilities and the original image with
    a frame in the class colour and "label probability" drawn on it (PNG).

    Params: ``size`` (16), ``classes`` (required for classification, e.g. ["healthy", "diseased"]).
    Regression (e.g. a severity score) works too: the drawn text is the value. The monitor compares
    image statistics, not pixels: `images.STAT_COLUMNS` (mean_red, mean_green, mean_blue, contrast,
    excess_green); the reference dataset is a CSV with those columns (`images.write_reference_csv`).
    """

    name = "image"

    def __init__(self, task: str, params: dict[str, Any]):
        super().__init__(task, params)
        check_task(self.name, task)
        check_keys(self.name, params, ("size", "classes"))
        self.size = int_param(params, "size", 16, 4, 256)
        self._labels: list[str] = []
        if task == CLASSIFICATION:
            labels = names_param(params, "classes", 2)
            if labels is None:
                raise InvalidArgument("transformer_params.classes (the class labels, e.g. [\"healthy\", "
                                      "\"diseased\"]) is required for classification")
            self._labels = labels
        elif "classes" in params:
            raise InvalidArgument("transformer_params.classes applies to classification only")
        s = self.size
        self._names = [f"pixel_{y}_{x}_{c}" for c in "rgb" for y in range(s) for x in range(s)]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (3, self.size, self.size)

    @property
    def feature_names(self) -> list[str]:
        return list(self._names)

    @property
    def n_classes(self) -> int | None:
        return len(self._labels) if self.task == CLASSIFICATION else None

    @property
    def class_labels(self) -> list[str]:
        return list(self._labels)

    def _decode(self, obs: Obs, index: int):
        if obs.image is None:
            got = "a row" if obs.row is not None else "a sensor reading" if obs.reading is not None else "nothing"
            raise InvalidArgument(f"observation {index}: this learner takes images (PNG or JPEG), got {got}")
        return images.decode(obs.image, f"observation {index}")

    def learn_pairs(self, observations: list[Obs]) -> tuple[np.ndarray, np.ndarray]:
        X = np.empty((len(observations), *self.input_shape), dtype=np.float32)
        y = np.empty(len(observations), dtype=np.float32)
        for i, obs in enumerate(observations):
            y[i] = checked_target(obs, i, self.task, self.n_classes)
            X[i] = images.to_array(self._decode(obs, i), self.size)
        return X, y

    def model_inputs(self, inputs: list[Obs], sensor_id: str = "") -> tuple[np.ndarray, PredictContext]:
        no_sensor(self.name, sensor_id)
        if not inputs:
            raise InvalidArgument("inputs is empty; send at least one image")
        originals = [self._decode(obs, i) for i, obs in enumerate(inputs)]
        X = np.stack([images.to_array(img, self.size) for img in originals])
        return X, PredictContext(n=len(inputs), extra={"images": originals})

    def outputs(self, predictions: np.ndarray, ctx: PredictContext) -> list[Output]:
        if self.task == CLASSIFICATION:
            answers = classification_outputs(predictions, self._labels)
            for out, img in zip(answers, ctx.extra["images"], strict=True):
                text = f"{out.label} {out.values[out.class_index]:.0%}"
                out.annotated_image = images.annotate(img, text, images.PALETTE[out.class_index % len(images.PALETTE)])
            return answers
        answers = []
        for v, img in zip(np.asarray(predictions, dtype=np.float64).reshape(-1), ctx.extra["images"], strict=True):
            answers.append(Output(values=[float(v)], annotated_image=images.annotate(img, f"{v:.3g}",
                                                                                     images.PALETTE[2])))
        return answers

    @property
    def monitor_columns(self) -> list[str]:
        return list(images.STAT_COLUMNS)

    def monitor_rows(self, X: np.ndarray) -> np.ndarray:
        return images.image_stats(np.asarray(X).reshape(len(X), *self.input_shape))

    def reference_rows(self, csv_path: Path, max_rows: int) -> np.ndarray:
        df = read_csv(csv_path)
        missing = [c for c in images.STAT_COLUMNS if c not in df.columns]
        if missing:
            raise FailedPrecondition(f"the reference dataset has no column {missing[0]!r}; an image learner's "
                                     f"reference is a CSV of image statistics with columns "
                                     f"{', '.join(images.STAT_COLUMNS)} (see servers/learner/ml/images.py)")
        return finite_recent(numeric_columns(df, images.STAT_COLUMNS), max_rows)
