"""Vowpal Wabbit: a `vowpalwabbit.Workspace` fed VW text lines, saved with --save_resume so that a loaded
model keeps its adaptive learning state and goes on learning."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import numpy as np

from servers.common.errors import FailedPrecondition, InvalidArgument
from servers.learner.ml.backends import _common as c
from servers.learner.ml.base import CLASSIFICATION, REGRESSION, Backend

NAME = "vowpalwabbit"

#: Options that read or write files, open sockets or are set by the backend itself.
FORBIDDEN = {
    "-f": "it writes a model file (the Learner saves the model itself)",
    "--final_regressor": "it writes a model file (the Learner saves the model itself)",
    "-i": "the Learner loads the model itself",
    "--initial_regressor": "the Learner loads the model itself",
    "-c": "it writes a cache file",
    "--cache": "it writes a cache file",
    "--cache_file": "it writes a cache file",
    "-d": "the Learner feeds the examples",
    "--data": "the Learner feeds the examples",
    "--daemon": "it opens a socket",
    "--port": "it opens a socket",
    "--pid_file": "it writes a file",
    "--port_file": "it writes a file",
    "-p": "it writes a predictions file",
    "--predictions": "it writes a predictions file",
    "-r": "it writes a raw predictions file",
    "--raw_predictions": "it writes a raw predictions file",
    "--readable_model": "it writes a file",
    "--invert_hash": "it writes a file",
    "--save_per_pass": "it writes files",
    "--output_feature_regularizer_binary": "it writes a file",
    "--output_feature_regularizer_text": "it writes a file",
    "--dump_json_weights_experimental": "it writes a file",
    "--audit_regressor": "it writes a file",
    "--feature_mask": "it reads a file",
    "--input_feature_regularizer": "it reads a file",
    "--dictionary": "it reads a file",
    "--dictionary_path": "it reads files",
    "--save_resume": "the backend sets it",
    "--predict_only_model": "the Learner needs a model that can keep learning",
    "-t": "the Learner needs a model that learns",
    "--testonly": "the Learner needs a model that learns",
}
#: Options the backend sets for classification (class probabilities from one-against-all).
CLASSIFICATION_OWN = ("--oaa", "--ect", "--csoaa", "--log_multi", "--probabilities", "--link", "--binary")
DEFAULT_ARGS = {REGRESSION: "--loss_function squared", CLASSIFICATION: ""}


def _option(token: str) -> str:
    """The option a token names: '--cache_file=x' -> '--cache_file', '-fmodel' -> '-f', '-l' -> '-l'."""
    if token.startswith("--"):
        return token.split("=", 1)[0]
    if token.startswith("-") and len(token) > 1 and not token[1].isdigit() and token[1] != ".":
        return token[:2]
    return ""


def parse_args(task: str, args: Any) -> list[str]:
    """The user's VW arguments as tokens, or InvalidArgument naming the option that is not allowed."""
    if not isinstance(args, str):
        raise InvalidArgument(f"vowpalwabbit: param 'args' must be a string of VW options, got {args!r}")
    try:
        tokens = shlex.split(args)
    except ValueError as exc:
        raise InvalidArgument(f"vowpalwabbit: param 'args' {args!r} cannot be split: {exc}") from None
    for i, token in enumerate(tokens):
        option = _option(token)
        if option in FORBIDDEN:
            raise InvalidArgument(f"vowpalwabbit: param 'args' must not contain {option} ({FORBIDDEN[option]})")
        if task == CLASSIFICATION and option in CLASSIFICATION_OWN:
            raise InvalidArgument(
                f"vowpalwabbit: param 'args' must not contain {option}: for classification the backend sets "
                "--oaa <n_classes> --loss_function logistic --probabilities"
            )
        if task == CLASSIFICATION and option == "--loss_function":
            value = token.split("=", 1)[1] if "=" in token else (tokens[i + 1] if i + 1 < len(tokens) else "")
            if value != "logistic":
                raise InvalidArgument(
                    f"vowpalwabbit: param 'args' sets --loss_function {value}; classification needs logistic "
                    "(class probabilities)"
                )
    return tokens


class VowpalWabbitBackend(Backend):
    framework = NAME
    artifact_name = "model.vw"

    def __init__(self, task: str, params: dict[str, Any], input_shape: tuple[int, ...], n_classes: int | None):
        shape = c.check_setup(NAME, task, input_shape, n_classes)
        super().__init__(task, dict(params or {}), shape, n_classes)
        c.check_keys(NAME, self.params, {"args"})
        self._tokens = parse_args(task, self.params.get("args", DEFAULT_ARGS[task]))
        self._n_features = int(np.prod(shape))
        self.workspace = self._workspace([])

    def _own_tokens(self) -> list[str]:
        own = ["--quiet", "--save_resume"]
        if self.task == CLASSIFICATION:
            own += ["--oaa", str(int(self.n_classes)), "--probabilities"]
            if "--loss_function" not in {_option(t) for t in self._tokens}:
                own += ["--loss_function", "logistic"]
        return own

    def _workspace(self, load: list[str]) -> Any:
        import vowpalwabbit

        tokens = [*load, *self._tokens, *self._own_tokens()]
        try:
            return vowpalwabbit.Workspace(arg_list=tokens)
        except RuntimeError as exc:
            if load:
                raise FailedPrecondition(f"vowpalwabbit: cannot load the model with {' '.join(tokens)}: {exc}") from None
            raise InvalidArgument(f"vowpalwabbit: param 'args' {' '.join(self._tokens)!r}: {exc}") from None

    # ------------------------------------------------------------------ learning
    def _lines(self, X: np.ndarray, labels: list[str] | None) -> list[str]:
        X = c.check_X(NAME, X, self.input_shape).reshape(len(X), self._n_features)
        lines = []
        for i, row in enumerate(X):
            features = " ".join(f"x{j}:{v:.9g}" for j, v in enumerate(row.tolist()) if v != 0.0)
            label = labels[i] if labels is not None else ""
            lines.append(f"{label} | {features}")
        return lines

    def learn(self, X: np.ndarray, y: np.ndarray) -> None:
        n = len(np.asarray(X))
        c.check_X(NAME, X, self.input_shape)
        yv = c.check_y(NAME, y, n, self.task, self.n_classes)
        if self.task == CLASSIFICATION:
            labels = [str(int(v) + 1) for v in yv]  # VW's multiclass labels are 1..K
        else:
            labels = [f"{float(v):.9g}" for v in yv]
        for line in self._lines(X, labels):
            self.workspace.learn(line)

    def predict(self, X: np.ndarray) -> np.ndarray:
        lines = self._lines(X, None)  # no label: VW does not learn from these
        if self.task == REGRESSION:
            return np.array([float(self.workspace.predict(line)) for line in lines], dtype=np.float32)
        k = int(self.n_classes)
        out = np.zeros((len(lines), k), dtype=np.float64)
        for i, line in enumerate(lines):
            out[i] = np.asarray(self.workspace.predict(line), dtype=np.float64)[:k]
        return c.normalise_probabilities(out)

    def loss(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        p = self.predict(X)
        yv = c.check_y(NAME, y, len(p), self.task, self.n_classes)
        return c.per_sample_loss(self.task, p, yv)

    # ------------------------------------------------------------------ artifacts
    def save(self, path: Path) -> None:
        self.workspace.save(str(Path(path)))

    @classmethod
    def load(cls, path: Path, task: str, params: dict[str, Any], input_shape: tuple[int, ...],
             n_classes: int | None) -> VowpalWabbitBackend:
        import vowpalwabbit

        shape = c.check_setup(NAME, task, input_shape, n_classes)
        path = Path(path)
        if not path.is_file():
            raise FailedPrecondition(f"vowpalwabbit: no model file at {path}")
        self = cls.__new__(cls)
        Backend.__init__(self, task, dict(params or {}), shape, n_classes)
        c.check_keys(NAME, self.params, {"args"})
        self._tokens = parse_args(task, self.params.get("args", DEFAULT_ARGS[task]))
        self._n_features = int(np.prod(shape))
        # what the file says about itself: the reductions it was trained with are stored in it (e.g. --oaa K)
        try:
            probe = vowpalwabbit.Workspace(arg_list=["-i", str(path), "--quiet"])
        except RuntimeError as exc:
            raise FailedPrecondition(f"vowpalwabbit: {path.name} is not a VW model: {exc}") from None
        stored = shlex.split(probe.get_arguments())
        probe.finish()
        oaa = stored[stored.index("--oaa") + 1] if "--oaa" in stored[:-1] else None
        if task == CLASSIFICATION and oaa != str(int(n_classes)):
            raise FailedPrecondition(
                f"vowpalwabbit: the model was trained with {'--oaa ' + oaa if oaa else 'no --oaa'}; a classification "
                f"learner with {int(n_classes)} classes needs --oaa {int(n_classes)}"
            )
        if task == REGRESSION and oaa is not None:
            raise FailedPrecondition(f"vowpalwabbit: the model is a classifier (--oaa {oaa}), not a regression model")
        # the stored options come back from the file; the learning options are given again
        self.workspace = self._workspace(["-i", str(path)])
        return self
