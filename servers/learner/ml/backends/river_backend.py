"""River: an incremental model (optionally behind a StandardScaler), stored with pickle (River's own
way of persisting a model)."""

from __future__ import annotations

import inspect
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from servers.common.errors import FailedPrecondition, InvalidArgument
from servers.learner.ml.backends import _common as c
from servers.learner.ml.base import CLASSIFICATION, REGRESSION, Backend

NAME = "river"
#: River modules whose models the params may name.
MODULES = ("linear_model", "tree", "forest", "neighbors", "naive_bayes")
DEFAULTS = {REGRESSION: "LinearRegression", CLASSIFICATION: "LogisticRegression"}
OWN_KEYS = {"model", "scale", "lr"}


def _models(task: str) -> dict[str, type]:
    """Every River model class of those modules that serves the task, by class name."""
    import importlib

    from river import base

    kind = base.Classifier if task == CLASSIFICATION else base.Regressor
    found: dict[str, type] = {}
    for module_name in MODULES:
        try:
            module = importlib.import_module(f"river.{module_name}")
        except ImportError:  # pragma: no cover - a River build without that module
            continue
        for name in dir(module):
            obj = getattr(module, name)
            if name[:1].isupper() and isinstance(obj, type) and issubclass(obj, kind) and not inspect.isabstract(obj):
                found.setdefault(name, obj)
    return found


def _has(model: Any, method: str) -> bool:
    """Whether the model (every step of a Pipeline, which always has the mini-batch methods) has `method`."""
    steps = getattr(model, "steps", None)
    if steps is not None:
        return all(hasattr(step, method) for step in steps.values())
    return hasattr(model, method)


class RiverBackend(Backend):
    framework = NAME
    artifact_name = "model.pkl"

    def __init__(self, task: str, params: dict[str, Any], input_shape: tuple[int, ...], n_classes: int | None):
        shape = c.check_setup(NAME, task, input_shape, n_classes)
        super().__init__(task, dict(params or {}), shape, n_classes)
        params = dict(self.params)
        name = params.pop("model", DEFAULTS[task])
        models = _models(task)
        if name not in models:
            raise InvalidArgument(
                f"river: param 'model' {name!r} is not a River {task} model; use one of {', '.join(sorted(models))}"
            )
        cls = models[name]
        scale = params.pop("scale", True)
        if not isinstance(scale, bool):
            raise InvalidArgument(f"river: param 'scale' must be true or false, got {scale!r}")
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "args", "kwargs"}
        c.check_keys(NAME, params, accepted | OWN_KEYS)
        if "lr" in params:
            lr = c.float_param(NAME, params, "lr", 0.01)
            params.pop("lr")
            if "optimizer" not in accepted:
                raise InvalidArgument(
                    f"river: param 'lr' does not apply to {name} (it has no optimizer); remove it"
                )
            if "optimizer" in params:
                raise InvalidArgument("river: give either 'lr' or 'optimizer', not both")
            from river import optim

            params["optimizer"] = optim.SGD(lr)
        try:
            model = cls(**params)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"river: {name} params: {exc}") from None
        if task == CLASSIFICATION and int(n_classes) > 2 and not getattr(model, "_multiclass", False):
            from river import multiclass

            model = multiclass.OneVsRestClassifier(model)  # a binary model, one per class
        if scale:
            from river import preprocessing

            model = preprocessing.StandardScaler() | model
        self.model = model
        self._init_columns()

    def _init_columns(self) -> None:
        self._columns = [f"x{i}" for i in range(int(np.prod(self.input_shape)))]

    # ------------------------------------------------------------------ learning
    def _flat(self, X: np.ndarray) -> np.ndarray:
        X = c.check_X(NAME, X, self.input_shape)
        return X.reshape(len(X), len(self._columns)).astype(np.float64)

    def _row(self, row: np.ndarray) -> dict[str, float]:
        return dict(zip(self._columns, row.tolist(), strict=True))

    def learn(self, X: np.ndarray, y: np.ndarray) -> None:
        Xf = self._flat(X)
        yv = c.check_y(NAME, y, len(Xf), self.task, self.n_classes)
        if len(Xf) == 0:
            return
        targets = yv.astype(np.int64).tolist() if self.task == CLASSIFICATION else yv.astype(np.float64).tolist()
        if _has(self.model, "learn_many"):
            import pandas as pd

            self.model.learn_many(pd.DataFrame(Xf, columns=self._columns), pd.Series(targets))
        else:
            for row, target in zip(Xf, targets, strict=True):
                self.model.learn_one(self._row(row), target)

    def predict(self, X: np.ndarray) -> np.ndarray:
        Xf = self._flat(X)
        n = len(Xf)
        if self.task == REGRESSION:
            out = np.zeros(n, dtype=np.float64)
            if n > 8 and _has(self.model, "predict_many"):  # pandas costs more than a few predict_one
                import pandas as pd

                out[:] = np.asarray(self.model.predict_many(pd.DataFrame(Xf, columns=self._columns)), dtype=float)
            else:
                for i, row in enumerate(Xf):
                    value = self.model.predict_one(self._row(row))
                    out[i] = 0.0 if value is None else float(value)
            return np.nan_to_num(out).astype(np.float32)
        k = int(self.n_classes)
        probs = np.zeros((n, k), dtype=np.float64)
        for i, row in enumerate(Xf):
            # unseen classes are missing from the dict; a binary model answers {False: p0, True: p1}
            for label, p in (self.model.predict_proba_one(self._row(row)) or {}).items():
                index = int(label)
                if 0 <= index < k:
                    probs[i, index] = float(p)
        return c.normalise_probabilities(probs)

    def loss(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        p = self.predict(X)  # River's predict does not update the scaler (learn_during_predict is off)
        yv = c.check_y(NAME, y, len(p), self.task, self.n_classes)
        return c.per_sample_loss(self.task, p, yv)

    # ------------------------------------------------------------------ artifacts
    def save(self, path: Path) -> None:
        with open(Path(path), "wb") as f:
            pickle.dump(self.model, f, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def load(cls, path: Path, task: str, params: dict[str, Any], input_shape: tuple[int, ...],
             n_classes: int | None) -> RiverBackend:
        from river import base

        shape = c.check_setup(NAME, task, input_shape, n_classes)
        try:
            with open(Path(path), "rb") as f:
                model = pickle.load(f)  # noqa: S301 - artifacts come from the Registry, hash-checked
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same precondition
            raise FailedPrecondition(f"river: {Path(path).name} is not a pickled River model: {exc}") from None
        if not isinstance(model, base.Estimator) or not hasattr(model, "learn_one"):
            raise FailedPrecondition(
                f"river: {Path(path).name} holds a {type(model).__name__}, not a River model that learns online"
            )
        kind = base.Classifier if task == CLASSIFICATION else base.Regressor
        final = model[-1] if hasattr(model, "steps") else model  # a Pipeline: its last step predicts
        if not isinstance(final, kind):
            raise FailedPrecondition(f"river: the starting model is a {type(final).__name__}, not a {task} model")
        # the params the learner was created with may come along: their keys must fit this model, their
        # values are those of the file
        accepted = set(OWN_KEYS)
        for obj in (final, getattr(final, "classifier", None)):
            if obj is not None:
                accepted |= set(inspect.signature(type(obj).__init__).parameters) - {"self", "args", "kwargs"}
        c.check_keys(NAME, dict(params or {}), accepted)
        self = cls.__new__(cls)
        Backend.__init__(self, task, dict(params or {}), shape, n_classes)
        self.model = model
        self._init_columns()
        return self
