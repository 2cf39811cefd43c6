"""scikit-learn: an estimator that learns with `partial_fit`, stored with joblib."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from servers.common.errors import FailedPrecondition, InvalidArgument
from servers.learner.ml.backends import _common as c
from servers.learner.ml.base import CLASSIFICATION, REGRESSION, Backend

NAME = "sklearn"

#: Estimators with partial_fit, by the name the params use, and the task each serves.
ESTIMATORS: dict[str, tuple[str, str]] = {
    "SGDRegressor": ("sklearn.linear_model", REGRESSION),
    "PassiveAggressiveRegressor": ("sklearn.linear_model", REGRESSION),
    "MLPRegressor": ("sklearn.neural_network", REGRESSION),
    "SGDClassifier": ("sklearn.linear_model", CLASSIFICATION),
    "PassiveAggressiveClassifier": ("sklearn.linear_model", CLASSIFICATION),
    "MLPClassifier": ("sklearn.neural_network", CLASSIFICATION),
    "Perceptron": ("sklearn.linear_model", CLASSIFICATION),
}
DEFAULTS = {REGRESSION: ("SGDRegressor", {}), CLASSIFICATION: ("SGDClassifier", {"loss": "log_loss"})}


def _estimator_class(name: str) -> type:
    import importlib

    module, _task = ESTIMATORS[name]
    return getattr(importlib.import_module(module), name)


_LINEAR_REGRESSORS = ("SGDRegressor", "PassiveAggressiveRegressor")


def _linear_regressor(estimator) -> bool:
    """A fitted linear regressor whose predict is X @ coef_ + intercept_ (coef_ 1-D)."""
    return (type(estimator).__name__ in _LINEAR_REGRESSORS and getattr(estimator, "coef_", None) is not None
            and np.ndim(estimator.coef_) == 1)


def _online_names(task: str) -> str:
    return ", ".join(n for n, (_m, t) in ESTIMATORS.items() if t == task)


class SklearnBackend(Backend):
    framework = NAME
    artifact_name = "model.joblib"

    def __init__(self, task: str, params: dict[str, Any], input_shape: tuple[int, ...], n_classes: int | None):
        shape = c.check_setup(NAME, task, input_shape, n_classes)
        super().__init__(task, dict(params or {}), shape, n_classes)
        self._n_features = int(np.prod(shape))
        params = dict(self.params)
        name = params.pop("estimator", DEFAULTS[task][0])
        if name not in ESTIMATORS:
            raise InvalidArgument(
                f"sklearn: param 'estimator' {name!r} is not an online estimator; for {task} use one of "
                f"{_online_names(task)}"
            )
        if ESTIMATORS[name][1] != task:
            raise InvalidArgument(
                f"sklearn: param 'estimator' {name!r} is not a {task} estimator; use one of {_online_names(task)}"
            )
        cls = _estimator_class(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # the PassiveAggressive* deprecation (sklearn 1.8)
            keys = set(cls().get_params())
            c.check_keys(NAME, params, keys | {"estimator"})
            kwargs = dict(DEFAULTS[task][1]) if name == DEFAULTS[task][0] else {}
            kwargs.update(params)
            estimator = cls(**kwargs)
        self._validate_values(estimator)
        self.estimator = estimator

    def _validate_values(self, estimator: Any) -> None:
        """sklearn checks param values on the first fit: do one on a throwaway copy now, so that a bad
        value is an InvalidArgument when the learner is created, not on its first batch."""
        from sklearn.base import clone

        probe = clone(estimator)
        X = np.zeros((2, self._n_features), dtype=np.float32)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if self.task == CLASSIFICATION:
                    probe.partial_fit(X, np.array([0, 1]), classes=np.arange(self.n_classes))
                else:
                    probe.partial_fit(X, np.zeros(2, dtype=np.float32))
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(f"sklearn: {type(estimator).__name__} params: {exc}") from None

    # ------------------------------------------------------------------ learning
    def _fitted(self) -> bool:
        return hasattr(self.estimator, "n_features_in_")

    def _flat(self, X: np.ndarray) -> np.ndarray:
        return c.check_X(NAME, X, self.input_shape).reshape(len(X), self._n_features)

    def learn(self, X: np.ndarray, y: np.ndarray) -> None:
        Xf = self._flat(X)
        yv = c.check_y(NAME, y, len(Xf), self.task, self.n_classes)
        if len(Xf) == 0:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # MLP's "maximum iterations reached" per call
            if self.task == CLASSIFICATION:
                kwargs = {} if self._fitted() else {"classes": np.arange(self.n_classes)}
                self.estimator.partial_fit(Xf, yv.astype(np.int64), **kwargs)
            else:
                self.estimator.partial_fit(Xf, yv)

    def predict(self, X: np.ndarray) -> np.ndarray:
        Xf = self._flat(X)
        if not self._fitted() or len(Xf) == 0:
            return c.fresh_prediction(self.task, len(Xf), self.n_classes)
        if self.task == REGRESSION:
            if _linear_regressor(self.estimator):
                # What LinearModel.predict computes, without its per-call input validation (~100 us a
                # call, most of a single-row prediction): the transformer has checked shape and finiteness.
                coef = self.estimator.coef_
                return (Xf.astype(coef.dtype, copy=False) @ coef + self.estimator.intercept_).astype(
                    np.float32).reshape(len(Xf))
            return np.asarray(self.estimator.predict(Xf), dtype=np.float32).reshape(len(Xf))
        classes = np.asarray(self.estimator.classes_).astype(np.int64)
        out = np.zeros((len(Xf), self.n_classes), dtype=np.float64)
        if hasattr(self.estimator, "predict_proba"):
            out[:, classes] = self.estimator.predict_proba(Xf)
        else:  # hinge-loss SGD, Perceptron, PassiveAggressive: one-hot of the predicted class
            out[np.arange(len(Xf)), np.asarray(self.estimator.predict(Xf)).astype(np.int64)] = 1.0
        return c.normalise_probabilities(out)

    def loss(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        p = self.predict(X)
        yv = c.check_y(NAME, y, len(p), self.task, self.n_classes)
        return c.per_sample_loss(self.task, p, yv)

    # ------------------------------------------------------------------ artifacts
    def save(self, path: Path) -> None:
        import joblib

        joblib.dump(self.estimator, Path(path))

    @classmethod
    def load(cls, path: Path, task: str, params: dict[str, Any], input_shape: tuple[int, ...],
             n_classes: int | None) -> SklearnBackend:
        import joblib

        shape = c.check_setup(NAME, task, input_shape, n_classes)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                estimator = joblib.load(Path(path))
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same precondition
            raise FailedPrecondition(f"sklearn: {Path(path).name} is not a joblib/pickle model: {exc}") from None
        kind = type(estimator).__name__
        if not hasattr(estimator, "get_params"):
            raise FailedPrecondition(f"sklearn: {Path(path).name} holds a {kind}, not a scikit-learn estimator")
        if not hasattr(estimator, "partial_fit"):
            raise FailedPrecondition(
                f"sklearn: the starting model is a {kind}, which cannot learn online (it has no partial_fit); "
                f"train the starting model with one that can: {_online_names(task)}"
            )
        from sklearn.base import is_classifier, is_regressor

        if task == CLASSIFICATION and not is_classifier(estimator) or task == REGRESSION and not is_regressor(
            estimator
        ):
            raise FailedPrecondition(f"sklearn: the starting model is a {kind}, not a {task} estimator")
        params = dict(params or {})
        wanted = params.pop("estimator", kind)
        if wanted != kind:
            raise InvalidArgument(f"sklearn: param 'estimator' is {wanted!r} but the starting model is a {kind}")
        c.check_keys(NAME, params, set(estimator.get_params()) | {"estimator"})
        n_features = int(np.prod(shape))
        got = getattr(estimator, "n_features_in_", n_features)
        if got != n_features:
            raise FailedPrecondition(
                f"sklearn: the starting model takes {got} features, the learner's input has {n_features} "
                f"(shape {shape})"
            )
        if task == CLASSIFICATION and hasattr(estimator, "classes_"):
            classes = [int(v) for v in np.asarray(estimator.classes_)]
            if classes != list(range(int(n_classes))):
                raise FailedPrecondition(
                    f"sklearn: the starting model's classes are {classes}, expected 0..{int(n_classes) - 1}"
                )
        try:
            estimator.set_params(**params)
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(f"sklearn: {kind} params: {exc}") from None
        self = cls.__new__(cls)
        Backend.__init__(self, task, {"estimator": kind, **params}, shape, n_classes)
        self._n_features = n_features
        self.estimator = estimator
        return self
