"""The Learner's online-learning backends, one per framework, behind `servers.learner.ml.base.Backend`.

    backend = make_backend("river", "regression", {"model": "LinearRegression"}, (36,), None)
    backend.learn(X, y); backend.predict(X); backend.save(path)
    backend = load_backend("river", path, "regression", params, (36,), None)

| name | params (all optional) | artifact |
|---|---|---|
| sklearn | estimator (SGDRegressor, SGDClassifier, PassiveAggressive*, MLP*, Perceptron) + its own params | model.joblib |
| river | model (a river.linear_model/tree/forest/... class name), scale (StandardScaler first), lr + its params | model.pkl |
| vowpalwabbit | args (VW options; none that read/write files) | model.vw (--save_resume) |
| pytorch | architecture mlp/gru/cnn, hidden_size, layers, lr, optimizer adam/sgd, epochs_per_batch, seed, freeze, threads, outputs | model.pt (TorchScript) |
| tensorflow | architecture mlp/gru/cnn, hidden_size, layers, lr, optimizer, epochs_per_batch, seed, freeze, threads | model.keras |

Importing this package imports torch; scikit-learn, River and Vowpal Wabbit are imported when their
backend is first used, TensorFlow too (it takes seconds, and its C++ logging is silenced).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from servers.common.errors import InvalidArgument
from servers.learner.ml.base import Backend

from servers.learner.ml.backends.keras_backend import KerasBackend
from servers.learner.ml.backends.river_backend import RiverBackend
from servers.learner.ml.backends.sklearn_backend import SklearnBackend
from servers.learner.ml.backends.torch_backend import TorchBackend
from servers.learner.ml.backends.vw_backend import VowpalWabbitBackend

BACKENDS: dict[str, type[Backend]] = {
    "sklearn": SklearnBackend,
    "river": RiverBackend,
    "vowpalwabbit": VowpalWabbitBackend,
    "pytorch": TorchBackend,
    "tensorflow": KerasBackend,
}


def backend_class(name: str) -> type[Backend]:
    """The Backend subclass for a name, or InvalidArgument listing the known names."""
    if name not in BACKENDS:
        raise InvalidArgument(f"unknown backend {name!r}; known backends: {', '.join(BACKENDS)}")
    return BACKENDS[name]


def make_backend(name: str, task: str, params: dict[str, Any] | None, input_shape: tuple[int, ...],
                 n_classes: int | None) -> Backend:
    """A fresh model. InvalidArgument for an unknown backend, task or param (naming it)."""
    return backend_class(name)(task, dict(params or {}), tuple(input_shape), n_classes)


def load_backend(name: str, path: Path, task: str, params: dict[str, Any] | None, input_shape: tuple[int, ...],
                 n_classes: int | None) -> Backend:
    """A model read from an artifact `save` wrote, or a starting model trained elsewhere in that framework.
    FailedPrecondition when the file cannot keep learning here (says why)."""
    return backend_class(name).load(Path(path), task, dict(params or {}), tuple(input_shape), n_classes)


__all__ = ["BACKENDS", "backend_class", "load_backend", "make_backend"]
