"""One converter per framework: load the trained artifact, run it, convert it to ONNX.

Each framework's packages are imported inside its converter, so a scikit-learn conversion never loads torch
or TensorFlow. Every failure the user can fix (a file that does not load, a model the converter rejects)
becomes a WorkerError with a one-line reason.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from importlib import metadata

import numpy as np

from .signature import Signature, WorkerError

INPUT_NAME = "input"


@dataclass
class Prediction:
    """A model's outputs on a batch. ``values`` are compared numerically; ``labels`` (classifiers) exactly."""

    values: list[tuple[str, np.ndarray]]
    labels: np.ndarray | None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _first_line(exc: BaseException) -> str:
    """One line for the user: the first line of the message (the last, for TorchScript interpreter errors,
    whose first line only says that something failed), its first sentence when it runs long."""
    lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    line = lines[-1] if "failed in the TorchScript interpreter" in lines[0] else lines[0]
    if len(line) > 160 and ". " in line:
        line = line.split(". ")[0] + "."
    return line[:400]


def _versions(*dists: str) -> dict[str, str]:
    out = {}
    for dist in dists:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _argmax_labels(values: np.ndarray) -> np.ndarray | None:
    """Top-1 class of a (batch, classes) score matrix; None when the output is not one."""
    if values.ndim == 2 and values.shape[1] > 1 and np.issubdtype(values.dtype, np.floating):
        return values.argmax(axis=1)
    return None


class Converter:
    framework = ""
    converter = ""

    def load(self, path: str):
        raise NotImplementedError

    def predict(self, model, x: np.ndarray) -> Prediction:
        raise NotImplementedError

    def convert(self, model, sig: Signature, sample: np.ndarray, out_path: str, opset: int) -> dict:
        """Writes the ONNX file; returns the converter's details for the report."""
        raise NotImplementedError

    def onnx_prediction(self, outputs: list[tuple[str, np.ndarray]]) -> Prediction:
        """The ONNX outputs, arranged like ``predict``'s."""
        return Prediction(values=outputs, labels=_argmax_labels(outputs[0][1]))


# ---------------------------------------------------------------- PyTorch (TorchScript)


class TorchConverter(Converter):
    framework = "pytorch"
    converter = "torch.onnx.export"

    def load(self, path: str):
        import torch

        try:
            model = torch.jit.load(path, map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, ValueError, zipfile errors, …
            raise WorkerError(
                f"the model file is not a TorchScript archive written by torch.jit.save: {_first_line(exc)}"
            ) from None
        model.eval()
        return model

    def _outputs(self, raw) -> list[np.ndarray]:
        import torch

        if isinstance(raw, torch.Tensor):
            return [raw.detach().numpy()]
        if isinstance(raw, (tuple, list)) and raw and all(isinstance(t, torch.Tensor) for t in raw):
            return [t.detach().numpy() for t in raw]
        raise WorkerError(
            f"the model returns {type(raw).__name__}; only a tensor or a tuple of tensors converts to ONNX"
        )

    def predict(self, model, x: np.ndarray) -> Prediction:
        import torch

        try:
            with torch.inference_mode():
                outs = self._outputs(model(torch.from_numpy(x)))
        except WorkerError:
            raise
        except Exception as exc:  # noqa: BLE001 - a forward pass can raise anything
            raise WorkerError(
                f"the model does not run on inputs of shape {list(x.shape)} {x.dtype}: {_first_line(exc)}"
            ) from None
        names = ["output"] if len(outs) == 1 else [f"output_{i}" for i in range(len(outs))]
        return Prediction(values=list(zip(names, outs)), labels=_argmax_labels(outs[0]))

    def convert(self, model, sig: Signature, sample: np.ndarray, out_path: str, opset: int) -> dict:
        import torch

        n_out = len(self.predict(model, sample).values)
        output_names = ["output"] if n_out == 1 else [f"output_{i}" for i in range(n_out)]
        dynamic_axes = {name: {0: "batch"} for name in [INPUT_NAME, *output_names]}
        # torch.export (dynamo=True, the default since torch 2.9) refuses ScriptModules ("Exporting a
        # ScriptModule is not supported"); a TorchScript archive is exported by the TorchScript exporter,
        # which takes dynamic_axes. It writes one file (external data only past the 2 GB protobuf limit).
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    model,
                    (torch.from_numpy(sample),),
                    out_path,
                    dynamo=False,
                    opset_version=opset,
                    input_names=[INPUT_NAME],
                    output_names=output_names,
                    dynamic_axes=dynamic_axes,
                )
        except Exception as exc:  # noqa: BLE001 - UnsupportedOperatorError, SymbolicValueError, …
            raise WorkerError(f"torch.onnx.export cannot convert this model: {_first_line(exc)}") from None
        return {
            "name": self.converter,
            "exporter": "TorchScript exporter (dynamo=False, dynamic_axes on axis 0)",
            "why": "torch.export (dynamo=True) does not accept TorchScript modules",
            "versions": _versions("torch", "onnx", "onnxruntime"),
        }


# ---------------------------------------------------------------- scikit-learn (pickle)


class SklearnConverter(Converter):
    framework = "sklearn"
    converter = "skl2onnx.convert_sklearn"

    def load(self, path: str):
        import pickle

        try:
            with open(path, "rb") as f:
                model = pickle.load(f)
        except Exception as exc:  # noqa: BLE001 - UnpicklingError, EOFError, ImportError, …
            try:  # joblib.dump files (numpy arrays stored beside the pickle stream)
                import joblib

                model = joblib.load(path)
            except Exception:  # noqa: BLE001
                raise WorkerError(f"the model file is not a pickled scikit-learn model: {_first_line(exc)}") from None
        from sklearn.base import BaseEstimator

        if not isinstance(model, BaseEstimator):
            raise WorkerError(
                f"the model file holds a {type(model).__module__}.{type(model).__qualname__}, "
                "not a scikit-learn estimator"
            )
        try:
            from sklearn.utils.validation import check_is_fitted

            check_is_fitted(model)
        except Exception as exc:  # noqa: BLE001 - NotFittedError
            raise WorkerError(f"the scikit-learn model is not fitted: {_first_line(exc)}") from None
        return model

    @staticmethod
    def _is_classifier(model) -> bool:
        from sklearn.base import is_classifier

        return is_classifier(model)

    def predict(self, model, x: np.ndarray) -> Prediction:
        x2 = x.reshape(x.shape[0], -1)
        try:
            if self._is_classifier(model):
                labels = np.asarray(model.predict(x2))
                values = (
                    [("probabilities", np.asarray(model.predict_proba(x2)))]
                    if hasattr(model, "predict_proba")
                    else []
                )
                return Prediction(values=values, labels=labels)
            if hasattr(model, "predict"):
                return Prediction(values=[("variable", np.asarray(model.predict(x2)))], labels=None)
            return Prediction(values=[("variable", np.asarray(model.transform(x2)))], labels=None)
        except Exception as exc:  # noqa: BLE001
            raise WorkerError(
                f"the model does not run on inputs of shape {list(x2.shape)} {x2.dtype}: {_first_line(exc)}"
            ) from None

    def convert(self, model, sig: Signature, sample: np.ndarray, out_path: str, opset: int) -> dict:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import (
            DoubleTensorType,
            FloatTensorType,
            Int32TensorType,
            Int64TensorType,
        )

        tensor_type = {
            "float32": FloatTensorType,
            "float64": DoubleTensorType,
            "int64": Int64TensorType,
            "int32": Int32TensorType,
        }[sig.dtype]
        options = {"zipmap": False} if self._is_classifier(model) else None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                onx = convert_sklearn(
                    model,
                    initial_types=[(INPUT_NAME, tensor_type([None, sig.feature_count]))],
                    target_opset={"": opset, "ai.onnx.ml": 3},
                    options=options,
                )
        except Exception as exc:  # noqa: BLE001 - MissingShapeCalculator, RuntimeError, …
            raise WorkerError(f"skl2onnx cannot convert this model: {_first_line(exc)}") from None
        _name_batch_axis(onx)
        with open(out_path, "wb") as f:
            f.write(onx.SerializeToString())
        return {
            "name": self.converter,
            "options": {"zipmap": False} if options else {},
            "versions": _versions("skl2onnx", "scikit-learn", "onnx", "onnxruntime"),
        }

    def onnx_prediction(self, outputs: list[tuple[str, np.ndarray]]) -> Prediction:
        names = [name for name, _ in outputs]
        if "label" in names:
            labels = dict(outputs)["label"]
            values = [(n, v) for n, v in outputs if n != "label"]
            return Prediction(values=values, labels=labels)
        return Prediction(values=outputs, labels=None)


# ---------------------------------------------------------------- TensorFlow / Keras


class KerasConverter(Converter):
    framework = "tensorflow"
    converter = "tf2onnx.convert.from_function"

    def load(self, path: str):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import keras

        import zipfile

        with open(path, "rb") as f:
            magic = f.read(8)
        if magic.startswith(b"\x89HDF"):
            suffix = ".h5"
        elif zipfile.is_zipfile(path):
            suffix = ".keras"
        else:
            raise WorkerError("the model file is not a Keras model: neither a .keras (zip) archive nor an HDF5 file")
        # Keras 3 picks the format from the file name: give it one that says what the bytes are.
        tmpdir = tempfile.mkdtemp(prefix="mlmesh-keras-")
        try:
            local = os.path.join(tmpdir, "model" + suffix)
            shutil.copyfile(path, local)
            try:
                return keras.models.load_model(local, compile=False)
            except Exception as exc:  # noqa: BLE001 - ValueError, OSError, zipfile.BadZipFile, …
                raise WorkerError(f"the model file is not a Keras model (.keras or .h5): {_first_line(exc)}") from None
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def predict(self, model, x: np.ndarray) -> Prediction:
        try:
            raw = model(x, training=False)
        except Exception as exc:  # noqa: BLE001
            raise WorkerError(
                f"the model does not run on inputs of shape {list(x.shape)} {x.dtype}: {_first_line(exc)}"
            ) from None
        outs = [np.asarray(t) for t in (raw if isinstance(raw, (list, tuple)) else [raw])]
        names = ["output"] if len(outs) == 1 else [f"output_{i}" for i in range(len(outs))]
        return Prediction(values=list(zip(names, outs)), labels=_argmax_labels(outs[0]))

    def convert(self, model, sig: Signature, sample: np.ndarray, out_path: str, opset: int) -> dict:
        import tensorflow as tf
        import tf2onnx

        spec = (tf.TensorSpec((None, *sig.feature_shape), tf.as_dtype(sig.dtype), name=INPUT_NAME),)
        # tf2onnx.convert.from_keras fails on Keras 3 models (KeyError 'keras_tensor_N' while naming the
        # outputs); wrapping the model in a tf.function and converting that works for Keras 2 and 3.
        fn = tf.function(lambda x: model(x, training=False), input_signature=spec)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tf2onnx.convert.from_function(fn, input_signature=spec, opset=opset, output_path=out_path)
        except Exception as exc:  # noqa: BLE001
            raise WorkerError(f"tf2onnx cannot convert this model: {_first_line(exc)}") from None
        _rename_io(out_path)
        return {
            "name": self.converter,
            "why": "tf2onnx.convert.from_keras does not handle Keras 3 models",
            "versions": _versions("tf2onnx", "tensorflow-cpu", "keras", "onnx", "onnxruntime"),
        }


def _name_batch_axis(model) -> None:
    """Every converter's dynamic batch axis is called "batch" (skl2onnx leaves it unnamed, tf2onnx "unk__N")."""
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"


def _rename_io(path: str) -> None:
    """tf2onnx names outputs after TensorFlow tensors ("Identity:0") and the batch axis "unk__N": use the
    names the other converters give ("output", "output_i", "batch")."""
    import onnx

    model = onnx.load(path)
    graph = model.graph
    outputs = list(graph.output)
    new_names = ["output"] if len(outputs) == 1 else [f"output_{i}" for i in range(len(outputs))]
    renames = {o.name: n for o, n in zip(outputs, new_names) if o.name != n}
    taken = {v for node in graph.node for v in node.output} | {i.name for i in graph.input}
    if any(n in taken for n in renames.values()):
        renames = {}  # a clash: keep the converter's names
    for node in graph.node:
        node.output[:] = [renames.get(v, v) for v in node.output]
        node.input[:] = [renames.get(v, v) for v in node.input]
    for value in [*graph.input, *graph.output]:
        if value.name in renames:
            value.name = renames[value.name]
    _name_batch_axis(model)
    onnx.checker.check_model(model)
    onnx.save(model, path)


CONVERTERS: dict[str, type[Converter]] = {
    "pytorch": TorchConverter,
    "sklearn": SklearnConverter,
    "tensorflow": KerasConverter,
}


def converter_for(framework: str) -> Converter:
    try:
        return CONVERTERS[framework]()
    except KeyError:
        raise WorkerError(
            f"unknown framework {framework!r}: expected one of {', '.join(sorted(CONVERTERS))}"
        ) from None
