"""PyTorch: a fresh MLP, GRU or small CNN, or a TorchScript starting model (a Trainer recipe's), trained
one micro-batch at a time. The artifact is TorchScript, as the Trainer's, so the Translator converts
it to ONNX the same way; the optimizer's state rides along in the archive's extra files so that a
loaded model goes on learning where it stopped."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from servers.common.errors import FailedPrecondition, InvalidArgument
from servers.learner.ml.backends import _common as c
from servers.learner.ml.base import CLASSIFICATION, REGRESSION, Backend

NAME = "pytorch"
ARCHITECTURES = ("mlp", "gru", "cnn")
KEYS = {"architecture", "hidden_size", "layers", "lr", "optimizer", "epochs_per_batch", "seed", "freeze",
        "threads", "outputs"}
META_FILE = "mlmesh_learner.json"
OPTIMIZER_FILE = "mlmesh_optimizer.pt"
#: What a model's forward returns: regression values, class logits or class probabilities.
LOGITS, PROBABILITIES, VALUES = "logits", "probabilities", "values"


class MLP(nn.Module):
    """Flattened input, `layers` hidden ReLU layers, a linear head."""

    def __init__(self, input_shape: tuple[int, ...], hidden: int, layers: int, n_out: int):
        super().__init__()
        blocks: list[nn.Module] = [nn.Flatten()]
        width = int(np.prod(input_shape))
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class GRUNet(nn.Module):
    """A (L,) input is a sequence of L scalars, a (T, F) input a sequence of T vectors; the last hidden
    state goes through a linear head."""

    def __init__(self, input_shape: tuple[int, ...], hidden: int, layers: int, n_out: int):
        super().__init__()
        self.features = 1 if len(input_shape) == 1 else int(input_shape[1])
        self.gru = nn.GRU(self.features, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], x.shape[1], self.features)
        out, _ = self.gru(x)
        return self.head(out[:, -1, :])


class CNN(nn.Module):
    """(C, H, W) or (H, W) images: `layers` 3x3 convolutions with ReLU (a 2x2 max-pool after the first
    when the image is at least 4x4), average-pooled to 2x2, then a linear head."""

    def __init__(self, input_shape: tuple[int, ...], hidden: int, layers: int, n_out: int):
        super().__init__()
        channels, height, width = (1, *input_shape) if len(input_shape) == 2 else input_shape
        self.channels = int(channels)
        blocks: list[nn.Module] = []
        for i in range(layers):
            blocks += [nn.Conv2d(channels if i == 0 else hidden, hidden, 3, padding=1), nn.ReLU()]
            if i == 0 and min(height, width) >= 4:
                blocks.append(nn.MaxPool2d(2))
        blocks += [nn.AdaptiveAvgPool2d(2), nn.Flatten()]
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(hidden * 4, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], self.channels, x.shape[-2], x.shape[-1])
        return self.head(self.body(x))


NETWORKS = {"mlp": MLP, "gru": GRUNet, "cnn": CNN}


class Model(nn.Module):
    """The saved model: class probabilities (as the Trainer's digits CNN) or a (n, 1) value (as UC10's
    forecaster); `net` is the submodule giving the logits to train on."""

    def __init__(self, net: nn.Module, classification: bool):
        super().__init__()
        self.net = net
        self.classification = classification

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if self.classification:
            return out.softmax(dim=1)
        return out


class ExplainView(nn.Module):
    """The model output in model scale, for Captum: (n,) for regression, class probabilities."""

    def __init__(self, model: nn.Module, regression: bool, logits: bool):
        super().__init__()
        self.model = model
        self.regression = regression
        self.logits = logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if self.regression:
            return out.reshape(out.shape[0])
        return out.softmax(dim=1) if self.logits else out


class TorchBackend(Backend):
    framework = NAME
    artifact_name = "model.pt"

    def __init__(self, task: str, params: dict[str, Any], input_shape: tuple[int, ...], n_classes: int | None):
        shape = c.check_setup(NAME, task, input_shape, n_classes)
        super().__init__(task, dict(params or {}), shape, n_classes)
        self._read_params()
        architecture = c.choice_param(NAME, self.params, "architecture", "mlp", ARCHITECTURES)
        hidden = c.int_param(NAME, self.params, "hidden_size", 32, 1, 4096)
        layers = c.int_param(NAME, self.params, "layers", 1, 1, 16)
        seed = c.int_param(NAME, self.params, "seed", 0, 0, 2**63 - 1)
        if "outputs" in self.params:
            raise InvalidArgument("pytorch: param 'outputs' only applies to a loaded TorchScript model")
        if architecture == "gru" and len(shape) not in (1, 2):
            raise InvalidArgument(f"pytorch: architecture 'gru' takes a (L,) or (T, F) input, got {shape}")
        if architecture == "cnn" and len(shape) not in (2, 3):
            raise InvalidArgument(f"pytorch: architecture 'cnn' takes a (C, H, W) or (H, W) image, got {shape}")
        n_out = int(n_classes) if task == CLASSIFICATION else 1
        with torch.random.fork_rng(devices=[]):  # seeded weights without touching the caller's generator
            torch.manual_seed(seed)
            net = NETWORKS[architecture](shape, hidden, layers, n_out)
        # a zero head: a fresh model answers 0 (regression) or uniform probabilities, as the contract asks
        nn.init.zeros_(net.head.weight)
        nn.init.zeros_(net.head.bias)
        self.model = Model(net, task == CLASSIFICATION)
        self._train_module = net
        self._model_outputs = PROBABILITIES if task == CLASSIFICATION else VALUES
        self._train_outputs = LOGITS if task == CLASSIFICATION else VALUES
        self._setup_training(None)

    def _read_params(self) -> None:
        c.check_keys(NAME, self.params, KEYS)
        self._lr = c.float_param(NAME, self.params, "lr", 0.001)
        self._optimizer_name = c.choice_param(NAME, self.params, "optimizer", "adam", ("adam", "sgd"))
        self._epochs = c.int_param(NAME, self.params, "epochs_per_batch", 1, 1, 1000)
        self._freeze = c.str_list_param(NAME, self.params, "freeze")
        if "threads" in self.params:
            torch.set_num_threads(c.int_param(NAME, self.params, "threads", 1, 1, 256))

    def _setup_training(self, optimizer_state: bytes | None) -> None:
        """Freezes the parameters named by `freeze`, makes the others trainable, builds the optimizer
        (restoring its saved state when it fits)."""
        names = [n for n, _ in self._train_module.named_parameters()]
        for prefix in self._freeze:
            if not any(n.startswith(prefix) for n in names):
                shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
                raise InvalidArgument(f"pytorch: param 'freeze' prefix {prefix!r} matches no parameter; parameters: {shown}")
        trainable = []
        for name, p in self._train_module.named_parameters():
            frozen = any(name.startswith(prefix) for prefix in self._freeze)
            p.requires_grad_(not frozen)
            if not frozen:
                trainable.append(p)
        if not trainable:
            raise InvalidArgument("pytorch: param 'freeze' freezes every parameter: nothing is left to learn")
        if self._optimizer_name == "adam":
            self._optimizer = torch.optim.Adam(trainable, lr=self._lr)
        else:
            self._optimizer = torch.optim.SGD(trainable, lr=self._lr)
        if optimizer_state:
            try:
                state = torch.load(io.BytesIO(optimizer_state), map_location="cpu", weights_only=True)
                self._optimizer.load_state_dict(state)
                for group in self._optimizer.param_groups:  # the params' lr wins over the saved one
                    group["lr"] = self._lr
            except (ValueError, KeyError, RuntimeError):
                # another optimizer or another set of trainable parameters: start its state afresh
                self._optimizer = type(self._optimizer)(trainable, lr=self._lr)

    # ------------------------------------------------------------------ learning
    def _tensor(self, X: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(c.check_X(NAME, X, self.input_shape)))

    def learn(self, X: np.ndarray, y: np.ndarray) -> None:
        xt = self._tensor(X)
        yv = c.check_y(NAME, y, len(xt), self.task, self.n_classes)
        if len(xt) == 0:
            return
        yt = torch.from_numpy(yv.astype(np.int64) if self.task == CLASSIFICATION else yv)
        self._train_module.train()
        for _ in range(self._epochs):
            self._optimizer.zero_grad()
            out = self._train_module(xt)
            if self._train_outputs == VALUES:
                loss = torch.nn.functional.mse_loss(out.reshape(len(xt)), yt)
            elif self._train_outputs == LOGITS:
                loss = torch.nn.functional.cross_entropy(out, yt)
            else:
                loss = torch.nn.functional.nll_loss(out.clamp_min(c.EPS).log(), yt)
            loss.backward()
            self._optimizer.step()
        self._train_module.eval()

    def predict(self, X: np.ndarray) -> np.ndarray:
        xt = self._tensor(X)
        if len(xt) == 0:
            return c.fresh_prediction(self.task, 0, self.n_classes)
        self.model.eval()
        with torch.no_grad():
            out = self.model(xt)
        if self.task == REGRESSION:
            return out.reshape(len(xt)).numpy().astype(np.float32)
        if self._model_outputs == LOGITS:
            out = out.softmax(dim=1)
        return c.normalise_probabilities(out.numpy())

    def loss(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        p = self.predict(X)
        yv = c.check_y(NAME, y, len(p), self.task, self.n_classes)
        return c.per_sample_loss(self.task, p, yv)

    def torch_module(self) -> Any:
        view = ExplainView(self.model, self.task == REGRESSION, self._model_outputs == LOGITS)
        view.eval()
        return view

    # ------------------------------------------------------------------ artifacts
    def save(self, path: Path) -> None:
        self.model.eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.10+ deprecates TorchScript
            module = self.model if isinstance(self.model, torch.jit.ScriptModule) else torch.jit.script(self.model)
        buf = io.BytesIO()
        torch.save(self._optimizer.state_dict(), buf)
        meta = {
            "task": self.task,
            "outputs": self._model_outputs,
            # the submodule giving the logits to train on (a fresh classifier's saved forward is softmax)
            "train_submodule": "net" if self._train_module is not self.model else "",
            "train_outputs": self._train_outputs,
            "optimizer": self._optimizer_name,
        }
        extra = {META_FILE: json.dumps(meta), OPTIMIZER_FILE: buf.getvalue()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(module, str(Path(path)), _extra_files=extra)

    @classmethod
    def load(cls, path: Path, task: str, params: dict[str, Any], input_shape: tuple[int, ...],
             n_classes: int | None) -> TorchBackend:
        shape = c.check_setup(NAME, task, input_shape, n_classes)
        self = cls.__new__(cls)
        Backend.__init__(self, task, dict(params or {}), shape, n_classes)
        self._read_params()
        extra = {META_FILE: "", OPTIMIZER_FILE: ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                model = torch.jit.load(str(Path(path)), map_location="cpu", _extra_files=extra)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same precondition
            raise FailedPrecondition(
                f"pytorch: {Path(path).name} is not a TorchScript archive (save the model with torch.jit.save of "
                f"torch.jit.script or torch.jit.trace): {exc}"
            ) from None
        meta = json.loads(extra[META_FILE] or b"{}")
        if meta and meta.get("task") != task:
            raise FailedPrecondition(f"pytorch: the model was saved by a {meta.get('task')} learner, not {task}")
        self.model = model
        model.eval()
        self._check_io(model)
        if meta:
            self._model_outputs = meta["outputs"]
            self._train_outputs = meta["train_outputs"]
            sub = meta.get("train_submodule") or ""
            self._train_module = getattr(model, sub) if sub else model
            c.choice_param(NAME, self.params, "outputs", "auto", ("auto", self._model_outputs))
        else:
            self._train_module = model
            self._model_outputs = VALUES if task == REGRESSION else self._detect_outputs(model)
            self._train_outputs = self._model_outputs
        self._setup_training(extra[OPTIMIZER_FILE] or None)
        return self

    def _check_io(self, model) -> None:
        """The model must take (n, *input_shape) and give (n,)/(n, 1) (regression) or (n, n_classes)."""
        probe = torch.zeros((2, *self.input_shape), dtype=torch.float32)
        expected = "(n,) or (n, 1)" if self.task == REGRESSION else f"(n, {int(self.n_classes)})"
        try:
            with torch.no_grad():
                out = model(probe)
        except Exception as exc:  # noqa: BLE001 - whatever the model raises, the shapes do not fit
            raise FailedPrecondition(
                f"pytorch: the starting model does not take the learner's input (n, "
                f"{', '.join(map(str, self.input_shape))}): {str(exc).splitlines()[0] if str(exc) else exc}"
            ) from None
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        ok = isinstance(out, torch.Tensor) and (
            (self.task == REGRESSION and (got == (2,) or got == (2, 1)))
            or (self.task == CLASSIFICATION and got == (2, int(self.n_classes)))
        )
        if not ok:
            raise FailedPrecondition(f"pytorch: the starting model outputs {got} for 2 rows, a {self.task} learner "
                                     f"needs {expected}")

    def _detect_outputs(self, model) -> str:
        """A classifier's forward gives logits or probabilities (e.g. the digits CNN ends in Softmax):
        the param 'outputs' says which, or ('auto') rows of random inputs that are all >= 0 and sum to 1."""
        choice = c.choice_param(NAME, self.params, "outputs", "auto", ("auto", LOGITS, PROBABILITIES))
        if choice != "auto":
            return choice
        gen = torch.Generator().manual_seed(0)
        probe = torch.randn((8, *self.input_shape), generator=gen)
        with torch.no_grad():
            out = model(probe).double()
        sums_to_one = bool(torch.all(out >= 0)) and bool(torch.allclose(out.sum(dim=1), torch.ones(8, dtype=out.dtype),
                                                                         atol=1e-4))
        return PROBABILITIES if sums_to_one else LOGITS
