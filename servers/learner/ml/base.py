"""The Learner's ML interfaces: backends learn and predict, transformers turn observations into
model inputs and model outputs into answers, the explainer attributes a prediction to features.

These modules run in the ML environment (`.venv-ml/`): they import numpy and, lazily, the
frameworks. They know nothing of gRPC or protobuf: the API layer converts messages to the plain
types here (`Obs`, `Reading`, `Output`), and every error a caller can cause is raised as
`servers.common.errors.InvalidArgument` / `FailedPrecondition` with a message a person can act on.

Shapes and dtypes, everywhere:
* a model input batch `X` is float32 of shape (n, *transformer.input_shape);
* targets `y` are float32 of shape (n,) in model scale (a class index for classification);
* regression predictions are float32 (n,) in model scale; classification predictions are class
  probabilities float32 (n, n_classes).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

REGRESSION = "regression"
CLASSIFICATION = "classification"
TASKS = (REGRESSION, CLASSIFICATION)


@dataclass(frozen=True)
class Reading:
    """One timestamped sensor reading (tz-aware UTC time)."""

    sensor_id: str
    time: datetime
    value: float


@dataclass
class Obs:
    """One observation (for learning) or model input (for predicting): exactly one of row, reading,
    image is set. `target` is the value (or class index) to learn, when known."""

    row: np.ndarray | None = None  # float64, 1-D
    reading: Reading | None = None
    image: bytes | None = None  # an encoded PNG/JPEG
    target: float | None = None


@dataclass
class Output:
    """One answer, after the transformer's post-processing."""

    values: list[float]  # regression: [value in user units]; classification: class probabilities
    class_index: int = 0
    label: str = ""
    target_time: datetime | None = None  # power-forecast: when the forecast value is for
    annotated_image: bytes = b""  # image: PNG with the prediction drawn on it


@dataclass
class PredictContext:
    """What a transformer needs to post-process the model's outputs of one predict call."""

    n: int
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(abc.ABC):
    """One online-learning model. Instances are used from one thread at a time (the Learner
    serialises calls per learner)."""

    #: "sklearn", "river", "vowpalwabbit", "pytorch" or "tensorflow"; also the Registry framework.
    framework: str = ""
    #: File name the artifact is stored under (its extension tells the format).
    artifact_name: str = "model.bin"

    def __init__(self, task: str, params: dict[str, Any], input_shape: tuple[int, ...], n_classes: int | None):
        """A fresh model. Raises InvalidArgument for unknown or bad params (name the key)."""
        self.task = task
        self.params = params
        self.input_shape = input_shape
        self.n_classes = n_classes

    @abc.abstractmethod
    def learn(self, X: np.ndarray, y: np.ndarray) -> None:
        """One online update on a micro-batch."""

    @abc.abstractmethod
    def loss(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-sample loss of the current model on (X, y), without learning: squared error for
        regression, log-loss for classification. float64 (n,). Used for prequential validation:
        the Learner calls it on each micro-batch before `learn`."""

    @abc.abstractmethod
    def predict(self, X: np.ndarray) -> np.ndarray:
        """Regression: float32 (n,). Classification: class probabilities float32 (n, n_classes).
        A model that has learned nothing yet still answers (zeros, or uniform probabilities)."""

    @abc.abstractmethod
    def save(self, path: Path) -> None:
        """Writes the artifact (one file) that `load` reads back and the Registry stores."""

    @classmethod
    @abc.abstractmethod
    def load(cls, path: Path, task: str, params: dict[str, Any], input_shape: tuple[int, ...],
             n_classes: int | None) -> Backend:
        """Reads an artifact written by `save`, or a starting model trained elsewhere in this
        framework (e.g. a Trainer recipe's TorchScript). Raises FailedPrecondition when the file is
        not a model this backend can keep learning (say why: e.g. no partial_fit)."""

    def torch_module(self) -> Any | None:
        """A torch.nn.Module mapping a float32 tensor (n, *input_shape) to (n,) or (n, n_classes),
        for Captum; None when the backend has none (then Explain is FAILED_PRECONDITION)."""
        return None

    def input_signature(self) -> dict[str, Any]:
        """The model input as the Registry records it: {"shape": [null, *input_shape], "dtype": "float32"}."""
        return {"shape": [None, *self.input_shape], "dtype": "float32"}


class Transformer(abc.ABC):
    """A use-case's pre- and post-processing (seed 2.1: "each OL service will encompass a
    different Transformer"). It may keep state between calls (e.g. windows of readings per
    sensor); `state()`/`load_state()` carry it across restarts."""

    name: str = ""

    def __init__(self, task: str, params: dict[str, Any]):
        """Raises InvalidArgument for unknown or bad params (name the key)."""
        self.task = task
        self.params = params

    @property
    @abc.abstractmethod
    def input_shape(self) -> tuple[int, ...]:
        """One model input's shape, e.g. (36,) or (1, 16, 16)."""

    @property
    @abc.abstractmethod
    def feature_names(self) -> list[str]:
        """Names of the flattened model input, in order (explanations), e.g. lag_36 .. lag_1."""

    @property
    def n_classes(self) -> int | None:
        """Classification: the number of classes (None for regression)."""
        return None

    @property
    def class_labels(self) -> list[str]:
        return []

    @abc.abstractmethod
    def learn_pairs(self, observations: list[Obs]) -> tuple[np.ndarray, np.ndarray]:
        """Turns observations into training pairs (X, y) in model scale. May buffer (a reading's
        target arrives a horizon later), so it can return fewer pairs than observations, or none.
        Raises InvalidArgument on the first bad observation (say which and why) without keeping any
        of the batch."""

    @abc.abstractmethod
    def model_inputs(self, inputs: list[Obs], sensor_id: str = "") -> tuple[np.ndarray, PredictContext]:
        """Turns predict inputs into a model input batch. Never changes learning state.
        Raises InvalidArgument (bad input) or FailedPrecondition (e.g. not enough readings buffered
        for `sensor_id`)."""

    @abc.abstractmethod
    def outputs(self, predictions: np.ndarray, ctx: PredictContext) -> list[Output]:
        """Post-processes the model's predictions of one `model_inputs` batch."""

    def to_units(self, values: np.ndarray) -> np.ndarray:
        """Regression: model-scale values (predictions or targets) in user units (e.g. kW)."""
        return values

    @property
    def monitor_columns(self) -> list[str]:
        """Columns the drift monitor compares; by default the model's input features."""
        return self.feature_names

    def monitor_rows(self, X: np.ndarray) -> np.ndarray:
        """Model inputs as monitoring rows float64 (n, len(monitor_columns)), in user units."""
        return X.reshape(len(X), -1).astype(np.float64)

    @abc.abstractmethod
    def reference_rows(self, csv_path: Path, max_rows: int) -> np.ndarray:
        """Monitoring rows (as `monitor_rows` gives them) built from a reference dataset CSV the
        Registry stores, at most `max_rows` (the most recent). Raises FailedPrecondition when the
        CSV does not fit this transformer (say which column is missing)."""

    def pending(self) -> int:
        """Observations buffered that will yield training pairs later."""
        return 0

    def state(self) -> dict[str, Any]:
        """JSON-serialisable state to persist (e.g. windows of readings)."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restores what `state` returned."""
