"""What every backend shares: checking tasks, shapes, targets and params, and the per-sample losses."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from servers.common.errors import InvalidArgument
from servers.learner.ml.base import CLASSIFICATION, REGRESSION, TASKS

#: Probabilities are clipped to [EPS, 1] before the log of the log-loss.
EPS = 1e-7


def check_setup(backend: str, task: str, input_shape: tuple[int, ...], n_classes: int | None) -> tuple[int, ...]:
    """Validates what every backend is built from; returns the input shape as a tuple of ints."""
    if task not in TASKS:
        raise InvalidArgument(f"{backend}: task {task!r} is not one of {', '.join(TASKS)}")
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{backend}: input_shape {input_shape!r} must be a tuple of positive ints") from None
    if not shape or any(d <= 0 for d in shape):
        raise InvalidArgument(f"{backend}: input_shape {shape!r} must be a non-empty tuple of positive ints")
    if task == CLASSIFICATION:
        if n_classes is None or int(n_classes) < 2:
            raise InvalidArgument(f"{backend}: classification needs n_classes >= 2, got {n_classes!r}")
    elif n_classes not in (None, 0):
        raise InvalidArgument(f"{backend}: regression takes no n_classes, got {n_classes!r}")
    return shape


def check_keys(backend: str, params: dict[str, Any], allowed: set[str] | list[str]) -> None:
    """InvalidArgument naming the first param key that is not allowed, and the allowed ones."""
    if not isinstance(params, dict):
        raise InvalidArgument(f"{backend}: params must be a JSON object, got {type(params).__name__}")
    for key in params:
        if key not in allowed:
            raise InvalidArgument(
                f"{backend}: unknown param {key!r}; known params: {', '.join(sorted(allowed))}"
            )


def check_X(backend: str, X: Any, input_shape: tuple[int, ...]) -> np.ndarray:
    """X as float32 of shape (n, *input_shape), or InvalidArgument saying expected vs got."""
    arr = np.asarray(X)
    if arr.ndim != len(input_shape) + 1 or tuple(arr.shape[1:]) != tuple(input_shape):
        expected = "(n, " + ", ".join(str(d) for d in input_shape) + ")"
        raise InvalidArgument(f"{backend}: model input X has shape {tuple(arr.shape)}, expected {expected}")
    if not np.issubdtype(arr.dtype, np.number):
        raise InvalidArgument(f"{backend}: model input X must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if not np.all(np.isfinite(arr)):
        raise InvalidArgument(f"{backend}: model input X has NaN or infinite values")
    return arr


def check_y(backend: str, y: Any, n: int, task: str, n_classes: int | None) -> np.ndarray:
    """y as float32 (n,); for classification every value is a class index in [0, n_classes)."""
    arr = np.asarray(y)
    if arr.shape != (n,):
        raise InvalidArgument(f"{backend}: targets y have shape {tuple(arr.shape)}, expected ({n},) to match X")
    arr = arr.astype(np.float32, copy=False)
    if not np.all(np.isfinite(arr)):
        raise InvalidArgument(f"{backend}: targets y have NaN or infinite values")
    if task == CLASSIFICATION:
        bad = (arr != np.round(arr)) | (arr < 0) | (arr >= int(n_classes or 0))
        if np.any(bad):
            value = arr[np.argmax(bad)]
            raise InvalidArgument(
                f"{backend}: target {value!r} is not a class index in [0, {n_classes}) (classification)"
            )
    return arr


def per_sample_loss(task: str, predictions: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Squared error (regression) or log-loss of the true class (classification), float64 (n,)."""
    if task == REGRESSION:
        diff = predictions.astype(np.float64).reshape(len(y)) - y.astype(np.float64)
        return diff * diff
    idx = y.astype(np.int64)
    p = predictions.astype(np.float64)[np.arange(len(idx)), idx]
    return -np.log(np.clip(p, EPS, 1.0))


def fresh_prediction(task: str, n: int, n_classes: int | None) -> np.ndarray:
    """What a model that has learned nothing answers: zeros, or uniform probabilities."""
    if task == REGRESSION:
        return np.zeros(n, dtype=np.float32)
    k = int(n_classes or 0)
    return np.full((n, k), 1.0 / k, dtype=np.float32)


def normalise_probabilities(p: np.ndarray) -> np.ndarray:
    """Rows clipped to >= 0 and scaled to sum to 1 (a row of zeros becomes uniform), float32."""
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, None)
    sums = p.sum(axis=1, keepdims=True)
    k = p.shape[1]
    out = np.where(sums > 0, p / np.where(sums > 0, sums, 1.0), 1.0 / k)
    return out.astype(np.float32)


def int_param(backend: str, params: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise InvalidArgument(f"{backend}: param {key!r} must be an integer, got {value!r}")
    value = int(value)
    if not lo <= value <= hi:
        raise InvalidArgument(f"{backend}: param {key!r} must be in [{lo}, {hi}], got {value}")
    return value


def float_param(backend: str, params: dict[str, Any], key: str, default: float) -> float:
    """A positive finite float."""
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InvalidArgument(f"{backend}: param {key!r} must be a positive number, got {value!r}")
    return float(value)


def choice_param(backend: str, params: dict[str, Any], key: str, default: str, choices: tuple[str, ...]) -> str:
    value = params.get(key, default)
    if value not in choices:
        raise InvalidArgument(f"{backend}: param {key!r} must be one of {', '.join(choices)}, got {value!r}")
    return value


def str_list_param(backend: str, params: dict[str, Any], key: str) -> list[str]:
    value = params.get(key, [])
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise InvalidArgument(f"{backend}: param {key!r} must be a list of non-empty strings, got {value!r}")
    return list(value)
