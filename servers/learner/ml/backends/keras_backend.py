"""TensorFlow / Keras 3: a fresh MLP, GRU or small CNN built from the same params as the PyTorch backend,
or a `.keras` starting model (e.g. the Trainer's digits-keras recipe), trained with `train_on_batch`.
The artifact is a `.keras` file, which keeps the optimizer's state so that a loaded model goes on
learning. TensorFlow is imported on first use (it takes seconds) with its C++ logging silenced."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from servers.common.errors import FailedPrecondition, InvalidArgument
from servers.learner.ml.backends import _common as c
from servers.learner.ml.base import CLASSIFICATION, REGRESSION, Backend

NAME = "tensorflow"
ARCHITECTURES = ("mlp", "gru", "cnn")
KEYS = {"architecture", "hidden_size", "layers", "lr", "optimizer", "epochs_per_batch", "seed", "freeze", "threads"}
#: The name a model built here carries; a loaded model with it keeps its compiled optimizer.
OWN_PREFIX = "mlmesh_learner_"


def _keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # pragma: no cover - absl comes with TensorFlow
        pass
    return keras


def _set_threads(n: int) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:  # TensorFlow's runtime is already up: its thread pools are fixed for the process
        pass


def _build(keras, architecture: str, shape: tuple[int, ...], hidden: int, layers: int, task: str, n_out: int,
           seed: int):
    L = keras.layers

    def glorot(i: int):
        return keras.initializers.GlorotUniform(seed=seed + i)

    blocks: list[Any] = [keras.Input(shape=shape, name="x")]
    if architecture == "mlp":
        blocks.append(L.Flatten(name="flatten"))
        for i in range(layers):
            blocks.append(L.Dense(hidden, activation="relu", kernel_initializer=glorot(i), name=f"dense_{i}"))
    elif architecture == "gru":
        if len(shape) == 1:
            blocks.append(L.Reshape((shape[0], 1), name="sequence"))
        for i in range(layers):
            blocks.append(L.GRU(hidden, return_sequences=i < layers - 1, kernel_initializer=glorot(i),
                                recurrent_initializer=keras.initializers.Orthogonal(seed=seed + 100 + i),
                                name=f"gru_{i}"))
    else:  # cnn: (C, H, W) channels first as the Learner's images come, Keras convolves channels last
        if len(shape) == 3:
            blocks.append(L.Permute((2, 3, 1), name="channels_last"))
            height, width = shape[1], shape[2]
        else:
            blocks.append(L.Reshape((*shape, 1), name="channels_last"))
            height, width = shape
        for i in range(layers):
            blocks.append(L.Conv2D(hidden, 3, padding="same", activation="relu", kernel_initializer=glorot(i),
                                   name=f"conv_{i}"))
            if i == 0 and min(height, width) >= 4:
                blocks.append(L.MaxPooling2D(2, name="pool"))
        blocks.append(L.Flatten(name="flatten"))
    # a zero head: a fresh model answers 0 (regression) or uniform probabilities, as the contract asks
    blocks.append(L.Dense(n_out, activation="softmax" if task == CLASSIFICATION else None,
                          kernel_initializer="zeros", name="head"))
    return keras.Sequential(blocks, name=f"{OWN_PREFIX}{architecture}")


class KerasBackend(Backend):
    framework = NAME
    artifact_name = "model.keras"

    def __init__(self, task: str, params: dict[str, Any], input_shape: tuple[int, ...], n_classes: int | None):
        shape = c.check_setup(NAME, task, input_shape, n_classes)
        super().__init__(task, dict(params or {}), shape, n_classes)
        self._read_params()
        architecture = c.choice_param(NAME, self.params, "architecture", "mlp", ARCHITECTURES)
        hidden = c.int_param(NAME, self.params, "hidden_size", 32, 1, 4096)
        layers = c.int_param(NAME, self.params, "layers", 1, 1, 16)
        seed = c.int_param(NAME, self.params, "seed", 0, 0, 2**31 - 1000)
        if architecture == "gru" and len(shape) not in (1, 2):
            raise InvalidArgument(f"tensorflow: architecture 'gru' takes a (L,) or (T, F) input, got {shape}")
        if architecture == "cnn" and len(shape) not in (2, 3):
            raise InvalidArgument(f"tensorflow: architecture 'cnn' takes a (C, H, W) or (H, W) image, got {shape}")
        keras = _keras()
        n_out = int(n_classes) if task == CLASSIFICATION else 1
        self.model = _build(keras, architecture, shape, hidden, layers, task, n_out, seed)
        self._transform = None
        self._logits = False
        self._compile()

    def _read_params(self) -> None:
        c.check_keys(NAME, self.params, KEYS)
        self._lr = c.float_param(NAME, self.params, "lr", 0.001)
        self._optimizer_name = c.choice_param(NAME, self.params, "optimizer", "adam", ("adam", "sgd"))
        self._epochs = c.int_param(NAME, self.params, "epochs_per_batch", 1, 1, 1000)
        self._freeze = c.str_list_param(NAME, self.params, "freeze")
        if "threads" in self.params:
            _set_threads(c.int_param(NAME, self.params, "threads", 1, 1, 256))

    def _apply_freeze(self) -> None:
        names = [layer.name for layer in self.model.layers]
        for prefix in self._freeze:
            if not any(n.startswith(prefix) for n in names):
                raise InvalidArgument(
                    f"tensorflow: param 'freeze' prefix {prefix!r} matches no layer; layers: {', '.join(names)}"
                )
        for layer in self.model.layers:
            layer.trainable = not any(layer.name.startswith(prefix) for prefix in self._freeze)
        if not self.model.trainable_weights:
            raise InvalidArgument("tensorflow: param 'freeze' freezes every layer: nothing is left to learn")

    def _compile(self) -> None:
        keras = _keras()
        self._apply_freeze()
        if self._optimizer_name == "adam":
            optimizer = keras.optimizers.Adam(self._lr)
        else:
            optimizer = keras.optimizers.SGD(self._lr)
        if self.task == REGRESSION:
            loss = keras.losses.MeanSquaredError()
        else:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=self._logits)
        self.model.compile(optimizer=optimizer, loss=loss)

    # ------------------------------------------------------------------ learning
    def _inputs(self, X: np.ndarray) -> np.ndarray:
        X = c.check_X(NAME, X, self.input_shape)
        return self._transform(X) if self._transform else X

    def learn(self, X: np.ndarray, y: np.ndarray) -> None:
        Xm = self._inputs(X)
        yv = c.check_y(NAME, y, len(Xm), self.task, self.n_classes)
        if len(Xm) == 0:
            return
        target = yv.astype(np.int64) if self.task == CLASSIFICATION else yv.reshape(-1, 1)
        for _ in range(self._epochs):
            self.model.train_on_batch(Xm, target)

    def predict(self, X: np.ndarray) -> np.ndarray:
        Xm = self._inputs(X)
        if len(Xm) == 0:
            return c.fresh_prediction(self.task, 0, self.n_classes)
        out = np.asarray(self.model.predict_on_batch(Xm), dtype=np.float64)
        if self.task == REGRESSION:
            return out.reshape(len(Xm)).astype(np.float32)
        if self._logits:
            out = np.exp(out - out.max(axis=1, keepdims=True))
        return c.normalise_probabilities(out)

    def loss(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        p = self.predict(X)
        yv = c.check_y(NAME, y, len(p), self.task, self.n_classes)
        return c.per_sample_loss(self.task, p, yv)

    # ------------------------------------------------------------------ artifacts
    def save(self, path: Path) -> None:
        path = Path(path)
        if path.suffix == ".keras":
            self.model.save(path)
            return
        # Keras insists on the .keras suffix: write beside, then move into place
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            local = Path(tmp) / "model.keras"
            self.model.save(local)
            shutil.move(local, path)

    @classmethod
    def load(cls, path: Path, task: str, params: dict[str, Any], input_shape: tuple[int, ...],
             n_classes: int | None) -> KerasBackend:
        shape = c.check_setup(NAME, task, input_shape, n_classes)
        self = cls.__new__(cls)
        Backend.__init__(self, task, dict(params or {}), shape, n_classes)
        self._read_params()
        keras = _keras()
        path = Path(path)
        try:
            if path.suffix == ".keras":
                model = keras.models.load_model(path)
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    local = Path(tmp) / "model.keras"
                    shutil.copyfile(path, local)
                    model = keras.models.load_model(local)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same precondition
            raise FailedPrecondition(
                f"tensorflow: {path.name} is not a Keras 3 model file (.keras, saved with model.save): "
                f"{str(exc).splitlines()[0] if str(exc) else exc}"
            ) from None
        self.model = model
        self._transform = self._input_transform(model)
        self._check_outputs()
        own = model.name.startswith(OWN_PREFIX)
        if own and getattr(model, "optimizer", None) is not None and not self._freeze:
            try:  # ours: keep the optimizer's state; the lr of the params wins
                model.optimizer.learning_rate.assign(self._lr)
            except (AttributeError, TypeError, ValueError):  # a learning-rate schedule: keep it
                pass
        else:
            self._compile()
        return self

    def _input_transform(self, model):
        """The learner's (n, *input_shape) as the model takes it: as is, channels last for a (C, H, W)
        image given to a (H, W, C) model (as the digits-keras recipe's), or flattened."""
        wanted = tuple(model.input_shape[1:]) if model.input_shape else ()
        shape = self.input_shape
        if wanted == shape:
            return None
        if len(shape) == 3 and wanted == (shape[1], shape[2], shape[0]):
            return lambda X: np.ascontiguousarray(X.transpose(0, 2, 3, 1))
        if len(wanted) == 1 and wanted[0] == int(np.prod(shape)):
            return lambda X: X.reshape(len(X), wanted[0])
        raise FailedPrecondition(
            f"tensorflow: the starting model takes input {('n', *wanted)}, the learner gives {('n', *shape)}"
        )

    def _check_outputs(self) -> None:
        probe = np.random.default_rng(0).normal(size=(8, *self.input_shape)).astype(np.float32)
        if self._transform:
            probe = self._transform(probe)
        out = np.asarray(self.model.predict_on_batch(probe), dtype=np.float64)
        if self.task == REGRESSION:
            if out.shape not in ((8,), (8, 1)):
                raise FailedPrecondition(f"tensorflow: the starting model outputs {out.shape[1:]} per row, "
                                         "a regression learner needs one value")
            self._logits = False
            return
        if out.shape != (8, int(self.n_classes)):
            raise FailedPrecondition(f"tensorflow: the starting model outputs {out.shape[1:]} per row, a "
                                     f"classification learner needs ({int(self.n_classes)},) class probabilities")
        self._logits = not (np.all(out >= 0) and np.allclose(out.sum(axis=1), 1.0, atol=1e-4))
